"""The weight-free "pixel" embedder: a standardised RGB thumbnail and a joint HSV histogram."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from benchmark.proxies.embedders.base import _MIN_NORM, Embedder, _require_int, embedders

_HIST_SIDE = 64  # the colour histogram is computed on a BOX-resampled 64x64 copy (fast, deterministic)


@embedders.register("pixel")
class PixelEmbedder(Embedder):
    """Weight-free features: a standardised size x size RGB thumbnail and a joint HSV histogram, equally weighted."""

    name = "pixel"

    def __init__(self, size: int = 16, hist_bins: int = 8) -> None:
        self.size = _require_int("size", size, minimum=1, maximum=256)
        self.hist_bins = _require_int("hist_bins", hist_bins, minimum=1, maximum=32)

    def identity(self) -> dict[str, Any]:
        """Name, parameters and algorithm version (there are no weights)."""
        return {"name": self.name, "version": 1, "size": self.size, "hist_bins": self.hist_bins, "colour": "hsv"}

    def _embed(self, images: list[Image.Image]) -> np.ndarray:
        return np.stack([self._features(image) for image in images])

    def _features(self, image: Image.Image) -> np.ndarray:
        return np.concatenate([self._thumbnail(image), self._histogram(image)])

    def _thumbnail(self, image: Image.Image) -> np.ndarray:
        """Standardised (zero mean, unit variance over all values) thumbnail, scaled to unit norm; zero if flat."""
        small = np.asarray(image.resize((self.size, self.size), Image.Resampling.BOX), dtype=np.float64).ravel()
        centred = small - small.mean()
        norm = np.linalg.norm(centred)
        return centred / norm if norm > _MIN_NORM else centred

    def _histogram(self, image: Image.Image) -> np.ndarray:
        """Square root of the normalised joint HSV histogram (unit norm; dot product = Bhattacharyya coefficient)."""
        hsv = np.asarray(image.resize((_HIST_SIDE, _HIST_SIDE), Image.Resampling.BOX).convert("HSV"), dtype=np.int64)
        bins = self.hist_bins
        index = (hsv * bins) // 256
        flat = (index[..., 0] * bins + index[..., 1]) * bins + index[..., 2]
        counts = np.bincount(flat.ravel(), minlength=bins**3).astype(np.float64)
        return np.sqrt(counts / counts.sum())

"""The Embedder interface, the `embedders` registry and the helpers every embedder shares.

An embedder maps PIL images to L2-normalised float32 vectors, so that cosine similarity is a dot product and
every 2-AFC task of the MIS proxy becomes a matrix product. This module also holds the parameter checks
(`_require_*`) that the embedders use to reject bad constructor arguments with one-line ConfigErrors.
"""

from __future__ import annotations

import abc
import difflib
import hashlib
import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmark.api.errors import (
    ConfigError,
    DataValidationError,
    SourceUnavailableError,
)
from benchmark.api.registry import Registry

#: Seed of the random initialisation used when a torch embedder runs without pretrained weights, so that two
#: instances (and the cache key they share) give the same vectors.
RANDOM_INIT_SEED = 0
_MIN_NORM = 1e-12


class Embedder(abc.ABC):
    """Maps images to L2-normalised feature vectors; cosine similarity = dot product."""

    name: str = ""

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed `images` into an (n, d) float32 array whose rows have unit L2 norm."""
        rgb = as_rgb_images(images)
        vectors = np.asarray(self._embed(rgb), dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != len(rgb):
            raise RuntimeError(
                f"Embedder {self.name!r} returned an array of shape {vectors.shape} for {len(rgb)} images; "
                "expected (n_images, dim). This is a bug in the embedder."
            )
        return l2_normalise(vectors, source=self.name)

    @abc.abstractmethod
    def _embed(self, images: list[Image.Image]) -> np.ndarray:
        """Raw (n, d) features of RGB images; `embed` validates and normalises them."""

    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-able description (name, parameters, weights' identity) used as cache key and provenance."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.identity(), sort_keys=True)})"


embedders: Registry[Callable[..., Embedder]] = Registry("embedder")


def make_embedder(name: str, **params: Any) -> Embedder:
    """Construct the embedder registered under `name`; unknown parameters raise ConfigError naming valid ones."""
    factory = embedders.get(name)
    valid = _parameter_names(factory)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        hints = [f"{u!r} -> {close[0]!r}" for u in unknown if (close := difflib.get_close_matches(u, valid, n=1))]
        hint = f" Did you mean {', '.join(hints)}?" if hints else ""
        raise ConfigError(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))} for embedder {name!r}.{hint} "
            f"Valid parameters: {', '.join(valid) or '(none)'}."
        )
    return factory(**params)


def identity_hash(identity: dict[str, Any]) -> str:
    """sha256 (hex) of an embedder identity serialised as canonical JSON."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def as_rgb_images(images: Sequence[Image.Image]) -> list[Image.Image]:
    """Validate a non-empty sequence of PIL images and return them in RGB mode."""
    if isinstance(images, Image.Image):
        raise ConfigError("Expected a sequence of PIL images, got a single image; wrap it in a list: [image].")
    images = list(images)
    if not images:
        raise ConfigError("Expected at least one image to embed, got an empty sequence.")
    for index, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise ConfigError(
                f"Item {index} is a {type(image).__name__}, not a PIL.Image.Image; open files with "
                "PIL.Image.open(path) or use EmbeddingCache.embed_paths for paths."
            )
    return [image if image.mode == "RGB" else image.convert("RGB") for image in images]


def l2_normalise(vectors: np.ndarray, *, source: str = "embedder") -> np.ndarray:
    """Return float32 rows scaled to unit L2 norm; non-finite or zero rows raise instead of being patched."""
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise DataValidationError(f"{source} produced non-finite features for image(s) at index {bad[:10].tolist()}.")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] < _MIN_NORM)
    if zero.size:
        raise DataValidationError(
            f"{source} produced an all-zero feature vector for image(s) at index {zero[:10].tolist()}; "
            "cosine similarity is undefined for them. Check the images (blank?) or choose another embedder."
        )
    return (vectors / norms).astype(np.float32)


# --------------------------------------------------------------------------------------------- validation helpers


def _parameter_names(factory: Callable[..., Any]) -> list[str]:
    signature = inspect.signature(factory)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in signature.parameters.values() if p.kind in kinds and p.name != "self"]


def _require_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigError(f"{name} must be >= {minimum}{upper}, got {value}.")
    return int(value)


def _require_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")
    return value


def _require_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}.")
    return value


def _close_matches(name: str, candidates: Sequence[str], n: int = 5) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


def _existing_file(name: str, value: str | os.PathLike[str]) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise SourceUnavailableError(f"{name} {str(value)!r} is not an existing file; pass the path of a weights file.")
    return path.resolve()

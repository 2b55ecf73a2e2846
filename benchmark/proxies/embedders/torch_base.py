"""Shared machinery of the torch embedders: device choice, seeded random initialisation, lazy loading, batching.

torch is imported inside the functions, so importing this module does not import torch.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from benchmark.api.errors import ConfigError
from benchmark.proxies.embedders.base import RANDOM_INIT_SEED, Embedder, _require_int

if TYPE_CHECKING:
    import torch


def _resolve_device(device: str | None) -> torch.device:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"Invalid device {device!r} ({err}); use None (auto), 'cpu', 'cuda' or 'cuda:N'.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but CUDA is not available here; pass device='cpu' or device=None (auto).")
    return resolved


@contextlib.contextmanager
def _seeded_init(seed: int = RANDOM_INIT_SEED) -> Iterator[None]:
    """Seed the CPU RNG for a random initialisation without disturbing the caller's RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _random_init_weights() -> dict[str, Any]:
    import torch

    return {"source": "random_init", "seed": RANDOM_INIT_SEED, "torch": torch.__version__}


class _TorchEmbedder(Embedder):
    """Shared machinery: lazy loading, device choice, batching, inference mode and bf16 autocast on CUDA."""

    def __init__(self, device: str | None, batch_size: int) -> None:
        self.device = device
        self.batch_size = _require_int("batch_size", batch_size, minimum=1)
        self._device = _resolve_device(device)
        self._model: Any = None
        self._transform: Callable[[Image.Image], torch.Tensor] | None = None

    @abc.abstractmethod
    def _load(self) -> tuple[Any, Callable[[Image.Image], torch.Tensor]]:
        """Build the model (weights loaded) and its evaluation transform."""

    @abc.abstractmethod
    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) preprocessed batch -> (B, d) features."""

    def _runtime_identity(self) -> dict[str, Any]:
        precision = "bfloat16-autocast" if self._device.type == "cuda" else "float32"
        return {"device": self._device.type, "precision": precision}

    def _ensure_loaded(self) -> None:
        if self._model is None:
            model, transform = self._load()
            self._model = model.eval().requires_grad_(False).to(self._device)
            self._transform = transform

    def _embed(self, images: list[Image.Image]) -> np.ndarray:
        self._ensure_loaded()
        chunks = [self._run_batch(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks)

    def _run_batch(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        assert self._transform is not None  # set by _ensure_loaded; not user input
        batch = torch.stack([self._transform(image) for image in images]).to(self._device, non_blocking=True)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if self._device.type == "cuda" else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            features = self._forward(batch)
        return features.float().flatten(1).cpu().numpy()

"""Batched JPEG decoding on the GPU (nvJPEG through torchvision), with the model's resize and centre crop there too.

`imibench score --decode gpu` reads file bytes in DataLoader workers and decodes each batch with
`torchvision.io.decode_jpeg(..., device="cuda")`; resize (short side to floor(size / crop_pct), the model's
interpolation, antialiased) and the centre crop run on the GPU with the same `torchvision.transforms.v2.functional`
ops that `TensorTransform` runs on the CPU, so the geometry is the model's eval transform's. Files that are not
plain JPEGs (CMYK/YCCK JPEGs, PNG, ...) are decoded in the worker by PIL, exactly as the CPU path does, and join
the batch as pixels.

`--decode auto` takes the GPU path where it can run (CUDA, a folder source, a centre-crop model config) and the
CPU path otherwise; `--decode gpu` where it cannot is an error naming the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.api.errors import ConfigError
from benchmark.stimuli.sources import ImageFolderSource, ImageSource, open_rgb

DECODE_CHOICES = ("cpu", "gpu", "auto")
_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
_SOF_MARKERS = {0xC0, 0xC1, 0xC2}  # baseline, extended, progressive Huffman JPEG


@dataclass(frozen=True)
class TensorTransform:
    """The model's eval geometry on uint8 (3, h, w) tensors: resize short side, centre crop, scale, normalise."""

    size: tuple[int, int]
    scale_size: int
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_data_config(cls, config: Any) -> TensorTransform:
        """From a model's DataConfig (input_size, crop_pct, interpolation, mean, std, crop_mode)."""
        _, height, width = config["input_size"]
        if config["crop_mode"] != "center" or height != width or config["interpolation"] not in _INTERPOLATIONS:
            raise ConfigError(
                f"GPU decoding reproduces centre-crop transforms of square inputs with bilinear, bicubic or nearest "
                f"resizing; this model's input config is crop_mode={config['crop_mode']!r}, input_size="
                f"{tuple(config['input_size'])}, interpolation={config['interpolation']!r}. Use --decode cpu."
            )
        scale = math.floor(height / float(config["crop_pct"]))
        return cls((height, width), scale, str(config["interpolation"]), tuple(config["mean"]), tuple(config["std"]))

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 (3, h, w) -> normalised float32 (3, H, W) on the image's device."""
        return self.normalise(self.geometry(image))

    def geometry(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 (..., 3, h, w) -> uint8 (..., 3, H, W): resize the short side (antialiased), centre crop."""
        import torchvision.transforms.v2.functional as F

        resized = F.resize(image, [self.scale_size], interpolation=F.InterpolationMode(self.interpolation),
                           antialias=True)
        return F.center_crop(resized, list(self.size))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (..., 3, H, W) -> float32 scaled to [0, 1] and normalised with the model's mean and std."""
        import torchvision.transforms.v2.functional as F

        return F.normalize(F.to_dtype(images, torch.float32, scale=True), list(self.mean), list(self.std))


def jpeg_components(data: bytes) -> int | None:
    """Colour components of a baseline/progressive JPEG (1 grey, 3 YCbCr, 4 CMYK/YCCK); None if not such a JPEG."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF_MARKERS:
            return data[i + 9]
        if 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # lossless / arithmetic: not nvJPEG's
            return None
        i += 2 + length
    return None


class _EncodedImages(Dataset):
    """Item k -> (plain JPEG bytes as a uint8 tensor, or decoded uint8 (3, h, w) pixels; global index)."""

    def __init__(self, source: ImageFolderSource, indices: Sequence[int]) -> None:
        self.root, self.ids, self.indices = source.root, source.ids(), list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, bool, int]:
        index = self.indices[k]
        path = self.root / self.ids[index]
        data = path.read_bytes()
        if jpeg_components(data) in (1, 3):
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), True, index
        import torchvision.transforms.v2.functional as F

        pixels = F.pil_to_tensor(open_rgb(path, label=self.ids[index]))  # CMYK, PNG...: PIL, as the CPU path
        return pixels, False, index


def _collate(items: list[tuple[torch.Tensor, bool, int]]) -> tuple[list[torch.Tensor], list[bool], torch.Tensor]:
    return [i[0] for i in items], [i[1] for i in items], torch.tensor([i[2] for i in items], dtype=torch.int64)


class DeviceDecodedLoader:
    """Batches of (normalised images on `device`, ids), decoding JPEGs on `device` (nvJPEG on CUDA)."""

    def __init__(
        self,
        source: ImageFolderSource,
        transform: TensorTransform,
        *,
        device: torch.device | str,
        batch_size: int,
        num_workers: int = 0,
        start: int = 0,
        stop: int | None = None,
        indices: Sequence[int] | None = None,
    ) -> None:
        chosen = list(range(start, len(source) if stop is None else stop)) if indices is None else list(indices)
        self.device, self.transform, self.batch_size = torch.device(device), transform, batch_size
        self._loader = DataLoader(_EncodedImages(source, chosen), batch_size=batch_size, shuffle=False,
                                  num_workers=num_workers, collate_fn=_collate, pin_memory=False)

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from torchvision.io import ImageReadMode, decode_jpeg

        for payloads, encoded, ids in self._loader:
            jpegs = [p for p, e in zip(payloads, encoded, strict=True) if e]
            decoded = iter(decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=self.device) if jpegs else [])
            images = [next(decoded) if e else p.to(self.device) for p, e in zip(payloads, encoded, strict=True)]
            yield self.transform.normalise(torch.stack([self.transform.geometry(image) for image in images])), ids


def resolve_decode(decode: str, source: ImageSource, device: torch.device, data_config: Any) -> str:
    """'cpu' or 'gpu' for a requested --decode; `gpu` that cannot run is a ConfigError naming why."""
    if decode not in DECODE_CHOICES:
        raise ConfigError(f"decode={decode!r} is not one of {', '.join(DECODE_CHOICES)}.")
    if decode == "cpu":
        return "cpu"
    reason = None
    if not torch.cuda.is_available():
        reason = "CUDA is not available on this machine"
    elif device.type != "cuda":
        reason = f"the model runs on {device} (GPU decoding feeds a CUDA model)"
    elif not isinstance(source, ImageFolderSource):
        reason = f"the image source is {source.describe().get('kind')!r} (GPU decoding reads image folders)"
    else:
        try:
            TensorTransform.from_data_config(data_config)
        except ConfigError as err:
            reason = str(err)
    if reason is None:
        return "gpu"
    if decode == "gpu":
        raise ConfigError(f"--decode gpu cannot run: {reason}. Use --decode cpu (or auto to choose by itself).")
    return "cpu"

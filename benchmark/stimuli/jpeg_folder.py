"""An ImageNet-like folder of real JPEGs (sizes, quality, grey and CMYK files) for throughput benchmarks and tests.

ImageNet-train's JPEGs are mostly 500 px on the long side (500x375 the most common), with a long tail of other
sizes, about 110 KB each at quality ~90; a few percent are greyscale and a handful CMYK. `write_jpeg_folder` makes
images with that spread: smooth random colour fields plus textured noise, so that files are about as large (and as
slow to entropy-decode) as real photographs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmark.api.errors import ConfigError

#: (width, height) of the most common ImageNet-train shapes and their share; the rest are drawn from a wide spread
COMMON_SHAPES: tuple[tuple[tuple[int, int], float], ...] = (
    ((500, 375), 0.45), ((375, 500), 0.12), ((500, 333), 0.10), ((333, 500), 0.03), ((500, 500), 0.04),
)


def image_shape(rng: np.random.Generator) -> tuple[int, int]:
    """A (width, height) drawn like ImageNet-train's: common 500-px shapes, else a log-normal spread (80..2000 px)."""
    draw = rng.random()
    for shape, share in COMMON_SHAPES:
        if draw < share:
            return shape
        draw -= share
    long_side = int(np.clip(rng.lognormal(np.log(450), 0.45), 80, 2000))
    aspect = float(np.clip(rng.lognormal(np.log(1.3), 0.2), 1.0, 3.0))
    short_side = max(40, int(long_side / aspect))
    return (long_side, short_side) if rng.random() < 0.75 else (short_side, long_side)


def synthetic_photo(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A smooth random colour field with shapes and texture, about as costly to encode/decode as a photograph."""
    width, height = size
    coarse = rng.integers(0, 256, size=(rng.integers(3, 9), rng.integers(3, 9), 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
    y, x = np.mgrid[0:height, 0:width]
    for _ in range(int(rng.integers(1, 4))):  # a few discs: edges that make activations differ between images
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.1, 0.4) * min(width, height)
        image[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.integers(0, 256, 3)
    image += rng.normal(0, rng.uniform(10, 22), size=image.shape)  # texture: real photos' file sizes
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def write_jpeg_folder(
    root: str | Path,
    n_images: int,
    *,
    seed: int = 0,
    quality: int = 90,
    grey_fraction: float = 0.02,
    n_cmyk: int | None = None,
    classes: int = 10,
    workers: int = 1,
) -> list[Path]:
    """Write `n_images` JPEGs under root/CLASS/NAME.JPEG (ImageNet-train layout); returns their paths.

    `grey_fraction` of them (at least one) are greyscale; `n_cmyk` (default max(1, n / 500)) are CMYK, as a few
    ImageNet files are. Files already present are kept, so a benchmark reuses its folder. `workers` > 1 writes in
    that many processes (the same files).
    """
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise ConfigError(f"n_images={n_images!r} must be a positive integer.")
    root = Path(root)
    rng = np.random.default_rng(seed)
    n_cmyk = max(1, n_images // 500) if n_cmyk is None else n_cmyk
    special = rng.permutation(n_images)
    cmyk = set(special[:n_cmyk].tolist())
    grey = set(special[n_cmyk : n_cmyk + max(1, round(grey_fraction * n_images))].tolist())
    jobs = [(root / f"n{i % classes:08d}" / f"img_{i:07d}.JPEG", seed, i, quality,
             "CMYK" if i in cmyk else "L" if i in grey else "RGB") for i in range(n_images)]
    _run_jobs(_write_one, [job for job in jobs if not job[0].exists()], workers)
    return [job[0] for job in jobs]


def _run_jobs(work: Callable[[Any], None], jobs: list[Any], workers: int) -> None:
    """`work(job)` for every job: in a pool of `workers` processes when there are enough jobs, else here."""
    if workers > 1 and len(jobs) > workers:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(work, jobs, chunksize=64))
    else:
        for job in jobs:
            work(job)


def _write_one(job: tuple[Path, int, int, int, str]) -> None:
    path, seed, i, quality, mode = job
    item_rng = np.random.default_rng([seed, i])
    image = synthetic_photo(item_rng, image_shape(item_rng))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert(mode).save(path, format="JPEG", quality=quality)


def prepare_resized_copy(
    source_root: str | Path, out: str | Path, ids: list[str], *, short_side: int = 256, quality: int = 90,
    workers: int = 1,
) -> Path:
    """A copy of the images re-encoded with the short side at `short_side` px (same relative paths), to decode faster.

    A prepared cache for repeated scoring runs over one source: decoding 256-px JPEGs costs about a third of
    decoding 500x375 ones. The pixels differ slightly from the originals' (two resizes), so results over the copy
    are comparable with each other, not bit-identical with results over the originals.
    """
    jobs = [(Path(source_root) / i, Path(out) / i, short_side, quality) for i in ids]
    _run_jobs(_resize_one, [job for job in jobs if not job[1].exists()], workers)
    return Path(out)


def _resize_one(job: tuple[Path, Path, int, int]) -> None:
    source, target, short_side, quality = job
    with Image.open(source) as image:
        image = image.convert("RGB")
        scale = short_side / min(image.size)
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, format="JPEG", quality=quality)

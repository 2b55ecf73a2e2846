"""The bundled image sample: deterministic crops of scikit-image's sample images, for the offline demo and tests.

Image `i` is variant `i // S` of sample image `SAMPLE_IMAGES[i % S]` (S = 23 images). Variant 0 is the largest
centred square of the image; every other variant is a square crop of random position and scale (about 1/5 to 1
of the shorter side; crops of a flat region are redrawn), a horizontal flip with probability 1/2 and a mild colour
jitter (brightness, contrast, saturation), resized to `size` x `size` with bicubic resampling. The random numbers
come from numpy's PCG64 generator seeded with (seed, crc32 of the image name, variant), and only integer or single
IEEE operations touch the pixels (no transcendental functions, reductions in integers), so the pixels are the same
on every machine with the same scikit-image data files and Pillow resampling. Images are made lazily per index;
nothing is written to disk.
See data_cards/bundled_sample.md for sources and licences.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import numpy as np
from PIL import Image

from benchmark.api.errors import ConfigError, SourceUnavailableError
from benchmark.stimuli.sources import ImageSource, ids_sha256

# scikit-image sample images stored inside the skimage package (no download). Left out: `cat` (the same photograph
# as `chelsea`) and `binary_blobs` (generated on the fly by a random floating-point pipeline, not a stored image).
SAMPLE_IMAGES: tuple[str, ...] = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "rocket",
    "text",
    "checkerboard",
    "clock",
    "colorwheel",
    "logo",
    "retina",
    "brick",
    "grass",
    "gravel",
    "microaneurysms",
    "cell",
    "shepp_logan_phantom",
)
SCALES: tuple[float, ...] = (1.0, 0.75, 0.55, 0.4, 0.3, 0.22)  # crop side / shorter image side, then +-10 %
MIN_CROP_SIDE = 16
MIN_CROP_RANGE = 32  # a crop whose pixel values span less than this (a flat background) is redrawn ...
MAX_CROP_ATTEMPTS = 20  # ... at most this many times (then the last draw is kept)
BRIGHTNESS = 0.2  # factor in [1 - 0.2, 1 + 0.2]
CONTRAST = 0.2
SATURATION = 0.3
FLIP_PROBABILITY = 0.5


class BundledSample(ImageSource):
    """`n_images` deterministic natural-image crops from scikit-image's bundled sample images."""

    def __init__(
        self,
        n_images: int = 600,
        size: int = 224,
        seed: int = 0,
        *,
        images: tuple[str, ...] = SAMPLE_IMAGES,
    ) -> None:
        _check_positive("n_images", n_images, minimum=1)
        _check_positive("size", size, minimum=MIN_CROP_SIDE)
        _check_positive("seed", seed, minimum=0)
        unknown = [name for name in images if name not in SAMPLE_IMAGES]
        if unknown or not images:
            raise ConfigError(
                f"Unknown or no bundled sample images {unknown or list(images)!r}; valid: {', '.join(SAMPLE_IMAGES)}."
            )
        self.n_images = n_images
        self.size = size
        self.seed = seed
        self.images = tuple(images)
        self._bases: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.n_images

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_bases"] = {}  # workers reload the (small) base images rather than receive copies
        state.pop("_index_lookup", None)
        return state

    def ids(self) -> list[str]:
        """`bundled/NAME/VARIANT` (variant zero-padded to 4 digits) for every image."""
        return [self._id(i) for i in range(self.n_images)]

    def _id(self, i: int) -> str:
        name, variant = self._locate(i)
        return f"bundled/{name}/{variant:04d}"

    def _locate(self, i: int) -> tuple[str, int]:
        return self.images[i % len(self.images)], i // len(self.images)

    def load(self, i: int) -> Image.Image:
        """Image `i`: a size x size RGB crop, the same pixels for the same (seed, size, index)."""
        name, variant = self._locate(self._check_index(i))
        return Image.fromarray(render_variant(self._base(name), name, variant, size=self.size, seed=self.seed))

    def _base(self, name: str) -> np.ndarray:
        if name not in self._bases:
            self._bases[name] = load_sample_image(name)
        return self._bases[name]

    def describe(self) -> dict[str, Any]:
        """Kind, parameters, n_images, ids sha256 and a sha256 of the decoded base images (their pixels)."""
        import skimage

        return {
            "kind": "bundled",
            "root": "skimage.data",
            "revision": f"scikit-image {skimage.__version__}",
            "n_images": self.n_images,
            "size": self.size,
            "seed": self.seed,
            "images": list(self.images),
            "base_images_sha256": self.base_images_sha256(),
            "ids_sha256": ids_sha256(self.ids()),
        }

    def base_images_sha256(self) -> str:
        """sha256 over the decoded RGB base images (name, shape, pixels): changes if the sample data change."""
        digest = hashlib.sha256()
        for name in self.images:
            base = self._base(name)
            digest.update(f"{name}:{base.shape}".encode())
            digest.update(np.ascontiguousarray(base).tobytes())
        return digest.hexdigest()


def load_sample_image(name: str) -> np.ndarray:
    """A scikit-image sample image as an (H, W, 3) uint8 RGB array (gray stacked, alpha composited on white)."""
    import skimage.data

    try:
        array = np.asarray(getattr(skimage.data, name)())
    except (OSError, ModuleNotFoundError) as exc:
        raise SourceUnavailableError(
            f"scikit-image sample image {name!r} could not be loaded ({type(exc).__name__}: {exc}). It ships inside "
            "the scikit-image package; reinstall scikit-image (pip install --force-reinstall scikit-image)."
        ) from exc
    return to_rgb_uint8(array)


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Convert a bool / float [0, 1] / uint8 gray, RGB or RGBA array to (H, W, 3) uint8 RGB, exactly."""
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f":
        array = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        array = array.astype(np.uint8)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.shape[-1] == 4:
        rgb = array[..., :3].astype(np.uint32)
        alpha = array[..., 3:].astype(np.uint32)
        array = ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def render_variant(base: np.ndarray, name: str, variant: int, *, size: int, seed: int) -> np.ndarray:
    """Variant `variant` of a base image: crop, resize to size x size, flip and colour jitter (uint8 RGB)."""
    height, width = base.shape[:2]
    short = min(height, width)
    if variant == 0:
        side, x0, y0 = short, (width - short) // 2, (height - short) // 2
        return _resize(base, (x0, y0, side), size)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8")), variant])
    crop = _draw_crop(base, rng)
    pixels = _resize(base, crop, size)
    if float(rng.random()) < FLIP_PROBABILITY:
        pixels = np.ascontiguousarray(pixels[:, ::-1])
    factors = [1.0 + amount * (2.0 * float(rng.random()) - 1.0) for amount in (BRIGHTNESS, CONTRAST, SATURATION)]
    return _jitter(pixels, *factors)


def _draw_crop(base: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int]:
    """A random square crop (x0, y0, side); crops of a nearly flat region (range < MIN_CROP_RANGE) are redrawn."""
    height, width = base.shape[:2]
    short = min(height, width)
    for _ in range(MAX_CROP_ATTEMPTS):
        scale = SCALES[int(rng.integers(len(SCALES)))] * (0.9 + 0.2 * float(rng.random()))
        side = max(MIN_CROP_SIDE, min(short, int(short * scale)))
        x0 = int(rng.integers(0, width - side + 1))
        y0 = int(rng.integers(0, height - side + 1))
        region = base[y0 : y0 + side, x0 : x0 + side]
        if int(region.max()) - int(region.min()) >= MIN_CROP_RANGE:
            break
    return x0, y0, side


def _resize(base: np.ndarray, crop: tuple[int, int, int], size: int) -> np.ndarray:
    x0, y0, side = crop
    image = Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC, box=(x0, y0, x0 + side, y0 + side))
    return np.asarray(image, dtype=np.uint8)


def _jitter(pixels: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Brightness, contrast and saturation like torchvision's ColorJitter, with exact integer reductions."""
    values = pixels.astype(np.float64) * brightness
    values = np.clip(values, 0.0, 255.0)
    gray = _gray(values)
    mean = float(np.rint(gray).astype(np.int64).sum()) / gray.size
    values = np.clip(mean + contrast * (values - mean), 0.0, 255.0)
    gray = _gray(values)[..., None]
    values = np.clip(gray + saturation * (values - gray), 0.0, 255.0)
    return np.rint(values).astype(np.uint8)


def _gray(values: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, one multiply and add per channel (elementwise, hence exact to repeat)."""
    return values[..., 0] * 0.299 + values[..., 1] * 0.587 + values[..., 2] * 0.114


def _check_positive(label: str, value: int, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{label}={value!r} must be an integer >= {minimum}.")

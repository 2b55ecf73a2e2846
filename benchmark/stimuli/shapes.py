"""Procedurally rendered shapes: a labelled image set the project makes itself, for the demo's toy model.

Image `i` of split `s` is one shape (circle, square, triangle, star, cross, ring) in one of six colour families
(hue, saturation and value jittered), filled with a texture (solid, stripes, checks, dots), at a random position,
size and rotation, on a varied muted background (greyish flat colour, gradient, blocky noise, or a crop of a bundled
photo). Its label is the colour family: shape, texture and background are nuisances a trained network learns to
ignore (and a random one does not). The random numbers come from numpy's PCG64 seeded with
(seed, split, index), and drawing is Pillow's integer rasteriser, so the pixels are the same on every run; images
are made lazily per index, nothing is written to disk. The `test` split never repeats a `train` image.

`ShapesSource` can append bundled photo crops (`photos=M`): a held-out mix on which a trained network's units can
show what they select, and a random network's cannot.
"""

from __future__ import annotations

import colorsys
import hashlib
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from benchmark.api.errors import ConfigError
from benchmark.stimuli.bundled import BundledSample
from benchmark.stimuli.sources import ImageSource, ids_sha256

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")
COLOURS: dict[str, float] = {"red": 0.0, "yellow": 1 / 6, "green": 2 / 6, "cyan": 3 / 6, "blue": 4 / 6,
                             "magenta": 5 / 6}  # name -> hue in [0, 1)
TEXTURES: tuple[str, ...] = ("solid", "stripes", "checks", "dots")
BACKGROUNDS: tuple[str, ...] = ("flat", "gradient", "noise", "photo")
SPLITS: dict[str, int] = {"train": 0, "test": 1}
N_CLASSES = len(COLOURS)
RENDER_VERSION = 1  # bump when the pixels of any image change
_PHOTO_BACKGROUND_POOL = 4 * 23  # background photo crops: the first variants of the bundled sample images


def class_name(label: int) -> str:
    """The colour family a label names, e.g. 'red'."""
    return list(COLOURS)[int(label)]


class ShapesSource(ImageSource):
    """`n_shapes` rendered shape images of one split, then `n_photos` bundled photo crops, all size x size."""

    def __init__(self, n_shapes: int = 400, *, split: str = "test", n_photos: int = 0, size: int = 64,
                 seed: int = 0) -> None:
        for label, value, minimum in (("n_shapes", n_shapes, 0), ("n_photos", n_photos, 0), ("size", size, 16),
                                      ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{label}={value!r} must be an integer >= {minimum}.")
        if split not in SPLITS:
            raise ConfigError(f"Unknown shapes split {split!r}; valid: {', '.join(SPLITS)}.")
        if n_shapes + n_photos == 0:
            raise ConfigError("A shapes source needs at least one image: give n_shapes > 0 or photos > 0.")
        self.n_shapes, self.n_photos, self.size, self.seed, self.split = n_shapes, n_photos, size, seed, split
        self._photos = BundledSample(max(n_photos, _PHOTO_BACKGROUND_POOL), size=size, seed=seed)
        self._photo_backgrounds: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.n_shapes + self.n_photos

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_photo_backgrounds"] = {}  # workers redraw the few background crops rather than receive copies
        state.pop("_index_lookup", None)
        return state

    def ids(self) -> list[str]:
        """`shapes/SPLIT/NNNNN` for the rendered images, then the bundled ids of the photos."""
        photo_ids = self._photos.ids()[: self.n_photos]
        return [f"shapes/{self.split}/{i:05d}" for i in range(self.n_shapes)] + photo_ids

    def load(self, i: int) -> Image.Image:
        """Image `i` as an RGB size x size image."""
        i = self._check_index(i)
        if i >= self.n_shapes:
            return self._photos.load(i - self.n_shapes)
        return Image.fromarray(self.render(i)[0])

    def label(self, i: int) -> int:
        """The class of rendered image `i` (photos have no label)."""
        i = self._check_index(i)
        if i >= self.n_shapes:
            raise ConfigError(f"Image {i} is a bundled photo, which has no label; labels exist for 0..{self.n_shapes - 1}.")
        return self.render(i)[1]

    def render(self, i: int) -> tuple[np.ndarray, int]:
        """(uint8 H x W x 3 pixels, label) of rendered image `i`."""
        rng = np.random.default_rng([self.seed, RENDER_VERSION, SPLITS[self.split], i])
        shape, colour = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS)))
        background = self._background(rng)
        pixels = _draw_shape(background, SHAPES[shape], list(COLOURS.values())[colour], rng)
        return pixels, colour

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        """A varied but muted background (low saturation, mid brightness), so the shape carries the colour."""
        kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        size = self.size
        if kind == "photo":
            return self._photo_background(int(rng.integers(_PHOTO_BACKGROUND_POOL))).copy()
        first, second = _muted_rgb(rng), _muted_rgb(rng)
        if kind == "flat":
            return np.broadcast_to(first, (size, size, 3)).copy()
        if kind == "gradient":
            t = np.linspace(0.0, 1.0, size)[:, None, None]
            ramp = np.broadcast_to(first * (1 - t) + second * t, (size, size, 3))
            return np.ascontiguousarray(ramp.transpose(1, 0, 2) if rng.random() < 0.5 else ramp)
        cells = int(rng.integers(2, 9))
        blocks = np.stack([_muted_rgb(rng) for _ in range(cells * cells)]).reshape(cells, cells, 3)
        image = Image.fromarray(np.rint(blocks).astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)
        return np.asarray(image, dtype=np.float64)

    def _photo_background(self, k: int) -> np.ndarray:
        if k not in self._photo_backgrounds:
            photo = np.asarray(self._photos.load(k), dtype=np.float64)
            gray = photo.mean(axis=2, keepdims=True)
            self._photo_backgrounds[k] = 64.0 + 0.5 * (0.3 * photo + 0.7 * gray)  # muted: mostly grey, mid contrast
        return self._photo_backgrounds[k]

    def describe(self) -> dict[str, Any]:
        """Kind, parameters, n_images, ids sha256 and the bundled photos' pixel hash."""
        return {
            "kind": "shapes",
            "root": "benchmark.stimuli.shapes",
            "revision": f"render v{RENDER_VERSION}",
            "n_images": len(self),
            "split": self.split,
            "n_shapes": self.n_shapes,
            "n_photos": self.n_photos,
            "size": self.size,
            "seed": self.seed,
            "base_images_sha256": self._photos.base_images_sha256(),
            "ids_sha256": ids_sha256(self.ids()),
        }

    def pixels_sha256(self, count: int = 16) -> str:
        """sha256 of the first `count` images' pixels (a cheap check that rendering did not change)."""
        digest = hashlib.sha256()
        for i in range(min(count, len(self))):
            digest.update(np.asarray(self.load(i)).tobytes())
        return digest.hexdigest()


def _muted_rgb(rng: np.random.Generator) -> np.ndarray:
    """A greyish colour: brightness 60..190, each channel within +-20 of it."""
    return 60.0 + 130.0 * float(rng.random()) + rng.integers(-20, 21, size=3).astype(np.float64)


def _draw_shape(background: np.ndarray, shape: str, hue: float, rng: np.random.Generator) -> np.ndarray:
    size = background.shape[0]
    mask = Image.new("L", (size, size), 0)
    radius = size * (0.26 + 0.14 * float(rng.random()))
    cx, cy = (size / 2 + size * 0.1 * (2 * float(rng.random()) - 1) for _ in range(2))
    _draw_mask(ImageDraw.Draw(mask), shape, cx, cy, radius, 2 * np.pi * float(rng.random()))
    alpha = np.asarray(mask, dtype=np.float64)[..., None] / 255.0
    rgb = colorsys.hsv_to_rgb((hue + 0.05 * (2 * float(rng.random()) - 1)) % 1.0, 0.65 + 0.35 * float(rng.random()),
                              0.7 + 0.3 * float(rng.random()))
    fill = np.array(rgb) * 255.0 * _texture(TEXTURES[int(rng.integers(len(TEXTURES)))], size, rng)[..., None]
    return np.rint(np.clip(background * (1 - alpha) + fill * alpha, 0, 255)).astype(np.uint8)


def _draw_mask(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, angle: float) -> None:
    def polygon(n: int, radii: tuple[float, ...]) -> list[tuple[float, float]]:
        points = []
        for k in range(n * len(radii)):
            a = angle + 2 * np.pi * k / (n * len(radii))
            rk = r * radii[k % len(radii)]
            points.append((cx + rk * float(np.cos(a)), cy + rk * float(np.sin(a))))
        return points

    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=255)
    elif shape == "ring":
        draw.ellipse(box, fill=255)
        draw.ellipse((cx - 0.55 * r, cy - 0.55 * r, cx + 0.55 * r, cy + 0.55 * r), fill=0)
    elif shape == "square":
        draw.polygon(polygon(4, (1.0,)), fill=255)
    elif shape == "triangle":
        draw.polygon(polygon(3, (1.0,)), fill=255)
    elif shape == "star":
        draw.polygon(polygon(5, (1.0, 0.45)), fill=255)
    elif shape == "cross":
        draw.polygon(_plus(cx, cy, r, angle), fill=255)
    else:
        raise ConfigError(f"Unknown shape {shape!r}; valid: {', '.join(SHAPES)}.")


def _plus(cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """A plus sign: a 12-point polygon of two crossed bars of half-width r/3, rotated by `angle`."""
    w = r / 3
    outline = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
               (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
    cos, sin = float(np.cos(angle)), float(np.sin(angle))
    return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in outline]


def _texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A brightness pattern in {0.55, 1} (1 everywhere for solid)."""
    if kind == "solid":
        return np.ones((size, size))
    period = int(rng.integers(4, 9))
    y, x = np.mgrid[0:size, 0:size]
    if kind == "stripes":
        along = x if rng.random() < 0.5 else y
        on = (along // (period // 2 + 1)) % 2 == 0
    elif kind == "checks":
        on = ((x // period) + (y // period)) % 2 == 0
    else:  # dots
        on = ((x % period) - period // 2) ** 2 + ((y % period) - period // 2) ** 2 <= (period // 3) ** 2
        on = ~on
    return np.where(on, 1.0, 0.55)


def parse_shapes_source(rest: str, spec: str) -> ShapesSource:
    """`shapes[:N][?split=test&photos=M&size=64&seed=0]` (the part after `shapes`) -> ShapesSource."""
    from benchmark.stimuli.sources import IMAGE_SOURCE_FORMS, _int_option, _options

    body, _, query = rest.partition("?")
    options = _options(query, spec, {"split", "photos", "size", "seed"})
    kwargs: dict[str, Any] = {}
    if body:
        if not body.startswith(":") or not body[1:].isdigit():
            raise ConfigError(f"Image source {spec!r}: expected shapes or shapes:N. Valid forms: {IMAGE_SOURCE_FORMS}.")
        kwargs["n_shapes"] = int(body[1:])
    for key, name in (("photos", "n_photos"), ("size", "size"), ("seed", "seed")):
        value = _int_option(options, key, spec)
        if value is not None:
            kwargs[name] = value
    if "split" in options:
        kwargs["split"] = options["split"]
    return ShapesSource(**kwargs)

"""The simulated stimuli: each unit's visual concept, its rendered images, and its activation map on any image.

Reference images show the unit's concept with strength ~clarity, blended with a random distractor, so an
image-similarity proxy can recover the clarity from the pictures alone; each task's queries show their side's
concept as strongly as the task's planted query typicality (drawn around the unit's clarity), which humans see. `concept_activation_map` gives a simulated unit's response (hue match x stripe-filter energy).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import fftconvolve

from benchmark.api.errors import DataValidationError
from benchmark.api.types import MODES
from benchmark.data.simulate.config import _RNG_IMAGES, _SHAPES, SimulationConfig
from benchmark.data.simulate.observer import _sigmoid

_BACKGROUND = 0.3
_QUERY_STRENGTH = 0.85
_QUERY_FLOOR = 0.1  # strength of the concept in a query of typicality 0
_QUERY_NOISE = 0.08


@dataclass(frozen=True)
class UnitConcept:
    """The visual concept a unit responds to; its min images show the opposite concept."""

    hue: float  # in [0, 1)
    orientation: float  # stripe orientation in radians
    frequency: float  # stripe cycles per image
    shape: int  # index into _SHAPES

    def opposite(self) -> UnitConcept:
        """The complementary hue, orthogonal stripes and the next shape."""
        return UnitConcept(
            hue=(self.hue + 0.5) % 1.0,
            orientation=(self.orientation + math.pi / 2) % math.pi,
            frequency=self.frequency,
            shape=(self.shape + 1) % len(_SHAPES),
        )


@dataclass(frozen=True)
class UnitImages:
    """A unit's stimuli as uint8 RGB arrays; side 0 is max, side 1 is min."""

    natural: np.ndarray  # (n_batches, 2, K + 1, S, S, 3); index K is the query, K - 1 the most extreme bin
    optimized: np.ndarray  # (n_batches, 2, K, S, S, 3): feature-visualisation references


# ------------------------------------------------------------------------------------------------- rendering


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    centres = (np.arange(size) + 0.5) / size - 0.5
    return np.meshgrid(centres, centres, indexing="ij")


def _pure_hue(hue: np.ndarray) -> np.ndarray:
    """Fully saturated RGB of each hue in [0, 1): (n,) -> (n, 3)."""
    h6 = (np.asarray(hue) % 1.0)[:, None] * 6.0
    r = np.abs(h6 - 3.0) - 1.0
    g = 2.0 - np.abs(h6 - 2.0)
    b = 2.0 - np.abs(h6 - 4.0)
    return np.clip(np.concatenate([r, g, b], axis=1), 0.0, 1.0)


def _shape_mask(shape: np.ndarray, centre: np.ndarray, size: int) -> np.ndarray:
    """Soft masks (n, S, S) of each image's shape around its centre."""
    y, x = _grid(size)
    dy = y[None] - centre[:, 0, None, None]
    dx = x[None] - centre[:, 1, None, None]
    radius = np.stack([np.hypot(dx, dy) / 0.32, np.maximum(abs(dx), abs(dy)) / 0.27, (abs(dx) + abs(dy)) / 0.4])
    chosen = radius[shape, np.arange(len(shape))]
    return _sigmoid((1.0 - chosen) * 12.0)


def _striped(
    hue: np.ndarray,
    orientation: np.ndarray,
    frequency: np.ndarray,
    saturation: np.ndarray,
    size: int,
    rng: np.random.Generator,
    value_range: tuple[float, float] = (0.35, 0.95),
) -> np.ndarray:
    """Coloured stripes with a random phase per image: (n, S, S, 3) in [0, 1]."""
    y, x = _grid(size)
    theta = orientation[:, None, None]
    projection = x[None] * np.cos(theta) + y[None] * np.sin(theta)
    phase = rng.uniform(0, 2 * math.pi, len(hue))[:, None, None]
    stripes = 0.5 + 0.5 * np.sin(2 * math.pi * frequency[:, None, None] * projection + phase)
    value = value_range[0] + (value_range[1] - value_range[0]) * stripes
    tint = 1.0 - saturation[:, None] * (1.0 - _pure_hue(hue))  # HSV with V = 1
    return value[..., None] * tint[:, None, None, :]


def _natural_images(
    hue: np.ndarray,
    orientation: np.ndarray,
    frequency: np.ndarray,
    shape: np.ndarray,
    rng: np.random.Generator,
    size: int,
) -> np.ndarray:
    """'Photographs': a striped, coloured shape at a jittered position on a grey background."""
    n = len(hue)
    saturation = rng.uniform(0.55, 0.9, n)
    pattern = _striped(hue, orientation, frequency, saturation, size, rng)
    centre = np.clip(rng.normal(0.0, 0.06, (n, 2)), -0.15, 0.15)
    mask = _shape_mask(shape, centre, size)[..., None]
    return mask * pattern + (1.0 - mask) * _BACKGROUND


def _random_concepts(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return rng.random(n), rng.random(n) * math.pi, rng.uniform(1.5, 4.5, n), rng.integers(0, len(_SHAPES), n)


def _smooth_noise(n: int, size: int, rng: np.random.Generator, grid: int = 4) -> np.ndarray:
    """Low-frequency colour fields (n, S, S, 3) in [0, 1]: a 4x4 random grid upsampled bilinearly."""
    coarse = rng.standard_normal((n, grid, grid, 3))
    position = np.clip((np.arange(size) + 0.5) / size * grid - 0.5, 0, grid - 1)
    low = np.minimum(np.floor(position).astype(int), grid - 2)
    frac = position - low
    interp = np.zeros((size, grid))
    interp[np.arange(size), low] = 1 - frac
    interp[np.arange(size), np.minimum(low + 1, grid - 1)] += frac
    rows = np.einsum("si,nijc->nsjc", interp, coarse)  # two small contractions, far faster than one 3-way einsum
    return _sigmoid(1.5 * np.einsum("nsjc,tj->nstc", rows, interp))


def _side_params(concept: UnitConcept, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per-image concept parameters for an array of slots whose axis 1 is the side (0 max, 1 min)."""
    sides = (concept, concept.opposite())
    side = np.broadcast_to(np.arange(2).reshape(1, 2, *([1] * (len(shape) - 2))), shape).ravel()
    return {
        name: np.array([getattr(s, name) for s in sides])[side]
        for name in ("hue", "orientation", "frequency", "shape")
    }


def _bin_strength(n_references: int) -> np.ndarray:
    """Concept strength by bin: the most extreme bin (K - 1) shows the concept most."""
    return 0.75 + 0.25 * np.arange(n_references) / max(n_references - 1, 1)


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)


def render_unit_images(
    concept: UnitConcept,
    clarity: Mapping[str, float],
    *,
    n_batches: int,
    n_references: int,
    image_size: int,
    rng: np.random.Generator,
    query_typicality: np.ndarray | None = None,
) -> UnitImages:
    """Render one unit's natural exemplars (references + query per batch and side) and optimized references.

    `clarity` maps "natural" and "optimized" to the unit's clarity in [0, 1]; references show the concept with
    strength ~clarity blended with a random distractor (natural) or smooth colour noise (optimized).
    `query_typicality` (n_batches, 2: max, min) in [0, 1] sets how strongly each task's queries show their side's
    concept (default: a fixed, clear strength).
    """
    k, s = n_references, image_size
    slots = (n_batches, 2, k + 1)
    n = int(np.prod(slots))
    p = _side_params(concept, slots)
    concept_images = _natural_images(p["hue"], p["orientation"], p["frequency"], p["shape"], rng, s)
    distractors = _natural_images(*_random_concepts(n, rng), rng, s)
    c_nat = float(clarity["natural"])
    strength = np.concatenate([c_nat * _bin_strength(k), [_QUERY_STRENGTH]])
    noise_sd = np.concatenate([np.full(k, 0.05 + 0.1 * (1.0 - c_nat)), [_QUERY_NOISE]])
    weight = np.broadcast_to(strength, slots).copy()
    if query_typicality is not None:
        weight[:, :, k] = _QUERY_FLOOR + (_QUERY_STRENGTH - _QUERY_FLOOR) * np.asarray(query_typicality, dtype=float)
    weight = weight.reshape(n, 1, 1, 1)
    sd = np.broadcast_to(noise_sd, slots).reshape(n, 1, 1, 1)
    natural = weight * concept_images + (1 - weight) * distractors + sd * rng.standard_normal(concept_images.shape)

    opt_slots = (n_batches, 2, k)
    m = int(np.prod(opt_slots))
    q = _side_params(concept, opt_slots)
    visualisations = _striped(q["hue"], q["orientation"], q["frequency"], np.ones(m), s, rng, value_range=(0.1, 1.0))
    c_opt = float(clarity["optimized"])
    opt_weight = np.broadcast_to(c_opt * _bin_strength(k), opt_slots).reshape(m, 1, 1, 1)
    optimized = opt_weight * visualisations + (1 - opt_weight) * _smooth_noise(m, s, rng)
    optimized = optimized + 0.02 * rng.standard_normal(optimized.shape)
    return UnitImages(
        natural=_to_uint8(natural).reshape(*slots, s, s, 3),
        optimized=_to_uint8(optimized).reshape(*opt_slots, s, s, 3),
    )


def _unit_images(units: pd.DataFrame, config: SimulationConfig) -> Iterator[tuple[pd.Series, UnitImages]]:
    """Render every unit's images, each from its own seeded stream (so any one unit can be re-rendered alone)."""
    for _, unit in units.iterrows():
        concept = UnitConcept(
            float(unit["hue"]), float(unit["orientation"]), float(unit["frequency"]), int(unit["shape"])
        )
        rng = np.random.default_rng([config.seed, _RNG_IMAGES, int(unit["unit_id"])])
        clarity = {mode: float(unit[f"clarity_{mode}"]) for mode in MODES}
        yield unit, render_unit_images(
            concept,
            clarity,
            n_batches=config.n_batches,
            n_references=config.n_references,
            image_size=config.image_size,
            rng=rng,
            query_typicality=np.asarray(unit["query_typicality"], dtype=float),
        )


# ---------------------------------------------------------------------------------------------- activation maps

_MAP_ENVELOPE = 0.5  # Gaussian envelope sd of the stripe filter, in stripe wavelengths


def _hue(image: np.ndarray) -> np.ndarray:
    """Per-pixel HSV hue in [0, 1) of an (H, W, 3) float RGB image (0 where the pixel is grey)."""
    high, low = image.max(axis=-1), image.min(axis=-1)
    chroma = high - low
    safe = np.where(chroma > 0, chroma, 1.0)
    r, g, b = np.moveaxis(image, -1, 0)
    sector = np.select([high == r, high == g], [((g - b) / safe) % 6.0, (b - r) / safe + 2.0], (r - g) / safe + 4.0)
    return np.where(chroma > 0, sector / 6.0, 0.0)


def _stripe_energy(luminance: np.ndarray, orientation: float, frequency: float) -> np.ndarray:
    """Quadrature-pair (complex Gabor) energy at the concept's stripe orientation and frequency, per pixel.

    `luminance` is (n, H, W); frequency is in cycles per image width, like the rendered stripes.
    """
    wavelength = luminance.shape[-1] / frequency
    sigma = _MAP_ENVELOPE * wavelength
    radius = int(math.ceil(2.5 * sigma))
    rows, cols = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(float)
    envelope = np.exp(-(rows**2 + cols**2) / (2 * sigma**2))
    carrier = np.exp(2j * math.pi * (cols * math.cos(orientation) + rows * math.sin(orientation)) / wavelength)
    kernel = envelope * carrier
    kernel -= envelope * (kernel.sum() / envelope.sum())  # zero DC: flat regions give no stripe response
    kernel /= envelope.sum()
    centred = luminance - luminance.mean(axis=(-2, -1), keepdims=True)
    return np.abs(fftconvolve(centred, kernel[None], mode="same", axes=(-2, -1)))


def concept_activation_maps(images: np.ndarray, concept: UnitConcept) -> np.ndarray:
    """Batched concept_activation_map: (n, H, W, 3) images -> (n, H, W) maps."""
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise DataValidationError(f"expected (n, H, W, 3) RGB image arrays, got shape {array.shape}")
    rgb = array.astype(float) / 255.0 if array.dtype == np.uint8 else array.astype(float)
    chroma = rgb.max(axis=-1) - rgb.min(axis=-1)
    hue_match = chroma * np.maximum(np.cos(2 * math.pi * (_hue(rgb) - concept.hue)), 0.0)
    return hue_match * _stripe_energy(rgb.mean(axis=-1), concept.orientation, concept.frequency)


def concept_activation_map(image: np.ndarray, concept: UnitConcept) -> np.ndarray:
    """The (H, W) response of a simulated unit to an (H, W, 3) uint8 image: hue match times stripe energy.

    Hue match is chroma x the rectified cosine between pixel hue and the concept's hue (chroma rather than
    saturation, so that pixel noise on the grey background does not count as colour); stripe energy is the
    response of a complex Gabor filter at the concept's orientation and frequency. Both are >= 0, so the map is
    rectified like a ReLU unit's. The concept's shape is not modelled (the shape only bounds where stripes are).
    """
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise DataValidationError(f"expected an (H, W, 3) RGB image array, got shape {array.shape}")
    return concept_activation_maps(array[None], concept)[0]

"""A planted-observer simulator that writes a dataset shaped like the IMI human-response release.

Every unit (model, layer, channel) gets a clarity c in [0, 1] per mode and a visual concept (hue, stripe
orientation and frequency, shape). Its true median-participant accuracy is
t = accuracy_floor + (accuracy_ceiling - accuracy_floor) * c; a participant with ability offset a ~ N(0, sd)
answers correctly with probability sigmoid(logit(t) + a). The stimulus images carry the clarity: reference
images show the unit's concept with strength ~c, blended with a random distractor, so an image-similarity
proxy can recover c from the pictures alone, while the queries always show the concept clearly.
The concept is stored in simulation/truth.csv, so SimulatedActivationMaps can give each unit's activation map on
any image (concept_activation_map: hue match x stripe-filter energy) for proxies that need activation maps.

Conventions of the simulated release (as in the real one): `choice` "b" is the max query, "a" the min query,
and `correct` is true exactly when "b" was chosen. Each participation (HIT) covers one model and one mode;
`task_number` numbers the HITs of that (model, mode) experiment from 1. Participants who fail the checks
redo the trial list of an existing HIT, answer at random and go to the lower-quality file.
`button_pressed` 0-5: buttons 0, 1, 2 choose the left query with confidence 3, 2, 1 and buttons 3, 4, 5 the
right query with confidence 1, 2, 3; the max query is on the right unless `switched_queries`.
Demo rows carry their HIT's model and mode with empty layer, channel and batch; catch rows have model
"catch/manual", mode "catch_trial", batch -1 and empty layer and channel.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy import stats
from scipy.signal import fftconvolve
from tqdm.auto import tqdm

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.api.types import MODES

CATCH_MODEL = "catch/manual"
CATCH_MODE = "catch_trial"
SIDES: tuple[str, ...] = ("max", "min")
RELEASE_COLUMNS: tuple[str, ...] = (
    "model",
    "layer",
    "channel",
    "mode",
    "batch",
    "task_id",
    "participant_id",
    "task_number",
    "trial_index",
    "response_index",
    "rt",
    "choice",
    "correct",
    "confidence",
    "button_pressed",
    "switched_queries",
    "catch_trial",
    "is_demo",
    "passed_checks",
    "multi_participation",
)
# The unit's planted concept (UnitConcept fields), so that its activation maps can be recomputed from a release.
CONCEPT_COLUMNS: tuple[str, ...] = ("hue", "orientation", "frequency", "shape")
TRUTH_COLUMNS: tuple[str, ...] = (
    "model",
    "layer",
    "channel",
    "mode",
    "clarity",
    "true_accuracy",
    "n_main_trials",
    *CONCEPT_COLUMNS,
)

# Clarity distributions (Beta shape parameters) per mode; natural exemplars are a bit clearer on average,
# as in Borowski et al. (2021) and the IMI paper. The two modes of a unit share a latent (Gaussian copula).
_CLARITY_BETA: dict[str, tuple[float, float]] = {"natural": (2.0, 1.5), "optimized": (1.5, 1.6)}
_CLARITY_MODE_CORRELATION = 0.6
_MODEL_EFFECT_RANGE = 0.6  # latent shift between the least and the most interpretable model
_GAUSS_HERMITE_NODES = 40
_RT_MIN_MS = 1500.0  # answers are enabled after 1.5 s
_QUERY_STRENGTH = 0.85
_QUERY_NOISE = 0.08
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

_RNG_PLAN, _RNG_TRIALS, _RNG_IMAGES = 0, 1, 2


class SimulationConfig(BaseModel):
    """Parameters of the planted-observer simulation; every number has a validated range."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, ge=0)
    models: tuple[str, ...] = ("simnet_a", "simnet_b", "simnet_c")
    layers_per_model: int = Field(3, ge=1, le=50)
    units_per_layer: int = Field(4, ge=1, le=1000)
    modes: tuple[str, ...] = ("natural", "optimized")
    responses_per_unit: int = Field(30, ge=1, le=10_000, description="main responses per unit and mode")
    trials_per_participant: int = Field(40, ge=1, le=1000, description="main trials per participation")
    catch_per_participant: int = Field(5, ge=0, le=100)
    demo_per_participant: int = Field(5, ge=0, le=100)
    failed_participant_fraction: float = Field(0.1, ge=0.0, le=1.0)
    participant_sd: float = Field(0.3, ge=0.0, le=3.0, description="sd of ability offsets in logit space")
    n_batches: int = Field(5, ge=1, le=100)
    n_references: int = Field(9, ge=1, le=50)
    image_size: int = Field(32, ge=8, le=512)
    accuracy_floor: float = Field(0.5, gt=0.0, lt=1.0)
    accuracy_ceiling: float = Field(0.95, gt=0.0, lt=1.0)

    @field_validator("models")
    @classmethod
    def _check_models(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        if not models:
            raise ValueError("models is empty; give at least one model name, e.g. ('simnet_a',)")
        bad = [m for m in models if not _NAME_PATTERN.match(m)]
        if bad:
            raise ValueError(
                f"model names {bad} are not usable as file names; use letters, digits, '_', '.', '-' only"
            )
        if len(set(models)) != len(models):
            raise ValueError(f"model names must be unique; got {list(models)}")
        return models

    @field_validator("modes")
    @classmethod
    def _check_modes(cls, modes: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in modes if m not in MODES]
        if not modes or unknown or len(set(modes)) != len(modes):
            raise ValueError(f"modes must be a non-empty set of distinct values from {list(MODES)}; got {list(modes)}")
        return modes

    @model_validator(mode="after")
    def _check_accuracy_range(self) -> SimulationConfig:
        if self.accuracy_floor >= self.accuracy_ceiling:
            raise ValueError(
                f"accuracy_floor ({self.accuracy_floor}) must be below accuracy_ceiling ({self.accuracy_ceiling})"
            )
        return self


@dataclass(frozen=True)
class SimulatedRelease:
    """A simulated release: the raw response table (all participants) and the planted per-unit truth."""

    responses: pd.DataFrame
    truth: pd.DataFrame


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


# ---------------------------------------------------------------------------------------------------- planting


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def population_accuracy(median_accuracy: np.ndarray, participant_sd: float) -> np.ndarray:
    """E_a[sigmoid(logit(t) + a)] with a ~ N(0, participant_sd), by Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(_GAUSS_HERMITE_NODES)
    weights = weights / weights.sum()
    logits = _logit(np.asarray(median_accuracy, dtype=float))
    return _sigmoid(logits[..., None] + participant_sd * nodes) @ weights


def _plan_units(config: SimulationConfig) -> pd.DataFrame:
    """One row per unit: name, planted clarity in both modes and its concept (drawn from the plan stream)."""
    rng = np.random.default_rng([config.seed, _RNG_PLAN])
    rows = []
    for model in config.models:
        for layer_number in range(1, config.layers_per_model + 1):
            n_channels = max(config.units_per_layer, 64 * layer_number)
            channels = np.sort(rng.choice(n_channels, size=config.units_per_layer, replace=False))
            rows += [{"model": model, "layer": f"layer{layer_number}", "channel": int(c)} for c in channels]
    units = pd.DataFrame(rows)
    n = len(units)
    shifts = rng.permutation(np.linspace(-0.5, 0.5, len(config.models)) * _MODEL_EFFECT_RANGE)
    shared = rng.standard_normal(n) + units["model"].map(dict(zip(config.models, shifts))).to_numpy()
    rho = _CLARITY_MODE_CORRELATION
    latent_sd = math.sqrt(1 + rho**2 * float(np.var(shifts)))
    for mode in MODES:  # both modes always: optimized queries are natural images
        latent = (rho * shared + math.sqrt(1 - rho**2) * rng.standard_normal(n)) / latent_sd
        a, b = _CLARITY_BETA[mode]
        units[f"clarity_{mode}"] = stats.beta.ppf(stats.norm.cdf(latent), a, b)
    units["hue"] = rng.random(n)
    units["orientation"] = rng.random(n) * math.pi
    units["frequency"] = rng.uniform(1.5, 4.5, n)
    units["shape"] = rng.integers(0, len(_SHAPES), n)
    units.insert(0, "unit_id", np.arange(1, n + 1))
    return units


def _truth_table(units: pd.DataFrame, config: SimulationConfig) -> pd.DataFrame:
    """One row per unit and mode, in unit order; `_median_accuracy` (t) is kept for the trial simulation."""
    n_modes = len(config.modes)
    rows = units.loc[units.index.repeat(n_modes)].reset_index(drop=True)
    modes = np.tile(np.array(config.modes, dtype=object), len(units))
    clarity = np.choose(
        np.tile(np.arange(n_modes), len(units)), [rows[f"clarity_{m}"].to_numpy() for m in config.modes]
    )
    median = config.accuracy_floor + (config.accuracy_ceiling - config.accuracy_floor) * clarity
    return pd.DataFrame(
        {
            "model": pd.array(rows["model"], dtype="string"),
            "layer": pd.array(rows["layer"], dtype="string"),
            "channel": rows["channel"].astype("int64"),
            "mode": pd.array(modes, dtype="string"),
            "clarity": clarity,
            "true_accuracy": population_accuracy(median, config.participant_sd),
            "n_main_trials": np.full(len(rows), config.responses_per_unit, dtype="int64"),
            "hue": rows["hue"].to_numpy(dtype=float),
            "orientation": rows["orientation"].to_numpy(dtype=float),
            "frequency": rows["frequency"].to_numpy(dtype=float),
            "shape": rows["shape"].to_numpy(dtype="int64"),
            "_median_accuracy": median,
        }
    )


# ---------------------------------------------------------------------------------------------------- trials


@dataclass(frozen=True)
class _Hit:
    model: str
    mode: str
    task_number: int
    unit_rows: np.ndarray  # rows of the truth table, one per main trial
    batches: np.ndarray


def _plan_hits(truth: pd.DataFrame, config: SimulationConfig, rng: np.random.Generator) -> list[_Hit]:
    """Deal each unit-mode's responses_per_unit trials over the HITs of its (model, mode) experiment."""
    hits = []
    for model in config.models:
        for mode in config.modes:
            rows = np.flatnonzero(((truth["model"] == model) & (truth["mode"] == mode)).to_numpy())
            # one shuffled round per response keeps every HIT's unit counts within one of each other
            sequence = np.concatenate([rng.permutation(rows) for _ in range(config.responses_per_unit)])
            per_hit = config.trials_per_participant
            for k, start in enumerate(range(0, len(sequence), per_hit)):
                chunk = sequence[start : start + per_hit]
                hits.append(_Hit(model, mode, k + 1, chunk, _distinct_batches(chunk, config.n_batches, rng)))
    return hits


def _distinct_batches(chunk: np.ndarray, n_batches: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform batch per trial, without repeats for a unit seen several times in one HIT (while batches last)."""
    batches = np.empty(len(chunk), dtype=int)
    for unit in np.unique(chunk):
        where = np.flatnonzero(chunk == unit)
        batches[where] = np.resize(rng.permutation(n_batches), len(where))
    return batches


def _confidence(p_correct: np.ndarray, correct: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-3; higher for easier trials and for correct answers."""
    q = np.clip(0.2 + 1.2 * (p_correct - 0.5) + np.where(correct, 0.15, -0.15), 0.05, 0.95)
    return 1 + rng.binomial(2, q)


def _reaction_times(p_correct: np.ndarray, fast: bool, rng: np.random.Generator) -> np.ndarray:
    """Milliseconds, never below the 1.5 s answer lock; harder trials are slower, careless participants faster."""
    log_mean = 6.0 if fast else 7.3 + 0.8 * (0.95 - p_correct)
    return np.round(_RT_MIN_MS + rng.lognormal(log_mean, 0.5, size=len(p_correct)), 1)


def _participation_rows(
    hit: _Hit,
    passed: bool,
    truth: pd.DataFrame,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The rows of one participation: demo trials first, then main and catch trials in random order."""
    n_main, n_catch, n_demo = len(hit.unit_rows), config.catch_per_participant, config.demo_per_participant
    if passed:
        ability = rng.normal(0.0, config.participant_sd)
        median = truth["_median_accuracy"].to_numpy()[hit.unit_rows]
        p_main = _sigmoid(_logit(median) + ability)
        p_catch, p_demo = 0.97, 1.0
    else:
        p_main, p_catch, p_demo = np.full(n_main, 0.5), 0.5, 0.6
    main_correct = rng.random(n_main) < p_main
    catch_correct = rng.random(n_catch) < p_catch
    if passed:  # passing participants met the published catch criterion (>= 80 % correct)
        allowed_wrong = int(math.floor(0.2 * n_catch + 1e-9))
        wrong = np.flatnonzero(~catch_correct)
        catch_correct[rng.permutation(wrong)[allowed_wrong:]] = True
    demo_correct = rng.random(n_demo) < p_demo

    kind = np.concatenate([np.zeros(n_main, int), np.ones(n_catch, int)])
    order = rng.permutation(len(kind))
    kind = np.concatenate([np.full(n_demo, 2), kind[order]])  # 0 main, 1 catch, 2 demo
    main_pos = order[order < n_main]  # main trials in session order
    correct = np.concatenate([demo_correct, np.concatenate([main_correct, catch_correct])[order]])
    p_all = np.concatenate([np.full(n_demo, p_demo), np.concatenate([p_main, np.full(n_catch, p_catch)])[order]])

    is_main, is_catch, is_demo = kind == 0, kind == 1, kind == 2
    n = len(kind)
    unit_rows = np.full(n, -1)
    unit_rows[is_main] = hit.unit_rows[main_pos]
    batch = np.full(n, -1)
    batch[is_main] = hit.batches[main_pos]
    channel = np.where(is_main, truth["channel"].to_numpy()[np.maximum(unit_rows, 0)], -1)  # -1: empty
    layer = np.where(is_main, truth["layer"].to_numpy()[np.maximum(unit_rows, 0)], None)

    confidence = _confidence(p_all, correct, rng)
    switched = rng.random(n) < 0.5
    chose_right = correct ^ switched  # unswitched: the max query ("b") is on the right
    button = np.where(chose_right, 2 + confidence, 3 - confidence)
    return {
        "model": np.where(is_catch, CATCH_MODEL, hit.model),
        "layer": layer,
        "channel": channel,
        "mode": np.where(is_catch, CATCH_MODE, hit.mode),
        "batch": np.where(is_demo, -2, batch),  # -2 marks "empty" until the nullable column is built
        "task_number": np.full(n, hit.task_number),
        "trial_index": np.arange(n),
        "response_index": np.where(is_demo, -1, np.arange(n) - n_demo),
        "rt": _reaction_times(p_all, fast=not passed, rng=rng),
        "choice": np.where(correct, "b", "a"),
        "correct": correct,
        "confidence": confidence,
        "button_pressed": button,
        "switched_queries": switched,
        "catch_trial": is_catch,
        "is_demo": is_demo,
        "passed_checks": np.full(n, passed),
    }


def _simulate_trials(truth: pd.DataFrame, config: SimulationConfig) -> pd.DataFrame:
    rng = np.random.default_rng([config.seed, _RNG_TRIALS])
    hits = _plan_hits(truth, config, rng)
    n_failed = int(round(config.failed_participant_fraction * len(hits)))
    failed_hits = rng.choice(len(hits), size=n_failed, replace=n_failed > len(hits))
    participations = [(h, True) for h in range(len(hits))] + [(int(h), False) for h in failed_hits]
    parts = []
    for number, index in enumerate(rng.permutation(len(participations)), start=1):
        hit_index, passed = participations[index]
        rows = _participation_rows(hits[hit_index], passed, truth, config, rng)
        rows["participant_id"] = np.full(len(rows["model"]), f"P{number:04d}")
        rows["task_id"] = np.full(len(rows["model"]), f"task_{number:04d}")
        parts.append(rows)
    columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return _release_frame(columns)


def _release_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Assemble the release-shaped table with nullable integer columns where the release leaves cells empty."""
    out = pd.DataFrame(
        {
            "model": pd.array(columns["model"], dtype="string"),
            "layer": pd.array(columns["layer"], dtype="string"),
            "channel": _nullable_int(columns["channel"], columns["channel"] < 0),
            "mode": pd.array(columns["mode"], dtype="string"),
            "batch": _nullable_int(columns["batch"], columns["batch"] == -2),
            "task_id": pd.array(columns["task_id"], dtype="string"),
            "participant_id": pd.array(columns["participant_id"], dtype="string"),
            "task_number": columns["task_number"].astype("int64"),
            "trial_index": columns["trial_index"].astype("int64"),
            "response_index": _nullable_int(columns["response_index"], columns["response_index"] < 0),
            "rt": columns["rt"].astype("float64"),
            "choice": pd.array(columns["choice"], dtype="string"),
            "correct": columns["correct"].astype(bool),
            "confidence": columns["confidence"].astype("int64"),
            "button_pressed": columns["button_pressed"].astype("int64"),
            "switched_queries": columns["switched_queries"].astype(bool),
            "catch_trial": columns["catch_trial"].astype(bool),
            "is_demo": columns["is_demo"].astype(bool),
            "passed_checks": columns["passed_checks"].astype(bool),
            "multi_participation": np.zeros(len(columns["model"]), dtype=bool),
        }
    )
    return out[list(RELEASE_COLUMNS)]


def _nullable_int(values: np.ndarray, empty: np.ndarray) -> pd.arrays.IntegerArray:
    return pd.arrays.IntegerArray(np.where(empty, 0, values).astype("int64"), np.asarray(empty, dtype=bool))


def _simulate(config: SimulationConfig) -> tuple[pd.DataFrame, SimulatedRelease]:
    units = _plan_units(config)
    truth = _truth_table(units, config)
    responses = _simulate_trials(truth, config)
    return units, SimulatedRelease(responses=responses, truth=truth[list(TRUTH_COLUMNS)].copy())


def simulate_responses(config: SimulationConfig = SimulationConfig()) -> SimulatedRelease:
    """Simulate the release's response table and the planted truth in memory (no images)."""
    return _simulate(config)[1]


def expected_ceiling(truth: pd.DataFrame, mode: str) -> float:
    """Expected correlation of true and observed per-unit accuracy under binomial noise (sqrt of reliability).

    sqrt(var(t) / (var(t) + mean(t (1 - t) / n))) over the units of `mode`, variances over units (ddof 0).
    Participant heterogeneity adds a little extra noise to observed accuracies; it is ignored here, so the
    value is a slight overestimate. NaN when the true accuracies do not vary (the correlation is undefined).
    """
    missing = [c for c in ("mode", "true_accuracy", "n_main_trials") if c not in truth.columns]
    if missing:
        raise DataValidationError(f"truth table is missing column(s) {missing}; expected {list(TRUTH_COLUMNS)}")
    rows = truth[truth["mode"] == mode]
    if rows.empty:
        raise ConfigError(
            f"no units of mode {mode!r} in the truth table; valid modes here: {sorted(truth['mode'].unique())}"
        )
    t = rows["true_accuracy"].to_numpy(dtype=float)
    n = rows["n_main_trials"].to_numpy(dtype=float)
    signal = float(np.var(t))
    if signal == 0.0:
        return float("nan")
    noise = float(np.mean(t * (1.0 - t) / n))
    return math.sqrt(signal / (signal + noise))


# ---------------------------------------------------------------------------------------------------- images

_SHAPES: tuple[str, ...] = ("disk", "square", "diamond")
_BACKGROUND = 0.3


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
) -> UnitImages:
    """Render one unit's natural exemplars (references + query per batch and side) and optimized references.

    `clarity` maps "natural" and "optimized" to the unit's clarity in [0, 1]; references show the concept with
    strength ~clarity blended with a random distractor (natural) or smooth colour noise (optimized).
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
    weight = np.broadcast_to(strength, slots).reshape(n, 1, 1, 1)
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
        )


# ---------------------------------------------------------------------------------------------------- writing


def _save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array, mode="RGB").save(path, format="PNG", compress_level=1)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _atomic_write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _write_unit(
    unit: pd.Series, images: UnitImages, root: Path, config: SimulationConfig
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Write one unit's PNGs; return its natural and optimized file-map entries (batch -> name -> path)."""
    stem = f"{unit['model']}_{unit['layer']}_{unit['channel']}"
    synset = f"n9{int(unit['unit_id']):07d}"
    (root / "imagenet_train" / synset).mkdir(parents=True, exist_ok=True)
    write_optimized = "optimized" in config.modes
    if write_optimized:
        (root / "optimized_images" / unit["model"]).mkdir(parents=True, exist_ok=True)
    natural_map: dict[str, dict[str, str]] = {}
    optimized_map: dict[str, dict[str, str]] = {}
    for b in range(config.n_batches):
        natural_map[f"batch_{b}"] = nat = {}
        for side_index, side in enumerate(SIDES):
            for i in range(config.n_references + 1):
                relative = f"{synset}/{stem}_b{b}_{side}_{i}.png"
                _save_png(images.natural[b, side_index, i], root / "imagenet_train" / relative)
                nat[f"{side}_{i}.png"] = relative
        if not write_optimized:
            continue
        optimized_map[f"batch_{b}"] = opt = {}
        for side_index, side in enumerate(SIDES):
            for i in range(config.n_references):
                relative = f"optimized_images/{unit['model']}/{stem}_b{b}_{side}_{i}.png"
                _save_png(images.optimized[b, side_index, i], root / relative)
                opt[f"{side}_{i}.png"] = relative
    return natural_map, optimized_map


def write_release(
    out_dir: str | Path, config: SimulationConfig = SimulationConfig(), *, progress: bool = False
) -> Path:
    """Write a simulated release (responses, stimuli, file maps, planted truth) under `out_dir`; return it."""
    root = Path(out_dir)
    for sub in ("human_responses", "image_data", "imagenet_train", "simulation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    units, release = _simulate(config)
    responses = release.responses

    natural_map: dict[str, dict[str, dict]] = {m: {} for m in config.models}
    optimized_map: dict[str, dict[str, dict]] = {m: {} for m in config.models}
    rendered = _unit_images(units, config)
    for unit, images in tqdm(rendered, total=len(units), desc="simulated stimuli", unit="unit", disable=not progress):
        key = f"{unit['layer']}/channel_{unit['channel']}"
        natural_map[unit["model"]][key], optimized_map[unit["model"]][key] = _write_unit(unit, images, root, config)

    _atomic_write_text(root / "image_data" / "imagenet_exemplars_file_map.json", json.dumps(natural_map, indent=1))
    if "optimized" in config.modes:
        _atomic_write_text(root / "image_data" / "optimized_file_map.json", json.dumps(optimized_map, indent=1))
    passed = responses["passed_checks"].to_numpy(dtype=bool)
    _atomic_write_csv(responses[passed], root / "human_responses" / "responses_main.csv")
    _atomic_write_csv(responses[~passed], root / "human_responses" / "responses_lower_quality.csv")
    _atomic_write_csv(responses, root / "human_responses" / "responses_all.csv")
    _atomic_write_csv(release.truth, root / "simulation" / "truth.csv")
    _atomic_write_text(root / "simulation" / "config.json", config.model_dump_json(indent=2))
    return root


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


class SimulatedActivationMaps:
    """Activation maps of a simulated release's units, computed from each unit's planted concept (truth.csv).

    Implements the ActivationMapSource protocol of benchmark.proxies.units: call with (model, layer, channel,
    paths) to get {str(path): (H, W) map} on the images as stored (no resize).
    """

    def __init__(self, release_root: str | Path) -> None:
        self.release_root = Path(release_root)
        self._concepts = _read_concepts(self.release_root / "simulation" / "truth.csv")

    def concept(self, model: str, layer: str, channel: int) -> UnitConcept:
        """The planted concept of one unit."""
        key = (str(model), str(layer), int(channel))
        if key not in self._concepts:
            known = sorted(self._concepts)[:5]
            raise DataValidationError(
                f"unit {key} is not in the simulated release {self.release_root}; known units include {known}"
            )
        return self._concepts[key]

    def __call__(self, model: str, layer: str, channel: int, paths: Iterable[str | Path]) -> dict[str, np.ndarray]:
        """{str(path): activation map} of one unit on the images at `paths`."""
        concept = self.concept(model, layer, channel)
        by_size: dict[tuple[int, ...], dict[str, np.ndarray]] = {}
        for path in paths:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"))
            by_size.setdefault(array.shape, {})[str(path)] = array
        maps: dict[str, np.ndarray] = {}
        for images in by_size.values():  # one batched filter per image size
            maps.update(zip(images, concept_activation_maps(np.stack(list(images.values())), concept)))
        return maps


def _read_concepts(truth_file: Path) -> dict[tuple[str, str, int], UnitConcept]:
    if not truth_file.is_file():
        raise DataValidationError(
            f"planted truth not found: expected {truth_file}; pass the root of a release written by write_release"
        )
    truth = pd.read_csv(truth_file)
    missing = [c for c in ("model", "layer", "channel", *CONCEPT_COLUMNS) if c not in truth.columns]
    if missing:
        raise DataValidationError(
            f"{truth_file} lacks the concept column(s) {missing} (written by an older simulator); "
            "rewrite the release with benchmark.data.simulate.write_release"
        )
    units = truth.drop_duplicates(["model", "layer", "channel"])
    return {
        (str(r.model), str(r.layer), int(r.channel)): UnitConcept(
            float(r.hue), float(r.orientation), float(r.frequency), int(r.shape)
        )
        for r in units.itertuples(index=False)
    }

"""The planted observers: units with a clarity per mode, participants with an ability, and their trials.

A unit's true median-participant accuracy is t = accuracy_floor + (accuracy_ceiling - accuracy_floor) * c;
a participant with ability offset a ~ N(0, sd) answers correctly with probability sigmoid(logit(t) + a).
`simulate_responses` gives the release-shaped response table and the planted truth in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.api.types import MODES
from benchmark.data.simulate.config import (
    _RNG_PLAN,
    _RNG_TRIALS,
    _SHAPES,
    CATCH_MODE,
    CATCH_MODEL,
    RELEASE_COLUMNS,
    TRUTH_COLUMNS,
    SimulationConfig,
)

# Clarity distributions (Beta shape parameters) per mode; natural exemplars are clearer on average (mean true
# accuracy about 0.8 vs 0.7, as in Borowski et al. 2021 and the IMI paper). The two modes of a unit share a
# latent (Gaussian copula).
_CLARITY_BETA: dict[str, tuple[float, float]] = {"natural": (3.0, 1.1), "optimized": (1.2, 2.4)}
_CLARITY_MODE_CORRELATION = 0.6
# Latent shift between the least and the most interpretable model: natural model means of true accuracy then
# span about 0.10, as in IMI.
_MODEL_EFFECT_RANGE = 0.8
# A unit's queries are typical of their side to a degree that partly follows its natural clarity and partly varies
# on its own (what the query images show beyond the references), with per-task jitter; a task's median accuracy
# mixes the references' clarity and its queries' typicality.
_QUERY_TYPICALITY_SD = 0.15
_QUERY_WEIGHT = 0.6
SIMULATOR_VERSION = "2"
_GAUSS_HERMITE_NODES = 40
_RT_MIN_MS = 1500.0  # answers are enabled after 1.5 s


@dataclass(frozen=True)
class SimulatedRelease:
    """A simulated release: the raw response table (all participants) and the planted per-unit truth."""

    responses: pd.DataFrame
    truth: pd.DataFrame


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
    shift = units["model"].map(dict(zip(config.models, shifts))).to_numpy()
    shared = rng.standard_normal(n)
    rho = _CLARITY_MODE_CORRELATION
    latent_sd = math.sqrt(1 + float(np.var(shifts)))
    for mode in MODES:  # both modes always: optimized queries are natural images
        latent = (rho * shared + math.sqrt(1 - rho**2) * rng.standard_normal(n) + shift) / latent_sd
        a, b = _CLARITY_BETA[mode]
        units[f"clarity_{mode}"] = stats.beta.ppf(stats.norm.cdf(latent), a, b)
    unit_typicality = 0.4 * units["clarity_natural"].to_numpy() + 0.6 * rng.random(n)
    typicality = unit_typicality[:, None, None] + _QUERY_TYPICALITY_SD * rng.standard_normal((n, config.n_batches, 2))
    units["query_typicality"] = list(np.clip(typicality, 0.02, 1.0))  # (n_batches, 2: max, min) per unit
    units["hue"] = rng.random(n)
    units["orientation"] = rng.random(n) * math.pi
    units["frequency"] = rng.uniform(1.5, 4.5, n)
    units["shape"] = rng.integers(0, len(_SHAPES), n)
    units.insert(0, "unit_id", np.arange(1, n + 1))
    return units


def _truth_table(units: pd.DataFrame, config: SimulationConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per unit and mode, in unit order; `_median_accuracy` (t) is kept for the trial simulation."""
    n_modes = len(config.modes)
    rows = units.loc[units.index.repeat(n_modes)].reset_index(drop=True)
    modes = np.tile(np.array(config.modes, dtype=object), len(units))
    clarity = np.choose(
        np.tile(np.arange(n_modes), len(units)), [rows[f"clarity_{m}"].to_numpy() for m in config.modes]
    )
    typicality = np.stack(list(rows["query_typicality"])).mean(axis=2)  # (rows, n_batches)
    mixed = (1 - _QUERY_WEIGHT) * clarity[:, None] + _QUERY_WEIGHT * typicality
    batch_median = config.accuracy_floor + (config.accuracy_ceiling - config.accuracy_floor) * mixed
    median = batch_median.mean(axis=1)
    table = pd.DataFrame(
        {
            "model": pd.array(rows["model"], dtype="string"),
            "layer": pd.array(rows["layer"], dtype="string"),
            "channel": rows["channel"].astype("int64"),
            "mode": pd.array(modes, dtype="string"),
            "clarity": clarity,
            "true_accuracy": population_accuracy(batch_median, config.participant_sd).mean(axis=1),
            "n_main_trials": np.full(len(rows), config.responses_per_unit, dtype="int64"),
            "hue": rows["hue"].to_numpy(dtype=float),
            "orientation": rows["orientation"].to_numpy(dtype=float),
            "frequency": rows["frequency"].to_numpy(dtype=float),
            "shape": rows["shape"].to_numpy(dtype="int64"),
            "_median_accuracy": median,
        }
    )
    return table, batch_median  # batch_median (rows, n_batches): each task's median-participant accuracy


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
    batch_median: np.ndarray,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The rows of one participation: demo trials first, then main and catch trials in random order."""
    n_main, n_catch, n_demo = len(hit.unit_rows), config.catch_per_participant, config.demo_per_participant
    if passed:
        ability = rng.normal(0.0, config.participant_sd)
        median = batch_median[hit.unit_rows, hit.batches]
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


def _simulate_trials(truth: pd.DataFrame, batch_median: np.ndarray, config: SimulationConfig) -> pd.DataFrame:
    rng = np.random.default_rng([config.seed, _RNG_TRIALS])
    hits = _plan_hits(truth, config, rng)
    n_failed = int(round(config.failed_participant_fraction * len(hits)))
    failed_hits = rng.choice(len(hits), size=n_failed, replace=n_failed > len(hits))
    participations = [(h, True) for h in range(len(hits))] + [(int(h), False) for h in failed_hits]
    parts = []
    for number, index in enumerate(rng.permutation(len(participations)), start=1):
        hit_index, passed = participations[index]
        rows = _participation_rows(hits[hit_index], passed, truth, batch_median, config, rng)
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
    truth, batch_median = _truth_table(units, config)
    responses = _simulate_trials(truth, batch_median, config)
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


def realised_correlation(responses: pd.DataFrame, truth: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per mode: the realised Pearson r of true and observed per-unit accuracy (passed participants' main trials),
    the analytic expectation (`expected_ceiling`), and the range of per-model mean true accuracy."""
    main = responses[responses["passed_checks"] & ~responses["catch_trial"] & ~responses["is_demo"]]
    observed = main.groupby(["model", "layer", "channel", "mode"], observed=True)["correct"].mean()
    result: dict[str, dict[str, float]] = {}
    for mode in sorted(truth["mode"].unique()):
        rows = truth[truth["mode"] == mode]
        keys = list(zip(rows["model"], rows["layer"], rows["channel"], rows["mode"]))
        seen = observed.reindex(pd.MultiIndex.from_tuples(keys)).to_numpy(dtype=float)
        t = rows["true_accuracy"].to_numpy(dtype=float)
        ok = np.isfinite(seen)
        r = float(np.corrcoef(t[ok], seen[ok])[0, 1]) if ok.sum() >= 3 and np.ptp(t[ok]) > 0 else float("nan")
        means = rows.groupby("model")["true_accuracy"].mean()
        result[str(mode)] = {"realised_r": r, "expected_r": expected_ceiling(truth, mode),
                             "model_mean_range": float(means.max() - means.min()),
                             "mean_true_accuracy": float(t.mean())}
    return result

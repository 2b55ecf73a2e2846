"""Validate proxy metrics against human accuracy with held-out folds: predictions, scores, CIs, ceilings.

`validate_metric` is the core: per mode (natural, optimized) it fits a clone of the metric on the training
folds only, predicts each held-out unit exactly once, and scores the predictions against the human per-unit
accuracy. `benchmark.validation.run.run_validation(config)` is the whole pipeline behind `imibench proxy validate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from benchmark.api.errors import ConfigError, DataValidationError, SourceUnavailableError
from benchmark.api.types import MODES, NoiseCeiling
from benchmark.proxies.base import ProxyMetric, ProxyUnit, proxies
from benchmark.proxies.plugins import load_metric
from benchmark.validation import metrics as vm
from benchmark.validation.crossval import _cross_validate, _fresh_clone
from benchmark.validation.human import _check_aligned
from benchmark.validation.report import (
    DataProvenance,
    MetricInfo,
    MetricReport,
    ModelSummary,
    ModeResult,
    SchemeInfo,
    Score,
    UnitPrediction,
    make_provenance,
)
from benchmark.validation.splits import check_scheme, make_splits

Ceilings = Mapping[str, Mapping[str, NoiseCeiling]]  # mode -> method ("split_half", "binomial") -> ceiling


@dataclass(frozen=True)
class ScoreFunction:
    """A validation metric as the harness runs it, and which per-unit labels it takes."""

    function: Callable[..., float]
    per_model: bool = False  # takes `models=` (per-unit model labels) and scores model means
    per_fold: bool = False  # takes `groups=` (the test fold of each unit)


# Higher is better for the correlations; lower for mae and calibration_error; calibration_slope is ideal at 1.
SCORES: dict[str, ScoreFunction] = {
    "pearson": ScoreFunction(vm.pearson_score),
    "spearman": ScoreFunction(vm.spearman_score),
    "kendall": ScoreFunction(vm.kendall_score),
    "within_fold_pearson": ScoreFunction(vm.within_group_pearson_score, per_fold=True),
    "model_pearson": ScoreFunction(vm.model_pearson_score, per_model=True),
    "model_spearman": ScoreFunction(vm.model_spearman_score, per_model=True),
    "mae": ScoreFunction(vm.mean_absolute_error),
    "calibration_error": ScoreFunction(vm.calibration_error),
    "calibration_slope": ScoreFunction(vm.calibration_slope),
}
CEILING_METHODS: tuple[str, ...] = ("split_half", "binomial")


# ------------------------------------------------------------------------------------------- one metric


def resolve_metric(metric: ProxyMetric | str) -> tuple[str, ProxyMetric]:
    """(name, instance) of a metric given as an instance, a registry name or a `module:Name` plugin."""
    if isinstance(metric, ProxyMetric):
        return _registered_name(type(metric)), metric
    if isinstance(metric, str):
        return metric, load_metric(metric)
    raise ConfigError(
        f"A metric must be a ProxyMetric instance, a registry name or 'module:Name'; got {type(metric).__name__}."
    )


def _registered_name(cls: type) -> str:
    """The registry name of `cls`, or its class name for an unregistered (plugin) metric."""
    return next((name for name in proxies.names() if proxies.get(name) is cls), cls.__name__)


def validate_metric(
    metric: ProxyMetric | str,
    units: Sequence[ProxyUnit],
    human: pd.DataFrame,
    ceilings: Ceilings,
    *,
    scheme: str = "lomo",
    k: int = 5,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = True,
    data: DataProvenance | None = None,
    name: str | None = None,
) -> MetricReport:
    """Validate one metric per mode on held-out folds; a metric whose inputs are absent is reported as skipped.

    `name` labels the report (default: the registry name, the spec string, or the class name).
    """
    start = time.perf_counter()
    check_scheme(scheme)
    resolved_name, instance = resolve_metric(metric)
    name = name or resolved_name
    y = _check_aligned(units, human)
    scheme_info = SchemeInfo(name=scheme, k=k if scheme == "kfold" else None, seed=seed, n_boot=n_boot,
                             confidence=confidence)

    def finish(**fields: Any) -> MetricReport:
        provenance = make_provenance(seed=seed, wall_time_s=time.perf_counter() - start, data=data)
        return MetricReport(metric=metric_info(name, instance), scheme=scheme_info, provenance=provenance, **fields)

    missing = instance.missing_inputs(units)
    if missing:
        return finish(status="skipped", skip_reason=_missing_reason(missing))
    try:
        modes = [
            _validate_mode(instance, name, units, y, human, ceilings, mode, scheme=scheme, k=k, n_boot=n_boot,
                           confidence=confidence, seed=seed, progress=progress)
            for mode in _modes_of(units)
        ]
    except SourceUnavailableError as err:  # e.g. embedder weights absent offline: an input the metric lacks
        return finish(status="skipped", skip_reason=f"an input is unavailable: {err}")
    return finish(status="ok", modes=modes)


def _missing_reason(missing: list[str]) -> str:
    hints = {"activation_maps": "activation maps of the units (a model or a simulated release's map source)"}
    return "missing input(s): " + "; ".join(f"{m} = {hints.get(m, m)}" for m in missing)


def _modes_of(units: Sequence[ProxyUnit]) -> list[str]:
    present = {u.mode for u in units}
    if not present:
        raise DataValidationError("No units to validate on: the unit list is empty.")
    return [m for m in MODES if m in present] + sorted(present - set(MODES))


def metric_info(name: str, metric: ProxyMetric) -> MetricInfo:
    """The report's description of a metric instance."""
    cls = type(metric)
    return MetricInfo(
        name=name,
        class_path=f"{cls.__module__}:{cls.__qualname__}",
        version=str(cls.version),
        params={key: _json_safe(value) for key, value in metric.get_params(deep=False).items()},
        requires=sorted(cls.requires),
    )


def _json_safe(value: object) -> object:
    """Plain JSON types pass through (recursively); anything else becomes its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return repr(value)


def _validate_mode(
    metric: ProxyMetric,
    name: str,
    units: Sequence[ProxyUnit],
    y_all: np.ndarray,
    human: pd.DataFrame,
    ceilings: Ceilings,
    mode: str,
    *,
    scheme: str,
    k: int,
    n_boot: int,
    confidence: float,
    seed: int,
    progress: bool,
) -> ModeResult:
    """Fit and test within one mode."""
    index = np.array([i for i, u in enumerate(units) if u.mode == mode])
    mode_units = [units[i] for i in index]
    y = y_all[index]
    splits = make_splits(mode_units, scheme, k=k, seed=seed)
    predicted, fold_of = _cross_validate(metric, mode_units, y, splits, progress=progress, desc=f"{name} ({mode})")
    models = np.array([u.model for u in mode_units], dtype=object)
    scores = {key: _score(spec, y, predicted, models, fold_of, n_boot, confidence, seed)
              for key, spec in SCORES.items()}
    mode_ceilings, notes = _mode_ceilings(ceilings, mode)
    n_models = len(set(models))
    if n_models < vm.MIN_MODELS_FOR_CORRELATION:
        notes.append(
            f"per-model correlations are undefined with {n_models} model(s); they need at least "
            f"{vm.MIN_MODELS_FOR_CORRELATION}."
        )
    final = _fresh_clone(metric).fit(mode_units, y)
    return ModeResult(
        mode=mode,
        n_units=len(mode_units),
        n_models=n_models,
        n_folds=len(splits),
        scores=scores,
        ceiling_normalised={m: _normalise(scores["pearson"], c) for m, c in mode_ceilings.items()},
        ceilings=mode_ceilings,
        per_model=_per_model(models, y, predicted, n_boot, confidence, seed),
        predictions=_predictions(mode_units, y, predicted, fold_of),
        fitted_params=_json_safe(final.fitted_params()),
        notes=notes,
    )


def _score(
    spec: ScoreFunction, y: np.ndarray, predicted: np.ndarray, models: np.ndarray, folds: np.ndarray, n_boot: int,
    confidence: float, seed: int,
) -> Score:
    kwargs = {"models": models} if spec.per_model else {"groups": folds} if spec.per_fold else {}
    value = spec.function(y, predicted, **kwargs)
    if n_boot == 0:
        return Score(value=value)
    low, high = vm.bootstrap_ci(spec.function, y, predicted, n_boot=n_boot, confidence=confidence, seed=seed,
                                aligned=kwargs)
    return Score(value=value, ci_low=low, ci_high=high)


def _mode_ceilings(ceilings: Ceilings, mode: str) -> tuple[dict[str, NoiseCeiling], list[str]]:
    given = dict(ceilings.get(mode, {}))
    notes = [f"no {m} noise ceiling was given for mode {mode!r}; that normalisation is omitted."
             for m in CEILING_METHODS if m not in given]
    return given, notes


def _normalise(pearson: Score, ceiling: NoiseCeiling) -> Score:
    """Pearson / ceiling; the CI divides the Pearson CI by the ceiling's mean (ceiling uncertainty not included)."""
    def scale(v: float | None) -> float:
        return float("nan") if v is None else vm.ceiling_normalised(v, ceiling)

    return Score(value=scale(pearson.value), ci_low=scale(pearson.ci_low), ci_high=scale(pearson.ci_high))


def _per_model(
    models: np.ndarray, y: np.ndarray, predicted: np.ndarray, n_boot: int, confidence: float, seed: int
) -> list[ModelSummary]:
    rng = np.random.default_rng(seed)
    summaries = []
    for model in sorted(set(models)):
        mask = models == model
        h_low, h_high = _mean_ci(y[mask], n_boot, confidence, rng)
        p_low, p_high = _mean_ci(predicted[mask], n_boot, confidence, rng)
        summaries.append(ModelSummary(
            model=str(model), n_units=int(mask.sum()),
            human_mean=float(y[mask].mean()), human_ci_low=h_low, human_ci_high=h_high,
            predicted_mean=float(predicted[mask].mean()), predicted_ci_low=p_low, predicted_ci_high=p_high,
        ))
    return summaries


def _mean_ci(values: np.ndarray, n_boot: int, confidence: float, rng: np.random.Generator) -> tuple[float, float]:
    """Bootstrap-over-units CI of a mean (NaN, NaN without replicates)."""
    if n_boot == 0:
        return float("nan"), float("nan")
    means = rng.choice(values, size=(n_boot, len(values)), replace=True).mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def _predictions(
    units: Sequence[ProxyUnit], y: np.ndarray, predicted: np.ndarray, fold_of: np.ndarray
) -> list[UnitPrediction]:
    return [
        UnitPrediction(model=u.model, layer=u.layer, channel=int(u.channel), mode=u.mode, human=float(h),
                       predicted=float(p), fold=int(f))
        for u, h, p, f in zip(units, y, predicted, fold_of)
    ]


# ------------------------------------------------------------------------------------------- several metrics


def validate_metrics(
    metrics: Sequence[ProxyMetric | str],
    units: Sequence[ProxyUnit],
    human: pd.DataFrame,
    ceilings: Ceilings,
    *,
    progress: bool = True,
    **options: Any,
) -> list[MetricReport]:
    """`validate_metric` for each metric, in order (options as for validate_metric)."""
    return [
        validate_metric(metric, units, human, ceilings, progress=progress, **options)
        for metric in tqdm(metrics, desc="metrics", unit="metric", disable=not progress)
    ]

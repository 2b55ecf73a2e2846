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
from benchmark.api.types import MODES, HumanDataOrigin, NoiseCeiling
from benchmark.proxies.base import CalibratedProxy, ProxyMetric, ProxyUnit, proxies
from benchmark.proxies.plugins import load_metric
from benchmark.validation import inference as inf
from benchmark.validation import metrics as vm
from benchmark.validation.crossval import _cross_validate, _fresh_clone, refit_on_cluster_resamples
from benchmark.validation.human import _check_aligned
from benchmark.validation.report import (
    MAX_REFITS,
    DataProvenance,
    MetricInfo,
    MetricReport,
    ModelSummary,
    ModeResult,
    PerModelCorrelation,
    SchemeInfo,
    Score,
    UnitPrediction,
    make_provenance,
)
from benchmark.validation.splits import base_model, check_scheme, make_splits

Ceilings = Mapping[str, Mapping[str, NoiseCeiling]]  # mode -> method ("split_half", "binomial") -> ceiling
DEFAULT_N_REFITS = 200  # resamples refitted for a fitted proxy's CI: (folds x 200) fits, on cached embeddings


@dataclass(frozen=True)
class ScoreFunction:
    """A validation metric as the harness runs it, and which per-unit labels it takes."""

    function: Callable[..., float]
    per_model: bool = False  # takes `models=` (per-unit model labels) and scores model means
    per_fold: bool = False  # takes `groups=` (the test fold of each unit)


# Secondary scores of the held-out predictions. Higher is better for the correlations; lower for mae and
# calibration_error; calibration_slope is ideal at 1. The headline is separate (benchmark.validation.inference);
# per-model correlations are computed only from >= 8 models (inference.model_correlation).
SCORES: dict[str, ScoreFunction] = {
    "pearson": ScoreFunction(vm.pearson_score),
    "spearman": ScoreFunction(vm.spearman_score),
    "kendall": ScoreFunction(vm.kendall_score),
    "mae": ScoreFunction(vm.mean_absolute_error),
    "calibration_error": ScoreFunction(vm.calibration_error),
    "calibration_slope": ScoreFunction(vm.calibration_slope),
}
CEILING_METHODS: tuple[str, ...] = ("split_half", "binomial")


# ------------------------------------------------------------------------------------------- one metric


def headline_scores(metric: ProxyMetric, units: Sequence[ProxyUnit], predicted: np.ndarray) -> np.ndarray:
    """The per-unit scores the headline correlates: raw scores of a calibrated proxy, else held-out predictions.

    A calibrated proxy's raw score needs no fit (its direction, larger = more interpretable, is part of its
    definition), so its headline is calibration-free and no fold's fitted sign can leak into another fold's term.
    Other proxies' held-out predictions keep a fixed direction (MIS: positive temperature; learned: non-negative
    weights on increasing features).
    """
    if isinstance(metric, CalibratedProxy):
        return np.asarray(metric.raw_scores(units), dtype=float)
    return np.asarray(predicted, dtype=float)


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
    n_permutations: int = 0,
    split_halves: Mapping[str, inf.SplitHalves] | None = None,
    human_data: HumanDataOrigin | None = None,
    n_refits: int = DEFAULT_N_REFITS,
) -> MetricReport:
    """Validate one metric per mode on held-out folds; a metric whose inputs are absent is reported as skipped.

    `name` labels the report (default: the registry name, the spec string, or the class name). `split_halves`
    (mode -> participant split halves aligned to that mode's units, in unit order) gives the headline its
    matching ceiling with the ceiling's uncertainty; without it the given pooled ceilings are used.
    `n_permutations` > 0 adds a within-mode permutation p-value (refitting the proxy on every permutation).
    `n_refits`: cluster resamples (at most `n_boot`) on which a fitted (not calibration-free) proxy's
    cross-validation is refitted for its headline CI (0: predictions held fixed, a CI that leaves the refit
    variance out; noted in the report).
    """
    start = time.perf_counter()
    check_scheme(scheme)
    resolved_name, instance = resolve_metric(metric)
    name = name or resolved_name
    y = _check_aligned(units, human)
    if n_boot != 0:
        inf.check_resampling(n_boot, confidence)
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int | np.integer) or n_permutations < 0:
        raise ConfigError(f"n_permutations must be an integer >= 0, got {n_permutations!r}; 0 turns the test off.")
    if (isinstance(n_refits, bool) or not isinstance(n_refits, int | np.integer) or 0 < n_refits < inf.MIN_REFITS
            or n_refits < 0 or n_refits > MAX_REFITS):
        raise ConfigError(f"n_refits must be 0 or an integer from {inf.MIN_REFITS} to {MAX_REFITS}, got "
                          f"{n_refits!r}; e.g. 200.")
    n_refits = min(n_refits, n_boot)  # the refitted resamples are (at most) the bootstrap's resamples
    scheme_info = SchemeInfo(name=scheme, k=k if scheme == "kfold" else None, seed=seed, n_boot=n_boot,
                             confidence=confidence, n_permutations=n_permutations, n_refits=n_refits)

    def finish(**fields: Any) -> MetricReport:
        provenance = make_provenance(seed=seed, wall_time_s=time.perf_counter() - start, data=data)
        return MetricReport(metric=metric_info(name, instance), scheme=scheme_info, provenance=provenance,
                            human_data=human_data, **fields)

    missing = instance.missing_inputs(units)
    if missing:
        return finish(status="skipped", skip_reason=_missing_reason(missing))
    try:
        modes = [
            _validate_mode(instance, name, units, y, human, ceilings, mode, scheme=scheme, k=k, n_boot=n_boot,
                           confidence=confidence, seed=seed, progress=progress, n_permutations=n_permutations,
                           halves=(split_halves or {}).get(mode), n_refits=n_refits)
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
    n_permutations: int = 0,
    halves: inf.SplitHalves | None = None,
    n_refits: int = 0,
) -> ModeResult:
    """Fit and test within one mode."""
    index = np.array([i for i, u in enumerate(units) if u.mode == mode])
    mode_units = [units[i] for i in index]
    y = y_all[index]
    splits = make_splits(mode_units, scheme, k=k, seed=seed)
    predicted, fold_of = _cross_validate(metric, mode_units, y, splits, progress=progress, desc=f"{name} ({mode})")
    models = np.array([u.model for u in mode_units], dtype=object)
    bases = np.array([base_model(u.model) for u in mode_units], dtype=object)
    design = inf.Design.make(fold_of, bases)
    calibration_free = isinstance(metric, CalibratedProxy)
    scores_h = headline_scores(metric, mode_units, predicted)
    notes: list[str] = []
    if not design.clustered_by_model:
        notes.append(f"only {len(set(bases))} model(s): the bootstrap resamples units one by one, so clustering of "
                     "units within models is not in the CIs.")
    refits = None
    if n_boot and 0 < n_refits < inf.MIN_REFITS and needs_refits(metric, design):
        raise ConfigError(f"A fitted proxy's refitted CI needs at least {inf.MIN_REFITS} resamples, and n_boot = "
                          f"{n_boot} allows {n_refits}: pass n_boot >= {inf.MIN_REFITS} (--n-boot), or n_refits = 0 "
                          "(--n-refits 0) for a fixed-prediction CI.")
    if n_boot and n_refits and needs_refits(metric, design):
        refits = Refits.run(metric, mode_units, y, splits, design, n_refits=n_refits, seed=seed, progress=progress,
                            desc=f"{name} ({mode}) refits")
    elif n_boot and needs_refits(metric, design):
        notes.append("n_refits = 0: the CI holds this fitted proxy's predictions fixed, so it leaves the refit "
                     "variance out and is too narrow (pass --n-refits, e.g. 200).")
    headline, pooled = _headline(y, scores_h, predicted, design, n_boot, confidence, seed, refits)
    if refits is not None:
        usable = int((np.isfinite(refits.headlines) & np.isfinite(refits.fit_headlines)).sum())
        if usable < inf.MIN_REFITS:
            notes.append(f"only {usable} of {len(refits.headlines)} resamples could be refitted (a fold left with "
                         f"nothing to train on, or an undefined r); at least {inf.MIN_REFITS} are needed, so the "
                         "headline has no CI. More models, or more resamples (--n-refits), give one.")
    interval_method = (REFIT_METHOD if refits else "cluster bootstrap-t") if n_boot else "none (n_boot = 0)"
    p_value_method = interval_method
    if n_permutations:
        headline, p_value_method = _with_permutation_p(
            headline, metric, mode_units, y, splits, fold_of, calibration_free, n_permutations, seed, progress, name,
            mode), f"within-mode permutation test ({n_permutations} permutations, proxy refitted on each)"
    scores = {key: Score(value=spec.function(y, predicted)) for key, spec in SCORES.items()}
    scores["pearson"] = pooled
    final = _fresh_clone(metric).fit(mode_units, y)
    shared = scores_h if calibration_free else np.asarray(final.predict(mode_units), dtype=float)
    per_model = _per_model_correlation(y, shared, models, bases, n_boot, confidence, seed, calibration_free)
    if per_model.reason:
        notes.append(per_model.reason + ".")
    mode_ceilings, ceiling_notes = _mode_ceilings(ceilings, mode)
    normalised, flags, more_notes = _ceiling_normalised(y, scores_h, headline, design, halves, mode_ceilings, n_boot,
                                                        confidence, seed, refits)
    return ModeResult(
        mode=mode,
        n_units=len(mode_units),
        n_models=len(set(bases)),
        n_folds=len(splits),
        headline=headline,
        headline_basis="raw scores (calibration-free)" if calibration_free else "held-out predictions",
        n_clusters=design.n_clusters,
        p_value_method=p_value_method,
        interval_method=interval_method,
        refit_headlines=None if refits is None else _json_floats(refits.headlines),
        refit_fit_headlines=None if refits is None else _json_floats(refits.fit_headlines),
        scores=scores,
        per_model_correlation=per_model,
        ceiling_normalised=normalised,
        ceiling_flags=flags,
        ceilings=mode_ceilings,
        per_model=_per_model(models, y, predicted, n_boot, confidence, seed),
        predictions=_predictions(mode_units, y, predicted, fold_of, scores_h),
        fitted_params=_json_safe(final.fitted_params()),
        notes=notes + ceiling_notes + more_notes,
    )


def _headline(
    y: np.ndarray, scores: np.ndarray, predicted: np.ndarray, design: inf.Design, n_boot: int, confidence: float,
    seed: int, refits: Refits | None = None,
) -> tuple[Score, Score]:
    """The headline (fold-mean r of `scores`) with its cluster-bootstrap CI (from the refits where given), and the
    pooled r of the predictions with its cluster-bootstrap CI (predictions held fixed: a secondary number)."""
    if n_boot == 0:
        pooled = float(inf.weighted_within_r(y, predicted, np.zeros(len(y), dtype=int), np.ones((1, len(y))))[0])
        return Score(value=inf.headline_r(y, scores, design.folds)), Score(value=pooled)
    if refits is not None:
        head = refits.interval(y, scores, design, confidence=confidence)
    else:
        head, _ = inf.headline_interval(y, scores, design, n_boot=n_boot, confidence=confidence, seed=seed)
    pooled, _ = inf.headline_interval(y, predicted, design, n_boot=n_boot, confidence=confidence, seed=seed,
                                      pooled=True)
    return _score(head), _score(pooled)


REFIT_METHOD = ("cluster bootstrap-t, proxy refitted on every resample (the variance of the refits' fit to the "
                "observed units taken out)")


@dataclass(frozen=True)
class Refits:
    """A fitted proxy's whole cross-validation refitted on cluster-bootstrap resamples of the models."""

    headlines: np.ndarray  # (B,) the headline of each refit, on the first B resamples of the seed
    fit_headlines: np.ndarray  # (B,) the headline of each refit's predictions on all the observed units

    @classmethod
    def run(cls, metric: ProxyMetric, units: Sequence[ProxyUnit], y: np.ndarray, splits: Sequence,
            design: inf.Design, *, n_refits: int, seed: int, progress: bool = False, desc: str = "refits") -> Refits:
        """Draw `n_refits` cluster resamples for `seed` (`inference.cluster_counts`) and refit on each."""
        counts = inf.cluster_counts(design.n_clusters, n_refits, seed)
        predictions = refit_on_cluster_resamples(metric, units, y, splits, design.clusters, counts,
                                                 progress=progress, desc=desc)
        return cls(refit_headlines(y, predictions, design.folds, counts[:, design.clusters]),
                   refit_headlines(y, predictions, design.folds, np.ones_like(predictions)))

    def interval(self, y: np.ndarray, scores: np.ndarray, design: inf.Design, *,
                 confidence: float = 0.95) -> inf.Interval:
        """The headline of the observed `scores` with the refitted CI (`inference.linear_interval`: the refits' fit
        variance taken out)."""
        return inf.linear_interval(inf.headline_r(y, scores, design.folds), self.headlines, design.n_clusters,
                                   confidence, fit_replicates=self.fit_headlines)


def refit_headlines(y: np.ndarray, predictions: np.ndarray, folds: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B,) headline of each refit; NaN for a resample that could not be refitted (a NaN row of predictions)."""
    values = inf.mean_fold_r(y, np.nan_to_num(predictions), folds, weights)
    return np.where(np.isnan(predictions).any(axis=1), np.nan, values)


def _json_floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in values]


def needs_refits(metric: ProxyMetric, design: inf.Design) -> bool:
    """Whether the headline's interval must refit: the scores are fitted (not calibration-free) and the units
    cluster in models. Holding a fitted proxy's predictions fixed leaves the refit variance out of the bootstrap
    (the learned proxy's null CIs then covered 0 in 0.89 of runs under LOMO)."""
    return not isinstance(metric, CalibratedProxy) and design.clustered_by_model


def _score(interval: inf.Interval) -> Score:
    return Score(value=interval.value, ci_low=interval.ci_low, ci_high=interval.ci_high, p_value=interval.p_value)


def _with_permutation_p(
    headline: Score, metric: ProxyMetric, units: list[ProxyUnit], y: np.ndarray, splits: list, fold_of: np.ndarray,
    calibration_free: bool, n_permutations: int, seed: int, progress: bool, name: str, mode: str,
) -> Score:
    """The headline with its p-value from a within-mode permutation test (the proxy refitted on each permutation)."""
    raw = headline_scores(metric, units, np.zeros(len(units))) if calibration_free else None

    def statistic(permuted: np.ndarray) -> float:
        if raw is not None:  # calibration-free: no fit depends on the labels
            return inf.headline_r(permuted, raw, fold_of)
        predicted, folds = _cross_validate(metric, units, permuted, splits, progress=False, desc="")
        return inf.headline_r(permuted, predicted, folds)

    bar = tqdm(total=n_permutations, desc=f"{name} ({mode}) permutations", leave=False, disable=not progress)
    p_value, _ = inf.permutation_p_value(headline.as_float(), statistic, y, n_permutations=n_permutations, seed=seed,
                                         progress=lambda _: bar.update())
    bar.close()
    return headline.model_copy(update={"p_value": p_value})


def _per_model_correlation(
    y: np.ndarray, shared: np.ndarray, models: np.ndarray, bases: np.ndarray, n_boot: int, confidence: float,
    seed: int, calibration_free: bool,
) -> PerModelCorrelation:
    result = inf.model_correlation(y, shared, models, bases, n_boot=max(n_boot, 2), confidence=confidence, seed=seed)
    if result.pearson is None:
        return PerModelCorrelation(n_models=result.n_models, reason=result.reason)
    pearson = _score(result.pearson) if n_boot else Score(value=result.pearson.value)
    basis = "raw scores" if calibration_free else "one calibration fitted on all units of the mode (in-sample)"
    return PerModelCorrelation(n_models=result.n_models, pearson=pearson, spearman=result.spearman, basis=basis)


def _mode_ceilings(ceilings: Ceilings, mode: str) -> tuple[dict[str, NoiseCeiling], list[str]]:
    given = dict(ceilings.get(mode, {}))
    notes = [f"no {m} noise ceiling was given for mode {mode!r}; that normalisation is omitted."
             for m in CEILING_METHODS if m not in given and m != "split_half"]
    return given, notes


def _ceiling_normalised(
    y: np.ndarray, scores: np.ndarray, headline: Score, design: inf.Design, halves: inf.SplitHalves | None,
    given: Mapping[str, NoiseCeiling], n_boot: int, confidence: float, seed: int, refits: Refits | None = None,
) -> tuple[dict[str, Score], dict[str, str], list[str]]:
    """Headline / split-half ceiling (matched to the headline, its uncertainty propagated) and / binomial ceiling."""
    normalised: dict[str, Score] = {}
    flags: dict[str, str] = {}
    notes: list[str] = []
    if halves is not None and n_boot:
        ratio = inf.ceiling_ratio(y, scores, halves, design, n_boot=n_boot, confidence=confidence, seed=seed,
                                  replicates=None if refits is None else refits.headlines,
                                  fit_replicates=None if refits is None else refits.fit_headlines)
        normalised["split_half"] = Score(value=ratio.ratio.value, ci_low=ratio.ratio.ci_low,
                                         ci_high=ratio.ratio.ci_high)
        if ratio.flag:
            flags["split_half"] = ratio.flag
    elif halves is not None:
        ceiling = float(inf.ceiling_replicates(halves, design.folds, np.ones((1, len(y))))[0])
        normalised["split_half"] = Score(value=vm.ceiling_normalised(headline.as_float(), ceiling))
    elif "split_half" in given:
        normalised["split_half"] = _normalise(headline, given["split_half"])
        notes.append("split-half ceiling: the pooled ceiling given, not matched to the headline's folds; its "
                     "uncertainty is not in the CI (pass the trials' split halves to propagate it).")
    else:
        notes.append("no split-half noise ceiling available; r/ceiling is omitted.")
    if "binomial" in given:
        normalised["binomial"] = Score(value=vm.ceiling_normalised(headline.as_float(), given["binomial"]))
        notes.append("binomial ceiling: the MIS paper's method, biased high at few responses per unit (it "
                     "simulates from observed accuracies); shown for comparison only.")
    for method, score in normalised.items():
        if method not in flags and score.value is not None and score.value > 1:
            interval = inf.Interval(score.value, score.ci_low if score.ci_low is not None else float("nan"),
                                    score.ci_high if score.ci_high is not None else float("nan"), float("nan"),
                                    float("nan"), 0)
            flag = inf.ceiling_flag(interval)
            flags[method] = flag or "above 1"
    return normalised, flags, notes


def _normalise(score: Score, ceiling: NoiseCeiling) -> Score:
    """Score / ceiling mean (the ceiling's uncertainty is not included)."""
    def scale(v: float | None) -> float:
        return float("nan") if v is None else vm.ceiling_normalised(v, ceiling)

    return Score(value=scale(score.value), ci_low=scale(score.ci_low), ci_high=scale(score.ci_high))


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
    units: Sequence[ProxyUnit], y: np.ndarray, predicted: np.ndarray, fold_of: np.ndarray, scores: np.ndarray
) -> list[UnitPrediction]:
    return [
        UnitPrediction(model=u.model, layer=u.layer, channel=int(u.channel), mode=u.mode, human=float(h),
                       predicted=float(p), fold=int(f), headline_score=float(s))
        for u, h, p, f, s in zip(units, y, predicted, fold_of, scores)
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

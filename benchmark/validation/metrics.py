"""Validation metrics: plain functions `(y_true, y_pred, *, ...) -> float`; `*_score` means higher is better.

`y_true` is the observed human accuracy per unit, `y_pred` a proxy's prediction. The correlation scores give 0.0
for a constant prediction (it carries no information about which units humans find easier) and NaN when the
human values are constant or there are fewer than 3 units (nothing to explain).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import numpy as np
from scipy import stats

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.api.types import NoiseCeiling

MIN_UNITS_FOR_CORRELATION = 3
MIN_MODELS_FOR_CORRELATION = 3


def _pair(y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return two equally long 1-D float arrays without NaN."""
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.ndim != 1 or p.shape != t.shape:
        raise DataValidationError(
            f"y_true and y_pred must be 1-D arrays of equal length; got shapes {t.shape} and {p.shape}. "
            "Pass one human accuracy and one prediction per unit."
        )
    if np.isnan(t).any() or np.isnan(p).any():
        raise DataValidationError(
            f"y_true has {int(np.isnan(t).sum())} and y_pred {int(np.isnan(p).sum())} NaN values; "
            "drop units without a human score or a prediction first."
        )
    return t, p


def _correlation(y_true: object, y_pred: object, compute: Callable[[np.ndarray, np.ndarray], float]) -> float:
    t, p = _pair(y_true, y_pred)
    if len(t) < MIN_UNITS_FOR_CORRELATION or np.ptp(t) == 0:
        return float("nan")
    if np.ptp(p) == 0:
        return 0.0
    return float(compute(t, p))


def pearson_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson correlation between human accuracy and prediction (0 for a constant prediction)."""
    return _correlation(y_true, y_pred, lambda t, p: stats.pearsonr(t, p).statistic)


def spearman_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Spearman rank correlation between human accuracy and prediction (0 for a constant prediction)."""
    return _correlation(y_true, y_pred, lambda t, p: stats.spearmanr(t, p).statistic)


def kendall_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall's tau-b between human accuracy and prediction (0 for a constant prediction)."""
    return _correlation(y_true, y_pred, lambda t, p: stats.kendalltau(t, p).statistic)


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute difference between prediction and human accuracy (lower is better)."""
    t, p = _pair(y_true, y_pred)
    if len(t) == 0:
        return float("nan")
    return float(np.mean(np.abs(t - p)))


def calibration_error(y_true: np.ndarray, y_pred: np.ndarray, *, n_bins: int = 10) -> float:
    """Expected calibration error (lower is better).

    Units are sorted by prediction and cut into `n_bins` equal-count bins (fewer when there are fewer units);
    the error is the unit-weighted mean over bins of |mean prediction - mean human accuracy|.
    """
    if n_bins < 1:
        raise ConfigError(f"n_bins must be a positive integer, got {n_bins!r}; the default is 10.")
    t, p = _pair(y_true, y_pred)
    if len(t) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, len(t)))
    return float(sum(len(b) * abs(p[b].mean() - t[b].mean()) for b in bins) / len(t))


def calibration_slope(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """OLS slope of human accuracy regressed on prediction (1 is ideal; NaN for a constant prediction)."""
    t, p = _pair(y_true, y_pred)
    if len(t) < 2 or np.ptp(p) == 0:
        return float("nan")
    return float(np.cov(p, t, bias=True)[0, 1] / np.var(p))


def _model_means(y_true: np.ndarray, y_pred: np.ndarray, models: object) -> tuple[np.ndarray, np.ndarray]:
    t, p = _pair(y_true, y_pred)
    labels = np.asarray(models, dtype=object)
    if labels.shape != t.shape:
        raise DataValidationError(f"models must give one label per unit ({len(t)}), got shape {labels.shape}.")
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    counts = np.bincount(codes, minlength=len(names))
    return np.bincount(codes, t, len(names)) / counts, np.bincount(codes, p, len(names)) / counts


def model_pearson_score(y_true: np.ndarray, y_pred: np.ndarray, *, models: np.ndarray) -> float:
    """Pearson correlation of per-model means (prediction vs human); NaN with fewer than 3 models."""
    t, p = _model_means(y_true, y_pred, models)
    return pearson_score(t, p)


def model_spearman_score(y_true: np.ndarray, y_pred: np.ndarray, *, models: np.ndarray) -> float:
    """Spearman correlation of per-model means (prediction vs human); NaN with fewer than 3 models."""
    t, p = _model_means(y_true, y_pred, models)
    return spearman_score(t, p)


def within_group_pearson_score(y_true: np.ndarray, y_pred: np.ndarray, *, groups: np.ndarray) -> float:
    """Pearson correlation after subtracting each group's mean from both human accuracy and prediction.

    With groups = the held-out folds this ignores the offset each fold's fit gives its predictions: pooled
    held-out predictions of an uninformative proxy correlate negatively with humans (a fold whose humans score
    high was fitted on data that score lower), and this score removes that bias. Under leave-one-model-out it
    is the within-model correlation.
    """
    t, p = _pair(y_true, y_pred)
    labels = np.asarray(groups)
    if labels.shape != t.shape:
        raise DataValidationError(f"groups must give one label per unit ({len(t)}), got shape {labels.shape}.")
    _, codes = np.unique(labels.astype(str), return_inverse=True)
    counts = np.bincount(codes)
    t_centred = t - (np.bincount(codes, t) / counts)[codes]
    p_centred = p - (np.bincount(codes, p) / counts)[codes]
    if len(t) - len(counts) < 2 or np.allclose(t_centred, 0):  # fewer than 2 within-group degrees of freedom
        return float("nan")
    if np.allclose(p_centred, 0):
        return 0.0
    return float(np.corrcoef(t_centred, p_centred)[0, 1])


def bootstrap_ci(
    metric: Callable[..., float],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    aligned: Mapping[str, np.ndarray] | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap CI of `metric`, resampling units (or whole `groups`) with replacement.

    `aligned` holds further per-unit arrays (e.g. `models`) that are resampled with the units and passed to
    `metric` as keyword arguments. Replicates where the metric is undefined (NaN) are dropped; if all are,
    the interval is (NaN, NaN).
    """
    t, p = _pair(y_true, y_pred)
    _check_bootstrap_settings(n_boot, confidence)
    extra = {name: np.asarray(values) for name, values in (aligned or {}).items()}
    for name, values in extra.items():
        if len(values) != len(t):
            raise DataValidationError(f"aligned array {name!r} has {len(values)} entries for {len(t)} units.")
    clusters = _clusters(len(t), groups)
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        if clusters is None:
            idx = rng.integers(0, len(t), len(t))
        else:
            idx = np.concatenate([clusters[i] for i in rng.integers(0, len(clusters), len(clusters))])
        values[b] = metric(t[idx], p[idx], **{name: v[idx] for name, v in extra.items()})
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def _check_bootstrap_settings(n_boot: int, confidence: float) -> None:
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ConfigError(f"n_boot must be a positive integer, got {n_boot!r}; 1000 is the usual choice.")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must lie strictly between 0 and 1, got {confidence!r}; e.g. 0.95.")


def _clusters(n: int, groups: np.ndarray | None) -> list[np.ndarray] | None:
    """Index arrays of the groups resampled together; None when units are resampled one by one."""
    if n == 0:
        raise DataValidationError("Cannot bootstrap a metric over zero units.")
    if groups is None:
        return None
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise DataValidationError(f"groups must give one label per unit ({n}), got shape {labels.shape}.")
    _, codes = np.unique(labels.astype(str), return_inverse=True)
    return [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]


def ceiling_normalised(score: float, ceiling: float | NoiseCeiling) -> float:
    """`score` divided by the noise ceiling (its `mean` when a NoiseCeiling); NaN if the ceiling is not positive."""
    value = ceiling.mean if isinstance(ceiling, NoiseCeiling) else float(ceiling)
    if not np.isfinite(value) or value <= 0 or score is None or not np.isfinite(score):
        return float("nan")
    return float(score) / value

"""Cross-validated predictions: a fresh clone of the metric per fold, each unit predicted exactly once.

Every fold is checked for leakage (benchmark.validation.splits.check_no_leakage) and every prediction for
shape and range, so a metric cannot silently score on units it was fitted on or return values outside [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import clone
from tqdm.auto import tqdm

from benchmark.api.errors import DataValidationError
from benchmark.proxies.base import ProxyMetric, ProxyUnit
from benchmark.proxies.mis import EmbeddingMixin
from benchmark.validation.splits import Split, check_no_leakage


def cross_validated_predictions(
    metric: ProxyMetric,
    units: Sequence[ProxyUnit],
    y: np.ndarray,
    splits: Sequence[Split],
    *,
    progress: bool = False,
    desc: str = "folds",
) -> np.ndarray:
    """Held-out predictions: a clone of `metric` is fitted on each fold's training units and predicts its test units."""
    predictions, _ = _cross_validate(metric, units, y, splits, progress=progress, desc=desc)
    return predictions


def _cross_validate(
    metric: ProxyMetric,
    units: Sequence[ProxyUnit],
    y: np.ndarray,
    splits: Sequence[Split],
    *,
    progress: bool,
    desc: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and the fold index of every unit; each unit must be predicted exactly once."""
    y = np.asarray(y, dtype=float)
    if len(y) != len(units):
        raise DataValidationError(f"Got {len(y)} human accuracies for {len(units)} units; pass one per unit.")
    predictions = np.full(len(units), np.nan)
    fold_of = np.full(len(units), -1)
    times_predicted = np.zeros(len(units), dtype=int)
    for fold, (train, test) in enumerate(tqdm(splits, desc=desc, unit="fold", leave=False, disable=not progress)):
        check_no_leakage(units, train, test)
        estimator = _fresh_clone(metric).fit([units[i] for i in train], y[train])
        predictions[test] = _checked_predictions(estimator, [units[i] for i in test])
        fold_of[test] = fold
        times_predicted[test] += 1
    wrong = np.flatnonzero(times_predicted != 1)
    if len(wrong):
        raise DataValidationError(
            f"The splits predict {len(wrong)} unit(s) other than exactly once (e.g. {units[wrong[0]].key} "
            f"{times_predicted[wrong[0]]} times). Every unit must be in exactly one test fold."
        )
    return predictions, fold_of


def refit_on_cluster_resamples(
    metric: ProxyMetric,
    units: Sequence[ProxyUnit],
    y: np.ndarray,
    splits: Sequence[Split],
    clusters: np.ndarray,
    counts: np.ndarray,
    *,
    progress: bool = False,
    desc: str = "refits",
) -> np.ndarray:
    """(B, n) held-out predictions of the whole cross-validation refitted on each cluster resample.

    Row b: each fold's clone is fitted on the fold's training units, each repeated as often as its cluster was
    drawn (`counts[b, cluster]`), and predicts all the fold's test units: the drawn ones give the resample's
    headline (the others get weight 0 there), and all of them give the refit's own headline on the observed units,
    which the interval needs (`benchmark.validation.inference.linear_interval`, `fit_replicates`). A resample in which
    a fold has no training units (e.g. every draw the same model under leave-one-model-out) cannot be refitted: its row
    is NaN, and the interval skips it. The folds stay as they are, so the copies of a unit are always on one side
    of a fold: nothing is tested on units it was fitted on (the splits themselves are checked for leakage when the
    cross-validation first runs them).
    """
    clusters = np.asarray(clusters)
    y = np.asarray(y, dtype=float)
    counts = np.asarray(counts)
    out = np.zeros((len(counts), len(units)))
    for b in tqdm(range(len(counts)), desc=desc, unit="resample", leave=False, disable=not progress):
        repeats = counts[b].astype(int)[clusters]
        for train, test in splits:
            fitted_on = np.repeat(train, repeats[train])
            if len(fitted_on) == 0:  # e.g. one model drawn G times: its own fold has nothing to train on
                out[b] = np.nan
                break
            estimator = _fresh_clone(metric).fit([units[i] for i in fitted_on], y[fitted_on])
            out[b, test] = _checked_predictions(estimator, [units[i] for i in test])
    return out


def _fresh_clone(metric: ProxyMetric) -> ProxyMetric:
    """An unfitted sklearn clone that shares the template's image-embedding cache (any metric that has one).

    Embeddings depend on the images only, never on human data, so sharing them across folds cannot leak;
    it saves re-embedding every image once per fold (the learned proxy included: its feature proxies embed
    through its cache).
    """
    estimator = clone(metric)
    if _has_embedding_cache(metric) and _has_embedding_cache(estimator):
        estimator.share_embedding_cache(metric.embedding_cache)
    return estimator


def _has_embedding_cache(metric: object) -> bool:
    return isinstance(metric, EmbeddingMixin) or (
        hasattr(metric, "embedding_cache") and callable(getattr(metric, "share_embedding_cache", None))
    )


def _checked_predictions(estimator: ProxyMetric, units: list[ProxyUnit]) -> np.ndarray:
    values = np.asarray(estimator.predict(units), dtype=float)
    name = type(estimator).__name__
    if values.shape != (len(units),):
        raise DataValidationError(f"{name}.predict returned shape {values.shape} for {len(units)} units.")
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise DataValidationError(
            f"{name}.predict must return finite values in [0, 1]; got range "
            f"[{np.nanmin(values):.3g}, {np.nanmax(values):.3g}] with {int((~np.isfinite(values)).sum())} non-finite."
        )
    return values

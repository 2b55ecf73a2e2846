"""Held-out inference: the headline statistic, cluster-bootstrap CIs and p-values, paired comparisons of proxies,
per-model correlations and the ceiling ratio.

**Headline statistic: the fold-mean Pearson r.** Each held-out fold's Pearson r between human accuracy and the
proxy's score, averaged with weights = units per fold (under leave-one-model-out: the mean within-model r). The
score is the calibration-free raw score of a calibrated proxy, else its held-out prediction (see
`benchmark.validation.harness.headline_scores`). The pooled held-out r (kept as a secondary) is biased negative:
each fold's fitted intercept is anti-correlated with its held-out units' mean. A pooled within-fold-centred r still
is, because one ratio couples the folds' fitted scales. A per-fold r depends on one fold's predictions only, and
those were fitted without that fold's labels, so under shuffled labels its mean is 0.

**Intervals: a cluster bootstrap over models.** Models (hard-query variants with their base model) are resampled
with replacement, and the headline is recomputed on each resample: from the fixed scores of a calibration-free
proxy, and, for a fitted proxy, from predictions of the whole cross-validation refitted on the resample
(`benchmark.validation.crossval.refit_on_cluster_resamples`), because holding a fitted proxy's predictions fixed
leaves the refit variance out. The interval is a bootstrap-t: value +/- t(G-1) * se * sqrt(G/(G-1)), se the
bootstrap sd over G clusters (the small-G correction and the t quantile keep coverage with 9 models); the p-value is
the same t test of 0. With `n_permutations` the harness instead takes the p-value from a within-mode permutation
test that refits the proxy on every permutation.

**Refitted intervals: the variance of the refits' own fit is taken out.** A refitted resample's headline varies
for two reasons: which units it tests on, and how well its refit happens to fit this sample (in the bootstrap
world the sample is the population, so refits that pick up more of its chance correlations score higher). The
second part is measured directly, as the variance of each refit's headline on all the observed units
(`fit_replicates`), and subtracted: se^2 = Var(resample headlines) - Var(refit headlines on the observed units),
at most half of the variance taken out (`MAX_FIT_SHARE`; it was 11-19% in the calibration study).
Under the null no fit can predict held-out labels, so the true sampling variance has no such term, and with it the
learned proxy's null CIs covered 0 in 0.99 of k-fold runs (the sd overestimated by 10-13%); without it the sd is
within 2% and coverage is nominal. Under planted signal, where that term is real but small (about 12% of the
variance for a learned proxy), coverage stayed nominal. Bengio & Grandvalet (JMLR 2004) show that no estimator of a
cross-validation's variance is unbiased for every distribution: this is a choice, and
`benchmarks/validation_calibration.py` measures its null mean and its coverage under the null and under signal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from benchmark.api.errors import ConfigError, DataValidationError

HEADLINE = "fold_mean_pearson"
MIN_MODELS_FOR_PER_MODEL = 8  # per-model correlations of fewer models are noise (and biased under LOMO)
MIN_CLUSTERS = 3  # below this, units are resampled one by one (clustering by model cannot be estimated)
_R_CLIP = 1.0 - 1e-9


@dataclass(frozen=True)
class Design:
    """Per-unit labels of a held-out evaluation: the test fold and the cluster (base model) of each unit."""

    folds: np.ndarray  # (n,) int codes 0..K-1
    clusters: np.ndarray  # (n,) int codes 0..G-1; units themselves when there are fewer than MIN_CLUSTERS models
    clustered_by_model: bool

    @property
    def n_clusters(self) -> int:
        """G, the number of resampled clusters."""
        return int(self.clusters.max()) + 1 if len(self.clusters) else 0

    @classmethod
    def make(cls, folds: object, models: object) -> Design:
        """Codes from per-unit fold and (base) model labels."""
        fold_labels = np.asarray(folds)
        model_labels = np.asarray(models, dtype=object).astype(str)
        if fold_labels.shape != model_labels.shape or fold_labels.ndim != 1:
            raise DataValidationError(
                f"folds and models must be 1-D with one label per unit; got shapes {fold_labels.shape} and "
                f"{model_labels.shape}."
            )
        _, fold_codes = np.unique(fold_labels.astype(str), return_inverse=True)
        _, model_codes = np.unique(model_labels, return_inverse=True)
        if len(model_codes) and model_codes.max() + 1 >= MIN_CLUSTERS:
            return cls(fold_codes, model_codes, True)
        return cls(fold_codes, np.arange(len(model_labels)), False)


def check_resampling(n_boot: int, confidence: float) -> None:
    """Raise ConfigError for a non-positive replicate count or a confidence outside (0, 1)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise ConfigError(f"n_boot must be an integer of at least 2, got {n_boot!r}; 1000 is the usual choice.")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must lie strictly between 0 and 1, got {confidence!r}; e.g. 0.95.")


def cluster_counts(n_clusters: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, G) how often each cluster is drawn in each bootstrap replicate (G draws with replacement)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_boot).astype(np.float64)


def cluster_weights(design: Design, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) unit weights: how often each unit's cluster was drawn in each bootstrap replicate."""
    return cluster_counts(design.n_clusters, n_boot, seed)[:, design.clusters]


def _group_sums(values: list[np.ndarray], groups: np.ndarray, weights: np.ndarray) -> list[np.ndarray]:
    """(B, K) weighted sums of each per-unit array over the units of each group."""
    onehot = np.zeros((len(groups), int(groups.max()) + 1 if len(groups) else 0))
    onehot[np.arange(len(groups)), groups] = 1.0
    return [(weights * v) @ onehot for v in values]


def fold_correlations(y: np.ndarray, p: np.ndarray, groups: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """Per-group weighted Pearson r (B, K) and the groups' weights (B, K) for each row of unit `weights` (B, n).

    A group with fewer than 3 units or constant human accuracy gets NaN (weight 0); constant predictions give 0.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    n, sy, sp, syy, spp, syp = _group_sums([np.ones_like(y), y, p, y * y, p * p, y * p], groups, w)
    distinct = _group_sums([np.ones_like(y)], groups, (w > 0).astype(float))[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        vyy = syy - sy * sy / n
        vpp = spp - sp * sp / n
        vyp = syp - sy * sp / n
        r = vyp / np.sqrt(vyy * vpp)
        scale_y = np.maximum(syy / n, 1e-300)
        scale_p = np.maximum(spp / n, 1e-300)
    undefined = (distinct < 3) | ~(vyy > 1e-12 * n * scale_y)
    r = np.where(vpp > 1e-12 * n * scale_p, np.clip(r, -1.0, 1.0), 0.0)
    r = np.where(undefined, np.nan, r)
    return r, np.where(undefined, 0.0, n)


def mean_fold_r(y: np.ndarray, p: np.ndarray, groups: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The headline for each row of unit `weights` (B, n) -> (B,): the unit-weighted mean of per-group r.

    `p` is one score per unit (n,), or one row per replicate (B, n) (e.g. predictions refitted per resample).

    Each test fold's r uses only that fold's predictions, so a fold's fitted offset and scale (and the sign of a
    fitted calibration) cannot leak into another fold's term; NaN when no group has a defined r.
    """
    r, mass = fold_correlations(y, p, groups, weights)
    total = mass.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.nansum(r * mass, axis=1) / total, np.nan)


def weighted_within_r(y: np.ndarray, p: np.ndarray, groups: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pearson r of y and p after centring each within its group, for each row of unit `weights` (B, n) -> (B,).

    With one group this is the weighted pooled r; a row whose centred values do not vary gives NaN (y) or 0 (p).
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    mass, wy, wp = _group_sums([np.ones_like(y), y, p], groups, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_y = np.where(mass > 0, wy / mass, 0.0)
        mean_p = np.where(mass > 0, wp / mass, 0.0)
    yc = y - mean_y[:, groups]
    pc = p - mean_p[:, groups]
    syy = np.sum(w * yc * yc, axis=1)
    spp = np.sum(w * pc * pc, axis=1)
    sxy = np.sum(w * yc * pc, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(syy * spp)
    r = np.where(spp <= 1e-12 * np.maximum(np.sum(w * p * p, axis=1), 1e-300), 0.0, r)
    return np.where(syy <= 1e-12 * np.maximum(np.sum(w * y * y, axis=1), 1e-300), np.nan, np.clip(r, -1.0, 1.0))


def headline_r(y: np.ndarray, p: np.ndarray, folds: np.ndarray) -> float:
    """The headline statistic on the data as observed: the unit-weighted mean of the per-fold Pearson r."""
    _, codes = np.unique(np.asarray(folds).astype(str), return_inverse=True)
    return float(mean_fold_r(y, p, codes, np.ones((1, len(y))))[0])


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval, standard error and two-sided p-value of "no correlation"."""

    value: float
    ci_low: float
    ci_high: float
    se: float
    p_value: float
    n_clusters: int


def _t_quantile(confidence: float, n_clusters: int) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, df=max(n_clusters - 1, 1)))


def _small_g(n_clusters: int) -> float:
    return float(np.sqrt(n_clusters / (n_clusters - 1))) if n_clusters > 1 else float("nan")


def correlation_interval(point: float, replicates: np.ndarray, n_clusters: int, confidence: float) -> Interval:
    """Bootstrap-t interval of a correlation on Fisher's z scale with G-1 degrees of freedom, and its p-value."""
    nan = float("nan")
    finite = replicates[np.isfinite(replicates)]
    if not np.isfinite(point) or len(finite) < 2:
        return Interval(point, nan, nan, nan, nan, n_clusters)
    z = np.arctanh(np.clip(point, -_R_CLIP, _R_CLIP))
    se = float(np.std(np.arctanh(np.clip(finite, -_R_CLIP, _R_CLIP)), ddof=1)) * _small_g(n_clusters)
    q = _t_quantile(confidence, n_clusters)
    if se == 0:
        return Interval(point, point, point, 0.0, nan, n_clusters)
    p_value = float(2 * stats.t.sf(abs(z) / se, df=max(n_clusters - 1, 1)))
    return Interval(point, float(np.tanh(z - q * se)), float(np.tanh(z + q * se)), se, p_value, n_clusters)


MIN_REFITS = 20  # refitted resamples (with a finite headline) below which a refitted CI is not given


MAX_FIT_SHARE = 0.5  # at most this share of a refitted interval's variance is taken out as the refits' fit variance


def linear_interval(point: float, replicates: np.ndarray, n_clusters: int, confidence: float,
                    null: float = 0.0, fit_replicates: np.ndarray | None = None) -> Interval:
    """Bootstrap-t interval on the natural scale (differences of correlations, ratios), p-value against `null`.

    `fit_replicates` (refitted intervals): the same statistic of each resample's refit on the observed units,
    aligned with `replicates`. Its variance, how much the refits differ in how well they fit this sample, is taken
    out of the replicates' variance (see the module docstring); pairs with either value missing are skipped. At
    most `MAX_FIT_SHARE` of the variance is taken out: the fit term was 11-19% of it in the calibration study, and a
    larger share is the noise of two variances subtracted, which could otherwise leave an interval of almost no
    width. With fewer than `MIN_REFITS` usable refitted resamples the interval is not given (NaN).
    """
    nan = float("nan")
    replicates = np.asarray(replicates, dtype=float)
    if fit_replicates is None:
        finite = replicates[np.isfinite(replicates)]
        variance = float(np.var(finite, ddof=1)) if len(finite) >= 2 else nan
    else:
        fit_replicates = np.asarray(fit_replicates, dtype=float)
        if fit_replicates.shape != replicates.shape:
            raise DataValidationError(f"fit_replicates has shape {fit_replicates.shape}, replicates "
                                      f"{replicates.shape}: they must be aligned resample by resample.")
        both = np.isfinite(replicates) & np.isfinite(fit_replicates)
        finite = replicates[both]
        variance = nan
        if len(finite) >= MIN_REFITS:
            total = float(np.var(finite, ddof=1))
            variance = max(total - float(np.var(fit_replicates[both], ddof=1)), (1 - MAX_FIT_SHARE) * total)
    if not np.isfinite(point) or len(finite) < 2 or not np.isfinite(variance):
        return Interval(point, nan, nan, nan, nan, n_clusters)
    se = float(np.sqrt(variance)) * _small_g(n_clusters)
    q = _t_quantile(confidence, n_clusters)
    p_value = float(2 * stats.t.sf(abs(point - null) / se, df=max(n_clusters - 1, 1))) if se > 0 else nan
    return Interval(point, point - q * se, point + q * se, se, p_value, n_clusters)


def headline_interval(
    y: np.ndarray, p: np.ndarray, design: Design, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
    pooled: bool = False,
) -> tuple[Interval, np.ndarray]:
    """The headline (or, with `pooled`, the pooled r) with its cluster-bootstrap interval and replicates."""
    check_resampling(n_boot, confidence)
    weights = cluster_weights(design, n_boot, seed)
    ones = np.ones((1, len(y)))
    if pooled:
        groups = np.zeros(len(y), dtype=int)
        point = float(weighted_within_r(y, p, groups, ones)[0])
        replicates = weighted_within_r(y, p, groups, weights)
        return correlation_interval(point, replicates, design.n_clusters, confidence), replicates
    point = float(mean_fold_r(y, p, design.folds, ones)[0])
    replicates = mean_fold_r(y, p, design.folds, weights)
    return linear_interval(point, replicates, design.n_clusters, confidence), replicates


def permutation_p_value(
    observed: float, refit_statistic: Callable[[np.ndarray], float], y: np.ndarray, *, n_permutations: int,
    seed: int = 0, progress: Callable[[int], None] | None = None,
) -> tuple[float, np.ndarray]:
    """Two-sided permutation p-value: `refit_statistic(permuted y)` refits and scores the proxy on shuffled labels.

    p = (1 + #{|r_perm| >= |r_obs|}) / (1 + n_permutations); also returns the permutation statistics.
    """
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int | np.integer) or n_permutations < 1:
        raise ConfigError(f"n_permutations must be a positive integer, got {n_permutations!r}; e.g. 199.")
    rng = np.random.default_rng([seed, 7919])
    null = np.empty(n_permutations)
    for i in range(n_permutations):
        null[i] = refit_statistic(rng.permutation(y))
        if progress is not None:
            progress(i)
    exceed = np.sum(np.abs(null[np.isfinite(null)]) >= abs(observed) - 1e-12)
    return float((1 + exceed) / (1 + n_permutations)), null


# --------------------------------------------------------------------------------------------- paired comparison


@dataclass(frozen=True)
class Paired:
    """The difference a - b of two proxies' headline r on the same units, with its interval and p-value."""

    value_a: float
    value_b: float
    difference: Interval


def paired_difference(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, design: Design, *, n_boot: int = 1000,
    confidence: float = 0.95, seed: int = 0, folds_b: np.ndarray | None = None,
    replicates_a: np.ndarray | None = None, replicates_b: np.ndarray | None = None,
    fit_replicates_a: np.ndarray | None = None, fit_replicates_b: np.ndarray | None = None,
) -> Paired:
    """Headline r of a minus that of b, resampling the same clusters for both (a paired cluster bootstrap).

    `folds_b` gives b's test folds when they differ from a's (they should not for a like-for-like comparison).
    `replicates_a` / `replicates_b`: a proxy's headline on the `n_boot` resamples of `seed` when computed otherwise
    (refitted on each); a proxy without them is recomputed from its fixed scores on the same resamples.
    `fit_replicates_a` / `_b`: a refitted proxy's refits' headlines on the observed units (see `linear_interval`);
    a fixed-score proxy's is its observed headline on every resample.
    """
    check_resampling(n_boot, confidence)
    groups_b = design.folds if folds_b is None else np.unique(np.asarray(folds_b).astype(str), return_inverse=True)[1]
    ones = np.ones((1, len(y)))
    a = float(mean_fold_r(y, p_a, design.folds, ones)[0])
    b = float(mean_fold_r(y, p_b, groups_b, ones)[0])
    weights = cluster_weights(design, n_boot, seed)
    if replicates_a is None:
        replicates_a = mean_fold_r(y, p_a, design.folds, weights)
    if replicates_b is None:
        replicates_b = mean_fold_r(y, p_b, groups_b, weights)
    fit = None
    if fit_replicates_a is not None or fit_replicates_b is not None:
        n = len(replicates_a)
        fit = ((np.full(n, a) if fit_replicates_a is None else np.asarray(fit_replicates_a, dtype=float))
               - (np.full(n, b) if fit_replicates_b is None else np.asarray(fit_replicates_b, dtype=float)))
    return Paired(a, b, linear_interval(a - b, replicates_a - replicates_b, design.n_clusters, confidence,
                                        fit_replicates=fit))


# ------------------------------------------------------------------------------------------- per-model correlation


@dataclass(frozen=True)
class ModelCorrelation:
    """Correlation of per-model mean prediction with per-model mean human accuracy, or why it is not given."""

    n_models: int
    pearson: Interval | None
    spearman: float | None
    reason: str | None  # set when not computed

    @property
    def text(self) -> str:
        """'0.71 [0.20, 0.93]' or 'n/a (3 models)'."""
        if self.pearson is None:
            return f"n/a ({self.n_models} models)"
        return f"{self.pearson.value:.2f} [{self.pearson.ci_low:.2f}, {self.pearson.ci_high:.2f}]"


def model_correlation(
    y: np.ndarray, scores: np.ndarray, models: np.ndarray, base_models: np.ndarray, *, n_boot: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> ModelCorrelation:  # n_boot and seed: kept for a resampling CI; Fisher's z needs neither
    """Per-model r from one shared scoring of all units (raw scores or one calibration), only with >= 8 models.

    The means are taken per model (hard variants count with their base model). The CI is Fisher's z interval over
    the G base models (se 1/sqrt(G-3)): a bootstrap over 9 models covered 0.78 (percentile) or 1.00 (bootstrap-t)
    of null runs in benchmarks/validation_calibration.py, Fisher's z about nominal. p: the t test of the correlation.
    """
    names, codes = np.unique(np.asarray(models, dtype=object).astype(str), return_inverse=True)
    base_of = {str(m): str(b) for m, b in zip(np.asarray(models).astype(str), np.asarray(base_models).astype(str))}
    n_base = len(set(base_of.values()))
    if n_base < MIN_MODELS_FOR_PER_MODEL:
        reason = (f"per-model correlations need at least {MIN_MODELS_FOR_PER_MODEL} models; "
                  f"this mode has {n_base}")
        return ModelCorrelation(n_base, None, None, reason)
    counts = np.bincount(codes, minlength=len(names))
    mean_y = np.bincount(codes, y, len(names)) / counts
    mean_s = np.bincount(codes, scores, len(names)) / counts
    if np.ptp(mean_y) == 0 or np.ptp(mean_s) == 0:
        return ModelCorrelation(n_base, None, None, "model means do not vary")
    _, base_codes = np.unique(np.array([base_of[str(n)] for n in names]), return_inverse=True)
    point = float(np.corrcoef(mean_y, mean_s)[0, 1])
    n_points = len(set(base_codes.tolist()))
    z, se = np.arctanh(np.clip(point, -_R_CLIP, _R_CLIP)), 1.0 / np.sqrt(max(n_points - 3, 1))
    q = float(stats.norm.ppf(0.5 + confidence / 2))
    df = len(names) - 2  # p-value: the usual t test of a correlation over the model means
    p_value = float(2 * stats.t.sf(abs(point) * np.sqrt(df / max(1 - point**2, 1e-12)), df))
    spearman = float(stats.spearmanr(mean_y, mean_s).statistic)
    interval = Interval(point, float(np.tanh(z - q * se)), float(np.tanh(z + q * se)), float(se), p_value, n_points)
    return ModelCorrelation(n_base, interval, spearman, None)


# --------------------------------------------------------------------------------------------------- ceilings


@dataclass(frozen=True)
class SplitHalves:
    """Per-unit accuracies of random participant halves: (n_splits, n_units) each, NaN where a half saw no trial."""

    a: np.ndarray
    b: np.ndarray

    def subset(self, index: np.ndarray) -> SplitHalves:
        """The columns of some units."""
        return SplitHalves(self.a[:, index], self.b[:, index])


def ceiling_replicates(halves: SplitHalves, groups: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Split-half (Spearman-Brown) ceiling of the headline, for each row of unit `weights` (B, n) -> (B,).

    Per split: r between the two halves' accuracies after centring both within each group (fold), reliability =
    2r / (1 + r) clipped to [0, 1], ceiling = sqrt(reliability); mean over splits. Pooling the centred halves over
    folds (rather than one r per fold) keeps the few units of a fold from biasing the ceiling low. Units missing
    from a half get weight 0 in that split.
    """
    values = []
    for a, b in zip(halves.a, halves.b):
        present = np.isfinite(a) & np.isfinite(b)
        w = np.atleast_2d(weights) * present
        r = weighted_within_r(np.where(present, a, 0.0), np.where(present, b, 0.0), groups, w)
        values.append(np.sqrt(np.clip(2 * r / (1 + r), 0.0, 1.0)))
    return np.nanmean(np.stack(values), axis=0)


@dataclass(frozen=True)
class CeilingRatio:
    """Headline r over the matching split-half ceiling, with an interval that includes the ceiling's uncertainty."""

    ceiling: float
    ratio: Interval
    flag: str | None


def ceiling_ratio(
    y: np.ndarray, p: np.ndarray, halves: SplitHalves, design: Design, *, n_boot: int = 1000,
    confidence: float = 0.95, seed: int = 0, replicates: np.ndarray | None = None,
    fit_replicates: np.ndarray | None = None,
) -> CeilingRatio:
    """r / ceiling with r and ceiling recomputed on the same cluster resamples (ceiling uncertainty propagated).

    `replicates`: the headline on the first `len(replicates)` resamples of `seed` when they were computed otherwise
    (a fitted proxy refitted on each); else it is recomputed from the fixed scores `p` on `n_boot` resamples.
    `fit_replicates`: the refits' headlines on the observed units (see `linear_interval`), divided by the observed
    ceiling.
    """
    ones = np.ones((1, len(y)))
    ceiling = float(ceiling_replicates(halves, design.folds, ones)[0])
    r = float(mean_fold_r(y, p, design.folds, ones)[0])
    weights = cluster_weights(design, n_boot if replicates is None else len(replicates), seed)
    if replicates is None:
        replicates = mean_fold_r(y, p, design.folds, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio_b = replicates / ceiling_replicates(halves, design.folds, weights)
        point = r / ceiling if ceiling > 0 else float("nan")
        fit_b = None if fit_replicates is None else np.asarray(fit_replicates, dtype=float) / ceiling
    if fit_b is None:
        ratio_b = ratio_b[np.isfinite(ratio_b)]
    interval = linear_interval(point, ratio_b, design.n_clusters, confidence, fit_replicates=fit_b)
    return CeilingRatio(ceiling, interval, ceiling_flag(interval))


def ceiling_flag(ratio: Interval) -> str | None:
    """A note for r/ceiling above 1: within noise of the ceiling, or above it beyond noise."""
    if not np.isfinite(ratio.value) or ratio.value <= 1.0:
        return None
    if np.isfinite(ratio.ci_low) and ratio.ci_low <= 1.0:
        return "at the ceiling within noise (r/ceiling > 1, CI includes 1)"
    return "above the ceiling beyond noise: the ceiling estimate is too low for these units"

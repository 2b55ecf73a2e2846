"""Paired comparison of two validated proxies: is A's headline r higher than B's on the same units?

`compare_reports(a, b, mode=...)` needs only the two metric reports (their per-unit headline scores, folds and
human accuracies), so a leaderboard can compare stored reports without rerunning anything. The difference a - b
gets a paired cluster-bootstrap CI over models and a p-value (benchmark.validation.inference.paired_difference);
when either proxy is fitted (its report carries `refit_headlines`, its headline refitted on each cluster resample),
the other's headline is recomputed on the same resamples, so that the refit variance is in the interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from benchmark.api.errors import DataValidationError
from benchmark.validation.inference import Design, Paired, paired_difference
from benchmark.validation.report import MetricReport, PairedComparison
from benchmark.validation.splits import base_model


def compare_reports(
    a: MetricReport, b: MetricReport, *, mode: str, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> PairedComparison:
    """Headline r of `a` minus that of `b` in `mode`, on the units both scored, with CI and p-value."""
    result_a, result_b = a.mode(mode), b.mode(mode)
    rows_a = {(p.model, p.layer, p.channel): p for p in result_a.predictions}
    rows_b = {(p.model, p.layer, p.channel): p for p in result_b.predictions}
    if set(rows_a) != set(rows_b):
        only = sorted(set(rows_a) ^ set(rows_b))[:3]
        raise DataValidationError(
            f"{a.metric.name} and {b.metric.name} were validated on different units in mode {mode!r} (e.g. {only}); "
            "a paired comparison needs the same units: validate both in one run (--metrics A,B)."
        )
    keys = sorted(rows_a)
    human_a = np.array([rows_a[k].human for k in keys])
    human_b = np.array([rows_b[k].human for k in keys])
    if not np.allclose(human_a, human_b):
        raise DataValidationError(
            f"{a.metric.name} and {b.metric.name} were validated against different human accuracies; compare "
            "reports from the same human data."
        )
    missing = [r.metric.name for r, rows in ((a, rows_a), (b, rows_b))
               if any(rows[k].headline_score is None for k in keys)]
    if missing:
        raise DataValidationError(f"reports of {missing} carry no per-unit headline scores (written by an older "
                                  "imi-bench); rerun `imibench proxy validate`.")
    folds_a = np.array([rows_a[k].fold for k in keys])
    folds_b = np.array([rows_b[k].fold for k in keys])
    design = Design.make(folds_a, [base_model(k[0]) for k in keys])
    scores_a = np.array([rows_a[k].headline_score for k in keys])
    scores_b = np.array([rows_b[k].headline_score for k in keys])
    refitted = design.clustered_by_model and bool(result_a.refit_headlines or result_b.refit_headlines)
    if refitted:
        n_boot, seed = _stored_refits(a, b, mode)
        paired = _paired_refits(human_a, scores_a, scores_b, folds_b, design, a, b, mode, confidence, n_boot, seed)
    else:
        paired = paired_difference(human_a, scores_a, scores_b, design, n_boot=n_boot, confidence=confidence,
                                   seed=seed, folds_b=folds_b)
    d = paired.difference
    return PairedComparison(
        mode=mode, metric_a=a.metric.name, metric_b=b.metric.name, value_a=paired.value_a, value_b=paired.value_b,
        difference=d.value, ci_low=d.ci_low, ci_high=d.ci_high, p_value=d.p_value, n_units=len(keys),
        n_clusters=design.n_clusters, confidence=confidence, n_boot=n_boot,
        method=REFIT_PAIRED if refitted else "paired cluster bootstrap-t",
    )


REFIT_PAIRED = ("paired cluster bootstrap-t, fitted proxies refitted on every resample (the variance of the refits' "
                "fit to the observed units taken out)")


def _stored_refits(a: MetricReport, b: MetricReport, mode: str) -> tuple[int, int]:
    """The refit resamples' count and seed both reports agree on (a fitted proxy's stored replicates)."""
    fitted = [r for r in (a, b) if r.mode(mode).refit_headlines]
    settings = {(len(r.mode(mode).refit_headlines), r.scheme.seed) for r in fitted}
    if len(settings) > 1:
        raise DataValidationError(
            f"{a.metric.name} and {b.metric.name} were refitted on different resamples ({sorted(settings)} as "
            "(resamples, seed)); validate both in one run (--metrics A,B) so that they share them."
        )
    return len(fitted[0].mode(mode).refit_headlines), fitted[0].scheme.seed


def _paired_refits(
    y: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, folds_b: np.ndarray, design: Design,
    a: MetricReport, b: MetricReport, mode: str, confidence: float, n_refits: int, seed: int,
) -> Paired:
    """a - b on the fitted proxies' `n_refits` refit resamples of `seed`: a fitted proxy's stored headlines, a
    fixed-score proxy's headline recomputed on the same cluster draws."""
    older = [r.metric.name for r in (a, b) if r.mode(mode).refit_headlines and r.mode(mode).refit_fit_headlines is None]
    if older:
        raise DataValidationError(f"reports of {older} carry no refit_fit_headlines (written by an older imi-bench); "
                                  "rerun `imibench proxy validate`.")

    def replicates(values: list[float | None] | None) -> np.ndarray | None:
        return np.array([np.nan if v is None else v for v in values], dtype=float) if values else None

    ma, mb = a.mode(mode), b.mode(mode)
    return paired_difference(y, scores_a, scores_b, design, n_boot=n_refits, confidence=confidence, seed=seed,
                             folds_b=folds_b, replicates_a=replicates(ma.refit_headlines),
                             replicates_b=replicates(mb.refit_headlines),
                             fit_replicates_a=replicates(ma.refit_fit_headlines),
                             fit_replicates_b=replicates(mb.refit_fit_headlines))


def all_comparisons(
    reports: Sequence[MetricReport], *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0
) -> list[PairedComparison]:
    """Every pair of validated reports (in the order given: a before b), per mode both have."""
    ok = [r for r in reports if r.status == "ok"]
    comparisons = []
    for a, b in combinations(ok, 2):
        for mode in [m.mode for m in a.modes if m.mode in {x.mode for x in b.modes}]:
            comparisons.append(compare_reports(a, b, mode=mode, n_boot=max(n_boot, 2), confidence=confidence,
                                               seed=seed))
    return comparisons


def format_comparisons(comparisons: Sequence[PairedComparison]) -> str:
    """One line per pair: 'natural  mis-pixel - coherence-pixel = +0.11 [0.03, 0.19], p = 0.012'."""
    lines = []
    for c in comparisons:
        if c.difference is None:
            lines.append(f"  {c.mode:<10} {c.metric_a} - {c.metric_b}: n/a")
            continue
        ci = "" if c.ci_low is None else f" [{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
        p = "" if c.p_value is None else f", p = {c.p_value:.3g}"
        lines.append(f"  {c.mode:<10} {c.metric_a} - {c.metric_b} = {c.difference:+.3f}{ci}{p}")
    return "\n".join(lines)

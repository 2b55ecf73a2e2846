"""Compare two result files unit by unit: the paired difference of their scores, with a bootstrap CI and a test.

Both results must score the same units (layer, channel) of the same architecture with the same proxy, protocol and
image source; the units scored in both are paired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from benchmark.api.errors import ConfigError
from benchmark.results.schema import ResultFile, Summary


@dataclass(frozen=True)
class PairedComparison:
    """Scores of A and B over the units scored in both, their mean difference A - B with a CI, and a paired test."""

    label_a: str
    label_b: str
    a: Summary
    b: Summary
    n_pairs: int
    difference: float
    difference_ci: tuple[float, float]
    p_value: float
    test: str = "Wilcoxon signed-rank (two-sided)"
    confidence: float = 0.95

    @property
    def cis_overlap(self) -> bool:
        """True when the two models' CIs overlap."""
        return self.a.ci_low <= self.b.ci_high and self.b.ci_low <= self.a.ci_high


def compare_results(
    a: ResultFile, b: ResultFile, *, labels: tuple[str, str] = ("A", "B"), n_boot: int = 10_000,
    confidence: float = 0.95, seed: int = 0,
) -> PairedComparison:
    """Pair the units both results scored; bootstrap the mean difference over units and test it (Wilcoxon)."""
    _check_comparable(a, b)
    scores_a = {(u.layer, u.channel): u.score for u in a.scores.units}
    scores_b = {(u.layer, u.channel): u.score for u in b.scores.units}
    keys = [k for k in scores_a if k in scores_b]
    if len(keys) < 2:
        raise ConfigError(
            f"The two results share {len(keys)} scored unit(s); a paired comparison needs at least 2. Score the same "
            "units (same architecture and unit selection) in both."
        )
    x = np.array([scores_a[k] for k in keys])
    y = np.array([scores_b[k] for k in keys])
    diff = x - y
    boot = stats.bootstrap((diff,), np.mean, n_resamples=n_boot, confidence_level=confidence, method="percentile",
                           random_state=np.random.default_rng(seed))
    p_value = float(stats.wilcoxon(x, y).pvalue) if np.any(diff != 0) else 1.0
    return PairedComparison(
        label_a=labels[0], label_b=labels[1], a=a.scores.model, b=b.scores.model, n_pairs=len(keys),
        difference=float(diff.mean()),
        difference_ci=(float(boot.confidence_interval.low), float(boot.confidence_interval.high)),
        p_value=p_value, confidence=confidence,
    )


def format_comparison(c: PairedComparison) -> str:
    """One line: both scores with their CIs, the paired difference with its CI, and the test's p-value."""
    level = f"{c.confidence:.0%}"
    return (
        f"{c.label_a} {c.a.mean:.3f} [{c.a.ci_low:.3f}, {c.a.ci_high:.3f}] vs {c.label_b} {c.b.mean:.3f} "
        f"[{c.b.ci_low:.3f}, {c.b.ci_high:.3f}] ({level} CIs over units); paired difference {c.difference:+.3f} "
        f"[{c.difference_ci[0]:+.3f}, {c.difference_ci[1]:+.3f}] over {c.n_pairs} units, {c.test} "
        f"p = {c.p_value:.2g}"
    )


def _check_comparable(a: ResultFile, b: ResultFile) -> None:
    checks = {
        "proxy": ((a.proxy.name, a.proxy.version, a.proxy.fitted_params), (b.proxy.name, b.proxy.version,
                                                                            b.proxy.fitted_params)),
        "protocol": (a.protocol.task, b.protocol.task),
        "image source": (a.protocol.image_source.ids_sha256, b.protocol.image_source.ids_sha256),
        "unit selection": (a.protocol.unit_selection, b.protocol.unit_selection),
    }
    differing = [name for name, (left, right) in checks.items() if left != right]
    if differing:
        raise ConfigError(
            f"Results {a.submission.id!r} and {b.submission.id!r} differ in {', '.join(differing)}; a paired "
            "comparison needs the same proxy, protocol, image source and unit selection. Score both with one spec."
        )

"""Summaries of unit scores: mean, 5th percentile and a bootstrap CI over units."""

from __future__ import annotations

import numpy as np

from benchmark.api.errors import DataValidationError
from benchmark.results.schema import Summary


def summarize_scores(scores: np.ndarray, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> Summary:
    """Mean, 5th percentile and a percentile-bootstrap CI of the mean over units."""
    scores = np.asarray(scores, dtype=float)
    if scores.size == 0 or not np.isfinite(scores).all():
        raise DataValidationError(f"Cannot summarise {scores.size} unit scores (empty or not finite).")
    boot = np.random.default_rng(seed).choice(scores, size=(n_boot, scores.size), replace=True).mean(axis=1)
    alpha = (1.0 - confidence) / 2
    return Summary(
        n_units=int(scores.size),
        mean=float(scores.mean()),
        p5=float(np.percentile(scores, 5)),
        ci_low=float(np.quantile(boot, alpha)),
        ci_high=float(np.quantile(boot, 1 - alpha)),
    )

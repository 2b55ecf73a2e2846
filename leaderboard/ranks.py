"""Rank confidence intervals from a bootstrap over each model's per-unit scores (as arena-style boards do).

Each model's units are resampled with replacement N_BOOT times (seeded by the submission id, so a page reload
shows the same intervals); in every replicate the models of one comparable group are ranked by their resampled
mean (1 = best, equal means share the better rank). A model's rank interval is the 2.5th and 97.5th percentile of
its replicate ranks; its rank is the position of its observed mean. "3 (2-6)" reads: third, and with 95%
bootstrap confidence between second and sixth. A result file without per-unit scores falls back on a normal
approximation of its recorded 95% CI. A model with more than EXACT_MAX_UNITS units uses the normal approximation
of the bootstrap mean (mean, sd / sqrt(n)), which the exact bootstrap matches at that size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

N_BOOT = 1000
EXACT_MAX_UNITS = 4000
CHUNK = 200
Z95 = 1.959963984540054


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def bootstrap_means(scores: Sequence[float], *, seed_name: str, n_boot: int = N_BOOT,
                    fallback_ci: tuple[float, float, float] | None = None) -> np.ndarray:
    """`n_boot` bootstrap replicates of the mean of `scores` (or, with no scores, draws from `fallback_ci`)."""
    rng = np.random.default_rng(_seed(seed_name))
    values = np.asarray(scores, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        mean, low, high = fallback_ci if fallback_ci is not None else (np.nan, np.nan, np.nan)
        sd = max(float(high) - float(low), 0.0) / (2 * Z95)
        return rng.normal(mean, sd, n_boot) if np.isfinite(mean) else np.full(n_boot, np.nan)
    if values.size > EXACT_MAX_UNITS:
        return rng.normal(values.mean(), values.std(ddof=1) / np.sqrt(values.size), n_boot)
    out = np.empty(n_boot)
    for start in range(0, n_boot, CHUNK):
        stop = min(start + CHUNK, n_boot)
        out[start:stop] = values[rng.integers(0, values.size, (stop - start, values.size))].mean(axis=1)
    return out


def _competition_rank(values: np.ndarray) -> np.ndarray:
    """Ranks (1 = largest) along axis 0; equal values share the better rank; NaN ranks last."""
    filled = np.where(np.isnan(values), -np.inf, values)
    order = np.sort(filled, axis=0)[::-1]  # descending per column
    ranks = np.empty(filled.shape, dtype=int)
    for column in range(filled.shape[1]):
        ranks[:, column] = np.searchsorted(-order[:, column], -filled[:, column], side="left") + 1
    return ranks


def rank_intervals(point: Sequence[float], replicates: np.ndarray, *,
                   confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rank, low, high) per model from observed means `point` (M,) and bootstrap means `replicates` (M, B)."""
    point = np.asarray(point, dtype=float)
    if point.size == 0:
        empty = np.zeros(0, dtype=int)
        return empty, empty, empty
    rank = _competition_rank(point[:, None])[:, 0]
    boot_ranks = _competition_rank(np.asarray(replicates, dtype=float))
    tail = (1 - confidence) / 2
    low = np.quantile(boot_ranks, tail, axis=1, method="inverted_cdf").astype(int)
    high = np.quantile(boot_ranks, 1 - tail, axis=1, method="inverted_cdf").astype(int)
    return rank, np.minimum(low, rank), np.maximum(high, rank)


def format_rank(rank: int, low: int, high: int) -> str:
    """'3 (2-6)', or '3' when the interval is the rank itself."""
    return f"{rank}" if low == high == rank else f"{rank} ({low}-{high})"

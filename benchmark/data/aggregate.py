"""Per-unit human accuracy with confidence intervals, per-model means, and noise ceilings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from benchmark.api.errors import DataValidationError
from benchmark.api.types import UNIT_KEY, UNIT_TABLE_COLUMNS, NoiseCeiling

_BOOT_CHUNK = 200  # bootstrap replicates computed per matrix product, to bound memory


@dataclass(frozen=True)
class _CountMatrices:
    """Trials folded into participant x unit count matrices (sparse)."""

    units: pd.DataFrame  # one row per unit, in column order of the matrices
    participants: np.ndarray
    n_correct: sparse.csr_matrix  # (participants, units)
    n_trials: sparse.csr_matrix


def _count_matrices(trials: pd.DataFrame) -> _CountMatrices:
    if trials.empty:
        raise DataValidationError("No trials left to aggregate (after exclusions the table is empty).")
    unit_codes, units = _factorize_units(trials)
    part_codes, participants = pd.factorize(trials["participant_id"], sort=True)
    shape = (len(participants), len(units))
    correct = trials["correct"].astype(bool).to_numpy(dtype=np.float64)
    n_correct = sparse.csr_matrix((correct, (part_codes, unit_codes)), shape=shape)
    n_trials = sparse.csr_matrix((np.ones_like(correct), (part_codes, unit_codes)), shape=shape)
    return _CountMatrices(units, np.asarray(participants), n_correct, n_trials)


def _factorize_units(trials: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    keys = trials[list(UNIT_KEY)]
    grouped = keys.groupby(list(UNIT_KEY), sort=True, dropna=False).ngroup().to_numpy()
    units = keys.drop_duplicates().sort_values(list(UNIT_KEY)).reset_index(drop=True)
    return grouped, units


def unit_accuracy(
    trials: pd.DataFrame,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-unit (model, layer, channel, mode) proportion correct with its Wilson CI (primary) and a participant
    bootstrap CI.

    `trials` must already have the exclusions applied. `ci_low`/`ci_high` are the Wilson score interval, which
    covers the true accuracy at about the nominal rate from 10 responses on; the participant bootstrap
    (`boot_low`/`boot_high`, participants resampled with their trials) undercovers with few participants per unit
    (0.71 / 0.90 / 0.93 at 10 / 30 / 100 responses in the simulator) and is kept for comparison.
    """
    counts = _count_matrices(trials)
    k = np.asarray(counts.n_correct.sum(axis=0)).ravel()
    n = np.asarray(counts.n_trials.sum(axis=0)).ravel()
    table = counts.units.copy()
    table["n_trials"] = n.astype(int)
    table["n_participants"] = np.asarray((counts.n_trials > 0).sum(axis=0)).ravel().astype(int)
    table["accuracy"] = k / n
    wilson = [stats.binomtest(int(ki), int(ni)).proportion_ci(confidence, method="wilson") for ki, ni in zip(k, n)]
    table["ci_low"] = table["wilson_low"] = [w.low for w in wilson]
    table["ci_high"] = table["wilson_high"] = [w.high for w in wilson]
    table["boot_low"], table["boot_high"] = _participant_bootstrap(counts, n_boot=n_boot, confidence=confidence,
                                                                   seed=seed)
    return table[list(UNIT_TABLE_COLUMNS)]


def _participant_bootstrap(
    counts: _CountMatrices, *, n_boot: int, confidence: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_part = len(counts.participants)
    samples = []
    for start in range(0, n_boot, _BOOT_CHUNK):
        size = min(_BOOT_CHUNK, n_boot - start)
        weights = rng.multinomial(n_part, np.full(n_part, 1.0 / n_part), size=size).astype(np.float64)
        k = np.asarray(counts.n_correct.T @ weights.T).T  # (size, units)
        n = np.asarray(counts.n_trials.T @ weights.T).T
        with np.errstate(invalid="ignore", divide="ignore"):
            samples.append(np.where(n > 0, k / n, np.nan))
    boot = np.concatenate(samples)
    alpha = (1.0 - confidence) / 2
    return np.nanquantile(boot, alpha, axis=0), np.nanquantile(boot, 1 - alpha, axis=0)


def model_accuracy(
    unit_table: pd.DataFrame,
    trials: pd.DataFrame | None = None,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per (model, mode): unweighted mean of unit accuracies with a bootstrap-over-units CI (the published method)."""
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2
    rows = []
    for (model, mode), group in unit_table.groupby(["model", "mode"], sort=True):
        acc = group["accuracy"].to_numpy(dtype=float)
        boot = rng.choice(acc, size=(n_boot, len(acc)), replace=True).mean(axis=1)
        row = {
            "model": model,
            "mode": mode,
            "n_units": len(acc),
            "n_trials": int(group["n_trials"].sum()),
            "accuracy": float(acc.mean()),
            "ci_low": float(np.quantile(boot, alpha)),
            "ci_high": float(np.quantile(boot, 1 - alpha)),
        }
        if trials is not None:
            mask = (trials["model"] == model) & (trials["mode"] == mode)
            row["n_participants"] = int(trials.loc[mask, "participant_id"].nunique())
        rows.append(row)
    return pd.DataFrame(rows)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of two (repeats, units) arrays, ignoring NaN columns per row."""
    valid = ~(np.isnan(a) | np.isnan(b))
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        x, y = a[i, valid[i]], b[i, valid[i]]
        if len(x) >= 3 and x.std() > 0 and y.std() > 0:
            out[i] = np.corrcoef(x, y)[0, 1]
    return out


def _mode_counts(trials: pd.DataFrame, mode: str) -> _CountMatrices:
    subset = trials[trials["mode"] == mode]
    if subset.empty:
        valid = sorted(trials["mode"].dropna().unique().tolist())
        raise DataValidationError(f"No trials with mode {mode!r}; modes present: {valid}.")
    return _count_matrices(subset)


def spearman_brown(r: np.ndarray | float, factor: float = 2.0) -> np.ndarray | float:
    """Spearman-Brown prophecy: reliability of a measure `factor` times as long as one with reliability r."""
    return factor * np.asarray(r) / (1.0 + (factor - 1.0) * np.asarray(r))


def split_half_accuracies(
    trials: pd.DataFrame, *, mode: str, n_splits: int = 200, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per-unit accuracy in random halves of the participants: (units, a, b), a and b of shape (n_splits, n_units).

    Units are in UNIT_KEY order (as `unit_accuracy`); NaN where a half has no trial of the unit.
    """
    counts = _mode_counts(trials, mode)
    rng = np.random.default_rng(seed)
    n_part = len(counts.participants)
    halves = np.zeros((n_splits, n_part))
    for i in range(n_splits):
        halves[i, rng.permutation(n_part)[: n_part // 2]] = 1.0
    acc = []
    for mask in (halves, 1.0 - halves):
        k = np.asarray(counts.n_correct.T @ mask.T).T
        n = np.asarray(counts.n_trials.T @ mask.T).T
        with np.errstate(invalid="ignore", divide="ignore"):
            acc.append(np.where(n > 0, k / n, np.nan))
    return counts.units, acc[0], acc[1]


def split_half_ceiling(trials: pd.DataFrame, *, mode: str, n_splits: int = 200, seed: int = 0) -> NoiseCeiling:
    """Noise ceiling from random split halves of participants, Spearman-Brown corrected (the default ceiling).

    Each split assigns every participant to one half, correlates the per-unit accuracies of the two halves
    (r), and corrects to full length: reliability = 2r / (1 + r). The ceiling on the correlation of any
    predictor with the observed per-unit accuracy is sqrt(reliability). It is biased low with few responses
    per unit (halves are noisy and the correction is not exact); `sd` is the spread over splits, not a standard
    error: validation propagates the ceiling's sampling uncertainty by resampling models.
    """
    counts_units, a, b = split_half_accuracies(trials, mode=mode, n_splits=n_splits, seed=seed)
    r = _pearson_rows(a, b)
    reliability = np.clip(spearman_brown(r), 0.0, 1.0)
    ceiling = np.sqrt(reliability)
    return NoiseCeiling(
        method="split_half",
        mode=mode,
        n_units=len(counts_units),
        n_repeats=n_splits,
        mean=float(np.nanmean(ceiling)),
        sd=float(np.nanstd(ceiling)),
        reliability=float(np.nanmean(reliability)),
    )


def binomial_ceiling(unit_table: pd.DataFrame, *, mode: str, n_repeats: int = 1000, seed: int = 0) -> NoiseCeiling:
    """Noise ceiling by binomial simulation: the MIS paper's method, biased high at few responses per unit.

    Each repeat draws every unit's responses anew from a binomial with the unit's observed accuracy and
    trial count, and correlates the simulated accuracies with the observed ones. Because it simulates from the
    observed (already noisy) accuracies, it overstates the ceiling: by +0.18 / +0.07 / +0.015 at 10 / 30 / 100
    responses per unit in the simulator. Shown beside the split-half ceiling for comparison with the paper only.
    """
    units = unit_table[unit_table["mode"] == mode]
    if units.empty:
        raise DataValidationError(f"No units with mode {mode!r} in the unit table.")
    rng = np.random.default_rng(seed)
    acc = units["accuracy"].to_numpy(dtype=float)
    n = units["n_trials"].to_numpy(dtype=int)
    simulated = rng.binomial(n, acc, size=(n_repeats, len(acc))) / n
    r = _pearson_rows(np.broadcast_to(acc, simulated.shape), simulated)
    return NoiseCeiling(
        method="binomial",
        mode=mode,
        n_units=len(acc),
        n_repeats=n_repeats,
        mean=float(np.nanmean(r)),
        sd=float(np.nanstd(r)),
    )

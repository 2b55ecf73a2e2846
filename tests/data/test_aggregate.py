import numpy as np
import pandas as pd
import pytest

from benchmark.api.errors import DataValidationError
from benchmark.api.types import UNIT_TABLE_COLUMNS
from benchmark.data.aggregate import (
    binomial_ceiling,
    model_accuracy,
    spearman_brown,
    split_half_ceiling,
    unit_accuracy,
)
from tests.data.factory import planted_trials


def _analytic_split_half_ceiling(p: np.ndarray, n: int) -> float:
    noise = np.mean(p * (1 - p) / n)
    return float(np.sqrt(p.var() / (p.var() + noise)))


def _analytic_binomial_ceiling(p: np.ndarray, n: int) -> float:
    noise = np.mean(p * (1 - p) / n)
    return float(np.sqrt((p.var() + noise) / (p.var() + 2 * noise)))


def test_unit_table_counts_and_point_estimates():
    trials = planted_trials(np.array([0.9, 0.6, 0.75]), n_participants=20, seed=1)
    table = unit_accuracy(trials, n_boot=200)
    assert list(table.columns) == list(UNIT_TABLE_COLUMNS)
    assert (table["n_trials"] == 20).all() and (table["n_participants"] == 20).all()
    expected = trials.groupby("channel")["correct"].mean().to_numpy(dtype=float)
    np.testing.assert_allclose(table.sort_values("channel")["accuracy"], expected)
    assert (table["ci_low"] <= table["accuracy"]).all() and (table["accuracy"] <= table["ci_high"]).all()
    assert (table["wilson_low"] <= table["accuracy"]).all() and (table["accuracy"] <= table["wilson_high"]).all()


def test_wilson_interval_matches_the_closed_form():
    trials = planted_trials(np.array([0.8]), n_participants=10, seed=0)
    trials["correct"] = pd.array([True] * 8 + [False] * 2, dtype="boolean")
    row = unit_accuracy(trials, n_boot=50).iloc[0]
    z, p, n = 1.959963984540054, 0.8, 10
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert row["wilson_low"] == pytest.approx(centre - half, abs=1e-9)
    assert row["wilson_high"] == pytest.approx(centre + half, abs=1e-9)


def test_bootstrap_ci_covers_planted_accuracy():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.55, 0.95, size=80)
    table = unit_accuracy(planted_trials(truth, n_participants=40, seed=3), n_boot=500).sort_values("channel")
    covered = (table["ci_low"].to_numpy() <= truth) & (truth <= table["ci_high"].to_numpy())
    assert covered.mean() >= 0.85
    assert np.corrcoef(table["accuracy"], truth)[0, 1] > 0.7


def test_bootstrap_resamples_participants_not_trials():
    # one participant answered every trial of unit 0: resampling participants cannot vary its accuracy
    trials = planted_trials(np.array([0.7, 0.7]), n_participants=12, seed=2)
    trials.loc[trials["channel"] == 0, "participant_id"] = "P_only"
    trials.loc[trials["channel"] == 0, "trial_index"] = np.arange(12)
    row = unit_accuracy(trials, n_boot=300).set_index("channel").loc[0]
    assert row["n_participants"] == 1
    assert row["boot_low"] == pytest.approx(row["accuracy"]) and row["boot_high"] == pytest.approx(row["accuracy"])
    assert row["wilson_high"] - row["wilson_low"] > 0.3
    # the primary per-unit CI is Wilson, which a single participant cannot collapse
    assert (row["ci_low"], row["ci_high"]) == (row["wilson_low"], row["wilson_high"])


def test_model_means_are_unweighted_over_units_with_ci():
    truth = np.linspace(0.55, 0.95, 30)
    trials = planted_trials(truth, n_participants=30, seed=4)
    units = unit_accuracy(trials, n_boot=100)
    models = model_accuracy(units, trials)
    for row in models.itertuples():
        acc = units.loc[units["model"] == row.model, "accuracy"]
        assert row.accuracy == pytest.approx(acc.mean())
        assert row.ci_low < row.accuracy < row.ci_high
        assert row.n_units == 10 and row.n_participants == 30


def test_spearman_brown():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)
    assert spearman_brown(0.0) == 0.0


@pytest.mark.parametrize("n_participants", [20, 60])
def test_split_half_ceiling_matches_known_reliability(n_participants):
    truth = np.random.default_rng(5).uniform(0.5, 0.95, size=300)
    trials = planted_trials(truth, n_participants=n_participants, seed=6)
    ceiling = split_half_ceiling(trials, mode="natural", n_splits=100)
    assert ceiling.mean == pytest.approx(_analytic_split_half_ceiling(truth, n_participants), abs=0.04)
    assert ceiling.reliability == pytest.approx(ceiling.mean**2, abs=0.02)
    assert 0 < ceiling.sd < 0.05


def test_binomial_ceiling_matches_its_expectation():
    truth = np.random.default_rng(7).uniform(0.5, 0.95, size=300)
    trials = planted_trials(truth, n_participants=30, seed=8)
    ceiling = binomial_ceiling(unit_accuracy(trials, n_boot=10), mode="natural", n_repeats=300)
    assert ceiling.mean == pytest.approx(_analytic_binomial_ceiling(truth, 30), abs=0.04)
    assert ceiling.sd > 0


def test_split_half_ceiling_is_low_without_signal_while_binomial_is_not():
    trials = planted_trials(np.full(200, 0.75), n_participants=30, seed=9)
    assert split_half_ceiling(trials, mode="natural", n_splits=50).mean < 0.35
    # the binomial method correlates the data with noisy copies of itself, so it stays near sqrt(1/2)
    assert binomial_ceiling(unit_accuracy(trials, n_boot=10), mode="natural").mean > 0.6


def test_unknown_mode_and_empty_table_are_clear_errors():
    trials = planted_trials(np.array([0.7, 0.8, 0.9]))
    with pytest.raises(DataValidationError, match="optimized.*modes present.*natural"):
        split_half_ceiling(trials, mode="optimized")
    with pytest.raises(DataValidationError, match="empty"):
        unit_accuracy(trials.iloc[:0])


def test_primary_per_unit_ci_is_wilson_and_keeps_coverage_at_ten_responses():
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.55, 0.95, size=400)
    table = unit_accuracy(planted_trials(truth, n_participants=10, seed=6), n_boot=300).sort_values("channel")
    wilson = (table["ci_low"].to_numpy() <= truth) & (truth <= table["ci_high"].to_numpy())
    boot = (table["boot_low"].to_numpy() <= truth) & (truth <= table["boot_high"].to_numpy())
    assert (table["ci_low"] == table["wilson_low"]).all()
    assert wilson.mean() >= 0.92 and boot.mean() < wilson.mean()

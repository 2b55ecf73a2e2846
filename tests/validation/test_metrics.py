"""Validation metrics: known values, calibration on hand-made examples, bootstrap CIs, ceiling normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.api.types import NoiseCeiling
from benchmark.validation.metrics import (
    bootstrap_ci,
    calibration_error,
    calibration_slope,
    ceiling_normalised,
    kendall_score,
    mean_absolute_error,
    model_pearson_score,
    model_spearman_score,
    pearson_score,
    spearman_score,
    within_group_pearson_score,
)

CORRELATIONS = [pearson_score, spearman_score, kendall_score]
Y = np.array([0.55, 0.62, 0.71, 0.8, 0.93, 0.6])


@pytest.mark.parametrize("score", CORRELATIONS)
def test_perfect_prediction_scores_one_and_reversed_minus_one(score):
    assert score(Y, Y) == pytest.approx(1.0)
    assert score(Y, 1.0 - Y) == pytest.approx(-1.0)


@pytest.mark.parametrize("score", CORRELATIONS)
def test_correlations_are_rank_or_scale_invariant_where_they_should_be(score):
    assert score(Y, 0.2 * Y + 0.3) == pytest.approx(1.0)


@pytest.mark.parametrize("score", CORRELATIONS)
def test_constant_prediction_scores_zero_and_constant_humans_nan(score):
    assert score(Y, np.full_like(Y, 0.5)) == 0.0
    assert math.isnan(score(np.full_like(Y, 0.7), Y))
    assert math.isnan(score(Y[:2], Y[:2]))  # fewer than 3 units


def test_mismatched_or_nan_inputs_raise_with_the_shapes():
    with pytest.raises(DataValidationError, match=r"\(6,\) and \(5,\)"):
        pearson_score(Y, Y[:5])
    with pytest.raises(DataValidationError, match="NaN"):
        mean_absolute_error(Y, np.r_[Y[:5], np.nan])


def test_mean_absolute_error_known_value():
    assert mean_absolute_error([0.5, 1.0], [0.7, 0.6]) == pytest.approx(0.3)
    assert mean_absolute_error(Y, Y) == 0.0


def test_calibration_error_equal_count_bins_by_prediction():
    # bins by prediction: {0.6, 0.6} vs humans {0.5, 0.5}; {0.9, 0.9} vs {1.0, 1.0} -> 0.1 each
    assert calibration_error([0.5, 1.0, 0.5, 1.0], [0.6, 0.9, 0.6, 0.9], n_bins=2) == pytest.approx(0.1)
    # one bin: |mean prediction - mean human| only
    assert calibration_error([0.5, 1.0], [0.8, 0.7], n_bins=1) == pytest.approx(0.0)
    # unequal errors, weighted by bin size (3 units, 2 bins of 2 and 1 units)
    value = calibration_error([0.5, 0.6, 0.9], [0.6, 0.6, 0.7], n_bins=2)
    assert value == pytest.approx((2 * abs(0.6 - 0.55) + 1 * abs(0.7 - 0.9)) / 3)
    assert calibration_error(Y, Y) == 0.0
    with pytest.raises(ConfigError, match="n_bins"):
        calibration_error(Y, Y, n_bins=0)


def test_calibration_slope_is_the_ols_slope_of_human_on_prediction():
    p = np.array([0.5, 0.6, 0.7, 0.8])
    assert calibration_slope(2 * p - 0.5, p) == pytest.approx(2.0)
    assert calibration_slope(p, p) == pytest.approx(1.0)
    assert math.isnan(calibration_slope(p, np.full(4, 0.7)))


def test_model_level_correlations_use_model_means_and_need_three_models():
    models = np.array(["a", "a", "b", "b", "c", "c"])
    human = np.array([0.6, 0.7, 0.8, 0.9, 0.5, 0.55])
    pred = human + np.array([0.05, -0.05, 0.1, -0.1, 0.0, 0.0])  # same model means, noisy units
    assert model_pearson_score(human, pred, models=models) == pytest.approx(1.0)
    assert model_spearman_score(human, pred, models=models) == pytest.approx(1.0)
    assert math.isnan(model_pearson_score(human[:4], pred[:4], models=models[:4]))


def test_within_group_pearson_ignores_group_offsets():
    groups = np.repeat(["f0", "f1", "f2"], 4)
    within = np.tile([0.0, 0.05, 0.1, 0.15], 3)
    human = within + np.repeat([0.5, 0.6, 0.7], 4)
    shifted = within + np.repeat([0.8, 0.6, 0.4], 4)  # offsets opposite to the humans': pooled r is negative
    assert pearson_score(human, shifted) < 0
    assert within_group_pearson_score(human, shifted, groups=groups) == pytest.approx(1.0)
    assert within_group_pearson_score(human, np.repeat([0.8, 0.6, 0.4], 4), groups=groups) == 0.0
    assert math.isnan(within_group_pearson_score(human[:2], shifted[:2], groups=groups[:2]))


def test_bootstrap_ci_contains_the_estimate_and_shrinks_with_more_data():
    rng = np.random.default_rng(1)

    def sample(n):
        truth = rng.uniform(0.5, 1.0, n)
        return truth + rng.normal(0, 0.1, n), truth

    small_y, small_p = sample(30)
    big_y, big_p = sample(600)
    lo_s, hi_s = bootstrap_ci(pearson_score, small_y, small_p, n_boot=400, seed=0)
    lo_b, hi_b = bootstrap_ci(pearson_score, big_y, big_p, n_boot=400, seed=0)
    assert lo_s <= pearson_score(small_y, small_p) <= hi_s
    assert lo_b <= pearson_score(big_y, big_p) <= hi_b
    assert hi_b - lo_b < (hi_s - lo_s) / 2


def test_bootstrap_ci_is_reproducible_and_resamples_groups():
    rng = np.random.default_rng(2)
    y = rng.uniform(0.5, 1, 40)
    p = y + rng.normal(0, 0.1, 40)
    groups = np.repeat(np.arange(10), 4)
    first = bootstrap_ci(mean_absolute_error, y, p, groups=groups, n_boot=200, seed=3)
    assert first == bootstrap_ci(mean_absolute_error, y, p, groups=groups, n_boot=200, seed=3)
    assert first[0] <= mean_absolute_error(y, p) <= first[1]
    with pytest.raises(DataValidationError, match="groups"):
        bootstrap_ci(mean_absolute_error, y, p, groups=groups[:5])


def test_bootstrap_ci_resamples_aligned_arrays_with_the_units():
    models = np.repeat(["a", "b", "c", "d"], 5)
    y = np.repeat([0.6, 0.7, 0.8, 0.9], 5) + np.tile(np.linspace(-0.02, 0.02, 5), 4)
    low, high = bootstrap_ci(model_pearson_score, y, y, n_boot=100, aligned={"models": models})
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    with pytest.raises(DataValidationError, match="models"):
        bootstrap_ci(model_pearson_score, y, y, aligned={"models": models[:3]})


def test_bootstrap_settings_are_checked():
    with pytest.raises(ConfigError, match="n_boot"):
        bootstrap_ci(pearson_score, Y, Y, n_boot=0)
    with pytest.raises(ConfigError, match="confidence"):
        bootstrap_ci(pearson_score, Y, Y, confidence=95)


def test_ceiling_normalised():
    ceiling = NoiseCeiling(method="split_half", mode="natural", n_units=10, n_repeats=5, mean=0.8, sd=0.01)
    assert ceiling_normalised(0.6, 0.8) == pytest.approx(0.75)
    assert ceiling_normalised(0.6, ceiling) == pytest.approx(0.75)
    assert math.isnan(ceiling_normalised(0.6, 0.0))
    assert math.isnan(ceiling_normalised(float("nan"), 0.8))

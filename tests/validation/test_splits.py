"""Held-out splits: one model per LOMO fold, unit ids never on both sides, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.proxies.base import ProxyUnit
from benchmark.validation.splits import (
    check_no_leakage,
    check_scheme,
    grouped_kfold,
    leave_one_model_out,
    make_splits,
)


def make_units(models=("a", "b", "c"), layers=2, channels=4, modes=("natural", "optimized")) -> list[ProxyUnit]:
    """Units of every model x layer x channel x mode, with no stimuli."""
    return [
        ProxyUnit(m, f"layer{layer}", c, mode, ())
        for m in models
        for layer in range(layers)
        for c in range(channels)
        for mode in modes
    ]


def assert_partition(splits, n):
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested.tolist()) == list(range(n))
    for train, test in splits:
        assert len(np.intersect1d(train, test)) == 0
        assert len(train) + len(test) == n


def test_lomo_holds_out_exactly_one_model_per_fold():
    units = make_units(models=("a", "b", "c", "d"))
    splits = leave_one_model_out(units)
    assert len(splits) == 4
    held_out = []
    for train, test in splits:
        test_models = {units[i].model for i in test}
        assert len(test_models) == 1
        assert test_models.isdisjoint(units[i].model for i in train)
        held_out += test_models
    assert sorted(held_out) == ["a", "b", "c", "d"]
    assert_partition(splits, len(units))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_kfold_never_puts_a_unit_on_both_sides(seed):
    units = make_units()
    splits = grouped_kfold(units, k=5, seed=seed)
    assert len(splits) == 5
    for train, test in splits:
        assert {units[i].unit_id for i in train}.isdisjoint(units[i].unit_id for i in test)
        check_no_leakage(units, train, test)
    assert_partition(splits, len(units))


def test_grouped_kfold_is_seeded():
    units = make_units()
    first = [test.tolist() for _, test in grouped_kfold(units, k=4, seed=0)]
    assert first == [test.tolist() for _, test in grouped_kfold(units, k=4, seed=0)]
    assert first != [test.tolist() for _, test in grouped_kfold(units, k=4, seed=1)]


def test_too_few_models_or_units_raise_config_errors():
    with pytest.raises(ConfigError, match=r"at least 2 models.*--scheme kfold"):
        leave_one_model_out(make_units(models=("a",)))
    with pytest.raises(ConfigError, match=r"at least 5 distinct units, got 4.*--k"):
        grouped_kfold(make_units(models=("a",), layers=1, channels=4), k=5)
    with pytest.raises(ConfigError, match="k must be"):
        grouped_kfold(make_units(), k=1)


def test_make_splits_dispatches_and_rejects_unknown_schemes():
    units = make_units()
    assert len(make_splits(units, "lomo")) == 3
    assert len(make_splits(units, "kfold", k=3)) == 3
    with pytest.raises(ConfigError, match=r"Unknown validation scheme 'loo'.*lomo.*kfold"):
        make_splits(units, "loo")
    assert check_scheme("kfold") == "kfold"


def test_leakage_check_catches_shared_unit_ids_and_indices():
    units = make_units(models=("a", "b"), layers=1, channels=2)  # unit i's modes are rows 2i and 2i+1
    with pytest.raises(DataValidationError, match="both train and test"):
        check_no_leakage(units, np.array([0, 2, 3]), np.array([1]))  # same unit, other mode
    with pytest.raises(DataValidationError, match="indices"):
        check_no_leakage(units, np.array([0, 1]), np.array([1, 2]))
    check_no_leakage(units, np.array([0, 1]), np.array([2, 3]))

"""Tests of the learned proxy (benchmark.proxies.learned)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from sklearn.isotonic import IsotonicRegression

from benchmark.api.errors import ConfigError, RegistryError
from benchmark.proxies import make_proxy
from benchmark.proxies.learned import LearnedProxy

from .conftest import MODES, SimUnits


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


@pytest.mark.parametrize("regressor", ["ridge", "gbr"])
@pytest.mark.parametrize("mode", MODES)
def test_fit_predict_and_beats_its_best_single_feature_on_training_data(
    sim_units: SimUnits, embedding_cache_dir: str, mode: str, regressor: str
) -> None:
    data = sim_units.mode(mode)
    learned = LearnedProxy(regressor=regressor, cache_dir=embedding_cache_dir).fit(data.units, data.accuracy)
    predicted = learned.predict(data.units)
    assert predicted.shape == (len(data.units),)
    assert np.all((predicted >= 0) & (predicted <= 1))
    assert stats.spearmanr(predicted, data.accuracy)[0] > 0.6
    single = [
        make_proxy(name, cache_dir=embedding_cache_dir).fit(data.units, data.accuracy).predict(data.units)
        for name in learned.features
    ]
    best = min(_mse(p, data.accuracy) for p in single)
    assert _mse(predicted, data.accuracy) <= best + 1e-9


def test_isotonic_calibration_is_fitted_on_training_units_only(
    sim_units: SimUnits, embedding_cache_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = sim_units.mode("natural")
    train, test = slice(0, 24), slice(24, None)
    learned = LearnedProxy(cache_dir=embedding_cache_dir).fit(data.units[train], data.accuracy[train])
    thresholds = [iso.X_thresholds_.copy() for iso in learned.isotonic_]
    assert all(len(t) <= 24 for t in thresholds)

    def refit(*args: object, **kwargs: object) -> None:
        raise AssertionError("IsotonicRegression.fit called during predict")

    monkeypatch.setattr(IsotonicRegression, "fit", refit)
    predicted = learned.predict(data.units[test])
    assert np.all((predicted >= 0) & (predicted <= 1))
    for before, iso in zip(thresholds, learned.isotonic_, strict=True):
        np.testing.assert_array_equal(before, iso.X_thresholds_)
    # the feature proxies are the ones fitted on the training units, not refitted either
    features = learned.feature_matrix(data.units[test])
    assert features.shape == (len(data.units[test]), 2)


def test_feature_needing_missing_inputs_is_a_clear_error(sim_units: SimUnits) -> None:
    data = sim_units.subset(6, n_tasks=1)
    with pytest.raises(ConfigError, match="'sparsity' needs activation_maps"):
        LearnedProxy(features=("mis-pixel", "sparsity")).fit(data.units, data.accuracy)


def test_learned_with_activation_map_features(sim_units_with_maps: SimUnits, embedding_cache_dir: str) -> None:
    data = sim_units_with_maps.mode("optimized")
    features = ("mis-pixel", "coherence-pixel", "sparsity", "contrast")
    learned = LearnedProxy(features=features, cache_dir=embedding_cache_dir)
    predicted = learned.fit(data.units, data.accuracy).predict(data.units)
    assert stats.spearmanr(predicted, data.accuracy)[0] > 0.6
    json.dumps(learned.fitted_params())


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"features": ()}, ConfigError, "non-empty"),
        ({"features": "mis-pixel"}, ConfigError, "tuple"),
        ({"features": ("mis-pixle",)}, RegistryError, "Did you mean"),
        ({"features": ("noise", "noise")}, ConfigError, "distinct"),
        ({"regressor": "svm"}, ConfigError, "ridge"),
        ({"alpha": -1}, ConfigError, "alpha"),
    ],
)
def test_invalid_parameters(sim_units: SimUnits, params: dict, error: type[Exception], match: str) -> None:
    data = sim_units.subset(4, n_tasks=1)
    with pytest.raises(error, match=match):
        LearnedProxy(**params).fit(data.units, data.accuracy)


def test_fitted_params_are_a_json_summary(sim_units: SimUnits) -> None:
    data = sim_units.subset(12, n_tasks=2)
    for regressor in ("ridge", "gbr"):
        params = LearnedProxy(regressor=regressor).fit(data.units, data.accuracy).fitted_params()
        decoded = json.loads(json.dumps(params))
        assert set(decoded["features"]) == {"mis-pixel", "coherence-pixel"}
        assert decoded["regressor"]["kind"] == regressor
        assert len(decoded["isotonic"]) == 2

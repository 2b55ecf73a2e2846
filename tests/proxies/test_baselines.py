"""Tests of the baseline proxies (benchmark.proxies.baselines), the noise control and a leakage probe."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.base import clone

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.data.simulate import (
    SimulatedActivationMaps,
    SimulationConfig,
    UnitConcept,
    concept_activation_map,
    render_unit_images,
)
from benchmark.data.stimuli import StimulusIndex
from benchmark.proxies import make_proxy
from benchmark.proxies.base import ProxyMetric, ProxyUnit, check_targets
from benchmark.proxies.baselines import hoyer_sparsity, peak_contrast
from benchmark.proxies.units import ActivationMapSource, build_units

from .conftest import MODES, SimUnits

# ------------------------------------------------------------------------- inputs: units and activation maps


def test_build_units_follows_the_table(sim_units: SimUnits, sim_truth: pd.DataFrame) -> None:
    assert [u.key for u in sim_units.units] == [
        (r.model, r.layer, int(r.channel), r.mode) for r in sim_truth.itertuples(index=False)
    ]
    assert all(len(u.tasks) == SimulationConfig().n_batches for u in sim_units.units)
    assert all(t.mode == u.mode for u in sim_units.units for t in u.tasks)
    assert all(u.activation_maps is None for u in sim_units.units)


def test_build_units_errors(sim_index: StimulusIndex, sim_truth: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="lacks column.*'mode'"):
        build_units(sim_index, sim_truth.drop(columns="mode"))

    def too_few(model: str, layer: str, channel: int, paths: Iterable) -> dict[str, np.ndarray]:
        return {str(p): np.zeros((4, 4)) for p in list(paths)[:3]}

    def flat(model: str, layer: str, channel: int, paths: Iterable) -> dict[str, np.ndarray]:
        return {str(p): np.zeros(16) for p in paths}

    with pytest.raises(DataValidationError, match="returned no map"):
        build_units(sim_index, sim_truth.head(1), activation_maps=too_few)
    with pytest.raises(DataValidationError, match="2-D"):
        build_units(sim_index, sim_truth.head(1), activation_maps=flat)


def test_simulated_activation_maps(sim_release: Path, sim_units_with_maps: SimUnits) -> None:
    source = SimulatedActivationMaps(sim_release)
    assert isinstance(source, ActivationMapSource)
    unit = sim_units_with_maps.units[0]
    assert unit.activation_maps is not None
    for path in {p for t in unit.tasks for p in t.all_paths()}:
        activation = unit.activation_maps[str(path)]
        assert activation.shape == (SimulationConfig().image_size,) * 2 and np.all(activation >= 0)
    # a unit responds more to its max query (the concept, shown clearly) than to its min query (the opposite)
    peaks = np.array(
        [
            [u.activation_maps[str(t.max_query)].mean(), u.activation_maps[str(t.min_query)].mean()]
            for u in sim_units_with_maps.units
            for t in u.tasks
        ]
    )
    assert np.mean(peaks[:, 0] > peaks[:, 1]) > 0.95


def test_concept_activation_map_prefers_the_concept() -> None:
    concept = UnitConcept(hue=0.1, orientation=0.4, frequency=3.0, shape=0)
    rng = np.random.default_rng(0)
    images = render_unit_images(
        concept, {"natural": 1.0, "optimized": 1.0}, n_batches=2, n_references=3, image_size=32, rng=rng
    )
    query_max, query_min = images.natural[0, 0, -1], images.natural[0, 1, -1]
    assert concept_activation_map(query_max, concept).mean() > 5 * concept_activation_map(query_min, concept).mean()
    grey = np.full((32, 32, 3), 128, dtype=np.uint8)
    assert np.all(concept_activation_map(grey, concept) == 0)
    with pytest.raises(DataValidationError):
        concept_activation_map(grey[..., 0], concept)


def test_simulated_maps_need_the_concept_columns(sim_release: Path, tmp_path: Path) -> None:
    (tmp_path / "simulation").mkdir()
    truth = pd.read_csv(sim_release / "simulation" / "truth.csv").drop(columns=["hue"])
    truth.to_csv(tmp_path / "simulation" / "truth.csv", index=False)
    with pytest.raises(DataValidationError, match=r"concept column\(s\) \['hue'\].*write_release"):
        SimulatedActivationMaps(tmp_path)
    with pytest.raises(DataValidationError, match="not in the simulated release"):
        SimulatedActivationMaps(sim_release).concept("simnet_a", "layer1", 99999)


# ------------------------------------------------------------------------------------------------- coherence


@pytest.mark.parametrize("mode", MODES)
def test_coherence_recovers_clarity(sim_units: SimUnits, embedding_cache_dir: str, mode: str) -> None:
    data = sim_units.mode(mode)
    metric = make_proxy("coherence-pixel", cache_dir=embedding_cache_dir)
    raw = metric.raw_scores(data.units)
    assert stats.spearmanr(raw, data.clarity)[0] > 0.4
    predicted = metric.fit(data.units, data.accuracy).predict(data.units)
    assert stats.spearmanr(predicted, data.accuracy)[0] > 0.4
    assert metric.slope_ > 0  # more coherent reference sets -> higher predicted accuracy


def test_coherence_minus_min_references_runs(sim_units: SimUnits, embedding_cache_dir: str) -> None:
    data = sim_units.subset(12)
    plain = make_proxy("coherence", cache_dir=embedding_cache_dir)
    contrasted = make_proxy("coherence", cache_dir=embedding_cache_dir, subtract_min=True)
    difference = plain.raw_scores(data.units) - contrasted.raw_scores(data.units)
    assert np.all(np.isfinite(difference)) and np.ptp(difference) > 0  # = coherence of the min references


# ------------------------------------------------------------------------------------------ activation maps


def test_hoyer_sparsity_extremes() -> None:
    one_hot = np.zeros((4, 4))
    one_hot[1, 2] = 3.0
    assert hoyer_sparsity(one_hot) == pytest.approx(1.0)
    assert hoyer_sparsity(np.ones((4, 4))) == pytest.approx(0.0)
    assert hoyer_sparsity(np.zeros((4, 4))) == 0.0
    assert 0 < hoyer_sparsity(np.arange(16.0)) < 1
    with pytest.raises(DataValidationError):
        hoyer_sparsity(np.ones(1))


def test_peak_contrast_extremes() -> None:
    spot = np.zeros((16, 16))
    spot[8, 8] = 1.0
    assert peak_contrast(spot) == pytest.approx(1.0)
    assert peak_contrast(np.full((16, 16), 2.0)) == 0.0
    assert peak_contrast(spot - 5.0) == pytest.approx(1.0)  # shift-invariant: negative maps are fine
    ramp = np.add.outer(np.arange(16.0), np.arange(16.0))
    assert 0 < peak_contrast(ramp) < peak_contrast(spot)
    with pytest.raises(DataValidationError):
        peak_contrast(np.ones((2, 2)))


@pytest.mark.parametrize("name, params", [("sparsity", {}), ("sparsity", {"scope": "lifetime"}), ("contrast", {})])
@pytest.mark.parametrize("mode", MODES)
def test_map_proxies_predict_human_accuracy(sim_units_with_maps: SimUnits, name: str, params: dict, mode: str) -> None:
    """Fitted per mode on the simulated concept detector's maps, the calibrated predictions track accuracy.

    The raw spatial scores fall with clarity in this simulator (clear units' max references show the concept
    over a large area, so their maps are dense); the fitted logistic's slope then is negative.
    """
    data = sim_units_with_maps.mode(mode)
    metric = make_proxy(name, **params).fit(data.units, data.accuracy)
    rho = stats.spearmanr(metric.predict(data.units), data.accuracy)[0]
    assert rho > 0.25, f"{name} {params} ({mode}): Spearman {rho:.3f}"


def test_map_proxies_need_activation_maps(sim_units: SimUnits, sim_units_with_maps: SimUnits) -> None:
    bare, mapped = sim_units.subset(6), sim_units_with_maps.subset(6)
    for name in ("sparsity", "contrast"):
        metric = make_proxy(name)
        assert metric.requires == frozenset({"activation_maps"})
        assert metric.missing_inputs(bare.units) == ["activation_maps"]
        with pytest.raises(ConfigError, match="activation maps.*SimulatedActivationMaps"):
            metric.fit(bare.units, bare.accuracy)
        metric.fit(mapped.units, mapped.accuracy)
        with pytest.raises(ConfigError, match="activation maps"):
            metric.predict(bare.units)


@pytest.mark.parametrize(("name", "params"), [("sparsity", {"scope": "space"}), ("contrast", {"radius_fraction": 2})])
def test_map_proxies_validate_parameters(sim_units_with_maps: SimUnits, name: str, params: dict) -> None:
    data = sim_units_with_maps.subset(4)
    with pytest.raises(ConfigError, match=next(iter(params))):
        make_proxy(name, **params).fit(data.units, data.accuracy)


# ----------------------------------------------------------------------------------------------------- noise


def test_noise_control_is_deterministic_per_unit_and_uninformative(sim_units: SimUnits) -> None:
    noise = make_proxy("noise")
    raw = noise.raw_scores(sim_units.units)
    np.testing.assert_array_equal(raw, noise.raw_scores(sim_units.units))
    np.testing.assert_array_equal(raw[::-1], noise.raw_scores(sim_units.units[::-1]))  # keyed by unit, not order
    assert not np.allclose(raw, make_proxy("noise", seed=1).raw_scores(sim_units.units))
    assert np.all((raw >= 0) & (raw < 1))
    assert abs(stats.spearmanr(raw, sim_units.accuracy)[0]) < 0.3


# --------------------------------------------------------------------------------------------- leakage probe


class OracleMemorizer(ProxyMetric):
    """Leakage probe (not registered): memorises unit -> accuracy in fit, predicts 0.5 for units it has not seen.

    A validation whose held-out score for this probe beats chance is scoring on training units.
    """

    def fit(self, units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> OracleMemorizer:
        y = check_targets(units, human_accuracy)
        self.memory_ = {u.key: float(a) for u, a in zip(units, y, strict=True)}
        return self

    def predict(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        self._check_fitted()
        return np.array([self.memory_.get(u.key, 0.5) for u in units])


def test_oracle_memorizer_is_perfect_on_training_units_and_chance_on_others(sim_units: SimUnits) -> None:
    data = sim_units.mode("natural")
    half = len(data.units) // 2
    probe = clone(OracleMemorizer()).fit(data.units[:half], data.accuracy[:half])
    np.testing.assert_array_equal(probe.predict(data.units[:half]), data.accuracy[:half])
    assert np.all(probe.predict(data.units[half:]) == 0.5)

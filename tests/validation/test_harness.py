"""The validation harness on synthetic units with a planted truth: signal scores high, noise near zero,
a memorising metric cannot profit from leakage, the metric passed in is never fitted, missing inputs skip."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from benchmark.api.errors import ConfigError, DataValidationError, NotFittedError, SourceUnavailableError
from benchmark.api.types import NoiseCeiling
from benchmark.proxies.base import CalibratedProxy, ProxyMetric, ProxyUnit
from benchmark.validation.crossval import cross_validated_predictions
from benchmark.validation.harness import validate_metric, validate_metrics
from benchmark.validation.human import align_human
from benchmark.validation.metrics import pearson_score
from benchmark.validation.splits import grouped_kfold, leave_one_model_out
from benchmark.validation.tables import comparison_table, format_comparison

MODES = ("natural", "optimized")


def _unit_noise(unit: ProxyUnit, seed: int) -> float:
    """A standard normal draw fixed by the unit (and mode) and a seed."""
    return float(np.random.default_rng([seed, zlib.crc32("/".join(map(str, unit.key)).encode())]).normal())


def make_data(models=("m1", "m2", "m3", "m4"), layers=3, channels=6, human_noise=0.04, seed=0):
    """Synthetic units (no stimuli), their planted true accuracy and a noisy 'observed' human table."""
    rng = np.random.default_rng(seed)
    units, truth = [], {}
    for model in models:
        for layer in range(layers):
            for channel in range(channels):
                for mode in MODES:
                    unit = ProxyUnit(model, f"layer{layer}", channel, mode, ())
                    truth["/".join(map(str, unit.key))] = float(rng.uniform(0.5, 0.95))
                    units.append(unit)
    accuracy = [np.clip(truth["/".join(map(str, u.key))] + rng.normal(0, human_noise), 0, 1) for u in units]
    human = pd.DataFrame(
        {"model": [u.model for u in units], "layer": [u.layer for u in units],
         "channel": [u.channel for u in units], "mode": [u.mode for u in units], "accuracy": accuracy}
    )
    return units, human, truth


def make_ceilings(value=0.9):
    return {
        mode: {method: NoiseCeiling(method=method, mode=mode, n_units=72, n_repeats=10, mean=value, sd=0.01)
               for method in ("split_half", "binomial")}
        for mode in MODES
    }


class SignalProxy(CalibratedProxy):
    """Sees the planted true accuracy plus noise."""

    def __init__(self, truth: dict | None = None, noise: float = 0.03, seed: int = 0) -> None:
        self.truth = truth
        self.noise = noise
        self.seed = seed

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        return np.array([self.truth["/".join(map(str, u.key))] + self.noise * _unit_noise(u, self.seed) for u in units])


class NoiseProxy(CalibratedProxy):
    """Fed pure noise, fixed per unit and seed."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        return np.array([_unit_noise(u, self.seed + 1000) for u in units])


class Memoriser(ProxyMetric):
    """Memorises unit ids -> human accuracy in fit; predicts 0.5 for ids it has not seen."""

    def fit(self, units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> Memoriser:
        self.table_ = {u.unit_id: float(y) for u, y in zip(units, human_accuracy)}
        return self

    def predict(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        self._check_fitted()
        return np.array([self.table_.get(u.unit_id, 0.5) for u in units])


class NeedsMaps(NoiseProxy):
    """A metric that needs activation maps, which the synthetic units lack."""

    requires = frozenset({"activation_maps"})


class WeightsOffline(NoiseProxy):
    """A metric whose weights cannot be fetched (as an embedder offline)."""

    def fit(self, units, human_accuracy):
        raise SourceUnavailableError("weights for 'dreamsim' are not cached and the machine is offline")


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.mark.parametrize("scheme", ["lomo", "kfold"])
def test_a_proxy_that_sees_the_signal_scores_high(data, scheme):
    units, human, truth = data
    report = validate_metric(SignalProxy(truth), units, human, make_ceilings(), scheme=scheme, n_boot=200,
                             progress=False)
    assert report.status == "ok" and [m.mode for m in report.modes] == list(MODES)
    for result in report.modes:
        pearson = result.scores["pearson"]
        assert pearson.value > 0.8
        assert pearson.ci_low <= pearson.value <= pearson.ci_high
        assert result.scores["spearman"].value > 0.75 and result.scores["kendall"].value > 0.55
        assert result.scores["mae"].value < 0.08
        headline = result.headline
        assert headline.value > 0.8 and headline.ci_low <= headline.value <= headline.ci_high
        assert headline.p_value < 0.05 and result.headline_basis.startswith("raw scores")
        assert result.ceiling_normalised["split_half"].value == pytest.approx(headline.value / 0.9)
        assert result.ceiling_normalised["binomial"].value == pytest.approx(headline.value / 0.9)
        assert "split_half" in result.ceiling_flags  # above 1 (the given ceiling of 0.9 is too low)
        assert result.n_units == 72 and len(result.predictions) == 72
        assert result.n_folds == (4 if scheme == "lomo" else 5)
        assert set(result.fitted_params) >= {"slope_", "intercept_"}


def test_a_proxy_fed_noise_scores_near_zero(data):
    units, human, _ = data
    rs = []
    for seed in range(6):
        report = validate_metric(NoiseProxy(seed=seed), units, human, make_ceilings(), n_boot=0, progress=False)
        rs += [m.headline.value for m in report.modes]
    assert abs(np.mean(rs)) < 0.3


@pytest.mark.parametrize("scheme", ["lomo", "kfold"])
def test_memorising_unit_ids_does_not_help_on_held_out_units(data, scheme):
    units, human, _ = data
    natural = [i for i, u in enumerate(units) if u.mode == "natural"]
    y = human["accuracy"].to_numpy()[natural]
    in_sample = Memoriser().fit([units[i] for i in natural], y).predict([units[i] for i in natural])
    assert pearson_score(y, in_sample) == pytest.approx(1.0)  # what leakage would look like

    report = validate_metric(Memoriser(), units, human, make_ceilings(), scheme=scheme, n_boot=50, progress=False)
    for result in report.modes:
        assert abs(result.scores["pearson"].value) < 0.1
        assert abs(result.scores["spearman"].value) < 0.1
        assert {p.predicted for p in result.predictions} == {0.5}


def test_memoriser_across_modes_gains_nothing_under_grouped_kfold(data):
    """Fitting on both modes at once: a unit's other mode never sits in the training set of its test fold."""
    units, human, _ = data
    y = human["accuracy"].to_numpy()
    predicted = cross_validated_predictions(Memoriser(), units, y, grouped_kfold(units, k=5, seed=0))
    assert set(predicted) == {0.5}


def test_the_metric_passed_in_is_cloned_never_fitted(data):
    units, human, truth = data
    metric = SignalProxy(truth)
    validate_metric(metric, units, human, make_ceilings(), n_boot=10, progress=False)
    with pytest.raises(NotFittedError):
        metric.fitted_params()
    y = human["accuracy"].to_numpy()
    cross_validated_predictions(metric, units, y, leave_one_model_out(units))
    with pytest.raises(NotFittedError):
        metric.predict(units)


def test_cross_validated_predictions_predict_every_unit_exactly_once(data):
    units, human, truth = data
    y = human["accuracy"].to_numpy()
    splits = leave_one_model_out(units)
    predicted = cross_validated_predictions(SignalProxy(truth), units, y, splits)
    assert predicted.shape == (len(units),) and np.isfinite(predicted).all()
    with pytest.raises(DataValidationError, match="exactly once"):
        cross_validated_predictions(SignalProxy(truth), units, y, splits[:-1])
    leaky = [(np.arange(len(units))[12:], np.arange(len(units))[:13])]
    with pytest.raises(DataValidationError, match="leaks"):
        cross_validated_predictions(SignalProxy(truth), units, y, leaky)


def test_metrics_can_be_given_by_registry_name(data):
    units, human, _ = data
    report = validate_metric("noise", units, human, make_ceilings(), n_boot=0, progress=False)
    assert report.metric.name == "noise" and report.metric.class_path.endswith(":Noise")
    assert report.mode("natural").scores["pearson"].ci_low is None  # n_boot=0: no CIs
    with pytest.raises(ConfigError, match="Did you mean 'noise'"):
        validate_metric("nois", units, human, make_ceilings(), progress=False)


def test_a_metric_missing_inputs_is_reported_as_skipped(data):
    units, human, _ = data
    report = validate_metric(NeedsMaps(), units, human, make_ceilings(), progress=False)
    assert report.status == "skipped" and report.modes == []
    assert "activation_maps" in report.skip_reason
    offline = validate_metric(WeightsOffline(), units, human, make_ceilings(), progress=False)
    assert offline.status == "skipped" and "offline" in offline.skip_reason


def test_per_model_correlations_are_not_computed_from_fewer_than_eight_models():
    units, human, truth = make_data(models=("m1", "m2"), channels=4)
    report = validate_metric(SignalProxy(truth), units, human, make_ceilings(), n_boot=20, progress=False)
    result = report.mode("natural")
    assert result.per_model_correlation.pearson is None
    assert result.per_model_correlation.text == "n/a (2 models)"
    assert any("at least 8" in note for note in result.notes)
    assert any("resamples units one by one" in note for note in result.notes)
    assert [m.model for m in result.per_model] == ["m1", "m2"]
    table = comparison_table([report])
    assert table["per_model_r"].tolist() == ["n/a (2 models)"] * 2 and "per_model_pearson" not in table


def test_per_model_correlations_from_eight_models_have_a_ci():
    units, human, truth = make_data(models=tuple(f"m{i}" for i in range(8)), layers=1, channels=5)
    report = validate_metric(SignalProxy(truth), units, human, make_ceilings(), n_boot=100, progress=False)
    per_model = report.mode("natural").per_model_correlation
    assert per_model.n_models == 8 and per_model.basis == "raw scores"
    assert per_model.pearson.ci_low <= per_model.pearson.value <= per_model.pearson.ci_high


def test_human_table_must_be_aligned_to_the_units(data):
    units, human, truth = data
    shuffled = human.sample(frac=1.0, random_state=0)
    with pytest.raises(DataValidationError, match="align_human"):
        validate_metric(SignalProxy(truth), units, shuffled, make_ceilings(), progress=False)
    aligned = align_human(units, shuffled)
    assert aligned["accuracy"].tolist() == human["accuracy"].tolist()
    with pytest.raises(DataValidationError, match="no row"):
        align_human(units, human.iloc[1:])


def test_missing_ceiling_is_noted_not_invented(data):
    units, human, truth = data
    ceilings = {mode: {"split_half": c["split_half"]} for mode, c in make_ceilings().items()}
    result = validate_metric(SignalProxy(truth), units, human, ceilings, n_boot=0, progress=False).modes[0]
    assert set(result.ceiling_normalised) == {"split_half"}
    assert any("binomial" in note for note in result.notes)


def test_validate_metrics_and_the_comparison_table(data):
    units, human, truth = data
    reports = validate_metrics([SignalProxy(truth), NoiseProxy(), NeedsMaps()], units, human, make_ceilings(),
                               n_boot=50, progress=False)
    table = comparison_table(reports)
    assert table["metric"].tolist() == ["SignalProxy", "SignalProxy", "NoiseProxy", "NoiseProxy", "NeedsMaps"]
    assert table["status"].tolist() == ["ok"] * 4 + ["skipped"]
    signal = table[table["metric"] == "SignalProxy"]
    noise = table[table["metric"] == "NoiseProxy"]
    assert (signal["headline"].to_numpy() > noise["headline"].to_numpy()).all()
    for column in ("headline", "headline_ci_low", "headline_p", "pearson_ci_low", "spearman", "kendall",
                   "per_model_r", "mae", "calibration_error", "headline_over_split_half_ceiling",
                   "headline_over_binomial_ceiling"):
        assert column in table
    text = format_comparison(table)
    assert "SignalProxy" in text and "Skipped:" in text and "activation_maps" in text

import pytest

from benchmark.data.schema import canonicalize
from benchmark.data.simulate import SimulationConfig, expected_ceiling, simulate_responses
from benchmark.data.summary import format_summary, plot_summary, summarize


@pytest.fixture(scope="module")
def large_simulation():
    release = simulate_responses(SimulationConfig(seed=3, units_per_layer=25))
    trials, _ = canonicalize(release.responses, source="simulated")
    return trials, release.truth, summarize(trials, source="simulated", n_boot=400, n_splits=100)


def _joined(summary, truth):
    return summary.units.merge(truth, on=["model", "layer", "channel", "mode"], validate="one_to_one")


def test_unit_accuracy_recovers_planted_values_within_cis(large_simulation):
    _, truth, summary = large_simulation
    joined = _joined(summary, truth)
    assert len(joined) == len(truth)
    covered = (joined["ci_low"] <= joined["true_accuracy"]) & (joined["true_accuracy"] <= joined["ci_high"])
    wilson = (joined["wilson_low"] <= joined["true_accuracy"]) & (joined["true_accuracy"] <= joined["wilson_high"])
    assert covered.mean() >= 0.88
    assert wilson.mean() >= 0.88
    assert (joined["n_trials"] == joined["n_main_trials"]).all()


def test_model_means_recover_planted_model_means(large_simulation):
    _, truth, summary = large_simulation
    planted = truth.groupby(["model", "mode"])["true_accuracy"].mean()
    for row in summary.models.itertuples():
        assert row.ci_low <= planted[(row.model, row.mode)] <= row.ci_high


@pytest.mark.parametrize("mode", ["natural", "optimized"])
@pytest.mark.parametrize("method", ["split_half", "binomial"])
def test_ceilings_match_the_simulators_known_reliability(large_simulation, mode, method):
    _, truth, summary = large_simulation
    known = expected_ceiling(truth[truth["mode"] == mode], mode)
    ceiling = summary.ceiling(mode, method)
    # the binomial method (the MIS paper's) correlates data with its own noisy copies, so it is biased high
    tolerance = (-0.06, 0.06) if method == "split_half" else (0.0, 0.16)
    assert known + tolerance[0] <= ceiling.mean <= known + tolerance[1]


def test_exclusions_are_counted_in_the_summary(large_simulation):
    trials, _, summary = large_simulation
    report = summary.exclusions
    assert report.n_demo == int(trials["is_demo"].sum())
    assert report.n_catch == int(trials["catch_trial"].sum())
    assert report.n_failed_checks > 0
    assert report.n_rows_out == summary.units["n_trials"].sum()


def test_format_and_plot(large_simulation, tmp_path):
    _, _, summary = large_simulation
    text = format_summary(summary)
    for word in ("simnet_a", "natural", "optimized", "split_half", "binomial", "excluded demo trials"):
        assert word in text
    path = plot_summary(summary, tmp_path / "plots" / "summary.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(path.parent.glob(".*tmp"))


def test_unknown_ceiling_is_a_clear_error(large_simulation):
    with pytest.raises(KeyError, match="modes"):
        large_simulation[2].ceiling("catch_trial")

"""`imibench proxy validate` and `imibench proxy list` end to end on a simulated release."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli.main import main
from benchmark.files import sha256_file
from benchmark.validation.report import MetricReport, ValidationReport, read_report
from benchmark.validation.run import build_config, default_metrics, prepare_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METRICS = ("mis-pixel", "coherence-pixel", "noise")


def run_cli(*argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `imibench ARGV`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def real_like_release(sim_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated release without its planted truth: it looks like a real release (no activation maps)."""
    copy = tmp_path_factory.mktemp("real") / "release"
    shutil.copytree(sim_release, copy, ignore=shutil.ignore_patterns("simulation"))
    return copy


@pytest.fixture(scope="module")
def validated(sim_release: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("validation") / "out"
    code, stdout, stderr = run_cli(
        "proxy", "validate", "--source", str(sim_release), "--metrics", ",".join(METRICS),
        "--n-boot", "200", "--n-refits", "20", "--out", str(out), "--no-progress",
    )
    assert code == 0, stderr
    return out, stdout


def test_validate_writes_reports_figures_and_the_comparison(validated):
    out, _ = validated
    for name in METRICS:
        assert (out / name / "report.json").is_file()
        assert (out / name / "validation.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "comparison.png").read_bytes()[:8] == PNG_MAGIC
    table = pd.read_csv(out / "comparison.csv")
    assert sorted(set(table["metric"])) == sorted(METRICS)
    assert set(table["mode"]) == {"natural", "optimized"}
    assert not list(out.rglob("*.tmp"))


def test_mis_pixel_beats_the_noise_control_in_every_mode(validated):
    out, stdout = validated
    table = pd.read_csv(out / "comparison.csv").set_index(["metric", "mode"])
    for mode in ("natural", "optimized"):
        assert table.loc[("mis-pixel", mode), "headline"] > 0.3
        assert table.loc[("mis-pixel", mode), "headline"] > table.loc[("noise", mode), "headline"] + 0.2
        assert table.loc[("mis-pixel", mode), "headline_ci_low"] < table.loc[("mis-pixel", mode), "headline"]
        assert table.loc[("mis-pixel", mode), "pearson_ci_low"] < table.loc[("mis-pixel", mode), "pearson"]
    assert "headline r [CI]" in stdout and "r/ceiling [CI]" in stdout and "simulated humans" in stdout
    assert all(name in stdout for name in METRICS)


def test_reports_round_trip_and_carry_provenance(validated, sim_release):
    out, _ = validated
    report = read_report(out / "mis-pixel")
    assert isinstance(report, MetricReport) and report.status == "ok"
    assert report == MetricReport.model_validate_json(report.model_dump_json())
    data = report.provenance.data
    assert data is not None and data.activation_maps is not None
    main_file = sim_release / "human_responses" / "responses_main.csv"
    assert data.files["human_responses/responses_main.csv"] == sha256_file(main_file)
    natural = report.mode("natural")
    assert natural.n_units == 108 and natural.n_folds == 9  # nine simulated models: nine LOMO folds
    assert "temperature_" in natural.fitted_params
    run = read_report(out)
    assert isinstance(run, ValidationReport)
    assert [m.metric.name for m in run.metrics] == list(METRICS)
    assert run.config["scheme"] == "lomo" and run.config["n_boot"] == 200


def test_a_requested_metric_that_cannot_run_is_an_error_with_the_reason(real_like_release, tmp_path):
    code, stdout, stderr = run_cli(
        "proxy", "validate", "--source", str(real_like_release), "--metrics", "contrast,noise",
        "--scheme", "kfold", "--k", "3", "--n-boot", "20", "--out", str(tmp_path), "--no-progress",
    )
    assert code != 0
    assert "1 of the requested metrics could not run" in stderr and "contrast: missing input(s): activation_maps" in stderr
    assert "Traceback" not in stderr
    # What could run is still reported and written, with the reason for the other.
    assert "Skipped:" in stdout
    skipped = read_report(tmp_path / "contrast")
    assert skipped.status == "skipped" and "activation_maps" in skipped.skip_reason
    assert not (tmp_path / "contrast" / "validation.png").exists()
    assert read_report(tmp_path / "noise").scheme.k == 3


def test_default_metrics_are_those_that_run_offline_here(real_like_release):
    prepared = prepare_data(build_config(source=str(real_like_release), progress=False))
    runnable, skipped = default_metrics(prepared.units)
    names = {name for name, _ in runnable}
    reasons = {name: reason for name, _, reason in skipped}
    assert {"mis-pixel", "coherence-pixel", "noise"} <= names
    assert "activation_maps" in reasons["sparsity"] and "activation_maps" in reasons["contrast"]
    assert names.isdisjoint(reasons) and all(reasons.values())


def test_list_prints_metrics_with_requirements():
    code, stdout, _ = run_cli("proxy", "list")
    assert code == 0
    assert "mis-pixel" in stdout and "noise" in stdout
    assert "requires: activation_maps" in stdout


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines and lines[0].startswith("imibench: error:")
    return lines[0]


def test_unknown_metric_suggests_the_closest_names(sim_release):
    code, _, stderr = run_cli("proxy", "validate", "--source", str(sim_release), "--metrics", "mis-pixle")
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1
    assert "Did you mean 'mis-pixel'" in one_line_error(stderr)


def test_bad_scheme_is_a_one_line_error(sim_release):
    code, _, stderr = run_cli("proxy", "validate", "--source", str(sim_release), "--scheme", "loo")
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1
    line = one_line_error(stderr)
    assert "'loo'" in line and "lomo" in line and "kfold" in line


def test_bad_numbers_are_one_line_errors(sim_release):
    code, _, stderr = run_cli("proxy", "validate", "--source", str(sim_release), "--k", "1", "--n-boot", "-5")
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1
    line = one_line_error(stderr)
    assert "k=1" in line and "n_boot=-5" in line


@pytest.mark.parametrize("source", ["does/not/exist", "EMPTY_DIR"])
def test_unreadable_source_exits_2_without_traceback(source, tmp_path):
    source = str(tmp_path) if source == "EMPTY_DIR" else str(tmp_path / source)
    code, _, stderr = run_cli("proxy", "validate", "--source", source, "--metrics", "noise")
    assert code == 2
    assert "Invalid data source" in one_line_error(stderr)


def test_a_table_file_without_stimuli_is_refused_clearly(sim_release, tmp_path):
    table = shutil.copy(sim_release / "human_responses" / "responses_main.csv", tmp_path / "responses.csv")
    code, _, stderr = run_cli("proxy", "validate", "--source", str(table), "--metrics", "noise")
    assert code == 2
    assert "no stimuli" in one_line_error(stderr)


def test_fit_writes_a_fitted_proxy_that_scoring_can_load(sim_release, tmp_path):
    from benchmark.proxies.fitted import load_fitted_proxy

    out = tmp_path / "fitted" / "mis-pixel.json"
    code, stdout, stderr = run_cli("proxy", "fit", "--source", str(sim_release), "--metric", "mis-pixel",
                                   "--n-boot", "100", "--out", str(out), "--no-progress")
    assert code == 0, stderr
    assert "Held-out (lomo) headline r (fold-mean Pearson) with simulated humans" in stdout
    metric, record = load_fitted_proxy(out)
    assert record.validation["mode"] == "natural" and record.validation["n_units"] == 108
    assert record.validation["headline"]["value"] > 0.3 and record.human_data.is_simulated
    assert record.validation["per_model_pearson"]["n_models"] == 9  # 9 models: computed, with its CI
    assert metric.temperature_ > 0


def test_fit_refuses_unsaveable_metrics_and_unknown_modes(sim_release, tmp_path):
    code, _, stderr = run_cli("proxy", "fit", "--source", str(sim_release), "--metric", "mis-pixel", "--mode",
                              "weird", "--out", str(tmp_path / "x.json"), "--no-progress", "--n-boot", "0")
    assert code == 2 and "modes present" in stderr


def test_mis_pixel_beats_coherence_pixel_in_a_paired_test_on_the_default_release(validated):
    """The default simulated release plants query typicality, which coherence (references only) cannot see."""
    out, stdout = validated
    paired = pd.read_csv(out / "paired.csv").set_index(["mode", "metric_a", "metric_b"])
    row = paired.loc[("natural", "mis-pixel", "coherence-pixel")]
    assert row["difference"] > 0.1 and row["ci_low"] > 0 and row["p_value"] < 0.05
    assert "Paired comparisons" in stdout and "mis-pixel - coherence-pixel" in stdout

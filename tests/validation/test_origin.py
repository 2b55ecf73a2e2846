"""Simulated human data is flagged end to end: loaded origin, validation reports, fitted proxies, CLI wording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.cli.main import main
from benchmark.data.simulate import SimulationConfig, simulation_origin, write_release
from benchmark.proxies.fitted import load_fitted_proxy
from benchmark.validation.fit import fit_proxy
from benchmark.validation.report import humans_label, read_report
from benchmark.validation.run import build_config, run_validation

TINY = SimulationConfig(seed=3, models=("m1", "m2", "m3"), layers_per_model=1, units_per_layer=4, n_batches=2,
                        n_references=3, image_size=8, responses_per_unit=12, trials_per_participant=12)


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release(tmp_path_factory.mktemp("tiny") / "release", TINY)


def test_simulator_marks_its_releases_and_reports_the_realised_correlation(tiny_release: Path, tmp_path: Path):
    origin = simulation_origin(tiny_release, "here")
    assert origin.is_simulated and origin.label == "simulated humans"
    assert origin.simulator["seed"] == 3 and origin.source == "here"
    assert simulation_origin(tmp_path) is None
    summary = json.loads((tiny_release / "simulation" / "summary.json").read_text())
    for mode in ("natural", "optimized"):
        assert -1 <= summary["modes"][mode]["realised_r"] <= 1 and "expected_r" in summary["modes"][mode]
    assert humans_label(None) == "human data of unknown origin"


def test_validation_reports_and_fitted_proxies_carry_the_simulated_origin(tiny_release: Path, tmp_path: Path):
    config = build_config(source=str(tiny_release), metrics=("noise", "coherence-pixel"), n_boot=20,
                          progress=False, out=tmp_path / "val")
    reports = run_validation(config)
    assert all(r.human_data.is_simulated and r.humans == "simulated humans" for r in reports)
    run = read_report(tmp_path / "val")
    assert run.human_data.is_simulated
    assert {(c.metric_a, c.metric_b) for c in run.comparisons} == {("noise", "coherence-pixel")}
    assert (tmp_path / "val" / "paired.csv").is_file()
    fitted = fit_proxy(build_config(source=str(tiny_release), metrics=("mis-pixel",), n_boot=20, progress=False),
                       mode="natural", out=tmp_path / "p.json")
    assert fitted.human_data.is_simulated
    _, record = load_fitted_proxy(tmp_path / "p.json")
    assert record.human_data == fitted.human_data
    assert "headline" in record.validation and "per_model_pearson" not in record.validation  # 3 models


def test_cli_says_simulated_humans_never_humans(tiny_release: Path, tmp_path: Path, capsys):
    assert main(["proxy", "validate", "--source", str(tiny_release), "--metrics", "noise", "--n-boot", "20",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "simulated humans" in out and "n/a (3 models)" in out
    assert main(["proxy", "fit", "--source", str(tiny_release), "--metric", "mis-pixel", "--n-boot", "20",
                 "--no-progress", "--out", str(tmp_path / "f.json")]) == 0
    out = capsys.readouterr().out
    assert "simulated humans" in out
    assert "with humans" not in out.replace("simulated humans", "")

"""Reports: JSON round trip, atomic writing, validated reading, provenance; figures."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from benchmark.api.errors import ConfigError, DataValidationError, SourceUnavailableError
from benchmark.validation.harness import validate_metric
from benchmark.validation.plots import plot_validation
from benchmark.validation.report import MetricReport, ValidationReport, make_provenance, read_report, write_report
from tests.validation.test_harness import NeedsMaps, NoiseProxy, SignalProxy, make_ceilings, make_data

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reports():
    units, human, truth = make_data(models=("m1", "m2", "m3"), channels=4)
    options = dict(n_boot=30, progress=False)
    return [
        validate_metric(SignalProxy(truth), units, human, make_ceilings(), **options),
        validate_metric(NoiseProxy(), units, human, make_ceilings(), scheme="kfold", k=3, **options),
        validate_metric(NeedsMaps(), units, human, make_ceilings(), **options),
    ]


def test_json_round_trip_is_exact(reports, tmp_path):
    for i, report in enumerate(reports):
        path = write_report(report, tmp_path / str(i))
        assert path.name == "report.json"
        assert read_report(path) == report
        assert read_report(path.parent) == report  # the folder works too
    assert not list(tmp_path.rglob("*.tmp"))


def test_report_content(reports):
    report = reports[0]
    assert report.metric.name == "SignalProxy" and report.metric.params["noise"] == 0.03
    assert report.metric.class_path.endswith(":SignalProxy")
    assert report.scheme.name == "lomo" and report.scheme.k is None and report.scheme.n_boot == 30
    assert reports[1].scheme.k == 3
    natural = report.mode("natural")
    assert natural.ceilings["split_half"].mean == 0.9
    assert natural.frame().columns.tolist() == ["model", "layer", "channel", "mode", "human", "predicted", "fold",
                                            "headline_score"]
    assert len(natural.per_model) == 3
    with pytest.raises(KeyError, match="modes"):
        report.mode("catch_trial")


def test_provenance_block(reports):
    provenance = reports[0].provenance
    assert provenance.git_sha is None or re.fullmatch(r"[0-9a-f]{40}", provenance.git_sha)
    assert datetime.fromisoformat(provenance.date_utc).utcoffset().total_seconds() == 0
    assert provenance.seed == 0 and provenance.wall_time_s >= 0
    assert provenance.numpy and provenance.sklearn and provenance.python


def test_undefined_scores_are_written_as_null_and_read_back(tmp_path):
    units, human, truth = make_data(models=("m1", "m2"), channels=3)
    report = validate_metric(SignalProxy(truth), units, human, make_ceilings(), n_boot=10, progress=False)
    path = write_report(report, tmp_path)
    raw = json.loads(path.read_text())  # strict JSON: no NaN tokens
    assert raw["modes"][0]["per_model_correlation"]["pearson"] is None  # 2 models: not computed
    assert raw["modes"][0]["headline"]["p_value"] is None or raw["modes"][0]["headline"]["p_value"] <= 1
    assert read_report(path) == report


def test_validation_report_round_trip(reports, tmp_path):
    run = ValidationReport(config={"source": "x"}, metrics=reports,
                           provenance=make_provenance(seed=0, wall_time_s=1.0))
    assert read_report(write_report(run, tmp_path)) == run


def test_reading_bad_reports_fails_clearly(reports, tmp_path):
    with pytest.raises(SourceUnavailableError, match="No report"):
        read_report(tmp_path / "nothing")
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "metric", "schema_version": "1.0"}')
    with pytest.raises(DataValidationError, match="not a valid validation report"):
        read_report(broken)
    future = json.loads(reports[0].model_dump_json())
    future["schema_version"] = "2.0"
    (tmp_path / "future.json").write_text(json.dumps(future))
    with pytest.raises(DataValidationError, match="schema version '2.0'"):
        read_report(tmp_path / "future.json")


def test_a_skipped_report_needs_a_reason(reports):
    data = json.loads(reports[2].model_dump_json())
    data["skip_reason"] = None
    with pytest.raises(ValueError, match="skip_reason"):
        MetricReport.model_validate(data)


def test_plots_are_written_atomically(reports, tmp_path):
    single = plot_validation(reports[0], tmp_path / "one" / "validation.png")
    several = plot_validation(reports, tmp_path / "comparison.png")
    for path in (single, several):
        assert path.read_bytes()[:8] == PNG_MAGIC
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(ConfigError, match="skipped"):
        plot_validation(reports[2], tmp_path / "skipped.png")
    with pytest.raises(ConfigError, match="nothing to plot"):
        plot_validation([reports[2]], tmp_path / "none.png")

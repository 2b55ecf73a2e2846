import json

import pytest

from benchmark.api.errors import DataValidationError, SourceUnavailableError
from benchmark.api.types import Protocol
from benchmark.results.io import read_result, write_result
from benchmark.results.provenance import collect_provenance
from benchmark.results.schema import (
    ImageSourceInfo,
    LayerScore,
    ProtocolInfo,
    ProxyInfo,
    ResultFile,
    Scores,
    SubmissionInfo,
    Summary,
    TaskImages,
    UnitScore,
)


def make_result() -> ResultFile:
    task = TaskImages(max_references=["a", "b"], min_references=["c", "d"], max_query="e", min_query="f")
    return ResultFile(
        benchmark_version="0.1.0",
        submission=SubmissionInfo(id="timm:resnet18@abc", source="timm", model="resnet18", weights_sha256="abc"),
        protocol=ProtocolInfo(
            task=Protocol(), image_source=ImageSourceInfo(kind="bundled", id="bundled", n_images=600)
        ),
        proxy=ProxyInfo(name="mis-pixel", version="1", fitted_params={"temperature_": 0.1}),
        scores=Scores(
            model=Summary(n_units=1, mean=0.8, p5=0.8, ci_low=0.8, ci_high=0.8),
            layers=[LayerScore(layer="layer1", n_units=1, mean=0.8, p5=0.8, ci_low=0.8, ci_high=0.8)],
            units=[UnitScore(layer="layer1", channel=3, score=0.8, task_scores=[0.8], tasks=[task])],
        ),
        provenance=collect_provenance(device="cpu", dtype="float32", seed=0, wall_time_s=1.5, command=["imibench"]),
    )


def test_round_trip(tmp_path):
    result = make_result()
    path = write_result(result, tmp_path / "sub" / "result.json")
    assert read_result(path) == result
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_provenance_is_filled():
    prov = make_result().provenance
    assert prov.package_version and prov.python_version and prov.date.endswith("+00:00")
    assert prov.command == "imibench"


def test_invalid_files_are_clear_errors(tmp_path):
    with pytest.raises(SourceUnavailableError, match="not found"):
        read_result(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataValidationError, match="not valid JSON"):
        read_result(bad)
    data = json.loads(make_result().model_dump_json())
    data["schema_version"] = "0.1"
    bad.write_text(json.dumps(data))
    with pytest.raises(DataValidationError, match="schema version '0.1' is not supported"):
        read_result(bad)
    data["schema_version"] = "1.0"
    del data["scores"]["model"]
    bad.write_text(json.dumps(data))
    with pytest.raises(DataValidationError, match="scores.model"):
        read_result(bad)


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = write_result(make_result(), tmp_path / "result.json")
    before = path.read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_result(make_result(), path)
    assert path.read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

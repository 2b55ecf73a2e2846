"""Crafted result files (they may come from a Hub dataset) are data: bounded reading, schema bounds, no silent
winner on a duplicate submission id. The leaderboard's display of invalid files and conflicts is tested in
tests/leaderboard."""

from __future__ import annotations

import json
import math

import pytest

from benchmark.api.errors import DataValidationError
from benchmark.cli.main import main
from benchmark.results.conflicts import find_conflicts, split_conflicts
from benchmark.results.io import read_result, write_result
from benchmark.submissions.publish import read_all_results
from leaderboard.loading import read_folder
from tests.submissions import make_result


def crafted(tmp_path):
    good = json.loads(make_result().model_dump_json())
    files = {
        "deep.json": "[" * 200_000 + "]" * 200_000,
        "deep-in-spec.json": json.dumps({**good, "submission": {**good["submission"], "spec": _nest(80)}}),
        "latin1.json": b'{"schema_version": "1.0", "name": "caf\xe9"}',
        "not-json.json": "{'single': 'quotes'}",
    }
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return files


def _nest(depth: int) -> dict:
    node: dict = {}
    root = node
    for _ in range(depth):
        node["x"] = {}
        node = node["x"]
    return root


def test_crafted_files_are_invalid_not_fatal(tmp_path, capsys):
    files = crafted(tmp_path)
    write_result(make_result(), tmp_path / "good.json")
    for name in files:
        with pytest.raises(DataValidationError, match=name):
            read_result(tmp_path / name)
        assert main(["results", "show", str(tmp_path / name)]) == 2
        assert "Traceback" not in capsys.readouterr().err
    loaded = read_folder(tmp_path)  # what the leaderboard does at startup
    assert [r.path.name for r in loaded.results] == ["good.json"]
    assert sorted(i.name for i in loaded.invalid) == sorted(files)
    with pytest.raises(DataValidationError, match=f"{len(files)} of {len(files) + 1} result files"):
        read_all_results(tmp_path)  # publish refuses, listing each file, instead of a traceback


def test_size_limit(tmp_path, monkeypatch):
    path = write_result(make_result(), tmp_path / "big.json")
    monkeypatch.setenv("IMIBENCH_MAX_RESULT_MB", str(path.stat().st_size / 2**20 / 2))
    with pytest.raises(DataValidationError, match="over the .* MiB limit"):
        read_result(path)
    monkeypatch.setenv("IMIBENCH_MAX_RESULT_MB", "lots")
    with pytest.raises(DataValidationError, match="IMIBENCH_MAX_RESULT_MB='lots' is not a number"):
        read_result(path)


@pytest.mark.parametrize("where, value", [
    (("scores", "model", "mean"), math.nan), (("scores", "model", "mean"), -math.inf),
    (("scores", "model", "mean"), 1e308), (("scores", "model", "ci_high"), 1.5), (("scores", "model", "p5"), -0.1),
    (("scores", "model", "n_units"), 0), (("scores", "model", "ci_low"), 0.9),  # ci_low > ci_high
    (("scores", "layers", 0, "mean"), math.inf), (("protocol", "image_source", "n_images"), 0),
    (("provenance", "wall_time_s"), -1.0), (("provenance", "wall_time_s"), math.nan),
])
def test_out_of_range_values_are_refused(tmp_path, where, value):
    data = json.loads(make_result().model_dump_json())
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))  # json writes NaN / Infinity literals, as a crafted file would
    with pytest.raises(DataValidationError, match=str(where[-1])):
        read_result(path)


def test_unit_scores_are_bounded(tmp_path):
    from benchmark.results.schema import UnitScore

    for bad in ({"score": 1e308}, {"score": math.nan}, {"task_scores": [0.5, -1.0]}, {"channel": -1}):
        with pytest.raises(ValueError):
            UnitScore(**{"layer": "l", "channel": 0, "score": 0.5, **bad})


def test_duplicate_submission_id_with_a_newer_date_is_a_conflict_not_a_silent_winner(tmp_path):
    real = make_result(mean=0.6)
    forged = real.model_copy(update={
        "scores": make_result(mean=0.89).scores,
        "provenance": real.provenance.model_copy(update={"date": "2999-01-01T00:00:00+00:00"}),
    })
    other = make_result(model="resnet50")
    loaded = [(tmp_path / "real.json", real), (tmp_path / "forged.json", forged), (tmp_path / "r50.json", other),
              (tmp_path / "copy-of-r50.json", other)]
    rows, conflicts = split_conflicts(loaded)
    assert [r.submission.id for _, r in rows] == ["timm:resnet50"]  # identical copies are one row
    (conflict,) = conflicts
    assert conflict.paths == (tmp_path / "real.json", tmp_path / "forged.json")
    assert "real.json" in conflict.message() and "forged.json" in conflict.message()
    assert "None of them is ranked" in conflict.message()
    assert find_conflicts(loaded) == conflicts

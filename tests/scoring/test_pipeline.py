import json

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from benchmark.api.errors import ChecksumError, ConfigError, DataValidationError, SourceUnavailableError
from benchmark.cli.main import main
from benchmark.results.comparability import compute_comparability
from benchmark.results.io import read_result
from benchmark.results.stimuli import materialised_name
from benchmark.scoring import pipeline
from benchmark.scoring.pipeline import score_submission
from benchmark.scoring.spec import parse_spec
from tests.fast_spec import FAST_SPEC


def _spec(tmp_path, fitted_proxy, **overrides):
    return parse_spec({**FAST_SPEC, "proxy": str(fitted_proxy), "out": str(tmp_path / "result.json"), **overrides})


@pytest.fixture(scope="module")
def scored(tmp_path_factory, fitted_proxy):
    out = tmp_path_factory.mktemp("scored")
    return score_submission(_spec(out, fitted_proxy), progress=False)


def test_timm_model_gives_a_valid_result(scored):
    result = read_result(scored)
    units = result.scores.units
    assert result.submission.source == "timm" and result.submission.model == "test_resnet.r160_in1k"
    assert len(units) + len(result.scores.skipped_units) == 2 * len(result.scores.layers)
    assert all(0.0 <= u.score <= 1.0 and len(u.task_scores) == 5 and len(u.tasks) == 5 for u in units)
    assert result.scores.model.n_units == len(units)
    assert result.scores.model.mean == pytest.approx(np.mean([u.score for u in units]))
    assert result.proxy.name == "mis-pixel" and result.proxy.fitted_params["temperature_"] > 0
    assert result.protocol.task.n_tasks == 5 and result.protocol.image_source.n_images == 80
    assert result.provenance.device == "cpu" and result.provenance.command.startswith("imibench score")
    assert result.comparability is not None and result.comparability == compute_comparability(result)


def test_tasks_follow_the_protocol_and_their_images_exist(scored):
    result = read_result(scored)
    stimuli = scored.parent / result.protocol.image_source.stimuli_dir
    for unit in result.scores.units:
        ids = [i for t in unit.tasks for i in (*t.max_references, *t.min_references, t.max_query, t.min_query)]
        assert len(ids) == len(set(ids)) == 5 * (2 * 4 + 2)  # every image used once per unit
        assert all(len(t.max_references) == 4 for t in unit.tasks)
        assert all((stimuli / materialised_name(i)).is_file() for i in ids)


def test_mean_task_score_is_the_unit_score(scored):
    for unit in read_result(scored).scores.units:
        assert unit.score == pytest.approx(np.mean(unit.task_scores))


def test_local_checkpoint_with_checksum(tmp_path, fitted_proxy):
    model = timm.create_model("test_resnet.r160_in1k", pretrained=False)
    weights = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    import hashlib

    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    spec = _spec(tmp_path, fitted_proxy, model=f"local:{weights}?arch=timm:test_resnet.r160_in1k",
                 weights_sha256=digest)
    result = read_result(score_submission(spec, progress=False))
    assert result.submission.weights_sha256 == digest and result.submission.source == "local"
    wrong = _spec(tmp_path, fitted_proxy, model=f"local:{weights}?arch=timm:test_resnet.r160_in1k",
                  weights_sha256="0" * 64)
    with pytest.raises(ChecksumError):
        score_submission(wrong, progress=False)


def test_interrupted_run_resumes_to_the_same_result(tmp_path, fitted_proxy, scored, monkeypatch):
    real_loader = pipeline.make_loader
    calls = {"n": 0}

    def flaky_loader(*args, **kwargs):
        for batch in real_loader(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(pipeline, "make_loader", flaky_loader)
    spec = _spec(tmp_path, fitted_proxy)
    with pytest.raises(KeyboardInterrupt):
        score_submission(spec, progress=False)
    assert not (tmp_path / "result.json").exists()
    assert (tmp_path / ".result.work" / "activations.ckpt").is_file()
    monkeypatch.setattr(pipeline, "make_loader", real_loader)
    resumed = read_result(score_submission(spec, progress=False))
    reference = read_result(scored)
    assert [u.score for u in resumed.scores.units] == [u.score for u in reference.scores.units]
    assert [u.tasks for u in resumed.scores.units] == [u.tasks for u in reference.scores.units]


@pytest.mark.parametrize(
    ("overrides", "error", "needle"),
    [
        ({"model": "timm:resnet_does_not_exist"}, ConfigError, "resnet_does_not_exist"),
        ({"units": {"layers": ["nolayer.*"]}}, ConfigError, "matches none"),
        ({"images": "bundled:30"}, DataValidationError, "at least 50 images"),
        ({"proxy": "/nonexistent/proxy.json"}, SourceUnavailableError, "imibench proxy fit"),
        ({"device": "cuda:7"} if not torch.cuda.is_available() else {"device": "tpu"}, ConfigError, "device"),
    ],
)
def test_bad_specs_are_clear_errors(tmp_path, fitted_proxy, overrides, error, needle):
    with pytest.raises(error, match=needle):
        score_submission(_spec(tmp_path, fitted_proxy, **overrides), progress=False)


def test_non_image_files_in_an_image_folder(tmp_path, fitted_proxy):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image")
    with pytest.raises(DataValidationError, match="not images"):
        score_submission(_spec(tmp_path, fitted_proxy, images=f"folder:{folder}"), progress=False)


def test_hard_variant_needs_a_large_enough_source(tmp_path, fitted_proxy):
    with pytest.raises(DataValidationError, match="hard95.*larger image source"):
        score_submission(_spec(tmp_path, fitted_proxy, protocol={"n_tasks": 5, "n_references": 4,
                                                                  "query_variant": "hard95"}), progress=False)


def test_hard_variant_queries_come_from_the_percentile_band(tmp_path, fitted_proxy):
    spec = _spec(tmp_path, fitted_proxy, images="bundled:400",
                 protocol={"n_tasks": 4, "n_references": 3, "query_variant": "hard85"})
    result = read_result(score_submission(spec, progress=False))
    assert result.protocol.task.query_variant == "hard85" and result.scores.units


def test_cli_score_results_show_and_rerun_from_result(tmp_path, fitted_proxy, capsys):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(json.dumps({**FAST_SPEC, "proxy": str(fitted_proxy)}))  # JSON is valid YAML
    out = tmp_path / "r.json"
    assert main(["score", str(spec_file), "--out", str(out), "--no-progress"]) == 0
    assert "MIS (mis-pixel v1)" in capsys.readouterr().out
    assert main(["results", "show", str(out), "--units", "2"]) == 0
    assert "Per layer:" in capsys.readouterr().out
    rerun = tmp_path / "rerun.json"
    assert main(["score", "--from-result", str(out), "--out", str(rerun), "--no-progress"]) == 0
    assert [u.score for u in read_result(rerun).scores.units] == [u.score for u in read_result(out).scores.units]
    assert main(["score"]) == 2
    assert "Nothing to score" in capsys.readouterr().err


def test_leaderboard_unit_viewer_finds_the_scored_images(scored):
    from leaderboard.images import resolve_image, stimuli_roots
    from leaderboard.loading import LoadedResult

    loaded = LoadedResult(scored, read_result(scored))
    roots = stimuli_roots(loaded)
    task = loaded.result.scores.units[0].tasks[0]
    assert all(resolve_image(i, roots) is not None for i in (*task.max_references, task.max_query))


@pytest.mark.slow
def test_hard_queries_equal_those_of_a_full_ranking(tmp_path, fitted_proxy, monkeypatch):
    from benchmark.activations.bands import BandOptions
    from benchmark.models.adapters import load_model
    from benchmark.scoring.spec import model_spec_of
    from benchmark.scoring.units import choose_units
    from benchmark.stimuli.sources import parse_image_source

    spec = _spec(tmp_path, fitted_proxy, images="bundled:400",
                 protocol={"n_tasks": 4, "n_references": 3, "query_variant": "hard85"})
    monkeypatch.setattr(pipeline, "BandOptions", lambda seed: BandOptions(sample_size=64, seed=seed))  # force passes
    result = read_result(score_submission(spec, progress=False))
    loaded = load_model(model_spec_of(spec), device=torch.device("cpu"))
    source = parse_image_source(spec.images)
    units, layers = choose_units(loaded, spec.units)
    _, band = pipeline.ranks_needed(spec.protocol, len(source))
    full = pipeline.local_activation_pass(loaded, source, units, layers, spec, k=band[1], work_dir=tmp_path / "w",
                                          progress=False)  # every rank down to the band: the old, O(n) way
    tasks, _ = pipeline.unit_tasks(units, full, spec, band)
    ids = source.ids()
    # the same images per side (their order within the tasks is drawn after the references, from the unit's rng)
    expected = [(sorted(ids[int(i)] for i in t.max_queries), sorted(ids[int(i)] for i in t.min_queries))
                for _, t in tasks]
    got = [(sorted(task.max_query for task in u.tasks), sorted(task.min_query for task in u.tasks))
           for u in result.scores.units]
    assert got == expected
    assert [[t.max_references for t in u.tasks] for u in result.scores.units] == [
        [[ids[int(i)] for i in row] for row in t.max_references] for _, t in tasks
    ]

import json
import shutil

import pytest
from safetensors.torch import save_file

from benchmark.cli.main import main
from benchmark.models.adapters import load_model
from benchmark.results.io import read_result
from benchmark.results.portable import portable_spec, portable_text, resolved_spec
from benchmark.scoring.pipeline import score_submission
from benchmark.scoring.spec import parse_spec


def _run_in(folder, fitted_proxy):
    """Score a local toy checkpoint with a proxy that records its own folder; everything lives under `folder`."""
    (folder / "models").mkdir(parents=True)
    state = load_model("toy:shapes_cnn?pretrained=false").module.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "models" / "toy.safetensors"))
    record = json.loads(fitted_proxy.read_text())
    record["data"] = {"source": f"{folder / 'release'} (responses_main)", "maps": f"Maps({folder / 'release'})"}
    (folder / "proxies").mkdir()
    (folder / "proxies" / "proxy.json").write_text(json.dumps(record))
    spec = parse_spec({
        "model": f"local:{folder / 'models' / 'toy.safetensors'}?arch=toy:shapes_cnn",
        "images": "shapes:60?photos=20&size=32", "proxy": str(folder / "proxies" / "proxy.json"),
        "units": {"layers": ["conv2"], "units_per_layer": 4}, "protocol": {"n_tasks": 5, "n_references": 4},
        "device": "cpu", "batch_size": 40, "out": str(folder / "results" / "toy.json"),
    })
    return score_submission(spec, progress=False)


def _without_times(path):
    data = json.loads(path.read_text())
    data["provenance"].pop("date")
    data["provenance"].pop("wall_time_s")
    return json.dumps(data, sort_keys=True)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, fitted_proxy):
    base = tmp_path_factory.mktemp("portable")
    return _run_in(base / "first", fitted_proxy), _run_in(base / "elsewhere" / "second", fitted_proxy)


def test_runs_in_different_folders_give_identical_files(two_runs):
    first, second = two_runs
    assert _without_times(first) == _without_times(second)
    for path in two_runs:
        text = path.read_text()
        assert str(path.parent.parent) not in text  # no absolute path of the run's folder anywhere
    spec = read_result(first).submission.spec
    assert spec["model"].startswith("local:../models/toy.safetensors") and spec["proxy"] == "../proxies/proxy.json"
    assert read_result(first).provenance.dataset_revisions["proxy_fitted_on"]["maps"] == "Maps(../release)"


def test_a_moved_result_reruns_from_its_own_folder(two_runs, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(two_runs[0].parent.parent, moved)
    rerun = moved / "results" / "rerun.json"
    assert main(["score", "--from-result", str(moved / "results" / "toy.json"), "--out", str(rerun),
                 "--no-progress"]) == 0
    assert [u.score for u in read_result(rerun).scores.units] == [u.score for u in read_result(two_runs[0]).scores.units]


def test_spec_paths_round_trip(tmp_path):
    spec = {"model": f"local:{tmp_path}/w/a.safetensors?arch=toy:shapes_cnn&sha256={'0' * 64}",
            "images": f"folder:{tmp_path}/img?limit=5", "proxy": f"{tmp_path}/p.json", "out": None}
    portable = portable_spec(spec, tmp_path / "results")
    assert portable["model"] == f"local:../w/a.safetensors?arch=toy:shapes_cnn&sha256={'0' * 64}"
    assert portable["images"] == "folder:../img?limit=5" and portable["proxy"] == "../p.json"
    back = resolved_spec(portable, tmp_path / "results")
    assert back["proxy"] == str(tmp_path / "results" / "../p.json")
    assert portable_spec({"model": "timm:resnet18?pretrained=false"}, tmp_path) == {
        "model": "timm:resnet18?pretrained=false"}


def test_urls_and_hub_ids_in_text_are_left_alone(tmp_path):
    text = "https://huggingface.co/timm/resnet50 timm/resnet50 skimage.data"
    assert portable_text({"a": [text]}, tmp_path) == {"a": [text]}
    assert portable_text(f"{tmp_path}/x/y (main)", tmp_path / "r") == "../x/y (main)"

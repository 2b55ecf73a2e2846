import hashlib
import json
from pathlib import Path

import httpx2
import huggingface_hub
import pandas as pd
import pytest
import yaml
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

from benchmark.api.errors import ConfigError, SourceUnavailableError
from benchmark.api.types import TRIAL_COLUMNS
from benchmark.data.local import load_release_dir
from benchmark.data.push import build_hub_folder, push_to_hub
from benchmark.data.sources import RESPONSE_FILES
from benchmark.data.zenodo import RECORD_JSON
from tests.data.release_fixtures import write_tiny_release


def _header(folder: Path) -> dict:
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return write_tiny_release(tmp_path / "release")


def test_folder_layout_and_parquet_columns(release: Path, tmp_path: Path):
    folder = build_hub_folder(release, tmp_path / "hub")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "README.md",
        "data/all.parquet",
        "data/lower_quality.parquet",
        "data/main.parquet",
        "image_data/imagenet_exemplars_file_map.json",
    ]
    table = pd.read_parquet(folder / "data" / "all.parquet")
    assert list(table.columns) == [*TRIAL_COLUMNS, "rt", "choice", "trial_type"]
    assert len(table) == len(load_release_dir(release, "all").trials)


def test_card_header_declares_the_three_configs_and_licence(release: Path, tmp_path: Path):
    header = _header(build_hub_folder(release, tmp_path / "hub"))
    assert [c["config_name"] for c in header["configs"]] == list(RESPONSE_FILES)
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "data/main.parquet"}]
    assert header["configs"][0]["default"] is True
    assert header["license"] == "unknown"


def test_card_text_has_source_counts_hashes_and_citation(release: Path, tmp_path: Path):
    folder = build_hub_folder(release, tmp_path / "hub")
    card = (folder / "README.md").read_text()
    for needle in ("zenodo.org/records/8131197", "## Collection protocol", "## Columns", "## Exclusions",
                   "| all | 25 | 5 |", "Zimmermann", "Klein", "Brendel", "NeurIPS", "`passed_checks`"):
        assert needle in card, needle
    for path in (folder / "data" / "main.parquet", release / "human_responses" / "responses_main.csv"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() in card


def test_licence_comes_from_the_saved_zenodo_record(release: Path, tmp_path: Path):
    (release / RECORD_JSON).write_text(json.dumps({"id": 8131197, "metadata": {"license": {"id": "CC-BY-4.0"}}}))
    assert _header(build_hub_folder(release, tmp_path / "hub"))["license"] == "cc-by-4.0"
    assert _header(build_hub_folder(release, tmp_path / "hub2", license="mit"))["license"] == "mit"


def test_dry_run_accepts_loaded_trials_and_makes_no_call(release: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "HfApi", None)  # any use would fail
    loaded = load_release_dir(release)
    folder = push_to_hub(loaded, "imi-bench/imi-human-responses", dry_run=True, out_dir=tmp_path / "hub")
    assert (folder / "data" / "main.parquet").is_file()


def test_release_without_a_folder_or_a_response_file(release: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="human_responses/"):
        build_hub_folder(tmp_path, tmp_path / "hub")
    (release / "human_responses" / "responses_all.csv").unlink()
    with pytest.raises(SourceUnavailableError, match="responses_all"):
        build_hub_folder(release, tmp_path / "hub")


def test_loaded_trials_without_release_root_is_refused(release: Path, tmp_path: Path):
    folder = build_hub_folder(release, tmp_path / "hub")
    from benchmark.data.local import load_table_file

    with pytest.raises(ConfigError, match="release folder"):
        build_hub_folder(load_table_file(folder / "data" / "main.parquet"), tmp_path / "hub2")


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "bad name/x"])
def test_invalid_repo_id(release: Path, tmp_path: Path, repo_id: str):
    with pytest.raises(ConfigError, match="OWNER/NAME"):
        push_to_hub(release, repo_id, dry_run=True, out_dir=tmp_path / "hub")


class _FailingApi:
    error: BaseException = RuntimeError("unset")

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, *args, **kwargs):
        raise self.error


def _unauthorized() -> HfHubHTTPError:
    response = httpx2.Response(401, request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"))
    return HfHubHTTPError("401 Unauthorized", response=response)


@pytest.mark.parametrize(
    ("error", "raised", "words"),
    [
        (LocalTokenNotFoundError("no token"), ConfigError, "hf auth login"),
        (_unauthorized(), ConfigError, "hf auth login"),
        (ConnectionError("no route"), SourceUnavailableError, "folder is ready"),
    ],
)
def test_upload_errors_say_how_to_fix(release, tmp_path, monkeypatch, error, raised, words):
    monkeypatch.setattr(_FailingApi, "error", error)
    monkeypatch.setattr(huggingface_hub, "HfApi", _FailingApi)
    with pytest.raises(raised) as info:
        push_to_hub(release, "imi-bench/imi-human-responses", out_dir=tmp_path / "hub")
    assert words in str(info.value) and "imi-bench/imi-human-responses" in str(info.value)


def test_an_empty_response_file_is_listed_but_not_published(release: Path, tmp_path: Path):
    lower = release / "human_responses" / "responses_lower_quality.csv"
    lower.write_text(lower.read_text().splitlines()[0] + "\n")  # header only
    folder = build_hub_folder(release, tmp_path / "hub")
    assert [c["config_name"] for c in _header(folder)["configs"]] == ["main", "all"]
    assert not (folder / "data" / "lower_quality.parquet").exists()
    assert "lower_quality: no rows in this release" in (folder / "README.md").read_text()


def test_simulated_release_round_trips_through_the_hub_folder(tmp_path: Path):
    simulate = pytest.importorskip("benchmark.data.simulate")
    from benchmark.data.hub import load_from_hub

    config = simulate.SimulationConfig(models=("simnet_a",), layers_per_model=1, units_per_layer=2)
    root = simulate.write_release(tmp_path / "sim", config)
    folder = push_to_hub(root, "imi-bench/imi-human-responses", dry_run=True, out_dir=tmp_path / "hub")
    for name in [c["config_name"] for c in _header(folder)["configs"]]:
        loaded = load_from_hub(str(folder), responses=name, cache_dir=tmp_path / "cache", progress=False)
        pd.testing.assert_frame_equal(loaded.trials, load_release_dir(root, name).trials)

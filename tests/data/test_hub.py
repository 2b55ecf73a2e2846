import hashlib
from pathlib import Path

import datasets
import huggingface_hub
import pandas as pd
import pytest

from benchmark.api.errors import ConfigError, SourceUnavailableError
from benchmark.data.hub import load_from_hub
from benchmark.data.local import load_release_dir
from benchmark.data.push import push_to_hub
from tests.data.release_fixtures import write_tiny_release


@pytest.fixture
def hub_folder(tmp_path: Path) -> tuple[Path, Path]:
    release = write_tiny_release(tmp_path / "release")
    return release, push_to_hub(release, "imi-bench/test", dry_run=True, out_dir=tmp_path / "hub")


@pytest.mark.parametrize("responses", ["main", "lower_quality", "all"])
def test_dry_run_push_folder_loads_through_load_dataset(hub_folder, tmp_path: Path, network_calls, responses):
    release, folder = hub_folder
    loaded = load_from_hub(str(folder), responses=responses, cache_dir=tmp_path / "cache", progress=False)
    pd.testing.assert_frame_equal(loaded.trials, load_release_dir(release, responses).trials)
    parquet = folder / "data" / f"{responses}.parquet"
    digest = hashlib.sha256(parquet.read_bytes()).hexdigest()
    assert loaded.files == {f"data/{responses}.parquet": digest}
    assert loaded.revision == digest
    assert loaded.release_root == folder  # the folder carries image_data/ for the stimulus index
    assert loaded.source == f"hf:{folder} ({responses})"
    assert network_calls == []


def test_folder_without_the_config(hub_folder, tmp_path: Path):
    _, folder = hub_folder
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace("config_name: all", "config_name: everything"))
    with pytest.raises(SourceUnavailableError) as info:
        load_from_hub(str(folder), responses="all", cache_dir=tmp_path / "cache", progress=False)
    assert "'all'" in str(info.value) and str(folder) in str(info.value)


def test_offline_unknown_repo_says_so_and_makes_no_network_call(monkeypatch, tmp_path: Path, network_calls):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Both libraries read the variable at import time: patch the values they consult.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(SourceUnavailableError) as info:
        load_from_hub("imi-bench-test/does-not-exist", revision="v9", cache_dir=tmp_path / "cache", progress=False)
    message = str(info.value)
    assert "'imi-bench-test/does-not-exist'" in message and "v9" in message
    assert "OfflineModeIsEnabled" in message and "Offline mode is on" in message  # the offline path ran
    assert "--source zenodo:DIR" in message and "--source PATH/to/release" in message
    assert isinstance(info.value.__cause__, ConnectionError)
    assert network_calls == []


def test_missing_local_dataset_folder(tmp_path: Path, network_calls):
    missing = tmp_path / "no" / "such" / "dataset"
    with pytest.raises(SourceUnavailableError) as info:
        load_from_hub(str(missing), cache_dir=tmp_path / "cache", progress=False)
    assert str(missing) in str(info.value) and "FileNotFoundError" in str(info.value)
    assert network_calls == []


def test_invalid_repo_id_is_a_config_error(tmp_path: Path, network_calls):
    with pytest.raises(ConfigError, match="not a valid Hub dataset id"):
        load_from_hub("bad name!/x", cache_dir=tmp_path / "cache", progress=False)
    assert network_calls == []


def test_provenance_of_hub_data_files():
    from benchmark.data.hub import _name_in_repo, _resolved_revision

    sha = "0123456789abcdef0123456789abcdef01234567"
    url = f"hf://datasets/imi-bench/imi-human-responses@{sha}/data/main.parquet"
    assert _name_in_repo(url, "imi-bench/imi-human-responses") == "data/main.parquet"
    assert _resolved_revision([url], "main", {"data/main.parquet": "f" * 64}) == sha

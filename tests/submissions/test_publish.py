import pandas as pd
import pytest
import yaml

from benchmark.api.errors import ConfigError, DataValidationError, SourceUnavailableError
from benchmark.results.io import write_result
from benchmark.submissions import publish
from benchmark.submissions.publish import INDEX_FILE, publish_results
from benchmark.submissions.worker import annotate_result
from tests.submissions import make_result, make_spec


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    annotate_result(write_result(make_result("resnet18", 0.6), folder / "a.json"), make_spec(name="R18"),
                    entry_id="a", key="timm:resnet18@x")
    write_result(make_result("vit_tiny", 0.8), folder / "b.json")  # scored outside the queue: no metadata
    return folder


@pytest.fixture
def no_upload(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run must not upload")

    monkeypatch.setattr(publish, "upload_dataset_folder", refuse)


def test_dry_run_writes_results_index_and_card(tmp_path, results, no_upload):
    folder = publish_results(results, "me/imi-results", dry_run=True, out_dir=tmp_path / "out")
    assert folder == tmp_path / "out"
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["README.md", "a.json", "b.json", INDEX_FILE]
    assert (folder / "results" / "a.json").read_bytes() == (results / "a.json").read_bytes()
    index = pd.read_parquet(folder / INDEX_FILE)
    assert list(index["file"]) == ["results/b.json", "results/a.json"]  # best first
    row = index.set_index("file").loc["results/a.json"]
    assert row["name"] == "R18" and row["family"] == "ResNet" and row["imagenet_top1"] == 12.5
    assert row["mis_mean"] == 0.6 and row["proxy"] == "mis-pixel" and row["source"] == "timm"
    assert index.set_index("file").loc["results/b.json", "name"] == "vit_tiny"
    card = (folder / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"][0]["data_files"][0]["path"] == INDEX_FILE
    assert "2 scored submissions" in card and "| R18 | 0.600 |" in card
    # the leaderboard reads every *.json of the dataset as a result file: only result files may be JSON
    assert sorted(p.name for p in folder.rglob("*.json")) == ["a.json", "b.json"]


def test_one_invalid_file_refuses_everything(tmp_path, results, no_upload):
    (results / "c.json").write_text('{"schema_version": "1.0"}')
    (results / "d.json").write_text("{nope")
    with pytest.raises(DataValidationError) as info:
        publish_results(results, "me/imi-results", dry_run=True, out_dir=tmp_path / "out")
    message = str(info.value)
    assert "2 of 4 result files" in message and "c.json" in message and "d.json" in message
    assert "nothing was published" in message and not (tmp_path / "out").exists()


def test_bad_arguments(tmp_path, results, no_upload):
    with pytest.raises(ConfigError, match="Invalid Hub repo id"):
        publish_results(results, "not a repo", dry_run=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "stale.json").write_text("{}")
    with pytest.raises(ConfigError, match="must be a new or empty folder"):
        publish_results(results, "me/r", dry_run=True, out_dir=tmp_path / "full")
    with pytest.raises(SourceUnavailableError, match="Results folder not found"):
        publish_results(tmp_path / "none", "me/r", dry_run=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match="No result files"):
        publish_results(tmp_path / "empty", "me/r", dry_run=True)


def test_missing_login_is_a_config_error(tmp_path, results, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalTokenNotFoundError

    class NoToken:
        def __init__(self, token=None):
            pass

        def create_repo(self, *args, **kwargs):
            raise LocalTokenNotFoundError("Token is required")

    monkeypatch.setattr(huggingface_hub, "HfApi", NoToken)
    with pytest.raises(ConfigError, match="hf auth login"):
        publish_results(results, "me/r", out_dir=tmp_path / "out")

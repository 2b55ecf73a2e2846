import math

import pandas as pd
import pytest

from benchmark.api.errors import ConfigError
from leaderboard import EMPTY_MESSAGE
from leaderboard.loading import ResultStore, folder_signature, load_results
from leaderboard.table import (
    ALL_COLUMNS,
    DEFAULT_COLUMNS,
    DISPLAY_COLUMNS,
    build_table,
    derive_family,
    filter_choices,
    filter_table,
    rank_with_ties,
    select_columns,
    write_csv,
)
from tests.leaderboard.fixtures import MODELS, FixtureModel, make_result, write_results, write_stimuli


@pytest.fixture
def results(tmp_path):
    return load_results(write_results(tmp_path / "results"))


@pytest.fixture
def table(results):
    return build_table(results.results)


def _by_model(table: pd.DataFrame) -> dict:
    return {row["model"]: row for _, row in table.iterrows()}


def test_one_row_per_submission_newest_file_wins(results, table):
    assert len(results.results) == len(MODELS) + 1  # the older duplicate is read ...
    assert len(table) == len(MODELS)  # ... but only the newest file per key is a row
    resnet = _by_model(table)["ResNet-50 A1"]
    assert resnet["MIS mean"] == 0.85 and resnet["date"] == "2025-01-02 03:04"
    assert resnet["file"] == "00_resnet50.a1_in1k.json"
    assert list(table.columns) == list(ALL_COLUMNS)


def test_ranks_and_ties_follow_ci_overlap(table):
    assert table["model"].tolist() == ["ResNet-50 A1", "vit_b_16", "convnext_tiny.fb_in1k", "ViT-B-32",
                                       "My ResNet-18"]
    assert table["rank"].tolist() == [1, 2, 2, 4, 4]
    assert table["tie"].tolist() == ["", "=", "=", "=", "="]


def _group(rows):
    return pd.DataFrame(
        [{"model": m, "MIS mean": mean, "ci_low": lo, "ci_high": hi} for m, mean, lo, hi in rows]
    )


def test_rank_with_ties_chains_overlaps_and_breaks_on_gaps():
    ranked = rank_with_ties(_group([
        ("d", 0.60, 0.58, 0.62),
        ("a", 0.90, 0.88, 0.92),
        ("b", 0.87, 0.85, 0.89),  # overlaps a
        ("c", 0.84, 0.82, 0.86),  # overlaps b (not a): chained into the same group
        ("e", 0.50, 0.49, 0.51),
    ]))
    assert ranked["model"].tolist() == ["a", "b", "c", "d", "e"]
    assert ranked["rank"].tolist() == [1, 1, 1, 4, 5]
    assert ranked["tie"].tolist() == ["=", "=", "=", "", ""]


def test_ranks_are_per_benchmark_and_proxy_version(tmp_path):
    stimuli = tmp_path / "stimuli"
    ids = write_stimuli(stimuli)
    from benchmark.results.io import write_result

    models = [
        FixtureModel("a", "timm", 0.9, 0.89, 0.91, {}),
        FixtureModel("b", "timm", 0.5, 0.49, 0.51, {}),
        FixtureModel("c", "timm", 0.7, 0.69, 0.71, {}, proxy_version="2"),
        FixtureModel("d", "timm", 0.8, 0.79, 0.81, {}, benchmark_version="0.10.0"),
    ]
    for m in models:
        write_result(make_result(m, stimuli, ids), tmp_path / "results" / f"{m.model}.json")
    table = build_table(load_results(tmp_path / "results").results)
    ranks = dict(zip(table["model"], table["rank"], strict=True))
    assert ranks == {"a": 1, "b": 2, "c": 1, "d": 1}
    assert table["benchmark"].iloc[0] == "0.10.0"  # newest benchmark version first (natural order)


def test_metadata_is_read_defensively(table):
    rows = _by_model(table)
    assert rows["ResNet-50 A1"]["ImageNet top-1"] == 80.4  # from spec.metadata
    assert rows["vit_b_16"]["ImageNet top-1"] == 81.1  # a fraction, shown in percent
    assert rows["convnext_tiny.fb_in1k"]["ImageNet top-1"] == 82.1  # a numeric string
    assert math.isnan(rows["ViT-B-32"]["ImageNet top-1"])  # missing -> blank
    assert math.isnan(rows["My ResNet-18"]["ImageNet top-1"])  # "unknown" -> blank
    assert rows["ResNet-50 A1"]["params (M)"] == 25.6
    assert math.isnan(rows["vit_b_16"]["params (M)"])
    assert rows["convnext_tiny.fb_in1k"]["family"] == "convnext"  # derived from the architecture
    assert rows["My ResNet-18"]["family"] == "resnet"  # derived from local:...?arch=timm:resnet18
    assert rows["ViT-B-32"]["family"] == "clip"  # recorded
    assert rows["ResNet-50 A1"]["95% CI"] == "[0.830, 0.870]"
    assert rows["ResNet-50 A1"]["proxy"] == "mis 1" and rows["ResNet-50 A1"]["units"] == 9


@pytest.mark.parametrize(
    ("model", "family"),
    [("timm:resnet50.a1_in1k", "resnet"), ("vit_base_patch16_224", "vit"), ("open_clip:ViT-B-32", "vit"),
     ("local:/ckpt/x.pt?arch=timm:efficientnet_b0", "efficientnet"), ("123", "")],
)
def test_derive_family(model, family):
    assert derive_family(model) == family


def test_search_is_a_case_insensitive_substring_over_name_family_source(table):
    assert filter_table(table, "RESNET")["model"].tolist() == ["ResNet-50 A1", "My ResNet-18"]
    assert filter_table(table, "open_clip")["model"].tolist() == ["ViT-B-32"]
    assert filter_table(table, "  torchvision ")["model"].tolist() == ["vit_b_16"]
    assert filter_table(table, "no such model").empty
    assert len(filter_table(table, "")) == len(table)


def test_filters_combine_and_empty_selection_means_all(table):
    assert filter_table(table, families=["vit"])["model"].tolist() == ["vit_b_16"]
    assert filter_table(table, sources=["timm"])["model"].tolist() == ["ResNet-50 A1", "convnext_tiny.fb_in1k"]
    assert filter_table(table, "resnet", sources=["local"])["model"].tolist() == ["My ResNet-18"]
    assert filter_table(table, proxies=["mis 1"]).shape == table.shape
    assert filter_table(table, proxies=["mis 9"]).empty
    assert filter_choices(table) == {
        "family": ["clip", "convnext", "resnet", "vit"],
        "source": ["local", "open_clip", "timm", "torchvision"],
        "proxy": ["mis 1"],
    }


def test_column_selection_keeps_display_order_and_the_model(table):
    shown = select_columns(table, ["date", "MIS mean", "rank"])
    assert list(shown.columns) == ["rank", "model", "MIS mean", "date"]
    assert list(select_columns(table, []).columns) == ["model"]
    assert list(select_columns(table, DEFAULT_COLUMNS).columns) == list(DEFAULT_COLUMNS)
    assert "key" not in DISPLAY_COLUMNS and "submission id" in DISPLAY_COLUMNS
    with pytest.raises(ConfigError, match="Unknown leaderboard column.*'bogus'.*valid columns"):
        select_columns(table, ["bogus"])


def test_csv_holds_the_filtered_selected_table(table, tmp_path):
    shown = select_columns(filter_table(table, families=["resnet"]), ["rank", "MIS mean", "ImageNet top-1"])
    path = write_csv(shown, tmp_path / "csv")
    assert path.parent == tmp_path / "csv" and path.suffix == ".csv"
    back = pd.read_csv(path)
    assert list(back.columns) == ["rank", "model", "MIS mean", "ImageNet top-1"]
    assert back["model"].tolist() == ["ResNet-50 A1", "My ResNet-18"]
    assert back["ImageNet top-1"].iloc[0] == 80.4 and math.isnan(back["ImageNet top-1"].iloc[1])
    assert write_csv(shown).is_file()  # default: a fresh temporary folder


def test_empty_state(tmp_path):
    empty = load_results(tmp_path)
    assert empty.results == () and empty.invalid == () and empty.problem is None
    table = build_table(empty.results)
    assert table.empty and list(table.columns) == list(ALL_COLUMNS)
    assert filter_table(table, "x", families=["vit"]).empty
    assert list(select_columns(table, DEFAULT_COLUMNS).columns) == list(DEFAULT_COLUMNS)
    assert filter_choices(table) == {"family": [], "source": [], "proxy": []}
    assert "imibench score" in EMPTY_MESSAGE and "imibench demo" in EMPTY_MESSAGE


def test_missing_folder_is_a_problem_not_a_crash(tmp_path):
    missing = load_results(tmp_path / "nope")
    assert missing.results == () and "does not exist" in missing.problem


def test_invalid_files_are_reported_not_raised(results):
    names = {item.name: item.error for item in results.invalid}
    assert set(names) == {"broken.json", "wrong_schema.json"}
    assert "not valid JSON" in names["broken.json"]
    assert "submission: Field required" in names["wrong_schema.json"]


def test_hidden_files_are_ignored(tmp_path):
    folder = write_results(tmp_path / "results", invalid=False)
    (folder / ".partial.json.tmp").write_text("{", encoding="utf-8")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x.json").write_text("{", encoding="utf-8")
    assert load_results(folder).invalid == ()


def test_hub_source_offline_gives_a_clear_problem(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    result = load_results("hf:someone/imibench-results@v1")
    assert result.results == () and result.folder is None
    assert "someone/imibench-results" in result.problem and "offline" in result.problem
    assert "'v1'" in result.problem


def test_hub_source_reads_the_snapshot(monkeypatch, tmp_path):
    import huggingface_hub

    folder = write_results(tmp_path / "snapshot", invalid=False)
    calls = []

    def download(repo_id, **kwargs):
        calls.append((repo_id, kwargs["repo_type"], kwargs["revision"]))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    result = load_results("hf:someone/results")
    assert calls == [("someone/results", "dataset", None)]
    assert len(build_table(result.results)) == len(MODELS) and result.source == "hf:someone/results"


def test_store_reloads_when_a_file_lands(tmp_path):
    folder = tmp_path / "results"
    store = ResultStore(folder)
    assert store.results.results == () and not store.poll()
    before = folder_signature(folder)
    write_results(folder, invalid=False)
    assert folder_signature(folder) != before
    version = store.version
    assert store.poll() and store.version == version + 1
    assert len(build_table(store.results.results)) == len(MODELS)
    assert not store.poll()


def test_a_bare_repo_id_that_is_not_a_folder_suggests_the_hub_prefix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = load_results("someone/results")
    assert "does not exist" in result.problem and "--results hf:someone/results" in result.problem

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.api.errors import ConfigError
from leaderboard import EMPTY_MESSAGE
from leaderboard.loading import ResultStore, folder_signature, load_results
from leaderboard.ranks import bootstrap_means, format_rank, rank_intervals
from leaderboard.table import (
    ALL_COLUMNS,
    DEFAULT_COLUMNS,
    DISPLAY_COLUMNS,
    build_table,
    comparability_groups,
    derive_family,
    filter_choices,
    filter_table,
    group_choices,
    resolve_duplicates,
    select_columns,
    write_csv,
)
from tests.leaderboard.fixtures import MODELS, REAL_GROUP, write_results


@pytest.fixture
def results(tmp_path):
    return load_results(write_results(tmp_path / "results"))


@pytest.fixture
def table(results):
    return build_table(results.results)


def _by_model(table: pd.DataFrame) -> dict:
    return {row["model"]: row for _, row in table.iterrows()}


def test_one_row_per_submission_and_conflicts_are_shown_not_resolved(tmp_path, results, table):
    assert len(results.results) == len(MODELS) and len(table) == len(MODELS)
    assert list(table.columns) == list(ALL_COLUMNS)
    clashing = load_results(write_results(tmp_path / "clash", invalid=False, conflict=True))
    chosen, conflicts = resolve_duplicates(clashing.results)
    assert len(conflicts) == 1 and "timm:resnet50.a1_in1k@0.1.0" in conflicts[0].message
    assert set(conflicts[0].files) == {"00_resnet50.a1_in1k.json", "99_older_resnet50.json"}
    assert "ResNet-50 A1" not in build_table(clashing.results)["model"].tolist()  # never picked silently


def test_rank_intervals_replace_chained_ties(table):
    real = table[table["model"].isin(REAL_GROUP)]
    assert real["model"].tolist() == list(REAL_GROUP)
    assert real["rank_num"].tolist() == [1, 2, 3, 4, 5]
    # vit (0.80) and convnext (0.79) have overlapping unit distributions: their intervals overlap ...
    vit, convnext = (real[real["model"] == m].iloc[0] for m in ("vit_b_16", "convnext_tiny.fb_in1k"))
    assert vit["rank_low"] <= convnext["rank_num"] <= vit["rank_high"] or convnext["rank_low"] <= vit["rank_num"]
    # ... while the untrained model (0.60) is reliably last.
    assert real.iloc[-1]["rank"] == "5"
    assert all(lo <= r <= hi for r, lo, hi in zip(real["rank_num"], real["rank_low"], real["rank_high"], strict=True))


def test_rank_intervals_from_bootstrap():
    rng = np.random.default_rng(0)
    scores = [rng.normal(0.80, 0.1, 50), rng.normal(0.79, 0.1, 50), rng.normal(0.50, 0.01, 50)]
    boots = np.vstack([bootstrap_means(s, seed_name=str(i)) for i, s in enumerate(scores)])
    rank, low, high = rank_intervals([s.mean() for s in scores], boots)
    assert list(high) [:2] == [2, 2] and list(low[:2]) == [1, 1]  # the close pair could swap
    assert (rank[2], low[2], high[2]) == (3, 3, 3)  # the clear last is certain
    assert format_rank(2, 1, 3) == "2 (1-3)" and format_rank(3, 3, 3) == "3"
    again = bootstrap_means(scores[0], seed_name="0")
    assert np.array_equal(again, boots[0])  # seeded by the submission: stable across reloads


def test_groups_follow_the_comparability_key(table, results):
    groups = comparability_groups(results.results, table)
    assert groups[0].real_humans and groups[0].n_rows == len(REAL_GROUP)  # default: the largest real group
    demo = [g for g in groups if not g.real_humans]
    assert [table[table["group"] == g.id]["model"].tolist() for g in demo] == [["SimNet"]]
    assert group_choices(demo)[0][0].startswith("DEMO (not real humans)")
    assert "simulated" in demo[0].label
    local = table[table["model"] == "My ResNet-18"].iloc[0]
    assert local["group"] != groups[0].id and local["rank"] == "1"  # other images: its own group


def test_untrained_models_are_labelled_and_filterable(table):
    assert "resnet18 (untrained)" in table["model"].tolist()
    assert "resnet18 (untrained)" not in filter_table(table, hide_untrained=True)["model"].tolist()
    assert filter_table(table, params_min=20, params_max=30)["model"].tolist() == ["ResNet-50 A1"]


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
    assert filter_table(table, "RESNET")["model"].tolist() == ["ResNet-50 A1", "resnet18 (untrained)", "My ResNet-18"]
    assert filter_table(table, "open_clip")["model"].tolist() == ["ViT-B-32"]
    assert filter_table(table, "  torchvision ")["model"].tolist() == ["vit_b_16"]
    assert filter_table(table, "no such model").empty
    assert len(filter_table(table, "")) == len(table)


def test_filters_combine_and_empty_selection_means_all(table):
    assert filter_table(table, families=["vit"])["model"].tolist() == ["vit_b_16"]
    assert filter_table(table, sources=["timm"])["model"].tolist() == ["ResNet-50 A1", "convnext_tiny.fb_in1k",
                                                                       "resnet18 (untrained)", "SimNet"]
    assert filter_table(table, "resnet", sources=["local"])["model"].tolist() == ["My ResNet-18"]
    assert filter_table(table, proxies=["mis 1"]).shape == table.shape
    assert filter_table(table, proxies=["mis 9"]).empty
    assert filter_choices(table) == {
        "family": ["clip", "convnext", "resnet", "sim", "vit"],
        "source": ["local", "open_clip", "timm", "torchvision"],
        "proxy": ["mis 1"],
        "benchmark": ["0.1.0"],
    }


def test_column_selection_keeps_display_order_and_the_model(table):
    shown = select_columns(table, ["date", "MIS mean", "rank"])
    assert list(shown.columns) == ["rank", "model", "MIS mean", "date"]
    assert list(select_columns(table, []).columns) == ["model"]
    assert list(select_columns(table, DEFAULT_COLUMNS).columns) == list(DEFAULT_COLUMNS)
    assert "key" not in DISPLAY_COLUMNS and "submission id" in DISPLAY_COLUMNS
    with pytest.raises(ConfigError, match="Unknown leaderboard column.*'bogus'.*valid columns"):
        select_columns(table, ["bogus"])


def test_csv_has_numeric_cis_the_submission_id_and_three_decimals(table, tmp_path):
    path = write_csv(filter_table(table, families=["resnet"]), tmp_path / "csv")
    assert path.parent == tmp_path / "csv" and path.suffix == ".csv"
    back = pd.read_csv(path)
    assert {"rank", "rank_low", "rank_high", "ci_low", "ci_high", "submission_id", "human_natural"} <= set(back.columns)
    assert back["model"].tolist() == ["ResNet-50 A1", "resnet18 (untrained)", "My ResNet-18"]
    assert back["ci_low"].dtype.kind == "f" and back["ci_low"].iloc[0] == 0.83
    assert back["submission_id"].iloc[0] == "timm:resnet50.a1_in1k"
    assert path.read_text(encoding="utf-8").splitlines()[1].count("0.850") == 1  # three decimals
    assert write_csv(table).is_file()  # default: a fresh temporary folder


def test_empty_state(tmp_path):
    empty = load_results(tmp_path)
    assert empty.results == () and empty.invalid == () and empty.problem is None
    table = build_table(empty.results)
    assert table.empty and list(table.columns) == list(ALL_COLUMNS)
    assert filter_table(table, "x", families=["vit"]).empty
    assert list(select_columns(table, DEFAULT_COLUMNS).columns) == list(DEFAULT_COLUMNS)
    assert filter_choices(table) == {"family": [], "source": [], "proxy": [], "benchmark": []}
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


def test_a_new_revision_is_a_new_row_shown_as_such(tmp_path):
    from dataclasses import replace

    from benchmark.results.io import write_result
    from tests.leaderboard.fixtures import MODELS, make_result, write_stimuli

    ids = write_stimuli(tmp_path / "stimuli")
    for index, revision in enumerate(("aaaa", "bbbb")):
        result = make_result(replace(MODELS[1], mean=0.8 - index / 10), tmp_path / "stimuli", ids)
        sub = result.submission.model_copy(update={"revision": revision, "id": f"vit-{revision}"})
        write_result(result.model_copy(update={"submission": sub}), tmp_path / "results" / f"{revision}.json")
    table = build_table(load_results(tmp_path / "results").results)
    assert sorted(table["model"]) == ["vit_b_16 @ rev aaaa", "vit_b_16 @ rev bbbb"]


def test_unchanged_files_are_not_parsed_again_and_changed_ones_are(tmp_path, monkeypatch):
    import leaderboard.loading as loading

    folder = write_results(tmp_path / "results", invalid=False)
    first = load_results(folder)
    calls = []
    real = loading.read_result
    monkeypatch.setattr(loading, "read_result", lambda path: calls.append(path) or real(path))
    again = load_results(folder)
    assert calls == [] and [r.key for r in again.results] == [r.key for r in first.results]
    (folder / "00_resnet50.a1_in1k.json").write_text("{broken", encoding="utf-8")
    changed = load_results(folder)
    assert len(calls) == 1 and [item.name for item in changed.invalid] == ["00_resnet50.a1_in1k.json"]


def test_store_version_moves_only_when_the_files_change(tmp_path):
    folder = write_results(tmp_path / "results", invalid=False)
    store = ResultStore(folder)
    version, first_read = store.version, store.read_at
    store.reload()  # same files: the ranked table is kept, the read time moves
    assert store.version == version and store.read_at >= first_read
    path = min(folder.glob("*.json"))
    path.write_text(path.read_text() + "\n")  # same result, another size: a changed file
    store.reload()
    assert store.version == version + 1
    path.unlink()
    store.reload()
    assert store.version == version + 2 and len(store.results.results) == len(MODELS) - 1


def test_table_html_lays_out_the_first_page_of_rows_only(table, monkeypatch):
    from leaderboard import html_table

    monkeypatch.setattr(html_table, "PAGE_ROWS", 2)
    text = html_table.table_html(table)
    assert text.count('<tr class="lb-beyond"') == len(table) - 2
    assert f"Showing 2 of {len(table)} rows" in text and 'data-page="2"' in text
    assert '<th class="c-mis-mean" data-col="c-mis-mean"' in text and 'data-num="1"' in text
    assert 'class="c-mis-mean" data-v=' not in text  # sorted by its text, which is its value
    assert '<td class="c-rank" data-v="1.0">' in text  # a rank's text ("1 (1-2)") is not its value


def test_small_frames_and_galleries_are_escaped_html(tmp_path):
    from PIL import Image

    from leaderboard.html_table import FILE_ROUTE, frame_html, gallery_html

    frame = frame_html(pd.DataFrame({"layer": ["<b>x</b>"], "MIS mean": [0.5]}), "Per <layer>")
    assert "&lt;b&gt;x&lt;/b&gt;" in frame and "Per &lt;layer&gt;" in frame and "<b>" not in frame
    tile = Image.new("RGB", (4, 4), (255, 0, 0))
    text = gallery_html([("uv-max", "Max", [(tile, 'ref "1" <a>')]), ("uv-min", "Min", [])], tmp_path)
    assert text.count("<img ") == 1 and 'id="uv-min"' not in text  # an empty section is left out
    assert 'ref &quot;1&quot; &lt;a&gt;' in text
    saved = list(tmp_path.rglob("*.jpeg"))
    assert len(saved) == 1 and f'src="{FILE_ROUTE}{saved[0]}"' in text


def test_rows_are_rebuilt_for_a_changed_file(tmp_path):
    folder = write_results(tmp_path / "results", invalid=False)
    assert "ResNet-50 A1" in set(build_table(load_results(folder).results)["model"])
    path = next(p for p in folder.glob("*.json") if "ResNet-50 A1" in p.read_text())
    path.write_text(path.read_text().replace("ResNet-50 A1", "ResNet-50 renamed"))
    models = set(build_table(load_results(folder).results)["model"])
    assert "ResNet-50 renamed" in models and "ResNet-50 A1" not in models

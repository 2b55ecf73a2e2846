"""The proxy board's report adapter, the human-accuracy columns, the queue view, crafted result files, figures."""

import json
import math

import pandas as pd
import pytest

from benchmark.cli.main import build_parser
from leaderboard.figures import FORMATS, PNG_DPI, human_vs_proxy_figure, save_figure, write_paper_figures
from leaderboard.humans import load_human_table
from leaderboard.loading import load_results
from leaderboard.proxy_board import load_board, metric_row, paired_difference
from leaderboard.queue_view import queue_keys, queue_table
from leaderboard.table import build_table, latest_results
from tests.leaderboard.fixtures import make_report, write_human_units, write_queue, write_reports, write_results


def test_proxy_board_ranks_reports_by_headline_with_a_paired_comparison(tmp_path):
    board = load_board(write_reports(tmp_path / "reports")).table
    assert board["proxy"].tolist() == ["mis 1", "pixel 1"] and board["rank"].tolist() == ["1", "2"]
    pixel = board.iloc[1]
    assert pixel["delta"] < 0 and pixel["delta_high"] < 0  # clearly worse than MIS on the same units
    assert pixel["scheme"] == "lomo" and pixel["human data"] == "humans: zenodo:imi-release@v1"
    assert math.isclose(pixel["r_over_ceiling"], pixel["natural_r"] / 0.9, rel_tol=1e-6)
    assert board.iloc[0]["figure"].endswith("validation.png")


def test_reports_without_human_data_are_demo_rows(tmp_path):
    board = load_board(write_reports(tmp_path / "reports", human_data=False)).table
    assert board["rank"].tolist() == ["demo", "demo"] and board.iloc[0]["human data"] == "origin not recorded"


def test_the_adapter_uses_new_fields_when_reports_carry_them(tmp_path):
    metric = json.loads(make_report("new", 0.1).model_dump_json())
    metric["headline"] = {"name": "pooled Spearman", "value": 0.7, "ci_low": 0.6, "ci_high": 0.8}
    metric["paired_comparison"] = {"difference": {"value": -0.1, "ci_low": -0.2, "ci_high": 0.0}}
    row = metric_row(metric, metric, None, None)
    assert (row["headline"], row["statistic"], row["delta"], row["delta_low"]) == (0.7, "pooled Spearman", -0.1, -0.2)


def test_paired_difference_is_zero_against_itself():
    metric = json.loads(make_report("x", 0.1).model_dump_json())
    value, low, high, n = paired_difference(metric, metric)
    assert n == 60 and value == 0 and low == high == 0


def test_unreadable_reports_are_listed_not_raised(tmp_path):
    folder = write_reports(tmp_path / "reports")
    (folder / "bad").mkdir()
    (folder / "bad" / "report.json").write_text("[" * 100_000, encoding="utf-8")
    (folder / "bin").mkdir()
    (folder / "bin" / "report.json").write_bytes(b"\xff\xfe\x00")
    board = load_board(folder)
    assert len(board.table) == 2 and {name for name, _ in board.invalid} == {"bad/report.json", "bin/report.json"}


def test_human_columns_for_models_in_the_release(tmp_path):
    humans = load_human_table(write_human_units(tmp_path / "h.csv"))
    results = load_results(write_results(tmp_path / "results", invalid=False))
    table = build_table(results.results, humans.lookup)
    resnet = table[table["model"] == "ResNet-50 A1"].iloc[0]
    assert 0.7 < resnet["human_natural"] < 0.9 and resnet["human_natural_low"] < resnet["human_natural"]
    assert resnet["humans natural"].startswith(f"{resnet['human_natural']:.3f} [")
    assert math.isnan(table[table["model"] == "vit_b_16"].iloc[0]["human_natural"])  # not in the release
    loaded = next(r for r in latest_results(results.results).values()
                  if r.result.submission.model.startswith("resnet50"))
    pairs = humans.unit_pairs(loaded)
    assert len(pairs) == 18 and set(pairs["mode"]) == {"natural", "optimized"}


def test_queue_view_lists_every_state_and_survives_a_corrupt_entry(tmp_path):
    root = write_queue(tmp_path / "queue")
    (root / "running").mkdir()
    (root / "running" / "x.json").write_text("{not json", encoding="utf-8")
    table = queue_table(root)
    assert table["state"].tolist() == ["PENDING", "RUNNING", "FAILED"]
    assert "unreadable queue entry" in table.iloc[1]["reason"] and table.iloc[2]["reason"] == "weights not found"
    assert queue_keys(root) == {"timm:model_sub-0002"} and queue_table(None).empty


@pytest.mark.parametrize(("name", "content"), [
    ("deep.json", b"[" * 200_000 + b"]" * 200_000),
    ("latin1.json", "{\"a\": \"\xe9\"}".encode("latin-1")),
    ("array.json", b"[1, 2, 3]"),
    ("nan.json", b"{\"schema_version\": NaN}"),
])
def test_crafted_result_files_are_listed_as_invalid_never_raised(tmp_path, name, content):
    folder = write_results(tmp_path / "results", invalid=False)
    (folder / name).write_bytes(content)
    loaded = load_results(folder)
    assert [item.name for item in loaded.invalid] == [name]
    assert len(build_table(loaded.results)) == 7


def test_paper_figures_are_written_in_three_formats(tmp_path):
    paths = write_paper_figures(write_results(tmp_path / "results", stimuli=tmp_path / "stimuli"), tmp_path / "figs",
                                humans=str(write_human_units(tmp_path / "h.csv")),
                                reports=write_reports(tmp_path / "reports"))
    stems = {p.stem for p in paths}
    assert stems == {"mis_vs_top1", "layer_profiles", "humans_vs_proxy", "proxy_metrics"}
    assert {p.suffix for p in paths} == {f".{f}" for f in FORMATS}
    from PIL import Image

    with Image.open(tmp_path / "figs" / "mis_vs_top1.png") as image:
        assert round(image.info["dpi"][0]) >= PNG_DPI
    pairs = pd.DataFrame({"mode": ["natural", "optimized"] * 3, "human": [0.6, 0.9, 0.7, 0.8, 0.75, 0.55],
                          "proxy": [0.7, 0.95, 0.8, 0.6, 0.9, 0.65]})
    figure = human_vs_proxy_figure(pairs)
    natural, optimized = figure.axes[:2]
    assert natural.get_ylim() == optimized.get_ylim() and natural.get_xlim() == optimized.get_xlim()
    assert natural.get_ylim()[0] <= 0.5  # the axis shows chance, it does not start at an arbitrary value
    assert natural.get_legend() is None and figure.legends  # the legend sits outside the axes
    save_figure(figure, tmp_path / "one")
    assert all((tmp_path / f"one.{fmt}").stat().st_size > 0 for fmt in FORMATS)


def test_proxy_submit_queues_a_validated_report(tmp_path, capsys):
    from benchmark.validation.report import write_report

    write_report(make_report("mis", 0.02), tmp_path / "run" / "mis")
    args = build_parser().parse_args(["proxy", "submit", str(tmp_path / "run"), "--board", str(tmp_path / "board")])
    assert args.func(args) == 0
    queued = list((tmp_path / "board").glob("*/report.json"))
    assert len(queued) == 1 and "Queued" in capsys.readouterr().out
    assert load_board(tmp_path / "board").table["proxy"].tolist() == ["mis 1"]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_text("{}", encoding="utf-8")
    args = build_parser().parse_args(["proxy", "submit", str(tmp_path / "bad"), "--board", str(tmp_path / "board")])
    from benchmark.api.errors import DataValidationError

    with pytest.raises(DataValidationError, match="not a valid validation report"):
        args.func(args)


def test_publish_dry_run_adds_reports(tmp_path):
    results = write_results(tmp_path / "results", invalid=False)
    reports = write_reports(tmp_path / "reports", human_data=False)
    args = build_parser().parse_args(["publish", "--results", str(results), "--repo-id", "o/n", "--dry-run",
                                      "--out", str(tmp_path / "out"), "--reports", str(reports)])
    assert args.func(args) == 0
    assert len(list((tmp_path / "out" / "reports").glob("*/report.json"))) == 2
    assert load_results(tmp_path / "out").invalid == ()  # reports/ is not read as result files


def test_benchmark_version_selector_narrows_the_groups(tmp_path):
    from dataclasses import replace

    from benchmark.results.io import write_result
    from leaderboard.app import SnapshotCache, _group_update
    from leaderboard.loading import ResultStore
    from tests.leaderboard.fixtures import MODELS, make_result, write_stimuli

    folder = write_results(tmp_path / "results", invalid=False)
    ids = write_stimuli(tmp_path / "stimuli")
    write_result(make_result(replace(MODELS[1], benchmark_version="0.2.0"), tmp_path / "stimuli", ids),
                 folder / "new.json")
    snap = SnapshotCache(ResultStore(folder)).get()
    everything = _group_update(snap, "", None)
    newest = _group_update(snap, "0.2.0", None)
    assert len(everything.choices) == 4 and len(newest.choices) == 1
    assert "v0.2.0" in newest.choices[0][0] and newest.value == newest.choices[0][1]


def test_compare_plot_names_only_highlighted_models(tmp_path):
    from leaderboard.views import OTHER, compare_frame

    table = build_table(load_results(write_results(tmp_path / "results", invalid=False)).results)
    resnet = table[table["model"] == "ResNet-50 A1"]["key"].tolist()
    frame = compare_frame(table, resnet)
    assert sorted(set(frame["highlight"])) == ["ResNet-50 A1", OTHER] and len(frame) == 3  # only known top-1
    assert set(compare_frame(table, [])["highlight"]) == {OTHER}


def test_the_board_ranks_by_the_reports_headline_not_the_pooled_r():
    """The pooled held-out r is biased under held-out evaluation: the board shows the mode's headline (fold-mean r)."""
    from leaderboard.proxy_board import headline, metric_row
    from tests.leaderboard.fixtures import make_report

    metric = make_report("pixel", 0.2).model_dump(mode="json")
    natural = next(m for m in metric["modes"] if m["mode"] == "natural")
    natural["headline"] = {"value": 0.31, "ci_low": 0.2, "ci_high": 0.4}
    natural["scores"]["pearson"] = {"value": 0.9, "ci_low": 0.85, "ci_high": 0.95}
    value, low, high, name = headline(metric)
    assert (value, low, high) == (0.31, 0.2, 0.4) and "fold-mean" in name
    row = metric_row(metric, {}, None, None)
    assert row["headline"] == 0.31 and row["natural_r"] == 0.31


def test_a_report_the_paired_test_cannot_use_is_labelled_on_the_board():
    """A fitted report written before refit_fit_headlines is refused by the paired test: the board's fallback
    number (pooled r, unit bootstrap) must say what it is, not pass for the validation's own Δ."""
    from benchmark.validation.harness import validate_metric
    from leaderboard.proxy_board import OLDER_DELTA_NOTE
    from tests.validation.test_harness import SignalProxy, make_ceilings, make_data
    from tests.validation.test_inference import FittedSignal

    units, human, truth = make_data(models=tuple(f"m{i}" for i in range(6)), layers=2, channels=4, human_noise=0.1)
    fitted = validate_metric(FittedSignal(truth), units, human, make_ceilings(), n_boot=60, n_refits=20,
                             progress=False, name="learned").model_dump(mode="json")
    baseline = validate_metric(SignalProxy(truth, noise=0.3), units, human, make_ceilings(), n_boot=60,
                               progress=False, name="mis").model_dump(mode="json")
    older = json.loads(json.dumps(fitted))
    for mode in older["modes"]:
        mode.pop("refit_fit_headlines")
    assert metric_row(fitted, fitted, None, baseline)["delta_note"] == ""
    row = metric_row(older, older, None, baseline)
    assert row["delta_note"] == OLDER_DELTA_NOTE and row["delta"] == row["delta"]  # a number, and what it is


def test_a_crafted_report_cannot_make_the_board_recompute_a_huge_comparison(tmp_path):
    """10,000 stored refits over one-unit folds made every Refresh allocate gigabytes: the board does not
    recompute a comparison that large, and says so."""
    from leaderboard.proxy_board import MAX_COMPARE_WORK, TOO_LARGE_NOTE, compare_work

    folder = write_reports(tmp_path / "reports")
    path = folder / "pixel" / "report.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for mode in data["modes"]:
        mode["refit_headlines"] = [0.1] * 10_000
        mode["refit_fit_headlines"] = [0.1] * 10_000
        for i, row in enumerate(mode["predictions"]):
            row["fold"] = f"f{i}"
    baseline = json.loads((folder / "mis" / "report.json").read_text(encoding="utf-8"))
    assert compare_work(data, baseline) > MAX_COMPARE_WORK
    path.write_text(json.dumps(data), encoding="utf-8")
    board = load_board(folder).table
    crafted = board[board["proxy"].str.startswith("pixel")].iloc[0]
    assert crafted["vs MIS (Δr)"] == TOO_LARGE_NOTE


def test_an_unchanged_reports_folder_is_not_recomputed_on_refresh(tmp_path):
    folder = write_reports(tmp_path / "reports")
    first = load_board(folder)
    assert load_board(folder) is first  # nothing changed: the board already built
    path = folder / "pixel" / "report.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["metric"]["version"] = "9"
    path.write_text(json.dumps(data), encoding="utf-8")
    again = load_board(folder)
    assert again is not first and again.table["proxy"].str.contains("pixel 9").any()

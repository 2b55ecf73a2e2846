"""Drive the running leaderboard with a real headless Chromium (Playwright, Debian's /usr/bin/chromium).

Needs `apt-get install -y chromium` and `pip install playwright` (never `playwright install`: the system browser
is launched through `executable_path`). Skipped with the reason when either is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.leaderboard.fixtures import (
    REAL_GROUP,
    STUB_SUBMIT_COMMAND,
    write_human_units,
    write_queue,
    write_reports,
    write_results,
)

CHROMIUM = os.environ.get("IMIBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000
ROWS = "#lb-table tbody tr:not(.lb-hidden-row)"
TOASTS = ".toast-body"
# Gradio's own queue code (not the app) triggers these with pandas 3; they say nothing about the leaderboard.
pytestmark = [
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium", allow_module_level=True)
expect = sync_api.expect


@dataclass(frozen=True)
class Servers:
    results_url: str
    empty_url: str
    empty_folder: Path
    queue: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[Servers]:
    from leaderboard.app import AppConfig, launch_app

    root = tmp_path_factory.mktemp("leaderboard")
    results = write_results(root / "results", stimuli=root / "stimuli")
    empty = root / "empty"
    empty.mkdir()
    queue = write_queue(root / "queue")
    full = AppConfig(results=str(results), queue=queue, stimuli_root=root / "stimuli",
                     reports=write_reports(root / "reports"), humans=str(write_human_units(root / "humans.csv")),
                     submit_command=STUB_SUBMIT_COMMAND)
    apps, urls = [], []
    for config in (full, AppConfig(results=str(empty), poll_seconds=1.0)):
        port = _free_port()
        apps.append(launch_app(config, host="127.0.0.1", port=port, prevent_thread_lock=True))
        urls.append(f"http://127.0.0.1:{port}/")
    yield Servers(urls[0], urls[1], empty, queue)
    for app in apps:
        app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS)
        yield chromium
        chromium.close()


def _context_page(browser, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.js_errors = errors  # type: ignore[attr-defined]
    return context, page


@pytest.fixture
def page(browser):
    context, page = _context_page(browser, 1400, 1000)
    yield page
    assert page.js_errors == []
    context.close()


@pytest.fixture
def phone(browser):
    context, page = _context_page(browser, 390, 844)
    yield page
    context.close()


def _open(page, url: str) -> None:
    page.goto(url, timeout=TIMEOUT_MS)
    page.wait_for_selector("#lb-table", timeout=TIMEOUT_MS)
    page.wait_for_function("() => window.imiReady === true", timeout=TIMEOUT_MS)  # the URL state is applied


def _pick(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").first.click()
    page.get_by_role("option", name=option).first.click()


def _text(page, selector: str):
    return page.locator(f"{selector} textarea, {selector} input").first


def _models(page) -> list[str]:
    return page.locator(f"{ROWS} td.c-model").all_inner_texts()


def _filters(page) -> None:
    page.locator("#filters").get_by_text("Filters and columns").first.click()


def test_rank_intervals_tooltips_sorting_and_column_toggles(page, servers):
    _open(page, servers.results_url)
    expect(page.locator(ROWS)).to_have_count(len(REAL_GROUP))
    assert _models(page) == list(REAL_GROUP)
    ranks = page.locator(f"{ROWS} td.c-rank").all_inner_texts()
    assert ranks[0] == "1" and ranks[-1] == "5"
    assert any(re.fullmatch(r"\d+ \(\d+-\d+\)", rank) for rank in ranks), ranks  # e.g. "2 (2-3)"
    assert not any("=" in rank for rank in ranks)  # no chained ties
    assert "bootstrap" in page.locator("#lb-table th.c-rank").get_attribute("title")
    assert "Machine Interpretability Score" in page.locator("#lb-table th.c-mis-mean").get_attribute("title")

    top1 = page.locator("#lb-table th.c-imagenet-top-1")
    top1.click()  # one click sorts (descending), numerically, blanks last
    expect(page.locator(ROWS).first.locator("td.c-model")).to_have_text("convnext_tiny.fb_in1k")
    top1.click()  # a second click on the same header reverses it (no silent secondary key)
    expect(page.locator(ROWS).first.locator("td.c-model")).to_have_text("ResNet-50 A1")
    assert top1.get_attribute("aria-sort") == "ascending"
    assert page.locator("#lb-table th[aria-sort=descending]").count() == 0
    assert "sort=c-imagenet-top-1" in page.url

    _filters(page)
    for column in ("model", "family"):
        page.locator("#columns").get_by_label(column, exact=True).uncheck()
    expect(page.locator("#lb-table td.c-model").first).to_be_hidden()
    expect(page.locator("#lb-table td.c-family").first).to_be_hidden()
    expect(page.locator("#lb-table td.c-source").first).to_be_visible()
    page.locator("#columns").get_by_label("submission id", exact=True).check()
    expect(page.locator("#lb-table td.c-submission-id").first).to_be_visible()
    page.locator("#columns").get_by_label("model", exact=True).check()
    expect(page.locator("#lb-table td.c-model").first).to_be_visible()
    assert page.locator(TOASTS).count() == 0


def test_comparability_selector_and_demo_group(page, servers):
    _open(page, servers.results_url)
    assert "real: zenodo@v1" in page.locator("#group input").first.input_value()
    expect(page.locator("#group-note")).to_contain_text("Ranked within one comparability key")
    page.locator("#group input").first.click()
    options = [text.split("\n")[-1] for text in page.get_by_role("option").all_inner_texts()]
    assert not any("/tmp/" in option for option in options)  # no server paths in the selector
    assert len(options) == 3 and options[0].startswith("5 rows")
    assert [o.startswith("DEMO (not real humans)") for o in options] == [False, False, True]  # demo last
    page.get_by_role("option", name=re.compile("simulated")).first.click()
    expect(page.locator(ROWS)).to_have_count(1)
    expect(page.locator(ROWS).first).to_contain_text("SimNet")
    expect(page.locator("#group-note")).to_contain_text("DEMO group")
    assert "group=" in page.url


def test_search_filters_untrained_params_and_csv(page, servers):
    _open(page, servers.results_url)
    _text(page, "#search").fill("resnet")
    expect(page.locator(ROWS)).to_have_count(2)
    assert _models(page) == ["ResNet-50 A1", "resnet18 (untrained)"]
    _filters(page)
    page.locator("#hide-untrained input").check()
    expect(page.locator(ROWS)).to_have_count(1)
    _text(page, "#search").fill("")
    expect(page.locator(ROWS)).to_have_count(len(REAL_GROUP) - 1)
    _text(page, "#params-min").fill("20")
    _text(page, "#params-max").fill("30")
    _text(page, "#params-max").press("Enter")
    expect(page.locator(ROWS)).to_have_count(1)
    assert "untrained=hide" in page.url and "q=" not in page.url
    page.locator("#export").click()
    expect(page.locator("#csv-file")).to_contain_text(".csv")


def test_row_click_opens_the_model_page_with_human_columns_and_the_url_keeps_it(page, servers):
    _open(page, servers.results_url)
    resnet = page.locator(ROWS).first
    expect(resnet.locator("td.c-humans-natural")).to_contain_text("[")  # in the release: human accuracy shown
    assert page.locator(ROWS).nth(1).locator("td.c-humans-natural").inner_text() == ""  # not in the release
    resnet.locator("td.c-model").click()
    expect(page.get_by_role("tab", name="Model")).to_have_attribute("aria-selected", "true")
    header = page.locator("#model-header")
    expect(header).to_be_visible()
    expect(header).to_contain_text("ResNet-50 A1")
    expect(header).to_contain_text("humans (2-AFC accuracy): natural 0.")
    expect(page.locator("#layer-table")).to_contain_text("layer3")
    expect(page.locator("#human-scatter")).to_be_visible()
    expect(page.locator("#uv-max img")).to_have_count(3)
    page.wait_for_function("() => window.location.search.includes('model=')")
    assert "tab=model" in page.url
    shared = page.url
    page.goto(shared)
    expect(page.get_by_role("tab", name="Model")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#model-header")).to_contain_text("ResNet-50 A1")


def test_unit_viewer_layer_change_shows_no_error(page, servers):
    _open(page, servers.results_url)
    page.locator(ROWS).nth(1).locator("td.c-model").click()
    expect(page.locator("#model-header")).to_be_visible()
    expect(page.locator("#model-header")).to_contain_text("vit_b_16")
    expect(page.locator("#uv-summary")).to_contain_text("layer1")
    for layer in ("layer2", "layer3", "layer1"):
        _pick(page, "#uv-layer", layer)
        expect(page.locator("#uv-summary")).to_contain_text(f"layer {layer}", use_inner_text=True)
    _pick(page, "#uv-unit", "channel 14")
    expect(page.locator("#uv-summary")).to_contain_text("channel 14")
    _pick(page, "#uv-layer", "layer2")
    expect(page.locator("#uv-summary")).to_contain_text("channel 0")
    page.wait_for_timeout(500)
    assert page.locator(TOASTS).count() == 0
    expect(page.locator("#uv-warning")).to_be_hidden()


def test_proxy_tab_ranks_two_reports_with_a_paired_comparison(page, servers):
    _open(page, servers.results_url)
    page.get_by_role("tab", name="Proxy metrics").click()
    rows = page.locator("#proxy-table tbody tr")
    expect(rows).to_have_count(2)
    assert rows.first.get_attribute("data-proxy") == "mis 1"
    second = rows.nth(1).locator("td").all_inner_texts()
    assert second[0] == "2" and second[1] == "pixel 1"
    assert re.match(r"-0\.\d{3} \[-0\.\d{3}, -0\.\d{3}\]", second[7]), second  # worse than MIS, CI below 0
    assert "humans: zenodo:imi-release@v1" in second[9] and second[8] == "lomo"
    link = rows.first.locator("a")
    assert "validation.png" in link.get_attribute("href")


def test_compare_tab_names_highlighted_models_and_downloads_paper_figures(page, servers):
    _open(page, servers.results_url)
    page.get_by_role("tab", name="Compare").click()
    plot = page.locator("#compare-plot")
    expect(plot).to_contain_text("convnext_tiny.fb_in1k")  # the highlighted models are named in the legend
    expect(plot).not_to_contain_text("ViT-B-32")  # no stated top-1: not plotted
    page.locator("#figures-button").click()
    files = page.locator("#figures-files")
    for suffix in (".png", ".svg", ".pdf"):
        expect(files).to_contain_text(re.compile(r"mis_vs_top1\s*" + re.escape(suffix)))


def test_queue_tab_lists_states_and_reasons(page, servers):
    _open(page, servers.results_url)
    page.get_by_role("tab", name="Queue").click()
    table = page.locator("#queue-table")
    expect(table).to_contain_text("sub-0002")
    expect(table).to_contain_text("PENDING")
    expect(table).to_contain_text("FAILED")
    expect(table).to_contain_text("weights not found")


def test_submit_with_top1_empty_and_client_side_required_fields(page, servers):
    _open(page, servers.results_url)
    page.get_by_role("tab", name="Submit").click()
    button = page.locator("#submit-button")
    expect(button).to_be_disabled()  # required fields are checked in the browser
    _text(page, "#submit-model").fill("timm:resnet18.a1_in1k")
    expect(page.locator("#submit-required")).to_contain_text("submitter")
    expect(button).to_be_disabled()
    _text(page, "#submit-submitter").fill("ann@example.org")
    expect(button).to_be_enabled()
    assert _text(page, "#submit-top1").input_value() == ""
    button.click()
    result = page.locator("#submit-result")
    expect(result).to_contain_text("PENDING")
    spec = (servers.queue / "sub-0001.yaml").read_text(encoding="utf-8")
    assert "imagenet_top1: null" in spec and "0.0" not in spec


def test_refused_resubmission_and_server_paths(page, servers):
    _open(page, servers.results_url)
    page.get_by_role("tab", name="Submit").click()
    _text(page, "#submit-submitter").fill("bob")
    _text(page, "#submit-model").fill("timm:resnet50.a1_in1k")
    page.locator("#submit-button").click()
    result = page.locator("#submit-result")
    expect(result).to_contain_text("already scored")
    expect(result).to_contain_text("new revision")
    _text(page, "#submit-model").fill("local:/etc/passwd")
    page.locator("#submit-button").click()
    expect(result).to_contain_text("is not accepted here: public submissions name timm:")  # the public module's
    _text(page, "#submit-model").fill("timm:resnet18.a1_in1k")
    _text(page, "#submit-images").fill("folder:/etc")
    page.locator("#submit-button").click()
    expect(result).to_contain_text("Image source 'folder:/etc' is not accepted here")
    assert page.locator(TOASTS).count() == 0


def test_mobile_layout_shows_rank_model_and_mis_on_the_first_screen(phone, servers):
    _open(phone, servers.results_url)
    first = phone.locator(ROWS).first
    for column in ("c-rank", "c-model", "c-mis-mean"):
        cell = first.locator(f"td.{column}")
        expect(cell).to_be_visible()
        box = cell.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 844 and box["x"] + box["width"] <= 390, column
    expect(first.locator("td.c-family")).to_be_hidden()
    expect(phone.locator("#filter-family")).to_be_hidden()  # the control panel is collapsed
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 400


def test_empty_state_then_reload_when_files_land(page, servers):
    _open(page, servers.empty_url)
    empty = page.locator("#empty-state")
    expect(empty).to_contain_text("No results yet")
    expect(empty).to_contain_text("imibench demo")
    expect(page.locator(ROWS)).to_have_count(0)
    write_results(servers.empty_folder, stimuli=servers.empty_folder.parent / "stimuli-empty", invalid=False)
    expect(page.locator(ROWS)).to_have_count(len(REAL_GROUP))  # the 1 s timer picked the new files up
    expect(empty).to_be_hidden()

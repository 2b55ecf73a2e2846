"""Drive the running leaderboard with a real headless Chromium (Playwright, Debian's /usr/bin/chromium).

Needs `apt-get install -y chromium` and `pip install playwright` (never `playwright install`: the system browser
is launched through `executable_path`). Skipped with the reason when either is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.leaderboard.fixtures import MODELS, STUB_SUBMIT_COMMAND, write_results

CHROMIUM = os.environ.get("IMIBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15_000
ROWS = '#leaderboard-table [role=row][aria-rowindex]:not([aria-rowindex="1"])'
SCREENSHOT_COPY = Path("/tmp/leaderboard.png")
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
    queue = root / "queue"
    apps, urls = [], []
    for config in (AppConfig(results=str(results), queue=queue, submit_command=STUB_SUBMIT_COMMAND),
                   AppConfig(results=str(empty), poll_seconds=1.0)):
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


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def _open(page, url: str) -> None:
    page.goto(url, timeout=TIMEOUT_MS)
    page.wait_for_selector("#leaderboard-table", timeout=TIMEOUT_MS)


def _pick(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option).first.click()


def test_table_search_filter_model_views_and_unit_viewer(page, servers, tmp_path):
    _open(page, servers.results_url)
    rows = page.locator(ROWS)
    expect(rows).to_have_count(len(MODELS))
    expect(rows.first).to_contain_text("ResNet-50 A1")
    expect(page.locator("#invalid-files")).to_contain_text("broken.json")
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
    shutil.copyfile(tmp_path / "leaderboard.png", SCREENSHOT_COPY)

    header = page.locator('#leaderboard-table th[title="ImageNet top-1"]')
    header.hover()
    header.locator('button[aria-label="Open cell menu"]').click()
    page.get_by_role("menuitem", name="Sort descending").click()
    expect(rows.first).to_contain_text("convnext_tiny.fb_in1k")  # 82.1, numeric sort; blanks go last
    header.hover()
    header.locator('button[aria-label="Open cell menu"]').click()
    page.get_by_role("menuitem", name="Clear sort").click()
    expect(rows.first).to_contain_text("ResNet-50 A1")

    search = page.locator("#search textarea")
    search.fill("resnet")
    expect(rows).to_have_count(2)
    expect(page.locator("#leaderboard-table")).not_to_contain_text("vit_b_16")
    search.fill("")
    expect(rows).to_have_count(len(MODELS))

    _pick(page, "#filter-family", "vit")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("vit_b_16")
    page.locator("#export").click()
    expect(page.locator("#csv-file")).to_contain_text(".csv")

    page.get_by_role("tab", name="Model").click()
    expect(page.locator("#profile-plot img")).to_have_count(1)
    expect(page.locator("#distribution-plot img")).to_have_count(1)
    expect(page.locator("#uv-summary")).to_contain_text("unit score (MIS)")
    expect(page.locator("#uv-max img")).to_have_count(3)
    expect(page.locator("#uv-queries img")).to_have_count(2)
    expect(page.locator("#uv-warning")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "model.png"), full_page=True)
    shutil.copyfile(tmp_path / "model.png", SCREENSHOT_COPY.with_name("leaderboard-model.png"))

    _pick(page, "#uv-model", "My ResNet-18")
    expect(page.locator("#uv-summary")).to_contain_text("My ResNet-18")
    expect(page.locator("#uv-warning")).to_contain_text("could not be found")
    expect(page.locator("#uv-warning")).to_contain_text("--stimuli-root")
    expect(page.locator("#uv-max img")).to_have_count(3)  # placeholders, not a crash


def test_submit_form_shows_errors_and_the_new_entry(page, servers):
    _open(page, servers.results_url)
    page.get_by_role("tab", name="Submit").click()
    page.locator("#submit-model textarea").fill("resnet18")
    page.locator("#submit-button").click()
    result = page.locator("#submit-result")
    expect(result).to_contain_text("Submission refused")
    expect(result).to_contain_text("invalid model spec 'resnet18'")
    page.locator("#submit-model textarea").fill("timm:resnet18.a1_in1k")
    page.locator("#submit-button").click()
    expect(result).to_contain_text("sub-0001")
    expect(result).to_contain_text("PENDING")
    assert (servers.queue / "sub-0001.yaml").is_file()


def test_empty_state_then_reload_when_files_land(page, servers):
    _open(page, servers.empty_url)
    empty = page.locator("#empty-state")
    expect(empty).to_contain_text("No results yet")
    expect(empty).to_contain_text("imibench demo")
    expect(page.locator(ROWS)).to_have_count(0)
    write_results(servers.empty_folder, stimuli=servers.empty_folder.parent / "stimuli-empty", invalid=False)
    expect(page.locator(ROWS)).to_have_count(len(MODELS))  # the 1 s timer picked the new files up
    expect(empty).to_be_hidden()

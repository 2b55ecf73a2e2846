"""Leaderboard speed at N rows (default 1,000): server-side table build, first paint and every interaction in Chromium.

Writes N synthetic result files (UNITS units each), times reading + ranking (bootstrap rank intervals) + the HTML
render on the server, then drives Debian's Chromium (Playwright, `executable_path`; never `playwright install`)
and times: first paint (rows on screen), a search keystroke, a column toggle, a header sort, hide-untrained, the
comparability-group switch (a server round trip that re-renders the table), CSV export, Refresh (files unchanged,
then with one new result file), a row click until the model page is drawn (header, per-layer table, unit viewer),
and going back to the table to open another row. Prints seconds and the ratio to the 1 s target (< 1 is good).

A server round trip counts until the page shows the new state and its main thread is idle again (what was drawn
is drawn). The app's 5 s folder poll is off (poll_seconds=3600), so that Refresh alone re-reads the new file.
For scale, the first paint of a bare Gradio page (one HTML component, same browser, a fresh context each) is
timed too: the part of the first paint no app change can remove on this machine.

    python benchmarks/leaderboard_speed.py [--rows 1000] [--units 30]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_S = 1.0
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROWS = "#lb-table tbody tr:not(.lb-hidden-row)"


def write_many(folder: Path, n_rows: int, n_units: int) -> Path:
    """N result files: two thirds in one real-data group, the rest in a second one (other proxy version)."""
    import numpy as np

    from benchmark.results.io import write_result
    from benchmark.results.schema import Scores, Summary, UnitScore
    from tests.leaderboard import fixtures

    ids = fixtures.write_stimuli(folder.parent / "stimuli")
    rng = np.random.default_rng(0)
    template = fixtures.MODELS[0]
    for index in range(n_rows):
        mean = float(rng.uniform(0.55, 0.9))
        model = replace(template, model=f"net{index:04d}.tag", mean=mean, ci_low=mean - 0.02, ci_high=mean + 0.02,
                        proxy_version="1" if index % 3 else "2", pretrained=index % 10 != 0,
                        spec={"name": f"Net {index:04d}", "family": f"fam{index % 12}",
                              "imagenet_top1": float(rng.uniform(60, 90))})
        result = fixtures.make_result(model, folder.parent / "stimuli", ids, seed=index)
        units = [UnitScore(layer=f"layer{u % 3}", channel=u, score=float(np.clip(rng.normal(mean, 0.1), 0, 1)))
                 for u in range(n_units)]
        scores = np.array([u.score for u in units])
        summary = Summary(n_units=n_units, mean=float(scores.mean()), p5=float(np.percentile(scores, 5)),
                          ci_low=float(scores.mean() - 0.02), ci_high=float(scores.mean() + 0.02))
        result = result.model_copy(update={"scores": Scores(model=summary, layers=result.scores.layers, units=units)})
        write_result(result, folder / f"r{index:04d}.json")
    return folder


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


IDLE = "() => new Promise((done) => requestIdleCallback(() => done(true), {timeout: 10000}))"


def _timed(label: str, action, results: list[tuple[str, float]]) -> None:
    start = time.perf_counter()
    action()
    results.append((label, time.perf_counter() - start))


def bare_gradio_first_paint(browser, repeats: int = 3) -> float:
    """Median seconds to a bare Gradio page's first paint (one HTML element), a fresh browser context each time."""
    import statistics

    import gradio as gr

    with gr.Blocks(analytics_enabled=False) as bare:
        gr.HTML('<p id="bare">ready</p>')
    port = _port()
    bare.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    seconds = []
    try:
        for _ in range(repeats):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            start = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#bare")
            seconds.append(time.perf_counter() - start)
            context.close()
    finally:
        bare.close()
    return statistics.median(seconds)


def main() -> int:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--units", type=int, default=30)
    args = parser.parse_args()

    from leaderboard.html_table import table_html
    from leaderboard.loading import load_results
    from leaderboard.table import build_table, comparability_groups, filter_table

    root = Path(tempfile.mkdtemp(prefix="imibench-speed-"))
    start = time.perf_counter()
    folder = write_many(root / "results", args.rows, args.units)
    print(f"wrote {args.rows} result files ({args.units} units each) in {time.perf_counter() - start:.1f} s")

    timings: list[tuple[str, float]] = []
    loaded = None

    def read() -> None:
        nonlocal loaded
        loaded = load_results(folder)

    _timed("server: read + validate files", read, timings)
    table = None

    def build() -> None:
        nonlocal table
        table = build_table(loaded.results)

    _timed("server: rank (bootstrap intervals) + build table", build, timings)
    group = comparability_groups(loaded.results, table)[0].id
    _timed("server: render the group's HTML table", lambda: table_html(filter_table(table, group=group)), timings)

    from playwright.sync_api import sync_playwright

    from leaderboard.app import AppConfig, launch_app

    port = _port()
    app = launch_app(AppConfig(results=str(folder), poll_seconds=3600), port=port, prevent_thread_lock=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                                 "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            n_group = int(page.evaluate("() => 0") or 0)

            def first_paint() -> None:
                page.goto(url)
                page.wait_for_selector(f"{ROWS} >> nth=0")

            _timed("browser: first paint (rows on screen)", first_paint, timings)
            page.wait_for_function("() => window.imiReady === true")
            n_group = page.locator("#lb-table tbody tr").count()
            search = page.locator("#search textarea, #search input").first

            def type_search() -> None:
                search.fill("net01")
                page.wait_for_function("() => document.getElementById('lb-table').dataset.shown < "
                                       f"{n_group}")

            _timed("browser: search (client-side filter)", type_search, timings)
            search.fill("")
            page.wait_for_function(f"() => Number(document.getElementById('lb-table').dataset.shown) === {n_group}")
            page.locator("#filters").get_by_text("Filters and columns").first.click()

            def toggle_column() -> None:
                page.locator("#columns").get_by_label("family", exact=True).uncheck()
                page.locator("#lb-table td.c-family >> nth=0").wait_for(state="hidden")

            _timed("browser: column toggle", toggle_column, timings)

            def sort() -> None:
                page.locator("#lb-table th.c-mis-mean").click()
                page.wait_for_function("() => document.querySelector('#lb-table th.c-mis-mean')"
                                       ".getAttribute('aria-sort') === 'descending'")

            _timed("browser: header sort", sort, timings)

            def hide_untrained() -> None:
                page.locator("#hide-untrained input").check()
                page.wait_for_function(f"() => Number(document.getElementById('lb-table').dataset.shown) < {n_group}")

            _timed("browser: hide untrained", hide_untrained, timings)

            in_page = page.evaluate("""() => {
                const t = (f) => { const s = performance.now(); f(); return performance.now() - s; };
                const cols = ["rank", "model", "MIS mean", "units"];
                return {
                    "in page: filter (search keystroke)":
                        t(() => window.imiFilter("net0", [], [], false, null, null, null)),
                    "in page: clear filter": t(() => window.imiFilter("", [], [], false, null, null, null)),
                    "in page: column toggle": t(() => window.imiFilter("", [], [], false, null, null, cols)),
                    "in page: sort by a header": t(() => document.querySelector("#lb-table th.c-units").click()),
                };
            }""")
            timings.extend((label, ms / 1000) for label, ms in in_page.items())

            def switch_group() -> None:
                page.locator("#group input").first.click()
                page.get_by_role("option").nth(1).click()
                page.wait_for_function(f"() => document.getElementById('lb-table').dataset.rows != {n_group}")
                page.evaluate(IDLE)

            _timed("browser: comparability group switch (server)", switch_group, timings)

            def export() -> None:
                page.locator("#export").click()
                page.locator("#csv-file").get_by_text(".csv").first.wait_for()

            _timed("browser: CSV export (server)", export, timings)

            status_text = page.locator("#status").inner_text()
            rows_before = int(page.locator("#lb-table").get_attribute("data-rows"))

            def status_changed(before: str) -> None:
                page.wait_for_function("(before) => document.getElementById('status').innerText !== before", arg=before)

            def refresh() -> None:
                page.locator("#refresh").click()
                status_changed(status_text)  # the read time (HH:MM:SS) moves: the server answered
                page.evaluate(IDLE)

            time.sleep(1.1)  # so that the status line's read time (to the second) differs after the reply
            _timed("browser: Refresh (files unchanged)", refresh, timings)

            # One new result file in the shown group (a copy of its first row's, renamed): ranked again and redrawn.
            shown = page.locator(f"{ROWS} >> nth=0").get_attribute("data-key").split(":", 1)[1].split(".", 1)[0]
            text = (folder / f"r{shown[3:]}.json").read_text()
            (folder / "r9999.json").write_text(text.replace(f"{shown}.tag", "net9999.tag")
                                               .replace(f"Net {shown[3:]}", "Net 9999"))
            status_text = page.locator("#status").inner_text()
            time.sleep(1.1)

            def refresh_new() -> None:
                page.locator("#refresh").click()
                page.wait_for_function(f"() => Number(document.getElementById('lb-table').dataset.rows) === "
                                       f"{rows_before + 1}")
                status_changed(status_text)
                page.evaluate(IDLE)

            _timed("browser: Refresh (one new result file)", refresh_new, timings)

            def open_row(index: int) -> None:
                row = page.locator(f"{ROWS} >> nth={index}")
                name = row.locator("td.c-model").inner_text()
                row.locator("td.c-rank").click()
                page.locator('button[role="tab"][data-tab-id="model"][aria-selected="true"]').wait_for()
                page.locator("#model-header h2").get_by_text(name, exact=True).wait_for(state="visible")
                page.locator("#uv-summary").get_by_text(name.split(" (untrained)")[0]).first.wait_for(state="visible")
                page.wait_for_function("() => document.getElementById('layer-table').innerText.includes('layer1')")
                page.evaluate(IDLE)

            _timed("browser: row click -> model page and unit viewer drawn", lambda: open_row(3), timings)

            def second_row() -> None:
                page.locator('button[role="tab"][data-tab-id="leaderboard"]').click()
                open_row(5)

            _timed("browser: back, click another row -> its model page", second_row, timings)
            timings.append(("reference: first paint of a bare Gradio page (median of 3)",
                            bare_gradio_first_paint(browser)))
            browser.close()
    finally:
        app.close()
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nLeaderboard speed at {args.rows} rows ({args.units} units per model); target {TARGET_S:.0f} s per "
          "interaction:")
    for label, seconds in timings:
        print(f"  {label:<52} {seconds:7.3f} s   ratio to target {seconds / TARGET_S:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Screenshots of every leaderboard tab at 1,400 px and 390 px wide, on the test fixtures (results, human units,
two validation reports, a queue), with Debian's Chromium through Playwright (never `playwright install`).

    python docs/leaderboard_screenshots.py [--out docs/screenshots] [--small]

Writes OUT/<tab>-<width>.png; with --small also OUT/leaderboard-small.png (the README's picture), a reduced
palette PNG kept small enough to commit.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TABS = (("leaderboard", "Leaderboard"), ("model", "Model"), ("compare", "Compare"), ("proxies", "Proxy metrics"),
        ("queue", "Queue"), ("about", "About"), ("submit", "Submit"))
WIDTHS = ((1400, 1000), (390, 844))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    """Serve the fixtures and photograph every tab at both widths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--small", action="store_true", help="also write a small README picture")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from leaderboard.app import AppConfig, launch_app
    from tests.leaderboard.fixtures import (
        STUB_SUBMIT_COMMAND,
        write_human_units,
        write_queue,
        write_reports,
        write_results,
    )

    root = Path(tempfile.mkdtemp(prefix="imibench-shots-"))
    config = AppConfig(results=str(write_results(root / "results", stimuli=root / "stimuli")),
                       queue=write_queue(root / "queue"), stimuli_root=root / "stimuli",
                       reports=write_reports(root / "reports"), humans=str(write_human_units(root / "humans.csv")),
                       submit_command=STUB_SUBMIT_COMMAND)
    port = _port()
    app = launch_app(config, port=port, prevent_thread_lock=True)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                                 "--disable-gpu"])
            for width, height in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(30_000)
                for tab_id, _ in TABS:
                    query = f"?tab={tab_id}" + ("&model=timm%3Aresnet50.a1_in1k%400.1.0" if tab_id == "model" else "")
                    page.goto(f"http://127.0.0.1:{port}/{query}")
                    page.wait_for_function("() => window.imiReady === true")
                    page.wait_for_timeout(1500)  # plots and galleries settle
                    path = args.out / f"{tab_id}-{width}.png"
                    page.screenshot(path=str(path), full_page=width > 400 and tab_id != "about")
                    written.append(path)
                page.close()
            browser.close()
    finally:
        app.close()
        shutil.rmtree(root, ignore_errors=True)
    if args.small:
        from PIL import Image

        with Image.open(args.out / "leaderboard-1400.png") as image:
            crop = image.crop((0, 0, 1400, min(image.height, 760))).convert("RGB")
            crop.thumbnail((1000, 1000))
            small = crop.quantize(colors=64)
            small.save(args.out / "leaderboard-small.png", optimize=True)
            written.append(args.out / "leaderboard-small.png")
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.api.errors import ConfigError
from benchmark.cli.main import build_parser
from tests.leaderboard.fixtures import write_results

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("torch", "benchmark.scoring", "benchmark.models", "benchmark.activations", "benchmark.proxies",
             "timm", "open_clip", "torchvision")


@pytest.mark.parametrize("modules", ["leaderboard.app, benchmark.cli.leaderboard", "benchmark.cli.main"])
def test_the_app_never_imports_scoring_model_or_torch_code(modules):
    code = (
        "import json, sys\n"
        f"import {modules}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m.startswith({FORBIDDEN!r}))\n"
        "print(json.dumps(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_cli_parser_registers_leaderboard():
    args = build_parser().parse_args(["leaderboard", "--results", "res", "--port", "7999", "--queue", "q",
                                      "--stimuli-root", "imgs"])
    assert (args.results, args.port, args.host, args.queue, args.stimuli_root) == (
        "res", 7999, "127.0.0.1", Path("q"), Path("imgs"))
    assert args.poll_seconds == 5.0 and args.submit_command is None


def test_cli_writes_paper_figures(tmp_path, capsys):
    from tests.leaderboard.fixtures import write_human_units

    folder = write_results(tmp_path / "results")
    args = build_parser().parse_args(["leaderboard", "--results", str(folder), "--figures", str(tmp_path / "figs"),
                                      "--humans", str(write_human_units(tmp_path / "h.csv"))])
    assert args.func(args) == 0
    names = {p.name for p in (tmp_path / "figs").iterdir()}
    assert {"mis_vs_top1.png", "mis_vs_top1.svg", "mis_vs_top1.pdf", "humans_vs_proxy.pdf"} <= names
    assert "wrote" in capsys.readouterr().out


def test_cli_parser_takes_reports_humans_and_the_public_config():
    args = build_parser().parse_args(["leaderboard", "--results", "r", "--reports", "rep", "--humans", "h.csv",
                                      "--public-config", "public.yaml"])
    assert (args.reports, args.humans, args.public_config) == (Path("rep"), "h.csv", Path("public.yaml"))


def test_cli_rejects_bad_options():
    from benchmark.cli.leaderboard import run

    args = build_parser().parse_args(["leaderboard", "--results", "res", "--poll-seconds", "0"])
    with pytest.raises(ConfigError, match="--poll-seconds must be positive"):
        run(args)
    args = build_parser().parse_args(["leaderboard", "--results", "res", "--submit-command", "imibench submit"])
    with pytest.raises(ConfigError, match="placeholder"):
        run(args)


@pytest.mark.parametrize("with_results", [True, False])
def test_app_builds_for_results_and_empty_folders(tmp_path, with_results):
    from leaderboard.app import AppConfig, build_app

    folder = write_results(tmp_path / "results") if with_results else tmp_path / "empty"
    demo = build_app(AppConfig(results=str(folder)))
    config = demo.get_config_file()
    texts = json.dumps(config["components"], default=str)
    assert ("No results yet" in texts) is not with_results
    assert ("broken.json" in texts) is with_results


def test_imibench_leaderboard_serves_the_page(tmp_path):
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = write_results(tmp_path / "results")
    scratch_parent = tmp_path / "tmp"
    scratch_parent.mkdir()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli.main", "leaderboard", "--results", str(folder), "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TMPDIR": str(scratch_parent)},
    )
    try:
        deadline, page = time.monotonic() + 60, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
                    page = response.read().decode("utf-8")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert page is not None, f"the server did not answer: {server.poll()=}"
        assert "imi-bench leaderboard" in page and "ResNet-50 A1" in page
        assert list(scratch_parent.glob("imibench-leaderboard-*"))  # the app's scratch folder, while it serves
    finally:
        server.terminate()  # SIGTERM, as a service manager stops it
        server.wait(timeout=30)
    assert not list(scratch_parent.glob("imibench-leaderboard-*"))  # removed at exit, not left behind


def test_status_line_never_shows_the_server_results_path():
    from leaderboard.app import _public_source_name

    assert _public_source_name("/srv/private/imibench/results") == "results"
    assert _public_source_name("hf:owner/leaderboard-results@main") == "hf:owner/leaderboard-results@main"


def test_app_downloads_and_thumbnails_stay_in_its_scratch_folder(tmp_path):
    from leaderboard.app import AppConfig, build_app

    demo = build_app(AppConfig(results=str(write_results(tmp_path / "results"))))
    scratch = demo.imi_scratch
    assert str(scratch.thumbs) in demo.imi_allowed_paths
    export = next(block.fn for block in demo.fns.values() if block.fn and block.fn.__name__ == "on_export")
    for _ in range(2):
        export(None, "", [], [], False, None, None)
    written = sorted(scratch.exports.glob("*/*.csv"))
    assert len(written) == 2 and written[0].parent != written[1].parent  # one folder per download
    scratch.close()
    assert not scratch.root.exists()

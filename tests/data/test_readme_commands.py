"""The README's human-data commands (journey 1) run as written, on a release in the authors' shape."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

from benchmark.cli.main import build_parser, main
from benchmark.data.push import build_hub_folder
from tests.data.authors_release import write_authors_release

README = Path(__file__).resolve().parents[2] / "README.md"


def journey_one_commands() -> list[str]:
    text = README.read_text()
    section = text[text.index("### 1. Look at the human data"):text.index("### 2.")]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("imibench data")]


def test_every_journey_one_command_runs(tmp_path, monkeypatch):
    release = write_authors_release(tmp_path / "a")
    hub = build_hub_folder(release.root, tmp_path / "hub")
    monkeypatch.chdir(tmp_path)
    sources = {"zenodo:~/Downloads/imi": f"zenodo:{release.root}", "hf:OWNER/NAME@main": f"hf:{hub}",
               "responses.parquet": str(hub / "data" / "main.parquet")}
    commands = journey_one_commands()
    assert len(commands) >= 6 and any("check-stimuli" in c for c in commands)
    ran = 0
    for command in commands:
        argv = shlex.split(command)[1:]
        build_parser().parse_args(argv)  # every flag the README shows exists
        source = argv[argv.index("--source") + 1]
        if source == "zenodo":  # downloads the record: needs the network
            continue
        argv[argv.index("--source") + 1] = sources[source]
        if "--imagenet-root" in argv:
            argv[argv.index("--imagenet-root") + 1] = str(release.imagenet_root)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*argv, "--no-progress"] if "check-stimuli" in argv else [*argv, "--n-boot", "20"])
        assert code == 0, (command, err.getvalue())
        ran += 1
    assert ran == len(commands) - 1
    assert (tmp_path / "units.csv").is_file()


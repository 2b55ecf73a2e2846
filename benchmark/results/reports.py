"""Validation reports on their way to the leaderboard: queue one for the Proxy metrics board, publish them.

`queue_report` validates a report folder written by `imibench proxy validate --out DIR` (or `DIR/<metric>`) and
copies its report.json and figures into the board's reports folder, under a name derived from the report's
content (so the same report queued twice lands once). `add_reports` does the same into a publish folder's
`reports/`, which `imibench publish --reports DIR` uploads beside the results.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from benchmark.api.errors import DataValidationError, SourceUnavailableError
from benchmark.results.io import atomic_write_text

REPORT_FILE = "report.json"
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
REPORTS_DIR = "reports"
DEFAULT_BOARD = Path("submissions/reports")
MAX_REPORT_BYTES = 64 * 1024 * 1024


def find_reports(folder: str | Path) -> list[Path]:
    """Every report.json in `folder` (the folder itself or any subfolder); SourceUnavailableError when none."""
    root = Path(folder)
    if root.is_file() and root.name == REPORT_FILE:
        return [root]
    if not root.is_dir():
        raise SourceUnavailableError(f"No report folder at {root}: pass the --out folder of `imibench proxy validate`.")
    found = sorted(root.rglob(REPORT_FILE))
    if not found:
        raise SourceUnavailableError(
            f"No {REPORT_FILE} under {root}: run `imibench proxy validate --out {root}` first."
        )
    return found


def _checked(path: Path) -> str:
    """The report's text after validation (size bound, schema) with `read_report`."""
    from benchmark.validation.report import read_report

    if path.stat().st_size > MAX_REPORT_BYTES:
        raise DataValidationError(f"{path} is larger than {MAX_REPORT_BYTES // 2**20} MiB; not a report.")
    read_report(path)
    return path.read_text(encoding="utf-8")


def _slug(path: Path, text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.parent.name or "report").strip("-") or "report"
    return f"{name}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"


def copy_report(path: Path, target_root: Path) -> Path:
    """Validate one report.json and copy it with its figures to target_root/<name>-<hash>/; returns that folder."""
    text = _checked(path)
    target = target_root / _slug(path, text)
    target.mkdir(parents=True, exist_ok=True)
    for figure in path.parent.iterdir():
        if figure.suffix in FIGURE_SUFFIXES and figure.is_file() and not figure.is_symlink():
            shutil.copyfile(figure, target / figure.name)
    atomic_write_text(target / REPORT_FILE, text)
    return target


def queue_report(report_dir: str | Path, board: str | Path = DEFAULT_BOARD) -> list[Path]:
    """Validate every report under `report_dir` and copy each into the board's reports folder."""
    return [copy_report(path, Path(board)) for path in find_reports(report_dir)]


def add_reports(folder: Path, reports_dir: str | Path) -> list[Path]:
    """Copy the validated reports under `reports_dir` into `folder/reports/` (a publish folder)."""
    return [copy_report(path, folder / REPORTS_DIR) for path in find_reports(reports_dir)]

"""The Queue tab: every submission in the queue folder with its state and, on failure, the reason.

Entries are read as bounded JSON (the app never imports submission or scoring code); an unreadable entry is listed
as such instead of stopping the tab.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

STATES = ("pending", "running", "finished", "failed")
COLUMNS = ("state", "id", "model", "name", "created", "started", "finished", "attempts", "reason")
MAX_ENTRY_BYTES = 1024 * 1024


def _entry_row(path: Path, state: str) -> dict[str, object]:
    try:
        if path.stat().st_size > MAX_ENTRY_BYTES:
            raise ValueError("entry file too large")
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError, RecursionError) as err:
        return {"state": state.upper(), "id": path.stem, "reason": f"unreadable queue entry: {err}"}
    spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}
    return {
        "state": str(data.get("state", state.upper())),
        "id": str(data.get("id", path.stem)),
        "model": str(spec.get("model", "")),
        "name": str(spec.get("name") or spec.get("model") or ""),
        "created": str(data.get("created_at") or ""),
        "started": str(data.get("started_at") or ""),
        "finished": str(data.get("finished_at") or ""),
        "attempts": data.get("attempts", 0),
        "reason": str(data.get("reason") or ""),
    }


def queue_table(root: str | Path | None) -> pd.DataFrame:
    """Entries of the queue at `root` (newest first within each state: pending, running, finished, failed)."""
    rows: list[dict[str, object]] = []
    if root is not None and Path(root).is_dir():
        for state in STATES:
            folder = Path(root) / state
            if folder.is_dir():
                entries = [_entry_row(path, state) for path in folder.glob("*.json")]
                rows.extend(sorted(entries, key=lambda r: str(r.get("created", "")), reverse=True))
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(object).fillna("")


def queue_keys(root: str | Path | None) -> set[str]:
    """Model spec strings of pending, running and finished entries (for the form's resubmission check)."""
    table = queue_table(root)
    if table.empty:
        return set()
    models = table.loc[table["state"].isin(["PENDING", "RUNNING", "FINISHED"]), "model"].astype(str)
    return {model for model in models if model}


def queue_signature(root: str | Path | None) -> tuple:
    """A cheap change detector for the queue: (state, entry name, mtime) of every entry file."""
    if root is None or not Path(root).is_dir():
        return ()
    entries = []
    for state in STATES:
        folder = Path(root) / state
        if folder.is_dir():
            entries += [(state, p.name, p.stat().st_mtime_ns) for p in folder.glob("*.json") if p.exists()]
    return tuple(sorted(entries))

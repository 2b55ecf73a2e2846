"""One temporary folder per leaderboard app for the files it serves: unit-viewer thumbnails, CSV and figure exports.

A long-running server must not grow the disk with every click: exports older than `max_age_s` are pruned each time
a new one is written (Gradio has copied the file into its own cache by then, which `delete_cache` prunes), and the
whole folder is removed when the app is closed or the process exits.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from pathlib import Path

EXPORT_MAX_AGE_S = 3600.0


class ScratchFolder:
    """A temporary folder owned by one app: `thumbs` for the unit viewer, `new_export()` for downloads."""

    def __init__(self, prefix: str = "imibench-leaderboard-", max_age_s: float = EXPORT_MAX_AGE_S) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.thumbs = self.root / "thumbs"
        self.exports = self.root / "exports"
        self.thumbs.mkdir()
        self.exports.mkdir()
        self.max_age_s = max_age_s
        self._remove = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)  # also at exit

    def new_export(self) -> Path:
        """A fresh empty folder for one download; exports older than `max_age_s` are removed first."""
        self.prune()
        return Path(tempfile.mkdtemp(dir=self.exports))

    def prune(self, now: float | None = None) -> int:
        """Remove exports older than `max_age_s`; returns how many were removed."""
        cutoff = (time.time() if now is None else now) - self.max_age_s
        removed = 0
        for folder in self.exports.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            except FileNotFoundError:  # removed by a concurrent prune
                continue
        return removed

    def close(self) -> None:
        """Remove the folder now (it is removed at exit otherwise)."""
        self._remove()

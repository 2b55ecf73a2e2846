"""What keeps scoring runs from colliding and makes a resumed run whole again.

- `run_lock(out, work_dir)`: an exclusive OS lock on the result file and the work folder, taken without waiting:
  a second `imibench score` on the same output (or work folder) is refused with a clear message instead of
  overwriting the first one's checkpoint and result. The lock dies with its process, so a killed run never
  leaves a stale lock behind.
- `remove_orphaned_temp_files(out, work_dir)`: temporary files of killed writers (atomic writes, checkpoints);
  called while holding the lock, when no other process can be writing them.
- `AttemptClock`: the wall time of a run summed over its attempts (a run resumed after a kill reports the time of
  every attempt, not only of the last one); its ledger lives in the work folder and is removed once the result is
  written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from filelock import FileLock, Timeout

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.results.io import atomic_write_text, read_json_bounded

log = logging.getLogger(__name__)
LEDGER_NAME = "wall_time.json"
TEMP_PATTERNS = ("*.tmp", "*.tmp-*")


def lock_path(path: Path) -> Path:
    """The lock file guarding `path` (a hidden sibling, so result globs never see it)."""
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def run_lock(out: Path, work_dir: Path) -> Iterator[None]:
    """Hold exclusive locks on `out` and `work_dir` for the block; ConfigError at once if another run holds one."""
    with contextlib.ExitStack() as stack:
        for what, path in (("result file", out), ("work folder", work_dir)):
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(lock_path(path)), timeout=0)
            try:
                lock.acquire()
            except Timeout:
                raise ConfigError(
                    f"Another imibench run is writing the {what} {path} (it holds {lock_path(path)}). Two runs on the "
                    "same output would overwrite each other's checkpoint and result: wait for that run to finish, "
                    "or give this one another --out (its work folder follows --out)."
                ) from None
            stack.callback(lock.release)
        yield


def remove_orphaned_temp_files(out: Path, work_dir: Path) -> list[Path]:
    """Delete temporary files a killed writer left for `out` (beside it) and anywhere in `work_dir`; call it only
    while holding `run_lock(out, work_dir)`."""
    found = list(out.parent.glob(f".{out.name}.*.tmp"))
    if work_dir.is_dir():
        found += [p for pattern in TEMP_PATTERNS for p in work_dir.rglob(pattern) if p.is_file()]
    for path in found:
        path.unlink(missing_ok=True)
    if found:
        log.info("Removed %d temporary file(s) left by an interrupted run (e.g. %s).", len(found), found[0])
    return found


class AttemptClock:
    """Records this attempt's wall time in `work_dir/wall_time.json` every `interval_s` seconds and on exit;
    `previous_s` is the time of the earlier attempts of the same run (killed or interrupted ones)."""

    def __init__(self, work_dir: Path, *, started: float, interval_s: float = 5.0) -> None:
        self.path = Path(work_dir) / LEDGER_NAME
        self.started, self.interval_s = started, interval_s
        self._attempts = self._read()
        self.previous_s = float(sum(a["elapsed_s"] for a in self._attempts))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="attempt-clock", daemon=True)
        self._lock = threading.Lock()
        self._done = False

    def __enter__(self) -> Self:
        self._record()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.path.parent.is_dir():
            with contextlib.suppress(OSError):
                self._record()

    def total_s(self) -> float:
        """Wall time of every attempt so far, this one included."""
        return self.previous_s + time.perf_counter() - self.started

    def complete(self) -> None:
        """The run's result is written: forget the ledger, so that a later run starts from zero."""
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._done = True
            self.path.unlink(missing_ok=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(OSError):
                self._record()

    def _record(self) -> None:
        with self._lock:
            if self._done:
                return
            current = {"elapsed_s": time.perf_counter() - self.started}
            atomic_write_text(self.path, json.dumps({"attempts": [*self._attempts, current]}))

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        try:
            data = read_json_bounded(self.path, max_bytes=1 << 20, what="Wall-time ledger")
            attempts = [{"elapsed_s": float(a["elapsed_s"])} for a in data["attempts"]]
        except (DataValidationError, KeyError, TypeError, ValueError) as err:
            log.warning("Ignoring the unreadable wall-time ledger %s (%s); earlier attempts are not counted.",
                        self.path, err)
            return []
        return [a for a in attempts if a["elapsed_s"] >= 0 and a["elapsed_s"] < float("inf")]

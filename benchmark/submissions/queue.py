"""The submission queue: one JSON request file per submission, in a folder per state.

Layout under the queue root::

    pending/<id>.json  running/<id>.json  finished/<id>.json  failed/<id>.json  logs/<id>.log  .queue.lock
    quarantine/<file>  quarantine/<file>.reason.txt   (request files that could not be read, with the reason)

Request files are data, never trusted: each is read with its size and depth bounded (`MAX_QUEUE_FILE_BYTES`), and
one that cannot be read (bad JSON, not UTF-8, invalid fields, an id that does not match its file name) is moved to
`quarantine/` with its reason; every reader (`queue status`, `queue run`, `submit`, the web form) goes on without it.

A claim is a token (`claim_id`): every write of a worker (heartbeat, finish, fail, release) and `check_claim`, which
a worker calls before each stage, compares it under the lock, so a worker that was presumed dead and requeued can
no longer record anything. `finish(..., staged=PATH)` moves the worker's staged result into place in the same
locked step that checks the claim: a result is published exactly once, by the claim that holds the entry.

Timeouts (defaults of `imibench queue run`): a heartbeat every 30 s (`--heartbeat`); an entry whose worker sent no
heartbeat for 300 s (`--stale-after`, default 10 x the heartbeat) is requeued, or FAILED after 3 attempts
(`--max-attempts`). A worker also requeues, when it starts, the RUNNING entries of workers on its own host whose
process is gone (`requeue_dead_local`), so a restarted `queue run --once` does not wait 300 s for them.

Every state change holds the queue's file lock (an OS lock, released when its process dies), moves the request file
to its new state's folder with an atomic rename and then rewrites it atomically (temporary file + os.replace).
The folder is the authoritative state: a file caught between the rename and the rewrite reads as its folder's state.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.api.errors import ConfigError, DataValidationError, ImiBenchError
from benchmark.results.io import atomic_write_text, read_json_bounded
from benchmark.submissions.spec import SubmissionSpec

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_ROOT = Path("submissions/queue")
DEFAULT_MAX_ATTEMPTS = 3
LOCK_NAME = ".queue.lock"
LOGS_DIR = "logs"
QUARANTINE_DIR = "quarantine"
MAX_QUEUE_FILE_BYTES = 1 << 20  # a request file is a few KiB
ENTRY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"  # a file name, never a path


class State(StrEnum):
    """Where a submission is in its life: PENDING -> RUNNING -> FINISHED | FAILED (RUNNING -> PENDING on requeue)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"

    @property
    def folder(self) -> str:
        """The state's subfolder of the queue root."""
        return self.value.lower()


TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.RUNNING}),
    State.RUNNING: frozenset({State.PENDING, State.FINISHED, State.FAILED}),
    State.FINISHED: frozenset(),
    State.FAILED: frozenset(),
}


class QueueStateError(ImiBenchError, RuntimeError):
    """A queue operation does not fit the entry's current state (invalid transition, lost claim, busy lock)."""


class ClaimLostError(QueueStateError):
    """This worker no longer holds the entry: it was requeued (presumed dead) and maybe claimed by another."""


@dataclass(frozen=True)
class QuarantinedFile:
    """A request file moved aside because it could not be read."""

    name: str
    reason: str


class QueueEntry(BaseModel):
    """One request file: the validated spec, its key, its state and the times and outcome of each run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ENTRY_ID_PATTERN, description="the request file's name without .json")
    key: str = Field(description="duplicate key: model id @ weights (sha256, weights id or revision)")
    state: State
    spec: SubmissionSpec
    checks: dict[str, Any] = Field(default_factory=dict, description="what validation checked, e.g. output shape")
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    worker: str | None = Field(None, description="host:pid of the worker that holds or held the entry")
    heartbeat_at: str | None = None
    claim_id: str | None = Field(None, description="token of the current claim; stale workers cannot write back")
    attempts: int = Field(0, ge=0, description="runs started (a claim counts as an attempt)")
    reason: str | None = Field(None, description="one line: why it failed")
    log_path: str | None = None
    result_path: str | None = None
    notes: list[str] = Field(default_factory=list, description="timestamped history: requeues, interruptions")

    @property
    def name(self) -> str:
        """The submission's display name."""
        return self.spec.display_name


class SubmissionQueue:
    """A folder-based queue that any number of worker processes can share."""

    def __init__(self, root: str | Path = DEFAULT_QUEUE_ROOT, *, lock_timeout_s: float = 60.0) -> None:
        self.root = Path(root)
        self.lock_timeout_s = lock_timeout_s
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"Queue root {self.root} is a file; pass a folder (default {DEFAULT_QUEUE_ROOT}).")

    def __repr__(self) -> str:
        return f"SubmissionQueue({str(self.root)!r})"

    def exists(self) -> bool:
        """Whether the queue folder has been created (by a first submission)."""
        return self.root.is_dir()

    def log_path(self, entry_id: str) -> Path:
        """Where the worker writes the log of a run of `entry_id`."""
        return self.root / LOGS_DIR / f"{entry_id}.log"

    def file_path(self, state: State, entry_id: str) -> Path:
        """The request file of `entry_id` in `state`'s folder."""
        return self.root / state.folder / f"{entry_id}.json"

    # ----------------------------------------------------------------------------------------- reading

    def entries(self, state: State | None = None) -> list[QueueEntry]:
        """Entries (of one state, or all), oldest first."""
        if not self.exists():
            return []
        with self._locked():
            return self._entries(state)

    def status(self) -> list[QueueEntry]:
        """Every entry, oldest first, for display."""
        return self.entries()

    def get(self, entry_id: str) -> QueueEntry:
        """The entry with this id, in whatever state it is."""
        if not self.exists():
            raise ConfigError(f"No queue at {self.root}; submit with `imibench submit SPEC --queue {self.root}`.")
        with self._locked():
            return self._get(entry_id)

    def quarantined(self) -> list[QuarantinedFile]:
        """Request files moved to quarantine/ because they could not be read, with the reason of each."""
        folder = self.root / QUARANTINE_DIR
        if not folder.is_dir():
            return []
        found = []
        for reason_file in sorted(folder.glob("*.reason.txt")):
            try:
                reason = reason_file.read_text(encoding="utf-8", errors="replace")[:1000].strip()
            except OSError as err:
                reason = f"(reason unreadable: {err.strerror})"
            found.append(QuarantinedFile(reason_file.name.removesuffix(".reason.txt"), reason))
        return found

    def check_claim(self, entry: QueueEntry) -> QueueEntry:
        """The current entry if this claim still holds it; ClaimLostError otherwise (a worker calls this before
        each stage and stops when it raises)."""
        with self._locked():
            return self._owned(entry, State.RUNNING, "continue")

    def find_key(self, key: str, *, include_failed: bool = False) -> list[QueueEntry]:
        """Entries with this submission key (FAILED ones only when asked)."""
        return [e for e in self.entries() if e.key == key and (include_failed or e.state is not State.FAILED)]

    # ----------------------------------------------------------------------------------------- transitions

    def enqueue(self, spec: SubmissionSpec, *, key: str, checks: dict[str, Any] | None = None) -> QueueEntry:
        """Add a PENDING entry; a submission with the same key in any state but FAILED is refused."""
        with self._locked():
            for state in State:
                (self.root / state.folder).mkdir(parents=True, exist_ok=True)
            (self.root / LOGS_DIR).mkdir(exist_ok=True)
            duplicate = next((e for e in self._entries() if e.key == key and e.state is not State.FAILED), None)
            if duplicate is not None:
                raise DataValidationError(duplicate_message(key, duplicate, self))
            entry = QueueEntry(
                id=self._new_id(spec.display_name), key=key, state=State.PENDING, spec=spec, checks=checks or {},
                created_at=now_iso(),
            )
            self._write(entry)
            return entry

    def claim(self, worker: str | None = None) -> QueueEntry | None:
        """Move the oldest PENDING entry to RUNNING for this worker; None when nothing is pending."""
        with self._locked():
            pending = self._entries(State.PENDING)
            if not pending:
                return None
            entry, stamp = pending[0], now_iso()
            update = {
                "started_at": stamp, "heartbeat_at": stamp, "finished_at": None, "worker": worker or worker_id(),
                "claim_id": uuid.uuid4().hex, "attempts": entry.attempts + 1, "reason": None,
            }
            return self._move(entry, State.RUNNING, update)

    def heartbeat(self, entry: QueueEntry) -> QueueEntry:
        """Refresh a RUNNING entry's heartbeat; raises QueueStateError when this claim no longer holds it."""
        with self._locked():
            current = self._owned(entry, State.RUNNING, "heartbeat")
            updated = current.model_copy(update={"heartbeat_at": now_iso()})
            self._write(updated)
            return updated

    def finish(self, entry: QueueEntry, result_path: str | Path, *, staged: str | Path | None = None) -> QueueEntry:
        """RUNNING -> FINISHED with the result file's path; with `staged`, that file is first moved to `result_path`
        in the same locked step that checks the claim (so only the claim holder ever publishes a result)."""
        with self._locked():
            current = self._owned(entry, State.FINISHED, "finish")
            if staged is not None:
                try:
                    os.replace(staged, result_path)
                except OSError as err:  # e.g. the staged file vanished: the entry stays RUNNING, nothing published
                    raise QueueStateError(f"Cannot finish {entry.id}: its staged result {staged} could not be "
                                          f"moved to {result_path}: {err}") from None
            update = {"finished_at": now_iso(), "result_path": str(result_path), "reason": None}
            return self._move(current, State.FINISHED, update)

    def fail(self, entry: QueueEntry, reason: str, *, log_path: str | Path | None = None) -> QueueEntry:
        """RUNNING -> FAILED with a one-line reason and the run's log."""
        with self._locked():
            current = self._owned(entry, State.FAILED, "fail")
            update = {"finished_at": now_iso(), "reason": one_line(reason), "log_path": _str(log_path)}
            return self._move(current, State.FAILED, update)

    def release(self, entry: QueueEntry, note: str) -> QueueEntry:
        """RUNNING -> PENDING for a run this worker gives up (e.g. interrupted); the attempt still counts."""
        with self._locked():
            current = self._owned(entry, State.PENDING, "release")
            return self._move(current, State.PENDING, _back_to_pending(current, note))

    def requeue_stale(self, max_age_s: float, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> list[QueueEntry]:
        """RUNNING entries without a heartbeat for `max_age_s` go back to PENDING, or to FAILED after max_attempts.

        Temporary files left by killed writers are removed on the way.
        """
        if max_age_s <= 0 or max_attempts < 1:
            raise ConfigError(f"requeue_stale needs max_age_s > 0 and max_attempts >= 1, got {max_age_s}, "
                              f"{max_attempts}.")
        if not self.exists():
            return []
        with self._locked():
            self._remove_orphaned_temp_files()
            now = datetime.now(UTC)
            stale = [(e, age) for e in self._entries(State.RUNNING) if (age := self._age_s(e, now)) > max_age_s]
            return [self._requeue(entry, age, max_attempts) for entry, age in stale]

    def requeue_dead_local(self, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> list[QueueEntry]:
        """RUNNING entries of workers on this host whose process no longer exists go back to PENDING (or FAILED
        after max_attempts) at once, without waiting for the stale timeout."""
        if not self.exists():
            return []
        host = socket.gethostname()
        with self._locked():
            now = datetime.now(UTC)
            dead = [e for e in self._entries(State.RUNNING) if _local_process_gone(e.worker, host)]
            return [self._requeue(e, self._age_s(e, now), max_attempts, why="whose process is gone") for e in dead]

    # ----------------------------------------------------------------------------------------- internals

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.root / LOCK_NAME), timeout=self.lock_timeout_s)
        try:
            lock.acquire()
        except Timeout:
            raise QueueStateError(
                f"The queue lock {self.root / LOCK_NAME} stayed busy for {self.lock_timeout_s:g} s; another "
                "process holds it. Try again; if no imibench process is running, the lock is free on its own."
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _entries(self, state: State | None = None) -> list[QueueEntry]:
        states = [state] if state else list(State)
        found = []
        for s in states:
            for path in (self.root / s.folder).glob("*.json"):
                entry = self._read_or_quarantine(path, s)
                if entry is not None:
                    found.append(entry)
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def _read_or_quarantine(self, path: Path, state: State) -> QueueEntry | None:
        try:
            return self._read(path, state)
        except DataValidationError as err:
            self._quarantine(path, str(err))
            return None

    def _quarantine(self, path: Path, reason: str) -> None:
        # The caller holds the lock. The name gets a unique suffix so two bad files of one name never collide.
        folder = self.root / QUARANTINE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{path.parent.name}-{path.name}.{uuid.uuid4().hex[:6]}"
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return
        atomic_write_text(folder / f"{target.name}.reason.txt", f"{now_iso()} {path}: {one_line(reason, 900)}\n")
        logger.warning("quarantined unreadable queue file %s -> %s: %s", path, target, one_line(reason, 300))

    def _get(self, entry_id: str) -> QueueEntry:
        for state in State:
            path = self.file_path(state, entry_id)
            if path.is_file():
                entry = self._read_or_quarantine(path, state)
                if entry is not None:
                    return entry
        raise ConfigError(f"No submission {entry_id!r} in the queue {self.root}; list them with `imibench queue "
                          "status`.")

    def _read(self, path: Path, state: State) -> QueueEntry:
        if not path.is_file():
            raise DataValidationError(f"Queue file {path} is not a regular file.")
        data = read_json_bounded(path, max_bytes=MAX_QUEUE_FILE_BYTES, what="Queue file")
        try:
            entry = QueueEntry.model_validate(data)
        except (ValidationError, RecursionError) as err:
            raise DataValidationError(f"Queue file {path} is not a valid request file: {err}") from None
        if entry.id != path.stem:
            raise DataValidationError(f"Queue file {path} holds entry id {entry.id!r}, not its file name's.")
        # The folder is authoritative (a crash between the rename and the rewrite leaves old content).
        return entry if entry.state is state else entry.model_copy(update={"state": state})

    def _write(self, entry: QueueEntry) -> Path:
        return atomic_write_text(self.file_path(entry.state, entry.id), entry.model_dump_json(indent=2))

    def _move(self, entry: QueueEntry, to: State, update: dict[str, Any]) -> QueueEntry:
        if to not in TRANSITIONS[entry.state]:
            allowed = ", ".join(sorted(TRANSITIONS[entry.state])) or "none (final state)"
            raise QueueStateError(f"Invalid transition of {entry.id}: {entry.state} -> {to}; allowed from "
                                  f"{entry.state}: {allowed}.")
        moved = entry.model_copy(update={**update, "state": to})
        os.rename(self.file_path(entry.state, entry.id), self.file_path(to, entry.id))
        self._write(moved)
        return moved

    def _owned(self, entry: QueueEntry, to: State, action: str) -> QueueEntry:
        try:
            current = self._get(entry.id)
        except ConfigError as err:  # gone (e.g. quarantined): nobody holds it
            raise ClaimLostError(f"Cannot {action} {entry.id}: {err}") from None
        if current.state is not State.RUNNING:
            raise ClaimLostError(f"Cannot {action} {entry.id}: it is {current.state}, not RUNNING "
                                  f"(invalid transition {current.state} -> {to}).")
        if current.claim_id != entry.claim_id:
            raise ClaimLostError(
                f"Cannot {action} {entry.id}: this worker's claim was taken over (requeued as stale and claimed "
                f"by {current.worker}); its outcome is left to that run."
            )
        return current

    def _remove_orphaned_temp_files(self) -> None:
        # Every write happens under the lock, which the caller holds: a temporary file now is a killed writer's.
        for state in State:
            for tmp in (self.root / state.folder).glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def _age_s(self, entry: QueueEntry, now: datetime) -> float:
        stamp = entry.heartbeat_at or entry.started_at
        if stamp is not None:
            return (now - datetime.fromisoformat(stamp)).total_seconds()
        # Claimed but never rewritten (the claimer died between rename and rewrite): the rename set ctime.
        return now.timestamp() - self.file_path(State.RUNNING, entry.id).stat().st_ctime

    def _requeue(self, entry: QueueEntry, age_s: float, max_attempts: int, *, why: str | None = None) -> QueueEntry:
        if why is None:
            lost = f"worker {entry.worker or '?'} sent no heartbeat for {age_s:.0f} s (it died or hung)"
        else:
            lost = f"worker {entry.worker or '?'} {why} (last heartbeat {age_s:.0f} s ago)"
        if entry.attempts >= max_attempts:
            reason = f"{lost}; gave up after {entry.attempts} attempts (max_attempts={max_attempts})"
            log = self.log_path(entry.id)
            update = {"finished_at": now_iso(), "reason": reason, "log_path": str(log) if log.is_file() else None,
                      "notes": [*entry.notes, f"{now_iso()} failed: {reason}"]}
            return self._move(entry, State.FAILED, update)
        note = f"{lost}; requeued after attempt {entry.attempts} of {max_attempts}"
        return self._move(entry, State.PENDING, _back_to_pending(entry, note))

    def _new_id(self, name: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "submission"
        return f"{stamp}-{slug}-{uuid.uuid4().hex[:6]}"


def duplicate_message(key: str, existing: QueueEntry, queue: SubmissionQueue) -> str:
    """Why a submission is refused as a duplicate of `existing`, and what to do."""
    where = queue.file_path(existing.state, existing.id)
    if existing.state is State.FINISHED:
        status = f"already scored: result {existing.result_path}"
    else:
        status = f"already {existing.state} in the queue"
    return (
        f"Duplicate submission {key!r}: {status} as {existing.id} ({existing.name!r}, {where}). The same model "
        "with the same weights is scored once; change the weights (sha256/revision) to submit another model, "
        "or wait for the existing entry."
    )


def now_iso() -> str:
    """Current UTC time, ISO 8601 with microseconds (orders entries created in the same second)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def worker_id() -> str:
    """host:pid of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def one_line(text: str, limit: int = 500) -> str:
    """Collapse whitespace to one line and cut it to `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _back_to_pending(entry: QueueEntry, note: str) -> dict[str, Any]:
    return {"started_at": None, "heartbeat_at": None, "worker": None, "claim_id": None,
            "notes": [*entry.notes, f"{now_iso()} {note}"]}


def _local_process_gone(worker: str | None, host: str) -> bool:
    """True when `worker` (host:pid) names a process of this host that does not exist any more."""
    worker_host, _, pid_text = (worker or "").rpartition(":")
    if worker_host != host or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    return False


def _str(path: str | Path | None) -> str | None:
    return None if path is None else str(path)

"""The queue worker: requeue stale entries, claim the oldest PENDING one, score it, record FINISHED or FAILED.

Where a worker writes is the worker's choice alone: the result goes to `RESULTS/<queue id>.json` and the run works in
`WORK/<queue id>/attempt-<n>-<claim>/` (WORK defaults to `RESULTS/.work`), a folder of its own per attempt, seeded
with the previous attempt's activation checkpoint and wall-time ledger so a requeued entry resumes. The result is
first written to a staging file unique to the claim and moved into place by `SubmissionQueue.finish` in the same
locked step that checks the claim. Before each stage the worker checks that it still holds its claim (a heartbeat
that finds it lost also stops it): a worker that hung past the stale timeout and woke up stops, writes nothing
outside its own attempt folder and never records an outcome, so an entry is scored and published once.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import shutil
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from benchmark.api.errors import ConfigError
from benchmark.results.io import read_result, write_result
from benchmark.scoring.spec import ScoreSpec
from benchmark.submissions.queue import (
    DEFAULT_MAX_ATTEMPTS,
    ClaimLostError,
    QueueEntry,
    QueueStateError,
    State,
    SubmissionQueue,
    now_iso,
    one_line,
    worker_id,
)
from benchmark.submissions.spec import SubmissionSpec

logger = logging.getLogger(__name__)

ScoreFn = Callable[[ScoreSpec], Path]
DEFAULT_RESULTS_DIR = Path("results")
WORK_SUBDIR = ".work"  # default work root under the results folder (hidden: result globs never see it)
SEEDED_FILES = ("activations.ckpt", "wall_time.json")  # what a new attempt takes over from the previous one
# Submission fields copied into the result file (`submission.spec.metadata`) for the leaderboard. The submitter's
# contact stays in the queue: result files are published.
PUBLIC_METADATA = ("name", "family", "license", "paper", "revision", "imagenet_top1", "notes")


@dataclass
class WorkerReport:
    """What one `run_worker` call did: the entries it requeued and the ones it finished or failed."""

    worker: str
    requeued: list[QueueEntry] = field(default_factory=list)
    finished: list[QueueEntry] = field(default_factory=list)
    failed: list[QueueEntry] = field(default_factory=list)
    lost: list[QueueEntry] = field(default_factory=list)  # claim taken over while this worker ran it

    @property
    def n_jobs(self) -> int:
        """Entries this worker ran (finished, failed, or taken over by another worker meanwhile)."""
        return len(self.finished) + len(self.failed) + len(self.lost)

    def add(self, entry: QueueEntry) -> None:
        """File an entry under its outcome."""
        {State.FINISHED: self.finished, State.FAILED: self.failed}.get(entry.state, self.lost).append(entry)


def run_worker(
    queue: SubmissionQueue | str | Path,
    *,
    results_dir: str | Path = DEFAULT_RESULTS_DIR,
    once: bool = False,
    score_fn: ScoreFn | None = None,
    heartbeat_s: float = 30.0,
    poll_s: float = 5.0,
    max_jobs: int | None = None,
    stale_after_s: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    proxy: str | Path | None = None,
    stop: threading.Event | None = None,
    work_root: str | Path | None = None,
) -> WorkerReport:
    """Process the queue: until `stop` is set, or (with `once` / `max_jobs`) that many entries or an empty queue.

    Entries of dead workers on this host are requeued at start; entries without a heartbeat for `stale_after_s`
    (default 10 x `heartbeat_s`: 300 s) before each claim. `work_root` (default RESULTS/.work) holds the runs'
    work folders."""
    queue = queue if isinstance(queue, SubmissionQueue) else SubmissionQueue(queue)
    check_worker_args(heartbeat_s, poll_s, max_jobs, stale_after_s)
    if not queue.exists():
        raise ConfigError(f"No queue at {queue.root}: pass the folder `imibench submit --queue` wrote to (or create "
                          "it to start an empty queue).")
    stale_after_s = stale_after_s if stale_after_s is not None else 10 * heartbeat_s
    score_fn = score_fn or default_score_fn
    limit = 1 if once else max_jobs
    report = WorkerReport(worker=worker_id())
    stop = stop or threading.Event()
    results_path = Path(results_dir).resolve()
    work_path = Path(work_root).resolve() if work_root is not None else results_path / WORK_SUBDIR
    report.requeued += queue.requeue_dead_local(max_attempts=max_attempts)
    while not stop.is_set() and (limit is None or report.n_jobs < limit):
        report.requeued += queue.requeue_stale(stale_after_s, max_attempts=max_attempts)
        entry = queue.claim(report.worker)
        if entry is None:
            if once or max_jobs is not None:
                break
            stop.wait(poll_s)
            continue
        logger.info("claimed %s (%s, attempt %d)", entry.id, entry.name, entry.attempts)
        outcome = run_entry(queue, entry, results_dir=results_path, score_fn=score_fn,
                            heartbeat_s=heartbeat_s, proxy=proxy, work_root=work_path)
        logger.info("%s: %s%s", entry.id, outcome.state, f" ({outcome.reason}; log {outcome.log_path})"
                    if outcome.state is State.FAILED else "")
        report.add(outcome)
    return report


@dataclass(frozen=True)
class AttemptPaths:
    """Where one attempt of an entry writes: its staging result, its work folder, and the published result."""

    result: Path
    staged: Path
    work_dir: Path

    @classmethod
    def of(cls, entry: QueueEntry, results_dir: Path, work_root: Path) -> AttemptPaths:
        """The paths of `entry`'s current claim (ids are file names by the queue's schema, never paths)."""
        claim = (entry.claim_id or "noclaim")[:12]
        return cls(
            result=results_dir / f"{entry.id}.json",
            staged=results_dir / f".{entry.id}.json.{claim}.staging",
            work_dir=work_root / entry.id / f"attempt-{entry.attempts}-{claim}",
        )


def prepare_attempt(paths: AttemptPaths) -> None:
    """Create the attempt's folder, seeded with the newest checkpoint of an earlier attempt (a resume); remove
    staging files of earlier claims of this entry (their workers are dead or have lost the entry)."""
    paths.work_dir.mkdir(parents=True, exist_ok=True)
    earlier = [d for d in paths.work_dir.parent.iterdir() if d.is_dir() and d != paths.work_dir
               and (d / SEEDED_FILES[0]).is_file()]
    if earlier:
        newest = max(earlier, key=lambda d: (d / SEEDED_FILES[0]).stat().st_mtime)
        for name in SEEDED_FILES:
            if (newest / name).is_file() and not (paths.work_dir / name).exists():
                shutil.copyfile(newest / name, paths.work_dir / name)
        logger.info("attempt seeded from %s", newest)
    entry_id = paths.result.stem
    for old in paths.result.parent.glob(f".{entry_id}.json.*.staging"):
        if old != paths.staged:
            old.unlink(missing_ok=True)


def run_entry(
    queue: SubmissionQueue,
    entry: QueueEntry,
    *,
    results_dir: Path,
    score_fn: ScoreFn,
    heartbeat_s: float,
    proxy: str | Path | None = None,
    work_root: Path | None = None,
) -> QueueEntry:
    """Score one claimed entry with its log captured and a heartbeat running; returns the entry's final state
    (RUNNING, as this worker last saw it, when the claim was lost meanwhile)."""
    results_dir = Path(results_dir)
    paths = AttemptPaths.of(entry, results_dir, Path(work_root) if work_root else results_dir / WORK_SUBDIR)
    log_path = queue.log_path(entry.id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    lost = threading.Event()

    def guard(stage: str) -> None:
        if lost.is_set():
            raise ClaimLostError(f"{entry.id}: the heartbeat found this worker's claim taken over")
        queue.check_claim(entry)
        logger.info("claim held; stage: %s", stage)

    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"{now_iso()} worker {entry.worker} starts {entry.id} (attempt {entry.attempts}, key {entry.key})\n")
        try:
            with _heartbeat(queue, entry, heartbeat_s, lost), capture_output(log):
                guard("prepare")
                if entry.checks.get("public"):  # a stranger's spec: its sources are checked again on this machine
                    from benchmark.submissions.public import recheck_public_sources

                    recheck_public_sources(entry.spec)
                prepare_attempt(paths)
                score_spec = entry.spec.score_spec(proxy=proxy, out=paths.staged, work_dir=paths.work_dir)
                logger.info("score spec: %s", score_spec.model_dump_json())
                staged = Path(call_score_fn(score_fn, score_spec, guard))
                guard("annotate result")
                annotate_result(staged, entry.spec, entry_id=entry.id, key=entry.key)
                guard("publish result")
        except ClaimLostError as err:  # presumed dead and requeued: the entry's outcome belongs to the new claim
            log.write(f"\n{now_iso()} STOPPED: {one_line(str(err))}\n")
            logger.warning("%s", err)
            paths.staged.unlink(missing_ok=True)
            return entry
        except Exception as err:  # the worker records any scoring failure and goes on with the next entry
            reason = one_line(f"{type(err).__name__}: {err}")
            log.write(f"\n{now_iso()} FAILED: {reason}\n{traceback.format_exc()}")
            paths.staged.unlink(missing_ok=True)
            return record_transition(queue.fail, entry, reason, log_path=log_path)
        except BaseException:  # interrupted (Ctrl-C, SystemExit): hand the entry back, then stop
            log.write(f"\n{now_iso()} interrupted; entry handed back to PENDING\n")
            paths.staged.unlink(missing_ok=True)
            record_transition(queue.release, entry, f"worker {entry.worker} was interrupted")
            raise
        finally:
            remove_attempt_locks(paths)
        outcome = record_transition(queue.finish, entry, paths.result, staged=staged)
        if outcome.state is State.FINISHED:
            log.write(f"\n{now_iso()} FINISHED: {paths.result}\n")
        else:
            log.write(f"\n{now_iso()} STOPPED: the claim was lost before the result was published\n")
            staged.unlink(missing_ok=True)
    return outcome


def remove_attempt_locks(paths: AttemptPaths) -> None:
    """Delete the lock files the scoring run left beside this attempt's staging file and work folder (both are
    unique to the claim, so no other run can be using them)."""
    from benchmark.scoring.runlock import lock_path

    for path in (paths.staged, paths.work_dir):
        lock_path(path).unlink(missing_ok=True)


def call_score_fn(score_fn: ScoreFn, spec: ScoreSpec, guard: Callable[[str], None]) -> Path:
    """Call `score_fn(spec)`, passing `before_stage=guard` when it accepts it (the default does)."""
    try:
        accepts_guard = "before_stage" in inspect.signature(score_fn).parameters
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        accepts_guard = False
    return Path(score_fn(spec, before_stage=guard) if accepts_guard else score_fn(spec))


def default_score_fn(spec: ScoreSpec, before_stage: Callable[[str], None] | None = None) -> Path:
    """Score with the real pipeline (imported here: it pulls in torch)."""
    from benchmark.scoring.pipeline import score_submission

    return score_submission(spec, progress=False, before_stage=before_stage)


def annotate_result(path: Path, spec: SubmissionSpec, *, entry_id: str, key: str) -> Path:
    """Validate the result file, add the submission's public metadata under `submission.spec.metadata` and drop the
    worker's paths (`out`, `work_dir`) from the recorded spec."""
    result = read_result(path)
    metadata: dict[str, Any] = {k: getattr(spec, k) for k in PUBLIC_METADATA if getattr(spec, k) is not None}
    metadata["name"] = spec.display_name
    metadata["queue_id"] = entry_id
    metadata["key"] = key
    # The worker's own paths (staging file, attempt folder) mean nothing to a reader of the published file.
    spec_fields = {k: v for k, v in result.submission.spec.items() if k not in ("out", "work_dir")}
    submission = result.submission.model_copy(update={"spec": {**spec_fields, "metadata": metadata}})
    return write_result(result.model_copy(update={"submission": submission}), path)


class _ThreadRoutedStream:
    """Stands in for sys.stdout/sys.stderr while workers capture output: each thread's writes go to its own log
    (when it captures), everything else to the stream that was there before."""

    def __init__(self, fallback: TextIO, targets: threading.local) -> None:
        self.fallback = fallback
        self.targets = targets

    def current(self) -> TextIO:
        """The stream the calling thread writes to."""
        return getattr(self.targets, "log", None) or self.fallback

    def write(self, text: str) -> int:
        return self.current().write(text)

    def flush(self) -> None:
        self.current().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)


class _OutputRouter:
    """Process-wide routing of stdout, stderr and log records to the log of the thread that runs an entry.

    sys.stdout/sys.stderr and the root logger are shared by all threads: swapping them per thread (as
    contextlib.redirect_stdout does) lets concurrent workers restore them out of order, so one worker's output
    lands in another entry's log, or in a log already closed (an entry FAILED with "I/O operation on closed
    file"). Instead, thread-routing streams are installed while any thread captures and removed after the last."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.targets = threading.local()
        self.saved: tuple[TextIO, TextIO, int] | None = None

    @contextlib.contextmanager
    def capture(self, log: TextIO, level: int) -> Iterator[None]:
        """Route this thread's output and log records to `log` while the block runs."""
        me = threading.get_ident()
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(level)
        handler.addFilter(lambda record: record.thread == me)  # other workers' records go to their own logs
        root = logging.getLogger()
        with self.lock:
            if self.users == 0:
                self.saved = (sys.stdout, sys.stderr, root.level)
                sys.stdout = _ThreadRoutedStream(sys.stdout, self.targets)  # type: ignore[assignment]
                sys.stderr = _ThreadRoutedStream(sys.stderr, self.targets)  # type: ignore[assignment]
            self.users += 1
            root.setLevel(min(root.level, level))
            root.addHandler(handler)
        self.targets.log = log
        try:
            yield
        finally:
            self.targets.log = None
            with self.lock:
                root.removeHandler(handler)
                self.users -= 1
                if self.users == 0 and self.saved is not None:
                    stdout, stderr, old_level = self.saved
                    # Put back only our own streams: someone who replaced them meanwhile keeps theirs.
                    if isinstance(sys.stdout, _ThreadRoutedStream):
                        sys.stdout = stdout
                    if isinstance(sys.stderr, _ThreadRoutedStream):
                        sys.stderr = stderr
                    root.setLevel(old_level)
                    self.saved = None
            log.flush()


_OUTPUT_ROUTER = _OutputRouter()


def capture_output(log: TextIO, level: int = logging.INFO) -> contextlib.AbstractContextManager[None]:
    """Send this thread's logging records, stdout and stderr to `log` while the block runs (safe with several
    worker threads in one process: each captures only its own output)."""
    return _OUTPUT_ROUTER.capture(log, level)


def check_worker_args(heartbeat_s: float, poll_s: float, max_jobs: int | None, stale_after_s: float | None) -> None:
    """Refuse non-positive timings and job counts before a worker starts."""
    if heartbeat_s <= 0 or poll_s <= 0:
        raise ConfigError(f"heartbeat_s and poll_s must be positive, got {heartbeat_s} and {poll_s}.")
    if max_jobs is not None and max_jobs < 1:
        raise ConfigError(f"max_jobs must be at least 1 (or None for no limit), got {max_jobs}.")
    if stale_after_s is not None and stale_after_s <= heartbeat_s:
        raise ConfigError(
            f"stale_after_s ({stale_after_s}) must exceed heartbeat_s ({heartbeat_s}), or live workers' entries "
            "would be requeued; use several heartbeats, e.g. 10 x heartbeat_s."
        )


@contextlib.contextmanager
def _heartbeat(queue: SubmissionQueue, entry: QueueEntry, every_s: float,
               lost: threading.Event | None = None) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=_beat, args=(queue, entry, every_s, stop, lost or threading.Event()),
                              name=f"heartbeat-{entry.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _beat(queue: SubmissionQueue, entry: QueueEntry, every_s: float, stop: threading.Event,
          lost: threading.Event) -> None:
    while not stop.wait(every_s):
        try:
            queue.heartbeat(entry)
        except QueueStateError as err:
            logger.warning("heartbeat stopped: %s", err)
            lost.set()
            return
        except OSError as err:  # a transient file-system error; the next beat tries again
            logger.warning("heartbeat of %s failed: %s", entry.id, err)


def record_transition(action: Callable[..., QueueEntry], entry: QueueEntry, *args: Any, **kwargs: Any) -> QueueEntry:
    """Record the outcome; a claim taken over meanwhile (this worker was presumed dead) is logged, not raised:
    the entry is returned as this worker last saw it (RUNNING)."""
    try:
        return action(entry, *args, **kwargs)
    except QueueStateError as err:
        logger.warning("%s", err)
        return entry

"""The queue worker: requeue stale entries, claim the oldest PENDING one, score it, record FINISHED or FAILED."""

from __future__ import annotations

import contextlib
import logging
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
) -> WorkerReport:
    """Process the queue: until `stop` is set, or (with `once` / `max_jobs`) that many entries or an empty queue."""
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
    while not stop.is_set() and (limit is None or report.n_jobs < limit):
        report.requeued += queue.requeue_stale(stale_after_s, max_attempts=max_attempts)
        entry = queue.claim(report.worker)
        if entry is None:
            if once or max_jobs is not None:
                break
            stop.wait(poll_s)
            continue
        logger.info("claimed %s (%s, attempt %d)", entry.id, entry.name, entry.attempts)
        outcome = run_entry(queue, entry, results_dir=Path(results_dir).resolve(), score_fn=score_fn,
                            heartbeat_s=heartbeat_s, proxy=proxy)
        logger.info("%s: %s%s", entry.id, outcome.state, f" ({outcome.reason}; log {outcome.log_path})"
                    if outcome.state is State.FAILED else "")
        report.add(outcome)
    return report


def run_entry(
    queue: SubmissionQueue,
    entry: QueueEntry,
    *,
    results_dir: Path,
    score_fn: ScoreFn,
    heartbeat_s: float,
    proxy: str | Path | None = None,
) -> QueueEntry:
    """Score one claimed entry with its log captured and a heartbeat running; returns the entry's final state."""
    log_path = queue.log_path(entry.id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"{now_iso()} worker {entry.worker} starts {entry.id} (attempt {entry.attempts}, key {entry.key})\n")
        try:
            with _heartbeat(queue, entry, heartbeat_s), capture_output(log):
                score_spec = entry.spec.score_spec(proxy=proxy, out=Path(results_dir) / f"{entry.id}.json")
                logger.info("score spec: %s", score_spec.model_dump_json())
                result_path = Path(score_fn(score_spec))
                annotate_result(result_path, entry.spec, entry_id=entry.id, key=entry.key)
        except Exception as err:  # the worker records any scoring failure and goes on with the next entry
            reason = one_line(f"{type(err).__name__}: {err}")
            log.write(f"\n{now_iso()} FAILED: {reason}\n{traceback.format_exc()}")
            return record_transition(queue.fail, entry, reason, log_path=log_path)
        except BaseException:  # interrupted (Ctrl-C, SystemExit): hand the entry back, then stop
            log.write(f"\n{now_iso()} interrupted; entry handed back to PENDING\n")
            record_transition(queue.release, entry, f"worker {entry.worker} was interrupted")
            raise
        log.write(f"\n{now_iso()} FINISHED: {result_path}\n")
    return record_transition(queue.finish, entry, result_path)


def default_score_fn(spec: ScoreSpec) -> Path:
    """Score with the real pipeline (imported here: it pulls in torch)."""
    from benchmark.scoring.pipeline import score_submission

    return score_submission(spec, progress=False)


def annotate_result(path: Path, spec: SubmissionSpec, *, entry_id: str, key: str) -> Path:
    """Validate the result file and add the submission's public metadata under `submission.spec.metadata`."""
    result = read_result(path)
    metadata: dict[str, Any] = {k: getattr(spec, k) for k in PUBLIC_METADATA if getattr(spec, k) is not None}
    metadata["name"] = spec.display_name
    metadata["queue_id"] = entry_id
    metadata["key"] = key
    submission = result.submission.model_copy(update={"spec": {**result.submission.spec, "metadata": metadata}})
    return write_result(result.model_copy(update={"submission": submission}), path)


@contextlib.contextmanager
def capture_output(log: TextIO, level: int = logging.INFO) -> Iterator[None]:
    """Send logging records, stdout and stderr of this process to `log` while the block runs."""
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(old_level, level))
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        log.flush()


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
def _heartbeat(queue: SubmissionQueue, entry: QueueEntry, every_s: float) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=_beat, args=(queue, entry, every_s, stop), name=f"heartbeat-{entry.id}",
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _beat(queue: SubmissionQueue, entry: QueueEntry, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        try:
            queue.heartbeat(entry)
        except QueueStateError as err:
            logger.warning("heartbeat stopped: %s", err)
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

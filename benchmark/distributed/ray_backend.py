"""Everything that runs on Ray: the sharded activation pass, and the submission queue fanned out as Ray tasks.

Importing this module imports Ray; the rest of the package imports it only when asked (`imibench queue run
--backend ray`, `RayActivationPass`), so a local run never loads Ray (`pip install imi-bench[ray]` adds it).

Sharded pass (`sharded_collect`, `RayActivationPass`): one Ray task per shard (`num_gpus` per task, 0 on CPUs)
builds the model from the spec, streams its images and returns small per-layer set states; the driver merges them
exactly (`benchmark.distributed.sharding`). A task whose worker or node dies is re-run by Ray (at most
`max_retries` times; it resumes from its shard checkpoint when the work folder is shared); an exception raised by
the pass itself is not retried (it would fail again) and propagates with its own type.

Queue (`run_ray_queue`): the driver claims PENDING entries with the queue's own API (its file lock keeps two
drivers or workers from scoring one entry), launches one Ray task per claimed entry (as many at once as the
cluster has slots), sends the heartbeats of running entries itself and records each outcome:
  * the task returns -> FINISHED with its result file;
  * the scoring raises -> FAILED with the exception as reason (not retried: it is deterministic);
  * the task's worker or node dies -> Ray re-runs it, at most `max_retries` times; if every run dies the entry
    ends FAILED (not requeued) with a reason naming the Ray error and the number of runs. Each run appends
    `ray run N of claim ...` to the entry's log, so retries of entries that finished are recorded there too;
  * the driver dies -> its Ray tasks die with it and its entries stop beating: the next `queue run` (any backend)
    requeues them as stale (`max_attempts` bounds that), exactly as for a dead local worker;
  * the driver is interrupted (Ctrl-C) -> it cancels its tasks and hands their entries back to PENDING.
Result files are written atomically by the tasks, so a killed run leaves no partial file and never touches the
results of other entries. The queue folder and the results folder must be on a filesystem that the driver and
every Ray node see at the same path (as for several local workers sharing one queue).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

import ray
import torch
from ray.exceptions import RayError, RayTaskError

from benchmark.activations.extremes import ExtremeSets
from benchmark.api.errors import ConfigError
from benchmark.distributed.sharding import ShardJob, ShardState, SpecShardJob, merge_states, plan_shards
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
from benchmark.submissions.worker import (
    DEFAULT_RESULTS_DIR,
    WORK_SUBDIR,
    AttemptPaths,
    ScoreFn,
    WorkerReport,
    check_worker_args,
    record_transition,
    annotate_result,
    capture_output,
    default_score_fn,
    prepare_attempt,
    remove_attempt_locks,
)

if TYPE_CHECKING:
    from benchmark.models.adapters import LoadedModel
    from benchmark.models.units import LayerInfo, UnitRef
    from benchmark.scoring.spec import ScoreSpec
    from benchmark.stimuli.sources import ImageSource

logger = logging.getLogger(__name__)

DEFAULT_MAX_RETRIES = 2  # Ray re-runs of a task whose worker died: 3 runs at most, like the queue's max_attempts
RUN_MARKER = "ray run"


# ------------------------------------------------------------------------------------------------ the cluster


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at `address` ('auto', 'HOST:6379', 'ray://HOST:10001'), as `ray.init` resolves it.

    None: RAY_ADDRESS, else the cluster last started with `ray start` on this machine, else a new local one.
    A Ray session already initialised in this process (e.g. by a test or a notebook) is used as it is.
    """
    if ray.is_initialized():
        logger.info("Using the Ray session already initialised in this process.")
        return
    ray.init(address=address)


def task_slots(num_gpus_per_task: float = 0.0, num_cpus_per_task: float = 1.0) -> int:
    """How many tasks with these resources the cluster can run at once; ConfigError when it cannot run one."""
    _check_resources(num_gpus_per_task, num_cpus_per_task)
    total = ray.cluster_resources()
    slots = int(total.get("CPU", 0) // num_cpus_per_task) if num_cpus_per_task > 0 else None
    if num_gpus_per_task > 0:
        gpu_slots = int(total.get("GPU", 0) // num_gpus_per_task)
        slots = gpu_slots if slots is None else min(slots, gpu_slots)
    if not slots:
        raise ConfigError(
            f"The Ray cluster has {total.get('GPU', 0):g} GPU(s) and {total.get('CPU', 0):g} CPU(s), too few for one "
            f"task of {num_gpus_per_task:g} GPU(s) and {num_cpus_per_task:g} CPU(s). Use --num-gpus-per-task 0 to run "
            "on CPUs, or start Ray workers on GPU nodes (`ray start --address HEAD:6379 --num-gpus N`)."
        )
    return slots


def _check_resources(num_gpus_per_task: float, num_cpus_per_task: float) -> None:
    if num_gpus_per_task < 0 or num_cpus_per_task < 0 or (num_gpus_per_task == 0 and num_cpus_per_task == 0):
        raise ConfigError(
            f"num_gpus_per_task={num_gpus_per_task} and num_cpus_per_task={num_cpus_per_task} must be >= 0 and not "
            "both 0 (e.g. 1 GPU per task, or 0 GPUs and 1 CPU on CPU-only clusters)."
        )


def _check_retries(max_retries: int) -> None:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"max_retries={max_retries!r} must be an integer >= 0 (Ray re-runs of a task whose worker "
                          "died; the number is bounded so a task that always crashes ends).")


def _set_threads(num_cpus: float) -> None:
    torch.set_num_threads(max(1, int(num_cpus)))  # Ray sets OMP_NUM_THREADS=1 unless told; use the CPUs reserved


# ------------------------------------------------------------------------------------------ sharded pass


@ray.remote
def _shard_task(job: ShardJob, shard: range, num_cpus: float) -> ShardState:
    _set_threads(num_cpus)
    return job.run(shard)


def collect_shard_states(
    job: ShardJob,
    shards: Sequence[range],
    *,
    num_gpus_per_task: float = 0.0,
    num_cpus_per_task: float = 1.0,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> list[ShardState]:
    """Run `job` over each shard as a Ray task; the shards' states in shard order (a failure cancels the rest)."""
    _check_resources(num_gpus_per_task, num_cpus_per_task)
    _check_retries(max_retries)
    task = _shard_task.options(num_gpus=num_gpus_per_task, num_cpus=num_cpus_per_task, max_retries=max_retries,
                               retry_exceptions=False)
    job_ref = ray.put(job)  # sent once, shared by every task
    pending = {task.remote(job_ref, shard, num_cpus_per_task): i for i, shard in enumerate(shards)}
    states: dict[int, ShardState] = {}
    while pending:
        (ready,), _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(ready)
        try:
            states[index] = ray.get(ready)
        except RayError as err:
            for ref in pending:
                # a KeyboardInterrupt in the task (its shard checkpoint is saved); force=True may kill a reused worker
                ray.cancel(ref)
            shard = shards[index]
            err.add_note(f"imi-bench: shard {index} (images {shard.start}..{shard.stop - 1}) of {len(shards)} failed "
                         f"(max_retries={max_retries}); the other shards were cancelled.")
            raise
    return [states[i] for i in range(len(shards))]


def sharded_collect(
    job: ShardJob,
    *,
    n_shards: int | None = None,
    num_gpus_per_task: float = 0.0,
    num_cpus_per_task: float = 1.0,
    max_retries: int = DEFAULT_MAX_RETRIES,
    align: int | None = None,
) -> dict[str, ExtremeSets]:
    """The activation pass of `job` split into shards (default: one per task slot), one Ray task each, merged.

    Equals one pass over all images (`run_shards_locally`), bit for bit. Shard boundaries align to `align`
    (default: the job's batch size, so every batch is one the single pass would run). Needs a Ray session
    (`connect`).
    """
    n_shards = n_shards if n_shards is not None else task_slots(num_gpus_per_task, num_cpus_per_task)
    shards = plan_shards(job.n_images, n_shards, align=align if align is not None else job.batch_size)
    if not shards:
        raise ConfigError("The image source is empty; there is nothing to shard.")
    logger.info("Activation pass in %d shard(s) of about %d images over Ray.", len(shards), len(shards[0]))
    states = collect_shard_states(job, shards, num_gpus_per_task=num_gpus_per_task,
                                  num_cpus_per_task=num_cpus_per_task, max_retries=max_retries)
    return merge_states(states)


@dataclass(frozen=True)
class RayActivationPass:
    """An `ActivationPass` for `score_submission`: the pass in shards, one Ray task each, merged exactly.

    `score_submission(spec, activation_pass=RayActivationPass(address="auto"))`. Each task builds the model from
    the spec on its own device (`spec.device`, resolved in the task: 'auto' is the task's GPU when it has one).
    """

    n_shards: int | None = None
    num_gpus_per_task: float = 1.0
    num_cpus_per_task: float = 1.0
    max_retries: int = DEFAULT_MAX_RETRIES
    address: str | None = None

    def __call__(
        self,
        loaded: LoadedModel,
        source: ImageSource,
        units: list[UnitRef],
        layers: list[LayerInfo],
        spec: ScoreSpec,
        *,
        k: int,
        work_dir: Path,
        progress: bool,
    ) -> dict[str, ExtremeSets]:
        """Shard, run and merge the pass `score_submission` asks for (per-shard checkpoints in work_dir/shards)."""
        if (self.num_gpus_per_task > 0) != (loaded.device.type == "cuda"):
            raise ConfigError(
                f"The driver runs the model on {loaded.device} but the shard tasks get {self.num_gpus_per_task:g} "
                "GPU(s) each; the tasks must compute on the driver's kind of device (the result's provenance "
                "records it). Run the driver on a GPU node with device auto/cuda and num_gpus_per_task > 0, or use "
                "device cpu with num_gpus_per_task=0."
            )
        connect(self.address)
        job = SpecShardJob.from_pass(loaded, source, units, layers, spec, k=k, work_dir=work_dir)
        sets = sharded_collect(job, n_shards=self.n_shards, num_gpus_per_task=self.num_gpus_per_task,
                               num_cpus_per_task=self.num_cpus_per_task, max_retries=self.max_retries)
        return {name: part.to(loaded.device) for name, part in sets.items()}


# ------------------------------------------------------------------------------------------------ the queue


@ray.remote
def _score_entry_task(entry: QueueEntry, log_path: str, results_dir: str, proxy: str | None, score_fn: ScoreFn,
                      num_cpus: float) -> str:
    _set_threads(num_cpus)
    log_file = Path(log_path)
    run = runs_logged(log_file, entry.claim_id) + 1
    with log_file.open("a", encoding="utf-8") as log:
        log.write(f"{now_iso()} {RUN_MARKER} {run} of claim {entry.claim_id} on {worker_id()} "
                  f"(Ray task {ray.get_runtime_context().get_task_id()})\n")
        log.flush()
        try:
            with capture_output(log):
                # The worker's paths: a staging file and a work folder unique to this claim (Ray's retries of the
                # claim share them and resume); the driver publishes the staged result while checking the claim.
                paths = AttemptPaths.of(entry, Path(results_dir), Path(results_dir) / WORK_SUBDIR)
                prepare_attempt(paths)
                score_spec = entry.spec.score_spec(proxy=proxy, out=paths.staged, work_dir=paths.work_dir)
                logger.info("score spec: %s", score_spec.model_dump_json())
                result_path = Path(score_fn(score_spec))
                annotate_result(result_path, entry.spec, entry_id=entry.id, key=entry.key)
                remove_attempt_locks(paths)
        except Exception:
            log.write(f"\n{now_iso()} scoring raised:\n{traceback.format_exc()}")
            raise
    return str(result_path)


def runs_logged(log_path: Path, claim_id: str | None) -> int:
    """How many Ray runs of this claim the entry's log records (one line per run, written as the run starts)."""
    if not log_path.is_file():
        return 0
    needle = f" of claim {claim_id} "
    return sum(RUN_MARKER in line and needle in line for line in log_path.read_text(encoding="utf-8").splitlines())


class _Heartbeats:
    """A driver thread that refreshes the heartbeat of every entry whose Ray task is running."""

    def __init__(self, queue: SubmissionQueue, every_s: float) -> None:
        self.queue, self.every_s = queue, every_s
        self._entries: dict[str, QueueEntry] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ray-queue-heartbeats", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def add(self, entry: QueueEntry) -> None:
        """Start beating for `entry`."""
        with self._lock:
            self._entries[entry.id] = entry

    def remove(self, entry: QueueEntry) -> None:
        """Stop beating for `entry`."""
        with self._lock:
            self._entries.pop(entry.id, None)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            with self._lock:
                entries = list(self._entries.values())
            for entry in entries:
                self._beat(entry)

    def _beat(self, entry: QueueEntry) -> None:
        try:
            self.queue.heartbeat(entry)
        except QueueStateError as err:  # taken over (presumed dead): its outcome belongs to the new claim
            logger.warning("heartbeat stopped: %s", err)
            self.remove(entry)
        except OSError as err:  # a transient file-system error; the next beat tries again
            logger.warning("heartbeat of %s failed: %s", entry.id, err)


@dataclass
class _Driver:
    """The state of one `run_ray_queue` call: the queue, the task options and the entries in flight."""

    queue: SubmissionQueue
    results_dir: Path
    proxy: str | None
    score_fn: ScoreFn
    num_gpus_per_task: float
    num_cpus_per_task: float
    max_retries: int
    report: WorkerReport

    def __post_init__(self) -> None:
        self.in_flight: dict[ray.ObjectRef, QueueEntry] = {}
        self.task = _score_entry_task.options(num_gpus=self.num_gpus_per_task, num_cpus=self.num_cpus_per_task,
                                              max_retries=self.max_retries, retry_exceptions=False)

    def launch(self, entry: QueueEntry) -> QueueEntry:
        """Start the Ray task of a claimed entry; every run of it appends to the entry's log."""
        log_path = self.queue.log_path(entry.id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        _append(log_path, f"{now_iso()} ray driver {self.report.worker} launches {entry.id} (attempt "
                          f"{entry.attempts}, key {entry.key}, max_retries={self.max_retries}, "
                          f"num_gpus={self.num_gpus_per_task:g})\n")
        ref = self.task.remote(entry, str(log_path), str(self.results_dir), self.proxy, self.score_fn,
                               self.num_cpus_per_task)
        self.in_flight[ref] = entry
        logger.info("launched %s (%s, attempt %d)", entry.id, entry.name, entry.attempts)
        return entry

    def settle(self, ref: ray.ObjectRef) -> QueueEntry:
        """Record the outcome of a finished task: FINISHED, or FAILED with the scoring error or the Ray error."""
        entry = self.in_flight.pop(ref)
        log_path = self.queue.log_path(entry.id)
        try:
            result_path = Path(ray.get(ref))
        except RayTaskError as err:  # the scoring raised (not retried: it would raise again)
            cause = err.cause if err.cause is not None else err
            return self._fail(entry, log_path, f"{type(cause).__name__}: {cause}")
        except RayError as err:  # the worker or node died on every run Ray allowed
            runs = runs_logged(log_path, entry.claim_id)
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
            return self._fail(entry, log_path, f"Ray task died on each of its {runs} logged run(s) (max_retries="
                                               f"{self.max_retries}): {type(err).__name__}: {first_line}")
        if not result_path.is_file():
            return self._fail(entry, log_path, f"the Ray task wrote {result_path}, which this driver cannot see; put "
                                               "--results on a filesystem shared by the driver and every Ray node")
        final = self.results_dir / f"{entry.id}.json"
        outcome = record_transition(self.queue.finish, entry, final, staged=result_path)
        if outcome.state is State.FINISHED:
            _append(log_path, f"\n{now_iso()} FINISHED: {final}\n")
        else:  # the claim was lost meanwhile: the new claim publishes its own result
            result_path.unlink(missing_ok=True)
        return outcome

    def cancel_all(self, note: str) -> None:
        """Cancel every task in flight and hand its entry back to PENDING."""
        for ref, entry in list(self.in_flight.items()):
            ray.cancel(ref)  # a KeyboardInterrupt in the task, not a kill (force=True may kill a reused worker)
            _append(self.queue.log_path(entry.id), f"\n{now_iso()} {note}; entry handed back to PENDING\n")
            record_transition(self.queue.release, entry, note)
        self.in_flight.clear()

    def _fail(self, entry: QueueEntry, log_path: Path, reason: str) -> QueueEntry:
        reason = one_line(reason)
        _append(log_path, f"\n{now_iso()} FAILED: {reason}\n")
        return record_transition(self.queue.fail, entry, reason, log_path=log_path)


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as log:
        log.write(text)


def run_ray_queue(
    queue: SubmissionQueue | str | Path,
    *,
    results_dir: str | Path = DEFAULT_RESULTS_DIR,
    address: str | None = None,
    num_gpus_per_task: float = 1.0,
    num_cpus_per_task: float = 1.0,
    max_retries: int = DEFAULT_MAX_RETRIES,
    max_in_flight: int | None = None,
    once: bool = False,
    max_jobs: int | None = None,
    score_fn: ScoreFn | None = None,
    heartbeat_s: float = 30.0,
    poll_s: float = 5.0,
    stale_after_s: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    proxy: str | Path | None = None,
    stop: threading.Event | None = None,
) -> WorkerReport:
    """Score PENDING entries as Ray tasks (one per entry), as `run_worker` does in-process; same stop conditions."""
    queue = queue if isinstance(queue, SubmissionQueue) else SubmissionQueue(queue)
    check_worker_args(heartbeat_s, poll_s, max_jobs, stale_after_s)
    _check_retries(max_retries)
    if not queue.exists():
        raise ConfigError(f"No queue at {queue.root}: pass the folder `imibench submit --queue` wrote to (or create "
                          "it to start an empty queue).")
    if max_in_flight is not None and max_in_flight < 1:
        raise ConfigError(f"max_in_flight must be at least 1 (or None for the cluster's task slots), got "
                          f"{max_in_flight}.")
    connect(address)
    slots = task_slots(num_gpus_per_task, num_cpus_per_task)  # also refuses requests the cluster cannot meet
    slots = max_in_flight or slots
    driver = _Driver(queue, Path(results_dir).resolve(), None if proxy is None else str(proxy),
                     score_fn or default_score_fn, num_gpus_per_task, num_cpus_per_task, max_retries,
                     WorkerReport(worker=f"ray-driver@{worker_id()}"))
    limit = 1 if once else max_jobs
    stale_after_s = stale_after_s if stale_after_s is not None else 10 * heartbeat_s
    with _Heartbeats(queue, heartbeat_s) as beats:
        try:
            _drive(driver, beats, slots, limit, stale_after_s, max_attempts, poll_s, stop or threading.Event())
        except BaseException:  # interrupted (Ctrl-C, SystemExit) or the driver itself failed: hand entries back
            driver.cancel_all(f"ray driver {driver.report.worker} was interrupted")
            raise
    return driver.report


def _drive(driver: _Driver, beats: _Heartbeats, slots: int, limit: int | None, stale_after_s: float,
           max_attempts: int, poll_s: float, stop: threading.Event) -> None:
    queue, report = driver.queue, driver.report
    claimed, drained = 0, False
    while True:
        if not stop.is_set():
            report.requeued += queue.requeue_stale(stale_after_s, max_attempts=max_attempts)
            while len(driver.in_flight) < slots and (limit is None or claimed < limit):
                entry = queue.claim(report.worker)
                drained = entry is None
                if drained:
                    break
                claimed += 1
                beats.add(driver.launch(entry))
        if not driver.in_flight:
            if stop.is_set() or (limit is not None and (drained or claimed >= limit)):
                return
            stop.wait(poll_s)
            continue
        ready, _ = ray.wait(list(driver.in_flight), num_returns=1, timeout=poll_s)
        for ref in ready:
            entry = driver.in_flight[ref]
            beats.remove(entry)
            outcome = driver.settle(ref)
            logger.info("%s: %s%s", entry.id, outcome.state,
                        f" ({outcome.reason})" if outcome.state is State.FAILED else "")
            report.add(outcome)

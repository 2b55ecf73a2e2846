"""`imibench queue status|run`: show the submission queue, or run a worker that scores it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.api.errors import ConfigError

if TYPE_CHECKING:
    from benchmark.submissions.queue import QueueEntry

DEFAULT_QUEUE = Path("submissions/queue")
DEFAULT_RESULTS = Path("results")
BACKENDS = ("local", "ray")
DEFAULT_GPUS_PER_TASK = 1.0  # keep in step with benchmark.distributed.ray_backend.run_ray_queue (not imported here)
DEFAULT_MAX_RETRIES = 2  # keep in step with benchmark.distributed.ray_backend.DEFAULT_MAX_RETRIES
COLUMNS = ("id", "name", "state", "created", "started", "finished", "attempts", "detail")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `queue` and its subcommands."""
    parser = commands.add_parser("queue", help="the submission queue: status, run a worker")
    sub = parser.add_subparsers(dest="queue_command", metavar="QUEUE_COMMAND", required=True)

    status = sub.add_parser("status", help="a table of the queue's entries, oldest first")
    status.add_argument("--queue", type=Path, default=DEFAULT_QUEUE, help=f"queue folder (default: {DEFAULT_QUEUE})")
    status.set_defaults(func=run_status)

    run = sub.add_parser("run", help="score PENDING entries (requeues entries of dead workers first)")
    run.add_argument("--queue", type=Path, default=DEFAULT_QUEUE, help=f"queue folder (default: {DEFAULT_QUEUE})")
    run.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                     help=f"where result files go, <id>.json (default: {DEFAULT_RESULTS})")
    run.add_argument("--proxy", type=Path, help="fitted proxy file for entries that name none (the benchmark's)")
    run.add_argument("--once", action="store_true", help="process at most one entry, then exit")
    run.add_argument("--max-jobs", type=int, help="exit after this many entries (default: run until Ctrl-C)")
    run.add_argument("--stale-after", type=float, metavar="S",
                     help="requeue RUNNING entries without a heartbeat for S seconds (default: 10 x --heartbeat, "
                          "i.e. 300); entries of dead workers on this host are requeued at start without waiting")
    run.add_argument("--work", type=Path, metavar="DIR",
                     help="work folders of the runs, <id>/attempt-N-CLAIM (default: RESULTS/.work)")
    run.add_argument("--heartbeat", type=float, default=30.0, metavar="S", help="heartbeat interval (default: 30)")
    run.add_argument("--poll", type=float, default=5.0, metavar="S", help="wait between polls when idle (default: 5)")
    run.add_argument("--max-attempts", type=int, default=3,
                     help="runs of an entry before a dead worker's entry is FAILED (default: 3)")
    ray_options = run.add_argument_group("distributed (see docs/ray.md)")
    ray_options.add_argument("--backend", choices=BACKENDS, default="local",
                             help="local: score in this process (default); ray: one Ray task per entry, in parallel")
    ray_options.add_argument("--address", metavar="ADDR",
                             help="Ray cluster to join: auto, HOST:6379 or ray://HOST:10001 (default: RAY_ADDRESS, "
                                  "else a `ray start` cluster on this machine, else a new local one); "
                                  "--backend ray only")
    ray_options.add_argument("--num-gpus-per-task", type=float, metavar="N",
                             help=f"GPUs per Ray task; 0 for CPU-only clusters (default: "
                                  f"{DEFAULT_GPUS_PER_TASK:g}); --backend ray only")
    ray_options.add_argument("--max-retries", type=int, metavar="N",
                             help=f"Ray re-runs of a task whose worker or node died, then FAILED (default: "
                                  f"{DEFAULT_MAX_RETRIES}); --backend ray only")
    run.set_defaults(func=run_worker_command)


def run_status(args: argparse.Namespace) -> int:
    """Print the queue as a table."""
    from benchmark.submissions.queue import SubmissionQueue

    queue = SubmissionQueue(args.queue)
    if not queue.exists():
        raise ConfigError(f"No queue at {args.queue}: submit a model with `imibench submit SPEC.yaml --queue "
                          f"{args.queue}` first, or pass the right --queue.")
    entries = queue.status()
    quarantined = queue.quarantined()
    if not entries:
        print(f"The queue {args.queue} is empty.")
    else:
        print(format_table(entries))
        counts = {state: sum(e.state == state for e in entries) for state in ("PENDING", "RUNNING", "FINISHED",
                                                                               "FAILED")}
        print("\n" + ", ".join(f"{n} {state}" for state, n in counts.items()))
    if quarantined:
        print(f"\n{len(quarantined)} unreadable request file(s) moved to {queue.root / 'quarantine'}:")
        for item in quarantined:
            print(f"  {item.name}: {_cut(item.reason, 200)}")
    return 0


def run_worker_command(args: argparse.Namespace) -> int:
    """Run a worker in this process, or (--backend ray) a driver that scores entries as Ray tasks."""
    common = {
        "results_dir": args.results, "once": args.once, "heartbeat_s": args.heartbeat, "poll_s": args.poll,
        "max_jobs": args.max_jobs, "stale_after_s": args.stale_after, "max_attempts": args.max_attempts,
        "proxy": args.proxy,
    }
    if args.backend == "ray":
        from benchmark.distributed import load_ray_backend

        report = load_ray_backend().run_ray_queue(args.queue, **common, **_ray_options(args))
    else:
        _refuse_ray_options(args)
        from benchmark.submissions.worker import run_worker

        report = run_worker(args.queue, **common, work_root=getattr(args, "work", None))
    print(f"Worker {report.worker}: {len(report.finished)} finished, {len(report.failed)} failed, "
          f"{len(report.requeued)} stale entries requeued.")
    for entry in report.failed:
        print(f"  FAILED {entry.id}: {entry.reason} (log: {entry.log_path})")
    return 0


def _ray_options(args: argparse.Namespace) -> dict[str, object]:
    gpus = DEFAULT_GPUS_PER_TASK if args.num_gpus_per_task is None else args.num_gpus_per_task
    retries = DEFAULT_MAX_RETRIES if args.max_retries is None else args.max_retries
    return {"address": args.address, "num_gpus_per_task": gpus, "max_retries": retries}


def _refuse_ray_options(args: argparse.Namespace) -> None:
    given = [flag for flag, value in (("--address", args.address), ("--num-gpus-per-task", args.num_gpus_per_task),
                                      ("--max-retries", args.max_retries)) if value is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} only apply to --backend ray, but the backend is {args.backend}; add "
                          "--backend ray or drop them.")


def format_table(entries: list[QueueEntry]) -> str:
    """A plain-text table of entries, one row each."""
    rows = [COLUMNS, *(_row(e) for e in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _row(entry: QueueEntry) -> tuple[str, ...]:
    return (entry.id, _cut(entry.name, 30), str(entry.state), _time(entry.created_at), _time(entry.started_at),
            _time(entry.finished_at), str(entry.attempts), _detail(entry))


def _detail(entry: QueueEntry) -> str:
    if entry.state == "FAILED":
        return f"{entry.reason} (log: {entry.log_path or 'none'})"
    if entry.state == "FINISHED":
        return f"result: {entry.result_path}"
    if entry.state == "RUNNING":
        return f"worker {entry.worker}, heartbeat {_ago(entry.heartbeat_at)}"
    return entry.notes[-1] if entry.notes else ""


def _time(stamp: str | None) -> str:
    return stamp[:19].replace("T", " ") if stamp else "-"


def _ago(stamp: str | None) -> str:
    if stamp is None:
        return "none yet"
    return f"{(datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds():.0f} s ago"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

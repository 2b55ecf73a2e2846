"""The Ray backend on a local 2-CPU Ray cluster: sharded pass == single pass, queue over Ray == local, recovery."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from benchmark.activations.collect import collect_extremes, layer_selections
from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.cli import queue as queue_cli
from benchmark.cli.main import main
from benchmark.distributed import ray_backend as rb
from benchmark.distributed.sharding import ShardState, SpecShardJob
from benchmark.models.adapters import load_model
from benchmark.results.io import read_result
from benchmark.scoring.pipeline import score_submission
from benchmark.scoring.spec import model_spec_of, parse_spec
from benchmark.scoring.units import choose_units
from benchmark.stimuli.sources import make_loader, parse_image_source
from benchmark.submissions.queue import State, SubmissionQueue
from tests.distributed import (
    REPO_ROOT,
    TieJob,
    assert_same_sets,
    counting_score,
    crash_once_score,
    crashing_score,
    killed_once_score,
    raising_score,
    slow_counting_score,
)
from tests.fast_spec import FAST_SPEC
from tests.submissions import fake_score, make_spec


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    """One local Ray cluster (2 CPUs, no dashboard) for the whole module; tasks import tests.* from the repo."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}})
    yield
    ray.shutdown()


# ------------------------------------------------------------------------------------------ sharded pass


@pytest.mark.parametrize("n_shards", [1, 2, 3, 5])
def test_sharded_collect_equals_the_single_pass_with_ties(n_shards):
    job = TieJob(n_images=37, k=6, batch_size=4)
    got = rb.sharded_collect(job, n_shards=n_shards, num_gpus_per_task=0, align=1)
    assert_same_sets(got, job.single_pass())


@pytest.fixture(scope="module")
def timm_job():
    spec = parse_spec({**FAST_SPEC, "images": "bundled:24", "batch_size": 8, "proxy": "unused.json"})
    loaded = load_model(model_spec_of(spec))
    source = parse_image_source(spec.images)
    units, layers = choose_units(loaded, spec.units)
    job = SpecShardJob.from_pass(loaded, source, units, layers, spec, k=5, work_dir=None)
    single = collect_extremes(loaded.module, layer_selections(units, layers),
                              make_loader(source, loaded.transform, batch_size=8), k=5, progress=False)
    return job, single


@pytest.mark.parametrize(("n_shards", "align"), [(2, None), (3, 1)])
def test_sharded_collect_of_a_timm_model_equals_the_single_pass(timm_job, n_shards, align):
    job, single = timm_job
    assert_same_sets(rb.sharded_collect(job, n_shards=n_shards, num_gpus_per_task=0, align=align), single)


def test_a_shard_error_propagates_with_its_type(timm_job):
    job, _ = timm_job
    wrong = SpecShardJob(**{**job.__dict__, "weights_digest": "0" * 64})
    with pytest.raises(DataValidationError, match="other weights") as caught:
        rb.sharded_collect(wrong, n_shards=2, num_gpus_per_task=0)
    assert any("failed (max_retries=2)" in note for note in getattr(caught.value, "__notes__", []))


@dataclass(frozen=True)
class _CrashOnceJob(TieJob):
    marker: str = ""

    def run(self, shard: range) -> ShardState:
        if shard.start == 0 and not Path(self.marker).exists():
            Path(self.marker).write_text("crashed")
            os._exit(1)  # the task's worker dies; Ray re-runs the shard
        return super().run(shard)


def test_a_shard_whose_worker_dies_is_rerun_and_the_result_is_exact(tmp_path):
    job = _CrashOnceJob(n_images=37, k=6, batch_size=4, marker=str(tmp_path / "crashed"))
    got = rb.sharded_collect(job, n_shards=3, num_gpus_per_task=0, max_retries=1)
    assert (tmp_path / "crashed").exists()
    assert_same_sets(got, TieJob(n_images=37, k=6, batch_size=4).single_pass())


def test_ray_activation_pass_scores_like_the_local_pass(tmp_path, fitted_proxy):
    spec = {**FAST_SPEC, "images": "bundled:50", "proxy": str(fitted_proxy)}
    local = read_result(score_submission(parse_spec({**spec, "out": str(tmp_path / "local.json")}), progress=False))
    sharded_pass = rb.RayActivationPass(n_shards=2, num_gpus_per_task=0)
    sharded = read_result(score_submission(parse_spec({**spec, "out": str(tmp_path / "ray.json")}),
                                           progress=False, activation_pass=sharded_pass))
    assert sharded.scores == local.scores
    assert sorted(p.name for p in (tmp_path / ".ray.work" / "shards").iterdir()) == [
        "activations.0-32.ckpt", "activations.32-50.ckpt"]  # per-shard checkpoints, aligned to batch_size 16


def test_ray_activation_pass_refuses_gpu_tasks_for_a_cpu_driver(timm_job):
    job, _ = timm_job
    loaded = load_model(model_spec_of(job.spec))
    with pytest.raises(ConfigError, match="driver's kind of device"):
        rb.RayActivationPass(num_gpus_per_task=1)(loaded, None, [], [], job.spec, k=5, work_dir=Path("unused"),
                                                  progress=False)


def test_task_slots_and_an_impossible_gpu_request():
    assert rb.task_slots(0, 1) == 2 and rb.task_slots(0, 0.5) == 4
    with pytest.raises(ConfigError, match="0 GPU.*--num-gpus-per-task 0"):
        rb.task_slots(1)
    with pytest.raises(ConfigError, match="max_retries"):
        rb.sharded_collect(TieJob(n_images=4, k=1), n_shards=1, num_gpus_per_task=0, max_retries=-1)


# ------------------------------------------------------------------------------------------------ queue


def _add(queue: SubmissionQueue, name: str, **fields):
    return queue.enqueue(make_spec(name=name, **fields), key=f"timm:{name}@random-init")


def _runs(results: Path, entry) -> list[str]:
    path = results / f"{entry.id}.runs"
    return path.read_text().split() if path.exists() else []


def _ray_queue(queue, results, **kwargs):
    options = {"num_gpus_per_task": 0, "heartbeat_s": 0.2, "poll_s": 0.05, "proxy": "p.json", "once": False,
               "max_jobs": 100, **kwargs}
    return rb.run_ray_queue(queue, results_dir=results, **options)


def test_queue_over_ray_scores_like_the_local_backend(tmp_path, fitted_proxy, capsys):
    fields = {"model": FAST_SPEC["model"], "images": "bundled:50", "units": FAST_SPEC["units"],
              "protocol": FAST_SPEC["protocol"], "batch_size": 16, "device": "cpu"}
    results = {}
    for backend in ("local", "ray"):
        queue = SubmissionQueue(tmp_path / backend / "queue")
        entry = queue.enqueue(make_spec(name="tiny", **fields), key="timm:test_resnet@random-init")
        extra = ["--backend", "ray", "--num-gpus-per-task", "0", "--max-retries", "1"] if backend == "ray" else []
        code = main(["queue", "run", "--queue", str(queue.root), "--results", str(tmp_path / backend / "results"),
                     "--proxy", str(fitted_proxy), "--once", "--heartbeat", "0.5", *extra])
        assert code == 0, capsys.readouterr().err
        done = queue.get(entry.id)
        assert done.state is State.FINISHED and done.attempts == 1
        results[backend] = read_result(done.result_path)
    assert results["ray"].scores == results["local"].scores
    assert results["ray"].submission.spec["metadata"]["name"] == "tiny"


def test_every_entry_is_scored_exactly_once_by_two_drivers(tmp_path):
    queue, results = SubmissionQueue(tmp_path / "q"), tmp_path / "results"
    entries = [_add(queue, f"model{i}") for i in range(5)]
    reports = []
    drivers = [threading.Thread(target=lambda: reports.append(_ray_queue(queue, results, score_fn=counting_score,
                                                                         max_in_flight=1)))
               for _ in range(2)]
    for driver in drivers:
        driver.start()
    for driver in drivers:
        driver.join(120)
    assert len(reports) == 2
    finished = sorted(e.id for report in reports for e in report.finished)
    assert finished == sorted(e.id for e in entries)  # every entry once, none by both drivers
    for entry in entries:
        done = queue.get(entry.id)
        assert done.state is State.FINISHED and done.attempts == 1 and len(_runs(results, entry)) == 1
        assert read_result(done.result_path).submission.spec["metadata"]["queue_id"] == entry.id


def test_a_scoring_error_fails_the_entry_without_retry(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    entry = _add(queue, "broken")
    report = _ray_queue(queue, tmp_path / "results", score_fn=raising_score)
    (failed,) = report.failed
    assert failed.id == entry.id and failed.state is State.FAILED
    assert failed.reason == "DataValidationError: no usable activations for timm:resnet18"
    log = Path(failed.log_path).read_text()
    assert rb.runs_logged(Path(failed.log_path), failed.claim_id) == 1 and "Traceback" in log


def test_a_task_that_always_dies_ends_failed_after_bounded_retries_and_loses_nothing(tmp_path):
    queue, results = SubmissionQueue(tmp_path / "q"), tmp_path / "results"
    first = _add(queue, "first")
    _ray_queue(queue, results, score_fn=fake_score)
    first_bytes = (results / f"{first.id}.json").read_bytes()
    victim = _add(queue, "victim")
    report = _ray_queue(queue, results, score_fn=crashing_score, max_retries=1)
    (failed,) = report.failed
    assert failed.id == victim.id and queue.get(victim.id).state is State.FAILED and failed.attempts == 1
    assert "Ray task died on each of its 2 logged run(s) (max_retries=1)" in failed.reason
    assert "WorkerCrashedError" in failed.reason
    log = Path(failed.log_path).read_text()
    assert log.count("about to crash") == 2 and "FAILED" in log
    assert queue.get(first.id).state is State.FINISHED
    assert (results / f"{first.id}.json").read_bytes() == first_bytes
    assert not (results / f"{victim.id}.json").exists() and not list(tmp_path.rglob("*.tmp"))


def test_a_task_that_dies_once_is_rerun_by_ray_and_finishes(tmp_path):
    queue, results = SubmissionQueue(tmp_path / "q"), tmp_path / "results"
    entry = _add(queue, "flaky")
    report = _ray_queue(queue, results, score_fn=crash_once_score, max_retries=2)
    (done,) = report.finished
    assert done.id == entry.id and done.attempts == 1 and read_result(done.result_path)
    assert rb.runs_logged(queue.log_path(entry.id), done.claim_id) == 2  # the retry is recorded in the log


def test_a_worker_killed_from_outside_is_rerun(tmp_path):
    queue, results = SubmissionQueue(tmp_path / "q"), tmp_path / "results"
    entry = _add(queue, "killed")
    pid_file = results / f"{entry.id}.pid"
    killed = []

    def kill_when_running():
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        killed.append(int(pid_file.read_text()))

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    report = _ray_queue(queue, results, score_fn=killed_once_score, max_retries=1)
    killer.join(5)
    (done,) = report.finished
    assert killed and done.id == entry.id and queue.get(entry.id).state is State.FINISHED
    assert rb.runs_logged(queue.log_path(entry.id), done.claim_id) == 2


def test_stop_lets_running_tasks_finish_and_the_driver_beats_for_them(tmp_path):
    queue, results = SubmissionQueue(tmp_path / "q"), tmp_path / "results"
    first, second = _add(queue, "first"), _add(queue, "second")
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    report = _ray_queue(queue, results, score_fn=slow_counting_score, max_in_flight=1, max_jobs=None, stop=stop)
    assert [e.id for e in report.finished] == [first.id]
    done = queue.get(first.id)
    assert done.heartbeat_at > done.started_at  # the driver sent heartbeats while the task ran
    assert queue.get(second.id).state is State.PENDING


def test_an_interrupted_driver_hands_its_entries_back(tmp_path, monkeypatch):
    queue = SubmissionQueue(tmp_path / "q")
    entry = _add(queue, "interrupted")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rb.ray, "wait", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _ray_queue(queue, tmp_path / "results", score_fn=slow_counting_score)
    back = queue.get(entry.id)
    assert back.state is State.PENDING and back.attempts == 1 and "interrupted" in back.notes[-1]


def test_cli_refuses_a_gpu_task_on_a_cpu_cluster(tmp_path, capsys):
    queue = SubmissionQueue(tmp_path / "q")
    _add(queue, "gpu")
    assert main(["queue", "run", "--backend", "ray", "--queue", str(queue.root), "--once"]) == 2
    assert "--num-gpus-per-task 0" in capsys.readouterr().err
    assert queue_cli.DEFAULT_MAX_RETRIES == rb.DEFAULT_MAX_RETRIES

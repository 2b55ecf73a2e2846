import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from benchmark.api.errors import ConfigError
from benchmark.results.io import read_result
from benchmark.submissions.queue import State, SubmissionQueue
from benchmark.submissions.worker import run_worker
from tests.submissions import failing_score, fake_score, make_spec, slow_score

CTX = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")


def add(queue: SubmissionQueue, name: str, **fields):
    return queue.enqueue(make_spec(name=name, **fields), key=f"timm:{name}@random-init")


def test_success_writes_result_with_metadata_and_log(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    entry = add(queue, "ok", proxy=str(tmp_path / "proxy.json"))
    report = run_worker(queue, results_dir=tmp_path / "results", once=True, score_fn=fake_score, heartbeat_s=0.05)
    (done,) = report.finished
    assert done.state is State.FINISHED and queue.get(entry.id) == done
    assert Path(done.result_path) == (tmp_path / "results" / f"{entry.id}.json").resolve()
    meta = read_result(done.result_path).submission.spec["metadata"]
    assert meta == {"name": "ok", "family": "ResNet", "imagenet_top1": 12.5, "queue_id": entry.id, "key": entry.key}
    log = queue.log_path(entry.id).read_text()
    assert "scoring timm:resnet18" in log and "fake scorer progress on stderr" in log and "FINISHED" in log
    assert str(tmp_path / "proxy.json") in log  # the score spec is logged


def test_failure_is_recorded_and_the_worker_continues(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    bad, good = add(queue, "bad"), add(queue, "good")
    calls = []

    def score(spec):
        calls.append(spec.model)
        return failing_score(spec) if len(calls) == 1 else fake_score(spec)

    report = run_worker(queue, results_dir=tmp_path / "r", max_jobs=5, score_fn=score, proxy="p.json", poll_s=0.01)
    (failed,), (finished,) = report.failed, report.finished
    assert failed.id == bad.id and finished.id == good.id
    assert failed.reason == "ValueError: boom: no activations for timm:resnet18"
    log = Path(failed.log_path).read_text()
    assert "about to fail" in log and "Traceback" in log and "ValueError: boom" in log
    assert queue.get(bad.id).state is State.FAILED and queue.get(good.id).state is State.FINISHED


def test_invalid_result_and_missing_proxy_fail_with_reasons(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    add(queue, "junk")
    add(queue, "noproxy")

    def junk(spec):
        Path(spec.out).parent.mkdir(parents=True, exist_ok=True)
        Path(spec.out).write_text("{}")
        return spec.out

    report = run_worker(queue, results_dir=tmp_path / "r", once=True, score_fn=junk, proxy="p.json")
    assert "DataValidationError" in report.failed[0].reason and "schema version" in report.failed[0].reason
    report = run_worker(queue, results_dir=tmp_path / "r", once=True, score_fn=fake_score)
    assert report.failed[0].reason.startswith("ConfigError: Submission 'noproxy' names no proxy")


def test_once_processes_one_entry_and_an_empty_queue_returns(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    add(queue, "a")
    add(queue, "b")
    report = run_worker(queue, results_dir=tmp_path / "r", once=True, score_fn=fake_score, proxy="p.json")
    assert len(report.finished) == 1 and len(queue.entries(State.PENDING)) == 1
    run_worker(queue, results_dir=tmp_path / "r", once=True, score_fn=fake_score, proxy="p.json")
    assert run_worker(queue, results_dir=tmp_path / "r", once=True, score_fn=fake_score).n_jobs == 0


def test_a_claim_taken_over_meanwhile_is_not_overwritten(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    entry = add(queue, "slowpoke")

    def hung(spec):  # no heartbeat arrives (heartbeat_s is long): another worker requeues the entry meanwhile
        time.sleep(0.3)
        queue.requeue_stale(0.2)
        return fake_score(spec)

    report = run_worker(queue, results_dir=tmp_path / "r", once=True, score_fn=hung, proxy="p.json",
                        heartbeat_s=60, stale_after_s=120)
    assert [e.id for e in report.lost] == [entry.id]
    assert queue.get(entry.id).state is State.PENDING


def test_interrupt_hands_the_entry_back(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    entry = add(queue, "ctrl-c")

    def interrupted(spec):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_worker(queue, results_dir=tmp_path / "r", once=True, score_fn=interrupted, proxy="p.json")
    back = queue.get(entry.id)
    assert back.state is State.PENDING and back.attempts == 1 and "interrupted" in back.notes[-1]


def test_bad_worker_arguments(tmp_path):
    with pytest.raises(ConfigError, match="must exceed heartbeat_s"):
        run_worker(tmp_path, once=True, heartbeat_s=10, stale_after_s=5)
    with pytest.raises(ConfigError, match="max_jobs"):
        run_worker(tmp_path, max_jobs=0)
    with pytest.raises(ConfigError, match="No queue at"):
        run_worker(tmp_path / "typo", once=True)


def _worker_process(root: str, results: str) -> None:
    run_worker(root, results_dir=results, once=True, score_fn=slow_score, proxy="p.json", heartbeat_s=0.05)


def _beating(entry) -> bool:
    return entry.state is State.RUNNING and entry.heartbeat_at is not None and entry.heartbeat_at > entry.started_at


def test_worker_killed_mid_run_loses_nothing_and_its_entry_is_requeued(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    results = tmp_path / "results"
    first = add(queue, "first")
    run_worker(queue, results_dir=results, once=True, score_fn=fake_score, proxy="p.json")
    first_bytes = (results / f"{first.id}.json").read_bytes()
    victim = add(queue, "victim")

    proc = CTX.Process(target=_worker_process, args=(str(queue.root), str(results)))
    proc.start()
    deadline = time.monotonic() + 30
    while not _beating(queue.get(victim.id)) or not queue.log_path(victim.id).exists():
        assert time.monotonic() < deadline, "the worker never claimed the entry or sent no heartbeat"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL

    running = queue.get(victim.id)
    assert _beating(running)  # it was mid-run, heartbeats flowing, when it died
    assert queue.requeue_stale(30) == []  # still within the stale window
    time.sleep(0.3)
    (requeued,) = queue.requeue_stale(0.25)
    assert requeued.id == victim.id and requeued.state is State.PENDING and requeued.attempts == 1
    assert "sent no heartbeat" in requeued.notes[-1]
    assert not list(queue.root.rglob("*.tmp"))  # a heartbeat write cut by the kill leaves no litter
    # nothing else lost: the finished entry and its result are intact, no half-written files
    assert queue.get(first.id).state is State.FINISHED
    assert (results / f"{first.id}.json").read_bytes() == first_bytes
    assert not list(tmp_path.rglob("*.tmp")) and not (results / f"{victim.id}.json").exists()
    # and a new worker picks it up again
    report = run_worker(queue, results_dir=results, once=True, score_fn=fake_score, proxy="p.json")
    assert report.finished[0].id == victim.id and report.finished[0].attempts == 2

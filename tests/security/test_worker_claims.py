"""A submission cannot choose where the worker writes, and a worker that hung, died or raced never loses or
duplicates a result. (Concurrent claims and killed workers: also tests/submissions/test_queue.py and
test_worker.py.)"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from benchmark.api.errors import ConfigError
from benchmark.results.io import read_result
from benchmark.submissions.queue import ClaimLostError, State, SubmissionQueue
from benchmark.submissions.spec import SubmissionSpec, load_submission
from benchmark.submissions.worker import capture_output, run_worker
from tests.submissions import fake_score, make_spec

BASE = {"model": "timm:resnet18", "pretrained": False, "submitter": "eve"}


@pytest.mark.parametrize("field, value", [("out", "../../../x.json"), ("out", "/tmp/evil.json"),
                                          ("work_dir", "/etc/cron.d"), ("work_dir", "../../w")])
def test_submitted_output_and_work_paths_are_refused(tmp_path, field, value):
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps({**BASE, field: value}))
    with pytest.raises(ConfigError, match=f"`{field}` may not be set by a submission"):
        load_submission(path)
    with pytest.raises(ValueError, match="may not be set by a submission"):
        SubmissionSpec(**{**BASE, field: value})


def test_worker_chooses_result_and_work_paths_by_queue_id(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    entry = queue.enqueue(make_spec(), key="k")
    seen = []

    def score(spec):
        seen.append((spec.out, spec.work_dir))
        return fake_score(spec)

    (done,) = run_worker(queue, results_dir=tmp_path / "results", once=True, score_fn=score, proxy="p.json").finished
    out, work_dir = seen[0]
    results = (tmp_path / "results").resolve()
    assert Path(done.result_path) == results / f"{entry.id}.json" and read_result(done.result_path)
    assert out.parent == results and out.name.startswith(f".{entry.id}.json.") and out.suffix == ".staging"
    assert work_dir.parent == results / ".work" / entry.id and work_dir.name.startswith("attempt-1-")
    assert sorted(p.name for p in results.iterdir()) == [".work", f"{entry.id}.json"]  # no staging file left


def test_hung_worker_that_wakes_up_after_requeue_neither_fails_nor_duplicates_the_entry(tmp_path):
    """The red-team case: worker A hangs past the stale timeout, B takes the entry over and finishes; A wakes up."""
    queue = SubmissionQueue(tmp_path / "q")
    entry = queue.enqueue(make_spec(), key="k")
    results = tmp_path / "results"
    a_started, a_resume = threading.Event(), threading.Event()
    work_dirs, stages_after_wake = [], []

    def hanging_score(spec, before_stage):
        work_dirs.append(spec.work_dir)
        a_started.set()
        a_resume.wait(30)  # "hung": no stage boundary, heartbeats stopped below
        try:
            before_stage("activation pass")  # the first stage boundary after waking up
        except ClaimLostError:
            stages_after_wake.append("stopped")
            raise
        return fake_score(spec)

    def honest_score(spec):
        work_dirs.append(spec.work_dir)
        return fake_score(spec)

    a = threading.Thread(target=lambda: run_worker(queue, results_dir=results, once=True, score_fn=hanging_score,
                                                   proxy="p.json", heartbeat_s=3600))
    a.start()
    assert a_started.wait(30)
    (requeued,) = queue.requeue_stale(1e-6)  # A looked dead: its heartbeat is older than the stale timeout
    assert requeued.state is State.PENDING
    b = run_worker(queue, results_dir=results, once=True, score_fn=honest_score, proxy="p.json")
    (finished,) = b.finished
    published = Path(finished.result_path).read_bytes()
    a_resume.set()
    a.join(30)
    assert stages_after_wake == ["stopped"]
    final = queue.get(entry.id)
    assert final.state is State.FINISHED and final.claim_id == finished.claim_id  # not FAILED by A
    assert Path(final.result_path).read_bytes() == published  # A wrote nothing over B's result
    assert sorted(p.name for p in results.iterdir()) == [".work", f"{entry.id}.json"]
    assert work_dirs[0] != work_dirs[1]  # each attempt had its own work folder
    assert "STOPPED" in queue.log_path(entry.id).read_text()


def test_claim_lost_after_scoring_publishes_nothing(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    entry = queue.enqueue(make_spec(), key="k")
    results = tmp_path / "results"

    def score_then_lose_claim(spec):
        path = fake_score(spec)
        queue.requeue_stale(1e-6)  # presumed dead while it wrote its staged result
        return path

    report = run_worker(queue, results_dir=results, once=True, score_fn=score_then_lose_claim, proxy="p.json")
    assert report.finished == [] and report.failed == [] and len(report.lost) == 1
    assert queue.get(entry.id).state is State.PENDING
    assert sorted(p.name for p in results.iterdir()) == [".work"]  # neither a result nor a staging file


def test_new_attempt_resumes_from_the_previous_attempts_checkpoint(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    entry = queue.enqueue(make_spec(), key="k")
    old = tmp_path / "results" / ".work" / entry.id / "attempt-1-dead"
    old.mkdir(parents=True)
    (old / "activations.ckpt").write_bytes(b"checkpoint of attempt 1")
    (old / "wall_time.json").write_text('{"attempts": [{"elapsed_s": 12.5}]}')
    seen = []

    def score(spec):
        seen.append({p.name: p.read_bytes() for p in spec.work_dir.iterdir()})
        return fake_score(spec)

    run_worker(queue, results_dir=tmp_path / "results", once=True, score_fn=score, proxy="p.json")
    assert seen == [{"activations.ckpt": b"checkpoint of attempt 1",
                     "wall_time.json": b'{"attempts": [{"elapsed_s": 12.5}]}'}]
    assert (old / "activations.ckpt").read_bytes() == b"checkpoint of attempt 1"  # copied, not shared


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_restarted_once_worker_requeues_its_dead_predecessors_entry_at_start(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    entry = queue.enqueue(make_spec(), key="k")
    claimed = queue.claim(f"{socket.gethostname()}:{dead_pid()}")  # claimed by a worker that was then killed
    assert claimed.state is State.RUNNING
    report = run_worker(queue, results_dir=tmp_path / "r", once=True, score_fn=fake_score, proxy="p.json")
    assert [e.id for e in report.requeued] == [entry.id] and [e.id for e in report.finished] == [entry.id]
    assert "whose process is gone" in queue.get(entry.id).notes[-1]
    # a live worker's entry (this process) and another host's are left alone
    other = queue.enqueue(make_spec("timm:resnet34"), key="k2")
    queue.claim(f"{socket.gethostname()}:{os.getpid()}")
    queue.enqueue(make_spec("timm:resnet50"), key="k3")
    queue.claim(f"some-other-host:{dead_pid()}")
    assert queue.requeue_dead_local() == [] and queue.get(other.id).state is State.RUNNING


def test_result_files_are_never_duplicated_under_concurrent_workers(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    ids = {queue.enqueue(make_spec(f"timm:resnet{n}"), key=f"k{n}").id for n in (18, 34, 50, 101)}
    threads = [threading.Thread(target=run_worker, args=(queue,), kwargs={
        "results_dir": tmp_path / "r", "max_jobs": 4, "score_fn": fake_score, "proxy": "p.json", "poll_s": 0.01})
        for _ in range(3)]
    streams = (sys.stdout, sys.stderr)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert {e.id: e.state for e in queue.entries()} == dict.fromkeys(ids, State.FINISHED)
    assert sorted(p.name for p in (tmp_path / "r").glob("*.json")) == sorted(f"{i}.json" for i in ids)
    assert not list((tmp_path / "r").glob(".*.staging"))
    assert (sys.stdout, sys.stderr) == streams  # no worker left the process writing into a (closed) entry log
    for entry in queue.entries():  # each log holds its own run's output, none of another worker's
        scored = re.findall(r"scoring (timm:resnet\d+)", queue.log_path(entry.id).read_text())
        assert scored == [entry.spec.model]


def test_concurrent_output_captures_ending_out_of_order_keep_each_threads_output_in_its_own_log(tmp_path):
    """Two workers' captures overlapping, the first ending first: the second's output must still reach its own
    log (process-wide redirection left it writing into the first's closed log) and the streams come back."""
    streams = (sys.stdout, sys.stderr)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def worker(name, entered, wait_for, exited=None):
        try:
            with (tmp_path / f"{name}.log").open("a") as log, capture_output(log):
                entered.set()
                assert wait_for.wait(30)
                print(f"{name} on stdout")
                print(f"{name} on stderr", file=sys.stderr)
                logging.getLogger("benchmark.test").warning("%s logged", name)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
        finally:
            if exited is not None:
                exited.set()

    a = threading.Thread(target=worker, args=("a", a_in, b_in, a_out))
    b = threading.Thread(target=worker, args=("b", b_in, a_out))
    a.start()
    assert a_in.wait(30)
    b.start()
    a.join(30)
    b.join(30)
    assert errors == []
    for name, other in (("a", "b"), ("b", "a")):
        text = (tmp_path / f"{name}.log").read_text()
        assert f"{name} on stdout" in text and f"{name} on stderr" in text and f"{name} logged" in text
        assert f"{other} on" not in text and f"{other} logged" not in text
    assert (sys.stdout, sys.stderr) == streams


def test_real_scoring_run_by_the_worker_leaves_only_its_result_and_work_folder(tmp_path, fitted_proxy):
    from tests.fast_spec import FAST_SPEC

    queue = SubmissionQueue(tmp_path / "q")
    fields = {k: v for k, v in FAST_SPEC.items() if k not in ("device",)}
    entry = queue.enqueue(make_spec(**fields), key="k")
    report = run_worker(queue, results_dir=tmp_path / "results", once=True, proxy=str(fitted_proxy))
    (done,) = report.finished
    results = tmp_path / "results"
    assert sorted(p.name for p in results.iterdir()) == [".work", f"{entry.id}.json"]  # no lock, staging or tmp
    result = read_result(done.result_path)
    stimuli = results / result.protocol.image_source.stimuli_dir
    assert stimuli.is_dir() and stimuli.is_relative_to(results / ".work" / entry.id)
    assert not list(results.rglob("*.lock")) and not list(results.rglob("*.staging"))
    assert result.provenance.wall_time_s > 0
    assert "out" not in result.submission.spec and "work_dir" not in result.submission.spec  # no worker paths

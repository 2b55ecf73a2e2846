import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.submissions.queue import QueueStateError, State, SubmissionQueue
from tests.submissions import make_spec

CTX = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")


def enqueue(queue: SubmissionQueue, n: int = 1):
    return [queue.enqueue(make_spec(name=f"model {i}"), key=f"timm:m{i}@random-init") for i in range(n)]


def files(queue: SubmissionQueue) -> dict[str, list[str]]:
    return {s.folder: sorted(p.name for p in (queue.root / s.folder).glob("*.json")) for s in State}


def test_lifecycle_moves_one_file_between_state_folders(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    assert queue.status() == [] and not queue.exists()
    (entry,) = enqueue(queue)
    assert entry.state is State.PENDING and entry.attempts == 0 and entry.created_at
    assert files(queue)["pending"] == [f"{entry.id}.json"]

    running = queue.claim("host:1")
    assert running.id == entry.id and running.state is State.RUNNING
    assert running.worker == "host:1" and running.attempts == 1 and running.heartbeat_at and running.started_at
    assert files(queue) == {"pending": [], "running": [f"{entry.id}.json"], "finished": [], "failed": []}
    assert queue.claim() is None

    beat = queue.heartbeat(running)
    assert beat.heartbeat_at >= running.heartbeat_at
    done = queue.finish(running, tmp_path / "r.json")
    assert done.state is State.FINISHED and done.result_path == str(tmp_path / "r.json") and done.finished_at
    assert files(queue)["finished"] == [f"{entry.id}.json"] and sum(map(len, files(queue).values())) == 1
    on_disk = json.loads(queue.file_path(State.FINISHED, entry.id).read_text())
    assert on_disk["state"] == "FINISHED" and on_disk["spec"]["model"] == "timm:resnet18"
    assert queue.get(entry.id) == done
    assert not list(queue.root.rglob("*.tmp"))


def test_fail_records_reason_and_log(tmp_path):
    queue = SubmissionQueue(tmp_path)
    enqueue(queue)
    entry = queue.fail(queue.claim(), "ValueError: boom\n  second line", log_path=tmp_path / "x.log")
    assert entry.state is State.FAILED and entry.reason == "ValueError: boom second line"
    assert entry.log_path == str(tmp_path / "x.log")


def test_invalid_transitions_raise(tmp_path):
    queue = SubmissionQueue(tmp_path)
    (pending,) = enqueue(queue)
    with pytest.raises(QueueStateError, match="it is PENDING, not RUNNING"):
        queue.finish(pending, "r.json")
    with pytest.raises(QueueStateError, match="PENDING"):
        queue.heartbeat(pending)
    running = queue.claim()
    finished = queue.finish(running, "r.json")
    for action in (lambda: queue.fail(running, "late"), lambda: queue.finish(running, "again"),
                   lambda: queue.release(running, "no"), lambda: queue.heartbeat(running)):
        with pytest.raises(QueueStateError, match="FINISHED"):
            action()
    assert queue.get(finished.id).state is State.FINISHED
    with pytest.raises(ConfigError, match="No submission 'nope'"):
        queue.get("nope")


def test_a_stale_claim_cannot_write_back(tmp_path):
    queue = SubmissionQueue(tmp_path)
    enqueue(queue)
    first = queue.claim("a:1")
    queue.release(first, "handed back")
    second = queue.claim("b:2")
    with pytest.raises(QueueStateError, match="claimed by b:2"):
        queue.finish(first, "r.json")
    assert queue.finish(second, "r.json").state is State.FINISHED


def test_claims_oldest_first(tmp_path):
    queue = SubmissionQueue(tmp_path)
    ids = [e.id for e in enqueue(queue, 4)]
    assert [queue.claim().id for _ in range(4)] == ids


def test_duplicate_key_refused_unless_failed(tmp_path):
    queue = SubmissionQueue(tmp_path)
    (entry,) = enqueue(queue)
    with pytest.raises(DataValidationError, match=f"already PENDING in the queue as {entry.id}"):
        queue.enqueue(make_spec(), key=entry.key)
    queue.fail(queue.claim(), "broken")
    again = queue.enqueue(make_spec(), key=entry.key)
    assert again.id != entry.id and queue.find_key(entry.key) == [again]
    assert len(queue.find_key(entry.key, include_failed=True)) == 2


def test_requeue_stale_then_fail_after_max_attempts(tmp_path):
    queue = SubmissionQueue(tmp_path)
    (entry,) = enqueue(queue)
    for attempt in (1, 2):
        running = queue.claim("dead:1")
        assert running.attempts == attempt
        assert queue.requeue_stale(30) == []  # fresh heartbeat: left alone
        time.sleep(0.15)
        (requeued,) = queue.requeue_stale(0.1, max_attempts=3)
        assert requeued.state is State.PENDING and requeued.attempts == attempt and requeued.worker is None
        assert "dead:1 sent no heartbeat" in requeued.notes[-1] and f"attempt {attempt} of 3" in requeued.notes[-1]
    queue.claim("dead:1")
    time.sleep(0.15)
    (failed,) = queue.requeue_stale(0.1, max_attempts=3)
    assert failed.state is State.FAILED and "gave up after 3 attempts" in failed.reason
    assert queue.get(entry.id).state is State.FAILED and len(failed.notes) == 3


def test_claim_caught_between_rename_and_rewrite_reads_running_and_is_requeued(tmp_path):
    queue = SubmissionQueue(tmp_path)
    (entry,) = enqueue(queue)
    os.rename(queue.file_path(State.PENDING, entry.id), queue.file_path(State.RUNNING, entry.id))
    assert queue.get(entry.id).state is State.RUNNING  # the folder is authoritative
    time.sleep(0.15)
    (requeued,) = queue.requeue_stale(0.1)
    assert requeued.state is State.PENDING and files(queue)["pending"] == [f"{entry.id}.json"]


def test_bad_arguments_and_corrupt_files(tmp_path):
    queue = SubmissionQueue(tmp_path)
    with pytest.raises(ConfigError, match="max_age_s > 0"):
        queue.requeue_stale(0)
    (entry,) = enqueue(queue)
    queue.file_path(State.PENDING, entry.id).write_text("{broken")
    assert queue.status() == []  # the corrupt file is quarantined, not fatal (tests/security has the details)
    (bad,) = queue.quarantined()
    assert "not valid JSON" in bad.reason
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        SubmissionQueue(tmp_path / "file")


def _claim_all(root: str, out: str, barrier) -> None:
    queue = SubmissionQueue(root)
    barrier.wait()
    claimed = []
    while (entry := queue.claim(f"w:{os.getpid()}")) is not None:
        claimed.append(entry.id)
        time.sleep(0.002)  # let the others in: every claim is a race
    Path(out).write_text("\n".join(claimed))


def test_concurrent_processes_claim_each_entry_exactly_once(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    ids = {e.id for e in enqueue(queue, 60)}
    n_workers = 4
    barrier = CTX.Barrier(n_workers)
    outs = [tmp_path / f"claims-{i}.txt" for i in range(n_workers)]
    procs = [CTX.Process(target=_claim_all, args=(str(queue.root), str(out), barrier)) for out in outs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    claims = [line for out in outs for line in out.read_text().splitlines() if line]
    assert sorted(claims) == sorted(ids)  # every entry claimed, none twice
    assert len({e.worker for e in queue.entries(State.RUNNING)}) > 1  # the processes did race
    assert files(queue)["pending"] == [] and len(files(queue)["running"]) == 60

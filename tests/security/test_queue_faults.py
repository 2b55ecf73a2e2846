"""One unreadable queue file must not stop the queue: it is quarantined with its reason and everything goes on."""

from __future__ import annotations

import json

import pytest

from benchmark.cli.main import main
from benchmark.submissions.queue import MAX_QUEUE_FILE_BYTES, ClaimLostError, State, SubmissionQueue
from benchmark.submissions.validate import submit
from benchmark.submissions.worker import run_worker
from tests.submissions import fake_score, make_spec

CORRUPT = {
    "garbage": (b"{broken", "not valid JSON"),
    "not-utf8": (b'{"id": "\xff\xfe"}', "not UTF-8"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "nests"),
    "huge": (b" " * (MAX_QUEUE_FILE_BYTES + 1), "limit"),
    "wrong-fields": (b'{"id": "x"}', "not a valid request file"),
}


@pytest.fixture
def queue_with_corrupt_files(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    good = queue.enqueue(make_spec(), key="good")
    for name, (content, _) in CORRUPT.items():
        (queue.root / "pending" / f"{name}.json").write_bytes(content)
    # a valid entry whose id tries to escape the queue folder, and one whose id is not its file name
    data = json.loads(queue.file_path(State.PENDING, good.id).read_text())
    (queue.root / "pending" / "escape.json").write_text(json.dumps({**data, "id": "../../../etc/x"}))
    (queue.root / "running" / "renamed.json").write_text(json.dumps({**data, "id": good.id}))
    return queue, good


def test_status_quarantines_each_unreadable_file_with_its_reason(queue_with_corrupt_files):
    queue, good = queue_with_corrupt_files
    assert [e.id for e in queue.status()] == [good.id]
    reasons = {q.name.split(".json")[0]: q.reason for q in queue.quarantined()}
    assert set(reasons) == {f"pending-{n}" for n in [*CORRUPT, "escape"]} | {"running-renamed"}
    for name, (_, needle) in CORRUPT.items():
        assert needle in reasons[f"pending-{name}"], name
    assert "not its file name" in reasons["running-renamed"]
    assert sorted(p.name for p in (queue.root / "pending").iterdir()) == [f"{good.id}.json"]


def test_run_and_submit_go_on_past_corrupt_files(queue_with_corrupt_files, tmp_path):
    queue, good = queue_with_corrupt_files
    entry = submit(make_spec("timm:resnet34"), queue=queue, check_model=False)
    report = run_worker(queue, results_dir=tmp_path / "r", max_jobs=2, score_fn=fake_score, proxy="p.json")
    assert sorted(e.id for e in report.finished) == sorted([good.id, entry.id])
    (queue.root / "pending" / "late.json").write_bytes(b"\x00\x01")  # appears while a worker runs
    assert queue.claim("w") is None and len(queue.quarantined()) == len(CORRUPT) + 3


def test_queue_status_cli_lists_quarantined_files(queue_with_corrupt_files, capsys):
    queue, good = queue_with_corrupt_files
    assert main(["queue", "status", "--queue", str(queue.root)]) == 0
    out = capsys.readouterr().out
    assert good.id in out and "unreadable request file(s) moved to" in out and "pending-garbage" in out


def test_a_worker_whose_entry_file_was_quarantined_loses_its_claim(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    queue.enqueue(make_spec(), key="k")
    entry = queue.claim("w")
    queue.file_path(State.RUNNING, entry.id).write_text("{")
    with pytest.raises(ClaimLostError, match="No submission"):
        queue.check_claim(entry)

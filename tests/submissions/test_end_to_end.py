"""A spec submitted through the leaderboard's form is queued PENDING and `imibench queue run` turns it into a row."""

from benchmark.cli.main import main
from benchmark.submissions.queue import State, SubmissionQueue
from leaderboard.loading import load_results
from leaderboard.submit import build_spec, run_submit
from leaderboard.table import build_table


def test_form_submission_becomes_a_leaderboard_row(tmp_path, fitted_proxy, capsys):
    queue_dir, results = tmp_path / "queue", tmp_path / "results"
    queue_dir.mkdir()
    spec = build_spec(model="timm:test_resnet.r160_in1k", pretrained=False, images="bundled:400",
                      submitter="e2e test", family="ResNet", name="Tiny ResNet (random)")
    outcome = run_submit(spec, queue=queue_dir)  # the real `imibench submit --public` in a subprocess
    assert outcome.ok, outcome.message
    (entry,) = SubmissionQueue(queue_dir).entries()
    assert entry.state is State.PENDING

    code = main(["queue", "run", "--queue", str(queue_dir), "--results", str(results), "--proxy",
                 str(fitted_proxy), "--once"])
    assert code == 0, capsys.readouterr().err
    (entry,) = SubmissionQueue(queue_dir).entries()
    assert entry.state is State.FINISHED

    table = build_table(load_results(results).results)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["model"] == "Tiny ResNet (random) (untrained)" and row["family"] == "ResNet"  # random-init label
    assert 0.0 < row["MIS mean"] <= 1.0

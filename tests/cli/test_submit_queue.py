import json
from pathlib import Path

import pytest
import yaml

from benchmark.cli.main import main
from benchmark.results.io import read_result
from benchmark.submissions import worker
from tests.submissions import failing_score, fake_score

SPEC = {"name": "R18 random", "submitter": "Ada", "model": "timm:resnet18", "pretrained": False}


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("submit", "queue", "publish"):
        assert name in out


def test_submit_status_run_publish(tmp_path, spec_file, capsys, monkeypatch):
    queue, results = tmp_path / "q", tmp_path / "results"
    assert main(["submit", str(spec_file), "--queue", str(queue), "--skip-model-check"]) == 0
    out = capsys.readouterr().out
    entry = last_json(out)
    assert entry["state"] == "PENDING" and entry["key"] == "timm:resnet18@random-init"
    assert f"as {entry['id']}: PENDING" in out and "model NOT checked" in out

    assert main(["queue", "status", "--queue", str(queue)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["id", "name", "state", "created", "started", "finished", "attempts",
                                           "detail"]
    assert entry["id"] in out and "R18 random" in out and "1 PENDING" in out

    monkeypatch.setattr(worker, "default_score_fn", fake_score)
    assert main(["queue", "run", "--queue", str(queue), "--results", str(results), "--once",
                 "--proxy", str(tmp_path / "proxy.json"), "--heartbeat", "0.05", "--stale-after", "60"]) == 0
    assert "1 finished, 0 failed" in capsys.readouterr().out
    assert read_result(results / f"{entry['id']}.json").submission.spec["metadata"]["name"] == "R18 random"
    assert main(["queue", "status", "--queue", str(queue)]) == 0
    assert "FINISHED" in capsys.readouterr().out

    out_dir = tmp_path / "hub"
    assert main(["publish", "--results", str(results), "--repo-id", "me/imi-results", "--dry-run",
                 "--out", str(out_dir)]) == 0
    assert "Dry run: 1 result files" in capsys.readouterr().out
    assert (out_dir / "leaderboard.parquet").is_file() and (out_dir / "README.md").is_file()


def test_failed_run_shows_reason_and_log(tmp_path, spec_file, capsys, monkeypatch):
    queue = tmp_path / "q"
    assert main(["submit", str(spec_file), "--queue", str(queue), "--skip-model-check"]) == 0
    monkeypatch.setattr(worker, "default_score_fn", failing_score)
    assert main(["queue", "run", "--queue", str(queue), "--results", str(tmp_path / "r"), "--once",
                 "--proxy", "p.json"]) == 0
    out = capsys.readouterr().out
    assert "0 finished, 1 failed" in out and "ValueError: boom" in out
    assert main(["queue", "status", "--queue", str(queue)]) == 0
    out = capsys.readouterr().out
    assert "FAILED" in out and "ValueError: boom" in out and "(log: " in out and ".log)" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["submit", "MISSING", "--queue", "Q", "--skip-model-check"], "Submission spec not found"),
        (["submit", "BAD", "--queue", "Q", "--skip-model-check"], "submitter: Field required"),
        (["submit", "REMOTE", "--queue", "Q", "--skip-model-check"], "asks for trust_remote_code"),
        (["queue", "status", "--queue", "Q"], "No queue at"),
        (["queue", "run", "--queue", "Q", "--once", "--heartbeat", "10", "--stale-after", "5"], "must exceed"),
        (["publish", "--results", "Q", "--repo-id", "me/r", "--dry-run"], "Results folder not found"),
        (["publish", "--results", "Q", "--repo-id", "bad id", "--dry-run"], "Invalid Hub repo id"),
    ],
)
def test_user_errors_exit_2_with_one_message_and_no_traceback(tmp_path, capsys, argv, needle):
    (tmp_path / "bad.yaml").write_text("model: timm:resnet18\n")
    (tmp_path / "remote.yaml").write_text(yaml.safe_dump({**SPEC, "trust_remote_code": True}))
    paths = {"MISSING": tmp_path / "missing.yaml", "BAD": tmp_path / "bad.yaml", "REMOTE": tmp_path / "remote.yaml",
             "Q": tmp_path / "q"}
    assert main([str(paths.get(a, a)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imibench: error:") and needle in err and "Traceback" not in err


def test_duplicate_submit_names_the_existing_entry(tmp_path, spec_file, capsys):
    queue = tmp_path / "q"
    assert main(["submit", str(spec_file), "--queue", str(queue), "--skip-model-check"]) == 0
    first = last_json(capsys.readouterr().out)
    assert main(["submit", str(spec_file), "--queue", str(queue), "--skip-model-check"]) == 2
    err = capsys.readouterr().err
    assert "Duplicate submission" in err and first["id"] in err and "Traceback" not in err


ROOT = Path(__file__).resolve().parents[2]
MISSING = [m for m in ("benchmark/models/adapters.py", "benchmark/stimuli/sources.py") if not (ROOT / m).is_file()]


@pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (being written)")
def test_submit_example_with_the_model_check(tmp_path, capsys):
    example = ROOT / "submissions" / "examples" / "resnet18-random.yaml"
    assert main(["submit", str(example), "--queue", str(tmp_path / "q"), "--n-images", "2"]) == 0
    out = capsys.readouterr().out
    assert "model checked on CPU" in out and last_json(out)["state"] == "PENDING"

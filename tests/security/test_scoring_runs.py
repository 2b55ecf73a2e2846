"""Scoring runs that collide, get killed or are resumed: locks, temporary files, wall time, checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from argparse import Namespace
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.activations.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.cli.main import build_parser, main
from benchmark.cli.score import build_spec
from benchmark.results.io import read_result
from benchmark.scoring import pipeline
from benchmark.scoring.pipeline import score_submission
from benchmark.scoring.runlock import AttemptClock, remove_orphaned_temp_files, run_lock
from benchmark.scoring.spec import parse_spec
from benchmark.stimuli.sources import open_rgb
from tests.fast_spec import FAST_SPEC


def _spec(tmp_path, fitted_proxy, **overrides):
    return parse_spec({**FAST_SPEC, "proxy": str(fitted_proxy), "out": str(tmp_path / "result.json"), **overrides})


def test_second_run_on_the_same_output_is_refused_clearly(tmp_path, fitted_proxy, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**FAST_SPEC, "proxy": str(fitted_proxy), "out": str(tmp_path / "r.json")}))
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from benchmark.scoring.runlock import run_lock
        with run_lock(Path({str(tmp_path / 'r.json')!r}), Path({str(tmp_path / '.r.work')!r})):
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # the first run, in another process
        assert main(["score", str(spec), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "Another imibench run is writing the result file" in err and "Traceback" not in err
        assert not (tmp_path / "r.json").exists()
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path / "r.json", tmp_path / ".r.work"):  # the lock died with its process
        pass


def test_lock_covers_the_work_folder_too(tmp_path):
    held, other = (tmp_path / "a.json", tmp_path / "work"), (tmp_path / "b.json", tmp_path / "work")
    with run_lock(*held), pytest.raises(ConfigError, match="writing the work folder"), run_lock(*other):
        pass
    with run_lock(tmp_path / "b.json", tmp_path / "work"):  # released
        pass


def test_orphaned_temp_files_are_removed_and_wall_time_sums_the_attempts(tmp_path, fitted_proxy):
    out, work = tmp_path / "result.json", tmp_path / ".result.work"
    (work / "stimuli").mkdir(parents=True)
    orphans = [tmp_path / ".result.json.k3j2.tmp", work / "activations.ckpt.tmp-4242", work / "stimuli" / ".x.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"left by a killed run")
    (tmp_path / "keep.tmp").write_bytes(b"not ours")
    (work / "wall_time.json").write_text(json.dumps({"attempts": [{"elapsed_s": 1000.0}, {"elapsed_s": 500.0}]}))
    start = time.perf_counter()
    score_submission(_spec(tmp_path, fitted_proxy), progress=False)
    this_attempt = time.perf_counter() - start
    assert not any(p.exists() for p in orphans) and (tmp_path / "keep.tmp").exists()
    wall = read_result(out).provenance.wall_time_s
    assert 1500.0 < wall <= 1500.0 + this_attempt
    assert not (work / "wall_time.json").exists()  # a later run starts from zero


def test_a_killed_attempt_is_counted(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from benchmark.scoring.runlock import AttemptClock
        with AttemptClock(Path({str(tmp_path)!r}), started=time.perf_counter(), interval_s=0.05):
            time.sleep(0.6)
            os.kill(os.getpid(), signal.SIGKILL)
        """)
    subprocess.run([sys.executable, "-c", script], check=False)
    clock = AttemptClock(tmp_path, started=time.perf_counter())
    assert 0.4 < clock.previous_s < 5.0


def test_remove_orphaned_temp_files_keeps_other_files(tmp_path):
    out, work = tmp_path / "r.json", tmp_path / "w"
    work.mkdir()
    (work / "activations.ckpt").write_bytes(b"ckpt")
    (tmp_path / ".other.json.x.tmp").write_bytes(b"another run's")
    assert remove_orphaned_temp_files(out, work) == []
    assert (work / "activations.ckpt").exists() and (tmp_path / ".other.json.x.tmp").exists()


def score_args(**overrides) -> Namespace:
    return build_parser().parse_args(["score", *overrides.pop("argv", [])])


def test_flags_are_merged_before_the_spec_is_validated(tmp_path, fitted_proxy):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**FAST_SPEC}))  # no proxy in the file
    merged = build_spec(score_args(argv=[str(spec), "--proxy", str(fitted_proxy), "--layers", "layer1.*",
                                         "--checkpoint-every", "7"]))
    assert merged.proxy == str(fitted_proxy) and merged.checkpoint_every == 7
    assert merged.units.layers == ["layer1.*"] and merged.units.units_per_layer == 2  # the file's other unit fields
    with pytest.raises(ConfigError, match="proxy"):
        build_spec(score_args(argv=[str(spec)]))
    with pytest.raises(ConfigError, match="checkpoint_every"):
        build_spec(score_args(argv=[str(spec), "--proxy", "p.json", "--checkpoint-every", "0"]))


def test_checkpoint_interval_reaches_the_activation_pass(tmp_path, fitted_proxy, monkeypatch):
    seen = {}

    def capture(*args, checkpoint, **kwargs):
        seen["every"] = checkpoint.every_n_batches
        raise KeyboardInterrupt  # stop here: the rest of the pass is not under test

    monkeypatch.setattr(pipeline, "collect_extremes", capture)
    with pytest.raises(KeyboardInterrupt):
        score_submission(_spec(tmp_path, fitted_proxy, checkpoint_every=3), progress=False)
    assert seen == {"every": 3}


def test_stage_guard_stops_a_run_before_the_next_stage(tmp_path, fitted_proxy):
    stages = []

    def guard(stage):
        stages.append(stage)
        if stage == "proxy":
            raise RuntimeError("claim lost")

    with pytest.raises(RuntimeError, match="claim lost"):
        score_submission(_spec(tmp_path, fitted_proxy), progress=False, before_stage=guard)
    assert stages == ["load model", "activation pass", "tasks and stimuli", "proxy"]
    assert not (tmp_path / "result.json").exists()


def test_corrupt_image_advice_works_with_the_checkpoint(tmp_path):
    broken = tmp_path / "b.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataValidationError, match="readable copy under the same name") as info:
        open_rgb(broken, label="b.png")
    assert "resumes from its last checkpoint" in str(info.value)
    # The user removes the file instead: the image set's hash changes and the checkpoint no longer applies.
    path = tmp_path / "activations.ckpt"
    old = {"run_info": {"model": "m", "images": "hash-with-b.png", "n_images": 81}, "k": 9}
    new = {"run_info": {"model": "m", "images": "hash-without", "n_images": 80}, "k": 9}
    save_checkpoint(path, {"fingerprint": json.dumps(old, sort_keys=True), "state": torch.zeros(1)})
    with pytest.raises(ConfigError, match="The image set changed") as info:
        load_checkpoint(CheckpointConfig(path), new)
    message = str(info.value)
    assert f"delete {path} and run the same command again" in message
    assert "put a readable image back under the removed file's name" in message
    assert load_checkpoint(CheckpointConfig(path), old) is not None  # restoring the file resumes
    Path(message.split("delete ")[1].split(" and run")[0]).unlink()  # following the advice
    assert load_checkpoint(CheckpointConfig(path), new) is None  # a fresh start, no error


def test_a_result_file_from_elsewhere_never_chooses_where_a_rerun_writes(tmp_path):
    from benchmark.results.io import write_result
    from tests.submissions import make_result

    result = make_result()
    crafted = result.model_copy(update={"submission": result.submission.model_copy(update={"spec": {
        **FAST_SPEC, "proxy": "p.json", "out": "/etc/cron.d/x.json", "work_dir": "/etc/cron.d"}})})
    path = write_result(crafted, tmp_path / "crafted.json")
    spec = build_spec(score_args(argv=["--from-result", str(path)]))
    assert spec.out is None and spec.work_dir is None

"""The public Submit form's server-side checks (benchmark.submissions.public): a stranger names Hub models and
datasets or the operator's allow-listed image sources only, and no refusal reveals anything about the server."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import yaml

from benchmark.cli.main import main
from benchmark.submissions.public import (
    PublicConfig,
    PublicSubmissionError,
    RateLimit,
    check_rate_limit,
    load_public_config,
    recheck_public_sources,
    sanitise,
    validate_public_submission,
)
from benchmark.submissions.queue import State, SubmissionQueue
from benchmark.submissions.spec import parse_submission
from benchmark.submissions.worker import run_worker
from tests.submissions import fake_score

BASE = {"model": "timm:resnet18", "pretrained": False, "submitter": "eve@example.org"}


def refusal(fields, tmp_path, config=None, **options) -> str:
    with pytest.raises(PublicSubmissionError) as info:
        validate_public_submission({**BASE, **fields}, queue=tmp_path / "q", config=config or PublicConfig(),
                                   check_model=False, **options)
    return info.value.public_message


@pytest.fixture
def server_folder(tmp_path) -> Path:
    folder = tmp_path / "srv" / "private"
    folder.mkdir(parents=True)
    for name in ("secret-weights.safetensors", "passwords.txt", "a.png"):
        (folder / name).write_bytes(b"x")
    return folder


def test_server_folders_are_refused_without_listing_their_files(tmp_path, server_folder):
    for images in (f"folder:{server_folder}", "folder:/etc", f"hf:{server_folder}", "hf:../../srv/private",
                   "hf:~/x", f"folder:{server_folder}?ignore_non_images=true"):
        message = refusal({"images": images}, tmp_path)
        assert "not accepted here" in message
        for leak in ("secret-weights", "passwords", "a.png", "passwd"):
            assert leak not in message


def test_local_weights_are_refused_with_one_message_whether_the_file_exists_or_not(tmp_path, server_folder):
    existing = server_folder / "secret-weights.safetensors"
    missing = server_folder / "nothing-here00.safetensors"  # same length: same truncation
    messages = [refusal({"model": f"local:{path}?arch=timm:resnet18"}, tmp_path) for path in (existing, missing)]
    assert messages[0].replace(str(existing), "P") == messages[1].replace(str(missing), "P")
    assert "not accepted here" in messages[0]
    for model in (f"timm:resnet18?weights={existing}", "open_clip:local-dir:/etc", "timm:local-dir:/etc",
                  "timm:../../resnet18", "timm:hf-hub:../x", "torchvision:hf-hub:a/b", "timm:resnet18?arch=x"):
        assert "not accepted here" in refusal({"model": model}, tmp_path)


@pytest.mark.parametrize("field", ["out", "work_dir", "proxy", "device", "batch_size", "num_workers",
                                   "weights_sha256", "checkpoint_every"])
def test_path_and_operator_fields_are_refused(tmp_path, field):
    value = {"out": "../../../x.json", "work_dir": "/tmp/anywhere", "proxy": "/srv/p.json", "device": "cuda:7",
             "batch_size": 100000, "num_workers": 64, "weights_sha256": "ab" * 32, "checkpoint_every": 1}[field]
    message = refusal({field: value}, tmp_path)
    assert field in message and "operator" in message and str(value) not in message


def test_allow_listed_sources_and_hub_ids_are_accepted(tmp_path, server_folder):
    config = PublicConfig(image_sources={"imagenet-val": f"folder:{server_folder}"})
    for images, expected in (("imagenet-val", f"folder:{server_folder}"), ("bundled:80", "bundled:80"),
                             ("hf:ILSVRC/imagenet-1k@main#validation", "hf:ILSVRC/imagenet-1k@main#validation")):
        validated = validate_public_submission({**BASE, "images": images}, queue=tmp_path / "q", config=config,
                                               check_model=False)
        assert validated.spec.images == expected and validated.spec.out is None and validated.spec.work_dir is None
    message = refusal({"images": "folder:/etc"}, tmp_path, config)
    assert "imagenet-val" in message and str(server_folder) not in message  # the alias, never the path


def test_field_size_limits(tmp_path):
    config = PublicConfig(max_string_chars=100, max_notes_chars=500)
    assert "at most 100" in refusal({"name": "n" * 101}, tmp_path, config)
    assert "at most 500" in refusal({"notes": "n" * 501}, tmp_path, config)
    assert "items" in refusal({"units": {"layers": ["layer1"] * 1000}}, tmp_path, config)
    deep: dict = {}
    node = deep
    for _ in range(10):
        node["x"] = {}
        node = node["x"]
    assert "nests too deeply" in refusal({"units": deep}, tmp_path, config)
    assert "limit of 16 units" in refusal({"units": {"units_per_layer": 17}}, tmp_path, PublicConfig(max_units=16))
    validate_public_submission({**BASE, "notes": "n" * 500}, queue=tmp_path / "q", config=config, check_model=False)


def test_model_size_is_checked_on_the_meta_device_before_anything_is_built(tmp_path, monkeypatch):
    from benchmark.models import adapters

    loads = []
    monkeypatch.setattr(adapters, "load_model", lambda *a, **k: loads.append(a))
    config = PublicConfig(max_parameters=50_000_000)
    start = time.perf_counter()
    with pytest.raises(PublicSubmissionError, match=r"about 1013 M parameters, over this leaderboard's limit of 50 M"):
        validate_public_submission({**BASE, "model": "timm:vit_giant_patch14_224"}, queue=tmp_path / "q",
                                   config=config, model_checker=lambda *a: pytest.fail("model check ran"))
    assert loads == [] and time.perf_counter() - start < 30  # a 1 B-parameter model was never materialised


def test_rate_limit_per_submitter(tmp_path):
    config = PublicConfig(rate_limit=RateLimit(max_submissions=2, window_s=60))
    queue = tmp_path / "q"
    assert check_rate_limit("eve", queue=queue, config=config, now=1000.0) == 1
    assert check_rate_limit("EVE ", queue=queue, config=config, now=1001.0) == 0  # same key, normalised
    with pytest.raises(PublicSubmissionError, match="Too many submissions: at most 2 per"):
        check_rate_limit("eve", queue=queue, config=config, now=1002.0)
    assert check_rate_limit("bob", queue=queue, config=config, now=1002.0) == 1  # other submitters are not held up
    assert check_rate_limit("eve", queue=queue, config=config, now=1061.0) == 1  # the window moved on
    assert "eve" not in (queue / ".rate_limit.json").read_text()  # keys are stored hashed


def test_submit_public_cli_refuses_with_a_clean_message(tmp_path, server_folder, capsys):
    spec = tmp_path / "form.yaml"
    spec.write_text(yaml.safe_dump({**BASE, "images": f"folder:{server_folder}"}))
    assert main(["submit", str(spec), "--queue", str(tmp_path / "q"), "--public"]) == 2
    err = capsys.readouterr().err
    assert "not accepted here" in err and "Traceback" not in err and "secret-weights" not in err
    config = tmp_path / "public.yaml"
    config.write_text(yaml.safe_dump({"rate_limit": {"max_submissions": 1, "window_s": 600}}))
    spec.write_text(yaml.safe_dump({**BASE, "images": "folder:/etc"}))
    assert main(["submit", str(spec), "--queue", str(tmp_path / "q"), "--public", "--public-config", str(config)]) == 2
    assert main(["submit", str(spec), "--queue", str(tmp_path / "q"), "--public", "--public-config", str(config)]) == 2
    assert "Too many submissions" in capsys.readouterr().err
    monkey_env = {"IMIBENCH_PUBLIC_CONFIG": str(config)}
    os.environ.update(monkey_env)
    try:
        assert load_public_config().rate_limit.max_submissions == 1
    finally:
        del os.environ["IMIBENCH_PUBLIC_CONFIG"]


def test_messages_from_later_checks_name_no_server_path(tmp_path):
    config = PublicConfig(image_sources={"val": "folder:/data/imagenet/val"})
    text = ("Image folder '/data/imagenet/val' is empty; Duplicate submission in /srv/queue/pending/x.json; "
            "see https://huggingface.co/timm/resnet18.a1_in1k and ./relative/file")
    clean = sanitise(text, config)
    assert "/data" not in clean and "/srv" not in clean and "./relative" not in clean
    assert "'val'" in clean and "https://huggingface.co/timm/resnet18.a1_in1k" in clean


def test_duplicate_refusal_does_not_reveal_the_queue_path(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    validated = validate_public_submission(BASE, queue=queue, config=PublicConfig(), check_model=False)
    queue.enqueue(validated.spec, key=validated.key)
    message = refusal({}, tmp_path)
    assert "Duplicate submission" in message and str(tmp_path) not in message


def test_worker_rechecks_a_public_hub_dataset_that_names_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "submissions" / "queue").mkdir(parents=True)  # `datasets` would read this folder as a dataset
    spec = parse_submission({**BASE, "images": "hf:submissions/queue"})
    with pytest.raises(PublicSubmissionError, match="could not be loaded from the Hub") as info:
        recheck_public_sources(spec)
    assert str(tmp_path) not in info.value.public_message
    queue = SubmissionQueue(tmp_path / "q")
    entry = queue.enqueue(spec, key="k", checks={"public": True})
    report = run_worker(queue, results_dir=tmp_path / "r", once=True, score_fn=fake_score, proxy="p.json")
    (failed,) = report.failed
    assert failed.id == entry.id and "could not be loaded from the Hub" in failed.reason
    assert not (tmp_path / "r" / f"{entry.id}.json").exists()
    assert socket.gethostname()  # the worker ran on this host
    assert queue.get(entry.id).state is State.FAILED


def test_hub_dataset_answer_is_the_same_for_a_local_folder_and_a_missing_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    (tmp_path / "srv" / "private").mkdir(parents=True)
    messages = []
    for dataset in ("srv/private", "srv/missing"):  # same length: the same answer, character for character
        with pytest.raises(PublicSubmissionError) as info:
            validate_public_submission({**BASE, "images": f"hf:{dataset}"}, queue=tmp_path / "q",
                                       config=PublicConfig(), model_checker=lambda *a: pytest.fail("ran"))
        messages.append(info.value.public_message.replace(dataset, "D"))
    assert messages[0] == messages[1] and "could not be loaded from the Hub" in messages[0]


def test_offline_weights_advice_to_the_public_names_no_server_file():
    """The operator's fix (pass a local weights file) is replaced: a public submitter cannot name server files."""
    from benchmark.api.errors import OFFLINE_WEIGHTS_FIX, PUBLIC_WEIGHTS_FIX

    message = sanitise(f"Could not load the weights of timm:resnet18 from the Hub: offline. {OFFLINE_WEIGHTS_FIX}", None)
    assert PUBLIC_WEIGHTS_FIX in message
    assert "local:" not in message and "weights=PATH" not in message

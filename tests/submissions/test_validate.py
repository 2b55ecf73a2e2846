from pathlib import Path

import pytest

from benchmark.api.errors import ConfigError, DataValidationError, SourceUnavailableError
from benchmark.results.io import write_result
from benchmark.submissions.queue import State, SubmissionQueue
from benchmark.submissions.spec import load_submission, parse_submission
from benchmark.submissions.validate import ModelCheck, stated_identity, submit, validate_submission
from benchmark.submissions.worker import annotate_result
from tests.submissions import make_result, make_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "submissions" / "examples" / "resnet18-random.yaml"
MISSING = [m for m in ("benchmark/models/adapters.py", "benchmark/stimuli/sources.py") if not (ROOT / m).is_file()]


def fake_checker(spec, n_images):
    return ModelCheck("timm:resnet18", "random-init:timm:resnet18", n_images, (n_images, 1000), 0.01)


def no_hub(repo_id, filename, revision):
    raise AssertionError("the Hub must not be asked")


def validate(spec, queue, **kwargs):
    kwargs.setdefault("model_checker", fake_checker)
    kwargs.setdefault("hub_config", no_hub)
    return validate_submission(spec, queue=queue, **kwargs)


def test_valid_submission_gets_key_and_checks(tmp_path):
    validated = validate(make_spec(), tmp_path / "q", n_images=3)
    assert validated.key == "timm:resnet18@random-init:timm:resnet18"
    assert validated.checks() == {"model_checked": True, "n_images": 3, "output_shape": [3, 1000], "seconds": 0.01}


def test_skip_model_check_uses_the_stated_identity(tmp_path):
    validated = validate(make_spec(), tmp_path / "q", check_model=False, model_checker=None)
    assert validated.key == "timm:resnet18@random-init" and validated.checks() == {"model_checked": False}
    spec = make_spec("local:/w/r18.safetensors?arch=timm:resnet18", weights_sha256="AB" * 32)
    assert stated_identity(spec) == ("timm:resnet18", "sha256:" + "ab" * 32)
    assert stated_identity(make_spec("timm:resnet50.a1_in1k", pretrained=True, revision="v2")) == (
        "timm:resnet50.a1_in1k", "default")  # `revision` is only pinned by validate_submission


def test_revision_is_pinned_into_the_model_string(tmp_path):
    validated = validate(make_spec("timm:resnet50.a1_in1k", pretrained=True, revision="abc123"), tmp_path / "q",
                         check_model=False)
    assert validated.spec.model == "timm:resnet50.a1_in1k?revision=abc123" and validated.weights == "rev:abc123"
    with pytest.raises(ConfigError, match="contradicts revision='x'"):
        validate(make_spec("timm:resnet50.a1_in1k?revision=x", revision="y"), tmp_path / "q")


def test_relative_paths_are_made_absolute(tmp_path):
    spec = make_spec(proxy="p.json", images="folder:imgs")
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(DataValidationError, match="not a valid fitted proxy"):  # the proxy is checked, found here
        validate(spec, tmp_path / "q", base_dir=tmp_path)
    validated = validate(spec.model_copy(update={"proxy": None}), tmp_path / "q", base_dir=tmp_path)
    assert validated.spec.images == f"folder:{tmp_path}/imgs"


def test_missing_proxy_file_is_refused(tmp_path):
    with pytest.raises(SourceUnavailableError, match="Fitted proxy file not found"):
        validate(make_spec(proxy=str(tmp_path / "nope.json")), tmp_path / "q")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"trust_remote_code": True}, "`trust_remote_code` asks for trust_remote_code"),
        ({"units": {"trust_remote_code": 1}}, "`units.trust_remote_code`"),
        ({"model": "timm:hf-hub:evil/net?trust_remote_code=true"}, "`model` asks for trust_remote_code"),
    ],
)
def test_remote_code_requests_are_refused(tmp_path, data, needle):
    spec = {"model": "timm:resnet18", "submitter": "me", **data}
    with pytest.raises(ConfigError, match=needle) as info:
        validate(spec, tmp_path / "q")
    assert "never runs code from a model repository" in str(info.value)


def test_free_text_may_mention_remote_code():
    assert parse_submission({"model": "timm:resnet18", "submitter": "me", "notes": "no trust_remote_code needed"})


def test_hub_repo_that_needs_remote_code_is_refused(tmp_path):
    asked = []

    def hub(repo_id, filename, revision):
        asked.append((repo_id, filename, revision))
        return {"architecture": "resnet18"} if repo_id == "timm/ok" else {"auto_map": {"AutoModel": "m.Net"}}

    assert validate(make_spec("timm:hf-hub:timm/ok", pretrained=True), tmp_path / "q", hub_config=hub)
    with pytest.raises(ConfigError, match=r"Hub repo evil/net needs remote code \(auto_map in its config.json\)"):
        validate(make_spec("timm:hf-hub:evil/net?revision=v1", pretrained=True), tmp_path / "q", hub_config=hub)
    assert asked == [("timm/ok", "config.json", None), ("evil/net", "config.json", "v1")]


def test_duplicates_are_refused_naming_the_existing_entry(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    first = submit(make_spec(), queue=queue, model_checker=fake_checker, hub_config=no_hub)
    with pytest.raises(DataValidationError, match=f"already PENDING in the queue as {first.id}") as info:
        validate(make_spec(name="again"), queue)
    assert str(queue.file_path(State.PENDING, first.id)) in str(info.value)
    running = queue.claim()
    queue.finish(running, tmp_path / "r.json")
    with pytest.raises(DataValidationError, match=f"already scored: result {tmp_path / 'r.json'} as {first.id}"):
        validate(make_spec(), queue)


def test_a_failed_entry_does_not_block_a_resubmission(tmp_path):
    queue = SubmissionQueue(tmp_path / "q")
    submit(make_spec(), queue=queue, model_checker=fake_checker, hub_config=no_hub)
    queue.fail(queue.claim(), "broken")
    assert validate(make_spec(), queue).key == "timm:resnet18@random-init:timm:resnet18"


def test_duplicates_in_a_results_folder_are_refused(tmp_path):
    results = tmp_path / "results"
    path = write_result(make_result(), results / "old.json")
    (results / "junk.json").write_text("{}")  # not a result: skipped with a warning
    annotate_result(path, make_spec(), entry_id="old", key="timm:resnet18@random-init:timm:resnet18")
    with pytest.raises(DataValidationError, match=f"already scored in {path}"):
        validate(make_spec(), tmp_path / "q", results_dir=results)


def test_invalid_specs_list_their_fields(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: timm:resnet18\nimagenet_top1: 120\nbogus: 1\n")
    with pytest.raises(ConfigError) as info:
        load_submission(bad)
    message = str(info.value)
    for needle in ("submitter: Field required", "imagenet_top1: Input should be less than or equal to 100",
                   "bogus: Extra inputs are not permitted", "Valid fields: name, submitter"):
        assert needle in message
    with pytest.raises(ConfigError, match="Submission spec not found"):
        load_submission(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="Unknown model source 'hf'"):
        validate(make_spec("hf:foo/bar"), tmp_path / "q")


def test_example_spec_is_valid(tmp_path):
    spec = load_submission(EXAMPLE)
    assert spec.model == "timm:resnet18" and not spec.pretrained and spec.images.startswith("bundled")
    assert validate(spec, tmp_path / "q", check_model=False).key == "timm:resnet18@random-init"


@pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (being written; the model check uses "
                    "load_model and the bundled image source)")
def test_real_model_check_on_bundled_images(tmp_path):
    validated = validate_submission(EXAMPLE, queue=tmp_path / "q", n_images=2, hub_config=no_hub)
    assert validated.model_check.n_images == 2 and validated.model_check.output_shape == (2, 1000)
    assert validated.key == "timm:resnet18@random-init:timm:resnet18.a1_in1k"  # timm resolves the default tag
    assert validated.checks()["weights_id"] == "random-init:timm:resnet18.a1_in1k"

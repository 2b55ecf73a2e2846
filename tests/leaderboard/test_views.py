import sys

import pytest
from PIL import Image

from benchmark.api.errors import ConfigError
from benchmark.submissions.public import PublicConfig, check_rate_limit
from leaderboard.about import ABOUT_MARKDOWN, provenance_markdown
from leaderboard.images import resolve_image, stimuli_roots
from leaderboard.loading import LoadedResult, load_results
from leaderboard.submit import (
    DEFAULT_COMMAND,
    build_spec,
    form_problem,
    model_key,
    parse_command,
    rate_key_of,
    resubmission_problem,
    run_submit,
    scored_keys,
)
from leaderboard.text import code_block, md_escape
from leaderboard.table import latest_results
from leaderboard.views import (
    layer_names,
    task_choices,
    unit_choices,
    unit_view,
)
from tests.leaderboard.fixtures import LAYERS, N_REFERENCES, N_TASKS, STUB_SUBMIT_COMMAND, write_results


STIMULI: list = []


@pytest.fixture
def loaded(tmp_path) -> dict[str, LoadedResult]:
    STIMULI[:] = [tmp_path / "stimuli"]
    results = load_results(write_results(tmp_path / "results", stimuli=tmp_path / "stimuli"))
    return {entry.result.submission.model: entry for entry in latest_results(results.results).values()}


def test_unit_navigation(loaded):
    entry = loaded["resnet50.a1_in1k"]
    assert layer_names(entry) == list(LAYERS)
    choices = unit_choices(entry, "layer2")
    assert [channel for _, channel in choices] == [0, 7, 14] and choices[0][0].startswith("channel 0 (MIS ")
    unit = entry.result.scores.units[0]
    assert [index for _, index in task_choices(unit)] == list(range(N_TASKS))


def test_unit_view_shows_resolved_images(loaded):
    view = unit_view(loaded["resnet50.a1_in1k"], "layer1", 7, 1, STIMULI[0])
    assert len(view.max_references) == len(view.min_references) == N_REFERENCES and len(view.queries) == 2
    assert all(isinstance(image, Image.Image) for image, _ in view.max_references + view.queries)
    assert view.max_references[0][1].startswith("max ref 1/3: img_")
    assert view.warning == ""
    assert "channel 7" in view.summary and "task 2 of 2" in view.summary and "task score **" in view.summary


def test_unresolvable_ids_show_placeholders_and_where_they_were_expected(loaded, tmp_path):
    view = unit_view(loaded["my_net"], "layer1", 0, 0)
    assert len(view.max_references) == N_REFERENCES  # placeholder tiles, no crash
    assert all("(not found)" in caption for _, caption in view.max_references + view.queries)
    assert "8 of 8 images" in view.warning and "imagenet-1k@validation" in view.warning
    assert "--stimuli-root" in view.warning
    with_root = unit_view(loaded["my_net"], "layer1", 0, 0, stimuli_root=tmp_path / "elsewhere")
    assert str(tmp_path / "elsewhere") in with_root.warning


def test_stimuli_root_option_and_relative_ids(loaded, tmp_path):
    entry = loaded["my_net"]
    image_id = entry.result.scores.units[0].tasks[0].max_query
    target = tmp_path / "mirror" / image_id
    target.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(target, format="PNG")
    roots = stimuli_roots(entry, tmp_path / "mirror")
    assert resolve_image(image_id, roots) == target
    assert resolve_image(str(tmp_path / "missing.png"), roots) is None
    view = unit_view(entry, "layer1", 0, 0, stimuli_root=tmp_path / "mirror")
    assert "7 of 8 images" in view.warning


def test_crafted_image_ids_never_read_server_files(loaded, tmp_path):
    """Absolute ids, `..` and symlinks out of a root, and a recorded folder outside the allowed roots are refused."""
    secret = tmp_path / "secret" / "server.png"
    secret.parent.mkdir()
    Image.new("RGB", (8, 8), (0, 0, 0)).save(secret, format="PNG")
    entry = loaded["resnet50.a1_in1k"]
    roots = stimuli_roots(entry, tmp_path / "stimuli")
    assert resolve_image(str(secret), roots) is None  # absolute
    assert resolve_image("../secret/server.png", roots) is None  # climbs out of the root
    assert resolve_image("~/server.png", roots) is None
    (tmp_path / "stimuli" / "link.png").symlink_to(secret)
    assert resolve_image("link.png", roots) is None  # a symlink leaving the root
    # Without a configured root, the result's recorded absolute image folder is not trusted.
    assert all(root.origin != "protocol.image_source.id" for root in stimuli_roots(entry))
    view = unit_view(entry, "layer1", 0, 0)
    assert "could not be found" in view.warning
    crafted = entry.result.model_copy(update={"protocol": entry.result.protocol.model_copy(update={
        "image_source": entry.result.protocol.image_source.model_copy(update={"stimuli_dir": str(secret.parent)})})})
    assert all(r.folder != secret.parent for r in stimuli_roots(LoadedResult(entry.path, crafted)))


def test_unit_view_rejects_unknown_units(loaded):
    with pytest.raises(ConfigError, match="no scored unit 'nope' channel 3.*layer1, layer2, layer3"):
        unit_view(loaded["vit_b_16"], "nope", 3, 0)
    with pytest.raises(ConfigError, match="Task 5 does not exist"):
        unit_view(loaded["vit_b_16"], "layer1", 0, 5)


def test_about_and_provenance(loaded):
    for text in ("Zimmermann, Thomas Klein, Wieland Brendel", "NeurIPS 2023", "David Klindt", "NeurIPS 2024",
                 "2-AFC", "Machine Interpretability Score"):
        assert text in ABOUT_MARKDOWN
    panel = provenance_markdown(loaded["vit_b_16"])
    assert "imibench score --model torchvision:vit_b_16 --images bundled" in panel
    assert "Links the submitter gave: none." in panel
    entry = loaded["vit_b_16"]
    linked = entry.result.model_copy(update={"submission": entry.result.submission.model_copy(update={
        "spec": {"paper": "https://arxiv.org/abs/2010.11929", "model_card": "javascript:alert(1)"}})})
    panel = provenance_markdown(LoadedResult(entry.path, linked))
    assert "[paper](https://arxiv.org/abs/2010.11929)" in panel and "javascript" not in panel.split("Links")[1][:80]
    for text in ("FAQ", "@inproceedings{zimmermann2023scale", "@inproceedings{zimmermann2024measuring",
                 "Why do ranks have intervals"):
        assert text in ABOUT_MARKDOWN
    assert provenance_markdown(None) == "_Pick a row above._"


def test_submit_spec_and_command(tmp_path):
    spec = build_spec(model=" timm:resnet18.a1_in1k ", pretrained=False, images="bundled", license="", name="R18")
    assert spec == {"model": "timm:resnet18.a1_in1k", "pretrained": False, "images": "bundled", "name": "R18",
                    "imagenet_top1": None}  # an empty top-1 is null, never 0
    assert parse_command(None) == DEFAULT_COMMAND and "{spec}" in DEFAULT_COMMAND
    assert parse_command("imibench submit {spec} --queue {queue}") == ("imibench", "submit", "{spec}", "--queue",
                                                                        "{queue}")
    with pytest.raises(ConfigError, match="placeholder"):
        parse_command("imibench submit")


def test_submit_success_and_failure_with_a_stub_command(tmp_path):
    queue = tmp_path / "queue"
    ok = run_submit(build_spec(model="timm:resnet18", submitter="a"), queue=queue, command=STUB_SUBMIT_COMMAND)
    assert ok.ok and "sub-0001" in ok.message and "PENDING" in ok.message
    assert "model: timm:resnet18" in (queue / "sub-0001.yaml").read_text(encoding="utf-8")
    bad = run_submit(build_spec(model="resnet18", submitter="a"), queue=queue, command=STUB_SUBMIT_COMMAND)
    assert not bad.ok and "exit status 1" in bad.message and "invalid model spec" in bad.message
    assert "required" in run_submit(build_spec(model=" "), queue=queue, command=STUB_SUBMIT_COMMAND).message
    assert "disabled" in run_submit(build_spec(model="timm:x"), queue=None, command=STUB_SUBMIT_COMMAND).message
    assert "submitter" in run_submit(build_spec(model="timm:x"), queue=queue, command=STUB_SUBMIT_COMMAND).message
    missing = run_submit(build_spec(model="timm:x", submitter="a"), queue=queue,
                         command=("/no/such/imibench", "{spec}"))
    assert not missing.ok and "could not be started" in missing.message


def test_submit_failure_puts_the_error_first_and_keeps_the_log_tail(tmp_path):
    noisy = (sys.executable, "-c", "import sys; print('loading...', file=sys.stderr); "
             "[print(f'Retrying in 1s [Retry {i}/5]: HTTPSConnectionPool', file=sys.stderr) for i in range(30)]; "
             "sys.exit('imibench: error: weights not found offline')", "{spec}")
    outcome = run_submit(build_spec(model="timm:x", submitter="a"), queue=tmp_path, command=noisy)
    assert not outcome.ok
    assert outcome.message.index("weights not found offline") < outcome.message.index("loading...")
    assert "Retry" not in outcome.message and "HTTPSConnectionPool" not in outcome.message  # no Hub retry noise


def test_the_real_submit_command_refuses_an_incomplete_spec(tmp_path):
    pytest.importorskip("benchmark.cli.submit", reason="`imibench submit` is not part of this checkout")
    outcome = run_submit(build_spec(model="timm:resnet18.a1_in1k", paper="not a url", submitter="a"),
                         queue=tmp_path / "queue")
    assert not outcome.ok, outcome.message
    assert "paper" in outcome.message
    assert "imibench-submit-" not in outcome.message and "/tmp" not in outcome.message  # `submit --public`
    queue = tmp_path / "queue"  # nothing enqueued; only the shared rate-limit state counts the attempt
    assert not queue.exists() or all(path.name.startswith(".rate_limit") for path in queue.iterdir())


@pytest.mark.parametrize(("field", "value"), [("model", "local:/srv/private/weights.safetensors"),
                                              ("images", "folder:/etc"), ("out", "/srv/private/out")])
def test_the_form_refuses_server_paths_through_the_public_module(tmp_path, field, value):
    spec = {**build_spec(model="timm:resnet18.a1_in1k", submitter="a"), field: value}
    problem = form_problem(spec, queue=tmp_path, config=PublicConfig(), rate_key="k")
    assert problem is not None
    if field == "out":  # an operator field is refused by its name, its value is not echoed
        assert "out" in problem and "operator" in problem and value not in problem
    else:
        assert "is not accepted here" in problem
    shown = problem.replace(value, "")  # the submitter's own value may be echoed back, nothing else of the server
    assert "/srv" not in shown and "/etc" not in shown and "/" not in shown.split("public submissions name")[0]


@pytest.mark.parametrize("images", ["/data/imagenet", "hf:../x", "local:x"])
def test_the_form_refuses_image_paths(tmp_path, images):
    problem = form_problem(build_spec(model="timm:resnet18", submitter="a", images=images), queue=tmp_path,
                           config=PublicConfig(), rate_key="k")
    assert problem is not None and "bundled" in problem


def test_the_form_accepts_hub_sources_and_the_operators_aliases(tmp_path):
    config = PublicConfig(image_sources={"imagenet-val": "folder:/srv/imagenet/val"})
    for spec in (build_spec(model="timm:resnet18.a1_in1k", submitter="a", images="hf:o/n@v1"),
                 build_spec(model="open_clip:ViT-B-32/laion2b_s34b_b79k", submitter="a"),
                 build_spec(model="timm:resnet18", submitter="a", images="imagenet-val")):
        assert form_problem(spec, queue=tmp_path, config=config, rate_key="k") is None, spec
    long_name = form_problem(build_spec(model="timm:x", submitter="a", name="n" * 500), queue=tmp_path,
                             config=config, rate_key="k")
    assert "at most 300" in long_name


def test_the_form_reads_the_shared_rate_limit_without_counting(tmp_path):
    config = PublicConfig(rate_limit={"max_submissions": 2, "window_s": 60})
    key = rate_key_of("10.0.0.7", "ann")
    assert key == rate_key_of("10.0.0.7", "bob") != rate_key_of(None, "ann") and "10.0.0.7" not in key
    spec = build_spec(model="timm:resnet18", submitter="a")
    for _ in range(3):
        assert form_problem(spec, queue=tmp_path, config=config, rate_key=key) is None  # reading counts nothing
    check_rate_limit(key, queue=tmp_path, config=config)  # what `imibench submit --public` records
    check_rate_limit(key, queue=tmp_path, config=config)
    assert "Too many submissions" in form_problem(spec, queue=tmp_path, config=config, rate_key=key)
    assert form_problem(spec, queue=tmp_path, config=config, rate_key=rate_key_of("10.0.0.8", "a")) is None


def test_resubmission():
    spec = build_spec(model="timm:resnet18", submitter="a")
    assert "already scored" in resubmission_problem(spec, {model_key("timm:resnet18")}, set())
    assert "already in the queue" in resubmission_problem(spec, set(), {model_key("timm:resnet18")})
    assert resubmission_problem(build_spec(model="timm:resnet18", submitter="a", revision="abc"),
                                {model_key("timm:resnet18")}, set()) is None  # a new revision is a new row
    blocked = scored_keys("timm:resnet18?revision=abc", None, trained=True)
    assert blocked == {"timm:resnet18@abc", "timm:resnet18"}
    assert "already scored" in resubmission_problem(build_spec(model="timm:resnet18", submitter="a",
                                                               revision="abc"), blocked, set())
    assert resubmission_problem(build_spec(model="timm:resnet18", submitter="a", revision="def"), blocked, set()) is None
    assert resubmission_problem(build_spec(model="timm:resnet18", submitter="a", pretrained=False), blocked,
                                set()) is None  # the untrained baseline is another model


def test_markdown_escaping_and_code_fences(loaded):
    assert md_escape("<img src=x onerror=alert(1)>") .startswith("&lt;img")
    fenced = code_block("echo ``` && rm -rf /")
    assert fenced.startswith("````\n") and fenced.endswith("\n````")
    entry = loaded["vit_b_16"]
    evil = entry.result.model_copy(update={
        "submission": entry.result.submission.model_copy(update={"spec": {"name": "<b>x</b>"}}),
        "provenance": entry.result.provenance.model_copy(update={"command": "imibench score ```\n# injected"})})
    panel = provenance_markdown(LoadedResult(entry.path, evil))
    assert panel.startswith("**&lt;b&gt;x&lt;/b&gt;**")  # escaped outside code blocks (inside, it is literal)
    assert "````bash\nimibench score ```\n# injected\n````" in panel

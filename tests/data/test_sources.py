import hashlib
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from benchmark.api.errors import ConfigError
from benchmark.data.push import build_hub_folder
from benchmark.data.sources import RESPONSE_FILES, LoadedTrials, SourceSpec, load_trials, parse_source
from tests.data.release_fixtures import N_LOWER, N_MAIN, write_tiny_release


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return write_tiny_release(tmp_path / "release")


def test_parse_hub_forms(tmp_path: Path):
    assert parse_source("hf:imi-bench/imi-human-responses") == SourceSpec(
        kind="hub", spec="hf:imi-bench/imi-human-responses", repo_id="imi-bench/imi-human-responses"
    )
    spec = parse_source("hf:owner/name@v1.0")
    assert (spec.kind, spec.repo_id, spec.revision) == ("hub", "owner/name", "v1.0")
    folder = tmp_path / "ds@2"  # a dataset folder on disk, even one with '@' in its name
    folder.mkdir()
    assert parse_source(f"hf:{folder}").repo_id == str(folder)


def test_parse_zenodo_forms(tmp_path: Path):
    assert parse_source("zenodo") == SourceSpec(kind="zenodo", spec="zenodo")
    spec = parse_source(f"zenodo:{tmp_path}")
    assert (spec.kind, spec.path) == ("zenodo", tmp_path)


def test_parse_path_forms(release: Path, tmp_path: Path):
    assert parse_source(str(release)) == SourceSpec(kind="local", spec=str(release), path=release)
    csv = release / "human_responses" / "responses_main.csv"
    assert parse_source(str(csv)).path == csv
    hub = build_hub_folder(release, tmp_path / "hub")
    spec = parse_source(str(hub))
    assert (spec.kind, spec.repo_id) == ("hub", str(hub))


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("s3:bucket/key", "no file or folder"),
        ("/no/such/release", "no file or folder"),
        ("zenodo:/no/such/dir", "existing folder"),
        ("hf:just-a-name", "OWNER/NAME"),
        ("hf:owner/name@", "OWNER/NAME"),
        ("hf:a/b/c", "OWNER/NAME"),
        ("   ", "empty"),
    ],
)
def test_bad_specs_name_the_spec_and_list_valid_forms(spec: str, why: str):
    with pytest.raises(ConfigError) as info:
        parse_source(spec)
    message = str(info.value)
    assert repr(spec) in message and why in message
    assert "hf:OWNER/NAME[@REVISION]" in message and "zenodo:DIR" in message and "PATH/to/release" in message


def test_bad_file_suffix_and_folder_without_release(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"suffix '\.txt'"):
        parse_source(str(tmp_path / "notes.txt"))
    with pytest.raises(ConfigError, match="neither human_responses/"):
        parse_source(str(tmp_path))


def test_source_spec_fields_must_match_kind():
    with pytest.raises(ValidationError):
        SourceSpec(kind="hub", spec="x")


def test_unknown_responses_is_a_config_error(release: Path):
    with pytest.raises(ConfigError) as info:
        load_trials(str(release), responses="best")
    assert "'best'" in str(info.value) and str(list(RESPONSE_FILES)) in str(info.value)


@pytest.mark.parametrize(("responses", "participants", "passed"), [
    ("main", N_MAIN, {True}),
    ("lower_quality", N_LOWER, {False}),
    ("all", N_MAIN + N_LOWER, {True, False}),
])
def test_load_release_folder(release: Path, responses: str, participants: int, passed: set):
    loaded = load_trials(str(release), responses=responses)
    assert isinstance(loaded, LoadedTrials)
    assert loaded.trials["participant_id"].nunique() == participants
    assert set(loaded.trials["passed_checks"]) == passed
    name = f"human_responses/responses_{responses}.csv"
    digest = hashlib.sha256((release / name).read_bytes()).hexdigest()
    assert loaded.files == {name: digest} and loaded.revision == digest
    assert loaded.release_root == release and f"responses_{responses}" in loaded.source


def test_every_source_kind_gives_the_same_trials(release: Path, tmp_path: Path):
    reference = load_trials(str(release)).trials
    hub = build_hub_folder(release, tmp_path / "hub")
    for spec in (
        str(release / "human_responses" / "responses_main.csv"),
        f"zenodo:{release}",
        f"hf:{hub}",
        str(hub),
    ):
        loaded = load_trials(spec, cache_dir=tmp_path / "cache", progress=False)
        pd.testing.assert_frame_equal(loaded.trials, reference, obj=spec)

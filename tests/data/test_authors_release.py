"""Every path on a release in the authors' own shape (tests/data/authors_release.py): summary, validate, fit,
check-stimuli and push-to-hub, from csv, pickle, parquet and Hub folders."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli.main import main
from benchmark.data.sources import load_trials
from benchmark.data.summary import summarize
from tests.data.authors_release import AuthorsRelease, write_authors_release


def run_cli(*argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `imibench ARGV`; a RuntimeWarning from a `data` command fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        code = main(list(argv))
    runtime = [w for w in seen if issubclass(w.category, RuntimeWarning)] if argv[0] == "data" else []
    assert not runtime, [str(w.message) for w in runtime]
    return code, out.getvalue(), err.getvalue()


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imibench: error:"), stderr
    return lines[0]


@pytest.fixture(scope="module")
def natural_only(tmp_path_factory: pytest.TempPathFactory) -> AuthorsRelease:
    """No optimized stimuli, hard variants absent from the file map: the Done-when case of the issue."""
    return write_authors_release(tmp_path_factory.mktemp("authors") / "a", hard_in_file_map=False)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> AuthorsRelease:
    """Optimized stimuli and hard variants in the file maps."""
    return write_authors_release(tmp_path_factory.mktemp("authors") / "b", optimized=True, seed=1)


def planted(release: AuthorsRelease) -> dict[tuple[str, str], float]:
    return {(r.model, r.mode): r.accuracy for r in release.models.itertuples(index=False)}


def measured(stdout_csv: str) -> dict[tuple[str, str], float]:
    table = pd.read_csv(io.StringIO(stdout_csv))
    out = {}
    for row in table.itertuples(index=False):
        for mode in ("natural", "optimized"):
            value = getattr(row, f"{mode}_accuracy")
            if pd.notna(value):
                out[(row.model_id, mode)] = value
    return out


# ----------------------------------------------------------------------------------------------- summary


@pytest.mark.parametrize("responses", ["main", "all"])
def test_summary_reproduces_the_planted_means_from_csv(natural_only, responses):
    code, out, err = run_cli("data", "summary", "--source", str(natural_only.root), "--responses", responses,
                             "--n-boot", "50", "--format", "csv")
    assert code == 0 and err == ""
    assert measured(out) == pytest.approx(planted(natural_only))


def test_text_summary_counts_every_exclusion_and_says_the_data_is_real(natural_only):
    code, out, err = run_cli("data", "summary", "--source", str(natural_only.root), "--responses", "all",
                             "--n-boot", "50")
    assert code == 0 and err == ""
    assert "excluded trials of repeat participants (multi_participation): 30 (5 participants)" in out
    assert "excluded trials of participants who failed the checks: 30" in out
    assert "Human data: real responses" in out and "SIMULATED" not in out
    assert "a participant is one (task_id, response_index) pair" in out
    lines = out[out.index("Per model as in the paper"):].splitlines()
    order = [line.split()[0] for line in lines[2:7]]
    assert order == ["GoogLeNet", "ResNet-50", "CLIP", "ResNet-50,", "CLIP"]  # the paper's order


def test_repeat_participants_can_be_kept_and_then_move_the_means(natural_only):
    code, out, _ = run_cli("data", "summary", "--source", str(natural_only.root), "--responses", "all",
                           "--n-boot", "50", "--format", "csv", "--keep-repeat-participants")
    assert code == 0
    kept = measured(out)
    for key, value in planted(natural_only).items():
        assert kept[key] < value  # the repeat worker answered everything wrong
    _, text, _ = run_cli("data", "summary", "--source", str(natural_only.root), "--responses", "all",
                         "--n-boot", "50", "--keep-repeat-participants")
    assert "kept (--keep-repeat-participants) trials of repeat participants" in text


def test_participant_is_task_and_response_index(natural_only):
    loaded = load_trials(str(natural_only.root), responses="all")
    main = loaded.trials[~loaded.trials["is_demo"]]
    per_task = main.groupby("task_id")["participant_id"].nunique()
    # per (model, mode): one HIT redone by a participant who failed the checks, one by a repeat worker
    assert per_task.max() == 2 and (per_task == 2).sum() == 2 * 5
    assert loaded.origin is not None and loaded.origin.kind == "real"


def test_lower_quality_is_a_clear_error_and_never_numpy_noise(natural_only):
    code, _, err = run_cli("data", "summary", "--source", str(natural_only.root), "--responses", "lower_quality")
    assert code == 2
    line = one_line_error(err)
    assert "no trials are left" in line and "--keep-repeat-participants" in line
    code, out, err = run_cli("data", "summary", "--source", str(natural_only.root), "--responses", "lower_quality",
                             "--keep-repeat-participants", "--n-boot", "20")
    assert code == 0 and err == "" and "n/a (too few participants" in out


@pytest.mark.parametrize("fmt", ["json", "markdown"])
def test_paper_table_formats(natural_only, fmt):
    code, out, _ = run_cli("data", "summary", "--source", str(natural_only.root), "--n-boot", "50", "--format", fmt)
    assert code == 0
    if fmt == "json":
        rows = json.loads(out)
        assert [r["model_id"] for r in rows][:3] == ["googlenet", "resnet50", "clip-resnet50"]
        assert {r["n_units"] for r in rows} == {6} and {r["n_participants"] for r in rows} == {10}
        assert {r["model_id"]: r["base_model"] for r in rows}["resnet50_hard85"] == "resnet50"
    else:
        assert out.startswith("| model | id | natural accuracy [95% CI] |") and "| GoogLeNet | googlenet |" in out


def test_summary_filters_and_unit_table_links_hard_variants(natural_only, tmp_path):
    units = tmp_path / "units.csv"
    code, _, _ = run_cli("data", "summary", "--source", str(natural_only.root), "--n-boot", "20", "--models",
                         "resnet50,resnet50_hard85", "--modes", "natural", "--units-out", str(units))
    assert code == 0
    table = pd.read_csv(units)
    assert set(table["model"]) == {"resnet50", "resnet50_hard85"}
    assert set(table["base_model"]) == {"resnet50"}
    # the variant's units are its base model's units
    base = table[table["model"] == "resnet50"][["layer", "channel"]].to_numpy().tolist()
    assert table[table["model"] == "resnet50_hard85"][["layer", "channel"]].to_numpy().tolist() == base
    code, _, err = run_cli("data", "summary", "--source", str(natural_only.root), "--models", "resnet5")
    assert code == 2 and "Did you mean" in one_line_error(err)
    code, _, err = run_cli("data", "summary", "--source", str(natural_only.root), "--modes", "natural,weird")
    assert code == 2 and "weird" in one_line_error(err)


def test_summary_with_imagenet_root_checks_the_stimuli(natural_only):
    code, out, err = run_cli("data", "summary", "--source", str(natural_only.root), "--n-boot", "20",
                             "--imagenet-root", str(natural_only.imagenet_root))
    assert code == 0 and err == ""
    assert "Stimuli: all 1080 files of the summarised units are present." in out
    assert "Stimuli unavailable: model resnet50_hard85 (natural)" in out


# ----------------------------------------------------------------------------------------------- bad shapes


def _copy_with(release: AuthorsRelease, tmp_path: Path, edit) -> Path:
    root = tmp_path / "release"
    shutil.copytree(release.root, root)
    path = root / "human_responses" / "responses_main.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(table)
    table.to_csv(path, index=False)
    return root


def test_non_boolean_correct_is_rejected(natural_only, tmp_path):
    root = _copy_with(natural_only, tmp_path, lambda t: t.__setitem__("correct", "yes"))
    code, _, err = run_cli("data", "summary", "--source", str(root))
    line = one_line_error(err)
    assert code == 2 and "'correct' must hold booleans" in line and "'yes'" in line


def test_missing_structure_on_a_kept_row_names_the_rows(natural_only, tmp_path):
    def blank_model(table: pd.DataFrame) -> None:
        first_main = table.index[table["is_demo"] == "False"][0]
        table.loc[first_main, "model"] = ""

    root = _copy_with(natural_only, tmp_path, blank_model)
    code, _, err = run_cli("data", "summary", "--source", str(root))
    line = one_line_error(err)
    assert code == 2 and "column 'model': missing value on a non-demo trial" in line and "rows [" in line


# ----------------------------------------------------------------------------------------------- pickles


def test_pickles_need_trust_and_load_like_the_csv(natural_only, tmp_path, caplog):
    root = tmp_path / "release"
    shutil.copytree(natural_only.root, root, ignore=shutil.ignore_patterns("*.csv"))
    code, _, err = run_cli("data", "summary", "--source", str(root))
    line = one_line_error(err)
    assert code == 2 and "--trust-pickle" in line and "responses_main.csv" in line
    code, out, err = run_cli("data", "summary", "--source", str(root), "--trust-pickle", "--format", "csv",
                             "--n-boot", "50")
    assert code == 0 and "only pandas/numpy data types are admitted" in caplog.text
    assert measured(out) == pytest.approx(planted(natural_only))


class _Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


class _ShellPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", [_Payload, _ShellPayload])
@pytest.mark.parametrize("trust", [False, True])
def test_a_hostile_pickle_never_runs(natural_only, tmp_path, payload, trust):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(payload(marker)))
    root = tmp_path / "release"
    shutil.copytree(natural_only.root, root, ignore=shutil.ignore_patterns("*.csv", "*.pkl"))
    (root / "human_responses" / "responses_main.pkl").write_bytes(evil.read_bytes())
    flags = ["--trust-pickle"] if trust else []
    for source in (evil, root):
        code, _, err = run_cli("data", "summary", "--source", str(source), *flags)
        assert code == 2 and "Traceback" not in err
        assert ("refused to unpickle" if trust else "--trust-pickle") in err
    code, _, _ = run_cli("proxy", "validate", "--source", str(root), "--metrics", "noise", "--no-progress", *flags)
    assert code == 2
    code, _, _ = run_cli("data", "push-to-hub", "--source", str(root), "--repo-id", "me/x", "--dry-run",
                         "--out", str(tmp_path / "hub"), *flags)
    assert code == 2
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------- stimuli


def test_validate_runs_natural_only_without_optimized_stimuli_or_hard_variants(natural_only, tmp_path):
    out = tmp_path / "validation"
    code, stdout, err = run_cli("proxy", "validate", "--source", str(natural_only.root), "--imagenet-root",
                                str(natural_only.imagenet_root), "--metrics", "mis-pixel", "--n-boot", "50",
                                "--out", str(out), "--no-progress")
    assert code == 0, err
    assert "Unavailable: model resnet50_hard85 (natural)" in stdout
    assert "Unavailable: model clip-resnet50_hard95 (natural)" in stdout
    table = pd.read_csv(out / "comparison.csv")
    assert table["mode"].tolist() == ["natural"] and table["n_units"].tolist() == [18]
    assert (out / "mis-pixel" / "report.json").is_file()
    left_out = pd.read_csv(out / "unavailable.csv")
    assert sorted(left_out["model"]) == ["clip-resnet50_hard95", "resnet50_hard85"] and set(left_out["n_units"]) == {6}


def test_named_models_or_modes_without_stimuli_are_errors(natural_only, full):
    base = ("proxy", "validate", "--metrics", "noise", "--no-progress", "--n-boot", "0")
    code, _, err = run_cli(*base, "--source", str(natural_only.root), "--imagenet-root",
                           str(natural_only.imagenet_root), "--models", "resnet50,resnet50_hard85")
    assert code == 2 and "--models resnet50_hard85 was asked for" in one_line_error(err)
    no_optimized = full.root.parent / "no_optimized"
    if not no_optimized.exists():
        shutil.copytree(full.root, no_optimized, ignore=shutil.ignore_patterns("optimized_file_map.json"))
    code, _, err = run_cli(*base, "--source", str(no_optimized), "--imagenet-root", str(full.imagenet_root),
                           "--modes", "optimized")
    assert code == 2 and "--modes optimized was asked for" in one_line_error(err)
    code, stdout, err = run_cli(*base, "--source", str(no_optimized), "--imagenet-root", str(full.imagenet_root),
                                "--scheme", "kfold", "--k", "3")
    assert code == 0, err
    assert "Unavailable: mode optimized: 30 unit(s) not analysed: no image_data/optimized_file_map.json" in stdout


@pytest.mark.slow
def test_validate_both_modes_and_filters_on_the_full_release(full, tmp_path):
    out = tmp_path / "v"
    code, stdout, err = run_cli("proxy", "validate", "--source", str(full.root), "--imagenet-root",
                                str(full.imagenet_root), "--metrics", "mis-pixel", "--n-boot", "20", "--out",
                                str(out), "--no-progress", "--models", "googlenet,resnet50,resnet50_hard85")
    assert code == 0, err
    assert "Unavailable" not in stdout
    table = pd.read_csv(out / "comparison.csv")
    assert sorted(table["mode"]) == ["natural", "optimized"] and set(table["n_units"]) == {18}
    code, _, err = run_cli("proxy", "validate", "--source", str(full.root), "--imagenet-root",
                           str(full.imagenet_root), "--metrics", "mis-pixel", "--n-boot", "0", "--out",
                           str(tmp_path / "n"), "--no-progress", "--modes", "natural")
    assert code == 0, err
    assert pd.read_csv(tmp_path / "n" / "comparison.csv")["mode"].tolist() == ["natural"]


def test_fit_with_model_filter(full, tmp_path):
    from benchmark.proxies.fitted import load_fitted_proxy

    target = tmp_path / "mis.json"
    code, _, err = run_cli("proxy", "fit", "--source", str(full.root), "--imagenet-root",
                           str(full.imagenet_root), "--metric", "mis-pixel", "--n-boot", "0", "--out",
                           str(target), "--no-progress", "--models", "googlenet,resnet50,clip-resnet50")
    assert code == 0, err
    _, record = load_fitted_proxy(target)
    assert record.validation["n_units"] == 18 and record.validation["n_models"] == 3


def test_a_missing_stimulus_file_stops_validation_and_check_stimuli_lists_it(natural_only, tmp_path):
    imagenet = tmp_path / "ILSVRC2012" / "train"
    shutil.copytree(natural_only.imagenet_root, imagenet)
    victims = sorted(imagenet.rglob("*.JPEG"))[:2]
    for victim in victims:
        victim.unlink()
    (sorted(imagenet.rglob("*.JPEG"))[5]).write_bytes(b"not an image")
    code, _, err = run_cli("proxy", "validate", "--source", str(natural_only.root), "--imagenet-root",
                           str(imagenet), "--metrics", "mis-pixel", "--no-progress", "--n-boot", "0")
    line = one_line_error(err)
    assert code == 2 and "2 of 1080 stimulus file(s) are missing" in line and "check-stimuli" in line
    assert str(victims[0]) in line or str(victims[1]) in line
    code, out, err = run_cli("data", "check-stimuli", "--source", str(natural_only.root), "--imagenet-root",
                             str(imagenet), "--no-progress")
    assert code == 1
    assert "Checked 1080 stimulus file(s): 2 missing, 1 unreadable." in out
    assert all(f"missing: {v}" in out for v in victims) and "unreadable: " in out
    # the dataset's top folder instead of train/: the error says which folder to pass
    code, _, err = run_cli("proxy", "validate", "--source", str(natural_only.root), "--imagenet-root",
                           str(imagenet.parent), "--metrics", "noise", "--no-progress", "--n-boot", "0")
    assert code == 2 and f"pass --imagenet-root {imagenet}" in one_line_error(err)


def test_check_stimuli_passes_on_a_complete_release(natural_only):
    code, out, err = run_cli("data", "check-stimuli", "--source", str(natural_only.root), "--imagenet-root",
                             str(natural_only.imagenet_root), "--no-progress")
    assert code == 0 and err == ""
    assert out.startswith("Checked 1080 stimulus file(s): 0 missing, 0 unreadable.")


# ----------------------------------------------------------------------------------------------- Hub / parquet


def test_push_to_hub_and_back_from_parquet_and_hub_folders(full, tmp_path):
    hub = tmp_path / "hub"
    code, _, err = run_cli("data", "push-to-hub", "--source", str(full.root), "--repo-id", "me/imi", "--dry-run",
                           "--out", str(hub))
    assert code == 0, err
    card = (hub / "README.md").read_text()
    assert "imibench_origin:\n  kind: real" in card
    for source in (f"hf:{hub}", str(hub / "data" / "all.parquet")):
        responses = ("--responses", "all") if source.startswith("hf:") else ()
        code, out, err = run_cli("data", "summary", "--source", source, *responses, "--n-boot", "20",
                                 "--format", "csv")
        assert code == 0, err
        assert measured(out) == pytest.approx(planted(full))
    loaded = load_trials(f"hf:{hub}", responses="main", progress=False)
    assert loaded.origin is not None and loaded.origin.kind == "real"


def test_single_config_hub_folder_loads_as_main(full, tmp_path):
    folder = tmp_path / "one"
    (folder / "data").mkdir(parents=True)
    table = pd.read_csv(full.root / "human_responses" / "responses_main.csv")
    table.to_parquet(folder / "data" / "train.parquet")
    (folder / "README.md").write_text("# my copy of the main responses\n")
    code, out, err = run_cli("data", "summary", "--source", str(folder), "--n-boot", "20", "--format", "csv")
    assert code == 0, err
    assert measured(out) == pytest.approx(planted(full))
    loaded = load_trials(str(folder), progress=False)
    assert any("only config 'default'" in note for note in loaded.notes)
    code, _, err = run_cli("data", "summary", "--source", str(folder), "--responses", "all")
    assert code == 2 and "single config 'default'" in one_line_error(err)


def test_simulated_release_stays_simulated_through_the_hub(sim_release, tmp_path):
    loaded = load_trials(str(sim_release))
    assert loaded.origin is not None and loaded.origin.is_simulated
    assert loaded.origin.simulator is not None and loaded.origin.simulator["seed"] == 0
    summary = summarize(loaded.trials, source=loaded.source, n_boot=20, origin=loaded.origin)
    from benchmark.data.summary import format_summary

    assert "SIMULATED humans" in format_summary(summary)
    hub = tmp_path / "hub"
    code, _, err = run_cli("data", "push-to-hub", "--source", str(sim_release), "--repo-id", "me/sim", "--dry-run",
                           "--out", str(hub))
    assert code == 0, err
    assert "kind: simulated" in (hub / "README.md").read_text()
    again = load_trials(f"hf:{hub}", progress=False)
    assert again.origin is not None and again.origin.is_simulated and again.origin.simulator["seed"] == 0
    table = load_trials(str(hub / "data" / "main.parquet"))  # a lone parquet file keeps the mark too
    assert table.origin is not None and table.origin.is_simulated and table.origin.simulator["seed"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "pickle", "hub"])
def test_validate_and_fit_from_every_source_kind(natural_only, tmp_path, kind):
    from benchmark.proxies.fitted import load_fitted_proxy

    flags: tuple[str, ...] = ()
    if kind == "csv":
        source = str(natural_only.root)
    elif kind == "pickle":
        root = tmp_path / "release"
        shutil.copytree(natural_only.root, root, ignore=shutil.ignore_patterns("*.csv"))
        source, flags = str(root), ("--trust-pickle",)
    else:
        from benchmark.data.push import build_hub_folder

        source = f"hf:{build_hub_folder(natural_only.root, tmp_path / 'hub')}"
    common = ("--source", source, "--imagenet-root", str(natural_only.imagenet_root), "--n-boot", "0",
              "--no-progress", *flags)
    code, _, err = run_cli("proxy", "validate", *common, "--metrics", "mis-pixel", "--out", str(tmp_path / "v"))
    assert code == 0, err
    assert pd.read_csv(tmp_path / "v" / "comparison.csv")["n_units"].tolist() == [18]
    code, _, err = run_cli("proxy", "fit", *common, "--metric", "mis-pixel", "--out", str(tmp_path / "f.json"))
    assert code == 0, err
    _, record = load_fitted_proxy(tmp_path / "f.json")
    assert record.validation["n_units"] == 18

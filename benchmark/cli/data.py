"""`imibench data ...`: simulate a release, summarise human data, push the release to the Hub."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from benchmark.api.errors import ConfigError, SourceUnavailableError
from benchmark.data.selection import check_modes, parse_list
from benchmark.data.sources import RESPONSE_FILES, LoadedTrials, load_trials
from benchmark.data.stimuli import IMAGENET_ENV
from benchmark.data.stimulus_check import (
    FileCheck,
    check_files,
    format_check,
    missing_files_error,
    split_available,
    task_paths,
)
from benchmark.data.summary import format_paper_table, format_summary, paper_table, plot_summary, summarize

FORMATS = ("text", "csv", "json", "markdown")

SOURCE_HELP = (
    "human responses: hf:OWNER/NAME[@REV] (Hub dataset), zenodo (download record 8131197), zenodo:DIR "
    "(downloaded Zenodo files), a release folder, or a .csv/.parquet file (.pkl only with --trust-pickle)"
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `data` and its subcommands."""
    parser = commands.add_parser("data", help="human 2-AFC data: simulate, summarise, push to the Hub")
    sub = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    sim = sub.add_parser("simulate", help="write a simulated, release-shaped dataset with known ground truth")
    sim.add_argument("--out", required=True, type=Path, help="folder to write the release into")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--units-per-layer", type=int, default=None, help="units per layer (default: simulator's)")
    sim.set_defaults(func=run_simulate)

    summary = sub.add_parser("summary", help="per-model human accuracy, CIs and noise ceilings")
    add_source_arguments(summary)
    add_filter_arguments(summary)
    summary.add_argument("--plot", type=Path, help="save a PNG plot (accuracy per model, natural vs optimized)")
    summary.add_argument("--units-out", type=Path, help="write the per-unit table (CSV or parquet by suffix)")
    summary.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for CIs")
    summary.add_argument("--seed", type=int, default=0)
    summary.add_argument("--format", choices=FORMATS, default="text",
                         help="text: the full summary; csv/json/markdown: the per-model table as in the paper")
    summary.add_argument("--imagenet-root", type=Path,
                         help=f"ImageNet-2012 train folder (or ${IMAGENET_ENV}): also check that every natural "
                              "stimulus of the summarised units is there")
    summary.set_defaults(func=run_summary)

    check = sub.add_parser("check-stimuli", help="list every missing or unreadable stimulus file before a long run")
    add_source_arguments(check)
    add_filter_arguments(check)
    check.add_argument("--imagenet-root", type=Path, help=f"ImageNet-2012 train folder (or ${IMAGENET_ENV})")
    check.add_argument("--no-decode", action="store_true", help="only check that files exist (faster)")
    check.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    check.set_defaults(func=run_check_stimuli)

    push = sub.add_parser("push-to-hub", help="convert the release to parquet with its card and upload it")
    add_source_arguments(push)
    push.add_argument("--repo-id", required=True, help="Hub dataset repo to create or update, OWNER/NAME")
    push.add_argument("--revision", help="branch to push to (default: main)")
    push.add_argument("--dry-run", action="store_true", help="write the folder that would be uploaded; no network")
    push.add_argument("--out", type=Path, help="where to write the upload folder (default: a temporary folder)")
    push.add_argument("--token", help="Hub token (default: the one saved by `hf auth login`)")
    push.add_argument("--license", help="licence id for the card (default: the one in the Zenodo record metadata)")
    push.set_defaults(func=run_push)


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --source, --responses, --trust-pickle and --keep-repeat-participants (every command reading human data)."""
    parser.add_argument("--source", required=True, help=SOURCE_HELP)
    parser.add_argument("--responses", choices=RESPONSE_FILES, default="main",
                        help="which response file of the release (default: main = participants who passed)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="read pickled response tables (.pkl, .pd.pkl) you created; pickles can run code, so "
                             "only pandas/numpy data types are admitted. Prefer the release's csv files")
    parser.add_argument("--keep-repeat-participants", action="store_true",
                        help="keep trials of repeat participants (multi_participation), which the published "
                             "analysis excludes")


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --models and --modes (comma-separated), shared by summary, check-stimuli, proxy validate."""
    parser.add_argument("--models", help="comma-separated model ids (default: all; without stimuli: left out "
                                         "with the reason)")
    parser.add_argument("--modes", help="comma-separated modes, natural,optimized (default: every mode whose "
                                        "stimuli are present)")


def run_simulate(args: argparse.Namespace) -> int:
    """Write a simulated release."""
    from benchmark.data.simulate import SimulationConfig, write_release

    overrides = {"units_per_layer": args.units_per_layer} if args.units_per_layer is not None else {}
    root = write_release(args.out, SimulationConfig(seed=args.seed, **overrides), progress=True)
    print(f"Simulated release written to {root}")
    print(f"Summarise it with: imibench data summary --source {root}")
    return 0


def run_summary(args: argparse.Namespace) -> int:
    """Print per-model tables and optionally save the plot and the unit table."""
    if args.units_out:
        _check_table_suffix(args.units_out)
    loaded = load_trials(args.source, responses=args.responses, trust_pickle=args.trust_pickle)
    summary = summarize(loaded.trials, source=loaded.source, notes=loaded.notes, n_boot=args.n_boot, seed=args.seed,
                        models=parse_list(args.models, "models"), modes=check_modes(parse_list(args.modes, "modes")),
                        keep_repeats=args.keep_repeat_participants, origin=loaded.origin)
    # With --imagenet-root (or the variable, for a source that has stimuli) the stimuli are checked too.
    wanted = args.imagenet_root is not None or (os.environ.get(IMAGENET_ENV) and loaded.release_root is not None)
    stimuli = _stimulus_lines(loaded, summary.units, args) if wanted else []
    if args.format != "text":
        print(format_paper_table(paper_table(summary), args.format))
        return 0
    print(format_summary(summary))
    if stimuli:
        print("\n" + "\n".join(stimuli))
    if args.plot:
        print(f"\nPlot written to {plot_summary(summary, args.plot)}")
    if args.units_out:
        _write_table(summary.units, args.units_out)
        print(f"Per-unit table written to {args.units_out}")
    return 0


def _stimulus_lines(loaded: LoadedTrials, units: pd.DataFrame, args: argparse.Namespace) -> list[str]:
    """Check the summarised units' stimulus files (an error when any is missing); lines saying what was checked."""
    check, unavailable, root = _check_stimuli(loaded, units, args, decode=False, progress=False)
    if not check.ok:
        raise missing_files_error(check, root)
    return [f"Stimuli: all {check.n_files} files of the summarised units are present."] + [
        f"Stimuli unavailable: {u.line()}" for u in unavailable]


def _check_stimuli(loaded: LoadedTrials, units: pd.DataFrame, args: argparse.Namespace, *, decode: bool,
                   progress: bool) -> tuple[FileCheck, list, Path]:
    from benchmark.data.stimuli import StimulusIndex

    if loaded.release_root is None:
        raise SourceUnavailableError(
            f"{loaded.source} has responses but no image_data/ file maps, so its stimuli cannot be checked. Pass "
            "a release folder, zenodo:DIR or a Hub dataset folder that holds image_data/."
        )
    index = StimulusIndex.from_release(loaded.release_root, imagenet_root=args.imagenet_root)
    table, unavailable = split_available(index, units, models=parse_list(args.models, "models"),
                                         modes=parse_list(args.modes, "modes"))
    rows = table[["model", "layer", "channel", "mode"]].itertuples(index=False)
    paths = task_paths(t for r in rows for t in index.unit_tasks(r.model, r.layer, int(r.channel), r.mode))
    return check_files(paths, decode=decode, progress=progress), unavailable, index.imagenet_root


def run_check_stimuli(args: argparse.Namespace) -> int:
    """List every missing or unreadable stimulus file of the selected units; exit 1 when there is any."""
    loaded = load_trials(args.source, responses=args.responses, trust_pickle=args.trust_pickle)
    from benchmark.data.exclusions import apply_exclusions
    from benchmark.data.schema import units_of
    from benchmark.data.selection import select_trials

    kept, _ = apply_exclusions(loaded.trials, keep_repeats=args.keep_repeat_participants)
    kept = select_trials(kept, models=parse_list(args.models, "models"),
                         modes=check_modes(parse_list(args.modes, "modes")), source=loaded.source)
    check, unavailable, root = _check_stimuli(loaded, units_of(kept), args, decode=not args.no_decode,
                                              progress=not args.no_progress)
    print(format_check(check, unavailable))
    if not check.ok:
        print(f"imibench: error: {missing_files_error(check, root)}", file=sys.stderr)
        return 1
    return 0


def run_push(args: argparse.Namespace) -> int:
    """Build the Hub folder and upload it (or only write it with --dry-run)."""
    from benchmark.data.push import push_to_hub

    # validates the release before anything is written
    loaded = load_trials(args.source, responses=args.responses, trust_pickle=args.trust_pickle)
    result = push_to_hub(loaded, args.repo_id, revision=args.revision, dry_run=args.dry_run, out_dir=args.out,
                         token=args.token, license=args.license, trust_pickle=args.trust_pickle)
    verb = "would be uploaded" if args.dry_run else "uploaded"
    print(f"Dataset folder {verb} to {args.repo_id}: {result}")
    return 0


TABLE_SUFFIXES = (".csv", ".parquet", ".json")


def _check_table_suffix(path: Path) -> None:
    if path.suffix not in TABLE_SUFFIXES:
        raise ConfigError(f"Cannot write a table to {path}: the suffix must be one of {', '.join(TABLE_SUFFIXES)}.")


def _write_table(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        table.to_parquet(tmp, index=False)
    elif path.suffix == ".json":
        tmp.write_text(json.dumps(table.to_dict("records"), indent=2, default=str))
    else:
        table.to_csv(tmp, index=False)
    tmp.replace(path)

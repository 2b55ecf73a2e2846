"""`imibench data ...`: simulate a release, summarise human data, push the release to the Hub."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from benchmark.api.errors import ConfigError
from benchmark.data.sources import RESPONSE_FILES, load_trials
from benchmark.data.summary import format_summary, plot_summary, summarize

SOURCE_HELP = (
    "human responses: hf:OWNER/NAME[@REV] (Hub dataset), zenodo (download record 8131197), zenodo:DIR "
    "(downloaded Zenodo files), a release folder, or a .csv/.parquet/.pkl file"
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
    summary.add_argument("--plot", type=Path, help="save a PNG plot (accuracy per model, natural vs optimized)")
    summary.add_argument("--units-out", type=Path, help="write the per-unit table (CSV or parquet by suffix)")
    summary.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for CIs")
    summary.add_argument("--seed", type=int, default=0)
    summary.set_defaults(func=run_summary)

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
    """Add --source and --responses, shared by every command that reads human data."""
    parser.add_argument("--source", required=True, help=SOURCE_HELP)
    parser.add_argument("--responses", choices=RESPONSE_FILES, default="main",
                        help="which response file of the release (default: main = participants who passed)")


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
    loaded = load_trials(args.source, responses=args.responses)
    summary = summarize(loaded.trials, source=loaded.source, notes=loaded.notes, n_boot=args.n_boot, seed=args.seed)
    print(format_summary(summary))
    if args.plot:
        print(f"\nPlot written to {plot_summary(summary, args.plot)}")
    if args.units_out:
        _write_table(summary.units, args.units_out)
        print(f"Per-unit table written to {args.units_out}")
    return 0


def run_push(args: argparse.Namespace) -> int:
    """Build the Hub folder and upload it (or only write it with --dry-run)."""
    from benchmark.data.push import push_to_hub

    loaded = load_trials(args.source, responses=args.responses)  # validates the release before anything is written
    result = push_to_hub(loaded, args.repo_id, revision=args.revision, dry_run=args.dry_run, out_dir=args.out,
                         token=args.token, license=args.license)
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

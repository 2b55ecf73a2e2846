"""`imibench results show`: print a result file."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `results` and its subcommands."""
    parser = commands.add_parser("results", help="inspect result files")
    sub = parser.add_subparsers(dest="results_command", metavar="RESULTS_COMMAND", required=True)
    show = sub.add_parser("show", help="print a result file's scores, proxy and provenance")
    show.add_argument("file", type=Path)
    show.add_argument("--units", type=int, default=10, help="how many most and least interpretable units to list")
    show.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    """Validate and print one result file."""
    from benchmark.results.io import read_result
    from benchmark.results.show import format_result

    print(format_result(read_result(args.file), max_units=args.units))
    return 0

"""`imibench demo`: run the embedded default end to end, offline."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `demo`."""
    parser = commands.add_parser("demo", help="run the whole chain offline on simulated data (a few minutes on CPU)")
    parser.add_argument("--out", type=Path, default=Path("imibench-out/demo"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its report."""
    from benchmark.demo import describe, run_demo

    print(describe(run_demo(args.out, seed=args.seed)))
    return 0

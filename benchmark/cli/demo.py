"""`imibench demo`: run the embedded default end to end, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.api.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `demo`."""
    parser = commands.add_parser(
        "demo", help="run the whole chain offline: simulated humans, a toy CNN trained in seconds vs its random twin"
    )
    parser.add_argument("--out", type=Path, default=Path("imibench-out/demo"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=2, help="training epochs of the toy model (default 2)")
    parser.add_argument("--epochs-to-score", default="",
                        help="comma-separated epochs whose checkpoints are also scored, e.g. 0,1 (interpretability "
                             "over training; 0 is the random twin)")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def parse_epochs(text: str, epochs: int) -> tuple[int, ...]:
    """`0,1,2` -> (0, 1, 2), each within 0..epochs."""
    values = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit() or int(part) > epochs:
            raise ConfigError(f"--epochs-to-score {text!r}: {part!r} is not an epoch in 0..{epochs} (--epochs).")
        values.append(int(part))
    return tuple(sorted(set(values)))


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its report."""
    from benchmark.demo import DemoConfig, describe, run_demo

    if args.epochs < 1:
        raise ConfigError(f"--epochs {args.epochs} must be at least 1.")
    config = DemoConfig(seed=args.seed, epochs=args.epochs, epochs_to_score=parse_epochs(args.epochs_to_score,
                                                                                        args.epochs))
    print(describe(run_demo(args.out, progress=not args.no_progress, config=config)))
    return 0

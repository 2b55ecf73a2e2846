"""Entry point of the `imibench` command: builds the parser and turns project errors into clear messages."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from benchmark import __version__
from benchmark.api.errors import ImiBenchError
from benchmark.cli import data, demo, leaderboard, proxy, publish, queue, results, score, submit

SUBCOMMANDS = (data, proxy, score, results, submit, queue, publish, leaderboard, demo)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="imibench",
        description="Automated interpretability benchmark for vision models, validated against human 2-AFC data.",
    )
    parser.add_argument("--version", action="version", version=f"imibench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except ImiBenchError as err:
        print(f"imibench: error: {err}", file=sys.stderr)
        return 2
    except ValidationError as err:
        print(f"imibench: error: invalid configuration:\n{err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("imibench: interrupted; results written so far are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

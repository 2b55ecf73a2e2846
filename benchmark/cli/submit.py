"""`imibench submit SPEC.yaml`: validate a submission (on CPU, before any GPU time) and add it to the queue."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.submissions.queue import SubmissionQueue

DEFAULT_QUEUE = Path("submissions/queue")


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `submit`."""
    parser = commands.add_parser(
        "submit", help="validate a submission spec and add it to the scoring queue",
        description="Validate a submission spec (schema, no remote code, the model on a few images, duplicates) and "
        "enqueue it as PENDING. The last output line is a JSON object with the entry's id and state.",
    )
    parser.add_argument("spec", type=Path, help="submission spec (YAML/JSON); see submissions/README.md")
    parser.add_argument("--queue", type=Path, default=DEFAULT_QUEUE, help=f"queue folder (default: {DEFAULT_QUEUE})")
    parser.add_argument("--results", type=Path, help="also refuse models already scored in this results folder")
    parser.add_argument("--skip-model-check", action="store_true",
                        help="do not load the model (operators only: the duplicate key is then the stated one)")
    parser.add_argument("--n-images", type=int, default=4, help="images for the model check (default: 4)")
    parser.add_argument("--public", action="store_true",
                        help="a stranger's submission (the web form): Hub models and datasets or the operator's "
                             "allow-listed image sources only, no path fields, size and rate limits; errors name "
                             "no server path (see benchmark/submissions/public.py)")
    parser.add_argument("--public-config", type=Path,
                        help="operator config of public submissions (YAML; default: $IMIBENCH_PUBLIC_CONFIG)")
    parser.add_argument("--rate-key", help="with --public: the key the rate limit counts (default: the submitter)")
    parser.set_defaults(func=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    """Validate and enqueue; print the id and state."""
    from benchmark.submissions.queue import SubmissionQueue
    from benchmark.submissions.validate import validate_submission

    queue = SubmissionQueue(args.queue)
    if getattr(args, "public", False):
        return _run_public(args, queue)
    validated = validate_submission(args.spec, queue=queue, check_model=not args.skip_model_check,
                                    n_images=args.n_images, results_dir=args.results)
    entry = queue.enqueue(validated.spec, key=validated.key, checks=validated.checks())
    checked = "model checked on CPU" if validated.model_check else "model NOT checked (--skip-model-check)"
    print(f"Submitted {entry.name!r} as {entry.id}: {entry.state} (key {entry.key}; {checked}).")
    print(f"Follow it with: imibench queue status --queue {args.queue}")
    print(json.dumps({"id": entry.id, "state": str(entry.state), "key": entry.key}))
    return 0


def _run_public(args: argparse.Namespace, queue: SubmissionQueue) -> int:
    """`submit --public`: read the spec as plain data and hand it to the public entry point."""
    from benchmark.api.errors import ConfigError
    from benchmark.scoring.spec import read_spec_mapping
    from benchmark.submissions.public import load_public_config, submit_public

    if args.skip_model_check:
        raise ConfigError("--skip-model-check cannot be combined with --public: public submissions are always checked.")
    config = load_public_config(args.public_config)
    fields = read_spec_mapping(args.spec, what="Submission spec", hint="See submissions/README.md.")
    entry = submit_public(fields, queue=queue, config=config, rate_key=args.rate_key, n_images=args.n_images,
                          results_dir=args.results)
    print(f"Submitted {entry.name!r} as {entry.id}: {entry.state} (key {entry.key}; model checked on CPU).")
    print(json.dumps({"id": entry.id, "state": str(entry.state), "key": entry.key}))
    return 0

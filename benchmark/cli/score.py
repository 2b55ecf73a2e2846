"""`imibench score`: score one model into a result file (from a spec file, flags, or a result's provenance)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmark.api.errors import ConfigError


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `score`."""
    parser = commands.add_parser("score", help="score a model's units with a fitted proxy -> result file")
    parser.add_argument("spec", nargs="?", type=Path, help="score spec (YAML); or give --model and --proxy")
    parser.add_argument("--from-result", type=Path, help="rerun the spec recorded in a result file")
    parser.add_argument("--model", help="model spec, e.g. timm:resnet50.a1_in1k, local:PATH?arch=timm:resnet18")
    parser.add_argument("--no-pretrained", action="store_true", help="random weights (offline smoke runs)")
    parser.add_argument("--weights-sha256", help="expected sha256 of the weights file")
    parser.add_argument("--images", help="image source: folder:PATH, hf:OWNER/NAME[@REV][#SPLIT], bundled[:N]")
    parser.add_argument("--proxy", help="fitted proxy file written by `imibench proxy fit`")
    parser.add_argument("--layers", help="comma-separated fnmatch patterns of layer names")
    parser.add_argument("--units-per-layer", type=int)
    parser.add_argument("--total-units", type=int)
    parser.add_argument("--units", choices=("all",), dest="all_units",
                        help="all: every channel of the chosen layers (--layers), or of every eligible layer")
    parser.add_argument("--n-tasks", type=int, help="tasks per unit (protocol N, default 20)")
    parser.add_argument("--query-variant", choices=("extreme", "hard85", "hard95"))
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"))
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--decode", choices=("cpu", "gpu", "auto"),
                        help="decode JPEGs with PIL on the CPU (default), on the GPU (nvJPEG), or auto")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--out", type=Path, help="result file (default results/<submission id>.json)")
    parser.add_argument("--checkpoint-every", type=int, metavar="N",
                        help="checkpoint the activation pass every N batches (default 50); a killed run resumes "
                             "from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def build_spec(args: argparse.Namespace):  # noqa: ANN201 - returns ScoreSpec (imported lazily)
    """The ScoreSpec from a spec file, a result file or flags; flags override the file's fields, and the merged
    fields are validated once (so a flag may supply what the file lacks, e.g. --proxy)."""
    from benchmark.scoring.spec import parse_spec, read_spec_mapping

    sources = [s for s in (args.spec, args.from_result, args.model) if s is not None]
    if args.spec is not None and args.from_result is not None:
        raise ConfigError("Give either a spec file or --from-result, not both.")
    if not sources:
        raise ConfigError("Nothing to score: pass a spec file, --from-result RESULT.json, or --model and --proxy.")
    if args.spec is not None:
        data = read_spec_mapping(args.spec, what="Score spec", hint="Pass a YAML file or use `imibench score --model`.")
    elif args.from_result is not None:
        data = _spec_from_result(args.from_result)
    else:
        data = {}
    overrides = _flag_overrides(args)
    for nested in ("units", "protocol"):  # a flag changes one field of a nested section, not the whole section
        if nested in overrides and isinstance(data.get(nested), dict):
            overrides[nested] = {**data[nested], **overrides[nested]}
    data.update(overrides)
    return parse_spec(data, origin=str(args.spec or args.from_result or "command line"))


def _spec_from_result(path: Path) -> dict:
    from benchmark.results.io import read_result
    from benchmark.results.portable import resolved_spec

    spec = resolved_spec(read_result(path).submission.spec, path.parent)  # recorded paths are relative to it
    spec.pop("metadata", None)  # leaderboard metadata the queue adds; not a scoring field
    spec.pop("out", None)
    spec.pop("work_dir", None)  # a result file may come from elsewhere: it never chooses where this run writes
    return spec


def _flag_overrides(args: argparse.Namespace) -> dict:
    flat = {
        "model": args.model, "weights_sha256": args.weights_sha256, "images": args.images, "proxy": args.proxy,
        "device": args.device, "dtype": args.dtype, "batch_size": args.batch_size, "num_workers": args.num_workers, "decode": args.decode,
        "seed": args.seed, "out": str(args.out) if args.out else None,
        "checkpoint_every": getattr(args, "checkpoint_every", None),
    }
    data = {k: v for k, v in flat.items() if v is not None}
    if args.no_pretrained:
        data["pretrained"] = False
    units = {"layers": args.layers.split(",") if args.layers else None, "units_per_layer": args.units_per_layer,
             "total_units": args.total_units, "all_units": True if args.all_units == "all" else None}
    if any(v is not None for v in units.values()):
        data["units"] = {k: v for k, v in units.items() if v is not None}
    protocol = {"n_tasks": args.n_tasks, "query_variant": args.query_variant}
    if any(v is not None for v in protocol.values()):
        data["protocol"] = {k: v for k, v in protocol.items() if v is not None}
    return data


def run(args: argparse.Namespace) -> int:
    """Score and print the result's summary."""
    from benchmark.results.io import read_result
    from benchmark.results.show import format_result
    from benchmark.scoring.pipeline import score_submission

    spec = build_spec(args)
    path = score_submission(spec, progress=not args.no_progress)
    print(format_result(read_result(path), max_units=5))
    print(f"\nResult written to {path}")
    print(json.dumps({"result": str(path)}))
    return 0

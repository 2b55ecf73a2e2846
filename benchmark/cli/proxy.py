"""`imibench proxy ...`: validate proxy metrics against human data, list the registered metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.cli.data import add_filter_arguments, add_source_arguments
from benchmark.data.selection import parse_list


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `proxy` and its subcommands."""
    parser = commands.add_parser("proxy", help="proxy metrics: validate against human data, fit for scoring, list")
    sub = parser.add_subparsers(dest="proxy_command", metavar="PROXY_COMMAND", required=True)

    validate = sub.add_parser("validate", help="held-out validation of proxy metrics against human accuracy")
    add_source_arguments(validate)
    validate.add_argument("--imagenet-root", type=Path, help="ImageNet-2012 train folder (natural stimuli of a "
                                                              "real release; a simulated release bundles its own)")
    validate.add_argument("--metrics", help="comma-separated registry names or module:Name plugins "
                                            "(default: every registered metric that can run on this data)")
    validate.add_argument("--scheme", default="lomo", help="held-out scheme: lomo (leave one model out, default) "
                                                           "or kfold (grouped by unit)")
    validate.add_argument("--k", type=int, default=5, help="folds for --scheme kfold (default 5)")
    validate.add_argument("--n-boot", type=int, default=1000, help="cluster-bootstrap replicates (models resampled) "
                                                                  "for CIs and p-values (0: none)")
    validate.add_argument("--n-permutations", type=int, default=0,
                          help="within-mode label permutations, refitting the proxy on each, for an exact p-value "
                               "of the headline (default 0: the bootstrap-t p-value; e.g. 199 costs 199 refits)")
    validate.add_argument("--n-refits", type=int, default=200,
                          help="cluster resamples on which a fitted proxy (MIS, learned) is refitted for its "
                               "headline CI (default 200: 200 x folds fits; 0 holds predictions fixed: too narrow)")
    validate.add_argument("--seed", type=int, default=0)
    validate.add_argument("--out", type=Path, help="write DIR/<metric>/report.json + validation.png, "
                                                   "DIR/comparison.csv, DIR/comparison.png, DIR/report.json, DIR/unavailable.csv")
    validate.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_filter_arguments(validate)
    validate.set_defaults(func=run_validate)

    fit = sub.add_parser("fit", help="fit one metric on human data for scoring; store it with its validation")
    add_source_arguments(fit)
    fit.add_argument("--imagenet-root", type=Path, help="ImageNet-2012 train folder (natural stimuli)")
    fit.add_argument("--metric", required=True, help="registry name or module:Name plugin")
    fit.add_argument("--mode", default="natural", help="fit on this mode's units (default natural)")
    fit.add_argument("--scheme", default="lomo", help="held-out scheme for the stored validation numbers")
    fit.add_argument("--k", type=int, default=5)
    fit.add_argument("--n-boot", type=int, default=1000, help="cluster-bootstrap replicates (0: no CIs)")
    fit.add_argument("--n-permutations", type=int, default=0, help="permutation p-value (0: bootstrap-t)")
    fit.add_argument("--n-refits", type=int, default=200, help="resamples refitted for a fitted proxy's CI")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", type=Path, required=True, help="fitted proxy file to write (JSON)")
    fit.add_argument("--no-progress", action="store_true", help="hide progress bars")
    fit.add_argument("--models", help="comma-separated model ids to fit on (default: every model with stimuli)")
    fit.set_defaults(func=run_fit)

    listing = sub.add_parser("list", help="registered proxy metrics with their parameters and requirements")
    listing.set_defaults(func=run_list)
    add_submit_parser(sub)


def add_submit_parser(sub: argparse._SubParsersAction) -> None:
    """Register `proxy submit REPORT_DIR`: queue validation reports for the leaderboard's Proxy metrics tab."""
    from benchmark.results.reports import DEFAULT_BOARD

    submit = sub.add_parser("submit", help="queue a validation report folder for the leaderboard's Proxy metrics tab")
    submit.add_argument("report_dir", type=Path, help="the --out folder of `imibench proxy validate` (or one metric's)")
    submit.add_argument("--board", type=Path, default=DEFAULT_BOARD,
                        help=f"the leaderboard's reports folder (its --reports; default: {DEFAULT_BOARD})")
    submit.set_defaults(func=run_proxy_submit)


def run_proxy_submit(args: argparse.Namespace) -> int:
    """Validate the reports and copy them into the board's folder."""
    from benchmark.results.reports import queue_report

    for folder in queue_report(args.report_dir, args.board):
        print(f"Queued {folder / 'report.json'} for the Proxy metrics board.")
    print(f"Serve it with: imibench leaderboard --results DIR --reports {args.board}")
    return 0


def _split_metrics(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(name.strip() for name in text.split(","))


def run_validate(args: argparse.Namespace) -> int:
    """Validate the metrics and print the comparison table."""
    from benchmark.validation.compare import all_comparisons, format_comparisons
    from benchmark.validation.report import read_report
    from benchmark.validation.run import build_config, prepare_data, run_validation
    from benchmark.validation.tables import comparison_table, format_comparison

    config = build_config(
        source=args.source, responses=args.responses, imagenet_root=args.imagenet_root,
        metrics=_split_metrics(args.metrics), scheme=args.scheme, k=args.k, n_boot=args.n_boot, seed=args.seed,
        n_permutations=args.n_permutations, n_refits=args.n_refits, out=args.out, progress=not args.no_progress,
        models=parse_list(args.models, "models"), modes=parse_list(args.modes, "modes"),
        keep_repeat_participants=args.keep_repeat_participants, trust_pickle=args.trust_pickle,
    )
    if config.metrics is not None:
        from benchmark.validation.run import load_metrics

        load_metrics(config.metrics)  # a misspelt name fails before the data is read
    prepared = prepare_data(config)
    for item in prepared.unavailable:
        print(f"Unavailable: {item.line()}")
    reports = run_validation(config, prepared)
    humans = reports[0].humans if reports else "human data"
    print(f"Held-out validation against {humans} ({config.scheme}"
          f"{f', k={config.k}' if config.scheme == 'kfold' else ''}) on {config.source}.")
    print("Headline: fold-mean Pearson r (per held-out fold, averaged; calibration-free raw scores where a proxy "
          f"has them); 95% CIs by a cluster bootstrap over models ({config.n_boot} replicates; a fitted proxy "
          f"refitted on {min(config.n_refits, config.n_boot)} of them).")
    print(format_comparison(comparison_table(reports)))
    comparisons = all_comparisons(reports, n_boot=config.n_boot, confidence=config.confidence, seed=config.seed) \
        if config.out is None else read_report(config.out).comparisons
    if comparisons:
        print("\nPaired comparisons (difference of headline r on the same units and cluster resamples):")
        print(format_comparisons(comparisons))
    if config.out is not None:
        print(f"\nReports, figures and comparison.csv written to {config.out}")
    _fail_on_requested_skips(reports, requested=config.metrics is not None)
    return 0


def _fail_on_requested_skips(reports: list, *, requested: bool) -> None:
    """A metric the user named that could not run is an error (non-zero exit), never a quiet "Skipped" line."""
    skipped = [r for r in reports if r.status == "skipped"]
    if requested and skipped:
        from benchmark.api.errors import ConfigError

        reasons = "; ".join(f"{r.metric.name}: {r.skip_reason}" for r in skipped)
        raise ConfigError(
            f"{len(skipped)} of the requested metrics could not run on this data ({reasons}). Provide what they "
            "need, or leave them out of --metrics (without --metrics, every metric that can run is validated)."
        )


def run_fit(args: argparse.Namespace) -> int:
    """Fit one metric and write the fitted proxy file."""
    from benchmark.api.types import MODES
    from benchmark.validation.fit import fit_proxy
    from benchmark.validation.report import humans_label
    from benchmark.validation.run import build_config

    config = build_config(source=args.source, responses=args.responses, imagenet_root=args.imagenet_root,
                          metrics=(args.metric,), scheme=args.scheme, k=args.k, n_boot=args.n_boot, seed=args.seed,
                          n_permutations=args.n_permutations, n_refits=args.n_refits, progress=not args.no_progress,
                          models=parse_list(args.models, "models"),
                          modes=(args.mode,) if args.mode in MODES else None,
                          keep_repeat_participants=args.keep_repeat_participants, trust_pickle=args.trust_pickle)
    record = fit_proxy(config, mode=args.mode, out=args.out)
    headline = record.validation.get("headline", {})
    humans = humans_label(record.human_data)
    print(f"Fitted {record.name} v{record.version} on {record.validation['n_units']} {args.mode} units "
          f"({humans}): {record.fitted_params}")
    if headline.get("value") is not None:
        ci = "" if headline.get("ci_low") is None else f" [{headline['ci_low']:.3f}, {headline['ci_high']:.3f}]"
        p = "" if headline.get("p_value") is None else f", p = {headline['p_value']:.3g}"
        print(f"Held-out ({args.scheme}) headline r (fold-mean Pearson) with {humans}: {headline['value']:.3f}{ci}{p}")
    print(f"Written to {args.out}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print every registered metric with its requirements and parameters."""
    from benchmark.validation.run import describe_metrics

    print(describe_metrics())
    return 0

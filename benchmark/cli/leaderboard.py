"""`imibench leaderboard`: serve the Gradio leaderboard over a folder (or Hub dataset repo) of result files."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `leaderboard`."""
    parser = commands.add_parser("leaderboard", help="serve the leaderboard web app over a folder of result files")
    parser.add_argument("--results", required=True,
                        help="folder of result files (JSON), or a Hub dataset repo hf:OWNER/NAME[@REVISION]")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default: 7860)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--queue", type=Path, default=None,
                        help="submission queue folder; enables the Submit tab (default: submissions disabled)")
    parser.add_argument("--stimuli-root", type=Path, default=None,
                        help="folder that relative image ids of result files are resolved against (unit viewer)")
    parser.add_argument("--reports", type=Path, default=None,
                        help="folder of validation reports for the Proxy metrics tab (default: the results "
                             "source's reports/ folder when it has one)")
    parser.add_argument("--humans", default=None,
                        help="human data for the human-accuracy columns: a per-unit table (CSV/parquet with model, "
                             "layer, channel, mode, accuracy) or a release source as `imibench data` reads it")
    parser.add_argument("--public-config", type=Path, default=None,
                        help="operator config of public submissions (YAML: image_sources allow-list of alias -> "
                             "source, max_parameters, max_units, rate_limit, string limits; see "
                             "benchmark/submissions/public.py); default: $IMIBENCH_PUBLIC_CONFIG, else Hub models "
                             "with bundled or hf: images only")
    parser.add_argument("--figures", type=Path, default=None,
                        help="write paper figures (PNG at 200 dpi, SVG, PDF) of the results to this folder and exit")
    parser.add_argument("--submit-command", default=None,
                        help="command the Submit tab runs, with {spec} and {queue} placeholders "
                             "and optional {rate_key} (default: this Python's `-m benchmark.cli.main submit {spec} "
                             "--queue {queue} --public --rate-key {rate_key}`, i.e. `imibench submit --public`)")
    parser.add_argument("--submit-timeout", type=float, default=600.0,
                        help="seconds the Submit tab waits for the submit command (default: 600)")
    parser.add_argument("--poll-seconds", type=float, default=5.0,
                        help="how often the page checks the results folder for new files (default: 5)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the app and serve it until interrupted."""
    from benchmark.api.errors import ConfigError
    from leaderboard.app import AppConfig, launch_app
    from leaderboard.submit import parse_command

    if args.poll_seconds <= 0:
        raise ConfigError(f"--poll-seconds must be positive, got {args.poll_seconds}.")
    if args.submit_timeout <= 0:
        raise ConfigError(f"--submit-timeout must be positive, got {args.submit_timeout}.")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}.")
    if getattr(args, "figures", None) is not None:
        from leaderboard.figures import write_paper_figures

        for path in write_paper_figures(args.results, args.figures, humans=args.humans,
                                        reports=args.reports):
            print(f"wrote {path}")
        return 0
    config = AppConfig(
        results=args.results,
        queue=args.queue,
        stimuli_root=args.stimuli_root,
        reports=args.reports,
        humans=args.humans,
        public_config=args.public_config,
        submit_command=parse_command(args.submit_command),
        submit_timeout_s=args.submit_timeout,
        poll_seconds=args.poll_seconds,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests
    print(f"imibench leaderboard: serving {args.results} on http://{args.host}:{args.port} (Ctrl+C to stop)")
    # A service manager stops the server with SIGTERM: treat it as Ctrl+C, so Gradio closes and the app's scratch
    # folder (thumbnails, downloads) is removed at exit instead of being left in the temp folder.
    signal.signal(signal.SIGTERM, _interrupt)
    launch_app(config, host=args.host, port=args.port)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

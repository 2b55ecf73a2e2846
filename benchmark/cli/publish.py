"""`imibench publish`: validate every result file and upload them with an index and a card to a Hub dataset."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register `publish`."""
    parser = commands.add_parser(
        "publish", help="publish result files (+ leaderboard.parquet index and card) to a Hub dataset",
        description="Every result file is validated first; one invalid file refuses the whole set. The uploaded "
        "folder is the full leaderboard: remote results/*.json absent from it are deleted.",
    )
    parser.add_argument("--results", type=Path, required=True, help="folder of result files (*.json)")
    parser.add_argument("--repo-id", required=True, help="Hub dataset repo, OWNER/NAME (created if missing)")
    parser.add_argument("--revision", help="branch to push to (default: main)")
    parser.add_argument("--dry-run", action="store_true", help="write the folder that would be uploaded; no network")
    parser.add_argument("--out", type=Path, help="new or empty folder to build in (default: a temporary folder)")
    parser.add_argument("--token", help="Hub token (default: the one saved by `hf auth login`, or HF_TOKEN)")
    parser.add_argument("--reports", type=Path, help="also publish the validation reports under this folder (the "
                        "leaderboard's Proxy metrics tab reads them from the dataset's reports/)")
    parser.set_defaults(func=run_publish)


def run_publish(args: argparse.Namespace) -> int:
    """Build (and unless --dry-run, upload) the results dataset folder."""
    from benchmark.submissions.publish import publish_results

    reports = getattr(args, "reports", None)
    folder = publish_results(args.results, args.repo_id, dry_run=args.dry_run or reports is not None,
                             out_dir=args.out, token=args.token, revision=args.revision)
    if reports is not None:
        from benchmark.hub_upload import upload_dataset_folder
        from benchmark.results.reports import add_reports

        added = add_reports(folder, reports)
        print(f"{len(added)} validation report(s) added under reports/.")
        if not args.dry_run:
            upload_dataset_folder(folder, args.repo_id, token=args.token, revision=args.revision,
                                  delete_patterns=["results/*.json", "reports/**"],
                                  commit_message="Publish imi-bench results and validation reports (imibench publish)")
    n_files = len(list((folder / "results").glob("*.json")))
    if args.dry_run:
        print(f"Dry run: {n_files} result files, leaderboard.parquet and README.md written to {folder}; "
              "nothing uploaded.")
    else:
        print(f"Published {n_files} result files to https://huggingface.co/datasets/{args.repo_id} (from {folder}).")
    return 0

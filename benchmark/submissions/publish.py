"""Publish result files to a Hub dataset: results/*.json, a leaderboard.parquet index and a README card.

The index is parquet, not JSON, on purpose: the leaderboard reads every `*.json` of the dataset as a result file.
The uploaded folder is the full leaderboard: remote `results/*.json` files absent from it are deleted.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmark.api.errors import (
    ConfigError,
    DataValidationError,
    SourceUnavailableError,
)
from benchmark.hub_upload import check_repo_id, upload_dataset_folder
from benchmark.results.io import read_result
from benchmark.results.provenance import utc_now
from benchmark.results.schema import ResultFile

logger = logging.getLogger(__name__)

RESULTS_DIR = "results"
INDEX_FILE = "leaderboard.parquet"
CARD_FILE = "README.md"
INDEX_COLUMNS: tuple[str, ...] = (
    "file", "submission_id", "name", "model", "source", "family", "weights_sha256", "weights_id", "revision",
    "n_parameters", "imagenet_top1", "license", "paper", "mis_mean", "mis_p5", "ci_low", "ci_high", "n_units",
    "proxy", "proxy_version", "benchmark_version", "image_source", "device", "dtype", "git_sha", "date",
)


def publish_results(
    results_dir: str | Path,
    repo_id: str,
    *,
    dry_run: bool = False,
    out_dir: str | Path | None = None,
    token: str | None = None,
    revision: str | None = None,
) -> Path:
    """Validate every result file, build the dataset folder and upload it (dry_run: build only); returns the folder."""
    check_repo_id(repo_id)
    results = read_all_results(results_dir)
    folder = build_publish_folder(results, repo_id, out_dir=out_dir)
    if dry_run:
        logger.info("dry run: %d results written to %s, nothing uploaded", len(results), folder)
        return folder
    upload_dataset_folder(folder, repo_id, token=token, revision=revision,
                          delete_patterns=[f"{RESULTS_DIR}/*.json"],
                          commit_message="Publish imi-bench results (imibench publish)")
    return folder


def read_all_results(results_dir: str | Path) -> dict[Path, ResultFile]:
    """Every `*.json` directly in results_dir, validated; any invalid file refuses the whole set, listing each."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise SourceUnavailableError(f"Results folder not found: {folder}. Pass the folder the worker writes "
                                     "(`imibench queue run --results DIR`).")
    paths = sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))
    if not paths:
        raise DataValidationError(f"No result files (*.json) in {folder}: nothing to publish.")
    results, problems = {}, []
    for path in paths:
        try:
            results[path] = read_result(path)
        except (DataValidationError, SourceUnavailableError, UnicodeDecodeError) as err:
            problems.append(f"  - {err}")
    if problems:
        raise DataValidationError(
            f"{len(problems)} of {len(paths)} result files in {folder} are invalid; nothing was published:\n"
            + "\n".join(problems) + "\nRescore or remove them, then publish again."
        )
    return results


def build_publish_folder(results: dict[Path, ResultFile], repo_id: str, *, out_dir: str | Path | None = None) -> Path:
    """Copy the result files to results/ (byte for byte) and write leaderboard.parquet and README.md."""
    folder = _empty_folder(out_dir)
    (folder / RESULTS_DIR).mkdir()
    for path in results:
        shutil.copyfile(path, folder / RESULTS_DIR / path.name)
    index = leaderboard_index(results)
    index.to_parquet(folder / INDEX_FILE, index=False)
    (folder / CARD_FILE).write_text(render_card(index, repo_id), encoding="utf-8")
    return folder


def leaderboard_index(results: dict[Path, ResultFile]) -> pd.DataFrame:
    """One row per result file: who, what, the model-level scores and the provenance essentials."""
    rows = [index_row(f"{RESULTS_DIR}/{path.name}", result) for path, result in results.items()]
    return pd.DataFrame(rows, columns=list(INDEX_COLUMNS)).sort_values("mis_mean", ascending=False, kind="stable")


def index_row(file: str, result: ResultFile) -> dict[str, Any]:
    """The index row of one result (metadata from `submission.spec.metadata`, written by the worker)."""
    sub, summary, prov = result.submission, result.scores.model, result.provenance
    meta = sub.spec.get("metadata") if isinstance(sub.spec.get("metadata"), dict) else {}
    return {
        "file": file, "submission_id": sub.id, "name": meta.get("name") or sub.model, "model": sub.model,
        "source": sub.source, "family": meta.get("family"), "weights_sha256": sub.weights_sha256,
        "weights_id": sub.weights_id, "revision": sub.revision or meta.get("revision"),
        "n_parameters": sub.n_parameters, "imagenet_top1": meta.get("imagenet_top1"),
        "license": meta.get("license"), "paper": meta.get("paper"), "mis_mean": summary.mean, "mis_p5": summary.p5,
        "ci_low": summary.ci_low, "ci_high": summary.ci_high, "n_units": summary.n_units,
        "proxy": result.proxy.name, "proxy_version": result.proxy.version,
        "benchmark_version": result.benchmark_version, "image_source": result.protocol.image_source.id,
        "device": prov.device, "dtype": prov.dtype, "git_sha": prov.git_sha, "date": prov.date,
    }


def render_card(index: pd.DataFrame, repo_id: str) -> str:
    """The dataset card: Hub YAML header (the index as the default config) and a short description."""
    header = {
        "license": "other",
        "pretty_name": "imi-bench leaderboard results",
        "tags": ["interpretability", "leaderboard", "computer-vision"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": INDEX_FILE}]}],
    }
    top = index.head(10)
    lines = [f"| {r['name']} | {r['mis_mean']:.3f} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['n_units']} | "
             f"{r['proxy']} {r['proxy_version']} |" for _, r in top.iterrows()]
    return "\n".join([
        "---", yaml.safe_dump(header, sort_keys=False).strip(), "---", "",
        "# imi-bench leaderboard results", "",
        f"{len(index)} scored submissions, published {utc_now()} by `imibench publish`. Each file in `{RESULTS_DIR}/`",
        "is one result file (schema in `benchmark/results/schema.py` of imi-bench), with the provenance block that",
        f"reproduces it; `{INDEX_FILE}` holds one row per file. The imi-bench leaderboard reads this dataset "
        f"as the results source `hf:{repo_id}`.", "",
        "Licences of the scored weights are listed per row (`license`); the scores themselves are released with the",
        "benchmark.", "",
        "| model | MIS mean | 95% CI | units | proxy |", "|---|---|---|---|---|", *lines, "",
    ])


def _empty_folder(out_dir: str | Path | None) -> Path:
    if out_dir is None:
        return Path(tempfile.mkdtemp(prefix="imibench-publish-"))
    folder = Path(out_dir)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"--out {folder} must be a new or empty folder (stale files would be published); "
                          "pass another path or remove it.")
    folder.mkdir(parents=True, exist_ok=True)
    return folder

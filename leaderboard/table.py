"""The main leaderboard table, built with pandas from result files: rows, ranks with ties, search, filters, CSV.

Rows: one per (submission id, benchmark version); when several files share that key, the one with the newest
`provenance.date` wins (then the later file name).

Ranking rule: scores are comparable only under the same benchmark version and proxy (name + version), so ranks
are computed within each such group. Within a group, rows are ordered by MIS mean (descending; ties broken by the
CI's lower bound, then the model name). A row whose 95% CI overlaps the CI of the row ranked directly above it
shares that row's rank; overlap chains, so a run of overlapping neighbours forms one tie group. Every member of
a tie group with two or more rows gets the group's rank (the position of its first row, as in "1, 2, 2, 4") and
the marker "=" in the `tie` column, so "2 =" reads "tied second".

Metadata read defensively from `submission.spec` (or a `metadata` mapping inside it): the display `name`, the
`family`, `n_parameters` and the ImageNet top-1 accuracy (`imagenet_top1`, `top1`, `top1_accuracy` or
`imagenet_top1_accuracy`, in percent; values in (0, 1] are read as fractions and shown in percent). Missing or
non-numeric values are blank. Without a recorded family, the family is the leading letters of the
architecture name (resnet50.a1_in1k -> resnet, vit_base_patch16_224 -> vit, ViT-B-32 -> vit).
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.api.errors import ConfigError
from leaderboard.loading import LoadedResult

# Columns a user can show or hide, in display order.
DISPLAY_COLUMNS: tuple[str, ...] = (
    "rank",
    "tie",
    "model",
    "family",
    "source",
    "MIS mean",
    "p5",
    "95% CI",
    "units",
    "proxy",
    "benchmark",
    "params (M)",
    "ImageNet top-1",
    "date",
    "submission id",
)
DEFAULT_COLUMNS: tuple[str, ...] = tuple(c for c in DISPLAY_COLUMNS if c != "submission id")
ALWAYS_SHOWN: tuple[str, ...] = ("model",)
# Internal columns kept in the full table (for ranking, plots and look-ups), never displayed.
KEY_COLUMNS: tuple[str, ...] = ("key", "ci_low", "ci_high", "file", "path", "timestamp")
ALL_COLUMNS: tuple[str, ...] = DISPLAY_COLUMNS + KEY_COLUMNS
NUMBER_COLUMNS: frozenset[str] = frozenset({"rank", "MIS mean", "p5", "units", "params (M)", "ImageNet top-1"})
SEARCH_COLUMNS: tuple[str, ...] = ("model", "family", "source")
TOP1_KEYS: tuple[str, ...] = ("imagenet_top1", "top1", "top1_accuracy", "imagenet_top1_accuracy")
TIE_MARKER = "="


def _meta(spec: dict[str, Any], keys: Sequence[str]) -> Any:
    """The first of `keys` present in the spec or in its `metadata` mapping, else None."""
    metadata = spec.get("metadata")
    for mapping in (spec, metadata if isinstance(metadata, dict) else {}):
        for key in keys:
            if mapping.get(key) not in (None, ""):
                return mapping[key]
    return None


def _number(value: Any) -> float:
    """A finite float from a number or numeric string, else NaN (blank)."""
    if isinstance(value, bool):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def top1_percent(spec: dict[str, Any]) -> float:
    """ImageNet top-1 accuracy in percent from a spec's metadata (NaN when unknown)."""
    value = _number(_meta(spec, TOP1_KEYS))
    if 0 < value <= 1:
        return value * 100
    return value


def architecture(model: str) -> str:
    """The architecture of a model id: `timm:resnet50.a1_in1k` -> `resnet50`, `local:x?arch=timm:vit_b` -> `vit_b`."""
    text = model.split("arch=", 1)[1] if "arch=" in model else model
    text = text.split("&", 1)[0].split("?", 1)[0]
    text = text.rsplit(":", 1)[-1].rstrip("/").rsplit("/", 1)[-1]
    return text.split(".", 1)[0]


def derive_family(model: str) -> str:
    """The family of a model id by the module rule: the leading letters of its architecture, lower-cased."""
    match = re.match(r"[A-Za-z]+", architecture(model))
    return match.group(0).lower() if match else ""


def _timestamp(date: str) -> pd.Timestamp:
    stamp = pd.to_datetime(date, utc=True, errors="coerce", format="ISO8601")
    return stamp if isinstance(stamp, pd.Timestamp) else pd.NaT


def display_name(loaded: LoadedResult) -> str:
    """The model's display name: the spec's `name` (or `display_name`), else the submission's model id."""
    spec = loaded.result.submission.spec
    return str(_meta(spec, ("name", "display_name")) or loaded.result.submission.model)


def result_row(loaded: LoadedResult) -> dict[str, Any]:
    """One table row (every column of ALL_COLUMNS except rank and tie) from a result file."""
    result = loaded.result
    sub, summary, spec = result.submission, result.scores.model, result.submission.spec
    family = _meta(spec, ("family",))
    n_params = sub.n_parameters if sub.n_parameters is not None else _number(_meta(spec, ("n_parameters",)))
    stamp = _timestamp(result.provenance.date)
    return {
        "model": display_name(loaded),
        "family": str(family) if family is not None else derive_family(str(spec.get("model") or sub.model)),
        "source": sub.source,
        "MIS mean": round(summary.mean, 3),
        "p5": round(summary.p5, 3),
        "95% CI": f"[{summary.ci_low:.3f}, {summary.ci_high:.3f}]",
        "units": summary.n_units,
        "proxy": f"{result.proxy.name} {result.proxy.version}",
        "benchmark": result.benchmark_version,
        "params (M)": round(_number(n_params) / 1e6, 1),
        "ImageNet top-1": round(top1_percent(spec), 2),
        "date": stamp.strftime("%Y-%m-%d %H:%M") if not pd.isna(stamp) else result.provenance.date,
        "submission id": sub.id,
        "key": loaded.key,
        "ci_low": summary.ci_low,
        "ci_high": summary.ci_high,
        "file": loaded.path.name,
        "path": str(loaded.path),
        "timestamp": stamp,
    }


def _version_key(version: str) -> tuple:
    """Natural sort key of a version string (0.10 after 0.9)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[.\-+]", version))


def rank_with_ties(group: pd.DataFrame) -> pd.DataFrame:
    """Order one comparable group by MIS mean and set `rank` and `tie` by the module's CI-overlap rule."""
    ordered = group.sort_values(["MIS mean", "ci_low", "model"], ascending=[False, False, True], kind="stable")
    ranks: list[int] = []
    group_ids: list[int] = []
    previous_low = None
    for position, (low, high) in enumerate(zip(ordered["ci_low"], ordered["ci_high"], strict=True), start=1):
        if previous_low is not None and high >= previous_low:
            ranks.append(ranks[-1])
            group_ids.append(group_ids[-1])
        else:
            ranks.append(position)
            group_ids.append(position)
        previous_low = low
    ordered = ordered.copy()
    ordered["rank"] = ranks
    sizes = pd.Series(group_ids).map(pd.Series(group_ids).value_counts())
    ordered["tie"] = [TIE_MARKER if size > 1 else "" for size in sizes]
    return ordered


def empty_table() -> pd.DataFrame:
    """A table with every column and no rows."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in ALL_COLUMNS})


def latest_results(results: Iterable[LoadedResult]) -> dict[str, LoadedResult]:
    """The newest result per (submission id, benchmark version) by `provenance.date`, ties by the later path."""
    latest: dict[str, tuple[tuple, LoadedResult]] = {}
    for loaded in results:
        stamp = _timestamp(loaded.result.provenance.date)
        order = (0 if pd.isna(stamp) else 1, stamp.value if not pd.isna(stamp) else 0, str(loaded.path))
        if loaded.key not in latest or order > latest[loaded.key][0]:
            latest[loaded.key] = (order, loaded)
    return {key: loaded for key, (_, loaded) in latest.items()}


def build_table(results: Iterable[LoadedResult]) -> pd.DataFrame:
    """The full leaderboard: latest file per (submission id, benchmark version), ranked with ties, in ALL_COLUMNS."""
    rows = [result_row(loaded) for loaded in latest_results(results).values()]
    if not rows:
        return empty_table()
    frame = pd.DataFrame(rows)
    groups = [rank_with_ties(group) for _, group in frame.groupby(["benchmark", "proxy"], sort=False)]
    ranked = pd.concat(groups, ignore_index=True)
    ranked["_version"] = ranked["benchmark"].map(_version_key)
    ranked = ranked.sort_values(["_version", "proxy", "rank", "MIS mean"], ascending=[False, True, True, False],
                                kind="stable")
    return ranked.drop(columns="_version").reset_index(drop=True)[list(ALL_COLUMNS)]


def filter_choices(table: pd.DataFrame) -> dict[str, list[str]]:
    """Distinct values of the filterable columns (family, source, proxy), sorted."""
    return {column: sorted({str(v) for v in table[column] if str(v)}) for column in ("family", "source", "proxy")}


def filter_table(
    table: pd.DataFrame,
    query: str = "",
    *,
    families: Sequence[str] = (),
    sources: Sequence[str] = (),
    proxies: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows whose model/family/source contain `query` (case-insensitive) and match every non-empty filter."""
    mask = pd.Series(True, index=table.index)
    needle = query.strip().lower()
    if needle:
        hit = pd.Series(False, index=table.index)
        for column in SEARCH_COLUMNS:
            hit |= table[column].astype(str).str.lower().str.contains(needle, regex=False)
        mask &= hit
    for column, wanted in (("family", families), ("source", sources), ("proxy", proxies)):
        if wanted:
            mask &= table[column].astype(str).isin(list(wanted))
    return table[mask].reset_index(drop=True)


def select_columns(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The displayed columns among DISPLAY_COLUMNS, in display order; `model` is always shown."""
    unknown = [c for c in columns if c not in DISPLAY_COLUMNS]
    if unknown:
        raise ConfigError(f"Unknown leaderboard column(s) {unknown}; valid columns: {', '.join(DISPLAY_COLUMNS)}.")
    wanted = set(columns) | set(ALWAYS_SHOWN)
    return table[[c for c in DISPLAY_COLUMNS if c in wanted]]


def datatypes(columns: Sequence[str]) -> list[str]:
    """Gradio Dataframe datatypes for the given columns (numbers sort numerically)."""
    return ["number" if c in NUMBER_COLUMNS else "str" for c in columns]


def write_csv(table: pd.DataFrame, folder: str | Path | None = None) -> Path:
    """Write the (filtered, column-selected) table to a new CSV file in `folder` (default: a new temp folder)."""
    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="imibench-leaderboard-"))
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"imibench-leaderboard-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}.csv"
    table.to_csv(path, index=False)
    return path

"""The main leaderboard table, built with pandas from result files: rows, rank intervals, search, filters, CSV.

Rows: one per (submission id, benchmark version). Two different files claiming the same key are a conflict: neither
is ranked, and the page lists both (a newer date never silently replaces a row).

Ranking rule: scores are ranked only within one comparability key (`benchmark.results.comparability`: benchmark
version, proxy fingerprint with its human data, image source, protocol, unit sampling). Within a group the rank is
the position of the MIS mean, with a 95% bootstrap interval over the per-unit scores (`leaderboard.ranks`), shown
as "3 (2-6)".

Metadata read defensively from `submission.spec` (or a `metadata` mapping inside it): the display `name`, the
`family`, `n_parameters` and the ImageNet top-1 accuracy (`imagenet_top1`, `top1`, `top1_accuracy` or
`imagenet_top1_accuracy`, in percent; values in (0, 1] are read as fractions and shown in percent). Missing or
non-numeric values are blank. Without a recorded family, the family is the leading letters of the
architecture name (resnet50.a1_in1k -> resnet, vit_base_patch16_224 -> vit, ViT-B-32 -> vit). A model scored
with random weights (`pretrained: false` in the spec or `?pretrained=false` in its model string) is "untrained".
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.api.errors import ConfigError
from benchmark.results.comparability import comparability_of
from leaderboard.loading import LoadedResult
from leaderboard.ranks import bootstrap_means, format_rank, rank_intervals

# Columns a user can show or hide, in display order.
DISPLAY_COLUMNS: tuple[str, ...] = (
    "rank",
    "model",
    "family",
    "source",
    "MIS mean",
    "p5",
    "95% CI",
    "units",
    "humans natural",
    "humans optimized",
    "proxy",
    "benchmark",
    "params (M)",
    "ImageNet top-1",
    "date",
    "submission id",
)
DEFAULT_COLUMNS: tuple[str, ...] = tuple(c for c in DISPLAY_COLUMNS if c not in ("submission id", "p5", "date"))
ALWAYS_SHOWN: tuple[str, ...] = ("model",)
MOBILE_COLUMNS: tuple[str, ...] = ("rank", "model", "MIS mean")
# Internal columns kept in the full table (for ranking, plots, CSV and look-ups), never displayed.
KEY_COLUMNS: tuple[str, ...] = (
    "key", "ci_low", "ci_high", "rank_num", "rank_low", "rank_high", "group", "real_humans", "trained", "params",
    "human_natural", "human_natural_low", "human_natural_high", "human_optimized", "human_optimized_low",
    "human_optimized_high", "model_id", "revision", "model_card", "paper", "file", "path", "timestamp",
)
ALL_COLUMNS: tuple[str, ...] = DISPLAY_COLUMNS + KEY_COLUMNS
NUMBER_COLUMNS: frozenset[str] = frozenset({"MIS mean", "p5", "units", "params (M)", "ImageNet top-1"})
# Sort key of a display column whose text is not its value.
SORT_COLUMNS: dict[str, str] = {"rank": "rank_num", "95% CI": "ci_low", "humans natural": "human_natural",
                                "humans optimized": "human_optimized", "date": "timestamp"}
SEARCH_COLUMNS: tuple[str, ...] = ("model", "family", "source")
TOP1_KEYS: tuple[str, ...] = ("imagenet_top1", "top1", "top1_accuracy", "imagenet_top1_accuracy")
UNTRAINED = "untrained"
# The CSV: every number numeric, three decimals, the submission id and the rank interval.
CSV_COLUMNS: dict[str, str] = {
    "rank_num": "rank", "rank_low": "rank_low", "rank_high": "rank_high", "model": "model",
    "submission id": "submission_id", "family": "family", "source": "source", "MIS mean": "mis_mean", "p5": "p5",
    "ci_low": "ci_low", "ci_high": "ci_high", "units": "units", "human_natural": "human_natural",
    "human_natural_low": "human_natural_ci_low", "human_natural_high": "human_natural_ci_high",
    "human_optimized": "human_optimized", "human_optimized_low": "human_optimized_ci_low",
    "human_optimized_high": "human_optimized_ci_high", "proxy": "proxy", "benchmark": "benchmark_version",
    "group": "comparability_key", "trained": "trained", "params (M)": "params_m", "ImageNet top-1": "imagenet_top1",
    "date": "date",
}
CSV_DECIMALS = 3


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
    """A UTC timestamp from an ISO 8601 date string (NaT when unreadable); fast path for the common forms."""
    try:
        parsed = datetime.fromisoformat(str(date).replace("Z", "+00:00"))
    except ValueError:
        stamp = pd.to_datetime(date, utc=True, errors="coerce", format="ISO8601")
        return stamp if isinstance(stamp, pd.Timestamp) else pd.NaT
    stamp = pd.Timestamp(parsed)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def is_trained(loaded: LoadedResult) -> bool:
    """False when the spec asks for random weights (`pretrained: false` or `?pretrained=false`), else True."""
    spec = loaded.result.submission.spec
    pretrained = spec.get("pretrained")
    if pretrained is False or str(pretrained).lower() == "false":
        return bool(spec.get("weights"))  # a weights file is trained even without hub weights
    model = str(spec.get("model") or loaded.result.submission.model).lower().replace(" ", "")
    return "pretrained=false" not in model and "pretrained=0" not in model


def display_name(loaded: LoadedResult) -> str:
    """The model's display name: the spec's `name` (or `display_name`), else the submission's model id."""
    spec = loaded.result.submission.spec
    return str(_meta(spec, ("name", "display_name")) or loaded.result.submission.model)


def row_label(loaded: LoadedResult) -> str:
    """The name shown in the table: display name, plus "(untrained)" for random weights."""
    label = display_name(loaded)
    if not is_trained(loaded):
        label += f" ({UNTRAINED})"
    return label


HumanLookup = Callable[[LoadedResult], dict[str, float]]


def result_row(loaded: LoadedResult, humans: HumanLookup | None = None) -> dict[str, Any]:
    """One table row (every column of ALL_COLUMNS except the rank columns) from a result file."""
    result = loaded.result
    sub, summary, spec = result.submission, result.scores.model, result.submission.spec
    family = _meta(spec, ("family",))
    n_params = sub.n_parameters if sub.n_parameters is not None else _number(_meta(spec, ("n_parameters",)))
    stamp = _timestamp(result.provenance.date)
    key = comparability_of(result)
    human = humans(loaded) if humans is not None else {}
    row = {
        "model": row_label(loaded),
        "family": str(family) if family is not None else derive_family(str(spec.get("model") or sub.model)),
        "source": sub.source,
        "MIS mean": round(summary.mean, CSV_DECIMALS),
        "p5": round(summary.p5, CSV_DECIMALS),
        "95% CI": f"[{summary.ci_low:.3f}, {summary.ci_high:.3f}]",
        "units": summary.n_units,
        "humans natural": _human_text(human, "natural"),
        "humans optimized": _human_text(human, "optimized"),
        "proxy": f"{result.proxy.name} {result.proxy.version}",
        "benchmark": result.benchmark_version,
        "params (M)": round(_number(n_params) / 1e6, 1),
        "ImageNet top-1": round(top1_percent(spec), 2),
        "date": stamp.strftime("%Y-%m-%d %H:%M") if not pd.isna(stamp) else result.provenance.date,
        "submission id": sub.id,
        "key": loaded.key,
        "ci_low": summary.ci_low,
        "ci_high": summary.ci_high,
        "group": key.id,
        "real_humans": key.real_humans,
        "trained": is_trained(loaded),
        "params": _number(n_params),
        "model_id": f"{sub.source}:{sub.model}",
        "revision": sub.revision or "",
        "model_card": str(_meta(spec, ("model_card", "card", "url")) or ""),
        "paper": str(_meta(spec, ("paper",)) or ""),
        "file": loaded.path.name,
        "path": str(loaded.path),
        "timestamp": stamp,
    }
    for mode in ("natural", "optimized"):
        for suffix in ("", "_low", "_high"):
            row[f"human_{mode}{suffix}"] = human.get(f"{mode}{suffix}", math.nan)
    return row


def _human_text(human: dict[str, float], mode: str) -> str:
    value = human.get(mode)
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.3f} [{human[mode + '_low']:.3f}, {human[mode + '_high']:.3f}]"


def _version_key(version: str) -> tuple:
    """Natural sort key of a version string (0.10 after 0.9)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[.\-+]", version))


@dataclass(frozen=True)
class Conflict:
    """Several different result files claim one (submission id, benchmark version): none of them is ranked."""

    key: str
    files: tuple[str, ...]
    dates: tuple[str, ...]

    @property
    def message(self) -> str:
        """One line naming the key and each file with its date."""
        listed = ", ".join(f"{name} (dated {date})" for name, date in zip(self.files, self.dates, strict=True))
        return (f"{len(self.files)} different result files claim submission {self.key}: {listed}. None is shown "
                "until the operator removes the wrong one(s).")


def empty_table() -> pd.DataFrame:
    """A table with every column and no rows."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in ALL_COLUMNS})


def resolve_duplicates(results: Iterable[LoadedResult]) -> tuple[dict[str, LoadedResult], list[Conflict]]:
    """One result per (submission id, benchmark version); keys claimed by different files become conflicts."""
    by_key: dict[str, list[LoadedResult]] = {}
    for loaded in results:
        by_key.setdefault(loaded.key, []).append(loaded)
    chosen: dict[str, LoadedResult] = {}
    conflicts: list[Conflict] = []
    for key, claims in by_key.items():
        if len(claims) == 1:
            chosen[key] = claims[0]
            continue
        distinct = {claim.result.model_dump_json(): claim for claim in claims}
        if len(distinct) == 1:
            chosen[key] = claims[0]
            continue
        ordered = sorted(claims, key=lambda c: str(c.path))
        conflicts.append(Conflict(key, tuple(c.path.name for c in ordered),
                                  tuple(c.result.provenance.date for c in ordered)))
    return chosen, conflicts


def latest_results(results: Iterable[LoadedResult]) -> dict[str, LoadedResult]:
    """The unambiguous result per (submission id, benchmark version) (conflicting keys left out)."""
    return resolve_duplicates(results)[0]


_ROW_CACHE: dict[int, tuple[LoadedResult, HumanLookup | None, dict[str, Any]]] = {}
_ROW_CACHE_MAX = 20_000


def _cached_row(loaded: LoadedResult, humans: HumanLookup | None) -> dict[str, Any]:
    """`result_row`, reused while the same (unchanged, not re-read) result object is listed with the same humans."""
    cached = _ROW_CACHE.get(id(loaded))
    if cached is not None and cached[0] is loaded and cached[1] == humans:  # the entry holds `loaded`: ids are safe
        return dict(cached[2])
    row = result_row(loaded, humans)
    if len(_ROW_CACHE) >= _ROW_CACHE_MAX:
        _ROW_CACHE.clear()
    _ROW_CACHE[id(loaded)] = (loaded, humans, row)
    return dict(row)


_BOOT_CACHE: dict[tuple, np.ndarray] = {}
_BOOT_CACHE_MAX = 20_000


def _replicates(loaded: LoadedResult) -> np.ndarray:
    """Bootstrap means of a result's unit scores, cached per file and content date."""
    summary = loaded.result.scores.model
    cache_key = (str(loaded.path), loaded.key, loaded.result.provenance.date, summary.mean, summary.n_units)
    boot = _BOOT_CACHE.get(cache_key)
    if boot is None:
        boot = bootstrap_means([u.score for u in loaded.result.scores.units], seed_name=loaded.key,
                               fallback_ci=(summary.mean, summary.ci_low, summary.ci_high))
        if len(_BOOT_CACHE) >= _BOOT_CACHE_MAX:
            _BOOT_CACHE.clear()
        _BOOT_CACHE[cache_key] = boot
    return boot


def rank_group(group: pd.DataFrame, replicates: np.ndarray) -> pd.DataFrame:
    """Order one comparable group by MIS mean and set `rank_num`, `rank_low`, `rank_high` and the `rank` text."""
    rank, low, high = rank_intervals(group["_mean"].to_numpy(dtype=float), replicates)
    ranked = group.copy()
    ranked["rank_num"], ranked["rank_low"], ranked["rank_high"] = rank, low, high
    ranked["rank"] = [format_rank(r, lo, hi) for r, lo, hi in zip(rank, low, high, strict=True)]
    return ranked.sort_values(["rank_num", "MIS mean", "model"], ascending=[True, False, True], kind="stable")


def build_table(results: Iterable[LoadedResult], humans: HumanLookup | None = None) -> pd.DataFrame:
    """The full leaderboard: one row per unambiguous submission, ranked within its comparability key."""
    chosen = list(latest_results(results).values())
    if not chosen:
        return empty_table()
    frame = pd.DataFrame([_cached_row(loaded, humans) for loaded in chosen])
    revisions = frame.groupby("model_id")["revision"].transform("nunique")
    newer = (revisions > 1) & (frame["revision"] != "")  # several revisions of one model: say which is which
    frame.loc[newer, "model"] = frame.loc[newer, "model"] + " @ rev " + frame.loc[newer, "revision"].str[:10]
    frame["_mean"] = [loaded.result.scores.model.mean for loaded in chosen]
    boots = np.vstack([_replicates(loaded) for loaded in chosen])
    groups = [rank_group(group, boots[group.index.to_numpy()]) for _, group in frame.groupby("group", sort=False)]
    ranked = pd.concat(groups, ignore_index=True)
    ranked["_size"] = ranked["group"].map(ranked["group"].value_counts())
    ranked["_version"] = ranked["benchmark"].map(_version_key)
    ranked = ranked.sort_values(["real_humans", "_size", "group", "rank_num", "MIS mean"],
                                ascending=[False, False, True, True, False], kind="stable")
    return ranked.drop(columns=["_version", "_size", "_mean"]).reset_index(drop=True)[list(ALL_COLUMNS)]


@dataclass(frozen=True)
class Group:
    """One comparability key as the selector offers it."""

    id: str
    label: str
    n_rows: int
    real_humans: bool
    benchmark_version: str


def comparability_groups(results: Iterable[LoadedResult], table: pd.DataFrame) -> list[Group]:
    """The keys present in `table`, real-data groups first, larger first (the first one is the default)."""
    keys = {key.id: key for key in (comparability_of(loaded.result) for loaded in results)}
    counts = table["group"].value_counts() if not table.empty else pd.Series(dtype=int)
    groups = [Group(key_id, keys[key_id].label if key_id in keys else key_id, int(count),
                    bool(keys[key_id].real_humans) if key_id in keys else False,
                    keys[key_id].benchmark_version if key_id in keys else "")
              for key_id, count in counts.items()]
    return sorted(groups, key=lambda g: (not g.real_humans, -g.n_rows, g.label))


def group_choices(groups: Sequence[Group]) -> list[tuple[str, str]]:
    """(label, id) pairs for the comparability selector; simulated-human groups are labelled demo groups."""
    return [(("" if g.real_humans else "DEMO (not real humans) · ") + f"{g.n_rows} rows · {g.label}", g.id)
            for g in groups]


def filter_choices(table: pd.DataFrame) -> dict[str, list[str]]:
    """Distinct values of the filterable columns (family, source, proxy, benchmark), sorted."""
    choices = {column: sorted({str(v) for v in table[column] if str(v)}) for column in ("family", "source", "proxy")}
    choices["benchmark"] = sorted({str(v) for v in table["benchmark"] if str(v)}, key=_version_key, reverse=True)
    return choices


def filter_table(
    table: pd.DataFrame,
    query: str = "",
    *,
    families: Sequence[str] = (),
    sources: Sequence[str] = (),
    proxies: Sequence[str] = (),
    group: str | None = None,
    hide_untrained: bool = False,
    params_min: float | None = None,
    params_max: float | None = None,
) -> pd.DataFrame:
    """Rows of one comparability group (all when None) matching the search and every non-empty filter."""
    mask = pd.Series(True, index=table.index)
    if group:
        mask &= table["group"] == group
    needle = query.strip().lower()
    if needle:
        hit = pd.Series(False, index=table.index)
        for column in SEARCH_COLUMNS:
            hit |= table[column].astype(str).str.lower().str.contains(needle, regex=False)
        mask &= hit
    for column, wanted in (("family", families), ("source", sources), ("proxy", proxies)):
        if wanted:
            mask &= table[column].astype(str).isin(list(wanted))
    if hide_untrained:
        mask &= table["trained"].astype(bool)
    params_m = pd.to_numeric(table["params (M)"], errors="coerce")
    if params_min is not None and math.isfinite(params_min):
        mask &= params_m >= params_min
    if params_max is not None and math.isfinite(params_max):
        mask &= params_m <= params_max
    return table[mask].reset_index(drop=True)


def select_columns(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The displayed columns among DISPLAY_COLUMNS, in display order; `model` is always shown."""
    unknown = [c for c in columns if c not in DISPLAY_COLUMNS]
    if unknown:
        raise ConfigError(f"Unknown leaderboard column(s) {unknown}; valid columns: {', '.join(DISPLAY_COLUMNS)}.")
    wanted = set(columns) | set(ALWAYS_SHOWN)
    return table[[c for c in DISPLAY_COLUMNS if c in wanted]]


def csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The CSV view of (filtered) rows: numeric ranks, CIs and human accuracies, the submission id, 3 decimals."""
    frame = table[list(CSV_COLUMNS)].rename(columns=CSV_COLUMNS)
    numeric = ["mis_mean", "p5", "ci_low", "ci_high", "human_natural", "human_natural_ci_low",
               "human_natural_ci_high", "human_optimized", "human_optimized_ci_low", "human_optimized_ci_high"]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce").round(CSV_DECIMALS)
    return frame


def write_csv(table: pd.DataFrame, folder: str | Path | None = None) -> Path:
    """Write the CSV view of the (filtered) table to a new file in `folder` (default: a new temp folder)."""
    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="imibench-leaderboard-"))
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"imibench-leaderboard-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}.csv"
    csv_frame(table).to_csv(path, index=False, float_format=f"%.{CSV_DECIMALS}f")
    return path

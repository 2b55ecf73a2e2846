"""The Proxy metrics board: validation reports ranked by their headline held-out correlation with humans.

Reports are read as plain JSON through one adapter, `metric_row`, so that fields the validation code adds later (a
`headline` statistic with its CI, a `paired_comparison` with MIS, `human_data`) are used when present and derived
from the current shape otherwise: the headline falls back on the natural mode's held-out Pearson r, and the
paired comparison with MIS on a paired bootstrap over the units both reports predicted (difference of Pearson r).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPORT_FILE = "report.json"
MAX_REPORT_BYTES = 64 * 1024 * 1024
BASELINE = "mis"
N_BOOT = 1000
# resamples x units x folds a paired comparison may recompute per report (a real one: 1,000 x 400 x 9 = 3.6e6);
# a served report must not make every Refresh allocate gigabytes (10,000 refits x 100 one-unit folds did)
MAX_COMPARE_WORK = 20_000_000
MODES = ("natural", "optimized")
COLUMNS = ("rank", "proxy", "headline r", "95% CI", "r / ceiling", "natural r", "optimized r", "vs MIS (Δr)",
           "scheme", "human data", "units", "figure")


@dataclass(frozen=True)
class ProxyBoard:
    """The board's rows and the report files that could not be read."""

    table: pd.DataFrame
    invalid: tuple[tuple[str, str], ...] = ()


def _score(value: Any) -> tuple[float, float, float]:
    """(value, ci_low, ci_high) from a {value, ci_low, ci_high} mapping or a bare number; NaN where missing."""
    if isinstance(value, dict):
        return tuple(_float(value.get(k)) for k in ("value", "ci_low", "ci_high"))  # type: ignore[return-value]
    return _float(value), math.nan, math.nan


def _float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _modes(metric: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(m.get("mode")): m for m in metric.get("modes") or [] if isinstance(m, dict)}


def _human_data(metric: dict[str, Any], report: dict[str, Any]) -> tuple[str, bool]:
    """(label, is_real) of the human data a report was computed on."""
    origin = metric.get("human_data") or report.get("human_data")
    if isinstance(origin, dict) and origin.get("kind") in ("real", "simulated"):
        real = origin["kind"] == "real"
        text = f"{origin.get('source', '?')}@{origin.get('revision') or 'unpinned'}"
        return (f"humans: {text}" if real else f"simulated humans: {text}"), real
    data = ((metric.get("provenance") or {}).get("data") or {}) if isinstance(metric.get("provenance"), dict) else {}
    source = data.get("source") if isinstance(data, dict) else None
    return (f"origin not recorded: {source}" if source else "origin not recorded"), False


def headline(metric: dict[str, Any]) -> tuple[float, float, float, str]:
    """(value, ci_low, ci_high, name) of a metric's headline statistic (reported, else natural-mode Pearson r)."""
    stated = metric.get("headline")
    if isinstance(stated, dict) and _float(stated.get("value")) == _float(stated.get("value")):
        value, low, high = _score(stated)
        return value, low, high, str(stated.get("name") or stated.get("statistic") or "headline")
    modes = _modes(metric)
    name, mode = next(((m, modes[m]) for m in MODES if m in modes), next(iter(modes.items()), ("", {})))
    if isinstance(mode.get("headline"), dict):  # the report's own headline: fold-mean r, cluster-bootstrap CI
        value, low, high = _score(mode["headline"])
        return value, low, high, f"{name} fold-mean Pearson r"
    value, low, high = _score((mode.get("scores") or {}).get("pearson"))  # reports written before the headline
    return value, low, high, f"{name} pooled held-out Pearson r (older report)"


def _mode_headline(mode: dict[str, Any]) -> tuple[float, float, float]:
    """A mode's headline r with its CI (pooled Pearson for reports written before the headline existed)."""
    stated = mode.get("headline")
    return _score(stated if isinstance(stated, dict) else (mode.get("scores") or {}).get("pearson"))


def paired_with_report_statistics(metric: dict[str, Any], baseline: dict[str, Any],
                                  mode: str = "natural") -> tuple[float, float, float] | None:
    """Δ headline r (metric - baseline) by the validation's own paired cluster bootstrap, when both reports carry
    per-unit headline scores on the same units; None otherwise."""
    from pydantic import ValidationError

    from benchmark.api.errors import ImiBenchError
    from benchmark.validation.compare import compare_reports
    from benchmark.validation.report import MetricReport

    try:
        result = compare_reports(MetricReport.model_validate(metric), MetricReport.model_validate(baseline),
                                 mode=mode, n_boot=N_BOOT)
    except (ImiBenchError, ValidationError, KeyError, ValueError):
        return None
    return _float(result.difference), _float(result.ci_low), _float(result.ci_high)


def _predictions(metric: dict[str, Any], mode: str) -> pd.DataFrame:
    rows = _modes(metric).get(mode, {}).get("predictions") or []
    frame = pd.DataFrame([r for r in rows if isinstance(r, dict)])
    needed = {"model", "layer", "channel", "human", "predicted"}
    return frame[list(needed)] if needed <= set(frame.columns) else pd.DataFrame(columns=list(needed))


def paired_difference(metric: dict[str, Any], baseline: dict[str, Any], mode: str = "natural",
                      *, seed: int = 0) -> tuple[float, float, float, int]:
    """(Δr, ci_low, ci_high, n) of Pearson r(metric) - r(baseline) over shared units, paired bootstrap over units."""
    a, b = _predictions(metric, mode), _predictions(baseline, mode)
    joined = a.merge(b, on=["model", "layer", "channel"], suffixes=("", "_base"))
    n = len(joined)
    if n < 4:
        return math.nan, math.nan, math.nan, n
    human = joined["human"].to_numpy(float)
    pred, base = joined["predicted"].to_numpy(float), joined["predicted_base"].to_numpy(float)

    def corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=-1, keepdims=True)
        y = y - y.mean(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (x * y).sum(-1) / np.sqrt((x * x).sum(-1) * (y * y).sum(-1))

    observed = float(corr(pred, human) - corr(base, human))
    idx = np.random.default_rng(seed).integers(0, n, (N_BOOT, n))
    diffs = corr(pred[idx], human[idx]) - corr(base[idx], human[idx])
    low, high = np.nanquantile(diffs, [0.025, 0.975])
    return observed, float(low), float(high), n


def metric_row(metric: dict[str, Any], report: dict[str, Any], figure: Path | None,
               baseline: dict[str, Any] | None) -> dict[str, Any] | None:
    """One board row from a metric report (None for a skipped report): the adapter over the report's shape."""
    if metric.get("status") == "skipped":
        return None
    info = metric.get("metric") or {}
    scheme = metric.get("scheme") or {}
    value, low, high, statistic = headline(metric)
    modes = _modes(metric)
    human_text, real = _human_data(metric, report)
    row: dict[str, Any] = {
        "proxy": f"{info.get('name', '?')} {info.get('version', '')}".strip(),
        "name": str(info.get("name", "?")),
        "headline": value, "headline_low": low, "headline_high": high, "statistic": statistic,
        "scheme": str(scheme.get("name", "?")) + (f" k={scheme['k']}" if scheme.get("k") else ""),
        "human data": human_text, "real_humans": real,
        "units": int(sum(int(m.get("n_units") or 0) for m in modes.values())),
        "figure_path": str(figure) if figure is not None else "",
    }
    ceiling = next(iter(((modes.get("natural") or {}).get("ceiling_normalised") or {}).values()), None)
    row["r_over_ceiling"] = _score(ceiling)[0]
    for mode in MODES:
        row[f"{mode}_r"], row[f"{mode}_low"], row[f"{mode}_high"] = _mode_headline(modes.get(mode) or {})
    paired = metric.get("paired_comparison")
    row["delta_note"] = ""
    if isinstance(paired, dict):
        row["delta"], row["delta_low"], row["delta_high"] = _score(paired.get("difference", paired))
    elif baseline is not None and row["name"] != BASELINE and compare_work(metric, baseline) > MAX_COMPARE_WORK:
        row["delta"] = row["delta_low"] = row["delta_high"] = math.nan
        row["delta_note"] = TOO_LARGE_NOTE
    elif baseline is not None and row["name"] != BASELINE:
        stated = paired_with_report_statistics(metric, baseline)
        if stated is None:  # not comparable by the validation's own test (e.g. an older report): say which number
            stated = paired_difference(metric, baseline)[:3]
            row["delta_note"] = OLDER_DELTA_NOTE
        row["delta"], row["delta_low"], row["delta_high"] = stated
    else:
        row["delta"] = row["delta_low"] = row["delta_high"] = math.nan
    return row


OLDER_DELTA_NOTE = "(pooled r, unit bootstrap: a report the paired test cannot use; rerun validate)"
TOO_LARGE_NOTE = "n/a (too large to recompute here; see the report's own comparisons)"


def compare_work(metric: dict[str, Any], baseline: dict[str, Any], mode: str = "natural") -> int:
    """Resamples x units x folds that comparing `metric` with `baseline` would compute (either report's)."""
    work = 0
    for report in (metric, baseline):
        entry = _modes(report).get(mode) or {}
        rows = entry.get("predictions") if isinstance(entry.get("predictions"), list) else []
        refits = entry.get("refit_headlines") if isinstance(entry.get("refit_headlines"), list) else []
        folds = {str(r.get("fold")) for r in rows if isinstance(r, dict)}
        work = max(work, max(len(refits), N_BOOT) * len(rows) * max(len(folds), 1))
    return work


def _ci(value: float, low: float, high: float) -> str:
    if not math.isfinite(value):
        return ""
    return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if math.isfinite(low) and math.isfinite(high) else "")


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a bounded file; ValueError (with the reason) for anything else."""
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise ValueError(f"larger than {MAX_REPORT_BYTES // 2**20} MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg})") from None
    if not isinstance(data, dict) or data.get("kind") not in ("metric", "validation"):
        raise ValueError("not a validation report (no kind 'metric' or 'validation')")
    return data


def load_board(folder: str | Path | None) -> ProxyBoard:
    """Every report.json under `folder`, one row per validated metric, ranked by headline (best first).

    Unchanged report files (same paths, sizes and modification times) give the board already built: a Refresh
    recomputes no paired comparison."""
    if folder is None or not Path(folder).is_dir():
        return ProxyBoard(pd.DataFrame(columns=COLUMNS))
    root = Path(folder).resolve()
    signature = []
    for path in sorted(root.rglob(REPORT_FILE)):
        try:
            stat = path.stat()
        except OSError:
            continue
        signature.append((str(path), stat.st_mtime_ns, stat.st_size))
    return _build_board(root, tuple(signature))


@functools.lru_cache(maxsize=8)
def _build_board(root: Path, signature: tuple[tuple[str, int, int], ...]) -> ProxyBoard:
    entries: list[tuple[dict, dict, Path | None]] = []
    invalid: list[tuple[str, str]] = []
    for path in (Path(p) for p, _, _ in signature):
        try:
            report = read_json(path)
        except (OSError, ValueError) as err:
            invalid.append((str(path.relative_to(root)), str(err)))
            continue
        metrics = report.get("metrics") if report.get("kind") == "validation" else [report]
        for metric in metrics or []:
            if isinstance(metric, dict):
                name = str((metric.get("metric") or {}).get("name", ""))
                figure = next((p for p in (path.parent / name / "validation.png", path.parent / "validation.png")
                               if p.is_file()), None)
                entries.append((metric, report, figure))
    baselines = {_human_data(m, r)[0]: m for m, r, _ in entries if (m.get("metric") or {}).get("name") == BASELINE}
    rows = []
    seen: set[str] = set()
    for metric, report, figure in entries:
        row = metric_row(metric, report, figure, baselines.get(_human_data(metric, report)[0]))
        if row is None:
            continue
        identity = json.dumps([row["proxy"], row["scheme"], row["human data"], row["headline"]])
        if identity not in seen:
            seen.add(identity)
            rows.append(row)
    return ProxyBoard(format_board(pd.DataFrame(rows)), tuple(invalid))


def format_board(frame: pd.DataFrame) -> pd.DataFrame:
    """Rank real-human reports by headline (simulated ones after, labelled) and format the display columns."""
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame = frame.sort_values(["real_humans", "headline"], ascending=[False, False], na_position="last")
    frame = frame.reset_index(drop=True)
    ranks, position = [], 0
    for real in frame["real_humans"]:
        position = position + 1 if real else position
        ranks.append(str(position) if real else "demo")
    frame["rank"] = ranks
    frame["headline r"] = frame["headline"].round(3)
    frame["95% CI"] = [_ci(v, lo, hi) for v, lo, hi in zip(frame["headline"], frame["headline_low"],
                                                             frame["headline_high"], strict=True)]
    frame["r / ceiling"] = frame["r_over_ceiling"].round(3)
    for mode in MODES:
        frame[f"{mode} r"] = [_ci(v, lo, hi) for v, lo, hi in zip(frame[f"{mode}_r"], frame[f"{mode}_low"],
                                                                   frame[f"{mode}_high"], strict=True)]
    frame["vs MIS (Δr)"] = [("baseline" if name == BASELINE else f"{_ci(v, lo, hi)} {note}".strip())
                            for name, v, lo, hi, note in zip(frame["name"], frame["delta"], frame["delta_low"],
                                                             frame["delta_high"], frame["delta_note"], strict=True)]
    frame["figure"] = frame["figure_path"]
    return frame

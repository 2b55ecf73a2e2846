"""Compare validated metrics: one table row per metric and mode (scores with CIs), and its text rendering."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from benchmark.validation.harness import SCORES
from benchmark.validation.report import MetricReport, Score

COMPARISON_SCORES: tuple[str, ...] = tuple(SCORES)


def comparison_table(reports: Sequence[MetricReport]) -> pd.DataFrame:
    """One row per metric and mode: every score with its CI, the ceiling-normalised Pearson; skipped rows too."""
    rows = []
    for report in reports:
        base = {"metric": report.metric.name, "version": report.metric.version, "status": report.status}
        if report.status == "skipped":
            rows.append({**base, "mode": None, "n_units": None, "note": report.skip_reason})
            continue
        for result in report.modes:
            row = {**base, "mode": result.mode, "n_units": result.n_units, "n_models": result.n_models,
                   "note": " ".join(result.notes) or None}
            for key in COMPARISON_SCORES:
                row.update(_score_columns(key, result.scores[key]))
            for method, score in result.ceiling_normalised.items():
                row.update(_score_columns(f"pearson_over_{method}_ceiling", score))
            rows.append(row)
    return pd.DataFrame(rows)


def _score_columns(key: str, score: Score) -> dict[str, float]:
    nan = float("nan")
    return {
        key: score.as_float(),
        f"{key}_ci_low": nan if score.ci_low is None else score.ci_low,
        f"{key}_ci_high": nan if score.ci_high is None else score.ci_high,
    }


_DISPLAY: tuple[tuple[str, str, bool], ...] = (  # column, header, show CI
    ("pearson", "Pearson r [CI]", True),
    ("spearman", "Spearman", False),
    ("kendall", "Kendall", False),
    ("within_fold_pearson", "within-fold r", False),
    ("model_pearson", "per-model r", False),
    ("mae", "MAE", False),
    ("calibration_error", "ECE", False),
    ("pearson_over_split_half_ceiling", "r/ceiling [CI]", True),
    ("pearson_over_binomial_ceiling", "r/binomial", False),
)


def format_comparison(table: pd.DataFrame) -> str:
    """The comparison table as text: scores with CIs per metric and mode, then the skipped metrics."""
    ok = table[table["status"] == "ok"] if "status" in table else table.iloc[0:0]
    lines = []
    if len(ok):
        shown = pd.DataFrame({"metric": ok["metric"], "mode": ok["mode"], "units": ok["n_units"].astype(int)})
        for column, header, with_ci in _DISPLAY:
            if column in ok:
                shown[header] = [_fmt(r, column, with_ci) for _, r in ok.iterrows()]
        lines.append(shown.to_string(index=False))
    skipped = table[table["status"] == "skipped"] if "status" in table else table.iloc[0:0]
    if len(skipped):
        lines += ["", "Skipped:"] + [f"  {r['metric']}: {r['note']}" for _, r in skipped.iterrows()]
    return "\n".join(lines) if lines else "(no metrics)"


def _fmt(row: pd.Series, column: str, with_ci: bool) -> str:
    value = row[column]
    if pd.isna(value):
        return "n/a"
    text = f"{value:.3f}"
    low, high = row.get(f"{column}_ci_low"), row.get(f"{column}_ci_high")
    if with_ci and not (pd.isna(low) or pd.isna(high)):
        text += f" [{low:.2f}, {high:.2f}]"
    return text

"""Compare validated metrics: one table row per metric and mode (scores with CIs), and its text rendering."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from benchmark.validation.harness import SCORES
from benchmark.validation.report import MetricReport, Score

COMPARISON_SCORES: tuple[str, ...] = tuple(SCORES)


def comparison_table(reports: Sequence[MetricReport]) -> pd.DataFrame:
    """One row per metric and mode: the headline with CI and p-value, secondary scores, per-model r (or why it
    is n/a), the ceiling-normalised headline with its flag; skipped rows too."""
    rows = []
    for report in reports:
        base = {"metric": report.metric.name, "version": report.metric.version, "status": report.status}
        if report.status == "skipped":
            rows.append({**base, "mode": None, "n_units": None, "note": report.skip_reason})
            continue
        for result in report.modes:
            row = {**base, "mode": result.mode, "n_units": result.n_units, "n_models": result.n_models,
                   "humans": report.humans, "note": " ".join(result.notes) or None}
            row.update(_score_columns("headline", result.headline))
            row["headline_p"] = float("nan") if result.headline.p_value is None else result.headline.p_value
            row["headline_basis"] = result.headline_basis
            for key in COMPARISON_SCORES:
                if key in result.scores:
                    row.update(_score_columns(key, result.scores[key]))
            per_model = result.per_model_correlation
            if per_model is not None and per_model.pearson is not None:
                row.update(_score_columns("per_model_pearson", per_model.pearson))
            row["per_model_r"] = per_model.text if per_model is not None else "n/a"
            for method, score in result.ceiling_normalised.items():
                row.update(_score_columns(f"headline_over_{method}_ceiling", score))
                row[f"headline_over_{method}_ceiling_flag"] = result.ceiling_flags.get(method)
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
    ("headline", "headline r [CI]", True),
    ("headline_p", "p", False),
    ("pearson", "pooled r", False),
    ("spearman", "Spearman", False),
    ("per_model_r", "per-model r [CI]", False),
    ("mae", "MAE", False),
    ("headline_over_split_half_ceiling", "r/ceiling [CI]", True),
    ("headline_over_binomial_ceiling", "r/binomial (MIS paper)", False),
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
        flags = [f"  {r['metric']} ({r['mode']}): r/ceiling {r[c]}" for _, r in ok.iterrows()
                 for c in ok.columns if c.endswith("_ceiling_flag") and isinstance(r[c], str)]
        if flags:
            lines += ["", "Ceiling flags:", *flags]
    skipped = table[table["status"] == "skipped"] if "status" in table else table.iloc[0:0]
    if len(skipped):
        lines += ["", "Skipped:"] + [f"  {r['metric']}: {r['note']}" for _, r in skipped.iterrows()]
    return "\n".join(lines) if lines else "(no metrics)"


def _fmt(row: pd.Series, column: str, with_ci: bool) -> str:
    value = row[column]
    if isinstance(value, str):
        return value
    if pd.isna(value):
        return "n/a"
    text = f"{value:.3g}" if column == "headline_p" else f"{value:.3f}"
    low, high = row.get(f"{column}_ci_low"), row.get(f"{column}_ci_high")
    if with_ci and not (pd.isna(low) or pd.isna(high)):
        text += f" [{low:.2f}, {high:.2f}]"
    return text

"""Figures of validation reports: predicted vs human per unit and per model, and a comparison across metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmark.api.errors import ConfigError
from benchmark.validation.report import MetricReport, ModeResult, Score

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_validation(report_or_reports: MetricReport | Sequence[MetricReport], path: str | Path) -> Path:
    """Save a PNG: one metric's scatter and per-model bars per mode, or for a list a comparison across metrics."""
    import matplotlib

    matplotlib.use("Agg")
    if isinstance(report_or_reports, MetricReport):
        fig = _metric_figure(_ok(report_or_reports))
    else:
        reports = [r for r in report_or_reports if r.status == "ok"]
        if not reports:
            raise ConfigError("None of the reports has results (all skipped or none given); nothing to plot.")
        fig = _comparison_figure(reports)
    return _save(fig, Path(path))


def _ok(report: MetricReport) -> MetricReport:
    if report.status != "ok":
        raise ConfigError(
            f"Metric {report.metric.name!r} was skipped ({report.skip_reason}); there is nothing to plot."
        )
    return report


def _metric_figure(report: MetricReport) -> Figure:
    import matplotlib.pyplot as plt

    n = len(report.modes)
    fig, axes = plt.subplots(2, n, figsize=(5.0 * n, 9.0), squeeze=False)
    models = sorted({m.model for result in report.modes for m in result.per_model})
    colours = {model: plt.get_cmap("tab10")(i % 10) for i, model in enumerate(models)}
    for column, result in enumerate(report.modes):
        _scatter(axes[0, column], result, colours, report.metric.name)
        _model_bars(axes[1, column], result)
    fig.suptitle(f"{report.metric.name} (v{report.metric.version}), held-out scheme: {report.scheme.name}")
    fig.tight_layout()
    return fig


def _scatter(ax: Axes, result: ModeResult, colours: dict, name: str) -> None:
    frame = result.frame()
    for model, rows in frame.groupby("model", sort=True):
        ax.scatter(rows["predicted"], rows["human"], s=18, alpha=0.8, color=colours[model], label=str(model))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="identity")
    low = min(0.4, float(frame[["predicted", "human"]].min().min()) - 0.02)
    ax.set(xlim=(low, 1.02), ylim=(low, 1.02), xlabel=f"predicted ({name}, held out)", ylabel="human accuracy")
    ax.set_title(f"{result.mode}: headline r = {_fmt_score(result.headline)} (n = {result.n_units})", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")


def _model_bars(ax: Axes, result: ModeResult) -> None:
    names = [m.model for m in result.per_model]
    x = np.arange(len(names))
    for offset, prefix, label in ((-0.2, "human", "human"), (0.2, "predicted", "predicted")):
        means = np.array([getattr(m, f"{prefix}_mean") for m in result.per_model])
        low = np.array([_or_nan(getattr(m, f"{prefix}_ci_low")) for m in result.per_model])
        high = np.array([_or_nan(getattr(m, f"{prefix}_ci_high")) for m in result.per_model])
        err = np.nan_to_num(np.vstack([means - low, high - means]))
        ax.bar(x + offset, means, 0.4, yerr=err, capsize=3, label=label)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set(xticks=x, ylim=(0.4, 1.0), ylabel="mean accuracy over units (95% CI)")
    ax.set_xticklabels(names, rotation=30, ha="right")
    per_model = result.per_model_correlation.text if result.per_model_correlation is not None else "n/a"
    ax.set_title(f"{result.mode}: per-model r = {per_model}", fontsize=10)
    ax.legend(fontsize=8)


def _comparison_figure(reports: list[MetricReport]) -> Figure:
    import matplotlib.pyplot as plt

    names = [r.metric.name for r in reports]
    modes = sorted({result.mode for r in reports for result in r.modes})
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 3), 4.5))
    width = 0.8 / max(len(modes), 1)
    x = np.arange(len(names))
    for i, mode in enumerate(modes):
        scores = [_normalised(r, mode) for r in reports]
        values = np.array([_or_nan(s.value) for s in scores])
        err = np.nan_to_num(np.abs(np.vstack([
            values - np.array([_or_nan(s.ci_low) for s in scores]),
            np.array([_or_nan(s.ci_high) for s in scores]) - values,
        ])))
        ax.bar(x + (i - (len(modes) - 1) / 2) * width, np.nan_to_num(values), width, yerr=err, capsize=3, label=mode)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--", label="noise ceiling")
    ax.set(xticks=x, ylabel="headline r / split-half ceiling (95% CI)", title="Proxy metrics, held out")
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _normalised(report: MetricReport, mode: str) -> Score:
    for result in report.modes:
        if result.mode == mode:
            return result.ceiling_normalised.get("split_half", Score(value=None))
    return Score(value=None)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _fmt_score(score: Score) -> str:
    if score.value is None:
        return "n/a"
    if score.ci_low is None or score.ci_high is None:
        return f"{score.value:.2f}"
    return f"{score.value:.2f} [{score.ci_low:.2f}, {score.ci_high:.2f}]"


def _save(fig: Figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    tmp.replace(path)
    return path

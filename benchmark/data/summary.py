"""Human-data summary: exclusions, per-unit and per-model accuracy, noise ceilings, tables and a plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.api.types import ExclusionReport, NoiseCeiling
from benchmark.data.aggregate import binomial_ceiling, model_accuracy, split_half_ceiling, unit_accuracy
from benchmark.data.exclusions import apply_exclusions


@dataclass(frozen=True)
class HumanDataSummary:
    """Everything a proxy is judged against: per-unit accuracy with CIs, per-model means, noise ceilings."""

    source: str
    exclusions: ExclusionReport
    units: pd.DataFrame
    models: pd.DataFrame
    ceilings: tuple[NoiseCeiling, ...]
    notes: tuple[str, ...] = field(default=())

    def ceiling(self, mode: str, method: str = "split_half") -> NoiseCeiling:
        """The pooled (all models) ceiling of one mode and method."""
        for c in self.ceilings:
            if c.mode == mode and c.method == method:
                return c
        raise KeyError(f"no {method} ceiling for mode {mode!r}; modes: {sorted({c.mode for c in self.ceilings})}")


def summarize(
    trials: pd.DataFrame,
    *,
    source: str = "trials",
    notes: tuple[str, ...] = (),
    n_boot: int = 1000,
    n_splits: int = 200,
    seed: int = 0,
) -> HumanDataSummary:
    """Apply the exclusions to a canonical trial table and compute every human-side number."""
    kept, report = apply_exclusions(trials)
    units = unit_accuracy(kept, n_boot=n_boot, seed=seed)
    models = model_accuracy(units, kept, seed=seed)
    models["ceiling"] = [
        _model_ceiling(kept[kept["model"] == m], mode, n_splits=max(20, n_splits // 4), seed=seed)
        for m, mode in zip(models["model"], models["mode"])
    ]
    ceilings: list[NoiseCeiling] = []
    for mode in sorted(units["mode"].unique()):
        ceilings.append(split_half_ceiling(kept, mode=mode, n_splits=n_splits, seed=seed))
        ceilings.append(binomial_ceiling(units, mode=mode, seed=seed))
    return HumanDataSummary(source, report, units, models, tuple(ceilings), tuple(notes))


def _model_ceiling(trials: pd.DataFrame, mode: str, *, n_splits: int, seed: int) -> float:
    if trials[trials["mode"] == mode].groupby(["layer", "channel"]).ngroups < 3:
        return float("nan")
    return split_half_ceiling(trials, mode=mode, n_splits=n_splits, seed=seed).mean


def format_summary(summary: HumanDataSummary) -> str:
    """The summary as plain-text tables."""
    lines = [f"Source: {summary.source}", *summary.exclusions.lines()]
    lines += [f"note: {n}" for n in summary.notes]
    table = summary.models.copy()
    table["accuracy (95% CI)"] = [
        f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in zip(table["accuracy"], table["ci_low"], table["ci_high"])
    ]
    table["ceiling"] = table["ceiling"].map(lambda c: "n/a" if np.isnan(c) else f"{c:.3f}")
    columns = ["model", "mode", "n_units", "n_trials", "n_participants", "accuracy (95% CI)", "ceiling"]
    lines += ["", "Per model (unweighted mean over units; CI by bootstrap over units; split-half ceiling):"]
    lines.append(table[[c for c in columns if c in table.columns]].to_string(index=False))
    lines += ["", "Noise ceilings (all models pooled; ceiling on the per-unit Pearson r with human accuracy):"]
    for c in summary.ceilings:
        extra = f", reliability {c.reliability:.3f}" if c.reliability is not None else ""
        lines.append(
            f"  {c.mode:<10} {c.method:<10} {c.mean:.3f} ± {c.sd:.3f} ({c.n_units} units, {c.n_repeats} repeats{extra})"
        )
    return "\n".join(lines)


def plot_summary(summary: HumanDataSummary, path: str | Path) -> Path:
    """Save a PNG: per-model accuracy with CIs (natural vs optimized) and the distribution of unit accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = summary.models
    names = sorted(models["model"].unique())
    modes = sorted(models["mode"].unique())
    fig, (ax_bar, ax_hist) = plt.subplots(1, 2, figsize=(max(8, 1.2 * len(names) + 5), 4.5))
    width = 0.8 / max(len(modes), 1)
    x = np.arange(len(names))
    for i, mode in enumerate(modes):
        rows = models[models["mode"] == mode].set_index("model").reindex(names)
        err = np.vstack([rows["accuracy"] - rows["ci_low"], rows["ci_high"] - rows["accuracy"]])
        ax_bar.bar(x + (i - (len(modes) - 1) / 2) * width, rows["accuracy"], width, yerr=err, capsize=3, label=mode)
        ax_hist.hist(summary.units.loc[summary.units["mode"] == mode, "accuracy"], bins=20, range=(0, 1), alpha=0.6,
                     label=mode)
    ax_bar.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax_bar.set(xticks=x, ylabel="human 2-AFC accuracy", ylim=(0.4, 1.0), title="Accuracy per model (95% CI)")
    ax_bar.set_xticklabels(names, rotation=30, ha="right")
    ax_bar.legend()
    ax_hist.axvline(0.5, color="grey", lw=0.8, ls="--")
    ax_hist.set(xlabel="unit accuracy", ylabel="units", title="Per-unit accuracy")
    ax_hist.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path

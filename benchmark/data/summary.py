"""Human-data summary: exclusions, per-unit and per-model accuracy, noise ceilings, tables and a plot."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.api.errors import DataValidationError
from benchmark.api.types import ExclusionReport, HumanDataOrigin, NoiseCeiling
from benchmark.data.aggregate import binomial_ceiling, model_accuracy, split_half_ceiling, unit_accuracy
from benchmark.data.exclusions import apply_exclusions
from benchmark.data.selection import base_model_of, select_trials


@dataclass(frozen=True)
class HumanDataSummary:
    """Everything a proxy is judged against: per-unit accuracy with CIs, per-model means, noise ceilings."""

    source: str
    exclusions: ExclusionReport
    units: pd.DataFrame
    models: pd.DataFrame
    ceilings: tuple[NoiseCeiling, ...]
    notes: tuple[str, ...] = field(default=())
    origin: HumanDataOrigin | None = None
    _participants: tuple[tuple[str, int], ...] = field(default=(), repr=False)

    @property
    def participants_per_model(self) -> dict[str, int]:
        """Distinct participants per model over both modes (after exclusions)."""
        return dict(self._participants)

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
    models: tuple[str, ...] | None = None,
    modes: tuple[str, ...] | None = None,
    keep_repeats: bool = False,
    origin: HumanDataOrigin | None = None,
) -> HumanDataSummary:
    """Apply the exclusions to a canonical trial table and compute every human-side number.

    `models` / `modes` keep only those main trials (after the exclusions); `keep_repeats` keeps the trials of
    repeat participants (`multi_participation`), which the published analysis excludes.
    """
    kept, report = apply_exclusions(trials, keep_repeats=keep_repeats)
    if kept.empty:
        raise DataValidationError(
            f"{source}: no trials are left after the published exclusions "
            f"({'; '.join(line.strip() for line in report.lines()[1:-1])}). "
            "The lower-quality file holds only participants who failed the checks or took part twice; summarise "
            "--responses main or all, or pass --keep-repeat-participants to keep repeat participants."
        )
    kept = select_trials(kept, models=models, modes=modes, source=source)
    units = unit_accuracy(kept, n_boot=n_boot, seed=seed)
    units.insert(1, "base_model", units["model"].map(base_model_of))
    models = model_accuracy(units, kept, seed=seed)
    ceilings: list[NoiseCeiling] = []
    # With one participant per unit (e.g. a lower-quality file) a ceiling is undefined: it is NaN, shown as n/a,
    # and numpy's empty-slice warnings about it are not news to the user.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        models["ceiling"] = [
            _model_ceiling(kept[kept["model"] == m], mode, n_splits=max(20, n_splits // 4), seed=seed)
            for m, mode in zip(models["model"], models["mode"])
        ]
        for mode in sorted(units["mode"].unique()):
            ceilings.append(split_half_ceiling(kept, mode=mode, n_splits=n_splits, seed=seed))
            ceilings.append(binomial_ceiling(units, mode=mode, seed=seed))
    participants = tuple((str(m), int(n)) for m, n in kept.groupby("model")["participant_id"].nunique().items())
    return HumanDataSummary(source, report, units, models, tuple(ceilings), tuple(notes), origin, participants)


def _model_ceiling(trials: pd.DataFrame, mode: str, *, n_splits: int, seed: int) -> float:
    subset = trials[trials["mode"] == mode]
    if subset.groupby(["layer", "channel"]).ngroups < 3 or subset["participant_id"].nunique() < 2:
        return float("nan")
    return split_half_ceiling(trials, mode=mode, n_splits=n_splits, seed=seed).mean


def format_summary(summary: HumanDataSummary) -> str:
    """The summary as plain-text tables."""
    lines = [f"Source: {summary.source}", *([origin_line(summary.origin)] if summary.origin else []),
             *summary.exclusions.lines()]
    lines += [f"note: {n}" for n in summary.notes]
    table = summary.models.copy()
    table["accuracy (95% CI)"] = [
        f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in zip(table["accuracy"], table["ci_low"], table["ci_high"])
    ]
    table["ceiling"] = table["ceiling"].map(lambda c: "n/a" if np.isnan(c) else f"{c:.3f}")
    columns = ["model", "mode", "n_units", "n_trials", "n_participants", "accuracy (95% CI)", "ceiling"]
    lines += ["", "Per model (unweighted mean over units; CI by bootstrap over units; split-half ceiling):"]
    lines.append(table[[c for c in columns if c in table.columns]].to_string(index=False))
    lines += ["", "Per model as in the paper (95% CI by bootstrap over units):"]
    lines.append(format_paper_table(paper_table(summary), "text"))
    lines += ["", "Noise ceilings (all models pooled; ceiling on the per-unit Pearson r with human accuracy):"]
    for c in summary.ceilings:
        if np.isnan(c.mean):
            lines.append(f"  {c.mode:<10} {c.method:<10} n/a (too few participants or units to estimate it)")
            continue
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
    who = summary.origin.label if summary.origin is not None else "human"
    ax_bar.set(xticks=x, ylabel=f"{who} 2-AFC accuracy", ylim=(0.4, 1.0), title="Accuracy per model (95% CI)")
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


def origin_line(origin: HumanDataOrigin) -> str:
    """One line saying whether the responses are real (release and revision) or simulated (seed, version)."""
    if origin.is_simulated:
        sim = origin.simulator or {}
        return (f"SIMULATED humans (imibench data simulate, seed {sim.get('seed')}, version {sim.get('version')}): "
                "not human data")
    return f"Human data: real responses from {origin.source} (revision {origin.revision or 'unknown'})"


def paper_table(summary: HumanDataSummary) -> pd.DataFrame:
    """Per model, in the paper's order and names: natural and optimized accuracy with 95% CIs, units, participants."""
    from benchmark.data.selection import model_display_name, paper_order

    models = summary.models
    rows = []
    for model in paper_order(models["model"].unique()):
        row: dict[str, object] = {"model": model_display_name(model), "model_id": model,
                                  "base_model": base_model_of(model)}
        for mode in ("natural", "optimized"):
            match = models[(models["model"] == model) & (models["mode"] == mode)]
            values = match.iloc[0] if len(match) else None
            for key in ("accuracy", "ci_low", "ci_high"):
                row[f"{mode}_{key}"] = float(values[key]) if values is not None else float("nan")
        units = summary.units[summary.units["model"] == model]
        row["n_units"] = int(units[["layer", "channel"]].drop_duplicates().shape[0])
        row["n_participants"] = int(summary.participants_per_model.get(model, 0))
        rows.append(row)
    return pd.DataFrame(rows)


def format_paper_table(table: pd.DataFrame, fmt: str = "text") -> str:
    """The paper table as text, csv, json or markdown."""
    if fmt == "csv":
        return table.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        return table.to_json(orient="records", indent=2)
    shown = pd.DataFrame({"model": table["model"], "id": table["model_id"]})
    for mode in ("natural", "optimized"):
        shown[f"{mode} accuracy [95% CI]"] = [
            "n/a" if np.isnan(a) else f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
            for a, lo, hi in zip(table[f"{mode}_accuracy"], table[f"{mode}_ci_low"], table[f"{mode}_ci_high"])
        ]
    shown["units"] = table["n_units"]
    shown["participants"] = table["n_participants"]
    if fmt == "markdown":
        header = "| " + " | ".join(shown.columns) + " |"
        rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
        body = ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
        return "\n".join([header, rule, *body])
    return shown.to_string(index=False)

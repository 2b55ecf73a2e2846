"""Figures fit for a paper, from the CLI (`imibench leaderboard --figures DIR`) and the app's Compare tab.

Every figure is written as PNG (200 dpi), SVG and PDF. Rules: the chance level (0.5 for 2-AFC) is drawn and
labelled; axes span the data and chance, not an arbitrary start; natural and optimized panels share one scale;
legends sit outside the axes; only highlighted models are named in scatter plots; the noise ceiling is drawn
where a correlation is plotted. Built without pyplot (no global state; safe in Gradio's worker threads).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from leaderboard.loading import LoadedResult, load_results
from leaderboard.proxy_board import load_board
from leaderboard.table import build_table, comparability_groups, filter_table, latest_results

PNG_DPI = 200
FORMATS = ("png", "svg", "pdf")
CHANCE = 0.5
PALETTE = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6c4f9c", "#00798c", "#8d6a9f", "#555555")


def save_figure(figure: Figure, stem: str | Path) -> list[Path]:
    """Write `figure` as stem.png (200 dpi), stem.svg and stem.pdf; returns the three paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = stem.with_suffix(f".{fmt}")
        figure.savefig(path, dpi=PNG_DPI if fmt == "png" else None, bbox_inches="tight")
        paths.append(path)
    return paths


def _limits(values: Sequence[float], *, floor: float = CHANCE, pad: float = 0.02) -> tuple[float, float]:
    """Axis limits covering the data and chance (never starting at an arbitrary value above the data)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    low = min([floor, *finite]) - pad
    high = max([*finite, floor + 0.1]) + pad
    return max(low, 0.0), min(high, 1.0) if high <= 1.0 + pad else high


def _chance(axes, *, horizontal: bool = True, vertical: bool = False) -> None:
    style = {"color": "#777777", "linestyle": "--", "linewidth": 1}
    if horizontal:
        axes.axhline(CHANCE, **style)
        axes.annotate("chance (0.5)", xy=(1.0, CHANCE), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                      textcoords="offset points", ha="right", va="bottom", fontsize=8, color="#555555")
    if vertical:
        axes.axvline(CHANCE, **style)


def compare_figure(table: pd.DataFrame, highlighted: Sequence[str] = ()) -> Figure:
    """MIS mean (95% CI) against ImageNet top-1; highlighted keys are coloured and named, the rest grey."""
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    top1 = pd.to_numeric(table["ImageNet top-1"], errors="coerce") if not table.empty else pd.Series(dtype=float)
    known = table[top1.notna()] if not table.empty else table
    if known.empty:
        axes.text(0.5, 0.5, "No model states an ImageNet top-1 accuracy.", ha="center", va="center",
                  transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    x = pd.to_numeric(known["ImageNet top-1"]).to_numpy(float)
    y = known["MIS mean"].to_numpy(float)
    err = np.clip(np.vstack([y - known["ci_low"].to_numpy(float), known["ci_high"].to_numpy(float) - y]), 0, None)
    chosen = known["key"].isin(list(highlighted)).to_numpy()
    axes.errorbar(x[~chosen], y[~chosen], yerr=err[:, ~chosen], fmt="o", ms=4, color="#b0b0b0", ecolor="#d0d0d0",
                  label="other models")
    for index, (xi, yi, ei, name) in enumerate(zip(x[chosen], y[chosen], err[:, chosen].T, known["model"][chosen],
                                                   strict=True)):
        axes.errorbar([xi], [yi], yerr=ei[:, None], fmt="o", ms=6, capsize=3, color=PALETTE[index % len(PALETTE)],
                      label=str(name))
    _chance(axes)
    axes.set_ylim(*_limits(list(known["ci_low"]) + list(known["ci_high"])))
    axes.set_xlabel("ImageNet-1k top-1 accuracy (%) (as stated by the submitter)")
    axes.set_ylabel("MIS, mean over units (95% CI)")
    axes.grid(alpha=0.25)
    figure.legend(loc="outside lower center", ncol=min(4, int(chosen.sum()) + 1), fontsize=8, frameon=False)
    return figure


def layer_profiles_figure(results: Sequence[LoadedResult], labels: dict[str, str]) -> Figure:
    """MIS per layer against relative depth (95% CI bands), one line per model, legend outside."""
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    values: list[float] = []
    for index, loaded in enumerate(results):
        layers = loaded.result.scores.layers
        if not layers:
            continue
        depth = np.array([layer.relative_depth if layer.relative_depth is not None else
                          (i / max(len(layers) - 1, 1)) for i, layer in enumerate(layers)], dtype=float)
        order = np.argsort(depth, kind="stable")
        mean = np.array([layers[i].mean for i in order])
        low, high = np.array([layers[i].ci_low for i in order]), np.array([layers[i].ci_high for i in order])
        color = PALETTE[index % len(PALETTE)]
        axes.plot(depth[order], mean, marker="o", ms=3, color=color, label=labels.get(loaded.key, loaded.key))
        axes.fill_between(depth[order], low, high, color=color, alpha=0.15, linewidth=0)
        values += list(low) + list(high)
    _chance(axes)
    axes.set_ylim(*_limits(values))
    axes.set_xlim(0, 1)
    axes.set_xlabel("relative depth (0 = first scored layer, 1 = last)")
    axes.set_ylabel("MIS, mean over the layer's units (95% CI)")
    axes.grid(alpha=0.25)
    figure.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return figure


def human_vs_proxy_figure(pairs: pd.DataFrame, *, human_label: str = "humans", title: str = "") -> Figure:
    """Per-unit human 2-AFC accuracy against the proxy score; natural and optimized panels on one shared scale."""
    figure = Figure(figsize=(7.6, 3.9), layout="constrained")
    panels = figure.subplots(1, 2, sharex=True, sharey=True)
    values = list(pairs["human"]) + list(pairs["proxy"]) if not pairs.empty else []
    low, high = _limits(values)
    for axes, mode in zip(panels, ("natural", "optimized"), strict=True):
        rows = pairs[pairs["mode"] == mode] if not pairs.empty else pairs
        axes.plot([low, high], [low, high], color="#bbbbbb", linewidth=1, label="identity")
        axes.axhline(CHANCE, color="#777777", linestyle="--", linewidth=1)
        axes.axvline(CHANCE, color="#777777", linestyle="--", linewidth=1, label="chance (0.5)")
        if not rows.empty:
            axes.scatter(rows["proxy"], rows["human"], s=14, alpha=0.7, color=PALETTE[0 if mode == "natural" else 1])
            r = float(np.corrcoef(rows["proxy"], rows["human"])[0, 1]) if len(rows) > 2 else math.nan
            axes.set_title(f"{mode} exemplars (n = {len(rows)} units, r = {r:.2f})", fontsize=9)
        else:
            axes.set_title(f"{mode} exemplars (no units)", fontsize=9)
        axes.set_xlim(low, high)
        axes.set_ylim(low, high)
        axes.set_aspect("equal")
        axes.set_xlabel("proxy score (MIS) per unit")
        axes.grid(alpha=0.25)
    panels[0].set_ylabel(f"{human_label}: 2-AFC accuracy per unit")
    if title:
        figure.suptitle(title, fontsize=10)
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return figure


def proxy_board_figure(board: pd.DataFrame) -> Figure:
    """Held-out Pearson r with humans per proxy and mode (95% CI), with each mode's noise ceiling drawn."""
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    if board.empty:
        axes.text(0.5, 0.5, "No validation reports.", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return figure
    positions = np.arange(len(board))
    width = 0.38
    for offset, mode, color in ((-width / 2, "natural", PALETTE[0]), (width / 2, "optimized", PALETTE[1])):
        value = board[f"{mode}_r"].to_numpy(float)
        err = np.clip(np.vstack([value - board[f"{mode}_low"].to_numpy(float),
                                 board[f"{mode}_high"].to_numpy(float) - value]), 0, None)
        axes.bar(positions + offset, value, width, yerr=np.nan_to_num(err), capsize=3, color=color, label=mode)
    ratio = board["r_over_ceiling"].to_numpy(float)
    ceilings = board["natural_r"].to_numpy(float) / ratio
    ceiling = float(np.nanmedian(ceilings)) if np.isfinite(ceilings).any() else math.nan
    if math.isfinite(ceiling):
        axes.axhline(ceiling, color="#333333", linestyle=":", linewidth=1.2, label=f"noise ceiling ({ceiling:.2f})")
    axes.axhline(0, color="#777777", linewidth=0.8)
    axes.set_xticks(positions, board["proxy"].astype(str), rotation=20, ha="right")
    axes.set_ylabel("held-out Pearson r with human accuracy (95% CI)")
    axes.set_ylim(min(0.0, float(np.nanmin(board[["natural_low", "optimized_low"]].to_numpy(float))) - 0.05)
                  if board[["natural_low", "optimized_low"]].notna().any().any() else 0.0, 1.0)
    axes.grid(axis="y", alpha=0.25)
    figure.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return figure


def write_paper_figures(results: str | Path, out: str | Path | None = None, *, humans: str | None = None,
                        reports: str | Path | None = None, highlighted: Sequence[str] = ()) -> list[Path]:
    """Write the paper figures of the largest real-data group (compare, layer profiles, humans, proxies)."""
    from leaderboard.humans import load_human_table

    target = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="imibench-figures-"))
    loaded = load_results(results)
    human_table = load_human_table(humans) if humans else None
    table = build_table(loaded.results, human_table.lookup if human_table else None)
    groups = comparability_groups(loaded.results, table)
    rows = filter_table(table, group=groups[0].id) if groups else table
    by_key = latest_results(loaded.results)
    chosen = list(highlighted) or rows["key"].head(5).tolist()
    labels = dict(zip(table["key"], table["model"], strict=True))
    paths = save_figure(compare_figure(rows, chosen), target / "mis_vs_top1")
    paths += save_figure(layer_profiles_figure([by_key[k] for k in chosen if k in by_key], labels),
                         target / "layer_profiles")
    if human_table is not None:
        for key in rows["key"]:
            pairs = human_table.unit_pairs(by_key[key])
            if not pairs.empty:
                paths += save_figure(human_vs_proxy_figure(pairs, human_label=human_table.label,
                                                           title=labels[key]), target / "humans_vs_proxy")
                break
    board_folder = Path(reports) if reports else (loaded.folder / "reports" if loaded.folder else None)
    board = load_board(board_folder).table
    if not board.empty:
        paths += save_figure(proxy_board_figure(board), target / "proxy_metrics")
    return paths

"""The model and compare views: the unit viewer and the data behind the interactive (native) plots.

Paper figures (PNG/SVG/PDF) are in `leaderboard.figures`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image

from benchmark.api.errors import ConfigError
from benchmark.results.schema import UnitScore
from leaderboard.images import expected_location, load_thumbnail, placeholder, resolve_image, stimuli_roots
from leaderboard.loading import LoadedResult
from leaderboard.table import display_name

GalleryItem = tuple[Image.Image, str]


# ---------------------------------------------------------------- unit viewer


@dataclass(frozen=True)
class UnitView:
    """What the unit viewer shows for one (model, unit, task)."""

    summary: str
    max_references: list[GalleryItem] = field(default_factory=list)
    min_references: list[GalleryItem] = field(default_factory=list)
    queries: list[GalleryItem] = field(default_factory=list)
    warning: str = ""


def layer_names(loaded: LoadedResult) -> list[str]:
    """Layers that have scored units, in the result's layer order."""
    ordered = [layer.layer for layer in loaded.result.scores.layers]
    with_units = {unit.layer for unit in loaded.result.scores.units}
    extra = sorted(with_units - set(ordered))
    return [name for name in ordered if name in with_units] + extra


def unit_choices(loaded: LoadedResult, layer: str) -> list[tuple[str, int]]:
    """(label, channel) pairs of a layer's scored units, in channel order, for a dropdown."""
    units = sorted((u for u in loaded.result.scores.units if u.layer == layer), key=lambda u: u.channel)
    return [(f"channel {u.channel} (MIS {u.score:.3f})", u.channel) for u in units]


def find_unit(loaded: LoadedResult, layer: str, channel: int) -> UnitScore:
    """The scored unit (layer, channel) of a result; raises ConfigError naming the valid layers otherwise."""
    for unit in loaded.result.scores.units:
        if unit.layer == layer and unit.channel == int(channel):
            return unit
    raise ConfigError(
        f"{display_name(loaded)} has no scored unit {layer!r} channel {channel}; "
        f"layers with scored units: {', '.join(layer_names(loaded)) or 'none'}."
    )


def task_choices(unit: UnitScore) -> list[tuple[str, int]]:
    """(label, index) pairs of a unit's tasks, with each task's score where recorded."""
    choices = []
    for index in range(len(unit.tasks)):
        score = unit.task_scores[index] if index < len(unit.task_scores) else math.nan
        label = f"task {index + 1}" + (f" (score {score:.3f})" if math.isfinite(score) else "")
        choices.append((label, index))
    return choices


def _gallery(ids: Sequence[str], roots, captions: Sequence[str]) -> tuple[list[GalleryItem], list[str]]:
    items, missing = [], []
    for image_id, caption in zip(ids, captions, strict=True):
        path = resolve_image(image_id, roots)
        if path is None:
            missing.append(image_id)
            items.append((placeholder(f"image not found:\n{image_id}"), f"{caption}: {image_id} (not found)"))
        else:
            items.append((load_thumbnail(path), f"{caption}: {image_id}"))
    return items, missing


def unit_view(loaded: LoadedResult, layer: str, channel: int, task: int,
              stimuli_root: str | Path | None = None) -> UnitView:
    """The galleries and scores of one unit's task; unresolvable image ids become placeholders plus a warning."""
    unit = find_unit(loaded, layer, channel)
    name = display_name(loaded)
    head = f"**{name}** · layer `{unit.layer}` · channel {unit.channel} · unit score (MIS) **{unit.score:.3f}**"
    if not unit.tasks:
        return UnitView(head + "\n\nThis result file records no stimuli for this unit.")
    if not 0 <= int(task) < len(unit.tasks):
        raise ConfigError(f"Task {task} does not exist for this unit; valid tasks: 0 to {len(unit.tasks) - 1}.")
    index = int(task)
    images = unit.tasks[index]
    score = unit.task_scores[index] if index < len(unit.task_scores) else math.nan
    task_text = f"{score:.3f}" if math.isfinite(score) else "not recorded"
    summary = f"{head} · task {index + 1} of {len(unit.tasks)}, task score **{task_text}**"
    roots = stimuli_roots(loaded, stimuli_root)
    k = len(images.max_references)
    # Stored order: index K-1 is the most extreme; show the most extreme first.
    max_ids = list(reversed(images.max_references))
    min_ids = list(reversed(images.min_references))
    max_items, missing_max = _gallery(max_ids, roots, [f"max ref {i + 1}/{k}" for i in range(len(max_ids))])
    min_items, missing_min = _gallery(min_ids, roots, [f"min ref {i + 1}/{len(min_ids)}" for i in range(len(min_ids))])
    query_items, missing_q = _gallery([images.max_query, images.min_query], roots, ["max query", "min query"])
    missing = missing_max + missing_min + missing_q
    warning = ""
    if missing:
        total = len(max_ids) + len(min_ids) + 2
        warning = (
            f"⚠️ {len(missing)} of {total} images of this task could not be found "
            f"(e.g. `{missing[0]}`). {expected_location(loaded, roots)}"
        )
    return UnitView(summary, max_items, min_items, query_items, warning)


# ---------------------------------------------------------------- data for the interactive (native) plots


def layer_frame(loaded: LoadedResult) -> pd.DataFrame:
    """The per-layer table of one result: layer, relative depth, units, mean, p5, 95% CI (3 decimals)."""
    rows = [{"layer": layer.layer,
             "depth": round(layer.relative_depth, 3) if layer.relative_depth is not None else None,
             "units": layer.n_units, "MIS mean": round(layer.mean, 3), "p5": round(layer.p5, 3),
             "ci_low": round(layer.ci_low, 3), "ci_high": round(layer.ci_high, 3)}
            for layer in loaded.result.scores.layers]
    return pd.DataFrame(rows, columns=["layer", "depth", "units", "MIS mean", "p5", "ci_low", "ci_high"])


def profile_frame(results: Sequence[LoadedResult]) -> pd.DataFrame:
    """Long table (model, layer, depth, MIS) of per-layer means for a line plot; depth by index when unrecorded."""
    rows = []
    for loaded in results:
        layers = loaded.result.scores.layers
        for index, layer in enumerate(layers):
            depth = layer.relative_depth if layer.relative_depth is not None else (
                index / (len(layers) - 1) if len(layers) > 1 else 0.0)
            rows.append({"model": display_name(loaded), "layer": layer.layer, "relative depth": float(depth),
                         "MIS mean": float(layer.mean), "ci_low": float(layer.ci_low), "ci_high": float(layer.ci_high)})
    return pd.DataFrame(rows, columns=["model", "layer", "relative depth", "MIS mean", "ci_low", "ci_high"])


OTHER = "other models"


def compare_frame(table: pd.DataFrame, highlighted: Sequence[str] = ()) -> pd.DataFrame:
    """MIS mean against ImageNet top-1 for rows with a known top-1; only highlighted rows get their own label."""
    known = table[pd.to_numeric(table["ImageNet top-1"], errors="coerce").notna()] if not table.empty else table
    chosen = set(highlighted)
    return pd.DataFrame({
        "ImageNet top-1 (%)": pd.to_numeric(known["ImageNet top-1"], errors="coerce").astype(float),
        "MIS mean": known["MIS mean"].astype(float),
        "model": known["model"].astype(str),
        "rank": known["rank"].astype(str),
        "95% CI": known["95% CI"].astype(str),
        "highlight": [str(m) if k in chosen else OTHER for m, k in zip(known["model"], known["key"], strict=True)],
    })


def human_scatter_frame(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per-unit human accuracy against the proxy score, for a scatter coloured by mode."""
    frame = pairs.rename(columns={"human": "human accuracy", "proxy": "proxy score (MIS)"})
    frame["unit"] = frame["layer"].astype(str) + " #" + frame["channel"].astype(str)
    return frame

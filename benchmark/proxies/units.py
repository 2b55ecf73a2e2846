"""Build the units a proxy sees (ProxyUnit) from a human unit table and the stimulus index."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from benchmark.api.errors import DataValidationError
from benchmark.data.stimuli import StimulusIndex, TaskStimuli
from benchmark.proxies.base import ProxyUnit

UNIT_COLUMNS: tuple[str, ...] = ("model", "layer", "channel", "mode")


@runtime_checkable
class ActivationMapSource(Protocol):
    """Anything that returns a unit's (H, W) activation maps on given images, keyed by str(path).

    A model adapter implements it by running the model; the simulator's SimulatedActivationMaps computes the
    planted concept detector's response from the pixels.
    """

    def __call__(self, model: str, layer: str, channel: int, paths: Iterable[str | Path]) -> dict[str, np.ndarray]:
        """{str(path): (H, W) activation map of the unit on that image} for every path given."""
        ...


def build_units(
    index: StimulusIndex, unit_table: pd.DataFrame, *, activation_maps: ActivationMapSource | None = None
) -> list[ProxyUnit]:
    """One ProxyUnit per row of `unit_table` (model, layer, channel, mode, ...), in row order, with all its tasks."""
    _check_columns(unit_table)
    return [
        _build_unit(index, str(row.model), str(row.layer), int(row.channel), str(row.mode), activation_maps)
        for row in unit_table[list(UNIT_COLUMNS)].itertuples(index=False)
    ]


def _check_columns(unit_table: pd.DataFrame) -> None:
    missing = [c for c in UNIT_COLUMNS if c not in unit_table.columns]
    if missing:
        raise DataValidationError(
            f"unit table lacks column(s) {missing}; got {list(unit_table.columns)}. Pass a human unit table "
            "(e.g. summarize(trials).units) with columns model, layer, channel, mode."
        )
    if unit_table["channel"].isna().any():
        raise DataValidationError("unit table has empty 'channel' values; drop catch/demo rows before build_units.")


def _build_unit(
    index: StimulusIndex,
    model: str,
    layer: str,
    channel: int,
    mode: str,
    source: ActivationMapSource | None,
) -> ProxyUnit:
    tasks = tuple(index.unit_tasks(model, layer, channel, mode))
    if not tasks:
        raise DataValidationError(f"unit {model}/{layer}/{channel} ({mode}) has no tasks in the stimulus index.")
    maps = None if source is None else _unit_maps(source, model, layer, channel, tasks)
    return ProxyUnit(model, layer, channel, mode, tasks, maps)


def _unit_maps(
    source: ActivationMapSource, model: str, layer: str, channel: int, tasks: tuple[TaskStimuli, ...]
) -> dict[str, np.ndarray]:
    paths = list(dict.fromkeys(p for task in tasks for p in task.all_paths()))
    maps = source(model, layer, channel, paths)
    missing = [str(p) for p in paths if str(p) not in maps]
    if missing:
        raise DataValidationError(
            f"activation map source {source!r} returned no map for {len(missing)} image(s) of unit "
            f"{model}/{layer}/{channel}, e.g. {missing[:3]}; it must return one (H, W) map per path, keyed by "
            "str(path)."
        )
    bad = [key for key in map(str, paths) if np.ndim(maps[key]) != 2]
    if bad:
        raise DataValidationError(
            f"activation maps must be 2-D (H, W); got shape {np.shape(maps[bad[0]])} for {bad[0]} "
            f"(unit {model}/{layer}/{channel})."
        )
    return {str(p): np.asarray(maps[str(p)], dtype=np.float32) for p in paths}

"""The human side of validation: per-unit accuracy aligned to the units, and the noise ceilings by mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmark.api.errors import DataValidationError
from benchmark.api.types import NoiseCeiling
from benchmark.proxies.base import ProxyUnit


def align_human(units: Sequence[ProxyUnit], unit_table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a per-unit human table (summary.units) in the order of `units`; raises if a unit is absent."""
    table = unit_table.reset_index(drop=True)
    keys = _table_keys(table)
    if len(set(keys)) != len(keys):
        raise DataValidationError("The human unit table has duplicate (model, layer, channel, mode) rows.")
    position = {key: i for i, key in enumerate(keys)}
    missing = [u.key for u in units if u.key not in position]
    if missing:
        raise DataValidationError(
            f"{len(missing)} unit(s) have no row in the human table, e.g. {missing[0]}. Build the units from the "
            "same summary (benchmark.proxies.units.build_units) or drop those units."
        )
    return table.iloc[[position[u.key] for u in units]].reset_index(drop=True)


def _table_keys(table: pd.DataFrame) -> list[tuple[str, str, int, str]]:
    required = ["model", "layer", "channel", "mode", "accuracy"]
    absent = [c for c in required if c not in table.columns]
    if absent:
        raise DataValidationError(
            f"The human unit table lacks column(s) {absent}; it needs {required} (benchmark.data.summary units)."
        )
    return [
        (str(m), str(layer), int(c), str(mode))
        for m, layer, c, mode in zip(table["model"], table["layer"], table["channel"], table["mode"])
    ]


def _check_aligned(units: Sequence[ProxyUnit], human: pd.DataFrame) -> np.ndarray:
    """Human accuracy per unit, after checking that `human` rows match `units` one to one."""
    keys = _table_keys(human)
    if len(keys) != len(units) or any(k != u.key for k, u in zip(keys, units)):
        raise DataValidationError(
            f"The human table ({len(keys)} rows) is not aligned to the {len(units)} units. "
            "Pass align_human(units, summary.units) as `human`."
        )
    return human["accuracy"].to_numpy(dtype=float)


def ceilings_from_summary(summary: Any) -> dict[str, dict[str, NoiseCeiling]]:
    """mode -> {method -> NoiseCeiling} from a HumanDataSummary's pooled ceilings."""
    result: dict[str, dict[str, NoiseCeiling]] = {}
    for ceiling in summary.ceilings:
        result.setdefault(ceiling.mode, {})[ceiling.method] = ceiling
    return result

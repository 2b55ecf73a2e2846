"""Choose the units of a model to score from a spec's unit selection."""

from __future__ import annotations

from benchmark.models.adapters import LoadedModel
from benchmark.models.units import (
    LayerInfo,
    UnitRef,
    default_unit_selection,
    every_unit,
    list_layers,
    sample_units,
    select_layers,
)
from benchmark.scoring.spec import UnitSelection


def choose_units(loaded: LoadedModel, selection: UnitSelection) -> tuple[list[UnitRef], list[LayerInfo]]:
    """The units to score and every candidate layer (for depths and output layouts).

    With no layer choice and no per-layer count, the benchmark default (`default_unit_selection`, 84 units as in
    IMI, or `total_units`) applies; otherwise units are sampled from the chosen layers (all layers by default).
    """
    layers = list_layers(loaded)
    if selection.all_units:
        return every_unit(layers, patterns=selection.layers, depth_fractions=selection.depth_fractions), layers
    by_layer = selection.layers is not None or selection.depth_fractions is not None
    if not by_layer and selection.units_per_layer is None:
        options = {"total": selection.total_units} if selection.total_units is not None else {}
        return default_unit_selection(loaded, selection.seed, layers=layers, **options), layers
    chosen = select_layers(layers, patterns=selection.layers, depth_fractions=selection.depth_fractions)
    units = sample_units(chosen, per_layer=selection.units_per_layer, total=selection.total_units, seed=selection.seed)
    return units, layers

"""Streaming activation collection: per unit, the k most and least activating images, never all activations."""

from benchmark.activations.checkpoint import CheckpointConfig, hash_ids
from benchmark.activations.collect import LayerSelection, collect_extremes, layer_selections, reduce_to_units
from benchmark.activations.extremes import ExtremeSets

__all__ = [
    "CheckpointConfig",
    "ExtremeSets",
    "LayerSelection",
    "collect_extremes",
    "hash_ids",
    "layer_selections",
    "reduce_to_units",
]

"""Model adapters (timm, open_clip, torchvision, local state dicts), unit enumeration, selection and sampling.

The names below are imported lazily (PEP 562), so `import benchmark.models.spec` stays light (pydantic only) and
torch, timm and open_clip load when an adapter or unit function is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "DataConfig": "benchmark.models.adapters",
    "LoadedModel": "benchmark.models.adapters",
    "load_model": "benchmark.models.adapters",
    "ModelSpec": "benchmark.models.spec",
    "make_model_spec": "benchmark.models.spec",
    "parse_model_spec": "benchmark.models.spec",
    "LAYER_KINDS": "benchmark.models.units",
    "LayerInfo": "benchmark.models.units",
    "UnitRef": "benchmark.models.units",
    "default_unit_selection": "benchmark.models.units",
    "enumerate_layers": "benchmark.models.units",
    "layer_output_to_units": "benchmark.models.units",
    "list_layers": "benchmark.models.units",
    "sample_units": "benchmark.models.units",
    "select_layers": "benchmark.models.units",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benchmark.models' has no attribute {name!r}; exports: {', '.join(__all__)}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

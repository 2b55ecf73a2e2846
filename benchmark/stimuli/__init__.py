"""Image sources (image folder, Hugging Face dataset, bundled sample), their torch loaders, exemplar selection.

The names below are imported lazily (PEP 562): `import benchmark.stimuli.exemplars` stays numpy-only, and torch,
PIL and datasets load when a source is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "BundledSample": "benchmark.stimuli.bundled",
    "HFImageSource": "benchmark.stimuli.sources",
    "ImageFolderSource": "benchmark.stimuli.sources",
    "ImageSource": "benchmark.stimuli.sources",
    "as_torch_dataset": "benchmark.stimuli.sources",
    "make_loader": "benchmark.stimuli.sources",
    "parse_image_source": "benchmark.stimuli.sources",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benchmark.stimuli' has no attribute {name!r}; exports: {', '.join(__all__)}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

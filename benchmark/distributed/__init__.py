"""Scoring on a cluster: the sharded activation pass and the submission queue over Ray.

`benchmark.distributed.sharding` (shard planning, the pass over one shard, the exact merge) needs no Ray.
`benchmark.distributed.ray_backend` imports Ray; load it with `load_ray_backend()` (or import it) only when
asked for, so a local run never imports Ray. Install it with `pip install imi-bench[ray]`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from benchmark.api.errors import ConfigError


def load_ray_backend() -> ModuleType:
    """Import `benchmark.distributed.ray_backend`; a ConfigError with the install command when Ray is missing."""
    try:
        importlib.import_module("ray")
    except ImportError as err:
        raise ConfigError(
            f"The Ray backend needs Ray, which is not installed here ({err}). Install it with "
            "`pip install 'imi-bench[ray]'` (or `pip install 'ray[default]>=2.9'`), or run without --backend ray."
        ) from err
    return importlib.import_module("benchmark.distributed.ray_backend")

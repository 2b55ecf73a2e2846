"""User metrics: load a proxy from the registry, an importable module or a .py file, without eval.

Spec forms accepted by `load_metric`:
- "mis-pixel": a registered proxy name (instantiated with its defaults);
- "my_package.metrics:MyMetric": an attribute of an importable module;
- "path/to/file.py:MyMetric": an attribute of a Python file (imported once per resolved path).

The attribute may be a ProxyMetric subclass (instantiated with its defaults), a ProxyMetric instance, or a plain
function `units -> raw scores` (one number per unit, larger = more interpretable), wrapped in FunctionProxy.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from benchmark.api.errors import ConfigError, DataValidationError, RegistryError
from benchmark.proxies.base import CalibratedProxy, ProxyMetric, ProxyUnit, make_proxy, proxies

register_metric = proxies.register  # decorator for users: @register_metric("my-metric") on a ProxyMetric subclass

_FILE_MODULES: dict[Path, ModuleType] = {}


class FunctionProxy(CalibratedProxy):
    """A plain function `units -> raw scores` as a calibrated proxy (logistic fitted on human accuracy)."""

    def __init__(self, func: Callable[[Sequence[ProxyUnit]], Sequence[float]]) -> None:
        self.func = func

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """The function's scores, checked to be one finite number per unit."""
        if not callable(self.func):
            raise ConfigError(f"FunctionProxy needs a callable func(units) -> scores, got {self.func!r}.")
        name = getattr(self.func, "__qualname__", repr(self.func))
        try:
            scores = np.asarray(self.func(units), dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DataValidationError(f"Metric function {name} did not return numbers: {err}.") from err
        if scores.shape != (len(units),):
            raise DataValidationError(
                f"Metric function {name} returned shape {scores.shape}; expected one score per unit ({len(units)},)."
            )
        if not np.isfinite(scores).all():
            raise DataValidationError(f"Metric function {name} returned non-finite scores (NaN or inf).")
        return scores


def load_metric(spec: str) -> ProxyMetric:
    """A proxy from a registry name, 'module.path:Name' or 'path/to/file.py:Name'."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"Metric spec must be a non-empty string, got {spec!r}; e.g. 'mis-pixel' or 'pkg.mod:Name'.")
    if ":" not in spec:
        return _from_registry(spec)
    location, _, attribute = spec.rpartition(":")
    if not location or not attribute.isidentifier():
        raise ConfigError(
            f"Metric spec {spec!r} is not 'module.path:Name' or 'path/to/file.py:Name' (Name a Python identifier)."
        )
    module = _import_file(location) if _is_file_spec(location) else _import_module(location)
    return _as_metric(_get_attribute(module, attribute, spec), spec)


def _from_registry(name: str) -> ProxyMetric:
    try:
        return make_proxy(name)
    except RegistryError as err:
        raise ConfigError(
            f"{err} To load your own metric instead, pass 'module.path:Name' or 'path/to/file.py:Name'."
        ) from None


def _is_file_spec(location: str) -> bool:
    return location.endswith(".py") or "/" in location or "\\" in location


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and name != err.name and not name.startswith(f"{err.name}."):
            raise ConfigError(
                f"Module {name!r} was found but failed to import: it needs {err.name!r}, which is not installed."
            ) from err
        raise ConfigError(
            f"Module {name!r} not found on sys.path ({_short_path()}). Install the package that provides it, "
            "add its folder to PYTHONPATH, or pass a file: 'path/to/file.py:Name'."
        ) from err


def _short_path(limit: int = 6) -> str:
    shown = ", ".join(repr(p) for p in sys.path[:limit])
    return shown + (f", ... ({len(sys.path)} entries)" if len(sys.path) > limit else "")


def _import_file(location: str) -> ModuleType:
    path = Path(location).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"Metric file {location!r} not found (resolved to {path}); pass an existing .py file.")
    if path in _FILE_MODULES:  # importing twice would re-run its @register_metric decorators and fail
        return _FILE_MODULES[path]
    module_name = f"imibench_plugin_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"Cannot import {path} as a Python module; metric files must end in .py.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    _FILE_MODULES[path] = module
    return module


def _get_attribute(module: ModuleType, attribute: str, spec: str) -> object:
    if hasattr(module, attribute):
        return getattr(module, attribute)
    candidates = sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and _is_candidate(value) and getattr(value, "__module__", None) == module.__name__
    )
    raise ConfigError(
        f"{module.__name__!r} (from {spec!r}) has no attribute {attribute!r}. Metric candidates defined there: "
        f"{', '.join(candidates) or '(none)'}."
    )


def _is_candidate(value: object) -> bool:
    is_metric_class = inspect.isclass(value) and issubclass(value, ProxyMetric)
    return is_metric_class or isinstance(value, ProxyMetric) or inspect.isfunction(value)


def _as_metric(obj: object, spec: str) -> ProxyMetric:
    if inspect.isclass(obj) and issubclass(obj, ProxyMetric):
        if inspect.isabstract(obj):
            raise ConfigError(f"{spec!r} is an abstract ProxyMetric class; implement fit/predict (or raw_scores).")
        try:
            return obj()
        except TypeError as err:
            raise ConfigError(
                f"{spec!r} cannot be built with default parameters ({err}); give every parameter a default."
            ) from err
    if isinstance(obj, ProxyMetric):
        return obj
    if callable(obj) and not inspect.isclass(obj):
        return FunctionProxy(obj)
    raise ConfigError(
        f"{spec!r} is a {type(obj).__name__}, not a metric. Point it at a ProxyMetric subclass, a ProxyMetric "
        "instance, or a function units -> raw scores (one number per unit)."
    )

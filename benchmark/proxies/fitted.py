"""Fitted proxy files: a proxy's name, version, parameters, fitted parameters and validation, as versioned JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.api.errors import ConfigError, DataValidationError, SourceUnavailableError
from benchmark.api.types import HumanDataOrigin
from benchmark.proxies.base import ProxyMetric, make_proxy, proxies
from benchmark.results.io import atomic_write_text, read_json_bounded
from benchmark.results.provenance import utc_now

FITTED_SCHEMA_VERSION = "1.0"
MAX_FITTED_BYTES = 16 << 20  # a fitted proxy file holds a few numbers and its validation summary


class FittedProxy(BaseModel):
    """What scoring needs to reuse a proxy fitted on human data, and what it was validated at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: str = FITTED_SCHEMA_VERSION
    name: str
    version: str
    params: dict[str, Any]
    fitted_params: dict[str, Any]
    validation: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict, description="human data it was fitted on: source, revision")
    human_data: HumanDataOrigin | None = Field(None, description="real release or simulated; see HumanDataOrigin")
    created_at: str = Field(default_factory=utc_now)


def registry_name(metric: ProxyMetric) -> str:
    """The name `metric`'s class is registered under."""
    name = next((n for n in proxies.names() if proxies.get(n) is type(metric)), None)
    if name is not None:
        return name
    raise ConfigError(
        f"{type(metric).__name__} is not in the proxy registry, so a fitted file could not recreate it; "
        "register it with @proxies.register('name') first."
    )


def save_fitted_proxy(
    metric: ProxyMetric,
    path: str | Path,
    *,
    validation: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    human_data: HumanDataOrigin | None = None,
) -> FittedProxy:
    """Write a fitted metric to JSON atomically; metrics whose fitted state is not JSON-able are refused.

    `human_data` says whether the validation numbers come from real or simulated humans (None: unknown, never
    ranked beside real ones).
    """
    if not type(metric).json_restorable:
        raise ConfigError(
            f"{type(metric).__name__} cannot be saved for scoring: its fitted state (e.g. scikit-learn models) is "
            "not stored as JSON. Score with a metric whose fitted parameters are plain numbers, such as mis-pixel."
        )
    fitted = metric.fitted_params()
    record = FittedProxy(
        name=registry_name(metric),
        version=type(metric).version,
        params=metric.get_params(deep=False),
        fitted_params=fitted,
        validation=validation or {},
        data=data or {},
        human_data=human_data,
    )
    try:
        text = record.model_dump_json(indent=2)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"The fitted state of {record.name!r} cannot be stored as JSON ({err}); only proxies with "
            "JSON-able fitted parameters can be saved for scoring."
        ) from None
    atomic_write_text(path, text)
    return record


def load_fitted_proxy(path: str | Path) -> tuple[ProxyMetric, FittedProxy]:
    """Recreate a fitted metric from its file; a version mismatch or invalid file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise SourceUnavailableError(
            f"Fitted proxy file not found: {path}. Create one with `imibench proxy fit --source ... --metric ... "
            f"--out {path}`."
        )
    try:
        record = FittedProxy.model_validate(read_json_bounded(path, max_bytes=MAX_FITTED_BYTES, what="Fitted proxy"))
    except (ValidationError, RecursionError) as err:
        raise DataValidationError(f"{path} is not a valid fitted proxy file: {err}") from None
    metric = make_proxy(record.name, **record.params)
    if type(metric).version != record.version:
        raise ConfigError(
            f"{path} was fitted with {record.name} version {record.version}, but this imi-bench has version "
            f"{type(metric).version}; refit it with `imibench proxy fit`."
        )
    check_fitted_params(type(metric), record.fitted_params, path)
    for key, value in record.fitted_params.items():
        setattr(metric, key, value)
    return metric, record


def check_fitted_params(cls: type[ProxyMetric], params: dict[str, Any], path: str | Path) -> None:
    """Refuse a (hand-edited) fitted-proxy file at load, before any model runs: every key ends with '_', every
    number is finite, and the metric's required fitted numbers (`fitted_bounds`) are present and in bounds."""
    fix = "refit it with `imibench proxy fit` (fitted files are not meant to be edited by hand)"
    if not params:
        raise DataValidationError(f"{path}: fitted_params is empty, so the proxy is not fitted; {fix}.")
    for key, value in params.items():
        if not key.endswith("_"):
            raise DataValidationError(f"{path}: fitted parameter {key!r} does not end with '_'; the file is corrupt.")
        bad = _non_finite(value)
        if bad is not None:
            raise DataValidationError(f"{path}: fitted parameter {key!r} holds {bad}, not a finite number; {fix}.")
    for key, (low, high) in cls.fitted_bounds.items():
        value = params.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataValidationError(
                f"{path}: {cls.__name__} needs the fitted number {key!r}, got {value!r}; {fix}."
            )
        if not low <= value <= high:
            raise DataValidationError(
                f"{path}: fitted parameter {key!r} = {value!r} is outside its valid range [{low:g}, {high:g}]; {fix}."
            )


def _non_finite(value: Any, depth: int = 0) -> str | None:
    """The first NaN/infinite number inside a JSON value (None when all are finite)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if depth < 32 and isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            found = _non_finite(item, depth + 1)
            if found is not None:
                return found
    return None

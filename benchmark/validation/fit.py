"""Fit a proxy on human data for scoring, and store it with its held-out validation numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import clone

from benchmark.api.errors import ConfigError
from benchmark.proxies.fitted import FittedProxy, save_fitted_proxy
from benchmark.validation.harness import validate_metric
from benchmark.validation.report import ModeResult
from benchmark.validation.run import ValidationConfig, load_metrics, prepare_data

# The held-out numbers copied into a fitted proxy file (and from there into every result file).
VALIDATION_KEYS: tuple[str, ...] = ("pearson", "spearman", "kendall", "model_pearson", "mae")


def fit_proxy(config: ValidationConfig, *, mode: str, out: str | Path) -> FittedProxy:
    """Validate one metric held-out on `mode`, refit it on all units of that mode, and save it to `out`."""
    if config.metrics is None or len(config.metrics) != 1:
        raise ConfigError(f"Fitting takes exactly one metric, got {list(config.metrics or [])}.")
    (name, metric), = load_metrics(config.metrics)
    prepared = prepare_data(config)
    keep = [i for i, unit in enumerate(prepared.units) if unit.mode == mode]
    if not keep:
        modes = sorted({unit.mode for unit in prepared.units})
        raise ConfigError(f"No units with mode {mode!r} in {config.source}; modes present: {modes}.")
    units = [prepared.units[i] for i in keep]
    human = prepared.human.iloc[keep].reset_index(drop=True)
    report = validate_metric(metric, units, human, prepared.ceilings, scheme=config.scheme, k=config.k,
                             n_boot=config.n_boot, seed=config.seed, progress=config.progress, name=name,
                             data=prepared.data)
    if report.status != "ok":
        raise ConfigError(f"{name} cannot be fitted on this data: {report.skip_reason}")
    fitted = clone(metric).fit(units, human["accuracy"].to_numpy(dtype=float))
    return save_fitted_proxy(fitted, out, validation=_validation_summary(report.modes[0], config),
                             data=prepared.data.model_dump())


def _validation_summary(result: ModeResult, config: ValidationConfig) -> dict[str, object]:
    summary: dict[str, object] = {"mode": result.mode, "scheme": config.scheme, "n_units": result.n_units,
                                  "n_models": result.n_models}
    for key in VALIDATION_KEYS:
        score = result.scores.get(key)
        if score is not None:
            summary[key] = score.model_dump()
    ceiling = result.ceiling_normalised.get("split_half")
    if ceiling is not None:
        summary["pearson_over_ceiling"] = ceiling.model_dump()
    summary["ceiling"] = {k: float(np.round(c.mean, 4)) for k, c in result.ceilings.items()}
    return summary

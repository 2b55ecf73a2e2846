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

# The held-out secondary numbers copied into a fitted proxy file (and from there into every result file), beside
# the headline; per-model r only where it was computed (>= 8 models).
VALIDATION_KEYS: tuple[str, ...] = ("pearson", "spearman", "kendall", "mae")


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
    halves = None if prepared.split_halves is None else {mode: prepared.split_halves[mode]}
    report = validate_metric(metric, units, human, prepared.ceilings, scheme=config.scheme, k=config.k,
                             n_boot=config.n_boot, seed=config.seed, progress=config.progress, name=name,
                             data=prepared.data, n_permutations=config.n_permutations, split_halves=halves,
                             n_refits=config.n_refits,
                             human_data=prepared.origin)
    if report.status != "ok":
        raise ConfigError(f"{name} cannot be fitted on this data: {report.skip_reason}")
    fitted = clone(metric).fit(units, human["accuracy"].to_numpy(dtype=float))
    return save_fitted_proxy(fitted, out, validation=validation_summary(report.modes[0], config),
                             data=prepared.data.model_dump(), human_data=prepared.origin)


def validation_summary(result: ModeResult, config: ValidationConfig) -> dict[str, object]:
    """The numbers a fitted proxy file carries: headline (with CI, p), secondary scores, and only meaningful extras."""
    summary: dict[str, object] = {"mode": result.mode, "scheme": config.scheme, "n_units": result.n_units,
                                  "n_models": result.n_models, "headline_statistic": result.headline_statistic,
                                  "headline_basis": result.headline_basis, "headline": result.headline.model_dump(),
                                  "p_value_method": result.p_value_method,
                                  "interval_method": result.interval_method}
    for key in VALIDATION_KEYS:
        score = result.scores.get(key)
        if score is not None and score.value is not None:
            summary[key] = score.model_dump()
    per_model = result.per_model_correlation
    if per_model is not None and per_model.pearson is not None:
        summary["per_model_pearson"] = {**per_model.pearson.model_dump(), "n_models": per_model.n_models,
                                        "basis": per_model.basis}
    ceiling = result.ceiling_normalised.get("split_half")
    if ceiling is not None and ceiling.value is not None:
        summary["headline_over_ceiling"] = ceiling.model_dump()
        if "split_half" in result.ceiling_flags:
            summary["headline_over_ceiling_flag"] = result.ceiling_flags["split_half"]
    summary["ceiling"] = {k: float(np.round(c.mean, 4)) for k, c in result.ceilings.items()}
    return summary

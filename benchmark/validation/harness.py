"""Validate proxy metrics against human accuracy with held-out folds: predictions, scores, CIs, ceilings.

`validate_metric` is the core: per mode (natural, optimized) it fits a clone of the metric on the training
folds only, predicts each held-out unit exactly once, and scores the predictions against the human per-unit
accuracy. `run_validation(config)` is the whole pipeline behind `imibench proxy validate`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sklearn.base import clone
from tqdm.auto import tqdm

from benchmark.api.errors import ConfigError, DataValidationError, ImiBenchError, SourceUnavailableError
from benchmark.api.types import MODES, NoiseCeiling
from benchmark.proxies.base import ProxyMetric, ProxyUnit, proxies
from benchmark.proxies.mis import EmbeddingMixin
from benchmark.proxies.plugins import load_metric
from benchmark.validation import metrics as vm
from benchmark.validation.report import (
    DataProvenance,
    MetricInfo,
    MetricReport,
    ModelSummary,
    ModeResult,
    SchemeInfo,
    Score,
    UnitPrediction,
    ValidationReport,
    make_provenance,
    write_report,
)
from benchmark.validation.splits import Split, check_no_leakage, check_scheme, make_splits

Ceilings = Mapping[str, Mapping[str, NoiseCeiling]]  # mode -> method ("split_half", "binomial") -> ceiling


@dataclass(frozen=True)
class ScoreFunction:
    """A validation metric as the harness runs it, and which per-unit labels it takes."""

    function: Callable[..., float]
    per_model: bool = False  # takes `models=` (per-unit model labels) and scores model means
    per_fold: bool = False  # takes `groups=` (the test fold of each unit)


# Higher is better for the correlations; lower for mae and calibration_error; calibration_slope is ideal at 1.
SCORES: dict[str, ScoreFunction] = {
    "pearson": ScoreFunction(vm.pearson_score),
    "spearman": ScoreFunction(vm.spearman_score),
    "kendall": ScoreFunction(vm.kendall_score),
    "within_fold_pearson": ScoreFunction(vm.within_group_pearson_score, per_fold=True),
    "model_pearson": ScoreFunction(vm.model_pearson_score, per_model=True),
    "model_spearman": ScoreFunction(vm.model_spearman_score, per_model=True),
    "mae": ScoreFunction(vm.mean_absolute_error),
    "calibration_error": ScoreFunction(vm.calibration_error),
    "calibration_slope": ScoreFunction(vm.calibration_slope),
}
CEILING_METHODS: tuple[str, ...] = ("split_half", "binomial")


# ------------------------------------------------------------------------------------------- cross-validation


def cross_validated_predictions(
    metric: ProxyMetric,
    units: Sequence[ProxyUnit],
    y: np.ndarray,
    splits: Sequence[Split],
    *,
    progress: bool = False,
    desc: str = "folds",
) -> np.ndarray:
    """Held-out predictions: a clone of `metric` is fitted on each fold's training units and predicts its test units."""
    predictions, _ = _cross_validate(metric, units, y, splits, progress=progress, desc=desc)
    return predictions


def _cross_validate(
    metric: ProxyMetric,
    units: Sequence[ProxyUnit],
    y: np.ndarray,
    splits: Sequence[Split],
    *,
    progress: bool,
    desc: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and the fold index of every unit; each unit must be predicted exactly once."""
    y = np.asarray(y, dtype=float)
    if len(y) != len(units):
        raise DataValidationError(f"Got {len(y)} human accuracies for {len(units)} units; pass one per unit.")
    predictions = np.full(len(units), np.nan)
    fold_of = np.full(len(units), -1)
    times_predicted = np.zeros(len(units), dtype=int)
    for fold, (train, test) in enumerate(tqdm(splits, desc=desc, unit="fold", leave=False, disable=not progress)):
        check_no_leakage(units, train, test)
        estimator = _fresh_clone(metric).fit([units[i] for i in train], y[train])
        predictions[test] = _checked_predictions(estimator, [units[i] for i in test])
        fold_of[test] = fold
        times_predicted[test] += 1
    wrong = np.flatnonzero(times_predicted != 1)
    if len(wrong):
        raise DataValidationError(
            f"The splits predict {len(wrong)} unit(s) other than exactly once (e.g. {units[wrong[0]].key} "
            f"{times_predicted[wrong[0]]} times). Every unit must be in exactly one test fold."
        )
    return predictions, fold_of


def _fresh_clone(metric: ProxyMetric) -> ProxyMetric:
    """An unfitted sklearn clone; embedding metrics share the template's image-embedding cache.

    Embeddings depend on the images only, never on human data, so sharing them across folds cannot leak;
    it saves re-embedding every image once per fold.
    """
    estimator = clone(metric)
    if isinstance(metric, EmbeddingMixin) and isinstance(estimator, EmbeddingMixin):
        estimator.share_embedding_cache(metric.embedding_cache)
    return estimator


def _checked_predictions(estimator: ProxyMetric, units: list[ProxyUnit]) -> np.ndarray:
    values = np.asarray(estimator.predict(units), dtype=float)
    name = type(estimator).__name__
    if values.shape != (len(units),):
        raise DataValidationError(f"{name}.predict returned shape {values.shape} for {len(units)} units.")
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise DataValidationError(
            f"{name}.predict must return finite values in [0, 1]; got range "
            f"[{np.nanmin(values):.3g}, {np.nanmax(values):.3g}] with {int((~np.isfinite(values)).sum())} non-finite."
        )
    return values


# ------------------------------------------------------------------------------------------- human side


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


# ------------------------------------------------------------------------------------------- one metric


def resolve_metric(metric: ProxyMetric | str) -> tuple[str, ProxyMetric]:
    """(name, instance) of a metric given as an instance, a registry name or a `module:Name` plugin."""
    if isinstance(metric, ProxyMetric):
        return _registered_name(type(metric)), metric
    if isinstance(metric, str):
        return metric, load_metric(metric)
    raise ConfigError(
        f"A metric must be a ProxyMetric instance, a registry name or 'module:Name'; got {type(metric).__name__}."
    )


def _registered_name(cls: type) -> str:
    """The registry name of `cls`, or its class name for an unregistered (plugin) metric."""
    return next((name for name in proxies.names() if proxies.get(name) is cls), cls.__name__)


def validate_metric(
    metric: ProxyMetric | str,
    units: Sequence[ProxyUnit],
    human: pd.DataFrame,
    ceilings: Ceilings,
    *,
    scheme: str = "lomo",
    k: int = 5,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = True,
    data: DataProvenance | None = None,
    name: str | None = None,
) -> MetricReport:
    """Validate one metric per mode on held-out folds; a metric whose inputs are absent is reported as skipped.

    `name` labels the report (default: the registry name, the spec string, or the class name).
    """
    start = time.perf_counter()
    check_scheme(scheme)
    resolved_name, instance = resolve_metric(metric)
    name = name or resolved_name
    y = _check_aligned(units, human)
    scheme_info = SchemeInfo(name=scheme, k=k if scheme == "kfold" else None, seed=seed, n_boot=n_boot,
                             confidence=confidence)

    def finish(**fields: Any) -> MetricReport:
        provenance = make_provenance(seed=seed, wall_time_s=time.perf_counter() - start, data=data)
        return MetricReport(metric=metric_info(name, instance), scheme=scheme_info, provenance=provenance, **fields)

    missing = instance.missing_inputs(units)
    if missing:
        return finish(status="skipped", skip_reason=_missing_reason(missing))
    try:
        modes = [
            _validate_mode(instance, name, units, y, human, ceilings, mode, scheme=scheme, k=k, n_boot=n_boot,
                           confidence=confidence, seed=seed, progress=progress)
            for mode in _modes_of(units)
        ]
    except SourceUnavailableError as err:  # e.g. embedder weights absent offline: an input the metric lacks
        return finish(status="skipped", skip_reason=f"an input is unavailable: {err}")
    return finish(status="ok", modes=modes)


def _missing_reason(missing: list[str]) -> str:
    hints = {"activation_maps": "activation maps of the units (a model or a simulated release's map source)"}
    return "missing input(s): " + "; ".join(f"{m} = {hints.get(m, m)}" for m in missing)


def _modes_of(units: Sequence[ProxyUnit]) -> list[str]:
    present = {u.mode for u in units}
    if not present:
        raise DataValidationError("No units to validate on: the unit list is empty.")
    return [m for m in MODES if m in present] + sorted(present - set(MODES))


def metric_info(name: str, metric: ProxyMetric) -> MetricInfo:
    """The report's description of a metric instance."""
    cls = type(metric)
    return MetricInfo(
        name=name,
        class_path=f"{cls.__module__}:{cls.__qualname__}",
        version=str(cls.version),
        params={key: _json_safe(value) for key, value in metric.get_params(deep=False).items()},
        requires=sorted(cls.requires),
    )


def _json_safe(value: object) -> object:
    """Plain JSON types pass through (recursively); anything else becomes its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return repr(value)


def _validate_mode(
    metric: ProxyMetric,
    name: str,
    units: Sequence[ProxyUnit],
    y_all: np.ndarray,
    human: pd.DataFrame,
    ceilings: Ceilings,
    mode: str,
    *,
    scheme: str,
    k: int,
    n_boot: int,
    confidence: float,
    seed: int,
    progress: bool,
) -> ModeResult:
    """Fit and test within one mode."""
    index = np.array([i for i, u in enumerate(units) if u.mode == mode])
    mode_units = [units[i] for i in index]
    y = y_all[index]
    splits = make_splits(mode_units, scheme, k=k, seed=seed)
    predicted, fold_of = _cross_validate(metric, mode_units, y, splits, progress=progress, desc=f"{name} ({mode})")
    models = np.array([u.model for u in mode_units], dtype=object)
    scores = {key: _score(spec, y, predicted, models, fold_of, n_boot, confidence, seed)
              for key, spec in SCORES.items()}
    mode_ceilings, notes = _mode_ceilings(ceilings, mode)
    n_models = len(set(models))
    if n_models < vm.MIN_MODELS_FOR_CORRELATION:
        notes.append(
            f"per-model correlations are undefined with {n_models} model(s); they need at least "
            f"{vm.MIN_MODELS_FOR_CORRELATION}."
        )
    final = _fresh_clone(metric).fit(mode_units, y)
    return ModeResult(
        mode=mode,
        n_units=len(mode_units),
        n_models=n_models,
        n_folds=len(splits),
        scores=scores,
        ceiling_normalised={m: _normalise(scores["pearson"], c) for m, c in mode_ceilings.items()},
        ceilings=mode_ceilings,
        per_model=_per_model(models, y, predicted, n_boot, confidence, seed),
        predictions=_predictions(mode_units, y, predicted, fold_of),
        fitted_params=_json_safe(final.fitted_params()),
        notes=notes,
    )


def _score(
    spec: ScoreFunction, y: np.ndarray, predicted: np.ndarray, models: np.ndarray, folds: np.ndarray, n_boot: int,
    confidence: float, seed: int,
) -> Score:
    kwargs = {"models": models} if spec.per_model else {"groups": folds} if spec.per_fold else {}
    value = spec.function(y, predicted, **kwargs)
    if n_boot == 0:
        return Score(value=value)
    low, high = vm.bootstrap_ci(spec.function, y, predicted, n_boot=n_boot, confidence=confidence, seed=seed,
                                aligned=kwargs)
    return Score(value=value, ci_low=low, ci_high=high)


def _mode_ceilings(ceilings: Ceilings, mode: str) -> tuple[dict[str, NoiseCeiling], list[str]]:
    given = dict(ceilings.get(mode, {}))
    notes = [f"no {m} noise ceiling was given for mode {mode!r}; that normalisation is omitted."
             for m in CEILING_METHODS if m not in given]
    return given, notes


def _normalise(pearson: Score, ceiling: NoiseCeiling) -> Score:
    """Pearson / ceiling; the CI divides the Pearson CI by the ceiling's mean (ceiling uncertainty not included)."""
    def scale(v: float | None) -> float:
        return float("nan") if v is None else vm.ceiling_normalised(v, ceiling)

    return Score(value=scale(pearson.value), ci_low=scale(pearson.ci_low), ci_high=scale(pearson.ci_high))


def _per_model(
    models: np.ndarray, y: np.ndarray, predicted: np.ndarray, n_boot: int, confidence: float, seed: int
) -> list[ModelSummary]:
    rng = np.random.default_rng(seed)
    summaries = []
    for model in sorted(set(models)):
        mask = models == model
        h_low, h_high = _mean_ci(y[mask], n_boot, confidence, rng)
        p_low, p_high = _mean_ci(predicted[mask], n_boot, confidence, rng)
        summaries.append(ModelSummary(
            model=str(model), n_units=int(mask.sum()),
            human_mean=float(y[mask].mean()), human_ci_low=h_low, human_ci_high=h_high,
            predicted_mean=float(predicted[mask].mean()), predicted_ci_low=p_low, predicted_ci_high=p_high,
        ))
    return summaries


def _mean_ci(values: np.ndarray, n_boot: int, confidence: float, rng: np.random.Generator) -> tuple[float, float]:
    """Bootstrap-over-units CI of a mean (NaN, NaN without replicates)."""
    if n_boot == 0:
        return float("nan"), float("nan")
    means = rng.choice(values, size=(n_boot, len(values)), replace=True).mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def _predictions(
    units: Sequence[ProxyUnit], y: np.ndarray, predicted: np.ndarray, fold_of: np.ndarray
) -> list[UnitPrediction]:
    return [
        UnitPrediction(model=u.model, layer=u.layer, channel=int(u.channel), mode=u.mode, human=float(h),
                       predicted=float(p), fold=int(f))
        for u, h, p, f in zip(units, y, predicted, fold_of)
    ]


# ------------------------------------------------------------------------------------------- several metrics


def validate_metrics(
    metrics: Sequence[ProxyMetric | str],
    units: Sequence[ProxyUnit],
    human: pd.DataFrame,
    ceilings: Ceilings,
    *,
    progress: bool = True,
    **options: Any,
) -> list[MetricReport]:
    """`validate_metric` for each metric, in order (options as for validate_metric)."""
    return [
        validate_metric(metric, units, human, ceilings, progress=progress, **options)
        for metric in tqdm(metrics, desc="metrics", unit="metric", disable=not progress)
    ]


COMPARISON_SCORES: tuple[str, ...] = tuple(SCORES)


def comparison_table(reports: Sequence[MetricReport]) -> pd.DataFrame:
    """One row per metric and mode: every score with its CI, the ceiling-normalised Pearson; skipped rows too."""
    rows = []
    for report in reports:
        base = {"metric": report.metric.name, "version": report.metric.version, "status": report.status}
        if report.status == "skipped":
            rows.append({**base, "mode": None, "n_units": None, "note": report.skip_reason})
            continue
        for result in report.modes:
            row = {**base, "mode": result.mode, "n_units": result.n_units, "n_models": result.n_models,
                   "note": " ".join(result.notes) or None}
            for key in COMPARISON_SCORES:
                row.update(_score_columns(key, result.scores[key]))
            for method, score in result.ceiling_normalised.items():
                row.update(_score_columns(f"pearson_over_{method}_ceiling", score))
            rows.append(row)
    return pd.DataFrame(rows)


def _score_columns(key: str, score: Score) -> dict[str, float]:
    nan = float("nan")
    return {
        key: score.as_float(),
        f"{key}_ci_low": nan if score.ci_low is None else score.ci_low,
        f"{key}_ci_high": nan if score.ci_high is None else score.ci_high,
    }


_DISPLAY: tuple[tuple[str, str, bool], ...] = (  # column, header, show CI
    ("pearson", "Pearson r [CI]", True),
    ("spearman", "Spearman", False),
    ("kendall", "Kendall", False),
    ("within_fold_pearson", "within-fold r", False),
    ("model_pearson", "per-model r", False),
    ("mae", "MAE", False),
    ("calibration_error", "ECE", False),
    ("pearson_over_split_half_ceiling", "r/ceiling [CI]", True),
    ("pearson_over_binomial_ceiling", "r/binomial", False),
)


def format_comparison(table: pd.DataFrame) -> str:
    """The comparison table as text: scores with CIs per metric and mode, then the skipped metrics."""
    ok = table[table["status"] == "ok"] if "status" in table else table.iloc[0:0]
    lines = []
    if len(ok):
        shown = pd.DataFrame({"metric": ok["metric"], "mode": ok["mode"], "units": ok["n_units"].astype(int)})
        for column, header, with_ci in _DISPLAY:
            if column in ok:
                shown[header] = [_fmt(r, column, with_ci) for _, r in ok.iterrows()]
        lines.append(shown.to_string(index=False))
    skipped = table[table["status"] == "skipped"] if "status" in table else table.iloc[0:0]
    if len(skipped):
        lines += ["", "Skipped:"] + [f"  {r['metric']}: {r['note']}" for _, r in skipped.iterrows()]
    return "\n".join(lines) if lines else "(no metrics)"


def _fmt(row: pd.Series, column: str, with_ci: bool) -> str:
    value = row[column]
    if pd.isna(value):
        return "n/a"
    text = f"{value:.3f}"
    low, high = row.get(f"{column}_ci_low"), row.get(f"{column}_ci_high")
    if with_ci and not (pd.isna(low) or pd.isna(high)):
        text += f" [{low:.2f}, {high:.2f}]"
    return text


# ------------------------------------------------------------------------------------------- whole pipeline


class ValidationConfig(BaseModel):
    """Everything `imibench proxy validate` needs; build it with `build_config` for one-line errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="human responses, as for `imibench data summary --source`")
    responses: str = "main"
    imagenet_root: Path | None = None
    metrics: tuple[str, ...] | None = Field(None, description="registry names or module:Name; None = all that run")
    scheme: str = "lomo"
    k: int = Field(5, ge=2)
    n_boot: int = Field(1000, ge=0, description="bootstrap replicates for CIs (0: no CIs)")
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    seed: int = Field(0, ge=0)
    out: Path | None = None
    progress: bool = True

    @field_validator("scheme")
    @classmethod
    def _known_scheme(cls, scheme: str) -> str:
        return check_scheme(scheme)

    @field_validator("responses")
    @classmethod
    def _known_responses(cls, responses: str) -> str:
        from benchmark.data.sources import check_responses

        return check_responses(responses)

    @field_validator("metrics")
    @classmethod
    def _distinct_metrics(cls, metrics: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if metrics is None:
            return None
        if not metrics or any(not m.strip() for m in metrics):
            raise ConfigError(f"metrics {list(metrics)} has an empty name; list names like mis-pixel,noise.")
        repeated = sorted({m for m in metrics if metrics.count(m) > 1})
        if repeated:
            raise ConfigError(f"metrics lists {repeated} more than once; list each metric once.")
        return metrics


def build_config(**options: Any) -> ValidationConfig:
    """A validated ValidationConfig; invalid options raise ConfigError with a one-line message."""
    try:
        return ValidationConfig(**options)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            field = ".".join(str(p) for p in error["loc"]) or "config"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{field}={error.get('input')!r}: {message}")
        raise ConfigError("Invalid validation setting(s): " + "; ".join(problems)) from None


@dataclass(frozen=True)
class PreparedData:
    """Units, the human table aligned to them, ceilings and the data's provenance."""

    units: list[ProxyUnit]
    human: pd.DataFrame
    ceilings: dict[str, dict[str, NoiseCeiling]]
    data: DataProvenance


def prepare_data(config: ValidationConfig) -> PreparedData:
    """Load and summarise the human data and build the units (with activation maps for a simulated release)."""
    from benchmark.data.sources import load_trials
    from benchmark.data.stimuli import StimulusIndex
    from benchmark.data.summary import summarize
    from benchmark.proxies.units import build_units

    loaded = load_trials(config.source, responses=config.responses, progress=config.progress)
    if loaded.release_root is None:
        raise SourceUnavailableError(
            f"The source {config.source!r} has responses but no stimuli (no image_data/ folder), and proxies "
            "predict from the images humans saw. Pass a release folder, zenodo:DIR or a Hub dataset with images."
        )
    summary = summarize(loaded.trials, source=loaded.source, notes=loaded.notes, seed=config.seed)
    index = StimulusIndex.from_release(loaded.release_root, imagenet_root=config.imagenet_root)
    maps, maps_name = _activation_map_source(loaded.release_root)
    units = build_units(index, summary.units, activation_maps=maps)
    data = DataProvenance(source=loaded.source, revision=loaded.revision, files=dict(loaded.files),
                          responses=config.responses, activation_maps=maps_name)
    return PreparedData(units, align_human(units, summary.units), ceilings_from_summary(summary), data)


SIMULATION_TRUTH = Path("simulation") / "truth.csv"


def _activation_map_source(release_root: Path) -> tuple[Any, str | None]:
    """SimulatedActivationMaps for a simulated release (it has simulation/truth.csv); None for a real one."""
    if not (release_root / SIMULATION_TRUTH).is_file():
        return None, None
    from benchmark.data.simulate import SimulatedActivationMaps

    return SimulatedActivationMaps(release_root), f"SimulatedActivationMaps({release_root})"


def load_metrics(names: Sequence[str]) -> list[tuple[str, ProxyMetric]]:
    """(name, instance) of each registry name or `module:Name` spec; an unknown name raises with "did you mean"."""
    return [(name, load_metric(name)) for name in names]


def default_metrics(units: Sequence[ProxyUnit]) -> tuple[list[tuple[str, ProxyMetric]], list[tuple[str, type, str]]]:
    """Every registered metric that can run offline on `units`, and (name, class, reason) of those that cannot.

    Each is constructed, its inputs are checked, and an embedding metric embeds one of the images with the
    Hugging Face Hub in offline mode (local cache only), so absent weights are found at once, not after retries.
    """
    runnable, skipped = [], []
    for name in proxies.names():
        try:
            metric = load_metric(name)
        except ImiBenchError as err:
            skipped.append((name, proxies.get(name), f"cannot be constructed: {err}"))
            continue
        reason = offline_problem(metric, units)
        if reason is None:
            runnable.append((name, metric))
        else:
            skipped.append((name, type(metric), reason))
    return runnable, skipped


def offline_problem(metric: ProxyMetric, units: Sequence[ProxyUnit]) -> str | None:
    """Why `metric` cannot run offline on `units` (missing inputs, weights or packages), or None if it can."""
    missing = metric.missing_inputs(units)
    if missing:
        return _missing_reason(missing)
    if not isinstance(metric, EmbeddingMixin):
        return None
    image = next((task.max_query for unit in units for task in unit.tasks), None)
    if image is None:
        return "the units carry no stimulus images to embed"
    try:
        with _hub_offline():
            metric.embedding_cache.embed_paths(metric.get_embedder(), [image], batch_size=1)
    except ImiBenchError as err:
        return f"cannot run offline: {err}"
    return None


@contextmanager
def _hub_offline() -> Iterator[None]:
    """Hugging Face Hub look-ups use the local cache only inside this block (restored afterwards)."""
    import huggingface_hub.constants as hub_constants

    previous = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = previous


def run_validation(config: ValidationConfig) -> list[MetricReport]:
    """Load the data, validate the metrics, and (with config.out) write reports, figures and the comparison."""
    start = time.perf_counter()
    explicit = load_metrics(config.metrics) if config.metrics is not None else None  # fail fast on bad names
    prepared = prepare_data(config)
    runnable, skipped = (explicit, []) if explicit is not None else default_metrics(prepared.units)
    options = dict(scheme=config.scheme, k=config.k, n_boot=config.n_boot, confidence=config.confidence,
                   seed=config.seed, data=prepared.data)
    reports = []
    for name, metric in tqdm(runnable, desc="metrics", unit="metric", disable=not config.progress):
        reports.append(validate_metric(metric, prepared.units, prepared.human, prepared.ceilings,
                                       progress=config.progress, name=name, **options))
    reports += [_skipped_report(name, cls, reason, config, prepared.data) for name, cls, reason in skipped]
    if config.out is not None:
        write_outputs(reports, config, wall_time_s=time.perf_counter() - start, data=prepared.data)
    return reports


def _skipped_report(name: str, cls: type, reason: str, config: ValidationConfig, data: DataProvenance) -> MetricReport:
    info = MetricInfo(name=name, class_path=f"{cls.__module__}:{cls.__qualname__}",
                      version=str(getattr(cls, "version", "?")), params={},
                      requires=sorted(getattr(cls, "requires", ())))
    scheme = SchemeInfo(name=config.scheme, k=config.k if config.scheme == "kfold" else None, seed=config.seed,
                        n_boot=config.n_boot, confidence=config.confidence)
    return MetricReport(metric=info, status="skipped", skip_reason=reason, scheme=scheme,
                        provenance=make_provenance(seed=config.seed, wall_time_s=0.0, data=data))


def metric_folder(name: str) -> str:
    """A file-system-safe folder name for a metric name or `module:Name` plugin spec."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("._") or "metric"


def write_outputs(
    reports: Sequence[MetricReport], config: ValidationConfig, *, wall_time_s: float, data: DataProvenance
) -> dict[str, Path]:
    """Write DIR/<metric>/report.json (+ validation.png), DIR/comparison.csv, DIR/comparison.png, DIR/report.json."""
    from benchmark.validation.plots import plot_validation

    if config.out is None:
        raise ConfigError("write_outputs needs config.out: pass --out DIR.")
    out = Path(config.out)
    written: dict[str, Path] = {}
    for report in reports:
        folder = out / metric_folder(report.metric.name)
        written[f"{report.metric.name}/report.json"] = write_report(report, folder)
        if report.status == "ok":
            written[f"{report.metric.name}/validation.png"] = plot_validation(report, folder / "validation.png")
    written["comparison.csv"] = _write_csv(comparison_table(reports), out / "comparison.csv")
    if any(r.status == "ok" for r in reports):
        written["comparison.png"] = plot_validation(list(reports), out / "comparison.png")
    run = ValidationReport(
        config=config.model_dump(mode="json"), metrics=list(reports),
        provenance=make_provenance(seed=config.seed, wall_time_s=wall_time_s, data=data),
    )
    written["report.json"] = write_report(run, out)
    return written


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def describe_metrics() -> str:
    """One line per registered proxy metric: name, version, requirements, parameters and summary."""
    import inspect

    lines = []
    for name in proxies.names():
        cls = proxies.get(name)
        defaults = {
            p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.default is not inspect.Parameter.empty
        }
        requires = ", ".join(sorted(cls.requires)) or "images only"
        summary = (inspect.getdoc(cls) or "").splitlines()[0] if inspect.getdoc(cls) else ""
        params = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none"
        lines.append(f"{name}  (v{cls.version}; requires: {requires})\n    {summary}\n    params: {params}")
    return "\n".join(lines) if lines else "(no proxy metrics registered)"

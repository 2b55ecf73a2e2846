"""Validation reports: versioned pydantic models, provenance, and atomic JSON writing and validated reading."""

from __future__ import annotations

import math
import platform
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import scipy
import sklearn
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from benchmark import __version__
from benchmark.api.errors import DataValidationError, SourceUnavailableError
from benchmark.api.types import HumanDataOrigin, NoiseCeiling
from benchmark.results.io import atomic_write_text
from benchmark.results.provenance import git_sha, utc_now

REPORT_SCHEMA_VERSION = "1.2"  # 1.2: refit_fit_headlines
REPORT_FILE = "report.json"
MAX_REFITS = 10_000  # a report's refitted resamples: paired comparisons redraw as many (bounded for served reports)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _nan_to_none(value: object) -> object:
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return None
    return value


class Score(_Model):
    """One score with its CI and p-value (of "no correlation") where computed; None where undefined."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None

    @field_validator("value", "ci_low", "ci_high", "p_value", mode="before")
    @classmethod
    def _finite_or_none(cls, value: object) -> object:
        return _nan_to_none(value)

    def as_float(self) -> float:
        """The value, NaN when undefined."""
        return float("nan") if self.value is None else self.value


class ModelSummary(_Model):
    """Mean human accuracy and mean prediction of one model's units, each with a bootstrap-over-units CI."""

    model: str
    n_units: int
    human_mean: float
    human_ci_low: float | None = None
    human_ci_high: float | None = None
    predicted_mean: float
    predicted_ci_low: float | None = None
    predicted_ci_high: float | None = None

    @field_validator("human_ci_low", "human_ci_high", "predicted_ci_low", "predicted_ci_high", mode="before")
    @classmethod
    def _finite_or_none(cls, value: object) -> object:
        return _nan_to_none(value)


class UnitPrediction(_Model):
    """A unit's held-out prediction next to its observed human accuracy."""

    model: str
    layer: str
    channel: int
    mode: str
    human: float
    predicted: float
    fold: int = Field(description="index of the fold in which the unit was in the test set")
    headline_score: float | None = Field(None, description="what the headline correlates for this unit: the raw "
                                         "score of a calibrated proxy, else the held-out prediction")


class PerModelCorrelation(_Model):
    """Correlation over models of mean prediction and mean human accuracy; only from at least 8 models."""

    n_models: int
    pearson: Score | None = Field(None, description="with Fisher's z CI over the models and a t-test p-value")
    spearman: float | None = None
    basis: str | None = Field(None, description="raw scores, or one calibration fitted on all units")
    reason: str | None = Field(None, description="why it was not computed, e.g. fewer than 8 models")

    @property
    def text(self) -> str:
        """'0.71 [0.20, 0.93]' or 'n/a (3 models)'."""
        if self.pearson is None or self.pearson.value is None:
            return f"n/a ({self.n_models} models)"
        ci = "" if self.pearson.ci_low is None else f" [{self.pearson.ci_low:.2f}, {self.pearson.ci_high:.2f}]"
        return f"{self.pearson.value:.2f}{ci}"


class ModeResult(_Model):
    """The validation of one mode (natural or optimized): fitted and tested within the mode."""

    mode: str
    n_units: int
    n_models: int
    n_folds: int
    headline: Score = Field(description="fold-mean Pearson r (see benchmark.validation.inference) with its CI "
                                        "and p-value (interval_method)")
    headline_statistic: str = "fold_mean_pearson"
    headline_basis: str = Field("held-out predictions", description="raw scores (calibration-free) or held-out "
                                                                    "predictions")
    n_clusters: int = Field(0, description="models (with their hard variants) resampled by the bootstrap")
    p_value_method: str = "cluster bootstrap-t"
    interval_method: str = Field("cluster bootstrap-t", description="how the headline's CI was made: a cluster "
                                 "bootstrap of fixed scores, or one that refits a fitted proxy on every resample")
    refit_headlines: list[float | None] | None = Field(
        None, max_length=MAX_REFITS, description="fitted proxies: the headline of the cross-validation refitted on each cluster resample "
                          "(inference.cluster_counts with the scheme's seed; null where a resample could not be "
                          "refitted or its r is undefined); paired comparisons reuse them")
    refit_fit_headlines: list[float | None] | None = Field(
        None, max_length=MAX_REFITS, description="fitted proxies: the headline of each refit's predictions on all "
                          "the observed units, aligned with refit_headlines; its variance is taken out of the CI's "
                          "(benchmark.validation.inference.linear_interval)")
    scores: dict[str, Score] = Field(description="secondary, on the held-out predictions: pearson (pooled; biased "
                                                 "under held-out evaluation, CI by the same cluster bootstrap), "
                                                 "spearman, kendall, mae, calibration_error, calibration_slope")
    per_model_correlation: PerModelCorrelation | None = None
    ceiling_normalised: dict[str, Score] = Field(description="headline / ceiling, keyed by ceiling method")
    ceiling_flags: dict[str, str] = Field(default_factory=dict, description="e.g. 'at the ceiling within noise'")
    ceilings: dict[str, NoiseCeiling]
    per_model: list[ModelSummary]
    predictions: list[UnitPrediction]
    fitted_params: dict[str, Any] = Field(description="parameters of a final fit on all units of the mode")
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _refits_aligned(self) -> ModeResult:
        fit = self.refit_fit_headlines
        if fit is not None and len(fit) != len(self.refit_headlines or []):
            raise ValueError(f"refit_fit_headlines has {len(fit)} values but refit_headlines "
                             f"{len(self.refit_headlines or [])}: they must be aligned resample by resample.")
        return self

    def frame(self) -> pd.DataFrame:
        """The per-unit predictions as a DataFrame."""
        return pd.DataFrame([p.model_dump() for p in self.predictions])


class MetricInfo(_Model):
    """Which proxy metric was validated."""

    name: str
    class_path: str = Field(description="module:QualifiedName of the metric class")
    version: str
    params: dict[str, Any]
    requires: list[str] = Field(default_factory=list)


class SchemeInfo(_Model):
    """The held-out scheme and the bootstrap settings."""

    name: Literal["lomo", "kfold"]
    k: int | None = Field(None, description="folds (kfold only)")
    seed: int = Field(ge=0)
    n_boot: int
    confidence: float = 0.95
    n_permutations: int = Field(0, description="within-mode permutations with refits for the p-value (0: none)")
    n_refits: int = Field(0, ge=0, le=MAX_REFITS,
                          description="cluster resamples refitted for a fitted proxy's headline CI (0: none)")


class DataProvenance(_Model):
    """Where the human data came from."""

    source: str
    revision: str | None = None
    files: dict[str, str] = Field(default_factory=dict, description="file name -> sha256")
    responses: str | None = None
    activation_maps: str | None = Field(None, description="activation-map source, if any")


class Provenance(_Model):
    """What is needed to reproduce a report."""

    imi_bench_version: str
    git_sha: str | None
    python: str
    numpy: str
    scipy: str
    sklearn: str
    pandas: str
    date_utc: str
    seed: int
    wall_time_s: float
    data: DataProvenance | None = None


class MetricReport(_Model):
    """The validation of one proxy metric against human data, per mode."""

    schema_version: str = REPORT_SCHEMA_VERSION
    kind: Literal["metric"] = "metric"
    metric: MetricInfo
    status: Literal["ok", "skipped"]
    skip_reason: str | None = None
    scheme: SchemeInfo
    modes: list[ModeResult] = Field(default_factory=list)
    human_data: HumanDataOrigin | None = Field(None, description="real release or simulated humans")
    provenance: Provenance

    @property
    def humans(self) -> str:
        """How output names the human side: "humans" only for real data."""
        return humans_label(self.human_data)

    @model_validator(mode="after")
    def _status_matches(self) -> MetricReport:
        if self.status == "skipped" and not self.skip_reason:
            raise ValueError("a skipped report needs skip_reason")
        if self.status == "ok" and (self.skip_reason or not self.modes):
            raise ValueError("an ok report has at least one mode result and no skip_reason")
        return self

    def mode(self, mode: str) -> ModeResult:
        """The result of one mode; KeyError naming the modes present otherwise."""
        for result in self.modes:
            if result.mode == mode:
                return result
        raise KeyError(f"no result for mode {mode!r} in {self.metric.name}; modes: {[m.mode for m in self.modes]}")


class PairedComparison(_Model):
    """Two proxies' headline r on the same units and folds: the difference a - b with its CI and p-value.

    The CI is a paired cluster bootstrap over models (both proxies scored on the same resamples), bootstrap-t
    with G - 1 degrees of freedom
    (`method`: refitted on every resample when either proxy is fitted); p tests "no difference".
    """

    mode: str
    metric_a: str
    metric_b: str
    statistic: str = "fold_mean_pearson"
    value_a: float | None
    value_b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_units: int
    n_clusters: int
    confidence: float
    n_boot: int
    method: str = "paired cluster bootstrap-t"

    @field_validator("value_a", "value_b", "difference", "ci_low", "ci_high", "p_value", mode="before")
    @classmethod
    def _finite_or_none(cls, value: object) -> object:
        return _nan_to_none(value)


class ValidationReport(_Model):
    """Several metric reports from one run, with the run's configuration and paired comparisons."""

    schema_version: str = REPORT_SCHEMA_VERSION
    kind: Literal["validation"] = "validation"
    config: dict[str, Any]
    metrics: list[MetricReport]
    comparisons: list[PairedComparison] = Field(default_factory=list)
    human_data: HumanDataOrigin | None = None
    provenance: Provenance


_AnyReport = TypeAdapter(Annotated[MetricReport | ValidationReport, Field(discriminator="kind")])


def humans_label(origin: HumanDataOrigin | None) -> str:
    """"humans" for a real release, "simulated humans" for simulated data, and says so when the origin is unknown."""
    if origin is None:
        return "human data of unknown origin"
    return origin.label


def make_provenance(*, seed: int, wall_time_s: float, data: DataProvenance | None = None) -> Provenance:
    """Provenance of a report produced now by this environment."""
    return Provenance(
        imi_bench_version=__version__,
        git_sha=git_sha(),
        python=platform.python_version(),
        numpy=np.__version__,
        scipy=scipy.__version__,
        sklearn=sklearn.__version__,
        pandas=pd.__version__,
        date_utc=utc_now(),
        seed=seed,
        wall_time_s=round(float(wall_time_s), 3),
        data=data,
    )


def write_report(report: MetricReport | ValidationReport, out_dir: str | Path) -> Path:
    """Write `report` to `out_dir/report.json` atomically (temporary file, then os.replace); return the path."""
    return atomic_write_text(Path(out_dir) / REPORT_FILE, report.model_dump_json(indent=2))


def read_report(path: str | Path) -> MetricReport | ValidationReport:
    """Read and validate a report written by `write_report` (a report.json or the folder holding it)."""
    file = Path(path)
    if file.is_dir():
        file = file / REPORT_FILE
    if not file.is_file():
        raise SourceUnavailableError(f"No report at {file}: pass a report.json written by `imibench proxy validate`.")
    try:
        report = _AnyReport.validate_json(file.read_bytes())
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DataValidationError(
            f"{file} is not a valid validation report ({err.error_count()} problem(s); first at {where!r}: "
            f"{first['msg']}). Regenerate it with `imibench proxy validate`."
        ) from None
    if report.schema_version.split(".")[0] != REPORT_SCHEMA_VERSION.split(".")[0]:
        raise DataValidationError(
            f"{file} has report schema version {report.schema_version!r}; this imi-bench reads "
            f"{REPORT_SCHEMA_VERSION.split('.')[0]}.x. Regenerate it or install the matching imi-bench version."
        )
    return report

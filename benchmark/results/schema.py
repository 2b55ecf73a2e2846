"""The result-file schema: one JSON file per (submission, benchmark version)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from benchmark.api.types import HumanDataOrigin, Protocol
from benchmark.results.comparability import ComparabilityKey

RESULT_SCHEMA_VERSION = "1.0"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Bounds on every number a result file claims (files may come from strangers): a proxy predicts a probability,
# so scores and their summaries lie in [0, 1]; NaN and infinities are refused everywhere they would rank.
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class SubmissionInfo(_Model):
    """What was scored."""

    id: str = Field(description="submission id, e.g. the model id with its weights hash prefix")
    source: str = Field(description="timm | open_clip | torchvision | local")
    model: str = Field(description="model id as given in the spec, e.g. resnet50.a1_in1k")
    weights_sha256: str | None = None
    weights_id: str | None = Field(None, description="hub tag or revision when no local file was hashed")
    revision: str | None = None
    n_parameters: int | None = Field(None, ge=0)
    spec: dict[str, Any] = Field(default_factory=dict, description="the full spec, to rerun")


class ImageSourceInfo(_Model):
    """The image source the units' exemplars were drawn from."""

    kind: str
    id: str
    n_images: int = Field(ge=1)
    revision: str | None = None
    ids_sha256: str | None = Field(None, description="sha256 of the ordered image-id list")
    stimuli_dir: str | None = Field(
        None,
        description="folder holding the scored images of a source without files (bundled, Hub), named by "
        "benchmark.results.stimuli.materialised_name; relative paths are relative to the result file's folder",
    )


class ProtocolInfo(_Model):
    """The task protocol and the unit selection."""

    task: Protocol
    image_source: ImageSourceInfo
    unit_selection: dict[str, Any] = Field(default_factory=dict)


class ProxyInfo(_Model):
    """The proxy that scored the units, with its fitted parameters and validation numbers."""

    name: str
    version: str
    params: dict[str, Any] = Field(default_factory=dict)
    fitted_params: dict[str, Any] = Field(default_factory=dict)
    validation: dict[str, Any] = Field(default_factory=dict, description="e.g. per-unit Pearson with humans and CI")
    human_data: HumanDataOrigin | None = Field(
        None, description="the human data the proxy was fitted and validated on (real release or simulated)"
    )


class Summary(_Model):
    """Mean, 5th percentile and bootstrap CI of unit scores."""

    n_units: int = Field(ge=1)
    mean: Probability
    p5: Probability
    ci_low: Probability
    ci_high: Probability

    @model_validator(mode="after")
    def _ordered_ci(self) -> Summary:
        if self.ci_low > self.ci_high:
            raise ValueError(f"ci_low {self.ci_low} exceeds ci_high {self.ci_high}; a CI must be ordered")
        return self


class LayerScore(Summary):
    """Scores of one layer's units."""

    layer: str
    relative_depth: Probability | None = None
    kind: str | None = None


class TaskImages(_Model):
    """Image ids of one task: K references per side (last = most extreme) and the two queries."""

    max_references: list[str]
    min_references: list[str]
    max_query: str
    min_query: str


class UnitScore(_Model):
    """One unit's score and the stimuli it was scored on."""

    layer: str
    channel: int = Field(ge=0)
    score: Probability
    task_scores: list[Probability] = Field(default_factory=list)
    tasks: list[TaskImages] = Field(default_factory=list)


class Scores(_Model):
    """Per model, per layer and per unit scores."""

    model: Summary
    layers: list[LayerScore]
    units: list[UnitScore]
    skipped_units: list[dict[str, Any]] = Field(default_factory=list, description="e.g. constant units, with reason")


class Provenance(_Model):
    """Everything needed to rerun the result."""

    package_version: str
    git_sha: str | None = None
    python_version: str
    torch_version: str | None = None
    cuda_version: str | None = None
    device: str
    dtype: str
    seed: int
    dataset_revisions: dict[str, Any] = Field(default_factory=dict)
    wall_time_s: float = Field(ge=0.0, allow_inf_nan=False)
    date: str = Field(description="UTC ISO 8601")
    command: str | None = Field(None, description="command line that reproduces the result")
    platform: str | None = None


class ResultFile(_Model):
    """A scored submission."""

    schema_version: str = RESULT_SCHEMA_VERSION
    benchmark_version: str
    submission: SubmissionInfo
    protocol: ProtocolInfo
    proxy: ProxyInfo
    scores: Scores
    provenance: Provenance
    comparability: ComparabilityKey | None = Field(
        None, description="which results this one may be ranked beside (benchmark.results.comparability)"
    )

"""Parameters of the planted-observer simulation, and the column layout and constants its modules share."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from benchmark.api.types import MODES

CATCH_MODEL = "catch/manual"
CATCH_MODE = "catch_trial"
SIDES: tuple[str, ...] = ("max", "min")
RELEASE_COLUMNS: tuple[str, ...] = (
    "model",
    "layer",
    "channel",
    "mode",
    "batch",
    "task_id",
    "participant_id",
    "task_number",
    "trial_index",
    "response_index",
    "rt",
    "choice",
    "correct",
    "confidence",
    "button_pressed",
    "switched_queries",
    "catch_trial",
    "is_demo",
    "passed_checks",
    "multi_participation",
)
# The unit's planted concept (UnitConcept fields), so that its activation maps can be recomputed from a release.
CONCEPT_COLUMNS: tuple[str, ...] = ("hue", "orientation", "frequency", "shape")
TRUTH_COLUMNS: tuple[str, ...] = (
    "model",
    "layer",
    "channel",
    "mode",
    "clarity",
    "true_accuracy",
    "n_main_trials",
    *CONCEPT_COLUMNS,
)

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_SHAPES: tuple[str, ...] = ("disk", "square", "diamond")  # concept shapes; UnitConcept.shape indexes them

_RNG_PLAN, _RNG_TRIALS, _RNG_IMAGES = 0, 1, 2


class SimulationConfig(BaseModel):
    """Parameters of the planted-observer simulation; every number has a validated range."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, ge=0)
    models: tuple[str, ...] = tuple(f"simnet_{c}" for c in "abcdefghi")  # 9 models, like IMI
    layers_per_model: int = Field(3, ge=1, le=50)
    units_per_layer: int = Field(4, ge=1, le=1000)
    modes: tuple[str, ...] = ("natural", "optimized")
    responses_per_unit: int = Field(30, ge=1, le=10_000, description="main responses per unit and mode")
    trials_per_participant: int = Field(40, ge=1, le=1000, description="main trials per participation")
    catch_per_participant: int = Field(5, ge=0, le=100)
    demo_per_participant: int = Field(5, ge=0, le=100)
    failed_participant_fraction: float = Field(0.1, ge=0.0, le=1.0)
    participant_sd: float = Field(0.3, ge=0.0, le=3.0, description="sd of ability offsets in logit space")
    n_batches: int = Field(5, ge=1, le=100)
    n_references: int = Field(9, ge=1, le=50)
    image_size: int = Field(32, ge=8, le=512)
    accuracy_floor: float = Field(0.5, gt=0.0, lt=1.0)
    accuracy_ceiling: float = Field(0.95, gt=0.0, lt=1.0)

    @field_validator("models")
    @classmethod
    def _check_models(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        if not models:
            raise ValueError("models is empty; give at least one model name, e.g. ('simnet_a',)")
        bad = [m for m in models if not _NAME_PATTERN.match(m)]
        if bad:
            raise ValueError(
                f"model names {bad} are not usable as file names; use letters, digits, '_', '.', '-' only"
            )
        if len(set(models)) != len(models):
            raise ValueError(f"model names must be unique; got {list(models)}")
        return models

    @field_validator("modes")
    @classmethod
    def _check_modes(cls, modes: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in modes if m not in MODES]
        if not modes or unknown or len(set(modes)) != len(modes):
            raise ValueError(f"modes must be a non-empty set of distinct values from {list(MODES)}; got {list(modes)}")
        return modes

    @model_validator(mode="after")
    def _check_accuracy_range(self) -> SimulationConfig:
        if self.accuracy_floor >= self.accuracy_ceiling:
            raise ValueError(
                f"accuracy_floor ({self.accuracy_floor}) must be below accuracy_ceiling ({self.accuracy_ceiling})"
            )
        return self

"""Versioned schemas shared across layers (pydantic models and the canonical table columns)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.0"

Mode = Literal["natural", "optimized"]
MODES: tuple[str, ...] = ("natural", "optimized")
ALL_MODES: tuple[str, ...] = ("natural", "optimized", "catch_trial")

# Canonical long-format human trial table: column -> pandas dtype.
TRIAL_COLUMNS: dict[str, str] = {
    "model": "string",
    "layer": "string",
    "channel": "Int64",
    "mode": "string",
    "batch": "Int64",
    "task_id": "string",
    "participant_id": "string",
    "trial_index": "Int64",
    "correct": "boolean",
    "confidence": "Int64",
    "rt_ms": "float64",
    "is_demo": "boolean",
    "catch_trial": "boolean",
    "passed_checks": "boolean",
}

UNIT_KEY: tuple[str, ...] = ("model", "layer", "channel", "mode")

# Per-unit human table: the DESIGN.md columns (ci_low/ci_high: the Wilson interval, the primary per-unit CI), the
# Wilson interval under its own name, and the participant bootstrap (which undercovers with few participants).
UNIT_TABLE_COLUMNS: tuple[str, ...] = (
    "model",
    "layer",
    "channel",
    "mode",
    "n_trials",
    "n_participants",
    "accuracy",
    "ci_low",
    "ci_high",
    "wilson_low",
    "wilson_high",
    "boot_low",
    "boot_high",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Protocol(_Frozen):
    """The 2-AFC task protocol (IMI/MIS defaults); every number is a parameter."""

    schema_version: str = SCHEMA_VERSION
    n_tasks: int = Field(20, ge=1, description="N: tasks (batches) per unit")
    n_references: int = Field(9, ge=1, description="K: reference images per side and task")
    query_variant: Literal["extreme", "hard85", "hard95"] = "extreme"
    constant_unit_tolerance: float = Field(1e-8, ge=0, description="units with max - min below this are skipped")


class ExclusionReport(_Frozen):
    """What the published exclusions removed from a trial table, counted by reason."""

    n_rows_in: int
    n_demo: int
    n_catch: int
    n_failed_checks: int
    n_rows_out: int
    n_participants_in: int
    n_participants_out: int
    n_repeat: int = Field(0, description="main trials of repeat participants (multi_participation) who passed")
    n_repeat_participants: int = 0
    repeats_kept: bool = Field(False, description="repeat participants' trials were kept (not excluded)")

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        verb = "kept (--keep-repeat-participants)" if self.repeats_kept else "excluded"
        return [
            f"rows in: {self.n_rows_in} ({self.n_participants_in} participants)",
            f"  excluded demo trials: {self.n_demo}",
            f"  excluded catch trials: {self.n_catch}",
            f"  excluded trials of participants who failed the checks: {self.n_failed_checks}",
            (f"  {verb} trials of repeat participants (multi_participation): {self.n_repeat} "
             f"({self.n_repeat_participants} participants)"),
            f"rows kept: {self.n_rows_out} ({self.n_participants_out} participants)",
        ]


class NoiseCeiling(_Frozen):
    """A noise-ceiling estimate for per-unit correlations with human accuracy."""

    method: Literal["split_half", "binomial"]
    mode: str
    n_units: int
    n_repeats: int
    mean: float = Field(description="ceiling on the per-unit Pearson correlation with observed human accuracy")
    sd: float
    reliability: float | None = Field(
        None, description="Spearman-Brown corrected split-half reliability (split_half only); ceiling = sqrt"
    )


class HumanDataOrigin(_Frozen):
    """Where a human-response table came from: a named real release, or the simulator (never called "humans").

    Loaders attach it to what they load; validation reports, fitted-proxy files and result files carry it on, so
    every number says whether its humans are real. Rows whose origin is not "real" are never ranked beside real ones.
    """

    kind: Literal["real", "simulated"]
    source: str = Field(description="the source as given, e.g. zenodo:DIR, hf:OWNER/NAME, a release folder")
    revision: str | None = Field(None, description="hub revision, Zenodo record version or sha256 of the file read")
    simulator: dict[str, str | int | float | None] | None = Field(
        None, description="simulated only: the simulator's seed and version"
    )

    @property
    def is_simulated(self) -> bool:
        """True for data made by `imibench data simulate`."""
        return self.kind == "simulated"

    @property
    def label(self) -> str:
        """How output names these responses: "humans" only for real data."""
        return "simulated humans" if self.is_simulated else "humans"

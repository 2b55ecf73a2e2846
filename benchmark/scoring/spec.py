"""The score spec: what to score (model, images, units), with which proxy and protocol, and where to write it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.api.errors import ConfigError
from benchmark.api.types import Protocol

if TYPE_CHECKING:  # models import torch and the model libraries; specs must stay light
    from benchmark.models.spec import ModelSpec


class UnitSelection(BaseModel):
    """Which units to score: layers by name pattern or relative depth, and how many units per layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: list[str] | None = Field(None, description="fnmatch patterns on module names, e.g. ['layer*.conv2']")
    depth_fractions: list[float] | None = Field(None, description="relative depths in [0, 1]; nearest layers")
    units_per_layer: int | None = Field(None, ge=1)
    total_units: int | None = Field(None, ge=1)
    all_units: bool = Field(False, description="every channel of the chosen layers (default: of every layer of the "
                            "preferred kind); excludes units_per_layer and total_units")
    seed: int = 0

    @model_validator(mode="after")
    def _all_units_alone(self) -> UnitSelection:
        if self.all_units and (self.units_per_layer is not None or self.total_units is not None):
            raise ValueError("all_units takes every unit; drop units_per_layer / total_units (or all_units)")
        return self

    @field_validator("depth_fractions")
    @classmethod
    def _in_unit_interval(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(not 0.0 <= v <= 1.0 for v in value):
            raise ValueError(f"depth fractions must lie in [0, 1], got {value}")
        return value


class ScoreSpec(BaseModel):
    """A complete, validated description of one scoring run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="model spec string, e.g. timm:resnet50.a1_in1k or local:PATH?arch=timm:resnet18")
    pretrained: bool = True
    weights_sha256: str | None = Field(None, description="expected sha256 of the weights file (local checkpoints)")
    images: str = Field("bundled", description="image source: folder:PATH, hf:OWNER/NAME[@REV][#SPLIT], bundled[:N]")
    units: UnitSelection = UnitSelection()
    protocol: Protocol = Protocol()
    proxy: str = Field(description="fitted proxy file (JSON) written by `imibench proxy fit`")
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(0, ge=0)
    decode: Literal["cpu", "gpu", "auto"] = Field("cpu", description="JPEG decoding: cpu (PIL), gpu (nvJPEG), auto")
    seed: int = 0
    out: Path | None = Field(None, description="result file to write (default: results/<submission id>.json)")
    work_dir: Path | None = Field(None, description="checkpoints and materialised stimuli (default: beside out)")
    checkpoint_every: int = Field(50, ge=1, description="checkpoint the activation pass every N batches")


def model_spec_of(spec: ScoreSpec) -> ModelSpec:
    """The ModelSpec a score spec names, with its `pretrained: false` and `weights_sha256` folded in."""
    from benchmark.models.spec import make_model_spec, parse_model_spec

    model_spec = parse_model_spec(spec.model)
    update: dict[str, object] = {}
    if not spec.pretrained and model_spec.pretrained and model_spec.weights is None:
        update["pretrained"] = False
    expected = spec.weights_sha256.lower() if spec.weights_sha256 else None
    if expected and model_spec.sha256 not in (None, expected):
        raise ConfigError(
            f"weights_sha256 {spec.weights_sha256!r} contradicts sha256={model_spec.sha256!r} in model "
            f"{spec.model!r}; give it once."
        )
    if expected and model_spec.sha256 is None:
        update["sha256"] = expected
    return make_model_spec(**{**model_spec.model_dump(exclude_none=True), **update}) if update else model_spec


def load_spec(path: str | Path) -> ScoreSpec:
    """Read a YAML or JSON score spec; errors name the file and the fields."""
    hint = "Pass a YAML file or use `imibench score --model ...`."
    return parse_spec(read_spec_mapping(path, what="Score spec", hint=hint), origin=str(path))


def read_spec_mapping(path: str | Path, *, what: str, hint: str) -> dict:
    """Read a YAML/JSON file holding one mapping; a missing file, bad YAML or a non-mapping is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}. {hint}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of spec fields, got {type(data).__name__}.")
    return data


def validation_problems(err: ValidationError) -> str:
    """One line per pydantic error, `  - field.path: message`, for ConfigError messages."""
    return "\n".join(f"  - {'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in err.errors())


def parse_spec(data: dict, *, origin: str = "spec") -> ScoreSpec:
    """Validate a spec mapping; unknown or invalid fields become one ConfigError listing each problem."""
    try:
        return ScoreSpec.model_validate(data)
    except ValidationError as err:
        valid = ", ".join(ScoreSpec.model_fields)
        raise ConfigError(f"Invalid score spec {origin}:\n{validation_problems(err)}\nValid fields: {valid}.") from None

"""What model to load: `ModelSpec` and the one-line spec syntax `SOURCE:NAME[?key=value&...]`.

Forms (the part after `?` is optional; keys: pretrained, weights, sha256, revision, arch, name):

    timm:resnet50.a1_in1k                     timm `arch.tag` (no tag: timm's default tag)
    timm:hf-hub:timm/resnet18.a1_in1k         a timm model on the Hugging Face Hub (loaded by timm itself)
    timm:test_vit.r160_in1k?pretrained=false  the architecture with random weights (the tag still sets the input config)
    open_clip:ViT-B-32/laion2b_s34b_b79k      open_clip `architecture/pretrained-tag`; the visual tower is scored
    torchvision:resnet50/IMAGENET1K_V2        torchvision classification model and weights enum name (no name: DEFAULT)
    local:/path/w.safetensors?arch=timm:resnet18&sha256=HEX
                                              a local state dict (.safetensors, .pt, .pth, .bin) for an architecture
                                              given as `timm:NAME`, `open_clip:NAME`, `torchvision:NAME` or `toy:NAME`
    toy:shapes_cnn?pretrained=false           a toy architecture of benchmark.models.toy (the demo's), random weights

`weights=PATH` also works with timm / open_clip / torchvision (their architecture, your weights; nothing is
downloaded). `sha256` is checked against a local weights file only. `revision` pins the Hub revision of timm and
open_clip weights (torchvision weights are pinned by their enum name; a local file by its sha256).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from benchmark.api.errors import ConfigError

MODEL_SOURCES: tuple[str, ...] = ("timm", "open_clip", "torchvision", "local", "toy")
ARCHITECTURE_SOURCES: tuple[str, ...] = ("timm", "open_clip", "torchvision", "toy")
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pt", ".pth", ".bin")
SPEC_KEYS: tuple[str, ...] = ("pretrained", "weights", "sha256", "revision", "arch", "name")
SPEC_FORMS = (
    "timm:ARCH[.TAG] (e.g. timm:resnet50.a1_in1k, timm:hf-hub:timm/resnet18.a1_in1k), "
    "open_clip:ARCH/TAG (e.g. open_clip:ViT-B-32/laion2b_s34b_b79k), "
    "torchvision:ARCH[/WEIGHTS] (e.g. torchvision:resnet50/IMAGENET1K_V2), "
    "local:PATH?arch=SOURCE:ARCH (e.g. local:/path/w.safetensors?arch=timm:resnet18); "
    "options after '?': " + ", ".join(f"{k}=..." for k in SPEC_KEYS) + " joined by '&'"
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ModelSpec(BaseModel):
    """A model to score: where its architecture and weights come from, and how to check them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["timm", "open_clip", "torchvision", "local", "toy"]
    name: str
    pretrained: bool = True
    weights: str | None = None
    sha256: str | None = None
    revision: str | None = None
    architecture: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("weights") is not None:
            if data.get("pretrained") is True:
                raise ValueError(
                    "pretrained=True and weights=PATH exclude each other: a weights file replaces the hub weights. "
                    "Drop pretrained (or set it to false)."
                )
            data["pretrained"] = False
        if data.get("source") == "local" and not data.get("name") and data.get("weights"):
            data["name"] = Path(str(data["weights"])).stem
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if not self.name.strip():
            raise ValueError("name must not be empty; give the architecture (e.g. resnet50.a1_in1k).")
        if self.source == "local":
            self._check_local()
        elif self.architecture is not None:
            raise ValueError(
                f"architecture={self.architecture!r} applies to source 'local' only; for source {self.source!r} "
                "the architecture is the name."
            )
        if self.sha256 is not None:
            self._check_sha256()
        if self.revision is not None and (self.weights is not None or self.source == "torchvision"):
            raise ValueError(
                f"revision={self.revision!r} pins Hub weights of timm / open_clip models only; torchvision weights "
                "are pinned by their enum name and a local file by sha256. Drop revision."
            )
        if self.revision is not None and not self.pretrained:
            raise ValueError(
                f"revision={self.revision!r} pins Hub weights, but pretrained=false loads none. Drop one of them."
            )
        return self

    def _check_local(self) -> None:
        if self.weights is None:
            raise ValueError(
                "source 'local' needs weights=PATH (a .safetensors / .pt / .pth state dict), "
                "e.g. local:/path/w.safetensors?arch=timm:resnet18."
            )
        if self.architecture is None:
            raise ValueError(
                f"source 'local' needs the architecture the weights {self.weights!r} belong to: "
                "arch=timm:NAME, arch=open_clip:NAME or arch=torchvision:NAME (e.g. ?arch=timm:resnet18)."
            )
        arch_source, _, arch_name = self.architecture.partition(":")
        if arch_source not in ARCHITECTURE_SOURCES or not arch_name:
            raise ValueError(
                f"architecture {self.architecture!r} is not SOURCE:NAME with SOURCE one of "
                f"{', '.join(ARCHITECTURE_SOURCES)} (e.g. timm:resnet18, torchvision:resnet50, open_clip:ViT-B-32)."
            )

    def _check_sha256(self) -> None:
        if self.weights is None:
            raise ValueError(
                f"sha256={self.sha256!r} is checked against a local weights file, but no weights=PATH is given. "
                "Hub weights are identified by their tag and revision; drop sha256 or pass weights=PATH."
            )
        value = self.sha256.lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(f"sha256={self.sha256!r} is not 64 hexadecimal digits (as printed by `sha256sum FILE`).")

    @property
    def arch_source(self) -> str:
        """The library that builds the architecture (for 'local' specs, the source in `architecture`)."""
        return self.architecture.partition(":")[0] if self.source == "local" and self.architecture else self.source

    @property
    def arch_name(self) -> str:
        """The architecture name inside its library (for 'local' specs, the name in `architecture`)."""
        return self.architecture.partition(":")[2] if self.source == "local" and self.architecture else self.name

    def to_string(self) -> str:
        """The spec in the one-line syntax; `parse_model_spec(spec.to_string()) == spec`."""
        head = f"local:{self.weights}" if self.source == "local" else f"{self.source}:{self.name}"
        options: list[tuple[str, str]] = []
        if self.source == "local":
            options.append(("arch", str(self.architecture)))
            if self.name != Path(str(self.weights)).stem:
                options.append(("name", self.name))
        elif self.weights is not None:
            options.append(("weights", self.weights))
        elif not self.pretrained:
            options.append(("pretrained", "false"))
        options += [(k, v) for k, v in (("sha256", self.sha256), ("revision", self.revision)) if v is not None]
        return head + ("?" + "&".join(f"{k}={v}" for k, v in options) if options else "")


def parse_model_spec(text: str) -> ModelSpec:
    """Parse `SOURCE:NAME[?key=value&...]` (see the module docstring) into a ModelSpec."""
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(f"Model spec {text!r} has no SOURCE: prefix. Valid forms: {SPEC_FORMS}.")
    source, _, rest = text.strip().partition(":")
    if source not in MODEL_SOURCES:
        raise ConfigError(
            f"Unknown model source {source!r} in {text!r}; valid sources: {', '.join(MODEL_SOURCES)}. "
            f"Valid forms: {SPEC_FORMS}."
        )
    body, _, query = rest.partition("?")
    if not body:
        raise ConfigError(f"Model spec {text!r} names no model after {source + ':'!r}. Valid forms: {SPEC_FORMS}.")
    fields = _parse_options(query, text)
    if source == "local":
        fields["weights"] = body
        if "arch" in fields:
            fields["architecture"] = fields.pop("arch")
    else:
        if "arch" in fields:
            raise ConfigError(f"Option arch= in {text!r} applies to local: specs only. Valid forms: {SPEC_FORMS}.")
        fields["name"] = body
    return make_model_spec(source=source, **fields)


def make_model_spec(**fields: Any) -> ModelSpec:
    """Build a ModelSpec, turning a validation failure into a ConfigError with the valid forms."""
    try:
        return ModelSpec(**fields)
    except ValidationError as exc:
        problems = "; ".join(_describe_error(err) for err in exc.errors())
        raise ConfigError(f"Invalid model spec {fields!r}: {problems}. Valid forms: {SPEC_FORMS}.") from None


def _describe_error(err: Any) -> str:
    where = ".".join(str(p) for p in err.get("loc", ())) or "spec"
    message = str(err.get("msg", "")).removeprefix("Value error, ")
    return f"{where}: {message}"


def _parse_options(query: str, text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in SPEC_KEYS:
            raise ConfigError(f"Unknown option {key!r} in model spec {text!r}; valid options: {', '.join(SPEC_KEYS)}.")
        if key in fields:
            raise ConfigError(f"Option {key!r} is given twice in model spec {text!r}; give it once.")
        fields[key] = _parse_bool(value, text) if key == "pretrained" else value
    if query and not fields:
        raise ConfigError(f"Could not read the options {query!r} of model spec {text!r}; use key=value&key=value.")
    return fields


def _parse_bool(value: str, text: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"pretrained={value!r} in model spec {text!r} is not a boolean; use true or false.")

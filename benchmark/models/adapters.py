"""Load a model to score from timm, open_clip, torchvision or a local state dict: `load_model(spec) -> LoadedModel`.

Downloads go through each library's own loader and cache (timm and open_clip: the Hugging Face Hub cache,
`HF_HOME`; torchvision: the torch hub cache, `TORCH_HOME`). Nothing here executes code that comes with weights:
local `.pt/.pth/.bin` files are read with `torch.load(weights_only=True)` (tensors only), `.safetensors` with
safetensors; timm `hf-hub:` names are loaded by timm itself (a config.json naming a timm architecture) and open_clip
`hf-hub:` names by open_clip (an open_clip_config.json); there is no `transformers`/`trust_remote_code` source.
Offline mode (`HF_HUB_OFFLINE=1`) is honoured by all sources: only cached weights load, otherwise a
SourceUnavailableError says how to provide them.

Input configs come from the model: timm's `resolve_model_data_config` and `create_transform`; open_clip's
preprocess config (tag overrides included) and its eval transform; the torchvision weights enum's `transforms()`
(the named weights, else DEFAULT, also for random weights). An open_clip tag trained with QuickGELU (the OpenAI
weights) is built with QuickGELU, as it was trained (open_clip itself only warns about the mismatch).
"""

from __future__ import annotations

import difflib
import os
import pickle
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import huggingface_hub
import open_clip
import safetensors
import safetensors.torch
import timm
import torch
import torchvision
from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict
from timm.data import create_transform, resolve_model_data_config
from torchvision.models import get_model_weights, get_weight

from benchmark.api.errors import OFFLINE_WEIGHTS_FIX, ChecksumError, ConfigError, SourceUnavailableError
from benchmark.api.registry import Registry
from benchmark.files import sha256_file
from benchmark.models.spec import WEIGHT_SUFFIXES, ModelSpec, parse_model_spec

# What the libraries raise when weights cannot be reached: OSError covers ConnectionError (incl. huggingface_hub's
# OfflineModeIsEnabled), FileNotFoundError (LocalEntryNotFoundError, open_clip's wrapper), HfHubHTTPError and
# urllib's URLError; httpx transport errors can escape from huggingface_hub's downloads.
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (OSError, huggingface_hub.utils.httpx.TransportError)
STATE_DICT_CONTAINER_KEYS: tuple[str, ...] = ("state_dict", "model", "model_state_dict")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DataConfig(Mapping[str, Any]):
    """The input a model expects (from the model's own config); also readable as a timm-style dict."""

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    crop_pct: float
    crop_mode: str = "center"

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(f"{key!r} is not a DataConfig field; fields: {', '.join(self._keys())}")
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass
class LoadedModel:
    """A model ready for activation collection: the module in eval mode, its input config and transform."""

    spec: ModelSpec
    module: torch.nn.Module
    data_config: DataConfig
    transform: Callable[[Any], torch.Tensor]
    weights_sha256: str | None
    weights_id: str
    n_parameters: int
    device: torch.device

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) of one transformed image."""
        return self.data_config.input_size


@dataclass
class _Built:
    """What an architecture adapter returns: the scored module, the module a weights file loads into, the config."""

    module: torch.nn.Module
    weights_target: torch.nn.Module
    data_config: DataConfig
    transform: Callable[[Any], torch.Tensor]
    arch_id: str  # e.g. timm:resnet18.a1_in1k (the resolved tag), open_clip:ViT-B-32/openai
    weights_origin: str  # where pretrained weights come from (Hub id or URL); unused for random weights


RANDOM_INIT_SEED = 0  # torch seed of every model built here (matters for random-weight models only)
Adapter = Callable[[str, bool, "str | None"], _Built]
ADAPTERS: Registry[Adapter] = Registry("model source")


def load_model(
    spec: str | ModelSpec, *, device: str | torch.device = "cpu", init_seed: int = RANDOM_INIT_SEED
) -> LoadedModel:
    """Build the model a spec names, load its weights (hub or local file, checked), eval mode, on `device`.

    The architecture is built under `torch.manual_seed(init_seed)` (the global RNG state is restored afterwards),
    so a `pretrained=false` model has the same random weights on every run.
    """
    spec = parse_model_spec(spec) if isinstance(spec, str) else spec
    weights_sha256 = _checked_weights_file(spec) if spec.weights is not None else None
    adapter = ADAPTERS.get(spec.arch_source)
    with torch.random.fork_rng(devices=[]):  # random weights are seeded, so a random-init model is reproducible
        torch.manual_seed(init_seed)
        built = adapter(spec.arch_name, spec.pretrained, spec.revision)
    if spec.weights is not None:
        _load_weights_file(built, Path(spec.weights).expanduser(), spec)
        weights_id = f"file:{Path(spec.weights).expanduser().resolve()}"
    elif spec.pretrained:
        weights_id = f"{built.arch_id} ({built.weights_origin})"
    else:  # the default seed keeps the short form, which the submission queue uses as a duplicate key
        seed_note = "" if init_seed == RANDOM_INIT_SEED else f"(seed={init_seed})"
        weights_id = f"random-init{seed_note}:{built.arch_id}"
    torch_device = torch.device(device)
    module = built.module.eval().to(torch_device)
    return LoadedModel(
        spec=spec,
        module=module,
        data_config=built.data_config,
        transform=built.transform,
        weights_sha256=weights_sha256,
        weights_id=weights_id,
        n_parameters=sum(p.numel() for p in module.parameters()),
        device=torch_device,
    )


# ----------------------------------------------------------------------------------------------------- timm


@ADAPTERS.register("timm")
def _build_timm(name: str, pretrained: bool, revision: str | None) -> _Built:
    """timm `arch[.tag]` or `hf-hub:owner/name`: timm.create_model and timm's own data config and transform."""
    overlay: dict[str, Any] = {}
    if name.startswith("hf-hub:"):
        model_name = f"{name}@{revision}" if revision else name
        hub_id = model_name.removeprefix("hf-hub:")
    else:
        hub_id = _check_timm_name(name, pretrained)
        if revision is not None:
            if hub_id is None:
                raise ConfigError(f"timm model {name!r} has no Hub weights, so revision={revision!r} cannot apply.")
            overlay["hf_hub_id"] = hub_id = f"{hub_id}@{revision}"
        model_name = name
    try:
        module = timm.create_model(model_name, pretrained=pretrained, pretrained_cfg_overlay=overlay or None)
    except UNREACHABLE_ERRORS as exc:
        raise _unavailable(f"timm:{name}" + (f" (revision {revision})" if revision else ""), exc, hub=True) from exc
    except (pickle.UnpicklingError, RuntimeError) as exc:
        if not _weights_only_refusal(exc):
            raise
        raise _pickled_code_refused(f"timm:{name}", exc) from None
    tag = module.pretrained_cfg.get("tag") or ""
    full_name = f"{module.pretrained_cfg.get('architecture', name)}{'.' + tag if tag else ''}"
    data_config = _timm_data_config(module)
    transform = create_transform(**dict(data_config), is_training=False)
    hub = module.pretrained_cfg.get("hf_hub_id") or hub_id
    origin = f"hf-hub:{hub}" if hub else str(module.pretrained_cfg.get("url", ""))
    return _Built(module, module, data_config, transform, f"timm:{full_name}", origin)


def _check_timm_name(name: str, pretrained: bool) -> str | None:
    """Validate `arch[.tag]` against timm's registry; return the Hub id of its weights (None when it has none)."""
    arch, _, tag = name.partition(".")
    if not timm.is_model(arch):
        raise ConfigError(_unknown("timm architecture", arch, timm.list_models(), "timm.list_models()"))
    tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
    if tag and tag not in tags:
        raise ConfigError(
            f"timm architecture {arch!r} has no pretrained tag {tag!r}; valid tags: {_listing(tags)}. "
            f"Use timm:{arch}.TAG, or timm:{arch}?pretrained=false for random weights."
        )
    if pretrained and not tags:
        raise ConfigError(
            f"timm architecture {arch!r} has no pretrained weights. Use timm:{arch}?pretrained=false for random "
            f"weights or local:PATH?arch=timm:{arch} for your own."
        )
    if not tags:
        return None
    cfg = timm.models.get_pretrained_cfg(name)
    return cfg.hf_hub_id if cfg is not None else None


def _timm_data_config(module: torch.nn.Module) -> DataConfig:
    cfg = resolve_model_data_config(module)
    return DataConfig(
        input_size=tuple(int(v) for v in cfg["input_size"]),  # type: ignore[arg-type]
        mean=tuple(float(v) for v in cfg["mean"]),
        std=tuple(float(v) for v in cfg["std"]),
        interpolation=str(cfg["interpolation"]),
        crop_pct=float(cfg["crop_pct"]),
        crop_mode=str(cfg.get("crop_mode", "center")),
    )


# ------------------------------------------------------------------------------------------------ open_clip


@ADAPTERS.register("open_clip")
def _build_open_clip(name: str, pretrained: bool, revision: str | None) -> _Built:
    """open_clip `ARCH/TAG` or `hf-hub:owner/name`; the visual tower is the scored module."""
    if name.startswith("hf-hub:"):
        if revision is not None:
            raise ConfigError(
                f"open_clip loads {name!r} from the Hub's main revision only; revision={revision!r} is not "
                "supported for hf-hub: names. Download the files and use local:PATH?arch=open_clip:ARCH instead."
            )
        if pretrained:  # fetch the weights first: open_clip only logs a warning when they are unreachable
            try:
                open_clip.pretrained.download_pretrained_from_hf(name.removeprefix("hf-hub:"))
            except UNREACHABLE_ERRORS as exc:
                raise _unavailable(f"open_clip:{name}", exc, hub=True) from exc
        model = _create_open_clip(name, None, {}, label=f"open_clip:{name}", weights_from_hub=pretrained)
        arch_id, origin = f"open_clip:{name}", name
    else:
        arch, tag, tag_cfg = _check_open_clip_name(name, pretrained)
        preprocess = merge_preprocess_dict({}, tag_cfg) if tag_cfg else {}
        checkpoint = _download_open_clip(name, tag_cfg, revision) if pretrained else None
        model = _create_open_clip(
            arch,
            checkpoint,
            preprocess,
            label=f"open_clip:{name}",
            weights_from_hub=False,
            quick_gelu=bool(tag_cfg.get("quick_gelu", False)),  # e.g. OpenAI weights: built as trained
        )
        hub = tag_cfg.get("hf_hub") or tag_cfg.get("url") or ""
        rev = f"@{revision}" if revision else ""
        arch_id, origin = f"open_clip:{name}", f"{hub.rstrip('/')}{rev}"
    cfg = open_clip.get_model_preprocess_cfg(model)
    preprocess_cfg = PreprocessCfg(**merge_preprocess_dict(PreprocessCfg(), cfg))
    data_config = _open_clip_data_config(preprocess_cfg)
    transform = image_transform_v2(preprocess_cfg, is_train=False)
    return _Built(model.visual, model, data_config, transform, arch_id, origin)


def _check_open_clip_name(name: str, pretrained: bool) -> tuple[str, str, dict[str, Any]]:
    arch, _, tag = name.partition("/")
    if arch not in open_clip.list_models():
        raise ConfigError(_unknown("open_clip architecture", arch, open_clip.list_models(), "open_clip.list_models()"))
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag and not open_clip.pretrained.is_pretrained_cfg(arch, tag):
        raise ConfigError(
            f"open_clip architecture {arch!r} has no pretrained tag {tag!r}; valid tags: {_listing(tags)}."
            f" Use open_clip:{arch}/TAG."
        )
    if pretrained and not tag:
        hint = f"valid tags: {_listing(tags)}" if tags else "it has no pretrained tags"
        raise ConfigError(
            f"open_clip model {name!r} names no pretrained tag ({hint}). Use open_clip:{arch}/TAG, or "
            f"open_clip:{arch}?pretrained=false for random weights."
        )
    return arch, tag, open_clip.pretrained.get_pretrained_cfg(arch, tag) if tag else {}


def _download_open_clip(name: str, tag_cfg: dict[str, Any], revision: str | None) -> str:
    """Fetch the tag's checkpoint into open_clip's cache (Hub preferred, like open_clip); return its path."""
    try:
        if tag_cfg.get("hf_hub"):
            model_id, filename = os.path.split(tag_cfg["hf_hub"])  # 'org/repo/' or 'org/repo/file.bin'
            return open_clip.pretrained.download_pretrained_from_hf(model_id, filename or None, revision=revision)
        if revision is not None:
            raise ConfigError(
                f"open_clip weights of {name!r} come from a URL, not the Hub; revision={revision!r} cannot apply."
            )
        return open_clip.pretrained.download_pretrained(tag_cfg)
    except UNREACHABLE_ERRORS as exc:
        label = f"open_clip:{name}" + (f" (revision {revision})" if revision else "")
        raise _unavailable(label, exc, hub=bool(tag_cfg.get("hf_hub"))) from exc


def _create_open_clip(
    name: str,
    checkpoint: str | None,
    preprocess: dict[str, Any],
    *,
    label: str,
    weights_from_hub: bool,
    quick_gelu: bool = False,
) -> torch.nn.Module:
    try:
        return open_clip.create_model(
            name,
            force_quick_gelu=quick_gelu,
            pretrained=checkpoint,
            load_weights=checkpoint is not None or weights_from_hub,
            pretrained_image=False,
            pretrained_text=False,
            force_preprocess_cfg=preprocess or None,
            require_pretrained=checkpoint is not None or weights_from_hub,
        )
    except (pickle.UnpicklingError, RuntimeError) as exc:  # open_clip wraps Hub failures in RuntimeError
        if _weights_only_refusal(exc):
            raise _pickled_code_refused(label, exc) from None
        if isinstance(exc, pickle.UnpicklingError):
            raise
        cause = _unreachable_cause(exc)
        if cause is None:
            raise
        raise _unavailable(label, cause, hub=True) from exc


def _unreachable_cause(exc: BaseException) -> BaseException | None:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, UNREACHABLE_ERRORS):
            return current
        current = current.__cause__
    return None


def _open_clip_data_config(cfg: PreprocessCfg) -> DataConfig:
    size = (cfg.size, cfg.size) if isinstance(cfg.size, int) else tuple(cfg.size)
    crop_mode = {"shortest": "center", "squash": "squash"}.get(cfg.resize_mode, cfg.resize_mode)
    return DataConfig(
        input_size=(3, int(size[0]), int(size[1])),
        mean=tuple(float(v) for v in cfg.mean),
        std=tuple(float(v) for v in cfg.std),
        interpolation=str(cfg.interpolation),
        crop_pct=1.0,
        crop_mode=crop_mode,
    )


# ---------------------------------------------------------------------------------------------- torchvision


@ADAPTERS.register("torchvision")
def _build_torchvision(name: str, pretrained: bool, revision: str | None) -> _Built:
    """torchvision classification `ARCH[/WEIGHTS]`; the weights enum gives the transform (DEFAULT if unnamed)."""
    arch, _, weights_name = name.partition("/")
    valid = torchvision.models.list_models(module=torchvision.models)
    if arch not in valid:
        raise ConfigError(_unknown("torchvision classification model", arch, valid, "torchvision.models.list_models()"))
    enum = get_model_weights(arch)
    names = list(enum.__members__)
    if weights_name and weights_name not in names:
        raise ConfigError(
            f"torchvision model {arch!r} has no weights {weights_name!r}; valid: {', '.join(names)}. "
            f"Use torchvision:{arch}/WEIGHTS."
        )
    weights = get_weight(f"{enum.__name__}.{weights_name or 'DEFAULT'}")
    label = f"torchvision:{arch}/{weights.name}"
    if pretrained:
        _check_torchvision_cached_if_offline(label, weights.url)
    try:
        module = torchvision.models.get_model(arch, weights=weights if pretrained else None)
    except UNREACHABLE_ERRORS as exc:
        raise _unavailable(label, exc, hub=False) from exc
    transform = weights.transforms()
    data_config = _torchvision_data_config(transform)
    return _Built(module, module, data_config, transform, label, weights.url)


def _check_torchvision_cached_if_offline(label: str, url: str) -> None:
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if offline_mode() and not cached.is_file():
        raise SourceUnavailableError(
            f"Could not load the weights of {label}: offline mode is on (HF_HUB_OFFLINE) and {cached} is not in the "
            f"torch hub cache. {OFFLINE_WEIGHTS_FIX}"
        )


def _torchvision_data_config(transform: Any) -> DataConfig:
    crop = int(transform.crop_size[0])
    resize = int(transform.resize_size[0])
    return DataConfig(
        input_size=(3, crop, crop),
        mean=tuple(float(v) for v in transform.mean),
        std=tuple(float(v) for v in transform.std),
        interpolation=str(transform.interpolation.value),
        crop_pct=crop / resize,
    )


# ---------------------------------------------------------------------------------------------------- toy


@ADAPTERS.register("toy")
def _build_toy(name: str, pretrained: bool, revision: str | None) -> _Built:
    """A toy architecture of `benchmark.models.toy` (the demo's small CNN); weights come from local files only."""
    from benchmark.models import toy

    module, side = toy.build_toy(name, pretrained)
    data_config = DataConfig(input_size=(3, side, side), mean=toy.IMAGENET_MEAN, std=toy.IMAGENET_STD,
                             interpolation="bilinear", crop_pct=1.0, crop_mode="squash")
    return _Built(module, module, data_config, toy.toy_transform(side), f"toy:{name}", "")


# ------------------------------------------------------------------------------------------- local weights


def _checked_weights_file(spec: ModelSpec) -> str:
    """Check the weights file exists and matches `spec.sha256` (when given); return its sha256."""
    path = Path(str(spec.weights)).expanduser()
    if not path.is_file():
        raise SourceUnavailableError(
            f"Weights file {str(path)!r} of model {spec.to_string()!r} does not exist or is not a file. "
            "Check the path (it is read as given, ~ expanded)."
        )
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ConfigError(
            f"Weights file {str(path)!r} has suffix {path.suffix!r}; supported: {', '.join(WEIGHT_SUFFIXES)}. "
            "Save a state dict with safetensors.torch.save_file or torch.save(model.state_dict(), PATH)."
        )
    digest = sha256_file(path)
    if spec.sha256 is not None and digest != spec.sha256.lower():
        raise ChecksumError(
            f"Weights file {str(path)!r} has sha256 {digest}, but the spec expects {spec.sha256.lower()}. "
            "The file changed or the spec names another file; re-download it or correct sha256."
        )
    return digest


def _load_weights_file(built: _Built, path: Path, spec: ModelSpec) -> None:
    """Load a state dict strictly; for open_clip, a full CLIP state dict or the visual tower's (with or without
    the `visual.` prefix)."""
    state = read_state_dict(path)
    target = built.module
    if built.weights_target is not built.module:
        if all(k.startswith("visual.") for k in state):
            state = {k.removeprefix("visual."): v for k, v in state.items()}
        elif any(k.startswith("visual.") for k in state):
            target = built.weights_target
    _check_keys(target, state, path, spec)
    target.load_state_dict(state, strict=True)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from .safetensors or a tensors-only torch file (never unpickles code)."""
    try:
        if path.suffix.lower() == ".safetensors":
            state: Any = safetensors.torch.load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, safetensors.SafetensorError, RuntimeError, EOFError) as exc:
        raise ConfigError(
            f"Could not read weights file {str(path)!r}: {type(exc).__name__}: {_one_line(exc)}. Torch files are "
            "read with weights_only=True (tensors only, no pickled code): save them with "
            "torch.save(model.state_dict(), PATH) or safetensors.torch.save_file(model.state_dict(), PATH)."
        ) from exc
    return _unwrap_state_dict(state, path)


def _unwrap_state_dict(state: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(state, Mapping):
        for key in STATE_DICT_CONTAINER_KEYS:
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(
            f"Weights file {str(path)!r} does not hold a state dict (a non-empty mapping name -> tensor, possibly "
            f"under one of {', '.join(STATE_DICT_CONTAINER_KEYS)}). Save model.state_dict()."
        )
    keys = list(state)
    if all(k.startswith("module.") for k in keys):  # saved from DistributedDataParallel
        return {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def _check_keys(target: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path, spec: ModelSpec) -> None:
    expected = target.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape (file vs model)", mismatched)):
        if items:
            parts.append(f"{len(items)} {label}, e.g. {', '.join(items[:4])}")
    raise ConfigError(
        f"Weights file {str(path)!r} does not match architecture {spec.architecture or spec.source + ':' + spec.name}: "
        f"{'; '.join(parts)}. Check arch= (the architecture the weights were trained with, including the number "
        "of classes) or export the state dict of that exact model."
    )


# ------------------------------------------------------------------------------------------------- errors



def offline_mode() -> bool:
    """True when Hugging Face offline mode is on (the project's offline switch for every model source)."""
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return bool(env or huggingface_hub.constants.HF_HUB_OFFLINE)


def _unavailable(label: str, exc: BaseException, *, hub: bool) -> SourceUnavailableError:
    where = "the Hugging Face Hub" if hub else "its download URL"
    offline = " Offline mode is on (HF_HUB_OFFLINE): only cached weights load." if offline_mode() else ""
    return SourceUnavailableError(
        f"Could not load the weights of {label} from {where}: {type(exc).__name__}: {_one_line(exc)}.{offline} {OFFLINE_WEIGHTS_FIX}"
    )


def _weights_only_refusal(exc: BaseException) -> bool:
    """Whether torch's weights_only unpickler refused a file (timm re-raises it as a RuntimeError)."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, pickle.UnpicklingError) or "weights_only" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _pickled_code_refused(label: str, exc: BaseException) -> ConfigError:
    """The error for Hub weights that torch refused to unpickle with weights_only=True (they hold more than
    tensors, e.g. code): imi-bench never loads such files."""
    return ConfigError(
        f"The weights of {label} were refused: they are a pickle that holds more than tensors, and imi-bench loads "
        f"torch files with weights_only=True so that no pickled code can run ({type(exc).__name__}: "
        f"{_one_line(exc).split('. ')[0][:200]}). Fix: publish the weights as safetensors (model.safetensors) in the repo, or save "
        "a plain state dict (torch.save(model.state_dict(), PATH)) and submit it as local:PATH?arch=SOURCE:ARCH."
    )


def _unknown(kind: str, value: str, valid: list[str], how: str) -> str:
    close = difflib.get_close_matches(value, valid, n=5, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"Unknown {kind} {value!r}.{hint} {len(valid)} are available; list them with {how}."


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()).rstrip(".")
    return text if len(text) <= 300 else text[:297] + "..."


def _listing(items: list[str], limit: int = 15) -> str:
    """Comma-separated items, the first `limit` of them and a count of the rest."""
    if not items:
        return "(none)"
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"

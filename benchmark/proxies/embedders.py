"""Image embedders for the MIS proxy, and a content-hash cache so that each image is embedded once.

An embedder maps PIL images to L2-normalised float32 vectors, so that cosine similarity is a dot product and
every 2-AFC task of the MIS proxy becomes a matrix product. Torch embedders load their model lazily on the
first `embed` call; constructing one only validates its parameters, and `identity()` never needs the weights.

Registered embedders: "pixel" (no weights), "timm", "open_clip" and "dreamsim" (the optional `dreamsim` package).
"""

from __future__ import annotations

import abc
import contextlib
import difflib
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark.api.errors import (
    ChecksumError,
    ConfigError,
    DataValidationError,
    SourceUnavailableError,
)
from benchmark.api.registry import Registry

if TYPE_CHECKING:
    import torch

__all__ = [
    "RANDOM_INIT_SEED",
    "DreamSimEmbedder",
    "Embedder",
    "EmbeddingCache",
    "OpenClipEmbedder",
    "PixelEmbedder",
    "TimmEmbedder",
    "as_rgb_images",
    "default_dreamsim_dir",
    "embedders",
    "file_key",
    "identity_hash",
    "image_key",
    "l2_normalise",
    "make_embedder",
]

#: Seed of the random initialisation used when a torch embedder runs without pretrained weights, so that two
#: instances (and the cache key they share) give the same vectors.
RANDOM_INIT_SEED = 0
_MIN_NORM = 1e-12


class Embedder(abc.ABC):
    """Maps images to L2-normalised feature vectors; cosine similarity = dot product."""

    name: str = ""

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed `images` into an (n, d) float32 array whose rows have unit L2 norm."""
        rgb = as_rgb_images(images)
        vectors = np.asarray(self._embed(rgb), dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != len(rgb):
            raise RuntimeError(
                f"Embedder {self.name!r} returned an array of shape {vectors.shape} for {len(rgb)} images; "
                "expected (n_images, dim). This is a bug in the embedder."
            )
        return l2_normalise(vectors, source=self.name)

    @abc.abstractmethod
    def _embed(self, images: list[Image.Image]) -> np.ndarray:
        """Raw (n, d) features of RGB images; `embed` validates and normalises them."""

    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-able description (name, parameters, weights' identity) used as cache key and provenance."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.identity(), sort_keys=True)})"


embedders: Registry[Callable[..., Embedder]] = Registry("embedder")


def make_embedder(name: str, **params: Any) -> Embedder:
    """Construct the embedder registered under `name`; unknown parameters raise ConfigError naming valid ones."""
    factory = embedders.get(name)
    valid = _parameter_names(factory)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        hints = [f"{u!r} -> {close[0]!r}" for u in unknown if (close := difflib.get_close_matches(u, valid, n=1))]
        hint = f" Did you mean {', '.join(hints)}?" if hints else ""
        raise ConfigError(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))} for embedder {name!r}.{hint} "
            f"Valid parameters: {', '.join(valid) or '(none)'}."
        )
    return factory(**params)


def identity_hash(identity: dict[str, Any]) -> str:
    """sha256 (hex) of an embedder identity serialised as canonical JSON."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def as_rgb_images(images: Sequence[Image.Image]) -> list[Image.Image]:
    """Validate a non-empty sequence of PIL images and return them in RGB mode."""
    if isinstance(images, Image.Image):
        raise ConfigError("Expected a sequence of PIL images, got a single image; wrap it in a list: [image].")
    images = list(images)
    if not images:
        raise ConfigError("Expected at least one image to embed, got an empty sequence.")
    for index, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise ConfigError(
                f"Item {index} is a {type(image).__name__}, not a PIL.Image.Image; open files with "
                "PIL.Image.open(path) or use EmbeddingCache.embed_paths for paths."
            )
    return [image if image.mode == "RGB" else image.convert("RGB") for image in images]


def l2_normalise(vectors: np.ndarray, *, source: str = "embedder") -> np.ndarray:
    """Return float32 rows scaled to unit L2 norm; non-finite or zero rows raise instead of being patched."""
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise DataValidationError(f"{source} produced non-finite features for image(s) at index {bad[:10].tolist()}.")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] < _MIN_NORM)
    if zero.size:
        raise DataValidationError(
            f"{source} produced an all-zero feature vector for image(s) at index {zero[:10].tolist()}; "
            "cosine similarity is undefined for them. Check the images (blank?) or choose another embedder."
        )
    return (vectors / norms).astype(np.float32)


def _offline_hint() -> str:
    """How Hugging Face Hub offline mode played into a failed download."""
    import huggingface_hub.constants

    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set, so only the local Hugging Face cache was searched."
    return "Set HF_HUB_OFFLINE=1 to make Hugging Face Hub look-ups fail at once instead of retrying."


# --------------------------------------------------------------------------------------------- validation helpers


def _parameter_names(factory: Callable[..., Any]) -> list[str]:
    signature = inspect.signature(factory)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in signature.parameters.values() if p.kind in kinds and p.name != "self"]


def _require_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigError(f"{name} must be >= {minimum}{upper}, got {value}.")
    return int(value)


def _require_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")
    return value


def _require_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}.")
    return value


def _close_matches(name: str, candidates: Sequence[str], n: int = 5) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.6)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _existing_file(name: str, value: str | os.PathLike[str]) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise SourceUnavailableError(f"{name} {str(value)!r} is not an existing file; pass the path of a weights file.")
    return path.resolve()


# ------------------------------------------------------------------------------------------------------- pixel


_HIST_SIDE = 64  # the colour histogram is computed on a BOX-resampled 64x64 copy (fast, deterministic)


@embedders.register("pixel")
class PixelEmbedder(Embedder):
    """Weight-free features: a standardised size x size RGB thumbnail and a joint HSV histogram, equally weighted."""

    name = "pixel"

    def __init__(self, size: int = 16, hist_bins: int = 8) -> None:
        self.size = _require_int("size", size, minimum=1, maximum=256)
        self.hist_bins = _require_int("hist_bins", hist_bins, minimum=1, maximum=32)

    def identity(self) -> dict[str, Any]:
        """Name, parameters and algorithm version (there are no weights)."""
        return {"name": self.name, "version": 1, "size": self.size, "hist_bins": self.hist_bins, "colour": "hsv"}

    def _embed(self, images: list[Image.Image]) -> np.ndarray:
        return np.stack([self._features(image) for image in images])

    def _features(self, image: Image.Image) -> np.ndarray:
        return np.concatenate([self._thumbnail(image), self._histogram(image)])

    def _thumbnail(self, image: Image.Image) -> np.ndarray:
        """Standardised (zero mean, unit variance over all values) thumbnail, scaled to unit norm; zero if flat."""
        small = np.asarray(image.resize((self.size, self.size), Image.Resampling.BOX), dtype=np.float64).ravel()
        centred = small - small.mean()
        norm = np.linalg.norm(centred)
        return centred / norm if norm > _MIN_NORM else centred

    def _histogram(self, image: Image.Image) -> np.ndarray:
        """Square root of the normalised joint HSV histogram (unit norm; dot product = Bhattacharyya coefficient)."""
        hsv = np.asarray(image.resize((_HIST_SIDE, _HIST_SIDE), Image.Resampling.BOX).convert("HSV"), dtype=np.int64)
        bins = self.hist_bins
        index = (hsv * bins) // 256
        flat = (index[..., 0] * bins + index[..., 1]) * bins + index[..., 2]
        counts = np.bincount(flat.ravel(), minlength=bins**3).astype(np.float64)
        return np.sqrt(counts / counts.sum())


# ------------------------------------------------------------------------------------------------- torch base


def _resolve_device(device: str | None) -> torch.device:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"Invalid device {device!r} ({err}); use None (auto), 'cpu', 'cuda' or 'cuda:N'.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but CUDA is not available here; pass device='cpu' or device=None (auto).")
    return resolved


@contextlib.contextmanager
def _seeded_init(seed: int = RANDOM_INIT_SEED) -> Iterator[None]:
    """Seed the CPU RNG for a random initialisation without disturbing the caller's RNG state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _random_init_weights() -> dict[str, Any]:
    import torch

    return {"source": "random_init", "seed": RANDOM_INIT_SEED, "torch": torch.__version__}


class _TorchEmbedder(Embedder):
    """Shared machinery: lazy loading, device choice, batching, inference mode and bf16 autocast on CUDA."""

    def __init__(self, device: str | None, batch_size: int) -> None:
        self.device = device
        self.batch_size = _require_int("batch_size", batch_size, minimum=1)
        self._device = _resolve_device(device)
        self._model: Any = None
        self._transform: Callable[[Image.Image], torch.Tensor] | None = None

    @abc.abstractmethod
    def _load(self) -> tuple[Any, Callable[[Image.Image], torch.Tensor]]:
        """Build the model (weights loaded) and its evaluation transform."""

    @abc.abstractmethod
    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) preprocessed batch -> (B, d) features."""

    def _runtime_identity(self) -> dict[str, Any]:
        precision = "bfloat16-autocast" if self._device.type == "cuda" else "float32"
        return {"device": self._device.type, "precision": precision}

    def _ensure_loaded(self) -> None:
        if self._model is None:
            model, transform = self._load()
            self._model = model.eval().requires_grad_(False).to(self._device)
            self._transform = transform

    def _embed(self, images: list[Image.Image]) -> np.ndarray:
        self._ensure_loaded()
        chunks = [self._run_batch(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks)

    def _run_batch(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        assert self._transform is not None  # set by _ensure_loaded; not user input
        batch = torch.stack([self._transform(image) for image in images]).to(self._device, non_blocking=True)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if self._device.type == "cuda" else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            features = self._forward(batch)
        return features.float().flatten(1).cpu().numpy()


# -------------------------------------------------------------------------------------------------------- timm


def _validate_timm_name(model: str) -> None:
    import timm
    from timm.models import split_model_name_tag

    arch, tag = split_model_name_tag(model)
    if not timm.is_model(arch):
        hint = _close_matches(model, timm.list_models() + timm.list_pretrained())
        raise ConfigError(
            f"Unknown timm model {model!r}.{hint} Names are 'arch' or 'arch.tag' (e.g. 'resnet50.a1_in1k'); "
            "list them with timm.list_models('pattern*') or timm.list_pretrained('pattern*')."
        )
    if tag and model not in timm.list_pretrained(f"{arch}.*"):
        valid = timm.list_pretrained(f"{arch}.*")
        raise ConfigError(
            f"Unknown pretrained tag {tag!r} for timm architecture {arch!r}.{_close_matches(model, valid)} "
            f"Valid: {', '.join(valid) or '(none: this architecture has no pretrained weights)'}."
        )


@embedders.register("timm")
class TimmEmbedder(_TorchEmbedder):
    """Pooled features (`num_classes=0`) of a timm backbone, preprocessed with the model's own data config.

    `model` is timm's 'arch' or 'arch.tag'. Weights: the hub's (`pretrained=True`), a local `checkpoint_path`
    (loaded strictly, classifier keys dropped; timm's reader prefers EMA weights when the file holds them), or a
    random initialisation seeded with RANDOM_INIT_SEED (`pretrained=False`).
    """

    name = "timm"

    def __init__(
        self,
        model: str = "resnet50.a1_in1k",
        pretrained: bool = True,
        checkpoint_path: str | None = None,
        device: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.model = _require_str("model", model)
        self.pretrained = _require_bool("pretrained", pretrained)
        self.checkpoint_path = None if checkpoint_path is None else str(checkpoint_path)
        _validate_timm_name(self.model)
        self._checkpoint = None if checkpoint_path is None else _existing_file("checkpoint_path", checkpoint_path)
        self._checkpoint_sha256: str | None = None
        if self._checkpoint is None and self.pretrained:
            self._hub_cfg()  # raises if the model has no pretrained weights
        super().__init__(device, batch_size)

    def _hub_cfg(self) -> Any:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(self.model)
        if cfg is None or not (cfg.hf_hub_id or cfg.url):
            raise ConfigError(
                f"timm model {self.model!r} has no pretrained weights; pass pretrained=False (random weights) "
                "or checkpoint_path='/path/to/weights'."
            )
        return cfg

    def _weights_identity(self) -> dict[str, Any]:
        if self._checkpoint is not None:
            if self._checkpoint_sha256 is None:
                self._checkpoint_sha256 = _file_sha256(self._checkpoint)
            return {"source": "file", "sha256": self._checkpoint_sha256}
        if not self.pretrained:
            return _random_init_weights()
        cfg = self._hub_cfg()
        return {"source": "timm", "id": f"{cfg.architecture}.{cfg.tag}", "hf_hub_id": cfg.hf_hub_id, "url": cfg.url}

    def identity(self) -> dict[str, Any]:
        """Name, model, weights (hub id + tag, file sha256 or seeded random init), timm version, device/precision."""
        import timm

        return {
            "name": self.name,
            "version": 1,
            "model": self.model,
            "pretrained": self.pretrained if self._checkpoint is None else "file",
            "weights": self._weights_identity(),
            "timm": timm.__version__,
            **self._runtime_identity(),
        }

    def _load(self) -> tuple[Any, Callable[[Image.Image], torch.Tensor]]:
        import timm
        import timm.data

        if self._checkpoint is not None:
            model = self._create_from_file()
        elif self.pretrained:
            model = self._create_from_hub()
        else:
            with _seeded_init():
                model = timm.create_model(self.model, pretrained=False, num_classes=0)
        config = timm.data.resolve_data_config({}, model=model)
        return model, timm.data.create_transform(**config)

    def _create_from_hub(self) -> Any:
        import timm

        try:
            return timm.create_model(self.model, pretrained=True, num_classes=0)
        except OSError as err:
            cfg = self._hub_cfg()
            raise SourceUnavailableError(
                f"Could not get the pretrained weights of timm model {self.model!r} "
                f"(Hugging Face Hub {cfg.hf_hub_id or cfg.url!r}): {type(err).__name__}: {err} "
                "This machine may be offline. Either fill the Hugging Face cache on a machine with internet "
                f"(python -c \"import timm; timm.create_model('{self.model}', pretrained=True)\") and copy "
                "~/.cache/huggingface here, or download the weights file and pass it: "
                f"make_embedder('timm', model='{self.model}', checkpoint_path='/path/to/model.safetensors'). "
                + _offline_hint()
            ) from err

    def _create_from_file(self) -> Any:
        """Build the backbone and load the file strictly (classifier weights dropped); any mismatch raises."""
        import timm
        from timm.models import load_state_dict

        with _seeded_init():
            model = timm.create_model(self.model, pretrained=False, num_classes=0)
        try:
            state = load_state_dict(str(self._checkpoint))  # timm's reader: .safetensors, 'state_dict'/'model'/EMA keys
        except (RuntimeError, OSError, pickle.UnpicklingError) as err:
            raise ConfigError(
                f"checkpoint_path {self.checkpoint_path!r} is not a readable weights file: {type(err).__name__}: {err}"
            ) from err
        classifiers = model.pretrained_cfg.get("classifier") or ()
        classifiers = (classifiers,) if isinstance(classifiers, str) else tuple(classifiers)
        state = {k: v for k, v in state.items() if not any(k.startswith(f"{c}.") for c in classifiers)}
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatches
            raise self._checkpoint_mismatch(str(err)) from err
        if result.missing_keys or result.unexpected_keys:
            raise self._checkpoint_mismatch(
                f"missing keys {result.missing_keys[:5]} ({len(result.missing_keys)} in all), "
                f"unexpected keys {result.unexpected_keys[:5]} ({len(result.unexpected_keys)} in all)"
            )
        return model

    def _checkpoint_mismatch(self, detail: str) -> ConfigError:
        return ConfigError(
            f"checkpoint_path {self.checkpoint_path!r} could not be loaded into timm model {self.model!r}: {detail}. "
            "Check that the file holds weights of this architecture (a state dict, optionally under 'state_dict' "
            "or 'model'); classifier weights are ignored."
        )

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self._model(batch)


# --------------------------------------------------------------------------------------------------- open_clip


def _validate_open_clip(model: str, pretrained: str | None) -> tuple[str | None, Path | None]:
    """Return (tag, file) for `pretrained`; unknown architectures or tags raise ConfigError."""
    import open_clip

    archs = open_clip.list_models()
    if model not in archs:
        raise ConfigError(
            f"Unknown open_clip architecture {model!r}.{_close_matches(model, archs)} "
            f"Valid: {', '.join(archs)}."
        )
    if pretrained is None:
        return None, None
    pretrained = _require_str("pretrained", pretrained)
    tags = open_clip.list_pretrained_tags_by_model(model)
    if pretrained in tags:
        return pretrained, None
    path = Path(pretrained).expanduser()
    if path.is_file():
        return None, path.resolve()
    raise ConfigError(
        f"pretrained={pretrained!r} is neither a pretrained tag of open_clip architecture {model!r} nor an "
        f"existing file.{_close_matches(pretrained, tags)} Valid tags: {', '.join(tags) or '(none)'}; "
        "or pass the path of a local checkpoint file, or None for random weights."
    )


@embedders.register("open_clip")
class OpenClipEmbedder(_TorchEmbedder):
    """CLIP image embeddings (`encode_image`) from open_clip, with the tag's own preprocessing.

    `model` is a built-in open_clip architecture; `pretrained` is one of its tags, a local checkpoint file, or
    None for a random initialisation seeded with RANDOM_INIT_SEED.
    """

    name = "open_clip"

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        device: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.model = _require_str("model", model)
        self.pretrained = None if pretrained is None else str(pretrained)
        self._tag, self._file = _validate_open_clip(self.model, self.pretrained)
        self._file_sha256: str | None = None
        super().__init__(device, batch_size)

    def _weights_identity(self) -> dict[str, Any]:
        import open_clip

        if self._file is not None:
            if self._file_sha256 is None:
                self._file_sha256 = _file_sha256(self._file)
            return {"source": "file", "sha256": self._file_sha256}
        if self._tag is None:
            return _random_init_weights()
        cfg = open_clip.get_pretrained_cfg(self.model, self._tag)
        hub, url = cfg.get("hf_hub") or None, cfg.get("url") or None
        return {"source": "open_clip", "tag": self._tag, "hf_hub": hub, "url": url}

    def identity(self) -> dict[str, Any]:
        """Name, architecture, weights (tag, file sha256 or seeded random init), open_clip version, device/precision."""
        import open_clip

        return {
            "name": self.name,
            "version": 1,
            "model": self.model,
            "pretrained": "file" if self._file is not None else self._tag,
            "weights": self._weights_identity(),
            "open_clip": open_clip.__version__,
            **self._runtime_identity(),
        }

    def _load(self) -> tuple[Any, Callable[[Image.Image], torch.Tensor]]:
        import open_clip

        if self._tag is not None:
            self._download_tag()
            model, _, preprocess = open_clip.create_model_and_transforms(self.model, pretrained=self._tag)
        elif self._file is not None:
            model, preprocess = self._create_from_file()
        else:
            with _seeded_init():
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.model, pretrained=None, pretrained_text=False
                )
        return model, preprocess

    def _download_tag(self) -> None:
        import open_clip

        cfg = open_clip.get_pretrained_cfg(self.model, self._tag)
        source = cfg.get("hf_hub") or cfg.get("url")
        try:
            open_clip.download_pretrained(cfg)
        except (OSError, RuntimeError) as err:
            raise SourceUnavailableError(
                f"Could not get open_clip weights {self.model!r} / {self._tag!r} (from {source!r}): "
                f"{type(err).__name__}: {err} This machine may be offline. Either fill the cache on a machine "
                f"with internet (python -c \"import open_clip; open_clip.create_model_and_transforms('{self.model}', "
                f"pretrained='{self._tag}')\") and copy ~/.cache/huggingface here, or pass a local file: "
                f"make_embedder('open_clip', model='{self.model}', pretrained='/path/to/open_clip_model.safetensors'). "
                + _offline_hint()
            ) from err

    def _create_from_file(self) -> tuple[Any, Callable[[Image.Image], torch.Tensor]]:
        import open_clip

        try:
            model, _, preprocess = open_clip.create_model_and_transforms(self.model, pretrained=str(self._file))
        except (RuntimeError, KeyError, pickle.UnpicklingError) as err:
            raise ConfigError(
                f"pretrained file {self.pretrained!r} could not be loaded into open_clip architecture "
                f"{self.model!r}: {type(err).__name__}: {err}."
            ) from err
        return model, preprocess

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self._model.encode_image(batch)


# ---------------------------------------------------------------------------------------------------- dreamsim


DREAMSIM_INSTALL = 'pip install "imi-bench[dreamsim]"'
DREAMSIM_DIR_ENV = "IMIBENCH_DREAMSIM_DIR"
_DREAMSIM_RELEASE = "https://github.com/ssundaram21/dreamsim/releases/download"
#: Per type: (release zip, files that dreamsim 0.2.1 `download_weights` checks in its cache_dir, LoRA folder).
_DREAMSIM_TYPES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "ensemble": (
        "v0.2.0-checkpoints/dreamsim_ensemble_checkpoint.zip",
        ("dino_vitb16_pretrain.pth", "open_clip_vitb16_pretrain.pth.tar", "clip_vitb16_pretrain.pth.tar"),
        "ensemble_lora",
    ),
    "dino_vitb16": (
        "v0.2.0-checkpoints/dreamsim_dino_vitb16_checkpoint.zip",
        ("dino_vitb16_pretrain.pth",),
        "dino_vitb16_single_lora",
    ),
    "clip_vitb32": (
        "v0.2.0-checkpoints/dreamsim_clip_vitb32_checkpoint.zip",
        ("clip_vitb32_pretrain.pth.tar",),
        "clip_vitb32_single_lora",
    ),
    "open_clip_vitb32": (
        "v0.2.0-checkpoints/dreamsim_open_clip_vitb32_checkpoint.zip",
        ("open_clip_vitb32_pretrain.pth.tar",),
        "open_clip_vitb32_single_lora",
    ),
    "dinov2_vitb14": (
        "v0.2.1-checkpoints/dreamsim_dinov2_vitb14_checkpoint.zip",
        ("dinov2_vitb14_pretrain.pth",),
        "dinov2_vitb14_single_lora",
    ),
    "synclr_vitb16": (
        "v0.2.1-checkpoints/dreamsim_synclr_vitb16_checkpoint.zip",
        ("synclr_vit_b_16.pth",),
        "synclr_vitb16_single_lora",
    ),
}
#: DINO backbones come through torch.hub with hub dir = cache_dir: the repository code and the DINO weights.
_DREAMSIM_TORCH_HUB: dict[str, tuple[str, ...]] = {
    "ensemble": ("facebookresearch_dino_main/hubconf.py", "checkpoints/dino_vitbase16_pretrain.pth"),
    "dino_vitb16": ("facebookresearch_dino_main/hubconf.py", "checkpoints/dino_vitbase16_pretrain.pth"),
    "dinov2_vitb14": ("facebookresearch_dinov2_main/hubconf.py", "checkpoints/dinov2_vitb14_pretrain.pth"),
}
_LORA_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def default_dreamsim_dir() -> Path:
    """$IMIBENCH_DREAMSIM_DIR if set, else ~/.cache/imibench/dreamsim."""
    configured = os.environ.get(DREAMSIM_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "imibench" / "dreamsim"


def _import_dreamsim() -> Any:
    try:
        return importlib.import_module("dreamsim")
    except ImportError as err:
        raise ConfigError(
            f"The DreamSim embedder needs the optional 'dreamsim' package, which is not installed ({err}). "
            f"Install it with: {DREAMSIM_INSTALL} (or pip install dreamsim), or choose another embedder "
            f"(valid: {', '.join(embedders.names())})."
        ) from err


@embedders.register("dreamsim")
class DreamSimEmbedder(_TorchEmbedder):
    """DreamSim embeddings (`model.embed`), L2-normalised so that 1 - dot product is the DreamSim distance.

    Weights are read from `weights_dir` (default: $IMIBENCH_DREAMSIM_DIR or ~/.cache/imibench/dreamsim); missing
    files raise SourceUnavailableError unless `download=True`, which lets dreamsim fetch them (needs internet).
    """

    name = "dreamsim"

    def __init__(
        self,
        weights_dir: str | None = None,
        dreamsim_type: str = "ensemble",
        device: str | None = None,
        batch_size: int = 32,
        download: bool = False,
    ) -> None:
        if dreamsim_type not in _DREAMSIM_TYPES:
            hint = _close_matches(str(dreamsim_type), list(_DREAMSIM_TYPES))
            raise ConfigError(
                f"Unknown dreamsim_type {dreamsim_type!r}.{hint} Valid: {', '.join(_DREAMSIM_TYPES)}."
            )
        self.dreamsim_type = dreamsim_type
        self.weights_dir = Path(weights_dir).expanduser() if weights_dir is not None else default_dreamsim_dir()
        self.download = _require_bool("download", download)
        super().__init__(device, batch_size)

    def identity(self) -> dict[str, Any]:
        """Name, DreamSim type, the release checkpoint it loads, dreamsim version, device/precision."""
        try:
            package_version: str | None = importlib.metadata.version("dreamsim")
        except importlib.metadata.PackageNotFoundError:
            package_version = None
        release = f"{_DREAMSIM_RELEASE}/{_DREAMSIM_TYPES[self.dreamsim_type][0]}"
        return {
            "name": self.name,
            "version": 1,
            "dreamsim_type": self.dreamsim_type,
            "weights": {"source": "dreamsim_release", "url": release},
            "dreamsim": package_version,
            **self._runtime_identity(),
        }

    def expected_files(self) -> list[Path]:
        """Files dreamsim reads from `weights_dir` for this type (LoRA weights: .safetensors or .bin)."""
        _, checkpoints, lora = _DREAMSIM_TYPES[self.dreamsim_type]
        names = [*checkpoints, f"{lora}/adapter_config.json", *_DREAMSIM_TORCH_HUB.get(self.dreamsim_type, ())]
        return [self.weights_dir / name for name in names]

    def missing_files(self) -> list[str]:
        """Expected weight files that are absent from `weights_dir`, as readable paths."""
        missing = [str(path) for path in self.expected_files() if not path.exists()]
        lora_dir = self.weights_dir / _DREAMSIM_TYPES[self.dreamsim_type][2]
        if not any((lora_dir / name).is_file() for name in _LORA_WEIGHTS):
            missing.append(" or ".join(str(lora_dir / name) for name in _LORA_WEIGHTS))
        return missing

    def check_weights(self) -> None:
        """Raise SourceUnavailableError naming every missing weight file and how to get them."""
        missing = self.missing_files()
        if missing:
            release = f"{_DREAMSIM_RELEASE}/{_DREAMSIM_TYPES[self.dreamsim_type][0]}"
            raise SourceUnavailableError(
                f"DreamSim ({self.dreamsim_type}) weights are not in {str(self.weights_dir)!r}. Missing: "
                f"{'; '.join(missing)}. To get them, on a machine with internet run "
                f"make_embedder('dreamsim', weights_dir='{self.weights_dir}', download=True).embed(images) "
                f"(dreamsim downloads {release}, unzips it there, and torch.hub fetches the DINO backbone into the "
                f"same folder), then copy that folder here; or point weights_dir (or ${DREAMSIM_DIR_ENV}) at a "
                "folder that already holds them."
            )

    def _load(self) -> tuple[Any, Callable[[Image.Image], torch.Tensor]]:
        import torch

        package = _import_dreamsim()
        if self.download:
            self.weights_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.check_weights()
        hub_dir = torch.hub.get_dir()  # dreamsim calls torch.hub.set_dir(cache_dir); restore it afterwards
        try:
            model, preprocess = package.dreamsim(
                pretrained=True,
                device=str(self._device),
                cache_dir=str(self.weights_dir),
                normalize_embeds=True,
                dreamsim_type=self.dreamsim_type,
            )
        except (OSError, zipfile.BadZipFile) as err:
            raise SourceUnavailableError(
                f"DreamSim ({self.dreamsim_type}) could not load or download its weights into "
                f"{str(self.weights_dir)!r}: {type(err).__name__}: {err}"
            ) from err
        finally:
            torch.hub.set_dir(hub_dir)
        return model, lambda image: preprocess(image)[0]

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self._model.embed(batch)


# ------------------------------------------------------------------------------------------------------- cache


def image_key(image: Image.Image) -> str:
    """Content key of a PIL image: sha256 of its RGB pixel bytes and size."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    digest = hashlib.sha256(f"rgb:{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def file_key(path: Path) -> str:
    """Content key of an image file: sha256 of its bytes."""
    try:
        return _file_sha256(path)
    except FileNotFoundError:
        raise SourceUnavailableError(f"Image file {str(path)!r} does not exist.") from None


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise DataValidationError(f"Cannot decode image file {str(path)!r}: {type(err).__name__}: {err}") from err


class EmbeddingCache:
    """Content-hash cache: each distinct image is embedded once per embedder identity."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = None if directory is None else Path(directory).expanduser()
        self.hits = 0
        self.misses = 0
        self._stores: dict[str, dict[str, np.ndarray]] = {}

    def embed_paths(
        self, embedder: Embedder, paths: Sequence[Path | str], *, progress: bool = False, batch_size: int = 64
    ) -> np.ndarray:
        """(n, d) embeddings of image files, keyed by the sha256 of each file's bytes."""
        files = [Path(p) for p in paths]
        keys = [file_key(path) for path in files]
        return self._lookup_or_embed(embedder, keys, lambda i: _open_rgb(files[i]), progress, batch_size)

    def embed_images(
        self, embedder: Embedder, images: Sequence[Image.Image], *, progress: bool = False, batch_size: int = 64
    ) -> np.ndarray:
        """(n, d) embeddings of PIL images, keyed by the sha256 of their RGB pixels and size."""
        rgb = as_rgb_images(images)
        keys = [image_key(image) for image in rgb]
        return self._lookup_or_embed(embedder, keys, lambda i: rgb[i], progress, batch_size)

    def file_for(self, embedder: Embedder) -> Path | None:
        """The on-disk cache file of this embedder's identity (None for an in-memory cache)."""
        return self._path(embedder.name, embedder.identity())

    def _path(self, name: str, identity: dict[str, Any]) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{name}-{identity_hash(identity)[:32]}.npz"

    def _lookup_or_embed(
        self,
        embedder: Embedder,
        keys: list[str],
        load: Callable[[int], Image.Image],
        progress: bool,
        batch_size: int,
    ) -> np.ndarray:
        batch_size = _require_int("batch_size", batch_size, minimum=1)
        if not keys:
            raise ConfigError("Expected at least one image to embed, got an empty sequence.")
        identity = _canonical(embedder.identity())
        store = self._store(embedder.name, identity)
        todo: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key in store or key in todo:
                self.hits += 1
            else:
                todo[key] = index
                self.misses += 1
        if todo:
            self._embed_missing(embedder, store, todo, load, progress, batch_size)
            self._save(embedder.name, identity, store)
        return np.stack([store[key] for key in keys]).astype(np.float32, copy=False)

    def _embed_missing(
        self,
        embedder: Embedder,
        store: dict[str, np.ndarray],
        todo: dict[str, int],
        load: Callable[[int], Image.Image],
        progress: bool,
        batch_size: int,
    ) -> None:
        from tqdm.auto import tqdm

        pending = list(todo.items())
        with tqdm(total=len(pending), desc=f"embedding ({embedder.name})", unit="img", disable=not progress) as bar:
            for start in range(0, len(pending), batch_size):
                chunk = pending[start : start + batch_size]
                vectors = embedder.embed([load(index) for _, index in chunk])
                _check_rows(store, vectors, len(chunk), embedder.name)
                for (key, _), row in zip(chunk, vectors, strict=True):
                    store[key] = row
                bar.update(len(chunk))

    def _store(self, name: str, identity: dict[str, Any]) -> dict[str, np.ndarray]:
        key = identity_hash(identity)
        if key not in self._stores:
            path = self._path(name, identity)
            self._stores[key] = _read_cache_file(path, identity) if path is not None and path.exists() else {}
        return self._stores[key]

    def _save(self, name: str, identity: dict[str, Any], store: dict[str, np.ndarray]) -> None:
        path = self._path(name, identity)
        if path is None:
            return
        if path.exists():  # another process may have added entries since we read the file: keep them
            for key, row in _read_cache_file(path, identity).items():
                store.setdefault(key, row)
        _write_cache_file(path, identity, store)


def _canonical(identity: dict[str, Any]) -> dict[str, Any]:
    """The identity as it reads back from JSON (tuples become lists), so stored and live copies compare equal."""
    return json.loads(json.dumps(identity, sort_keys=True))


def _check_rows(store: dict[str, np.ndarray], vectors: np.ndarray, expected: int, name: str) -> None:
    if vectors.ndim != 2 or vectors.shape[0] != expected:
        raise RuntimeError(f"Embedder {name!r} returned shape {vectors.shape} for {expected} images.")
    if store:
        dim = next(iter(store.values())).shape[0]
        if vectors.shape[1] != dim:
            raise ChecksumError(
                f"Embedder {name!r} now returns {vectors.shape[1]}-d vectors but its cache holds {dim}-d ones "
                "for the same identity; the cache is stale: delete its file (EmbeddingCache.file_for(embedder))."
            )


def _read_cache_file(path: Path, identity: dict[str, Any]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            stored_identity = json.loads(str(data["identity"]))
            keys = data["keys"].tolist()
            vectors = data["vectors"].astype(np.float32, copy=False)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ChecksumError(
            f"Embedding cache file {str(path)!r} is unreadable ({type(err).__name__}: {err}); delete it to rebuild."
        ) from err
    if stored_identity != identity:
        raise ChecksumError(
            f"Embedding cache file {str(path)!r} belongs to embedder {stored_identity!r}, not {identity!r}; "
            "delete it to rebuild."
        )
    if vectors.ndim != 2 or len(keys) != vectors.shape[0]:
        raise ChecksumError(f"Embedding cache file {str(path)!r} is inconsistent (keys vs vectors); delete it.")
    return dict(zip(keys, vectors, strict=True))


def _write_cache_file(path: Path, identity: dict[str, Any], store: dict[str, np.ndarray]) -> None:
    """Write the cache file atomically: a temporary file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(store)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False) as handle:
        tmp = Path(handle.name)
        try:
            np.savez(
                handle,
                identity=np.array(json.dumps(identity, sort_keys=True)),
                keys=np.array(keys, dtype=str),
                vectors=np.stack([store[key] for key in keys]).astype(np.float32),
            )
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, path)

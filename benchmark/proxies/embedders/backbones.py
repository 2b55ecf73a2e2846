"""Embedders from pretrained vision backbones: "timm" (pooled features) and "open_clip" (CLIP image embeddings).

Weights come from the Hugging Face Hub, a local file, or a seeded random initialisation; timm and open_clip
are imported only when an embedder is constructed or used.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from benchmark.api.errors import ConfigError, SourceUnavailableError
from benchmark.files import sha256_file
from benchmark.proxies.embedders.base import (
    _close_matches,
    _existing_file,
    _require_bool,
    _require_str,
    embedders,
)
from benchmark.proxies.embedders.torch_base import (
    _random_init_weights,
    _seeded_init,
    _TorchEmbedder,
)

if TYPE_CHECKING:
    import torch


def _offline_hint() -> str:
    """How Hugging Face Hub offline mode played into a failed download."""
    import huggingface_hub.constants

    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set, so only the local Hugging Face cache was searched."
    return "Set HF_HUB_OFFLINE=1 to make Hugging Face Hub look-ups fail at once instead of retrying."


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
                self._checkpoint_sha256 = sha256_file(self._checkpoint)
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
                self._file_sha256 = sha256_file(self._file)
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

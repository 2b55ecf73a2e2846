"""The "dreamsim" embedder: the published weights through the optional `dreamsim` package (read from a local
folder), or the same ensemble architecture with seeded random weights (`pretrained=False`, no package, no files)."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from benchmark.api.errors import ConfigError, SourceUnavailableError
from benchmark.proxies.embedders.base import RANDOM_INIT_SEED, _close_matches, _require_bool, embedders
from benchmark.proxies.embedders.torch_base import _random_init_weights, _TorchEmbedder

if TYPE_CHECKING:
    import torch


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
    `pretrained=False` builds the ensemble's architecture (`dreamsim_arch.DreamSimEnsemble`: DINO, CLIP and
    open_clip ViT-B/16, DreamSim's preprocessing, concatenation and normalisation) with random weights seeded by
    RANDOM_INIT_SEED: for offline tests and cost measurements; its similarities mean nothing.
    """

    name = "dreamsim"

    def __init__(
        self,
        weights_dir: str | None = None,
        dreamsim_type: str = "ensemble",
        device: str | None = None,
        batch_size: int = 32,
        download: bool = False,
        pretrained: bool = True,
    ) -> None:
        if dreamsim_type not in _DREAMSIM_TYPES:
            hint = _close_matches(str(dreamsim_type), list(_DREAMSIM_TYPES))
            raise ConfigError(
                f"Unknown dreamsim_type {dreamsim_type!r}.{hint} Valid: {', '.join(_DREAMSIM_TYPES)}."
            )
        self.dreamsim_type = dreamsim_type
        self.weights_dir = Path(weights_dir).expanduser() if weights_dir is not None else default_dreamsim_dir()
        self.download = _require_bool("download", download)
        self.pretrained = _require_bool("pretrained", pretrained)
        if not self.pretrained and dreamsim_type != "ensemble":
            raise ConfigError(
                f"pretrained=False builds the DreamSim ensemble's architecture only; dreamsim_type={dreamsim_type!r} "
                "needs its published weights. Use dreamsim_type='ensemble' or pretrained=True."
            )
        super().__init__(device, batch_size)

    def identity(self) -> dict[str, Any]:
        """Name, DreamSim type, the release checkpoint it loads, dreamsim version, device/precision."""
        try:
            package_version: str | None = importlib.metadata.version("dreamsim")
        except importlib.metadata.PackageNotFoundError:
            package_version = None
        release = f"{_DREAMSIM_RELEASE}/{_DREAMSIM_TYPES[self.dreamsim_type][0]}"
        weights = {"source": "dreamsim_release", "url": release} if self.pretrained else _random_init_weights()
        return {
            "name": self.name,
            "version": 1,
            "dreamsim_type": self.dreamsim_type,
            "weights": weights,
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

        if not self.pretrained:
            from benchmark.proxies.embedders import dreamsim_arch

            return dreamsim_arch.DreamSimEnsemble.random(RANDOM_INIT_SEED), dreamsim_arch.preprocess
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

"""Train a toy CNN on the rendered shapes, on CPU in seconds, seeded; weights cached as safetensors checkpoints.

The network starts from exactly the weights `toy:ARCH?pretrained=false` loads (load_model's seeded init), so the
random twin the demo scores is the trained model's own starting point. A checkpoint is written after each epoch
listed in `save_epochs` (0 = the initial weights) as `ARCH-seed{S}-epoch{E}.safetensors`, with the training
configuration, its hash and the accuracies in the file's metadata. A rerun with the same configuration finds the
files and skips training.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import safetensors
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from benchmark.api.errors import ConfigError
from benchmark.models.adapters import load_model
from benchmark.stimuli.shapes import N_CLASSES, RENDER_VERSION, ShapesSource

METADATA_KEY = "imibench_toy"
TRAINING_VERSION = 1  # bump when the training recipe changes (invalidates cached checkpoints)


@dataclass(frozen=True)
class ToyTrainingConfig:
    """What a toy model is trained on and how; its hash names the cache entry."""

    arch: str = "shapes_cnn"
    seed: int = 0
    epochs: int = 4
    n_train: int = 3000
    n_test: int = 600
    batch_size: int = 50
    learning_rate: float = 0.003
    weight_decay: float = 1e-4
    save_epochs: tuple[int, ...] = field(default=())  # extra checkpoints (the final epoch is always saved)

    def __post_init__(self) -> None:
        for name in ("epochs", "n_train", "n_test", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Toy training {name}={value!r} must be a positive integer.")
        bad = [e for e in self.save_epochs if not 0 <= e <= self.epochs]
        if bad:
            raise ConfigError(f"Checkpoint epochs {bad} lie outside 0..{self.epochs} (the training's epochs).")

    def recipe_hash(self) -> str:
        """sha256 (16 hex) of everything that determines the weights (not which epochs are saved)."""
        recipe = {k: v for k, v in asdict(self).items() if k != "save_epochs"}
        recipe |= {"training_version": TRAINING_VERSION, "render_version": RENDER_VERSION}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]

    def checkpoint_path(self, folder: Path, epoch: int) -> Path:
        """Where the checkpoint after `epoch` epochs lives."""
        return folder / f"{self.arch}-seed{self.seed}-epoch{epoch}.safetensors"


@dataclass(frozen=True)
class ToyCheckpoint:
    """A saved checkpoint: its file, epoch and held-out accuracy."""

    path: Path
    epoch: int
    test_accuracy: float


def train_toy_model(
    config: ToyTrainingConfig, folder: str | Path, *, progress: bool = True
) -> dict[int, ToyCheckpoint]:
    """Train (or find cached) checkpoints for the final epoch and `config.save_epochs`; returns epoch -> checkpoint."""
    folder = Path(folder)
    wanted = sorted({*config.save_epochs, config.epochs})
    cached = {e: _cached(config, config.checkpoint_path(folder, e), e) for e in wanted}
    if all(c is not None for c in cached.values()):
        return cached  # type: ignore[return-value]
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = _rendered(ShapesSource(config.n_train, split="train", seed=config.seed, size=_side(config)))
    test_x, test_y = _rendered(ShapesSource(config.n_test, split="test", seed=config.seed, size=_side(config)))
    model = load_model(f"toy:{config.arch}?pretrained=false").module  # the random twin's exact weights
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    order = torch.Generator().manual_seed(config.seed)
    saved: dict[int, ToyCheckpoint] = {}

    def save(epoch: int) -> None:
        if epoch in wanted:
            saved[epoch] = _save(model, config, config.checkpoint_path(folder, epoch), epoch, _accuracy(model, test_x, test_y))

    save(0)
    steps = config.epochs * -(-config.n_train // config.batch_size)
    with tqdm(total=steps, desc=f"training {config.arch}", unit="step", disable=not progress) as bar:
        for epoch in range(1, config.epochs + 1):
            model.train()
            for batch in torch.randperm(config.n_train, generator=order).split(config.batch_size):
                loss = torch.nn.functional.cross_entropy(model(train_x[batch]), train_y[batch])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}")
            save(epoch)
    return saved


def read_checkpoint_metadata(path: str | Path) -> dict[str, str]:
    """The training metadata stored in a toy checkpoint (empty when absent or unreadable)."""
    with safetensors.safe_open(str(path), framework="pt") as handle:
        text = (handle.metadata() or {}).get(METADATA_KEY, "{}")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}


def _side(config: ToyTrainingConfig) -> int:
    from benchmark.models.toy import TOY_ARCHITECTURES

    if config.arch not in TOY_ARCHITECTURES:
        raise ConfigError(f"Unknown toy architecture {config.arch!r}; valid: {', '.join(TOY_ARCHITECTURES)}.")
    return TOY_ARCHITECTURES[config.arch][1]


def _rendered(source: ShapesSource) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a shapes source as one normalised tensor, and their labels."""
    from benchmark.models.toy import IMAGENET_MEAN, IMAGENET_STD

    rendered = [source.render(i) for i in range(source.n_shapes)]
    pixels = torch.from_numpy(np.stack([p for p, _ in rendered])).permute(0, 3, 1, 2).float() / 255.0
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    labels = torch.tensor([label for _, label in rendered], dtype=torch.long)
    if int(labels.max()) >= N_CLASSES:
        raise ConfigError(f"Rendered label {int(labels.max())} exceeds the {N_CLASSES} classes.")
    return (pixels - mean) / std, labels


@torch.no_grad()
def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    predictions = torch.cat([model(part).argmax(dim=1) for part in x.split(200)])
    return float((predictions == y).float().mean())


def _save(model: torch.nn.Module, config: ToyTrainingConfig, path: Path, epoch: int, accuracy: float) -> ToyCheckpoint:
    metadata = {
        "arch": f"toy:{config.arch}",
        "recipe_sha256": config.recipe_hash(),
        "recipe": json.dumps({k: v for k, v in asdict(config).items() if k != "save_epochs"}, sort_keys=True),
        "seed": str(config.seed),
        "epoch": str(epoch),
        "trained": "true" if epoch > 0 else "false (initial weights)",
        "test_accuracy": f"{accuracy:.4f}",
        "data": f"shapes render v{RENDER_VERSION}, train split {config.n_train} images, test split {config.n_test}",
    }
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # one metadata key holding sorted JSON: safetensors writes a multi-key metadata map in a varying order
    save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    tmp.replace(path)
    return ToyCheckpoint(path, epoch, round(accuracy, 4))  # as stored in the metadata


def _cached(config: ToyTrainingConfig, path: Path, epoch: int) -> ToyCheckpoint | None:
    if not path.is_file():
        return None
    try:
        metadata = read_checkpoint_metadata(path)
    except (OSError, safetensors.SafetensorError):
        return None  # an unreadable cache entry is retrained and overwritten
    if metadata.get("recipe_sha256") != config.recipe_hash() or metadata.get("epoch") != str(epoch):
        return None
    return ToyCheckpoint(path, epoch, float(metadata.get("test_accuracy", "nan")))

"""Index of the images humans saw: (model, layer, channel, mode, batch) -> reference and query image paths."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from benchmark.api.errors import DataValidationError, SourceUnavailableError
from benchmark.data.layers import same_layer_key

NATURAL_MAP = Path("image_data") / "imagenet_exemplars_file_map.json"
OPTIMIZED_MAP = Path("image_data") / "optimized_file_map.json"
# Folder standing in for ImageNet-2012 train inside a simulated release; a real release needs the user's copy.
BUNDLED_IMAGENET = "imagenet_train"
IMAGENET_ENV = "IMIBENCH_IMAGENET_TRAIN"


@dataclass(frozen=True)
class TaskStimuli:
    """The images of one 2-AFC task (one batch of one unit): 9 + 9 references and the two queries."""

    model: str
    layer: str
    channel: int
    mode: str
    batch: int
    max_references: tuple[Path, ...]  # index 0..K-1; the last is the most extreme bin
    min_references: tuple[Path, ...]
    max_query: Path
    min_query: Path

    def all_paths(self) -> list[Path]:
        """Every image of the task: max references, min references, max query, min query."""
        return [*self.max_references, *self.min_references, self.max_query, self.min_query]


class StimulusIndex:
    """Resolves the release's file maps to image paths on disk."""

    def __init__(
        self,
        natural_map: dict,
        imagenet_root: Path,
        *,
        optimized_map: dict | None = None,
        optimized_root: Path | None = None,
    ) -> None:
        self.natural_map = natural_map
        self.imagenet_root = Path(imagenet_root)
        self.optimized_map = optimized_map
        self.optimized_root = optimized_root

    @classmethod
    def from_release(cls, release_root: str | Path, *, imagenet_root: str | Path | None = None) -> StimulusIndex:
        """Build the index from a release folder; natural images resolve under `imagenet_root` (ImageNet train)."""
        root = Path(release_root)
        natural_file = root / NATURAL_MAP
        if not natural_file.is_file():
            raise SourceUnavailableError(
                f"Stimulus file map not found: expected {natural_file}. Point --release at the folder that holds "
                f"{NATURAL_MAP} (the extracted IMI release)."
            )
        imagenet = _resolve_imagenet_root(root, imagenet_root)
        optimized_file = root / OPTIMIZED_MAP
        optimized = json.loads(optimized_file.read_text()) if optimized_file.is_file() else None
        return cls(json.loads(natural_file.read_text()), imagenet, optimized_map=optimized, optimized_root=root)

    def models(self) -> list[str]:
        """Models with stimuli in the natural file map."""
        return sorted(self.natural_map)

    def task(self, model: str, layer: str, channel: int, batch: int, mode: str = "natural") -> TaskStimuli:
        """Image paths of one task; references come from the optimized map in optimized mode."""
        natural = self._batch_entry(self.natural_map, "natural", model, layer, channel, batch)
        n_refs = sum(1 for name in natural if name.startswith("max_")) - 1  # the last index is the query
        queries = (self._natural_path(natural, "max", n_refs), self._natural_path(natural, "min", n_refs))
        if mode == "natural":
            refs = {s: tuple(self._natural_path(natural, s, i) for i in range(n_refs)) for s in ("max", "min")}
        elif mode == "optimized":
            if self.optimized_map is None:
                raise SourceUnavailableError(
                    f"Optimized (feature-visualisation) stimuli are not in this release: expected {OPTIMIZED_MAP} "
                    "under the release folder. Analyse mode 'natural' only, or add the feature visualisations."
                )
            entry = self._batch_entry(self.optimized_map, "optimized", model, layer, channel, batch)
            assert self.optimized_root is not None
            refs = {
                s: tuple(self.optimized_root / entry[f"{s}_{i}.png"] for i in range(n_refs)) for s in ("max", "min")
            }
        else:
            raise DataValidationError(f"Unknown mode {mode!r}; stimuli exist for 'natural' and 'optimized'.")
        return TaskStimuli(model, layer, int(channel), mode, int(batch), refs["max"], refs["min"], *queries)

    def unit_tasks(self, model: str, layer: str, channel: int, mode: str = "natural") -> list[TaskStimuli]:
        """All tasks (batches) of a unit, ordered by batch."""
        batches = self._unit_entry(self.natural_map, "natural", model, layer, channel)
        numbers = sorted(int(name.removeprefix("batch_")) for name in batches)
        return [self.task(model, layer, channel, b, mode) for b in numbers]

    def tasks_for_trials(self, trials: pd.DataFrame) -> pd.DataFrame:
        """One row per distinct (model, layer, channel, mode, batch) of main trials, with its TaskStimuli."""
        main = trials[~trials["is_demo"].fillna(False) & ~trials["catch_trial"].fillna(False)]
        keys = main[["model", "layer", "channel", "mode", "batch"]].drop_duplicates().reset_index(drop=True)
        keys["stimuli"] = [
            self.task(r.model, r.layer, int(r.channel), int(r.batch), r.mode) for r in keys.itertuples(index=False)
        ]
        return keys

    def missing_files(self, tasks: list[TaskStimuli]) -> list[Path]:
        """Paths referenced by `tasks` that do not exist on disk."""
        return sorted({p for t in tasks for p in t.all_paths() if not p.is_file()})

    def _natural_path(self, entry: dict, side: str, index: int) -> Path:
        return self.imagenet_root / entry[f"{side}_{index}.png"]

    def _unit_entry(self, file_map: dict, kind: str, model: str, layer: str, channel: int) -> dict:
        if model not in file_map:
            raise DataValidationError(_unknown(f"{kind} stimuli for model", model, file_map))
        key = f"{layer}/channel_{int(channel)}"
        units = file_map[model]
        if key not in units:
            key = self._respelled_key(units, layer, int(channel)) or key
        if key not in units:
            raise DataValidationError(_unknown(f"{kind} stimuli of {model} for unit", key, units))
        return units[key]

    @staticmethod
    def _respelled_key(units: dict, layer: str, channel: int) -> str | None:
        """The file map's key of this unit when its layer is spelled with '_' where the responses use '.' (or back)."""
        suffix = f"/channel_{channel}"
        layers = [k[: -len(suffix)] for k in units if k.endswith(suffix)]
        match = same_layer_key(layer, layers)
        return f"{match}{suffix}" if match is not None else None

    def _batch_entry(self, file_map: dict, kind: str, model: str, layer: str, channel: int, batch: int) -> dict:
        batches = self._unit_entry(file_map, kind, model, layer, channel)
        key = f"batch_{int(batch)}"
        if key not in batches:
            raise DataValidationError(_unknown(f"{kind} stimuli of {model} {layer}/{channel} for", key, batches))
        return batches[key]

    def __iter__(self) -> Iterator[tuple[str, str, int]]:
        for model, units in self.natural_map.items():
            for key in units:
                layer, _, channel = key.rpartition("/channel_")
                yield model, layer, int(channel)


def _unknown(what: str, name: str, options: dict) -> str:
    close = difflib.get_close_matches(name, list(options), n=3)
    hint = f" Did you mean {close}?" if close else ""
    listed = sorted(options)[:10]
    return f"No {what} {name!r}.{hint} Available ({len(options)}): {listed}{' ...' if len(options) > 10 else ''}."


def _resolve_imagenet_root(release_root: Path, imagenet_root: str | Path | None) -> Path:
    candidate = imagenet_root or os.environ.get(IMAGENET_ENV)
    if candidate is None and (release_root / BUNDLED_IMAGENET).is_dir():
        return release_root / BUNDLED_IMAGENET
    if candidate is None:
        raise SourceUnavailableError(
            "Natural stimuli are rebuilt from a local ImageNet-2012 training folder, which was not given. "
            f"Pass --imagenet-root PATH/to/ILSVRC2012/train (or set {IMAGENET_ENV})."
        )
    path = Path(candidate)
    if not path.is_dir():
        raise SourceUnavailableError(
            f"ImageNet training folder not found: {path}. Pass --imagenet-root (or {IMAGENET_ENV}) pointing at the "
            "folder that holds the synset subfolders (n01440764/ ...)."
        )
    return path


def load_stimulus(path: str | Path, *, resize: int | None = 256, crop: int | None = 224) -> Image.Image:
    """Load an image as the study showed it: RGB, shorter side resized to `resize`, centre crop `crop` (None skips)."""
    from torchvision import transforms  # deferred: torch is heavy and only needed once images are loaded

    path = Path(path)
    if not path.is_file():
        raise SourceUnavailableError(f"Stimulus image not found: {path}.")
    with Image.open(path) as img:
        img = img.convert("RGB")
    if resize is not None:
        img = transforms.Resize(resize, interpolation=transforms.InterpolationMode.BILINEAR)(img)
    if crop is not None:
        img = transforms.CenterCrop(crop)(img)
    return img

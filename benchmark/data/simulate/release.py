"""Write a simulated release to disk (responses, stimuli, file maps, planted truth), and read its units back.

`SimulatedActivationMaps` recomputes each unit's activation maps from the concept stored in simulation/truth.csv,
for proxies that need activation maps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from benchmark.api.errors import DataValidationError
from benchmark.api.types import HumanDataOrigin
from benchmark.data.simulate.config import CONCEPT_COLUMNS, SIDES, SimulationConfig
from benchmark.data.simulate.images import UnitConcept, UnitImages, _unit_images, concept_activation_maps
from benchmark.data.simulate.observer import SIMULATOR_VERSION, _simulate, realised_correlation

# ---------------------------------------------------------------------------------------------------- writing


def _save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array, mode="RGB").save(path, format="PNG", compress_level=1)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _atomic_write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _write_unit(
    unit: pd.Series, images: UnitImages, root: Path, config: SimulationConfig
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Write one unit's PNGs; return its natural and optimized file-map entries (batch -> name -> path)."""
    stem = f"{unit['model']}_{unit['layer']}_{unit['channel']}"
    synset = f"n9{int(unit['unit_id']):07d}"
    (root / "imagenet_train" / synset).mkdir(parents=True, exist_ok=True)
    write_optimized = "optimized" in config.modes
    if write_optimized:
        (root / "optimized_images" / unit["model"]).mkdir(parents=True, exist_ok=True)
    natural_map: dict[str, dict[str, str]] = {}
    optimized_map: dict[str, dict[str, str]] = {}
    for b in range(config.n_batches):
        natural_map[f"batch_{b}"] = nat = {}
        for side_index, side in enumerate(SIDES):
            for i in range(config.n_references + 1):
                relative = f"{synset}/{stem}_b{b}_{side}_{i}.png"
                _save_png(images.natural[b, side_index, i], root / "imagenet_train" / relative)
                nat[f"{side}_{i}.png"] = relative
        if not write_optimized:
            continue
        optimized_map[f"batch_{b}"] = opt = {}
        for side_index, side in enumerate(SIDES):
            for i in range(config.n_references):
                relative = f"optimized_images/{unit['model']}/{stem}_b{b}_{side}_{i}.png"
                _save_png(images.optimized[b, side_index, i], root / relative)
                opt[f"{side}_{i}.png"] = relative
    return natural_map, optimized_map


def write_release(
    out_dir: str | Path, config: SimulationConfig = SimulationConfig(), *, progress: bool = False
) -> Path:
    """Write a simulated release (responses, stimuli, file maps, planted truth) under `out_dir`; return it."""
    root = Path(out_dir)
    for sub in ("human_responses", "image_data", "imagenet_train", "simulation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    units, release = _simulate(config)
    responses = release.responses

    natural_map: dict[str, dict[str, dict]] = {m: {} for m in config.models}
    optimized_map: dict[str, dict[str, dict]] = {m: {} for m in config.models}
    rendered = _unit_images(units, config)
    for unit, images in tqdm(rendered, total=len(units), desc="simulated stimuli", unit="unit", disable=not progress):
        key = f"{unit['layer']}/channel_{unit['channel']}"
        natural_map[unit["model"]][key], optimized_map[unit["model"]][key] = _write_unit(unit, images, root, config)

    _atomic_write_text(root / "image_data" / "imagenet_exemplars_file_map.json", json.dumps(natural_map, indent=1))
    if "optimized" in config.modes:
        _atomic_write_text(root / "image_data" / "optimized_file_map.json", json.dumps(optimized_map, indent=1))
    passed = responses["passed_checks"].to_numpy(dtype=bool)
    _atomic_write_csv(responses[passed], root / "human_responses" / "responses_main.csv")
    _atomic_write_csv(responses[~passed], root / "human_responses" / "responses_lower_quality.csv")
    _atomic_write_csv(responses, root / "human_responses" / "responses_all.csv")
    _atomic_write_csv(release.truth, root / "simulation" / "truth.csv")
    _atomic_write_text(root / "simulation" / "config.json", config.model_dump_json(indent=2))
    summary = {"simulator": "imi-bench planted observer", "version": SIMULATOR_VERSION, "seed": config.seed,
               "modes": realised_correlation(responses, release.truth)}
    _atomic_write_text(root / SIMULATION_SUMMARY, json.dumps(summary, indent=1))
    return root


SIMULATION_SUMMARY = Path("simulation") / "summary.json"


def simulation_origin(release_root: str | Path, source: str | None = None) -> HumanDataOrigin | None:
    """HumanDataOrigin "simulated" (seed, simulator version) for a release written by write_release; None otherwise.

    The simulator's marker is simulation/config.json (every release it writes has one).
    """
    root = Path(release_root)
    config_file = root / "simulation" / "config.json"
    if not config_file.is_file():
        return None
    try:
        seed = json.loads(config_file.read_text(encoding="utf-8")).get("seed")
    except (json.JSONDecodeError, OSError, AttributeError):
        seed = None
    version = SIMULATOR_VERSION
    summary_file = root / SIMULATION_SUMMARY
    if summary_file.is_file():
        try:
            version = str(json.loads(summary_file.read_text(encoding="utf-8")).get("version", version))
        except (json.JSONDecodeError, OSError, AttributeError):
            pass
    return HumanDataOrigin(kind="simulated", source=str(source or root), revision=None,
                           simulator={"seed": seed if isinstance(seed, int) else None, "version": version})


# ---------------------------------------------------------------------------------------------------- reading


class SimulatedActivationMaps:
    """Activation maps of a simulated release's units, computed from each unit's planted concept (truth.csv).

    Implements the ActivationMapSource protocol of benchmark.proxies.units: call with (model, layer, channel,
    paths) to get {str(path): (H, W) map} on the images as stored (no resize).
    """

    def __init__(self, release_root: str | Path) -> None:
        self.release_root = Path(release_root)
        self._concepts = _read_concepts(self.release_root / "simulation" / "truth.csv")

    def concept(self, model: str, layer: str, channel: int) -> UnitConcept:
        """The planted concept of one unit."""
        key = (str(model), str(layer), int(channel))
        if key not in self._concepts:
            known = sorted(self._concepts)[:5]
            raise DataValidationError(
                f"unit {key} is not in the simulated release {self.release_root}; known units include {known}"
            )
        return self._concepts[key]

    def __call__(self, model: str, layer: str, channel: int, paths: Iterable[str | Path]) -> dict[str, np.ndarray]:
        """{str(path): activation map} of one unit on the images at `paths`."""
        concept = self.concept(model, layer, channel)
        by_size: dict[tuple[int, ...], dict[str, np.ndarray]] = {}
        for path in paths:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"))
            by_size.setdefault(array.shape, {})[str(path)] = array
        maps: dict[str, np.ndarray] = {}
        for images in by_size.values():  # one batched filter per image size
            maps.update(zip(images, concept_activation_maps(np.stack(list(images.values())), concept)))
        return maps


def _read_concepts(truth_file: Path) -> dict[tuple[str, str, int], UnitConcept]:
    if not truth_file.is_file():
        raise DataValidationError(
            f"planted truth not found: expected {truth_file}; pass the root of a release written by write_release"
        )
    truth = pd.read_csv(truth_file)
    missing = [c for c in ("model", "layer", "channel", *CONCEPT_COLUMNS) if c not in truth.columns]
    if missing:
        raise DataValidationError(
            f"{truth_file} lacks the concept column(s) {missing} (written by an older simulator); "
            "rewrite the release with benchmark.data.simulate.write_release"
        )
    units = truth.drop_duplicates(["model", "layer", "channel"])
    return {
        (str(r.model), str(r.layer), int(r.channel)): UnitConcept(
            float(r.hue), float(r.orientation), float(r.frequency), int(r.shape)
        )
        for r in units.itertuples(index=False)
    }

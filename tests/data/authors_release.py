"""Write a small release in the shape the IMI authors' own code writes (reference/imi-release.md), for tests.

Unlike `benchmark.data.simulate` (tidy tables from a planted observer), this follows the authors' quirks:

- demo rows come first and carry no trial structure (`model`, `layer`, `channel`, `mode`, `batch` all empty);
- booleans are the strings "True"/"False"; `channel` and `batch` are floats (NaN where empty);
- no `participant_id`: a participant is (`task_id`, `response_index`), and several responses share a task;
- repeat workers (`multi_participation` True, checks passed) and failed participants sit in the lower-quality file,
  `responses_all` holds both; catch rows have model `catch/manual`, mode `catch_trial`, batch -1;
- layer names joined with `_` (`layer3_0_conv2`, CLIP: `visual_layer3_0_conv2`); hard-query variants
  (`*_hard85`, `*_hard95`) share their base model's units;
- pandas pickles beside the csv files under the notebooks' name (`responses_main.pd.pkl`);
- the natural file map points into an ImageNet-train folder outside the release; the optimized map is optional.

Each unit's number of correct main responses is planted exactly, so per-unit and per-model accuracies are known.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

BASE_MODELS: dict[str, tuple[str, ...]] = {
    "googlenet": ("inception3a_branch1_conv", "inception4c_branch2_1_conv"),
    "resnet50": ("layer2_1_conv2", "layer3_0_conv2"),
    "clip-resnet50": ("visual_layer2_1_conv2", "visual_layer3_0_conv2"),
}
HARD_VARIANTS: dict[str, str] = {"resnet50_hard85": "resnet50", "clip-resnet50_hard95": "clip-resnet50"}
N_DEMO, N_CATCH = 2, 2
SIDES = ("max", "min")
N_REFERENCES = 9


@dataclass(frozen=True)
class AuthorsRelease:
    """Where the release was written and what was planted."""

    root: Path  # the release folder (human_responses/, image_data/)
    imagenet_root: Path  # the ImageNet-train stand-in the natural file map points into
    units: pd.DataFrame  # planted per-unit accuracy of the main responses: model, layer, channel, mode, accuracy
    models: pd.DataFrame  # planted per-model mean: model, mode, accuracy, n_units


def write_authors_release(
    base: Path,
    *,
    optimized: bool = False,
    hard_in_file_map: bool = True,
    pickles: bool = True,
    csv: bool = True,
    units_per_layer: int = 3,
    responses_per_unit: int = 10,
    n_batches: int = 3,
    image_size: int = 16,
    seed: int = 0,
) -> AuthorsRelease:
    """Write base/release (responses, file maps) and base/ILSVRC2012/train (images) in the authors' shape."""
    rng = np.random.default_rng(seed)
    root, imagenet = Path(base) / "release", Path(base) / "ILSVRC2012" / "train"
    (root / "human_responses").mkdir(parents=True, exist_ok=True)
    (root / "image_data").mkdir(parents=True, exist_ok=True)
    modes = ("natural", "optimized") if optimized else ("natural",)
    models = {**{m: m for m in BASE_MODELS}, **HARD_VARIANTS}  # model -> base model
    planted = _plant(models, modes, units_per_layer, responses_per_unit, rng)
    main, lower = _responses(planted, responses_per_unit, n_batches, rng)
    _write_tables(root / "human_responses", main, lower, pickles=pickles, csv=csv)
    file_models = [m for m in models if hard_in_file_map or m not in HARD_VARIANTS]
    natural_map = _natural_map(planted, file_models, n_batches, imagenet, image_size, rng)
    (root / "image_data" / "imagenet_exemplars_file_map.json").write_text(json.dumps(natural_map))
    if optimized:
        optimized_map = _optimized_map(planted, file_models, n_batches, root, image_size, rng)
        (root / "image_data" / "optimized_file_map.json").write_text(json.dumps(optimized_map))
    per_model = (planted.groupby(["model", "mode"], sort=False)
                 .agg(accuracy=("accuracy", "mean"), n_units=("accuracy", "size")).reset_index())
    return AuthorsRelease(root, imagenet, planted[["model", "layer", "channel", "mode", "accuracy"]], per_model)


def _plant(models: dict[str, str], modes: tuple[str, ...], per_layer: int, n: int,
           rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for model, base in models.items():
        for layer in BASE_MODELS[base]:
            channels = sorted(rng.choice(256, size=per_layer, replace=False).tolist())
            for channel in channels:
                for mode in modes:
                    k = int(rng.integers(n // 2, n + 1))
                    rows.append({"model": model, "base_model": base, "layer": layer, "channel": channel,
                                 "mode": mode, "n_correct": k, "accuracy": k / n})
    planted = pd.DataFrame(rows)
    # Hard variants share the units (layer, channel) of their base model, as in the release.
    for variant, base in HARD_VARIANTS.items():
        base_units = planted.loc[planted["model"] == base, ["layer", "channel"]].to_numpy()
        planted.loc[planted["model"] == variant, ["layer", "channel"]] = base_units
    planted["channel"] = planted["channel"].astype(int)
    return planted


def _responses(planted: pd.DataFrame, n: int, n_batches: int,
               rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Main and lower-quality tables, each with its demo rows first."""
    main_demo, main_rest, low_demo, low_rest = [], [], [], []
    task_number = 0
    for (model, mode), units in planted.groupby(["model", "mode"], sort=False):
        # Responses h < n_correct of a unit are correct, in a random order per unit.
        order = {i: rng.permutation(n) for i in units.index}
        for h in range(n):
            task_number += 1
            task_id = f"3X{task_number:05d}"
            trials = [(u, bool(order[i][h] < u.n_correct)) for i, u in units.iterrows()]
            demo, rest = _hit(task_id, task_number, 0, mode, trials, h % n_batches, passed=True, repeat=False)
            main_demo += demo
            main_rest += rest
            if h == 0:  # a participant who failed the checks redid this HIT (random answers)
                noisy = [(u, bool(rng.random() < 0.5)) for u, _ in trials]
                demo, rest = _hit(task_id, task_number, 1, mode, noisy, h % n_batches, passed=False, repeat=False)
                low_demo += demo
                low_rest += rest
            if h == 1:  # a repeat worker who passed the checks: every answer wrong, moved out of main
                wrong = [(u, False) for u, _ in trials]
                demo, rest = _hit(task_id, task_number, 2, mode, wrong, h % n_batches, passed=True, repeat=True)
                low_demo += demo
                low_rest += rest
    return pd.DataFrame(main_demo + main_rest), pd.DataFrame(low_demo + low_rest)


def _hit(task_id: str, task_number: int, response_index: int, mode: str, trials: list, batch: int, *,
         passed: bool, repeat: bool) -> tuple[list[dict], list[dict]]:
    """One response to a HIT: its demo rows and its main + catch rows."""
    common = {"task_id": task_id, "task_number": task_number, "response_index": response_index,
              "passed_checks": str(passed), "multi_participation": str(repeat), "trial_type": "2afc"}
    empty = {"model": None, "layer": None, "channel": np.nan, "mode": None, "batch": np.nan}
    demo = [{**empty, **common, **_answer(i, True), "catch_trial": "False", "is_demo": "True"} for i in range(N_DEMO)]
    rest = []
    position = N_DEMO
    for unit, correct in trials:
        rest.append({"model": unit.model, "layer": unit.layer, "channel": float(unit.channel), "mode": mode,
                     "batch": float(batch), **common, **_answer(position, correct), "catch_trial": "False",
                     "is_demo": "False"})
        position += 1
    for _ in range(N_CATCH):
        rest.append({"model": "catch/manual", "layer": None, "channel": np.nan, "mode": "catch_trial",
                     "batch": -1.0, **common, **_answer(position, True), "catch_trial": "True", "is_demo": "False"})
        position += 1
    return demo, rest


def _answer(position: int, correct: bool) -> dict:
    switched = position % 2 == 1
    confidence = 1 + position % 3
    right = correct != switched  # the max query is on the right unless switched
    return {"trial_index": position, "corrected_trial_index": position, "rt": 1600.0 + 37 * position,
            "correct": str(correct), "choice": "b" if correct else "a", "switched_queries": str(switched),
            "confidence": confidence, "button_pressed": (2 + confidence) if right else (3 - confidence),
            "time_elapsed": 5000 + 4000 * position, "internal_node_id": f"0.0-{position}.0"}


def _write_tables(folder: Path, main: pd.DataFrame, lower: pd.DataFrame, *, pickles: bool, csv: bool) -> None:
    demo_first = pd.concat([main[main["is_demo"] == "True"], lower[lower["is_demo"] == "True"],
                            main[main["is_demo"] != "True"], lower[lower["is_demo"] != "True"]], ignore_index=True)
    for name, table in (("main", main), ("lower_quality", lower), ("all", demo_first)):
        if csv:
            table.to_csv(folder / f"responses_{name}.csv", index=False)
        if pickles:
            table.to_pickle(folder / f"responses_{name}.pd.pkl")


def _save(path: Path, size: int, rng: np.random.Generator, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB").save(path, format=fmt)


def _natural_map(planted: pd.DataFrame, models: list[str], n_batches: int, imagenet: Path, size: int,
                 rng: np.random.Generator) -> dict:
    file_map: dict = {}
    units = planted.drop_duplicates(["model", "layer", "channel"])
    for unit in units[units["model"].isin(models)].itertuples(index=False):
        synset = f"n0{zlib.crc32(f'{unit.base_model}/{unit.layer}'.encode()) % 10**7:07d}"
        entry = file_map.setdefault(unit.model, {})[f"{unit.layer}/channel_{unit.channel}"] = {}
        for b in range(n_batches):
            names = {}
            for side in SIDES:
                for i in range(N_REFERENCES + 1):
                    owner = unit.model if i == N_REFERENCES else unit.base_model  # variants share references
                    relative = f"{synset}/{synset}_{owner}_{unit.channel}_{b}_{side}_{i}.JPEG"
                    if not (imagenet / relative).is_file():
                        _save(imagenet / relative, size, rng, "JPEG")
                    names[f"{side}_{i}.png"] = relative
            entry[f"batch_{b}"] = names
    return file_map


def _optimized_map(planted: pd.DataFrame, models: list[str], n_batches: int, root: Path, size: int,
                   rng: np.random.Generator) -> dict:
    file_map: dict = {}
    units = planted.drop_duplicates(["model", "layer", "channel"])
    for unit in units[units["model"].isin(models)].itertuples(index=False):
        entry = file_map.setdefault(unit.model, {})[f"{unit.layer}/channel_{unit.channel}"] = {}
        for b in range(n_batches):
            names = {}
            for side in SIDES:
                for i in range(N_REFERENCES):
                    relative = f"optimized_images/{unit.model}/{unit.layer}_{unit.channel}_{b}_{side}_{i}.png"
                    _save(root / relative, size, rng, "PNG")
                    names[f"{side}_{i}.png"] = relative
            entry[f"batch_{b}"] = names
    return file_map

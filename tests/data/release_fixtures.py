"""A tiny release-shaped folder (human_responses/*.csv + image_data/*.json) written in code, for loader tests."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd

from tests.data.factory import release_table

N_MAIN = 3  # participants in responses_main
N_LOWER = 2  # participants in responses_lower_quality
FILE_MAP = {"m1": {"layer1/channel_0": {"batch_0": {"max_0.png": "n01440764/a.JPEG", "min_0.png": "n01440764/b.JPEG"}}}}


def responses(n_participants: int, *, first: int = 1, seed: int = 0) -> pd.DataFrame:
    """A release-shaped response table with extra release columns, participants P<first>...; no passed_checks."""
    raw = release_table(n_participants=n_participants, seed=seed).drop(columns=["passed_checks"])
    number = raw["participant_id"].str[1:].astype(int) + first - 1
    raw["participant_id"] = number.map(lambda n: f"P{n:04d}")
    raw["task_id"] = number.map(lambda n: f"task_{n:03d}")
    raw["choice"] = raw["correct"].map({True: "b", False: "a"})
    raw["trial_type"] = "2afc"
    return raw


def write_tiny_release(root: Path, *, image_data: bool = True, pickles: bool = False) -> Path:
    """Write responses_main/_lower_quality/_all (.csv, or .pkl when `pickles`) and the file map under `root`."""
    folder = Path(root) / "human_responses"
    folder.mkdir(parents=True, exist_ok=True)
    main = responses(N_MAIN)
    lower = responses(N_LOWER, first=N_MAIN + 1, seed=1)
    both = pd.concat([main.assign(passed_checks=True), lower.assign(passed_checks=False)], ignore_index=True)
    for name, table in (("main", main), ("lower_quality", lower), ("all", both)):
        if pickles:
            table.to_pickle(folder / f"responses_{name}.pkl")
        else:
            table.to_csv(folder / f"responses_{name}.csv", index=False)
    if image_data:
        (Path(root) / "image_data").mkdir(exist_ok=True)
        (Path(root) / "image_data" / "imagenet_exemplars_file_map.json").write_text(json.dumps(FILE_MAP))
    return Path(root)


def zip_release(root: Path, archive: Path, *, top: str = "imi_release") -> Path:
    """Zip a release folder as the record might ship it: every member under `top`/."""
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file():
                handle.write(path, f"{top}/{path.relative_to(root).as_posix()}")
    return archive

"""Which units have stimuli, and whether every stimulus file is on disk: before a long run, not during it.

`split_available` keeps the units whose model and mode the stimulus index covers and reports the others as
unavailable with the reason (the optimized images, or hard-query variants, may be missing from a copy of the
release). `check_files` lists every missing or unreadable file; `missing_files_error` turns that into the error a
requested computation must stop with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from benchmark.api.errors import ConfigError, SourceUnavailableError
from benchmark.data.stimuli import NATURAL_MAP, OPTIMIZED_MAP, StimulusIndex, TaskStimuli

MAX_LISTED = 5


@dataclass(frozen=True)
class Unavailable:
    """A model or mode left out because its stimuli are not in this copy of the release."""

    model: str | None  # None: every model of the mode
    mode: str
    reason: str
    n_units: int

    def line(self) -> str:
        """One line for the user."""
        what = f"model {self.model} ({self.mode})" if self.model else f"mode {self.mode}"
        return f"{what}: {self.n_units} unit(s) not analysed: {self.reason}"


@dataclass(frozen=True)
class FileCheck:
    """What a stimulus-file check found."""

    n_files: int
    missing: tuple[Path, ...]
    unreadable: tuple[tuple[Path, str], ...]  # (path, why)

    @property
    def ok(self) -> bool:
        """True when every file exists (and, if decoded, opens)."""
        return not self.missing and not self.unreadable


def split_available(
    index: StimulusIndex,
    unit_table: pd.DataFrame,
    *,
    models: tuple[str, ...] | None = None,
    modes: tuple[str, ...] | None = None,
) -> tuple[pd.DataFrame, list[Unavailable]]:
    """The rows of `unit_table` whose stimuli the index has, and what was left out (with the reason).

    A model or mode the user named (`models`, `modes`) that has no stimuli is an error, not a left-out line.
    """
    unavailable: list[Unavailable] = []
    keep = pd.Series(True, index=unit_table.index)
    optimized_rows = unit_table["mode"] == "optimized"
    if index.optimized_map is None and optimized_rows.any():
        unavailable.append(Unavailable(None, "optimized", f"no {OPTIMIZED_MAP.as_posix()} in this release (the "
                                       "feature visualisations are not shipped with every copy)",
                                       int(optimized_rows.sum())))
        keep &= ~optimized_rows
    for (model, mode), rows in unit_table[keep].groupby(["model", "mode"], sort=True):
        file_map = index.natural_map if mode == "natural" else index.optimized_map or {}
        in_natural = model in index.natural_map
        if in_natural and model in file_map:
            continue
        where = NATURAL_MAP if not in_natural else OPTIMIZED_MAP
        unavailable.append(Unavailable(str(model), str(mode), f"model {model!r} is not in {where.as_posix()} "
                                       "(hard-query variants are missing from some copies of the release)",
                                       len(rows)))
        keep &= ~((unit_table["model"] == model) & (unit_table["mode"] == mode))
    _refuse_requested(unavailable, models, modes)
    kept = unit_table[keep].reset_index(drop=True)
    if kept.empty:
        reasons = "; ".join(u.line() for u in unavailable) or "the unit table is empty"
        raise SourceUnavailableError(f"No units have stimuli in this release: {reasons}. Point --source at a "
                                     "release whose image_data/ file maps cover the models you analyse.")
    return kept, unavailable


def _refuse_requested(unavailable: list[Unavailable], models: tuple[str, ...] | None,
                      modes: tuple[str, ...] | None) -> None:
    for item in unavailable:
        if item.model is None and modes is not None and item.mode in modes:
            raise ConfigError(f"--modes {item.mode} was asked for, but {item.line()}. Drop {item.mode!r} from "
                              "--modes, or add its stimuli to the release.")
        if item.model is not None and models is not None and item.model in models:
            raise ConfigError(f"--models {item.model} was asked for, but {item.line()}. Drop it from --models, "
                              "or add its entries to the file map.")


def task_paths(tasks: Iterable[TaskStimuli]) -> list[Path]:
    """Every distinct image path of `tasks`, in first-seen order."""
    return list(dict.fromkeys(p for task in tasks for p in task.all_paths()))


def check_files(paths: Sequence[Path], *, decode: bool = False, progress: bool = False) -> FileCheck:
    """Which of `paths` are missing and (with `decode`) which do not open as images."""
    missing, unreadable = [], []
    for path in tqdm(paths, desc="stimulus files", unit="file", disable=not progress):
        if not path.is_file():
            missing.append(path)
        elif decode:
            try:
                with Image.open(path) as image:
                    image.verify()
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
                unreadable.append((path, f"{type(err).__name__}: {err}"))
    return FileCheck(len(paths), tuple(missing), tuple(unreadable))


def missing_files_error(check: FileCheck, imagenet_root: Path | None) -> SourceUnavailableError:
    """The error for a failed file check: the count, the first missing path, and how to find or fix the rest."""
    problems = []
    if check.missing:
        problems.append(f"{len(check.missing)} of {check.n_files} stimulus file(s) are missing, the first "
                        f"{check.missing[0]}")
    if check.unreadable:
        path, why = check.unreadable[0]
        problems.append(f"{len(check.unreadable)} do not open as images, the first {path} ({why})")
    return SourceUnavailableError(
        "; ".join(problems) + "." + imagenet_hint(imagenet_root)
        + " List them all with `imibench data check-stimuli --source SRC --imagenet-root DIR`."
    )


def imagenet_hint(imagenet_root: Path | None) -> str:
    """A hint when the ImageNet folder looks like the dataset's top folder rather than its train/ folder."""
    if imagenet_root is None:
        return ""
    root = Path(imagenet_root)
    if (root / "train").is_dir() and not any(p.name.startswith("n") and p.is_dir() for p in root.iterdir()):
        return (f" {root} holds train/ but no synset folders: pass --imagenet-root {root / 'train'} (the folder "
                "with n01440764/ ...).")
    return f" Natural stimuli resolve under --imagenet-root {root} (ImageNet-2012 train, synset folders)."


def format_check(check: FileCheck, unavailable: Sequence[Unavailable] = ()) -> str:
    """A report of a file check: counts, then every missing and unreadable file."""
    lines = [(f"Checked {check.n_files} stimulus file(s): {len(check.missing)} missing, "
              f"{len(check.unreadable)} unreadable.")]
    lines += [f"unavailable: {u.line()}" for u in unavailable]
    lines += [f"missing: {p}" for p in check.missing]
    lines += [f"unreadable: {p} ({why})" for p, why in check.unreadable]
    return "\n".join(lines)

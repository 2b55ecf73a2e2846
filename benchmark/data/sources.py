"""Where the IMI human responses come from: a Hub dataset, the Zenodo record, or local files.

`load_trials(spec)` is the one entry point; the spec forms are listed in `SOURCE_FORMS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

from benchmark.api.errors import ConfigError
from benchmark.api.types import HumanDataOrigin

RESPONSE_FILES: tuple[str, ...] = ("main", "lower_quality", "all")
# passed_checks of a file's participants when the file has no passed_checks column (None: the column is required).
PASSED_CHECKS_DEFAULT: dict[str, bool | None] = {"main": True, "lower_quality": False, "all": None}
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".pkl", ".pickle")
PICKLE_SUFFIXES: tuple[str, ...] = (".pkl", ".pickle")
# What `imibench data simulate` writes beside a release it made; its presence marks the data as simulated.
SIMULATION_MARKER = Path("simulation") / "truth.csv"
SIMULATION_CONFIG = Path("simulation") / "config.json"
CACHE_ENV = "IMIBENCH_CACHE"
SOURCE_FORMS: tuple[str, ...] = (
    "hf:OWNER/NAME[@REVISION]  (a Hugging Face Hub dataset, e.g. hf:imi-bench/imi-human-responses)",
    "zenodo  (download Zenodo record 8131197 into the cache)",
    "zenodo:DIR  (files of the Zenodo record already downloaded into DIR, zipped or extracted)",
    "PATH/to/release  (a release folder holding human_responses/)",
    "PATH/to/dataset  (a Hub-style dataset folder, e.g. one written by `imibench data push-to-hub --dry-run`)",
    "PATH/to/file.csv|.parquet  (a single response table; .pkl only with --trust-pickle)",
)


@dataclass(frozen=True)
class LoadedTrials:
    """A canonical trial table with where it came from."""

    trials: pd.DataFrame  # canonical (schema.canonicalize output), all rows, nothing excluded
    source: str  # human-readable description, e.g. "zenodo:/path (responses_main)"
    release_root: Path | None  # folder holding image_data/ when known, else None
    revision: str | None  # hub revision / zenodo record version / sha256 of the local file
    files: dict[str, str]  # file name -> sha256 of every file read
    notes: tuple[str, ...]  # what canonicalize mapped
    origin: HumanDataOrigin | None = None  # real release or simulated; set by the loaders


class SourceSpec(BaseModel):
    """A parsed `--source` value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["hub", "zenodo", "local"]
    spec: str  # the string as the user gave it
    repo_id: str | None = None  # hub: OWNER/NAME or a local dataset folder
    revision: str | None = None  # hub: branch, tag or commit
    path: Path | None = None  # zenodo: DIR (None = download); local: release folder or table file

    @model_validator(mode="after")
    def _fields_match_kind(self) -> SourceSpec:
        if self.kind == "hub" and not self.repo_id:
            raise ValueError("a hub source needs repo_id")
        if self.kind == "local" and self.path is None:
            raise ValueError("a local source needs path")
        return self


def parse_source(spec: str) -> SourceSpec:
    """Parse a source string (see SOURCE_FORMS) into a SourceSpec; raise ConfigError on anything else."""
    text = spec.strip()
    if not text:
        raise _bad_spec(spec, "it is empty")
    if text.startswith("hf:"):
        return _parse_hub(spec, text[3:])
    if text.lower() == "zenodo":
        return SourceSpec(kind="zenodo", spec=spec)
    if text.lower().startswith("zenodo:"):
        return _parse_zenodo_dir(spec, text[len("zenodo:") :])
    return _parse_path(spec, Path(text).expanduser())


def load_trials(
    spec: str | SourceSpec,
    *,
    responses: str = "main",
    cache_dir: Path | None = None,
    progress: bool = True,
    trust_pickle: bool = False,
) -> LoadedTrials:
    """Load one response file of the IMI release from any source as a canonical trial table (nothing excluded).

    Pickled tables are read only with `trust_pickle` (and then through an unpickler that admits pandas/numpy
    data types only); csv and parquet files are preferred wherever both exist.
    """
    check_responses(responses)
    source = parse_source(spec) if isinstance(spec, str) else spec
    if source.kind == "hub":
        from benchmark.data.hub import load_from_hub

        return load_from_hub(
            str(source.repo_id), revision=source.revision, responses=responses, cache_dir=cache_dir, progress=progress
        )
    if source.kind == "zenodo":
        from benchmark.data.zenodo import load_zenodo, load_zenodo_dir

        if source.path is None:
            return load_zenodo(responses=responses, cache_dir=cache_dir, progress=progress, trust_pickle=trust_pickle)
        return load_zenodo_dir(source.path, responses=responses, trust_pickle=trust_pickle)
    from benchmark.data.local import load_release_dir, load_table_file

    path = Path(str(source.path))  # set for every local source (validated)
    if path.is_dir():
        return load_release_dir(path, responses=responses, trust_pickle=trust_pickle)
    return load_table_file(path, trust_pickle=trust_pickle)


def is_simulated_release(root: Path | None) -> bool:
    """Whether `root` is a release written by `imibench data simulate` (it carries simulation/truth.csv)."""
    return root is not None and (Path(root) / SIMULATION_MARKER).is_file()


def simulator_of(root: Path) -> dict[str, str | int | float | None]:
    """The simulator's seed and version recorded in a simulated release's simulation/config.json."""
    import json

    path = Path(root) / SIMULATION_CONFIG
    try:
        config = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    return {"seed": config.get("seed"), "version": config.get("version") or config.get("simulator_version")}


def origin_for(
    source: str, revision: str | None, *, release_root: Path | None = None,
    simulator: dict[str, str | int | float | None] | None = None,
) -> HumanDataOrigin:
    """HumanDataOrigin of loaded data: simulated when marked so (release folder, Hub card, parquet), else real.

    The mark is the simulator's simulation/truth.csv in `release_root`, or `simulator` read from a card or file.
    """
    if simulator is None and is_simulated_release(release_root):
        simulator = simulator_of(Path(str(release_root)))
    if simulator is not None:
        return HumanDataOrigin(kind="simulated", source=source, revision=revision, simulator=simulator)
    return HumanDataOrigin(kind="real", source=source, revision=revision)


def check_responses(responses: str) -> str:
    """Return `responses` if it names a release response file, else raise ConfigError."""
    if responses not in RESPONSE_FILES:
        raise ConfigError(
            f"responses={responses!r} is not a release response file. Valid: {list(RESPONSE_FILES)} "
            "(main = participants who passed every check, lower_quality = the rest, all = both)."
        )
    return responses


def default_cache_dir() -> Path:
    """The project's download cache: $IMIBENCH_CACHE, else ~/.cache/imibench."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "imibench").expanduser()


def release_root_of(folder: Path) -> Path | None:
    """`folder` if it holds image_data/ (where the stimulus index looks), else None."""
    return folder if (folder / "image_data").is_dir() else None


def is_hub_folder(folder: Path) -> bool:
    """Whether `folder` looks like a Hub dataset repository on disk (README.md data card and a data/ folder)."""
    return (folder / "README.md").is_file() and (folder / "data").is_dir()


def _parse_hub(spec: str, rest: str) -> SourceSpec:
    if Path(rest).expanduser().is_dir():  # a dataset repository checked out on disk (may contain '@')
        return SourceSpec(kind="hub", spec=spec, repo_id=str(Path(rest).expanduser()))
    repo_id, at, revision = rest.partition("@")
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or (at and not revision):
        raise _bad_spec(spec, f"{rest!r} is neither OWNER/NAME[@REVISION] nor an existing dataset folder")
    return SourceSpec(kind="hub", spec=spec, repo_id=repo_id, revision=revision or None)


def _parse_zenodo_dir(spec: str, rest: str) -> SourceSpec:
    folder = Path(rest).expanduser()
    if not rest or not folder.is_dir():
        raise _bad_spec(spec, f"zenodo:DIR needs an existing folder; {rest!r} is not one")
    return SourceSpec(kind="zenodo", spec=spec, path=folder)


def _parse_path(spec: str, path: Path) -> SourceSpec:
    if not path.exists():
        raise _bad_spec(spec, f"it has no known prefix and there is no file or folder at {str(path)!r}")
    if path.is_dir():
        if (path / "human_responses").is_dir():
            return SourceSpec(kind="local", spec=spec, path=path)
        if is_hub_folder(path):
            return SourceSpec(kind="hub", spec=spec, repo_id=str(path))
        raise _bad_spec(
            spec,
            f"the folder {str(path)!r} holds neither human_responses/ (a release) nor README.md + data/ "
            f"(a Hub-style dataset folder); it contains {sorted(p.name for p in path.iterdir())[:20]}",
        )
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise _bad_spec(spec, f"the file's suffix {path.suffix!r} is not one of {list(TABLE_SUFFIXES)}")
    return SourceSpec(kind="local", spec=spec, path=path)


def _bad_spec(spec: str, why: str) -> ConfigError:
    forms = "\n  ".join(SOURCE_FORMS)
    return ConfigError(f"Invalid data source {spec!r}: {why}. Valid forms:\n  {forms}")

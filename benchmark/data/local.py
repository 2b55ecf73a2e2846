"""Load the IMI human responses from local files: a release folder or a single table file."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from pyarrow import ArrowInvalid

from benchmark.api.errors import (
    ConfigError,
    DataValidationError,
    SourceUnavailableError,
)
from benchmark.data.safe_pickle import read_pickle_table
from benchmark.data.schema import canonicalize
from benchmark.data.sources import (
    PASSED_CHECKS_DEFAULT,
    PICKLE_SUFFIXES,
    RESPONSE_FILES,
    TABLE_SUFFIXES,
    LoadedTrials,
    check_responses,
    origin_for,
    release_root_of,
)
from benchmark.files import sha256_file

logger = logging.getLogger(__name__)

RESPONSES_DIR = "human_responses"
# Names tried for a response file of a release folder, in order of preference: text and parquet first; pickles
# (the name the authors' notebooks read, `.pd.pkl`, included) only with --trust-pickle.
RELEASE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".pkl", ".pd.pkl", ".pickle")
TRUST_PICKLE_HINT = (
    "Pickles can run code when read, so they are read only with --trust-pickle (and then only pandas/numpy data "
    "types are admitted). Prefer the release's csv files: they hold the same data."
)


def load_release_dir(root: Path, responses: str = "main", *, trust_pickle: bool = False) -> LoadedTrials:
    """Load human_responses/responses_<responses>.csv (or .parquet; a pickle only if trusted) as canonical trials."""
    check_responses(responses)
    root = Path(root)
    path = find_response_file(root, responses, trust_pickle=trust_pickle)
    raw = read_table(path, trust_pickle=trust_pickle)
    label = f"{root} ({response_stem(path)})"
    trials, notes = canonicalize(raw, source=label, passed_checks_default=PASSED_CHECKS_DEFAULT[responses])
    digest = sha256_file(path)
    return LoadedTrials(
        trials=trials,
        source=label,
        release_root=root,
        revision=digest,
        files={path.relative_to(root).as_posix(): digest},
        notes=tuple(notes),
        origin=origin_for(str(root), digest, release_root=root),
    )


def load_table_file(path: Path, *, trust_pickle: bool = False) -> LoadedTrials:
    """Load one response table (.csv, .parquet; .pkl only with `trust_pickle`) as canonical trials.

    A file named responses_main / responses_lower_quality without a passed_checks column gets that file's
    default (passed / failed); any other file needs the column.
    """
    path = Path(path)
    raw = read_table(path, trust_pickle=trust_pickle)
    default = passed_checks_default_for(path)
    trials, notes = canonicalize(raw, source=str(path), passed_checks_default=default)
    digest = sha256_file(path)
    in_release = path.parent.name == RESPONSES_DIR
    release_root = release_root_of(path.parent.parent) if in_release else None
    marked = _parquet_origin(path)  # a table written by push-to-hub carries its origin in its metadata
    simulator = (marked.get("simulator") or {}) if marked.get("kind") == "simulated" else None
    return LoadedTrials(
        trials=trials,
        source=str(path),
        release_root=release_root,
        revision=digest,
        files={path.name: digest},
        notes=tuple(notes),
        origin=origin_for(str(path), digest, release_root=path.parent.parent if in_release else None,
                          simulator=simulator),
    )


def _parquet_origin(path: Path) -> dict:
    if path.suffix.lower() != ".parquet":
        return {}
    from benchmark.data.push import parquet_origin

    return parquet_origin(path)


def find_response_file(root: Path, responses: str, *, trust_pickle: bool = False) -> Path:
    """The path of responses_<responses> in root/human_responses/: csv, else parquet, else (trusted) a pickle."""
    folder = Path(root) / RESPONSES_DIR
    stem = f"responses_{check_responses(responses)}"
    present = [folder / f"{stem}{suffix}" for suffix in RELEASE_SUFFIXES if (folder / f"{stem}{suffix}").is_file()]
    readable = [p for p in present if trust_pickle or not is_pickle(p)]
    if readable:
        return readable[0]
    if present:
        raise ConfigError(
            f"The release folder {root} holds {stem} only as a pickle ({present[0].name}). {TRUST_PICKLE_HINT} "
            f"Put {stem}.csv from the release into {folder}, or pass --trust-pickle if you created this file."
        )
    listing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    where = f"{folder} contains {listing}" if folder.is_dir() else f"{folder} does not exist"
    raise SourceUnavailableError(
        f"No {stem} file in the release folder {root}: expected {folder / (stem + '.csv')} "
        f"(or {', '.join(stem + s for s in RELEASE_SUFFIXES[1:])}); {where}. "
        f"Point --source at the folder that holds human_responses/, or choose --responses from {list(RESPONSE_FILES)}."
    )


def is_pickle(path: Path) -> bool:
    """Whether `path` names a pickle (.pkl, .pd.pkl, .pickle)."""
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def response_stem(path: Path) -> str:
    """A response file's name without its format suffix(es): responses_main.pd.pkl -> responses_main."""
    name = Path(path).name
    for suffix in sorted(RELEASE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def read_table(path: Path, *, trust_pickle: bool = False) -> pd.DataFrame:
    """Read a .csv or .parquet table into a DataFrame; a pickle only with `trust_pickle`, admitting data types only."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ConfigError(
            f"Cannot read {path}: suffix {path.suffix!r} is not a table format. Valid: {list(TABLE_SUFFIXES)}."
        )
    if not path.is_file():
        raise SourceUnavailableError(f"Response table {path} does not exist.")
    if is_pickle(path):
        if not trust_pickle:
            raise ConfigError(
                f"Refused to read {path}: {TRUST_PICKLE_HINT} Pass the csv (or parquet) file, or --trust-pickle "
                "if you created this file."
            )
        logger.warning("Reading the pickle %s (--trust-pickle): only pandas/numpy data types are admitted.", path)
        return read_pickle_table(path)
    try:
        return pd.read_csv(path, low_memory=False) if suffix == ".csv" else pd.read_parquet(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ArrowInvalid, OSError) as err:
        raise DataValidationError(
            f"Cannot read {path} as a {suffix[1:]} table ({type(err).__name__}: {err}). Check that the file is a "
            "complete, uncorrupted export of the release's response table."
        ) from None


def passed_checks_default_for(path: Path) -> bool | None:
    """The passed_checks default implied by a response file's name (responses_main -> True, ...), else None."""
    stem = response_stem(path)
    for name in RESPONSE_FILES:
        if stem == f"responses_{name}":
            return PASSED_CHECKS_DEFAULT[name]
    return None

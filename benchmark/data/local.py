"""Load the IMI human responses from local files: a release folder or a single table file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pyarrow import ArrowInvalid

from benchmark.api.errors import (
    ConfigError,
    DataValidationError,
    SourceUnavailableError,
)
from benchmark.data.schema import canonicalize
from benchmark.data.sources import (
    PASSED_CHECKS_DEFAULT,
    RESPONSE_FILES,
    TABLE_SUFFIXES,
    LoadedTrials,
    check_responses,
    release_root_of,
)
from benchmark.files import sha256_file

RESPONSES_DIR = "human_responses"
# Suffixes tried for a response file of a release folder, in order of preference.
RELEASE_SUFFIXES: tuple[str, ...] = (".csv", ".pkl", ".pickle", ".parquet")


def load_release_dir(root: Path, responses: str = "main") -> LoadedTrials:
    """Load human_responses/responses_<responses>.csv (or .pkl) of a release folder as canonical trials."""
    check_responses(responses)
    root = Path(root)
    path = find_response_file(root, responses)
    raw = read_table(path)
    label = f"{root} ({path.stem})"
    trials, notes = canonicalize(raw, source=label, passed_checks_default=PASSED_CHECKS_DEFAULT[responses])
    digest = sha256_file(path)
    return LoadedTrials(
        trials=trials,
        source=label,
        release_root=root,
        revision=digest,
        files={path.relative_to(root).as_posix(): digest},
        notes=tuple(notes),
    )


def load_table_file(path: Path) -> LoadedTrials:
    """Load one response table (.csv, .parquet or .pkl) as canonical trials.

    A file named responses_main / responses_lower_quality without a passed_checks column gets that file's
    default (passed / failed); any other file needs the column.
    """
    path = Path(path)
    raw = read_table(path)
    default = passed_checks_default_for(path)
    trials, notes = canonicalize(raw, source=str(path), passed_checks_default=default)
    digest = sha256_file(path)
    in_release = path.parent.name == RESPONSES_DIR
    return LoadedTrials(
        trials=trials,
        source=str(path),
        release_root=release_root_of(path.parent.parent) if in_release else None,
        revision=digest,
        files={path.name: digest},
        notes=tuple(notes),
    )


def find_response_file(root: Path, responses: str) -> Path:
    """The path of responses_<responses> in root/human_responses/ (CSV preferred, then pickle, then parquet)."""
    folder = Path(root) / RESPONSES_DIR
    stem = f"responses_{check_responses(responses)}"
    for suffix in RELEASE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    where = f"{folder} contains {present}" if folder.is_dir() else f"{folder} does not exist"
    raise SourceUnavailableError(
        f"No {stem} file in the release folder {root}: expected {folder / (stem + '.csv')} "
        f"(or {', '.join(stem + s for s in RELEASE_SUFFIXES[1:])}); {where}. "
        f"Point --source at the folder that holds human_responses/, or choose --responses from {list(RESPONSE_FILES)}."
    )


def read_table(path: Path) -> pd.DataFrame:
    """Read a .csv, .parquet or .pkl table into a DataFrame (pickles execute code: only load trusted files)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ConfigError(
            f"Cannot read {path}: suffix {path.suffix!r} is not a table format. Valid: {list(TABLE_SUFFIXES)}."
        )
    if not path.is_file():
        raise SourceUnavailableError(f"Response table {path} does not exist.")
    if suffix == ".pkl" or suffix == ".pickle":
        return _read_pickle(path)
    try:
        return pd.read_csv(path, low_memory=False) if suffix == ".csv" else pd.read_parquet(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ArrowInvalid, OSError) as err:
        raise DataValidationError(
            f"Cannot read {path} as a {suffix[1:]} table ({type(err).__name__}: {err}). Check that the file is a "
            "complete, uncorrupted export of the release's response table."
        ) from None


def passed_checks_default_for(path: Path) -> bool | None:
    """The passed_checks default implied by a response file's name (responses_main -> True, ...), else None."""
    stem = Path(path).stem
    for name in RESPONSE_FILES:
        if stem == f"responses_{name}":
            return PASSED_CHECKS_DEFAULT[name]
    return None


def _read_pickle(path: Path) -> pd.DataFrame:
    table = pd.read_pickle(path)
    if not isinstance(table, pd.DataFrame):
        raise DataValidationError(
            f"{path}: the pickle holds a {type(table).__name__}, not a pandas DataFrame of responses."
        )
    return table

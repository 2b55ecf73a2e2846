"""Map a release-shaped response table onto the canonical trial table and validate it."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from benchmark.api.errors import DataValidationError
from benchmark.api.types import ALL_MODES, TRIAL_COLUMNS

# Columns every release file carries (reference/imi-release.md, "Always present").
REQUIRED_RELEASE_COLUMNS: tuple[str, ...] = (
    "model",
    "layer",
    "channel",
    "mode",
    "batch",
    "task_id",
    "correct",
    "confidence",
    "catch_trial",
    "is_demo",
)
# Release columns that can stand for the canonical trial_index, in order of preference. (`response_index` is not
# one: in the authors' tables it tells apart responses to the same task, i.e. participants.)
TRIAL_INDEX_CANDIDATES: tuple[str, ...] = ("trial_index", "corrected_trial_index")
# Release columns kept beside the canonical ones when present: column -> dtype.
OPTIONAL_TRIAL_COLUMNS: dict[str, str] = {"multi_participation": "boolean"}
# The trial structure: may be empty on demo rows (the authors attach it to non-demo rows only).
STRUCTURE_COLUMNS: tuple[str, ...] = ("model", "layer", "channel", "mode", "batch")
MAX_EXAMPLES = 5

# Only these spellings count as booleans; anything else ('yes', 2, 'x') is an error, never a silent True.
_TRUE = {"true", "1", "1.0"}
_FALSE = {"false", "0", "0.0"}


def canonicalize(
    raw: pd.DataFrame,
    *,
    source: str,
    passed_checks_default: bool | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Map release columns onto the canonical trial table, validate it, and return it with notes on what was mapped.

    `passed_checks_default` is used when the table has no `passed_checks` column (e.g. `responses_main.csv`
    holds only participants who passed); without it such a table is an error.
    """
    notes: list[str] = []
    missing = [c for c in REQUIRED_RELEASE_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{source}: missing required column(s) {missing}. Found columns: {sorted(map(str, raw.columns))}. "
            "A release response table needs: " + ", ".join(REQUIRED_RELEASE_COLUMNS) + "."
        )
    df = pd.DataFrame(index=raw.index)
    for col in ("model", "layer", "mode", "task_id"):
        df[col] = _as_string(raw[col])
    df["participant_id"] = _participant_ids(raw, notes)
    df["channel"] = _as_int(raw["channel"], "channel", source)
    df["batch"] = _as_int(raw["batch"], "batch", source)
    df["trial_index"] = _trial_index(raw, source, notes)
    df["correct"] = _as_bool(raw["correct"], "correct", source)
    df["confidence"] = _as_int(raw["confidence"], "confidence", source)
    df["rt_ms"] = _rt_ms(raw, source, notes)
    df["is_demo"] = _as_bool(raw["is_demo"], "is_demo", source)
    df["catch_trial"] = _as_bool(raw["catch_trial"], "catch_trial", source)
    df["passed_checks"] = _passed_checks(raw, source, passed_checks_default, notes)
    optional = {c: t for c, t in OPTIONAL_TRIAL_COLUMNS.items() if c in raw.columns}
    for col in optional:
        df[col] = _as_bool(raw[col], col, source).fillna(False)
    df = df[[*TRIAL_COLUMNS, *optional]].astype({**TRIAL_COLUMNS, **optional}).reset_index(drop=True)
    validate_trials(df, source=source)
    return df, notes


def validate_trials(df: pd.DataFrame, *, source: str = "trial table") -> None:
    """Raise DataValidationError listing every schema violation of a canonical trial table (row numbers 0-based)."""
    missing = [c for c in TRIAL_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(f"{source}: missing canonical column(s) {missing}; found {list(df.columns)}.")
    problems: list[str] = []
    demo = df["is_demo"].fillna(False).astype(bool)
    main = ~demo & ~df["catch_trial"].fillna(False).astype(bool)

    def check(bad: pd.Series, what: str, column: str) -> None:
        bad = bad.fillna(False).astype(bool)
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            values = df[column].iloc[rows[:MAX_EXAMPLES]].tolist()
            problems.append(
                f"column {column!r}: {what} in {len(rows)} row(s), e.g. rows {rows[:MAX_EXAMPLES].tolist()} "
                f"with values {values}"
            )

    for col in ("participant_id", "correct", "is_demo", "catch_trial", "passed_checks"):
        check(df[col].isna(), "missing value", col)
    for col in ("model", "mode"):
        check(~demo & df[col].isna(), "missing value on a non-demo trial (only demo rows may lack it)", col)
    check(~df["mode"].isin(ALL_MODES) & df["mode"].notna(), f"unknown mode (valid: {list(ALL_MODES)})", "mode")
    check(main & df["layer"].isna(), "missing layer on a main trial", "layer")
    check(main & df["channel"].isna(), "missing channel on a main trial", "channel")
    check(main & df["batch"].isna(), "missing batch on a main trial", "batch")
    check(df["channel"] < 0, "negative channel", "channel")
    check(df["batch"] < -1, "batch below -1", "batch")
    check(main & (df["batch"] < 0), "negative batch on a main trial (only catch trials use -1)", "batch")
    check(main & df["confidence"].isna(), "missing confidence on a main trial", "confidence")
    check(~df["confidence"].isin([1, 2, 3]) & df["confidence"].notna(), "confidence outside 1-3", "confidence")
    check(df["rt_ms"] < 0, "negative reaction time", "rt_ms")
    check(main & (df["mode"] == "catch_trial"), "mode 'catch_trial' but catch_trial is false", "mode")
    check(df["trial_index"].isna(), "missing trial index", "trial_index")

    key = ["participant_id", "task_id", "trial_index"]
    dup = df.duplicated(key, keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        problems.append(
            f"duplicate trials (same {', '.join(key)}) in {len(rows)} row(s), e.g. rows {rows[:MAX_EXAMPLES].tolist()}: "
            f"{df.loc[dup, key].head(MAX_EXAMPLES).to_dict('records')}"
        )
    if problems:
        raise DataValidationError(
            f"{source}: {len(problems)} problem(s) found, nothing was dropped: " + "; ".join(problems)
            + ". Fix those rows, or load the release's original response files."
        )


def _as_string(col: pd.Series) -> pd.Series:
    out = col.astype("string").str.strip()
    return out.mask(out == "", pd.NA)


def _bad_values_error(col: pd.Series, bad: np.ndarray, name: str, source: str, expected: str) -> DataValidationError:
    rows = np.flatnonzero(bad)
    values = col.iloc[rows[:MAX_EXAMPLES]].tolist()
    return DataValidationError(
        f"{source}: column {name!r} must hold {expected}; {len(rows)} row(s) do not, "
        f"e.g. rows {rows[:MAX_EXAMPLES].tolist()} with values {values}."
    )


def _as_int(col: pd.Series, name: str, source: str) -> pd.Series:
    text = col.astype("string").str.strip()
    empty = text.isna() | text.isin(["", "nan", "NaN", "None", "<NA>"])
    numeric = pd.to_numeric(text.mask(empty, None), errors="coerce")
    not_int = (numeric.isna() & ~empty) | (numeric.notna() & (numeric != np.round(numeric)))
    if not_int.any():
        raise _bad_values_error(col, not_int.to_numpy(), name, source, "integers (or be empty)")
    return numeric.round().astype("Int64")


def _as_bool(col: pd.Series, name: str, source: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(col):
        return col.astype("boolean")
    text = col.astype("string").str.strip().str.lower()
    empty = text.isna() | (text == "") | (text == "nan") | (text == "<na>")
    is_true, is_false = text.isin(_TRUE), text.isin(_FALSE)
    bad = ~(is_true | is_false | empty)
    if bad.any():
        raise _bad_values_error(col, bad.to_numpy(), name, source, "booleans (true/false, 1/0)")
    out = pd.Series(pd.NA, index=col.index, dtype="boolean")
    out[is_true.fillna(False)] = True
    out[is_false.fillna(False)] = False
    return out


def _participant_ids(raw: pd.DataFrame, notes: list[str]) -> pd.Series:
    if "participant_id" in raw.columns:
        return _as_string(raw["participant_id"])
    task = _as_string(raw["task_id"])
    if "response_index" in raw.columns:
        notes.append("no participant_id column: a participant is one (task_id, response_index) pair")
        response = _as_string(raw["response_index"].astype("string").str.replace(r"\.0$", "", regex=True))
        return "task:" + task + "#" + response.fillna("")
    notes.append("no participant_id column: each task_id (one participation) is taken as one participant")
    return "task:" + task


def _trial_index(raw: pd.DataFrame, source: str, notes: list[str]) -> pd.Series:
    for name in TRIAL_INDEX_CANDIDATES:
        if name in raw.columns:
            if name != "trial_index":
                notes.append(f"no trial_index column: using {name!r}")
            return _as_int(raw[name], name, source)
    raise DataValidationError(
        f"{source}: no trial index column; expected one of {list(TRIAL_INDEX_CANDIDATES)}. "
        f"Found columns: {sorted(map(str, raw.columns))}."
    )


def _rt_ms(raw: pd.DataFrame, source: str, notes: list[str]) -> pd.Series:
    name = "rt_ms" if "rt_ms" in raw.columns else "rt" if "rt" in raw.columns else None
    if name is None:
        notes.append("no rt column: reaction times are missing")
        return pd.Series(np.nan, index=raw.index, dtype="float64")
    values = pd.to_numeric(raw[name].replace({"": None, "null": None}), errors="coerce")
    bad = values.isna() & raw[name].notna() & (raw[name].astype("string").str.strip() != "")
    if bad.any():
        raise _bad_values_error(raw[name], bad.to_numpy(), name, source, "numbers (milliseconds)")
    return values.astype("float64")


def _passed_checks(
    raw: pd.DataFrame, source: str, default: bool | None, notes: list[str]
) -> pd.Series:
    if "passed_checks" in raw.columns:
        return _as_bool(raw["passed_checks"], "passed_checks", source)
    if default is None:
        raise DataValidationError(
            f"{source}: no 'passed_checks' column, and the file is not one whose participants are known "
            "(responses_main = passed, responses_lower_quality = failed). Add the column or load the split files."
        )
    notes.append(f"no passed_checks column: every participant of this file counted as passed={default}")
    return pd.Series(default, index=raw.index, dtype="boolean")


def units_of(df: pd.DataFrame, columns: Iterable[str] = ("model", "layer", "channel", "mode")) -> pd.DataFrame:
    """The distinct units (model, layer, channel, mode) in a trial table, sorted."""
    return df[list(columns)].drop_duplicates().sort_values(list(columns)).reset_index(drop=True)

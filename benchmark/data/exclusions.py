"""The published exclusions: demo trials, catch trials, participants who failed the checks, repeat participants."""

from __future__ import annotations

import pandas as pd

from benchmark.api.types import ExclusionReport


def apply_exclusions(trials: pd.DataFrame, *, keep_repeats: bool = False) -> tuple[pd.DataFrame, ExclusionReport]:
    """Drop demo and catch trials and those of participants who failed the checks or took part twice; count each.

    Repeat participants (`multi_participation`) are dropped as the authors did, unless `keep_repeats`.
    """
    demo = _flag(trials["is_demo"])
    catch = (_flag(trials["catch_trial"]) | _flag(trials["mode"] == "catch_trial")) & ~demo
    failed = ~_flag(trials["passed_checks"]) & ~demo & ~catch
    repeat_flag = _flag(trials["multi_participation"]) if "multi_participation" in trials.columns else demo & False
    repeat = repeat_flag & ~demo & ~catch & ~failed
    dropped = demo | catch | failed | (repeat if not keep_repeats else False)
    kept = trials.loc[~dropped].reset_index(drop=True)
    report = ExclusionReport(
        n_rows_in=len(trials),
        n_demo=int(demo.sum()),
        n_catch=int(catch.sum()),
        n_failed_checks=int(failed.sum()),
        n_repeat=int(repeat.sum()),
        n_repeat_participants=int(trials.loc[repeat, "participant_id"].nunique()),
        repeats_kept=keep_repeats,
        n_rows_out=len(kept),
        n_participants_in=int(trials["participant_id"].nunique()),
        n_participants_out=int(kept["participant_id"].nunique()),
    )
    return kept, report


def _flag(column: pd.Series) -> pd.Series:
    """A nullable boolean column as plain bool, missing = False."""
    return column.fillna(False).astype(bool)

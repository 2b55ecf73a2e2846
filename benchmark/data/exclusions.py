"""The published exclusions: demo trials, catch trials, and participants who failed the checks."""

from __future__ import annotations

import pandas as pd

from benchmark.api.types import ExclusionReport


def apply_exclusions(trials: pd.DataFrame) -> tuple[pd.DataFrame, ExclusionReport]:
    """Drop demo trials, catch trials and trials of participants who failed the checks; count each reason."""
    demo = trials["is_demo"].fillna(False).astype(bool)
    catch = (trials["catch_trial"].fillna(False).astype(bool) | (trials["mode"] == "catch_trial")) & ~demo
    failed = ~trials["passed_checks"].fillna(False).astype(bool) & ~demo & ~catch
    kept = trials.loc[~(demo | catch | failed)].reset_index(drop=True)
    report = ExclusionReport(
        n_rows_in=len(trials),
        n_demo=int(demo.sum()),
        n_catch=int(catch.sum()),
        n_failed_checks=int(failed.sum()),
        n_rows_out=len(kept),
        n_participants_in=int(trials["participant_id"].nunique()),
        n_participants_out=int(kept["participant_id"].nunique()),
    )
    return kept, report

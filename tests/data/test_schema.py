import pandas as pd
import pytest

from benchmark.api.errors import DataValidationError
from benchmark.api.types import TRIAL_COLUMNS
from benchmark.data.schema import canonicalize
from tests.data.factory import release_table


def test_release_table_maps_to_canonical_columns_and_types():
    df, notes = canonicalize(release_table(), source="t.csv")
    assert list(df.columns) == list(TRIAL_COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == TRIAL_COLUMNS
    assert df["rt_ms"].iloc[0] == 2000.0
    assert notes == []


def test_demo_rows_have_empty_channel_and_batch():
    df, _ = canonicalize(release_table(), source="t.csv")
    demo = df[df["is_demo"]]
    assert demo["channel"].isna().all() and demo["batch"].isna().all()


def test_string_booleans_and_extra_columns_are_accepted():
    raw = release_table()
    raw["is_demo"] = raw["is_demo"].map({True: "True", False: "False"})
    raw["correct"] = raw["correct"].astype(int)
    raw["switched_queries"] = "x"
    df, _ = canonicalize(raw, source="t.csv")
    assert df["is_demo"].sum() == 6


def test_missing_column_is_named_with_the_columns_found():
    raw = release_table().drop(columns=["confidence"])
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) \['confidence'\]"):
        canonicalize(raw, source="responses_main.csv")


def test_mistyped_value_names_column_row_and_value():
    raw = release_table()
    raw["channel"] = raw["channel"].astype(object)
    raw.loc[2, "channel"] = "seven"
    with pytest.raises(DataValidationError, match=r"'channel'.*rows \[2\].*'seven'"):
        canonicalize(raw, source="t.csv")


def test_non_boolean_value_is_rejected():
    raw = release_table()
    raw["correct"] = raw["correct"].astype(object)
    raw.loc[1, "correct"] = "maybe"
    with pytest.raises(DataValidationError, match=r"'correct'.*booleans.*rows \[1\]"):
        canonicalize(raw, source="t.csv")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("confidence", 7, "confidence outside 1-3"),
        ("batch", -3, "batch below -1"),
        ("channel", -1, "negative channel"),
        ("rt", -5.0, "negative reaction time"),
    ],
)
def test_out_of_range_values_are_reported_with_rows(column, value, message):
    raw = release_table()
    raw.loc[1, column] = value
    with pytest.raises(DataValidationError, match=message) as info:
        canonicalize(raw, source="t.csv")
    assert "rows [1]" in str(info.value)
    assert "nothing was dropped" in str(info.value)


def test_unknown_mode_lists_valid_modes():
    raw = release_table()
    raw.loc[1, "mode"] = "natrual"
    with pytest.raises(DataValidationError, match=r"unknown mode.*natural.*optimized.*rows \[1\].*natrual"):
        canonicalize(raw, source="t.csv")


def test_duplicate_trials_are_an_error():
    raw = release_table()
    raw = pd.concat([raw, raw.iloc[[3]]], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"duplicate trials.*rows \[3, \d+\]"):
        canonicalize(raw, source="t.csv")


def test_several_problems_are_reported_together():
    raw = release_table()
    raw.loc[1, "confidence"] = 9
    raw.loc[2, "mode"] = "weird"
    with pytest.raises(DataValidationError, match="2 problem"):
        canonicalize(raw, source="t.csv")


def test_missing_passed_checks_uses_file_default_and_says_so():
    raw = release_table().drop(columns=["passed_checks"])
    df, notes = canonicalize(raw, source="responses_main.csv", passed_checks_default=True)
    assert df["passed_checks"].all()
    assert any("passed_checks" in n for n in notes)
    with pytest.raises(DataValidationError, match="passed_checks"):
        canonicalize(raw, source="responses_all.csv")


def test_missing_participant_id_falls_back_to_task_id_with_a_note():
    raw = release_table().drop(columns=["participant_id"])
    df, notes = canonicalize(raw, source="t.csv")
    assert df["participant_id"].nunique() == raw["task_id"].nunique()
    assert any("task_id" in n for n in notes)


def test_trial_index_alternatives_and_absence():
    raw = release_table().rename(columns={"trial_index": "corrected_trial_index"})
    _, notes = canonicalize(raw, source="t.csv")
    assert any("corrected_trial_index" in n for n in notes)
    with pytest.raises(DataValidationError, match="no trial index column"):
        canonicalize(raw.drop(columns=["corrected_trial_index"]), source="t.csv")

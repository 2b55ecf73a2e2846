import pandas as pd
import pytest

from benchmark.api.errors import ConfigError
from benchmark.data.exclusions import apply_exclusions
from benchmark.data.schema import canonicalize
from benchmark.data.selection import base_model_of, paper_order, parse_list, select_trials
from tests.data.factory import release_table


def test_base_model_links_hard_variants():
    assert base_model_of("resnet50_hard95") == "resnet50"
    assert base_model_of("clip-resnet50_hard85") == "clip-resnet50"
    assert base_model_of("googlenet") == "googlenet"


def test_paper_order_puts_unknown_models_last():
    assert paper_order(["zeta", "resnet50", "googlenet", "alpha"]) == ["googlenet", "resnet50", "alpha", "zeta"]


def test_parse_list_and_select_trials():
    assert parse_list("a, b,a", "models") == ("a", "b")
    assert parse_list(None, "models") is None
    with pytest.raises(ConfigError, match="empty item"):
        parse_list("a,,b", "models")
    trials, _ = canonicalize(release_table(), source="t")
    kept, _ = apply_exclusions(trials)
    assert set(select_trials(kept, models=("m2",))["model"]) == {"m2"}
    with pytest.raises(ConfigError, match=r"no responses for \['m3'\].*Models present: \['m1', 'm2'\]"):
        select_trials(kept, models=("m3",))
    with pytest.raises(ConfigError, match="no responses in mode"):
        select_trials(kept, modes=("optimized",))


def test_repeat_participants_are_excluded_by_default_and_counted():
    raw = release_table(n_participants=4)
    raw["multi_participation"] = raw["participant_id"].eq("P0002").map({True: "True", False: "False"})
    trials, _ = canonicalize(raw, source="t")
    kept, report = apply_exclusions(trials)
    assert "P0002" not in set(kept["participant_id"])
    assert report.n_repeat == 3 and report.n_repeat_participants == 1
    assert any("repeat participants (multi_participation): 3 (1 participants)" in line for line in report.lines())
    kept_all, report_all = apply_exclusions(trials, keep_repeats=True)
    assert "P0002" in set(kept_all["participant_id"]) and report_all.repeats_kept
    assert len(kept_all) == len(kept) + 3


def test_demo_rows_may_lack_structure_but_kept_rows_may_not():
    raw = release_table(n_participants=2)
    demo = raw["is_demo"]
    raw.loc[demo, ["model", "mode", "layer"]] = None
    trials, _ = canonicalize(raw, source="t")
    assert trials.loc[trials["is_demo"], "model"].isna().all()
    raw.loc[~demo, "mode"] = pd.Series([None] + [raw.loc[~demo, "mode"].iloc[1]] * (int((~demo).sum()) - 1),
                                       index=raw.index[~demo])
    from benchmark.api.errors import DataValidationError

    with pytest.raises(DataValidationError, match=r"column 'mode': missing value on a non-demo trial .* in 1 row\(s\), e.g. rows \[1\]"):
        canonicalize(raw, source="t")


@pytest.mark.parametrize("value", ["yes", "2", "maybe", "y"])
def test_non_boolean_correct_is_an_error(value):
    from benchmark.api.errors import DataValidationError

    raw = release_table(n_participants=2)
    raw["correct"] = value
    with pytest.raises(DataValidationError, match="'correct' must hold booleans"):
        canonicalize(raw, source="t")


def test_participant_from_task_and_response_index():
    raw = release_table(n_participants=2).drop(columns=["participant_id"])
    raw["task_id"] = "task_1"  # the same HIT answered twice
    raw["response_index"] = [0] * (len(raw) // 2) + [1] * (len(raw) - len(raw) // 2)
    trials, notes = canonicalize(raw, source="t")
    assert set(trials["participant_id"]) == {"task:task_1#0", "task:task_1#1"}
    assert any("(task_id, response_index)" in n for n in notes)

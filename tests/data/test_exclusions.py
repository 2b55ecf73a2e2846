from benchmark.data.exclusions import apply_exclusions
from benchmark.data.schema import canonicalize
from tests.data.factory import release_table


def test_exclusions_drop_demo_catch_and_failed_participants_and_count_them():
    raw = release_table(n_participants=5)
    raw.loc[raw["participant_id"] == "P0002", "passed_checks"] = False
    trials, _ = canonicalize(raw, source="t.csv")
    kept, report = apply_exclusions(trials)
    assert report.n_demo == 5
    assert report.n_catch == 5
    assert report.n_failed_checks == 3  # P0002's three main trials
    assert report.n_rows_out == len(kept) == 4 * 3
    assert report.n_rows_in == report.n_demo + report.n_catch + report.n_failed_checks + report.n_rows_out
    assert report.n_participants_in == 5 and report.n_participants_out == 4
    assert not kept["is_demo"].any() and not kept["catch_trial"].any() and kept["passed_checks"].all()
    assert "P0002" not in set(kept["participant_id"])


def test_mode_catch_trial_counts_as_catch_even_without_flag():
    raw = release_table(n_participants=2, with_catch=False)
    raw.loc[1, ["model", "mode", "batch", "channel", "catch_trial"]] = ["catch/manual", "catch_trial", -1, None, True]
    trials, _ = canonicalize(raw, source="t.csv")
    _, report = apply_exclusions(trials)
    assert report.n_catch == 1


def test_report_lines_mention_every_reason():
    trials, _ = canonicalize(release_table(), source="t.csv")
    text = "\n".join(apply_exclusions(trials)[1].lines())
    for word in ("demo", "catch", "failed the checks", "rows kept"):
        assert word in text

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from benchmark.api.errors import ConfigError, DataValidationError, SourceUnavailableError
from benchmark.api.types import TRIAL_COLUMNS
from benchmark.data.local import load_release_dir, load_table_file, read_table
from benchmark.data.push import build_hub_folder
from tests.data.release_fixtures import N_MAIN, write_tiny_release


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_release_dir_main_defaults_passed_checks_true(tmp_path: Path):
    root = write_tiny_release(tmp_path)
    loaded = load_release_dir(root)
    assert list(loaded.trials.columns) == list(TRIAL_COLUMNS)
    assert loaded.trials["passed_checks"].all()
    assert any("passed_checks" in note for note in loaded.notes)
    csv = root / "human_responses" / "responses_main.csv"
    assert loaded.files == {"human_responses/responses_main.csv": _sha(csv)}
    assert loaded.release_root == root


def test_release_dir_lower_quality_defaults_false_and_all_uses_its_column(tmp_path: Path):
    root = write_tiny_release(tmp_path)
    assert not load_release_dir(root, "lower_quality").trials["passed_checks"].any()
    both = load_release_dir(root, "all").trials
    assert both.groupby("passed_checks")["participant_id"].nunique().to_dict() == {False: 2, True: N_MAIN}


def test_release_dir_reads_pickles_only_when_trusted(tmp_path: Path):
    csv_root = write_tiny_release(tmp_path / "csv")
    pkl_root = write_tiny_release(tmp_path / "pkl", pickles=True)
    with pytest.raises(ConfigError, match=r"only as a pickle.*--trust-pickle.*responses_all\.csv"):
        load_release_dir(pkl_root, "all")
    loaded = load_release_dir(pkl_root, "all", trust_pickle=True)
    assert list(loaded.files) == ["human_responses/responses_all.pkl"]
    pd.testing.assert_frame_equal(loaded.trials, load_release_dir(csv_root, "all").trials)


def test_missing_response_file_lists_what_is_there(tmp_path: Path):
    root = write_tiny_release(tmp_path)
    (root / "human_responses" / "responses_all.csv").unlink()
    with pytest.raises(SourceUnavailableError) as info:
        load_release_dir(root, "all")
    message = str(info.value)
    assert "responses_all.csv" in message and "responses_main.csv" in message and "--responses" in message


def test_missing_human_responses_folder(tmp_path: Path):
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        load_release_dir(tmp_path)


def test_table_file_named_like_a_release_file_gets_its_default(tmp_path: Path):
    root = write_tiny_release(tmp_path)
    loaded = load_table_file(root / "human_responses" / "responses_lower_quality.csv")
    assert not loaded.trials["passed_checks"].any()
    assert loaded.release_root == root  # the file sits in <root>/human_responses/ beside image_data/
    assert loaded.files == {"responses_lower_quality.csv": loaded.revision}


def test_table_file_without_passed_checks_and_unknown_name_fails(tmp_path: Path):
    root = write_tiny_release(tmp_path)
    other = tmp_path / "mine.csv"
    other.write_bytes((root / "human_responses" / "responses_main.csv").read_bytes())
    with pytest.raises(DataValidationError, match="passed_checks"):
        load_table_file(other)


def test_table_file_bad_suffix(tmp_path: Path):
    path = tmp_path / "responses.xlsx"
    path.write_text("x")
    with pytest.raises(ConfigError, match=r"\.xlsx"):
        load_table_file(path)


def test_pickle_that_is_not_a_dataframe(tmp_path: Path):
    path = tmp_path / "responses.pkl"
    pd.to_pickle({"not": "a table"}, path)
    with pytest.raises(DataValidationError, match="dict"):
        read_table(path, trust_pickle=True)


def test_parquet_written_by_push_round_trips(tmp_path: Path):
    root = write_tiny_release(tmp_path / "release")
    folder = build_hub_folder(root, tmp_path / "hub")
    for name in ("main", "lower_quality", "all"):
        loaded = load_table_file(folder / "data" / f"{name}.parquet")
        pd.testing.assert_frame_equal(loaded.trials, load_release_dir(root, name).trials)
        assert loaded.release_root is None
        assert loaded.files == {f"{name}.parquet": _sha(folder / "data" / f"{name}.parquet")}


def test_corrupt_table_files_are_clear_errors(tmp_path):
    from benchmark.api.errors import DataValidationError
    from benchmark.data.local import read_table

    csv = tmp_path / "responses_main.csv"
    csv.write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    with pytest.raises(DataValidationError, match="Cannot read .*responses_main.csv as a csv table"):
        read_table(csv)
    parquet = tmp_path / "t.parquet"
    parquet.write_bytes(b"PAR1 not really")
    with pytest.raises(DataValidationError, match="as a parquet table"):
        read_table(parquet)

"""The data-only unpickler: pandas/numpy tables load, any pickle naming other callables is refused unrun."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.api.errors import DataValidationError
from benchmark.data.safe_pickle import read_pickle_table


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["resnet50", None], "channel": [12.0, np.nan], "batch": pd.array([3, None], dtype="Int64"),
        "correct": pd.array([True, None], dtype="boolean"), "is_demo": [False, True],
        "mode": pd.array(["natural", None], dtype="string"), "cat": pd.Categorical(["a", "b"]),
        "when": pd.to_datetime(["2023-01-01", "2023-01-02"]), "rt": [1600.5, 1700.0],
    })


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_dataframes_of_release_types_round_trip(tmp_path, protocol):
    path = tmp_path / "t.pkl"
    path.write_bytes(pickle.dumps(_table(), protocol=protocol))
    pd.testing.assert_frame_equal(read_pickle_table(path), _table())


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _payloads(marker: Path, nested: Path) -> list:
    command = f"touch {marker}"
    return [
        _Reduce(os.system, (command,)),
        _Reduce(subprocess.call, (["touch", str(marker)],)),
        _Reduce(builtins.exec, (f"open({str(marker)!r}, 'w').write('x')",)),
        _Reduce(builtins.eval, (f"open({str(marker)!r}, 'w')",)),
        _Reduce(Path.write_text, (marker, "x")),
        _Reduce(pd.read_pickle, (str(nested),)),  # a pandas function that would unpickle another file unsafely
        _Reduce(pd.eval, ("1 + 1",)),
        _Reduce(np.load, (str(nested),)),
        pd.DataFrame({"x": [_Reduce(os.system, (command,))]}),  # the payload inside a real table
    ]


def test_hostile_pickles_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "marker"
    nested = tmp_path / "nested.pkl"
    nested.write_bytes(pickle.dumps(_Reduce(os.system, (f"touch {marker}",))))
    for i, payload in enumerate(_payloads(marker, nested)):
        path = tmp_path / f"evil{i}.pkl"
        path.write_bytes(pickle.dumps(payload))
        with pytest.raises(DataValidationError, match="refused to unpickle"):
            read_pickle_table(path)
        assert not marker.exists(), f"payload {i} ran"


def test_a_pickle_of_something_else_and_garbage_are_clear_errors(tmp_path):
    other = tmp_path / "dict.pkl"
    other.write_bytes(pickle.dumps({"a": [1, 2]}))
    with pytest.raises(DataValidationError, match="holds a dict"):
        read_pickle_table(other)
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"\x80\x05not a pickle at all")
    with pytest.raises(DataValidationError, match="Cannot read .* as a pandas pickle"):
        read_pickle_table(garbage)

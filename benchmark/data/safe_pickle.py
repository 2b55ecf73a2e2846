"""Read a pandas pickle without running code: an unpickler that admits only pandas/numpy data types.

A pickle names the callables that rebuild its objects, and `pickle.load` calls them: a hostile file can name
`os.system`. `read_pickle_table` resolves only the functions pandas and numpy use to rebuild a DataFrame and
classes that are pandas/numpy data types (frames, indexes, arrays, dtypes, scalars); anything else is refused
before it is called. It is still opt-in (`--trust-pickle`): csv and parquet are the formats to prefer.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.api.errors import DataValidationError

# Rebuilding functions, by (module, name) as pickles written by pandas 1.x-3.x and numpy 1.x-2.x name them.
_FUNCTIONS: frozenset[tuple[str, str]] = frozenset(
    {
        *((m, f) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for f in ("_reconstruct", "scalar")),
        *((m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.internals.blocks", "new_block"),
        ("pandas.core.internals.blocks", "_unpickle_block"),
        ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
        ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
        ("pandas._libs.tslibs.nattype", "__nat_unpickle"),
        ("pyarrow.lib", "_restore_array"),
        ("pyarrow.lib", "py_buffer"),
        ("pyarrow.lib", "type_for_alias"),
        ("_codecs", "encode"),
        ("copyreg", "_reconstructor"),
    }
)
_BUILTINS: frozenset[str] = frozenset(
    {"slice", "bytearray", "bytes", "complex", "set", "frozenset", "object", "list", "dict", "tuple", "int",
     "float", "str", "bool", "range"}
)
_PACKAGES: tuple[str, ...] = ("numpy", "pandas")
_STDLIB_TYPES: dict[str, frozenset[str]] = {
    "collections": frozenset({"OrderedDict"}),
    "datetime": frozenset({"datetime", "date", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
}


def _data_type_bases() -> tuple[type, ...]:
    from pandas.api.extensions import ExtensionArray, ExtensionDtype
    from pandas.core.internals.managers import BaseBlockManager

    block = importlib.import_module("pandas._libs.internals")
    bases: list[type] = [pd.DataFrame, pd.Series, pd.Index, ExtensionArray, ExtensionDtype, BaseBlockManager,
                         np.ndarray, np.dtype, np.generic, pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval,
                         pd.DateOffset]
    bases += [getattr(block, name) for name in ("Block", "BlockPlacement") if isinstance(getattr(block, name, None),
                                                                                          type)]
    return tuple(bases)


class _DataOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals a pandas/numpy table needs; refuses everything else by name."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file)
        self._source = source
        self._bases = _data_type_bases()

    def find_class(self, module: str, name: str) -> Any:
        """The named global if it is a pandas/numpy data type or rebuilding function, else DataValidationError."""
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return getattr(importlib.import_module("builtins"), name)
        if name in _STDLIB_TYPES.get(module, ()):
            return getattr(importlib.import_module(module), name)
        if (module, name) in _FUNCTIONS:
            return getattr(importlib.import_module(module), name)
        if module.split(".")[0] in _PACKAGES and "." not in name:
            obj = getattr(importlib.import_module(module), name, None)
            if (isinstance(obj, type) and issubclass(obj, self._bases)) or obj is pd.NA or obj is pd.NaT:
                return obj
        raise DataValidationError(
            f"{self._source}: refused to unpickle {module}.{name}: it is not a pandas/numpy data type, and a pickle "
            "that names other callables can run code. Read the release's csv (or parquet) file instead; the csv "
            "files hold the same data."
        )


def read_pickle_table(path: Path) -> pd.DataFrame:
    """Unpickle a pandas DataFrame from `path` admitting only pandas/numpy data types; never runs other code."""
    path = Path(path)
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        table = _DataOnlyUnpickler(io.BytesIO(data), str(path)).load()
    except DataValidationError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError, IndexError) as err:
        raise DataValidationError(
            f"Cannot read {path} as a pandas pickle ({type(err).__name__}: {err}). Read the release's csv file "
            "instead (it holds the same data)."
        ) from None
    if not isinstance(table, pd.DataFrame):
        raise DataValidationError(
            f"{path}: the pickle holds a {type(table).__name__}, not a pandas DataFrame of responses."
        )
    return table

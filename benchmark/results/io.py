"""Write result files atomically and read them back with validation.

Result files may come from strangers (a Hub dataset, a pull request): `read_json_bounded` reads any such JSON file
with its size and nesting depth bounded, strict UTF-8, and every way it can be unreadable (too big, too deep,
not UTF-8, not JSON, `RecursionError`) turned into a DataValidationError that names the file, so that `results
show`, `publish` and the leaderboard list it as invalid instead of crashing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from benchmark.api.errors import DataValidationError, SourceUnavailableError
from benchmark.results.schema import RESULT_SCHEMA_VERSION, ResultFile


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text to `path` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_result(result: ResultFile, path: str | Path) -> Path:
    """Write a result file atomically (a crash never leaves a half-written file)."""
    return atomic_write_text(path, result.model_dump_json(indent=2))


MAX_RESULT_BYTES_ENV = "IMIBENCH_MAX_RESULT_MB"
DEFAULT_MAX_RESULT_MB = 256.0  # a full `--units all` result of a large model stays well below this
MAX_JSON_DEPTH = 64  # result files nest about 8 levels deep; a spec's own mappings add a few


def max_result_bytes() -> int:
    """The size limit of a result file: IMIBENCH_MAX_RESULT_MB (MiB) if set, else 256 MiB."""
    text = os.environ.get(MAX_RESULT_BYTES_ENV, "").strip()
    try:
        megabytes = float(text) if text else DEFAULT_MAX_RESULT_MB
    except ValueError:
        raise DataValidationError(
            f"{MAX_RESULT_BYTES_ENV}={text!r} is not a number; set it to the largest result file size in MiB "
            f"(default {DEFAULT_MAX_RESULT_MB:g})."
        ) from None
    return int(megabytes * 2**20)


def read_json_bounded(path: str | Path, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH, what: str = "file") -> Any:
    """Parse a JSON file of at most `max_bytes` bytes and `max_depth` levels; anything unreadable is a
    DataValidationError naming the file (never a RecursionError, UnicodeDecodeError or MemoryError)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DataValidationError(
                f"{what} {path} is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.1f} MiB limit; it is not read."
            )
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as err:
        raise DataValidationError(f"{what} {path} cannot be read: {type(err).__name__}: {err.strerror}.") from None
    if len(raw) > max_bytes:
        raise DataValidationError(f"{what} {path} is over the {max_bytes / 2**20:.1f} MiB limit; it is not read.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataValidationError(f"{what} {path} is not UTF-8 text (byte {err.start}); it is not read.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataValidationError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}).") from None
    except RecursionError:
        raise DataValidationError(f"{what} {path} nests too deeply to parse; it is not read.") from None
    depth = json_depth(data, limit=max_depth)
    if depth > max_depth:
        raise DataValidationError(f"{what} {path} nests more than {max_depth} levels deep; it is not read.")
    return data


def json_depth(value: Any, *, limit: int) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), computed without recursion; stops counting past `limit`."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_result(path: str | Path) -> ResultFile:
    """Read and validate a result file (size, depth and UTF-8 bounded); errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise SourceUnavailableError(f"Result file not found: {path}.")
    data = read_json_bounded(path, max_bytes=max_result_bytes(), what="Result file")
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != RESULT_SCHEMA_VERSION:
        raise DataValidationError(
            f"{path}: result schema version {version!r} is not supported (this imi-bench reads "
            f"{RESULT_SCHEMA_VERSION!r}); rescore the submission or upgrade imi-bench."
        )
    try:
        return ResultFile.model_validate(data)
    except RecursionError:
        raise DataValidationError(f"{path} nests too deeply to validate; it is not a valid result file.") from None
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:5])
        raise DataValidationError(f"{path} is not a valid result file: {problems}.") from None

"""Write result files atomically and read them back with validation."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

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


def read_result(path: str | Path) -> ResultFile:
    """Read and validate a result file; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise SourceUnavailableError(f"Result file not found: {path}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataValidationError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}).") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != RESULT_SCHEMA_VERSION:
        raise DataValidationError(
            f"{path}: result schema version {version!r} is not supported (this imi-bench reads "
            f"{RESULT_SCHEMA_VERSION!r}); rescore the submission or upgrade imi-bench."
        )
    try:
        return ResultFile.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:5])
        raise DataValidationError(f"{path} is not a valid result file: {problems}.") from None

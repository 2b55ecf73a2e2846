"""Find and read result files: a local folder or a Hub dataset snapshot; invalid files are reported, not raised."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from benchmark.api.errors import DataValidationError, ImiBenchError, SourceUnavailableError
from benchmark.results.io import read_result
from benchmark.results.schema import ResultFile

HUB_PREFIX = "hf:"
NOT_RESULTS = ("reports",)  # top-level folders of a results source that hold other files (validation reports)
MAX_RESULT_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class LoadedResult:
    """A valid result file and where it was read from."""

    path: Path
    result: ResultFile

    @property
    def key(self) -> str:
        """Unique key of the entry: submission id and benchmark version."""
        return f"{self.result.submission.id}@{self.result.benchmark_version}"


@dataclass(frozen=True)
class InvalidFile:
    """A file in the results folder that could not be read as a result file."""

    name: str
    error: str


@dataclass(frozen=True)
class ResultSet:
    """Everything read from one results source."""

    source: str
    folder: Path | None
    results: tuple[LoadedResult, ...] = ()
    invalid: tuple[InvalidFile, ...] = ()
    problem: str | None = None  # why the source itself could not be read (offline, missing folder)


def is_hub_source(source: str) -> bool:
    """Whether `source` names a Hub dataset repo (`hf:OWNER/NAME[@REVISION]`)."""
    return source.startswith(HUB_PREFIX)


def download_hub_results(source: str) -> Path:
    """Download the JSON files of a Hub dataset repo (`hf:OWNER/NAME[@REV]`) and return the snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    repo_id, _, revision = source[len(HUB_PREFIX):].partition("@")
    try:
        folder = snapshot_download(
            repo_id, repo_type="dataset", revision=revision or None, allow_patterns=["*.json", "**/*.json"]
        )
    except (HfHubHTTPError, HFValidationError, OSError) as err:
        raise SourceUnavailableError(
            f"Could not download results from the Hub dataset {repo_id!r}"
            f"{f' at revision {revision!r}' if revision else ''}: {err.__class__.__name__}: {err}. "
            "If this machine is offline, download the repo elsewhere and pass its folder to --results, "
            "or check the repo id (hf:OWNER/NAME[@REVISION])."
        ) from None
    return Path(folder)


def result_paths(folder: Path) -> list[Path]:
    """JSON files under `folder`, recursively, skipping hidden files and folders (e.g. atomic-write temp files)."""
    if not folder.is_dir():
        return []
    paths = []
    for path in folder.rglob("*.json"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or relative.parts[0] in NOT_RESULTS:
            continue
        paths.append(path)
    return sorted(paths)


def folder_signature(folder: Path | None) -> tuple[int, int]:
    """A cheap change detector for a results folder: (number of JSON files, newest mtime in ns)."""
    if folder is None or not folder.is_dir():
        return (-1, 0)
    paths = result_paths(folder)
    newest = max([folder.stat().st_mtime_ns] + [p.stat().st_mtime_ns for p in paths if p.exists()])
    return (len(paths), newest)


def content_signature(results: ResultSet) -> tuple:
    """What a read saw: every file with its size and modification time, the invalid files and the problem."""
    def stamp(path: Path) -> tuple[str, int, int]:
        try:
            stat = path.stat()
        except OSError:
            return (str(path), -1, -1)
        return (str(path), stat.st_mtime_ns, stat.st_size)

    return (results.source, str(results.folder), tuple(stamp(r.path) for r in results.results),
            results.invalid, results.problem)


_READ_CACHE: dict[str, tuple[tuple[int, int], LoadedResult | InvalidFile]] = {}
_READ_CACHE_MAX = 50_000


def _read_one(path: Path, name: str) -> LoadedResult | InvalidFile:
    """One result file, or why it is not one (never raises for a bad file)."""
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            raise DataValidationError(f"{path} is larger than {MAX_RESULT_BYTES // 2**20} MiB.")
        return LoadedResult(path, read_result(path))
    except (ImiBenchError, OSError, UnicodeDecodeError) as err:
        return InvalidFile(name, str(err).replace(str(path), name))
    except RecursionError:
        return InvalidFile(name, "JSON nested too deeply to read.")
    except (ValueError, TypeError, MemoryError) as err:  # anything a crafted file makes the parser raise
        return InvalidFile(name, f"unreadable ({err.__class__.__name__}).")


def read_folder(folder: Path, *, source: str | None = None) -> ResultSet:
    """Read every result file under `folder`; unreadable ones become `InvalidFile` entries.

    A file whose size and modification time are unchanged since the last read is not parsed again.
    """
    results: list[LoadedResult] = []
    invalid: list[InvalidFile] = []
    for path in result_paths(folder):
        name = str(path.relative_to(folder))
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (-1, -1)
        cached = _READ_CACHE.get(str(path))
        if cached is not None and cached[0] == stamp and stamp != (-1, -1):
            entry = cached[1]
        else:
            entry = _read_one(path, name)
            if len(_READ_CACHE) >= _READ_CACHE_MAX:
                _READ_CACHE.clear()
            _READ_CACHE[str(path)] = (stamp, entry)
        (results if isinstance(entry, LoadedResult) else invalid).append(entry)
    problem = None
    if not folder.is_dir():
        problem = f"The results folder {folder} does not exist (yet)."
        if re.fullmatch(r"[\w.-]+/[\w.-]+", str(source or folder)):
            problem += f" To read a Hub dataset repo instead, pass --results {HUB_PREFIX}{source or folder}."
    return ResultSet(source or str(folder), folder, tuple(results), tuple(invalid), problem)


def load_results(source: str | Path) -> ResultSet:
    """Read a results source: a local folder, or `hf:OWNER/NAME[@REV]`; an unreachable Hub repo sets `problem`."""
    text = str(source)
    if is_hub_source(text):
        try:
            folder = download_hub_results(text)
        except SourceUnavailableError as err:
            return ResultSet(text, None, problem=str(err))
        return read_folder(folder, source=text)
    return read_folder(Path(text).expanduser())


class ResultStore:
    """The app's shared view of the results source, reloaded when the folder changes (thread-safe)."""

    def __init__(self, source: str | Path) -> None:
        self.source = str(source)
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None
        self._content: tuple | None = None
        self.version = 0
        self.read_at = datetime.now()
        self.results = ResultSet(self.source, None)
        self.reload()

    @property
    def is_hub(self) -> bool:
        """Whether the source is a Hub dataset repo."""
        return is_hub_source(self.source)

    def reload(self) -> ResultSet:
        """Read the source again (downloads again for a Hub repo); bump `version` only when its content changed."""
        with self._lock:
            results = load_results(self.source)
            content = content_signature(results)
            self.read_at = datetime.now()
            self._signature = folder_signature(results.folder)
            if content != self._content or self.version == 0:
                self.results, self._content = results, content
                self.version += 1
            return self.results

    def poll(self) -> bool:
        """Reload when the local folder changed since the last read; returns whether it reloaded."""
        if self.is_hub:
            return False
        folder = Path(self.source).expanduser()
        if folder_signature(folder) == self._signature:
            return False
        self.reload()
        return True

"""Load the IMI human responses from a Hugging Face Hub dataset (or the same layout on disk) via `datasets`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import datasets
import huggingface_hub
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
)

from benchmark.api.errors import ConfigError, SourceUnavailableError
from benchmark.data.schema import canonicalize
from benchmark.data.sources import (
    PASSED_CHECKS_DEFAULT,
    LoadedTrials,
    check_responses,
    release_root_of,
)
from benchmark.files import sha256_file

DEFAULT_HUB_REPO = "imi-bench/imi-human-responses"
SPLIT = "train"
_COMMIT_IN_URL = re.compile(r"@([0-9a-f]{40})/")
# What the libraries raise when a repo, revision or file cannot be reached or found. datasets turns most of them
# into ConnectionError (offline mode, no route) or DatasetNotFoundError / DataFilesNotFoundError (FileNotFoundError
# subclasses); HfHubHTTPError (an OSError) and httpx transport errors can still escape from the file downloads.
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # includes huggingface_hub's OfflineModeIsEnabled
    FileNotFoundError,  # includes DatasetNotFoundError, DataFilesNotFoundError, LocalEntryNotFoundError
    HfHubHTTPError,
    huggingface_hub.utils.httpx.TransportError,
)


def load_from_hub(
    repo_id: str = DEFAULT_HUB_REPO,
    *,
    revision: str | None = None,
    responses: str = "main",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> LoadedTrials:
    """Load config `responses` (main / lower_quality / all) of a Hub dataset or a dataset folder on disk."""
    check_responses(responses)
    dataset, data_files = _load_split(repo_id, revision, responses, cache_dir, progress)
    label = f"hf:{repo_id}{'@' + revision if revision else ''} ({responses})"
    trials, notes = canonicalize(
        dataset.to_pandas(), source=label, passed_checks_default=PASSED_CHECKS_DEFAULT[responses]
    )
    files = {_name_in_repo(url, repo_id): sha256_file(_local_copy(url)) for url in data_files}
    local_folder = Path(repo_id).expanduser()
    return LoadedTrials(
        trials=trials,
        source=label,
        release_root=release_root_of(local_folder) if local_folder.is_dir() else None,
        revision=_resolved_revision(data_files, revision, files),
        files=files,
        notes=tuple(notes),
    )


def _load_split(
    repo_id: str, revision: str | None, config: str, cache_dir: Path | None, progress: bool
) -> tuple[datasets.Dataset, list[str]]:
    """What `datasets.load_dataset(repo_id, name=config, revision=..., split="train")` does, keeping the builder.

    The builder's resolved data files name the commit and the files read, for provenance.
    """
    try:
        with _progress_bars(progress):
            builder = datasets.load_dataset_builder(
                repo_id, name=config, revision=revision, cache_dir=None if cache_dir is None else str(cache_dir)
            )
            builder.download_and_prepare()
            dataset = builder.as_dataset(split=SPLIT)
    except HFValidationError as exc:
        raise ConfigError(
            f"{repo_id!r} is not a valid Hub dataset id ({_one_line(exc)}). "
            "Use OWNER/NAME, e.g. hf:" + DEFAULT_HUB_REPO + ", or an existing dataset folder."
        ) from exc
    except ValueError as exc:
        if "BuilderConfig" not in str(exc):  # only the unknown-config error is the source's fault
            raise
        raise SourceUnavailableError(
            f"Hub dataset {repo_id!r} (revision {revision or 'default'}) has no config {config!r}: "
            f"{_one_line(exc)}. Choose --responses from the configs it has, or point at other files."
        ) from exc
    except UNREACHABLE_ERRORS as exc:
        raise _unreachable(repo_id, revision, exc) from exc
    data_files = [str(f) for f in builder.config.data_files.get(SPLIT, [])] if builder.config.data_files else []
    return dataset, data_files


def _unreachable(repo_id: str, revision: str | None, exc: BaseException) -> SourceUnavailableError:
    offline = ""
    if isinstance(exc, OfflineModeIsEnabled) or _offline_mode():
        offline = (
            " Offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE): only datasets already in the cache load."
        )
    return SourceUnavailableError(
        f"Could not reach or find the Hub dataset {repo_id!r} at revision {revision or 'default (main)'}: "
        f"{type(exc).__name__}: {_one_line(exc)}.{offline} To use local files instead, pass "
        "--source zenodo:DIR (the Zenodo record's files, zipped or extracted), --source PATH/to/release "
        "(a folder holding human_responses/), or a local dataset folder (e.g. one written by "
        "`imibench data push-to-hub --dry-run`)."
    )


def _offline_mode() -> bool:
    return bool(datasets.config.HF_HUB_OFFLINE or huggingface_hub.constants.HF_HUB_OFFLINE)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    was_enabled = not datasets.utils.are_progress_bars_disabled()
    if not enabled and was_enabled:
        datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        if not enabled and was_enabled:
            datasets.utils.enable_progress_bars()


def _local_copy(url: str) -> Path:
    """The local path of a data file the builder read (a Hub file comes from the download cache)."""
    return Path(datasets.utils.file_utils.cached_path(url))


def _name_in_repo(url: str, repo_id: str) -> str:
    match = _COMMIT_IN_URL.search(url)
    if match:
        return url[match.end() :]
    folder = Path(repo_id).expanduser()
    path = Path(url)
    return path.relative_to(folder.resolve()).as_posix() if path.is_relative_to(folder.resolve()) else path.name


def _resolved_revision(data_files: list[str], requested: str | None, files: dict[str, str]) -> str | None:
    """The commit the Hub resolved; for a folder on disk, the sha256 of its (single) data file."""
    commits = {m.group(1) for m in map(_COMMIT_IN_URL.search, data_files) if m}
    if len(commits) == 1:
        return commits.pop()
    if len(files) == 1:
        return next(iter(files.values()))
    return requested

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
    origin_for,
    release_root_of,
)
from benchmark.files import sha256_file

DEFAULT_HUB_REPO = "imi-bench/imi-human-responses"
ORIGIN_KEY = "imibench_origin"  # the card metadata push-to-hub writes (benchmark.data.push)
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
    config, config_note = _config_name(repo_id, revision, responses)
    dataset, data_files = _load_split(repo_id, revision, config, cache_dir, progress)
    label = f"hf:{repo_id}{'@' + revision if revision else ''} ({config})"
    trials, notes = canonicalize(
        dataset.to_pandas(), source=label, passed_checks_default=PASSED_CHECKS_DEFAULT[responses]
    )
    files = {_name_in_repo(url, repo_id): sha256_file(_local_copy(url)) for url in data_files}
    local_folder = Path(repo_id).expanduser()
    resolved = _resolved_revision(data_files, revision, files)
    origin = card_origin(repo_id, revision)
    simulator = origin.get("simulator") or {} if origin.get("kind") == "simulated" else None
    return LoadedTrials(
        trials=trials,
        source=label,
        release_root=release_root_of(local_folder) if local_folder.is_dir() else None,
        revision=resolved,
        files=files,
        notes=(*([config_note] if config_note else []), *notes),
        origin=origin_for(f"hf:{repo_id}", resolved, simulator=simulator),
    )


def card_origin(repo_id: str, revision: str | None = None) -> dict:
    """The `imibench_origin` block of a dataset's card metadata ({} when the card has none or cannot be read)."""
    folder = Path(repo_id).expanduser()
    try:
        if folder.is_dir():
            readme = folder / "README.md"
            text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
        else:
            path = huggingface_hub.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision)
            text = Path(path).read_text(encoding="utf-8")
        data = huggingface_hub.DatasetCard(text).data.to_dict() if text else {}
    except (*UNREACHABLE_ERRORS, OSError, ValueError):
        return {}
    origin = data.get(ORIGIN_KEY)
    return origin if isinstance(origin, dict) else {}


def _config_name(repo_id: str, revision: str | None, responses: str) -> tuple[str, str | None]:
    """The config to load for `responses`: the same name, or a single-config dataset's only config as `main`."""
    try:
        names = datasets.get_dataset_config_names(repo_id, revision=revision)
    except (*UNREACHABLE_ERRORS, OSError, ValueError, HFValidationError):
        return responses, None  # _load_split reports the problem with its own message
    if responses in names or len(names) != 1:
        return responses, None
    if responses != "main":
        raise SourceUnavailableError(
            f"Hub dataset {repo_id!r} has a single config {names[0]!r}, which is loaded as --responses main; it "
            f"has no {responses!r} config. Drop --responses (or pass --responses main), or point at a dataset "
            "with main/lower_quality/all configs (e.g. one written by `imibench data push-to-hub`)."
        )
    return names[0], f"the dataset's only config {names[0]!r} is read as the main responses"


def _load_split(
    repo_id: str, revision: str | None, config: str, cache_dir: Path | None, progress: bool
) -> tuple[datasets.Dataset, list[str]]:
    """What `datasets.load_dataset(repo_id, name=config, revision=..., split="train")` does, keeping the builder.

    The builder's resolved data files name the commit and the files read, for provenance.
    """
    try:
        with _progress_bars(progress):
            cache = _folder_cache(Path(repo_id).expanduser(), cache_dir) if Path(repo_id).expanduser().is_dir() \
                else cache_dir
            builder = datasets.load_dataset_builder(
                repo_id, name=config, revision=revision, cache_dir=None if cache is None else str(cache)
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
            f"{_one_line(exc)}. --responses chooses main, lower_quality or all; a dataset with other config names "
            "is readable only when it has a single config (loaded as main). Point at a dataset written by "
            "`imibench data push-to-hub`, or at the release files (--source zenodo:DIR)."
        ) from exc
    except UNREACHABLE_ERRORS as exc:
        raise _unreachable(repo_id, revision, exc) from exc
    data_files = [str(f) for f in builder.config.data_files.get(SPLIT, [])] if builder.config.data_files else []
    return dataset, data_files


def _folder_cache(folder: Path, cache_dir: Path | None) -> Path:
    """A cache folder of its own for a dataset folder on disk, keyed by its path and its data files' sizes and times.

    `datasets` names a local folder's cache by the folder's name and the config only, so two folders called `hub`
    would share one cache and the second would read the first one's rows.
    """
    import hashlib

    from benchmark.data.sources import default_cache_dir

    digest = hashlib.sha256(str(folder.resolve()).encode())
    files = [folder / "README.md", *(folder / "data").rglob("*")] if (folder / "data").is_dir() else []
    for path in sorted(p for p in files if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return Path(cache_dir or default_cache_dir() / "hub-folders") / digest.hexdigest()[:20]


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

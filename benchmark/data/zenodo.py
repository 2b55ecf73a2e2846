"""Download the IMI release from Zenodo (record 8131197), verify and extract it, and load it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from tqdm.auto import tqdm

from benchmark.api.errors import (
    ChecksumError,
    ConfigError,
    DataValidationError,
    SourceUnavailableError,
)
from benchmark.data.local import RESPONSES_DIR, load_release_dir
from benchmark.data.sources import LoadedTrials, check_responses, default_cache_dir, origin_for
from benchmark.files import file_digest

logger = logging.getLogger(__name__)

ZENODO_RECORD = "8131197"
ZENODO_API_URL = "https://zenodo.org/api/records/"
ZENODO_URL_ENV = "IMIBENCH_ZENODO_URL"
RECORD_JSON = "zenodo_record.json"
TIMEOUT_S = (10.0, 60.0)  # connect, read
CHUNK_BYTES = 1 << 20
_IGNORED_DIRS = ("__MACOSX",)


@dataclass(frozen=True)
class RecordFile:
    """One file of a Zenodo record."""

    key: str
    size: int
    md5: str
    url: str


def zenodo_api_url(api_url: str | None = None) -> str:
    """The records API base: `api_url`, else $IMIBENCH_ZENODO_URL, else https://zenodo.org/api/records/."""
    return api_url or os.environ.get(ZENODO_URL_ENV) or ZENODO_API_URL


def record_page(record: str = ZENODO_RECORD) -> str:
    """The record's web page, where its files can be downloaded by hand."""
    return f"https://zenodo.org/records/{record}"


def load_zenodo(
    *,
    responses: str = "main",
    cache_dir: Path | None = None,
    record: str = ZENODO_RECORD,
    api_url: str | None = None,
    progress: bool = True,
    trust_pickle: bool = False,
) -> LoadedTrials:
    """Download (or reuse) the Zenodo record in the cache and load one response file."""
    check_responses(responses)
    dest = Path(cache_dir or default_cache_dir()) / f"zenodo-{record}"
    download_release(dest, record=record, api_url=api_url, progress=progress)
    return load_zenodo_dir(dest, responses=responses, trust_pickle=trust_pickle)


def load_zenodo_dir(folder: Path, *, responses: str = "main", trust_pickle: bool = False) -> LoadedTrials:
    """Load the Zenodo record's files already in `folder` (zips are extracted there first); no network."""
    check_responses(responses)
    folder = Path(folder)
    extract_archives(folder)
    root = find_release_root(folder)
    loaded = load_release_dir(root, responses=responses, trust_pickle=trust_pickle)
    metadata = read_record_json(folder)
    revision = record_revision(metadata) if metadata else loaded.revision
    return LoadedTrials(
        trials=loaded.trials,
        source=f"zenodo:{folder} (responses_{responses})",
        release_root=root,
        revision=revision,
        files=loaded.files,
        notes=loaded.notes,
        origin=origin_for(f"zenodo:{folder}", revision, release_root=root),
    )


def download_release(
    dest: Path,
    *,
    record: str = ZENODO_RECORD,
    api_url: str | None = None,
    progress: bool = True,
) -> Path:
    """Download the record's files into `dest` (md5-verified, resumable), extract zips; return the release root."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    url = zenodo_api_url(api_url).rstrip("/") + "/" + record
    metadata = _get_json(url, record, dest)
    for entry in parse_record_files(metadata, url):
        download_file(entry, dest, record=record, progress=progress)
    _write_atomic(dest / RECORD_JSON, json.dumps(metadata, indent=2).encode())
    extract_archives(dest)
    return find_release_root(dest)


def parse_record_files(metadata: dict[str, Any], url: str) -> list[RecordFile]:
    """The files listed in a record's JSON (key, size, md5 checksum, download link)."""
    entries = metadata.get("files") if isinstance(metadata, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataValidationError(f"The Zenodo record at {url} lists no files (no 'files' list in its JSON).")
    return [_record_file(entry, url) for entry in entries]


def download_file(entry: RecordFile, dest: Path, *, record: str = ZENODO_RECORD, progress: bool = True) -> Path:
    """Stream one record file to dest/<key> via a .part file; skip it when already there with the right md5."""
    target = dest / entry.key
    if target.is_file() and file_digest(target, "md5") == entry.md5:
        logger.info("%s already downloaded (md5 ok), skipping", target)
        return target
    part = target.with_name(target.name + ".part")
    try:
        actual = _stream(entry, part, progress)
    except requests.RequestException as exc:
        part.unlink(missing_ok=True)
        raise _unreachable(entry.url, record, dest, exc) from exc
    if actual != entry.md5:
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"Downloaded file {entry.key} from {entry.url} has md5 {actual}, but the Zenodo record says "
            f"{entry.md5}; the bad file was deleted. Run the command again to retry the download, or download it "
            f"by hand from {record_page(record)} and pass --source zenodo:DIR."
        )
    os.replace(part, target)
    return target


def extract_archives(folder: Path) -> list[Path]:
    """Extract every .zip in `folder` once (a marker remembers the zip's size and mtime); return the folders written."""
    written = []
    for archive in sorted(Path(folder).glob("*.zip")):
        marker = archive.with_name(f".{archive.name}.extracted")
        stat = archive.stat()
        stamp = f"{stat.st_size} {stat.st_mtime_ns}"
        if marker.is_file() and marker.read_text().strip() == stamp:
            continue
        written.append(_extract(archive))
        marker.write_text(stamp + "\n")
    return written


def find_release_root(folder: Path) -> Path:
    """The single folder under `folder` (itself included) that holds human_responses/."""
    roots = _candidate_roots(Path(folder))
    if len(roots) == 1:
        return roots[0]
    if not roots:
        contents = sorted(p.name for p in Path(folder).iterdir()) if Path(folder).is_dir() else []
        raise SourceUnavailableError(
            f"No release found in {folder}: no {RESPONSES_DIR}/ folder in it or below it (contents: {contents}). "
            f"Download the record's files from {record_page()} into that folder (zips are extracted "
            "automatically) and pass --source zenodo:DIR, or pass --source PATH/to/release."
        )
    raise ConfigError(
        f"{folder} holds several releases (folders with {RESPONSES_DIR}/): {[str(r) for r in roots]}. "
        "Pass the one you mean: --source zenodo:DIR with DIR one of them."
    )


def read_record_json(folder: Path) -> dict[str, Any] | None:
    """The record JSON saved by download_release in `folder` or one of its two parents, if any."""
    folder = Path(folder)
    for candidate in (folder, *list(folder.parents)[:2]):
        if (candidate / RECORD_JSON).is_file():
            return json.loads((candidate / RECORD_JSON).read_text())
    return None


def record_revision(metadata: dict[str, Any]) -> str:
    """Provenance of a record: '<id>' or '<id>@<version>'."""
    record_id = str(metadata.get("id") or metadata.get("recid") or ZENODO_RECORD)
    version = (metadata.get("metadata") or {}).get("version")
    return f"{record_id}@{version}" if version else record_id


def record_license(metadata: dict[str, Any]) -> str | None:
    """The licence id the record declares (e.g. 'cc-by-4.0'), if any."""
    license_ = (metadata.get("metadata") or {}).get("license")
    if isinstance(license_, dict):
        return str(license_.get("id") or "").lower() or None
    return str(license_).lower() if license_ else None


def _record_file(entry: Any, url: str) -> RecordFile:
    try:
        key, checksum, links = entry["key"], entry["checksum"], entry["links"]
        link = links.get("content") or links["self"]
        size = int(entry.get("size") or 0)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise DataValidationError(
            f"The Zenodo record at {url} has a file entry without key/checksum/links.self: {entry!r}"
        ) from exc
    algorithm, _, value = str(checksum).partition(":")
    if algorithm != "md5" or not value:
        raise DataValidationError(
            f"The Zenodo record at {url}: file {key!r} has checksum {checksum!r}, not 'md5:<hex>'."
        )
    if Path(key).name != key or key in ("", ".", ".."):
        raise DataValidationError(f"The Zenodo record at {url} has an unsafe file name {key!r}.")
    return RecordFile(key=key, size=size, md5=value.lower(), url=link)


def _get_json(url: str, record: str, dest: Path) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=TIMEOUT_S, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()
    except requests.RequestException as exc:  # includes ConnectionError, Timeout, HTTPError, JSONDecodeError
        raise _unreachable(url, record, dest, exc) from exc


def _stream(entry: RecordFile, part: Path, progress: bool) -> str:
    digest = hashlib.md5()
    with requests.get(entry.url, stream=True, timeout=TIMEOUT_S) as response:
        response.raise_for_status()
        with open(part, "wb") as out, tqdm(
            total=entry.size or None, unit="B", unit_scale=True, desc=entry.key, disable=not progress
        ) as bar:
            for chunk in response.iter_content(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def _unreachable(url: str, record: str, dest: Path, exc: BaseException) -> SourceUnavailableError:
    reason = " ".join(str(exc).split())[:300]
    return SourceUnavailableError(
        f"Could not download the Zenodo record from {url}: {type(exc).__name__}: {reason}. "
        f"Download the record's files by hand from {record_page(record)} into a folder (e.g. {dest}) "
        "and pass --source zenodo:DIR (zips are extracted automatically)."
    )


def _extract(archive: Path) -> Path:
    """Extract into the zip's folder when all members share one top folder, else into a folder named after it."""
    try:
        with zipfile.ZipFile(archive) as handle:
            names = [n for n in handle.namelist() if not n.startswith(_IGNORED_DIRS)]
            tops = {n.split("/", 1)[0] for n in names}
            single_top = len(tops) == 1 and all("/" in n for n in names)
            target = archive.parent if single_top else archive.parent / archive.stem
            handle.extractall(target)  # zipfile drops absolute paths and '..' components
    except zipfile.BadZipFile as exc:
        raise DataValidationError(
            f"{archive} is not a valid zip archive ({exc}); delete it and download again."
        ) from exc
    return target


def _candidate_roots(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [p.parent for p in folder.rglob(RESPONSES_DIR) if p.is_dir()]
    return sorted({p for p in found if not any(part in _IGNORED_DIRS for part in p.parts)})


def _write_atomic(path: Path, data: bytes) -> None:
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)

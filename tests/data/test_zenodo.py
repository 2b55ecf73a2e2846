import hashlib
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from benchmark.api.errors import ChecksumError, ConfigError, SourceUnavailableError
from benchmark.data.local import load_release_dir
from benchmark.data.sources import load_trials
from benchmark.data.zenodo import (
    RECORD_JSON,
    ZENODO_RECORD,
    download_release,
    load_zenodo,
    load_zenodo_dir,
)
from tests.data.release_fixtures import write_tiny_release, zip_release


class FakeZenodo:
    """A record API on 127.0.0.1: GET <base>/<record> is the JSON, GET /files/<key> the bytes; requests are logged."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.api_url = f"{self.base}/api/records/"

    def publish(self, files: dict[str, bytes], *, md5: dict[str, str] | None = None) -> None:
        """Serve a record listing `files` (md5 overrides let a test announce a wrong checksum)."""
        entries = []
        for key, data in files.items():
            self.routes[f"/files/{key}"] = data
            checksum = (md5 or {}).get(key, hashlib.md5(data).hexdigest())
            link = f"{self.base}/files/{key}"
            entries.append({"key": key, "size": len(data), "checksum": f"md5:{checksum}", "links": {"self": link}})
        record = {"id": int(ZENODO_RECORD), "metadata": {"version": "1.0", "license": {"id": "cc-by-4.0"}}}
        self.routes[f"/api/records/{ZENODO_RECORD}"] = json.dumps(record | {"files": entries}).encode()

    def file_requests(self) -> list[str]:
        return [r for r in self.requests if r.startswith("/files/")]


@pytest.fixture
def zenodo() -> Iterator[FakeZenodo]:
    fake = FakeZenodo()
    thread = threading.Thread(target=fake.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def release_zip(tmp_path: Path) -> tuple[Path, bytes]:
    release = write_tiny_release(tmp_path / "made" / "release")
    (tmp_path / "zips").mkdir()
    return release, zip_release(release, tmp_path / "zips" / "imi_release.zip").read_bytes()


def test_download_verify_extract_load_then_resume(zenodo, release_zip, tmp_path: Path, monkeypatch):
    release, data = release_zip
    zenodo.publish({"imi_release.zip": data})
    monkeypatch.setenv("IMIBENCH_ZENODO_URL", zenodo.api_url)  # the override users and tests have
    loaded = load_trials("zenodo", cache_dir=tmp_path / "cache", progress=False)
    dest = tmp_path / "cache" / f"zenodo-{ZENODO_RECORD}"
    assert loaded.release_root == dest / "imi_release"
    assert (loaded.release_root / "image_data" / "imagenet_exemplars_file_map.json").is_file()
    assert loaded.revision == f"{ZENODO_RECORD}@1.0" and loaded.source.startswith("zenodo:")
    pd.testing.assert_frame_equal(loaded.trials, load_release_dir(release).trials)
    assert zenodo.file_requests() == ["/files/imi_release.zip"]
    assert (dest / RECORD_JSON).is_file() and not list(dest.glob("*.part"))

    again = load_zenodo(responses="all", cache_dir=tmp_path / "cache", api_url=zenodo.api_url, progress=False)
    assert zenodo.file_requests() == ["/files/imi_release.zip"]  # the verified file was not fetched again
    assert set(again.trials["passed_checks"]) == {True, False}


def test_a_damaged_local_copy_is_downloaded_again(zenodo, release_zip, tmp_path: Path):
    _, data = release_zip
    zenodo.publish({"imi_release.zip": data})
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "imi_release.zip").write_bytes(data[:100])
    root = download_release(tmp_path / "dest", api_url=zenodo.api_url, progress=False)
    assert zenodo.file_requests() == ["/files/imi_release.zip"]
    assert (tmp_path / "dest" / "imi_release.zip").read_bytes() == data and (root / "human_responses").is_dir()


def test_checksum_mismatch_deletes_the_file(zenodo, release_zip, tmp_path: Path):
    _, data = release_zip
    zenodo.publish({"imi_release.zip": data}, md5={"imi_release.zip": "0" * 32})
    with pytest.raises(ChecksumError) as info:
        download_release(tmp_path / "dest", api_url=zenodo.api_url, progress=False)
    message = str(info.value)
    assert "imi_release.zip" in message and "0" * 32 in message and hashlib.md5(data).hexdigest() in message
    assert "deleted" in message
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == []


def test_zip_without_a_top_folder_extracts_into_its_own_folder(zenodo, release_zip, tmp_path: Path):
    release, _ = release_zip
    archive = tmp_path / "human_responses.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in (release / "human_responses").iterdir():
            handle.write(path, path.name)
    zenodo.publish({"human_responses.zip": archive.read_bytes()})
    root = download_release(tmp_path / "dest", api_url=zenodo.api_url, progress=False)
    assert root == tmp_path / "dest" and (root / "human_responses" / "responses_main.csv").is_file()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_gives_one_clear_error(tmp_path: Path):
    url = f"http://127.0.0.1:{_closed_port()}/api/records/"
    with pytest.raises(SourceUnavailableError) as info:
        load_zenodo(cache_dir=tmp_path, api_url=url, progress=False)
    message = str(info.value)
    assert f"{url}{ZENODO_RECORD}" in message and "ConnectionError" in message
    assert "https://zenodo.org/records/8131197" in message and "--source zenodo:DIR" in message


def test_missing_record_is_unavailable(zenodo, tmp_path: Path):
    with pytest.raises(SourceUnavailableError, match="404"):
        download_release(tmp_path, api_url=zenodo.api_url, progress=False)


def test_zenodo_dir_with_extracted_files_needs_no_network(release_zip, tmp_path: Path):
    release, _ = release_zip
    loaded = load_zenodo_dir(release.parent, responses="lower_quality")
    assert loaded.release_root == release and loaded.source == f"zenodo:{release.parent} (responses_lower_quality)"
    pd.testing.assert_frame_equal(loaded.trials, load_release_dir(release, "lower_quality").trials)


def test_zenodo_dir_with_only_the_zip_extracts_it(release_zip, tmp_path: Path):
    release, data = release_zip
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "imi_release.zip").write_bytes(data)
    loaded = load_trials(f"zenodo:{folder}")
    assert loaded.release_root == folder / "imi_release"
    pd.testing.assert_frame_equal(loaded.trials, load_release_dir(release).trials)


def test_zenodo_dir_without_a_release(tmp_path: Path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(SourceUnavailableError) as info:
        load_zenodo_dir(tmp_path)
    assert "human_responses/" in str(info.value) and "readme.txt" in str(info.value)


def test_zenodo_dir_with_two_releases(tmp_path: Path):
    write_tiny_release(tmp_path / "a")
    write_tiny_release(tmp_path / "b")
    with pytest.raises(ConfigError, match="several releases"):
        load_zenodo_dir(tmp_path)


@pytest.mark.parametrize(
    ("record", "words"),
    [
        ({"files": []}, "lists no files"),
        ([], "lists no files"),
        ({"files": [{"key": "a.zip"}]}, "without key/checksum"),
        ({"files": [{"key": "a.zip", "checksum": "sha1:ab", "links": {"self": "u"}}]}, "not 'md5:<hex>'"),
        ({"files": [{"key": "../a.zip", "checksum": "md5:ab", "links": {"self": "u"}}]}, "unsafe file name"),
    ],
)
def test_malformed_record_json(record, words):
    from benchmark.api.errors import DataValidationError
    from benchmark.data.zenodo import parse_record_files

    with pytest.raises(DataValidationError, match="http://x/8131197") as info:
        parse_record_files(record, "http://x/8131197")
    assert words in str(info.value)

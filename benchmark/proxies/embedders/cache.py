"""A content-hash cache of embeddings, so that each image is embedded once per embedder identity.

Images are keyed by the sha256 of their bytes (files) or RGB pixels (PIL images); the cache file of an
embedder is named after the hash of its identity and is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark.api.errors import (
    ChecksumError,
    ConfigError,
    DataValidationError,
    SourceUnavailableError,
)
from benchmark.files import sha256_file
from benchmark.proxies.embedders.base import (
    Embedder,
    _require_int,
    as_rgb_images,
    identity_hash,
)


def image_key(image: Image.Image) -> str:
    """Content key of a PIL image: sha256 of its RGB pixel bytes and size."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    digest = hashlib.sha256(f"rgb:{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def file_key(path: Path) -> str:
    """Content key of an image file: sha256 of its bytes."""
    try:
        return sha256_file(path)
    except FileNotFoundError:
        raise SourceUnavailableError(f"Image file {str(path)!r} does not exist.") from None


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise DataValidationError(f"Cannot decode image file {str(path)!r}: {type(err).__name__}: {err}") from err


class EmbeddingCache:
    """Content-hash cache: each distinct image is embedded once per embedder identity."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = None if directory is None else Path(directory).expanduser()
        self.hits = 0
        self.misses = 0
        self._stores: dict[str, dict[str, np.ndarray]] = {}
        self._file_keys: dict[str, str] = {}
        self._derived: dict[str, dict[Any, Any]] = {}

    def derived(self, namespace: str) -> dict[Any, Any]:
        """A memo shared by the metrics using this cache, by namespace: embedders by parameters, and values
        computed from the images only (e.g. per-unit task margins)."""
        return self._derived.setdefault(namespace, {})

    def file_key(self, path: Path | str) -> str:
        """`file_key(path)`, hashed on this cache's first lookup of the path and remembered from then on.

        Refits (one per cross-validation fold and resample) look the same images up millions of times; hashing,
        or even stat-ing, each file on every lookup cost more than the fits. A cache therefore takes a snapshot:
        image files must not change while it is in use (one validation or scoring run); a new cache re-hashes.
        """
        name = os.fspath(path)
        key = self._file_keys.get(name)
        if key is None:
            key = self._file_keys[name] = file_key(Path(name))
        return key

    def embed_paths(
        self, embedder: Embedder, paths: Sequence[Path | str], *, progress: bool = False, batch_size: int = 64
    ) -> np.ndarray:
        """(n, d) embeddings of image files, keyed by the sha256 of each file's bytes."""
        keys = [self.file_key(path) for path in paths]
        return self._lookup_or_embed(embedder, keys, lambda i: _open_rgb(Path(paths[i])), progress, batch_size)

    def embed_images(
        self, embedder: Embedder, images: Sequence[Image.Image], *, progress: bool = False, batch_size: int = 64
    ) -> np.ndarray:
        """(n, d) embeddings of PIL images, keyed by the sha256 of their RGB pixels and size."""
        rgb = as_rgb_images(images)
        keys = [image_key(image) for image in rgb]
        return self._lookup_or_embed(embedder, keys, lambda i: rgb[i], progress, batch_size)

    def file_for(self, embedder: Embedder) -> Path | None:
        """The on-disk cache file of this embedder's identity (None for an in-memory cache)."""
        return self._path(embedder.name, embedder.identity())

    def _path(self, name: str, identity: dict[str, Any]) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{name}-{identity_hash(identity)[:32]}.npz"

    def _lookup_or_embed(
        self,
        embedder: Embedder,
        keys: list[str],
        load: Callable[[int], Image.Image],
        progress: bool,
        batch_size: int,
    ) -> np.ndarray:
        batch_size = _require_int("batch_size", batch_size, minimum=1)
        if not keys:
            raise ConfigError("Expected at least one image to embed, got an empty sequence.")
        identity = _canonical(embedder.identity())
        store = self._store(embedder.name, identity)
        todo: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key in store or key in todo:
                self.hits += 1
            else:
                todo[key] = index
                self.misses += 1
        if todo:
            self._embed_missing(embedder, store, todo, load, progress, batch_size)
            self._save(embedder.name, identity, store)
        return np.stack([store[key] for key in keys]).astype(np.float32, copy=False)

    def _embed_missing(
        self,
        embedder: Embedder,
        store: dict[str, np.ndarray],
        todo: dict[str, int],
        load: Callable[[int], Image.Image],
        progress: bool,
        batch_size: int,
    ) -> None:
        from tqdm.auto import tqdm

        pending = list(todo.items())
        with tqdm(total=len(pending), desc=f"embedding ({embedder.name})", unit="img", disable=not progress) as bar:
            for start in range(0, len(pending), batch_size):
                chunk = pending[start : start + batch_size]
                vectors = embedder.embed([load(index) for _, index in chunk])
                _check_rows(store, vectors, len(chunk), embedder.name)
                for (key, _), row in zip(chunk, vectors, strict=True):
                    store[key] = row
                bar.update(len(chunk))

    def _store(self, name: str, identity: dict[str, Any]) -> dict[str, np.ndarray]:
        key = identity_hash(identity)
        if key not in self._stores:
            path = self._path(name, identity)
            self._stores[key] = _read_cache_file(path, identity) if path is not None and path.exists() else {}
        return self._stores[key]

    def _save(self, name: str, identity: dict[str, Any], store: dict[str, np.ndarray]) -> None:
        path = self._path(name, identity)
        if path is None:
            return
        if path.exists():  # another process may have added entries since we read the file: keep them
            for key, row in _read_cache_file(path, identity).items():
                store.setdefault(key, row)
        _write_cache_file(path, identity, store)


def _canonical(identity: dict[str, Any]) -> dict[str, Any]:
    """The identity as it reads back from JSON (tuples become lists), so stored and live copies compare equal."""
    return json.loads(json.dumps(identity, sort_keys=True))


def _check_rows(store: dict[str, np.ndarray], vectors: np.ndarray, expected: int, name: str) -> None:
    if vectors.ndim != 2 or vectors.shape[0] != expected:
        raise RuntimeError(f"Embedder {name!r} returned shape {vectors.shape} for {expected} images.")
    if store:
        dim = next(iter(store.values())).shape[0]
        if vectors.shape[1] != dim:
            raise ChecksumError(
                f"Embedder {name!r} now returns {vectors.shape[1]}-d vectors but its cache holds {dim}-d ones "
                "for the same identity; the cache is stale: delete its file (EmbeddingCache.file_for(embedder))."
            )


def _read_cache_file(path: Path, identity: dict[str, Any]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            stored_identity = json.loads(str(data["identity"]))
            keys = data["keys"].tolist()
            vectors = data["vectors"].astype(np.float32, copy=False)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ChecksumError(
            f"Embedding cache file {str(path)!r} is unreadable ({type(err).__name__}: {err}); delete it to rebuild."
        ) from err
    if stored_identity != identity:
        raise ChecksumError(
            f"Embedding cache file {str(path)!r} belongs to embedder {stored_identity!r}, not {identity!r}; "
            "delete it to rebuild."
        )
    if vectors.ndim != 2 or len(keys) != vectors.shape[0]:
        raise ChecksumError(f"Embedding cache file {str(path)!r} is inconsistent (keys vs vectors); delete it.")
    return dict(zip(keys, vectors, strict=True))


def _write_cache_file(path: Path, identity: dict[str, Any], store: dict[str, np.ndarray]) -> None:
    """Write the cache file atomically: a temporary file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(store)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False) as handle:
        tmp = Path(handle.name)
        try:
            np.savez(
                handle,
                identity=np.array(json.dumps(identity, sort_keys=True)),
                keys=np.array(keys, dtype=str),
                vectors=np.stack([store[key] for key in keys]).astype(np.float32),
            )
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, path)

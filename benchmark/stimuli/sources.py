"""Image sources to rank by activation: an image folder, a Hugging Face dataset, or the bundled sample.

Every source has a deterministic order, stable ids (a folder's relative paths, a dataset's `SPLIT/ROW`, the bundled
sample's `bundled/NAME/NNNN`), returns RGB PIL images and describes itself for provenance (`describe()`).

Spec strings (`parse_image_source`):

    folder:/path/to/images[?limit=N&ignore_non_images=true]
    hf:OWNER/NAME[@REVISION][#SPLIT][?column=image&limit=N&streaming=true]   (also a local dataset folder)
    bundled[:N][?size=224&seed=0]
    shapes[:N][?split=test&photos=M&size=64&seed=0]     (rendered shapes, then M bundled photos; the demo's)
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset

from benchmark.api.errors import ConfigError, DataValidationError, SourceUnavailableError

DEFAULT_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGE_SOURCE_FORMS = (
    "folder:/path/to/images[?limit=N&ignore_non_images=true], "
    "hf:OWNER/NAME[@REVISION][#SPLIT][?column=image&limit=N&streaming=true] (or hf:/path/to/local/dataset), "
    "bundled[:N][?size=224&seed=0], "
    "shapes[:N][?split=test&photos=M&size=64&seed=0]"
)
# PIL raises these for unreadable or corrupt files (SyntaxError: e.g. a broken PNG chunk; ValueError: bad header).
_DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

Transform = Callable[[Image.Image], torch.Tensor]


class ImageSource(ABC):
    """A finite, ordered collection of RGB images with stable ids."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of images."""

    @abstractmethod
    def ids(self) -> list[str]:
        """Stable ids of the images, in source order."""

    @abstractmethod
    def load(self, i: int) -> Image.Image:
        """Image `i` (0-based, source order) as an RGB PIL image."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance: kind, root or dataset id, revision, n_images, ids_sha256 and source-specific fields."""

    @property
    def sequential_only(self) -> bool:
        """True when random access is slow (a streamed dataset): read it with `iter_images`."""
        return False

    def iter_images(self, start: int = 0) -> Iterator[tuple[int, Image.Image]]:
        """(index, image) pairs from `start` to the end, in source order."""
        for i in range(start, len(self)):
            yield i, self.load(i)

    def index_of(self, image_id: str) -> int:
        """The index of an image id (raises ConfigError for an unknown id)."""
        lookup = self.__dict__.get("_index_lookup")
        if lookup is None:
            lookup = {image: i for i, image in enumerate(self.ids())}
            self.__dict__["_index_lookup"] = lookup
        if image_id not in lookup:
            raise ConfigError(
                f"Image id {image_id!r} is not in {self.describe().get('kind')} source "
                f"({len(self)} images, e.g. {', '.join(self.ids()[:3])})."
            )
        return lookup[image_id]

    def _check_index(self, i: int) -> int:
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n:
            raise IndexError(f"Image index {i!r} is out of range for a source of {n} images (0 .. {n - 1}).")
        return i % n


def ids_sha256(ids: Sequence[str]) -> str:
    """sha256 of the newline-joined id list (identifies the exact image set and order)."""
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


# -------------------------------------------------------------------------------------------------- folder


class ImageFolderSource(ImageSource):
    """Every image file under `root` (recursive, sorted by relative path; ImageNet-train layout works)."""

    def __init__(
        self,
        root: str | Path,
        *,
        extensions: Sequence[str] = DEFAULT_EXTENSIONS,
        limit: int | None = None,
        ignore_non_images: bool = False,
    ) -> None:
        self.root = Path(root).expanduser()
        self.extensions = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
        _check_limit(limit)
        _check_folder(self.root)
        images, others, self.n_hidden = _scan(self.root, self.extensions)
        if others and not ignore_non_images:
            raise DataValidationError(
                f"Image folder {str(self.root)!r} holds {len(others)} file(s) that are not images "
                f"(extensions {', '.join(self.extensions)}), e.g. {', '.join(others[:5])}. Remove them, pass "
                "ignore_non_images=True (or ?ignore_non_images=true) to skip them, or add their extension."
            )
        if not images:
            raise ConfigError(
                f"Image folder {str(self.root)!r} holds no images with extensions {', '.join(self.extensions)}. "
                "Point at the folder that contains the images (searched recursively)."
            )
        self.n_skipped = len(others)
        self.limit = limit
        self._ids = images[:limit] if limit is not None else images

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> list[str]:
        """Relative posix paths of the images under the root, sorted."""
        return list(self._ids)

    def load(self, i: int) -> Image.Image:
        """Decode image `i` as RGB; a corrupt or unreadable file raises DataValidationError naming it."""
        image_id = self._ids[self._check_index(i)]
        return open_rgb(self.root / image_id, label=image_id)

    def describe(self) -> dict[str, Any]:
        """Kind, root, n_images, skipped counts and the sha256 of the id list."""
        return {
            "kind": "folder",
            "root": str(self.root.resolve()),
            "revision": None,
            "n_images": len(self),
            "limit": self.limit,
            "extensions": list(self.extensions),
            "n_skipped_non_images": self.n_skipped,
            "n_hidden_ignored": self.n_hidden,
            "ids_sha256": ids_sha256(self._ids),
        }


def open_rgb(path: Path, *, label: str) -> Image.Image:
    """Open and fully decode an image file as RGB; failures raise DataValidationError naming the file."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except _DECODE_ERRORS as exc:
        raise DataValidationError(
            f"Image {label!r} ({path}) cannot be read or decoded: {type(exc).__name__}: {exc}. Replace it with a "
            "readable copy under the same name and run the same command again: it resumes from its last checkpoint. "
            "(Removing the file changes the image set; the run then asks you to delete its checkpoint and restarts.)"
        ) from exc


def _check_folder(root: Path) -> None:
    if not root.exists():
        raise SourceUnavailableError(
            f"Image folder {str(root)!r} does not exist. Check the path (e.g. your ImageNet train folder) or use "
            "the bundled sample (bundled) for a quick offline run."
        )
    if not root.is_dir():
        raise ConfigError(f"Image folder {str(root)!r} is a file, not a folder; pass the folder holding the images.")


def _scan(root: Path, extensions: tuple[str, ...]) -> tuple[list[str], list[str], int]:
    """(image ids, non-image ids, hidden entries) under root; follows symlinked folders once."""
    images: list[str] = []
    others: list[str] = []
    hidden = 0
    visited: set[str] = set()
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a symlink cycle
            dirnames[:] = []
            continue
        visited.add(real)
        hidden += sum(name.startswith(".") for name in dirnames + filenames)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        relative = Path(folder).relative_to(root)
        for name in filenames:
            if name.startswith("."):
                continue
            image_id = (relative / name).as_posix()
            (images if Path(name).suffix.lower() in extensions else others).append(image_id)
    return sorted(images), sorted(others), hidden


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit={limit!r} must be a positive integer (or None for every image).")


# ---------------------------------------------------------------------------------------------- HF dataset


class HFImageSource(ImageSource):
    """The image column of a Hugging Face dataset split (Hub id or a local dataset folder), via `datasets`.

    A folder written by `Dataset.save_to_disk` is read with `datasets.load_from_disk`; anything else (Hub id,
    imagefolder or parquet folder) with `datasets.load_dataset`. With `streaming=True` images are read in order
    (`iter_images`, `make_loader`); `load(i)` then re-reads the stream up to row i, so exemplar lookups are slow.
    """

    def __init__(
        self,
        dataset_id: str,
        *,
        split: str = "train",
        image_column: str = "image",
        revision: str | None = None,
        streaming: bool = False,
        limit: int | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        _check_limit(limit)
        self.dataset_id = dataset_id
        self.split = split
        self.image_column = image_column
        self.revision = revision
        self.streaming = streaming
        self.limit = limit
        data = _load_hf_split(dataset_id, split, revision, streaming, cache_dir)
        self._data = _image_column_of(data, image_column, dataset_id)
        self._n = self._length(data)

    def _length(self, data: Any) -> int:
        if not self.streaming:
            return min(len(data), self.limit) if self.limit is not None else len(data)
        if self.limit is not None:
            return self.limit
        splits = getattr(getattr(data, "info", None), "splits", None) or {}
        if self.split in splits and splits[self.split].num_examples:
            return int(splits[self.split].num_examples)
        raise ConfigError(
            f"Streaming dataset {self.dataset_id!r} does not state the size of split {self.split!r}; pass limit=N "
            "(or ?limit=N) to read its first N images, or streaming=False to download it."
        )

    def __len__(self) -> int:
        return self._n

    def ids(self) -> list[str]:
        """`SPLIT/ROW` for every image (ROW = 0-based row index in the split)."""
        return [f"{self.split}/{i}" for i in range(self._n)]

    @property
    def sequential_only(self) -> bool:
        """True for a streamed dataset."""
        return self.streaming

    def load(self, i: int) -> Image.Image:
        """Decode row `i`'s image as RGB (re-reads the stream up to row i when streaming)."""
        i = self._check_index(i)
        if self.streaming:
            return next(self.iter_images(i))[1]
        return self._to_rgb(self._data[i], i)

    def iter_images(self, start: int = 0) -> Iterator[tuple[int, Image.Image]]:
        """(index, image) from `start` on, reading the stream sequentially when streaming."""
        if not self.streaming:
            yield from super().iter_images(start)
            return
        rows = self._data.skip(start).take(self._n - start) if start else self._data.take(self._n)
        for offset, row in enumerate(rows):
            yield start + offset, self._to_rgb(row, start + offset)

    def _to_rgb(self, row: dict[str, Any], i: int) -> Image.Image:
        value = row.get(self.image_column)
        if not isinstance(value, Image.Image):
            raise DataValidationError(
                f"Row {i} of column {self.image_column!r} in dataset {self.dataset_id!r} is {type(value).__name__}, "
                "not an image. Choose the image column (column=...)."
            )
        try:
            return value.convert("RGB")
        except _DECODE_ERRORS as exc:
            raise DataValidationError(
                f"Image {self.split}/{i} of dataset {self.dataset_id!r} cannot be decoded: {type(exc).__name__}: "
                f"{exc}. Fix or drop that row."
            ) from exc

    def describe(self) -> dict[str, Any]:
        """Kind, dataset id, split, column, revision, fingerprint (downloaded datasets), n_images, ids sha256."""
        return {
            "kind": "hf",
            "dataset_id": self.dataset_id,
            "split": self.split,
            "image_column": self.image_column,
            "revision": self.revision,
            "fingerprint": None if self.streaming else getattr(self._data, "_fingerprint", None),
            "streaming": self.streaming,
            "limit": self.limit,
            "n_images": len(self),
            "ids_sha256": ids_sha256(self.ids()),
        }


def _load_hf_split(dataset_id: str, split: str, revision: str | None, streaming: bool, cache_dir: Any) -> Any:
    import datasets  # imported here: `datasets` takes a moment to import and only this source needs it
    from huggingface_hub.errors import HFValidationError

    folder = Path(dataset_id).expanduser()
    if folder.is_dir() and ((folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()):
        return _from_disk(datasets.load_from_disk(str(folder)), split, dataset_id, revision)
    try:
        return datasets.load_dataset(
            dataset_id,
            split=split,
            revision=revision,
            streaming=streaming,
            cache_dir=None if cache_dir is None else str(cache_dir),
        )
    except HFValidationError as exc:
        raise ConfigError(
            f"{dataset_id!r} is not a valid Hub dataset id or an existing folder ({exc}). Use OWNER/NAME "
            "(e.g. hf:ILSVRC/imagenet-1k#validation) or the path of a local dataset folder."
        ) from exc
    except ValueError as exc:
        if "split" not in str(exc).lower():
            raise
        raise ConfigError(
            f"Dataset {dataset_id!r} has no split {split!r}: {exc}. Choose one of its splits (#SPLIT)."
        ) from exc
    except _hf_unreachable_errors() as exc:
        raise _hf_unavailable(dataset_id, revision, exc) from exc


def _from_disk(data: Any, split: str, dataset_id: str, revision: str | None) -> Any:
    if revision is not None:
        raise ConfigError(
            f"revision={revision!r} cannot apply to the local dataset folder {dataset_id!r}; drop @REVISION."
        )
    if hasattr(data, "keys"):  # a DatasetDict
        if split not in data:
            raise ConfigError(
                f"Local dataset {dataset_id!r} has no split {split!r}; splits: {', '.join(data.keys())} (use #SPLIT)."
            )
        return data[split]
    return data


def _image_column_of(data: Any, column: str, dataset_id: str) -> Any:
    import datasets

    features = data.features
    if features is None:  # a stream whose features are unknown until read: rows are checked as they come
        return data
    if column not in features:
        raise ConfigError(
            f"Dataset {dataset_id!r} has no column {column!r}; columns: {', '.join(features) or '(unknown)'}. "
            "Pass image_column= (or ?column=) naming the image column."
        )
    if not isinstance(features[column], datasets.Image):
        raise ConfigError(
            f"Column {column!r} of dataset {dataset_id!r} is {features[column]!r}, not an image feature; "
            "choose the image column (image_column= / ?column=)."
        )
    return data.select_columns([column])


def _hf_unreachable_errors() -> tuple[type[BaseException], ...]:
    import huggingface_hub

    # datasets raises ConnectionError (offline / no route) or FileNotFoundError (DatasetNotFoundError); httpx
    # transport errors and HfHubHTTPError (OSError) can escape from file downloads.
    return (OSError, huggingface_hub.utils.httpx.TransportError)


def _hf_unavailable(dataset_id: str, revision: str | None, exc: BaseException) -> SourceUnavailableError:
    import datasets
    import huggingface_hub

    offline = ""
    if datasets.config.HF_HUB_OFFLINE or huggingface_hub.constants.HF_HUB_OFFLINE:
        offline = " Offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE): only cached datasets load."
    return SourceUnavailableError(
        f"Could not reach or find the dataset {dataset_id!r} (revision {revision or 'default'}): "
        f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}.{offline} Fix: check the id, download the "
        "dataset once where the network is reachable (it is then cached), or use a local copy: "
        "hf:/path/to/dataset_folder, folder:/path/to/images, or bundled."
    )


# ------------------------------------------------------------------------------------------- torch loading


class _ImageRange:
    """The images [start, stop) of a source, with the transform that turns each into a tensor."""

    def __init__(self, source: ImageSource, transform: Transform, start: int = 0, stop: int | None = None) -> None:
        self.source = source
        self.transform = transform
        self.start = start
        self.stop = len(source) if stop is None else stop

    def __len__(self) -> int:
        return self.stop - self.start


class TorchImageDataset(_ImageRange, Dataset):
    """A map-style torch dataset over an image source: item k -> (transform(image start+k), start+k), up to `stop`."""

    def __getitem__(self, k: int) -> tuple[torch.Tensor, int]:
        if not 0 <= k < len(self):
            raise IndexError(f"Item {k} is out of range for a dataset of {len(self)} images.")
        index = self.start + k
        return self.transform(self.source.load(index)), index


class StreamedImageDataset(_ImageRange, IterableDataset):
    """An iterable torch dataset reading a sequential-only source in order from `start` up to `stop`."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        if self.start >= self.stop:
            return
        for index, image in self.source.iter_images(self.start):
            yield self.transform(image), index
            if index + 1 >= self.stop:
                return


def as_torch_dataset(source: ImageSource, transform: Transform, *, start: int = 0, stop: int | None = None) -> Dataset:
    """A torch dataset of (tensor, index) pairs over images [start, stop) of the source (iterable when streamed).

    Items carry the image's GLOBAL index in the source, so the sets of shards [a, b) and [b, c) merge into exactly
    the sets of one pass over [a, c).
    """
    _check_range(source, start, stop)
    if source.sequential_only:
        return StreamedImageDataset(source, transform, start, stop)
    return TorchImageDataset(source, transform, start, stop)


def make_loader(
    source: ImageSource,
    transform: Transform,
    *,
    batch_size: int,
    num_workers: int = 0,
    pin_memory: bool = False,
    start: int = 0,
    stop: int | None = None,
    indices: Sequence[int] | None = None,
) -> DataLoader:
    """A DataLoader of (images, indices) batches in source order over images [start, stop) (stop None: to the end).

    `indices` (sorted image indices) reads only those images instead (a streamed source reads through to each).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be a positive integer.")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"num_workers={num_workers!r} must be a non-negative integer.")
    if source.sequential_only and num_workers > 0:
        raise ConfigError(
            f"A streamed source is read in order by one process; num_workers={num_workers} would duplicate images. "
            "Use num_workers=0, or load the dataset without streaming."
        )
    dataset = as_torch_dataset(source, transform, start=start, stop=stop)
    if indices is not None:
        dataset = _subset(dataset, source, indices)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=False,
    )


def _subset(dataset: Dataset, source: ImageSource, indices: Sequence[int]) -> Dataset:
    from torch.utils.data import Subset

    chosen = [int(i) for i in indices]
    if any(not 0 <= i < len(source) for i in chosen) or chosen != sorted(set(chosen)):
        raise ConfigError(f"indices must be sorted, distinct image indices in [0, {len(source)}).")
    if not source.sequential_only:
        return Subset(dataset, chosen)
    wanted = set(chosen)

    class _Filtered(IterableDataset):
        def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
            return (item for item in dataset if item[1] in wanted)

    return _Filtered()


def _check_range(source: ImageSource, start: int, stop: int | None) -> None:
    n = len(source)
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= n:
        raise ConfigError(
            f"start={start!r} must be an integer in [0, {n}] (the number of images already processed)."
        )
    if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int) or not start <= stop <= n):
        raise ConfigError(
            f"stop={stop!r} must be None (the end) or an integer in [start={start}, {n}] (one past the last image)."
        )


# ------------------------------------------------------------------------------------------------ parsing


def parse_image_source(spec: str) -> ImageSource:
    """Build an image source from `folder:PATH`, `hf:OWNER/NAME[@REV][#SPLIT]` or `bundled[:N]` (options after ?)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"Image source spec {spec!r} is empty. Valid forms: {IMAGE_SOURCE_FORMS}.")
    head, _, rest = spec.strip().partition(":")
    if head == "folder":
        return _parse_folder(rest, spec)
    if head == "hf":
        return _parse_hf(rest, spec)
    if head.split("?", 1)[0] == "bundled":
        return _parse_bundled(spec.strip().removeprefix("bundled"), spec)
    if head.split("?", 1)[0] == "shapes":
        from benchmark.stimuli.shapes import parse_shapes_source

        return parse_shapes_source(spec.strip().removeprefix("shapes"), spec)
    raise ConfigError(f"Unknown image source {spec!r}. Valid forms: {IMAGE_SOURCE_FORMS}.")


def _parse_folder(rest: str, spec: str) -> ImageSource:
    path, _, query = rest.partition("?")
    if not path:
        raise ConfigError(f"Image source {spec!r} names no folder. Valid forms: {IMAGE_SOURCE_FORMS}.")
    options = _options(query, spec, {"limit", "ignore_non_images"})
    return ImageFolderSource(
        path,
        limit=_int_option(options, "limit", spec),
        ignore_non_images=_bool_option(options, "ignore_non_images", spec, default=False),
    )


def _parse_hf(rest: str, spec: str) -> ImageSource:
    body, _, query = rest.partition("?")
    body, _, split = body.partition("#")
    dataset_id, revision = body, None
    if "@" in body:
        dataset_id, _, revision = body.rpartition("@")
    if not dataset_id or (revision is not None and not revision) or ("#" in rest and not split):
        raise ConfigError(f"Image source {spec!r} is incomplete. Valid forms: {IMAGE_SOURCE_FORMS}.")
    options = _options(query, spec, {"column", "limit", "streaming"})
    return HFImageSource(
        dataset_id,
        split=split or "train",
        image_column=options.get("column", "image"),
        revision=revision,
        streaming=_bool_option(options, "streaming", spec, default=False),
        limit=_int_option(options, "limit", spec),
    )


def _parse_bundled(rest: str, spec: str) -> ImageSource:
    from benchmark.stimuli.bundled import BundledSample

    body, _, query = rest.partition("?")
    options = _options(query, spec, {"size", "seed"})
    count: int | None = None
    if body:
        if not body.startswith(":") or not body[1:].isdigit():
            raise ConfigError(
                f"Image source {spec!r}: expected bundled or bundled:N. Valid forms: {IMAGE_SOURCE_FORMS}."
            )
        count = int(body[1:])
    kwargs: dict[str, int] = {}
    for key in ("size", "seed"):
        value = _int_option(options, key, spec)
        if value is not None:
            kwargs[key] = value
    return BundledSample(n_images=count, **kwargs) if count is not None else BundledSample(**kwargs)


def _options(query: str, spec: str, allowed: set[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise ConfigError(f"Unknown option {key!r} in image source {spec!r}; valid: {', '.join(sorted(allowed))}.")
        options[key] = value
    return options


def _int_option(options: dict[str, str], key: str, spec: str) -> int | None:
    if key not in options:
        return None
    value = options[key]
    if not value.isdigit():
        raise ConfigError(f"Option {key}={value!r} in image source {spec!r} is not a non-negative integer.")
    return int(value)


def _bool_option(options: dict[str, str], key: str, spec: str, *, default: bool) -> bool:
    if key not in options:
        return default
    value = options[key].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"Option {key}={options[key]!r} in image source {spec!r} is not a boolean (true / false).")

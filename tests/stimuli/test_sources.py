from pathlib import Path

import datasets
import huggingface_hub
import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.api.errors import ConfigError, DataValidationError, SourceUnavailableError
from benchmark.stimuli import (
    BundledSample,
    HFImageSource,
    ImageFolderSource,
    as_torch_dataset,
    make_loader,
    parse_image_source,
)
from benchmark.stimuli.sources import ids_sha256


def _image(value: int, size: tuple[int, int] = (12, 10), mode: str = "RGB") -> Image.Image:
    array = np.full((size[1], size[0], 3), value, dtype=np.uint8)
    array[0, 0] = (value * 7) % 256
    return Image.fromarray(array).convert(mode)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.resize((8, 8)), dtype=np.float32)).permute(2, 0, 1) / 255.0


@pytest.fixture
def imagenet_like(tmp_path: Path) -> Path:
    """An ImageNet-train style folder: class folders of .JPEG files (plus png / gray / palette images)."""
    root = tmp_path / "train"
    files = ["n02/b.JPEG", "n01/z.JPEG", "n01/a.jpeg", "n10/c.png", "n02/sub/d.webp", "n01/e.bmp"]
    for value, relative in enumerate(reversed(files)):  # written in another order than the sorted one
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = {".png": "P", ".bmp": "L"}.get(path.suffix.lower(), "RGB")  # palette and gray files too
        _image(10 * value, mode=mode).save(path, format="JPEG" if path.suffix.lower() == ".jpeg" else None)
    return root


def test_folder_order_is_sorted_and_deterministic(imagenet_like):
    source = ImageFolderSource(imagenet_like)
    expected = ["n01/a.jpeg", "n01/e.bmp", "n01/z.JPEG", "n02/b.JPEG", "n02/sub/d.webp", "n10/c.png"]
    assert source.ids() == expected
    assert ImageFolderSource(imagenet_like).ids() == expected
    assert len(source) == 6 and source.index_of("n02/b.JPEG") == 3
    for i in range(len(source)):
        image = source.load(i)
        assert image.mode == "RGB" and image.size == (12, 10)
    described = source.describe()
    assert described["kind"] == "folder" and described["n_images"] == 6
    assert described["ids_sha256"] == ids_sha256(expected) and described["root"] == str(imagenet_like.resolve())
    assert ImageFolderSource(imagenet_like, limit=2).ids() == expected[:2]


def test_non_image_files_error_and_ignore_flag(imagenet_like):
    (imagenet_like / "n01" / "notes.txt").write_text("not an image")
    (imagenet_like / "labels.csv").write_text("a,b")
    (imagenet_like / ".DS_Store").write_bytes(b"\0")  # hidden files are always ignored
    with pytest.raises(DataValidationError) as info:
        ImageFolderSource(imagenet_like)
    message = str(info.value)
    assert "2 file(s)" in message and "n01/notes.txt" in message and "labels.csv" in message
    assert "ignore_non_images=True" in message and ".DS_Store" not in message
    source = ImageFolderSource(imagenet_like, ignore_non_images=True)
    assert len(source) == 6 and source.n_skipped == 2
    assert source.describe()["n_skipped_non_images"] == 2 and source.describe()["n_hidden_ignored"] == 1


def test_corrupt_image_names_the_file(imagenet_like):
    (imagenet_like / "n01" / "a.jpeg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    source = ImageFolderSource(imagenet_like)
    with pytest.raises(DataValidationError) as info:
        source.load(0)
    assert "n01/a.jpeg" in str(info.value) and "readable copy under the same name" in str(info.value)
    assert source.load(1).mode == "RGB"  # the others still load


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        ImageFolderSource(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no images"):
        ImageFolderSource(tmp_path / "empty")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(ConfigError, match="is a file"):
        ImageFolderSource(tmp_path / "file.png")
    with pytest.raises(ConfigError, match="limit"):
        ImageFolderSource(tmp_path, limit=0)


def test_loader_in_order_with_start_offset(imagenet_like):
    source = ImageFolderSource(imagenet_like)
    indices = [int(i) for _, batch in make_loader(source, _to_tensor, batch_size=4) for i in batch]
    assert indices == list(range(6))
    batches = list(make_loader(source, _to_tensor, batch_size=2, start=3))
    assert [b[1].tolist() for b in batches] == [[3, 4], [5]]
    torch.testing.assert_close(batches[0][0][0], _to_tensor(source.load(3)))
    assert batches[0][0].shape == (2, 3, 8, 8)
    dataset = as_torch_dataset(source, _to_tensor)
    assert len(dataset) == 6 and dataset[5][1] == 5
    assert list(make_loader(source, _to_tensor, batch_size=2, start=6)) == []
    with pytest.raises(ConfigError, match="start"):
        make_loader(source, _to_tensor, batch_size=2, start=7)
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(source, _to_tensor, batch_size=0)


def test_loader_with_workers_keeps_order():
    source = BundledSample(n_images=10, size=32)
    loader = make_loader(source, _to_tensor, batch_size=3, num_workers=2, start=1)
    assert [int(i) for _, batch in loader for i in batch] == list(range(1, 10))


# ------------------------------------------------------------------------------------------------ HF datasets


def _saved_dataset(tmp_path: Path, n: int = 5, *, as_dict: bool = False) -> Path:
    ds = datasets.Dataset.from_dict({"img": [_image(20 * i, mode="L") for i in range(n)], "label": list(range(n))})
    ds = ds.cast_column("img", datasets.Image())
    folder = tmp_path / ("saved_dict" if as_dict else "saved")
    (datasets.DatasetDict({"validation": ds}) if as_dict else ds).save_to_disk(str(folder))
    return folder


def test_hf_saved_dataset(tmp_path, network_calls):
    folder = _saved_dataset(tmp_path)
    source = HFImageSource(str(folder), image_column="img")
    assert len(source) == 5 and source.ids() == [f"train/{i}" for i in range(5)]
    image = source.load(3)
    assert image.mode == "RGB" and np.asarray(image)[5, 5, 0] == 60
    described = source.describe()
    assert described["kind"] == "hf" and described["n_images"] == 5 and described["fingerprint"]
    assert len(HFImageSource(str(folder), image_column="img", limit=2)) == 2
    split = HFImageSource(str(_saved_dataset(tmp_path, as_dict=True)), split="validation", image_column="img")
    assert len(split) == 5
    with pytest.raises(ConfigError, match="no split 'train'; splits: validation"):
        HFImageSource(str(tmp_path / "saved_dict"), image_column="img")
    with pytest.raises(ConfigError, match="no column 'image'; columns: img, label"):
        HFImageSource(str(folder))
    with pytest.raises(ConfigError, match="not an image feature"):
        HFImageSource(str(folder), image_column="label")
    assert network_calls == []


def test_hf_parquet_folder_through_load_dataset(monkeypatch, tmp_path, network_calls):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")  # keep the user's cache clean
    folder = tmp_path / "pq"
    (folder / "data").mkdir(parents=True)
    ds = datasets.Dataset.from_dict({"image": [_image(30 * i) for i in range(4)]})
    ds = ds.cast_column("image", datasets.Image())
    ds.to_parquet(str(folder / "data" / "train-00000.parquet"))
    source = parse_image_source(f"hf:{folder}#train?limit=3")
    assert isinstance(source, HFImageSource) and len(source) == 3
    assert np.asarray(source.load(2))[3, 3].tolist() == [60, 60, 60]
    streamed = HFImageSource(str(folder), streaming=True, limit=4, cache_dir=tmp_path / "cache")
    assert streamed.sequential_only and streamed.describe()["streaming"]
    assert [i for i, _ in streamed.iter_images(1)] == [1, 2, 3]
    assert np.asarray(streamed.load(2))[3, 3].tolist() == [60, 60, 60]
    batches = list(make_loader(streamed, _to_tensor, batch_size=2, start=1))
    assert [b[1].tolist() for b in batches] == [[1, 2], [3]]
    with pytest.raises(ConfigError, match="num_workers"):
        make_loader(streamed, _to_tensor, batch_size=2, num_workers=1)
    assert network_calls == []


def test_hf_offline_unknown_dataset(monkeypatch, tmp_path, network_calls):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(SourceUnavailableError) as info:
        HFImageSource("imi-bench-test/no-such-images", revision="v1", cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "'imi-bench-test/no-such-images'" in message and "v1" in message
    assert "Offline mode is on" in message and "folder:/path/to/images" in message
    assert isinstance(info.value.__cause__, ConnectionError)  # datasets' offline path ran
    assert network_calls == []


# ---------------------------------------------------------------------------------------------------- parsing


def test_parse_image_source_forms(imagenet_like, tmp_path):
    folder = parse_image_source(f"folder:{imagenet_like}?limit=4")
    assert isinstance(folder, ImageFolderSource) and len(folder) == 4
    (imagenet_like / "x.txt").write_text("")
    assert len(parse_image_source(f"folder:{imagenet_like}?ignore_non_images=true")) == 6
    bundled = parse_image_source("bundled:30?size=64&seed=2")
    assert isinstance(bundled, BundledSample) and (len(bundled), bundled.size, bundled.seed) == (30, 64, 2)
    assert len(parse_image_source("bundled")) == 600


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("imagenet", "Unknown image source"),
        ("s3://bucket/images", "Unknown image source"),
        ("folder:", "names no folder"),
        ("folder:/x?colour=red", "Unknown option 'colour'"),
        ("bundled:many", "expected bundled or bundled:N"),
        ("bundled:10?size=big", "not a non-negative integer"),
        ("hf:owner/name@", "incomplete"),
        ("hf:owner/name#", "incomplete"),
        ("hf:owner/name?streaming=maybe", "not a boolean"),
        ("", "empty"),
    ],
)
def test_bad_image_source_specs(spec, fragment):
    with pytest.raises(ConfigError) as info:
        parse_image_source(spec)
    assert fragment in str(info.value)

"""Tests of the image embedders and the embedding cache (offline; small models with random or local weights)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.api.errors import (
    ChecksumError,
    ConfigError,
    RegistryError,
    SourceUnavailableError,
)
from benchmark.files import sha256_file
from benchmark.proxies.embedders import (
    DreamSimEmbedder,
    EmbeddingCache,
    PixelEmbedder,
    embedders,
    make_embedder,
)
from benchmark.proxies.embedders import base as emb

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_TIMM = "test_resnet.r160_in1k"  # timm's own test model: 96-d features, ~0.1 s per batch on CPU
TINY_CLIP = "ViT-S-32"  # the cheapest open_clip architecture on CPU here (384-d)


# ------------------------------------------------------------------------------------------------ fixtures


def _solid(colour: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _noise(seed: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _gradient(size: int = 64) -> Image.Image:
    ramp = np.linspace(0, 255, size, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)), np.full((size, size), 128)], -1)
    return Image.fromarray(pixels.astype(np.uint8))


@pytest.fixture
def images() -> list[Image.Image]:
    return [_solid((220, 30, 30)), _solid((30, 30, 220)), _noise(0), _gradient()]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Refuse (and record) every DNS look-up and socket connection made during the test."""
    attempts: list[tuple] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.fixture
def hf_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """HF_HUB_OFFLINE=1 with an empty Hub cache, as a user who exported it before starting Python would have."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # read once at import time by huggingface_hub
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


def _assert_unit_embeddings(vectors: np.ndarray, n: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.ndim == 2 and vectors.shape[0] == n and vectors.shape[1] > 0
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ registry


def test_registry_holds_the_four_embedders() -> None:
    assert embedders.names() == ["dreamsim", "open_clip", "pixel", "timm"]
    for name in embedders:
        assert embedders.get(name).name == name


def test_unknown_embedder_name_suggests_the_close_one() -> None:
    with pytest.raises(RegistryError, match=r"Did you mean 'pixel'\?.*Valid names: dreamsim, open_clip, pixel, timm"):
        make_embedder("pixle")


def test_unknown_parameter_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"'hist_bin'.*Did you mean 'hist_bin' -> 'hist_bins'.*size, hist_bins"):
        make_embedder("pixel", hist_bin=4)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"size": 0}, "size must be >= 1"), ({"size": 2.5}, "size must be an integer"), ({"hist_bins": 99}, "<= 32")],
)
def test_invalid_parameter_values_raise_config_error(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_embedder("pixel", **params)


def test_every_identity_is_json_and_needs_no_weights(tmp_path: Path) -> None:
    built = [
        make_embedder("pixel"),
        make_embedder("timm", model=TINY_TIMM, pretrained=False),
        make_embedder("timm", model=TINY_TIMM),  # pretrained: identity from the tag, nothing downloaded
        make_embedder("open_clip", model=TINY_CLIP, pretrained=None),
        make_embedder("open_clip"),
        make_embedder("dreamsim", weights_dir=str(tmp_path)),
    ]
    for embedder in built:
        identity = embedder.identity()
        assert identity["name"] == embedder.name
        assert json.loads(json.dumps(identity)) == identity
        assert "weights" in identity or embedder.name == "pixel"
    assert built[2].identity()["weights"]["id"] == TINY_TIMM
    assert built[4].identity()["weights"]["tag"] == "laion2b_s34b_b79k"


# --------------------------------------------------------------------------------------------------- input


def test_embed_rejects_empty_and_non_image_input() -> None:
    embedder = PixelEmbedder()
    with pytest.raises(ConfigError, match="at least one image"):
        embedder.embed([])
    with pytest.raises(ConfigError, match="Item 1 is a str"):
        embedder.embed([_solid((0, 0, 0)), "cat.png"])
    with pytest.raises(ConfigError, match="single image"):
        embedder.embed(_solid((0, 0, 0)))


# --------------------------------------------------------------------------------------------------- pixel


def test_pixel_embeddings_are_unit_norm_and_deterministic(images: list[Image.Image]) -> None:
    embedder = PixelEmbedder(size=8, hist_bins=4)
    vectors = embedder.embed(images)
    _assert_unit_embeddings(vectors, len(images))
    assert vectors.shape[1] == 8 * 8 * 3 + 4**3
    np.testing.assert_array_equal(vectors, PixelEmbedder(size=8, hist_bins=4).embed(images))


def test_pixel_similarity_is_one_for_identical_and_lower_for_other_colours() -> None:
    red, red_copy, dark_red, blue = (_solid(c) for c in [(220, 30, 30), (220, 30, 30), (200, 40, 30), (30, 30, 220)])
    vectors = PixelEmbedder().embed([red, red_copy, dark_red, blue])
    sim = vectors @ vectors.T
    assert sim[0, 1] == pytest.approx(1.0, abs=1e-5)
    assert sim[0, 2] > sim[0, 3]
    assert sim[0, 3] < 0.5


def test_pixel_accepts_grey_and_rgba_images() -> None:
    grey = Image.new("L", (20, 20), 100)
    rgba = Image.new("RGBA", (20, 20), (10, 200, 10, 128))
    _assert_unit_embeddings(PixelEmbedder().embed([grey, rgba]), 2)


# ---------------------------------------------------------------------------------------------------- timm


def test_timm_random_weights_embed_deterministically(images: list[Image.Image]) -> None:
    embedder = make_embedder("timm", model=TINY_TIMM, pretrained=False, device="cpu", batch_size=3)
    vectors = embedder.embed(images)
    _assert_unit_embeddings(vectors, len(images))
    assert vectors.shape[1] == 96
    np.testing.assert_allclose(vectors, embedder.embed(images), atol=1e-6)
    # Seeded random init: a second instance (same identity, same cache key) gives the same vectors.
    other = make_embedder("timm", model=TINY_TIMM, pretrained=False, device="cpu")
    assert other.identity() == embedder.identity()
    np.testing.assert_allclose(other.embed(images), vectors, atol=1e-5)


def test_timm_local_checkpoint_is_loaded_and_hashed(tmp_path: Path, images: list[Image.Image]) -> None:
    import timm
    import timm.data
    import torch

    torch.manual_seed(123)
    reference = timm.create_model(TINY_TIMM, pretrained=False).eval()  # with its classifier, like a real checkpoint
    checkpoint = tmp_path / "weights.pth"
    torch.save({"state_dict": reference.state_dict()}, checkpoint)

    embedder = make_embedder("timm", model=TINY_TIMM, checkpoint_path=str(checkpoint), device="cpu")
    weights = embedder.identity()["weights"]
    assert weights["source"] == "file" and weights["sha256"] == sha256_file(checkpoint)

    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=reference))
    with torch.inference_mode():
        batch = torch.stack([transform(image) for image in images])
        expected = reference.forward_head(reference.forward_features(batch), pre_logits=True)
    expected = expected.numpy() / np.linalg.norm(expected.numpy(), axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(images), expected, atol=1e-5)


def test_timm_checkpoint_of_another_architecture_is_a_config_error(tmp_path: Path) -> None:
    import torch

    checkpoint = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, checkpoint)
    embedder = make_embedder("timm", model=TINY_TIMM, checkpoint_path=str(checkpoint), device="cpu")
    with pytest.raises(ConfigError, match="could not be loaded into timm model"):
        embedder.embed([_solid((1, 2, 3))])


def test_timm_missing_checkpoint_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError, match="not an existing file"):
        make_embedder("timm", model=TINY_TIMM, checkpoint_path=str(tmp_path / "absent.pth"))


def test_timm_unknown_model_lists_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"Unknown timm model 'resnet5O'\. Did you mean .*'resnet50'"):
        make_embedder("timm", model="resnet5O")


def test_timm_unknown_tag_lists_valid_tags() -> None:
    with pytest.raises(ConfigError, match=r"Unknown pretrained tag 'a9_in1k' .*Valid: .*resnet18\.a1_in1k"):
        make_embedder("timm", model="resnet18.a9_in1k")


def test_timm_offline_pretrained_fails_clearly_without_network(
    hf_offline: None, no_network: list[tuple], images: list[Image.Image]
) -> None:
    embedder = make_embedder("timm", model=TINY_TIMM, device="cpu")  # pretrained=True by default
    with pytest.raises(SourceUnavailableError) as caught:
        embedder.embed(images)
    message = str(caught.value)
    assert TINY_TIMM in message and "checkpoint_path=" in message and "offline" in message
    assert no_network == []


# ----------------------------------------------------------------------------------------------- open_clip


def test_open_clip_random_weights_embed_deterministically(images: list[Image.Image]) -> None:
    embedder = make_embedder("open_clip", model=TINY_CLIP, pretrained=None, device="cpu")
    vectors = embedder.embed(images)
    _assert_unit_embeddings(vectors, len(images))
    assert vectors.shape[1] == 384
    np.testing.assert_allclose(vectors, embedder.embed(images), atol=1e-6)


def test_open_clip_local_weights_file(tmp_path: Path, images: list[Image.Image]) -> None:
    import open_clip
    import torch

    torch.manual_seed(7)
    reference, _, preprocess = open_clip.create_model_and_transforms(TINY_CLIP, pretrained=None, pretrained_text=False)
    checkpoint = tmp_path / "clip.pt"
    torch.save(reference.state_dict(), checkpoint)

    embedder = make_embedder("open_clip", model=TINY_CLIP, pretrained=str(checkpoint), device="cpu")
    assert embedder.identity()["weights"] == {"source": "file", "sha256": sha256_file(checkpoint)}
    with torch.inference_mode():
        expected = reference.eval().encode_image(torch.stack([preprocess(i) for i in images])).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.embed(images), expected, atol=1e-5)


def test_open_clip_unknown_architecture_lists_valid_ones() -> None:
    expected = r"Unknown open_clip architecture 'ViT-B-33'\. Did you mean .*'ViT-B-32'.*Valid: .*RN50"
    with pytest.raises(ConfigError, match=expected):
        make_embedder("open_clip", model="ViT-B-33", pretrained=None)


def test_open_clip_unknown_tag_lists_valid_tags() -> None:
    with pytest.raises(ConfigError, match=r"neither a pretrained tag .*Valid tags: openai, .*laion2b_s34b_b79k"):
        make_embedder("open_clip", model="ViT-B-32", pretrained="laion2b_s34b_b80k")


def test_open_clip_offline_pretrained_fails_clearly_without_network(
    hf_offline: None, no_network: list[tuple], images: list[Image.Image]
) -> None:
    embedder = make_embedder("open_clip", model="ViT-B-32", pretrained="laion2b_s34b_b79k", device="cpu")
    with pytest.raises(SourceUnavailableError) as caught:
        embedder.embed(images)
    message = str(caught.value)
    assert "'ViT-B-32' / 'laion2b_s34b_b79k'" in message and "pretrained='/path/to/" in message
    assert no_network == []


def test_offline_failures_as_a_user_sees_them(tmp_path: Path) -> None:
    """A fresh interpreter started with HF_HUB_OFFLINE=1 and no cached weights: both hub embedders fail clearly."""
    script = textwrap.dedent(
        f"""
        import json, socket
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(repr(args))
            raise OSError("network access attempted")
        socket.getaddrinfo = refuse
        socket.socket.connect = refuse
        from PIL import Image
        from benchmark.proxies.embedders import make_embedder
        results = {{}}
        for name, params in [("timm", {{"model": "{TINY_TIMM}"}}), ("open_clip", {{"model": "ViT-B-32"}})]:
            try:
                make_embedder(name, device="cpu", **params).embed([Image.new("RGB", (8, 8))])
                results[name] = ["no error", ""]
            except Exception as err:  # the test inspects whatever the user would see
                results[name] = [type(err).__name__, str(err)]
        print(json.dumps({{"results": results, "attempts": attempts}}))
        """
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["attempts"] == []
    for name, (kind, message) in report["results"].items():
        assert kind == "SourceUnavailableError", (name, kind, message)
        assert "offline" in message
    assert TINY_TIMM in report["results"]["timm"][1]


# ------------------------------------------------------------------------------------------------ dreamsim


def test_dreamsim_default_weights_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMIBENCH_DREAMSIM_DIR", str(tmp_path / "from-env"))
    assert DreamSimEmbedder().weights_dir == tmp_path / "from-env"
    monkeypatch.delenv("IMIBENCH_DREAMSIM_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert DreamSimEmbedder().weights_dir == tmp_path / ".cache" / "imibench" / "dreamsim"


def test_dreamsim_unknown_type_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"Unknown dreamsim_type 'ensemle'\. Did you mean 'ensemble'\?.*dino_vitb16"):
        DreamSimEmbedder(dreamsim_type="ensemle")


def test_dreamsim_missing_weights_name_every_expected_path(tmp_path: Path) -> None:
    embedder = DreamSimEmbedder(weights_dir=str(tmp_path))
    with pytest.raises(SourceUnavailableError) as caught:
        embedder.check_weights()
    message = str(caught.value)
    for name in [
        "dino_vitb16_pretrain.pth",
        "open_clip_vitb16_pretrain.pth.tar",
        "clip_vitb16_pretrain.pth.tar",
        "ensemble_lora/adapter_config.json",
        "ensemble_lora/adapter_model.safetensors or",
        "checkpoints/dino_vitbase16_pretrain.pth",
        "facebookresearch_dino_main/hubconf.py",
    ]:
        assert str(tmp_path / name) in message
    assert "download=True" in message and "IMIBENCH_DREAMSIM_DIR" in message


def test_dreamsim_weights_check_passes_when_files_are_present(tmp_path: Path) -> None:
    embedder = DreamSimEmbedder(weights_dir=str(tmp_path), dreamsim_type="clip_vitb32")
    for path in embedder.expected_files():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    assert embedder.missing_files() == [str(tmp_path / "clip_vitb32_single_lora" / "adapter_model.safetensors")
                                        + " or " + str(tmp_path / "clip_vitb32_single_lora" / "adapter_model.bin")]
    (tmp_path / "clip_vitb32_single_lora" / "adapter_model.bin").touch()
    embedder.check_weights()


def test_dreamsim_without_the_package_asks_to_install_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "dreamsim", None)  # `import dreamsim` now fails, installed or not
    embedder = make_embedder("dreamsim", weights_dir=str(tmp_path), device="cpu")
    with pytest.raises(ConfigError, match=r'pip install "imi-bench\[dreamsim\]"'):
        embedder.embed([_solid((1, 2, 3))])


@pytest.mark.skipif(importlib.util.find_spec("dreamsim") is None, reason="the optional dreamsim package is absent")
def test_dreamsim_installed_without_weights_fails_before_any_download(
    tmp_path: Path, no_network: list[tuple]
) -> None:
    embedder = make_embedder("dreamsim", weights_dir=str(tmp_path / "weights"), device="cpu")
    with pytest.raises(SourceUnavailableError, match=str(tmp_path / "weights" / "ensemble_lora")):
        embedder.embed([_solid((1, 2, 3))])
    assert no_network == [] and not (tmp_path / "weights").exists()


# --------------------------------------------------------------------------------------------------- cache


class CountingPixel(PixelEmbedder):
    """PixelEmbedder that counts the images it is asked to embed."""

    def __init__(self, **params: int) -> None:
        super().__init__(**params)
        self.embedded = 0

    def _embed(self, images: list[Image.Image]) -> np.ndarray:
        self.embedded += len(images)
        return super()._embed(images)


def _write_images(folder: Path, images: list[Image.Image]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img{i}.png" for i in range(len(images))]
    for image, path in zip(images, paths, strict=True):
        image.save(path)
    return paths


def test_cache_second_call_is_all_hits(images: list[Image.Image]) -> None:
    cache, embedder = EmbeddingCache(), CountingPixel()
    first = cache.embed_images(embedder, images, batch_size=3)
    assert (cache.hits, cache.misses, embedder.embedded) == (0, len(images), len(images))
    second = cache.embed_images(embedder, images)
    assert (cache.hits, cache.misses, embedder.embedded) == (len(images), len(images), len(images))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, PixelEmbedder().embed(images), atol=1e-7)


def test_cache_embeds_duplicates_once_and_keeps_order(images: list[Image.Image]) -> None:
    cache, embedder = EmbeddingCache(), CountingPixel()
    copy = images[2].copy()
    vectors = cache.embed_images(embedder, [images[2], images[0], copy, images[2]])
    assert embedder.embedded == 2 and (cache.misses, cache.hits) == (2, 2)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[1], PixelEmbedder().embed([images[0]])[0])


def test_cache_paths_are_keyed_by_file_bytes(tmp_path: Path, images: list[Image.Image]) -> None:
    paths = _write_images(tmp_path / "a", images)
    duplicate = tmp_path / "b" / "same.png"
    duplicate.parent.mkdir()
    duplicate.write_bytes(paths[1].read_bytes())
    cache, embedder = EmbeddingCache(), CountingPixel()
    vectors = cache.embed_paths(embedder, [*paths, duplicate], progress=True)
    assert embedder.embedded == len(images) and cache.hits == 1
    np.testing.assert_array_equal(vectors[1], vectors[-1])
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        cache.embed_paths(embedder, [tmp_path / "missing.png"])


def test_cache_hashes_each_file_once_and_a_new_cache_sees_changes(tmp_path: Path, images: list[Image.Image],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark.proxies.embedders import cache as cache_module

    paths = _write_images(tmp_path / "a", images[:2])
    hashed: list[Path] = []
    real = cache_module.file_key
    monkeypatch.setattr(cache_module, "file_key", lambda path: hashed.append(path) or real(path))
    cache, embedder = EmbeddingCache(), CountingPixel()
    first = cache.embed_paths(embedder, paths)
    for _ in range(3):
        cache.embed_paths(embedder, [str(p) for p in paths])
    assert hashed == paths  # repeated lookups (one per refit) do not re-read the files
    images[3].save(paths[0])  # the file changes on disk: a new cache (a new run) re-hashes it
    fresh, counting = EmbeddingCache(), CountingPixel()
    changed = fresh.embed_paths(counting, paths)
    assert hashed == [*paths, *paths] and counting.embedded == 2
    np.testing.assert_array_equal(changed[0], PixelEmbedder().embed([images[3]])[0])
    np.testing.assert_array_equal(changed[1], first[1])


def test_on_disk_cache_reloads_identical_arrays(tmp_path: Path, images: list[Image.Image]) -> None:
    paths = _write_images(tmp_path / "images", images)
    first = EmbeddingCache(tmp_path / "cache").embed_paths(CountingPixel(), paths)
    files = sorted((tmp_path / "cache").iterdir())
    assert [f.suffix for f in files] == [".npz"]  # one file per identity, no temporary leftovers

    reloaded, embedder = EmbeddingCache(tmp_path / "cache"), CountingPixel()
    second = reloaded.embed_paths(embedder, paths)
    assert embedder.embedded == 0 and reloaded.hits == len(paths) and reloaded.misses == 0
    np.testing.assert_array_equal(first, second)


def test_on_disk_cache_keeps_entries_written_by_another_process(tmp_path: Path, images: list[Image.Image]) -> None:
    one, two = EmbeddingCache(tmp_path), EmbeddingCache(tmp_path)
    one.embed_images(PixelEmbedder(), images[:2])
    two.embed_images(PixelEmbedder(), images[2:])  # `two` read nothing before `one` wrote; it must merge on save
    fresh, embedder = EmbeddingCache(tmp_path), CountingPixel()
    fresh.embed_images(embedder, images)
    assert embedder.embedded == 0


def test_different_parameters_get_different_cache_keys(tmp_path: Path, images: list[Image.Image]) -> None:
    cache = EmbeddingCache(tmp_path)
    small, large = CountingPixel(size=8), CountingPixel(size=16)
    assert cache.file_for(small) != cache.file_for(large)
    assert emb.identity_hash(small.identity()) != emb.identity_hash(large.identity())
    a = cache.embed_images(small, images)
    b = cache.embed_images(large, images)
    assert large.embedded == len(images) and a.shape[1] != b.shape[1]
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_timm_identity_differs_by_weights(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    random_init = make_embedder("timm", model=TINY_TIMM, pretrained=False)
    pretrained = make_embedder("timm", model=TINY_TIMM)
    other_arch = make_embedder("timm", model="test_vit.r160_in1k", pretrained=False)
    assert len({cache.file_for(e) for e in (random_init, pretrained, other_arch)}) == 3


def test_corrupt_cache_file_is_a_checksum_error(tmp_path: Path, images: list[Image.Image]) -> None:
    embedder = PixelEmbedder()
    EmbeddingCache(tmp_path).embed_images(embedder, images)
    path = EmbeddingCache(tmp_path).file_for(embedder)
    path.write_bytes(b"not a zip file")
    with pytest.raises(ChecksumError, match="delete it"):
        EmbeddingCache(tmp_path).embed_images(embedder, images)


def test_cache_file_of_another_identity_is_refused(tmp_path: Path, images: list[Image.Image]) -> None:
    cache = EmbeddingCache(tmp_path)
    small, large = PixelEmbedder(size=8), PixelEmbedder(size=16)
    cache.embed_images(small, images)
    os.replace(cache.file_for(small), cache.file_for(large))
    with pytest.raises(ChecksumError, match="belongs to embedder"):
        EmbeddingCache(tmp_path).embed_images(large, images)


# ----------------------------------------------------------------------------------------------------- gpu


@pytest.mark.gpu
def test_timm_on_cuda_matches_cpu_under_bf16_autocast(images: list[Image.Image]) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    gpu = make_embedder("timm", model=TINY_TIMM, pretrained=False)  # device=None picks cuda
    cpu = make_embedder("timm", model=TINY_TIMM, pretrained=False, device="cpu")
    assert gpu.identity()["device"] == "cuda" and gpu.identity()["precision"] == "bfloat16-autocast"
    on_gpu, on_cpu = gpu.embed(images), cpu.embed(images)
    _assert_unit_embeddings(on_gpu, len(images))
    assert np.min(np.sum(on_gpu * on_cpu, axis=1)) > 0.99


# ----------------------------------------------------------------------------- dreamsim architecture, random weights


@pytest.fixture
def tiny_dreamsim(monkeypatch: pytest.MonkeyPatch) -> None:
    """The DreamSim ensemble graph at toy width (the full ViT-B/16 size is checked by the slow test)."""
    from benchmark.proxies.embedders import dreamsim_arch

    full = dreamsim_arch.DreamSimEnsemble.random.__func__
    monkeypatch.setattr(dreamsim_arch.DreamSimEnsemble, "random",
                        classmethod(lambda cls, seed: full(cls, seed, width=32, depth=1, heads=2)))


def test_dreamsim_random_weights_embed_through_cache_and_batches(tiny_dreamsim, tmp_path: Path) -> None:
    import torch

    from benchmark.proxies.embedders import dreamsim_arch

    images = [Image.new("RGB", (40 + 7 * i, 30 + 3 * i), (20 * i, 255 - 20 * i, 90)) for i in range(5)]
    embedder = make_embedder("dreamsim", pretrained=False, device="cpu", batch_size=2, weights_dir=str(tmp_path / "x"))
    assert embedder.identity()["weights"]["source"] == "random_init"
    vectors = embedder.embed(images)
    assert vectors.shape == (5, 32 + 512 + 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    one_batch = make_embedder("dreamsim", pretrained=False, device="cpu", batch_size=8).embed(images)
    np.testing.assert_allclose(vectors, one_batch, atol=1e-5)  # batching does not change an embedding
    # the ensemble's own output is L2-normalised then centred, as dreamsim's normalize_embedding
    raw = dreamsim_arch.DreamSimEnsemble.random(0).eval()(torch.stack([dreamsim_arch.preprocess(i) for i in images]))
    assert torch.allclose(raw.mean(dim=1), torch.zeros(5), atol=1e-6)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        image.save(paths[-1])
    cache = EmbeddingCache(tmp_path / "cache")
    first = cache.embed_paths(embedder, paths, batch_size=2)
    np.testing.assert_allclose(first, vectors, atol=1e-5)
    embedder._model = None  # a second call must come from the cache, not the model
    embedder._load = lambda: pytest.fail("embedded again instead of reading the cache")
    np.testing.assert_array_equal(cache.embed_paths(embedder, paths, batch_size=2), first)


def test_dreamsim_random_weights_only_for_the_ensemble() -> None:
    with pytest.raises(ConfigError, match="architecture only.*dreamsim_type='ensemble'"):
        make_embedder("dreamsim", pretrained=False, dreamsim_type="dino_vitb16")


def test_mis_dreamsim_scores_units_end_to_end_on_random_weights(tiny_dreamsim, sim_units, tmp_path: Path) -> None:
    from benchmark.proxies import make_proxy

    data = sim_units.subset(6, n_tasks=2)
    metric = make_proxy("mis-dreamsim", embedder_params={"pretrained": False, "device": "cpu"},
                        cache_dir=str(tmp_path / "cache"), batch_size=16)
    scores = metric.fit(data.units, data.accuracy).predict(data.units)
    assert scores.shape == (6,) and np.all((scores >= 0) & (scores <= 1)) and metric.temperature_ > 0
    assert metric.get_embedder().identity()["weights"]["source"] == "random_init"


@pytest.mark.slow
def test_dreamsim_full_size_architecture_on_random_weights() -> None:
    embedder = make_embedder("dreamsim", pretrained=False, device="cpu")
    vectors = embedder.embed([Image.new("RGB", (500, 375), (200, 10, 10)), Image.new("RGB", (375, 500), (0, 0, 9))])
    assert vectors.shape == (2, 768 + 512 + 512)
    import open_clip
    import timm

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    reference = count(timm.create_model("vit_base_patch16_224", num_classes=0))
    reference += 2 * count(open_clip.create_model("ViT-B-16", pretrained=None).visual)
    assert count(embedder._model) == reference

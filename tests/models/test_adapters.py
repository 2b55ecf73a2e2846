import hashlib
import time
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import safetensors.torch
import timm
import torch
import torchvision
from PIL import Image

from benchmark.api.errors import ChecksumError, ConfigError, SourceUnavailableError
from benchmark.models import DataConfig, LoadedModel, load_model

TINY_VIT = "test_vit.r160_in1k"  # timm's test model: 0.4 M parameters, 160 x 160 input


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """HF_HUB_OFFLINE=1 where the libraries read it, with empty Hugging Face and torch hub caches."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch_hub"))
    return tmp_path


def _forward(loaded: LoadedModel, image: Image.Image | None = None) -> tuple[torch.Tensor, float]:
    image = image or Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 240, 3), dtype=np.uint8))
    batch = loaded.transform(image).unsqueeze(0)
    assert tuple(batch.shape[1:]) == loaded.input_size
    start = time.perf_counter()
    with torch.no_grad():
        out = loaded.module(batch)
    return out, time.perf_counter() - start


def test_timm_random_weights_use_the_models_own_data_config():
    loaded = load_model(f"timm:{TINY_VIT}?pretrained=false")
    assert isinstance(loaded.data_config, DataConfig)
    assert loaded.data_config.input_size == (3, 160, 160)  # not 224: from the model's pretrained config
    assert loaded.data_config["input_size"] == (3, 160, 160)  # also readable like timm's dict
    assert dict(loaded.data_config)["crop_pct"] == pytest.approx(0.95)
    assert loaded.data_config.mean == (0.5, 0.5, 0.5)
    assert not loaded.module.training
    assert loaded.weights_sha256 is None and loaded.weights_id == f"random-init:timm:{TINY_VIT}"
    assert loaded.n_parameters == sum(p.numel() for p in loaded.module.parameters())
    out, _ = _forward(loaded)
    assert out.shape == (1, 1000)


def test_random_weights_are_reproducible_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = load_model(f"timm:{TINY_VIT}?pretrained=false")
    assert torch.equal(torch.rand(3), expected_next)  # the global RNG stream is untouched
    second = load_model(f"timm:{TINY_VIT}?pretrained=false")
    other = load_model(f"timm:{TINY_VIT}?pretrained=false", init_seed=1)
    assert torch.equal(first.module.head.weight, second.module.head.weight)
    assert not torch.equal(first.module.head.weight, other.module.head.weight)
    assert other.weights_id == f"random-init(seed=1):timm:{TINY_VIT}"


def test_timm_resnet18_loads_and_runs():
    loaded = load_model("timm:resnet18?pretrained=false")
    assert loaded.data_config.input_size == (3, 224, 224)
    assert loaded.weights_id == "random-init:timm:resnet18.a1_in1k"  # timm's default tag, named
    out, _ = _forward(loaded)
    assert out.shape == (1, 1000)


def test_torchvision_resnet18_loads_and_runs():
    loaded = load_model("torchvision:resnet18?pretrained=false")
    assert loaded.data_config.input_size == (3, 224, 224)
    assert loaded.data_config.crop_pct == pytest.approx(224 / 256)
    assert loaded.data_config.interpolation == "bilinear"
    out, _ = _forward(loaded)
    assert out.shape == (1, 1000)


def test_open_clip_visual_tower_loads_and_runs():
    loaded = load_model("open_clip:ViT-S-32?pretrained=false")
    assert type(loaded.module).__name__ == "VisionTransformer"  # the visual tower, not the CLIP model
    assert loaded.data_config.input_size == (3, 224, 224)
    assert loaded.data_config.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert loaded.data_config.interpolation == "bicubic" and loaded.data_config.crop_pct == 1.0
    out, _ = _forward(loaded)
    assert out.shape == (1, 384)


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("timm:resnet18.a1_in1k", ["timm:resnet18.a1_in1k", "LocalEntryNotFoundError", "Offline mode is on"]),
        ("timm:resnet18.a1_in1k?revision=abc123", ["timm:resnet18.a1_in1k (revision abc123)"]),
        ("timm:hf-hub:timm/resnet18.a1_in1k", ["hf-hub:timm/resnet18.a1_in1k", "Offline mode is on"]),
        ("open_clip:ViT-B-32/datacomp_s_s13m_b4k", ["open_clip:ViT-B-32/datacomp_s_s13m_b4k", "Offline mode is on"]),
        ("torchvision:resnet18/IMAGENET1K_V1", ["torchvision:resnet18/IMAGENET1K_V1", "resnet18-f37072fd.pth"]),
    ],
)
def test_offline_hub_failure_names_the_model_and_the_fix(offline, network_calls, spec, fragments):
    with pytest.raises(SourceUnavailableError) as info:
        load_model(spec)
    message = str(info.value)
    for fragment in fragments + ["HF_HUB_OFFLINE", "local:/path/weights.safetensors", "cache"]:
        assert fragment in message
    assert network_calls == []


def test_offline_timm_failure_comes_from_the_hub_download(offline, network_calls):
    with pytest.raises(SourceUnavailableError) as info:
        load_model("timm:resnet18.a1_in1k")
    cause = info.value.__cause__
    assert isinstance(cause, huggingface_hub.errors.LocalEntryNotFoundError)  # the download path really ran
    assert network_calls == []


def test_offline_torchvision_loads_from_a_populated_cache(offline, network_calls):
    reference = torchvision.models.resnet18(weights=None)
    checkpoints = offline / "torch_hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference.state_dict(), checkpoints / "resnet18-f37072fd.pth")
    loaded = load_model("torchvision:resnet18/IMAGENET1K_V1")
    assert torch.equal(loaded.module.conv1.weight, reference.conv1.weight)
    assert loaded.weights_id.startswith("torchvision:resnet18/IMAGENET1K_V1")
    assert network_calls == []


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("timm:resnt18", ["Unknown timm architecture 'resnt18'", "'resnet18'"]),
        ("timm:resnet18.bogus", ["no pretrained tag 'bogus'", "a1_in1k"]),
        ("open_clip:ViT-B-23/openai", ["Unknown open_clip architecture 'ViT-B-23'", "'ViT-B-32'"]),
        ("open_clip:ViT-B-32/bogus", ["no pretrained tag 'bogus'", "laion2b_s34b_b79k"]),
        ("open_clip:ViT-B-32", ["names no pretrained tag", "openai"]),
        ("torchvision:resnet_18", ["Unknown torchvision classification model 'resnet_18'", "'resnet18'"]),
        ("torchvision:resnet18/IMAGENET9K", ["no weights 'IMAGENET9K'", "IMAGENET1K_V1"]),
    ],
)
def test_unknown_models_and_tags_suggest_valid_ones(network_calls, spec, fragments):
    with pytest.raises(ConfigError) as info:
        load_model(spec)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert network_calls == []


# ------------------------------------------------------------------------------------------- local weights


@pytest.fixture(scope="module")
def trained_vit() -> torch.nn.Module:
    model = timm.create_model(TINY_VIT, pretrained=False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)  # differ from a fresh random init
    return model.eval()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_local_weights_load_and_record_sha256(tmp_path, network_calls, trained_vit, suffix):
    path = tmp_path / f"vit{suffix}"
    state = {k: v.contiguous() for k, v in trained_vit.state_dict().items()}
    if suffix == ".safetensors":
        safetensors.torch.save_file(state, str(path))
    else:
        torch.save(state, path)
    digest = _sha256(path)
    loaded = load_model(f"local:{path}?arch=timm:{TINY_VIT}&sha256={digest}")
    assert loaded.weights_sha256 == digest
    assert loaded.weights_id == f"file:{path.resolve()}"
    assert loaded.data_config.input_size == (3, 160, 160)
    for key, value in trained_vit.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[key], value), key
    batch = torch.rand(2, *loaded.input_size)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(batch), trained_vit(batch))
    assert network_calls == []


def test_local_weights_in_a_checkpoint_container_with_ddp_prefix(tmp_path, trained_vit):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained_vit.state_dict().items()}}, path)
    loaded = load_model(f"timm:{TINY_VIT}?weights={path}")
    assert torch.equal(loaded.module.head.weight, trained_vit.head.weight)


def test_wrong_checksum_names_both(tmp_path, trained_vit):
    path = tmp_path / "vit.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in trained_vit.state_dict().items()}, str(path))
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        load_model(f"local:{path}?arch=timm:{TINY_VIT}&sha256={wrong}")
    assert wrong in str(info.value) and _sha256(path) in str(info.value) and str(path) in str(info.value)


def test_weights_of_another_architecture_name_keys(tmp_path, trained_vit):
    path = tmp_path / "vit.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in trained_vit.state_dict().items()}, str(path))
    with pytest.raises(ConfigError) as info:
        load_model(f"local:{path}?arch=timm:resnet18")
    message = str(info.value)
    assert "missing" in message and "unexpected" in message
    assert "conv1.weight" in message and "blocks.0.attn" in message


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(1), "payload": Image.new("RGB", (1, 1))}, path)
    with pytest.raises(ConfigError, match="weights_only=True"):
        load_model(f"local:{path}?arch=timm:{TINY_VIT}")


def test_missing_weights_file(tmp_path):
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        load_model(f"local:{tmp_path / 'nope.safetensors'}?arch=timm:{TINY_VIT}")


@pytest.fixture(scope="module")
def trained_clip() -> torch.nn.Module:
    import open_clip

    clip = open_clip.create_model("ViT-S-32", pretrained=None, pretrained_text=False)
    with torch.no_grad():
        clip.visual.conv1.weight.add_(1.0)
    return clip


@pytest.mark.parametrize("layout", ["full", "visual-prefixed"])
def test_open_clip_local_weights(tmp_path, trained_clip, layout):
    state = {
        "full": trained_clip.state_dict(),  # the whole CLIP model (text tower included)
        "visual-prefixed": {f"visual.{k}": v for k, v in trained_clip.visual.state_dict().items()},
    }[layout]
    path = tmp_path / "clip.pt"
    torch.save(state, path)
    loaded = load_model(f"local:{path}?arch=open_clip:ViT-S-32")
    assert torch.equal(loaded.module.conv1.weight, trained_clip.visual.conv1.weight)
    assert loaded.weights_sha256 == _sha256(path)

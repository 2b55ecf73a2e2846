"""The tensor decode path (GPU in production; the same ops on the CPU here) against the PIL path."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.activations import collect_extremes, layer_selections
from benchmark.api.errors import ConfigError
from benchmark.models.adapters import load_model
from benchmark.models.spec import parse_model_spec
from benchmark.models.units import list_layers, sample_units, select_layers
from benchmark.stimuli.decode import DeviceDecodedLoader, TensorTransform, jpeg_components, resolve_decode
from benchmark.stimuli.jpeg_folder import write_jpeg_folder
from benchmark.stimuli.sources import ImageFolderSource, make_loader


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpegs")
    write_jpeg_folder(root, 48, n_cmyk=2, grey_fraction=0.1, seed=3)
    Image.new("RGB", (300, 200), (10, 200, 30)).save(root / "n00000000" / "zz_png.png")
    return ImageFolderSource(root)


@pytest.fixture(scope="module")
def loaded():
    return load_model(parse_model_spec("timm:resnet18?pretrained=false"), device=torch.device("cpu"))


def encoded(image: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_jpeg_components_tell_grey_colour_cmyk_and_other_files_apart() -> None:
    rgb = Image.new("RGB", (40, 30), (1, 2, 3))
    assert jpeg_components(encoded(rgb)) == 3
    assert jpeg_components(encoded(rgb, progressive=True)) == 3
    assert jpeg_components(encoded(rgb.convert("L"))) == 1
    assert jpeg_components(encoded(rgb.convert("CMYK"))) == 4
    assert jpeg_components(encoded(rgb, "PNG")) is None
    assert jpeg_components(b"\xff\xd8\xff") is None


def test_folder_has_imagenet_like_files(folder) -> None:
    sizes = [Image.open(folder.root / i).size for i in folder.ids()]
    modes = {Image.open(folder.root / i).mode for i in folder.ids()}
    assert {"RGB", "L", "CMYK"} <= modes and (500, 375) in sizes
    assert len(set(sizes)) > 5


def test_tensor_geometry_equals_the_models_pil_transform(folder, loaded) -> None:
    transform = TensorTransform.from_data_config(loaded.data_config)
    assert transform.scale_size == int(224 / loaded.data_config.crop_pct)
    pil = torch.cat([x for x, _ in make_loader(folder, loaded.transform, batch_size=16)])
    tensor, ids = zip(*DeviceDecodedLoader(folder, transform, device="cpu", batch_size=16), strict=True)
    tensor = torch.cat(tensor)
    assert torch.equal(torch.cat(ids), torch.arange(len(folder)))
    one_level = 1 / 255 / min(loaded.data_config.std)
    assert (pil - tensor).abs().max() <= one_level * 1.01  # at most one grey level anywhere
    assert (pil - tensor).abs().mean() < 0.01 * one_level


def top_k_sets(loaded, batches) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    layers = select_layers(list_layers(loaded), patterns=["layer2.*.bn2", "layer4.*.bn2"])
    units = sample_units(layers, per_layer=6)
    sets = collect_extremes(loaded.module, layer_selections(units, layers), batches, k=4, progress=False)
    return {name: (np.sort(s.top_ids.numpy(), 1), np.sort(s.bottom_ids.numpy(), 1)) for name, s in sets.items()}


def test_top_k_sets_are_equal_with_either_decode_path(folder, loaded) -> None:
    transform = TensorTransform.from_data_config(loaded.data_config)
    pil = top_k_sets(loaded, make_loader(folder, loaded.transform, batch_size=16))
    tensor = top_k_sets(loaded, DeviceDecodedLoader(folder, transform, device="cpu", batch_size=16))
    for name in pil:
        np.testing.assert_array_equal(pil[name][0], tensor[name][0])
        np.testing.assert_array_equal(pil[name][1], tensor[name][1])


def test_decode_choice_errors_clearly_and_auto_falls_back(folder, loaded) -> None:
    if torch.cuda.is_available():
        pytest.skip("checks the machine without CUDA")
    with pytest.raises(ConfigError, match="--decode gpu cannot run: CUDA is not available"):
        resolve_decode("gpu", folder, torch.device("cpu"), loaded.data_config)
    assert resolve_decode("auto", folder, torch.device("cpu"), loaded.data_config) == "cpu"
    assert resolve_decode("cpu", folder, torch.device("cpu"), loaded.data_config) == "cpu"
    with pytest.raises(ConfigError, match="not one of"):
        resolve_decode("nvjpeg", folder, torch.device("cpu"), loaded.data_config)


def test_unsupported_geometry_is_refused(loaded) -> None:
    squash = dict(loaded.data_config) | {"crop_mode": "squash"}
    with pytest.raises(ConfigError, match="crop_mode='squash'.*--decode cpu"):
        TensorTransform.from_data_config(squash)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_decode_gives_the_cpu_top_k_sets(folder, loaded) -> None:
    transform = TensorTransform.from_data_config(loaded.data_config)
    assert resolve_decode("auto", folder, torch.device("cuda"), loaded.data_config) == "gpu"
    cpu = top_k_sets(loaded, make_loader(folder, loaded.transform, batch_size=16))
    gpu_batches = [(x.cpu(), i) for x, i in DeviceDecodedLoader(folder, transform, device="cuda", batch_size=16)]
    gpu = top_k_sets(loaded, gpu_batches)
    for name in cpu:
        np.testing.assert_array_equal(cpu[name][0], gpu[name][0])
        np.testing.assert_array_equal(cpu[name][1], gpu[name][1])


def test_prepared_copy_keeps_ids_and_shrinks_the_short_side(folder, tmp_path) -> None:
    from benchmark.stimuli.jpeg_folder import prepare_resized_copy

    ids = folder.ids()[:6]
    copy = ImageFolderSource(prepare_resized_copy(folder.root, tmp_path / "copy", ids, short_side=64))
    assert copy.ids() == sorted(ids)
    for image_id in ids:
        original = Image.open(folder.root / image_id).size
        assert min(Image.open(copy.root / image_id).size) == min(64, min(original))


def test_loaders_read_only_the_given_indices(folder, loaded) -> None:
    chosen = [1, 5, 7]
    pil = torch.cat([ids for _, ids in make_loader(folder, loaded.transform, batch_size=2, indices=chosen)])
    transform = TensorTransform.from_data_config(loaded.data_config)
    tensor = torch.cat([ids for _, ids in DeviceDecodedLoader(folder, transform, device="cpu", batch_size=2,
                                                                indices=chosen)])
    assert pil.tolist() == tensor.tolist() == chosen
    with pytest.raises(ConfigError, match="sorted, distinct"):
        make_loader(folder, loaded.transform, batch_size=2, indices=[5, 1])

"""collect_extremes against a brute-force pass that stores every activation; early stop, hooks, resume."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from torch import nn

from benchmark.activations import CheckpointConfig, ExtremeSets, LayerSelection, collect_extremes, layer_selections
from benchmark.activations.checkpoint import hash_ids
from benchmark.api.errors import ConfigError

from .test_extremes import brute_force

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 12, 3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(12, 5),
    )


def images_and_ids(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, size, size, generator=generator)
    ids = torch.randperm(10 * n, generator=generator)[:n]  # shuffled, non-contiguous ids
    return images, ids


def batches(images: torch.Tensor, ids: torch.Tensor, batch_size: int, start: int = 0) -> Batches:
    return [(images[i : i + batch_size], ids[i : i + batch_size]) for i in range(start, len(ids), batch_size)]


def brute_force_pass(
    model: nn.Module, layers: dict[str, LayerSelection], loader: Batches, k: int
) -> dict[str, dict[str, np.ndarray]]:
    """Store every image's reduced activations of every selected layer, then rank them all at once."""
    stored: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    modules = dict(model.named_modules())

    def keep(name: str):
        def hook(module, inputs, output):
            dims = (2, 3) if output.ndim == 4 else (1,) if output.ndim == 3 else ()
            stored[name].append(output.mean(dim=dims, dtype=torch.float32) if dims else output.float())

        return hook

    handles = [modules[name].register_forward_hook(keep(name)) for name in layers]
    model.eval()
    with torch.inference_mode():
        for images, _ in loader:
            model(images.contiguous(memory_format=torch.channels_last))
    for handle in handles:
        handle.remove()
    ids = torch.cat([i for _, i in loader]).numpy()
    expected = {}
    for name, selection in layers.items():
        values = torch.cat(stored[name]).numpy()
        if selection.channels is not None:
            values = values[:, list(selection.channels)]
        expected[name] = brute_force(values, ids, k)
    return expected


def assert_sets_equal(got: dict[str, ExtremeSets], expected: dict[str, dict[str, np.ndarray]]) -> None:
    assert set(got) == set(expected)
    for name, want in expected.items():
        arrays = got[name].to_numpy()
        for field, array in want.items():
            np.testing.assert_array_equal(arrays[field], array, err_msg=f"{name}.{field}")


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


CNN_LAYERS = {"1": LayerSelection(), "4": LayerSelection((3, 0, 15, 7)), "5": LayerSelection((11, 2))}


@pytest.mark.parametrize("early_stop", [True, False])
def test_tiny_cnn_equals_brute_force(early_stop: bool) -> None:
    model = tiny_cnn()
    images, ids = images_and_ids(150, 12)
    loader = batches(images, ids, 32)
    got = collect_extremes(model, CNN_LAYERS, loader, k=20, progress=False, early_stop=early_stop)
    assert_sets_equal(got, brute_force_pass(model, CNN_LAYERS, loader, 20))
    assert got["4"].n_units == 4 and got["1"].n_units == 8 and got["1"].count == 150
    assert hook_count(model) == 0


def test_early_stop_skips_the_layers_after_the_deepest_selected_one() -> None:
    model = tiny_cnn()
    calls = []
    model[8].register_forward_hook(lambda *args: calls.append(1))
    loader = batches(*images_and_ids(100, 12), 20)
    layers = {"4": LayerSelection((1, 2))}
    stopped = collect_extremes(model, layers, loader, k=10, progress=False, early_stop=True)
    assert len(calls) == 1  # only the first (probe) batch ran the head
    full = collect_extremes(model, layers, loader, k=10, progress=False, early_stop=False)
    assert len(calls) == 1 + len(loader)
    assert stopped["4"] == full["4"]
    assert hook_count(model) == 1  # only the test's own hook is left


def test_batch_size_does_not_change_the_result() -> None:
    model = tiny_cnn()
    images, ids = images_and_ids(90, 12)
    first = collect_extremes(model, CNN_LAYERS, batches(images, ids, 7), k=15, progress=False)
    second = collect_extremes(model, CNN_LAYERS, batches(images, ids, 45), k=15, progress=False)
    for name in CNN_LAYERS:  # values may differ in the last ulp between batch sizes; the ranking must not
        torch.testing.assert_close(first[name].top_values, second[name].top_values, rtol=1e-5, atol=1e-6)
        assert torch.equal(first[name].top_ids, second[name].top_ids)


def test_timm_resnet_equals_brute_force() -> None:
    model = timm.create_model("resnet18", pretrained=False, num_classes=10)
    layers = {"layer1.1": LayerSelection((0, 5, 63)), "layer3": LayerSelection(tuple(range(0, 256, 37)))}
    loader = batches(*images_and_ids(48, 64), 16)
    got = collect_extremes(model, layers, loader, k=12, progress=False)
    assert_sets_equal(got, brute_force_pass(model, layers, loader, 12))
    assert hook_count(model) == 0


def test_timm_vit_tokens_equal_brute_force() -> None:
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, num_classes=10)
    layers = {"blocks.1": LayerSelection((0, 100, 191)), "blocks.4.mlp.fc1": LayerSelection((5, 700))}
    loader = batches(*images_and_ids(40, 64), 16)
    got = collect_extremes(model, layers, loader, k=10, progress=False)
    assert_sets_equal(got, brute_force_pass(model, layers, loader, 10))


def test_layer_info_reduces_channels_last_outputs() -> None:
    """ConvNeXt blocks run their MLP on (B, H, W, C): the LayerInfo's channel_dim must drive the reduction."""
    from benchmark.models.units import UnitRef, enumerate_layers

    model = timm.create_model("convnext_atto", pretrained=False, conv_mlp=False, num_classes=10)
    infos = enumerate_layers(model, (3, 64, 64))
    units = [UnitRef("stages.0.blocks.0.mlp.fc1", c) for c in (3, 150, 7)] + [UnitRef("stages.1.downsample.1", 5)]
    layers = layer_selections(units, infos)
    assert layers["stages.0.blocks.0.mlp.fc1"].channels == (3, 150, 7)
    assert layers["stages.0.blocks.0.mlp.fc1"].info.channel_dim == 3
    loader = batches(*images_and_ids(24, 64), 8)
    got = collect_extremes(model, layers, loader, k=6, progress=False)

    stored = []
    handle = model.get_submodule("stages.0.blocks.0.mlp.fc1").register_forward_hook(
        lambda m, i, o: stored.append(o.mean(dim=(1, 2), dtype=torch.float32))
    )
    with torch.inference_mode():
        for images, _ in loader:
            model(images.contiguous(memory_format=torch.channels_last))
    handle.remove()
    values = torch.cat(stored)[:, [3, 150, 7]].numpy()
    ids = torch.cat([i for _, i in loader]).numpy()
    assert_sets_equal({"fc1": got["stages.0.blocks.0.mlp.fc1"]}, {"fc1": brute_force(values, ids, 6)})


def test_module_called_twice_per_forward_is_refused() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.conv(x))

    with pytest.raises(ConfigError, match="more than once"):
        collect_extremes(Twice(), {"conv": LayerSelection()}, batches(*images_and_ids(4, 8), 2), progress=False)


def test_model_mode_restored_and_training_model_accepted() -> None:
    model = tiny_cnn().train()
    collect_extremes(model, {"1": LayerSelection()}, batches(*images_and_ids(10, 12), 5), k=3, progress=False)
    assert model.training


def test_configuration_errors() -> None:
    model = tiny_cnn()
    loader = batches(*images_and_ids(10, 12), 5)
    with pytest.raises(ConfigError, match="Did you mean '4'"):
        collect_extremes(model, {"44": LayerSelection()}, loader, progress=False)
    with pytest.raises(ConfigError, match="valid channels are 0..15"):
        collect_extremes(model, {"4": LayerSelection((16,))}, loader, progress=False)
    with pytest.raises(ConfigError, match="distinct"):
        LayerSelection((1, 1))
    model[3].add_module("unused", nn.ReLU())  # BatchNorm's forward never calls it
    with pytest.raises(ConfigError, match="never ran"):
        collect_extremes(model, {"3.unused": LayerSelection()}, loader, progress=False)
    assert hook_count(model) == 0


class Interrupted(RuntimeError):
    pass


def interrupting_factory(images: torch.Tensor, ids: torch.Tensor, batch_size: int, fail_after: int | None):
    """A loader_factory(start) whose stream raises after `fail_after` batches (None: never)."""

    def factory(start: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for n, batch in enumerate(batches(images, ids, batch_size, start)):
            if fail_after is not None and n == fail_after:
                raise Interrupted("simulated crash")
            yield batch

    return factory


@pytest.mark.parametrize("fail_after", [3, 4])  # 3: saved on interruption; 4: the last periodic checkpoint
def test_resume_after_interruption_equals_uninterrupted(tmp_path: Path, fail_after: int) -> None:
    model = tiny_cnn()
    images, ids = images_and_ids(130, 12)
    config = CheckpointConfig(tmp_path / "acts.pt", every_n_batches=2, run_info={"ids": hash_ids(ids.numpy())})
    uninterrupted = collect_extremes(model, CNN_LAYERS, batches(images, ids, 16), k=20, progress=False)

    with pytest.raises(Interrupted):
        collect_extremes(
            model, CNN_LAYERS, interrupting_factory(images, ids, 16, fail_after), k=20, checkpoint=config,
            progress=False,
        )
    saved = torch.load(config.path, weights_only=True)
    assert saved["consumed"] == 16 * fail_after and not saved["complete"]
    assert hook_count(model) == 0

    starts = []

    def factory(start: int):
        starts.append(start)
        return batches(images, ids, 16, start)

    resumed = collect_extremes(model, CNN_LAYERS, factory, k=20, checkpoint=config, progress=False)
    assert starts == [16 * fail_after]
    for name in CNN_LAYERS:
        assert resumed[name] == uninterrupted[name]
    assert torch.load(config.path, weights_only=True)["complete"]

    again = collect_extremes(model, CNN_LAYERS, factory, k=20, checkpoint=config, progress=False)
    assert starts[-1] == 130 and all(again[name] == uninterrupted[name] for name in CNN_LAYERS)


def test_resume_with_a_plain_iterable_skips_consumed_images(tmp_path: Path) -> None:
    model = tiny_cnn()
    images, ids = images_and_ids(100, 12)
    config = CheckpointConfig(tmp_path / "acts.pt", every_n_batches=1)
    uninterrupted = collect_extremes(model, CNN_LAYERS, batches(images, ids, 10), k=8, progress=False)
    with pytest.raises(Interrupted):
        stream = interrupting_factory(images, ids, 10, 5)(0)
        collect_extremes(model, CNN_LAYERS, stream, k=8, checkpoint=config, progress=False)
    resumed = collect_extremes(model, CNN_LAYERS, batches(images, ids, 10), k=8, checkpoint=config, progress=False)
    assert all(resumed[name] == uninterrupted[name] for name in CNN_LAYERS)


@pytest.mark.parametrize(
    "change",
    [
        {"k": 9},
        {"layers": {"1": LayerSelection((0, 1))}},
        {"checkpoint_info": {"model": "other"}},
        {"dtype": torch.bfloat16},
    ],
)
def test_checkpoint_of_another_run_is_refused(tmp_path: Path, change: dict) -> None:
    model = tiny_cnn()
    loader = batches(*images_and_ids(20, 12), 10)
    path = tmp_path / "acts.pt"
    first = CheckpointConfig(path, run_info={"model": "cnn"})
    collect_extremes(model, {"1": LayerSelection()}, loader, k=8, checkpoint=first, progress=False)
    config = CheckpointConfig(path, run_info=change.pop("checkpoint_info", {"model": "cnn"}))
    kwargs = {"k": 8, "layers": {"1": LayerSelection()}, **change}
    layers = kwargs.pop("layers")
    with pytest.raises(ConfigError, match="belongs to a different run.*Delete the checkpoint"):
        collect_extremes(model, layers, loader, checkpoint=config, progress=False, **kwargs)
    # the batch size is not part of the fingerprint: a matching run with other batches resumes (here: is complete)
    same = collect_extremes(
        model,
        {"1": LayerSelection()},
        batches(*images_and_ids(20, 12), 4),
        k=8,
        checkpoint=CheckpointConfig(path, run_info={"model": "cnn"}),
        progress=False,
    )
    assert same["1"].count == 20


def test_empty_loader_gives_empty_sets() -> None:
    got = collect_extremes(tiny_cnn(), {"4": LayerSelection((1, 2))}, [], k=5, progress=False)
    assert got["4"].count == 0 and got["4"].n_units == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_matches_cpu(dtype: torch.dtype) -> None:
    images, ids = images_and_ids(256, 64)
    layers = {"layer2": LayerSelection(tuple(range(0, 128, 9))), "layer4": LayerSelection(tuple(range(0, 512, 61)))}
    cpu_model = timm.create_model("resnet18", num_classes=10)
    gpu_model = copy.deepcopy(cpu_model)
    cpu = collect_extremes(cpu_model, layers, batches(images, ids, 64), k=20, progress=False)
    gpu_batches = batches(images.pin_memory(), ids.pin_memory(), 64)
    gpu = collect_extremes(gpu_model, layers, gpu_batches, k=20, device="cuda", dtype=dtype, progress=False)
    min_overlap = 0.95 if dtype == torch.float32 else 0.6
    for name in layers:
        assert gpu[name].device.type == "cuda"
        for side in ("top_ids", "bottom_ids"):
            a, b = getattr(cpu[name], side).numpy(), getattr(gpu[name], side).cpu().numpy()
            overlap = np.mean([len(np.intersect1d(x, y)) / len(x) for x, y in zip(a, b, strict=True)])
            assert overlap >= min_overlap, (name, side, overlap)
        scale = cpu[name].top_values.abs().max()
        tolerance = 1e-4 if dtype == torch.float32 else 0.05
        torch.testing.assert_close(gpu[name].max.cpu(), cpu[name].max, rtol=0, atol=float(tolerance * scale))


def test_shared_stream_gives_each_models_own_pass() -> None:
    from benchmark.activations.collect import collect_extremes_shared

    images, ids = images_and_ids(96, 32)
    first, second = tiny_cnn(), tiny_cnn()
    torch.nn.init.normal_(second[0].weight)
    jobs = [(first, {"4": LayerSelection((1, 2))}), (second, {"0": LayerSelection(None), "4": LayerSelection((0,))})]
    shared = collect_extremes_shared(jobs, batches(images, ids, 32), k=5, progress=False)
    for (model, layers), got in zip(jobs, shared, strict=True):
        alone = collect_extremes(model, layers, batches(images, ids, 32), k=5, progress=False)
        assert alone == got

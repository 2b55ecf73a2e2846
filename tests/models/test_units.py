import dataclasses

import pytest
import torch
from torch import nn

from benchmark.api.errors import ConfigError
from benchmark.models import (
    LAYER_KINDS,
    LayerInfo,
    UnitRef,
    default_unit_selection,
    enumerate_layers,
    layer_output_to_units,
    list_layers,
    load_model,
    sample_units,
    select_layers,
)


@pytest.fixture(scope="module")
def resnet():
    return load_model("timm:resnet18?pretrained=false")


@pytest.fixture(scope="module")
def vit():
    return load_model("timm:vit_tiny_patch16_224?pretrained=false")


@pytest.fixture(scope="module")
def convnext():
    return load_model("timm:convnext_atto?pretrained=false")


@pytest.fixture(scope="module")
def resnet_layers(resnet):
    return list_layers(resnet)


def _expected_units(module: nn.Module) -> int:
    for attribute in ("out_channels", "out_features", "num_features"):
        if hasattr(module, attribute):
            return getattr(module, attribute)
    return module.normalized_shape[-1]


def _check_depths(layers: list[LayerInfo]) -> None:
    depths = [info.relative_depth for info in layers]
    assert depths == sorted(depths) and len(set(depths)) == len(depths)  # strictly increasing
    assert depths[0] >= 0.0 and depths[-1] <= 1.0
    assert [info.depth for info in layers] == sorted(info.depth for info in layers)


def test_cnn_layers(resnet, resnet_layers):
    kinds = [info.kind for info in resnet_layers]
    assert kinds.count("conv") == 20 and kinds.count("norm") == 20 and kinds.count("linear") == 1
    assert "mlp" not in kinds
    modules = dict(resnet.module.named_modules())
    for info in resnet_layers:
        assert info.n_units == _expected_units(modules[info.name]), info.name
    _check_depths(resnet_layers)
    assert resnet_layers[0].name == "conv1" and resnet_layers[0].relative_depth == 0.0
    assert resnet_layers[-1].name == "fc" and resnet_layers[-1].relative_depth == 1.0
    by_name = {info.name: info for info in resnet_layers}
    assert by_name["layer4.1.bn2"].output_shape == (2, 512, 7, 7) and by_name["layer4.1.bn2"].layout == "BCHW"
    assert by_name["fc"].layout == "BC" and by_name["fc"].n_units == 1000


def test_vit_layers_have_token_layout_and_mlp_units(vit, vit_layers):
    layers = vit_layers
    mlp = [info for info in layers if info.kind == "mlp"]
    assert [info.name for info in mlp] == [f"blocks.{i}.mlp.fc1" for i in range(12)]
    assert all(info.n_units == 768 and info.output_shape == (2, 197, 768) and info.layout == "BNC" for info in mlp)
    assert not any(info.name.endswith("mlp.fc2") and info.kind == "mlp" for info in layers)
    kinds = [info.kind for info in layers]
    assert kinds.count("norm") == 2 * 12 + 1  # norm1, norm2 per block + final norm
    _check_depths(layers)
    only_mlp = list_layers(vit, kinds=("mlp",))
    assert [info.relative_depth for info in only_mlp] == [info.relative_depth for info in mlp]  # depths count all


def test_convnext_layers(convnext):
    layers = list_layers(convnext)
    modules = dict(convnext.module.named_modules())
    mlp = [info for info in layers if info.kind == "mlp"]
    assert len(mlp) == 2 + 2 + 6 + 2 and all(info.name.endswith("mlp.fc1") for info in mlp)
    for info in layers:
        assert info.n_units == _expected_units(modules[info.name]), info.name
        assert info.output_shape[info.channel_dim] == info.n_units
    stem_norm = next(info for info in layers if info.name == "stem.1")  # timm LayerNorm2d: channels first
    assert stem_norm.kind == "norm" and stem_norm.layout == "BCHW"
    assert not any(info.name == "head" for info in layers)  # NormMlpClassifierHead is a container, not a norm
    _check_depths(layers)


def test_channels_last_linear_and_multihead_attention():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.norm = nn.LayerNorm(8)
            self.fc = nn.Linear(8, 5)
            self.attn = nn.MultiheadAttention(5, 1, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.norm(self.conv(x).permute(0, 2, 3, 1))
            tokens = self.fc(x).flatten(1, 2)
            return self.attn(tokens, tokens, tokens)[0]

    layers = enumerate_layers(Block().eval(), (3, 6, 6))
    by_name = {info.name: info for info in layers}
    assert by_name["norm"].layout == "BHWC" and by_name["fc"].layout == "BHWC" and by_name["fc"].n_units == 5
    assert "attn.out_proj" not in by_name  # its weights are used functionally: it never runs, so it is not listed


@pytest.fixture(scope="module")
def vit_layers(vit):
    return list_layers(vit)


@pytest.mark.parametrize(
    ("model", "name"), [("resnet", "layer2.0.conv1"), ("vit", "blocks.3.mlp.fc1"), ("resnet", "fc")]
)
def test_layer_output_to_units_reduces_hooked_activations(request, model, name):
    loaded, layers = request.getfixturevalue(model), request.getfixturevalue(f"{model}_layers")
    info = next(i for i in layers if i.name == name)
    captured = {}
    module = dict(loaded.module.named_modules())[name]
    handle = module.register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    with torch.no_grad():
        loaded.module(torch.rand(3, *loaded.input_size))
    handle.remove()
    units = layer_output_to_units(captured["out"], info)
    assert units.shape == (3, info.n_units) and units.dtype == torch.float32
    out = captured["out"]
    if out.dim() == 4:
        expected = out.mean(dim=(2, 3))  # spatial mean of (B, C, H, W)
    elif out.dim() == 3:
        expected = out.mean(dim=1)  # token mean of (B, N, C)
    else:
        expected = out
    torch.testing.assert_close(units, expected)


def test_layer_output_to_units_channels_last_and_mismatch():
    info = LayerInfo("x", "linear", 5, 0, 0.0, (2, 3, 4, 5), channel_dim=3)
    output = torch.rand(2, 3, 4, 5)
    torch.testing.assert_close(layer_output_to_units(output, info), output.mean(dim=(1, 2)))
    with pytest.raises(ConfigError, match="'x'"):
        layer_output_to_units(torch.rand(2, 5, 3, 4), info)


def test_select_layers_by_pattern_and_depth(resnet_layers):
    chosen = select_layers(resnet_layers, patterns=["layer4.*.conv?"])
    assert [i.name for i in chosen] == ["layer4.0.conv1", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"]
    by_depth = select_layers(resnet_layers, depth_fractions=[0.0, 1.0, 0.5])
    assert [i.name for i in by_depth] == ["conv1", resnet_layers[20].name, "fc"]  # sorted by depth
    assert by_depth[1].relative_depth == pytest.approx(0.5)  # 41 layers: depth 20 of 40
    norms = select_layers(resnet_layers, depth_fractions=[1.0], kinds=["norm"])
    assert [i.name for i in norms] == ["layer4.1.bn2"]
    both = select_layers(resnet_layers, patterns=["conv1"], depth_fractions=[0.0])
    assert [i.name for i in both] == ["conv1"]  # no duplicates
    assert len(select_layers(resnet_layers, kinds=["conv"])) == 20


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        (dict(patterns=["blocks.*.mlp.fc1"]), ["'blocks.*.mlp.fc1'", "conv1, ", "(41 in all)"]),
        (dict(depth_fractions=[1.5]), ["1.5", "[0, 1]"]),
        (dict(kinds=["mlp"]), ["of kinds mlp", "conv, linear, norm"]),
        (dict(kinds=["attention"]), ["'attention'", ", ".join(LAYER_KINDS)]),
    ],
)
def test_select_layers_errors(resnet_layers, kwargs, fragments):
    with pytest.raises(ConfigError) as info:
        select_layers(resnet_layers, **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_sampling_is_reproducible_and_independent_of_other_layers(resnet_layers):
    a, b, c = resnet_layers[3], resnet_layers[20], resnet_layers[38]
    first = sample_units([a, b, c], per_layer=7, seed=3)
    assert first == sample_units([a, b, c], per_layer=7, seed=3)
    alone = sample_units([c, a], per_layer=7, seed=3)  # other layers and order differ
    assert [u for u in first if u.layer in (a.name, c.name)] == alone
    assert len(first) == len(set(first)) == 21
    depth = {info.name: info.depth for info in resnet_layers}
    assert first == sorted(first, key=lambda u: (depth[u.layer], u.channel))
    assert all(isinstance(u, UnitRef) and 0 <= u.channel < 512 for u in first)
    assert sample_units([a, b, c], per_layer=7, seed=4) != first


def test_sampling_total_and_all(resnet_layers):
    layers = resnet_layers[:6]
    units = sample_units(layers, total=50, seed=0)
    assert len(units) == len(set(units)) == 50
    counts = {info.name: sum(u.layer == info.name for u in units) for info in layers}
    assert max(counts.values()) - min(counts.values()) <= 1  # spread evenly
    small = sample_units(layers, total=4, seed=0)
    assert len(small) == 4 and len({u.layer for u in small}) == 4
    assert len(sample_units(layers)) == sum(info.n_units for info in layers)
    capped = sample_units([dataclasses.replace(layers[0], n_units=3), layers[1]], total=30, seed=1)
    assert sum(u.layer == layers[0].name for u in capped) == 3 and len(capped) == 30


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(per_layer=2, total=5), "not both"),
        (dict(total=10**6), "units in all"),
        (dict(per_layer=0), "positive integer"),
        (dict(per_layer=2, seed=-1), "non-negative"),
    ],
)
def test_sampling_errors(resnet_layers, kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        sample_units(resnet_layers[:3], **kwargs)
    with pytest.raises(ConfigError, match="more than once"):
        sample_units([resnet_layers[0], resnet_layers[0]], per_layer=1)


def test_default_unit_selection(resnet, vit, resnet_layers, vit_layers):
    cnn = default_unit_selection(resnet, seed=0)
    assert len(cnn) == 84 and cnn == default_unit_selection(resnet, seed=0, layers=resnet_layers)
    kinds = {info.name: info.kind for info in resnet_layers}
    assert {kinds[u.layer] for u in cnn} == {"norm"} and len({u.layer for u in cnn}) == 20
    transformer = default_unit_selection(vit, seed=1, total=24, layers=vit_layers)
    assert len(transformer) == 24 and all(u.layer.endswith("mlp.fc1") for u in transformer)
    assert default_unit_selection(resnet, seed=1, layers=resnet_layers) != cnn
    convs = default_unit_selection(resnet, kinds=["conv"], patterns=["layer4.*"], total=10, layers=resnet_layers)
    assert len(convs) == 10 and all(u.layer.startswith("layer4.") for u in convs)


def test_every_unit_takes_all_channels_of_the_preferred_kind_or_of_chosen_layers(resnet_layers):
    from benchmark.models.units import every_unit

    norms = [info for info in resnet_layers if info.kind == "norm"]
    units = every_unit(resnet_layers)
    assert len(units) == sum(info.n_units for info in norms) and len(set(units)) == len(units)
    assert {u.layer for u in units} == {info.name for info in norms}
    chosen = every_unit(resnet_layers, patterns=["layer4.*.conv2"])
    layer4 = [info for info in resnet_layers if info.name.startswith("layer4") and info.name.endswith("conv2")]
    assert [(u.layer, u.channel) for u in chosen] == [(i.name, c) for i in layer4 for c in range(i.n_units)]


def test_all_units_excludes_sample_sizes_in_the_spec():
    from benchmark.scoring.spec import UnitSelection

    assert UnitSelection(all_units=True, layers=["layer4*"]).all_units
    with pytest.raises(ValueError, match="all_units takes every unit"):
        UnitSelection(all_units=True, total_units=84)

import pytest

from benchmark.api.errors import DataValidationError
from benchmark.data.layers import joined, layer_module_map, same_layer_key
from benchmark.data.stimuli import StimulusIndex

RESNET_MODULES = ["conv1", "layer1", "layer1.0", "layer1.0.conv1", "layer3.0.conv2", "layer3.0.downsample.0", "fc"]


def test_underscore_names_map_onto_dotted_modules():
    mapping = layer_module_map(["layer3_0_conv2", "layer3_0_downsample_0", "conv1"], RESNET_MODULES)
    assert mapping == {"layer3_0_conv2": "layer3.0.conv2", "layer3_0_downsample_0": "layer3.0.downsample.0",
                       "conv1": "conv1"}
    assert joined("layer3.0.conv2") == "layer3_0_conv2"


def test_clip_layers_map_with_or_without_the_visual_prefix():
    tower = ["layer3.0.conv2", "attnpool"]
    whole = ["visual.layer3.0.conv2", "transformer.resblocks.0"]
    assert layer_module_map(["visual_layer3_0_conv2"], tower) == {"visual_layer3_0_conv2": "layer3.0.conv2"}
    assert layer_module_map(["visual_layer3_0_conv2"], whole) == {"visual_layer3_0_conv2": "visual.layer3.0.conv2"}


def test_unknown_and_ambiguous_names_are_errors_with_candidates():
    with pytest.raises(DataValidationError, match=r"'layer3_0_conv3' matches no module \(closest: \['layer3.0.conv2'"):
        layer_module_map(["layer3_0_conv3"], RESNET_MODULES)
    with pytest.raises(DataValidationError, match="matches several modules"):
        layer_module_map(["a_b_c"], ["a.b_c", "a_b.c"])


def test_same_layer_key_and_the_stimulus_index_accept_either_spelling(tmp_path):
    assert same_layer_key("layer3.0.conv2", ["layer3_0_conv2", "layer4_0_conv2"]) == "layer3_0_conv2"
    assert same_layer_key("layer9", ["layer3_0_conv2"]) is None
    entry = {f"{side}_{i}.png": f"n0/{side}{i}.JPEG" for side in ("max", "min") for i in range(3)}
    index = StimulusIndex({"resnet50": {"layer3_0_conv2/channel_7": {"batch_0": entry}}}, tmp_path)
    task = index.task("resnet50", "layer3.0.conv2", 7, 0)
    assert task.max_query == tmp_path / "n0/max2.JPEG" and len(task.max_references) == 2

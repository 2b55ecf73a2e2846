import numpy as np
import pytest

from benchmark.api.errors import ConfigError
from benchmark.stimuli.shapes import COLOURS, N_CLASSES, ShapesSource, class_name
from benchmark.stimuli.sources import parse_image_source


def test_images_are_deterministic_and_labelled():
    first, second = ShapesSource(12, split="train", size=32), ShapesSource(12, split="train", size=32)
    assert first.pixels_sha256(12) == second.pixels_sha256(12)
    labels = [first.label(i) for i in range(12)]
    assert all(0 <= label < N_CLASSES for label in labels) and len(set(labels)) > 1
    image = first.load(3)
    assert image.size == (32, 32) and image.mode == "RGB"
    assert class_name(labels[0]) in COLOURS


def test_splits_and_seeds_differ():
    train = ShapesSource(8, split="train", size=32)
    assert train.pixels_sha256(8) != ShapesSource(8, split="test", size=32).pixels_sha256(8)
    assert train.pixels_sha256(8) != ShapesSource(8, split="train", size=32, seed=1).pixels_sha256(8)


def test_the_labelled_colour_dominates_the_shape_pixels():
    source = ShapesSource(30, split="train", size=32)
    hues = {name: [] for name in COLOURS}
    for i in range(30):
        label = source.render(i)[1]
        hsv = np.asarray(source.load(i).convert("HSV"), dtype=float)
        saturated = hsv[..., 1] > 120  # the backgrounds are muted, the shape is saturated
        hues[class_name(label)].append(np.median(hsv[..., 0][saturated]) / 255)
    for name, values in hues.items():
        for value in values:
            distance = min(abs(value - COLOURS[name]), 1 - abs(value - COLOURS[name]))
            assert distance < 0.1, (name, value)


def test_photos_follow_the_shapes_and_have_no_label():
    source = parse_image_source("shapes:10?photos=5&size=32&split=test")
    assert len(source) == 15 and source.ids()[0] == "shapes/test/00000" and source.ids()[10].startswith("bundled/")
    assert source.describe()["kind"] == "shapes" and source.load(12).size == (32, 32)
    with pytest.raises(ConfigError, match="no label"):
        source.label(12)


@pytest.mark.parametrize(("spec", "needle"), [
    ("shapes:ten", "shapes:N"), ("shapes?split=valid", "split"), ("shapes?colour=red", "Unknown option"),
    ("shapes:0", "at least one image"), ("shapes?size=8", "size"),
])
def test_bad_specs_are_clear_errors(spec, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_image_source(spec)

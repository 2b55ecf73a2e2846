import hashlib
import pickle

import numpy as np
import pytest

from benchmark.api.errors import ConfigError
from benchmark.stimuli import BundledSample
from benchmark.stimuli.bundled import SAMPLE_IMAGES, to_rgb_uint8

# sha256 of the pixels of a few images of BundledSample(seed=0, size=224) as made when the sample was written
# (scikit-image 0.26.0, Pillow 12.3, x86-64). All four come from PNG files (astronaut, camera, colorwheel, camera),
# so no JPEG decoder is involved. A mismatch means the pixels are not reproducible on this machine or version:
# results computed on the bundled sample would then not be comparable.
REFERENCE = {
    0: "16bff06bc3cfc3f3a04f073152b1e2311ccddd13f493f58cae10e7475b354587",
    1: "3fe5dae2827a386969ed45cf3c22c70e841ce14693d8e9693047afb07038409a",
    37: "dd9f5477dcf295fe3c24a537e23b2edad3b209cfb7249fe58b7bde4a8be8b5b9",
    599: "528cf4c2f6e063d908d62686d45228e8b9f03c2ac5e39fd7d52a6c7d70954d64",
}


def _digest(sample: BundledSample, i: int) -> str:
    return hashlib.sha256(sample.load(i).tobytes()).hexdigest()


def test_deterministic_across_constructions():
    first, second = BundledSample(), BundledSample()
    for i in (0, 1, 24, 37, 412, 599):
        assert _digest(first, i) == _digest(second, i)
    assert first.ids() == second.ids()
    assert first.describe() == second.describe()
    assert _digest(BundledSample(seed=1), 37) != _digest(first, 37)
    assert _digest(first, 0) == _digest(BundledSample(seed=1), 0)  # variant 0 is the plain centre crop


def test_pixels_match_the_reference():
    sample = BundledSample()
    assert {i: _digest(sample, i) for i in REFERENCE} == REFERENCE


def test_at_least_400_distinct_images_of_the_right_size_and_mode():
    sample = BundledSample(n_images=400, size=96)
    digests = set()
    for i in range(len(sample)):
        image = sample.load(i)
        assert image.size == (96, 96) and image.mode == "RGB"
        digests.add(hashlib.sha256(image.tobytes()).hexdigest())
    assert len(digests) == 400


def test_ids_and_description():
    sample = BundledSample(n_images=50)
    ids = sample.ids()
    assert ids[0] == "bundled/astronaut/0000" and ids[len(SAMPLE_IMAGES)] == "bundled/astronaut/0001"
    assert ids[7] == "bundled/immunohistochemistry/0000" and len(set(ids)) == 50
    assert sample.index_of("bundled/astronaut/0001") == len(SAMPLE_IMAGES)
    described = sample.describe()
    assert described["kind"] == "bundled" and described["n_images"] == 50
    assert len(described["base_images_sha256"]) == 64
    assert sample.load(-1).size == (224, 224)
    with pytest.raises(IndexError, match="out of range"):
        sample.load(50)


def test_pickles_without_the_image_cache():
    sample = BundledSample(n_images=5)
    expected = _digest(sample, 3)
    clone = pickle.loads(pickle.dumps(sample))
    assert clone._bases == {} and _digest(clone, 3) == expected


def test_every_sample_image_converts_to_rgb():
    sample = BundledSample(n_images=len(SAMPLE_IMAGES), size=32)
    for i, name in enumerate(SAMPLE_IMAGES):
        base = sample._base(name)
        assert base.dtype == np.uint8 and base.ndim == 3 and base.shape[2] == 3, name
        assert sample.ids()[i] == f"bundled/{name}/0000"
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    assert to_rgb_uint8(rgba)[0, 0].tolist() == [255, 0, 0] and to_rgb_uint8(rgba)[1, 1].tolist() == [255, 255, 255]
    assert to_rgb_uint8(np.array([[True, False]])).tolist() == [[[255] * 3, [0] * 3]]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(n_images=0), "n_images=0"),
        (dict(size=4), "size=4"),
        (dict(seed=-1), "seed=-1"),
        (dict(images=("lena",)), "'lena'"),
    ],
)
def test_bad_parameters(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        BundledSample(**kwargs)

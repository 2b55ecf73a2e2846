import pytest
import torch

from benchmark.api.errors import ConfigError
from benchmark.models.adapters import load_model, read_state_dict
from benchmark.models.toy_training import ToyTrainingConfig, read_checkpoint_metadata, train_toy_model
from benchmark.models.units import list_layers

TINY = ToyTrainingConfig(epochs=1, n_train=100, n_test=50, batch_size=50, save_epochs=(0,))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return train_toy_model(TINY, tmp_path_factory.mktemp("toy"), progress=False)


def test_random_twin_is_the_initial_checkpoint(checkpoints):
    twin = load_model("toy:shapes_cnn?pretrained=false").module.state_dict()
    initial = read_state_dict(checkpoints[0].path)
    trained = read_state_dict(checkpoints[1].path)
    assert all(torch.equal(twin[k], initial[k]) for k in twin)
    assert not torch.equal(twin["conv2.weight"], trained["conv2.weight"])


def test_checkpoints_load_as_local_models_and_record_their_training(checkpoints):
    path = checkpoints[1].path
    loaded = load_model(f"local:{path}?arch=toy:shapes_cnn")
    assert loaded.input_size == (3, 64, 64) and loaded.weights_sha256
    assert [layer.name for layer in list_layers(loaded, kinds=("conv",))] == ["conv1", "conv2", "conv3", "conv4"]
    metadata = read_checkpoint_metadata(path)
    assert metadata["seed"] == "0" and metadata["epoch"] == "1" and metadata["trained"] == "true"
    assert path.name == "shapes_cnn-seed0-epoch1.safetensors"


def test_a_rerun_finds_the_cache(checkpoints, monkeypatch):
    import benchmark.models.toy_training as training

    monkeypatch.setattr(training, "load_model", lambda *a, **k: pytest.fail("retrained despite the cache"))
    again = train_toy_model(TINY, checkpoints[1].path.parent, progress=False)
    assert again[1].path == checkpoints[1].path and again[1].test_accuracy == checkpoints[1].test_accuracy


def test_training_is_deterministic(checkpoints, tmp_path):
    other = train_toy_model(TINY, tmp_path, progress=False)
    assert other[1].path.read_bytes() == checkpoints[1].path.read_bytes()


def test_toy_models_have_no_hub_weights():
    with pytest.raises(ConfigError, match="no published weights"):
        load_model("toy:shapes_cnn")
    with pytest.raises(ConfigError, match="Unknown toy architecture"):
        load_model("toy:resnet?pretrained=false")
    with pytest.raises(ConfigError, match="outside"):
        ToyTrainingConfig(epochs=2, save_epochs=(3,))

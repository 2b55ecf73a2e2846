"""The demo on a reduced run: the trained toy model must beat its random twin (direction of the effect)."""

import pytest

from benchmark.api.errors import ConfigError
from benchmark.cli.demo import parse_epochs
from benchmark.demo import DemoConfig, describe, run_demo
from benchmark.results.io import read_result

REDUCED = DemoConfig(n_train=600, epochs=2, epochs_to_score=(1,), n_shapes=300, n_photos=60,
                     layers=("conv2", "conv3"), protocol={"n_tasks": 5, "n_references": 4}, n_boot=50)


@pytest.mark.slow
def test_trained_model_beats_its_random_twin(tmp_path):
    result = run_demo(tmp_path / "demo", progress=False, config=REDUCED)
    c = result.comparison
    assert c.difference > 0 and c.difference_ci[0] > 0 and c.p_value < 0.01 and not c.cis_overlap
    trained, random = read_result(result.results["trained"]), read_result(result.results["random"])
    assert trained.submission.spec["model"].startswith("local:../models/shapes_cnn-seed0-epoch2.safetensors")
    assert trained.submission.spec["weights_sha256"] == trained.submission.weights_sha256
    assert random.submission.spec["pretrained"] is False and random.submission.spec["model"] == "toy:shapes_cnn"
    assert trained.proxy.human_data.is_simulated and random.proxy.human_data.is_simulated
    assert set(result.figures) == {"layers", "units", "training"} and all(p.is_file() for p in result.figures.values())
    text = describe(result)
    assert "trained " in text and "paired difference" in text and "Interpretability over training" in text
    again = run_demo(tmp_path / "demo", progress=False, config=REDUCED)  # cached weights: no retraining
    assert again.checkpoints[2].path.stat().st_mtime_ns == result.checkpoints[2].path.stat().st_mtime_ns


def test_epochs_to_score_are_checked():
    assert parse_epochs("2, 0,1", 2) == (0, 1, 2) and parse_epochs("", 3) == ()
    with pytest.raises(ConfigError, match="0..2"):
        parse_epochs("3", 2)
    with pytest.raises(ConfigError, match="0..2"):
        parse_epochs("one", 2)

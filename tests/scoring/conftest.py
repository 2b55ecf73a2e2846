"""Fixtures of the scoring tests: a proxy fitted on the simulated release, and a fast spec."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmark.data.stimuli import StimulusIndex
from benchmark.proxies.base import make_proxy
from benchmark.proxies.fitted import save_fitted_proxy
from benchmark.proxies.units import build_units

# A tiny timm model (random weights, 160 px) and a small protocol keep each scoring run to a few seconds on CPU.
FAST_SPEC = {
    "model": "timm:test_resnet.r160_in1k",
    "pretrained": False,
    "images": "bundled:80",
    "units": {"layers": ["layer*.bn1"], "units_per_layer": 2},
    "protocol": {"n_tasks": 5, "n_references": 4},
    "batch_size": 16,
    "device": "cpu",
}


@pytest.fixture(scope="session")
def fitted_proxy(sim_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mis-pixel fitted on the simulated release's natural units (planted accuracies)."""
    truth = pd.read_csv(sim_release / "simulation" / "truth.csv")
    truth = truth[truth["mode"] == "natural"].reset_index(drop=True)
    units = build_units(StimulusIndex.from_release(sim_release), truth)
    metric = make_proxy("mis-pixel").fit(units, truth["true_accuracy"].to_numpy())
    path = tmp_path_factory.mktemp("proxy") / "mis-pixel.json"
    save_fitted_proxy(metric, path, validation={"pearson": {"value": 0.9}}, data={"source": "simulated"})
    return path

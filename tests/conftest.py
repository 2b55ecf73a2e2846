"""Session fixtures shared by the test packages."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

from benchmark.data.simulate import SimulationConfig, write_release
from benchmark.data.stimuli import StimulusIndex
from benchmark.proxies.base import make_proxy
from benchmark.proxies.fitted import save_fitted_proxy
from benchmark.proxies.units import build_units


@pytest.fixture(scope="session")
def sim_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default simulated release on disk (36 units x 2 modes, 5 tasks each, 32 px images); treat as read-only."""
    return write_release(tmp_path_factory.mktemp("sim") / "release", SimulationConfig(seed=0))


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


@pytest.fixture
def network_calls(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record (and refuse) every DNS lookup and socket connection: a test asserts the list stays empty."""
    calls: list = []

    def refuse_lookup(host, *args, **kwargs):
        calls.append(("dns", host))
        raise OSError(f"test refused DNS lookup of {host}")

    def refuse_connect(self, address):
        calls.append(("connect", address))
        raise OSError(f"test refused connection to {address}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    return calls

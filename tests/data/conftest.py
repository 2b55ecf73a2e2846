"""Fixtures of the data tests: one simulated release per session (written once, a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.simulate import SimulationConfig, write_release


@pytest.fixture(scope="session")
def sim_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default simulated release on disk (responses, stimuli, file maps, planted truth)."""
    return write_release(tmp_path_factory.mktemp("sim") / "release", SimulationConfig(seed=0))

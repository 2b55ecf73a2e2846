"""Session fixtures shared by the test packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.simulate import SimulationConfig, write_release


@pytest.fixture(scope="session")
def sim_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default simulated release on disk (36 units x 2 modes, 5 tasks each, 32 px images); treat as read-only."""
    return write_release(tmp_path_factory.mktemp("sim") / "release", SimulationConfig(seed=0))

"""Fixtures of the proxy tests: one simulated release per session and its units, with and without activation maps.

The human accuracy used here is the planted `true_accuracy` of simulation/truth.csv (noise-free), so a proxy's
correlation with it measures what the proxy recovers, not the sampling noise of 30 trials per unit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.data.simulate import SimulatedActivationMaps
from benchmark.data.stimuli import StimulusIndex
from benchmark.proxies.base import ProxyUnit
from benchmark.proxies.units import build_units

MODES = ("natural", "optimized")


@dataclass(frozen=True)
class SimUnits:
    """Units of the simulated release in truth.csv order, with their planted accuracy and clarity."""

    units: list[ProxyUnit]
    accuracy: np.ndarray
    clarity: np.ndarray
    modes: np.ndarray

    def mode(self, mode: str) -> SimUnits:
        """The subset of one mode."""
        keep = self.modes == mode
        units = [u for u, k in zip(self.units, keep) if k]
        return SimUnits(units, self.accuracy[keep], self.clarity[keep], self.modes[keep])

    def subset(self, n: int, n_tasks: int | None = None) -> SimUnits:
        """n units spread over both modes (every k-th), optionally cut to their first n_tasks tasks."""
        rows = np.linspace(0, len(self.units) - 1, n).round().astype(int)
        units = [self.units[i] for i in rows]
        if n_tasks is not None:
            units = [replace(u, tasks=u.tasks[:n_tasks]) for u in units]
        return SimUnits(units, self.accuracy[rows], self.clarity[rows], self.modes[rows])


@pytest.fixture(scope="session")
def sim_truth(sim_release: Path) -> pd.DataFrame:
    """The planted truth: one row per unit and mode (accuracy, clarity, concept)."""
    return pd.read_csv(sim_release / "simulation" / "truth.csv")


@pytest.fixture(scope="session")
def sim_index(sim_release: Path) -> StimulusIndex:
    return StimulusIndex.from_release(sim_release)


def _sim_units(units: list[ProxyUnit], truth: pd.DataFrame) -> SimUnits:
    return SimUnits(
        units,
        truth["true_accuracy"].to_numpy(dtype=float),
        truth["clarity"].to_numpy(dtype=float),
        truth["mode"].to_numpy(dtype=str),
    )


@pytest.fixture(scope="session")
def sim_units(sim_index: StimulusIndex, sim_truth: pd.DataFrame) -> SimUnits:
    """Every unit of the release (no activation maps)."""
    return _sim_units(build_units(sim_index, sim_truth), sim_truth)


@pytest.fixture(scope="session")
def sim_units_with_maps(sim_release: Path, sim_index: StimulusIndex, sim_truth: pd.DataFrame) -> SimUnits:
    """Every unit of the release with the planted concept detector's activation maps (a few seconds)."""
    maps = SimulatedActivationMaps(sim_release)
    return _sim_units(build_units(sim_index, sim_truth, activation_maps=maps), sim_truth)


@pytest.fixture(scope="session")
def embedding_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An on-disk embedding cache shared by the tests, so each image is embedded once per session and embedder."""
    return str(tmp_path_factory.mktemp("embedding_cache"))

"""Human 2-AFC accuracy beside the proxy: per-model accuracy (natural / optimized, with CIs) and per-unit pairs.

The human data is a per-unit table (model, layer, channel, mode, accuracy) read from a CSV/parquet file, or
aggregated from an IMI release source (anything `imibench data` reads) with the published exclusions. A result
matches a human-release model when the release's `model` equals the submission's model id, its architecture
(`resnet50.a1_in1k` -> `resnet50`) or its display name. Per-model accuracy is the mean over the model's units with
a 95% bootstrap CI over units. Data made by the simulator is labelled "simulated humans", never "humans".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.api.errors import ConfigError
from leaderboard.loading import LoadedResult
from leaderboard.table import architecture, display_name

UNIT_COLUMNS = ("model", "layer", "channel", "mode", "accuracy")
MODES = ("natural", "optimized")
N_BOOT = 1000


@dataclass
class HumanTable:
    """A per-unit human accuracy table and what it is called (humans or simulated humans)."""

    units: pd.DataFrame
    label: str = "humans"
    source: str = ""
    _cache: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    @property
    def models(self) -> list[str]:
        """The release's model names."""
        return sorted(self.units["model"].astype(str).unique())

    def release_model(self, loaded: LoadedResult) -> str | None:
        """The release model a result matches, or None."""
        sub = loaded.result.submission
        names = set(self.models)
        for candidate in (sub.model, architecture(sub.model), display_name(loaded), sub.id):
            if candidate in names:
                return candidate
        return None

    def lookup(self, loaded: LoadedResult) -> dict[str, float]:
        """{mode, mode_low, mode_high} human accuracy of the matching release model (empty when none matches)."""
        model = self.release_model(loaded)
        if model is None:
            return {}
        if model not in self._cache:
            rows = self.units[self.units["model"].astype(str) == model]
            summary: dict[str, float] = {}
            for mode in MODES:
                values = rows.loc[rows["mode"] == mode, "accuracy"].to_numpy(dtype=float)
                values = values[np.isfinite(values)]
                if values.size == 0:
                    continue
                rng = np.random.default_rng(0)
                boots = values[rng.integers(0, values.size, (N_BOOT, values.size))].mean(axis=1)
                summary[mode] = float(values.mean())
                summary[f"{mode}_low"], summary[f"{mode}_high"] = (float(q) for q in np.quantile(boots, [0.025, 0.975]))
            self._cache[model] = summary
        return self._cache[model]

    def unit_pairs(self, loaded: LoadedResult) -> pd.DataFrame:
        """Per unit of the result that the release also holds: layer, channel, mode, human accuracy, proxy score."""
        model = self.release_model(loaded)
        columns = ["layer", "channel", "mode", "human", "proxy"]
        if model is None:
            return pd.DataFrame(columns=columns)
        proxy = pd.DataFrame([{"layer": u.layer, "channel": u.channel, "proxy": u.score}
                              for u in loaded.result.scores.units], columns=["layer", "channel", "proxy"])
        human = self.units[self.units["model"].astype(str) == model][["layer", "channel", "mode", "accuracy"]]
        human = human.rename(columns={"accuracy": "human"}).astype({"channel": int})
        return human.merge(proxy, on=["layer", "channel"])[columns]


def read_unit_table(path: Path) -> pd.DataFrame:
    """A per-unit human table from CSV or parquet; ConfigError naming missing columns."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in UNIT_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigError(f"The human unit table {path} lacks column(s) {missing}; it needs {list(UNIT_COLUMNS)} "
                          "(write one with `imibench data summary` or pass a release source instead).")
    return frame


def load_human_table(source: str | Path) -> HumanTable:
    """Per-unit human accuracy from a unit-table file, or aggregated from a release source."""
    path = Path(str(source)).expanduser()
    if path.is_file() and path.suffix in (".csv", ".parquet"):
        frame = read_unit_table(path)
        simulated = "simulated" in frame.columns and bool(frame["simulated"].astype(bool).any())
        return HumanTable(frame, "simulated humans" if simulated else "humans", str(source))
    from benchmark.data.aggregate import unit_accuracy
    from benchmark.data.exclusions import apply_exclusions
    from benchmark.data.sources import load_trials

    loaded = load_trials(str(source), progress=False)
    trials, _ = apply_exclusions(loaded.trials)
    units = unit_accuracy(trials, n_boot=100)  # the per-unit CIs are not shown; the model CI is over units
    label = loaded.origin.label if loaded.origin is not None else "humans (origin not recorded)"
    return HumanTable(units, label, loaded.source)


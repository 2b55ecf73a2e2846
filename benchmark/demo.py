"""The embedded default: the whole chain on simulated human data, offline, in a few minutes on a laptop CPU."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.simulate import SimulationConfig, write_release
from benchmark.data.sources import load_trials
from benchmark.data.summary import HumanDataSummary, format_summary, plot_summary, summarize


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote and computed."""

    release: Path
    summary: HumanDataSummary
    plot: Path
    seconds: float


def run_demo(out_dir: str | Path = "imibench-out/demo", *, seed: int = 0, progress: bool = True) -> DemoResult:
    """Simulate a release with known ground truth, load it as a user would, and summarise the human data."""
    start = time.perf_counter()
    out = Path(out_dir)
    release = write_release(out / "release", SimulationConfig(seed=seed), progress=progress)
    loaded = load_trials(str(release), progress=progress)
    summary = summarize(loaded.trials, source=loaded.source, notes=loaded.notes, seed=seed)
    plot = plot_summary(summary, out / "human_summary.png")
    return DemoResult(release, summary, plot, time.perf_counter() - start)


def describe(result: DemoResult) -> str:
    """The demo's report as text."""
    return "\n".join(
        [
            format_summary(result.summary),
            "",
            f"Simulated release: {result.release} (planted truth in simulation/truth.csv)",
            f"Plot: {result.plot}",
            f"Done in {result.seconds:.1f} s.",
        ]
    )

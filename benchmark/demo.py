"""The embedded default: the whole chain, offline, on a laptop CPU in a few minutes.

simulated human release (planted truth) -> human summary -> held-out validation and fit of a proxy (mis-pixel)
-> score small timm models (random weights) on the bundled images -> result files -> their score tables.
The same steps with a Hub id, an image folder and real checkpoints are the real run (see the README).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.simulate import SimulationConfig, write_release
from benchmark.data.sources import load_trials
from benchmark.data.summary import HumanDataSummary, format_summary, plot_summary, summarize
from benchmark.proxies.fitted import FittedProxy
from benchmark.results.io import read_result
from benchmark.results.schema import ResultFile
from benchmark.results.show import format_result

DEMO_PROXY = "mis-pixel"
# Small timm models with random weights (no download). Conv layers, since timm zero-initialises the last norm of
# each residual block, whose outputs are then constant and would be skipped.
DEMO_MODELS: dict[str, dict] = {
    "resnet18": {"model": "timm:resnet18", "units": {"layers": ["layer*.*.conv1", "layer*.*.conv2"],
                                                     "total_units": 24}},
    "vit_tiny": {"model": "timm:vit_tiny_patch16_224", "units": {"layers": ["blocks.*.mlp.fc1"],
                                                                 "total_units": 24}},
}


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote and computed."""

    release: Path
    summary: HumanDataSummary
    plot: Path
    proxy: FittedProxy
    results: dict[str, Path]
    seconds: float


def run_demo(out_dir: str | Path = "imibench-out/demo", *, seed: int = 0, progress: bool = True) -> DemoResult:
    """Run the whole chain into `out_dir`; a rerun resumes finished steps' outputs only where they are files."""
    from benchmark.scoring.pipeline import score_submission
    from benchmark.scoring.spec import parse_spec
    from benchmark.validation.fit import fit_proxy
    from benchmark.validation.run import build_config

    start = time.perf_counter()
    out = Path(out_dir)
    release = write_release(out / "release", SimulationConfig(seed=seed), progress=progress)
    loaded = load_trials(str(release), progress=progress)
    summary = summarize(loaded.trials, source=loaded.source, notes=loaded.notes, seed=seed)
    plot = plot_summary(summary, out / "human_summary.png")
    config = build_config(source=str(release), metrics=(DEMO_PROXY,), seed=seed, n_boot=500, progress=progress)
    proxy_file = out / "proxies" / f"{DEMO_PROXY}.json"
    proxy = fit_proxy(config, mode="natural", out=proxy_file)
    results = {}
    for name, spec in DEMO_MODELS.items():
        score_spec = parse_spec({**spec, "pretrained": False, "images": "bundled:600", "proxy": str(proxy_file),
                                 "seed": seed, "batch_size": 50, "out": str(out / "results" / f"{name}.json")})
        results[name] = score_submission(score_spec, progress=progress)
    return DemoResult(release, summary, plot, proxy, results, time.perf_counter() - start)


def describe(result: DemoResult) -> str:
    """The demo's report as text."""
    pearson = result.proxy.validation.get("pearson", {})
    lines = [
        "== Human data (simulated release with planted truth) ==",
        format_summary(result.summary),
        "",
        f"== Proxy: {result.proxy.name}, fitted on the natural units: {result.proxy.fitted_params} ==",
        f"held-out (leave one model out) per-unit Pearson r with humans: {pearson.get('value', float('nan')):.3f} "
        f"[{pearson.get('ci_low', float('nan')):.3f}, {pearson.get('ci_high', float('nan')):.3f}]",
    ]
    scores: dict[str, ResultFile] = {name: read_result(path) for name, path in result.results.items()}
    for name, path in result.results.items():
        lines += ["", f"== {name} (random weights) ==", format_result(scores[name], max_units=3)]
    lines += [
        "",
        "== Scores ==",
        *(f"  {name:<10} MIS {r.scores.model.mean:.3f} [{r.scores.model.ci_low:.3f}, {r.scores.model.ci_high:.3f}] "
          f"over {r.scores.model.n_units} units" for name, r in scores.items()),
        "",
        f"Human-data plot: {result.plot}",
        f"Result files: {', '.join(str(p) for p in result.results.values())}",
        f"See them on the leaderboard: imibench leaderboard --results {next(iter(result.results.values())).parent}",
        f"Done in {result.seconds:.0f} s.",
    ]
    return "\n".join(lines)

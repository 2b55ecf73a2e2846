"""The embedded default: the whole chain, offline, on a laptop CPU in a few minutes, showing the benchmark at work.

simulated human release (planted truth) -> human summary -> held-out validation and fit of a proxy (mis-pixel)
-> train a small CNN on rendered shapes (seconds, seeded, cached) -> score it and its random twin (the same
architecture at its initial weights) with the same proxy, image source and units -> a paired comparison, result
files, per-layer profiles and the trained model's most and least interpretable units.
The same steps with a Hub id, an image folder and real checkpoints are the real run (see the README).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.api.types import HumanDataOrigin
from benchmark.data.simulate import SimulationConfig, write_release
from benchmark.data.sources import load_trials
from benchmark.data.summary import HumanDataSummary, format_summary, plot_summary, summarize
from benchmark.files import sha256_file
from benchmark.models.toy_training import ToyCheckpoint, ToyTrainingConfig
from benchmark.proxies.fitted import FittedProxy
from benchmark.results.compare import PairedComparison, compare_results, format_comparison
from benchmark.results.io import atomic_write_text, read_result
from benchmark.results.schema import ResultFile

DEMO_PROXY = "mis-pixel"
DEMO_ARCH = "shapes_cnn"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo's steps; the defaults are the README's run, tests shrink them."""

    seed: int = 0
    epochs: int = 2
    n_train: int = 2000
    epochs_to_score: tuple[int, ...] = ()  # extra checkpoints to score (interpretability over training)
    n_shapes: int = 1600  # held-out rendered images to rank by activation ...
    n_photos: int = 400  # ... then this many bundled photo crops
    layers: tuple[str, ...] = ("conv*",)  # every unit of these layers is scored
    protocol: dict = field(default_factory=dict)  # overrides of the IMI protocol (default N=20, K=9)
    n_boot: int = 500  # validation bootstrap
    n_refits: int = 50  # of which the proxy's cross-validation is refitted (its CI includes the refit variance)
    simulation: SimulationConfig | None = None  # default: SimulationConfig(seed=seed)

    def training(self) -> ToyTrainingConfig:
        """The toy model's training configuration."""
        return ToyTrainingConfig(arch=DEMO_ARCH, seed=self.seed, epochs=self.epochs, n_train=self.n_train,
                                 save_epochs=tuple(e for e in self.epochs_to_score if e != self.epochs))

    def images(self) -> str:
        """The image source spec both models are scored on (held-out shapes, then bundled photos)."""
        return f"shapes:{self.n_shapes}?split=test&photos={self.n_photos}&seed={self.seed}"


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote and computed."""

    release: Path
    summary: HumanDataSummary
    plot: Path
    proxy: FittedProxy
    checkpoints: dict[int, ToyCheckpoint]
    results: dict[str, Path]  # "trained", "random", and "epoch N" for extra checkpoints
    comparison: PairedComparison
    figures: dict[str, Path]
    seconds: float
    config: DemoConfig = field(default_factory=DemoConfig)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step


def run_demo(
    out_dir: str | Path = "imibench-out/demo", *, seed: int = 0, progress: bool = True, config: DemoConfig | None = None
) -> DemoResult:
    """Run the whole chain into `out_dir`; trained weights are cached there, so a rerun skips training."""
    from benchmark.models.toy_training import train_toy_model
    from benchmark.validation.fit import fit_proxy
    from benchmark.validation.run import build_config

    config = config or DemoConfig(seed=seed)
    start = time.perf_counter()
    stages: dict[str, float] = {}

    def lap(name: str) -> None:
        stages[name] = time.perf_counter() - start - sum(stages.values())

    out = Path(out_dir)
    release = write_release(out / "release", config.simulation or SimulationConfig(seed=config.seed),
                            progress=progress)
    loaded = load_trials(str(release), progress=progress)
    summary = summarize(loaded.trials, source=loaded.source, notes=loaded.notes, seed=config.seed,
                        origin=loaded.origin)
    plot = plot_summary(summary, out / "human_summary.png")
    validation = build_config(source=str(release), metrics=(DEMO_PROXY,), seed=config.seed, n_boot=config.n_boot,
                              n_refits=config.n_refits, progress=progress)
    proxy_file = out / "proxies" / f"{DEMO_PROXY}.json"
    proxy = _label_simulated(fit_proxy(validation, mode="natural", out=proxy_file), loaded.origin, release,
                             config, proxy_file)
    lap("human data, proxy validation and fit")
    checkpoints = train_toy_model(config.training(), out / "models", progress=progress)
    lap("training (cached on rerun)")
    models = {"trained": _local(checkpoints[config.epochs].path), "random": f"toy:{DEMO_ARCH}"}
    models |= {f"epoch {e}": _local(checkpoints[e].path) for e in sorted(config.epochs_to_score)
               if e not in (0, config.epochs)}
    results = {}
    for label, model in models.items():
        results[label] = _score(model, label, config, proxy_file, out, progress)
        lap(f"scoring {label}")
    loaded_results = {label: read_result(path) for label, path in results.items()}
    comparison = compare_results(loaded_results["trained"], loaded_results["random"], labels=("trained", "random"),
                                 seed=config.seed)
    figures = _figures(loaded_results, results, config, out)
    lap("comparison and figures")
    return DemoResult(release, summary, plot, proxy, checkpoints, results, comparison, figures,
                      time.perf_counter() - start, config, stages)


def _label_simulated(proxy: FittedProxy, origin: HumanDataOrigin | None, release: Path, config: DemoConfig,
                     path: Path) -> FittedProxy:
    """Make sure the fitted proxy (and so every result scored with it) says its humans are simulated."""
    if proxy.human_data is not None:
        return proxy
    simulation = config.simulation or SimulationConfig(seed=config.seed)
    origin = origin or HumanDataOrigin(kind="simulated", source=str(release),
                                       simulator={"seed": simulation.seed, "version": None})
    labelled = proxy.model_copy(update={"human_data": origin})
    atomic_write_text(path, labelled.model_dump_json(indent=2))
    return labelled


def _local(path: Path) -> str:
    return f"local:{path}?arch=toy:{DEMO_ARCH}"


def _score(model: str, label: str, config: DemoConfig, proxy_file: Path, out: Path, progress: bool) -> Path:
    from benchmark.scoring.pipeline import score_submission
    from benchmark.scoring.spec import parse_spec

    name = "toy-" + label.replace(" ", "")
    weights = model.removeprefix("local:").partition("?")[0] if model.startswith("local:") else None
    # the trained model's spec pins its checkpoint (whose name gives seed and epoch) by sha256
    pinned = {"weights_sha256": sha256_file(weights)} if weights else {}
    spec = parse_spec({
        **pinned, "model": model, "pretrained": label != "random", "images": config.images(), "proxy": str(proxy_file),
        "units": {"layers": list(config.layers)}, "protocol": config.protocol, "seed": config.seed,
        "batch_size": 200, "device": "cpu", "out": str(out / "results" / f"{name}.json"),
    })
    return score_submission(spec, progress=progress)


def _figures(results: dict[str, ResultFile], paths: dict[str, Path], config: DemoConfig, out: Path) -> dict[str, Path]:
    from benchmark.results.plots import plot_layer_profiles, plot_unit_tasks

    trained = results["trained"]
    units = sorted(trained.scores.units, key=lambda u: u.score)
    figures = {
        "layers": plot_layer_profiles({"trained": trained, "random init": results["random"]},
                                      out / "figures" / "layer_profiles.png",
                                      title="Toy CNN: trained vs its random initialisation"),
        "units": plot_unit_tasks(trained, paths["trained"], [("most", units[-1]), ("least", units[0])],
                                 out / "figures" / "trained_units.png"),
    }
    if len(results) > 2:
        figures["training"] = _plot_training(results, config, out / "figures" / "training.png")
    return figures


def epoch_curve(results: dict[str, ResultFile], config: DemoConfig) -> list[tuple[int, ResultFile]]:
    """(epoch, result) pairs in training order: the random twin is epoch 0, the trained model the last epoch."""
    curve = [(0, results["random"])]
    curve += sorted((int(label.split()[1]), r) for label, r in results.items() if label.startswith("epoch "))
    return [*curve, (config.epochs, results["trained"])]


def _plot_training(results: dict[str, ResultFile], config: DemoConfig, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmark.results.plots import _save

    curve = epoch_curve(results, config)
    fig, ax = plt.subplots(figsize=(4.8, 3.4), dpi=120)
    epochs = [e for e, _ in curve]
    means = [r.scores.model.mean for _, r in curve]
    ax.errorbar(epochs, means, yerr=[[m - r.scores.model.ci_low for m, (_, r) in zip(means, curve)],
                                     [r.scores.model.ci_high - m for m, (_, r) in zip(means, curve)]],
                marker="o", capsize=3)
    ax.set_xlabel("training epoch (0 = random init)")
    ax.set_ylabel(f"{DEMO_PROXY} (mean over units, 95% CI)")
    ax.set_title("Interpretability over training")
    fig.tight_layout()
    return _save(fig, out)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def describe(result: DemoResult) -> str:
    """The demo's report as text."""
    headline = result.proxy.validation.get("headline", {})
    human = result.proxy.human_data
    who = human.label if human is not None else "simulated humans"
    scores = {label: read_result(path) for label, path in result.results.items()}
    final = result.checkpoints[result.config.epochs]
    c = result.comparison
    verdict = ("the trained model scores higher; the 95% CIs do not overlap" if c.difference > 0 and not c.cis_overlap
               else "the trained model does NOT clearly beat its random twin in this run")
    lines = [
        f"== Human data: {who} (a release simulated from a planted observer, so the truth is known) ==",
        format_summary(result.summary),
        "",
        f"== Proxy: {result.proxy.name}, fitted on the natural units: {result.proxy.fitted_params} ==",
        (f"held-out (leave one model out) headline r (fold-mean Pearson) with {who}: "
         f"{_number(headline.get('value'))} [{_number(headline.get('ci_low'))}, {_number(headline.get('ci_high'))}]"),
        "",
        (f"== Toy model: {DEMO_ARCH} trained {result.config.epochs} epochs on {result.config.n_train} rendered "
         f"shapes (seed {result.config.seed}); held-out colour accuracy {final.test_accuracy:.1%} =="),
        f"weights: {final.path}  (random twin: the same architecture at its initial weights)",
        f"scored on {result.config.images()}, every unit of layers {', '.join(result.config.layers)}",
        "",
        "Per layer (mean MIS over units):",
        *(f"  {layer.layer:<8} trained {layer.mean:.3f} [{layer.ci_low:.3f}, {layer.ci_high:.3f}]   random "
          f"{other.mean:.3f} [{other.ci_low:.3f}, {other.ci_high:.3f}]"
          for layer, other in zip(scores["trained"].scores.layers, scores["random"].scores.layers)),
    ]
    if len(scores) > 2:
        lines += ["", "Interpretability over training:", *(
            f"  epoch {epoch}: {r.scores.model.mean:.3f} [{r.scores.model.ci_low:.3f}, {r.scores.model.ci_high:.3f}]"
            for epoch, r in epoch_curve(scores, result.config))]
    lines += [
        "",
        "== Result ==",
        format_comparison(c),
        f"-> {verdict}.",
        "",
        f"Figures: {', '.join(str(p) for p in result.figures.values())}; human-data plot: {result.plot}",
        f"Result files: {', '.join(str(p) for p in result.results.values())}",
        (f"See them on the leaderboard (demo group, {who}): imibench leaderboard --results "
        f"{next(iter(result.results.values())).parent}"),
        f"Done in {result.seconds:.0f} s ("
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.stage_seconds.items()) + ").",
    ]
    return "\n".join(lines)

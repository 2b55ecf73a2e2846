"""Cost of scoring units with MIS once their activations are collected, against the forward pass that precedes it.

Runs the scoring pipeline's stages separately on one model and image source and prints
  - the activation pass: seconds and images/s (the forward pass over the whole source),
  - scoring after activations: building the tasks, writing/locating the stimuli, embedding every needed image once
    and computing MIS for all units: seconds in all and per unit,
  - their ratio on this source, and extrapolated to a source of --extrapolate-images images (ImageNet-train:
    1,281,167), where the forward pass grows with the number of images and the scoring cost does not.
Target: scoring cost negligible beside the forward pass (ratio well below 0.1 at ImageNet scale).

  python benchmarks/scoring_cost.py                                   # resnet18 (random weights), bundled:600, CPU
  python benchmarks/scoring_cost.py --model timm:resnet50.a1_in1k --pretrained --images folder:/data/imagenet/train \
      --device cuda --batch-size 256 --proxy mis-dreamsim.json       # a real run on a GPU machine

Without --proxy, mis-pixel is fitted on a simulated release first (a few seconds; not timed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data.simulate import SimulationConfig, write_release
from benchmark.data.stimuli import StimulusIndex
from benchmark.models.adapters import load_model
from benchmark.proxies.base import make_proxy
from benchmark.proxies.fitted import load_fitted_proxy, save_fitted_proxy
from benchmark.proxies.units import build_units
from benchmark.scoring.pipeline import local_activation_pass, ranks_needed, resolve_device, score_units, unit_tasks
from benchmark.scoring.spec import model_spec_of, parse_spec
from benchmark.scoring.stimuli import all_indices, materialise, proxy_unit
from benchmark.scoring.units import choose_units
from benchmark.stimuli.sources import parse_image_source

IMAGENET_TRAIN = 1_281_167


def fit_default_proxy(folder: Path) -> Path:
    """mis-pixel fitted on a simulated release's planted accuracies (natural units)."""
    release = write_release(folder / "release", SimulationConfig(seed=0))
    truth = pd.read_csv(release / "simulation" / "truth.csv")
    truth = truth[truth["mode"] == "natural"].reset_index(drop=True)
    metric = make_proxy("mis-pixel").fit(build_units(StimulusIndex.from_release(release), truth),
                                         truth["true_accuracy"].to_numpy())
    save_fitted_proxy(metric, folder / "mis-pixel.json")
    return folder / "mis-pixel.json"


def main() -> None:
    """Parse arguments, time the stages, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="timm:resnet18")
    parser.add_argument("--pretrained", action="store_true", help="load pretrained weights (needs the hub or cache)")
    parser.add_argument("--images", default="bundled:600")
    parser.add_argument("--proxy", type=Path, help="fitted proxy file (default: fit mis-pixel on simulated data)")
    parser.add_argument("--total-units", type=int, default=24)
    parser.add_argument("--layers", default="layer*.*.conv1,layer*.*.conv2")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--extrapolate-images", type=int, default=IMAGENET_TRAIN)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="imibench-cost-") as tmp:
        work = Path(tmp)
        proxy = args.proxy or fit_default_proxy(work)
        spec = parse_spec({
            "model": args.model, "pretrained": args.pretrained, "images": args.images, "proxy": str(proxy),
            "units": {"layers": args.layers.split(","), "total_units": args.total_units},
            "device": args.device, "batch_size": args.batch_size, "num_workers": args.num_workers,
        })
        metric, _ = load_fitted_proxy(spec.proxy)
        loaded = load_model(model_spec_of(spec), device=resolve_device(spec.device))
        source = parse_image_source(spec.images)
        units, layers = choose_units(loaded, spec.units)
        k, band = ranks_needed(spec.protocol, len(source))

        start = time.perf_counter()
        extremes = local_activation_pass(loaded, source, units, layers, spec, k=k, work_dir=work / "run",
                                         progress=False)
        forward_s = time.perf_counter() - start

        start = time.perf_counter()
        tasks, _ = unit_tasks(units, extremes, spec, band)
        paths = materialise(source, all_indices(t for _, t in tasks), work / "run" / "stimuli")
        stimuli_s = time.perf_counter() - start
        proxy_units = [proxy_unit("bench", u.layer, u.channel, t, paths) for u, t in tasks]
        start = time.perf_counter()
        score_units(metric, proxy_units, tasks)
        mis_s = time.perf_counter() - start

    n_units, n_images = len(tasks), len(source)
    scoring_s = stimuli_s + mis_s
    per_image = forward_s / n_images
    extrapolated_forward = per_image * args.extrapolate_images
    n_distinct = len(np.unique(all_indices(t for _, t in tasks)))
    print(f"scoring cost: {spec.model} on {spec.images} ({n_images} images), {n_units} units, proxy {metric!r}, "
          f"device {loaded.device}")
    print(f"activation pass (forward over the source): {forward_s:.2f} s, {n_images / forward_s:.1f} images/s")
    print(f"scoring after activations: {scoring_s:.2f} s ({stimuli_s:.2f} s tasks + stimuli, {mis_s:.2f} s "
          f"embedding {n_distinct} distinct images + MIS), {1000 * scoring_s / n_units:.1f} ms per unit")
    print(f"ratio scoring / forward on this source: {scoring_s / forward_s:.3f}")
    print(f"extrapolated to {args.extrapolate_images:,} images: forward {extrapolated_forward / 3600:.2f} h, "
          f"scoring {scoring_s:.1f} s, ratio {scoring_s / extrapolated_forward:.2e}")


if __name__ == "__main__":
    main()

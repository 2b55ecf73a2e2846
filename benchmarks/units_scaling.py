"""How the activation pass and the scoring after it grow with the number of units per model (84 .. every unit).

For U in --units (default 84, 1000, 10000 and `all`: every BatchNorm channel of the model, 26,560 for resnet50) it
prints
  - the compute-only activation pass (batches already in memory, hooks, reduction, top/bottom-k) as a ratio to the
    bare forward pass over the same images: the per-unit overhead beside the forward;
  - the top/bottom-k state: bytes per unit (k = N (K + 1) = 200 per side);
  - building the 2-AFC tasks from the sets (`pipeline.unit_tasks`): microseconds per unit;
  - the proxy after embedding: `TaskIndex` + MIS margins (`TaskEmbeddings.margins`, the real code) with random
    1792-d unit vectors (DreamSim's size): microseconds per unit, and the number of distinct images to embed
    (about 380 per unit on a large source; embedding them is the dominant scoring cost, see
    benchmarks/dreamsim_throughput.py).
Images are random tensors at --size px (64 by default: the units are the same at any resolution, and the CPU here is
slow); the forward-pass ratio is what transfers to 224 px, where the forward is ~12x costlier and the ratio closer
to 1.

  python benchmarks/units_scaling.py                          # resnet50, 512 images of 64 px, CPU
  python benchmarks/units_scaling.py --device cuda --size 224 --n-images 8192 --batch-size 256
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmark.activations import collect_extremes, layer_selections
from benchmark.api.types import Protocol
from benchmark.models.adapters import load_model
from benchmark.models.spec import parse_model_spec
from benchmark.models.units import every_unit, list_layers, sample_units, select_layers
from benchmark.proxies.mis import TaskEmbeddings, TaskIndex
from benchmark.scoring import pipeline
from benchmark.scoring.spec import ScoreSpec
from benchmark.scoring.stimuli import proxy_unit
from benchmark.stimuli.exemplars import required_per_side


def main(argv: list[str] | None = None) -> None:
    """Print one row per unit count."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--units", default="84,1000,10000,all")
    parser.add_argument("--n-images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    loaded = load_model(parse_model_spec(f"timm:{args.model}?pretrained=false"), device=device)
    layers = list_layers(loaded)
    everything = every_unit(layers)
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(args.batch_size, 3, args.size, args.size, generator=generator).to(device),
                torch.arange(i, i + args.batch_size)) for i in range(0, args.n_images, args.batch_size)]
    n_images = len(batches) * args.batch_size
    spec = ScoreSpec(model=f"timm:{args.model}", proxy="unused.json", device=args.device)
    k = required_per_side(Protocol())
    forward = bare_forward(loaded.module, batches, device)
    print(f"{args.model} ({len(everything)} units in all eligible layers), {n_images} images of {args.size} px on "
          f"{device}; bare forward {n_images / forward:.1f} img/s")
    print(f"{'units':>6} {'pass/forward':>12} {'state B/unit':>13} {'tasks us/unit':>14} {'MIS us/unit':>12} "
          f"{'images/unit':>12}")
    for count in args.units.split(","):
        total = len(everything) if count == "all" else int(count)
        norms = select_layers(layers, kinds=["norm"])
        units = everything if count == "all" else sample_units(norms, total=total, seed=0)
        selection = layer_selections(units, layers)
        start = time.perf_counter()
        sets = collect_extremes(loaded.module, selection, batches, k=k, device=device, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        state = sum((s._top_keys.numel() + s._bottom_keys.numel()) * 8 + s._nan_count.numel() * 8
                    for s in sets.values())
        start = time.perf_counter()
        tasks, _ = pipeline.unit_tasks(units, sets, spec, None)
        task_seconds = time.perf_counter() - start
        paths = {i: Path(f"img/{i}.png") for i in range(n_images)}
        start = time.perf_counter()
        proxy_units = [proxy_unit("m", u.layer, u.channel, t, paths) for u, t in tasks]
        index = TaskIndex.from_units(proxy_units)
        vectors = np.random.default_rng(0).normal(size=(len(index.paths), 1792)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        margins = TaskEmbeddings(index, vectors).margins()
        index.unit_mean(1 / (1 + np.exp(-margins)))
        mis_seconds = time.perf_counter() - start
        per_unit_images = np.mean([len(t.image_ids()) for _, t in tasks])
        print(f"{len(units):>6} {forward / seconds:>12.2f} {state / len(units):>13.0f} "
              f"{1e6 * task_seconds / len(tasks):>14.0f} {1e6 * mis_seconds / len(tasks):>12.0f} "
              f"{per_unit_images:>12.0f}")


def bare_forward(model: torch.nn.Module, batches: list, device: torch.device) -> float:
    """Seconds of model(x) over the batches (channels_last, inference mode, after one warm-up batch)."""
    model = model.eval().to(device).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(batches[0][0].contiguous(memory_format=torch.channels_last))
        start = time.perf_counter()
        for images, _ in batches:
            model(images.contiguous(memory_format=torch.channels_last))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

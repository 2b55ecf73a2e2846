"""Scaling of the sharded activation pass over Ray: throughput with 1 vs 2 workers, and the cost of the merge.

Prints images/s of
  (a) the local pass: one process, all its torch threads, no Ray (`collect_range` over every image);
  (b) the sharded pass over Ray with W = 1 and W = 2 workers (W shards, one task each, all running at once:
      `collect_shard_states` then `merge_states`), the ratio W=2 / W=1, and the merge's time (s and % of the pass);
and checks that every sharded result equals the local pass bit for bit.

Each Ray task builds the model and the image source itself (as it would on a remote node) and runs on
--num-cpus-per-task threads (1: the ratio then measures scaling over processes, not threads); the timings include
that set-up. A warm-up round first starts the worker processes and imports torch and timm in them, so the
timings are of warm workers (a cluster's workers stay warm between tasks).

  python benchmarks/scaling.py                                   # local 2-CPU Ray cluster, resnet18 (random weights)
  python benchmarks/scaling.py --address auto --num-gpus-per-task 1 --batch-size 256 --n-images 20000 \\
      --images folder:/data/imagenet/train --num-workers 8        # a running cluster (see docs/ray.md)
  python benchmarks/scaling.py --num-gpus-per-task 0.5 ...        # two workers sharing one GPU

The bundled images are generated on the fly (crops and resizes: a few ms each), like decoding JPEGs would cost.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import ray
import torch

from benchmark.activations.collect import layer_selections
from benchmark.distributed.ray_backend import collect_shard_states, connect, task_slots
from benchmark.distributed.sharding import SpecShardJob, collect_range, merge_states, plan_shards
from benchmark.models.adapters import load_model
from benchmark.scoring.pipeline import resolve_device
from benchmark.scoring.spec import ScoreSpec, model_spec_of, parse_spec
from benchmark.scoring.units import choose_units
from benchmark.stimuli.sources import parse_image_source

WORKERS = (1, 2)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="timm:resnet18", help="model spec (default timm:resnet18)")
    parser.add_argument("--pretrained", action="store_true", help="download weights (default: random, offline)")
    parser.add_argument("--images", default="bundled", help="image source spec (default: the bundled sample)")
    parser.add_argument("--n-images", type=int, default=192, help="first N images of the source (default 192)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--k", type=int, default=200, help="images kept per side and unit (protocol default 200)")
    parser.add_argument("--num-gpus-per-task", type=float, default=0.0, help="GPUs per Ray task (default 0: CPU)")
    parser.add_argument("--num-cpus-per-task", type=float, default=1.0, help="CPUs (torch threads) per Ray task")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers per task (default 0)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds; the best of each is kept")
    parser.add_argument("--address", default=None,
                        help="Ray cluster (auto, HOST:6379, ray://HOST:10001); default: start a local one here")
    return parser.parse_args(argv)


def limited(images: str, n: int) -> str:
    """The source spec restricted to its first n images (bundled -> bundled:N, others get ?limit=N)."""
    body, _, query = images.partition("?")
    if body == "bundled":
        return f"bundled:{n}" + (f"?{query}" if query else "")
    if body.startswith("bundled:"):
        raise SystemExit(f"--images {images!r} already sets a count; pass --images bundled and --n-images N.")
    return images + ("&" if query else "?") + f"limit={n}"


def build_spec(args: argparse.Namespace) -> ScoreSpec:
    """A score spec for the pass (the proxy is never read)."""
    device = "cuda" if args.num_gpus_per_task > 0 else "cpu"
    images = limited(args.images, args.n_images)
    return parse_spec({"model": args.model, "pretrained": args.pretrained, "images": images,
                       "batch_size": args.batch_size, "num_workers": args.num_workers, "device": device,
                       "proxy": "unused.json"})


def local_pass(spec: ScoreSpec, k: int, shard: range | None = None) -> tuple[SpecShardJob, dict, float]:
    """The job for the shards, the local pass's sets (over `shard`, default all) and its wall time (with model load)."""
    start = time.perf_counter()
    device = resolve_device(spec.device)
    loaded = load_model(model_spec_of(spec), device=device)
    source = parse_image_source(spec.images)
    units, layers = choose_units(loaded, spec.units)
    selections = layer_selections(units, layers)
    sets = collect_range(loaded.module, selections, source, loaded.transform, shard or range(len(source)), k=k,
                         batch_size=spec.batch_size, device=device, num_workers=spec.num_workers)
    elapsed = time.perf_counter() - start
    job = SpecShardJob.from_pass(loaded, source, units, layers, spec, k=k, work_dir=None)
    return job, {name: part.to("cpu") for name, part in sets.items()}, elapsed


def sharded(job: SpecShardJob, workers: int, args: argparse.Namespace) -> tuple[dict, float, float]:
    """The merged sets of `workers` shards, the wall time of the whole pass and that of the merge."""
    shards = plan_shards(job.n_images, workers, align=job.batch_size)
    start = time.perf_counter()
    states = collect_shard_states(job, shards, num_gpus_per_task=args.num_gpus_per_task,
                                  num_cpus_per_task=args.num_cpus_per_task)
    merge_start = time.perf_counter()
    sets = merge_states(states)
    end = time.perf_counter()
    return sets, end - start, end - merge_start


def warm_up(job: SpecShardJob, args: argparse.Namespace) -> float:
    """Run max(WORKERS) one-batch tasks so the worker processes exist and have imported torch and timm."""
    start = time.perf_counter()
    shards = [range(min(job.batch_size, job.n_images))] * max(WORKERS)
    collect_shard_states(job, shards, num_gpus_per_task=args.num_gpus_per_task,
                         num_cpus_per_task=args.num_cpus_per_task)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    """Run the comparison and print it."""
    args = parse_args(argv)
    spec = build_spec(args)
    ray_start = start_ray(args)
    resources = ray.cluster_resources()
    slots = task_slots(args.num_gpus_per_task, args.num_cpus_per_task)
    threads = torch.get_num_threads()
    local_pass(spec, args.k, range(min(spec.batch_size, args.n_images)))  # warm-up, as for the Ray workers
    local_s, local_sets, job = {}, {}, None
    for n_threads in sorted({1, threads}):
        torch.set_num_threads(n_threads)
        job, local_sets, local_s[n_threads] = local_pass(spec, args.k)
    torch.set_num_threads(threads)
    n = job.n_images
    units = sum(part.n_units for part in local_sets.values())
    print(f"scaling: {spec.model} ({'pretrained' if spec.pretrained else 'random'} weights), {n} images of "
          f"{spec.images}, batch {spec.batch_size}, {units} units in {len(local_sets)} layers, k={args.k}, "
          f"device {spec.device}")
    print(f"Ray {ray.__version__}: {resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU "
          f"({'cluster at ' + args.address if args.address else 'local, started here'} in {ray_start:.1f} s); "
          f"per task {args.num_cpus_per_task:g} CPU + {args.num_gpus_per_task:g} GPU, {slots} task slot(s); "
          f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before the runs")
    print(f"warm-up of the Ray workers: {warm_up(job, args):.1f} s (not counted; nor is one local warm-up batch)")
    for n_threads, seconds in local_s.items():
        print(f"local pass, 1 process, {n_threads} torch thread(s): {n / seconds:7.1f} images/s ({seconds:.2f} s, "
              "model load included)")
    best: dict[int, tuple[float, float]] = {}
    for _ in range(args.repeats):  # interleaved rounds, best of each: other jobs on the host skew single runs
        for workers in WORKERS:
            sets, total_s, merge_s = sharded(job, workers, args)
            if any(sets[name] != local_sets[name] for name in local_sets):
                raise SystemExit(f"The sharded pass with {workers} worker(s) differs from the local pass.")
            if workers not in best or total_s < best[workers][0]:
                best[workers] = (total_s, merge_s)
    for workers, (total_s, merge_s) in best.items():
        print(f"ray, {workers} worker(s), {workers} shard(s): {n / total_s:7.1f} images/s ({total_s:.2f} s; merge "
              f"{merge_s * 1e3:.1f} ms = {100 * merge_s / total_s:.2f} % of it); bit-identical to the local pass")
    low, high = WORKERS[0], WORKERS[-1]
    print(f"ratio {high} workers / {low} worker: {best[low][0] / best[high][0]:.2f} (ideal {high / low:.0f}); "
          f"load average after: {os.getloadavg()[0]:.2f}")


def start_ray(args: argparse.Namespace) -> float:
    """Join --address, or start a local cluster with the CPUs the runs need; seconds it took."""
    start = time.perf_counter()
    if args.address is None and not ray.is_initialized():
        ray.init(num_cpus=max(WORKERS) * max(1, int(args.num_cpus_per_task)), include_dashboard=False,
                 logging_level="WARNING")
    else:
        connect(args.address)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

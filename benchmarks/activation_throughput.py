"""Throughput of the activation pass (`benchmark.activations.collect_extremes`) against a bare forward pass.

Prints images/s of
  (a)  the full pipeline: DataLoader with workers (+ pinned memory on CUDA) -> hooks -> reduction -> top/bottom-k;
  (a') the same pipeline over pre-generated batches already on the device (compute only, no data loading);
  (a'') (a') with early stop switched off, to measure what early stop saves;
  (b)  a bare forward pass of the same model, device, batch size, dtype and memory format over the same images;
and the ratios (a)/(b) (loader-inclusive) and (a')/(b) (compute-only).

Target: compute-only ratio >= 0.8 on a GPU and on a CPU with a small model; loader-inclusive ratio >= 0.8 where the
loader has enough cores (on a 2-core CPU the workers compete with the model for the same cores).

  python benchmarks/activation_throughput.py                       # resnet18 on CPU, random weights (offline)
  python benchmarks/activation_throughput.py --layers 'layer2.*.bn*'  # shallow layers: early stop skips layer3-4
  python benchmarks/activation_throughput.py --model resnet50 --device cuda --batch-size 256 --dtype bf16 \
      --n-images 20480 --num-workers 8
  python benchmarks/activation_throughput.py --model vit_base_patch16_224 --device cuda --batch-size 256 \
      --dtype bf16 --n-images 20480 --num-workers 8

Units: by default those the benchmark scores (84 units over every layer of the preferred kind, e.g. all BatchNorms
of a ResNet, `benchmark.models.units`); --layers / --units-per-layer / --total-units change that.
The synthetic images are random tensors made in the Dataset (no JPEG decoding), so (a) is an upper bound on a real
image folder's loader-inclusive throughput; the compute-only numbers are exact. Each variant is timed in interleaved
rounds and the best round is kept; on a machine shared with other jobs (load average above the core count, printed)
wall-clock ratios swing widely, and on the CPU the CPU-time ratio is printed as well.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable, Iterable

import timm
import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.activations import LayerSelection, collect_extremes, layer_selections
from benchmark.models.units import (
    DEFAULT_KIND_PREFERENCE,
    DEFAULT_TOTAL_UNITS,
    enumerate_layers,
    sample_units,
    select_layers,
)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class SyntheticImages(Dataset):
    """Deterministic random normalised images (one generator per index), with their index as the id."""

    def __init__(self, n: int, size: int) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        generator = torch.Generator().manual_seed(index)
        return torch.randn(3, self.size, self.size, generator=generator), index


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18", help="timm model name (default resnet18)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-images", type=int, default=128)
    parser.add_argument("--img-size", type=int, default=None, help="default: the model's input size")
    parser.add_argument("--units-per-layer", type=int, default=None, help="default: --total-units over the layers")
    parser.add_argument("--total-units", type=int, default=DEFAULT_TOTAL_UNITS)
    parser.add_argument(
        "--layers", nargs="+", default=None,
        help="fnmatch patterns of layer names (default: every layer of the preferred kind, as the benchmark does)",
    )
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--repeats", type=int, default=4, help="interleaved rounds; the best of each is reported")
    parser.add_argument("--pretrained", action="store_true", help="download weights (default: random, offline)")
    return parser.parse_args(argv)


def select_units(
    model: torch.nn.Module, input_size: tuple[int, int, int], args: argparse.Namespace
) -> dict[str, LayerSelection]:
    """The benchmark's default units (84 over every layer of the preferred kind) or the layers/units asked for."""
    infos = enumerate_layers(model, input_size)
    present = {info.kind for info in infos}
    kind = next(kind for kind in DEFAULT_KIND_PREFERENCE if kind in present)
    layers = select_layers(infos, patterns=args.layers, kinds=None if args.layers else [kind])
    if args.units_per_layer is not None:
        units = sample_units(layers, per_layer=args.units_per_layer)
    else:
        units = sample_units(layers, total=min(args.total_units, sum(info.n_units for info in layers)))
    return layer_selections(units, infos)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(wall, CPU) seconds taken by fn(), synchronising the device before and after; CPU = this process's threads."""
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def synchronize(device: torch.device) -> None:
    """Wait for queued device work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_forward(model: torch.nn.Module, batches: list[torch.Tensor], dtype: torch.dtype) -> None:
    """Forward every batch and discard the output (the reference the pipeline is compared against)."""
    device_type = batches[0].device.type
    amp = torch.autocast(device_type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    with torch.inference_mode(), amp:
        for images in batches:
            model(images)


def device_batches(dataset: SyntheticImages, batch_size: int, device: torch.device, channels_last: bool) -> list:
    """The dataset's images pre-generated as (images, ids) batches already on the device."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    stacked = torch.stack([dataset[i][0] for i in range(len(dataset))])
    return [
        (stacked[i : i + batch_size].to(device).contiguous(memory_format=memory_format), torch.arange(i, j))
        for i, j in ((i, min(i + batch_size, len(dataset))) for i in range(0, len(dataset), batch_size))
    ]


def measure(
    runs: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds of each run over interleaved rounds (robust to other processes on the machine)."""
    best = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = timed(run, device)
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def report(seconds: dict[str, tuple[float, float]], n_images: int, num_workers: int, device: torch.device) -> None:
    """Print images/s and the ratios to the bare forward pass."""
    rate = {name: n_images / wall for name, (wall, _) in seconds.items()}
    cpu_ratio = seconds["bare"][1] / seconds["compute"][1]
    cpu_note = f", CPU-time ratio {cpu_ratio:.2f}" if device.type == "cpu" else ""
    print(f"compute-only: pipeline {rate['compute']:.1f} img/s, bare forward {rate['bare']:.1f} img/s, "
          f"ratio {rate['compute'] / rate['bare']:.2f}{cpu_note}")
    print(f"early stop off: pipeline {rate['no_stop']:.1f} img/s "
          f"(early stop speed-up x{seconds['no_stop'][0] / seconds['compute'][0]:.2f})")
    print(f"pipeline {rate['pipeline']:.1f} img/s, bare forward {rate['bare']:.1f} img/s, "
          f"ratio {rate['pipeline'] / rate['bare']:.2f} (loader-inclusive, {num_workers} workers)")


def main(argv: list[str] | None = None) -> None:
    """Run the measurements and print images/s and the ratios."""
    args = parse_args(argv)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    channels_last = not args.no_channels_last
    torch.manual_seed(0)
    model = timm.create_model(args.model, pretrained=args.pretrained).eval()
    size = args.img_size or model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    layers = select_units(model, (3, size, size), args)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    n_units = sum(len(s.channels) for s in layers.values())
    print(f"{args.model} on {device} ({args.dtype}, batch {args.batch_size}, {size}px, {args.n_images} images), "
          f"{len(layers)} layers ({list(layers)[0]} .. {list(layers)[-1]}), {n_units} units, k={args.k}, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    dataset = SyntheticImages(args.n_images, size)
    batches = device_batches(dataset, args.batch_size, device, channels_last)
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.num_workers,
                        pin_memory=device.type == "cuda", persistent_workers=args.num_workers > 0)
    common = {"k": args.k, "device": device, "dtype": dtype, "channels_last": channels_last, "progress": False}

    def collect(source: Iterable, early_stop: bool = True) -> None:
        for sets in collect_extremes(model, layers, source, early_stop=early_stop, **common).values():
            sets.to_numpy()

    runs = {
        "bare": lambda: bare_forward(model, [images for images, _ in batches], dtype),
        "compute": lambda: collect(batches),
        "no_stop": lambda: collect(batches, early_stop=False),
        "pipeline": lambda: collect(loader),
    }
    measure(runs, 1, device)  # warm-up: kernel selection, allocator, loader workers started
    report(measure(runs, args.repeats, device), args.n_images, args.num_workers, device)
    print(f"load average at the end {os.getloadavg()[0]:.1f} (numbers are unreliable when it exceeds the cores)")

if __name__ == "__main__":
    main()

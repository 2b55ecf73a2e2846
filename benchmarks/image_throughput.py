"""Throughput of the activation pass over real JPEGs, against decoding alone and the bare forward pass.

Writes (once) a folder of ImageNet-like JPEGs (`benchmark.stimuli.jpeg_folder`: mostly 500x375, ImageNet's spread
of sizes, quality 90, some greyscale and CMYK) and prints images/s of
  (a) the full activation pass exactly as `imibench score` runs it (`pipeline.local_activation_pass`: DataLoader
      workers, decode, resize 256 / centre crop 224, forward with hooks, top/bottom-k of the 84 default units);
  (b) decoding alone (the same loader, no model);
  (c) the bare forward pass of the same model, batch size, dtype and memory format over tensors already in memory;
as ratios a/c and b/c, for each --decode path (cpu: PIL in the workers; gpu: nvJPEG + resize/crop on the GPU), and
the projected wall time of (a) over ImageNet-train (1,281,167 images).

Levers (each optional, each measured in the same run):
  --shared-models M1,M2   one image stream feeding several models (`collect_extremes_shared`) vs one pass each;
  --prepared-cache        a copy re-encoded at 256 px on the short side: decode alone and pass over it;
  --memory-formats        bare forward in channels_last and contiguous;
  --compile               bare forward after torch.compile (GPU: minutes of compilation on a CPU).

  python benchmarks/image_throughput.py                       # resnet18, 192 images, CPU (a few minutes here)
  python benchmarks/image_throughput.py --model resnet50 --device cuda --dtype bfloat16 --batch-size 256 \
      --n-images 16384 --num-workers 14 --decode cpu,gpu     # one H100/H200 (see benchmarks/gpu_run.sh)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from benchmark.activations import layer_selections
from benchmark.activations.collect import collect_extremes_shared
from benchmark.models.adapters import load_model
from benchmark.models.spec import parse_model_spec
from benchmark.models.units import default_unit_selection, list_layers
from benchmark.scoring import pipeline
from benchmark.scoring.spec import ScoreSpec
from benchmark.stimuli.jpeg_folder import prepare_resized_copy, write_jpeg_folder
from benchmark.stimuli.sources import ImageFolderSource

IMAGENET_TRAIN = 1_281_167


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18", help="timm architecture (random weights)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-images", type=int, default=192)
    parser.add_argument("--num-workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--decode", default="cpu", help="comma-separated decode paths: cpu, gpu")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "imibench-jpegs")
    parser.add_argument("--shared-models", default=None, help="comma-separated timm models for the shared stream")
    parser.add_argument("--prepared-cache", action="store_true")
    parser.add_argument("--memory-formats", action="store_true")
    parser.add_argument("--compile", action="store_true")
    return parser.parse_args(argv)


def timed(run: Callable[[], object], device: torch.device) -> float:
    """Seconds `run()` takes (CUDA synchronised)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def drain(batches: Iterable) -> int:
    """Consume a loader; the number of images."""
    return sum(len(ids) for _, ids in batches)


def bare_forward(model: torch.nn.Module, n: int, batch: int, device: torch.device, dtype: torch.dtype | None,
                 channels_last: bool) -> float:
    """images/s of model(x) over n images of random tensors already on the device."""
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.eval().to(device).to(memory_format=memory)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=memory)
    amp = torch.autocast(device.type, dtype=dtype) if dtype is not None else torch.autocast(device.type, enabled=False)

    def run(steps: int) -> None:
        with torch.inference_mode(), amp:
            for _ in range(steps):
                model(x)

    run(1)  # warm-up (cuDNN autotuning, compilation)
    steps = max(1, n // batch)
    return steps * batch / timed(lambda: run(steps), device)


def main(argv: list[str] | None = None) -> None:
    """Run the measurements and print the table."""
    args = parse_args(argv)
    device = pipeline.resolve_device(args.device)
    torch_dtype = None if args.dtype in ("auto", "float32") else getattr(torch, args.dtype)
    if args.dtype == "auto" and device.type == "cuda":
        torch_dtype = torch.bfloat16
    start = time.perf_counter()
    write_jpeg_folder(args.folder, args.n_images, workers=max(1, os.cpu_count() or 1))
    source = ImageFolderSource(args.folder, limit=args.n_images)
    sizes = [p.stat().st_size for p in (args.folder / i for i in source.ids())]
    print(f"folder {args.folder}: {len(source)} JPEGs, mean {sum(sizes) / len(sizes) / 1e3:.0f} KB "
          f"(written/checked in {time.perf_counter() - start:.0f} s); load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}")
    loaded = load_model(parse_model_spec(f"timm:{args.model}?pretrained=false"), device=device)
    layers = list_layers(loaded)
    units = default_unit_selection(loaded, layers=layers)
    forward = bare_forward(loaded.module, len(source), args.batch_size, device, torch_dtype, True)
    print(f"\n{args.model} on {device} ({args.dtype}), batch {args.batch_size}, {args.num_workers} loader workers, "
          f"{len(units)} units")
    print(f"  (c) bare forward             {forward:9.1f} img/s   1.00")
    rows = {}
    for decode in [d.strip() for d in args.decode.split(",") if d.strip()]:
        spec = ScoreSpec(model=f"timm:{args.model}", pretrained=False, images=f"folder:{args.folder}",
                         proxy="unused.json", device=str(device), dtype=args.dtype, batch_size=args.batch_size,
                         num_workers=args.num_workers, decode=decode)
        batches, chosen = pipeline.image_batches(loaded, source, spec)
        decode_rate = len(source) / timed(lambda b=batches: drain(b()), device)
        with tempfile.TemporaryDirectory() as work:
            seconds = timed(lambda s=spec, w=work: pipeline.local_activation_pass(
                loaded, source, units, layers, s, k=200, work_dir=Path(w), progress=False), device)
        rows[decode] = len(source) / seconds
        print(f"  (b) decode alone [{chosen}]       {decode_rate:9.1f} img/s   {decode_rate / forward:.2f}")
        print(f"  (a) full pass    [{chosen}]       {rows[decode]:9.1f} img/s   {rows[decode] / forward:.2f}   "
              f"ImageNet-train: {IMAGENET_TRAIN / rows[decode] / 3600:.2f} h "
              f"({IMAGENET_TRAIN / rows[decode] / 60:.1f} min)")
    if args.memory_formats:
        contiguous = bare_forward(loaded.module, len(source), args.batch_size, device, torch_dtype, False)
        print(f"  lever: bare forward contiguous {contiguous:9.1f} img/s   {contiguous / forward:.2f} (vs channels_last)")
    if args.compile:
        compiled = torch.compile(loaded.module)
        rate = bare_forward(compiled, len(source), args.batch_size, device, torch_dtype, True)
        print(f"  lever: bare forward compiled  {rate:9.1f} img/s   {rate / forward:.2f}")
    if args.prepared_cache:
        cache = prepare_resized_copy(args.folder, args.folder.with_name(args.folder.name + "-256"), source.ids(),
                                     workers=max(1, os.cpu_count() or 1))
        cached = ImageFolderSource(cache, limit=args.n_images)
        spec = ScoreSpec(model=f"timm:{args.model}", pretrained=False, images=f"folder:{cache}", proxy="unused.json",
                         device=str(device), dtype=args.dtype, batch_size=args.batch_size,
                         num_workers=args.num_workers, decode="cpu")
        batches, _ = pipeline.image_batches(loaded, cached, spec)
        rate = len(cached) / timed(lambda: drain(batches()), device)
        with tempfile.TemporaryDirectory() as work:
            full = len(cached) / timed(lambda: pipeline.local_activation_pass(
                loaded, cached, units, layers, spec, k=200, work_dir=Path(work), progress=False), device)
        print(f"  lever: 256-px prepared copy: decode alone {rate:.1f} img/s ({rate / forward:.2f}), full pass "
              f"{full:.1f} img/s ({full / forward:.2f})")
    if args.shared_models:
        shared_stream(args, source, device, torch_dtype)


def shared_stream(args: argparse.Namespace, source: ImageFolderSource, device: torch.device,
                  dtype: torch.dtype | None) -> None:
    """Several models: one pass each vs one image stream feeding them all."""
    names = [m.strip() for m in args.shared_models.split(",")]
    models = [load_model(parse_model_spec(f"timm:{m}?pretrained=false"), device=device) for m in names]
    jobs = []
    for loaded in models:
        layers = list_layers(loaded)
        jobs.append((loaded.module, layer_selections(default_unit_selection(loaded, layers=layers), layers)))
    spec = ScoreSpec(model="timm:unused", images=f"folder:{args.folder}", proxy="unused.json", device=str(device),
                     dtype=args.dtype, batch_size=args.batch_size, num_workers=args.num_workers, decode="cpu")
    batches, _ = pipeline.image_batches(models[0], source, spec)
    separate = sum(timed(lambda j=job: collect_extremes_shared([j], batches(), k=200, device=device, dtype=dtype,
                                                               progress=False), device) for job in jobs)
    shared = timed(lambda: collect_extremes_shared(jobs, batches(), k=200, device=device, dtype=dtype,
                                                   progress=False), device)
    print(f"  lever: shared stream over {', '.join(names)}: {len(source) / shared:.1f} img/s vs "
          f"{len(source) / separate:.1f} img/s one pass each (speed-up {separate / shared:.2f}x)")


if __name__ == "__main__":
    main()

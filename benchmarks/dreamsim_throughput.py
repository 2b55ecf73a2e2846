"""Embedding throughput of the DreamSim ensemble architecture (random weights) and the scoring cost it implies.

Builds the "dreamsim" embedder with `pretrained=False` (DINO + CLIP + open_clip ViT-B/16, DreamSim's
preprocessing, concatenation and normalisation; `benchmark.proxies.embedders.dreamsim_arch`) and prints images/s of
  (a) `embed()` on decoded PIL images (500x375 JPEGs): preprocessing (bicubic resize to 224, in this process) plus
      the three backbones (bf16 autocast on CUDA), as `mis-dreamsim` runs it;
  (b) the backbones alone on preprocessed tensors;
and the scoring cost per model after the activation pass: 84 units need about 84 x 380 = 31,920 distinct images
(N = 20 tasks x (K = 9 + 1) x 2 sides minus sharing), embedded once each; 10,000 units about 3.8 million.

  python benchmarks/dreamsim_throughput.py                            # CPU, 16 images
  python benchmarks/dreamsim_throughput.py --device cuda --batch-size 256 --n-images 2048
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from image_throughput import timed  # the sibling script (benchmarks/ is on sys.path when run as a script)
from PIL import Image

from benchmark.proxies.embedders import make_embedder
from benchmark.proxies.embedders.dreamsim_arch import preprocess
from benchmark.stimuli.jpeg_folder import write_jpeg_folder

IMAGES_PER_UNIT = 380


def main(argv: list[str] | None = None) -> None:
    """Print the throughputs and the implied scoring cost."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--n-images", type=int, default=16)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "imibench-jpegs")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    paths = write_jpeg_folder(args.folder, max(args.n_images, 16))[: args.n_images]
    images = [Image.open(p).convert("RGB") for p in paths]
    start = time.perf_counter()
    embedder = make_embedder("dreamsim", pretrained=False, device=args.device, batch_size=args.batch_size)
    embedder.embed(images[: min(2, len(images))])  # builds the model (timed apart) and warms up
    print(f"DreamSim ensemble architecture, random weights, on {device}: built and warmed up in "
          f"{time.perf_counter() - start:.0f} s; batch {args.batch_size}; {len(images)} images")
    full = len(images) / timed(lambda: embedder.embed(images), device)
    tensors = torch.stack([preprocess(i) for i in images]).to(device)
    model = embedder._model

    def backbones() -> None:
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu",
                                                                                                          enabled=False)
        with torch.inference_mode(), amp:
            for i in range(0, len(tensors), args.batch_size):
                model.embed(tensors[i : i + args.batch_size])

    bare = len(images) / timed(backbones, device)
    print(f"  (a) embed() incl. preprocessing   {full:8.3f} img/s")
    print(f"  (b) backbones alone               {bare:8.3f} img/s   (a)/(b) = {full / bare:.2f}")
    for units in (84, 1000, 10_000):
        n = units * IMAGES_PER_UNIT
        print(f"  scoring cost after activations, {units:>6} units: ~{n:,} images -> {n / full / 60:8.1f} min "
              f"at (a)")


if __name__ == "__main__":
    main()

"""Memory and time per unit of the hard query variants' state, fed a synthetic activation stream (no model).

For n = 1e4, 1e5, 1e6 images (--sizes) and U units, random activations (a mix of Gaussian, ReLU-like with many
exact zeros, and heavy-tailed units) stream in batches into
  - `RankBandSelector` (the exact rank band [lo, hi) of hard85/hard95 on both sides): its sample, histogram and
    collect passes; the state's peak bytes per unit, the number of full passes, seconds per 64-image update;
  - the old way for comparison: `ExtremeSets` keeping every rank down to hi (k = hi), whose memory is O(0.15 n);
and checks the band against a full sort of the same activations (exact equality) up to --check-max images.

  python benchmarks/band_memory.py                       # 84 units, 1e4 .. 1e6 images, hard85 (a few minutes)
  python benchmarks/band_memory.py --units 1000 --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmark.activations.bands import BandOptions, RankBandSelector
from benchmark.activations.extremes import ExtremeSets
from benchmark.stimuli.exemplars import HARD_QUERY_PERCENTILES

N_TASKS = 20


BLOCK = 4096  # rows are generated in fixed blocks, so any row is the same whichever pass asks for it


def block(units: int, b: int, seed: int) -> torch.Tensor:
    """Rows b*BLOCK .. (b+1)*BLOCK - 1 of a deterministic activation table (regenerated per pass, never stored)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + b)
    values = torch.randn(BLOCK, units, generator=generator)
    third = units // 3
    values[:, :third] = values[:, :third].clamp(min=0)  # ReLU-like: half exact zeros
    values[:, third : 2 * third] = torch.tan(values[:, third : 2 * third].clamp(-1.5, 1.5))  # heavy tails
    return values


def rows(units: int, index: np.ndarray, seed: int) -> torch.Tensor:
    """The given rows of the table."""
    blocks = index // BLOCK
    out = torch.empty(len(index), units)
    for b in np.unique(blocks):
        chosen = blocks == b
        out[torch.as_tensor(chosen)] = block(units, int(b), seed)[torch.as_tensor(index[chosen] % BLOCK)]
    return out


def run(n: int, units: int, variant: str, seed: int, check: bool) -> dict[str, float]:
    """One size: peak state bytes, passes and update times of the band, and the old way's bytes."""
    lo = round(HARD_QUERY_PERCENTILES[variant] * n) - N_TASKS // 2
    band = (lo, lo + N_TASKS)
    selector = RankBandSelector(units, n, band, options=BandOptions(seed=seed))
    index = selector.sample_indices()
    selector.add_sample(rows(units, index, seed), torch.as_tensor(index))
    peak = selector.state_bytes()
    selector.finish_sample()
    update_times = []
    start = time.perf_counter()
    while selector.next_pass() is not None:
        for b in range(-(-n // BLOCK)):
            values = block(units, b, seed)[: n - b * BLOCK]
            ids = torch.arange(b * BLOCK, b * BLOCK + len(values))
            tick = time.perf_counter()
            selector.add(values[:64], ids[:64])
            update_times.append(time.perf_counter() - tick)
            selector.add(values[64:], ids[64:])
            peak = max(peak, selector.state_bytes())
        selector.end_pass()
    seconds = time.perf_counter() - start
    result = selector.result()
    if check:
        full = rows(units, np.arange(n), seed).numpy()
        ids = np.arange(n)
        for u in range(units):
            expected = np.lexsort((ids, -full[:, u]))[band[0] : band[1]]
            assert np.array_equal(result.top_ids[u], expected), f"unit {u}: band differs from the full sort"
            expected = np.lexsort((ids, full[:, u]))[band[0] : band[1]]
            assert np.array_equal(result.bottom_ids[u], expected), f"unit {u}: bottom band differs"
    old = ExtremeSets(units, band[1])
    old_bytes = (old._top_keys.numel() + old._bottom_keys.numel()) * 8
    tick = time.perf_counter()
    values = block(units, 0, seed)[:64]
    old.update(values, torch.arange(64))
    old_update = time.perf_counter() - tick
    return {"peak_per_unit": peak / units, "passes": selector.passes, "seconds": seconds,
            "update_ms": 1e3 * float(np.median(update_times)), "old_per_unit": old_bytes / units,
            "old_update_ms": 1e3 * old_update}


def main(argv: list[str] | None = None) -> None:
    """Print one row per size."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=84)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--variant", default="hard85", choices=tuple(HARD_QUERY_PERCENTILES))
    parser.add_argument("--check-max", type=int, default=100_000, help="check exactness up to this many images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{args.variant}, {args.units} units, band of {N_TASKS} ranks per side; synthetic activations, no model")
    print(f"{'images':>9} {'band KB/unit':>13} {'passes':>7} {'s (passes)':>11} {'ms/64-img update':>17} "
          f"{'old KB/unit':>12} {'old ms/64-img':>14} exact")
    for n in (int(s) for s in args.sizes.split(",")):
        row = run(n, args.units, args.variant, args.seed, check=n <= args.check_max)
        print(f"{n:>9} {row['peak_per_unit'] / 1e3:>13.1f} {row['passes']:>7} {row['seconds']:>11.1f} "
              f"{row['update_ms']:>17.2f} {row['old_per_unit'] / 1e3:>12.1f} {row['old_update_ms']:>14.2f} "
              f"{'yes' if n <= args.check_max else 'not checked'}")


if __name__ == "__main__":
    main()

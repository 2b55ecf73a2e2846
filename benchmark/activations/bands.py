"""Exact rank bands per unit (the hard query variants) with memory O(window + capacity) per unit, whatever n.

The hard variants take their queries from the N images at ranks [lo, hi) of each side (lo about 0.15 n for hard85).
Keeping every rank down to hi costs O(0.15 n) per unit; `RankBandSelector` finds the same images exactly in a few
streaming passes that each keep a fixed amount per unit:

1. **Sample** (a tiny pass over `sample_size` images chosen with a seed): per unit and side, the sorted sample keys
   around the target ranks become histogram edges, each bucket holding about n / sample_size images.
2. **Histogram pass(es)** over every image: exact counts per bucket, hence the exact rank of every edge. The
   buckets that hold ranks lo .. hi-1 form an interval; when it holds more than `capacity` images (the sample
   missed, about 1e-12 per unit with the default 7-sigma window, or a bucket came out over `capacity`: bucket
   sizes are about exponential, so rare at n = 1e6 and the defaults, 1e-6 per unit),
   a *resample* pass draws a uniform sample of that interval (the keys of smallest hash) and a new histogram pass
   follows, each round shrinking the interval about sample_size / window-fold.
3. **Collect pass**: keep the keys that fall inside each unit's interval (at most `capacity`), sort them, and read
   ranks lo .. hi-1 off, knowing exactly how many keys lie above the interval.

Ranks use the total order of `ExtremeSets` (top: larger value first, then smaller id; bottom: smaller value first,
then smaller id; NaN last on both sides), so the band equals the brute-force ranking's ranks [lo, hi) exactly
(tested against a full sort). When the sample holds every image, step 1 answers exactly and no pass follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from benchmark.activations.extremes import _decode, _encode
from benchmark.api.errors import ConfigError, DataValidationError

_MIN = torch.iinfo(torch.int64).min
_MAX = torch.iinfo(torch.int64).max
_SORT_CHUNK_KEYS = 1 << 24  # sample keys sorted at a time (per side) when the sample sets the first edges


@dataclass(frozen=True)
class BandOptions:
    """Sizes of the per-unit state (each independent of the number of images)."""

    sample_size: int = 4096
    window: int | None = None  # sample positions kept on each side of the targets; None: 7 standard deviations
    capacity: int = 4096  # > 10 mean buckets (n / sample_size) up to ~1.6M images: bucket sizes are ~exponential
    seed: int = 0
    max_passes: int = 12

    def __post_init__(self) -> None:
        for name in ("sample_size", "window", "capacity", "max_passes"):
            value = getattr(self, name)
            if value is None and name == "window":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"BandOptions.{name}={value!r} must be a positive integer.")


@dataclass(frozen=True)
class RankBand:
    """Per unit, the ids and values at ranks [lo, hi) of the top side (descending) and of the bottom side."""

    top_ids: np.ndarray  # (U, hi - lo), rank lo first
    top_values: np.ndarray
    bottom_ids: np.ndarray
    bottom_values: np.ndarray


def rank_keys(values: Tensor, ids: Tensor) -> Tensor:
    """(2U, B) int64 keys, larger = more extreme: rows 0..U-1 the top side, rows U..2U-1 the bottom side."""
    values = values.to(torch.float32).t()  # (U, B)
    ids = ids.to(values.device, torch.int64).unsqueeze(0).expand_as(values)
    nan = torch.isnan(values)
    top = _encode(torch.where(nan, -torch.inf, values), ids, top=True)
    bottom = ~_encode(torch.where(nan, torch.inf, values), ids, top=False)  # ~ reverses the order exactly
    return torch.cat([top, bottom])


class RankBandSelector:
    """The exact band [lo, hi) of ranks on both sides of U units over n images, in O(window + capacity) per unit.

    Drive it with `sample_indices()` / `add_sample()` / `finish_sample()`, then, while `next_pass()` is not None,
    feed every image through `add()` and call `end_pass()`; `result()` returns the band. `collect_rank_bands` runs
    it over a model; `run_on_arrays` over in-memory values (tests and the synthetic benchmark).
    """

    def __init__(
        self, n_units: int, n_images: int, band: tuple[int, int], *, options: BandOptions | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        lo, hi = band
        if not 0 <= lo < hi <= n_images:
            raise ConfigError(f"Rank band {band} must satisfy 0 <= lo < hi <= n_images={n_images}.")
        self.n_units, self.n_images, self.lo, self.hi = int(n_units), int(n_images), int(lo), int(hi)
        self.options = options or BandOptions()
        if self.hi - self.lo > min(self.options.capacity, self.options.sample_size):
            raise ConfigError(f"capacity={self.options.capacity} must hold the band's {hi - lo} ranks.")
        self.device = torch.device(device)
        self.passes = 0
        self._stage = "sample"
        self._sample_values: list[Tensor] = []
        self._sample_ids: list[Tensor] = []
        self._edges: Tensor | None = None  # (2U, E) ascending
        self._counts: Tensor | None = None  # (2U, E + 1)
        self._bucket_min: Tensor | None = None  # (2U, E + 1) smallest key seen per bucket (to tighten intervals)
        self._bucket_max: Tensor | None = None
        self._interval: tuple[Tensor, Tensor] | None = None  # [low, high) per row
        self._above: Tensor | None = None  # keys >= high per row
        self._kept: Tensor | None = None  # (2U, capacity) collected keys, or the resample's keys
        self._kept_priority: Tensor | None = None
        self._inside: Tensor | None = None  # keys inside the interval per row
        self._seen = 0
        self._result: Tensor | None = None  # (2U, hi - lo) keys, rank lo first

    # ------------------------------------------------------------------ stage 1: the sample
    def sample_indices(self) -> np.ndarray:
        """The sorted image indices of the sample (every image when n <= sample_size)."""
        m = min(self.n_images, self.options.sample_size)
        if m == self.n_images:
            return np.arange(self.n_images)
        rng = np.random.default_rng(self.options.seed)
        return np.sort(rng.choice(self.n_images, size=m, replace=False))

    def add_sample(self, values: Tensor, ids: Tensor) -> None:
        """Values (B, U) and ids (B,) of sampled images."""
        self._check_stage("sample")
        self._sample_values.append(values.to(self.device, torch.float32))
        self._sample_ids.append(ids.to(self.device, torch.int64))

    def finish_sample(self) -> None:
        """Set the first histogram edges from the sample (or the exact answer when it held every image)."""
        self._check_stage("sample")
        values = torch.cat(self._sample_values) if self._sample_values else torch.empty(0, self.n_units)
        ids = torch.cat(self._sample_ids) if self._sample_ids else torch.empty(0, dtype=torch.int64)
        self._sample_values, self._sample_ids = [], []
        m = int(ids.shape[0])
        if m != len(self.sample_indices()):
            raise DataValidationError(f"The sample pass gave {m} images; expected {len(self.sample_indices())}.")
        exact = m == self.n_images
        top, bottom = [], []
        step = max(1, _SORT_CHUNK_KEYS // max(m, 1))  # units per chunk: a bounded sort, whatever the number of units
        for start in range(0, self.n_units, step):
            chunk = values[:, start : start + step].to(self.device)
            keys = torch.sort(rank_keys(chunk, ids.to(self.device)), dim=1, descending=True).values
            if exact:
                part = keys[:, self.lo : self.hi]
            else:
                rows = keys.shape[0]
                part = self._edges_from_sample(
                    keys, torch.full((rows,), m, device=self.device),
                    torch.zeros(rows, dtype=torch.int64, device=self.device),
                    torch.full((rows,), self.n_images, device=self.device),
                )
            top.append(part[: part.shape[0] // 2])
            bottom.append(part[part.shape[0] // 2 :])
        width = (self.hi - self.lo) if exact else 1
        stacked = torch.cat(top + bottom) if top else torch.empty(0, width, dtype=torch.int64, device=self.device)
        if exact:
            self._result = stacked
            self._stage = "done"
        else:
            self._edges = stacked.contiguous()
            self._stage = "histogram"

    def _edges_from_sample(
        self, keys: Tensor, size: Tensor, above: Tensor, count: Tensor, bounds: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """Edges around the targets from a uniform sample (`keys` sorted descending, `size` valid per row) of the
        `count` keys that lie below exactly `above` keys; a sample position p stands for about rank p * count / size."""
        size_f, count_f = size.to(torch.float64), count.to(torch.float64)
        q = ((self.lo - above).to(torch.float64) / count_f).clamp(0, 1)
        window = self.options.window
        if window is None:  # the sample position of a rank-q key has standard deviation sqrt(m q (1 - q))
            spread = torch.ceil(7 * torch.sqrt(size_f * q * (1 - q))).to(torch.int64) + 2
        else:
            spread = torch.full_like(size, window)
        first = torch.floor((self.lo - above) * size_f / count_f).to(torch.int64) - spread
        last = torch.ceil((self.hi - above) * size_f / count_f).to(torch.int64) + spread
        width = int((last - first).max()) + 1
        positions = (first[:, None] + torch.arange(width, device=self.device)).clamp(min=0)
        positions = torch.minimum(positions, torch.minimum(last, size - 1)[:, None])
        edges = torch.flip(keys.gather(1, positions), dims=[1])  # ascending
        if bounds is not None:  # the interval's own ends: keys above it and below it stay out of its buckets
            edges = torch.cat([bounds[0][:, None], edges, bounds[1][:, None]], dim=1)
        return torch.cummax(edges, dim=1).values.contiguous()

    # ------------------------------------------------------------------ stages 2 and 3: full passes
    def next_pass(self) -> str | None:
        """'histogram', 'resample' or 'collect' for the next full pass over every image; None when the band is known."""
        return None if self._stage == "done" else self._stage

    def add(self, values: Tensor, ids: Tensor) -> None:
        """Fold a batch of the current full pass: values (B, U), ids (B,)."""
        if self._stage not in ("histogram", "resample", "collect"):
            raise ConfigError(f"add() is for full passes; the selector is in stage {self._stage!r}.")
        keys = rank_keys(values.to(self.device), ids.to(self.device))
        self._seen += int(keys.shape[1])
        if self._stage == "histogram":
            buckets = torch.searchsorted(self._edges, keys, right=True)  # (2U, B) in 0..E
            counts = torch.zeros(keys.shape[0], self._edges.shape[1] + 1, dtype=torch.int64, device=self.device)
            counts.scatter_add_(1, buckets, torch.ones_like(buckets))
            self._counts = counts if self._counts is None else self._counts + counts
            if self._bucket_min is None:
                self._bucket_min = torch.full_like(counts, _MAX)
                self._bucket_max = torch.full_like(counts, _MIN)
            self._bucket_min.scatter_reduce_(1, buckets, keys, "amin")
            self._bucket_max.scatter_reduce_(1, buckets, keys, "amax")
            return
        low, high = self._interval
        inside = (keys >= low[:, None]) & (keys < high[:, None])
        if self._stage == "collect":
            candidates = torch.where(inside, keys, _MIN)
            if self._kept is not None:
                candidates = torch.cat([self._kept, candidates], dim=1)
            size = min(self.options.capacity, candidates.shape[1])
            self._kept = torch.topk(candidates, size, dim=1, sorted=False).values
            return
        # resample: a uniform sample (the keys of smallest hash) of each row's interval
        priority = torch.where(inside, _hash(keys), _MAX)
        keys = torch.where(inside, keys, _MIN)  # padding sorts last
        if self._kept is not None:
            priority = torch.cat([self._kept_priority, priority], dim=1)
            keys = torch.cat([self._kept, keys], dim=1)
        size = min(self.options.sample_size, priority.shape[1])
        self._kept_priority, index = torch.topk(priority, size, dim=1, largest=False, sorted=False)
        self._kept = keys.gather(1, index)

    def end_pass(self) -> None:
        """Close the current full pass (every image must have been added once)."""
        if self._seen != self.n_images:
            raise DataValidationError(
                f"The {self._stage} pass saw {self._seen} images but the source has {self.n_images}; every image "
                "must pass exactly once."
            )
        self._seen = 0
        self.passes += 1
        if self.passes > self.options.max_passes:
            raise DataValidationError(
                f"The rank band could not be narrowed to {self.options.capacity} images in {self.options.max_passes} "
                "passes; raise BandOptions.capacity or sample_size."
            )
        {"histogram": self._close_histogram, "resample": self._close_resample, "collect": self._close_collect}[
            self._stage
        ]()

    def _close_histogram(self) -> None:
        counts, bucket_min, bucket_max = self._counts, self._bucket_min, self._bucket_max
        self._counts = self._bucket_min = self._bucket_max = None
        n_buckets = counts.shape[1]
        # above[j] = keys in buckets > j; bucket j holds [edges[j-1], edges[j]) (bucket 0: below all edges)
        above = torch.flip(torch.cumsum(torch.flip(counts, [1]), 1), [1]) - counts
        lo_bucket = _bucket_of_rank(above, counts, self.lo)
        hi_bucket = _bucket_of_rank(above, counts, self.hi - 1)
        # the interval [low, high) spans buckets hi_bucket .. lo_bucket, tightened to the keys actually inside
        low = bucket_min.gather(1, hi_bucket[:, None])[:, 0]
        high = bucket_max.gather(1, lo_bucket[:, None])[:, 0] + 1
        position = torch.arange(n_buckets, device=self.device)
        spanned = (position >= hi_bucket[:, None]) & (position <= lo_bucket[:, None])
        self._inside = torch.where(spanned, counts, 0).sum(dim=1)
        self._interval = (low, high)
        self._above = above.gather(1, lo_bucket[:, None])[:, 0]
        self._edges = None
        # within capacity: collect; otherwise (a sample that missed, or n >> sample_size * capacity) resample
        self._stage = "collect" if int(self._inside.max()) <= self.options.capacity else "resample"

    def _close_resample(self) -> None:
        keys = torch.sort(self._kept, dim=1, descending=True).values  # padding (_MIN) last
        size = torch.minimum(self._inside, torch.tensor(keys.shape[1], device=self.device))
        self._kept = self._kept_priority = None
        self._edges = self._edges_from_sample(keys, size, self._above, self._inside, self._interval)
        self._stage = "histogram"

    def _close_collect(self) -> None:
        kept = torch.sort(self._kept, dim=1, descending=True).values
        start = (self.lo - self._above)[:, None] + torch.arange(self.hi - self.lo, device=self.device)
        self._result = kept.gather(1, start)
        self._kept = None
        self._stage = "done"

    # ------------------------------------------------------------------ reading
    def result(self) -> RankBand:
        """The band on both sides (ids and values as numpy arrays)."""
        if self._stage != "done":
            raise ConfigError(f"The rank band is not known yet (stage {self._stage!r}); run the remaining passes.")
        keys = self._result
        top_values, top_ids = _decode(keys[: self.n_units], top=True)
        bottom_values, bottom_ids = _decode(~keys[self.n_units :], top=False)
        return RankBand(top_ids.cpu().numpy(), top_values.cpu().numpy(),
                        bottom_ids.cpu().numpy(), bottom_values.cpu().numpy())

    def state_bytes(self) -> int:
        """Bytes the selector holds now (its per-unit state; the sample while stage 1 runs)."""
        tensors = [*self._sample_values, *self._sample_ids, self._edges, self._counts, self._bucket_min,
                   self._bucket_max, self._kept, self._kept_priority, self._result, self._inside, self._above]
        if self._interval is not None:
            tensors += list(self._interval)
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    def _check_stage(self, stage: str) -> None:
        if self._stage != stage:
            raise ConfigError(f"The rank-band selector is in stage {self._stage!r}, not {stage!r}.")


def _bucket_of_rank(above: Tensor, counts: Tensor, rank: int) -> Tensor:
    """Per row, the bucket j with above[j] <= rank < above[j] + counts[j]."""
    hit = (above <= rank) & (rank < above + counts)
    return hit.to(torch.int8).argmax(dim=1)


def _hash(keys: Tensor) -> Tensor:
    """A fixed pseudo-random int64 per key (a multiplicative hash; wraps around), for uniform resampling."""
    mixed = keys * -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64
    return mixed ^ (mixed >> 29)


def run_on_arrays(
    values: np.ndarray | Tensor, band: tuple[int, int], *, options: BandOptions | None = None, batch_size: int = 4096
) -> tuple[RankBand, RankBandSelector]:
    """The band of in-memory activations (n, U) with ids 0..n-1, through the same passes a model would drive."""
    values = torch.as_tensor(values, dtype=torch.float32)
    n = values.shape[0]
    selector = RankBandSelector(values.shape[1], n, band, options=options)
    index = torch.as_tensor(selector.sample_indices(), dtype=torch.int64)
    selector.add_sample(values[index], index)
    selector.finish_sample()
    while selector.next_pass() is not None:
        for start in range(0, n, batch_size):
            ids = torch.arange(start, min(start + batch_size, n))
            selector.add(values[start : start + batch_size], ids)
        selector.end_pass()
    return selector.result(), selector


BatchFactory = Callable[[Sequence[int] | None], Iterable[tuple[Tensor, Tensor]]]


def collect_rank_bands(
    model: torch.nn.Module,
    layers: Mapping[str, Any],
    batches: BatchFactory,
    n_images: int,
    band: tuple[int, int],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    options: BandOptions | None = None,
    progress: bool = True,
) -> dict[str, RankBand]:
    """Per layer, the band [lo, hi) of ranks of its selected units over `n_images` images.

    `batches(indices)` yields (images, ids) batches of the given image indices (None: every image, in order).
    Costs one pass over the sample plus (normally) two full passes; see the module docstring.
    """
    from benchmark.activations.collect import stream_unit_values

    device = torch.device(device)
    sizes: dict[str, int] = {}

    def stream(indices: Sequence[int] | None, label: str) -> Iterable[tuple[Tensor, Tensor]]:
        source = batches(indices)
        if progress:
            from tqdm.auto import tqdm

            source = tqdm(source, desc=f"hard queries: {label}", unit="batch")
        for values, ids, layer_sizes in stream_unit_values(model, layers, source, device=device, dtype=dtype):
            sizes.update(layer_sizes)
            yield values, ids

    probe = RankBandSelector(1, n_images, band, options=options, device=device)
    sample = probe.sample_indices()
    collected = list(stream([int(i) for i in sample], "sample"))
    selector = RankBandSelector(sum(sizes.values()), n_images, band, options=options, device=device)
    for values, ids in collected:
        selector.add_sample(values, ids)
    del collected
    selector.finish_sample()
    while (stage := selector.next_pass()) is not None:
        for values, ids in stream(None, stage):
            selector.add(values, ids)
        selector.end_pass()
    result = selector.result()
    per_layer, start = {}, 0
    for name in layers:
        stop = start + sizes[name]
        per_layer[name] = RankBand(result.top_ids[start:stop], result.top_values[start:stop],
                                   result.bottom_ids[start:stop], result.bottom_values[start:stop])
        start = stop
    return per_layer

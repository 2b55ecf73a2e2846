"""Streaming top-k / bottom-k per unit: the only state an activation pass keeps (U x 2k values and ids).

Order (a total order, so results never depend on batch boundaries, batch size or shard split):
  * top:    larger value first; among equal values the SMALLER image id first;
  * bottom: smaller value first; among equal values the SMALLER image id first.
`-0.0` counts as `0.0`. NaN activations are counted per unit (`nan_count`) and ranked as -inf on the top side and
+inf on the bottom side, so they never crowd out real values; treat a unit with `nan_count > 0` as invalid.

Each (value, id) pair is packed into one int64 key whose integer order is exactly the order above
(high 32 bits: the float's bits mapped to an order-preserving int32; low 32 bits: the id, negated for the top side).
Keys are unique as long as image ids are, so `topk` over keys selects one well-defined set, and
top-k(A ∪ B) = top-k(top-k(A) ∪ top-k(B)) makes `update` and `merge` exact, associative and commutative.

Image ids must be unique across everything fed into one set (and across merged shards) and lie in [0, 2**32 - 1].

Until k images have been seen, the slots past `count` are padding: value -inf (top) / +inf (bottom) and id -1.
`valid_top()` / `valid_bottom()` return only the filled, sorted part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from benchmark.api.errors import ConfigError

MAX_IMAGE_ID = 2**32 - 1
CONSTANT_TOLERANCE = 1e-8
_LOW_MASK = 0xFFFFFFFF
_TOP_PAD = torch.iinfo(torch.int64).min  # below every real top key
_BOTTOM_PAD = torch.iinfo(torch.int64).max  # above every real bottom key
_STATE_VERSION = 1


class ExtremeSets:
    """The k most and k least activating image ids (and values) of U units, updated batch by batch."""

    def __init__(self, n_units: int, k: int, *, device: torch.device | str | None = None) -> None:
        if n_units < 0 or k < 1:
            raise ConfigError(f"ExtremeSets needs n_units >= 0 and k >= 1, got n_units={n_units}, k={k}.")
        self.n_units = int(n_units)
        self.k = int(k)
        device = torch.device(device if device is not None else "cpu")
        self._top_keys = torch.full((n_units, k), _TOP_PAD, dtype=torch.int64, device=device)
        self._bottom_keys = torch.full((n_units, k), _BOTTOM_PAD, dtype=torch.int64, device=device)
        self._nan_count = torch.zeros(n_units, dtype=torch.int64, device=device)
        self._sorted = True
        self.count = 0

    # ------------------------------------------------------------------ updating
    def update(self, values: Tensor, ids: Tensor) -> None:
        """Add a batch: `values` (B, U) activations (any float dtype; ranked as float32), `ids` (B,) image ids."""
        if values.ndim != 2 or values.shape[1] != self.n_units:
            raise ConfigError(
                f"values must have shape (batch, {self.n_units}), got {tuple(values.shape)}; "
                "reduce each activation map to one value per unit first."
            )
        if ids.ndim != 1 or ids.shape[0] != values.shape[0]:
            raise ConfigError(f"ids must have shape ({values.shape[0]},), got {tuple(ids.shape)}.")
        if ids.device.type == "cpu":  # a range check on an accelerator would force a host sync every batch
            check_ids(ids)
        values = values.to(device=self.device, dtype=torch.float32).t()
        ids = ids.to(device=self.device, dtype=torch.int64).unsqueeze(0).expand_as(values)
        nan = torch.isnan(values)
        self._nan_count = self._nan_count + nan.sum(dim=1)
        top_new = _encode(torch.where(nan, -torch.inf, values), ids, top=True)
        bottom_new = _encode(torch.where(nan, torch.inf, values), ids, top=False)
        self._top_keys = _select(torch.cat([self._top_keys, top_new], dim=1), self.k, largest=True)
        self._bottom_keys = _select(torch.cat([self._bottom_keys, bottom_new], dim=1), self.k, largest=False)
        self._sorted = False
        self.count += int(values.shape[1])

    def merge(self, other: ExtremeSets) -> ExtremeSets:
        """A new set holding the extremes of both (exact: equals one pass over the union of their images)."""
        if (self.n_units, self.k) != (other.n_units, other.k):
            raise ConfigError(
                f"Cannot merge ExtremeSets of shape (units={self.n_units}, k={self.k}) with "
                f"(units={other.n_units}, k={other.k}); merge only shards of the same layer selection and k."
            )
        merged = ExtremeSets(self.n_units, self.k, device=self.device)
        merged._top_keys = _select(torch.cat([self._top_keys, other._top_keys.to(self.device)], 1), self.k, True)
        merged._bottom_keys = _select(
            torch.cat([self._bottom_keys, other._bottom_keys.to(self.device)], 1), self.k, False
        )
        merged._nan_count = self._nan_count + other._nan_count.to(self.device)
        merged._sorted = False
        merged.count = self.count + other.count
        return merged

    @classmethod
    def concat(cls, parts: Sequence[ExtremeSets]) -> ExtremeSets:
        """Stack the units of sets that saw the same images (same k and count) into one set, in order."""
        if not parts:
            raise ConfigError("ExtremeSets.concat needs at least one set.")
        first = parts[0]
        mismatched = [(p.k, p.count) for p in parts if (p.k, p.count) != (first.k, first.count)]
        if mismatched:
            raise ConfigError(
                "ExtremeSets.concat needs sets of the same k and image count; got (k, count) = "
                f"{(first.k, first.count)} and {mismatched[0]}. Only sets of one pass over the same images stack."
            )
        stacked = cls(sum(p.n_units for p in parts), first.k, device=first.device)
        stacked._top_keys = torch.cat([p._top_keys.to(first.device) for p in parts])
        stacked._bottom_keys = torch.cat([p._bottom_keys.to(first.device) for p in parts])
        stacked._nan_count = torch.cat([p._nan_count.to(first.device) for p in parts])
        stacked._sorted = all(p._sorted for p in parts)
        stacked.count = first.count
        return stacked

    def units(self, start: int, stop: int) -> ExtremeSets:
        """A copy holding units start .. stop - 1."""
        part = ExtremeSets(stop - start, self.k, device=self.device)
        part._top_keys = self._top_keys[start:stop].clone()
        part._bottom_keys = self._bottom_keys[start:stop].clone()
        part._nan_count = self._nan_count[start:stop].clone()
        part._sorted, part.count = self._sorted, self.count
        return part

    def clone(self) -> ExtremeSets:
        """An independent copy on the same device."""
        return self.units(0, self.n_units)

    def to(self, device: torch.device | str) -> ExtremeSets:
        """A copy on `device`."""
        moved = ExtremeSets(self.n_units, self.k, device=device)
        moved._top_keys, moved._bottom_keys = self._top_keys.to(device), self._bottom_keys.to(device)
        moved._nan_count, moved._sorted, moved.count = self._nan_count.to(device), self._sorted, self.count
        return moved

    # ------------------------------------------------------------------ reading
    @property
    def device(self) -> torch.device:
        """Device holding the state."""
        return self._top_keys.device

    @property
    def n_valid(self) -> int:
        """Filled slots per side and unit: min(count, k)."""
        return min(self.count, self.k)

    @property
    def top_values(self) -> Tensor:
        """(U, k) float32, most activating first; padding -inf."""
        return _decode(self._sorted_keys()[0], top=True)[0]

    @property
    def top_ids(self) -> Tensor:
        """(U, k) int64 image ids matching `top_values`; padding -1."""
        return _decode(self._sorted_keys()[0], top=True)[1]

    @property
    def bottom_values(self) -> Tensor:
        """(U, k) float32, least activating first; padding +inf."""
        return _decode(self._sorted_keys()[1], top=False)[0]

    @property
    def bottom_ids(self) -> Tensor:
        """(U, k) int64 image ids matching `bottom_values`; padding -1."""
        return _decode(self._sorted_keys()[1], top=False)[1]

    @property
    def nan_count(self) -> Tensor:
        """(U,) int64: how many images gave a NaN activation."""
        return self._nan_count

    @property
    def max(self) -> Tensor:
        """(U,) float32 running maximum over the images seen (-inf before any; NaNs ignored)."""
        return self.top_values[:, 0]

    @property
    def min(self) -> Tensor:
        """(U,) float32 running minimum over the images seen (+inf before any; NaNs ignored)."""
        return self.bottom_values[:, 0]

    def valid_top(self) -> tuple[Tensor, Tensor]:
        """(values, ids), each (U, n_valid), most activating first, padding removed."""
        return self.top_values[:, : self.n_valid], self.top_ids[:, : self.n_valid]

    def valid_bottom(self) -> tuple[Tensor, Tensor]:
        """(values, ids), each (U, n_valid), least activating first, padding removed."""
        return self.bottom_values[:, : self.n_valid], self.bottom_ids[:, : self.n_valid]

    def is_constant(self, tol: float = CONSTANT_TOLERANCE) -> Tensor:
        """(U,) bool: max - min < tol (the protocol skips these units; True as well before any image)."""
        spread = self.max - self.min
        return ~(spread >= tol)  # nan spread (no images: -inf - inf) counts as constant

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Everything as host numpy arrays (padded (U, k) sets, min, max, nan_count, count)."""
        top_values, top_ids = (t.cpu().numpy() for t in _decode(self._sorted_keys()[0], top=True))
        bottom_values, bottom_ids = (t.cpu().numpy() for t in _decode(self._sorted_keys()[1], top=False))
        return {
            "top_values": top_values,
            "top_ids": top_ids,
            "bottom_values": bottom_values,
            "bottom_ids": bottom_ids,
            "max": top_values[:, 0].copy(),
            "min": bottom_values[:, 0].copy(),
            "nan_count": self._nan_count.cpu().numpy(),
            "count": np.asarray(self.count, dtype=np.int64),
        }

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """A torch.save-able (weights_only-loadable) snapshot on the CPU."""
        arrays = {name: torch.from_numpy(a) for name, a in self.to_numpy().items() if name not in ("min", "max")}
        return {"version": _STATE_VERSION, "k": self.k, "n_units": self.n_units, "count": self.count, **arrays}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], *, device: torch.device | str | None = None) -> ExtremeSets:
        """Rebuild a set saved by `state_dict` (onto `device`, default CPU)."""
        if state.get("version") != _STATE_VERSION:
            raise ConfigError(
                f"ExtremeSets state version {state.get('version')!r} is not supported (expected {_STATE_VERSION}); "
                "recompute it with this version of imi-bench."
            )
        sets = cls(int(state["n_units"]), int(state["k"]), device=device)
        dev = sets.device
        sets._top_keys = _encode_padded(state["top_values"].to(dev), state["top_ids"].to(dev), top=True)
        sets._bottom_keys = _encode_padded(state["bottom_values"].to(dev), state["bottom_ids"].to(dev), top=False)
        sets._nan_count = state["nan_count"].to(dev, torch.int64)
        sets.count = int(state["count"])
        return sets

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExtremeSets):
            return NotImplemented
        if (self.n_units, self.k, self.count) != (other.n_units, other.k, other.count):
            return False
        other = other.to(self.device)
        mine, theirs = self._sorted_keys(), other._sorted_keys()
        return bool(
            torch.equal(mine[0], theirs[0])
            and torch.equal(mine[1], theirs[1])
            and torch.equal(self._nan_count, other._nan_count)
        )

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"ExtremeSets(n_units={self.n_units}, k={self.k}, count={self.count}, device={self.device})"

    def _sorted_keys(self) -> tuple[Tensor, Tensor]:
        # update/merge keep the right *set* but skip sorting it; sort once when someone reads
        if not self._sorted:
            self._top_keys = torch.sort(self._top_keys, dim=1, descending=True).values
            self._bottom_keys = torch.sort(self._bottom_keys, dim=1).values
            self._sorted = True
        return self._top_keys, self._bottom_keys


def check_ids(ids: Tensor) -> None:
    """Raise ConfigError unless every image id is an integer in [0, 2**32 - 1]."""
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise ConfigError(f"Image ids must be an integer tensor, got dtype {ids.dtype}.")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) > MAX_IMAGE_ID):
        raise ConfigError(
            f"Image ids must lie in [0, {MAX_IMAGE_ID}], got range [{int(ids.min())}, {int(ids.max())}]; "
            "use the image's index in its source."
        )


def _ordered_bits(values: Tensor) -> Tensor:
    """float32 -> int32 whose signed order equals the floats' order (for non-NaN values; -0.0 -> +0.0)."""
    values = torch.where(values == 0, 0.0, values)
    bits = values.contiguous().view(torch.int32)
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def _float_from_ordered(ordered: Tensor) -> Tensor:
    """Inverse of `_ordered_bits` (the mapping is its own inverse on the bits)."""
    return (ordered ^ ((ordered >> 31) & 0x7FFFFFFF)).contiguous().view(torch.float32)


def _encode(values: Tensor, ids: Tensor, *, top: bool) -> Tensor:
    low = (_LOW_MASK - ids) if top else ids
    return (_ordered_bits(values).to(torch.int64) << 32) | low


def _encode_padded(values: Tensor, ids: Tensor, *, top: bool) -> Tensor:
    keys = _encode(values.to(torch.float32), ids.clamp(min=0).to(torch.int64), top=top)
    return torch.where(ids < 0, _TOP_PAD if top else _BOTTOM_PAD, keys)


def _decode(keys: Tensor, *, top: bool) -> tuple[Tensor, Tensor]:
    pad = keys == (_TOP_PAD if top else _BOTTOM_PAD)
    values = _float_from_ordered((keys >> 32).to(torch.int32))
    low = keys & _LOW_MASK
    ids = (_LOW_MASK - low) if top else low
    values = torch.where(pad, -torch.inf if top else torch.inf, values)
    return values, torch.where(pad, -1, ids)


def _select(keys: Tensor, k: int, largest: bool) -> Tensor:
    return torch.topk(keys, k, dim=1, largest=largest, sorted=False).values

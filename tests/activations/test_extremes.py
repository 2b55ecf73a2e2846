"""ExtremeSets against a brute-force numpy lexsort, over batch sizes, shards, ties and edge cases."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import torch

from benchmark.activations.extremes import ExtremeSets
from benchmark.api.errors import ConfigError


def brute_force(values: np.ndarray, ids: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Top/bottom k per unit by a full lexsort: value (desc / asc), then smaller id first."""
    n, units = values.shape
    top_ids = np.full((units, k), -1)
    bottom_ids = np.full((units, k), -1)
    top_values = np.full((units, k), -np.inf, dtype=np.float32)
    bottom_values = np.full((units, k), np.inf, dtype=np.float32)
    m = min(n, k)
    for u in range(units):
        order = np.lexsort((ids, -values[:, u]))[:m]
        top_ids[u, :m], top_values[u, :m] = ids[order], values[order, u]
        order = np.lexsort((ids, values[:, u]))[:m]
        bottom_ids[u, :m], bottom_values[u, :m] = ids[order], values[order, u]
    return {"top_ids": top_ids, "top_values": top_values, "bottom_ids": bottom_ids, "bottom_values": bottom_values}


def stream(values: np.ndarray, ids: np.ndarray, k: int, batch_size: int) -> ExtremeSets:
    sets = ExtremeSets(values.shape[1], k)
    for start in range(0, len(values), batch_size):
        chunk = slice(start, start + batch_size)
        sets.update(torch.from_numpy(values[chunk]), torch.from_numpy(ids[chunk]))
    return sets


def data(n: int = 600, units: int = 9, levels: int | None = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random activations (rounded to few levels for many ties) and shuffled, non-contiguous image ids."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, units)).astype(np.float32)
    if levels is not None:
        values = np.round(values * levels / 3).astype(np.float32)
    ids = rng.permutation(50 * n)[:n].astype(np.int64)
    return values, ids


def assert_matches(sets: ExtremeSets, expected: dict[str, np.ndarray]) -> None:
    got = sets.to_numpy()
    for name, want in expected.items():
        np.testing.assert_array_equal(got[name], want, err_msg=name)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 600])
@pytest.mark.parametrize("levels", [None, 2, 4])
def test_streaming_equals_brute_force(batch_size: int, levels: int | None) -> None:
    values, ids = data(levels=levels)
    assert_matches(stream(values, ids, 50, batch_size), brute_force(values, ids, 50))


def test_heavy_ties_resolved_by_smaller_id_first() -> None:
    values = np.zeros((10, 1), dtype=np.float32)
    values[[2, 5, 8]] = 1.0
    ids = np.array([9, 3, 7, 1, 0, 8, 2, 6, 5, 4])
    sets = stream(values, ids, 4, batch_size=3)
    assert sets.top_ids[0].tolist() == [5, 7, 8, 0]  # the 1.0s (ids 7, 8, 5) by id, then the smallest 0.0 id
    assert sets.bottom_ids[0].tolist() == [0, 1, 2, 3]


def test_negative_zero_ties_with_zero() -> None:
    values = np.array([[0.0], [-0.0], [0.0]], dtype=np.float32)
    sets = stream(values, np.array([5, 1, 3]), 3, batch_size=1)
    assert sets.top_ids[0].tolist() == [1, 3, 5]
    assert sets.bottom_ids[0].tolist() == [1, 3, 5]


def test_infinite_values_are_ranked() -> None:
    values = np.array([[np.inf], [-np.inf], [1.0]], dtype=np.float32)
    sets = stream(values, np.array([0, 1, 2]), 3, batch_size=2)
    assert sets.top_ids[0].tolist() == [0, 2, 1]
    assert sets.bottom_ids[0].tolist() == [1, 2, 0]


@pytest.mark.parametrize("n_shards", [2, 3, 7])
def test_merged_shards_equal_single_pass_bit_for_bit(n_shards: int) -> None:
    values, ids = data(n=500, seed=n_shards)
    single = stream(values, ids, 40, batch_size=32)
    rng = np.random.default_rng(n_shards)
    cuts = np.sort(rng.choice(np.arange(1, 500), size=n_shards - 1, replace=False))  # uneven shards
    shards = [
        stream(v, i, 40, batch_size=int(rng.integers(1, 90)))
        for v, i in zip(np.split(values, cuts), np.split(ids, cuts), strict=True)
    ]
    merged = shards[0]
    for shard in shards[1:]:
        merged = merged.merge(shard)
    assert merged == single
    assert_matches(merged, brute_force(values, ids, 40))
    assert merged.count == 500


def test_merge_is_associative_and_commutative() -> None:
    values, ids = data(n=300)
    a, b, c = (stream(v, i, 25, 16) for v, i in zip(np.split(values, [50, 170]), np.split(ids, [50, 170]), strict=True))
    reference = a.merge(b).merge(c)
    for x, y, z in itertools.permutations([a, b, c]):
        assert x.merge(y).merge(z) == reference
        assert x.merge(y.merge(z)) == reference
    assert a.merge(b) == b.merge(a)


def test_merge_with_empty_is_identity_and_shape_mismatch_raises() -> None:
    values, ids = data(n=100)
    full = stream(values, ids, 10, 8)
    assert full.merge(ExtremeSets(9, 10)) == full
    with pytest.raises(ConfigError, match="Cannot merge"):
        full.merge(ExtremeSets(9, 11))


def test_capacity_larger_than_images_pads_and_valid_part_is_sorted() -> None:
    values, ids = data(n=13, units=3)
    sets = stream(values, ids, 20, batch_size=5)
    assert_matches(sets, brute_force(values, ids, 20))
    assert sets.n_valid == 13
    top_values, top_ids = sets.valid_top()
    bottom_values, bottom_ids = sets.valid_bottom()
    assert top_ids.shape == (3, 13) and (top_ids >= 0).all() and (bottom_ids >= 0).all()
    assert (top_values[:, :-1] >= top_values[:, 1:]).all()
    assert (bottom_values[:, :-1] <= bottom_values[:, 1:]).all()
    assert sets.top_ids[:, 13:].eq(-1).all() and torch.isneginf(sets.top_values[:, 13:]).all()
    assert sets.bottom_ids[:, 13:].eq(-1).all() and torch.isposinf(sets.bottom_values[:, 13:]).all()
    for u in range(3):
        assert sorted(top_ids[u].tolist()) == sorted(ids.tolist())


def test_min_max_and_constant_units() -> None:
    values, ids = data(n=200, units=4, levels=None)
    values[:, 1] = 3.25
    values[:, 2] = 1.0
    values[7, 2] = 1.0 + 1e-6
    sets = stream(values, ids, 10, batch_size=33)
    np.testing.assert_array_equal(sets.max.numpy(), values.max(axis=0))
    np.testing.assert_array_equal(sets.min.numpy(), values.min(axis=0))
    assert sets.is_constant().tolist() == [False, True, False, False]
    assert ExtremeSets(2, 5).is_constant().tolist() == [True, True]  # nothing seen yet


def test_nan_is_counted_and_never_ranked_above_real_values() -> None:
    values = np.array([[np.nan, 1.0], [2.0, 1.0], [0.5, np.nan], [np.nan, 0.0]], dtype=np.float32)
    sets = stream(values, np.arange(4), 2, batch_size=3)
    assert sets.nan_count.tolist() == [2, 1]
    assert sets.top_ids.tolist() == [[1, 2], [0, 1]]
    assert sets.bottom_ids.tolist() == [[2, 1], [3, 0]]
    assert sets.max.tolist() == [2.0, 1.0] and sets.min.tolist() == [0.5, 0.0]


def test_state_dict_round_trip_through_torch_save() -> None:
    values, ids = data(n=30, units=5)
    sets = stream(values, ids, 40, batch_size=8)  # partially filled, padding must survive
    buffer = io.BytesIO()
    torch.save(sets.state_dict(), buffer)
    buffer.seek(0)
    restored = ExtremeSets.from_state_dict(torch.load(buffer, weights_only=True))
    assert restored == sets
    more_values, more_ids = data(n=50, units=5, seed=1)
    more_ids = more_ids + 10**6
    restored.update(torch.from_numpy(more_values), torch.from_numpy(more_ids))
    sets.update(torch.from_numpy(more_values), torch.from_numpy(more_ids))
    assert restored == sets


def test_values_of_lower_precision_are_ranked_as_float32() -> None:
    values, ids = data(n=64, units=3, levels=None)
    half = torch.from_numpy(values).to(torch.bfloat16)
    sets = ExtremeSets(3, 8)
    sets.update(half, torch.from_numpy(ids))
    assert sets.top_values.dtype == torch.float32
    assert_matches(sets, brute_force(half.float().numpy(), ids, 8))


def test_invalid_inputs_raise() -> None:
    sets = ExtremeSets(3, 4)
    with pytest.raises(ConfigError, match="shape"):
        sets.update(torch.zeros(2, 4), torch.arange(2))
    with pytest.raises(ConfigError, match=r"\[0, 4294967295\]"):
        sets.update(torch.zeros(2, 3), torch.tensor([0, -5]))
    with pytest.raises(ConfigError, match="integer"):
        sets.update(torch.zeros(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ConfigError):
        ExtremeSets(3, 0)


def test_units_and_concat_round_trip() -> None:
    values, ids = data(n=120, units=9)
    full = stream(values, ids, 10, batch_size=16)
    parts = [full.units(0, 2), full.units(2, 7), full.units(7, 9)]
    assert ExtremeSets.concat(parts) == full
    assert parts[1] == stream(np.ascontiguousarray(values[:, 2:7]), ids, 10, batch_size=50)
    with pytest.raises(ConfigError, match="same k and image count"):
        ExtremeSets.concat([full, ExtremeSets(9, 10)])

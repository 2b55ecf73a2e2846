import numpy as np
import pytest

from benchmark.api.errors import DataValidationError
from benchmark.api.types import Protocol
from benchmark.stimuli.exemplars import build_tasks, required_per_side, unit_rng

PROTOCOL = Protocol()  # N = 20 tasks, K = 9 references


def _ranked():
    top = np.arange(1000, 1200)  # rank r has id 1000 + r (rank 0 = most activating)
    bottom = np.arange(2000, 2200)  # rank r has id 2000 + r (rank 0 = least activating)
    return top, bottom


def test_protocol_numbers():
    assert required_per_side(PROTOCOL) == 200
    tasks = build_tasks(*_ranked(), PROTOCOL, rng=np.random.default_rng(0))
    assert tasks.n_tasks == 20
    assert tasks.max_references.shape == tasks.min_references.shape == (20, 9)
    assert tasks.max_queries.shape == tasks.min_queries.shape == (20,)
    assert len(tasks.image_ids()) == 400  # every image used exactly once


def test_each_task_gets_one_image_from_each_bin_most_extreme_last():
    tasks = build_tasks(*_ranked(), PROTOCOL, rng=np.random.default_rng(1))
    for refs, base in ((tasks.max_references, 1000), (tasks.min_references, 2000)):
        ranks = refs - base
        bins = ranks // 20  # bin 0 = ranks 0-19 (most extreme)
        np.testing.assert_array_equal(bins, np.tile(np.arange(8, -1, -1), (20, 1)))
        for column in range(9):  # each bin's 20 ranks are spread over the 20 tasks
            assert sorted(ranks[:, column]) == list(range(bins[0, column] * 20, bins[0, column] * 20 + 20))


def test_queries_are_the_next_n_ranks():
    tasks = build_tasks(*_ranked(), PROTOCOL, rng=np.random.default_rng(2))
    assert sorted(tasks.max_queries - 1000) == list(range(180, 200))
    assert sorted(tasks.min_queries - 2000) == list(range(180, 200))


def test_shuffling_is_seeded_per_unit():
    a = build_tasks(*_ranked(), PROTOCOL, rng=unit_rng(0, "layer1", 3))
    b = build_tasks(*_ranked(), PROTOCOL, rng=unit_rng(0, "layer1", 3))
    c = build_tasks(*_ranked(), PROTOCOL, rng=unit_rng(0, "layer1", 4))
    np.testing.assert_array_equal(a.max_references, b.max_references)
    assert not np.array_equal(a.max_references, c.max_references)


def test_hard_variant_takes_queries_from_the_percentile_band():
    protocol = Protocol(query_variant="hard95")
    assert required_per_side(protocol) == 180
    top, bottom = _ranked()
    band = (np.arange(5000, 5020), np.arange(6000, 6020))
    tasks = build_tasks(top[:180], bottom[:180], protocol, rng=np.random.default_rng(0), hard_queries=band)
    assert sorted(tasks.max_queries) == list(band[0]) and sorted(tasks.min_queries) == list(band[1])
    with pytest.raises(DataValidationError, match="second pass"):
        build_tasks(top, bottom, protocol, rng=np.random.default_rng(0))


def test_too_few_or_overlapping_exemplars_are_clear_errors():
    top, bottom = _ranked()
    with pytest.raises(DataValidationError, match="needs the 200 most activating.*only 150"):
        build_tasks(top[:150], bottom, PROTOCOL, rng=np.random.default_rng(0))
    with pytest.raises(DataValidationError, match="both the most and the least"):
        build_tasks(top, np.arange(1150, 1350), PROTOCOL, rng=np.random.default_rng(0))


def test_other_protocol_sizes():
    protocol = Protocol(n_tasks=5, n_references=3)
    tasks = build_tasks(np.arange(20), np.arange(100, 120), protocol, rng=np.random.default_rng(0))
    assert tasks.max_references.shape == (5, 3) and len(tasks.image_ids()) == 40

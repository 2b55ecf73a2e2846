"""The rank bands of the hard query variants: exact against a full sort, whatever path the passes take."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.activations.bands import BandOptions, RankBandSelector, collect_rank_bands, run_on_arrays
from benchmark.activations.collect import LayerSelection
from benchmark.api.errors import ConfigError, DataValidationError


def brute_force(values: np.ndarray, band: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Ids at ranks [lo, hi): top = larger first then smaller id, bottom = smaller first then smaller id."""
    n, units = values.shape
    ids = np.arange(n)
    top, bottom = [], []
    for u in range(units):
        v = np.where(np.isnan(values[:, u]), -np.inf, values[:, u])
        top.append(np.lexsort((ids, -v))[band[0] : band[1]])
        v = np.where(np.isnan(values[:, u]), np.inf, values[:, u])
        bottom.append(np.lexsort((ids, v))[band[0] : band[1]])
    return np.array(top), np.array(bottom)


def assert_exact(values: np.ndarray, band: tuple[int, int], options: BandOptions) -> RankBandSelector:
    result, selector = run_on_arrays(values, band, options=options, batch_size=97)
    top, bottom = brute_force(values, band)
    np.testing.assert_array_equal(result.top_ids, top)
    np.testing.assert_array_equal(result.bottom_ids, bottom)
    np.testing.assert_array_equal(result.top_values, np.take_along_axis(values, top.T, 0).T.astype(np.float32))
    return selector


def test_continuous_values_take_two_passes() -> None:
    values = np.random.default_rng(0).normal(size=(3000, 7)).astype(np.float32)
    selector = assert_exact(values, (450, 470), BandOptions(sample_size=300, capacity=200))
    assert selector.passes == 2  # one histogram pass, one collect pass


def test_ties_relu_zeros_and_nan_are_ranked_like_the_total_order() -> None:
    rng = np.random.default_rng(1)
    values = np.maximum(rng.normal(size=(2000, 5)), 0).astype(np.float32)  # ~half exactly 0
    values[:, 1] = np.round(values[:, 1])  # a few distinct values only
    values[:, 2] = 3.0  # constant
    values[rng.choice(2000, 40, replace=False), 3] = np.nan
    values[:, 4] = -0.0
    assert_exact(values, (300, 320), BandOptions(sample_size=200, window=4, capacity=64))


def test_sample_missing_the_band_and_tiny_capacity_force_refinement() -> None:
    values = np.random.default_rng(2).standard_cauchy(size=(4000, 4)).astype(np.float32)
    selector = assert_exact(values, (600, 620), BandOptions(sample_size=50, window=1, capacity=24))
    assert selector.passes > 2


def test_whole_source_in_the_sample_is_exact_without_a_pass() -> None:
    values = np.random.default_rng(3).normal(size=(500, 3)).astype(np.float32)
    selector = assert_exact(values, (75, 95), BandOptions(sample_size=4096))
    assert selector.passes == 0


def test_state_does_not_grow_with_the_number_of_images() -> None:
    sizes = []
    for n in (2000, 20000):
        values = np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32)
        _, selector = run_on_arrays(values, (n // 7, n // 7 + 20), options=BandOptions(sample_size=256, capacity=512))
        sizes.append(selector.state_bytes())
    assert sizes[0] == sizes[1]


def test_a_pass_that_misses_images_is_an_error() -> None:
    selector = RankBandSelector(2, 1000, (100, 120), options=BandOptions(sample_size=100))
    index = torch.as_tensor(selector.sample_indices())
    selector.add_sample(torch.randn(len(index), 2), index)
    selector.finish_sample()
    selector.add(torch.randn(10, 2), torch.arange(10))
    with pytest.raises(DataValidationError, match="saw 10 images"):
        selector.end_pass()
    with pytest.raises(ConfigError, match="not known yet"):
        selector.result()


def test_collect_rank_bands_over_a_model_matches_a_full_sort() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.Conv2d(6, 4, 3))
    images = torch.randn(300, 3, 8, 8)

    def batches(indices):
        order = torch.arange(300) if indices is None else torch.as_tensor(indices)
        for start in range(0, len(order), 64):
            ids = order[start : start + 64]
            yield images[ids], ids

    layers = {"0": LayerSelection((1, 4)), "2": LayerSelection(None)}
    bands = collect_rank_bands(model, layers, batches, 300, (45, 55), options=BandOptions(sample_size=64, window=4),
                               progress=False)
    with torch.no_grad():
        first = model[0](images).mean(dim=(2, 3))[:, [1, 4]]
        second = model(images).mean(dim=(2, 3))
    for name, values in (("0", first), ("2", second)):
        top, bottom = brute_force(values.numpy(), (45, 55))
        np.testing.assert_array_equal(bands[name].top_ids, top)
        np.testing.assert_array_equal(bands[name].bottom_ids, bottom)


def test_sample_stage_in_unit_chunks_gives_the_same_band(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark.activations import bands

    values = np.random.default_rng(5).normal(size=(3000, 7)).astype(np.float32)
    monkeypatch.setattr(bands, "_SORT_CHUNK_KEYS", 600)  # 2 units per chunk with a 300-image sample
    assert_exact(values, (450, 470), BandOptions(sample_size=300, capacity=200))
    assert_exact(values[:250], (40, 60), BandOptions(sample_size=300))  # the exact, sample-only path

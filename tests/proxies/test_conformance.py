"""The estimator contract, checked for EVERY registered proxy: a new metric is tested by registering it.

Proxies whose inputs cannot be had offline (pretrained weights not in the local caches, an optional package not
installed) are skipped with the reason their own error gives. Hugging Face Hub look-ups are forced offline here,
so a missing download fails at once instead of retrying for a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.base import clone

from benchmark.api.errors import ConfigError, NotFittedError, SourceUnavailableError
from benchmark.proxies import make_proxy, proxies
from benchmark.proxies.base import ProxyMetric

from .conftest import SimUnits

N_UNITS, N_TASKS = 12, 2  # a small, fast subset: 12 units (both modes), 2 tasks each


@pytest.fixture(autouse=True)
def _hub_offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    yield


@pytest.fixture(scope="module")
def data(sim_units_with_maps: SimUnits) -> SimUnits:
    return sim_units_with_maps.subset(N_UNITS, n_tasks=N_TASKS)


def _fast(metric: ProxyMetric, cache_dir: str) -> ProxyMetric:
    """The metric with the session's embedding cache where it embeds images (one embedding pass per embedder)."""
    return metric.set_params(cache_dir=cache_dir) if "cache_dir" in metric.get_params() else metric


def _fit_or_skip(metric: ProxyMetric, data: SimUnits) -> ProxyMetric:
    try:
        return metric.fit(data.units, data.accuracy)
    except SourceUnavailableError as err:  # weights neither cached nor downloadable here
        pytest.skip(f"inputs not available offline: {err}")
    except ConfigError as err:
        if "not installed" not in str(err):  # only a missing optional package is a reason to skip
            raise
        pytest.skip(f"optional package missing: {err}")


@pytest.mark.parametrize("name", proxies.names())
def test_init_stores_parameters_unchanged(name: str) -> None:
    metric = make_proxy(name)
    params = metric.get_params()
    copy = clone(metric)
    assert copy.get_params() == params and type(copy) is type(metric)
    assert not [k for k in vars(metric) if k.endswith("_") and not k.startswith("_")], "fitted state in __init__"


@pytest.mark.parametrize("name", proxies.names())
def test_contract(name: str, data: SimUnits, embedding_cache_dir: str) -> None:
    metric = _fast(make_proxy(name), embedding_cache_dir)
    params = metric.get_params()
    with pytest.raises(NotFittedError):
        metric.predict(data.units)
    before = set(vars(metric))
    fitted = _fit_or_skip(metric, data)
    assert fitted is metric, "fit must return self"
    assert metric.get_params() == params, "fit must not change the parameters"
    new_public = [k for k in set(vars(metric)) - before if not k.startswith("_")]
    assert new_public and all(k.endswith("_") for k in new_public), new_public

    predicted = metric.predict(data.units)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (len(data.units),)
    assert np.all(np.isfinite(predicted)) and np.all((predicted >= 0) & (predicted <= 1))
    np.testing.assert_array_equal(predicted, metric.predict(data.units), err_msg="predict is not deterministic")
    refit = clone(metric).fit(data.units, data.accuracy).predict(data.units)
    np.testing.assert_allclose(refit, predicted, rtol=1e-9, atol=1e-12, err_msg="fit is not deterministic")
    np.testing.assert_array_equal(metric.predict(data.units[:3]), predicted[:3], err_msg="depends on the batch")
    json.dumps(metric.fitted_params())


@pytest.mark.parametrize("name", proxies.names())
def test_declared_requirements_are_checked(name: str, data: SimUnits, sim_units: SimUnits) -> None:
    metric = make_proxy(name)
    assert metric.missing_inputs(data.units) == []
    bare = sim_units.subset(N_UNITS, n_tasks=N_TASKS)
    if "activation_maps" in metric.requires:
        assert metric.missing_inputs(bare.units) == ["activation_maps"]
        with pytest.raises(ConfigError):
            metric.fit(bare.units, bare.accuracy)

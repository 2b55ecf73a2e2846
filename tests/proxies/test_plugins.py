"""Tests of user-metric loading (benchmark.proxies.plugins)."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.proxies import FunctionProxy, load_metric, proxies, register_metric
from benchmark.proxies.base import ProxyMetric
from benchmark.proxies.mis import MISPixel

from .conftest import SimUnits

PLUGIN_SOURCE = '''
import numpy as np
from benchmark.proxies.base import CalibratedProxy


class TaskCount(CalibratedProxy):
    """Scores a unit by the number of its tasks times a factor."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def raw_scores(self, units):
        return np.array([self.factor * len(u.tasks) + u.channel for u in units], dtype=float)


def channel_score(units):
    return [float(u.channel) for u in units]


ready_made = TaskCount(factor=2.0)
NOT_A_METRIC = 42
'''


@pytest.fixture()
def plugin_file(tmp_path: Path) -> Path:
    """A metric module written to a fresh file (unique name, so sys.modules never clashes between tests)."""
    path = tmp_path / f"my_metrics_{uuid.uuid4().hex[:8]}.py"
    path.write_text(PLUGIN_SOURCE)
    return path


def _check_runs(metric: ProxyMetric, data: SimUnits) -> np.ndarray:
    predicted = metric.fit(data.units, data.accuracy).predict(data.units)
    assert predicted.shape == (len(data.units),) and np.all((predicted >= 0) & (predicted <= 1))
    return predicted


def test_class_from_a_file(plugin_file: Path, sim_units: SimUnits) -> None:
    metric = load_metric(f"{plugin_file}:TaskCount")
    assert type(metric).__name__ == "TaskCount" and metric.get_params() == {"factor": 1.0}
    _check_runs(metric, sim_units.subset(8))
    assert type(load_metric(f"{plugin_file}:TaskCount")) is type(metric)  # the file is imported once


def test_class_function_and_instance_from_a_module_on_sys_path(
    plugin_file: Path, sim_units: SimUnits, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(plugin_file.parent))
    module = plugin_file.stem
    assert type(load_metric(f"{module}:TaskCount")).__name__ == "TaskCount"
    instance = load_metric(f"{module}:ready_made")
    assert instance.get_params() == {"factor": 2.0}
    wrapped = load_metric(f"{module}:channel_score")
    assert isinstance(wrapped, FunctionProxy)
    _check_runs(wrapped, sim_units.subset(8))


def test_function_proxy_is_clone_safe_and_checks_the_scores(sim_units: SimUnits) -> None:
    data = sim_units.subset(6)

    def channel_score(units):  # noqa: ANN001, ANN202 - a user's plain function
        return [u.channel for u in units]

    metric = FunctionProxy(channel_score)
    copy = clone(metric)
    assert copy.func is channel_score and copy is not metric
    np.testing.assert_array_equal(copy.raw_scores(data.units), [u.channel for u in data.units])
    with pytest.raises(DataValidationError, match="one score per unit"):
        FunctionProxy(lambda units: [1.0]).fit(data.units, data.accuracy)
    with pytest.raises(DataValidationError, match="non-finite"):
        FunctionProxy(lambda units: [np.nan] * len(units)).fit(data.units, data.accuracy)


def test_registry_name() -> None:
    assert isinstance(load_metric("mis-pixel"), MISPixel)


def test_unknown_registry_name_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'mis-pixel'.*module.path:Name"):
        load_metric("mis-pixle")


def test_module_not_found_names_it_and_sys_path() -> None:
    with pytest.raises(ConfigError, match=r"Module 'no_such_pkg\.metrics' not found on sys\.path.*PYTHONPATH"):
        load_metric("no_such_pkg.metrics:Metric")


def test_module_with_a_missing_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"needs_dep_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("import some_uninstalled_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="needs 'some_uninstalled_dependency_xyz'"):
        load_metric(f"{name}:Metric")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_metric(f"{tmp_path / 'absent.py'}:Metric")


def test_missing_attribute_lists_the_candidates(plugin_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"no attribute 'TaskCnt'.*TaskCount, channel_score, ready_made"):
        load_metric(f"{plugin_file}:TaskCnt")


@pytest.mark.parametrize("attribute", ["NOT_A_METRIC", "np"])
def test_wrong_kind_of_object(plugin_file: Path, attribute: str) -> None:
    with pytest.raises(ConfigError, match="not a metric"):
        load_metric(f"{plugin_file}:{attribute}")


def test_abstract_or_unbuildable_classes(tmp_path: Path) -> None:
    path = tmp_path / f"bad_{uuid.uuid4().hex[:8]}.py"
    path.write_text(
        textwrap.dedent(
            """
            from benchmark.proxies.base import CalibratedProxy, ProxyMetric

            class Needs(CalibratedProxy):
                def __init__(self, required):
                    self.required = required

                def raw_scores(self, units):
                    return [0.0] * len(units)
            """
        )
    )
    with pytest.raises(ConfigError, match="abstract"):
        load_metric("benchmark.proxies.base:ProxyMetric")
    with pytest.raises(ConfigError, match="default parameters"):
        load_metric(f"{path}:Needs")


@pytest.mark.parametrize("spec", ["", "   ", ":Name", "pkg.mod:", "pkg.mod:not-an-identifier"])
def test_malformed_specs(spec: str) -> None:
    with pytest.raises(ConfigError):
        load_metric(spec)


def test_register_metric_adds_to_the_proxy_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxies, "_entries", dict(proxies._entries))  # restored after the test

    @register_metric("test-only-constant")
    class Constant(FunctionProxy):
        def __init__(self, func=len) -> None:  # noqa: ANN001
            super().__init__(func)

    assert proxies.get("test-only-constant") is Constant
    assert isinstance(load_metric("test-only-constant"), Constant)

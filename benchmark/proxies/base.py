"""The proxy-metric contract: a small scikit-learn-style estimator from units to predicted human 2-AFC accuracy."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy.optimize import least_squares
from sklearn.base import BaseEstimator

from benchmark.api.errors import ConfigError, DataValidationError, NotFittedError
from benchmark.api.registry import Registry
from benchmark.data.stimuli import TaskStimuli


@dataclass(frozen=True)
class ProxyUnit:
    """One unit as a proxy sees it: identity, the images of its 2-AFC tasks and, when known, activation maps."""

    model: str
    layer: str
    channel: int
    mode: str
    tasks: tuple[TaskStimuli, ...]
    # image path (as str) -> the unit's (H, W) activation map on that image; None when no model is at hand
    activation_maps: Mapping[str, np.ndarray] | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, int, str]:
        """(model, layer, channel, mode)."""
        return (self.model, self.layer, self.channel, self.mode)

    @property
    def unit_id(self) -> str:
        """Mode-independent unit id, used to group folds so one unit never sits on both sides."""
        return f"{self.model}/{self.layer}/{self.channel}"


class ProxyMetric(BaseEstimator, abc.ABC):
    """Predicts a unit's human 2-AFC accuracy in [0, 1].

    Like a scikit-learn estimator: `__init__` only stores keyword parameters; `fit(units, human_accuracy)`
    returns self and sets fitted attributes with a trailing underscore; `predict(units)` raises NotFittedError
    before `fit`. `requires` names inputs beyond the images (e.g. "activation_maps") so a harness can skip a
    metric whose inputs are absent with a clear reason.
    """

    version: ClassVar[str] = "1"
    requires: ClassVar[frozenset[str]] = frozenset()
    # False when fitted_params() is only a summary, so a fitted file could not restore the metric
    json_restorable: ClassVar[bool] = True
    # Fitted numbers a fitted-proxy file must hold, with their [low, high] bounds: checked when the file is loaded
    # (benchmark.proxies.fitted), before any model runs.
    fitted_bounds: ClassVar[Mapping[str, tuple[float, float]]] = {}

    @abc.abstractmethod
    def fit(self, units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> ProxyMetric:
        """Fit the metric's free parameters on human data; returns self."""

    @abc.abstractmethod
    def predict(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """Predicted human accuracy per unit, in [0, 1]."""

    def fitted_params(self) -> dict[str, object]:
        """The fitted attributes (trailing underscore), JSON-able where possible, for result files."""
        self._check_fitted()
        return {k: _jsonable(v) for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def _check_fitted(self) -> None:
        if not any(k.endswith("_") and not k.startswith("_") for k in vars(self)):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(units, human_accuracy) first.")

    def missing_inputs(self, units: Sequence[ProxyUnit]) -> list[str]:
        """Inputs this metric requires that `units` lack (empty when it can run)."""
        missing = []
        if "activation_maps" in self.requires and any(u.activation_maps is None for u in units):
            missing.append("activation_maps")
        return missing


class CalibratedProxy(ProxyMetric):
    """A metric with a raw score per unit, mapped to [0, 1] by a logistic fitted on human accuracy."""

    fitted_bounds: ClassVar[Mapping[str, tuple[float, float]]] = {
        "raw_mean_": (-np.inf, np.inf), "raw_std_": (np.finfo(float).tiny, np.inf),
        "slope_": (-np.inf, np.inf), "intercept_": (-np.inf, np.inf),
    }

    @abc.abstractmethod
    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """The uncalibrated score per unit (any scale; larger should mean more interpretable)."""

    def fit(self, units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> CalibratedProxy:
        """Fit the logistic calibration human ~ sigmoid(a * standardised raw + b)."""
        y = check_targets(units, human_accuracy)
        raw = self.raw_scores(units)
        self.raw_mean_, self.raw_std_ = float(raw.mean()), float(raw.std() or 1.0)
        self.slope_, self.intercept_ = fit_logistic_calibration((raw - self.raw_mean_) / self.raw_std_, y)
        return self

    def predict(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """Calibrated prediction in [0, 1]."""
        self._check_fitted()
        z = (self.raw_scores(units) - self.raw_mean_) / self.raw_std_
        return _sigmoid(self.slope_ * z + self.intercept_)


def fit_logistic_calibration(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares fit of y ~ sigmoid(a x + b); returns (a, b)."""
    if len(x) < 2:
        raise DataValidationError(f"Calibration needs at least 2 units, got {len(x)}.")
    result = least_squares(lambda p: _sigmoid(p[0] * x + p[1]) - y, x0=np.array([0.0, 1.0]))
    return float(result.x[0]), float(result.x[1])


def check_targets(units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> np.ndarray:
    """Validate that there is one human accuracy in [0, 1] per unit and return it as float array."""
    y = np.asarray(human_accuracy, dtype=float)
    if y.ndim != 1 or len(y) != len(units):
        raise DataValidationError(f"Expected one human accuracy per unit ({len(units)}), got shape {y.shape}.")
    if np.isnan(y).any() or (y < 0).any() or (y > 1).any():
        raise DataValidationError("Human accuracies must be finite values in [0, 1].")
    return y


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


proxies: Registry[type[ProxyMetric]] = Registry("proxy metric")


def make_proxy(name: str, **params: object) -> ProxyMetric:
    """Instantiate a registered proxy; unknown parameters raise ConfigError listing the valid ones."""
    cls = proxies.get(name)
    valid = sorted(cls._get_param_names())
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"Unknown parameter(s) {unknown} for proxy {name!r}; valid: {valid}.")
    return cls(**params)

"""A learned proxy: registered proxies as features, each isotonic-calibrated, combined by a regressor.

Fitting uses the training units only: every feature proxy, every isotonic calibration and the regressor are fitted
in `fit`; `predict` only applies them (nothing is refitted on the units it predicts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmark.api.errors import ConfigError
from benchmark.proxies.base import CalibratedProxy, ProxyMetric, ProxyUnit, check_targets, make_proxy, proxies
from benchmark.proxies.embedders import EmbeddingCache

REGRESSORS: tuple[str, ...] = ("ridge", "gbr")


@proxies.register("learned")
class LearnedProxy(ProxyMetric):
    """Feature values -> per-feature increasing isotonic calibration -> ridge or boosting, in [0, 1].

    A feature's value is the raw score of a calibrated feature proxy (e.g. coherence: larger = more interpretable
    by definition), else its prediction (MIS).
    The ridge weights are non-negative: every feature is already calibrated to increase with human accuracy, so
    a negative weight could only be fitted noise; fixing the direction also keeps held-out folds independent of
    one another's fitted signs (benchmark.validation.inference).

    `cache_dir` is handed to every feature proxy that embeds images, so that refits (e.g. one per
    cross-validation fold) reuse the embeddings on disk.
    """

    json_restorable = False  # isotonic steps and the regressor are summarised, not serialised

    version: ClassVar[str] = "2"

    def __init__(
        self,
        features: tuple[str, ...] = ("mis-pixel", "coherence-pixel"),
        regressor: str = "ridge",
        alpha: float = 1.0,
        random_state: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        self.features = features
        self.regressor = regressor
        self.alpha = alpha
        self.random_state = random_state
        self.cache_dir = cache_dir

    def fit(self, units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> LearnedProxy:
        """Fit the feature proxies, their isotonic calibrations and the regressor on the training units."""
        y = check_targets(units, human_accuracy)
        names = self._check_params()
        features = self._build_features(names, units)
        raw = np.column_stack([_feature_values(proxy.fit(units, y), units) for proxy in features.values()])
        isotonic = [_isotonic().fit(column, y) for column in raw.T]
        regressor = self._make_regressor().fit(_transform(isotonic, raw), y)
        self.feature_proxies_, self.isotonic_, self.regressor_ = features, isotonic, regressor
        return self

    def predict(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """Predicted human accuracy in [0, 1] (feature proxies and calibrations as fitted)."""
        self._check_fitted()
        raw = self.feature_matrix(units)
        return np.clip(self.regressor_.predict(_transform(self.isotonic_, raw)), 0.0, 1.0)

    def feature_matrix(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """(n_units, n_features) feature values before isotonic calibration: the raw score of a calibrated feature
        proxy (its direction is fixed by its definition, so no fold can flip it), else its prediction."""
        self._check_fitted()
        return np.column_stack([_feature_values(proxy, units) for proxy in self.feature_proxies_.values()])

    @property
    def embedding_cache(self) -> EmbeddingCache:
        """The in-memory embedding cache handed to the feature proxies (kept across refits of this instance)."""
        if getattr(self, "_cache", None) is None:
            self._cache = EmbeddingCache()
        return self._cache

    def share_embedding_cache(self, cache: EmbeddingCache) -> None:
        """Use `cache` for the feature proxies (e.g. one cache for every cross-validation fold's clone)."""
        self._cache = cache

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the embedding cache (rebuilt on first use)."""
        state = dict(super().__getstate__())
        state.pop("_cache", None)
        return state

    def fitted_params(self) -> dict[str, object]:
        """JSON-able summary: each feature's fitted parameters, its isotonic steps and the regressor's parameters."""
        self._check_fitted()
        return {
            "features": {name: proxy.fitted_params() for name, proxy in self.feature_proxies_.items()},
            "isotonic": [
                {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
                for iso in self.isotonic_
            ],
            "regressor": _regressor_summary(self.regressor_),
        }

    def _check_params(self) -> list[str]:
        if isinstance(self.features, str) or not self.features:
            raise ConfigError(
                f"features must be a non-empty tuple of registered proxy names, got {self.features!r}; "
                f"e.g. ('mis-pixel', 'coherence-pixel'). Valid names: {', '.join(proxies.names())}."
            )
        names = list(self.features)
        for name in names:
            proxies.get(name)  # raises with "did you mean" for unknown names
        if len(set(names)) != len(names):
            raise ConfigError(f"features must be distinct, got {names}.")
        if self.regressor not in REGRESSORS:
            raise ConfigError(f"Unknown regressor {self.regressor!r}; valid: {', '.join(REGRESSORS)}.")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or self.alpha < 0:
            raise ConfigError(f"alpha must be a number >= 0, got {self.alpha!r}.")
        return names

    def _build_features(self, names: list[str], units: Sequence[ProxyUnit]) -> dict[str, ProxyMetric]:
        features = {name: self._make_feature(name) for name in names}
        shared = self.embedding_cache  # features on the same embedder then embed each image once between them
        for name, proxy in features.items():
            missing = proxy.missing_inputs(units)
            if missing:
                raise ConfigError(
                    f"Feature proxy {name!r} needs {', '.join(missing)}, which the units lack. Drop it from "
                    f"features, or build the units with them (build_units(..., activation_maps=source))."
                )
            if hasattr(proxy, "share_embedding_cache"):
                proxy.share_embedding_cache(shared)
        return features

    def _make_feature(self, name: str) -> ProxyMetric:
        """The registered proxy `name` with its defaults (and this proxy's cache_dir where it embeds images)."""
        takes_cache = "cache_dir" in proxies.get(name)._get_param_names()
        return make_proxy(name, cache_dir=self.cache_dir) if takes_cache and self.cache_dir else make_proxy(name)

    def _make_regressor(self) -> Pipeline | GradientBoostingRegressor:
        if self.regressor == "ridge":
            return make_pipeline(StandardScaler(), Ridge(alpha=float(self.alpha), positive=True))
        return GradientBoostingRegressor(random_state=self.random_state)


def _feature_values(proxy: ProxyMetric, units: Sequence[ProxyUnit]) -> np.ndarray:
    if isinstance(proxy, CalibratedProxy):
        return np.asarray(proxy.raw_scores(units), dtype=float)
    return np.asarray(proxy.predict(units), dtype=float)


def _isotonic() -> IsotonicRegression:
    # increasing: every feature is already a prediction of human accuracy, so its calibration must not flip it
    return IsotonicRegression(increasing=True, out_of_bounds="clip")


def _transform(isotonic: list[IsotonicRegression], raw: np.ndarray) -> np.ndarray:
    return np.column_stack([iso.predict(raw[:, j]) for j, iso in enumerate(isotonic)])


def _regressor_summary(regressor: Pipeline | GradientBoostingRegressor) -> dict[str, Any]:
    if isinstance(regressor, Pipeline):
        scaler, ridge = regressor.steps[0][1], regressor.steps[-1][1]
        return {
            "kind": "ridge",
            "scaler_mean": scaler.mean_.tolist(),
            "scaler_scale": scaler.scale_.tolist(),
            "coef": ridge.coef_.tolist(),
            "intercept": float(ridge.intercept_),
        }
    return {
        "kind": "gbr",
        "n_estimators": int(regressor.n_estimators_),
        "feature_importances": regressor.feature_importances_.tolist(),
    }

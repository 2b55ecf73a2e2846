"""Baseline proxies from the literature, and a noise control.

- "coherence" / "coherence-pixel": how similar a unit's max references are to each other (mean pairwise cosine
  similarity of their embeddings), optionally minus that of its min references; averaged over tasks.
- "sparsity": Hoyer (2004) sparsity of the unit's activation maps on its max references (spatial, default), or
  across its stimuli ("lifetime" sparseness, Vinje & Gallant 2000). Needs activation maps.
- "contrast": peak-vs-surround (Michelson) contrast of the activation maps on the max references. Needs maps.
- "noise": random raw scores, seeded and keyed by unit. It exists as the negative control of proxy validation:
  a validation that finds it predictive is leaking human data.

All are CalibratedProxy: a logistic fitted on human accuracy maps the raw score to [0, 1], and its slope may be
negative, so a raw score that falls with interpretability still predicts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.proxies.base import CalibratedProxy, ProxyUnit, check_targets, proxies
from benchmark.proxies.mis import EmbeddingMixin

SPARSITY_SCOPES: tuple[str, ...] = ("map", "lifetime")


# ------------------------------------------------------------------------------------------------- coherence


@proxies.register("coherence")
class Coherence(EmbeddingMixin, CalibratedProxy):
    """Within-reference-set coherence: mean pairwise cosine similarity of the max references' embeddings."""

    def __init__(
        self,
        embedder: str = "pixel",
        embedder_params: dict | None = None,
        subtract_min: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.embedder = embedder
        self.embedder_params = embedder_params
        self.subtract_min = subtract_min
        self.cache_dir = cache_dir
        self.batch_size = batch_size

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """Per unit: mean over tasks of coherence(max references) [- coherence(min references)]."""
        if not isinstance(self.subtract_min, bool):
            raise ConfigError(f"subtract_min must be True or False, got {self.subtract_min!r}.")
        return np.array(self.per_unit_memo(f"coherence:{self.subtract_min}", units, self._unit_coherence))

    def _unit_coherence(self, units: list[ProxyUnit]) -> np.ndarray:
        embedded = self.embed_tasks(units)
        per_task = embedded.coherence("max")
        if self.subtract_min:
            per_task = per_task - embedded.coherence("min")
        return embedded.index.unit_mean(per_task)

    def fit(self, units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> Coherence:
        """Fit the logistic calibration and record the embedder's identity."""
        super().fit(units, human_accuracy)
        self.embedder_identity_ = self.get_embedder().identity()
        return self

    def predict(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """Calibrated coherence in [0, 1]."""
        self._check_fitted()
        self._check_same_embedder(self.embedder_identity_)
        return super().predict(units)


@proxies.register("coherence-pixel")
class CoherencePixel(Coherence):
    """Coherence of pixel features (thumbnail + colour histogram): runs anywhere, offline."""

    def __init__(
        self,
        embedder: str = "pixel",
        embedder_params: dict | None = None,
        subtract_min: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 64,
    ) -> None:
        super().__init__(embedder, embedder_params, subtract_min, cache_dir, batch_size)


# ----------------------------------------------------------------------------------------- activation maps


class _ActivationMapProxy(CalibratedProxy):
    """A calibrated proxy on the units' activation maps; fails clearly when the units carry none."""

    requires: ClassVar[frozenset[str]] = frozenset({"activation_maps"})

    def fit(self, units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> _ActivationMapProxy:
        """Check the inputs, then fit the logistic calibration."""
        check_targets(units, human_accuracy)
        self._check_maps(units)
        return super().fit(units, human_accuracy)

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """Mean of `_map_score` over the maps of each unit's max references."""
        self._check_maps(units)
        return np.array([np.mean([self._map_score(m) for m in _max_reference_maps(u)]) for u in units])

    def _map_score(self, activation_map: np.ndarray) -> float:
        raise NotImplementedError

    def _check_maps(self, units: Sequence[ProxyUnit]) -> None:
        missing = [u.key for u in units if u.activation_maps is None]
        if missing:
            raise ConfigError(
                f"Proxy {type(self).__name__} needs activation maps, but {len(missing)} of {len(units)} unit(s) "
                f"have none (e.g. {missing[0]}). Build the units with activation maps: "
                "build_units(index, table, activation_maps=source), where source is a model adapter or, for a "
                "simulated release, benchmark.data.simulate.SimulatedActivationMaps(release_root)."
            )


def _unit_map(unit: ProxyUnit, path: object) -> np.ndarray:
    assert unit.activation_maps is not None  # checked by _check_maps before any map is read
    try:
        return np.asarray(unit.activation_maps[str(path)], dtype=np.float64)
    except KeyError:
        raise DataValidationError(
            f"Unit {unit.key} has activation maps but none for image {path}; the map source must cover every "
            "image of the unit's tasks (build_units checks this)."
        ) from None


def _max_reference_maps(unit: ProxyUnit) -> list[np.ndarray]:
    return [_unit_map(unit, p) for task in unit.tasks for p in task.max_references]


def hoyer_sparsity(values: np.ndarray) -> float:
    """Hoyer (2004) sparsity of |values| in [0, 1]: 1 for a single non-zero entry, 0 for a flat array."""
    x = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    n, l2 = x.size, float(np.linalg.norm(x))
    if n < 2:
        raise DataValidationError(f"Hoyer sparsity needs at least 2 values, got {n}.")
    if l2 == 0.0:
        return 0.0  # an all-zero map is flat: no sparse structure
    return float((np.sqrt(n) - x.sum() / l2) / (np.sqrt(n) - 1))


def peak_contrast(activation_map: np.ndarray, radius_fraction: float = 0.125) -> float:
    """Michelson contrast of the mean activation in a window around the peak vs. the rest of the map, in [0, 1]."""
    a = np.asarray(activation_map, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 3:
        raise DataValidationError(f"peak_contrast needs a 2-D map of at least 3 x 3, got shape {a.shape}.")
    a = a - a.min()  # maps may hold negative (pre-ReLU) values; contrast is about relative height
    row, col = np.unravel_index(int(np.argmax(a)), a.shape)
    r = max(1, int(round(radius_fraction * min(a.shape))))
    window = np.zeros(a.shape, dtype=bool)
    window[max(row - r, 0) : row + r + 1, max(col - r, 0) : col + r + 1] = True
    centre, surround = float(a[window].mean()), float(a[~window].mean())
    if centre + surround == 0.0:
        return 0.0  # a flat map has no contrast
    return (centre - surround) / (centre + surround)


@proxies.register("sparsity")
class Sparsity(_ActivationMapProxy):
    """Activation sparsity: Hoyer sparsity of the max-reference maps ("map") or across all stimuli ("lifetime")."""

    def __init__(self, scope: str = "map") -> None:
        self.scope = scope

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """Per unit: mean spatial Hoyer sparsity of the max-reference maps, or lifetime sparsity of map peaks."""
        if self.scope not in SPARSITY_SCOPES:
            raise ConfigError(f"Unknown sparsity scope {self.scope!r}; valid: {', '.join(SPARSITY_SCOPES)}.")
        if self.scope == "map":
            return super().raw_scores(units)
        self._check_maps(units)
        return np.array([hoyer_sparsity(_peak_responses(u)) for u in units])

    def _map_score(self, activation_map: np.ndarray) -> float:
        return hoyer_sparsity(activation_map)


def _peak_responses(unit: ProxyUnit) -> np.ndarray:
    """The unit's peak |activation| on each of its distinct stimuli (references of both sides and queries)."""
    paths = dict.fromkeys(p for task in unit.tasks for p in task.all_paths())
    return np.array([np.abs(_unit_map(unit, p)).max() for p in paths])


@proxies.register("contrast")
class Contrast(_ActivationMapProxy):
    """Local contrast of the max-reference maps: peak window vs. surround (Michelson), averaged."""

    def __init__(self, radius_fraction: float = 0.125) -> None:
        self.radius_fraction = radius_fraction

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """Per unit: mean peak-vs-surround contrast of the max-reference maps."""
        if isinstance(self.radius_fraction, bool) or not 0 < float(self.radius_fraction) < 0.5:
            raise ConfigError(f"radius_fraction must be in (0, 0.5), got {self.radius_fraction!r}.")
        return super().raw_scores(units)

    def _map_score(self, activation_map: np.ndarray) -> float:
        return peak_contrast(activation_map, float(self.radius_fraction))


# ----------------------------------------------------------------------------------------------------- noise


@proxies.register("noise")
class Noise(CalibratedProxy):
    """Negative control: a seeded random raw score per unit (keyed by its identity, so it is deterministic).

    Any validation that finds this proxy predictive of human accuracy is leaking the targets.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """Uniform [0, 1) values derived from sha256(seed, model, layer, channel, mode)."""
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}.")
        return np.array([_unit_uniform(int(self.seed), u.key) for u in units])


def _unit_uniform(seed: int, key: tuple[Any, ...]) -> float:
    digest = hashlib.sha256("\x1f".join(map(str, (seed, *key))).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64

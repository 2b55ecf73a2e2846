"""The Machine Interpretability Score (MIS; Zimmermann et al. 2024), as published, with pluggable embedders.

For a 2-AFC task with max references E+, min references E-, max query q+ and min query q-, and image similarity
f = cosine similarity of embeddings, s(q, E) = mean over e in E of f(q, e) and

    d = [s(q+, E+) - s(q+, E-)] - [s(q-, E+) - s(q-, E-)],   p = sigmoid(d / T),   MIS = mean of p over tasks.

The temperature T is fitted on human data (least squares between MIS and human accuracy); the hard variant uses
a step function instead of the sigmoid. Each distinct image is embedded once (EmbeddingCache); then, because the
embeddings have unit norm, s(q, E) = q . mean(E) and every task of every unit is one row of a matrix product.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit

from benchmark.api.errors import ConfigError, DataValidationError, NotFittedError
from benchmark.proxies.base import ProxyMetric, ProxyUnit, check_targets, proxies
from benchmark.proxies.embedders import Embedder, EmbeddingCache, make_embedder

_LOG_T_HALF_WIDTH = 7.0  # the temperature search spans e^-7 .. e^7 times the typical |margin|
_LOG_T_GRID = 57


# ------------------------------------------------------------------------------------------ tasks as indices


@dataclass(frozen=True)
class Ragged:
    """Variable-length rows of image indices, stored flat: row i is flat[starts[i] : starts[i] + lengths[i]]."""

    flat: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]]) -> Ragged:
        """Pack a list of index lists."""
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        flat = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(lengths.sum()))
        return cls(flat, starts, lengths)

    def sums(self, vectors: np.ndarray) -> np.ndarray:
        """(n_rows, d) sum of the vectors of each row."""
        from scipy.sparse import csr_array  # a sparse 0/1 product: no (n_rows * length, d) gather (10x faster)

        indptr = np.append(self.starts, self.starts[-1] + self.lengths[-1] if len(self.starts) else 0)
        selector = csr_array((np.ones(len(self.flat)), self.flat, indptr), shape=(len(self.starts), len(vectors)))
        return np.asarray(selector @ vectors)

    def means(self, vectors: np.ndarray) -> np.ndarray:
        """(n_rows, d) mean of the vectors of each row."""
        return self.sums(vectors) / self.lengths[:, None]


@dataclass(frozen=True)
class TaskIndex:
    """Every task of a list of units as indices into one list of distinct image paths."""

    paths: list[Path]
    n_units: int
    task_unit: np.ndarray  # (n_tasks,) index of the unit each task belongs to
    max_references: Ragged
    min_references: Ragged
    max_query: np.ndarray  # (n_tasks,)
    min_query: np.ndarray

    @classmethod
    def from_units(cls, units: Sequence[ProxyUnit]) -> TaskIndex:
        """Collect the tasks of `units`; a unit without tasks raises DataValidationError."""
        empty = [u.key for u in units if not u.tasks]
        if empty:
            raise DataValidationError(f"{len(empty)} unit(s) have no tasks, e.g. {empty[:3]}; build them with tasks.")
        position: dict[Path, int] = {}

        def ids(paths: Sequence[Path]) -> list[int]:
            return [position.setdefault(p, len(position)) for p in paths]

        tasks = [t for u in units for t in u.tasks]
        max_refs = [ids(t.max_references) for t in tasks]
        min_refs = [ids(t.min_references) for t in tasks]
        max_query = np.array(ids([t.max_query for t in tasks]), dtype=np.int64)
        min_query = np.array(ids([t.min_query for t in tasks]), dtype=np.int64)
        task_unit = np.repeat(np.arange(len(units)), [len(u.tasks) for u in units])
        return cls(
            list(position), len(units), task_unit, Ragged.from_rows(max_refs), Ragged.from_rows(min_refs),
            max_query, min_query,
        )  # fmt: skip

    @classmethod
    def of_task_units(cls, task_unit: np.ndarray, n_units: int) -> TaskIndex:
        """An index that only knows which unit each task belongs to (enough for unit_mean and split)."""
        empty = Ragged.from_rows([])
        none = np.zeros(0, dtype=np.int64)
        return cls([], n_units, np.asarray(task_unit, dtype=np.int64), empty, empty, none, none)

    def unit_mean(self, per_task: np.ndarray) -> np.ndarray:
        """(n_units,) mean of a per-task value over each unit's tasks."""
        counts = np.bincount(self.task_unit, minlength=self.n_units)
        return np.bincount(self.task_unit, weights=per_task, minlength=self.n_units) / counts

    def split(self, per_task: np.ndarray) -> list[np.ndarray]:
        """A per-task array cut into one array per unit."""
        counts = np.bincount(self.task_unit, minlength=self.n_units)
        return np.split(np.asarray(per_task), np.cumsum(counts)[:-1])


@dataclass(frozen=True)
class TaskEmbeddings:
    """The tasks of some units and the unit-norm embedding of each distinct image they show."""

    index: TaskIndex
    vectors: np.ndarray  # (n_images, d), rows of unit L2 norm

    def margins(self) -> np.ndarray:
        """(n_tasks,) d = [s(q+,E+) - s(q+,E-)] - [s(q-,E+) - s(q-,E-)] = (q+ - q-) . (mean E+ - mean E-)."""
        v, ix = self.vectors.astype(np.float64), self.index
        reference_contrast = ix.max_references.means(v) - ix.min_references.means(v)
        query_contrast = v[ix.max_query] - v[ix.min_query]
        return np.einsum("td,td->t", query_contrast, reference_contrast)

    def coherence(self, side: str) -> np.ndarray:
        """(n_tasks,) mean pairwise cosine similarity of a task's references of `side` ("max" or "min")."""
        refs = {"max": self.index.max_references, "min": self.index.min_references}[side]
        k = refs.lengths.astype(np.float64)
        if (k < 2).any():
            raise DataValidationError("Reference coherence needs at least 2 references per task side.")
        total = refs.sums(self.vectors.astype(np.float64))
        # sum over ordered pairs i != j of e_i . e_j = |sum e|^2 - sum |e|^2, and |e| = 1
        return (np.einsum("td,td->t", total, total) - k) / (k * (k - 1))


# ------------------------------------------------------------------------------------------ embedding machinery


def concat_per_unit(per_unit: Sequence[np.ndarray]) -> tuple[np.ndarray, TaskIndex]:
    """Per-unit arrays of per-task values (e.g. margins), concatenated, and an index of each task's unit."""
    task_unit = np.repeat(np.arange(len(per_unit)), [len(values) for values in per_unit])
    return np.concatenate(per_unit), TaskIndex.of_task_units(task_unit, len(per_unit))


class EmbeddingMixin:
    """Shared machinery of metrics on image embeddings: a lazily built embedder and a per-instance cache.

    Needs the parameters `embedder`, `embedder_params`, `cache_dir` and `batch_size` on the estimator.
    `default_embedder_params` holds a class's defaults per embedder name; explicit `embedder_params` win.
    """

    embedder: str
    embedder_params: dict[str, Any] | None
    cache_dir: str | None
    batch_size: int
    default_embedder_params: ClassVar[dict[str, dict[str, Any]]] = {}

    def resolved_embedder_params(self) -> dict[str, Any]:
        """The embedder's parameters: this class's defaults for the chosen embedder, updated by embedder_params."""
        if self.embedder_params is not None and not isinstance(self.embedder_params, dict):
            raise ConfigError(
                f"embedder_params must be a dict or None, got {type(self.embedder_params).__name__}: "
                f"{self.embedder_params!r}; e.g. embedder_params={{'size': 16}}."
            )
        return {**self.default_embedder_params.get(self.embedder, {}), **(self.embedder_params or {})}

    def get_embedder(self) -> Embedder:
        """The embedder this metric uses (built on first use; rebuilt if its parameters changed).

        Metrics sharing an embedding cache (the clones of one validation) share one embedder per parameters, so
        a refit neither rebuilds it nor re-hashes its weights file for `identity()`.
        """
        if not isinstance(self.embedder, str):
            raise ConfigError(f"embedder must be a registered embedder name (str), got {self.embedder!r}.")
        params = self.resolved_embedder_params()
        key = json.dumps([self.embedder, params], sort_keys=True, default=str)
        if getattr(self, "_embedder_key", None) != key:
            built = self.embedding_cache.derived("embedders")
            if key not in built:
                built[key] = make_embedder(self.embedder, **params)
            self._embedder_obj = built[key]
            self._embedder_key = key
        return self._embedder_obj

    @property
    def embedding_cache(self) -> EmbeddingCache:
        """The cache of this instance (on disk under cache_dir when given, else in memory)."""
        directory = None if self.cache_dir is None else Path(self.cache_dir)
        cache = getattr(self, "_cache", None)
        if cache is None or cache.directory != (None if directory is None else directory.expanduser()):
            cache = self._cache = EmbeddingCache(directory)
        return cache

    def share_embedding_cache(self, cache: EmbeddingCache) -> None:
        """Use `cache` (e.g. one shared by the features of a learned proxy) unless cache_dir is set."""
        if self.cache_dir is None:
            self._cache = cache

    def per_unit_memo(self, name: str, units: Sequence[ProxyUnit],
                      compute: Callable[[list[ProxyUnit]], Sequence[Any]]) -> list[Any]:
        """`compute(units)` (one value per unit), each unit's computed once per embedding cache and embedder.

        For values that depend on a unit's images only, so that the clones of one validation (every fold and
        resample refit) share them. Keyed by the identity of the unit's tasks tuple, which the memo keeps alive,
        so an id is never reused for other tasks.
        """
        if not units:
            raise DataValidationError("Expected at least one unit, got none.")
        self.get_embedder()
        memo = self.embedding_cache.derived(f"{name}:{self._embedder_key}")
        todo = list({id(u.tasks): u for u in units if memo.get(id(u.tasks), (None,))[0] is not u.tasks}.values())
        if todo:
            memo.update((id(u.tasks), (u.tasks, value)) for u, value in zip(todo, compute(todo), strict=True))
        return [memo[id(u.tasks)][1] for u in units]

    def embed_tasks(self, units: Sequence[ProxyUnit]) -> TaskEmbeddings:
        """Index the tasks of `units` and embed each distinct image once."""
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {self.batch_size!r}.")
        if not units:
            raise DataValidationError("Expected at least one unit, got none.")
        index = TaskIndex.from_units(units)
        vectors = self.embedding_cache.embed_paths(self.get_embedder(), index.paths, batch_size=self.batch_size)
        return TaskEmbeddings(index, vectors)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the embedder's model and the cache (rebuilt on first use): they can be gigabytes."""
        state = dict(super().__getstate__())  # type: ignore[misc]  # BaseEstimator's, via the metric class
        for runtime in ("_embedder_obj", "_embedder_key", "_cache"):
            state.pop(runtime, None)
        return state

    def _check_same_embedder(self, fitted_identity: dict[str, Any]) -> None:
        identity = self.get_embedder().identity()
        if json.dumps(identity, sort_keys=True) != json.dumps(fitted_identity, sort_keys=True):
            raise NotFittedError(
                f"{type(self).__name__} was fitted with embedder {fitted_identity} but is now set to {identity}; "
                "call fit again after changing the embedder."
            )


# ------------------------------------------------------------------------------------------------------- MIS


def fit_temperature(margins: np.ndarray, index: TaskIndex, human_accuracy: np.ndarray) -> float:
    """T minimising the squared error between MIS (mean sigmoid(d / T) per unit) and human accuracy."""
    scale = float(np.median(np.abs(margins[margins != 0]))) if np.any(margins != 0) else 0.0
    if scale == 0.0:
        raise DataValidationError(
            "Every task margin d is zero: the embedder cannot tell the reference images apart, so the "
            "temperature is undefined. Check the images (all identical?) or choose another embedder."
        )

    def loss(log_t: float) -> float:
        return float(np.mean((index.unit_mean(expit(margins / np.exp(log_t))) - human_accuracy) ** 2))

    grid = np.linspace(np.log(scale) - _LOG_T_HALF_WIDTH, np.log(scale) + _LOG_T_HALF_WIDTH, _LOG_T_GRID)
    best = int(np.argmin([loss(g) for g in grid]))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    result = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x if result.fun <= loss(grid[best]) else grid[best]))


def margin_probability(margins: np.ndarray, temperature: float, hard: bool) -> np.ndarray:
    """p per task: sigmoid(d / T), or for the hard variant 1 if d > 0, 0.5 if d == 0, else 0."""
    if hard:
        return np.where(margins > 0, 1.0, np.where(margins == 0, 0.5, 0.0))
    return expit(margins / temperature)


@proxies.register("mis")
class MIS(EmbeddingMixin, ProxyMetric):
    """Machine Interpretability Score: mean over a unit's tasks of sigmoid(d / T), T fitted on human data."""

    version: ClassVar[str] = "1"
    fitted_bounds: ClassVar[dict[str, tuple[float, float]]] = {"temperature_": (0.0, float("inf"))}

    def __init__(
        self,
        embedder: str = "pixel",
        embedder_params: dict | None = None,
        hard: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.embedder = embedder
        self.embedder_params = embedder_params
        self.hard = hard
        self.cache_dir = cache_dir
        self.batch_size = batch_size

    def task_margins(self, units: Sequence[ProxyUnit]) -> list[np.ndarray]:
        """The margin d of every task, one array per unit (needs no fit)."""
        embedded = self.embed_tasks(units)
        return embedded.index.split(embedded.margins())

    def margins_by_task(self, units: Sequence[ProxyUnit]) -> tuple[np.ndarray, TaskIndex]:
        """Every task's margin d and an index of the unit it belongs to.

        Margins depend on the images only, so each unit's are computed once per embedding cache (shared by the
        clones of one validation) and reused by every fold's and resample's refit.
        """
        return concat_per_unit(self.per_unit_memo("mis-margins", units, self.task_margins))

    def fit(self, units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> MIS:
        """Fit the temperature T on human accuracy (the hard variant has none: temperature_ = 0.0)."""
        self._check_hard()
        y = check_targets(units, human_accuracy)
        margins, index = self.margins_by_task(units)
        self.temperature_ = 0.0 if self.hard else fit_temperature(margins, index, y)
        self.embedder_identity_ = self.get_embedder().identity()
        return self

    def predict(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        """MIS per unit, in [0, 1]."""
        self._check_fitted()
        self._check_hard()
        self._check_same_embedder(self.embedder_identity_)
        margins, index = self.margins_by_task(units)
        return index.unit_mean(margin_probability(margins, self.temperature_, self.hard))

    def _check_hard(self) -> None:
        if not isinstance(self.hard, bool):
            raise ConfigError(f"hard must be True or False, got {self.hard!r}.")


@proxies.register("mis-pixel")
class MISPixel(MIS):
    """MIS on weight-free pixel features (thumbnail + colour histogram): runs anywhere, offline."""

    def __init__(
        self,
        embedder: str = "pixel",
        embedder_params: dict | None = None,
        hard: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 64,
    ) -> None:
        super().__init__(embedder, embedder_params, hard, cache_dir, batch_size)


@proxies.register("mis-pixel-hard")
class MISPixelHard(MIS):
    """Hard (step-function) MIS on pixel features: the fraction of tasks with d > 0 (ties count one half)."""

    def __init__(
        self,
        embedder: str = "pixel",
        embedder_params: dict | None = None,
        hard: bool = True,
        cache_dir: str | None = None,
        batch_size: int = 64,
    ) -> None:
        super().__init__(embedder, embedder_params, hard, cache_dir, batch_size)


@proxies.register("mis-clip")
class MISClip(MIS):
    """MIS on open_clip ViT-B-32 (laion2b_s34b_b79k) image embeddings."""

    default_embedder_params: ClassVar[dict[str, dict[str, Any]]] = {
        "open_clip": {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k"}
    }

    def __init__(
        self,
        embedder: str = "open_clip",
        embedder_params: dict | None = None,
        hard: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 64,
    ) -> None:
        super().__init__(embedder, embedder_params, hard, cache_dir, batch_size)


@proxies.register("mis-timm")
class MISTimm(MIS):
    """MIS on pooled features of a timm backbone (default resnet50.a1_in1k)."""

    default_embedder_params: ClassVar[dict[str, dict[str, Any]]] = {"timm": {"model": "resnet50.a1_in1k"}}

    def __init__(
        self,
        embedder: str = "timm",
        embedder_params: dict | None = None,
        hard: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 64,
    ) -> None:
        super().__init__(embedder, embedder_params, hard, cache_dir, batch_size)


@proxies.register("mis-dreamsim")
class MISDreamSim(MIS):
    """MIS with DreamSim (ensemble) similarity, as in the published MIS."""

    default_embedder_params: ClassVar[dict[str, dict[str, Any]]] = {"dreamsim": {"dreamsim_type": "ensemble"}}

    def __init__(
        self,
        embedder: str = "dreamsim",
        embedder_params: dict | None = None,
        hard: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 32,
    ) -> None:
        super().__init__(embedder, embedder_params, hard, cache_dir, batch_size)

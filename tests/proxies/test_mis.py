"""Tests of the Machine Interpretability Score (benchmark.proxies.mis)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone

from benchmark.api.errors import ConfigError, DataValidationError, NotFittedError
from benchmark.data.stimuli import TaskStimuli
from benchmark.proxies import make_proxy, proxies
from benchmark.proxies.base import ProxyUnit
from benchmark.proxies.mis import MIS, TaskEmbeddings, TaskIndex, fit_temperature, margin_probability

from .conftest import MODES, SimUnits

# ------------------------------------------------------------------------------------- the vectorised margins


def _unit(name: str, tasks: list[tuple[list[str], list[str], str, str]]) -> ProxyUnit:
    """A unit whose tasks are (max refs, min refs, max query, min query) of made-up paths."""
    stimuli = tuple(
        TaskStimuli(name, "l", 0, "natural", b, tuple(map(Path, mx)), tuple(map(Path, mn)), Path(qp), Path(qm))
        for b, (mx, mn, qp, qm) in enumerate(tasks)
    )
    return ProxyUnit(name, "l", 0, "natural", stimuli)


def _embed(index: TaskIndex, table: dict[str, np.ndarray]) -> TaskEmbeddings:
    return TaskEmbeddings(index, np.stack([table[str(p)] for p in index.paths]))


def test_margin_of_a_hand_computed_task() -> None:
    # E+ = {x, x}, E- = {y, y}, q+ = x, q- = (x + y)/sqrt 2: s(q+,E+)=1, s(q+,E-)=0, s(q-,E+)=s(q-,E-)=1/sqrt 2
    x, y, xy = np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([1.0, 1.0]) / np.sqrt(2)
    unit = _unit("u", [(["a", "b"], ["c", "d"], "qp", "qm")])
    index = TaskIndex.from_units([unit])
    embedded = _embed(index, {"a": x, "b": x, "c": y, "d": y, "qp": x, "qm": xy})
    np.testing.assert_allclose(embedded.margins(), [1.0])
    # the pairwise coherence of {x, x} is 1, of {x, y} 0
    np.testing.assert_allclose(embedded.coherence("max"), [1.0])


def test_vectorised_margins_equal_the_definition_on_random_embeddings() -> None:
    rng = np.random.default_rng(0)
    names = [f"img{i}" for i in range(40)]
    vectors = rng.standard_normal((40, 8))
    table = dict(zip(names, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)))

    def task() -> tuple[list[str], list[str], str, str]:
        k = int(rng.integers(2, 6))  # variable K: the flat (ragged) layout must handle it
        picks = rng.choice(names, size=2 * k + 2, replace=False).tolist()
        return picks[:k], picks[k : 2 * k], picks[-2], picks[-1]

    units = [_unit(f"u{i}", [task() for _ in range(int(rng.integers(1, 4)))]) for i in range(5)]
    index = TaskIndex.from_units(units)
    got = index.split(_embed(index, table).margins())

    def s(q: str, refs: tuple[Path, ...]) -> float:
        return float(np.mean([table[q] @ table[str(e)] for e in refs]))

    for unit, margins in zip(units, got, strict=True):
        expected = [
            (s(str(t.max_query), t.max_references) - s(str(t.max_query), t.min_references))
            - (s(str(t.min_query), t.max_references) - s(str(t.min_query), t.min_references))
            for t in unit.tasks
        ]
        np.testing.assert_allclose(margins, expected, atol=1e-12)
    assert len(index.paths) == len({str(p) for u in units for t in u.tasks for p in t.all_paths()})


def test_unit_without_tasks_is_an_error() -> None:
    with pytest.raises(DataValidationError, match="no tasks"):
        TaskIndex.from_units([ProxyUnit("m", "l", 0, "natural", ())])


# ---------------------------------------------------------------------------------- sigmoid and temperature


def test_margin_probability_sigmoid_and_step() -> None:
    d = np.array([-1.0, 0.0, 0.5])
    np.testing.assert_allclose(margin_probability(d, 1.0, hard=False), 1 / (1 + np.exp(-d)))
    np.testing.assert_allclose(margin_probability(d, 0.5, hard=False)[1], 0.5)
    hot, cold = margin_probability(d, 100.0, hard=False), margin_probability(d, 1e-3, hard=False)
    assert np.all(np.abs(hot - 0.5) < 0.01)  # high temperature: chance
    np.testing.assert_allclose(cold, margin_probability(d, 0.0, hard=True), atol=1e-6)  # low: the step
    np.testing.assert_array_equal(margin_probability(d, 0.0, hard=True), [0.0, 0.5, 1.0])


def test_fit_temperature_recovers_a_planted_temperature() -> None:
    rng = np.random.default_rng(1)
    units = [
        _unit(f"u{i}", [([f"{i}a{b}", f"{i}b{b}"], [f"{i}c{b}", f"{i}d{b}"], f"{i}p{b}", f"{i}m{b}") for b in range(4)])
        for i in range(30)
    ]
    index = TaskIndex.from_units(units)
    margins = rng.normal(0.3, 0.4, len(index.task_unit))
    planted = 0.17
    accuracy = index.unit_mean(1 / (1 + np.exp(-margins / planted)))
    assert fit_temperature(margins, index, accuracy) == pytest.approx(planted, rel=1e-3)


def test_fit_temperature_with_no_signal_is_an_error() -> None:
    index = TaskIndex.from_units([_unit("u", [(["a", "b"], ["c", "d"], "p", "m")])])
    with pytest.raises(DataValidationError, match="margin"):
        fit_temperature(np.zeros(1), index, np.array([0.7]))


# ---------------------------------------------------------------------------------- on the simulated release


@pytest.fixture(scope="module")
def fitted_mis(sim_units: SimUnits, embedding_cache_dir: str) -> dict[str, MIS]:
    """MIS-pixel fitted per mode."""
    return {
        mode: MIS(cache_dir=embedding_cache_dir).fit(sim_units.mode(mode).units, sim_units.mode(mode).accuracy)
        for mode in MODES
    }


@pytest.mark.parametrize("mode", MODES)
def test_mis_pixel_recovers_the_planted_accuracy(fitted_mis: dict[str, MIS], sim_units: SimUnits, mode: str) -> None:
    data = sim_units.mode(mode)
    predicted = fitted_mis[mode].predict(data.units)
    assert predicted.shape == (len(data.units),) and np.all((predicted >= 0) & (predicted <= 1))
    rho = stats.spearmanr(predicted, data.accuracy)[0]
    assert rho > 0.6, f"MIS-pixel Spearman with true accuracy ({mode}): {rho:.3f}"
    assert fitted_mis[mode].temperature_ > 0


def test_mis_on_shuffled_images_recovers_nothing(sim_units: SimUnits, embedding_cache_dir: str) -> None:
    """Reassigning every image to a random task slot breaks the link between a unit and its images."""
    paths = [p for u in sim_units.units for t in u.tasks for p in t.all_paths()]
    metric = MIS(cache_dir=embedding_cache_dir)
    rhos = []
    for seed in range(5):
        shuffled = iter(np.random.default_rng(seed).permutation(np.array(paths, dtype=object)))
        units = [replace(u, tasks=tuple(_refill(t, shuffled) for t in u.tasks)) for u in sim_units.units]
        score = [m.mean() for m in metric.task_margins(units)]
        rhos.append(stats.spearmanr(score, sim_units.accuracy)[0])
    assert abs(np.mean(rhos)) < 0.15 and max(map(abs, rhos)) < 0.35, rhos


def _refill(task: TaskStimuli, paths) -> TaskStimuli:  # noqa: ANN001 - an iterator of Paths
    k, m = len(task.max_references), len(task.min_references)
    return replace(
        task,
        max_references=tuple(next(paths) for _ in range(k)),
        min_references=tuple(next(paths) for _ in range(m)),
        max_query=next(paths),
        min_query=next(paths),
    )


def test_each_distinct_image_is_embedded_once(sim_units: SimUnits) -> None:
    data = sim_units.subset(12)
    distinct = {p for u in data.units for t in u.tasks for p in t.all_paths()}
    metric = MIS()
    metric.fit(data.units, data.accuracy)
    metric.predict(data.units)
    metric.task_margins(data.units)
    assert metric.embedding_cache.misses == len(distinct)
    assert metric.embedding_cache.hits == len(distinct)  # predict reuses the margins fit computed


def test_clones_sharing_a_cache_compute_each_units_margins_once(sim_units: SimUnits) -> None:
    data = sim_units.subset(12)
    template = MIS()
    computed: list[int] = []
    real = MIS.task_margins

    def counting(self: MIS, units: list[ProxyUnit]) -> list[np.ndarray]:
        computed.append(len(units))
        return real(self, units)

    MIS.task_margins = counting  # type: ignore[method-assign]
    try:
        fits = []
        for half in (data.units[:8], data.units[4:], data.units[::-1] + data.units[:3]):  # overlapping, repeated
            fitted = clone(template)
            fitted.share_embedding_cache(template.embedding_cache)
            fits.append(fitted.fit(half, np.full(len(half), 0.7)).predict(data.units))
    finally:
        MIS.task_margins = real  # type: ignore[method-assign]
    assert sum(computed) == len(data.units)  # every unit once, over all fits and predictions
    sharing = clone(template)
    sharing.share_embedding_cache(template.embedding_cache)
    assert sharing.get_embedder() is template.get_embedder()  # one embedder (and weights hash) for all clones
    assert MIS().get_embedder() is not template.get_embedder()
    fresh = MIS().fit(data.units[:8], np.full(8, 0.7))
    np.testing.assert_allclose(fits[0], fresh.predict(data.units))
    reordered = [replace(u, tasks=tuple(reversed(u.tasks))) for u in data.units[:2]]  # same unit, other tasks
    margins, _ = template.margins_by_task(reordered)
    np.testing.assert_allclose(margins, np.concatenate([m[::-1] for m in template.task_margins(data.units[:2])]))


def test_hard_variant_counts_tasks_with_positive_margin(sim_units: SimUnits, embedding_cache_dir: str) -> None:
    data = sim_units.subset(12)
    hard = make_proxy("mis-pixel-hard", cache_dir=embedding_cache_dir).fit(data.units, data.accuracy)
    assert hard.temperature_ == 0.0
    margins = hard.task_margins(data.units)
    expected = [np.mean(np.where(m > 0, 1.0, np.where(m == 0, 0.5, 0.0))) for m in margins]
    np.testing.assert_allclose(hard.predict(data.units), expected)


def test_predict_checks_fit_and_embedder(sim_units: SimUnits, embedding_cache_dir: str) -> None:
    data = sim_units.subset(6, n_tasks=1)
    metric = MIS(cache_dir=embedding_cache_dir)
    with pytest.raises(NotFittedError):
        metric.predict(data.units)
    metric.fit(data.units, data.accuracy)
    metric.set_params(embedder_params={"size": 8})
    with pytest.raises(NotFittedError, match="fit again"):
        metric.predict(data.units)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"embedder": "no-such-embedder"}, "Unknown embedder"),
        ({"embedder_params": {"sizee": 8}}, "sizee"),
        ({"embedder_params": [1]}, "embedder_params"),
        ({"hard": "yes"}, "hard"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_invalid_parameters_fail_at_fit(sim_units: SimUnits, params: dict, match: str) -> None:
    data = sim_units.subset(4, n_tasks=1)
    with pytest.raises((ConfigError, KeyError), match=match):
        MIS(**params).fit(data.units, data.accuracy)


def test_registered_variants_and_their_defaults() -> None:
    for name in ("mis", "mis-pixel", "mis-pixel-hard", "mis-clip", "mis-timm", "mis-dreamsim"):
        metric = make_proxy(name)
        assert isinstance(metric, MIS)
        assert clone(metric).get_params() == metric.get_params()
    assert make_proxy("mis-pixel-hard").hard is True
    clip = make_proxy("mis-clip")
    assert clip.embedder == "open_clip" and clip.embedder_params is None
    assert clip.resolved_embedder_params() == {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k"}
    assert make_proxy("mis-clip", embedder_params={"pretrained": None}).resolved_embedder_params()["pretrained"] is None
    assert {"mis", "mis-pixel", "mis-pixel-hard", "mis-clip", "mis-timm", "mis-dreamsim"} <= set(proxies.names())

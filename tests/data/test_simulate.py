"""Tests of the planted-observer simulator (benchmark.data.simulate)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pydantic import ValidationError
from scipy import stats

from benchmark.api.errors import ConfigError
from benchmark.data.exclusions import apply_exclusions
from benchmark.data.schema import canonicalize
from benchmark.data.simulate import (
    CATCH_MODEL,
    RELEASE_COLUMNS,
    TRUTH_COLUMNS,
    SimulatedRelease,
    SimulationConfig,
    expected_ceiling,
    population_accuracy,
    simulate_responses,
    write_release,
)

UNIT = ["model", "layer", "channel", "mode"]
TINY = SimulationConfig(models=("tiny",), layers_per_model=1, units_per_layer=2, n_batches=2, responses_per_unit=6)


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_release(tmp_path_factory.mktemp("release") / "sim")


@pytest.fixture(scope="module")
def simulated() -> SimulatedRelease:
    return simulate_responses()


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True)


# ------------------------------------------------------------------------------------------- responses


def test_same_seed_gives_identical_output_and_another_seed_does_not() -> None:
    a, b = simulate_responses(SimulationConfig(seed=3)), simulate_responses(SimulationConfig(seed=3))
    pd.testing.assert_frame_equal(a.responses, b.responses)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    c = simulate_responses(SimulationConfig(seed=4))
    assert not np.allclose(a.truth["clarity"], c.truth["clarity"])


def test_write_release_is_deterministic(tmp_path: Path) -> None:
    first, second = write_release(tmp_path / "a", TINY), write_release(tmp_path / "b", TINY)
    for relative in (
        "human_responses/responses_all.csv",
        "simulation/truth.csv",
        "image_data/imagenet_exemplars_file_map.json",
    ):
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    pngs = sorted(p.relative_to(first) for p in (first / "imagenet_train").rglob("*.png"))
    assert pngs and all((first / p).read_bytes() == (second / p).read_bytes() for p in pngs[:: max(len(pngs) // 10, 1)])


def test_in_memory_responses_match_written_csv(simulated: SimulatedRelease, release_dir: Path) -> None:
    written = _read_csv(release_dir / "human_responses" / "responses_all.csv")
    assert list(written.columns) == list(RELEASE_COLUMNS)
    assert len(written) == len(simulated.responses)
    assert written["correct"].sum() == simulated.responses["correct"].sum()
    truth = _read_csv(release_dir / "simulation" / "truth.csv")
    np.testing.assert_allclose(truth["true_accuracy"], simulated.truth["true_accuracy"])


@pytest.mark.parametrize("name", ["responses_main", "responses_lower_quality", "responses_all"])
def test_release_files_pass_canonicalize(release_dir: Path, name: str) -> None:
    raw = _read_csv(release_dir / "human_responses" / f"{name}.csv")
    trials, notes = canonicalize(raw, source=name)
    assert notes == []
    assert len(trials) == len(raw)
    expected = {"responses_main": {True}, "responses_lower_quality": {False}, "responses_all": {True, False}}[name]
    assert set(trials["passed_checks"].unique()) == expected


def test_in_memory_table_passes_canonicalize(simulated: SimulatedRelease) -> None:
    trials, _ = canonicalize(simulated.responses, source="simulated")
    assert len(trials) == len(simulated.responses)


def test_each_unit_mode_gets_exactly_the_requested_main_responses(release_dir: Path) -> None:
    trials, _ = canonicalize(_read_csv(release_dir / "human_responses" / "responses_all.csv"), source="all")
    kept, report = apply_exclusions(trials)
    counts = kept.groupby(UNIT).size()
    truth = _read_csv(release_dir / "simulation" / "truth.csv")
    assert len(counts) == len(truth)
    assert (counts == SimulationConfig().responses_per_unit).all()
    assert report.n_failed_checks > 0  # the failing participants' main trials were dropped, not counted


@pytest.mark.parametrize(
    "config",
    [
        SimulationConfig(responses_per_unit=7, trials_per_participant=40, units_per_layer=5, layers_per_model=1),
        SimulationConfig(responses_per_unit=3, trials_per_participant=1, modes=("optimized",), models=("m",)),
    ],
)
def test_balanced_assignment_when_trials_do_not_divide(config: SimulationConfig) -> None:
    responses = simulate_responses(config).responses
    main = responses[responses["passed_checks"] & ~responses["is_demo"] & ~responses["catch_trial"]]
    assert (main.groupby(UNIT).size() == config.responses_per_unit).all()
    per_participant = main.groupby("participant_id").size()
    assert per_participant.max() <= config.trials_per_participant
    # a participation covers one (model, mode) experiment, like a HIT
    assert (main.groupby("participant_id")[["model", "mode"]].nunique() == 1).all().all()


def test_participants_trials_and_release_conventions(simulated: SimulatedRelease) -> None:
    config, r = SimulationConfig(), simulated.responses
    passing = r.loc[r["passed_checks"], "participant_id"].unique()
    failing = r.loc[~r["passed_checks"], "participant_id"].unique()
    assert len(failing) == round(config.failed_participant_fraction * len(passing))
    assert set(passing).isdisjoint(failing)
    assert (r.groupby("participant_id")["task_id"].nunique() == 1).all()
    assert r["participant_id"].str.fullmatch(r"P\d{4}").all()
    assert not r["multi_participation"].any()
    assert (r["rt"] >= 1500).all()
    assert r["confidence"].between(1, 3).all() and r["button_pressed"].between(0, 5).all()
    assert ((r["choice"] == "b") == r["correct"]).all()

    catch = r[r["catch_trial"]]
    assert (catch["mode"] == "catch_trial").all() and (catch["model"] == CATCH_MODEL).all()
    assert (catch["batch"] == -1).all() and catch["channel"].isna().all()
    catch_accuracy = catch[catch["passed_checks"]].groupby("participant_id")["correct"].mean()
    assert (catch_accuracy >= 0.8).all()

    demo = r[r["is_demo"]]
    assert demo["channel"].isna().all() and demo["batch"].isna().all()
    per_participant = r.groupby("participant_id")["is_demo"].sum()
    assert (per_participant == config.demo_per_participant).all()
    assert r.loc[~r["is_demo"], "batch"].notna().all()
    main = r[~r["is_demo"] & ~r["catch_trial"]]
    assert main["batch"].between(0, config.n_batches - 1).all()
    assert set(main["batch"]) == set(range(config.n_batches))
    assert main.groupby(["model", "layer"])["channel"].nunique().eq(config.units_per_layer).all()


def test_truth_table(simulated: SimulatedRelease) -> None:
    config, truth = SimulationConfig(), simulated.truth
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    n_units = len(config.models) * config.layers_per_model * config.units_per_layer
    assert len(truth) == n_units * len(config.modes)
    assert not truth.duplicated(UNIT).any()
    assert truth["clarity"].between(0, 1).all()
    assert truth["true_accuracy"].between(config.accuracy_floor, config.accuracy_ceiling).all()
    assert truth["clarity"].max() - truth["clarity"].min() > 0.6  # from unclear to clear units


def test_population_accuracy_is_the_participant_average() -> None:
    t = np.array([0.5, 0.7, 0.95])
    np.testing.assert_allclose(population_accuracy(t, 0.0), t)
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.8, 400_000)
    monte_carlo = [np.mean(1 / (1 + np.exp(-(np.log(p / (1 - p)) + a)))) for p in t]
    np.testing.assert_allclose(population_accuracy(t, 0.8), monte_carlo, atol=2e-3)


def test_observed_accuracy_is_unbiased_for_true_accuracy() -> None:
    config = SimulationConfig(models=("m",), layers_per_model=2, units_per_layer=6, responses_per_unit=600)
    sim = simulate_responses(config)
    trials, _ = canonicalize(sim.responses, source="sim")
    kept, _ = apply_exclusions(trials)
    observed = kept.groupby(UNIT, as_index=False)["correct"].mean()
    truth = sim.truth.astype({"channel": "Int64"})
    merged = truth.merge(observed, on=UNIT)
    error = merged["correct"] - merged["true_accuracy"]
    se = np.sqrt(np.mean(merged["true_accuracy"] * (1 - merged["true_accuracy"]) / 600) / len(merged))
    assert abs(error.mean()) < 4 * se
    assert stats.pearsonr(merged["correct"], merged["true_accuracy"])[0] > 0.95


# ------------------------------------------------------------------------------------------- files and images


def test_file_layout_and_file_maps(release_dir: Path) -> None:
    config = SimulationConfig()
    for name in ("responses_main", "responses_lower_quality", "responses_all"):
        assert (release_dir / "human_responses" / f"{name}.csv").is_file()
    assert not list(release_dir.rglob("*.tmp"))
    assert json.loads((release_dir / "simulation" / "config.json").read_text()) == config.model_dump(mode="json")
    truth = _read_csv(release_dir / "simulation" / "truth.csv")
    natural = json.loads((release_dir / "image_data" / "imagenet_exemplars_file_map.json").read_text())
    optimized = json.loads((release_dir / "image_data" / "optimized_file_map.json").read_text())
    k = config.n_references
    natural_names = {f"{s}_{i}.png" for s in ("max", "min") for i in range(k + 1)}
    optimized_names = {f"{s}_{i}.png" for s in ("max", "min") for i in range(k)}
    units = truth[["model", "layer", "channel"]].drop_duplicates()
    assert sum(len(v) for v in natural.values()) == len(units)
    for unit in units.itertuples():
        key = f"{unit.layer}/channel_{unit.channel}"
        batches_nat, batches_opt = natural[unit.model][key], optimized[unit.model][key]
        assert set(batches_nat) == set(batches_opt) == {f"batch_{b}" for b in range(config.n_batches)}
        for batch in batches_nat.values():
            assert set(batch) == natural_names and len(batch) == 20
            assert all((release_dir / "imagenet_train" / p).is_file() for p in batch.values())
            assert all(Path(p).parent.name.startswith("n9") for p in batch.values())  # synset-like folder
        for batch in batches_opt.values():
            assert set(batch) == optimized_names
            assert all(p.startswith("optimized_images/") and (release_dir / p).is_file() for p in batch.values())
    some = next(iter(next(iter(natural.values())).values()))["batch_0"]["max_9.png"]
    with Image.open(release_dir / "imagenet_train" / some) as image:
        assert image.mode == "RGB" and image.size == (config.image_size, config.image_size)


def test_optimized_map_is_absent_without_optimized_mode(tmp_path: Path) -> None:
    root = write_release(tmp_path / "nat", TINY.model_copy(update={"modes": ("natural",)}))
    assert (root / "image_data" / "imagenet_exemplars_file_map.json").is_file()
    assert not (root / "image_data" / "optimized_file_map.json").exists()


def test_progress_bar_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_release(tmp_path / "p", TINY, progress=True)
    assert "unit" in capsys.readouterr().err


def _embed(images: np.ndarray) -> np.ndarray:
    """Tiny pixel embedding: mean colour + 4x4 downsampled pixels, centred and unit-normed."""
    size = images.shape[-2]
    f = size // 4
    down = images.reshape(*images.shape[:-3], 4, f, 4, f, 3).mean(axis=(-4, -2))
    vectors = np.concatenate([images.mean(axis=(-3, -2)), down.reshape(*images.shape[:-3], -1)], axis=-1) - 0.5
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _load_unit(root: Path, natural: dict, optimized: dict, unit: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Queries (B, 2, S, S, 3) and the references of the unit's mode (B, 2, K, S, S, 3) as floats in [0, 1]."""

    def load(path: Path) -> np.ndarray:
        return np.asarray(Image.open(path), dtype=float) / 255.0

    key = f"{unit['layer']}/channel_{unit['channel']}"
    nat = natural[unit["model"]][key]
    k = SimulationConfig().n_references
    sides = ("max", "min")
    queries = np.stack([[load(root / "imagenet_train" / b[f"{s}_{k}.png"]) for s in sides] for b in nat.values()])
    if unit["mode"] == "natural":
        folder, batches = root / "imagenet_train", nat.values()
    else:
        folder, batches = root, optimized[unit["model"]][key].values()
    paths = [[[folder / b[f"{s}_{i}.png"] for i in range(k)] for s in sides] for b in batches]
    references = np.stack([[np.stack([load(p) for p in side]) for side in batch] for batch in paths])
    return queries, references


def _pixel_mis(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """d = [s(q+,E+) - s(q+,E-)] - [s(q-,E+) - s(q-,E-)] with cosine similarity, averaged over batches.

    queries: (U, B, 2, E); references: (U, B, 2, K, E); side 0 is max (+), 1 is min (-).
    """
    s = np.einsum("ubqe,ubrke->ubqr", queries, references) / references.shape[3]
    d = (s[..., 0, 0] - s[..., 0, 1]) - (s[..., 1, 0] - s[..., 1, 1])
    return d.mean(axis=-1)


@pytest.fixture(scope="module")
def embedded(release_dir: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    truth = _read_csv(release_dir / "simulation" / "truth.csv")
    natural = json.loads((release_dir / "image_data" / "imagenet_exemplars_file_map.json").read_text())
    optimized = json.loads((release_dir / "image_data" / "optimized_file_map.json").read_text())
    loaded = [_load_unit(release_dir, natural, optimized, unit) for _, unit in truth.iterrows()]
    queries = np.stack([_embed(q) for q, _ in loaded])
    references = np.stack([_embed(r) for _, r in loaded])
    return truth, queries, references


@pytest.mark.parametrize("mode", ["natural", "optimized"])
def test_pixel_similarity_proxy_recovers_planted_accuracy(embedded, mode: str) -> None:
    truth, queries, references = embedded
    rows = (truth["mode"] == mode).to_numpy()
    rho = stats.spearmanr(_pixel_mis(queries[rows], references[rows]), truth.loc[rows, "true_accuracy"])[0]
    assert rho > 0.7, f"{mode}: Spearman {rho:.2f}"


def test_pixel_similarity_proxy_on_shuffled_images_recovers_nothing(embedded) -> None:
    truth, queries, references = embedded
    pool = np.concatenate([queries.reshape(-1, queries.shape[-1]), references.reshape(-1, references.shape[-1])])
    rng = np.random.default_rng(0)
    rhos = []
    for _ in range(10):
        shuffled = pool[rng.permutation(len(pool))]
        q = shuffled[: queries[..., 0].size].reshape(queries.shape)
        r = shuffled[queries[..., 0].size :].reshape(references.shape)
        rhos.append(stats.spearmanr(_pixel_mis(q, r), truth["true_accuracy"])[0])
    assert abs(np.mean(rhos)) < 0.15 and max(map(abs, rhos)) < 0.4, rhos


# ------------------------------------------------------------------------------------------- config and ceiling


@pytest.mark.parametrize(
    "bad",
    [
        {"units_per_layer": -1},
        {"layers_per_model": 0},
        {"responses_per_unit": 0},
        {"failed_participant_fraction": 1.5},
        {"participant_sd": -0.1},
        {"modes": ("natural", "synthetic")},
        {"modes": ()},
        {"models": ()},
        {"models": ("a", "a")},
        {"models": ("catch/manual",)},
        {"accuracy_floor": 0.9, "accuracy_ceiling": 0.8},
        {"accuracy_ceiling": 1.0},
        {"image_size": 4},
        {"unknown_field": 1},
    ],
)
def test_invalid_config_raises_validation_error(bad: dict) -> None:
    with pytest.raises(ValidationError):
        SimulationConfig(**bad)


def test_config_is_frozen() -> None:
    with pytest.raises(ValidationError):
        SimulationConfig().seed = 1  # type: ignore[misc]


def test_expected_ceiling_is_sane_and_grows_with_responses() -> None:
    ceilings = []
    for n in (5, 30, 300):
        truth = simulate_responses(SimulationConfig(responses_per_unit=n)).truth
        ceilings.append(expected_ceiling(truth, "natural"))
    assert all(0 < c < 1 for c in ceilings)
    assert ceilings == sorted(ceilings) and ceilings[-1] > 0.9
    with pytest.raises(ConfigError, match="catch_trial"):
        expected_ceiling(truth, "catch_trial")

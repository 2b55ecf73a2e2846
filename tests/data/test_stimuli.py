import json
import shutil

import pandas as pd
import pytest

from benchmark.api.errors import DataValidationError, SourceUnavailableError
from benchmark.data.schema import canonicalize
from benchmark.data.stimuli import IMAGENET_ENV, NATURAL_MAP, OPTIMIZED_MAP, StimulusIndex, load_stimulus


@pytest.fixture(scope="module")
def index(sim_release):
    return StimulusIndex.from_release(sim_release)


def test_task_has_nine_references_per_side_and_two_queries(index, sim_release):
    model, layer, channel = next(iter(index))
    task = index.task(model, layer, channel, batch=2)
    assert len(task.max_references) == len(task.min_references) == 9
    file_map = json.loads((sim_release / NATURAL_MAP).read_text())
    entry = file_map[model][f"{layer}/channel_{channel}"]["batch_2"]
    assert task.max_query == sim_release / "imagenet_train" / entry["max_9.png"]
    assert task.max_references[8] == sim_release / "imagenet_train" / entry["max_8.png"]
    assert task.min_query == sim_release / "imagenet_train" / entry["min_9.png"]
    assert not index.missing_files([task])


def test_optimized_tasks_take_references_from_the_optimized_map_and_natural_queries(index):
    model, layer, channel = next(iter(index))
    natural = index.task(model, layer, channel, 0, "natural")
    optimized = index.task(model, layer, channel, 0, "optimized")
    assert optimized.max_query == natural.max_query and optimized.min_query == natural.min_query
    assert set(optimized.max_references).isdisjoint(natural.max_references)
    assert not index.missing_files([optimized])


def test_every_main_trial_reaches_its_images(index, sim_release):
    raw = pd.read_csv(sim_release / "human_responses" / "responses_main.csv")
    trials, _ = canonicalize(raw, source="main", passed_checks_default=True)
    tasks = index.tasks_for_trials(trials)
    main = trials[~trials["is_demo"] & ~trials["catch_trial"]]
    assert len(tasks) == len(main[["model", "layer", "channel", "mode", "batch"]].drop_duplicates())
    assert not index.missing_files(list(tasks["stimuli"]))


def test_unit_tasks_are_ordered_by_batch(index):
    model, layer, channel = next(iter(index))
    assert [t.batch for t in index.unit_tasks(model, layer, channel)] == list(range(5))


def test_unknown_model_unit_or_batch_are_clear_errors(index):
    model, layer, channel = next(iter(index))
    with pytest.raises(DataValidationError, match="No natural stimuli for model 'simnet_z'.*Did you mean"):
        index.task("simnet_z", layer, channel, 0)
    with pytest.raises(DataValidationError, match="channel_9999"):
        index.task(model, layer, 9999, 0)
    with pytest.raises(DataValidationError, match="batch_17"):
        index.task(model, layer, channel, 17)


def test_missing_imagenet_folder_names_the_expected_path(sim_release, tmp_path, monkeypatch):
    monkeypatch.delenv(IMAGENET_ENV, raising=False)
    release = tmp_path / "release"
    (release / "image_data").mkdir(parents=True)
    shutil.copy(sim_release / NATURAL_MAP, release / NATURAL_MAP)
    with pytest.raises(SourceUnavailableError, match="--imagenet-root"):
        StimulusIndex.from_release(release)
    with pytest.raises(SourceUnavailableError, match=str(tmp_path / "nowhere")):
        StimulusIndex.from_release(release, imagenet_root=tmp_path / "nowhere")
    index = StimulusIndex.from_release(release, imagenet_root=sim_release / "imagenet_train")
    model, layer, channel = next(iter(index))
    with pytest.raises(SourceUnavailableError, match=str(OPTIMIZED_MAP)):
        index.task(model, layer, channel, 0, "optimized")


def test_missing_file_map_and_missing_image(tmp_path):
    with pytest.raises(SourceUnavailableError, match="imagenet_exemplars_file_map.json"):
        StimulusIndex.from_release(tmp_path)
    with pytest.raises(SourceUnavailableError, match="not found"):
        load_stimulus(tmp_path / "missing.png")


def test_load_stimulus_applies_the_study_transform(index):
    model, layer, channel = next(iter(index))
    path = index.task(model, layer, channel, 0).max_query
    assert load_stimulus(path).size == (224, 224)
    assert load_stimulus(path, resize=None, crop=None).size == (32, 32)
    assert load_stimulus(path).mode == "RGB"

import json

from benchmark.api.types import HumanDataOrigin, Protocol
from benchmark.results.comparability import comparability_of, compute_comparability
from benchmark.results.io import read_result, write_result
from tests.leaderboard.fixtures import MODELS, make_result, write_stimuli


def _result(tmp_path, **changes):
    ids = write_stimuli(tmp_path / "stimuli")
    return make_result(MODELS[0], tmp_path / "stimuli", ids).model_copy(update=changes)


def test_same_setup_same_key_and_every_part_changes_it(tmp_path):
    base = _result(tmp_path)
    key = compute_comparability(base)
    assert key == compute_comparability(make_result(MODELS[1], tmp_path / "stimuli", write_stimuli(tmp_path / "s2"))
                                        .model_copy(update={"protocol": base.protocol}))
    assert key.real_humans and key.human_data == "real: zenodo@v1"
    variants = {
        "version": base.model_copy(update={"benchmark_version": "0.2.0"}),
        "fitted params": base.model_copy(update={"proxy": base.proxy.model_copy(
            update={"fitted_params": {"temperature_": 0.2}})}),
        "proxy version": base.model_copy(update={"proxy": base.proxy.model_copy(update={"version": "2"})}),
        "human data": base.model_copy(update={"proxy": base.proxy.model_copy(update={"human_data": HumanDataOrigin(
            kind="real", source="zenodo:imi-release", revision="v2")})}),
        "images": base.model_copy(update={"protocol": base.protocol.model_copy(update={
            "image_source": base.protocol.image_source.model_copy(update={"revision": "r2"})})}),
        "query variant": base.model_copy(update={"protocol": base.protocol.model_copy(update={
            "task": Protocol(n_tasks=2, n_references=3, query_variant="hard95")})}),
        "unit sampling": base.model_copy(update={"protocol": base.protocol.model_copy(update={
            "unit_selection": {"per_layer": 10, "seed": 0}})}),
    }
    ids = {name: compute_comparability(result).id for name, result in variants.items()}
    assert key.id not in ids.values() and len(set(ids.values())) == len(ids)


def test_simulated_or_unknown_human_data_is_never_real(tmp_path):
    base = _result(tmp_path)
    simulated = base.model_copy(update={"proxy": base.proxy.model_copy(update={"human_data": HumanDataOrigin(
        kind="simulated", source="sim", simulator={"seed": 3, "version": "1"})})})
    unknown = base.model_copy(update={"proxy": base.proxy.model_copy(update={"human_data": None})})
    for result, text in ((simulated, "simulated: seed 3"), (unknown, "unknown")):
        key = compute_comparability(result)
        assert not key.real_humans and text in key.human_data and "DEMO" in key.label


def test_stored_key_round_trips_and_older_files_get_it_on_read(tmp_path):
    base = _result(tmp_path)
    stored = base.model_copy(update={"comparability": compute_comparability(base)})
    path = write_result(stored, tmp_path / "r.json")
    assert read_result(path).comparability == stored.comparability
    data = json.loads(path.read_text())
    del data["comparability"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    older = read_result(tmp_path / "old.json")
    assert older.comparability is None and comparability_of(older) == stored.comparability
    assert "/" not in compute_comparability(base).label.split("folder:")[1].split(" ")[0]  # no server path shown

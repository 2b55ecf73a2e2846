"""The sharded pass without Ray: shard plans, index-range loaders, the exact merge, spec jobs, no Ray import."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import permutations

import numpy as np
import pytest
import torch

from benchmark.activations.collect import collect_extremes, layer_selections
from benchmark.activations.extremes import ExtremeSets
from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.distributed.sharding import (
    SpecShardJob,
    merge_extremes,
    merge_states,
    plan_shards,
    run_shards_locally,
    states_of,
)
from benchmark.models.adapters import load_model
from benchmark.results.io import read_result
from benchmark.scoring.pipeline import score_submission
from benchmark.scoring.spec import model_spec_of, parse_spec
from benchmark.scoring.units import choose_units
from benchmark.stimuli.sources import make_loader, parse_image_source
from tests.distributed import REPO_ROOT, NoiseSource, TieJob, assert_same_sets, to_tensor
from tests.fast_spec import FAST_SPEC

SHARD_COUNTS = (1, 2, 3, 5)
K = 5  # images kept per side and unit in the timm tests


# ------------------------------------------------------------------------------------------------ planning


@pytest.mark.parametrize("n_images", [0, 1, 7, 37, 80, 81])
@pytest.mark.parametrize("n_shards", [1, 2, 3, 5, 100])
@pytest.mark.parametrize("align", [1, 4, 16])
def test_plan_covers_every_image_once_in_aligned_near_equal_shards(n_images, n_shards, align):
    shards = plan_shards(n_images, n_shards, align=align)
    assert [i for shard in shards for i in shard] == list(range(n_images))
    assert all(len(shard) > 0 and shard.step == 1 for shard in shards)
    assert len(shards) == min(n_shards, -(-n_images // align))
    assert all(shard.start % align == 0 for shard in shards)
    if len(shards) > 1:
        assert max(map(len, shards)) - min(map(len, shards)) <= align


@pytest.mark.parametrize("bad", [{"n_images": -1}, {"n_shards": 0}, {"align": 0}, {"n_shards": 2.0},
                                 {"n_images": True}])
def test_plan_rejects_bad_arguments(bad):
    with pytest.raises(ConfigError, match="plan_shards needs an integer"):
        plan_shards(**{"n_images": 10, "n_shards": 2, **bad})


# ------------------------------------------------------------------------------------------------ loaders


def test_loader_range_yields_global_ids_and_checks_bounds():
    source = NoiseSource(10)
    batches = list(make_loader(source, to_tensor, batch_size=3, start=2, stop=7))
    assert torch.cat([ids for _, ids in batches]).tolist() == [2, 3, 4, 5, 6]
    assert [len(ids) for _, ids in batches] == [3, 2]
    assert list(make_loader(source, to_tensor, batch_size=3, start=4, stop=4)) == []
    assert torch.cat([ids for _, ids in make_loader(source, to_tensor, batch_size=4, start=8)]).tolist() == [8, 9]
    for start, stop in ((5, 4), (0, 11), (0, -1)):
        with pytest.raises(ConfigError, match="stop="):
            make_loader(source, to_tensor, batch_size=2, start=start, stop=stop)


class _Streamed(NoiseSource):
    sequential_only = True

    def iter_images(self, start=0):
        self.read = []
        for i in range(start, len(self)):
            self.read.append(i)
            yield i, self.load(i)


def test_streamed_source_stops_at_stop_without_reading_further():
    source = _Streamed(10)
    ids = torch.cat([ids for _, ids in make_loader(source, to_tensor, batch_size=4, start=3, stop=6)])
    assert ids.tolist() == [3, 4, 5] and source.read == [3, 4, 5]


# ------------------------------------------------------------------------------------------------ merging


def _random_sets(n_units: int, k: int, ids: np.ndarray, seed: int) -> ExtremeSets:
    values = torch.from_numpy(np.random.default_rng(seed).integers(-3, 4, (len(ids), n_units)).astype(np.float32))
    sets = ExtremeSets(n_units, k)
    sets.update(values, torch.from_numpy(ids))
    return sets


def test_merge_is_order_and_grouping_free_and_equals_one_pass():
    ids = np.random.default_rng(0).permutation(60)
    parts = [{"a": _random_sets(5, 7, chunk, seed)} for seed, chunk in enumerate(np.array_split(ids, 4))]
    reference = merge_extremes(parts)["a"]
    for order in permutations(range(4)):
        assert merge_extremes([parts[i] for i in order])["a"] == reference
    folded = parts[0]["a"]
    for part in parts[1:]:
        folded = part["a"].merge(folded)
    assert folded == reference
    # the merge equals one pass over the same (value, id) rows
    single = ExtremeSets(5, 7)
    for seed, chunk in enumerate(np.array_split(ids, 4)):
        values = np.random.default_rng(seed).integers(-3, 4, (len(chunk), 5)).astype(np.float32)
        single.update(torch.from_numpy(values), torch.from_numpy(chunk))
    assert reference == single and reference.count == 60


def test_merge_states_round_trips_and_checks_layers():
    parts = [{"a": _random_sets(3, 4, np.arange(i * 10, i * 10 + 10), i)} for i in range(3)]
    assert merge_states([states_of(p) for p in parts])["a"] == merge_extremes(parts)["a"]
    with pytest.raises(ConfigError, match="at least one shard"):
        merge_extremes([])
    with pytest.raises(ConfigError, match="one layer selection"):
        merge_extremes([parts[0], {"b": parts[1]["a"]}])


@pytest.mark.parametrize("n_shards", SHARD_COUNTS)
@pytest.mark.parametrize("align", [1, 4])
def test_sharded_equals_single_pass_with_many_ties(n_shards, align):
    job = TieJob(n_images=37, k=6, batch_size=4)
    sharded = run_shards_locally(job, plan_shards(job.n_images, n_shards, align=align))
    want = job.single_pass()
    assert_same_sets(sharded, want)
    sets = want["units"]
    assert sets.nan_count[4] > 0 and bool(sets.is_constant()[3])  # the NaN and constant units are exercised
    top_ids = sets.top_ids[0].tolist()
    assert top_ids == sorted(top_ids)  # unit 0: all its top-6 values tie, so ids come in increasing order


# ------------------------------------------------------------------------------------------- spec shards


@pytest.fixture(scope="module")
def timm_pass():
    """A random-weight timm model on 24 bundled images: its loaded model, units, layers and the single pass."""
    spec = parse_spec({**FAST_SPEC, "images": "bundled:24", "batch_size": 8, "proxy": "unused.json"})
    loaded = load_model(model_spec_of(spec), device="cpu")
    source = parse_image_source(spec.images)
    units, layers = choose_units(loaded, spec.units)
    single = collect_extremes(loaded.module, layer_selections(units, layers),
                              make_loader(source, loaded.transform, batch_size=8), k=K, progress=False)
    return spec, loaded, source, units, layers, single


@pytest.mark.parametrize(("n_shards", "align"), [(1, 1), (2, 1), (3, 1), (5, 1), (3, 8)])
def test_spec_shards_equal_the_single_pass_of_a_timm_model(timm_pass, n_shards, align):
    spec, loaded, source, units, layers, single = timm_pass
    job = SpecShardJob.from_pass(loaded, source, units, layers, spec, k=K, work_dir=None)
    assert job.n_images == 24 and job.batch_size == 8
    assert_same_sets(run_shards_locally(job, plan_shards(24, n_shards, align=align)), single)


def test_spec_shard_refuses_other_weights_or_images(timm_pass):
    spec, loaded, source, units, layers, _ = timm_pass
    job = SpecShardJob.from_pass(loaded, source, units, layers, spec, k=K, work_dir=None)
    with pytest.raises(DataValidationError, match="other weights"):
        SpecShardJob(**{**job.__dict__, "weights_digest": "0" * 64}).run(range(8))
    with pytest.raises(DataValidationError, match="differs from the driver's"):
        SpecShardJob(**{**job.__dict__, "images_sha256": "f" * 64}).run(range(8))
    with pytest.raises(DataValidationError, match="computes on cpu but the driver on cuda"):
        SpecShardJob(**{**job.__dict__, "device_type": "cuda"}).run(range(8))


def test_spec_shard_checkpoints_its_range(timm_pass, tmp_path):
    spec, loaded, source, units, layers, _ = timm_pass
    job = SpecShardJob.from_pass(loaded, source, units, layers, spec, k=K, work_dir=tmp_path)
    first = job.run(range(8, 24))
    assert (tmp_path / "shards" / "activations.8-24.ckpt").is_file()
    again = job.run(range(8, 24))  # a re-run (e.g. a Ray retry) finds the complete checkpoint and returns it
    assert_same_sets(merge_states([again]), merge_states([first]))


def test_score_submission_with_a_delegated_pass_gives_the_same_result(tmp_path, fitted_proxy):
    calls = []

    def sharded_pass(loaded, source, units, layers, spec, *, k, work_dir, progress):
        calls.append(k)
        job = SpecShardJob.from_pass(loaded, source, units, layers, spec, k=k, work_dir=work_dir)
        return run_shards_locally(job, plan_shards(job.n_images, 3, align=1))

    spec = {**FAST_SPEC, "images": "bundled:50", "proxy": str(fitted_proxy)}  # 50: the protocol's minimum
    local = read_result(score_submission(parse_spec({**spec, "out": str(tmp_path / "local.json")}), progress=False))
    sharded = read_result(score_submission(parse_spec({**spec, "out": str(tmp_path / "sharded.json")}),
                                           progress=False, activation_pass=sharded_pass))
    assert calls and sharded.scores == local.scores


# ------------------------------------------------------------------------------------------- no Ray by default


_NO_RAY = """
import json, sys
from benchmark.cli.main import main
codes = [main(["queue", "run", "--queue", sys.argv[1], "--once"]),
         main(["queue", "run", "--queue", sys.argv[1], "--once", "--max-retries", "1"])]
try:
    main(["queue", "run", "--help"])
except SystemExit as done:
    codes.append(done.code)
print(json.dumps({"codes": codes, "ray": sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))}))
"""


def test_the_local_backend_never_imports_ray(tmp_path):
    (tmp_path / "queue").mkdir()
    run = subprocess.run([sys.executable, "-c", _NO_RAY, str(tmp_path / "queue")], capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=120, check=True)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report == {"codes": [0, 2, 0], "ray": []}
    assert "--max-retries only apply to --backend ray" in run.stderr
    assert "--backend {local,ray}" in run.stdout and "--num-gpus-per-task" in run.stdout


def test_the_ray_backend_without_ray_installed_says_how_to_install_it(tmp_path):
    (tmp_path / "queue").mkdir()
    code = ("import sys; sys.modules['ray'] = None; from benchmark.cli.main import main; "
            f"sys.exit(main(['queue', 'run', '--backend', 'ray', '--queue', {str(tmp_path / 'queue')!r}, '--once']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert run.returncode == 2 and "pip install 'imi-bench[ray]'" in run.stderr

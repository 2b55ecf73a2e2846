"""Small valid result files (and their stimuli) for the leaderboard tests, built with the schema's models."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmark.api.types import HumanDataOrigin, Protocol
from benchmark.results.io import write_result
from benchmark.results.schema import (
    ImageSourceInfo,
    LayerScore,
    ProtocolInfo,
    Provenance,
    ProxyInfo,
    ResultFile,
    Scores,
    SubmissionInfo,
    Summary,
    TaskImages,
    UnitScore,
)

N_TASKS = 2
N_REFERENCES = 3
LAYERS = ("layer1", "layer2", "layer3")
UNITS_PER_LAYER = 3
N_IMAGES = 2 * N_TASKS * (N_REFERENCES + 1)


@dataclass(frozen=True)
class FixtureModel:
    """What one fixture result file describes."""

    model: str
    source: str
    mean: float
    ci_low: float
    ci_high: float
    spec: dict
    date: str = "2025-01-02T03:04:05+00:00"
    benchmark_version: str = "0.1.0"
    proxy_version: str = "1"
    resolvable_images: bool = True
    humans: str = "real"  # "real", "simulated" or "" (origin not recorded)
    pretrained: bool = True


REAL = HumanDataOrigin(kind="real", source="zenodo:imi-release", revision="v1")
SIMULATED = HumanDataOrigin(kind="simulated", source="simulate:planted", simulator={"seed": 0, "version": "1"})


# Groups: the four Hub models, the untrained resnet18 and (same images) form the real group; my_net scored other
# images (its own group); sim_net's proxy was fitted on simulated humans (the demo group).
MODELS: tuple[FixtureModel, ...] = (
    FixtureModel("resnet50.a1_in1k", "timm", 0.85, 0.83, 0.87,
                 {"name": "ResNet-50 A1", "family": "resnet", "metadata": {"imagenet_top1": 80.4}}),
    FixtureModel("vit_b_16", "torchvision", 0.80, 0.78, 0.82, {"family": "vit", "imagenet_top1": 0.811}),
    FixtureModel("convnext_tiny.fb_in1k", "timm", 0.79, 0.77, 0.81, {"top1": "82.1"}),
    FixtureModel("ViT-B-32", "open_clip", 0.70, 0.68, 0.72, {"family": "clip"}),
    FixtureModel("my_net", "local", 0.65, 0.60, 0.70,
                 {"model": "local:ckpt/my_net.pt?arch=timm:resnet18", "name": "My ResNet-18",
                  "imagenet_top1": "unknown"}, resolvable_images=False),
    FixtureModel("resnet18", "timm", 0.60, 0.58, 0.62, {"family": "resnet"}, pretrained=False),
    FixtureModel("sim_net", "timm", 0.90, 0.88, 0.92, {"name": "SimNet"}, humans="simulated"),
)
REAL_GROUP = ("ResNet-50 A1", "vit_b_16", "convnext_tiny.fb_in1k", "ViT-B-32", "resnet18 (untrained)")
# A second, different file with the first model's submission id and benchmark version: a conflict.
OLDER = FixtureModel("resnet50.a1_in1k", "timm", 0.50, 0.45, 0.55, {"name": "ResNet-50 A1", "family": "resnet"},
                     date="2024-06-01T00:00:00+00:00")


def submission_id(model: FixtureModel) -> str:
    """The fixture's submission id."""
    return f"{model.source}:{model.model}"


def write_stimuli(folder: Path) -> list[str]:
    """Write N_IMAGES small coloured PNGs into `folder`; returns their ids (file names relative to `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for index in range(N_IMAGES):
        hue = int(255 * index / N_IMAGES)
        array = np.zeros((32, 32, 3), dtype=np.uint8)
        array[..., 0], array[..., 1], array[..., 2] = hue, 255 - hue, (index * 37) % 256
        array[8:24, 8:24] = 255 - array[8:24, 8:24]
        name = f"img_{index:03d}.png"
        Image.fromarray(array).save(folder / name)
        ids.append(name)
    return ids


def _tasks(ids: list[str], offset: int) -> list[TaskImages]:
    rotated = ids[offset % len(ids):] + ids[:offset % len(ids)]
    half = len(rotated) // 2
    top, bottom = rotated[:half], rotated[half:]
    tasks = []
    for task in range(N_TASKS):
        refs = N_REFERENCES
        tasks.append(
            TaskImages(
                max_references=top[task * refs:(task + 1) * refs],
                min_references=bottom[task * refs:(task + 1) * refs],
                max_query=top[N_TASKS * refs + task],
                min_query=bottom[N_TASKS * refs + task],
            )
        )
    return tasks


def make_result(model: FixtureModel, stimuli: Path, ids: list[str], *, seed: int = 0) -> ResultFile:
    """A valid result file for `model`, with unit scores spread around its mean."""
    rng = np.random.default_rng(seed)
    if model.resolvable_images:
        source = ImageSourceInfo(kind="folder", id=str(stimuli), n_images=len(ids))
        image_ids = ids
    else:
        source = ImageSourceInfo(kind="hf", id="imagenet-1k@validation", n_images=50000)
        image_ids = [f"val/n01440764/ILSVRC2012_val_{i:08d}.JPEG" for i in range(len(ids))]
    units, layers = [], []
    for depth, layer in enumerate(LAYERS):
        scores = np.clip(model.mean + rng.normal(0, 0.05, UNITS_PER_LAYER) + 0.03 * (depth - 1), 0, 1)
        for channel, score in enumerate(scores):
            task_scores = np.clip(score + rng.normal(0, 0.05, N_TASKS), 0, 1)
            units.append(UnitScore(layer=layer, channel=channel * 7, score=float(score),
                                   task_scores=[float(s) for s in task_scores],
                                   tasks=_tasks(image_ids, depth * 5 + channel)))
        layers.append(LayerScore(layer=layer, relative_depth=depth / (len(LAYERS) - 1), n_units=len(scores),
                                 mean=float(scores.mean()), p5=float(np.percentile(scores, 5)),
                                 ci_low=float(max(scores.mean() - 0.03, 0.0)),
                                 ci_high=float(min(scores.mean() + 0.03, 1.0))))
    return ResultFile(
        benchmark_version=model.benchmark_version,
        submission=SubmissionInfo(id=submission_id(model), source=model.source, model=model.model,
                                  n_parameters=25_557_032 if "resnet50" in model.model else None,
                                  spec={"model": f"{model.source}:{model.model}", "pretrained": model.pretrained,
                                        **model.spec}),
        protocol=ProtocolInfo(task=Protocol(n_tasks=N_TASKS, n_references=N_REFERENCES), image_source=source),
        proxy=ProxyInfo(name="mis", version=model.proxy_version, fitted_params={"temperature_": 0.1},
                        human_data={"real": REAL, "simulated": SIMULATED}.get(model.humans)),
        scores=Scores(
            model=Summary(n_units=len(units), mean=model.mean, p5=model.mean - 0.1,
                          ci_low=model.ci_low, ci_high=model.ci_high),
            layers=layers,
            units=units,
        ),
        provenance=Provenance(package_version="0.1.0", python_version="3.11.7", device="cpu", dtype="float32",
                              seed=0, wall_time_s=12.5, date=model.date,
                              command=f"imibench score --model {model.source}:{model.model} --images bundled"),
    )


def write_results(folder: Path, *, stimuli: Path | None = None, invalid: bool = True,
                  models: tuple[FixtureModel, ...] = MODELS, conflict: bool = False) -> Path:
    """Write the fixture result files (plus, if asked, a conflicting duplicate and two broken files) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    stimuli = stimuli or folder.parent / "stimuli"
    ids = write_stimuli(stimuli)
    for index, model in enumerate(models):
        name = model.model.replace("/", "_").replace(":", "_").replace("?", "_").replace("=", "_")
        write_result(make_result(model, stimuli, ids, seed=index), folder / f"{index:02d}_{name}.json")
    if conflict:
        write_result(make_result(OLDER, stimuli, ids, seed=99), folder / "99_older_resnet50.json")
    if invalid:
        (folder / "broken.json").write_text("{not json", encoding="utf-8")
        (folder / "wrong_schema.json").write_text(json.dumps({"schema_version": "1.0", "benchmark_version": 1}),
                                                  encoding="utf-8")
    return folder


# A stand-in for `imibench submit SPEC --queue DIR` (the real command is built elsewhere): a spec whose model has
# no SOURCE: prefix is refused on stderr with exit status 2; otherwise the spec is copied into the queue and the
# new entry is printed as JSON.
_STUB_SUBMIT = """
import json, pathlib, sys, yaml
spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
queue = pathlib.Path(sys.argv[sys.argv.index("--queue") + 1])
if ":" not in spec["model"]:
    sys.exit(f"imibench: error: invalid model spec {spec['model']!r}: expected SOURCE:NAME, e.g. timm:resnet50.a1_in1k")
queue.mkdir(parents=True, exist_ok=True)
(queue / "sub-0001.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
print("enqueued")
print(json.dumps({"id": "sub-0001", "state": "PENDING"}))
"""
STUB_SUBMIT_COMMAND: tuple[str, ...] = (sys.executable, "-c", _STUB_SUBMIT, "{spec}", "--queue", "{queue}")


def write_human_units(path: Path) -> Path:
    """A per-unit human accuracy table for the release model `resnet50` (matches resnet50.a1_in1k's units)."""
    rows = []
    rng = np.random.default_rng(3)
    for layer in LAYERS:
        for channel in range(UNITS_PER_LAYER):
            for mode, base in (("natural", 0.8), ("optimized", 0.7)):
                rows.append({"model": "resnet50", "layer": layer, "channel": channel * 7, "mode": mode,
                             "n_trials": 40, "accuracy": float(np.clip(base + rng.normal(0, 0.05), 0, 1))})
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def make_report(name: str, noise: float, *, seed: int = 0):
    """A valid metric validation report whose predictions are human accuracy plus `noise`-sized noise."""
    from benchmark.validation.report import (
        MetricInfo,
        MetricReport,
        ModeResult,
        SchemeInfo,
        Score,
        UnitPrediction,
        make_provenance,
    )

    rng = np.random.default_rng(seed)
    modes = []
    for mode in ("natural", "optimized"):
        human = np.random.default_rng(1 if mode == "natural" else 2).uniform(0.5, 1.0, 60)  # same units, same humans
        common = np.random.default_rng(7).normal(0, 0.05, 60)
        predicted = np.clip(human + common + rng.normal(0, noise, 60), 0, 1)
        r = float(np.corrcoef(human, predicted)[0, 1])
        predictions = [UnitPrediction(model=f"m{i % 3}", layer="l", channel=i, mode=mode, human=float(h),
                                      predicted=float(p), fold=i % 3) for i, (h, p) in enumerate(zip(human, predicted))]
        modes.append(ModeResult(mode=mode, n_units=60, n_models=3, n_folds=3,
                                headline=Score(value=r, ci_low=r - 0.05, ci_high=min(r + 0.05, 1.0)),
                                scores={"pearson": Score(value=r, ci_low=r - 0.05, ci_high=min(r + 0.05, 1.0))},
                                ceiling_normalised={"split_half": Score(value=r / 0.9)}, ceilings={}, per_model=[],
                                predictions=predictions, fitted_params={}))
    return MetricReport(metric=MetricInfo(name=name, class_path=f"x:{name}", version="1", params={}),
                        status="ok", scheme=SchemeInfo(name="lomo", seed=0, n_boot=100), modes=modes,
                        provenance=make_provenance(seed=0, wall_time_s=1.0))


def write_reports(folder: Path, *, human_data: bool = True) -> Path:
    """Two validation report folders (mis and a noisier `pixel` metric), each with a figure.

    With `human_data`, each report also carries the `human_data` origin (real) that validation reports record.
    """
    from benchmark.validation.report import write_report

    for name, noise in (("mis", 0.02), ("pixel", 0.2)):
        out = folder / name
        path = write_report(make_report(name, noise, seed=len(name)), out)
        if human_data:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["human_data"] = REAL.model_dump(mode="json")
            path.write_text(json.dumps(data), encoding="utf-8")
        Image.new("RGB", (40, 30), (200, 200, 255)).save(out / "validation.png")
    return folder


def write_queue(root: Path) -> Path:
    """A queue with one pending and one failed entry (with its reason)."""
    for state, entry_id, reason in (("pending", "sub-0002", None), ("failed", "sub-0003", "weights not found")):
        (root / state).mkdir(parents=True, exist_ok=True)
        (root / state / f"{entry_id}.json").write_text(json.dumps({
            "id": entry_id, "key": "k", "state": state.upper(), "created_at": "2025-01-0%sT00:00:00Z" % entry_id[-1],
            "spec": {"model": f"timm:model_{entry_id}", "submitter": "a"}, "attempts": 1, "reason": reason,
        }), encoding="utf-8")
    return root

"""Score one submission: model -> units -> streaming activations -> 2-AFC tasks -> proxy -> result file."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol as TypingProtocol

import numpy as np
import torch

from benchmark import __version__
from benchmark.activations.checkpoint import CheckpointConfig
from benchmark.activations.collect import collect_extremes, layer_selections
from benchmark.activations.extremes import ExtremeSets
from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.api.types import Protocol
from benchmark.models.adapters import LoadedModel, load_model
from benchmark.models.units import LayerInfo, UnitRef
from benchmark.proxies.base import ProxyMetric, ProxyUnit
from benchmark.proxies.fitted import FittedProxy, load_fitted_proxy
from benchmark.proxies.mis import MIS, margin_probability
from benchmark.results.io import write_result
from benchmark.results.provenance import collect_provenance
from benchmark.results.schema import (
    ImageSourceInfo,
    LayerScore,
    ProtocolInfo,
    ProxyInfo,
    ResultFile,
    Scores,
    SubmissionInfo,
    TaskImages,
    UnitScore,
)
from benchmark.scoring.aggregate import summarize_scores
from benchmark.scoring.spec import ScoreSpec, model_spec_of
from benchmark.scoring.stimuli import all_indices, materialise, proxy_unit
from benchmark.scoring.units import choose_units
from benchmark.stimuli.exemplars import HARD_QUERY_PERCENTILES, UnitTasks, build_tasks, required_per_side, unit_rng
from benchmark.stimuli.sources import ImageFolderSource, ImageSource, make_loader, parse_image_source

log = logging.getLogger(__name__)
RERUN_COMMAND = "imibench score --from-result RESULT.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


class ActivationPass(TypingProtocol):
    """Runs the activation pass of `score_submission`: per layer, the k most / least activating images per unit.

    The default is `local_activation_pass` (one streaming pass in this process); `benchmark.distributed` provides
    a sharded one (`RayActivationPass`). Implementations must return what the local pass would.
    """

    def __call__(
        self,
        loaded: LoadedModel,
        source: ImageSource,
        units: list[UnitRef],
        layers: list[LayerInfo],
        spec: ScoreSpec,
        *,
        k: int,
        work_dir: Path,
        progress: bool,
    ) -> dict[str, ExtremeSets]: ...


@dataclass(frozen=True)
class ScoredUnit:
    """A unit with its tasks, its score and per-task scores."""

    unit: UnitRef
    tasks: UnitTasks
    score: float
    task_scores: list[float]


def score_submission(
    spec: ScoreSpec, *, progress: bool = True, activation_pass: ActivationPass | None = None
) -> Path:
    """Score the model a spec names and write its result file atomically; returns the file's path.

    `activation_pass` replaces the local streaming pass (e.g. a sharded one over a Ray cluster); None: local.
    """
    start = time.perf_counter()
    metric, fitted = load_fitted_proxy(spec.proxy)  # fail fast, before any model or image is loaded
    device = resolve_device(spec.device)
    loaded = load_model(model_spec_of(spec), device=device)
    source = parse_image_source(spec.images)
    units, layers = choose_units(loaded, spec.units)
    submission = submission_info(loaded, spec)
    out = Path(spec.out) if spec.out else Path("results") / f"{submission.id}.json"
    work_dir = Path(spec.work_dir) if spec.work_dir else out.parent / f".{out.stem}.work"
    k, band = ranks_needed(spec.protocol, len(source))
    run_pass = activation_pass if activation_pass is not None else local_activation_pass
    extremes = run_pass(loaded, source, units, layers, spec, k=k, work_dir=work_dir, progress=progress)
    tasks, skipped = unit_tasks(units, extremes, spec, band)
    paths = materialise(source, all_indices(t for _, t in tasks), work_dir / "stimuli", progress=progress)
    proxy_units = [proxy_unit(submission.id, u.layer, u.channel, t, paths) for u, t in tasks]
    scored = score_units(metric, proxy_units, tasks)
    stimuli_dir = _relative_to(work_dir / "stimuli", out.parent) if not isinstance(source, ImageFolderSource) else None
    result = _result(spec, submission, source, layers, fitted, scored, skipped, device, start, stimuli_dir)
    write_result(result, out)
    log.info("Wrote %s (%d units, MIS %.3f)", out, result.scores.model.n_units, result.scores.model.mean)
    return out


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; an unavailable CUDA request is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"Unknown device {name!r}; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"Device {name!r} was requested but CUDA is not available here; use device: cpu or auto.")
    return device


def submission_info(loaded: LoadedModel, spec: ScoreSpec) -> SubmissionInfo:
    """Who is scored: a file-name-safe id from the model and its weights' identity."""
    weights = loaded.weights_sha256 or loaded.weights_id
    tag = loaded.weights_sha256[:12] if loaded.weights_sha256 else _UNSAFE.sub("_", loaded.weights_id)[:40]
    return SubmissionInfo(
        id=_UNSAFE.sub("_", f"{loaded.spec.source}-{loaded.spec.arch_name}-{tag}"),
        source=loaded.spec.source,
        model=loaded.spec.arch_name,
        weights_sha256=loaded.weights_sha256,
        weights_id=weights if loaded.weights_sha256 is None else None,
        revision=loaded.spec.revision,
        n_parameters=loaded.n_parameters,
        spec=spec.model_dump(mode="json"),
    )


def ranks_needed(protocol: Protocol, n_images: int) -> tuple[int, tuple[int, int] | None]:
    """How many ranks per side the activation pass keeps, and the hard-query rank band [lo, hi) if any."""
    need = required_per_side(protocol)
    if protocol.query_variant == "extreme":
        if n_images < 2 * need:
            raise DataValidationError(
                f"The image source has {n_images} images, but the protocol needs the {need} most and {need} least "
                f"activating per unit: use at least {2 * need} images or lower n_tasks/n_references."
            )
        return need, None
    rank = round(HARD_QUERY_PERCENTILES[protocol.query_variant] * n_images)
    lo = rank - protocol.n_tasks // 2
    if lo < need or 2 * (lo + protocol.n_tasks) > n_images:
        raise DataValidationError(
            f"Query variant {protocol.query_variant!r} takes queries around rank {rank} of {n_images} images, which "
            f"must lie beyond the {need} reference ranks on each side; use a larger image source (at least "
            f"{int(np.ceil((need + protocol.n_tasks) / HARD_QUERY_PERCENTILES[protocol.query_variant]))} images)."
        )
    return lo + protocol.n_tasks, (lo, lo + protocol.n_tasks)


def local_activation_pass(
    loaded: LoadedModel,
    source: ImageSource,
    units: list[UnitRef],
    layers: list[LayerInfo],
    spec: ScoreSpec,
    *,
    k: int,
    work_dir: Path,
    progress: bool,
) -> dict[str, ExtremeSets]:
    """The default activation pass: one streaming pass over the whole source in this process, checkpointed."""
    pin = loaded.device.type == "cuda"
    checkpoint = CheckpointConfig(
        work_dir / "activations.ckpt",
        run_info={
            "model": loaded.spec.to_string(),
            "weights": loaded.weights_sha256 or loaded.weights_id,
            "images": source.describe().get("ids_sha256"),
            "n_images": len(source),
        },
    )
    return collect_extremes(
        loaded.module,
        layer_selections(units, layers),
        lambda start: make_loader(source, loaded.transform, batch_size=spec.batch_size,
                                  num_workers=spec.num_workers, pin_memory=pin, start=start),
        k=k,
        device=loaded.device,
        dtype=None if spec.dtype == "auto" else getattr(torch, spec.dtype),
        checkpoint=checkpoint,
        progress=progress,
    )


def unit_tasks(
    units: list[UnitRef], extremes: dict[str, ExtremeSets], spec: ScoreSpec, band: tuple[int, int] | None
) -> tuple[list[tuple[UnitRef, UnitTasks]], list[dict[str, object]]]:
    """Each non-constant unit's tasks by the protocol, and the skipped units with their reason."""
    position = {layer: 0 for layer in extremes}
    tasks, skipped = [], []
    for unit in units:
        sets, row = extremes[unit.layer], position[unit.layer]
        position[unit.layer] += 1
        if bool(sets.is_constant(spec.protocol.constant_unit_tolerance)[row]):
            skipped.append({"layer": unit.layer, "channel": unit.channel, "reason": "constant activation"})
            continue
        top = sets.top_ids[row].cpu().numpy()
        bottom = sets.bottom_ids[row].cpu().numpy()
        hard = (top[band[0]:band[1]], bottom[band[0]:band[1]]) if band else None
        rng = unit_rng(spec.seed, unit.layer, unit.channel)
        tasks.append((unit, build_tasks(top, bottom, spec.protocol, rng=rng, hard_queries=hard)))
    if not tasks:
        raise DataValidationError("Every sampled unit has a constant activation; nothing can be scored.")
    return tasks, skipped


def score_units(
    metric: ProxyMetric, proxy_units: list[ProxyUnit], tasks: list[tuple[UnitRef, UnitTasks]]
) -> list[ScoredUnit]:
    """Each unit's proxy score and, for MIS, its per-task probabilities."""
    scores = metric.predict(proxy_units)
    if isinstance(metric, MIS):
        per_task = [margin_probability(m, metric.temperature_, metric.hard) for m in metric.task_margins(proxy_units)]
    else:
        per_task = [np.empty(0)] * len(proxy_units)
    return [
        ScoredUnit(unit, unit_tasks, float(score), [float(p) for p in task_scores])
        for (unit, unit_tasks), score, task_scores in zip(tasks, scores, per_task)
    ]


def _result(
    spec: ScoreSpec,
    submission: SubmissionInfo,
    source: ImageSource,
    layers: list[LayerInfo],
    fitted: FittedProxy,
    scored: list[ScoredUnit],
    skipped: list[dict[str, object]],
    device: torch.device,
    start: float,
    stimuli_dir: str | None,
) -> ResultFile:
    ids = source.ids()
    described = source.describe()
    info = {layer.name: layer for layer in layers}
    units = [
        UnitScore(layer=s.unit.layer, channel=s.unit.channel, score=s.score, task_scores=s.task_scores,
                  tasks=_task_images(s.tasks, ids))
        for s in scored
    ]
    layer_scores = []
    for name in dict.fromkeys(s.unit.layer for s in scored):
        values = np.array([s.score for s in scored if s.unit.layer == name])
        summary = summarize_scores(values, seed=spec.seed)
        layer_scores.append(LayerScore(layer=name, relative_depth=info[name].relative_depth, kind=info[name].kind,
                                       **summary.model_dump()))
    return ResultFile(
        benchmark_version=__version__,
        submission=submission,
        protocol=ProtocolInfo(
            task=spec.protocol,
            image_source=ImageSourceInfo(kind=described["kind"], id=_source_id(spec.images, described),
                                         n_images=len(source), revision=described.get("revision"),
                                         ids_sha256=described.get("ids_sha256"), stimuli_dir=stimuli_dir),
            unit_selection=spec.units.model_dump(mode="json"),
        ),
        proxy=ProxyInfo(name=fitted.name, version=fitted.version, params=fitted.params,
                        fitted_params=fitted.fitted_params, validation=fitted.validation,
                        human_data=fitted.human_data),
        scores=Scores(model=summarize_scores(np.array([s.score for s in scored]), seed=spec.seed),
                      layers=layer_scores, units=units, skipped_units=skipped),
        provenance=collect_provenance(
            device=str(device), dtype=_compute_dtype(spec.dtype, device), seed=spec.seed, wall_time_s=time.perf_counter() - start,
            dataset_revisions={"images": described, "proxy_fitted_on": fitted.data},
            command=RERUN_COMMAND,
        ),
    )


def _compute_dtype(requested: str, device: torch.device) -> str:
    if requested != "auto":
        return requested
    return "bfloat16 (autocast)" if device.type == "cuda" else "float32"


def _relative_to(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path.resolve())


def _source_id(spec_images: str, described: dict) -> str:
    return str(described["root"]) if described.get("kind") == "folder" else spec_images


def _task_images(tasks: UnitTasks, ids: list[str]) -> list[TaskImages]:
    return [
        TaskImages(
            max_references=[ids[int(i)] for i in tasks.max_references[b]],
            min_references=[ids[int(i)] for i in tasks.min_references[b]],
            max_query=ids[int(tasks.max_queries[b])],
            min_query=ids[int(tasks.min_queries[b])],
        )
        for b in range(tasks.n_tasks)
    ]

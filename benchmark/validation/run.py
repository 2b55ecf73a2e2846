"""The whole validation pipeline behind `imibench proxy validate`: configuration, data, metrics, outputs.

`run_validation(config)` loads and summarises the human data, builds the units, picks the metrics (those
named, or every registered one that can run offline), validates each and, with `config.out`, writes the reports,
figures and the comparison table.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tqdm.auto import tqdm

from benchmark.api.errors import ConfigError, ImiBenchError, SourceUnavailableError
from benchmark.api.types import HumanDataOrigin, NoiseCeiling
from benchmark.proxies.base import ProxyMetric, ProxyUnit, proxies
from benchmark.proxies.mis import EmbeddingMixin
from benchmark.proxies.plugins import load_metric
from benchmark.validation.compare import all_comparisons
from benchmark.validation.harness import _missing_reason, validate_metric
from benchmark.validation.human import align_human, ceilings_from_summary
from benchmark.validation.inference import SplitHalves
from benchmark.validation.report import (
    MAX_REFITS,
    DataProvenance,
    MetricInfo,
    MetricReport,
    SchemeInfo,
    ValidationReport,
    make_provenance,
    write_report,
)
from benchmark.validation.splits import check_scheme
from benchmark.validation.tables import comparison_table


class ValidationConfig(BaseModel):
    """Everything `imibench proxy validate` needs; build it with `build_config` for one-line errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="human responses, as for `imibench data summary --source`")
    responses: str = "main"
    imagenet_root: Path | None = None
    metrics: tuple[str, ...] | None = Field(None, description="registry names or module:Name; None = all that run")
    scheme: str = "lomo"
    k: int = Field(5, ge=2)
    n_boot: int = Field(1000, ge=0, description="cluster-bootstrap replicates for CIs and p-values (0: none)")
    n_permutations: int = Field(0, ge=0, description="within-mode permutations (proxy refitted on each) for the "
                                                     "headline's p-value; 0: the bootstrap-t p-value")
    n_refits: int = Field(200, ge=0, le=MAX_REFITS, description="cluster resamples on which a fitted proxy is refitted for its "
                                                 "headline CI (0: predictions held fixed; too narrow)")
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    seed: int = Field(0, ge=0)
    out: Path | None = None
    progress: bool = True
    models: tuple[str, ...] | None = Field(None, description="only these models (None: all with stimuli)")
    modes: tuple[str, ...] | None = Field(None, description="only these modes (None: all with stimuli)")
    keep_repeat_participants: bool = False
    trust_pickle: bool = Field(False, description="read pickled response tables (data types only)")

    @field_validator("modes")
    @classmethod
    def _known_modes(cls, modes: tuple[str, ...] | None) -> tuple[str, ...] | None:
        from benchmark.data.selection import check_modes

        return check_modes(modes)

    @field_validator("scheme")
    @classmethod
    def _known_scheme(cls, scheme: str) -> str:
        return check_scheme(scheme)

    @field_validator("responses")
    @classmethod
    def _known_responses(cls, responses: str) -> str:
        from benchmark.data.sources import check_responses

        return check_responses(responses)

    @field_validator("metrics")
    @classmethod
    def _distinct_metrics(cls, metrics: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if metrics is None:
            return None
        if not metrics or any(not m.strip() for m in metrics):
            raise ConfigError(f"metrics {list(metrics)} has an empty name; list names like mis-pixel,noise.")
        repeated = sorted({m for m in metrics if metrics.count(m) > 1})
        if repeated:
            raise ConfigError(f"metrics lists {repeated} more than once; list each metric once.")
        return metrics


def build_config(**options: Any) -> ValidationConfig:
    """A validated ValidationConfig; invalid options raise ConfigError with a one-line message."""
    try:
        return ValidationConfig(**options)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            field = ".".join(str(p) for p in error["loc"]) or "config"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{field}={error.get('input')!r}: {message}")
        raise ConfigError("Invalid validation setting(s): " + "; ".join(problems)) from None


@dataclass(frozen=True)
class PreparedData:
    """Units, the human table aligned to them, ceilings and the data's provenance."""

    units: list[ProxyUnit]
    human: pd.DataFrame
    ceilings: dict[str, dict[str, NoiseCeiling]]
    data: DataProvenance
    unavailable: tuple[Any, ...] = ()  # benchmark.data.stimulus_check.Unavailable: left out for lack of stimuli
    split_halves: dict[str, SplitHalves] | None = None
    origin: HumanDataOrigin | None = None  # real release or simulated (from the loader)


def prepare_data(config: ValidationConfig) -> PreparedData:
    """Load and summarise the human data and build the units (with activation maps for a simulated release)."""
    from benchmark.data.sources import load_trials
    from benchmark.data.stimuli import StimulusIndex
    from benchmark.data.stimulus_check import check_files, missing_files_error, split_available, task_paths
    from benchmark.data.summary import summarize
    from benchmark.proxies.units import build_units

    loaded = load_trials(config.source, responses=config.responses, progress=config.progress,
                         trust_pickle=config.trust_pickle)
    if loaded.release_root is None:
        raise SourceUnavailableError(
            f"The source {config.source!r} has responses but no stimuli (no image_data/ folder), and proxies "
            "predict from the images humans saw. Pass a release folder, zenodo:DIR or a Hub dataset with images."
        )
    summary = summarize(loaded.trials, source=loaded.source, notes=loaded.notes, seed=config.seed,
                        models=config.models, modes=config.modes, keep_repeats=config.keep_repeat_participants,
                        origin=loaded.origin)
    index = StimulusIndex.from_release(loaded.release_root, imagenet_root=config.imagenet_root)
    table, unavailable = split_available(index, summary.units, models=config.models, modes=config.modes)
    rows = table[["model", "layer", "channel", "mode"]].itertuples(index=False)
    check = check_files(task_paths(t for r in rows for t in index.unit_tasks(r.model, r.layer, int(r.channel),
                                                                            r.mode)), progress=config.progress)
    if not check.ok:  # every requested metric needs every image: stop before any runs
        raise missing_files_error(check, index.imagenet_root)
    maps, maps_name = _activation_map_source(loaded.release_root)
    units = build_units(index, table, activation_maps=maps)
    data = DataProvenance(source=loaded.source, revision=loaded.revision, files=dict(loaded.files),
                          responses=config.responses, activation_maps=maps_name)
    halves = split_halves_by_mode(loaded.trials, units, seed=config.seed,
                                  keep_repeats=config.keep_repeat_participants)
    return PreparedData(units, align_human(units, table), ceilings_from_summary(summary), data,
                        tuple(unavailable), halves, origin_of(loaded))


def origin_of(loaded: Any) -> HumanDataOrigin:
    """Where the loaded trials come from: the loader's origin, else the release's simulator marker, else real."""
    from benchmark.data.simulate import simulation_origin

    origin = getattr(loaded, "origin", None)
    if origin is not None:
        return origin
    if loaded.release_root is not None:
        simulated = simulation_origin(loaded.release_root, loaded.source)
        if simulated is not None:
            return simulated
    return HumanDataOrigin(kind="real", source=loaded.source, revision=loaded.revision)


SPLIT_HALF_SPLITS = 50


def split_halves_by_mode(trials: pd.DataFrame, units: Sequence[ProxyUnit], *, seed: int = 0,
                         n_splits: int = SPLIT_HALF_SPLITS, keep_repeats: bool = False) -> dict[str, SplitHalves]:
    """Participant split-half accuracies per mode, aligned to that mode's units in the order of `units`."""
    from benchmark.data.aggregate import split_half_accuracies
    from benchmark.data.exclusions import apply_exclusions

    kept, _ = apply_exclusions(trials, keep_repeats=keep_repeats)
    result = {}
    for mode in sorted({u.mode for u in units}):
        table, a, b = split_half_accuracies(kept, mode=mode, n_splits=n_splits, seed=seed)
        column = {(str(m), str(layer), int(c)): i for i, (m, layer, c) in
                  enumerate(zip(table["model"], table["layer"], table["channel"]))}
        columns = np.array([column[(u.model, u.layer, int(u.channel))] for u in units if u.mode == mode])
        result[mode] = SplitHalves(a[:, columns], b[:, columns])
    return result


SIMULATION_TRUTH = Path("simulation") / "truth.csv"


def _activation_map_source(release_root: Path) -> tuple[Any, str | None]:
    """SimulatedActivationMaps for a simulated release (it has simulation/truth.csv); None for a real one."""
    if not (release_root / SIMULATION_TRUTH).is_file():
        return None, None
    from benchmark.data.simulate import SimulatedActivationMaps

    return SimulatedActivationMaps(release_root), f"SimulatedActivationMaps({release_root})"


def load_metrics(names: Sequence[str]) -> list[tuple[str, ProxyMetric]]:
    """(name, instance) of each registry name or `module:Name` spec; an unknown name raises with "did you mean"."""
    return [(name, load_metric(name)) for name in names]


def default_metrics(units: Sequence[ProxyUnit]) -> tuple[list[tuple[str, ProxyMetric]], list[tuple[str, type, str]]]:
    """Every registered metric that can run offline on `units`, and (name, class, reason) of those that cannot.

    Each is constructed, its inputs are checked, and an embedding metric embeds one of the images with the
    Hugging Face Hub in offline mode (local cache only), so absent weights are found at once, not after retries.
    """
    runnable, skipped = [], []
    for name in proxies.names():
        try:
            metric = load_metric(name)
        except ImiBenchError as err:
            skipped.append((name, proxies.get(name), f"cannot be constructed: {err}"))
            continue
        reason = offline_problem(metric, units)
        if reason is None:
            runnable.append((name, metric))
        else:
            skipped.append((name, type(metric), reason))
    return runnable, skipped


def offline_problem(metric: ProxyMetric, units: Sequence[ProxyUnit]) -> str | None:
    """Why `metric` cannot run offline on `units` (missing inputs, weights or packages), or None if it can."""
    missing = metric.missing_inputs(units)
    if missing:
        return _missing_reason(missing)
    if not isinstance(metric, EmbeddingMixin):
        return None
    image = next((task.max_query for unit in units for task in unit.tasks), None)
    if image is None:
        return "the units carry no stimulus images to embed"
    try:
        with _hub_offline():
            metric.embedding_cache.embed_paths(metric.get_embedder(), [image], batch_size=1)
    except ImiBenchError as err:
        return f"cannot run offline: {err}"
    return None


@contextmanager
def _hub_offline() -> Iterator[None]:
    """Hugging Face Hub look-ups use the local cache only inside this block (restored afterwards)."""
    import huggingface_hub.constants as hub_constants

    previous = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = previous


def run_validation(config: ValidationConfig, prepared: PreparedData | None = None) -> list[MetricReport]:
    """Load the data (unless `prepared` is given), validate the metrics, and (with config.out) write the outputs."""
    start = time.perf_counter()
    explicit = load_metrics(config.metrics) if config.metrics is not None else None  # fail fast on bad names
    prepared = prepared if prepared is not None else prepare_data(config)
    runnable, skipped = (explicit, []) if explicit is not None else default_metrics(prepared.units)
    options = dict(scheme=config.scheme, k=config.k, n_boot=config.n_boot, confidence=config.confidence,
                   seed=config.seed, data=prepared.data, n_permutations=config.n_permutations,
                   split_halves=prepared.split_halves, human_data=prepared.origin, n_refits=config.n_refits)
    reports = []
    for name, metric in tqdm(runnable, desc="metrics", unit="metric", disable=not config.progress):
        reports.append(validate_metric(metric, prepared.units, prepared.human, prepared.ceilings,
                                       progress=config.progress, name=name, **options))
    reports += [_skipped_report(name, cls, reason, config, prepared.data, prepared.origin)
                for name, cls, reason in skipped]
    if config.out is not None:
        write_outputs(reports, config, wall_time_s=time.perf_counter() - start, data=prepared.data,
                      unavailable=prepared.unavailable, human_data=prepared.origin)
    return reports


def _skipped_report(name: str, cls: type, reason: str, config: ValidationConfig, data: DataProvenance,
                    origin: HumanDataOrigin | None = None) -> MetricReport:
    info = MetricInfo(name=name, class_path=f"{cls.__module__}:{cls.__qualname__}",
                      version=str(getattr(cls, "version", "?")), params={},
                      requires=sorted(getattr(cls, "requires", ())))
    scheme = SchemeInfo(name=config.scheme, k=config.k if config.scheme == "kfold" else None, seed=config.seed,
                        n_boot=config.n_boot, confidence=config.confidence, n_permutations=config.n_permutations,
                        n_refits=config.n_refits)
    return MetricReport(metric=info, status="skipped", skip_reason=reason, scheme=scheme, human_data=origin,
                        provenance=make_provenance(seed=config.seed, wall_time_s=0.0, data=data))


def metric_folder(name: str) -> str:
    """A file-system-safe folder name for a metric name or `module:Name` plugin spec."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("._") or "metric"


def write_outputs(
    reports: Sequence[MetricReport], config: ValidationConfig, *, wall_time_s: float, data: DataProvenance,
    unavailable: Sequence[Any] = (), human_data: HumanDataOrigin | None = None,
) -> dict[str, Path]:
    """Write DIR/<metric>/report.json (+ validation.png), DIR/comparison.csv, DIR/comparison.png, DIR/report.json,
    DIR/unavailable.csv (models/modes left out for lack of stimuli) and, with two or more validated metrics,
    DIR/paired.csv (paired comparisons, also in DIR/report.json)."""
    from benchmark.validation.plots import plot_validation

    if config.out is None:
        raise ConfigError("write_outputs needs config.out: pass --out DIR.")
    out = Path(config.out)
    written: dict[str, Path] = {}
    for report in reports:
        folder = out / metric_folder(report.metric.name)
        written[f"{report.metric.name}/report.json"] = write_report(report, folder)
        if report.status == "ok":
            written[f"{report.metric.name}/validation.png"] = plot_validation(report, folder / "validation.png")
    written["comparison.csv"] = _write_csv(comparison_table(reports), out / "comparison.csv")
    if unavailable:  # models / modes left out for lack of stimuli, with the reason
        rows = pd.DataFrame([{"model": u.model, "mode": u.mode, "n_units": u.n_units, "reason": u.reason}
                             for u in unavailable])
        written["unavailable.csv"] = _write_csv(rows, out / "unavailable.csv")
    if any(r.status == "ok" for r in reports):
        written["comparison.png"] = plot_validation(list(reports), out / "comparison.png")
    comparisons = all_comparisons(reports, n_boot=config.n_boot, confidence=config.confidence, seed=config.seed)
    if comparisons:
        written["paired.csv"] = _write_csv(pd.DataFrame([c.model_dump() for c in comparisons]), out / "paired.csv")
    run = ValidationReport(
        config=config.model_dump(mode="json"), metrics=list(reports), comparisons=comparisons, human_data=human_data,
        provenance=make_provenance(seed=config.seed, wall_time_s=wall_time_s, data=data),
    )
    written["report.json"] = write_report(run, out)
    return written


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def describe_metrics() -> str:
    """One line per registered proxy metric: name, version, requirements, parameters and summary."""
    import inspect

    lines = []
    for name in proxies.names():
        cls = proxies.get(name)
        defaults = {
            p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.default is not inspect.Parameter.empty
        }
        requires = ", ".join(sorted(cls.requires)) or "images only"
        summary = (inspect.getdoc(cls) or "").splitlines()[0] if inspect.getdoc(cls) else ""
        params = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none"
        lines.append(f"{name}  (v{cls.version}; requires: {requires})\n    {summary}\n    params: {params}")
    return "\n".join(lines) if lines else "(no proxy metrics registered)"

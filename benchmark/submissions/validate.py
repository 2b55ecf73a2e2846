"""Validate a submission before any GPU time: schema, no remote code, the proxy, the model on a few images, duplicates.

The submission key is `MODEL_ID@WEIGHTS`: MODEL_ID is `SOURCE:ARCH` of the architecture and WEIGHTS is, in order
of preference, `sha256:HEX` of the weights file, the weights id the loader resolved (e.g. the timm tag), `rev:R`
of a pinned Hub revision, `random-init` for pretrained: false. Without the model check (an operator's
`--skip-model-check`) only what the spec states is used, so a duplicate stated differently can slip through.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.api.errors import ConfigError, DataValidationError, ImiBenchError, SourceUnavailableError
from benchmark.scoring.spec import model_spec_of
from benchmark.submissions.queue import QueueEntry, State, SubmissionQueue, duplicate_message
from benchmark.submissions.spec import (
    REMOTE_CODE_FIX,
    REMOTE_CODE_MARKER,
    SubmissionSpec,
    load_submission,
    parse_submission,
    resolve_paths,
)

logger = logging.getLogger(__name__)

HUB_PREFIX = "hf-hub:"
HUB_CONFIG_FILES = {"timm": "config.json", "open_clip": "open_clip_config.json"}
REMOTE_CODE_CONFIG_KEYS = ("auto_map", "custom_pipelines", REMOTE_CODE_MARKER)


@dataclass(frozen=True)
class ModelCheck:
    """What loading the model and a forward pass on a few images showed."""

    model_id: str
    weights: str
    n_images: int
    output_shape: tuple[int, ...]
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidatedSubmission:
    """A submission that passed every check, with its duplicate key; ready for `SubmissionQueue.enqueue`."""

    spec: SubmissionSpec
    key: str
    model_id: str
    weights: str
    model_check: ModelCheck | None

    def checks(self) -> dict[str, Any]:
        """What was checked, for the queue file."""
        if self.model_check is None:
            return {"model_checked": False}
        check = self.model_check
        return {"model_checked": True, "n_images": check.n_images, "output_shape": list(check.output_shape),
                "seconds": round(check.seconds, 2), **check.details}


ModelChecker = Callable[[SubmissionSpec, int], ModelCheck]
HubConfigFetcher = Callable[[str, str, str | None], Mapping[str, Any]]


def validate_submission(
    spec: SubmissionSpec | Mapping[str, Any] | str | Path,
    *,
    queue: SubmissionQueue | str | Path,
    check_model: bool = True,
    n_images: int = 4,
    results_dir: str | Path | None = None,
    base_dir: str | Path | None = None,
    model_checker: ModelChecker | None = None,
    hub_config: HubConfigFetcher | None = None,
) -> ValidatedSubmission:
    """Check a submission as far as possible on CPU; each failure is a ConfigError/DataValidationError to act on."""
    if n_images < 1:
        raise ConfigError(f"n_images must be at least 1, got {n_images}.")
    queue = queue if isinstance(queue, SubmissionQueue) else SubmissionQueue(queue)
    spec = coerce_submission(spec)
    refuse_remote_code_model(spec.model)
    spec = resolve_paths(pin_revision(spec), base_dir or Path.cwd())
    model_spec = model_spec_of(spec)
    if spec.proxy is not None:
        check_proxy(spec.proxy)
    check = None
    if check_model:
        check_hub_remote_code(model_spec, fetch=hub_config or fetch_hub_config)
        check = (model_checker or check_model_on_images)(spec, n_images)
        model_id, weights = check.model_id, check.weights
    else:
        model_id, weights = stated_identity(spec)
    key = submission_key(model_id, weights)
    refuse_duplicates(key, queue, results_dir=results_dir)
    return ValidatedSubmission(spec=spec, key=key, model_id=model_id, weights=weights, model_check=check)


def submit(
    spec: SubmissionSpec | Mapping[str, Any] | str | Path,
    *,
    queue: SubmissionQueue | str | Path,
    **options: Any,
) -> QueueEntry:
    """Validate and enqueue a submission; returns the PENDING queue entry."""
    queue = queue if isinstance(queue, SubmissionQueue) else SubmissionQueue(queue)
    validated = validate_submission(spec, queue=queue, **options)
    return queue.enqueue(validated.spec, key=validated.key, checks=validated.checks())


def coerce_submission(spec: SubmissionSpec | Mapping[str, Any] | str | Path) -> SubmissionSpec:
    """A SubmissionSpec from a spec, a mapping or a YAML/JSON file path."""
    if isinstance(spec, SubmissionSpec):
        return spec
    if isinstance(spec, Mapping):
        return parse_submission(spec)
    return load_submission(spec)


def submission_key(model_id: str, weights: str) -> str:
    """The duplicate key of a submission: `MODEL_ID@WEIGHTS`."""
    return f"{model_id}@{weights}"


def pin_revision(spec: SubmissionSpec) -> SubmissionSpec:
    """Carry the submission's `revision` into its model string (so the scorer loads that revision)."""
    if spec.revision is None:
        return spec
    from benchmark.models.spec import make_model_spec, parse_model_spec

    model_spec = parse_model_spec(spec.model)
    if model_spec.revision not in (None, spec.revision):
        raise ConfigError(
            f"revision {spec.revision!r} contradicts revision={model_spec.revision!r} in model {spec.model!r}; "
            "give it once (either field)."
        )
    pinned = make_model_spec(**{**model_spec.model_dump(exclude_none=True), "revision": spec.revision})
    return spec.model_copy(update={"model": pinned.to_string()})


def refuse_remote_code_model(model: str) -> None:
    """Refuse a model string that asks for remote code."""
    if REMOTE_CODE_MARKER in model.lower():
        raise ConfigError(f"Refused model {model!r}: it asks for {REMOTE_CODE_MARKER}. {REMOTE_CODE_FIX}")


def check_hub_remote_code(model_spec: Any, *, fetch: HubConfigFetcher) -> None:
    """Refuse an `hf-hub:` model whose repo config declares custom code (auto_map, custom_pipelines, ...)."""
    name = model_spec.arch_name
    if not name.startswith(HUB_PREFIX) or model_spec.arch_source not in HUB_CONFIG_FILES:
        return
    repo_id = name[len(HUB_PREFIX):].partition("@")[0]
    config = fetch(repo_id, HUB_CONFIG_FILES[model_spec.arch_source], model_spec.revision)
    found = [key for key in REMOTE_CODE_CONFIG_KEYS if key in config]
    if found:
        raise ConfigError(
            f"Refused model {model_spec.to_string()!r}: the Hub repo {repo_id} needs remote code "
            f"({', '.join(found)} in its {HUB_CONFIG_FILES[model_spec.arch_source]}). {REMOTE_CODE_FIX}"
        )


def fetch_hub_config(repo_id: str, filename: str, revision: str | None) -> Mapping[str, Any]:
    """Download (or read from the local cache) one JSON config file of a Hub model repo."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        path = hf_hub_download(repo_id, filename, revision=revision)
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (HfHubHTTPError, HFValidationError, OSError) as err:
        raise SourceUnavailableError(
            f"Could not read {filename} of the Hub model {repo_id!r}{f' at {revision!r}' if revision else ''}: "
            f"{type(err).__name__}: {err}. Check the repo id and the network (the model check needs the repo)."
        ) from None
    except json.JSONDecodeError as err:
        raise DataValidationError(f"{filename} of the Hub model {repo_id!r} is not valid JSON: {err}.") from None
    if not isinstance(config, dict):
        raise DataValidationError(f"{filename} of the Hub model {repo_id!r} is not a JSON object.")
    return config


def check_proxy(path: str | Path) -> None:
    """The fitted proxy file exists and loads with this imi-bench."""
    from benchmark.proxies.fitted import load_fitted_proxy

    load_fitted_proxy(path)


def stated_identity(spec: SubmissionSpec) -> tuple[str, str]:
    """(model id, weights) from what the spec states, without loading anything."""
    model_spec = model_spec_of(spec)
    model_id = f"{model_spec.arch_source}:{model_spec.arch_name}"
    if model_spec.sha256:
        return model_id, f"sha256:{model_spec.sha256.lower()}"
    if model_spec.weights is not None:
        return model_id, f"file:{model_spec.weights}"
    if not model_spec.pretrained:
        return model_id, "random-init"
    return model_id, f"rev:{model_spec.revision}" if model_spec.revision else "default"


def check_model_on_images(spec: SubmissionSpec, n_images: int) -> ModelCheck:
    """Load the model on CPU and run `n_images` images of its image source through it; outputs must be finite."""
    import torch

    from benchmark.models.adapters import load_model
    from benchmark.stimuli.sources import make_loader, parse_image_source

    start = time.perf_counter()
    model_spec = model_spec_of(spec)
    loaded = load_model(model_spec, device="cpu")
    source = parse_image_source(spec.images)
    batch = next(iter(make_loader(source, loaded.transform, batch_size=n_images, num_workers=0)), None)
    if batch is None:
        raise DataValidationError(f"The image source {spec.images!r} holds no images; point `images` at a source "
                                  "with images (e.g. bundled, folder:PATH, hf:OWNER/NAME).")
    images = batch[0]
    try:
        with torch.inference_mode():
            output = loaded.module.eval()(images[:n_images])
    except (RuntimeError, ValueError, TypeError) as err:
        raise DataValidationError(
            f"Model {spec.model!r} failed on {len(images[:n_images])} images of {spec.images!r}: "
            f"{type(err).__name__}: {err}. Check that the architecture matches the weights and the input size."
        ) from None
    output = output[0] if isinstance(output, tuple | list) else output
    _check_finite(output, spec)
    weights = _loaded_weights(loaded, spec)
    model_id = f"{model_spec.arch_source}:{model_spec.arch_name}"
    return ModelCheck(model_id, weights, int(images[:n_images].shape[0]), tuple(output.shape),
                      time.perf_counter() - start, {"weights_id": getattr(loaded, "weights_id", None)})


def refuse_duplicates(key: str, queue: SubmissionQueue, *, results_dir: str | Path | None = None) -> None:
    """Refuse a key already in the queue (any state but FAILED) or already in a result file of results_dir."""
    for entry in queue.entries():
        if entry.key == key and entry.state is not State.FAILED:
            raise DataValidationError(duplicate_message(key, entry, queue))
    if results_dir is not None:
        for path in sorted(Path(results_dir).glob("*.json")):
            if result_key(path) == key:
                raise DataValidationError(
                    f"Duplicate submission {key!r}: already scored in {path}. The same model with the same "
                    "weights is scored once."
                )


def result_key(path: Path) -> str | None:
    """The submission key the worker recorded in a result file (None: not a valid result or not from the queue)."""
    from benchmark.results.io import read_result

    try:
        sub = read_result(path).submission
    except ImiBenchError:
        logger.warning("skipping %s in the duplicate check: not a valid result file", path)
        return None
    metadata = sub.spec.get("metadata")
    return metadata.get("key") if isinstance(metadata, dict) else None


def _loaded_weights(loaded: Any, spec: SubmissionSpec) -> str:
    sha256 = getattr(loaded, "weights_sha256", None)
    if sha256:
        return f"sha256:{sha256}"
    weights_id = getattr(loaded, "weights_id", None)
    if weights_id:
        return str(weights_id)
    return stated_identity(spec)[1]


def _check_finite(output: Any, spec: SubmissionSpec) -> None:
    import torch

    if not isinstance(output, torch.Tensor):
        raise DataValidationError(
            f"Model {spec.model!r} returned {type(output).__name__}, not a tensor; imi-bench scores modules whose "
            "forward returns a tensor (or a tuple whose first item is one)."
        )
    if output.numel() == 0 or not bool(torch.isfinite(output).all()):
        bad = "no values" if output.numel() == 0 else "NaN or infinite values"
        raise DataValidationError(f"Model {spec.model!r} produced {bad} on {spec.images!r}; check the weights.")


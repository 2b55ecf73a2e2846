"""Submissions from the public (the leaderboard's Submit form): the only entry point that accepts strangers' specs.

API (for the form and `imibench submit --public`)::

    from benchmark.submissions.public import (
        PublicConfig, PublicSubmissionError, load_public_config, check_rate_limit, validate_public_submission,
        submit_public,
    )

    config = load_public_config()            # operator config: --public-config FILE or $IMIBENCH_PUBLIC_CONFIG
    check_rate_limit(client_key, queue=Q, config=config)   # cheap, no torch; raises PublicSubmissionError
    entry = submit_public(form_fields, queue=Q, config=config)   # validate + enqueue; raises PublicSubmissionError

    validate_public_submission(form_fields, queue=Q, config=config) -> ValidatedSubmission  (without enqueueing)
    precheck_public_fields(form_fields, config) -> dict   # the cheap part of it (no torch): the form runs it first

`PublicSubmissionError.public_message` is safe to show to the submitter: it never names a server file or folder and
reads the same whether a server path exists or not. Everything else (logs) may carry detail for the operator.

What a public submission may name, and nothing else:
- a model from a library's own registry or the Hugging Face Hub: `timm:ARCH[.TAG]`, `timm:hf-hub:OWNER/NAME`,
  `open_clip:ARCH/TAG`, `open_clip:hf-hub:OWNER/NAME`, `torchvision:ARCH[/WEIGHTS]`, with options `pretrained` and
  `revision` only (no `local:`, no `weights=` file, no `local-dir:` schema);
- images: `bundled[:N]`, a Hub dataset `hf:OWNER/NAME[@REV][#SPLIT]`, or a name (or exact source string) from the
  operator's allow-list `image_sources` (e.g. `imagenet-val: folder:/data/imagenet/val`);
- the scoring fields `units`, `protocol`, `seed`, `pretrained` and the leaderboard metadata.
Refused: every path or operator field (`out`, `work_dir`, `proxy`, `device`, `dtype`, `batch_size`, `num_workers`,
`checkpoint_every`, `weights_sha256`), strings and lists over the size limits, more units than `max_units`, and
models whose parameter count, estimated by building the architecture on the meta device (no memory, no weights),
exceeds `max_parameters` (the CPU check then never builds a huge model).

Operator config (YAML; every key optional)::

    image_sources: {imagenet-val: "folder:/data/imagenet/val"}   # alias -> image source spec
    max_parameters: 300000000      # model-size limit of the CPU check
    max_units: 2048                # units_per_layer and total_units bound
    rate_limit: {max_submissions: 5, window_s: 3600}   # per submitter key
    max_string_chars: 300          # any string field (notes: max_notes_chars)
    max_notes_chars: 2000
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.api.errors import OFFLINE_WEIGHTS_FIX, PUBLIC_WEIGHTS_FIX, ConfigError, ImiBenchError

if TYPE_CHECKING:  # the form imports this module for the rate limit: keep torch and the model code out of it
    from benchmark.models.spec import ModelSpec
    from benchmark.submissions.queue import QueueEntry, SubmissionQueue
    from benchmark.submissions.spec import SubmissionSpec
    from benchmark.submissions.validate import ValidatedSubmission

logger = logging.getLogger(__name__)

CONFIG_ENV = "IMIBENCH_PUBLIC_CONFIG"
RATE_STATE = ".rate_limit.json"
# Fields only the operator sets (paths, hardware, the proxy): a public spec naming any of them is refused.
OPERATOR_FIELDS: tuple[str, ...] = (
    "out", "work_dir", "proxy", "device", "dtype", "batch_size", "num_workers", "checkpoint_every", "weights_sha256",
)
MODEL_OPTIONS = frozenset({"pretrained", "revision"})
HUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")
LIBRARY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")  # timm arch.tag, open_clip ARCH, TAG
REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,99}$")
SPLIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-\[\]:%]{0,63}$")
HF_OPTIONS = frozenset({"column", "limit", "streaming"})
MAX_DEPTH = 4
MAX_LIST_ITEMS = 64
MAX_KEYS = 40
_SERVER_PATH = re.compile(r"(?<![\w:/.~-])(?:~|\.{1,2})?/[^\s'\"`,;)]+")


class RateLimit(BaseModel):
    """At most `max_submissions` per submitter key within `window_s` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_submissions: int = Field(5, ge=1)
    window_s: float = Field(3600.0, gt=0)


class PublicConfig(BaseModel):
    """The operator's configuration of public submissions (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_sources: dict[str, str] = Field(default_factory=dict, description="allow-list: alias -> image source")
    max_parameters: int = Field(300_000_000, ge=1, description="model-size limit (parameters) of the CPU check")
    max_units: int = Field(2048, ge=1)
    rate_limit: RateLimit = RateLimit()
    max_string_chars: int = Field(300, ge=1)
    max_notes_chars: int = Field(2000, ge=1)


class PublicSubmissionError(ImiBenchError, ValueError):
    """A public submission was refused; `public_message` is what the submitter may see (no server details)."""

    def __init__(self, public_message: str, detail: str | None = None) -> None:
        super().__init__(public_message)
        self.public_message = public_message
        self.detail = detail or public_message


def load_public_config(path: str | Path | None = None) -> PublicConfig:
    """The operator's config from `path`, else $IMIBENCH_PUBLIC_CONFIG, else the defaults (no allow-listed images)."""
    path = path if path is not None else os.environ.get(CONFIG_ENV) or None
    if path is None:
        return PublicConfig()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"Public submission config {path} cannot be read: {err}. Fix the file or unset "
                          f"{CONFIG_ENV}.") from None
    try:
        return PublicConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"Public submission config {path} is invalid: {err}") from None


# ---------------------------------------------------------------------------------------------------- rate limit


def check_rate_limit(
    submitter_key: str,
    *,
    queue: str | Path,
    config: PublicConfig | None = None,
    now: float | None = None,
    record: bool = True,
) -> int:
    """Count one submission attempt of `submitter_key` (e.g. a hash of the client address, or the submitter
    field) and return how many remain in the window; PublicSubmissionError when the limit is reached.

    The state is a small JSON file in the queue folder, updated under a file lock, so the form's process and
    `imibench submit --public` processes share it. Keys are stored hashed.
    """
    limit = (config or PublicConfig()).rate_limit
    now = time.time() if now is None else now
    key = hashlib.sha256(submitter_key.strip().lower().encode("utf-8")).hexdigest()[:32]
    root = Path(queue)
    root.mkdir(parents=True, exist_ok=True)
    state_path = root / RATE_STATE
    try:
        with FileLock(str(state_path) + ".lock", timeout=10):
            state = _read_rate_state(state_path)
            state = {k: [t for t in v if now - t < limit.window_s] for k, v in state.items()}
            state = {k: v for k, v in state.items() if v}
            recent = state.get(key, [])
            if len(recent) >= limit.max_submissions:
                wait_min = max(1, round((limit.window_s - (now - min(recent))) / 60))
                raise PublicSubmissionError(
                    f"Too many submissions: at most {limit.max_submissions} per {limit.window_s / 3600:g} h for one "
                    f"submitter. Try again in about {wait_min} min."
                )
            if record:
                state[key] = [*recent, now]
                from benchmark.results.io import atomic_write_text

                atomic_write_text(state_path, json.dumps(state))
            return limit.max_submissions - len(recent) - int(record)
    except Timeout:
        raise PublicSubmissionError("The submission service is busy; try again in a minute.") from None


def _read_rate_state(path: Path) -> dict[str, list[float]]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_bytes()[: 8 << 20].decode("utf-8"))
        return {str(k): [float(t) for t in v][-1000:] for k, v in data.items() if isinstance(v, list)}
    except (ValueError, TypeError, AttributeError, RecursionError):
        logger.warning("rate-limit state %s is unreadable; starting afresh", path)
        return {}


# ---------------------------------------------------------------------------------------------------- validation


def validate_public_submission(
    fields: Mapping[str, Any],
    *,
    queue: SubmissionQueue | str | Path,
    config: PublicConfig | None = None,
    check_model: bool = True,
    n_images: int = 4,
    results_dir: str | Path | None = None,
    **checkers: Any,
) -> ValidatedSubmission:
    """Validate a stranger's flat submission mapping (form fields or a YAML mapping); returns the
    `ValidatedSubmission` ready for `SubmissionQueue.enqueue`. Every refusal is a PublicSubmissionError whose
    `public_message` names no server path. `checkers` pass on to `validate_submission` (tests)."""
    from benchmark.submissions.spec import parse_submission
    from benchmark.submissions.validate import validate_submission

    config = config or PublicConfig()
    data = precheck_public_fields(fields, config)
    try:
        spec = parse_submission(data, origin="the submission")
    except ImiBenchError as err:
        raise PublicSubmissionError(sanitise(str(err), config)) from None
    from benchmark.scoring.spec import model_spec_of

    try:
        model_spec = model_spec_of(spec)
    except ImiBenchError as err:
        raise PublicSubmissionError(sanitise(str(err), config)) from None
    if check_model:
        n_parameters = estimate_parameters(model_spec)
        if n_parameters > config.max_parameters:
            raise PublicSubmissionError(
                f"Model {spec.model!r} has about {n_parameters / 1e6:.0f} M parameters, over this leaderboard's "
                f"limit of {config.max_parameters / 1e6:.0f} M for public submissions. Ask the operator to score it."
            )
    if check_model and hub_dataset_id(spec.images) is not None:
        check_hub_dataset_loads(spec)
    try:
        validated = validate_submission(spec, queue=queue, check_model=check_model, n_images=n_images,
                                        results_dir=results_dir, **checkers)
    except ImiBenchError as err:
        raise PublicSubmissionError(sanitise(str(err), config), detail=str(err)) from None
    return validated


def precheck_public_fields(fields: Mapping[str, Any], config: PublicConfig | None = None) -> dict[str, Any]:
    """The cheap checks (no torch, no model, no network): field sizes, no operator field, a registry or Hub model,
    an accepted image source, bounded units. Returns the fields with the image source resolved (an allow-list
    alias becomes its source); PublicSubmissionError else. The form runs it before starting the full check."""
    config = config or PublicConfig()
    if not isinstance(fields, Mapping):
        raise PublicSubmissionError("A submission is a mapping of field names to values.")
    check_field_limits(fields, config)
    operator = [name for name in OPERATOR_FIELDS if name in fields]
    if operator:
        raise PublicSubmissionError(
            f"Field(s) {', '.join(operator)} are set by the leaderboard's operator, not by a submission; remove them."
        )
    data = dict(fields)
    data["model"] = check_public_model(str(data.get("model", "")))
    data["images"] = resolve_public_images(str(data.get("images") or "bundled"), config)
    check_units(data.get("units"), config)
    return data


def submit_public(fields: Mapping[str, Any], *, queue: SubmissionQueue | str | Path, config: PublicConfig | None = None,
                  rate_key: str | None = None, **options: Any) -> QueueEntry:
    """Rate-limit (on `rate_key`, else the submitter field), validate and enqueue a public submission; returns
    the PENDING QueueEntry. The entry's checks record `public: true` (the worker re-checks its sources)."""
    from benchmark.submissions.queue import SubmissionQueue

    config = config or PublicConfig()
    queue = queue if isinstance(queue, SubmissionQueue) else SubmissionQueue(queue)
    key = rate_key if rate_key is not None else str(fields.get("submitter", "")) if isinstance(fields, Mapping) else ""
    check_rate_limit(key or "anonymous", queue=queue.root, config=config)
    validated = validate_public_submission(fields, queue=queue, config=config, **options)
    try:
        return queue.enqueue(validated.spec, key=validated.key, checks={**validated.checks(), "public": True})
    except ImiBenchError as err:
        raise PublicSubmissionError(sanitise(str(err), config), detail=str(err)) from None


def check_field_limits(fields: Mapping[str, Any], config: PublicConfig) -> None:
    """Refuse oversized input before parsing it: string lengths, list lengths, key counts and nesting depth."""
    stack: list[tuple[Any, str, int]] = [(fields, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise PublicSubmissionError(f"Field {where or '(root)'} nests too deeply (at most {MAX_DEPTH} levels).")
        if isinstance(value, Mapping):
            if len(value) > MAX_KEYS:
                raise PublicSubmissionError(f"Field {where or '(root)'} has {len(value)} keys; at most {MAX_KEYS}.")
            for key, item in value.items():
                if not isinstance(key, str) or len(key) > 64:
                    raise PublicSubmissionError(f"Field names must be short strings; got one of {len(str(key))} "
                                                "characters.")
                stack.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list | tuple):
            if len(value) > MAX_LIST_ITEMS:
                raise PublicSubmissionError(f"Field {where} lists {len(value)} items; at most {MAX_LIST_ITEMS}.")
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            limit = config.max_notes_chars if where == "notes" else config.max_string_chars
            if len(value) > limit:
                raise PublicSubmissionError(f"Field {where} has {len(value)} characters; at most {limit}.")
        elif value is not None and not isinstance(value, bool | int | float):
            raise PublicSubmissionError(f"Field {where} has an unsupported type {type(value).__name__}.")


def check_public_model(model: str) -> str:
    """The model string if it names a registry or Hub model with public options only; PublicSubmissionError else."""
    from urllib.parse import parse_qsl

    forms = ("timm:ARCH[.TAG], timm:hf-hub:OWNER/NAME, open_clip:ARCH/TAG, open_clip:hf-hub:OWNER/NAME or "
             "torchvision:ARCH[/WEIGHTS], with options pretrained and revision only")
    text = model.strip()
    source, _, rest = text.partition(":")
    body, _, query = rest.partition("?")
    refused = PublicSubmissionError(f"Model {text[:120]!r} is not accepted here: public submissions name {forms}.")
    if source not in ("timm", "open_clip", "torchvision") or not body:
        raise refused
    options = parse_qsl(query, keep_blank_values=True)
    if query and not options or any(key not in MODEL_OPTIONS for key, _ in options):
        raise refused
    if any(key == "revision" and not REVISION.match(value) for key, value in options):
        raise refused
    if body.startswith("hf-hub:"):
        repo, _, revision = body.removeprefix("hf-hub:").partition("@")
        if source == "torchvision" or not HUB_REPO.match(repo) or ".." in repo or (revision and
                                                                                      not REVISION.match(revision)):
            raise refused
        return text
    parts = body.split("/")
    expected = {"timm": 1, "open_clip": 2, "torchvision": (1, 2)}[source]
    if len(parts) not in (expected if isinstance(expected, tuple) else (expected,)):
        raise refused
    if any(not LIBRARY_NAME.match(part) or ".." in part for part in parts):
        raise refused
    return text


def resolve_public_images(images: str, config: PublicConfig) -> str:
    """The image source a public submission names: an allow-list alias (-> its source), an allow-listed source
    string, `bundled[:N]` or a Hub dataset `hf:OWNER/NAME[@REV][#SPLIT][?column&limit&streaming]`."""
    text = images.strip()
    if text in config.image_sources:
        return config.image_sources[text]
    if text in config.image_sources.values():
        return text
    if re.fullmatch(r"bundled(:\d{1,6})?(\?(size=\d{1,4}|seed=\d{1,9})(&(size=\d{1,4}|seed=\d{1,9}))?)?", text):
        return text
    if text.startswith("hf:") and _is_hub_dataset(text):
        return text
    allowed = ", ".join(sorted(config.image_sources)) or "none configured"
    raise PublicSubmissionError(
        f"Image source {text[:120]!r} is not accepted here: public submissions name `bundled`, a Hugging Face Hub "
        f"dataset (hf:OWNER/NAME[@REVISION][#SPLIT]) or one of this leaderboard's image sources ({allowed})."
    )


def hub_dataset_id(images: str) -> str | None:
    """The dataset id of an `hf:` source (None for other sources)."""
    if not images.startswith("hf:"):
        return None
    body = images[3:].partition("?")[0].partition("#")[0]
    return body.rpartition("@")[0] if "@" in body else body


def _is_hub_dataset(text: str) -> bool:
    from urllib.parse import parse_qsl

    body, _, query = text[3:].partition("?")
    body, _, split = body.partition("#")
    dataset_id, _, revision = body.partition("@")
    if not HUB_REPO.match(dataset_id) or ".." in dataset_id:
        return False
    if ("@" in body and not REVISION.match(revision)) or ("#" in text and not SPLIT.match(split)):
        return False
    options = parse_qsl(query, keep_blank_values=True)
    return not (query and not options) and all(key in HF_OPTIONS and len(value) <= 64 for key, value in options)


def check_units(units: Any, config: PublicConfig) -> None:
    """Bound the number of units a public submission may ask for."""
    if not isinstance(units, Mapping):
        return
    for name in ("units_per_layer", "total_units"):
        value = units.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > config.max_units:
            raise PublicSubmissionError(f"units.{name} = {value} is over this leaderboard's limit of "
                                        f"{config.max_units} units for public submissions.")


def hub_unavailable_message(images: str) -> str:
    """The one message for any Hub dataset that cannot be used (it never says why, so it reveals nothing about
    this machine's folders)."""
    return (f"The image source {images!r} could not be loaded from the Hub (it does not exist, is private or gated, "
            "has no such split or image column, or the Hub is unreachable).")


def recheck_public_sources(spec: SubmissionSpec) -> None:
    """The worker's check of a public entry right before scoring: a Hub dataset id must not resolve to a folder of
    this machine (`datasets` would read a local folder of that name); the message does not say which."""
    dataset_id = hub_dataset_id(spec.images)
    if dataset_id is not None and Path(dataset_id).exists():
        raise PublicSubmissionError(hub_unavailable_message(spec.images))
    check_public_model(spec.model)


def check_hub_dataset_loads(spec: SubmissionSpec) -> None:
    """Open a public submission's Hub dataset; every failure (a local folder of that name included) is the same
    message, so the answer is no oracle for this machine's folders."""
    from benchmark.stimuli.sources import parse_image_source

    try:
        recheck_public_sources(spec)
        parse_image_source(spec.images)
    except Exception as err:  # noqa: BLE001 - one answer for every failure, by design; the detail goes to the log
        logger.info("public Hub dataset %s refused: %s: %s", spec.images, type(err).__name__, err)
        raise PublicSubmissionError(hub_unavailable_message(spec.images), detail=str(err)) from None


def estimate_parameters(model_spec: ModelSpec) -> int:
    """Parameters of the model's architecture, built on the meta device (no memory, no weights downloaded)."""
    import torch

    from benchmark.models.adapters import ADAPTERS

    adapter = ADAPTERS.get(model_spec.arch_source)
    try:
        with torch.device("meta"):
            if model_spec.arch_source == "open_clip":  # open_clip moves the model to `device` itself
                import open_clip

                name = model_spec.arch_name
                arch = name if name.startswith("hf-hub:") else name.partition("/")[0]
                model = open_clip.create_model(arch, pretrained=None, device="meta", load_weights=False)
                return sum(p.numel() for p in model.parameters())
            built = adapter(model_spec.arch_name, False, None)
    except ImiBenchError as err:
        raise PublicSubmissionError(sanitise(str(err), None)) from None
    except Exception as err:  # noqa: BLE001 - any failure to build the architecture refuses the submission
        logger.warning("meta-device build of %s failed: %s: %s", model_spec.to_string(), type(err).__name__, err)
        raise PublicSubmissionError(
            f"The architecture of {model_spec.to_string()!r} could not be built to check its size "
            f"({type(err).__name__}); it cannot be submitted publicly. Ask the operator to score it."
        ) from None
    modules = {id(m): m for m in (built.module, built.weights_target)}
    return max(sum(p.numel() for p in m.parameters()) for m in modules.values())


def sanitise(message: str, config: PublicConfig | None) -> str:
    """A message safe for the submitter: allow-listed sources shown by their alias, every other server path
    replaced by `<server path>`, and no advice to name server files."""
    message = message.replace(OFFLINE_WEIGHTS_FIX, PUBLIC_WEIGHTS_FIX)
    for alias, source in (config.image_sources.items() if config else ()):
        message = message.replace(source, alias)
        if ":" in source:
            message = message.replace(source.split(":", 1)[1].partition("?")[0], alias)
    return _SERVER_PATH.sub("<server path>", message)

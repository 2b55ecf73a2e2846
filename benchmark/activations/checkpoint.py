"""Resumable activation passes: atomic checkpoints of the streaming state, guarded by a run fingerprint.

A checkpoint holds every layer's ExtremeSets, the number of images consumed so far (always a whole number of
batches) and the run's fingerprint. Resuming restarts the image stream at that offset (see
`benchmark.activations.collect.collect_extremes`, whose `loader` may be a `loader_factory(start)`), and because
ExtremeSets' order is total, the resumed run ends bit-for-bit where an uninterrupted one would — provided the
batches after the offset are the same as in the uninterrupted run (they are when the batch size is unchanged; a
different batch size is accepted but may change activations by float rounding in some kernels).

The fingerprint is what must not change between the interrupted run and its resumption: the layer/channel
selection, k, the reducer, the compute dtype and device type, the model's parameter names and shapes, and
`run_info` — the caller's identity of the run (model id, weights sha256, image-source id and a hash of its id
list, see `hash_ids`). The batch size is deliberately NOT part of it (the result does not depend on it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.api.errors import ConfigError

CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class CheckpointConfig:
    """Where and how often to checkpoint an activation pass; `run_info` identifies the run (JSON-serialisable)."""

    path: Path | str
    every_n_batches: int = 50
    run_info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.every_n_batches < 1:
            raise ConfigError(
                f"CheckpointConfig.every_n_batches must be >= 1, got {self.every_n_batches}; "
                "pass checkpoint=None to disable checkpoints."
            )
        try:
            json.dumps(dict(self.run_info), sort_keys=True)
        except TypeError as err:
            raise ConfigError(
                f"CheckpointConfig.run_info must be JSON-serialisable (str/int/float/bool/list/dict), "
                f"got {dict(self.run_info)!r}: {err}. Convert values (e.g. paths, dtypes) to strings."
            ) from err


def hash_ids(ids: Sequence[int] | np.ndarray) -> str:
    """sha256 of an image-source's id list, in order (for `CheckpointConfig.run_info`)."""
    return hashlib.sha256(np.ascontiguousarray(np.asarray(ids, dtype=np.int64)).tobytes()).hexdigest()


def model_structure_hash(model: torch.nn.Module) -> str:
    """sha256 of the model's parameter and buffer names, shapes and dtypes (cheap; not of the weights)."""
    digest = hashlib.sha256()
    for kind, named in (("p", model.named_parameters()), ("b", model.named_buffers())):
        for name, tensor in named:
            digest.update(f"{kind}:{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
    return digest.hexdigest()


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` to `path` atomically (temporary file in the same folder, fsync, os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save({"format": CHECKPOINT_FORMAT, **payload}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(config: CheckpointConfig, fingerprint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The saved payload if `config.path` exists and matches `fingerprint`; None if absent; ConfigError otherwise."""
    path = Path(config.path)
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise ConfigError(
            f"Activation checkpoint {path} cannot be read ({err}); delete it to start afresh or pass another path."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ConfigError(
            f"Activation checkpoint {path} has format {found!r}, expected {CHECKPOINT_FORMAT}; "
            "delete it to start afresh or pass another path."
        )
    saved = json.loads(payload["fingerprint"])
    wanted = canonical(fingerprint)
    if saved != wanted and _image_set_changed(saved, wanted):
        raise ConfigError(
            f"The image set changed since the activation checkpoint {path} was written "
            f"({_describe_difference(saved, wanted)}), e.g. a corrupt image was removed: the checkpoint's "
            "activations belong to the old set, so the run cannot resume from it. To continue, either put a readable "
            "image back under the removed file's name (the run then resumes from the checkpoint), or delete "
            f"{path} and run the same command again (the activation pass restarts on the new image set)."
        )
    if saved != wanted:
        raise ConfigError(
            f"Activation checkpoint {path} belongs to a different run: {_describe_difference(saved, wanted)}. "
            "Delete the checkpoint to start this run afresh, or give this run another checkpoint path."
        )
    return payload


def _image_set_changed(saved: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the only differences are in the image source's identity (its id list or size)."""
    old, new = saved.get("run_info") or {}, wanted.get("run_info") or {}
    image_keys = {"images", "n_images"}
    others_equal = {k: v for k, v in saved.items() if k != "run_info"} == {
        k: v for k, v in wanted.items() if k != "run_info"}
    run_info_diff = {key for key in set(old) | set(new) if old.get(key) != new.get(key)}
    return others_equal and bool(run_info_diff) and run_info_diff <= image_keys


def canonical(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint as plain JSON types (tuples -> lists), as stored in a checkpoint."""
    return json.loads(encode_fingerprint(fingerprint))


def encode_fingerprint(fingerprint: Mapping[str, Any]) -> str:
    """Canonical JSON text of a fingerprint."""
    return json.dumps(dict(fingerprint), sort_keys=True)


def _describe_difference(saved: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = sorted(set(saved) | set(wanted))
    diffs = [
        f"{key}: checkpoint has {_short(saved.get(key))}, this run has {_short(wanted.get(key))}"
        for key in keys
        if saved.get(key) != wanted.get(key)
    ]
    return "; ".join(diffs)


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."

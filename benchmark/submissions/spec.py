"""The submission spec: the score spec's fields, flat, plus the metadata the leaderboard shows.

Flat (not nested under `score:`) so that a submission YAML reads like the `imibench score` spec it extends, and so
that the leaderboard's Submit form, which writes flat keys, produces a valid spec.

A submission never chooses where anything is written: `out` and `work_dir` are refused (the worker writes the
result to its results folder as `<queue id>.json` and works in its own folder named by the queue id and attempt).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.api.errors import ConfigError
from benchmark.scoring.spec import ScoreSpec, read_spec_mapping, validation_problems

REMOTE_CODE_MARKER = "trust_remote_code"
WORKER_PATH_FIELDS: tuple[str, ...] = ("out", "work_dir")
WORKER_PATHS_FIX = (
    "A submission does not choose where files are written: the worker writes the result to its results folder "
    "(named by the submission's queue id) and works in its own work folder. Remove the field."
)
REMOTE_CODE_FIX = (
    "imi-bench never runs code from a model repository. Submit a model that timm, open_clip or torchvision "
    "builds from its own code (or a local state dict with `arch=`), and remove the field."
)


class SubmissionSpec(ScoreSpec):
    """One submitted model: the score spec's fields (flat, as in `imibench score`) plus leaderboard metadata."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proxy: str | None = Field(  # type: ignore[assignment]  # optional here: the operator's worker supplies it
        None, description="fitted proxy file; default: the benchmark's proxy the worker runs with (--proxy)"
    )
    name: str | None = Field(None, min_length=1, max_length=120, description="display name (default: the model)")
    submitter: str = Field(min_length=1, description="name and/or email of the person to contact (kept private)")
    family: str | None = Field(None, description="architecture family, e.g. ResNet, ViT, ConvNeXt")
    license: str | None = Field(None, description="licence of the weights, e.g. apache-2.0")
    paper: str | None = Field(None, description="URL of the paper or model card (http/https)")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) of the weights")
    imagenet_top1: float | None = Field(None, ge=0, le=100, description="ImageNet-1k top-1 accuracy in percent")
    notes: str | None = None

    @model_validator(mode="after")
    def _no_worker_paths(self) -> SubmissionSpec:
        given = [name for name in WORKER_PATH_FIELDS if getattr(self, name) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} may not be set by a submission. {WORKER_PATHS_FIX}")
        return self

    @field_validator("paper")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @property
    def display_name(self) -> str:
        """The leaderboard name: `name`, else the model spec string."""
        return self.name or self.model

    def score_spec(
        self, *, proxy: str | Path | None = None, out: Path | None = None, work_dir: Path | None = None
    ) -> ScoreSpec:
        """The score spec alone, with the worker's `out` and `work_dir`; `proxy` fills a proxy the spec left unset."""
        fields = self.model_dump(include=set(ScoreSpec.model_fields))
        fields["proxy"] = self.proxy or (str(proxy) if proxy is not None else None)
        fields["out"] = out
        fields["work_dir"] = work_dir
        if fields["proxy"] is None:
            raise ConfigError(
                f"Submission {self.display_name!r} names no proxy and none was given: start the worker with "
                "--proxy FITTED.json (the benchmark's fitted proxy) or set `proxy:` in the spec."
            )
        return ScoreSpec.model_validate(fields)


def resolve_paths(spec: SubmissionSpec, base: str | Path) -> SubmissionSpec:
    """A copy whose relative file paths (proxy, folder: images) are made absolute against `base` (an operator's
    submission; public ones name no paths, see benchmark.submissions.public)."""
    base = Path(base).resolve()
    update: dict[str, Any] = {}
    if spec.proxy is not None:
        update["proxy"] = str(base / Path(spec.proxy).expanduser())
    if spec.images.startswith(FOLDER_PREFIX):
        update["images"] = FOLDER_PREFIX + str(base / Path(spec.images[len(FOLDER_PREFIX):]).expanduser())
    return spec.model_copy(update=update)


FOLDER_PREFIX = "folder:"
SCORE_FIELDS: tuple[str, ...] = tuple(ScoreSpec.model_fields)
METADATA_FIELDS: tuple[str, ...] = tuple(f for f in SubmissionSpec.model_fields if f not in ScoreSpec.model_fields)


def load_submission(path: str | Path) -> SubmissionSpec:
    """Read a YAML/JSON submission spec; errors name the file and every invalid field."""
    hint = "See submissions/README.md and submissions/examples/ for the format."
    return parse_submission(read_spec_mapping(path, what="Submission spec", hint=hint), origin=str(path))


def parse_submission(data: Mapping[str, Any], *, origin: str = "submission") -> SubmissionSpec:
    """Validate a submission mapping; remote-code requests, worker path fields and invalid fields are ConfigErrors."""
    refuse_remote_code_fields(data, origin=origin)
    given = [name for name in WORKER_PATH_FIELDS if name in data]
    if given:
        fields = "`, `".join(given)
        raise ConfigError(f"Refused {origin}: `{fields}` may not be set by a submission. {WORKER_PATHS_FIX}")
    try:
        return SubmissionSpec.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(
            f"Invalid submission spec {origin}:\n{validation_problems(err)}\n"
            f"Valid fields: {', '.join(METADATA_FIELDS)} (submission) and {', '.join(SCORE_FIELDS)} (scoring)."
        ) from None


def refuse_remote_code_fields(data: Mapping[str, Any], *, origin: str = "submission") -> None:
    """Raise ConfigError when a key (at any depth) or a scoring field's value asks for trust_remote_code."""
    for where in _remote_code_requests(data, (), values=False):
        raise ConfigError(f"Refused {origin}: `{where}` asks for {REMOTE_CODE_MARKER} (running code from a model "
                          f"repository). {REMOTE_CODE_FIX}")


def _remote_code_requests(value: Any, path: tuple[str, ...], *, values: bool) -> Iterator[str]:
    # Free-text metadata (notes, name) may mention the words; only keys and the scoring fields' values count.
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = (*path, str(key))
            if REMOTE_CODE_MARKER in str(key).lower():
                yield ".".join(where)
            yield from _remote_code_requests(item, where, values=values or where[-1] in SCORE_FIELDS)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _remote_code_requests(item, (*path, str(index)), values=values)
    elif values and isinstance(value, str) and REMOTE_CODE_MARKER in value.lower():
        yield ".".join(path) or "(value)"

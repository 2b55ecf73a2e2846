"""The Submit form's back end: write the spec YAML and hand it to `imibench submit` in a subprocess.

The app never imports submission or model code: the command (default `python -m benchmark.cli.main submit
{spec} --queue {queue}`) validates the spec and enqueues it. Its exit status decides success; on failure its
stderr (else stdout) is shown to the user. On success its stdout is shown; when the last non-empty stdout line is
a JSON object with `id` and `state`, those two are shown first.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmark.api.errors import ConfigError
from leaderboard.text import code_block, md_escape

DEFAULT_COMMAND: tuple[str, ...] = (
    sys.executable, "-m", "benchmark.cli.main", "submit", "{spec}", "--queue", "{queue}"
)
TIMEOUT_S = 600.0  # the real command loads the model on CPU (and may download its weights) before enqueueing
ERROR_MARKER = "imibench: error:"
TAIL_LINES = 30
# Field size limits of the public form (characters).
MAX_FIELD_CHARS: dict[str, int] = {"model": 200, "images": 200, "name": 120, "family": 60, "license": 60,
                                   "paper": 300, "submitter": 200, "revision": 80, "model_card": 300}
RATE_LIMIT = 3  # submissions per submitter ...
RATE_WINDOW_S = 3600.0  # ... per hour
PUBLIC_MODEL_SOURCES = ("timm:", "open_clip:", "torchvision:")
PUBLIC_IMAGE_PREFIXES = ("hf:",)
FORBIDDEN_MODEL_KEYS = ("weights", "sha256", "arch")
HUB_IMAGES = re.compile(r"hf:[\w.-]+/[\w.-]+(@[\w.-]+)?")
NOISE = re.compile(r"retry|retrying|urllib3|HTTPSConnectionPool|Max retries|NewConnectionError|Traceback|"
                   r"^\s+File |^\s+\^|huggingface_hub|warnings\.warn|Warning:", re.IGNORECASE)


@dataclass(frozen=True)
class SubmitOutcome:
    """What the submit command said."""

    ok: bool
    message: str


def parse_command(text: str | None) -> tuple[str, ...]:
    """A submit command from a shell-like string with `{spec}` and `{queue}` placeholders (None: the default)."""
    if text is None:
        return DEFAULT_COMMAND
    parts = tuple(shlex.split(text))
    if not parts or not any("{spec}" in part for part in parts):
        raise ConfigError(
            f"The submit command {text!r} must contain the placeholder {{spec}} (the spec YAML's path), "
            "e.g. 'imibench submit {spec} --queue {queue}'."
        )
    return parts


def build_spec(
    *,
    model: str,
    pretrained: bool = True,
    images: str = "",
    license: str = "",  # noqa: A002 - the spec field's name
    paper: str = "",
    submitter: str = "",
    family: str = "",
    name: str = "",
    imagenet_top1: float | None = None,
    revision: str = "",
) -> dict[str, Any]:
    """The flat submission spec from the form's fields: empty optional fields left out, an empty top-1 is null."""
    spec: dict[str, Any] = {"model": model.strip(), "pretrained": bool(pretrained)}
    optional = {"images": images, "license": license, "paper": paper, "submitter": submitter,
                "family": family, "name": name, "revision": revision}
    spec.update({key: value.strip() for key, value in optional.items() if value and value.strip()})
    spec["imagenet_top1"] = float(imagenet_top1) if imagenet_top1 not in (None, "") else None
    return spec


def public_spec_problem(spec: dict[str, Any], *, image_allow_list: Iterable[str] = ()) -> str | None:
    """Why a public user may not submit `spec` (None when they may): the form's single server-side check.

    Public users name Hub models and Hub image datasets only (or an image source on the operator's allow-list);
    no server path, no local file, no weights file. Messages never mention server files.
    """
    for key, limit in MAX_FIELD_CHARS.items():
        value = spec.get(key)
        if isinstance(value, str) and len(value) > limit:
            return f"The field {key!r} is {len(value)} characters long; the limit is {limit}."
    model = str(spec.get("model", "")).strip()
    if not model:
        return "The model spec is required, e.g. `timm:resnet50.a1_in1k`."
    if not model.startswith(PUBLIC_MODEL_SOURCES):
        return (f"Model {model[:80]!r} is not a public Hub model: use timm:NAME, open_clip:ARCH/TAG or "
                "torchvision:NAME[/WEIGHTS]. Local files and server paths cannot be submitted here.")
    query = model.split("?", 1)[1] if "?" in model else ""
    keys = {part.split("=", 1)[0].strip().lower() for part in query.split("&") if part}
    if keys & set(FORBIDDEN_MODEL_KEYS) or model.split(":", 1)[1].startswith(("/", ".", "~")):
        return "Weights files and server paths cannot be named in the public form: submit a Hub model id."
    if ".." in model or "\\" in model:
        return "Model ids cannot contain '..' or backslashes."
    images = str(spec.get("images") or "").strip()
    allowed = set(image_allow_list)
    if images and images != "bundled" and images not in allowed and not (
            images.startswith(PUBLIC_IMAGE_PREFIXES) and ".." not in images and HUB_IMAGES.fullmatch(images)):
        options = ["bundled", "hf:OWNER/NAME[@REVISION]", *sorted(allowed)]
        return f"Image source {images[:80]!r} is not allowed here; use one of: {', '.join(options)}."
    return None


class RateLimiter:
    """At most `limit` submissions per submitter within `window_s` seconds (in memory, thread-safe)."""

    def __init__(self, limit: int = RATE_LIMIT, window_s: float = RATE_WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._times: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, who: str, now: float | None = None) -> str | None:
        """Record an attempt by `who`; the refusal message when over the limit, else None."""
        now = time.monotonic() if now is None else now
        key = who.strip().lower()
        with self._lock:
            times = self._times.setdefault(key, deque())
            while times and now - times[0] > self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                wait = self.window_s - (now - times[0])
                return (f"Rate limit: at most {self.limit} submissions per submitter per "
                        f"{self.window_s / 3600:g} h; try again in {wait / 60:.0f} min.")
            times.append(now)
        return None


def model_key(model: str, revision: str | None = None) -> str:
    """A model spec string normalised for the resubmission check: query keys sorted, the revision (a field or a
    `revision=` key) appended as `@REV`."""
    base, _, query = model.strip().partition("?")
    parts = []
    for part in (p.strip() for p in query.split("&")):
        key, _, value = part.partition("=")
        if key.strip().lower() == "revision":
            revision = revision or value.strip()
        elif part:
            parts.append(part.lower())
    revision = (revision or "").strip()
    return base.lower() + ("?" + "&".join(sorted(parts)) if parts else "") + (f"@{revision}" if revision else "")


def scored_keys(model: str, revision: str | None, *, trained: bool) -> set[str]:
    """The keys a scored model blocks: its model without a revision, and its exact revision (a new one is new)."""
    suffix = "" if trained else "#untrained"
    exact = model_key(model, revision) + suffix
    return {exact, exact.split("@", 1)[0] + suffix if "@" in exact else exact}


def resubmission_problem(spec: dict[str, Any], scored: Iterable[str], queued: Iterable[str]) -> str | None:
    """Refuse a model already scored or queued under the same revision (a new `revision` is a new submission)."""
    key = model_key(str(spec.get("model", "")), spec.get("revision"))
    if not spec.get("pretrained", True):
        key += "#untrained"
    if key in set(scored):
        return (f"{spec.get('model')} is already scored on this leaderboard (same model, weights and revision). "
                "Resubmissions are refused; to score new weights, give their Hub revision in 'Revision' and it "
                "is listed as a new revision.")
    if key in set(queued):
        return f"{spec.get('model')} is already in the queue; see the Queue tab."
    return None


def _format_success(stdout: str) -> str:
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if lines:
        try:
            entry = json.loads(lines[-1])
        except json.JSONDecodeError:
            entry = None
        if isinstance(entry, dict) and "id" in entry and "state" in entry:
            return f"✅ Submitted: id {md_escape(entry['id'])}, state **{md_escape(entry['state'])}**."
    return "✅ Submitted.\n\n" + code_block(stdout.strip() or "(the submit command printed nothing)")


def run_submit(spec: dict[str, Any], *, queue: str | Path | None, command: Sequence[str] = DEFAULT_COMMAND,
               timeout_s: float = TIMEOUT_S) -> SubmitOutcome:
    """Write `spec` to a temporary YAML file and run the submit command on it; never raises for a failed submit."""
    if queue is None:
        return SubmitOutcome(False, "❌ Submissions are disabled: start the leaderboard with `--queue DIR`.")
    if not str(spec.get("model", "")).strip():
        return SubmitOutcome(False, "❌ The model spec string is required, e.g. `timm:resnet50.a1_in1k`.")
    if not str(spec.get("submitter", "")).strip():
        return SubmitOutcome(False, "❌ The submitter (name or email) is required.")
    with tempfile.TemporaryDirectory(prefix="imibench-submit-") as folder:
        spec_path = Path(folder) / "submission.yaml"
        spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        queue_path = str(Path(queue).expanduser().resolve())
        argv = [part.replace("{spec}", str(spec_path)).replace("{queue}", queue_path) for part in command]
        try:
            env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
        except FileNotFoundError:
            return SubmitOutcome(False, f"❌ The submit command could not be started: {argv[0]!r} was not found.")
        except subprocess.TimeoutExpired:
            return SubmitOutcome(False, f"❌ The submit command did not finish within {timeout_s:.0f} s.")
    if done.returncode != 0:
        detail = done.stderr.strip() or done.stdout.strip() or "(no output)"
        detail = detail.replace(str(spec_path), "the form's spec")
        return SubmitOutcome(False, _format_failure(done.returncode, detail))
    return SubmitOutcome(True, _format_success(done.stdout))


def _format_failure(returncode: int, detail: str) -> str:
    """One readable error paragraph (the `imibench: error:` message), the rest folded away without Hub noise."""
    start = detail.find(ERROR_MARKER)
    error = detail[start + len(ERROR_MARKER):].strip() if start >= 0 else detail.strip().splitlines()[-1]
    error = " ".join(error.split())
    text = f"❌ **Submission refused** (exit status {returncode}).\n\n> {md_escape(error)}"
    before = detail[:start] if start >= 0 else "\n".join(detail.strip().splitlines()[:-1])
    kept = [line for line in before.strip().splitlines() if line.strip() and not NOISE.search(line)]
    if kept:
        tail = "\n".join(kept[-TAIL_LINES:])
        text += f"\n\n<details><summary>Log before the error ({len(kept[-TAIL_LINES:])} lines)</summary>\n\n" \
                f"{code_block(tail)}\n\n</details>"
    return text

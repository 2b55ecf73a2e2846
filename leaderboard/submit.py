"""The Submit form's back end over `benchmark.submissions.public` (the one implementation of the public checks).

The form runs the public module's cheap checks (`precheck_public_fields`, the rate limit read-only) in process,
then writes the spec YAML and runs the submit command in a subprocess: by default `python -m benchmark.cli.main
submit {spec} --queue {queue} --public --rate-key {rate_key}`, i.e. `submit_public` (rate limit, full validation with
the model built on CPU, enqueue), so the app never imports model code. The operator's public config reaches the
command as $IMIBENCH_PUBLIC_CONFIG. The command's exit status decides success; on failure its `imibench: error:`
message (the refusal's `public_message`) is shown first, the log before it folded away, both with server paths
masked. On success, when the last non-empty stdout line is a JSON object with `id` and `state`, those are shown.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmark.api.errors import ConfigError
from benchmark.submissions.public import (
    CONFIG_ENV,
    PublicConfig,
    PublicSubmissionError,
    check_rate_limit,
    precheck_public_fields,
    sanitise,
)
from leaderboard.text import code_block, md_escape

DEFAULT_COMMAND: tuple[str, ...] = (
    sys.executable, "-m", "benchmark.cli.main", "submit", "{spec}", "--queue", "{queue}", "--public",
    "--rate-key", "{rate_key}",
)
TIMEOUT_S = 600.0  # the real command loads the model on CPU (and may download its weights) before enqueueing
ERROR_MARKER = "imibench: error:"
TAIL_LINES = 30
NOISE = re.compile(r"retry|retrying|urllib3|HTTPSConnectionPool|Max retries|NewConnectionError|Traceback|"
                   r"^\s+File |^\s+\^|huggingface_hub|warnings\.warn|Warning:", re.IGNORECASE)


@dataclass(frozen=True)
class SubmitOutcome:
    """What the submit command said."""

    ok: bool
    message: str


def parse_command(text: str | None) -> tuple[str, ...]:
    """A submit command from a shell-like string with `{spec}`, `{queue}` and (optional) `{rate_key}` placeholders
    (None: the default)."""
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


def form_problem(spec: dict[str, Any], *, queue: str | Path, config: PublicConfig, rate_key: str) -> str | None:
    """Why the form refuses `spec` before starting the submit command (None: go ahead): the public module's cheap
    checks and its rate limit (counted by the command, only read here). The message names no server path."""
    try:
        precheck_public_fields(spec, config)
        check_rate_limit(rate_key, queue=queue, config=config, record=False)
    except PublicSubmissionError as err:
        return err.public_message
    return None


def rate_key_of(client_host: str | None, submitter: str) -> str:
    """The rate-limit key of a form submission: a hash of the client's address (else of the submitter field)."""
    who = f"client:{client_host}" if client_host else f"submitter:{submitter.strip().lower()}"
    return hashlib.sha256(who.encode("utf-8")).hexdigest()[:24]


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
               timeout_s: float = TIMEOUT_S, rate_key: str = "anonymous", public_config: str | Path | None = None,
               config: PublicConfig | None = None) -> SubmitOutcome:
    """Write `spec` to a temporary YAML file and run the submit command on it (with `public_config` as
    $IMIBENCH_PUBLIC_CONFIG); never raises for a failed submit."""
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
        argv = [part.replace("{spec}", str(spec_path)).replace("{queue}", queue_path).replace("{rate_key}", rate_key)
                for part in command]
        env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}
        if public_config is not None:
            env[CONFIG_ENV] = str(Path(public_config).expanduser().resolve())
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
        except FileNotFoundError:
            return SubmitOutcome(False, "❌ The submit command could not be started (its program was not found).")
        except subprocess.TimeoutExpired:
            return SubmitOutcome(False, f"❌ The submit command did not finish within {timeout_s:.0f} s.")
    if done.returncode != 0:
        detail = done.stderr.strip() or done.stdout.strip() or "(no output)"
        detail = detail.replace(str(spec_path), "the form's spec")
        return SubmitOutcome(False, _format_failure(done.returncode, sanitise(detail, config)))
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

"""The Submit form's back end: write the spec YAML and hand it to `imibench submit` in a subprocess.

The app never imports submission or model code: the command (default `python -m benchmark.cli.main submit
{spec} --queue {queue}`) validates the spec and enqueues it. Its exit status decides success; on failure its
stderr (else stdout) is shown to the user. On success its stdout is shown; when the last non-empty stdout line is
a JSON object with `id` and `state`, those two are shown first.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmark.api.errors import ConfigError

DEFAULT_COMMAND: tuple[str, ...] = (
    sys.executable, "-m", "benchmark.cli.main", "submit", "{spec}", "--queue", "{queue}"
)
TIMEOUT_S = 600.0  # the real command loads the model on CPU (and may download its weights) before enqueueing
ERROR_MARKER = "imibench: error:"
TAIL_LINES = 30


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
) -> dict[str, Any]:
    """The flat submission spec mapping from the form's fields; empty optional fields are left out."""
    spec: dict[str, Any] = {"model": model.strip(), "pretrained": bool(pretrained)}
    optional = {"images": images, "license": license, "paper": paper, "submitter": submitter,
                "family": family, "name": name}
    spec.update({key: value.strip() for key, value in optional.items() if value and value.strip()})
    if imagenet_top1 is not None:
        spec["imagenet_top1"] = float(imagenet_top1)
    return spec


def _format_success(stdout: str) -> str:
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if lines:
        try:
            entry = json.loads(lines[-1])
        except json.JSONDecodeError:
            entry = None
        if isinstance(entry, dict) and "id" in entry and "state" in entry:
            return f"✅ Submitted: id `{entry['id']}`, state **{entry['state']}**."
    return "✅ Submitted.\n\n```\n" + (stdout.strip() or "(the submit command printed nothing)") + "\n```"


def run_submit(spec: dict[str, Any], *, queue: str | Path | None, command: Sequence[str] = DEFAULT_COMMAND,
               timeout_s: float = TIMEOUT_S) -> SubmitOutcome:
    """Write `spec` to a temporary YAML file and run the submit command on it; never raises for a failed submit."""
    if queue is None:
        return SubmitOutcome(False, "❌ Submissions are disabled: start the leaderboard with `--queue DIR`.")
    if not str(spec.get("model", "")).strip():
        return SubmitOutcome(False, "❌ The model spec string is required, e.g. `timm:resnet50.a1_in1k`.")
    with tempfile.TemporaryDirectory(prefix="imibench-submit-") as folder:
        spec_path = Path(folder) / "submission.yaml"
        spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        queue_path = str(Path(queue).expanduser().resolve())
        argv = [part.replace("{spec}", str(spec_path)).replace("{queue}", queue_path) for part in command]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
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
    """The error (from the `imibench: error:` line on, when there is one) and the end of the log when longer."""
    start = detail.find(ERROR_MARKER)
    error = detail[start:] if start >= 0 else detail
    text = f"❌ Submission refused (exit status {returncode}):\n\n```\n{error}\n```"
    if error != detail:
        tail = "\n".join(detail[:start].strip().splitlines()[-TAIL_LINES:])
        text += f"\n\nOutput before the error (last {TAIL_LINES} lines at most):\n\n```\n{tail}\n```"
    return text

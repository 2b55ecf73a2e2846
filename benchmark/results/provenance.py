"""The provenance block: versions, device, seed, dataset revisions, time."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmark import __version__
from benchmark.results.schema import Provenance


def git_sha(path: str | Path | None = None) -> str | None:
    """The commit of the source checkout imi-bench runs from, or None outside a git checkout."""
    folder = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def utc_now() -> str:
    """Current UTC time, ISO 8601, seconds precision."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def collect_provenance(
    *,
    device: str,
    dtype: str,
    seed: int,
    wall_time_s: float,
    dataset_revisions: dict[str, Any] | None = None,
    command: list[str] | str | None = None,
) -> Provenance:
    """Provenance of a run in this process."""
    torch_version = cuda_version = None
    if "torch" in sys.modules:
        import torch

        torch_version = torch.__version__
        cuda_version = torch.version.cuda
    if isinstance(command, list):
        command = shlex.join(command)
    return Provenance(
        package_version=__version__,
        git_sha=git_sha(),
        python_version=platform.python_version(),
        torch_version=torch_version,
        cuda_version=cuda_version,
        device=device,
        dtype=dtype,
        seed=seed,
        dataset_revisions=dataset_revisions or {},
        wall_time_s=round(wall_time_s, 3),
        date=utc_now(),
        command=command,
        platform=platform.platform(),
    )

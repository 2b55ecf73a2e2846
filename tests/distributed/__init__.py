"""Shared helpers of the distributed tests: a tiny quantising model (many exact ties), a synthetic image source,
shard jobs over them, and queue scorers that crash or get killed (module-level, so Ray tasks can import them)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from benchmark.activations.collect import LayerSelection, collect_extremes
from benchmark.activations.extremes import ExtremeSets
from benchmark.distributed.sharding import ShardState, collect_range, states_of
from benchmark.scoring.spec import ScoreSpec
from benchmark.stimuli.sources import ImageSource, ids_sha256, make_loader
from tests.submissions import fake_score

REPO_ROOT = Path(__file__).resolve().parents[2]


class NoiseSource(ImageSource):
    """`n` tiny RGB noise images, image i drawn from a generator seeded with i (the same in every process)."""

    def __init__(self, n: int, size: int = 8) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def ids(self) -> list[str]:
        return [f"noise/{i}" for i in range(self.n)]

    def load(self, i: int) -> Image.Image:
        pixels = np.random.default_rng(self._check_index(i)).integers(0, 256, (self.size, self.size, 3), np.uint8)
        return Image.fromarray(pixels)

    def describe(self) -> dict[str, Any]:
        return {"kind": "noise", "n_images": self.n, "ids_sha256": ids_sha256(self.ids())}


def to_tensor(image: Image.Image) -> torch.Tensor:
    """(3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


class Quantised(nn.Module):
    """Per image six units with many exact ties: channel means rounded to steps of 0.25, a constant unit, a unit
    that is NaN for some images, and a unit that is -0.0 or +0.0."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 3, 3)
        self.units = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = self.conv(x).mean(dim=(2, 3))
        rounded = torch.round(means * 4) / 4
        constant = torch.ones_like(means[:, :1])
        nan = torch.where(rounded[:, 2:3] >= NAN_FROM, torch.nan, rounded[:, :1])
        signed_zero = torch.where(rounded[:, 1:2] < 0, 0.0, -0.0) * torch.ones_like(means[:, 1:2])
        return self.units(torch.cat([rounded, constant, nan, signed_zero], dim=1))


TIE_LAYERS = {"units": LayerSelection()}
NAN_FROM = 0.0  # unit 4 is NaN for the images whose unit 2 is at least this


@dataclass(frozen=True)
class TieJob:
    """A ShardJob over `NoiseSource(n_images)` through `Quantised` (built in the task, like a spec's model)."""

    n_images: int
    k: int
    batch_size: int = 4

    def run(self, shard: range) -> ShardState:
        sets = collect_range(Quantised(), TIE_LAYERS, NoiseSource(self.n_images), to_tensor, shard, k=self.k,
                             batch_size=self.batch_size)
        return states_of(sets)

    def single_pass(self) -> dict[str, ExtremeSets]:
        """The reference: one streaming pass over every image."""
        loader = make_loader(NoiseSource(self.n_images), to_tensor, batch_size=self.batch_size)
        return collect_extremes(Quantised(), TIE_LAYERS, loader, k=self.k, progress=False)


def assert_same_sets(got: dict[str, ExtremeSets], want: dict[str, ExtremeSets]) -> None:
    """Equal bit for bit: ids, values (as bits), NaN counts and counts, layer by layer."""
    assert list(got) == list(want)
    for name, wanted in want.items():
        a, b = got[name].to_numpy(), wanted.to_numpy()
        for key in ("top_ids", "bottom_ids", "nan_count", "count"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}.{key}")
        for key in ("top_values", "bottom_values"):
            np.testing.assert_array_equal(a[key].view(np.int32), b[key].view(np.int32), err_msg=f"{name}.{key}")
        assert got[name] == wanted


# ------------------------------------------------------------------------------------------ queue scorers


def _marker(spec: ScoreSpec, name: str) -> Path:
    # The worker's `out` is a staging file unique to the claim; its work folder is WORK/<entry id>/attempt-N-CLAIM.
    Path(spec.out).parent.mkdir(parents=True, exist_ok=True)
    entry_id = Path(spec.work_dir).parent.name if spec.work_dir else Path(spec.out).stem
    return Path(spec.out).parent / f"{entry_id}.{name}"


def counting_score(spec: ScoreSpec) -> Path:
    """fake_score that also appends this process's pid to OUT.runs (to count runs per entry)."""
    with _marker(spec, "runs").open("a") as runs:
        runs.write(f"{os.getpid()}\n")
    return fake_score(spec)


def crashing_score(spec: ScoreSpec) -> Path:
    """Kills its own worker process on every run (as a segfault or an OOM kill would)."""
    print("about to crash", file=sys.stderr, flush=True)
    os._exit(1)


def crash_once_score(spec: ScoreSpec) -> Path:
    """Kills its worker process on its first run; later runs score normally."""
    marker = _marker(spec, "crashed")
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return fake_score(spec)


def killed_once_score(spec: ScoreSpec) -> Path:
    """First run: writes its pid to OUT.pid and waits to be killed from outside; later runs score normally."""
    pid_file = _marker(spec, "pid")
    if not pid_file.exists():
        tmp = pid_file.with_suffix(".pidtmp")
        tmp.write_text(str(os.getpid()))
        tmp.rename(pid_file)
        time.sleep(120)
    return fake_score(spec)


def raising_score(spec: ScoreSpec) -> Path:
    """Raises a project error (a deterministic scoring failure: not retried)."""
    from benchmark.api.errors import DataValidationError

    raise DataValidationError(f"no usable activations for {spec.model}")


def slow_counting_score(spec: ScoreSpec) -> Path:
    """counting_score after a second (keeps a task in flight)."""
    time.sleep(1.0)
    return counting_score(spec)

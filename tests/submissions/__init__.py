"""Shared helpers of the submission tests: specs, a valid result file and fake scorers."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from benchmark.api.types import Protocol
from benchmark.results.io import write_result
from benchmark.results.provenance import collect_provenance
from benchmark.results.schema import (
    ImageSourceInfo,
    LayerScore,
    ProtocolInfo,
    ProxyInfo,
    ResultFile,
    Scores,
    SubmissionInfo,
    Summary,
)
from benchmark.scoring.spec import ScoreSpec
from benchmark.submissions.spec import SubmissionSpec, parse_submission


def make_spec(model: str = "timm:resnet18", **fields: Any) -> SubmissionSpec:
    """A small valid submission (random-init weights, no proxy: the worker supplies it)."""
    data: dict[str, Any] = {"model": model, "pretrained": False, "submitter": "Ada <ada@example.org>",
                            "name": f"test {model}", "family": "ResNet", "imagenet_top1": 12.5, **fields}
    return parse_submission(data)


def make_result(model: str = "resnet18", mean: float = 0.7) -> ResultFile:
    """A minimal valid result file."""
    summary = Summary(n_units=1, mean=mean, p5=mean, ci_low=mean - 0.1, ci_high=mean + 0.1)
    return ResultFile(
        benchmark_version="0.1.0",
        submission=SubmissionInfo(id=f"timm:{model}", source="timm", model=model, spec={"model": f"timm:{model}"}),
        protocol=ProtocolInfo(task=Protocol(), image_source=ImageSourceInfo(kind="bundled", id="bundled", n_images=8)),
        proxy=ProxyInfo(name="mis-pixel", version="1"),
        scores=Scores(model=summary, layers=[LayerScore(layer="layer1", **summary.model_dump())], units=[]),
        provenance=collect_provenance(device="cpu", dtype="float32", seed=0, wall_time_s=0.1),
    )


def fake_score(spec: ScoreSpec) -> Path:
    """A scorer that logs, prints to stderr and writes a valid result file to spec.out."""
    logging.getLogger("benchmark.scoring.fake").info("scoring %s", spec.model)
    print("fake scorer progress on stderr", file=sys.stderr)
    return write_result(make_result(spec.model.partition(":")[2].partition("?")[0]), spec.out)


def failing_score(spec: ScoreSpec) -> Path:
    """A scorer that logs and then fails."""
    logging.getLogger("benchmark.scoring.fake").info("about to fail on %s", spec.model)
    raise ValueError(f"boom: no activations for {spec.model}")


def slow_score(spec: ScoreSpec) -> Path:
    """A scorer that takes a minute (to be killed mid-run)."""
    time.sleep(60)
    return fake_score(spec)

"""Calibration study of the validation statistics on simulated releases (prints numbers; not a pytest).

- Null study: human accuracy shuffled within mode (LOMO and k-fold), for mis-pixel, learned and the noise
  proxy: the headline's mean and sd, and how often its 95% CI covers 0 (nominal 95%).
- Signal study: a planted proxy (true accuracy + noise) on fresh releases: does the CI cover the population
  value of the headline at the nominal rate; per-release realised truth-vs-observed correlation; r/ceiling of the
  planted truth.
- Per-model r null (noise proxy, shared calibration) and the ranking of mis-pixel vs coherence-pixel vs noise with
  the paired test, on the default simulated release.

Speed: image features (MIS task margins, coherence, noise raw scores) do not depend on the labels, so each release
embeds its images once and the study replays them through `Replay*` proxies; every label-dependent step (the MIS
temperature, logistic calibrations, isotonic fits, the ridge) is refitted per fold with the proxies' own code.
`--runs`, `--proxies`, `--schemes` and `--studies` pick a subset; the output says how many runs it did.

    python benchmarks/validation_calibration.py --runs 100            # the full study (tens of minutes)
    python benchmarks/validation_calibration.py --runs 10 --studies null --proxies noise
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.data.simulate import SimulationConfig, write_release  # noqa: E402
from benchmark.proxies.base import CalibratedProxy, ProxyMetric, ProxyUnit, check_targets, proxies  # noqa: E402
from benchmark.proxies.learned import LearnedProxy  # noqa: E402
from benchmark.proxies.mis import TaskIndex, fit_temperature, margin_probability  # noqa: E402
from benchmark.validation import inference as inf  # noqa: E402
from benchmark.validation.crossval import _cross_validate  # noqa: E402
from benchmark.validation.splits import base_model, make_splits  # noqa: E402

# ------------------------------------------------------------------------------------ replayed image features

_MARGINS: dict[tuple, np.ndarray] = {}
_COHERENCE: dict[tuple, float] = {}


def _margin_index(units: Sequence[ProxyUnit]) -> tuple[np.ndarray, TaskIndex]:
    per_unit = [_MARGINS[u.key] for u in units]
    task_unit = np.repeat(np.arange(len(units)), [len(m) for m in per_unit])
    return np.concatenate(per_unit), TaskIndex([], len(units), task_unit, None, None, None, None)


@proxies.register("replay-mis-pixel")
class ReplayMISPixel(ProxyMetric):
    """mis-pixel with its task margins looked up (the same temperature fit and prediction as MIS)."""

    json_restorable: ClassVar[bool] = False

    def fit(self, units: Sequence[ProxyUnit], human_accuracy: np.ndarray) -> ReplayMISPixel:
        y = check_targets(units, human_accuracy)
        margins, index = _margin_index(units)
        self.temperature_ = fit_temperature(margins, index, y)
        return self

    def predict(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        self._check_fitted()
        margins, index = _margin_index(units)
        return index.unit_mean(margin_probability(margins, self.temperature_, False))


@proxies.register("replay-coherence-pixel")
class ReplayCoherencePixel(CalibratedProxy):
    """coherence-pixel with its raw scores looked up."""

    json_restorable: ClassVar[bool] = False

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        return np.array([_COHERENCE[u.key] for u in units])


def replay_metric(name: str, seed: int = 0) -> ProxyMetric:
    """The study's stand-in for a registered proxy."""
    if name == "mis-pixel":
        return ReplayMISPixel()
    if name == "coherence-pixel":
        return ReplayCoherencePixel()
    if name == "learned":
        return LearnedProxy(features=("replay-mis-pixel", "replay-coherence-pixel"))
    if name == "noise":
        return proxies.get("noise")(seed=seed)
    raise SystemExit(f"unknown proxy {name!r}; the study knows mis-pixel, coherence-pixel, learned, noise")


@dataclass
class Release:
    """One simulated release's units and observed accuracy per mode."""

    root: Path
    units: dict[str, list[ProxyUnit]]
    observed: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    halves: dict[str, inf.SplitHalves]


def load_release(root: Path, *, features: bool = True) -> Release:
    """Units, accuracies, planted truth and split halves of a written release; embeds its images once."""
    from benchmark.proxies.base import make_proxy
    from benchmark.validation.run import build_config, prepare_data

    prepared = prepare_data(build_config(source=str(root), progress=False))
    truth_table = __import__("pandas").read_csv(root / "simulation" / "truth.csv")
    truth_of = {(r.model, r.layer, int(r.channel), r.mode): r.true_accuracy for r in truth_table.itertuples()}
    units, observed, truth, halves = {}, {}, {}, {}
    for mode in ("natural", "optimized"):
        keep = np.array([i for i, u in enumerate(prepared.units) if u.mode == mode])
        units[mode] = [prepared.units[i] for i in keep]
        observed[mode] = prepared.human["accuracy"].to_numpy(dtype=float)[keep]
        truth[mode] = np.array([truth_of[u.key] for u in units[mode]])
        if prepared.split_halves is not None:
            halves[mode] = prepared.split_halves[mode]
        if features:
            mis = make_proxy("mis-pixel")
            for unit, margins in zip(units[mode], mis.task_margins(units[mode])):
                _MARGINS[unit.key] = margins
            coherence = make_proxy("coherence-pixel")
            for unit, value in zip(units[mode], coherence.raw_scores(units[mode])):
                _COHERENCE[unit.key] = float(value)
    return Release(root, units, observed, truth, halves)


def headline(metric: ProxyMetric, units: list[ProxyUnit], y: np.ndarray, scheme: str, seed: int,
             n_boot: int) -> inf.Interval:
    """Held-out headline with its CI, as the harness computes it."""
    from benchmark.validation.harness import headline_scores

    splits = make_splits(units, scheme, seed=seed)
    predicted, folds = _cross_validate(metric, units, y, splits, progress=False, desc="")
    scores = headline_scores(metric, units, predicted)
    design = inf.Design.make(folds, [base_model(u.model) for u in units])
    return inf.headline_interval(y, scores, design, n_boot=n_boot, seed=seed)[0]


# ------------------------------------------------------------------------------------------------- studies


def null_study(release: Release, proxies_: list[str], schemes: list[str], runs: int, n_boot: int,
               mode: str = "natural") -> list[dict]:
    """Shuffled labels within mode: headline mean/sd and CI coverage of 0."""
    rows = []
    for scheme in schemes:
        for name in proxies_:
            rng = np.random.default_rng([runs, len(name), 11])
            values, covered, p_values, start = [], [], [], time.perf_counter()
            for run in range(runs):
                y = rng.permutation(release.observed[mode])
                metric = replay_metric(name, seed=run)
                result = headline(metric, release.units[mode], y, scheme, run, n_boot)
                values.append(result.value)
                covered.append(result.ci_low <= 0 <= result.ci_high)
                p_values.append(result.p_value)
            rows.append({"study": "null", "scheme": scheme, "proxy": name, "runs": runs,
                         "mean": float(np.mean(values)), "sd": float(np.std(values)),
                         "coverage_of_0": float(np.mean(covered)),
                         "rejections_at_5pct": float(np.mean(np.array(p_values) < 0.05)),
                         "seconds": round(time.perf_counter() - start, 1)})
            print(_fmt(rows[-1]), flush=True)
    return rows


def _fmt(row: dict) -> str:
    return "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="label shuffles (null) and releases (signal)")
    parser.add_argument("--proxies", default="mis-pixel,learned,noise")
    parser.add_argument("--schemes", default="lomo,kfold")
    parser.add_argument("--studies", default="null,signal,ranking")
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--workdir", type=Path, help="where releases are written (default: a temporary folder)")
    args = parser.parse_args(argv)
    proxies_ = [p.strip() for p in args.proxies.split(",") if p.strip()]
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    studies = {s.strip() for s in args.studies.split(",") if s.strip()}
    work = args.workdir or Path(tempfile.mkdtemp(prefix="imibench-calibration-"))
    rows: list[dict] = []
    start = time.perf_counter()
    if "null" in studies:
        root = work / "null-release"
        if not (root / "simulation" / "truth.csv").is_file():
            write_release(root, SimulationConfig(seed=101))
        rows += null_study(load_release(root), proxies_, schemes, args.runs, args.n_boot)
    print(f"done: {len(rows)} cells, {args.runs} runs each, {time.perf_counter() - start:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

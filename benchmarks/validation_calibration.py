"""Calibration study of the validation statistics on simulated releases (prints numbers; not a pytest).

- Null study: human accuracy shuffled within mode (LOMO and k-fold), for mis-pixel, learned and the noise
  proxy: the headline's mean and sd, and how often its 95% CI covers 0 (nominal 95%). As in the harness, a fitted
  proxy's CI refits its cross-validation on every cluster resample (`--n-refits`), a calibration-free one's
  resamples fixed scores (`--n-boot`).
- Signal study: a planted proxy (true accuracy + noise) on fresh releases: does the CI cover the population
  value of the headline at the nominal rate; per-release realised truth-vs-observed correlation; r/ceiling of the
  planted truth.
- Fitted signal study: the learned proxy on two planted features over fresh releases, with its refitted CI (the
  variance of the refits' own fit taken out, as in the harness): does it cover the population value.
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
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.data.simulate import SimulationConfig, simulate_responses, write_release
from benchmark.proxies.base import CalibratedProxy, ProxyMetric, ProxyUnit, check_targets, proxies
from benchmark.proxies.learned import LearnedProxy
from benchmark.proxies.mis import TaskIndex, concat_per_unit, fit_temperature, margin_probability
from benchmark.validation import inference as inf
from benchmark.validation.crossval import _cross_validate
from benchmark.validation.splits import base_model, make_splits

# ------------------------------------------------------------------------------------ replayed image features

_MARGINS: dict[tuple, np.ndarray] = {}
_COHERENCE: dict[tuple, float] = {}


def _margin_index(units: Sequence[ProxyUnit]) -> tuple[np.ndarray, TaskIndex]:
    return concat_per_unit([_MARGINS[u.key] for u in units])


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
    truth_table = pd.read_csv(root / "simulation" / "truth.csv")
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
             n_boot: int, pooled: list[float] | None = None, n_refits: int = 50) -> inf.Interval:
    """Held-out headline with its CI, as the harness computes it: a fitted proxy's cross-validation refitted on
    `n_refits` cluster resamples, a calibration-free proxy's fixed scores on `n_boot` (appends the pooled r)."""
    from benchmark.validation.harness import Refits, headline_scores, needs_refits

    splits = make_splits(units, scheme, seed=seed)
    predicted, folds = _cross_validate(metric, units, y, splits, progress=False, desc="")
    if pooled is not None:
        pooled.append(float(np.corrcoef(y, predicted)[0, 1]) if np.ptp(predicted) > 0 else 0.0)
    scores = headline_scores(metric, units, predicted)
    design = inf.Design.make(folds, [base_model(u.model) for u in units])
    if needs_refits(metric, design):
        refits = Refits.run(metric, units, y, splits, design, n_refits=n_refits, seed=seed)
        return refits.interval(y, scores, design)
    return inf.headline_interval(y, scores, design, n_boot=n_boot, seed=seed)[0]


# ------------------------------------------------------------------------------------------------- studies


def null_study(release: Release, proxies_: list[str], schemes: list[str], runs: int, n_boot: int,
               mode: str = "natural", n_refits: int = 50) -> list[dict]:
    """Shuffled labels within mode: headline mean/sd and CI coverage of 0."""
    rows = []
    for scheme in schemes:
        for name in proxies_:
            rng = np.random.default_rng([runs, len(name), 11])
            values, covered, p_values, pooled, start = [], [], [], [], time.perf_counter()
            for run in range(runs):
                y = rng.permutation(release.observed[mode])
                metric = replay_metric(name, seed=run)
                result = headline(metric, release.units[mode], y, scheme, run, n_boot, pooled, n_refits)
                values.append(result.value)
                covered.append(result.ci_low <= 0 <= result.ci_high)
                p_values.append(result.p_value)
            refitted = needs_refits_name(name)
            rows.append({"study": "null", "scheme": scheme, "proxy": name, "runs": runs,
                         "interval": f"refitted on {n_refits} resamples" if refitted else f"{n_boot} fixed-score",
                         "mean": float(np.mean(values)), "sd": float(np.std(values)),
                         "coverage_of_0": float(np.mean(covered)),
                         "rejections_at_5pct": float(np.mean(np.array(p_values) < 0.05)),
                         "pooled_r_mean": float(np.mean(pooled)),
                         "seconds": round(time.perf_counter() - start, 1)})
            print(_fmt(rows[-1]), flush=True)
    return rows


def needs_refits_name(name: str) -> bool:
    """Whether the study's stand-in for `name` is a fitted proxy (its CI refits on every resample)."""
    return not isinstance(replay_metric(name), CalibratedProxy)


def per_model_null(release: Release, runs: int, n_boot: int, mode: str = "natural") -> dict:
    """Per-model r of the noise proxy's raw scores under shuffled labels (9 models: it is computed, with its CI)."""
    units = release.units[mode]
    raw = proxies.get("noise")(seed=0).raw_scores(units)
    models = np.array([u.model for u in units])
    bases = np.array([base_model(m) for m in models])
    rng = np.random.default_rng(5)
    values, covered = [], []
    for run in range(runs):
        result = inf.model_correlation(rng.permutation(release.observed[mode]), raw, models, bases, n_boot=n_boot,
                                       seed=run)
        values.append(result.pearson.value)
        covered.append(result.pearson.ci_low <= 0 <= result.pearson.ci_high)
    row = {"study": "per-model null", "scheme": "shared raw scores", "proxy": "noise", "runs": runs,
           "n_models": len(set(bases)), "mean": float(np.mean(values)), "sd": float(np.std(values)),
           "coverage_of_0": float(np.mean(covered))}
    print(_fmt(row), flush=True)
    return row


class Planted(CalibratedProxy):
    """A planted proxy: logit(true accuracy) plus fixed per-unit noise of sd `noise` (0: the truth itself)."""

    json_restorable: ClassVar[bool] = False
    table: ClassVar[dict[tuple, float]] = {}

    def raw_scores(self, units: Sequence[ProxyUnit]) -> np.ndarray:
        return np.array([self.table[u.key] for u in units])


@proxies.register("planted-strong")
class PlantedStrong(Planted):
    """A learned proxy's first planted feature: logit(true accuracy) + N(0, 0.7) (see `fitted_signal_study`)."""

    table: ClassVar[dict[tuple, float]] = {}


@proxies.register("planted-weak")
class PlantedWeak(PlantedStrong):
    """A learned proxy's second planted feature: logit(true accuracy) + N(0, 1.5)."""

    table: ClassVar[dict[tuple, float]] = {}


def fitted_signal_study(schemes: list[str], runs: int, n_refits: int, mode: str = "natural") -> list[dict]:
    """A fitted proxy under signal: `learned` on two planted features over fresh releases, its refitted CI.

    The population value is the mean headline over the runs: what the cross-validated headline of this fitted
    proxy estimates at this release size (the CI's target; its Monte-Carlo error is sd / sqrt(runs)).
    """
    rows = []
    for scheme in schemes:
        values, intervals, start = [], [], time.perf_counter()
        for run in range(runs):
            release = simulate_responses(SimulationConfig(seed=20_000 + run))
            units, y, true, _ = _observed(release.responses, release.truth, mode)
            rng = np.random.default_rng([run, 5])
            logit = np.log(true) - np.log1p(-true)
            PlantedStrong.table = {u.key: float(v) for u, v in zip(units, logit + 0.7 * rng.standard_normal(len(units)))}
            PlantedWeak.table = {u.key: float(v) for u, v in zip(units, logit + 1.5 * rng.standard_normal(len(units)))}
            metric = LearnedProxy(features=("planted-strong", "planted-weak"))
            interval = headline(metric, units, y, scheme, run, n_refits, n_refits=n_refits)
            values.append(interval.value)
            intervals.append((interval.ci_low, interval.ci_high))
        population = float(np.mean(values))
        covered = [low <= population <= high for low, high in intervals]
        rows.append({"study": "fitted signal", "scheme": scheme, "proxy": "learned (planted features)", "runs": runs,
                     "interval": f"refitted on {n_refits} resamples", "population_headline": population,
                     "mean": population, "sd": float(np.std(values)),
                     "coverage_of_population": float(np.mean(covered)),
                     "seconds": round(time.perf_counter() - start, 1)})
        print(_fmt(rows[-1]), flush=True)
    return rows


def _observed(responses, truth, mode: str) -> tuple[list[ProxyUnit], np.ndarray, np.ndarray, object]:
    """Units (no stimuli), observed accuracy (passed participants' main trials), truth and the main trials."""
    main = responses[responses["passed_checks"] & ~responses["catch_trial"] & ~responses["is_demo"]]
    main = main[main["mode"] == mode]
    observed = main.groupby(["model", "layer", "channel"], observed=True)["correct"].mean()
    rows = truth[truth["mode"] == mode]
    units = [ProxyUnit(str(m), str(layer), int(c), mode, ()) for m, layer, c in
             zip(rows["model"], rows["layer"], rows["channel"])]
    y = observed.reindex(pd.MultiIndex.from_tuples([(u.model, u.layer, u.channel) for u in units])).to_numpy(float)
    return units, y, rows["true_accuracy"].to_numpy(dtype=float), main


def _plant(units: list[ProxyUnit], true: np.ndarray, noise: float, seed: int) -> None:
    rng = np.random.default_rng([seed, 3])
    logit = np.log(true) - np.log1p(-true)
    Planted.table = {u.key: float(v) for u, v in zip(units, logit + noise * rng.standard_normal(len(units)))}


def signal_study(schemes: list[str], runs: int, n_boot: int, noise: float = 0.5, mode: str = "natural") -> list[dict]:
    """Fresh releases (no images) with a planted proxy: CI coverage of the population headline; r/ceiling of truth."""
    from benchmark.data.aggregate import split_half_accuracies
    from benchmark.data.simulate import simulate_responses

    big = simulate_responses(SimulationConfig(seed=999_999, units_per_layer=40))
    units, y, true, _ = _observed(big.responses, big.truth, mode)
    _plant(units, true, noise, 0)
    population = {s: inf.headline_r(y, Planted().raw_scores(units),
                                    _folds(units, s, 0)) for s in schemes}
    results = {s: {"value": [], "covered": []} for s in schemes}
    realised, ratios, flagged = [], [], []
    start = time.perf_counter()
    for run in range(runs):
        release = simulate_responses(SimulationConfig(seed=10_000 + run))
        units, y, true, main = _observed(release.responses, release.truth, mode)
        realised.append(float(np.corrcoef(true, y)[0, 1]))
        _plant(units, true, noise, run)
        scores = Planted().raw_scores(units)
        for scheme in schemes:
            design = inf.Design.make(_folds(units, scheme, run), [base_model(u.model) for u in units])
            interval, _ = inf.headline_interval(y, scores, design, n_boot=n_boot, seed=run)
            results[scheme]["value"].append(interval.value)
            results[scheme]["covered"].append(interval.ci_low <= population[scheme] <= interval.ci_high)
        table, a, b = split_half_accuracies(main, mode=mode, n_splits=20, seed=run)
        column = {(str(m), str(layer), int(c)): i for i, (m, layer, c) in
                  enumerate(zip(table["model"], table["layer"], table["channel"]))}
        cols = np.array([column[(u.model, u.layer, u.channel)] for u in units])
        design = inf.Design.make(_folds(units, "lomo", run), [base_model(u.model) for u in units])
        ratio = inf.ceiling_ratio(y, true, inf.SplitHalves(a[:, cols], b[:, cols]), design, n_boot=n_boot, seed=run)
        ratios.append(ratio.ratio.value)
        flagged.append(ratio.flag is not None)
    rows = []
    for scheme in schemes:
        rows.append({"study": "signal", "scheme": scheme, "proxy": f"planted (logit truth + N(0, {noise}))",
                     "runs": runs, "population_headline": population[scheme],
                     "mean": float(np.mean(results[scheme]["value"])), "sd": float(np.std(results[scheme]["value"])),
                     "coverage_of_population": float(np.mean(results[scheme]["covered"])),
                     "seconds": round(time.perf_counter() - start, 1)})
        print(_fmt(rows[-1]), flush=True)
    ratios_a = np.array(ratios)
    rows.append({"study": "truth / ceiling", "scheme": "lomo", "proxy": "planted truth", "runs": runs,
                 "realised_truth_r_mean": float(np.mean(realised)), "realised_truth_r_sd": float(np.std(realised)),
                 "ratio_mean": float(np.nanmean(ratios_a)), "ratio_p05": float(np.nanquantile(ratios_a, 0.05)),
                 "ratio_p95": float(np.nanquantile(ratios_a, 0.95)), "share_above_1": float(np.mean(ratios_a > 1)),
                 "share_flagged": float(np.mean(flagged))})
    print(_fmt(rows[-1]), flush=True)
    return rows


def _folds(units: list[ProxyUnit], scheme: str, seed: int) -> np.ndarray:
    folds = np.empty(len(units), dtype=int)
    for f, (_, test) in enumerate(make_splits(units, scheme, seed=seed)):
        folds[test] = f
    return folds


def ranking(release: Release, n_boot: int, mode: str = "natural", n_refits: int = 200) -> list[dict]:
    """Headline of each proxy on the release's (simulated) labels, and the paired tests against mis-pixel.

    As `imibench proxy validate --metrics A,B` does: every proxy's replicates come from the same `n_refits` cluster
    resamples (seed 0), refitted for fitted proxies (mis-pixel, learned), fixed scores for calibration-free ones.
    """
    from benchmark.validation.harness import Refits, headline_scores, needs_refits

    units, y = release.units[mode], release.observed[mode]
    splits = make_splits(units, "lomo")
    scores, replicates, fits, rows = {}, {}, {}, []
    design = None
    for name in ("mis-pixel", "coherence-pixel", "learned", "noise"):
        metric = replay_metric(name)
        predicted, folds = _cross_validate(metric, units, y, splits, progress=False, desc="")
        scores[name] = headline_scores(metric, units, predicted)
        design = inf.Design.make(folds, [base_model(u.model) for u in units])
        if needs_refits(metric, design):
            refits = Refits.run(metric, units, y, splits, design, n_refits=n_refits, seed=0)
            replicates[name], fits[name] = refits.headlines, refits.fit_headlines
            interval = refits.interval(y, scores[name], design)
        else:
            interval, replicates[name] = inf.headline_interval(y, scores[name], design, n_boot=n_refits, seed=0)
        rows.append({"study": "ranking", "scheme": "lomo", "proxy": name, "headline": interval.value,
                     "ci_low": interval.ci_low, "ci_high": interval.ci_high, "p_value": interval.p_value})
        print(_fmt(rows[-1]), flush=True)
    for other in ("coherence-pixel", "noise"):
        d = inf.paired_difference(y, scores["mis-pixel"], scores[other], design, n_boot=n_refits, seed=0,
                                  replicates_a=replicates["mis-pixel"], replicates_b=replicates[other],
                                  fit_replicates_a=fits.get("mis-pixel"), fit_replicates_b=fits.get(other)).difference
        rows.append({"study": "paired", "scheme": "lomo", "proxy": f"mis-pixel - {other}", "difference": d.value,
                     "ci_low": d.ci_low, "ci_high": d.ci_high, "p_value": d.p_value})
        print(_fmt(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    """The study's rows as README tables."""
    out = []
    null = [r for r in rows if r["study"] == "null"]
    if null:
        out += [("| null (shuffled labels) | scheme | runs | CI resamples | headline mean | sd | CI covers 0 | p < 0.05 "
                 "| pooled r mean |"), "|---|---|---|---|---|---|---|---|---|"]
        out += [f"| {r['proxy']} | {r['scheme']} | {r['runs']} | {r.get('interval', '')} | {r['mean']:+.3f} | "
                f"{r['sd']:.3f} | {r['coverage_of_0']:.2f} | {r['rejections_at_5pct']:.2f} | "
                f"{r.get('pooled_r_mean', float('nan')):+.3f} |" for r in null]
    for r in (r for r in rows if r["study"] == "per-model null"):
        out += ["", (f"Per-model r of the noise proxy under shuffled labels ({r['n_models']} models, {r['runs']} "
                     f"runs): mean {r['mean']:+.3f}, sd {r['sd']:.3f}, CI covers 0 in {r['coverage_of_0']:.2f}.")]
    signal = [r for r in rows if r["study"] in ("signal", "fitted signal")]
    if signal:
        out += ["", "| signal (planted proxy) | scheme | runs | population headline | mean | sd | CI covers it |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {r['proxy']} | {r['scheme']} | {r['runs']} | {r['population_headline']:.3f} | {r['mean']:.3f} | "
                f"{r['sd']:.3f} | {r['coverage_of_population']:.2f} |" for r in signal]
    for r in (r for r in rows if r["study"] == "truth / ceiling"):
        out += ["", (f"Planted truth over {r['runs']} releases: realised truth-vs-observed r "
                     f"{r['realised_truth_r_mean']:.3f} (sd {r['realised_truth_r_sd']:.3f}); headline / split-half "
                     f"ceiling mean {r['ratio_mean']:.3f} [5-95%: {r['ratio_p05']:.3f}, {r['ratio_p95']:.3f}], "
                     f"above 1 in {r['share_above_1']:.2f}, flagged in {r['share_flagged']:.2f}.")]
    ranked = [r for r in rows if r["study"] in ("ranking", "paired")]
    if ranked:
        out += ["", "| default release (seed 0), natural, LOMO | headline or difference | 95% CI | p |", "|---|---|---|---|"]
        out += [f"| {r['proxy']} | {r.get('headline', r.get('difference')):+.3f} | [{r['ci_low']:+.3f}, "
                f"{r['ci_high']:+.3f}] | {r['p_value']:.2g} |" for r in ranked]
    return "\n".join(out)


def _fmt(row: dict) -> str:
    return "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="label shuffles (null) and releases (signal)")
    parser.add_argument("--proxies", default="mis-pixel,learned,noise")
    parser.add_argument("--schemes", default="lomo,kfold")
    parser.add_argument("--studies", default="null,signal,fitted-signal,ranking")
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--n-refits", type=int, default=50, help="resamples refitted for a fitted proxy's CI")
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
        release = load_release(root)
        rows += null_study(release, proxies_, schemes, args.runs, args.n_boot, n_refits=args.n_refits)
        rows.append(per_model_null(release, args.runs, args.n_boot))
    if "signal" in studies:
        rows += signal_study(schemes, args.runs, args.n_boot)
    if "fitted-signal" in studies:
        rows += fitted_signal_study(schemes, args.runs, args.n_refits)
    if "ranking" in studies:
        root = work / "default-release"
        if not (root / "simulation" / "truth.csv").is_file():
            write_release(root, SimulationConfig(seed=0))
        rows += ranking(load_release(root), args.n_boot)  # 200 refits, as `proxy validate` by default
    print(f"done: {len(rows)} cells, {args.runs} runs each, {time.perf_counter() - start:.0f} s")
    print(markdown(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

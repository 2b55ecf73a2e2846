"""A result file as text: the model score, per-layer scores, extreme units, proxy and provenance."""

from __future__ import annotations

import pandas as pd

from benchmark.results.schema import ResultFile, Summary


def _fmt(summary: Summary) -> str:
    return (f"{summary.mean:.3f} [{summary.ci_low:.3f}, {summary.ci_high:.3f}]  p5 {summary.p5:.3f}  "
            f"({summary.n_units} units)")


def format_result(result: ResultFile, *, max_units: int = 10) -> str:
    """Human-readable summary of a result file."""
    sub, proxy, prov = result.submission, result.proxy, result.provenance
    lines = [
        f"Submission {sub.id}  ({sub.source}:{sub.model}, weights {sub.weights_sha256 or sub.weights_id})",
        f"MIS ({proxy.name} v{proxy.version}): {_fmt(result.scores.model)}",
    ]
    humans = "humans" if proxy.human_data is not None and not proxy.human_data.is_simulated else (
        "simulated humans" if proxy.human_data is not None else "human data of unknown origin")
    headline = proxy.validation.get("headline")
    pearson = proxy.validation.get("pearson")
    where = f"({proxy.validation.get('scheme', '?')}, {proxy.validation.get('mode', '?')} mode)"
    if isinstance(headline, dict) and headline.get("value") is not None:
        lines.append(f"Proxy validation: held-out headline r (fold-mean Pearson) with {humans} "
                     f"{headline['value']:.3f} {where}")
    elif isinstance(pearson, dict) and pearson.get("value") is not None:
        lines.append(f"Proxy validation: per-unit Pearson r with {humans} {pearson['value']:.3f} {where}")
    source = result.protocol.image_source
    task = result.protocol.task
    lines.append(f"Protocol: N={task.n_tasks} tasks, K={task.n_references} references, {task.query_variant} "
                 f"queries; images {source.kind} {source.id} ({source.n_images})")
    layers = pd.DataFrame([
        {"layer": s.layer, "depth": s.relative_depth, "units": s.n_units, "mean": s.mean, "p5": s.p5,
         "ci_low": s.ci_low, "ci_high": s.ci_high}
        for s in result.scores.layers
    ])
    lines += ["", "Per layer:", layers.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    units = sorted(result.scores.units, key=lambda u: u.score)
    if units and max_units > 0:
        lines.append("")
        lines.append("Most interpretable units: " + ", ".join(
            f"{u.layer}/{u.channel} {u.score:.3f}" for u in units[::-1][:max_units]))
        lines.append("Least interpretable units: " + ", ".join(
            f"{u.layer}/{u.channel} {u.score:.3f}" for u in units[:max_units]))
    if result.scores.skipped_units:
        lines.append(f"Skipped units: {len(result.scores.skipped_units)} "
                     f"(e.g. {result.scores.skipped_units[0]})")
    lines += ["", f"Provenance: imi-bench {prov.package_version} (git {prov.git_sha or 'n/a'}), torch "
                  f"{prov.torch_version}, {prov.device} {prov.dtype}, seed {prov.seed}, {prov.wall_time_s:.1f} s, "
                  f"{prov.date}", f"Rerun: {prov.command}"]
    return "\n".join(lines)

"""The About tab's text: the method, its validation, citations, and how to reproduce a row."""

from __future__ import annotations

import json

from leaderboard.loading import LoadedResult
from leaderboard.table import display_name

ABOUT_MARKDOWN = """
## What is measured

**The task.** Per-unit interpretability is measured with the two-alternative forced-choice (2-AFC) task of the
human psychophysics studies: for one unit (a channel, spatially averaged, or a neuron) an observer sees
*K* = 9 reference images that activate the unit most and 9 that activate it least, and two query images; they
pick the query that belongs with the maximally activating references. The unit is interpretable to the degree
that observers answer correctly. Every unit gets *N* = 20 such tasks, with references spread over the ranks so
that each task holds one image from each bin of *N* consecutive ranks.

**MIS, the Machine Interpretability Score.** Humans are replaced by a similarity model *f* (the DreamSim
ensemble by default). For a query *q* and a reference set *E*, *s(q, E)* is the mean similarity of *q* to the
images in *E*; the decision value of a task is
*d = [s(q+, E+) − s(q+, E−)] − [s(q−, E+) − s(q−, E−)]*, its predicted accuracy *p = σ(d / T)* with the
temperature *T* fitted on human responses, and the unit's MIS is the mean of *p* over its tasks. A model's
score is the mean over its scored units, with the 5th percentile and a bootstrap 95% CI.

**Validation against humans.** A proxy is only used after it was validated against the human responses of the
IMI release: per-unit correlation with human accuracy (with CIs and the split-half noise ceiling) on held-out
models. Each result file carries its proxy's name, version, fitted parameters and these validation numbers
(see the row details below).

**Ranks and ties.** Ranks are computed within one benchmark version and proxy version. A model whose 95% CI
overlaps the CI of the model ranked directly above it shares that model's rank and gets the tie marker `=`.

## Citations

- Roland S. Zimmermann, Thomas Klein, Wieland Brendel. *Scale Alone Does not Improve Mechanistic
  Interpretability in Vision Models.* NeurIPS 2023. (The IMI dataset of human 2-AFC responses.)
- Roland S. Zimmermann, David Klindt, Wieland Brendel. *Measuring Per-Unit Interpretability at Scale Without
  Humans.* NeurIPS 2024. (The Machine Interpretability Score.)

## Reproduce a row

Every row comes from one result file whose `provenance` block records the package version, git commit, device,
dtype, seed, dataset revisions and the command that produced it. Pick a row to see its command:
"""


def provenance_markdown(loaded: LoadedResult | None) -> str:
    """The reproduce-this-row panel: the row's `provenance.command`, its proxy validation and full provenance."""
    if loaded is None:
        return "_Pick a row above._"
    result = loaded.result
    prov = result.provenance
    command = prov.command or "(this result file records no command; rerun with the spec in `submission.spec`)"
    validation = json.dumps(result.proxy.validation, indent=2, sort_keys=True) if result.proxy.validation else "{}"
    return "\n".join(
        [
            f"**{display_name(loaded)}** (`{result.submission.id}`, benchmark {result.benchmark_version}, "
            f"file `{loaded.path.name}`)",
            "",
            "Command that reproduces it:",
            "```bash",
            command,
            "```",
            f"Package {prov.package_version}, git `{prov.git_sha or 'unknown'}`, device {prov.device}, "
            f"dtype {prov.dtype}, seed {prov.seed}, date {prov.date}, wall time {prov.wall_time_s:.1f} s.",
            "",
            f"Proxy `{result.proxy.name}` version {result.proxy.version}; validation against humans:",
            "```json",
            validation,
            "```",
            "Full provenance block:",
            "```json",
            prov.model_dump_json(indent=2),
            "```",
            "Submission spec (rerun input):",
            "```json",
            json.dumps(result.submission.spec, indent=2, sort_keys=True, default=str),
            "```",
        ]
    )

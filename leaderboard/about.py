"""The About tab's text: the method, its validation, citations, and how to reproduce a row."""

from __future__ import annotations

import json

from leaderboard.loading import LoadedResult
from leaderboard.table import display_name
from leaderboard.text import code_block, code_span, md_escape

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

**Ranks.** Rows are ranked only within one *comparability key*: the same benchmark version, proxy fingerprint
(name, version, a hash of its fitted parameters and of the human data it was fitted on), image source (id and
revision), protocol (N, K, query variant) and unit sampling. The page shows one key at a time (the selector above
the table). A rank comes with its 95% interval from a bootstrap over the per-unit scores: "3 (2-6)" means third,
and plausibly anywhere from second to sixth.

## FAQ

**What is MIS?** The Machine Interpretability Score: the 2-AFC accuracy a similarity model predicts for a human
observer, averaged over a unit's tasks and then over the model's units (0.5 = chance, 1 = perfect).

**How was it validated?** Against the per-unit human 2-AFC accuracy of the IMI release (Zimmermann et al., 2023),
with held-out models (leave one model out), bootstrap CIs, and normalised by the split-half noise ceiling of the
human data. The *Proxy metrics* tab ranks every validated proxy by its held-out correlation with humans.

**On which human data?** The release named in each row's comparability key (for example the IMI Zenodo release
at a pinned revision). Proxies fitted on data from the project's simulator are never ranked beside real ones:
their rows sit in a separate group labelled DEMO and "simulated humans".

**Why do ranks have intervals, and why are there no ties?** Neighbouring models often differ by less than the
uncertainty of their means. Instead of chaining "tied" ranks, each rank carries the interval of ranks the model
takes across bootstrap resamples of its units; two models whose intervals overlap are not reliably ordered.

**Why are some models "untrained"?** They were scored with random weights (`pretrained: false`): a baseline that
shows how much of a model's score comes from its architecture. Hide them with "hide untrained".

## Citations

```bibtex
@inproceedings{zimmermann2023scale,
  title     = {Scale Alone Does not Improve Mechanistic Interpretability in Vision Models},
  author    = {Zimmermann, Roland S. and Klein, Thomas and Brendel, Wieland},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2023}
}

@inproceedings{zimmermann2024measuring,
  title     = {Measuring Per-Unit Interpretability at Scale Without Humans},
  author    = {Zimmermann, Roland S. and Klindt, David and Brendel, Wieland},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2024}
}
```

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
    humans = result.proxy.human_data.label if result.proxy.human_data else "humans (origin not recorded)"
    links = []
    for label, key in (("model card", "model_card"), ("paper", "paper"), ("model card", "card"), ("link", "url")):
        value = str(result.submission.spec.get(key) or "")
        if value.startswith(("https://", "http://")) and not any(c in value for c in " <>()[]\"'`"):
            links.append(f"[{label}]({value})")
    return "\n".join(
        [
            f"**{md_escape(display_name(loaded))}** ({code_span(result.submission.id)}, benchmark "
            f"{md_escape(result.benchmark_version)}, file {code_span(loaded.path.name)})",
            "",
            "Links the submitter gave: " + (", ".join(links) if links else "none."),
            "",
            "Command that reproduces it:",
            code_block(command, "bash"),
            f"Package {md_escape(prov.package_version)}, git {code_span(prov.git_sha or 'unknown')}, device "
            f"{md_escape(prov.device)}, dtype {md_escape(prov.dtype)}, seed {prov.seed}, date {md_escape(prov.date)}, "
            f"wall time {prov.wall_time_s:.1f} s.",
            "",
            f"Proxy {code_span(result.proxy.name)} version {md_escape(result.proxy.version)}; validation against "
            f"{md_escape(humans)}:",
            code_block(validation, "json"),
            "Full provenance block:",
            code_block(prov.model_dump_json(indent=2), "json"),
            "Submission spec (rerun input):",
            code_block(json.dumps(result.submission.spec, indent=2, sort_keys=True, default=str), "json"),
        ]
    )

"""`imibench data push-to-hub`: turn the IMI release into a Hub dataset folder (parquet + data card) and upload it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from benchmark.api.errors import (
    ConfigError,
    DataValidationError,
)
from benchmark.api.types import TRIAL_COLUMNS
from benchmark.data.local import RESPONSES_DIR, find_response_file, read_table
from benchmark.data.schema import canonicalize
from benchmark.data.sources import (
    PASSED_CHECKS_DEFAULT,
    RESPONSE_FILES,
    LoadedTrials,
    is_simulated_release,
    simulator_of,
)
from benchmark.data.zenodo import (
    ZENODO_RECORD,
    read_record_json,
    record_license,
    record_page,
    record_revision,
)
from benchmark.files import sha256_file
from benchmark.hub_upload import check_repo_id, upload_dataset_folder

logger = logging.getLogger(__name__)

DATA_DIR = "data"
ORIGIN_KEY = "imibench_origin"  # card metadata: {kind: real|simulated, simulator: {seed, version}}
IMAGE_DATA_DIR = "image_data"
UNKNOWN_LICENSE = "unknown"
CITATION = """@inproceedings{zimmermann2023scale,
  title     = {Scale Alone Does not Improve Mechanistic Interpretability in Vision Models},
  author    = {Zimmermann, Roland S. and Klein, Thomas and Brendel, Wieland},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  volume    = {36},
  year      = {2023}
}"""
COLUMN_DOCS: dict[str, str] = {
    "model": "model id (e.g. resnet50, clip-vit_b32, resnet50_hard95); `catch/manual` on catch trials",
    "layer": "layer name (CLIP layers carry a `visual_` prefix); empty on demo and catch trials",
    "channel": "channel (unit) index; empty on demo and catch trials",
    "mode": "`natural`, `optimized` or `catch_trial`",
    "batch": "stimulus batch of the unit (0-19); -1 on catch trials, empty on demo trials",
    "task_id": "the task (HIT) the trial belongs to",
    "participant_id": "anonymised participant id (`task:<task_id>` where the release has none)",
    "trial_index": "position of the trial within the task",
    "correct": "true when the participant chose the maximally activating query",
    "confidence": "confidence rating, 1-3",
    "rt_ms": "reaction time in milliseconds",
    "is_demo": "practice (demo) trial",
    "catch_trial": "catch trial with an obvious answer (attention check)",
    "passed_checks": "the participant passed every published quality check",
}


@dataclass(frozen=True)
class ConfigSummary:
    """What one config (response file) holds, for the data card."""

    name: str
    source_file: str
    source_sha256: str
    parquet_sha256: str | None  # None: the file is empty and not published (datasets cannot load an empty split)
    n_rows: int
    n_participants: int
    n_main_trials: int
    n_units: int
    models: tuple[str, ...]
    extra_columns: tuple[str, ...]
    notes: tuple[str, ...]


def build_hub_folder(
    release: LoadedTrials | Path | str, out_dir: Path, *, license: str | None = None, trust_pickle: bool = False
) -> Path:
    """Write data/<config>.parquet per response file (empty ones only in the card), image_data/*.json, README.md.

    A simulated release keeps its mark: the card's metadata says `imibench_origin: simulated` with the simulator's
    seed and version, and loaders read it back as simulated data.
    """
    root = _release_root(release)
    out_dir = Path(out_dir)
    (out_dir / DATA_DIR).mkdir(parents=True, exist_ok=True)
    simulator = simulator_of(root) if is_simulated_release(root) else None
    origin = {"kind": "simulated", "simulator": simulator} if simulator is not None else {"kind": "real"}
    summaries = [_write_config(root, name, out_dir, trust_pickle, origin) for name in RESPONSE_FILES]
    copied = _copy_image_data(root, out_dir)
    record = read_record_json(root)
    license_id = license or (record_license(record) if record else None) or UNKNOWN_LICENSE
    card = render_card(summaries, copied, license_id=license_id, record=record, out_dir=out_dir, simulator=simulator)
    (out_dir / "README.md").write_text(card, encoding="utf-8")
    return out_dir


def push_to_hub(
    release: LoadedTrials | Path | str,
    repo_id: str,
    *,
    revision: str | None = None,
    dry_run: bool = False,
    out_dir: Path | None = None,
    token: str | None = None,
    license: str | None = None,
    trust_pickle: bool = False,
) -> Path:
    """Build the Hub dataset folder and upload it to `repo_id` (a dataset repo); dry_run only builds it."""
    check_repo_id(repo_id, example="imi-bench/imi-human-responses")
    folder = build_hub_folder(release, Path(out_dir or tempfile.mkdtemp(prefix="imibench-hub-")), license=license,
                              trust_pickle=trust_pickle)
    if dry_run:
        logger.info("dry run: Hub dataset folder written to %s, nothing uploaded", folder)
        return folder
    upload_dataset_folder(folder, repo_id, token=token, revision=revision,
                          commit_message="Upload IMI human responses (imibench data push-to-hub)")
    return folder


def render_card(
    summaries: list[ConfigSummary],
    image_files: list[str],
    *,
    license_id: str,
    record: dict | None,
    out_dir: Path,
    simulator: dict | None = None,
) -> str:
    """The README.md data card: Hub YAML header (configs, licence, origin) and the card text."""
    published = [s for s in summaries if s.parquet_sha256]
    if not published:
        raise DataValidationError("The release's response files are all empty: there is nothing to publish.")
    header = {
        "license": license_id,
        "pretty_name": "IMI human responses (Zimmermann, Klein & Brendel, NeurIPS 2023)",
        "tags": ["interpretability", "psychophysics", "human-evaluation", "computer-vision"],
        "configs": [
            {"config_name": s.name, "data_files": [{"split": "train", "path": f"{DATA_DIR}/{s.name}.parquet"}]}
            | ({"default": True} if s is published[0] else {})
            for s in published
        ],
    }
    if simulator is not None:
        header["pretty_name"] = "SIMULATED IMI-shaped responses (imibench data simulate; not human data)"
        header["tags"] = [*header["tags"], "simulated"]
        header[ORIGIN_KEY] = {"kind": "simulated", "simulator": dict(simulator)}
    else:
        header[ORIGIN_KEY] = {"kind": "real"}
    body = [
        "# SIMULATED responses in the IMI release's shape" if simulator is not None else "# IMI human responses",
        "",
        *(_simulated_section(simulator) if simulator is not None else []),
        *_source_section(license_id, record),
        *_protocol_section(),
        *_columns_section(summaries),
        *_exclusions_section(),
        *_counts_section(summaries),
        *_files_section(summaries, image_files, out_dir),
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\n" + "\n".join(body)


def _release_root(release: LoadedTrials | Path | str) -> Path:
    if isinstance(release, LoadedTrials):
        if release.release_root is None:
            raise ConfigError(
                f"push-to-hub needs the release folder with all three response files, but {release.source} "
                "has no release folder. Pass --source PATH/to/release or --source zenodo:DIR."
            )
        root = release.release_root
    else:
        root = Path(release).expanduser()
    if not (root / RESPONSES_DIR).is_dir():
        raise ConfigError(
            f"push-to-hub needs a release folder holding {RESPONSES_DIR}/; {root} has none. "
            "Pass the folder that holds human_responses/ and image_data/."
        )
    return root


def _simulated_section(simulator: dict) -> list[str]:
    return [
        ("**These responses are simulated** by imi-bench's planted-observer simulator "
         f"(seed {simulator.get('seed')}, version {simulator.get('version')}), not collected from people. "
         "Loaders read them as simulated (`imibench_origin` in this card's metadata) and never rank them beside "
         "real human data."),
        "",
    ]


def _write_config(root: Path, name: str, out_dir: Path, trust_pickle: bool = False,
                  origin: dict | None = None) -> ConfigSummary:
    path = find_response_file(root, name, trust_pickle=trust_pickle)
    raw = read_table(path, trust_pickle=trust_pickle)
    trials, notes = canonicalize(raw, source=str(path), passed_checks_default=PASSED_CHECKS_DEFAULT[name])
    table, extras = with_extra_columns(trials, raw)
    target = out_dir / DATA_DIR / f"{name}.parquet"
    target.unlink(missing_ok=True)
    if len(table):
        write_parquet(table, target, origin=origin)
    main = trials[~trials["is_demo"].fillna(False) & ~trials["catch_trial"].fillna(False)]
    return ConfigSummary(
        name=name,
        source_file=path.relative_to(root).as_posix(),
        source_sha256=sha256_file(path),
        parquet_sha256=sha256_file(target) if len(table) else None,
        n_rows=len(trials),
        n_participants=int(trials["participant_id"].nunique()),
        n_main_trials=len(main),
        n_units=len(main[["model", "layer", "channel", "mode"]].drop_duplicates()),
        models=tuple(sorted(main["model"].dropna().unique().tolist())),
        extra_columns=tuple(extras),
        notes=tuple(notes),
    )


def with_extra_columns(trials: pd.DataFrame, raw: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The canonical table followed by the release's other columns (object columns stored as strings)."""
    raw = raw.reset_index(drop=True)
    raw.columns = [str(c) for c in raw.columns]
    extras = [c for c in raw.columns if c not in TRIAL_COLUMNS and c not in trials.columns]
    extra = pd.DataFrame(
        {c: raw[c].astype("string") if raw[c].dtype == object else raw[c] for c in extras}, index=trials.index
    )
    return pd.concat([trials, extra], axis=1), extras


def write_parquet(table: pd.DataFrame, target: Path, *, origin: dict | None = None) -> None:
    """Write a table to parquet atomically (via a .part file); `origin` goes into the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = target.with_name(target.name + ".part")
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if origin is not None:
        metadata = dict(arrow.schema.metadata or {})
        metadata[ORIGIN_KEY.encode()] = json.dumps(origin).encode()
        arrow = arrow.replace_schema_metadata(metadata)
    pq.write_table(arrow, part)
    os.replace(part, target)


def parquet_origin(path: Path) -> dict:
    """The `imibench_origin` block written into a parquet file's metadata by push-to-hub ({} when absent)."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
        origin = json.loads(metadata.get(ORIGIN_KEY.encode(), b"{}"))
    except (OSError, ValueError):
        return {}
    return origin if isinstance(origin, dict) else {}


def _copy_image_data(root: Path, out_dir: Path) -> list[str]:
    sources = sorted((root / IMAGE_DATA_DIR).glob("*.json"))
    if sources:
        (out_dir / IMAGE_DATA_DIR).mkdir(exist_ok=True)
    for src in sources:
        shutil.copy2(src, out_dir / IMAGE_DATA_DIR / src.name)
    return [f"{IMAGE_DATA_DIR}/{s.name}" for s in sources]


def _source_section(license_id: str, record: dict | None) -> list[str]:
    licence = (
        f"`{license_id}`, as declared by the Zenodo record."
        if record and record_license(record)
        else f"`{license_id}`: take the licence from the Zenodo record ({record_page()}) before reuse."
    )
    version = f" (record {record_revision(record)})" if record else ""
    return [
        "## Source",
        "",
        f"Zenodo record {ZENODO_RECORD}{version}: {record_page()}, DOI 10.5281/zenodo.{ZENODO_RECORD}. "
        "This is a mirror converted to parquet by imi-bench (`imibench data push-to-hub`); "
        "each file holds the canonical columns (below) followed by the release file's other columns, rows unchanged.",
        "",
        f"Licence: {licence}",
        "",
    ]


def _protocol_section() -> list[str]:
    return [
        "## Collection protocol",
        "",
        "Psychophysical 2-AFC experiment (IMI, Zimmermann, Klein & Brendel 2023) on Amazon Mechanical Turk. "
        "On each trial a participant saw 9 minimally and 9 maximally activating reference images of one unit "
        "(a channel of a vision model) and chose which of two query images activates the unit more strongly. "
        "Stimuli are natural ImageNet-2012 training images (resize 256, centre crop 224) or feature "
        "visualisations (`optimized`). Each task (HIT) has 40 main trials and 5 catch trials after practice "
        "(demo) trials repeated until all were correct (at most 3 attempts); confidence was rated 1-3. "
        "About 30 responses per unit and mode, 84 units per model and condition.",
        "",
    ]


def _columns_section(summaries: list[ConfigSummary]) -> list[str]:
    extras = sorted({c for s in summaries for c in s.extra_columns})
    lines = ["## Columns", "", "Canonical columns (imi-bench trial schema), one row per trial response:", ""]
    lines += [f"- `{name}` ({dtype}): {COLUMN_DOCS.get(name, '')}" for name, dtype in TRIAL_COLUMNS.items()]
    lines += ["", "Other release columns, kept as they are (text columns stored as strings):", ""]
    lines += [", ".join(f"`{c}`" for c in extras) or "none", ""]
    return lines


def _exclusions_section() -> list[str]:
    return [
        "## Exclusions",
        "",
        "Nothing is removed from these files. The published analysis keeps rows with `is_demo` and "
        "`catch_trial` false from participants who passed the checks (`passed_checks`): catch accuracy >= 0.8, "
        "total time 135-2,500 s, instruction time >= 15 s, at least 5 answers in each button row, at most 3 "
        "practice attempts; repeat participants are in `lower_quality`. Configs: `main` = participants who "
        "passed every check, `lower_quality` = the rest, `all` = both.",
        "",
    ]


def _counts_section(summaries: list[ConfigSummary]) -> list[str]:
    lines = [
        "## Counts",
        "",
        "| config | rows | participants | main trials | units (model, layer, channel, mode) | models |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s.name} | {s.n_rows} | {s.n_participants} | {s.n_main_trials} | {s.n_units} | {', '.join(s.models)} |"
        for s in summaries
    ]
    notes = [f"- {s.name}: {note}" for s in summaries for note in s.notes]
    notes += [
        f"- {s.name}: no rows in this release, so it is not published as a config" for s in summaries if not s.n_rows
    ]
    return lines + ([""] + ["Notes:", ""] + notes if notes else []) + [""]


def _files_section(summaries: list[ConfigSummary], image_files: list[str], out_dir: Path) -> list[str]:
    lines = ["## Files (sha256)", "", "| file | sha256 | from |", "| --- | --- | --- |"]
    for s in summaries:
        if s.parquet_sha256:
            lines.append(f"| {DATA_DIR}/{s.name}.parquet | `{s.parquet_sha256}` | {s.source_file} |")
        lines.append(f"| {s.source_file} (original) | `{s.source_sha256}` | |")
    lines += [f"| {name} | `{sha256_file(out_dir / name)}` | {name} |" for name in image_files]
    return lines + [""]

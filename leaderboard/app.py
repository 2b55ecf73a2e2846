"""The Gradio app: Leaderboard, Model, Compare, Proxy metrics, Queue, About and Submit tabs over result files.

The main table is escaped HTML sorted, searched, filtered and column-toggled in the browser (instant at 1,000
rows); the server rebuilds it only when the comparability group changes. Reads result files through
`benchmark.results`; never imports scoring, model or activation code (the Submit tab checks with
`benchmark.submissions.public` and runs `imibench submit --public` in a subprocess). The URL keeps the view (tab, group, search, filters, columns, sort, model) so it can be shared.
"""

from __future__ import annotations

import html
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import gradio as gr
import pandas as pd

from benchmark.submissions.public import CONFIG_ENV, load_public_config
from leaderboard import EMPTY_MESSAGE
from leaderboard.about import ABOUT_MARKDOWN, provenance_markdown
from leaderboard.figures import compare_figure, layer_profiles_figure, save_figure
from leaderboard.html_table import frame_html, gallery_html, legend_html, table_html
from leaderboard.humans import HumanTable, load_human_table
from leaderboard.loading import LoadedResult, ResultSet, ResultStore, is_hub_source
from leaderboard.proxy_board import ProxyBoard, load_board
from leaderboard.queue_view import queue_keys, queue_signature, queue_table
from leaderboard.scratch import EXPORT_MAX_AGE_S, ScratchFolder
from leaderboard.submit import (
    DEFAULT_COMMAND,
    build_spec,
    form_problem,
    model_key,
    rate_key_of,
    resubmission_problem,
    run_submit,
    scored_keys,
)
from leaderboard.submit import TIMEOUT_S as SUBMIT_TIMEOUT_S
from leaderboard.table import (
    DEFAULT_COLUMNS,
    DISPLAY_COLUMNS,
    Conflict,
    Group,
    build_table,
    comparability_groups,
    filter_choices,
    filter_table,
    group_choices,
    resolve_duplicates,
    write_csv,
)
from leaderboard.text import code_span, md_escape
from leaderboard.views import (
    compare_frame,
    human_scatter_frame,
    layer_frame,
    layer_names,
    profile_frame,
    task_choices,
    unit_choices,
    unit_view,
)
from leaderboard.web import CSS, JS

TABS = ("leaderboard", "model", "compare", "proxies", "queue", "about", "submit")
# The app's events serve its own page, not a public API. Undocumented events also keep Gradio from listing every
# endpoint's choices (1,000 model keys per dropdown input) in the API description embedded in each page load.
PAGE_EVENT = "undocumented"
LAYER_CAPTION = "Per layer"


@dataclass(frozen=True)
class AppConfig:
    """How the app finds results, images, reports, human data and the submission queue."""

    results: str
    queue: Path | None = None
    stimuli_root: Path | None = None
    reports: Path | None = None
    humans: str | None = None
    public_config: Path | None = None  # operator config of public submissions (None: $IMIBENCH_PUBLIC_CONFIG)
    submit_command: tuple[str, ...] = DEFAULT_COMMAND
    submit_timeout_s: float = SUBMIT_TIMEOUT_S
    poll_seconds: float = 5.0


@dataclass(frozen=True)
class Snapshot:
    """One read of the results source with its table (recomputed only when the store's version changes)."""

    version: int
    results: ResultSet
    table: pd.DataFrame
    by_key: dict[str, LoadedResult]
    groups: list[Group]
    conflicts: list[Conflict]
    labels: dict[str, str] = field(default_factory=dict)
    html_by_group: dict[str | None, str] = field(default_factory=dict)  # filled on first use (a pure function)


class SnapshotCache:
    """Builds the table once per store version."""

    def __init__(self, store: ResultStore, humans: HumanTable | None = None) -> None:
        self.store, self.humans = store, humans
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    def get(self) -> Snapshot:
        """The snapshot of the store's current version."""
        with self._lock:
            results, version = self.store.results, self.store.version
            if self._snapshot is None or self._snapshot.version != version:
                chosen, conflicts = resolve_duplicates(results.results)
                table = build_table(results.results, self.humans.lookup if self.humans else None)
                labels = dict(zip(table["key"], table["model"], strict=True))
                self._snapshot = Snapshot(version, results, table, chosen,
                                          comparability_groups(results.results, table), conflicts, labels)
            return self._snapshot


def _model_choices(snap: Snapshot) -> list[tuple[str, str]]:
    return [(f"{row['model']} · {row['submission id']}", row["key"]) for _, row in snap.table.iterrows()]


def _public_source_name(source: str) -> str:
    """A results source as the public may see it: a Hub id as is, a server folder by its last part only."""
    return source if is_hub_source(source) else (Path(source).name or "results")


def _status(snap: Snapshot, read_at: datetime) -> str:
    return (f"Results from {code_span(_public_source_name(snap.results.source))}: **{len(snap.table)}** model(s) in "
            f"{len(snap.groups)} comparability group(s), read at {read_at.strftime('%H:%M:%S')}.")


def _empty_state(snap: Snapshot) -> tuple[str, bool]:
    if not snap.table.empty:
        return "", False
    lines = [f"### {EMPTY_MESSAGE}"]
    if snap.results.problem:
        lines.append(f"\n{md_escape(snap.results.problem)}")
    return "\n".join(lines), True


def _invalid_panel(snap: Snapshot) -> tuple[str, bool]:
    """A folded HTML panel listing unreadable files and conflicting submission ids (names escaped)."""
    items = [f"<li><code>{html.escape(item.name)}</code>: {html.escape(item.error)}</li>"
             for item in snap.results.invalid]
    items += [f"<li>{html.escape(conflict.message)}</li>" for conflict in snap.conflicts]
    if not items:
        return "", False
    parts = []
    if snap.results.invalid:
        parts.append(f"{len(snap.results.invalid)} file(s) in the results folder are not valid result files")
    if snap.conflicts:
        parts.append(f"{len(snap.conflicts)} submission id(s) are claimed by different files (conflict)")
    summary = "⚠️ " + " and ".join(parts) + "; not shown."
    listed = "".join(items)
    return f'<details class="lb-invalid"><summary>{html.escape(summary)}</summary><ul>{listed}</ul></details>', True


def _group_update(snap: Snapshot, version: str | None, current: str | None) -> gr.Dropdown:
    groups = [g for g in snap.groups if not version or g.benchmark_version == version]
    choices = group_choices(groups)
    ids = [g.id for g in groups]
    return gr.Dropdown(choices=choices, value=current if current in ids else (ids[0] if ids else None))


def _table_html(snap: Snapshot, group: str | None) -> str:
    """The group's table HTML, rendered once per snapshot and group (group switches and reloads reuse it)."""
    cached = snap.html_by_group.get(group)
    if cached is None:
        cached = table_html(filter_table(snap.table, group=group) if group else snap.table.iloc[0:0])
        snap.html_by_group[group] = cached
    return cached


def _group_note(snap: Snapshot, group: str | None) -> str:
    chosen = next((g for g in snap.groups if g.id == group), None)
    if chosen is None:
        return ""
    if chosen.real_humans:
        return f"Ranked within one comparability key: {md_escape(chosen.label)}"
    return ("**DEMO group: this proxy was not fitted on real human data (simulated humans or origin not recorded). "
            f"Its rows are never ranked beside real ones.** Key: {md_escape(chosen.label)}")


def _unit_outputs(snap: Snapshot, key: str | None, layer: str | None, channel: Any, task: Any,
                  roots: Any, thumbs: Path) -> tuple:
    """(layer, unit, task, summary, warning, images) updates; never an error. Thumbnails are saved in `thumbs`."""
    loaded = snap.by_key.get(key) if key else None
    blank = (gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None),
             gr.Dropdown(choices=[], value=None))
    if loaded is None:
        return (*blank, "_Pick a model to browse its units._", gr.Markdown(value="", visible=False), "")
    layers = layer_names(loaded)
    if not layers:
        return (*blank, "This result file records no per-unit scores.", gr.Markdown(value="", visible=False), "")
    layer = layer if layer in layers else layers[0]
    units = unit_choices(loaded, layer)
    channels = [value for _, value in units]
    try:
        channel = int(channel) if channel is not None and int(channel) in channels else channels[0]
    except (TypeError, ValueError):
        channel = channels[0]
    unit = next(u for u in loaded.result.scores.units if u.layer == layer and u.channel == channel)
    tasks = task_choices(unit)
    task_ids = [value for _, value in tasks]
    try:
        task = int(task) if task is not None and int(task) in task_ids else (task_ids[0] if task_ids else None)
    except (TypeError, ValueError):
        task = task_ids[0] if task_ids else None
    view = unit_view(loaded, layer, channel, task if task is not None else 0, roots)
    return (gr.Dropdown(choices=layers, value=layer), gr.Dropdown(choices=units, value=channel),
            gr.Dropdown(choices=tasks, value=task), view.summary,
            gr.Markdown(value=md_escape(view.warning), visible=bool(view.warning)),
            gallery_html([("uv-max", "Max references (most activating first)", view.max_references),
                          ("uv-min", "Min references (least activating first)", view.min_references),
                          ("uv-queries", "Queries (max query, min query)", view.queries)], thumbs))


def _model_page(snap: Snapshot, key: str | None, humans: HumanTable | None) -> tuple:
    """(header markdown, per-layer table, per-layer plot, human scatter) of one model."""
    loaded = snap.by_key.get(key) if key else None
    if loaded is None:
        return "_Click a row of the leaderboard, or pick a model above._", pd.DataFrame(), None, None
    row = snap.table[snap.table["key"] == key].iloc[0]
    lines = [f"## {md_escape(row['model'])}",
             f"Rank **{md_escape(row['rank'])}** in its group · MIS **{row['MIS mean']:.3f}** "
             f"{md_escape(row['95% CI'])}"
             f" · {row['units']} units · proxy {md_escape(row['proxy'])} · benchmark {md_escape(row['benchmark'])}"]
    if row["humans natural"] or row["humans optimized"]:
        label = humans.label if humans else "humans"
        lines.append(f"{md_escape(label)} (2-AFC accuracy): natural {md_escape(row['humans natural'] or '—')}, "
                     f"optimized {md_escape(row['humans optimized'] or '—')}")
    if not row["trained"]:
        lines.append("_Untrained: scored with random-init weights._")
    pairs = human_scatter_frame(humans.unit_pairs(loaded)) if humans else None
    scatter = pairs if pairs is not None and not pairs.empty else None
    return "\n\n".join(lines), layer_frame(loaded), profile_frame([loaded]), scatter


def _proxy_html(board: ProxyBoard, reports_folder: Path | None) -> str:
    if board.table.empty:
        where = f" in {html.escape(str(reports_folder))}" if reports_folder else ""
        note = "" if reports_folder else " Start the leaderboard with --reports DIR."
        return (f"<p>No validation reports{where}.{note} Queue one with "
                "<code>imibench proxy submit REPORT_DIR</code>.</p>")
    columns = ["rank", "proxy", "headline r", "95% CI", "r / ceiling", "natural r", "optimized r", "vs MIS (Δr)",
               "scheme", "human data", "units", "figure"]
    heads = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for _, row in board.table.iterrows():
        cells = []
        for column in columns:
            value = row[column]
            if column == "figure":
                cells.append(f'<td><a href="/gradio_api/file={html.escape(str(value), quote=True)}" target="_blank">'
                             "figure</a></td>" if value else "<td></td>")
            else:
                text = "" if isinstance(value, float) and pd.isna(value) else str(value)
                cells.append(f"<td>{html.escape(text)}</td>")
        rows.append(f'<tr data-proxy="{html.escape(str(row["proxy"]), quote=True)}">{"".join(cells)}</tr>')
    invalid = "".join(f"<li><code>{html.escape(n)}</code>: {html.escape(e)}</li>" for n, e in board.invalid)
    statistic = html.escape(str(board.table["statistic"].iloc[0]))
    return (f'<p>Ranked by the headline statistic ({statistic}) on real human data; reports on simulated humans '
            'are listed after, as demo rows. Δr vs MIS: paired bootstrap over the shared units (95% CI).</p>'
            f'<div class="lb-scroll"><table id="proxy-table"><thead><tr>{heads}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>'
            + (f"<p>Unreadable report files:</p><ul>{invalid}</ul>" if invalid else ""))


def _queue_html(queue: Path | None) -> str:
    return frame_html(queue_table(queue), "Submissions (pending, running, finished, failed with reason)")


def _compare(snap: Snapshot, group: str | None, highlighted: list[str] | None) -> pd.DataFrame:
    rows = filter_table(snap.table, group=group) if group else snap.table
    return compare_frame(rows, highlighted or [])


def build_app(config: AppConfig) -> gr.Blocks:
    """The leaderboard app for `config` (call `.launch()` on it, or use `launch_app`)."""
    store = ResultStore(config.results)
    humans = load_human_table(config.humans) if config.humans else None
    cache = SnapshotCache(store, humans)
    public_path = config.public_config or os.environ.get(CONFIG_ENV) or None
    public = load_public_config(public_path)
    snap = cache.get()
    choices = filter_choices(snap.table)
    model_choices = _model_choices(snap)
    model_keys = [key for _, key in model_choices]
    first_group = snap.groups[0].id if snap.groups else None
    empty_text, empty_visible = _empty_state(snap)
    invalid_text, invalid_visible = _invalid_panel(snap)
    roots = config.stimuli_root
    scratch = ScratchFolder()  # thumbnails and downloads, pruned and removed with the app
    thumbs = scratch.thumbs  # the unit viewer's JPEG thumbnails, served as files
    folder = snap.results.folder
    reports = config.reports or (folder / "reports" if folder is not None and (folder / "reports").is_dir() else None)

    # delete_cache: Gradio's own copies of the downloads are pruned like ours (every hour, those an hour old)
    with gr.Blocks(title="imi-bench leaderboard", analytics_enabled=False,
                   delete_cache=(int(EXPORT_MAX_AGE_S), int(EXPORT_MAX_AGE_S))) as demo:
        gr.Markdown("# imi-bench leaderboard", elem_id="title")
        gr.Markdown("Per-unit interpretability of vision models: the Machine Interpretability Score (MIS), a proxy "
                    "validated against human 2-AFC responses. Click a row for the model's page.",
                    elem_classes="lb-intro")
        with gr.Row(equal_height=True):
            status = gr.Markdown(_status(snap, store.read_at), elem_id="status")
            refresh = gr.Button("Refresh", size="sm", scale=0, elem_id="refresh")
        empty = gr.Markdown(empty_text, visible=empty_visible, elem_id="empty-state")
        invalid = gr.HTML(invalid_text, visible=invalid_visible, elem_id="invalid-files")
        version_state = gr.State(snap.version)
        row_pick = gr.Textbox(elem_id="row-pick", show_label=False, container=False)
        url_state = gr.Textbox(elem_id="url-state", show_label=False, container=False)

        with gr.Tabs(selected="leaderboard", elem_id="tabs") as tabs:
            with gr.Tab("Leaderboard", id="leaderboard") as tab_leaderboard:
                with gr.Row():
                    group = gr.Dropdown(group_choices(snap.groups), value=first_group, label="Comparability group",
                                        elem_id="group", scale=3)
                    bench = gr.Dropdown([("all versions", "")] + [(v, v) for v in choices["benchmark"]], value="",
                                        label="Benchmark version", elem_id="bench", scale=1)
                    search = gr.Textbox(label="Search", placeholder="model, family or source", elem_id="search",
                                        scale=2)
                group_note = gr.Markdown(_group_note(snap, first_group), elem_id="group-note")
                with gr.Accordion("Filters and columns", open=False, elem_id="filters"):
                    with gr.Row():
                        family = gr.Dropdown(choices["family"], value=[], multiselect=True, label="Family",
                                             elem_id="filter-family")
                        source = gr.Dropdown(choices["source"], value=[], multiselect=True, label="Source",
                                             elem_id="filter-source")
                        hide_untrained = gr.Checkbox(False, label="hide untrained", elem_id="hide-untrained")
                        pmin = gr.Textbox(label="params min (M)", placeholder="e.g. 10", max_length=12,
                                          elem_id="params-min")
                        pmax = gr.Textbox(label="params max (M)", placeholder="e.g. 100", max_length=12,
                                          elem_id="params-max")
                    columns = gr.CheckboxGroup(list(DISPLAY_COLUMNS), value=list(DEFAULT_COLUMNS), label="Columns",
                                               elem_id="columns")
                    gr.HTML(legend_html())
                table = gr.HTML(_table_html(snap, first_group), elem_id="leaderboard-table", js_on_load=None)
                with gr.Row():
                    export = gr.Button("Export CSV of the filtered rows", size="sm", scale=0, elem_id="export")
                    csv_file = gr.File(label="CSV", interactive=False, height=90, visible=False, elem_id="csv-file")

            with gr.Tab("Model", id="model") as tab_model:
                initial_model = model_keys[0] if model_keys else None
                page_model = gr.Dropdown(model_choices, value=initial_model, label="Model", elem_id="page-model")
                header, layers_df, profile_df, scatter_df = _model_page(snap, initial_model, humans)
                page_header = gr.Markdown(header, elem_id="model-header")
                with gr.Row():
                    layer_table = gr.HTML(frame_html(layers_df, LAYER_CAPTION), elem_id="layer-table")
                    layer_plot = gr.LinePlot(profile_df, x="relative depth", y="MIS mean", color="model",
                                             tooltip=["model", "layer", "MIS mean", "ci_low", "ci_high"],
                                             label="MIS per layer (hover for values)", elem_id="layer-plot")
                human_plot = gr.ScatterPlot(scatter_df, x="proxy score (MIS)", y="human accuracy", color="mode",
                                            tooltip=["unit", "mode", "human accuracy", "proxy score (MIS)"],
                                            x_lim=[0, 1], y_lim=[0, 1],
                                            label="Per unit: human 2-AFC accuracy vs proxy (from the release)",
                                            elem_id="human-scatter", visible=scatter_df is not None)
                gr.Markdown("### Unit viewer")
                with gr.Row():
                    uv_layer = gr.Dropdown([], label="Layer", elem_id="uv-layer", allow_custom_value=True)
                    uv_unit = gr.Dropdown([], label="Unit", elem_id="uv-unit", allow_custom_value=True)
                    uv_task = gr.Dropdown([], label="Task", elem_id="uv-task", allow_custom_value=True)
                uv_summary = gr.Markdown(elem_id="uv-summary")
                uv_warning = gr.Markdown(visible=False, elem_id="uv-warning")
                uv_images = gr.HTML(elem_id="uv-images")

            with gr.Tab("Compare", id="compare") as tab_compare:
                highlight = gr.Dropdown(model_choices, value=model_keys[:3], multiselect=True,
                                        label="Highlight (only these are labelled)", elem_id="highlight")
                compare_plot = gr.ScatterPlot(_compare(snap, first_group, model_keys[:3]), x="ImageNet top-1 (%)",
                                              y="MIS mean", color="highlight",
                                              tooltip=["model", "rank", "MIS mean", "95% CI", "ImageNet top-1 (%)"],
                                              label="MIS vs ImageNet top-1 (this group; hover for names)",
                                              elem_id="compare-plot")
                compare_profile = gr.LinePlot(profile_frame([snap.by_key[k] for k in model_keys[:3]]),
                                              x="relative depth", y="MIS mean", color="model",
                                              tooltip=["model", "layer", "MIS mean"],
                                              label="Per-layer profile of the highlighted models",
                                              elem_id="compare-profile")
                with gr.Row():
                    figures_button = gr.Button("Download paper figures (PNG 200 dpi, SVG, PDF)", size="sm", scale=0,
                                               elem_id="figures-button")
                    figures_files = gr.File(label="Figures", file_count="multiple", interactive=False, visible=False,
                                            elem_id="figures-files")

            with gr.Tab("Proxy metrics", id="proxies") as tab_proxies:
                gr.Markdown("Proxy metrics validated against human 2-AFC accuracy on held-out models. Add one with "
                            "`imibench proxy validate --out DIR` then `imibench proxy submit DIR`.")
                proxy_html = gr.HTML(_proxy_html(load_board(reports), reports), elem_id="proxy-board")

            with gr.Tab("Queue", id="queue") as tab_queue:
                queue_df = gr.HTML(_queue_html(config.queue), elem_id="queue-table")

            with gr.Tab("About", id="about") as tab_about:
                gr.Markdown(ABOUT_MARKDOWN, elem_id="about")
                about_row = gr.Dropdown(model_choices, value=model_keys[0] if model_keys else None,
                                        label="Row", elem_id="about-row")
                about_md = gr.Markdown(provenance_markdown(snap.by_key.get(model_keys[0]) if model_keys else None),
                                       elem_id="provenance")

            with gr.Tab("Submit", id="submit") as tab_submit:
                queue_note = (f"Submissions go to the queue {code_span(config.queue.name)}." if config.queue else
                              "**Submissions are disabled**: start the leaderboard with `--queue DIR`.")
                sources = ", ".join(code_span(alias) for alias in sorted(public.image_sources))
                gr.Markdown("Submit a public Hub model for scoring (timm, open_clip or torchvision ids; images: "
                            f"bundled or a Hub dataset{', or ' + sources if sources else ''}). {queue_note}")
                with gr.Row():
                    f_model = gr.Textbox(label="Model spec (required)", placeholder="timm:resnet50.a1_in1k",
                                         max_length=200, elem_id="submit-model")
                    f_pretrained = gr.Checkbox(value=True, label="Pretrained weights", elem_id="submit-pretrained")
                    f_revision = gr.Textbox(label="Hub revision (optional; a new revision is a new row)",
                                            max_length=80, elem_id="submit-revision")
                    f_images = gr.Textbox(label="Image source", placeholder="bundled | hf:OWNER/NAME",
                                          max_length=200, elem_id="submit-images")
                with gr.Row():
                    f_name = gr.Textbox(label="Display name", max_length=120, elem_id="submit-name")
                    f_family = gr.Textbox(label="Family", max_length=60, elem_id="submit-family")
                    f_license = gr.Textbox(label="License", max_length=60, elem_id="submit-license")
                with gr.Row():
                    f_paper = gr.Textbox(label="Paper or model card link", placeholder="https://...",
                                         max_length=300, elem_id="submit-paper")
                    f_submitter = gr.Textbox(label="Submitter (name or email, required, kept private)",
                                             max_length=200, elem_id="submit-submitter")
                    f_top1 = gr.Textbox(label="ImageNet top-1 % (optional)", placeholder="e.g. 80.4; empty if unknown",
                                        max_length=12, elem_id="submit-top1")
                gr.HTML('<p id="submit-required"></p>')
                submit_button = gr.Button("Submit", variant="primary", elem_id="submit-button")
                submit_result = gr.Markdown(elem_id="submit-result")

        timer = gr.Timer(config.poll_seconds)

        # ------------------------------------------------------------ client-side filtering (no server trip)
        client = [search, family, source, hide_untrained, pmin, pmax, columns]
        apply_js = "(q, f, s, h, a, b, c) => { window.imiFilter(q, f, s, h, a, b, c); }"
        for component in client:
            component.change(None, client, None, js=apply_js)

        # ------------------------------------------------------------ server-side events
        def on_group(group_id):
            snap = cache.get()
            return _table_html(snap, group_id), _group_note(snap, group_id), _compare(snap, group_id, None)

        group.change(on_group, group, [table, group_note, compare_plot], show_progress="hidden",
                     api_visibility=PAGE_EVENT)
        group.change(None, group, None, js="(g) => { window.imiUrl({group: g}); }")

        def on_bench(version, current):
            return _group_update(cache.get(), version, current)

        bench.change(on_bench, [bench, group], group, api_visibility=PAGE_EVENT)

        def on_export(group_id, query, families, sources, hide, low, high):
            rows = filter_table(cache.get().table, query or "", families=families or (), sources=sources or (),
                                group=group_id, hide_untrained=bool(hide), params_min=_float_or_none(low),
                                params_max=_float_or_none(high))
            return gr.File(value=str(write_csv(rows, scratch.new_export())), visible=True)

        export.click(on_export, [group, search, family, source, hide_untrained, pmin, pmax], csv_file,
                     api_visibility=PAGE_EVENT)

        unit_outputs = [uv_layer, uv_unit, uv_task, uv_summary, uv_warning, uv_images]
        page_outputs = [page_header, layer_table, layer_plot, human_plot]

        def model_page_outputs(snap: Snapshot, key: str | None) -> tuple:
            header, layers_frame, profile, scatter = _model_page(snap, key, humans)
            return (header, frame_html(layers_frame, LAYER_CAPTION), profile,
                    gr.ScatterPlot(value=scatter, visible=scatter is not None),
                    *_unit_outputs(snap, key, None, None, None, roots, thumbs))

        def on_page_model(key):
            return model_page_outputs(cache.get(), key)

        # `.input`, not `.change`: a row click and the URL set the dropdown and fill the page in the same reply.
        page_model.input(on_page_model, page_model, page_outputs + unit_outputs, api_visibility=PAGE_EVENT)
        page_model.change(None, page_model, None, js="(m) => { window.imiUrl({model: m}); }")

        def on_layer(key, layer):
            return _unit_outputs(cache.get(), key, layer, None, None, roots, thumbs)

        def on_unit(key, layer, channel):
            return _unit_outputs(cache.get(), key, layer, channel, None, roots, thumbs)

        def on_task(key, layer, channel, task):
            return _unit_outputs(cache.get(), key, layer, channel, task, roots, thumbs)

        uv_layer.input(on_layer, [page_model, uv_layer], unit_outputs, api_visibility=PAGE_EVENT)
        uv_unit.input(on_unit, [page_model, uv_layer, uv_unit], unit_outputs, api_visibility=PAGE_EVENT)
        uv_task.input(on_task, [page_model, uv_layer, uv_unit, uv_task], unit_outputs, api_visibility=PAGE_EVENT)

        def on_row(picked):
            snap = cache.get()
            key = str(picked or "").rsplit("|", 1)[0]
            if key not in snap.by_key:
                return tuple(gr.skip() for _ in [tabs, page_model, *page_outputs, *unit_outputs])
            return (gr.Tabs(selected="model"), gr.Dropdown(value=key), *model_page_outputs(snap, key))

        # The browser writes the URL itself (web.py); one server reply selects the Model tab, sets the model
        # dropdown and fills the whole page (header, per-layer table and plot, unit viewer), so the page is drawn
        # once, with the clicked model's data.
        row_pick.change(on_row, row_pick, [tabs, page_model, *page_outputs, *unit_outputs], show_progress="hidden",
                        api_visibility=PAGE_EVENT)

        for tab_id, tab in (("leaderboard", tab_leaderboard), ("model", tab_model), ("compare", tab_compare),
                            ("proxies", tab_proxies), ("queue", tab_queue), ("about", tab_about),
                            ("submit", tab_submit)):
            tab.select(None, None, None, js=f"() => {{ window.imiUrl({{tab: '{tab_id}'}}); }}")

        def on_highlight(keys, group_id):
            snap = cache.get()
            chosen = [snap.by_key[k] for k in (keys or []) if k in snap.by_key]
            return _compare(snap, group_id, keys), profile_frame(chosen)

        highlight.change(on_highlight, [highlight, group], [compare_plot, compare_profile], api_visibility=PAGE_EVENT)

        def on_figures(keys, group_id):
            snap = cache.get()
            rows = filter_table(snap.table, group=group_id) if group_id else snap.table
            target = scratch.new_export()
            paths = save_figure(compare_figure(rows, keys or []), target / "mis_vs_top1")
            chosen = [snap.by_key[k] for k in (keys or []) if k in snap.by_key]
            paths += save_figure(layer_profiles_figure(chosen, snap.labels), target / "layer_profiles")
            return gr.File(value=[str(p) for p in paths], visible=True)

        figures_button.click(on_figures, [highlight, group], figures_files, api_visibility=PAGE_EVENT)

        def on_about(key):
            return provenance_markdown(cache.get().by_key.get(key) if key else None)

        about_row.change(on_about, about_row, about_md, api_visibility=PAGE_EVENT)

        def on_submit(model, pretrained, revision, images, name, family_text, license_text, paper, submitter, top1,
                      request: gr.Request, progress=gr.Progress()):
            top1_value = _float_or_none(top1)
            if str(top1 or "").strip() and (top1_value is None or not 0 <= top1_value <= 100):
                return f"❌ ImageNet top-1 must be a percentage between 0 and 100 or empty; got {md_escape(top1)}."
            spec = build_spec(model=model or "", pretrained=bool(pretrained), images=images or "",
                              license=license_text or "", paper=paper or "", submitter=submitter or "",
                              family=family_text or "", name=name or "", imagenet_top1=top1_value,
                              revision=revision or "")
            if not spec.get("submitter"):
                return "❌ The submitter (name or email) is required."
            if config.queue is None:
                return "❌ Submissions are disabled: start the leaderboard with `--queue DIR`."
            client_host = getattr(getattr(request, "client", None), "host", "") if request else ""
            rate_key = rate_key_of(client_host, spec["submitter"])
            problem = form_problem(spec, queue=config.queue, config=public, rate_key=rate_key)
            if problem is None:
                snap = cache.get()
                scored: set[str] = set()
                for row in (loaded.result for loaded in snap.by_key.values()):
                    scored |= scored_keys(str(row.submission.spec.get("model") or
                                              f"{row.submission.source}:{row.submission.model}"),
                                          row.submission.revision, trained=row_trained(row))
                problem = resubmission_problem(spec, scored, {model_key(m) for m in queue_keys(config.queue)})
            if problem is not None:
                return f"❌ **Submission refused.**\n\n> {md_escape(problem)}"
            progress(0.1, desc="Validating the submission: loading the model on CPU (may download its weights)…")
            return run_submit(spec, queue=config.queue, command=config.submit_command,
                              timeout_s=config.submit_timeout_s, rate_key=rate_key, public_config=public_path,
                              config=public).message

        submit_button.click(on_submit, [f_model, f_pretrained, f_revision, f_images, f_name, f_family, f_license,
                                        f_paper, f_submitter, f_top1], submit_result, show_progress="full",
                            api_visibility=PAGE_EVENT)

        # -------------------------------------------------------- URL state in, reloading
        def on_load(query):
            params = {key: values[-1] for key, values in parse_qs(str(query or "").lstrip("?")).items()}
            snap = cache.get()
            valid_keys = set(snap.by_key)
            tab = params.get("tab") if params.get("tab") in TABS else None
            group_id = params.get("group") if params.get("group") in {g.id for g in snap.groups} else None
            model = params.get("model") if params.get("model") in valid_keys else None
            cols = [c for c in (params.get("cols") or "").split(",") if c in DISPLAY_COLUMNS]

            def listed(name: str, options: list[str]) -> Any:
                values = [v for v in (params.get(name) or "").split(",") if v in options]
                return values or gr.skip()

            def number(name: str) -> Any:
                value = _float_or_none(params.get(name))
                return f"{value:g}" if value is not None else gr.skip()

            # Only what the URL names is set, so a click made while the page loads is never undone; the model
            # page is filled for the URL's model, else for the dropdown's initial one.
            return (gr.Tabs(selected=tab) if tab else gr.skip(), group_id or gr.skip(),
                    params.get("q", "")[:200] or gr.skip(), listed("family", choices["family"]),
                    listed("source", choices["source"]), True if params.get("untrained") == "hide" else gr.skip(),
                    number("pmin"), number("pmax"), cols or gr.skip(), model or gr.skip(),
                    *model_page_outputs(snap, model or initial_model))

        demo.load(on_load, url_state, [tabs, group, search, family, source, hide_untrained, pmin, pmax, columns,
                                       page_model, *page_outputs, *unit_outputs],
                  js="(q) => window.imiInitialQuery || ''", api_visibility=PAGE_EVENT).then(
            None, None, None, js="() => { window.imiReady = true; }")

        refresh_outputs = [version_state, status, empty, invalid, group, table, group_note, page_model, highlight,
                           about_row, queue_df, proxy_html]

        def full_update(seen, group_id):
            snap = cache.get()
            if snap.version == seen:  # same files as this page shows: only the read time and the side boards change
                return (gr.skip(), _status(snap, store.read_at), *(gr.skip() for _ in refresh_outputs[2:-2]),
                        _queue_html(config.queue), _proxy_html(load_board(reports), reports))
            options = _model_choices(snap)
            empty_text, empty_visible = _empty_state(snap)
            invalid_text, invalid_visible = _invalid_panel(snap)
            ids = [g.id for g in snap.groups]
            group_id = group_id if group_id in ids else (ids[0] if ids else None)
            return (snap.version, _status(snap, store.read_at), gr.Markdown(value=empty_text, visible=empty_visible),
                    gr.HTML(value=invalid_text, visible=invalid_visible),
                    gr.Dropdown(choices=group_choices(snap.groups), value=group_id), _table_html(snap, group_id),
                    _group_note(snap, group_id), gr.Dropdown(choices=options), gr.Dropdown(choices=options),
                    gr.Dropdown(choices=options), _queue_html(config.queue),
                    _proxy_html(load_board(reports), reports))

        def on_refresh(seen, group_id):
            store.reload()
            return full_update(seen, group_id)

        def on_tick(seen, group_id):
            store.poll()
            if cache.get().version == seen:
                return tuple(gr.skip() for _ in refresh_outputs)
            return full_update(seen, group_id)

        refresh.click(on_refresh, [version_state, group], refresh_outputs, api_visibility=PAGE_EVENT)
        timer.tick(on_tick, [version_state, group], refresh_outputs, show_progress="hidden",
                   api_visibility=PAGE_EVENT)
        queue_seen = gr.State(None)

        def on_queue_tick(seen):
            signature = queue_signature(config.queue)
            if signature == seen:
                return gr.skip(), seen
            return _queue_html(config.queue), signature

        timer.tick(on_queue_tick, queue_seen, [queue_df, queue_seen], show_progress="hidden",
                   api_visibility=PAGE_EVENT)
    demo.imi_allowed_paths = [str(p) for p in (config.stimuli_root, reports, thumbs) if p]  # type: ignore[attr-defined]
    demo.imi_scratch = scratch  # type: ignore[attr-defined]
    return demo


def _float_or_none(text: Any) -> float | None:
    """A finite float from a form field, else None (an empty or non-numeric bound is no bound)."""
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def row_trained(result: Any) -> bool:
    """Whether a result was scored with trained weights (see leaderboard.table.is_trained)."""
    from leaderboard.table import is_trained

    return is_trained(LoadedResult(Path("."), result))


def launch_app(config: AppConfig, *, host: str = "127.0.0.1", port: int = 7860,
               prevent_thread_lock: bool = False) -> gr.Blocks:
    """Build and launch the app on host:port; with `prevent_thread_lock` it returns while the server runs."""
    demo = build_app(config)
    allowed = getattr(demo, "imi_allowed_paths", [])
    # show_error=False: an exception's text can name server paths; handlers report users' mistakes themselves.
    # No "Use via API" link: the events serve this page only (PAGE_EVENT).
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, quiet=True,
                footer_links=["gradio", "settings"], show_error=False, allowed_paths=allowed or None,
                theme=gr.themes.Default(), css=CSS, head=JS)
    return demo

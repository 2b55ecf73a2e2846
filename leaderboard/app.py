"""The Gradio app: Leaderboard, Model, Compare, About and Submit tabs over a folder (or Hub repo) of result files.

Built from Gradio's own components only. Reads result files through `benchmark.results`; never imports scoring,
model or activation code (the Submit tab runs `imibench submit` in a subprocess).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from leaderboard import EMPTY_MESSAGE
from leaderboard.about import ABOUT_MARKDOWN, provenance_markdown
from leaderboard.loading import LoadedResult, ResultSet, ResultStore
from leaderboard.submit import DEFAULT_COMMAND, build_spec, run_submit
from leaderboard.submit import TIMEOUT_S as SUBMIT_TIMEOUT_S
from leaderboard.table import (
    DEFAULT_COLUMNS,
    DISPLAY_COLUMNS,
    build_table,
    datatypes,
    filter_choices,
    filter_table,
    latest_results,
    select_columns,
    write_csv,
)
from leaderboard.views import (
    UnitView,
    accuracy_scatter_figure,
    layer_names,
    layer_profile_figure,
    task_choices,
    unit_choices,
    unit_distribution_figure,
    unit_view,
)

N_DEFAULT_PROFILE_MODELS = 3


@dataclass(frozen=True)
class AppConfig:
    """How the app finds results, stimuli and the submission queue."""

    results: str
    queue: Path | None = None
    stimuli_root: Path | None = None
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
    read_at: str


class SnapshotCache:
    """Builds the table once per store version."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    def get(self) -> Snapshot:
        """The snapshot of the store's current version."""
        with self._lock:
            results, version = self.store.results, self.store.version
            if self._snapshot is None or self._snapshot.version != version:
                self._snapshot = Snapshot(version, results, build_table(results.results),
                                          latest_results(results.results), datetime.now().strftime("%H:%M:%S"))
            return self._snapshot


def _model_choices(snap: Snapshot) -> list[tuple[str, str]]:
    """(label, key) pairs for the model pickers, in table order."""
    return [(f"{row['model']} · {row['submission id']} · v{row['benchmark']}", row["key"])
            for _, row in snap.table.iterrows()]


def _status(snap: Snapshot) -> str:
    results = snap.results
    where = f"`{results.source}`" + (f" (folder `{results.folder}`)" if results.folder and
                                     str(results.folder) != results.source else "")
    return f"Results from {where}: **{len(snap.table)}** model(s), read at {snap.read_at}."


def _empty_state(snap: Snapshot) -> tuple[str, bool]:
    if not snap.table.empty:
        return "", False
    lines = [f"### {EMPTY_MESSAGE}"]
    if snap.results.problem:
        lines.append(f"\n{snap.results.problem}")
    return "\n".join(lines), True


def _invalid_panel(snap: Snapshot) -> tuple[str, bool]:
    invalid = snap.results.invalid
    if not invalid:
        return "", False
    head = f"**⚠️ {len(invalid)} file(s) in the results folder are not valid result files and are not shown:**"
    lines = [head, ""]
    lines += [f"- `{item.name}`: {item.error}" for item in invalid]
    return "\n".join(lines), True


def _table_update(snap: Snapshot, query: str, families, sources, proxies, columns) -> gr.Dataframe:
    filtered = filter_table(snap.table, query or "", families=families or (), sources=sources or (),
                            proxies=proxies or ())
    shown = select_columns(filtered, columns or ())
    return gr.Dataframe(value=shown, datatype=datatypes(list(shown.columns)))


def _keep(values, valid: list[str]) -> list[str]:
    return [v for v in (values or []) if v in valid]


def _unit_viewer(snap: Snapshot, key: str | None, layer: str | None, channel: Any, task: Any,
                 stimuli_root: Path | None) -> tuple:
    """Updates of (layer, unit, task, summary, warning, max gallery, min gallery, query gallery)."""
    loaded = snap.by_key.get(key) if key else None
    if loaded is None:
        view = UnitView("_Pick a model to browse its units._" if snap.by_key else "")
        return (gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None),
                gr.Dropdown(choices=[], value=None), view.summary, gr.Markdown(value="", visible=False), [], [], [])
    layers = layer_names(loaded)
    if not layers:
        view = UnitView("This result file records no per-unit scores.")
        return (gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None),
                gr.Dropdown(choices=[], value=None), view.summary, gr.Markdown(value="", visible=False), [], [], [])
    layer = layer if layer in layers else layers[0]
    units = unit_choices(loaded, layer)
    channels = [value for _, value in units]
    channel = int(channel) if channel is not None and int(channel) in channels else channels[0]
    unit = next(u for u in loaded.result.scores.units if u.layer == layer and u.channel == channel)
    tasks = task_choices(unit)
    task_ids = [value for _, value in tasks]
    task = int(task) if task is not None and int(task) in task_ids else (task_ids[0] if task_ids else None)
    view = unit_view(loaded, layer, channel, task if task is not None else 0, stimuli_root)
    return (
        gr.Dropdown(choices=layers, value=layer),
        gr.Dropdown(choices=units, value=channel),
        gr.Dropdown(choices=tasks, value=task),
        view.summary,
        gr.Markdown(value=view.warning, visible=bool(view.warning)),
        view.max_references,
        view.min_references,
        view.queries,
    )


def build_app(config: AppConfig) -> gr.Blocks:
    """The leaderboard app for `config` (call `.launch()` on it, or use `launch_app`)."""
    store = ResultStore(config.results)
    cache = SnapshotCache(store)
    snap = cache.get()
    choices = filter_choices(snap.table)
    model_choices = _model_choices(snap)
    model_keys = [key for _, key in model_choices]
    empty_text, empty_visible = _empty_state(snap)
    invalid_text, invalid_visible = _invalid_panel(snap)

    with gr.Blocks(title="imi-bench leaderboard", analytics_enabled=False) as demo:
        gr.Markdown("# imi-bench leaderboard\nPer-unit interpretability of vision models, scored with the "
                    "Machine Interpretability Score (MIS), a proxy validated against human 2-AFC responses.")
        with gr.Row(equal_height=True):
            status = gr.Markdown(_status(snap), elem_id="status")
            refresh = gr.Button("Refresh", size="sm", scale=0, elem_id="refresh")
        empty = gr.Markdown(empty_text, visible=empty_visible, elem_id="empty-state")
        invalid = gr.Markdown(invalid_text, visible=invalid_visible, elem_id="invalid-files")
        version = gr.State(snap.version)

        with gr.Tabs():
            with gr.Tab("Leaderboard", id="leaderboard"):
                with gr.Row():
                    search = gr.Textbox(label="Search", placeholder="model, family or source", scale=2,
                                        elem_id="search")
                    family = gr.Dropdown(choices["family"], value=[], multiselect=True, label="Family",
                                         elem_id="filter-family")
                    source = gr.Dropdown(choices["source"], value=[], multiselect=True, label="Source",
                                         elem_id="filter-source")
                    proxy = gr.Dropdown(choices["proxy"], value=[], multiselect=True, label="Proxy (name version)",
                                        elem_id="filter-proxy")
                columns = gr.CheckboxGroup(list(DISPLAY_COLUMNS), value=list(DEFAULT_COLUMNS), label="Columns",
                                           elem_id="columns")
                first = select_columns(snap.table, DEFAULT_COLUMNS)
                table = gr.Dataframe(first, datatype=datatypes(list(first.columns)), interactive=False,
                                     label="Leaderboard (sort from a column header's ⋮ menu; '=' marks a tie)",
                                     elem_id="leaderboard-table")
                gr.Markdown("Rank ties: a model whose 95% CI overlaps that of the model ranked directly above it "
                            "shares its rank (marked `=`). Ranks are per benchmark version and proxy.")
                with gr.Row():
                    export = gr.Button("Export CSV of the filtered table", size="sm", scale=0, elem_id="export")
                    csv_file = gr.File(label="CSV", interactive=False, height=90, visible=False, elem_id="csv-file")

            with gr.Tab("Model", id="model"):
                models = gr.Dropdown(model_choices, value=model_keys[:N_DEFAULT_PROFILE_MODELS], multiselect=True,
                                     label="Models (profile and distribution)", elem_id="profile-models")
                with gr.Row():
                    profile = gr.Plot(layer_profile_figure([snap.by_key[k] for k in
                                                            model_keys[:N_DEFAULT_PROFILE_MODELS]]),
                                      label="Per-layer profile", elem_id="profile-plot")
                    distribution = gr.Plot(unit_distribution_figure([snap.by_key[k] for k in
                                                                     model_keys[:N_DEFAULT_PROFILE_MODELS]]),
                                           label="Unit scores", elem_id="distribution-plot")
                gr.Markdown("### Unit viewer")
                with gr.Row():
                    uv_model = gr.Dropdown(model_choices, value=model_keys[0] if model_keys else None,
                                           label="Model", elem_id="uv-model", scale=2)
                    uv_layer = gr.Dropdown([], label="Layer", elem_id="uv-layer")
                    uv_unit = gr.Dropdown([], label="Unit", elem_id="uv-unit")
                    uv_task = gr.Dropdown([], label="Task", elem_id="uv-task")
                uv_summary = gr.Markdown(elem_id="uv-summary")
                uv_warning = gr.Markdown(visible=False, elem_id="uv-warning")
                max_gallery = gr.Gallery(label="Max references (most activating first)", columns=9, height=170,
                                         fit_columns=False, object_fit="contain",
                                         elem_id="uv-max", format="png")
                min_gallery = gr.Gallery(label="Min references (least activating first)", columns=9, height=170,
                                         fit_columns=False, object_fit="contain",
                                         elem_id="uv-min", format="png")
                query_gallery = gr.Gallery(label="Queries (max query, min query)", columns=9, height=170,
                                         fit_columns=False, object_fit="contain",
                                           elem_id="uv-queries", format="png")

            with gr.Tab("Compare", id="compare"):
                scatter = gr.Plot(accuracy_scatter_figure(snap.table), label="MIS vs ImageNet top-1",
                                  elem_id="scatter")

            with gr.Tab("About", id="about"):
                gr.Markdown(ABOUT_MARKDOWN)
                about_row = gr.Dropdown(model_choices, value=model_keys[0] if model_keys else None,
                                        label="Row", elem_id="about-row")
                about_md = gr.Markdown(provenance_markdown(snap.by_key.get(model_keys[0]) if model_keys else None),
                                       elem_id="provenance")

            with gr.Tab("Submit", id="submit"):
                queue_note = (f"Submissions go to the queue `{config.queue}`." if config.queue else
                              "**Submissions are disabled**: start the leaderboard with `--queue DIR`.")
                gr.Markdown("Submit a model for scoring. The spec is validated and enqueued by `imibench submit`; "
                            f"its answer is shown below. {queue_note}")
                with gr.Row():
                    f_model = gr.Textbox(label="Model spec (required)", placeholder="timm:resnet50.a1_in1k",
                                         elem_id="submit-model")
                    f_pretrained = gr.Checkbox(value=True, label="Pretrained weights", elem_id="submit-pretrained")
                    f_images = gr.Textbox(label="Image source", placeholder="bundled | folder:PATH | hf:OWNER/NAME",
                                          elem_id="submit-images")
                with gr.Row():
                    f_name = gr.Textbox(label="Display name", elem_id="submit-name")
                    f_family = gr.Textbox(label="Family", elem_id="submit-family")
                    f_license = gr.Textbox(label="License", elem_id="submit-license")
                with gr.Row():
                    f_paper = gr.Textbox(label="Paper link", placeholder="https://...", elem_id="submit-paper")
                    f_submitter = gr.Textbox(label="Submitter (name or email, required, kept private)",
                                             elem_id="submit-submitter")
                    f_top1 = gr.Number(label="ImageNet top-1 % (optional)", value=None, minimum=0, maximum=100,
                                       elem_id="submit-top1")
                submit_button = gr.Button("Submit", variant="primary", elem_id="submit-button")
                submit_result = gr.Markdown(elem_id="submit-result")

        timer = gr.Timer(config.poll_seconds)

        # ------------------------------------------------------------ events
        filters = [search, family, source, proxy, columns]

        def on_filter(query, families, sources, proxies, cols):
            return _table_update(cache.get(), query, families, sources, proxies, cols)

        for component in (family, source, proxy, columns):
            component.change(on_filter, filters, table)
        search.change(on_filter, filters, table)

        def on_export(query, families, sources, proxies, cols):
            filtered = filter_table(cache.get().table, query or "", families=families or (),
                                    sources=sources or (), proxies=proxies or ())
            return gr.File(value=str(write_csv(select_columns(filtered, cols or ()))), visible=True)

        export.click(on_export, filters, csv_file)

        def on_models(keys):
            by_key = cache.get().by_key
            chosen = [by_key[k] for k in (keys or []) if k in by_key]
            return layer_profile_figure(chosen), unit_distribution_figure(chosen)

        models.change(on_models, models, [profile, distribution])

        uv_inputs = [uv_model, uv_layer, uv_unit, uv_task]
        uv_outputs = [uv_layer, uv_unit, uv_task, uv_summary, uv_warning, max_gallery, min_gallery, query_gallery]

        def on_unit(key, layer, channel, task):
            return _unit_viewer(cache.get(), key, layer, channel, task, config.stimuli_root)

        for component in uv_inputs:
            component.input(on_unit, uv_inputs, uv_outputs)

        def on_about(key):
            return provenance_markdown(cache.get().by_key.get(key) if key else None)

        about_row.change(on_about, about_row, about_md)

        def on_submit(model, pretrained, images, name, family_text, license_text, paper, submitter, top1):
            spec = build_spec(model=model or "", pretrained=bool(pretrained), images=images or "",
                              license=license_text or "", paper=paper or "", submitter=submitter or "",
                              family=family_text or "", name=name or "", imagenet_top1=top1)
            return run_submit(spec, queue=config.queue, command=config.submit_command,
                              timeout_s=config.submit_timeout_s).message

        submit_button.click(on_submit, [f_model, f_pretrained, f_images, f_name, f_family, f_license, f_paper,
                                        f_submitter, f_top1], submit_result)

        # -------------------------------------------------------- reloading
        refresh_inputs = [version, *filters, models, *uv_inputs, about_row]
        refresh_outputs = [version, status, empty, invalid, family, source, proxy, table, models, profile,
                           distribution, uv_model, *uv_outputs, scatter, about_row, about_md]

        def full_update(query, families, sources, proxies, cols, keys, uv_key, layer, channel, task, about_key):
            snap = cache.get()
            choices = filter_choices(snap.table)
            options = _model_choices(snap)
            valid = [key for _, key in options]
            keys = _keep(keys, valid) or valid[:N_DEFAULT_PROFILE_MODELS]
            uv_key = uv_key if uv_key in valid else (valid[0] if valid else None)
            about_key = about_key if about_key in valid else (valid[0] if valid else None)
            families, sources, proxies = (_keep(families, choices["family"]), _keep(sources, choices["source"]),
                                          _keep(proxies, choices["proxy"]))
            empty_text, empty_visible = _empty_state(snap)
            invalid_text, invalid_visible = _invalid_panel(snap)
            chosen = [snap.by_key[k] for k in keys]
            return (
                snap.version,
                _status(snap),
                gr.Markdown(value=empty_text, visible=empty_visible),
                gr.Markdown(value=invalid_text, visible=invalid_visible),
                gr.Dropdown(choices=choices["family"], value=families),
                gr.Dropdown(choices=choices["source"], value=sources),
                gr.Dropdown(choices=choices["proxy"], value=proxies),
                _table_update(snap, query, families, sources, proxies, cols),
                gr.Dropdown(choices=options, value=keys),
                layer_profile_figure(chosen),
                unit_distribution_figure(chosen),
                gr.Dropdown(choices=options, value=uv_key),
                *_unit_viewer(snap, uv_key, layer, channel, task, config.stimuli_root),
                accuracy_scatter_figure(snap.table),
                gr.Dropdown(choices=options, value=about_key),
                provenance_markdown(snap.by_key.get(about_key) if about_key else None),
            )

        def on_refresh(_seen, *values):
            store.reload()
            return full_update(*values)

        def on_tick(seen, *values):
            store.poll()
            if cache.get().version == seen:
                return tuple(gr.skip() for _ in refresh_outputs)
            return full_update(*values)

        refresh.click(on_refresh, refresh_inputs, refresh_outputs)
        timer.tick(on_tick, refresh_inputs, refresh_outputs, show_progress="hidden")
        demo.load(on_unit, uv_inputs, uv_outputs)
        demo.load(on_tick, refresh_inputs, refresh_outputs, show_progress="hidden")
    return demo


def launch_app(config: AppConfig, *, host: str = "127.0.0.1", port: int = 7860,
               prevent_thread_lock: bool = False) -> gr.Blocks:
    """Build and launch the app on host:port; with `prevent_thread_lock` it returns while the server runs."""
    demo = build_app(config)
    allowed = [str(config.stimuli_root)] if config.stimuli_root else None
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, quiet=True,
                show_error=True, allowed_paths=allowed, theme=gr.themes.Default())
    return demo


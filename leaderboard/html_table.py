"""The leaderboard table as escaped HTML, with per-cell sort values, so that sorting, column toggles, search and
filters run in the browser (instant at 1,000 rows) while the server only rebuilds it when the group changes.

Only the first PAGE_ROWS matching rows are laid out; the page reveals more as the table's end scrolls into view
(leaderboard.web), so a page load, a tab switch or a filter never lays out all 1,000 rows at once."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from gradio.processing_utils import save_pil_to_cache
from PIL import Image

from leaderboard.table import DISPLAY_COLUMNS, NUMBER_COLUMNS, SORT_COLUMNS

PAGE_ROWS = 100
FILE_ROUTE = "/gradio_api/file="
NUMERIC_HEAD = ' data-num="1"'
BEYOND = ' class="lb-beyond"'  # a matching row past the laid-out ones (display: none until revealed)

TOOLTIPS: dict[str, str] = {
    "rank": "Position by MIS mean within this comparability group, with its 95% bootstrap interval over the "
            "per-unit scores: '3 (2-6)' = third, plausibly anywhere from second to sixth.",
    "model": "Display name (from the submission); '(untrained)' marks random-init weights. Click a row for details.",
    "family": "Architecture family (recorded, or the leading letters of the architecture name).",
    "source": "Where the model comes from: timm, open_clip, torchvision or a local checkpoint.",
    "MIS mean": "Machine Interpretability Score: mean over the scored units of the proxy's predicted human 2-AFC "
                "accuracy (0.5 = chance, 1 = always correct).",
    "p5": "5th percentile of the unit scores: how interpretable the least interpretable units are.",
    "95% CI": "95% bootstrap CI of the MIS mean over units.",
    "units": "Number of units (channels or neurons) scored.",
    "humans natural": "Human 2-AFC accuracy on this model's units with natural exemplars (mean over units, 95% CI), "
                      "for models present in the human release.",
    "humans optimized": "Human 2-AFC accuracy with feature-visualisation (optimized) exemplars, 95% CI.",
    "proxy": "The proxy metric (name and version) that predicted the unit scores; its fitted parameters and human "
             "data are part of the comparability key.",
    "benchmark": "imi-bench version that produced the result.",
    "params (M)": "Parameters in millions.",
    "ImageNet top-1": "ImageNet-1k top-1 accuracy (%) as stated by the submitter; blank when not given.",
    "date": "When the result was produced (UTC).",
    "submission id": "The submission's id in the result file.",
}


def slug(column: str) -> str:
    """A CSS-safe class name for a column."""
    return "c-" + re.sub(r"[^a-z0-9]+", "-", column.lower()).strip("-")


def _sort_value(row: dict, column: str) -> str:
    value = row[SORT_COLUMNS.get(column, column)]
    if isinstance(value, pd.Timestamp):
        return str(value.value) if not pd.isna(value) else ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "" if isinstance(value, float) and not math.isfinite(value) else repr(float(value))
    return html.escape(str(value).lower(), quote=True)


def _cell(row: dict, column: str) -> str:
    value = row[column]
    if isinstance(value, float):
        text = "" if not math.isfinite(value) else (f"{value:.3f}" if column in ("MIS mean", "p5") else f"{value:g}")
    else:
        text = str(value)
    if column in SORT_COLUMNS:  # sorted by a value its text does not show (rank interval, CI, date)
        return f'<td class="{slug(column)}" data-v="{_sort_value(row, column)}">{html.escape(text)}</td>'
    return f'<td class="{slug(column)}">{html.escape(text)}</td>'


def table_html(table: pd.DataFrame, columns: Sequence[str] = DISPLAY_COLUMNS) -> str:
    """The `<table>` of `table`'s rows (every display column; hidden ones are hidden by the page's CSS)."""
    # Numeric columns sort by value: by the cell's data-v where the text is not the value, else by the text.
    heads = "".join(
        f'<th class="{slug(c)}" data-col="{slug(c)}" title="{html.escape(TOOLTIPS.get(c, c), quote=True)}" '
        f'tabindex="0" aria-sort="none"{NUMERIC_HEAD if c in NUMBER_COLUMNS or c in SORT_COLUMNS else ""}>'
        f'{html.escape(c)}<span class="sort-mark"></span></th>'
        for c in columns
    )
    rows = []
    for index, row in enumerate(table.to_dict("records")):  # plain dicts: 10x faster per cell than Series
        search = " ".join(str(row[c]) for c in ("model", "family", "source")).lower()
        params = row["params (M)"]
        rows.append(
            f'<tr{BEYOND if index >= PAGE_ROWS else ""} '
            f'data-key="{html.escape(str(row["key"]), quote=True)}" '
            f'data-trained="{1 if row["trained"] else 0}" '
            f'data-params="{"" if pd.isna(params) else params}" '
            f'data-search="{html.escape(search, quote=True)}">'
            + "".join(_cell(row, c) for c in columns) + "</tr>"
        )
    empty = '<p class="lb-empty">No rows in this group.</p>' if table.empty else ""
    more = f"Showing {PAGE_ROWS} of {len(table)} rows; scroll for more." if len(table) > PAGE_ROWS else ""
    return (f'<div class="lb-scroll"><table id="lb-table" data-rows="{len(table)}" data-page="{PAGE_ROWS}">'
            f'<thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}</tbody></table>{empty}'
            f'<p class="lb-more" aria-live="polite">{more}</p></div>')


def legend_html() -> str:
    """A compact legend of every column (the same text as the header tooltips)."""
    items = "".join(f"<dt>{html.escape(c)}</dt><dd>{html.escape(t)}</dd>" for c, t in TOOLTIPS.items())
    return f'<details class="lb-legend"><summary>Column legend</summary><dl>{items}</dl></details>'


def frame_html(frame: pd.DataFrame, caption: str) -> str:
    """A small data frame (per-layer scores, the queue) as an escaped HTML table under a caption."""
    table = frame.to_html(index=False, border=0, na_rep="", classes="lb-frame", escape=True)
    return f'<p class="lb-caption">{html.escape(caption)}</p><div class="lb-frame-wrap">{table}</div>'


def gallery_html(sections: Sequence[tuple[str, str, Sequence[tuple[Image.Image, str]]]], folder: Path) -> str:
    """Image sections `(element id, title, [(image, caption)])` as `<figure>`s whose images are JPEG files saved
    under `folder` (named by their content hash) and served by Gradio's file route; empty sections are left out."""
    parts = []
    for elem_id, title, items in sections:
        if not items:
            continue
        figures = []
        for image, caption in items:
            path = save_pil_to_cache(image, cache_dir=str(folder), name="thumb", format="jpeg")
            url = html.escape(f"{FILE_ROUTE}{path}", quote=True)
            text = html.escape(caption)
            figures.append(f'<figure><a href="{url}" target="_blank" rel="noopener"><img src="{url}" alt="{text}" '
                           f'title="{text}"></a><figcaption>{text}</figcaption></figure>')
        parts.append(f'<section id="{html.escape(elem_id, quote=True)}" class="uv-gallery">'
                     f'<p class="lb-caption">{html.escape(title)}</p><div class="uv-row">{"".join(figures)}</div>'
                     "</section>")
    return "".join(parts)

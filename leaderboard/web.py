"""The page's own CSS and JavaScript: client-side sort, search, filters and column toggles over the HTML table,
row clicks that open the model page, URL state, the client-side required-field check, and the 390 px layout."""

from __future__ import annotations

CSS = """
.lb-scroll { max-height: 70vh; overflow: auto; border: 1px solid var(--border-color-primary); border-radius: 6px; }
#lb-table { border-collapse: collapse; width: 100%; font-size: 14px; }
#lb-table th { position: sticky; top: 0; background: var(--background-fill-secondary); cursor: pointer;
  text-align: left; padding: 6px 8px; white-space: nowrap; user-select: none; }
#lb-table td { padding: 4px 8px; border-top: 1px solid var(--border-color-primary); white-space: nowrap; }
#lb-table td[data-num] { font-variant-numeric: tabular-nums; }
#lb-table tbody tr { cursor: pointer; }
#lb-table tbody tr:hover { background: var(--background-fill-secondary); }
#lb-table tbody tr.lb-opened { background: var(--color-accent-soft); }  /* the row whose page is open (or opening) */
#lb-table th[aria-sort="ascending"] .sort-mark::after { content: " \\25B2"; }
#lb-table th[aria-sort="descending"] .sort-mark::after { content: " \\25BC"; }
.lb-hidden-row, .lb-beyond { display: none; }
.lb-more { margin: 4px 8px; font-size: 12px; color: var(--body-text-color-subdued); }
.lb-more:empty { display: none; }
.lb-caption { font-weight: 600; margin: 4px 0; }
.lb-frame-wrap { overflow-x: auto; }
table.lb-frame { border-collapse: collapse; font-size: 13px; border: 0; }
table.lb-frame th, table.lb-frame td { padding: 3px 8px; border: 0; border-top: 1px solid var(--border-color-primary);
  text-align: left; }
.uv-row { display: flex; flex-wrap: wrap; gap: 6px; }
.uv-gallery figure { margin: 0; width: 150px; }
.uv-gallery img { width: 150px; height: 150px; object-fit: contain; background: var(--background-fill-secondary); }
.uv-gallery figcaption { font-size: 11px; overflow-wrap: anywhere; }
.lb-legend dt { font-weight: 600; } .lb-legend dd { margin: 0 0 6px 12px; }
#row-pick, #url-state { display: none !important; }
#submit-required { color: #b00020; }
@media (max-width: 600px) {
  #lb-table .c-family, #lb-table .c-source, #lb-table .c-p5, #lb-table .c-95-ci, #lb-table .c-units,
  #lb-table .c-humans-natural, #lb-table .c-humans-optimized, #lb-table .c-proxy, #lb-table .c-benchmark,
  #lb-table .c-params-m, #lb-table .c-imagenet-top-1, #lb-table .c-date, #lb-table .c-submission-id
    { display: none; }
  #lb-table { font-size: 13px; }
  #lb-table td, #lb-table th { padding: 3px 4px; white-space: normal; }
  .lb-intro, #status, #refresh, #group-note { display: none !important; }
  #title h1 { font-size: 20px; margin: 0; }
  .lb-invalid summary { font-size: 12px; }
  .lb-scroll { max-height: none; }
  .gradio-container { padding: 4px !important; }
}
"""

# Kept in one <script> in the page head; Gradio events call window.imi* with the controls' values.
JS = r"""
<script>
(() => {
  const state = {q: "", families: [], sources: [], hideUntrained: false, pmin: null, pmax: null, cols: null,
                 sort: null, dir: "descending"};
  const num = (v) => (v === null || v === undefined || v === "" || Number.isNaN(Number(v))) ? null : Number(v);
  function table() { return document.getElementById("lb-table"); }
  function applyColumns() {
    let style = document.getElementById("lb-colstyle");
    if (!style) { style = document.createElement("style"); style.id = "lb-colstyle"; document.head.appendChild(style); }
    if (!state.cols) { style.textContent = ""; return; }
    const t = table(); if (!t) return;
    const slug = (c) => "c-" + c.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    const shown = new Set(state.cols.map(slug));
    const hidden = [...t.querySelectorAll("thead th")].map((th) => th.dataset.col).filter((c) => !shown.has(c));
    style.textContent = hidden.map((c) => `#lb-table .${c} { display: none !important; }`).join("\n");
  }
  function applyFilters() {
    const t = table(); if (!t) return;
    const q = state.q.trim().toLowerCase();
    let shown = 0;
    for (const tr of t.tBodies[0].rows) {
      const d = tr.dataset; const p = num(d.params);
      const cell = (c) => { const td = tr.querySelector("td." + c); return td ? td.textContent : ""; };
      const ok = (!q || d.search.includes(q))
        && (!state.families.length || state.families.includes(cell("c-family")))
        && (!state.sources.length || state.sources.includes(cell("c-source")))
        && (!state.hideUntrained || d.trained === "1")
        && (state.pmin === null || (p !== null && p >= state.pmin))
        && (state.pmax === null || (p !== null && p <= state.pmax));
      tr.classList.toggle("lb-hidden-row", !ok); if (ok) shown++;
    }
    t.dataset.shown = String(shown);
  }
  function applySort() {
    const t = table(); if (!t || !state.sort) return;
    const th = t.querySelector(`thead th[data-col="${state.sort}"]`); if (!th) return;
    const index = [...th.parentNode.children].indexOf(th);
    const sign = state.dir === "ascending" ? 1 : -1;
    const rows = [...t.tBodies[0].rows];
    const numeric = th.dataset.num === "1";  // by the cell's data-v where present, else by its text
    const key = (tr) => {
      const td = tr.children[index];
      return numeric ? [td.dataset.v !== undefined ? td.dataset.v : td.textContent.trim(), true]
        : [td.textContent.toLowerCase(), false];
    };
    rows.sort((a, b) => {
      const [va, na] = key(a); const [vb, nb] = key(b);
      if (va === "" && vb === "") return 0; if (va === "") return 1; if (vb === "") return -1;
      return sign * (na && nb ? Number(va) - Number(vb) : va.localeCompare(vb));
    });
    const body = t.tBodies[0]; const frag = document.createDocumentFragment();
    rows.forEach((r) => frag.appendChild(r)); body.appendChild(frag);
    t.querySelectorAll("thead th").forEach((h) => h.setAttribute("aria-sort", h === th ? state.dir : "none"));
  }
  // Only the first `limit` matching rows are laid out (the rest: .lb-beyond, display: none); the note under the
  // table says how many are shown, and more are revealed as it scrolls into view.
  function applyLimit() {
    const t = table(); if (!t) return;
    const limit = Number(t.dataset.limit || t.dataset.page || 100);
    let shown = 0;
    for (const tr of t.tBodies[0].rows) {
      const visible = !tr.classList.contains("lb-hidden-row");
      if (visible) shown++;
      tr.classList.toggle("lb-beyond", visible && shown > limit);
    }
    const more = t.parentNode.querySelector(".lb-more");
    if (more) {
      const text = shown > limit ? `Showing ${limit} of ${shown} rows; scroll for more.` : "";
      if (more.textContent !== text) more.textContent = text;
    }
  }
  let moreObserver = null;
  function watchMore() {
    const t = table(); if (!t) return;
    const more = t.parentNode.querySelector(".lb-more"); if (!more) return;
    if (moreObserver) moreObserver.disconnect();
    moreObserver = new IntersectionObserver((entries) => {
      if (!entries.some((e) => e.isIntersecting) || !more.textContent) return;
      const t2 = table(); if (!t2) return;
      t2.dataset.limit = String(Number(t2.dataset.limit || t2.dataset.page || 100) + Number(t2.dataset.page || 100));
      applyLimit();
      moreObserver.unobserve(more); moreObserver.observe(more);  // still in view: the next call reveals more
    }, {rootMargin: "600px"});
    moreObserver.observe(more);
  }
  function applyAll() { applyColumns(); applyFilters(); applySort(); applyLimit(); }
  window.imiInitialQuery = window.location.search;
  function writeUrl(extra) {
    if (!window.imiReady) return;  // the server applies the shared URL first (demo.load)
    const url = new URL(window.location.href); const p = url.searchParams;
    const empty = (v) => v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length);
    const set = (k, v) => empty(v) ? p.delete(k) : p.set(k, Array.isArray(v) ? v.join(",") : v);
    set("q", state.q); set("family", state.families); set("source", state.sources);
    set("untrained", state.hideUntrained ? "hide" : ""); set("pmin", state.pmin); set("pmax", state.pmax);
    set("cols", state.cols); set("sort", state.sort ? `${state.sort}:${state.dir}` : "");
    for (const [k, v] of Object.entries(extra || {})) set(k, v);
    window.history.replaceState(null, "", url.toString());
  }
  window.imiFilter = (q, families, sources, hideUntrained, pmin, pmax, cols) => {
    Object.assign(state, {q: q || "", families: families || [], sources: sources || [],
                          hideUntrained: !!hideUntrained, pmin: num(pmin), pmax: num(pmax), cols: cols || null});
    applyAll(); writeUrl(); return [];
  };
  window.imiUrl = (extra) => { writeUrl(extra); return []; };
  const sortParam = new URLSearchParams(window.location.search).get("sort");
  if (sortParam) { const [c, d] = sortParam.split(":"); state.sort = c; state.dir = d || "descending"; }
  document.addEventListener("click", (event) => {
    const th = event.target.closest("#lb-table thead th");
    if (th) {
      const col = th.dataset.col;
      state.dir = state.sort === col && state.dir === "descending" ? "ascending"
        : (state.sort === col ? "descending" : (col === "c-rank" || col === "c-model" ? "ascending" : "descending"));
      state.sort = col; applySort(); applyLimit(); writeUrl(); return;
    }
    const tr = event.target.closest("#lb-table tbody tr");
    if (tr) {
      const box = document.querySelector("#row-pick textarea, #row-pick input");
      if (!box) return;
      for (const other of tr.parentNode.querySelectorAll("tr.lb-opened")) other.classList.remove("lb-opened");
      tr.classList.add("lb-opened");  // at once, while the server fills the model page
      box.value = tr.dataset.key + "|" + Date.now();
      box.dispatchEvent(new Event("input", {bubbles: true}));  // the server's reply opens the filled model page
      writeUrl({tab: "model", model: tr.dataset.key});
    }
  });
  function checkRequired() {
    const model = document.querySelector("#submit-model textarea, #submit-model input");
    const who = document.querySelector("#submit-submitter textarea, #submit-submitter input");
    const button = document.getElementById("submit-button");
    const hint = document.getElementById("submit-required");
    if (!model || !who || !button) return;
    const missing = [];
    if (!model.value.trim()) missing.push("model spec");
    if (!who.value.trim()) missing.push("submitter");
    button.disabled = missing.length > 0;
    const text = missing.length ? "Required before submitting: " + missing.join(", ") + "." : "";
    if (hint && hint.textContent !== text) hint.textContent = text;
  }
  document.addEventListener("input", checkRequired);
  new MutationObserver(() => {
    const t = table();
    if (t && t.dataset.applied !== "1") { t.dataset.applied = "1"; applyAll(); watchMore(); }
    checkRequired();
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
</script>
"""

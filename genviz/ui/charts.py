"""Charts that a refresh updates in place, instead of mounting a new plotly chart each time.

Streamlit 1.67 derives a plotly chart's element id from its figure, key or not, so every refresh
of a live chart unmounts the old chart and draws a new one from scratch (`Plotly.newPlot`, React's
unmount and mount, the browser's style and layout of a new subtree). On a training page that kept
Chromium's main thread busy nearly all the time, so clicks waited and the browser competed with
training for the cores. A live chart here is a small custom component (`st.components.v2`) with a
stable key: the browser keeps its one plotly div and hands each new figure to `Plotly.react`,
which redraws only what changed and keeps the hover; the script keeps a visitor's zoom itself.

The plotly.js it uses is Streamlit's own (the same file and version `st.plotly_chart` draws with),
imported by the browser from Streamlit's static files, so nothing is bundled or served here. If a
Streamlit release renames that file, `live_chart` falls back to `st.plotly_chart`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import plotly.io as pio
import streamlit as st

COMPONENT = "genviz_live_chart"
CHART_CLASS = "genviz-chart"  # the plotly div's class, for tests and benchmarks

# The component's module, run by the browser for each new figure. The figure arrives as UTF-8 JSON
# bytes; drawing waits for the next animation frame, so that figures arriving faster than the
# browser paints are skipped rather than queued, and only the latest is drawn.
_SCRIPT = r"""
const CHUNK = "__CHUNK__";
let plotly = null;
function loadPlotly() {
  if (plotly === null) {
    // Streamlit names its chunks relative to its main bundle, as its own app imports them.
    const bundle = document.querySelector('script[src*="/static/js/index."]');
    const url = new URL(CHUNK, bundle ? bundle.src : window.location.href).href;
    plotly = import(url).then(() => window.Plotly);
  }
  return plotly;
}
export default function ({ parentElement, data }) {
  let div = parentElement.querySelector("div.__CLASS__");
  if (div === null) {
    div = document.createElement("div");
    div.className = "__CLASS__";
    parentElement.appendChild(div);
    new ResizeObserver(() => {
      // a column that changed width (the sidebar folded); not while hidden or being removed
      if (div._genvizDrawn && div.isConnected && div.offsetParent !== null) {
        window.Plotly.Plots.resize(div).catch(() => {});
      }
    }).observe(parentElement);
  }
  // a part's rerun sends every figure again; draw only those that changed
  if (sameBytes(data, div._genvizLatest)) return cleanup(div);
  div._genvizLatest = data;
  if (!div._genvizPending) {
    div._genvizPending = true;
    loadPlotly().then((Plotly) => requestAnimationFrame(() => {
      div._genvizPending = false;
      const spec = JSON.parse(new TextDecoder().decode(div._genvizLatest));
      keepZoom(div, spec.figure.layout);
      Plotly.react(div, spec.figure.data, spec.figure.layout, spec.config);
      if (!div._genvizDrawn) div.on("plotly_relayout", (event) => rememberZoom(div, event));
      div._genvizDrawn = true;
      div.dataset.revision = String((Number(div.dataset.revision) || 0) + 1);
    }));
  }
  return cleanup(div);
}
// A visitor's zoom or pan, by axis, kept through refreshes while the figure's own range for that
// axis stays what it was (a new target or box starts from its own range again).
function rememberZoom(div, event) {
  const zoom = div._genvizZoom || (div._genvizZoom = {});
  for (const key of Object.keys(event)) {
    const match = key.match(/^([xy]axis[0-9]*)\.(range|autorange)/);
    if (match === null) continue;
    if (match[2] === "autorange") delete zoom[match[1]];
    else zoom[match[1]] = div._fullLayout[match[1]].range.slice();
  }
}
function keepZoom(div, layout) {
  const given = div._genvizGiven || (div._genvizGiven = {});
  const zoom = div._genvizZoom || {};
  for (const key of Object.keys(layout)) {
    if (!/^[xy]axis[0-9]*$/.test(key)) continue;
    const range = JSON.stringify(layout[key].range);
    if (given[key] !== undefined && given[key] !== range) delete zoom[key];
    given[key] = range;
  }
  for (const [axis, range] of Object.entries(zoom)) {
    layout[axis] = Object.assign({}, layout[axis], { range: range, autorange: false });
  }
}
function cleanup(div) {
  return () => { if (window.Plotly) window.Plotly.purge(div); };
}
function sameBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
"""


@functools.cache
def plotly_chunk() -> str | None:
    """The file name of Streamlit's plotly chunk (e.g. PlotlyChart.D9Z0_fxz.js), or None; `app.py`
    has the browser start loading the same file on a session's first run."""
    chunks = sorted((Path(st.__file__).parent / "static" / "static" / "js").glob("PlotlyChart.*.js"))
    return chunks[0].name if chunks else None


@functools.cache
def _component() -> Any:
    chunk = plotly_chunk()
    script = _SCRIPT.replace("__CHUNK__", chunk or "").replace("__CLASS__", CHART_CLASS)
    return st.components.v2.component(COMPONENT, js=_compact(script), isolate_styles=False)


def _compact(script: str) -> str:
    """The script without indentation and comment lines: it travels with every chart's update."""
    lines = (line.strip() for line in script.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//"))


def spec_bytes(figure: Any, config: dict[str, Any]) -> bytes:
    """A figure (a plotly Figure or its dict) and its config, as the UTF-8 JSON the browser reads."""
    figure_json = pio.to_json(figure, validate=False, engine="json")
    return b'{"figure":' + figure_json.encode() + b',"config":' + json.dumps(config).encode() + b"}"


def live_chart(figure: Any, *, key: str, config: dict[str, Any]) -> None:
    """Draw `figure` under `key`; a later run with the same key updates the same chart in place.
    The layout should size itself (a height, no width): the chart takes its column's width."""
    if plotly_chunk() is None:
        st.plotly_chart(figure, key=key, config=config)
        return
    _component()(key=key, data=spec_bytes(figure, {**config, "responsive": True}))

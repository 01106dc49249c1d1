"""The live chart component: what it sends, and the plotly.js it relies on in Streamlit's files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import streamlit as st
from apptest_helpers import charts
from streamlit.testing.v1 import AppTest

from genviz.ui import charts as live_charts
from genviz.views import render


def test_streamlits_plotly_bundle_is_found_and_defines_the_global_plotly() -> None:
    """The component draws with the plotly.js of Streamlit's own chart; a Streamlit release that
    renamed the file or stopped defining `window.Plotly` would fail here, not silently fall back."""
    chunk = live_charts.plotly_chunk()
    assert chunk is not None
    source = (Path(st.__file__).parent / "static" / "static" / "js" / chunk).read_text(encoding="utf-8")
    assert "window.Plotly=" in source


def test_a_figure_travels_as_json_with_its_config() -> None:
    x = np.linspace(-4, 4, 16)
    log_q = -(x[None, :] ** 2 + x[:, None] ** 2) / 2
    figure = render.density_panel(x, x, log_q, cmax=0.2, title="q", height=300, colorbar=False)
    spec = json.loads(live_charts.spec_bytes(figure, {"displaylogo": False}))
    assert spec["config"] == {"displaylogo": False}
    assert spec["figure"]["data"][0]["type"] == "heatmap"
    assert spec["figure"]["layout"]["height"] == 300


def test_the_script_keeps_its_statements_and_drops_comments() -> None:
    script = live_charts._compact(live_charts._SCRIPT)
    assert "//" not in script and "Plotly.react(" in script and "export default function" in script
    assert len(script) < len(live_charts._SCRIPT)


def _two_charts() -> None:
    import plotly.graph_objects as go
    import streamlit as st

    from genviz.ui.charts import live_chart

    run = st.session_state["run"] = st.session_state.get("run", 0) + 1
    live_chart(go.Figure(go.Scatter(x=[0, 1], y=[run, 0])), key="first", config={"displaylogo": False})
    live_chart({"data": [], "layout": {"height": 200 + run}}, key="second", config={})


def test_a_chart_is_the_same_element_when_its_figure_changes() -> None:
    """A keyed chart keeps its element id while its figure changes, so the browser updates it in place."""
    at = AppTest.from_function(_two_charts).run()
    assert not at.exception
    ids = [element.proto.id for element in at.get("bidi_component")]
    assert [(c.key, c.figure["layout"].get("height")) for c in charts(at)] == [
        ("first", None),
        ("second", 201),
    ]
    at.run()
    assert [element.proto.id for element in at.get("bidi_component")] == ids
    assert [c.figure["layout"].get("height") for c in charts(at)] == [None, 202]
    assert charts(at)[0].figure["data"][0]["y"] == [2, 0]

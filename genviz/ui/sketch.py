"""The sidebar's drawing canvas: each lasso or box selection on it is a stroke, and the points
generated around the strokes train like an uploaded CSV (genviz.drawing does the geometry)."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from genviz.config import USER_DATA
from genviz.drawing import (
    CANVAS,
    DEFAULT_COUNT,
    DEFAULT_SPREAD,
    MAX_COUNT,
    MAX_SPREAD,
    MAX_STROKES,
    MIN_COUNT,
    MIN_SPREAD,
    drawn_points,
    strokes_from_selection,
)
from genviz.ui.state import PLOTLY_CONFIG, Session
from genviz.views import render

SKETCH = "draw"  # the sidebar's choice; what it makes trains as the USER_DATA target
LATTICE_SIDE = 33  # the faint points a selection needs to report itself
PREVIEW_POINTS = 1500  # of the generated points, drawn on the canvas
CANVAS_CONFIG = {**PLOTLY_CONFIG, "modeBarButtonsToRemove": ["zoom", "pan", "zoomIn", "zoomOut", "autoScale"]}
HOW = "Drag on the canvas to draw a stroke (a lasso); Box Select in its toolbar fills a rectangle."


def _lattice() -> np.ndarray:
    xs = np.linspace(CANVAS.xmin, CANVAS.xmax, LATTICE_SIDE)
    ys = np.linspace(CANVAS.ymin, CANVAS.ymax, LATTICE_SIDE)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)


def canvas_key(state: Session) -> str:
    return f"canvas.{state.canvas_revision}"


def drawing_input(state: Session) -> str:
    """The canvas, its settings and buttons; returns the target to use: 'data' once a drawing is
    trained on, else the current target."""
    take_selection(state, st.session_state.get(canvas_key(state)))
    spread = st.slider("Spread", MIN_SPREAD, MAX_SPREAD, DEFAULT_SPREAD, step=0.01, key="sketch_spread",
                       help="standard deviation of the noise around each stroke")  # fmt: skip
    count = int(st.number_input("Points", MIN_COUNT, MAX_COUNT, DEFAULT_COUNT, step=500, key="sketch_count"))
    points = _points(state, count, spread)
    shown = [(s.kind, s.x, s.y) for s in state.strokes]
    preview = None if points is None else points[:PREVIEW_POINTS].numpy()
    figure = render.drawing_canvas(CANVAS.as_list(), _lattice(), shown, preview)
    with st.container(key="sketch_canvas"):  # a fixed handle for the page's own tests and styles
        st.plotly_chart(figure, key=canvas_key(state), on_select="rerun", selection_mode=("lasso", "box"),
                        config=CANVAS_CONFIG)  # fmt: skip
    undo, clear, use = st.columns([1, 1, 1.4])
    undo.button("Undo", key="sketch_undo", disabled=not state.strokes, on_click=undo_stroke, args=(state,))
    empty = not state.strokes
    clear.button("Clear", key="sketch_clear", disabled=empty, on_click=clear_strokes, args=(state,))
    use.button("Train on it", key="sketch_use", type="primary", disabled=points is None,
               on_click=state.load_drawing, args=(points,))  # fmt: skip
    st.caption(f"{len(state.strokes)} of at most {MAX_STROKES} strokes. {HOW}")
    if state.points_drawn:
        return USER_DATA
    st.info(f"Draw, then press Train on it; still showing {state.config.target}.")
    return state.config.target


def _points(state: Session, count: int, spread: float) -> torch.Tensor | None:
    """The points the strokes make, or None (with the reason shown when it is not just no strokes)."""
    if not state.strokes:
        return None
    try:
        return drawn_points(state.strokes, count, spread, state.config.seed)
    except ValueError as error:  # a count or spread from outside the widgets' ranges
        st.error(str(error))
        return None


def take_selection(state: Session, event: object) -> None:
    """A selection made on the canvas since the last run becomes a stroke (or several)."""
    selection = event.get("selection") if isinstance(event, dict) else None
    strokes = strokes_from_selection(selection, CANVAS)
    if not strokes:
        return
    room = MAX_STROKES - len(state.strokes)
    state.strokes.extend(strokes[:room])
    state.canvas_revision += 1  # the next canvas starts with no selection
    if room < len(strokes):
        st.warning(f"At most {MAX_STROKES} strokes: Undo or Clear to draw more.")


def undo_stroke(state: Session) -> None:
    if state.strokes:
        state.strokes.pop()
    state.canvas_revision += 1


def clear_strokes(state: Session) -> None:
    state.strokes.clear()
    state.canvas_revision += 1

"""Drawn data: selections read defensively into strokes, points generated around them as stated,
and the sidebar's canvas logic (strokes kept, Undo, Clear, a drawing trained on like an upload).
The drawing itself, a mouse on the canvas, is tested in Chromium (test_browser_drawing.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from apptest_helpers import press
from streamlit.testing.v1 import AppTest

from genviz.drawing import CANVAS, MAX_STROKES, MAX_VERTICES, Stroke, drawn_points, strokes_from_selection
from genviz.ui.sketch import SKETCH, take_selection

ROOT = Path(__file__).resolve().parents[1]
WAVE = Stroke("path", (-3.0, -1.0, 1.0, 3.0), (0.0, 1.0, -1.0, 0.0))


def test_lasso_and_box_selections_become_strokes() -> None:
    selection = {
        "points": [{"x": 0, "y": 0}],
        "lasso": [{"xref": "x", "yref": "y", "x": [0, 1, 2], "y": [0, 1, 0]}],
        "box": [{"xref": "x", "yref": "y", "x": [2, -1], "y": [3, 1]}],
    }
    assert strokes_from_selection(selection) == [
        Stroke("path", (0.0, 1.0, 2.0), (0.0, 1.0, 0.0)),
        Stroke("region", (-1.0, 2.0), (1.0, 3.0)),
    ]


@pytest.mark.parametrize(
    "selection",
    [
        None,
        "lasso",
        {"lasso": "xy"},
        {"lasso": [5, None, "x"]},
        {"lasso": [{"x": ["1", "2"], "y": [0, 0]}]},
        {"lasso": [{"x": [True, 1], "y": [0, 0]}]},
        {"lasso": [{"x": [float("nan"), 1], "y": [0, 0]}]},
        {"lasso": [{"x": [0, 1], "y": [0]}]},
        {"lasso": [{"x": [], "y": []}]},
        {"box": [{"x": [0, 1, 2], "y": [0, 1, 2]}]},
        {"box": [{"x": {"a": 1}, "y": [0, 1]}]},
    ],
)
def test_malformed_selections_are_skipped(selection: object) -> None:
    assert strokes_from_selection(selection) == []


def test_long_trails_are_thinned_and_clipped_to_the_canvas() -> None:
    n = 3000
    xs = [100.0 * math.cos(t / n * 6) for t in range(n)]
    (stroke,) = strokes_from_selection({"lasso": [{"x": xs, "y": [0.5] * n}]})
    assert len(stroke.x) <= MAX_VERTICES
    assert max(stroke.x) == CANVAS.xmax and min(stroke.x) == CANVAS.xmin
    many = {"lasso": [{"x": [0, 1], "y": [0, 1]}] * (MAX_STROKES * 3)}
    assert len(strokes_from_selection(many)) == MAX_STROKES


def distance_to_path(points: torch.Tensor, stroke: Stroke) -> torch.Tensor:
    """(n,) distance from each point to the polyline."""
    v = torch.tensor(stroke.vertices, dtype=torch.float64)
    a, b = v[:-1], v[1:]
    ab = b - a
    t = (((points[:, None] - a) * ab).sum(-1) / (ab * ab).sum(-1)).clamp(0, 1)
    nearest = a + t[..., None] * ab
    return (points[:, None] - nearest).norm(dim=-1).min(1).values


def test_points_lie_around_a_path_with_the_spread_asked_for() -> None:
    points = drawn_points([WAVE], 5000, 0.1, seed=3)
    assert points.shape == (5000, 2) and points.dtype == torch.float64
    distance = distance_to_path(points, WAVE)
    assert float(distance.quantile(0.999)) < 0.5  # Gaussian noise of std 0.1 around the line
    assert float(distance.mean()) == pytest.approx(0.1 * math.sqrt(2 / math.pi), rel=0.15)  # mean |N(0, σ²)|
    assert torch.equal(points, drawn_points([WAVE], 5000, 0.1, seed=3))
    assert not torch.equal(points, drawn_points([WAVE], 5000, 0.1, seed=4))


def test_strokes_share_the_points_by_length_and_regions_are_filled() -> None:
    short = Stroke("path", (-3.0, -2.0), (3.0, 3.0))  # length 1
    long = Stroke("path", (-3.0, 0.0), (-3.0, -3.0))  # length 3
    points = drawn_points([short, long], 8000, 0.02, seed=0)
    near_short = float((points[:, 1] > 2).double().mean())
    assert near_short == pytest.approx(0.25, abs=0.02)
    region = Stroke("region", (0.0, 2.0), (-1.0, 1.0))
    inside = drawn_points([region], 4000, 0.02, seed=0)
    assert inside.mean(0).tolist() == pytest.approx([1.0, 0.0], abs=0.05)
    assert float(inside[:, 0].std()) == pytest.approx(2 / math.sqrt(12), rel=0.05)  # uniform over [0, 2]
    dot = Stroke("path", (1.0,), (1.0,))  # a click: a blob
    assert drawn_points([dot], 500, 0.1).mean(0).tolist() == pytest.approx([1.0, 1.0], abs=0.03)
    with pytest.raises(ValueError, match="draw at least one stroke"):
        drawn_points([], 100, 0.1)


class FakeSession:
    strokes: list[Stroke]
    canvas_revision: int

    def __init__(self) -> None:
        self.strokes, self.canvas_revision = [], 0


def test_a_new_selection_is_kept_and_the_canvas_starts_afresh() -> None:
    state = FakeSession()
    take_selection(state, {"selection": {"lasso": [{"x": [0, 1], "y": [0, 1]}], "box": []}})
    assert len(state.strokes) == 1 and state.canvas_revision == 1
    take_selection(state, {"selection": {"lasso": [], "box": []}})  # nothing new
    assert len(state.strokes) == 1 and state.canvas_revision == 1
    for _ in range(MAX_STROKES + 5):
        take_selection(state, {"selection": {"box": [{"x": [0, 1], "y": [0, 1]}]}})
    assert len(state.strokes) == MAX_STROKES


def explorer() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "explorer.py"), default_timeout=60)
    at.query_params = {"model": "nsf", "p.transforms": "1", "p.hidden": "16,16"}
    return at.run()


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_the_sidebar_draws_undoes_clears_and_trains_on_a_drawing() -> None:
    at = explorer()
    press(at, "step")
    at.selectbox(key="target").set_value(SKETCH).run()
    assert not at.exception
    assert "Draw, then press Train on it; still showing 8gaussians" in texts(at.info)
    assert at.button(key="sketch_use").disabled and at.button(key="sketch_undo").disabled
    state = at.session_state["genviz"]
    state.strokes.extend([WAVE, Stroke("region", (1.0, 2.0), (1.0, 2.0))])
    at.run()
    assert "2 of at most" in texts(at.caption) and not at.button(key="sketch_use").disabled
    at.button(key="sketch_undo").click().run()
    assert at.session_state["genviz"].strokes == [WAVE]
    at.number_input(key="sketch_count").set_value(600).run()
    at.button(key="sketch_use").click().run()
    assert not at.exception
    assert "Model rebuilt: target changed from 8gaussians to data" in texts(at.info)
    assert "your drawing (1 stroke)" in texts(at.caption) and "600 points" in texts(at.caption)
    labels = [m.label for m in at.metric]
    assert "KL(p‖q) · unavailable" in labels and "NLL · exact" in labels
    assert at.session_state["genviz"].points.shape == (600, 2)
    at.button(key="sketch_clear").click().run()
    assert at.session_state["genviz"].strokes == [] and not at.exception
    assert "your drawing (1 stroke)" in texts(at.caption)  # the trained-on points stay


@pytest.mark.parametrize("count, spread", [(10**9, 0.1), (50, 0.1), (1000, 100.0), (1000, 0.0)])
def test_counts_and_spreads_outside_the_widgets_ranges_are_refused(count: int, spread: float) -> None:
    with pytest.raises(ValueError, match="must lie in"):
        drawn_points([WAVE], count, spread)

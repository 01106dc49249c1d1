"""The one renderer: live density panels and family views drawn from their data."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from genviz.config import RunConfig
from genviz.grid import Box
from genviz.models import MODELS
from genviz.models.base import GenerativeModel, ViewContext
from genviz.train import Trainer
from genviz.views import render
from genviz.views.layers import (
    Arrows,
    Bars,
    Curve,
    Heatmap,
    Panel,
    Paths,
    Points,
    VectorField,
    View,
    VLine,
    arrays,
    plane,
)


def gaussian_grid(n: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A midpoint grid over [−4, 4]² and the log density of N(0, scale² I) on it: (k, m)."""
    edges = np.linspace(-4.0, 4.0, n + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    xx, yy = np.meshgrid(centres, centres)
    return centres, centres, -(xx**2 + yy**2) / (2 * scale**2) - np.log(2 * np.pi * scale**2)


def test_the_scale_follows_the_target_alone() -> None:
    _, _, log_p = gaussian_grid(32)
    _, _, sharp = gaussian_grid(32, 0.2)
    peak = float(np.exp(log_p.max()))
    assert render.density_scale(log_p, sharp) == pytest.approx(peak)
    assert render.density_scale(log_p, log_p - 50.0) == pytest.approx(peak)
    assert render.density_scale(None, sharp) == pytest.approx(float(np.exp(sharp.max())))
    assert render.density_scale(None, np.full((4, 4), -np.inf)) == 1.0
    assert render.density_scale(None, None) == 1.0


def test_levels_quantise_the_density_on_the_scale() -> None:
    cmax = 0.2
    with np.errstate(divide="ignore"):
        log_density = np.log(np.array([[0.0, 0.05, 0.1], [0.2, 0.4, np.nan]]))
    levels = render.density_levels(log_density, cmax)
    assert levels.dtype == np.uint8
    np.testing.assert_array_equal(levels, [[0, 64, 128], [255, 255, 0]])


def test_every_resolution_of_a_box_has_the_same_axis_ranges() -> None:
    """A live heat map changes resolution (88², then 128² when paused) and arrives in float32; its
    axis ranges must not move, or plotly drops the visitor's zoom at the next refresh."""
    ranges = set()
    for n in (32, 56, 88, 96, 128):
        centres = (-4.5 + 9 / n * (np.arange(n) + 0.5)).astype(np.float32)
        fig = render.density_panel(centres, centres, np.zeros((n, n)), cmax=1.0, title="q")
        ranges.add((tuple(fig.layout.xaxis.range), tuple(fig.layout.yaxis.range)))
    assert ranges == {((-4.5, 4.5), (-4.5, 4.5))}


@pytest.mark.parametrize("n, limit", [(128, 25_000), (96, 15_000), (64, 8_000)])
def test_a_panel_is_small_and_keeps_its_axes(n: int, limit: int) -> None:
    x, y, log_p = gaussian_grid(n)
    cmax = render.density_scale(log_p, None)
    fig = render.density_panel(x, y, log_p, cmax=cmax, title="target p(x)")
    assert len(fig.to_json()) < limit
    (heat,) = fig.data
    assert heat.z.dtype == np.uint8 and heat.z.shape == (n, n)
    assert heat.z.max() == render.LEVELS
    assert fig.layout.uirevision == render.UIREVISION
    assert list(fig.layout.xaxis.range) == pytest.approx([-4.0, 4.0])
    assert list(fig.layout.yaxis.range) == pytest.approx([-4.0, 4.0])
    assert fig.layout.yaxis.scaleanchor == "x"
    ticks = [float(t) for t in heat.colorbar.ticktext]
    np.testing.assert_allclose(np.array(heat.colorbar.tickvals) / render.LEVELS * cmax, ticks, rtol=1e-6)


def test_a_panel_overlays_samples_and_a_users_points() -> None:
    x, y, log_q = gaussian_grid(16)
    samples, points = np.zeros((5, 2)), np.ones((3, 2))
    fig = render.density_panel(
        x, y, log_q, cmax=1.0, title="q", samples=samples, points=points, colorbar=False
    )
    assert [t.type for t in fig.data] == ["heatmap", "scattergl", "scattergl"]
    assert fig.data[0].showscale is False
    assert fig.data[1].marker.color == render.DATA_MARKER["color"]
    assert fig.data[2].marker.color == render.SAMPLE_MARKER["color"]
    only_points = render.density_panel(x, y, None, cmax=1.0, title=render.DATA_TITLE, points=points)
    assert [t.type for t in only_points.data] == ["scattergl"]


def test_the_pair_shares_the_panels_scale() -> None:
    x, y, log_p = gaussian_grid(24)
    _, _, log_q = gaussian_grid(24, 0.5)
    fig = render.density_pair(x, y, log_p, log_q, np.zeros((4, 2)))
    target, model, samples = fig.data
    cmax = render.density_scale(log_p, log_q)
    np.testing.assert_array_equal(target.z, render.density_levels(log_p, cmax))
    np.testing.assert_array_equal(model.z, render.density_levels(log_q, cmax))
    assert (target.showscale, model.showscale) == (False, True)
    assert samples.xaxis == "x2"


def test_every_layer_draws_in_its_style() -> None:
    box = Box(-2.0, 2.0, -1.0, 1.0)
    xy, grid = np.zeros((4, 2)), np.linspace(-1.0, 1.0, 3)
    layers = (
        Heatmap(grid, grid, np.ones((3, 3)), "energy", "energy"),
        VectorField(grid, grid, np.ones((3, 3, 2)), "|v|"),
        Points(xy, "chains", "chain"),
        Points(xy, "means", "mean", weights=np.array([1.0, 2.0, 3.0, 4.0])),
        Paths(np.zeros((2, 5, 2)), "trails"),
        Arrows(xy, np.ones((4, 2)), "push"),
    )
    curves = Panel((Curve(grid, grid, "q"), Bars(grid, grid, np.ones(3), "data"), VLine(0.5)), (-1, 1), None,
                   equal=False, note="a note")  # fmt: skip
    fig = render.figure(View("plane", (plane(box, *layers),)))
    names = [trace.name for trace in fig.data]
    assert names == ["energy", "|v|", "direction", None, "chains", "means", "trails", "push", None]
    assert fig.data[0].colorscale == render.figure(View("", (plane(box, layers[0]),))).data[0].colorscale
    assert fig.data[4].marker.size == render.POINT_STYLES["chain"]["size"]
    assert list(fig.layout.xaxis.range) == [-2.0, 2.0] and fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.title.text == "plane"
    stacked = render.figure(View("curves", (curves, plane(box, layers[2])), stacked=True))
    assert [trace.type for trace in stacked.data] == ["scatter", "bar", "scattergl"]
    assert stacked.layout.annotations[0].text == "a note" and len(stacked.layout.shapes) == 1
    assert stacked.layout.yaxis2.scaleanchor == "x2" and stacked.layout.yaxis.scaleanchor is None


@pytest.mark.parametrize(
    "name", [name for name, family in MODELS.items() if family.view is not GenerativeModel.view]
)
def test_every_family_view_is_plain_data_and_draws(name: str) -> None:
    trainer = Trainer(RunConfig(target="moons", model=name, steps=2, n_test=300, device="cpu"))
    trainer.train()
    controls = {control.name: control.default for control in MODELS[name].view_controls}
    view = trainer.model.view(ViewContext(trainer.data.box, trainer.data.test, controls, seed=1))
    assert pickle.loads(pickle.dumps(view)).title == view.title
    for layer in view.layers:
        assert all(isinstance(value, np.ndarray) for value in arrays(layer).values())
    fig = render.figure(view)
    drawn = {trace.name for trace in fig.data}
    assert {layer.name for layer in view.layers if getattr(layer, "name", "")} <= drawn
    assert fig.layout.title.text == view.title


def test_log_ticks_thin_out_over_many_decades() -> None:
    """1, 2, 5 per decade over a short range; only powers of ten, at most six, over a long one, so that
    a KL falling from 5 to 0.0001 in a 250-pixel chart keeps readable labels."""
    short = render._log_ticks(np.array([0.3, 2.0]))["tickvals"]
    assert np.allclose(short, [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50])
    long = render._log_ticks(np.array([1e-4, 5.0]))["tickvals"]
    assert np.allclose(long, [1e-4, 1e-3, 1e-2, 0.1, 1, 10])
    very_long = render._log_ticks(np.array([1e-9, 50.0]))["tickvals"]
    assert len(very_long) <= render.MOST_DECADE_TICKS and np.isclose(very_long[-1], 100)
    assert render._log_ticks(np.array([np.nan, -1.0])) == {}  # nothing positive: plotly's own ticks

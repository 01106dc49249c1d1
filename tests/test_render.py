"""The one renderer: live density panels and family views drawn from their data."""

from __future__ import annotations

import numpy as np
import pytest

from genviz.views import render


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

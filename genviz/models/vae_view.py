"""The VAE's view: the latent space and where the decoder sends it.

1-D latent: the decoder's mean curve μ(z), z ∈ [−3, 3], drawn in data space and coloured by z,
with ±σ(z) ellipses of p(x|z) at evenly spaced nodes; each held-out point is coloured by its
encoder mean m(x) on the same scale, so a point and the part of the curve it is sent to match.

2-D latent: left, the images under μ of the lines of a latent grid over [−3, 3]²; right, the
latent plane with the prior's 1, 2 and 3 sd circles, the same grid, and the encoder means
m(x) of held-out points. A point keeps its colour (its angle around the data's mean) in both
panels, so the eye can follow the data into the latent plane and the grid back out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import torch

from genviz.views.render import DATA_COLOR, add_grid_lines, add_paths, box_figure

if TYPE_CHECKING:
    from genviz.models.base import ViewContext
    from genviz.models.vae import VAE

EXTENT = 3.0  # latent range drawn: ±3 prior sd holds 99.7 % of each axis's mass
CURVE_POINTS = 301  # points along the 1-D decoder curve
ELLIPSES = 13  # ±σ ellipses along the 1-D curve
GRID_LINES = 13  # latent grid lines per direction (2-D)
LINE_POINTS = 120  # points along each latent grid line
POINTS = 1000  # held-out points drawn at most
Z_SCALE = "Viridis"
ANGLE_SCALE = "Phase"  # cyclic, for an angle


def latent_figure(model: VAE, context: ViewContext) -> go.Figure:
    """The view for a 1- or 2-D latent; every array is computed on the model's device, drawn on the CPU."""
    data = context.data[:POINTS]
    if model.latent == 1:
        return curve_figure(model, context, data)
    return plane_figure(model, context, data)


# ---------------------------------------------------------------- network outputs in data units
def decoded(model: VAE, z: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Decoder mean and std in data units. z: (n, latent) -> μ: (n, 2), σ: (n, 2), CPU arrays."""
    mean, std = model.decode(z.to(model.device))
    scale = model.standardize.scale
    return model.standardize.inverse(mean).cpu().numpy(), (std * scale).cpu().numpy()


def encoded(model: VAE, x: torch.Tensor) -> np.ndarray:
    """Encoder means m(x), the centres of q(z|x). x: (n, 2) data units -> (n, latent)."""
    mean, _ = model.encode(model.standardize(x.to(model.device)))
    return mean.cpu().numpy()


def ellipses(centres: np.ndarray, radii: np.ndarray, points: int = 48) -> np.ndarray:
    """Axis-aligned ellipses. centres, radii: (n, 2) -> (n, points, 2) closed outlines."""
    angle = np.linspace(0.0, 2 * np.pi, points)
    unit = np.stack([np.cos(angle), np.sin(angle)], axis=-1)  # (points, 2)
    return centres[:, None, :] + radii[:, None, :] * unit[None]


def grid_lines(count: int, extent: float, points: int) -> torch.Tensor:
    """(2·count, points, 2): `count` lines z₂ = c and `count` lines z₁ = c over [−extent, extent]²."""
    levels = torch.linspace(-extent, extent, count)
    along = torch.linspace(-extent, extent, points)
    horizontal = torch.stack([along.expand(count, -1), levels[:, None].expand(-1, points)], dim=-1)
    return torch.cat([horizontal, horizontal.flip(-1)])


def angles(x: torch.Tensor) -> np.ndarray:
    """Angle of each point around the sample's mean, in degrees. x: (n, 2) -> (n,)."""
    centred = (x - x.mean(0)).double()
    return torch.rad2deg(torch.atan2(centred[:, 1], centred[:, 0])).numpy()


# ---------------------------------------------------------------- traces
def coloured_points(
    points: np.ndarray,
    values: np.ndarray,
    name: str,
    *,
    size: int = 4,
    axes: str = "xy",
    opacity: float = 0.6,
) -> go.Scattergl:
    """Markers coloured by `values` on the figure's shared colour axis. points: (n, 2), values: (n,)."""
    return go.Scattergl(
        x=points[:, 0],
        y=points[:, 1],
        mode="markers",
        marker=dict(size=size, color=values, coloraxis="coloraxis", opacity=opacity, line=dict(width=0)),
        name=name,
        xaxis="x" if axes == "xy" else "x2",
        yaxis="y" if axes == "xy" else "y2",
        hoverinfo="skip",
    )


def colour_axis(fig: go.Figure, title: str, low: float, high: float, scale: str) -> None:
    fig.update_layout(
        coloraxis=dict(
            colorscale=scale,
            cmin=low,
            cmax=high,
            colorbar=dict(title=dict(text=title, side="right"), thickness=12, len=0.9),
        )
    )


# ---------------------------------------------------------------- figures
def curve_figure(model: VAE, context: ViewContext, data: torch.Tensor) -> go.Figure:
    """1-D latent: μ(z) coloured by z, ±σ(z) ellipses, held-out points coloured by m(x)."""
    fig = box_figure(context.box, "Decoder mean μ(z), z ∈ [−3, 3], with ±σ(z); data coloured by m(x)")
    colour_axis(fig, "z", -EXTENT, EXTENT, Z_SCALE)
    fig.add_trace(coloured_points(data.numpy(), encoded(model, data)[:, 0], "held-out x, coloured by m(x)"))
    z = torch.linspace(-EXTENT, EXTENT, CURVE_POINTS)[:, None]
    mean, _ = decoded(model, z)
    nodes = torch.linspace(-EXTENT, EXTENT, ELLIPSES)[:, None]
    centres, radii = decoded(model, nodes)
    add_paths(fig, ellipses(centres, radii), "±σ(z) of p(x|z)", color="rgba(60, 60, 60, 0.55)")
    line = go.Scatter(
        x=mean[:, 0], y=mean[:, 1], mode="lines", line=dict(color="#444", width=1), showlegend=False
    )
    fig.add_trace(line)
    fig.add_trace(coloured_points(mean, z[:, 0].numpy(), "μ(z), coloured by z", size=5, opacity=1.0))
    return fig


def plane_figure(model: VAE, context: ViewContext, data: torch.Tensor) -> go.Figure:
    """2-D latent: the decoded latent grid in data space beside the latent plane."""
    box = context.box
    fig = box_figure(
        box, "Latent grid under the decoder mean μ (left); encoder means m(x) over the prior (right)"
    )
    fig.set_subplots(1, 2, horizontal_spacing=0.08, subplot_titles=("data space", "latent space"))
    fig.update_xaxes(range=[box.xmin, box.xmax], constrain="domain", row=1, col=1)
    fig.update_yaxes(range=[box.ymin, box.ymax], scaleanchor="x", constrain="domain", row=1, col=1)
    fig.update_xaxes(range=[-3.5, 3.5], constrain="domain", title_text="z₁", row=1, col=2)
    fig.update_yaxes(range=[-3.5, 3.5], scaleanchor="x2", constrain="domain", title_text="z₂", row=1, col=2)
    colour_axis(fig, "angle of x (°)", -180.0, 180.0, ANGLE_SCALE)
    hue = angles(data)
    fig.add_trace(coloured_points(data.numpy(), hue, "held-out x", size=3, opacity=0.5))
    lines = grid_lines(GRID_LINES, EXTENT, LINE_POINTS)
    images = [decoded(model, line)[0] for line in lines]
    add_grid_lines(fig, images, "μ(latent grid)", color="rgba(40, 40, 40, 0.6)")
    add_grid_lines(fig, list(lines.numpy()), "latent grid", color="rgba(40, 40, 40, 0.25)")
    radii = np.repeat(np.array([[1.0], [2.0], [3.0]]), 2, axis=1)
    add_paths(fig, ellipses(np.zeros((3, 2)), radii, 96), "prior N(0, I): 1, 2, 3 sd", color=DATA_COLOR)
    for trace in fig.data[-2:]:
        trace.update(xaxis="x2", yaxis="y2")
    fig.add_trace(coloured_points(encoded(model, data), hue, "m(x) of held-out x", size=4, axes="latent"))
    return fig

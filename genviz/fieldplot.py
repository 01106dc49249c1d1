"""Building blocks for family views: heat maps, points, arrows and paths over the data's box.

Arrays in, plotly traces out, no state. A view starts from `box_figure` and adds layers:

    fig = box_figure(box, "Energy landscape")
    add_heatmap(fig, x, y, energy, "energy", colorscale="Magma")
    add_points(fig, chains, "chains")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from genviz.grid import Box
from genviz.plot import FONT

POINT_COLOR = "rgba(255, 255, 255, 0.85)"
DATA_COLOR = "rgba(40, 30, 120, 0.45)"
ARROW_COLOR = "#ff7f0e"
PATH_COLOR = "rgba(214, 39, 40, 0.8)"


def box_figure(box: Box, title: str, *, height: int = 430) -> go.Figure:
    """An empty figure whose axes are the box, with equal scales."""
    fig = go.Figure()
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)),
        template="plotly_white",
        font=FONT,
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=-0.12, xanchor="left", x=0.0),
        plot_bgcolor="white",
    )
    fig.update_xaxes(range=[box.xmin, box.xmax], constrain="domain")
    fig.update_yaxes(range=[box.ymin, box.ymax], scaleanchor="x", constrain="domain")
    return fig


def add_heatmap(
    fig: go.Figure,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    name: str,
    *,
    colorscale: str = "Viridis",
    zmid: float | None = None,
) -> None:
    """z: (k, m) with z[i, j] at (x[j], y[i]); `zmid` centres a diverging scale."""
    fig.add_trace(
        go.Heatmap(
            x=np.asarray(x, dtype=np.float32),
            y=np.asarray(y, dtype=np.float32),
            z=np.asarray(z, dtype=np.float32),
            colorscale=colorscale,
            zmid=zmid,
            name=name,
            colorbar=dict(title=dict(text=name, side="right"), thickness=12, len=0.9),
            hovertemplate=f"x=%{{x:.2f}}, y=%{{y:.2f}}<br>{name}=%{{z:.3f}}<extra></extra>",
        )
    )


def add_points(
    fig: go.Figure, points: np.ndarray, name: str, *, color: str = POINT_COLOR, size: int = 4
) -> None:
    """points: (n, 2)."""
    points = np.asarray(points, dtype=np.float32)
    fig.add_trace(
        go.Scattergl(
            x=points[:, 0],
            y=points[:, 1],
            mode="markers",
            marker=dict(size=size, color=color, line=dict(width=0)),
            name=name,
            hoverinfo="skip",
        )
    )


def add_arrows(
    fig: go.Figure, starts: np.ndarray, vectors: np.ndarray, name: str, *, color: str = ARROW_COLOR
) -> None:
    """Arrows from `starts` along `vectors`, both (n, 2), drawn as segments with a dot at the tip."""
    starts, vectors = np.asarray(starts, dtype=np.float64), np.asarray(vectors, dtype=np.float64)
    ends = starts + vectors
    gaps = np.full((len(starts), 1), np.nan)
    xs = np.hstack([starts[:, :1], ends[:, :1], gaps]).reshape(-1)
    ys = np.hstack([starts[:, 1:], ends[:, 1:], gaps]).reshape(-1)
    line = go.Scatter(
        x=xs, y=ys, mode="lines", line=dict(color=color, width=1.5), name=name, hoverinfo="skip"
    )
    tips = go.Scatter(
        x=ends[:, 0],
        y=ends[:, 1],
        mode="markers",
        marker=dict(size=4, color=color),
        showlegend=False,
        hoverinfo="skip",
    )
    fig.add_traces([line, tips])


def add_paths(
    fig: go.Figure, paths: np.ndarray, name: str, *, color: str = PATH_COLOR, markers: bool = False
) -> None:
    """paths: (n, t, 2), n polylines of t points each, drawn as one trace."""
    paths = np.asarray(paths, dtype=np.float64)
    gaps = np.full((len(paths), 1, 2), np.nan)
    joined = np.concatenate([paths, gaps], axis=1).reshape(-1, 2)
    fig.add_trace(
        go.Scatter(
            x=joined[:, 0],
            y=joined[:, 1],
            mode="lines+markers" if markers else "lines",
            line=dict(color=color, width=1.2),
            marker=dict(size=3),
            name=name,
            hoverinfo="skip",
        )
    )


def add_grid_lines(fig: go.Figure, lines: Sequence[np.ndarray], name: str, *, color: str = "#555") -> None:
    """Curves (each (t, 2)) such as the images of a latent grid's lines, as one trace."""
    paths = [np.vstack([np.asarray(line, dtype=np.float64), [[np.nan, np.nan]]]) for line in lines]
    joined = np.vstack(paths) if paths else np.zeros((0, 2))
    fig.add_trace(
        go.Scatter(
            x=joined[:, 0],
            y=joined[:, 1],
            mode="lines",
            line=dict(color=color, width=1),
            name=name,
            hoverinfo="skip",
        )
    )


def curve_figure(title: str, x_title: str, y_title: str, *, height: int = 430) -> go.Figure:
    """An empty figure for 1D curves (a conditional density, a latent's marginal)."""
    fig = go.Figure()
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)),
        template="plotly_white",
        font=FONT,
        height=height,
        margin=dict(l=55, r=15, t=40, b=45),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0),
    )
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def add_curve(
    fig: go.Figure,
    x: np.ndarray,
    y: np.ndarray,
    name: str,
    *,
    color: str | None = None,
    dash: str | None = None,
) -> None:
    fig.add_trace(
        go.Scatter(
            x=np.asarray(x, dtype=np.float64),
            y=np.asarray(y, dtype=np.float64),
            mode="lines",
            line=dict(color=color, width=2, dash=dash),
            name=name,
        )
    )


def ellipse(mean: np.ndarray, scale_tril: np.ndarray, radius: float, points: int = 72) -> np.ndarray:
    """The contour {mean + radius · L u : |u| = 1} of N(mean, L Lᵀ) at `radius` standard deviations.

    mean: (2,), scale_tril: (2, 2) -> (points, 2), closed (the last point repeats the first)."""
    angles = np.linspace(0.0, 2 * np.pi, points)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.asarray(mean) + radius * circle @ np.asarray(scale_tril).T


def add_vector_field(
    fig: go.Figure,
    box: Box,
    vectors_at: Callable[[torch.Tensor], torch.Tensor],
    name: str,
    *,
    n: int = 17,
) -> None:
    """A heat map of |v| and arrows of v's direction at the centres of an n × n grid over the box.

    `vectors_at` maps (m, 2) float32 CPU points to (m, 2) vectors in data units, on any device.
    Arrow lengths go as √(|v| / max |v|), so that slow regions still show their direction."""
    xs = np.linspace(box.xmin, box.xmax, 2 * n + 1)[1::2]
    ys = np.linspace(box.ymin, box.ymax, 2 * n + 1)[1::2]
    points = torch.tensor(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2), dtype=torch.float32)
    with torch.no_grad():
        vectors = vectors_at(points).float().cpu()
    length = vectors.norm(dim=1, keepdim=True)
    add_heatmap(fig, xs, ys, length.reshape(n, n).numpy(), name, colorscale="Blues")
    spacing = min(xs[1] - xs[0], ys[1] - ys[0])
    relative = (length / length.max().clamp_min(1e-12)).sqrt()
    arrows = vectors / length.clamp_min(1e-12) * spacing * 0.8 * relative
    add_arrows(fig, points.numpy(), arrows.numpy(), "direction")

"""Views of the Gaussian families: each Gaussian drawn as its contours over the held-out data.

The Gaussian, the mixture and the KDE are all sums of Gaussians; what sets them apart is how many
there are, where they sit and how wide they are, which their σ-contours show directly.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from genviz.models.base import ViewContext
from genviz.views.render import DATA_COLOR, add_grid_lines, add_points, box_figure, ellipse

CONTOUR_COLOR = "rgba(214, 39, 40, 0.85)"
MEAN_COLOR = "rgba(214, 39, 40, 0.95)"


def contour_figure(
    context: ViewContext,
    means: torch.Tensor,
    scale_trils: torch.Tensor,
    radii: tuple[float, ...],
    title: str,
    name: str,
) -> go.Figure:
    """Held-out data, and the σ-contours at `radii` of Gaussians N(means[i], L_i L_iᵀ).

    means: (k, 2), scale_trils: (k, 2, 2) or (2, 2) shared by all, on any device."""
    means = means.detach().double().cpu().numpy()
    trils = scale_trils.detach().double().cpu().expand(len(means), 2, 2).numpy()
    fig = box_figure(context.box, title)
    add_points(fig, context.data.numpy(), "held-out data", color=DATA_COLOR, size=3)
    lines = [ellipse(m, tril, r) for r in radii for m, tril in zip(means, trils, strict=True)]
    add_grid_lines(fig, lines, name, color=CONTOUR_COLOR)
    return fig


def add_weighted_means(fig: go.Figure, means: torch.Tensor, weights: torch.Tensor) -> None:
    """Component means as markers whose area is proportional to their weight; weights in the hover."""
    means = means.detach().double().cpu().numpy()
    weights = weights.detach().double().cpu().numpy()
    sizes = 4 + 26 * np.sqrt(weights / max(weights.max(), 1e-12))
    fig.add_trace(
        go.Scatter(
            x=means[:, 0],
            y=means[:, 1],
            mode="markers",
            marker=dict(size=sizes, color=MEAN_COLOR, line=dict(width=1, color="white")),
            customdata=weights,
            hovertemplate="weight %{customdata:.3f}<extra>component</extra>",
            name="means (area ∝ weight)",
        )
    )

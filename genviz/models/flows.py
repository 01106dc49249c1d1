"""Normalizing flows (explicit density, tractable: change of variables), built on zuko.

log q(x) = log q_z(f(x)) + log |det ∂f/∂x|, with f a stack of invertible layers
and q_z a standard Gaussian. zuko supplies the layers; here they are wrapped with
a data standardisation so one set of defaults fits every target's scale.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch
import zuko

from genviz.models.base import (
    EvaluationCost,
    GenerativeModel,
    Range,
    Reparameterised,
    Standardize,
    ViewContext,
    ViewControl,
)
from genviz.views.layers import Paths, Points, View, box_view

Depth = Annotated[int, Range(1, 16), "number of flow layers"]
Hidden = Annotated[
    tuple[int, ...], Range(4, 512, max_length=8), "hidden layer widths of each layer's network"
]


class ZukoFlow(GenerativeModel):
    """A zuko flow over standardised data."""

    density_kind = "exact"
    reparameterised = True
    branch: ClassVar[str] = "explicit › tractable › change of variables"
    view_title = "Where the flow sends the base distribution's grid"
    view_controls = (
        ViewControl("lines", "grid lines per axis", 3, 21, 11, 2, "lines of the base grid at equal spacing"),
    )

    def __init__(self, flow: zuko.flows.Flow) -> None:
        super().__init__()
        self.standardize = Standardize()
        self.flow = flow

    def fit_data(self, x: torch.Tensor) -> None:
        self.standardize.fit(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow().log_prob(self.standardize(x)) + self.standardize.log_det()

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.standardize.inverse(self.flow().sample((n,)))

    def rsample_with_log_prob(self, n: int) -> Reparameterised:
        """x = inverse standardisation of z ~ q_z, with log q(x) = log q_z(z) + log |dz/dx|."""
        z, log_qz = self.flow().rsample_and_log_prob((n,))
        log_q = log_qz + self.standardize.log_det()
        return Reparameterised(self.standardize.inverse(z), log_q, torch.full_like(log_q, 1.0 / n))

    @torch.no_grad()
    def view(self, context: ViewContext) -> View:
        """Lines of a grid over the base Gaussian (±2.5 sd) mapped through the inverse flow onto
        the data: the flow's bending, stretching and folding made visible."""
        count = int(context.controls.get("lines", 11))
        inverse = self.flow().transform.inv
        lines = base_grid_lines(count, 2.5).to(self.device)
        mapped = torch.stack([self.standardize.inverse(inverse(line)) for line in lines]).cpu()
        return box_view(
            "Base grid z ∈ [−2.5, 2.5]² mapped to data space",
            context.box,
            Points(context.data.numpy(), "held-out data", "data"),
            Paths(mapped.numpy(), "images of the base grid's lines", "grid"),
        )


def base_grid_lines(count: int, extent: float, points: int = 120) -> torch.Tensor:
    """(2·count, points, 2): `count` horizontal and `count` vertical lines over [−extent, extent]²."""
    levels = torch.linspace(-extent, extent, count)
    along = torch.linspace(-extent, extent, points)
    horizontal = torch.stack([along.expand(count, -1), levels[:, None].expand(-1, points)], dim=-1)
    return torch.cat([horizontal, horizontal.flip(-1)])


class RealNVP(ZukoFlow):
    title = "RealNVP (affine coupling)"
    summary = "Dinh et al. 2017: each layer shifts and scales one coordinate given the other."

    def __init__(self, *, transforms: Depth = 8, hidden: Hidden = (64, 64)) -> None:
        super().__init__(zuko.flows.RealNVP(2, transforms=transforms, hidden_features=hidden))


class MAF(ZukoFlow):
    title = "Masked autoregressive flow"
    summary = "Papamakarios et al. 2017: affine autoregressive layers with alternating order."

    def __init__(self, *, transforms: Depth = 5, hidden: Hidden = (64, 64)) -> None:
        super().__init__(zuko.flows.MAF(2, transforms=transforms, hidden_features=hidden))


class NSF(ZukoFlow):
    title = "Neural spline flow"
    summary = "Durkan et al. 2019: monotonic rational-quadratic splines on [−5, 5]."

    def __init__(
        self,
        *,
        transforms: Depth = 5,
        hidden: Hidden = (64, 64),
        bins: Annotated[int, Range(2, 64), "spline bins per layer"] = 32,
    ) -> None:
        flow = zuko.flows.NSF(2, transforms=transforms, hidden_features=hidden, bins=bins)
        super().__init__(flow)
        self.spline_work = 9.0 * transforms * bins  # per point, in `EvaluationCost.pairs`

    def evaluation_cost(self) -> EvaluationCost:
        """The networks, and the splines' elementwise work, which grows as transforms × bins."""
        return EvaluationCost(pairs=self.spline_work, train_pairs=3 * self.spline_work)

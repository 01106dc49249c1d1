"""What each density kind means, in one table: how the page names it, what the model's heat map
shows, and what the metrics do with its `log_prob` (see `GenerativeModel.density_kind`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from genviz.models.base import DensityKind


@dataclass(frozen=True)
class DensityKindInfo:
    """One kind of `log_prob`, for the page, the heat map and the metrics."""

    words: str  # the page's words for it, in Markdown
    title: str  # the model heat map's title; "{samples}" is the KDE's sample count
    nll: Literal["exact", "bound", "estimate"]  # what −mean log q on held-out points is
    normalise: bool = False  # q is divided by its partition function, by quadrature on the box
    from_samples: bool = False  # no density: estimated from samples (k-NN; a KDE for the heat map)
    autograd: bool = False  # log q needs gradients (an ODE's exact divergence)
    quadrature: bool = True  # a KL by quadrature on the grid means something (exp(ELBO) is no density)


DENSITY_KINDS: dict[DensityKind, DensityKindInfo] = {
    "exact": DensityKindInfo("density: **exact**", "model q(x)", "exact"),
    "bound": DensityKindInfo(
        "density: a **lower bound**", "exp(lower bound on log q)", "bound", quadrature=False
    ),
    "unnormalised": DensityKindInfo(
        "density: **unnormalised**, normalised by quadrature on the box",
        "model q(x) (normalised on the box)",
        "exact",
        normalise=True,
    ),
    # exact up to the ODE solver's error, which has no error bar: an estimate
    "ode": DensityKindInfo(
        "density: by an **ODE** solve", "model q(x) (ODE likelihood)", "estimate", autograd=True
    ),
    "none": DensityKindInfo(
        "**no density**: estimates from samples",
        "model q(x): KDE of {samples:,} samples (an estimate)",
        "estimate",
        from_samples=True,
    ),
}

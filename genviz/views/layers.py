"""What a family view shows, as plain data: numpy arrays, strings and floats, no plotting.

A family's `view(context)` returns a `View`: a title and one or more panels, each a stack of
layers drawn bottom to top. `genviz.views.render.figure` draws it; the colours and line widths
live there, named here by a layer's `style` (e.g. "data", "sample", "path"). A view pickles,
and tests assert on the numbers in its layers.

    View("Energy landscape", (plane(box, Heatmap(x, y, energy, "energy", "energy"),
                                       Points(chains, "chains", "chain")),))
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

if TYPE_CHECKING:
    from genviz.grid import Box


@dataclass(frozen=True, eq=False)
class Points:
    """Markers at xy: (n, 2). `values` (n,) colour them on the view's `ColourScale`; `weights`
    (n,) give them areas in proportion (a mixture's means)."""

    xy: np.ndarray
    name: str
    style: str = "sample"
    values: np.ndarray | None = None
    weights: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Paths:
    """Polylines, paths: (n, t, 2), drawn as one legend entry; an empty name leaves it out of
    the legend. Sample paths, chains, grid lines and their images, contours."""

    paths: np.ndarray
    name: str
    style: str = "path"


@dataclass(frozen=True, eq=False)
class Arrows:
    """Arrows from starts: (n, 2) along vectors: (n, 2), in data units."""

    starts: np.ndarray
    vectors: np.ndarray
    name: str
    style: str = "arrow"


@dataclass(frozen=True, eq=False)
class Heatmap:
    """z: (k, m) with z[i, j] at (x[j], y[i]); `zmid` centres a diverging scale."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    name: str
    style: str = "level"
    zmid: float | None = None


@dataclass(frozen=True, eq=False)
class VectorField:
    """A field sampled at the cell centres of a grid: vectors: (k, m, 2) at (x[j], y[i]), in
    data units. Drawn as a heat map of |v| and arrows of v's direction."""

    x: np.ndarray
    y: np.ndarray
    vectors: np.ndarray
    name: str


@dataclass(frozen=True, eq=False)
class Curve:
    """A 1D function y(x): both (n,)."""

    x: np.ndarray
    y: np.ndarray
    name: str
    style: str = "model"


@dataclass(frozen=True, eq=False)
class Bars:
    """A histogram: bars of `heights` centred at `centres`, `widths` wide, all (n,)."""

    centres: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    name: str
    style: str = "data"


@dataclass(frozen=True)
class VLine:
    """A vertical rule at x across the panel (where a slice is taken)."""

    x: float
    style: str = "model"


Layer: TypeAlias = Points | Paths | Arrows | Heatmap | VectorField | Curve | Bars | VLine


@dataclass(frozen=True)
class Panel:
    """One set of axes and its layers. `equal`: a region of the plane, with equal scales;
    otherwise a plot of curves. A range of None fits the data; `note` says why an expected
    layer is missing."""

    layers: tuple[Layer, ...]
    x_range: tuple[float, float] | None
    y_range: tuple[float, float] | None
    title: str = ""
    x_title: str = ""
    y_title: str = ""
    equal: bool = True
    note: str = ""
    share: float = 1.0  # of the view's height, when panels are stacked


@dataclass(frozen=True)
class ColourScale:
    """The scale that colours `Points.values` in every panel of a view; `style` names the
    palette ("ordered", or "cyclic" for an angle)."""

    title: str
    low: float
    high: float
    style: str = "ordered"


@dataclass(frozen=True)
class View:
    """A family's picture: panels side by side, or one above the other when `stacked`."""

    title: str
    panels: tuple[Panel, ...]
    stacked: bool = False
    colour: ColourScale | None = None

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every panel's layers, in drawing order."""
        return tuple(layer for panel in self.panels for layer in panel.layers)

    def layer(self, name: str) -> Layer:
        """The first layer whose name starts with `name` (for tests and callers that pick one)."""
        return next(layer for layer in self.layers if getattr(layer, "name", "").startswith(name))


def arrays(layer: Layer) -> dict[str, np.ndarray]:
    """A layer's numeric arrays by field name, e.g. {"xy": ...} of Points (for checks on a view)."""
    return {f.name: value for f in fields(layer) if isinstance(value := getattr(layer, f.name), np.ndarray)}


def plane(box: Box, *layers: Layer, title: str = "") -> Panel:
    """A panel over the data's box with equal scales."""
    return Panel(tuple(layers), (box.xmin, box.xmax), (box.ymin, box.ymax), title=title)


def box_view(title: str, box: Box, *layers: Layer) -> View:
    """The usual view: one panel over the data's box."""
    return View(title, (plane(box, *layers),))

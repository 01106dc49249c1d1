"""The one renderer: views and arrays in, plotly `Figure` out. No state, no streamlit, no torch.
Every colour and style lives here.

- `density_scale`, `density_panel`: the live heat maps, one panel per figure on a colour scale
  fixed by the target, sent as uint8 levels; `density_pair` puts two side by side (files, tests);
  `density_png`: one as PNG bytes, for static thumbnails;
- `nll_curve`, `kl_curve`: the learning curves;
- `derivation_curves`: mean log q, cross-entropy, H(p*) and KL on one axis (the Theory page);
- `figure`: any family's `View` (genviz.views.layers), each layer drawn in its named style.

Densities arrive as log densities on a grid, shape (k, m) with `values[i, j]` at
`(x[j], y[i])`; learning curves arrive as the rows of `Evaluation.row()`.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from genviz.views.layers import (
    Arrows,
    Bars,
    ColourScale,
    Curve,
    Heatmap,
    Layer,
    Panel,
    Paths,
    Points,
    VectorField,
    View,
    VLine,
)

if TYPE_CHECKING:  # type-only: drawing needs neither torch nor the models
    from genviz.metrics import Result

COLORSCALE = "Viridis"
FONT = dict(family="Inter, 'Source Sans Pro', Arial, sans-serif", size=13, color="#262730")
TITLE_WEIGHT = 600  # chart titles in semibold, as the page's headings
NLL_COLOR = "#1f77b4"
KL_COLOR = "#d62728"
GAP_COLOR = "rgba(255, 127, 14, 0.18)"
FLOOR_COLOR = "#2ca02c"
LOG_FLOOR = 1e-4  # the KL axis is logarithmic; values at or below zero are drawn here

Rows = Sequence[dict[str, Any]]


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(**_curve_layout_dict(title, height))
    return fig


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=14)
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _plain_figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A figure from plain dicts, without plotly's property-by-property validation.

    Building a figure through plotly's objects costs 15–40 ms (validators, deep copies, subplot
    look-ups), the largest part of a live refresh: a classroom of pages drawing at several per
    second would need more than the server's one interpreter. The live figures (density panels,
    learning curves) are built as dicts instead, about 0.5 ms; the tests validate each of them."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def _curve_layout_dict(title: str, height: int) -> dict[str, Any]:
    """A curve chart's layout as a plain dict, the template spelled out (no validation expands it).
    The legend sits inside the plot's top right, which a falling curve leaves empty."""
    return dict(
        title=dict(
            text=title, x=0.01, xanchor="left", y=0.97, yanchor="top", font=dict(size=15, weight=TITLE_WEIGHT)
        ),
        template=WHITE_TEMPLATE,
        font=FONT,
        height=height,
        margin=dict(l=55, r=15, t=36, b=40),
        legend=dict(
            yanchor="top",
            y=0.99,
            xanchor="right",
            x=0.99,
            font=dict(size=11),
            bgcolor="rgba(255,255,255,0.75)",
        ),  # fmt: skip
        hovermode="x unified",
    )


def _empty_dict(layout: dict[str, Any], message: str) -> go.Figure:
    note = dict(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=14))
    return _plain_figure(
        [], layout | dict(annotations=[note], xaxis=dict(visible=False), yaxis=dict(visible=False))
    )


def _named_legend(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only named traces appear in the legend."""
    for trace in traces:
        trace["showlegend"] = bool(trace.get("name"))
    return traces


# ------------------------------------------------------------------ densities

LEVELS = 255  # a density heat map travels as uint8 levels of [0, cmax]: a quarter of float32's bytes
UIREVISION = "density"  # constant: a user's zoom on a density panel survives every refresh
SAMPLE_MARKER = dict(size=3, color="rgba(255, 255, 255, 0.75)", line=dict(width=0))
DATA_MARKER = dict(size=3, color="rgba(40, 30, 120, 0.45)", line=dict(width=0))
DATA_TITLE = "your data (held-out points)"
_WHITE = pio.templates["plotly_white"].layout
WHITE_TEMPLATE = pio.templates["plotly_white"].to_plotly_json()  # for figures built as dicts
# The few parts of plotly_white a density panel shows; the whole template would add ~7 KB per figure.
PANEL_TEMPLATE = go.layout.Template(
    layout=dict(
        paper_bgcolor="white",
        plot_bgcolor="white",
        hoverlabel=_WHITE.hoverlabel,
        xaxis=_WHITE.xaxis,
        yaxis=_WHITE.yaxis,
    )
).to_plotly_json()


def density_scale(log_p: np.ndarray | None, log_q: np.ndarray | None) -> float:
    """Top of the shared colour scale of the target and model panels.

    With a target, its peak density alone, so that the target's panel never has to be redrawn
    as the model trains (a sharper model saturates); without one, the model's peak."""
    source = log_q if log_p is None else log_p
    if source is None:
        return 1.0
    source = np.asarray(source, dtype=np.float64)
    finite = source[np.isfinite(source)]
    peak = float(np.exp(finite.max())) if finite.size else 1.0
    return peak if math.isfinite(peak) and peak > 0 else 1.0


def density_levels(log_density: np.ndarray, cmax: float) -> np.ndarray:
    """exp(log_density) as uint8 levels 0..LEVELS of [0, cmax], saturating above; NaN as 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        share = np.exp(np.asarray(log_density, dtype=np.float64)) / cmax
    share = np.clip(np.nan_to_num(share, nan=0.0, posinf=1.0), 0.0, 1.0)
    return np.rint(share * LEVELS).astype(np.uint8)


def density_png(log_density: np.ndarray, cmax: float) -> bytes:
    """A heat map as PNG bytes in the panels' colour scale, one pixel per cell, the largest y on top:
    a static thumbnail made without plotly's image export. log_density: (k, m)."""
    levels = density_levels(log_density, cmax)[::-1]
    return _png(_colour_table()[levels])


def _colour_table() -> np.ndarray:
    """(LEVELS + 1, 3) uint8: the colour of each density level on COLORSCALE."""
    shades = sample_colorscale(COLORSCALE, list(np.linspace(0.0, 1.0, LEVELS + 1)))
    return np.array([[int(float(c)) for c in shade[4:-1].split(",")] for shade in shades], dtype=np.uint8)


def _png(rgb: np.ndarray) -> bytes:
    """A PNG of rgb: (k, m, 3) uint8, with the standard library's zlib (no filter, one IDAT chunk)."""
    height, width, _ = rgb.shape
    rows = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(rgb))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def density_panel(
    x: np.ndarray,
    y: np.ndarray,
    log_density: np.ndarray | None,
    *,
    cmax: float,
    title: str,
    samples: np.ndarray | None = None,
    points: np.ndarray | None = None,
    height: int = 330,
    colorbar: bool = True,
) -> go.Figure:
    """One density heat map on the colour scale [0, cmax], with fixed axes over the grid's box.

    x: (m,), y: (k,), log_density: (k, m) with [i, j] at (x[j], y[i]), or None for `points`
    alone (a user's data, whose density is unknown); samples and points: (n, 2), overlaid as
    light and dark markers."""
    traces = _density_traces(x, y, log_density, cmax, samples, points, colorbar)
    layout = _density_layout(height) | dict(
        title=_panel_title(title),
        xaxis=dict(range=_edges(x), constrain="domain"),
        yaxis=dict(range=_edges(y), scaleanchor="x", constrain="domain"),
    )
    return _plain_figure(traces, layout)


def density_pair(
    x: np.ndarray,
    y: np.ndarray,
    log_p: np.ndarray | None,
    log_q: np.ndarray,
    samples: np.ndarray | None = None,
    *,
    data: np.ndarray | None = None,
    titles: tuple[str, str] = ("target p(x)", "model q(x)"),
    height: int = 430,
) -> go.Figure:
    """Target and model densities side by side on one colour scale (`density_scale`); `samples`
    (n, 2) overlay q. x: (m,), y: (k,), log_p and log_q: (k, m). Without log_p, the left panel
    shows `data` (n, 2) points when given (a user's data, whose density is unknown), else only q."""
    cmax = density_scale(log_p, log_q)
    if log_p is not None:
        panels = [(titles[0], log_p, None, None), (titles[1], log_q, samples, None)]
    elif data is not None:
        panels = [(DATA_TITLE, None, None, data), (titles[1], log_q, samples, None)]
    else:
        panels = [(titles[1], log_q, samples, None)]
    fig = make_subplots(
        rows=1, cols=len(panels), subplot_titles=[p[0] for p in panels], horizontal_spacing=0.04
    )
    for col, (_, log_density, shown, dots) in enumerate(panels, start=1):
        traces = _density_traces(x, y, log_density, cmax, shown, dots, colorbar=col == len(panels))
        fig.add_traces(traces, rows=1, cols=col)
        _density_axes(fig, x, y, col)
    if len(panels) == 2:
        fig.update_yaxes(showticklabels=False, row=1, col=2)
    fig.update_layout(**_density_layout(height))
    fig.update_annotations(font=dict(size=14, weight=TITLE_WEIGHT))  # the panels' titles
    return fig


def _density_traces(
    x: np.ndarray,
    y: np.ndarray,
    log_density: np.ndarray | None,
    cmax: float,
    samples: np.ndarray | None,
    points: np.ndarray | None,
    colorbar: bool,
) -> list[dict[str, Any]]:
    """A panel's traces as dicts, bottom to top: the heat map, a user's points, the model's samples."""
    traces = (
        []
        if log_density is None
        else [_level_heatmap(x, y, density_levels(log_density, cmax), cmax, colorbar)]
    )
    if points is not None and len(points):
        traces.append(_scatter(np.asarray(points), DATA_MARKER, "data"))
    if samples is not None and len(samples):
        traces.append(_scatter(np.asarray(samples)))
    return traces


def _level_heatmap(
    x: np.ndarray, y: np.ndarray, levels: np.ndarray, cmax: float, colorbar: bool
) -> dict[str, Any]:
    """A heat map of uint8 levels on an evenly spaced grid (x0, dx: no coordinate arrays sent)."""
    step = cmax / LEVELS
    tickvals, ticktext = _density_ticks(cmax)
    return dict(
        type="heatmap",
        z=levels,
        x0=float(x[0]),
        dx=_spacing(x),
        y0=float(y[0]),
        dy=_spacing(y),
        zmin=0,
        zmax=LEVELS,
        # A coarse live grid (32² to 96²) must read as a density, not as tiles. "fast" has the
        # browser scale the image smoothly; "best" interpolates every screen pixel in script, which
        # took half the browser's main thread on a page redrawing four times a second.
        zsmooth="fast",
        colorscale=COLORSCALE,
        showscale=colorbar,
        colorbar=dict(
            title=dict(text="density", side="right"),
            thickness=12,
            len=0.9,
            outlinewidth=0,
            tickvals=tickvals,
            ticktext=ticktext,
        ),
        # a hover template cannot compute, so it names the factor from a level to a density
        hovertemplate=f"x=%{{x:.2f}}, y=%{{y:.2f}}<br>density ≈ %{{z}} × {step:.3g}<extra></extra>",
    )


def _density_ticks(cmax: float) -> tuple[list[float], list[str]]:
    """Colour-bar ticks at round densities in [0, cmax], placed in level units."""
    magnitude = 10.0 ** math.floor(math.log10(cmax / 4))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= cmax / 4)
    ticks = np.arange(0.0, cmax * (1 + 1e-9), step)
    return [float(t / cmax * LEVELS) for t in ticks], [f"{t:.3g}" for t in ticks]


def _density_axes(fig: go.Figure, x: np.ndarray, y: np.ndarray, col: int | None = None) -> None:
    """Ranges fixed at the grid's edges (samples off the grid cannot zoom out), equal scales.
    `col`: the subplot, in a figure of several."""
    anchor = f"x{col if col and col > 1 else ''}"
    row_col = {} if col is None else dict(row=1, col=col)
    fig.update_xaxes(range=_edges(x), constrain="domain", **row_col)
    fig.update_yaxes(range=_edges(y), scaleanchor=anchor, constrain="domain", **row_col)


def _density_layout(height: int) -> dict[str, Any]:
    return dict(
        template=PANEL_TEMPLATE,
        font=FONT,
        height=height,
        margin=dict(l=10, r=10, t=30, b=10),
        showlegend=False,
        uirevision=UIREVISION,
    )


def _spacing(centres: np.ndarray) -> float:
    centres = np.asarray(centres, dtype=np.float64)
    return float((centres[-1] - centres[0]) / (len(centres) - 1)) if len(centres) > 1 else 1.0


def _panel_title(text: str) -> dict[str, Any]:
    """A square panel's title, centred above it."""
    return dict(
        text=text, x=0.5, xanchor="center", y=0.98, yanchor="top", font=dict(size=14, weight=TITLE_WEIGHT)
    )


def _edges(centres: np.ndarray) -> list[float]:
    """The outer edges of a midpoint grid, from its cell centres. Rounded past float32's precision,
    so that grids of one box at any resolution give the same axis range: plotly keeps a visitor's
    zoom through a refresh only while the figure's own range stays the same."""
    centres = np.asarray(centres, dtype=np.float64)
    half = _spacing(centres) / 2 if len(centres) > 1 else 0.5
    return [round(float(centres[0] - half), 5), round(float(centres[-1] + half), 5)]


def _scatter(
    points: np.ndarray, marker: dict = SAMPLE_MARKER, name: str = "samples from q"
) -> dict[str, Any]:
    return dict(
        type="scattergl",
        x=points[:, 0].astype(np.float32),
        y=points[:, 1].astype(np.float32),
        mode="markers",
        marker=marker,
        hoverinfo="skip",
        name=name,
    )


# ------------------------------------------------------------- learning curves


def _column(rows: Rows, key: str) -> np.ndarray:
    """A row field as floats, with None (unavailable) as NaN."""
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows], dtype=np.float64)


def _band(
    steps: np.ndarray, low: np.ndarray, high: np.ndarray, color: str, name: str = "± 2 se"
) -> list[dict[str, Any]]:
    """A shaded band between `low` and `high` (by default the ±2·se of a Monte Carlo figure)."""
    return [_line(steps, low, dict(width=0), hoverinfo="skip"), _fill_down(steps, high, color, name)]


def _line(x: Any, y: Any, line: dict[str, Any], **more: Any) -> dict[str, Any]:
    return dict(type="scatter", x=x, y=y, mode="lines", line=line, **more)


# the band of a sample-based estimator's calibrated error (`Result.error`), lighter than the ±2·se
ESTIMATOR_BAND = {"nll": "rgba(31, 119, 180, 0.10)", "kl": "rgba(214, 39, 40, 0.08)"}


def _estimator_error(rows: Rows, key: str) -> float | None:
    """The estimator error of the latest row that has one (it is one calibrated figure per method)."""
    errors = _column(rows, key)
    finite = errors[np.isfinite(errors)]
    return float(finite[-1]) if len(finite) else None


def _error_name(error: float) -> str:
    return f"estimator error ±{error:g}"


def _fill_down(steps: np.ndarray, top: np.ndarray, color: str, name: str) -> dict[str, Any]:
    """An invisible line at `top`, shaded down to the trace drawn just before it."""
    return _line(steps, top, dict(width=0), fill="tonexty", fillcolor=color, name=name, hoverinfo="skip")


OTHER_PREFIX = "NLL via "  # row keys of a family's further NLLs, e.g. "NLL via ELBO (bound)"
OTHER_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#17becf"]


def nll_curve(
    rows: Rows, entropy: Result | None, *, label: str = "held-out NLL", height: int = 330
) -> go.Figure:
    """Held-out NLL vs step with a ±2·se band, the floor H(p) and the gap between them (the KL),
    and any further NLLs the family reports (bounds drawn dashed above the NLL)."""
    layout = _curve_layout_dict("Held-out NLL and its floor H(p)", height)
    steps, nll, se = _column(rows, "step"), _column(rows, "nll"), _column(rows, "nll_se")
    if not np.isfinite(nll).any():
        return _empty_dict(layout, "held-out NLL unavailable: the model defines no density")
    se = np.nan_to_num(se)
    floor = entropy.value if entropy is not None and entropy.value is not None else None
    traces: list[dict[str, Any]] = []
    if floor is not None:
        traces += [_floor_line(steps, floor, entropy), _fill_down(steps, nll, GAP_COLOR, "KL = NLL − H(p)")]
    error = _estimator_error(rows, "nll_error")
    if error is not None:
        low = nll - error if floor is None else np.fmax(nll - error, floor)
        traces += _band(steps, low, nll + error, ESTIMATOR_BAND["nll"], _error_name(error))
    traces += _band(steps, nll - 2 * se, nll + 2 * se, "rgba(31, 119, 180, 0.25)")
    traces.append(_line(steps, nll, dict(color=NLL_COLOR, width=2), name=label))
    others = [key for key in rows[-1] if key.startswith(OTHER_PREFIX)] if rows else []
    for key, color in zip(others, OTHER_COLORS, strict=False):
        traces.append(_line(steps, _column(rows, key), dict(color=color, width=2, dash="dash"), name=key))
    spread = 2 * se if error is None else np.fmax(2 * se, error)
    y_range = _nll_range(nll + spread, [_column(rows, key) for key in others], floor)
    layout |= dict(xaxis=dict(title=dict(text="step")), yaxis=dict(title=dict(text="nats"), range=y_range))
    if floor is not None:
        layout["annotations"] = [_gap_note(steps, nll, floor)]
    return _plain_figure(_named_legend(traces), layout)


def _floor_line(steps: np.ndarray, floor: float, entropy: Result) -> dict[str, Any]:
    label = f"H(p) = {floor:.3f} ({entropy.kind})"
    return dict(
        type="scatter",
        x=[float(steps.min()), float(max(steps.max(), steps.min() + 1))] if len(steps) else [0, 1],
        y=[floor, floor],
        mode="lines",
        line=dict(color=FLOOR_COLOR, width=2, dash="dash"),
        name=label,
        hovertemplate=f"{label}<extra></extra>",
    )


def _nll_range(upper: np.ndarray, others: list[np.ndarray], floor: float | None) -> list[float]:
    """Zoom on the late NLL curve: the first evaluations of a fresh model would flatten the gap.

    A further NLL (a bound) keeps only its latest value in view: a fresh VAE's ELBO starts near
    100 nats and would otherwise squash the NLL and the floor into one line.
    """
    late = upper[len(upper) // 10 :] if len(upper) > 10 else upper
    latest = [curve[np.isfinite(curve)][-1] for curve in others if np.isfinite(curve).any()]
    top = float(np.nanmax([*late, *latest]))
    bottom = float(np.nanmin(upper)) if floor is None else min(floor, float(np.nanmin(upper)))
    pad = 0.08 * max(top - bottom, 0.05)
    return [bottom - pad, top + pad]


def _gap_note(steps: np.ndarray, nll: np.ndarray, floor: float) -> dict[str, Any]:
    last = int(np.flatnonzero(np.isfinite(nll))[-1])
    return dict(
        x=float(steps[last]),
        y=float((nll[last] + floor) / 2),
        text="KL = NLL − H(p)",
        showarrow=False,
        xanchor="right",
        xshift=-10,  # its box's padding would otherwise cross the chart's right edge and be cut
        font=dict(size=12, color="#b35900"),
        bgcolor="rgba(255, 255, 255, 0.7)",
    )


def kl_curve(
    rows: Rows,
    label: str,
    *,
    checks: Sequence[tuple[int, float]] = (),
    check_label: str = "quadrature cross-check",
    height: int = 330,
) -> go.Figure:
    """KL vs step on a log axis with a ±2·se band; `label` names its kind and method.

    Values at or below zero (possible for a Monte Carlo estimate near zero) sit on the floor
    of the axis as open markers. `checks` are (step, KL) points from another method. A
    sample-based estimate (rows with "kl_error") gets its calibrated estimator error as the band.
    """
    layout = _curve_layout_dict(label, height)
    steps, kl, se = _column(rows, "step"), _column(rows, "kl"), _column(rows, "kl_se")
    if not np.isfinite(kl).any():
        return _empty_dict(layout, "KL unavailable")
    se = np.nan_to_num(se)
    low = np.clip(kl - 2 * se, LOG_FLOOR, None)
    high = np.clip(kl + 2 * se, LOG_FLOOR, None)
    error = _estimator_error(rows, "kl_error")
    if error is not None:
        low, high = np.clip(kl - error, LOG_FLOOR, None), np.clip(kl + error, LOG_FLOOR, None)
        traces = _band(steps, low, high, ESTIMATOR_BAND["kl"], _error_name(error))
    else:
        traces = _band(steps, low, high, "rgba(214, 39, 40, 0.2)")
    positive = np.where(kl > LOG_FLOOR, kl, np.nan)
    traces.append(_line(steps, positive, dict(color=KL_COLOR, width=2), name="KL(p‖q)"))
    at_floor = np.isfinite(kl) & (kl <= LOG_FLOOR)
    if at_floor.any():
        traces.append(_floor_markers(steps[at_floor], kl[at_floor]))
    if checks:
        traces.append(_check_markers(checks, check_label))
    ticks = _log_ticks(np.concatenate([low, high]))
    layout |= dict(
        xaxis=dict(title=dict(text="step")), yaxis=dict(type="log", title=dict(text="nats"), **ticks)
    )
    return _plain_figure(_named_legend(traces), layout)


def _log_ticks(values: np.ndarray) -> dict[str, Any]:
    """Ticks at 1, 2, 5 × 10^k written as plain decimals, which read better than powers here; over
    more than two decades only the powers of ten, and at most `MOST_DECADE_TICKS` of them, so that
    the labels of a short chart do not run into each other."""
    values = values[np.isfinite(values) & (values > 0)]
    if not len(values):
        return {}
    low, high = np.floor(np.log10(values.min())), np.ceil(np.log10(values.max()))
    decades = high - low
    mantissas = (1, 2, 5) if decades <= 2 else (1,)
    every = max(1, int(np.ceil((decades + 1) / MOST_DECADE_TICKS)))
    ticks = [m * 10.0**k for k in np.arange(high, low - 1, -every)[::-1] for m in mantissas]
    return dict(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])


MOST_DECADE_TICKS = 6


def _floor_markers(steps: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    return dict(
        type="scatter",
        x=steps,
        y=np.full(len(steps), LOG_FLOOR),
        mode="markers",
        marker=dict(symbol="triangle-down-open", color=KL_COLOR, size=8),
        customdata=values,
        name="≤ 0 (within noise)",
        hovertemplate="KL estimate %{customdata:.4f}<extra></extra>",
    )


def _check_markers(checks: Sequence[tuple[int, float]], label: str) -> dict[str, Any]:
    steps, values = zip(*checks, strict=True)
    values = np.clip(np.array(values, dtype=np.float64), LOG_FLOOR, None)
    return dict(
        type="scatter",
        x=list(steps),
        y=values,
        mode="markers",
        marker=dict(symbol="diamond", color="#444", size=8),
        name=label,
    )


# ------------------------------------------------------------- the derivation, on one chart

TRAINING_COLOR = "#6baed6"
DERIVATION_CURVES = (  # row key, line style: the Theory page's chart
    ("training", dict(color=TRAINING_COLOR, width=1.5, dash="dot")),
    ("held_out", dict(color=NLL_COLOR, width=2, dash="dash")),
    ("cross_entropy", dict(color=NLL_COLOR, width=2)),
    ("kl", dict(color=KL_COLOR, width=2)),
)


def derivation_curves(
    rows: Rows, entropy: float | None, labels: dict[str, str], *, height: int = 380
) -> go.Figure:
    """Mean log q on the training batches and on held-out points, the cross-entropy E[−log q], the
    floor H(p*) and the KL, against the step, on one axis: the two means mirror the cross-entropy,
    which falls to H(p*) while the KL falls to 0. `labels`: a legend entry for each curve key and
    for "entropy"; rows carry `step`, those keys and `se` (the held-out standard error)."""
    fig = _layout(go.Figure(), "Maximum likelihood, live: mean log q, cross-entropy, H(p*) and KL", height)
    steps = _column(rows, "step")
    if not len(steps) or not np.isfinite(_column(rows, "cross_entropy")).any():
        return _empty(fig, "held-out log-likelihood unavailable")
    se = np.nan_to_num(_column(rows, "se"))
    held_out = _column(rows, "held_out")
    fig.add_traces(_band(steps, held_out - 2 * se, held_out + 2 * se, "rgba(31, 119, 180, 0.2)"))
    if entropy is not None:
        fig.add_trace(_level(steps, entropy, labels["entropy"], FLOOR_COLOR))
    fig.add_trace(_level(steps, 0.0, "", "#999"))
    shown = [_column(rows, key) for key, _ in DERIVATION_CURVES]
    for (key, line), values in zip(DERIVATION_CURVES, shown, strict=True):
        if np.isfinite(values).any():
            fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", line=line, name=labels[key]))
    _derivation_range(fig, [*shown, np.array([0.0 if entropy is None else entropy])])
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="nats")
    for trace in fig.data:
        trace.showlegend = trace.name not in (None, "")
    fig.update_layout(legend=dict(x=0.99, y=0.56, yanchor="bottom"))  # above 0, below H(p*): empty
    return fig


def _level(steps: np.ndarray, value: float, label: str, color: str) -> go.Scatter:
    """A horizontal line across the steps."""
    x = [steps.min(), max(steps.max(), steps.min() + 1)]
    line = dict(color=color, width=1.5 if label else 1, dash="dash" if label else "solid")
    hover = f"{label}<extra></extra>" if label else None
    return go.Scatter(
        x=x, y=[value, value], mode="lines", line=line, name=label, hovertemplate=hover,
        hoverinfo=None if label else "skip",
    )  # fmt: skip


def _derivation_range(fig: go.Figure, curves: list[np.ndarray]) -> None:
    """Zoom on the late curves, as `_nll_range` does: a fresh model's first values would flatten them."""
    late = [c[len(c) // 10 :] if len(c) > 10 else c for c in curves]
    values = np.concatenate([c[np.isfinite(c)] for c in late] + [np.zeros(1)])
    top, bottom = float(values.max()), float(values.min())
    pad = 0.06 * max(top - bottom, 0.5)
    fig.update_yaxes(range=[bottom - pad, top + pad])


# ------------------------------------------------------------- overlaid curves

SERIES_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
                 "#7f7f7f", "#bcbd22"]  # fmt: skip
GOAL_COLOR = "#555"


def overlay_curves(
    series: Sequence[tuple[str, Sequence[float], Sequence[float | None]]],
    *,
    title: str,
    x_title: str,
    y_title: str = "nats",
    log_y: bool = True,
    goal: float | None = None,
    goal_label: str = "goal",
    height: int = 330,
) -> go.Figure:
    """Several curves on one pair of axes: `series` is (name, x, y) each, y None where unknown.
    On a log axis, values at or below zero are drawn at LOG_FLOOR (a Monte Carlo KL near zero);
    `goal` is a dotted horizontal line."""
    fig = _layout(go.Figure(), title, height)
    shown: list[np.ndarray] = []
    for index, (name, x, y) in enumerate(series):
        values = np.array([np.nan if v is None else float(v) for v in y], dtype=np.float64)
        if log_y:
            values = np.where(np.isfinite(values), np.clip(values, LOG_FLOOR, None), np.nan)
        shown.append(values)
        line = dict(color=SERIES_COLORS[index % len(SERIES_COLORS)], width=2)
        x = np.asarray(x, dtype=np.float64)
        fig.add_trace(go.Scatter(x=x, y=values, mode="lines", line=line, name=name))
    if not any(np.isfinite(v).any() for v in shown):
        return _empty(fig, "nothing to draw yet")
    if goal is not None:
        fig.add_hline(y=goal, line=dict(color=GOAL_COLOR, dash="dot", width=1))
        # its label just under it at the right, clear of the axis labels; plotly places an annotation
        # on a log axis by the exponent (add_hline's own label sat at 10^0.1 for a goal of 0.1)
        at = math.log10(goal) if log_y else goal
        fig.add_annotation(x=1, xref="x domain", y=at, yref="y", text=goal_label, showarrow=False,
                           xanchor="right", yanchor="top", font=dict(color=GOAL_COLOR))  # fmt: skip
    fig.update_xaxes(title_text=x_title)
    axis = dict(type="log", **_log_ticks(np.concatenate([*shown, [goal or np.nan]]))) if log_y else {}
    fig.update_yaxes(title_text=y_title, **axis)
    return fig


def divergence_curves(rows: Rows, *, title: str = "Both divergences", height: int = 250) -> go.Figure:
    """KL(p‖q) and KL(q‖p) against the step, from `Evaluation.row()` rows (log axis)."""
    steps = [r["step"] for r in rows]
    series = [("KL(p‖q), forward", steps, [r.get("kl") for r in rows])]
    series.append(("KL(q‖p), reverse", steps, [r.get("reverse_kl") for r in rows]))
    return overlay_curves(series, title=title, x_title="step", height=height)


# ------------------------------------------------------------- family views: views as data


POINT_COLOR = "rgba(255, 255, 255, 0.85)"
DATA_COLOR = "rgba(40, 30, 120, 0.45)"
ARROW_COLOR = "#ff7f0e"
PATH_COLOR = "rgba(214, 39, 40, 0.8)"


# Each layer's `style` names one of these; a family says what a layer is, this module how it looks.
POINT_STYLES: dict[str, dict[str, Any]] = {
    "sample": dict(color=POINT_COLOR, size=4),
    "chain": dict(color=POINT_COLOR, size=3),
    "data": dict(color=DATA_COLOR, size=3),
    "data_faint": dict(color="rgba(40, 30, 120, 0.25)", size=3),
    "flow_sample": dict(color="rgba(255, 221, 0, 0.9)", size=4),  # apart from the orange arrows
    "fake": dict(color="rgba(230, 120, 20, 0.8)", size=4),
    "state": dict(color="rgba(230, 120, 20, 0.55)", size=3),
    "corrupted": dict(color="rgba(255, 127, 14, 0.95)", size=5),
    "clean": dict(color="rgba(20, 20, 20, 0.95)", size=5),
    "kernel": dict(color="rgba(214, 39, 40, 0.6)", size=3),
    "mean": dict(color="rgba(214, 39, 40, 0.95)", size=4),  # plus area ∝ weight, see `_weighted`
    # points coloured by their values on the view's colour scale
    "coloured": dict(size=4, opacity=0.6),
    "coloured_faint": dict(size=3, opacity=0.5),
    "coloured_node": dict(size=5, opacity=1.0),
}
PATH_STYLES: dict[str, dict[str, Any]] = {
    "path": dict(color=PATH_COLOR, width=1.2),
    "flow_path": dict(color="rgba(214, 39, 40, 0.55)", width=1.2),
    "walk0": dict(color="rgba(214, 39, 40, 0.9)", width=1.2),
    "walk1": dict(color="rgba(31, 119, 180, 0.9)", width=1.2),
    "walk2": dict(color="rgba(44, 160, 44, 0.9)", width=1.2),
    "sigma": dict(color="rgba(60, 60, 60, 0.55)", width=1.2),
    "prior": dict(color=DATA_COLOR, width=1.2),
    "grid": dict(color="#555", width=1),
    "contour": dict(color="rgba(214, 39, 40, 0.85)", width=1),
    "warped": dict(color="rgba(40, 40, 40, 0.6)", width=1),
    "grid_faint": dict(color="rgba(40, 40, 40, 0.25)", width=1),
    "decoder": dict(color="#444", width=1),
}
ARROW_STYLES = {"arrow": ARROW_COLOR, "pull": "#555"}
HEATMAP_STYLES = {"level": "Viridis", "energy": "Magma", "critic": "RdBu", "speed": "Blues"}
CURVE_STYLES = {"model": dict(color="#d62728", width=2), "marginal": dict(color="#1f77b4", width=1.5)}
BAR_STYLES = {"data": "rgba(40, 30, 120, 0.35)"}
VLINE_STYLES = {"model": dict(color="#d62728", dash="dot", width=1)}
COLOUR_SCALES = {"ordered": "Viridis", "cyclic": "Phase"}
VIEW_HEIGHT = 430
ARROW_FILL = 0.8  # the longest arrow of a vector field spans this share of a grid cell


def figure(view: View, *, height: int = VIEW_HEIGHT) -> go.Figure:
    """The figure of a family's view: its panels side by side (or stacked), each layer a trace."""
    planes = all(panel.equal for panel in view.panels)
    fig = _view_frame(view)
    for index, panel in enumerate(view.panels, start=1):
        row, col = (index, 1) if view.stacked else (1, index)
        for layer in panel.layers:
            _draw(fig, layer, row, col)
        _panel_axes(fig, panel, index, row, col)
        if panel.note:
            fig.add_annotation(text=panel.note, showarrow=False, xref="x domain", yref="y domain",
                               x=0.98, y=0.95, xanchor="right", row=row, col=col)  # fmt: skip
    if view.colour is not None:
        fig.update_layout(coloraxis=_colour_axis(view.colour))
    fig.update_layout(**(_plane_layout(view.title, height) if planes else _curve_layout(view.title, height)))
    return fig


def _view_frame(view: View) -> go.Figure:
    titles = [panel.title for panel in view.panels]
    titles_or_none = titles if any(titles) else None
    if view.stacked:
        shares = [panel.share for panel in view.panels]
        return make_subplots(rows=len(titles), cols=1, row_heights=shares, vertical_spacing=0.14,
                             subplot_titles=titles_or_none)  # fmt: skip
    return make_subplots(rows=1, cols=len(titles), horizontal_spacing=0.08, subplot_titles=titles_or_none)


def _plane_layout(title: str, height: int) -> dict[str, Any]:
    return dict(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15, weight=TITLE_WEIGHT)),
        template="plotly_white",
        font=FONT,
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=-0.12, xanchor="left", x=0.0),
        plot_bgcolor="white",
    )


def _curve_layout(title: str, height: int) -> dict[str, Any]:
    return dict(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15, weight=TITLE_WEIGHT)),
        template="plotly_white",
        font=FONT,
        height=height,
        bargap=0,
        margin=dict(l=55, r=15, t=40, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0.0, font=dict(size=11)),
    )


def _panel_axes(fig: go.Figure, panel: Panel, index: int, row: int, col: int) -> None:
    """A plane panel keeps equal scales within its range; a curve panel just its range."""
    x = dict(title_text=panel.x_title or None, row=row, col=col)
    y = dict(title_text=panel.y_title or None, row=row, col=col)
    if panel.x_range is not None:
        x["range"] = list(panel.x_range)
    if panel.y_range is not None:
        y["range"] = list(panel.y_range)
    if panel.equal:
        x["constrain"] = y["constrain"] = "domain"
        y["scaleanchor"] = f"x{index if index > 1 else ''}"
    fig.update_xaxes(**x)
    fig.update_yaxes(**y)


def _colour_axis(scale: ColourScale) -> dict[str, Any]:
    return dict(
        colorscale=COLOUR_SCALES[scale.style],
        cmin=scale.low,
        cmax=scale.high,
        colorbar=dict(title=dict(text=scale.title, side="right"), thickness=12, len=0.9),
    )


def _draw(fig: go.Figure, layer: Layer, row: int, col: int) -> None:
    if isinstance(layer, VLine):
        fig.add_vline(x=layer.x, line=VLINE_STYLES[layer.style], row=row, col=col)
        return
    for trace in _traces(layer):
        fig.add_trace(trace, row=row, col=col)


def _traces(layer: Layer) -> list[go.BaseTraceType]:
    if isinstance(layer, Points):
        return [_points(layer)]
    if isinstance(layer, Paths):
        return [_paths(layer)]
    if isinstance(layer, Arrows):
        return _arrows(layer.starts, layer.vectors, layer.name, ARROW_STYLES[layer.style])
    if isinstance(layer, Heatmap):
        return [_heatmap(layer.x, layer.y, layer.z, layer.name, HEATMAP_STYLES[layer.style], layer.zmid)]
    if isinstance(layer, VectorField):
        return _vector_field(layer)
    if isinstance(layer, Curve):
        x, y = np.asarray(layer.x, dtype=np.float64), np.asarray(layer.y, dtype=np.float64)
        return [go.Scatter(x=x, y=y, mode="lines", line=CURVE_STYLES[layer.style], name=layer.name)]
    if isinstance(layer, Bars):
        return [go.Bar(x=layer.centres, y=layer.heights, width=layer.widths,
                       marker_color=BAR_STYLES[layer.style], name=layer.name)]  # fmt: skip
    raise TypeError(f"no drawing for {type(layer).__name__}")


def _points(layer: Points) -> go.Scattergl | go.Scatter:
    style = POINT_STYLES[layer.style]
    if layer.weights is not None:
        return _weighted(layer, style["color"])
    xy = np.asarray(layer.xy, dtype=np.float32)
    if layer.values is None:
        marker = dict(size=style["size"], color=style["color"], line=dict(width=0))
    else:
        marker = dict(size=style["size"], color=layer.values, coloraxis="coloraxis",
                      opacity=style["opacity"], line=dict(width=0))  # fmt: skip
    return go.Scattergl(
        x=xy[:, 0], y=xy[:, 1], mode="markers", marker=marker, name=layer.name, hoverinfo="skip"
    )


def _weighted(layer: Points, color: str) -> go.Scatter:
    """Markers whose area is proportional to their weight; the weights in the hover."""
    xy, weights = np.asarray(layer.xy, dtype=np.float64), np.asarray(layer.weights, dtype=np.float64)
    sizes = 4 + 26 * np.sqrt(weights / max(weights.max(), 1e-12))
    return go.Scatter(
        x=xy[:, 0],
        y=xy[:, 1],
        mode="markers",
        marker=dict(size=sizes, color=color, line=dict(width=1, color="white")),
        customdata=weights,
        hovertemplate="weight %{customdata:.3f}<extra>component</extra>",
        name=layer.name,
    )


def _paths(layer: Paths) -> go.Scatter:
    """Polylines (n, t, 2) as one trace, NaN gaps between them."""
    paths = np.asarray(layer.paths, dtype=np.float64).reshape(-1, *np.shape(layer.paths)[-2:])
    gaps = np.full((len(paths), 1, 2), np.nan)
    joined = np.concatenate([paths, gaps], axis=1).reshape(-1, 2)
    return go.Scatter(
        x=joined[:, 0],
        y=joined[:, 1],
        mode="lines",
        line=PATH_STYLES[layer.style],
        name=layer.name,
        showlegend=bool(layer.name),
        hoverinfo="skip",
    )


def _arrows(starts: np.ndarray, vectors: np.ndarray, name: str, color: str) -> list[go.Scatter]:
    """Arrows from `starts` along `vectors`, both (n, 2), drawn as segments with a dot at the tip."""
    starts, vectors = np.asarray(starts, dtype=np.float64), np.asarray(vectors, dtype=np.float64)
    ends = starts + vectors
    gaps = np.full((len(starts), 1), np.nan)
    xs = np.hstack([starts[:, :1], ends[:, :1], gaps]).reshape(-1)
    ys = np.hstack([starts[:, 1:], ends[:, 1:], gaps]).reshape(-1)
    line = go.Scatter(
        x=xs, y=ys, mode="lines", line=dict(color=color, width=1.5), name=name, hoverinfo="skip"
    )
    tips = go.Scatter(x=ends[:, 0], y=ends[:, 1], mode="markers", marker=dict(size=4, color=color),
                      showlegend=False, hoverinfo="skip")  # fmt: skip
    return [line, tips]


def _heatmap(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, name: str, colorscale: str, zmid: float | None = None
) -> go.Heatmap:
    """z: (k, m) with z[i, j] at (x[j], y[i])."""
    return go.Heatmap(
        x=np.asarray(x, dtype=np.float32),
        y=np.asarray(y, dtype=np.float32),
        z=np.asarray(z, dtype=np.float32),
        colorscale=colorscale,
        zmid=zmid,
        name=name,
        colorbar=dict(title=dict(text=name, side="right"), thickness=12, len=0.9),
        hovertemplate=f"x=%{{x:.2f}}, y=%{{y:.2f}}<br>{name}=%{{z:.3f}}<extra></extra>",
    )


def _vector_field(layer: VectorField) -> list[go.BaseTraceType]:
    """A heat map of |v| and arrows of v's direction at the grid's points. Arrow lengths go as
    √(|v| / max |v|), so that slow regions still show their direction."""
    x, y = np.asarray(layer.x, dtype=np.float64), np.asarray(layer.y, dtype=np.float64)
    vectors = np.asarray(layer.vectors, dtype=np.float32)
    length = np.linalg.norm(vectors, axis=-1)
    spacing = min(x[1] - x[0], y[1] - y[0]) if len(x) > 1 and len(y) > 1 else 1.0
    relative = np.sqrt(length / max(float(length.max()), 1e-12))
    arrows = vectors / np.maximum(length, 1e-12)[..., None] * (spacing * ARROW_FILL * relative)[..., None]
    starts = np.stack(np.meshgrid(x, y), -1).reshape(-1, 2)
    heat = _heatmap(x, y, length, layer.name, HEATMAP_STYLES["speed"])
    return [heat, *_arrows(starts, arrows.reshape(-1, 2), "direction", ARROW_STYLES["arrow"])]


# ------------------------------------------------------------- classifiers: decision regions

CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
REGION_OPACITY = 0.4
# SVG markers, not WebGL: a page of several class charts that redraw would run out of WebGL contexts,
# and the browser then blanks the oldest chart
CLASS_MARKER = dict(size=4, line=dict(width=0.5, color="white"))
PROBE_MARKER = dict(size=14, symbol="star", color="black", line=dict(width=1, color="white"))


def _class_colorscale(classes: int) -> list[list[Any]]:
    """A stepped scale: class k's colour over [k, k + 1] / K, for a heat map of class indices."""
    scale = []
    for k in range(classes):
        color = CLASS_COLORS[k % len(CLASS_COLORS)]
        scale += [[k / classes, color], [(k + 1) / classes, color]]
    return scale


def decision_regions(
    x: np.ndarray,
    y: np.ndarray,
    regions: np.ndarray,
    confidence: np.ndarray,
    classes: Sequence[str],
    *,
    title: str,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    probe: tuple[float, float] | None = None,
    height: int = 330,
) -> go.Figure:
    """A classifier's decision regions: each grid cell in the colour of its most probable class.

    x: (m,), y: (k,), regions and confidence (max_y p(y | x)): (k, m) with [i, j] at (x[j], y[i]);
    points (n, 2) with labels (n,) are drawn in their classes' colours, `probe` as a star."""
    heat = go.Heatmap(
        x=x, y=y, z=regions, zmin=-0.5, zmax=len(classes) - 0.5, colorscale=_class_colorscale(len(classes)),
        showscale=False, opacity=REGION_OPACITY, customdata=np.asarray(confidence, dtype=np.float32),
        text=np.asarray(classes, dtype=object)[regions], name="regions",
        hovertemplate="x=%{x:.2f}, y=%{y:.2f}<br>%{text}, p = %{customdata:.3f}<extra></extra>",
    )  # fmt: skip
    fig = go.Figure([heat, *_class_points(points, labels, classes)])
    if probe is not None:
        star = go.Scatter(x=[probe[0]], y=[probe[1]], mode="markers", marker=PROBE_MARKER, name="point")
        fig.add_trace(star)
    return _class_layout(fig, x, y, title, height)


def class_samples(
    x: np.ndarray,
    y: np.ndarray,
    samples: Sequence[np.ndarray | None],
    classes: Sequence[str],
    *,
    title: str,
    height: int = 330,
) -> go.Figure:
    """New points drawn from each class's density, in the class's colour, over the grid's box.
    samples: one (n, 2) array per class (None: not drawn yet)."""
    traces = [
        go.Scatter(x=s[:, 0], y=s[:, 1], mode="markers", name=name,
                     marker=dict(CLASS_MARKER, color=CLASS_COLORS[k % len(CLASS_COLORS)]))
        for k, (s, name) in enumerate(zip(samples, classes, strict=True))
        if s is not None
    ]  # fmt: skip
    return _class_layout(go.Figure(traces), x, y, title, height)


def _class_points(points: np.ndarray | None, labels: np.ndarray | None, classes: Sequence[str]) -> list:
    if points is None or labels is None:
        return []
    return [
        go.Scatter(x=points[labels == k, 0], y=points[labels == k, 1], mode="markers", name=name,
                     marker=dict(CLASS_MARKER, color=CLASS_COLORS[k % len(CLASS_COLORS)]))
        for k, name in enumerate(classes)
    ]  # fmt: skip


def _class_layout(fig: go.Figure, x: np.ndarray, y: np.ndarray, title: str, height: int) -> go.Figure:
    _density_axes(fig, x, y)
    fig.update_layout(
        title=_panel_title(title),
        **_density_layout(height),
    )
    legend = dict(orientation="h", y=-0.12, yanchor="top", font=dict(size=11))  # under the x ticks
    fig.update_layout(showlegend=True, legend=legend, margin=dict(b=50))
    return fig


# ------------------------------------------------------------------ drawing canvas

LATTICE_MARKER = dict(size=4, color="rgba(120, 120, 140, 0.12)", line=dict(width=0))
STROKE_STYLE = dict(color="rgba(214, 39, 40, 0.9)", width=2)
REGION_FILL = "rgba(214, 39, 40, 0.12)"
PREVIEW_MARKER = dict(size=3, color="rgba(40, 30, 120, 0.35)", line=dict(width=0))
CANVAS_HEIGHT = 300


def drawing_canvas(
    box: Sequence[float],
    lattice: np.ndarray,
    strokes: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    preview: np.ndarray | None = None,
    *,
    height: int = CANVAS_HEIGHT,
) -> go.Figure:
    """A square canvas over `box` (xmin, xmax, ymin, ymax) for lasso and box selections: a faint
    `lattice` (n, 2) to select on, the `strokes` so far as (kind, xs, ys) ("path" or "region"),
    and `preview` (n, 2), the points they would generate."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=lattice[:, 0], y=lattice[:, 1], mode="markers", marker=LATTICE_MARKER,
                             hoverinfo="skip", name="canvas"))  # fmt: skip
    if preview is not None and len(preview):
        fig.add_trace(go.Scattergl(x=preview[:, 0], y=preview[:, 1], mode="markers", marker=PREVIEW_MARKER,
                                   hoverinfo="skip", name="points"))  # fmt: skip
    for kind, xs, ys in strokes:
        if kind == "region":
            fig.add_shape(type="rect", x0=xs[0], x1=xs[1], y0=ys[0], y1=ys[1], line=STROKE_STYLE,
                          fillcolor=REGION_FILL)  # fmt: skip
        else:
            fig.add_trace(go.Scatter(x=list(xs), y=list(ys), mode="lines", line=STROKE_STYLE,
                                     hoverinfo="skip", name="stroke"))  # fmt: skip
    xmin, xmax, ymin, ymax = box
    fig.update_layout(
        template="plotly_white", font=FONT, height=height, margin=dict(l=10, r=10, t=10, b=10),
        showlegend=False, dragmode="lasso", hovermode=False, newselection=dict(line=dict(color="#d62728")),
    )  # fmt: skip
    fig.update_xaxes(range=[xmin, xmax], fixedrange=True, showticklabels=False, zeroline=False)
    fig.update_yaxes(range=[ymin, ymax], fixedrange=True, showticklabels=False, zeroline=False,
                     scaleanchor="x", scaleratio=1)  # fmt: skip
    return fig

"""One browser session's state: its configuration, its model's handle, and what the page says.

Each session's `Session` lives in `st.session_state`; nothing per user goes in
`st.cache_resource`, which every user shares. The model itself lives in a training worker
(`genviz.engine`): the page sends it commands and draws its latest snapshot. Target density
grids never change, so they are cached with `st.cache_data`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st
import torch

from genviz.config import DEFAULT_BOX, FORMULA, USER_DATA, ConfigError, RunConfig, parse_box
from genviz.data import config_target, log_prob_grid
from genviz.drawing import Stroke
from genviz.engine import SessionHandle, Snapshot, scheduler
from genviz.pointsfile import PointsError, parse_points, shown_name
from genviz.targets import TARGETS
from genviz.taxonomy import AUTOSTART

DEFAULT = RunConfig(n_test=10_000, steps=3000)
STATE_KEY = "genviz"
SYNCED_KEY = "genviz.synced"  # the query `sync_url` last wrote: the page's own, not a link
RESEED_KEY = "genviz.reseed"  # the configuration changed elsewhere (a link, a page): reseed the controls
DRAWN_KEY = "genviz.drawn"  # (the configuration the sidebar was last drawn for, the one it made)
TARGET_RESOLUTION = 128  # the target's heat map: computed once per target and cached
REBUILD_FIELDS = ("model", "target", "seed", "device")  # with the hyperparameters: need a fresh model
# Plotly's own toolbar saves a chart as PNG in the browser (no server-side rendering): 2× for print
PNG_OPTIONS = {"format": "png", "filename": "genviz", "scale": 2}
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": PNG_OPTIONS}


def chart_config(chart: str) -> dict[str, Any]:
    """PLOTLY_CONFIG with the PNG named after the chart, e.g. genviz-nll.png."""
    return {**PLOTLY_CONFIG, "toImageButtonOptions": {**PNG_OPTIONS, "filename": f"genviz-{chart}"}}


class CachedFigures:
    """Figures by chart, with what they were built from (the dataclass's `figures` field): a refresh
    rebuilds only what changed."""

    figures: dict[str, tuple[Any, Any]]

    def figure(self, chart: str, key: Any, build: Callable[[], Any]) -> Any:
        """The chart's figure for `key`, built once."""
        cached = self.figures.get(chart)
        if cached is None or cached[0] != key:
            cached = self.figures[chart] = (key, build())
        return cached[1]


@dataclass
class Session(CachedFigures):
    """One user's run: the configuration, the handle of its model, and what the page says about them."""

    config: RunConfig
    handle: SessionHandle
    notice: str | None = None  # "Model rebuilt: ...", shown until the next rebuild or reset
    link_error: str | None = None  # a shared link that could not be used
    refused_link: dict[str, str] | None = None  # the first load's link, when it could not be used
    build_error: str | None = None  # the controls ask for a model that cannot be built here
    points: torch.Tensor | None = None  # the user's own points, once a CSV is uploaded
    points_name: str | None = None
    points_error: str | None = None  # why the last upload was refused
    upload_seen: str | None = None  # the uploader's id of the last file handled
    upload_digest: str | None = None  # its content's hash: a file is recognised by what it holds
    formula_error: str | None = None  # why the last typed density was refused
    strokes: list[Stroke] = field(default_factory=list)  # the drawing on the canvas, oldest first
    canvas_revision: int = 0  # bumped on every change: a fresh canvas widget, its selection empty
    points_drawn: bool = False  # the points came from the canvas, not from a file
    import_error: str | None = None  # why the last model file was refused
    export_error: str | None = None  # why the last export failed
    # Figures by chart, with what they were built from: a refresh rebuilds only what changed.
    figures: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    @property
    def snapshot(self) -> Snapshot:
        return self.handle.snapshot

    @property
    def running(self) -> bool:
        return self.handle.snapshot.running

    def apply(self, config: RunConfig) -> None:
        """Training settings apply live; anything that changes the model rebuilds it."""
        if config == self.config:
            self.build_error = None  # the controls are back to what the model is
            return
        changes = describe_changes(self.config, config)
        if changes:
            if not self._build(config, self.points, self.points_name):
                return  # the model the session had is kept, and the error says why
            self.notice = "Model rebuilt: " + "; ".join(changes)
        elif (error := self.handle.configure(config)) is not None:
            self.build_error = f"Cannot use these settings: {error}"
            return  # the model trains on with the settings it had
        self.config, self.build_error, self.link_error = config, None, None

    def reset(self) -> None:
        self._build(self.config, self.points, self.points_name)
        self.notice = None

    def _build(self, config: RunConfig, points: torch.Tensor | None, name: str | None) -> bool:
        error = self.handle.build(config, points, name)
        self.build_error = None if error is None else f"Cannot build this model: {error}"
        return error is None

    def upload(self, file_id: str, name: str, raw: bytes) -> None:
        """An upload from the uploader, read once per file and once per content: the same bytes
        again change nothing, other bytes under the same name and size are a new data set."""
        if file_id == self.upload_seen:
            return
        self.upload_seen = file_id
        digest = hashlib.sha256(raw).hexdigest()
        if digest != self.upload_digest:
            self.upload_digest = digest
            self.load_points(name, raw)

    def load_points(self, name: str, raw: bytes) -> bool:
        """Validate an uploaded CSV, read from memory (the name is only shown, never a path); on
        success it becomes the 'your data' target. A refused file changes nothing but the message."""
        try:
            points = parse_points(raw, name)
        except PointsError as error:
            self.points_error = str(error)
            return False
        name = shown_name(name)
        self._use_points(points, name, drawn=False)
        return True

    def load_drawing(self, points: torch.Tensor) -> None:
        """Points generated around the canvas's strokes become the 'your data' target, as an upload."""
        self.upload_digest = None  # an upload after this is new data, even one read before
        strokes = len(self.strokes)
        self._use_points(points, f"your drawing ({strokes} stroke{'s' * (strokes != 1)})", drawn=True)

    def _use_points(self, points: torch.Tensor, name: str, drawn: bool) -> None:
        self.points, self.points_name, self.points_error, self.points_drawn = points, name, None, drawn
        if self.config.target == USER_DATA and self._build(self.config, points, name):
            self.notice = f"Model rebuilt: new data from {name}"  # new points under the same target

    def typed_density(self, text: str, box: str) -> dict[str, Any] | None:
        """The configuration's fields for a typed density on a box, once it normalises; None (with
        the reason in `formula_error`) when it does not, and the session keeps its target and model."""
        try:
            fields = {"target": FORMULA, "formula": text, "box": parse_box(box)}
            config_target(self.config.with_changes(**fields))  # refused here, before the worker is asked
        except ConfigError as error:
            self.formula_error = str(error)
            return None
        except ValueError as error:  # a box that does not parse
            self.formula_error = f"box: {error}"
            return None
        self.formula_error = None
        return fields

    def export_model(self) -> bytes:
        """The model file (weights, optimiser and random states, curves), packed by the worker.
        Called when the download button is clicked, on a server thread: a failure is said on the page."""
        data, error = self.handle.export()
        self.export_error = None if error is None else f"Cannot export this model: {error}"
        if data is None:
            raise RuntimeError(self.export_error)
        return data

    def import_model(self, name: str, data: bytes) -> bool:
        """Continue from a model file: its weights, curves and step replace the session's model and
        the controls follow its configuration. A refused file changes nothing but the message."""
        reply, error = self.handle.restore(data)
        if reply is None:
            self.import_error = f"Cannot import {shown_name(name)}: {error}"
            return False
        config = page_budget(reply.payload, reply.step, self.snapshot.train_seconds)
        if config != reply.payload:
            self.handle.configure(config)
        if reply.values is not None:  # a run on a user's points carries them
            self.points, self.points_name = torch.from_numpy(reply.values), reply.method
        self.config, self.figures = config, {}
        self.import_error = self.build_error = self.link_error = None
        target = self.points_name if config.target == USER_DATA else config.target
        self.notice = (
            f"Imported {shown_name(name)}: {config.model} on {target} at step {reply.step:,}; "
            "Train continues from there."
        )
        return True

    def step_once(self) -> None:
        self.handle.step()

    def set_training(self, wanted: bool) -> None:
        """Train or pause, as the button the user saw said: a click Streamlit delivers twice then
        asks for the same thing twice, where a toggle would undo itself."""
        self.handle.run(wanted and not self.snapshot.done)


def page_budget(config: RunConfig, step: int, seconds: float) -> RunConfig:
    """An imported configuration as the Explorer trains it: with a step budget (the page's, or the
    steps taken when they are more), and without a time budget that is spent (the page has no control
    to raise it)."""
    spent = config.seconds is not None and seconds >= config.seconds
    steps = config.steps or max(DEFAULT.steps, step)
    return config.with_changes(steps=steps, seconds=None if spent else config.seconds)


def describe_changes(old: RunConfig, new: RunConfig) -> list[str]:
    """The changes that need a new model, in words: 'target changed from moons to rings'."""
    names = [n for n in REBUILD_FIELDS if getattr(old, n) != getattr(new, n)]
    changes = [f"{n} changed from {getattr(old, n)} to {getattr(new, n)}" for n in names]
    if old.target == new.target == FORMULA:
        if old.formula != new.formula:
            changes.append(f"density changed to {shorten(new.formula)}")
        if old.box != new.box:
            changes.append(f"box changed from {_show(old.box)} to {_show(new.box)}")
    if old.model == new.model:
        before, after = old.model_kwargs(), new.model_kwargs()
        changes += [
            f"{k} changed from {_show(before[k])} to {_show(v)}" for k, v in after.items() if before[k] != v
        ]
    return changes


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def session() -> Session:
    """This browser session's state, created on its first load from the URL."""
    if STATE_KEY not in st.session_state:
        st.session_state[STATE_KEY] = start_session(st.query_params.to_dict())
    return st.session_state[STATE_KEY]


def start_session(query: dict[str, str]) -> Session:
    """Build from a link; a link that cannot run here falls back to the defaults, saying why."""
    config, error = config_from_link(query)
    handle = scheduler().open()
    problem = handle.build(config)
    if problem is not None:
        config, error = DEFAULT, f"This link cannot run here ({problem}); showing the defaults instead."
        handle.build(config)
    return Session(config, handle, link_error=error, refused_link=None if error is None else query)


def config_from_link(query: dict[str, str]) -> tuple[RunConfig, str | None]:
    try:
        config = RunConfig.from_query(query, base=DEFAULT)
        if config.target not in TARGETS and config.target != FORMULA:
            raise ConfigError(
                f"target {config.target!r} needs uploaded points; choose one of {', '.join(TARGETS)}"
            )
        config_target(config)  # a typed density that cannot be normalised is refused here
    except ValueError as error:
        return DEFAULT, f"Could not read this link: {error}. Showing the defaults instead."
    return config, None


def follow_link(state: Session) -> None:
    """Apply a link opened inside a running session (the Home page's leaves) as a first load does;
    `autostart=1` then starts training, once: the address bar mirrors the configuration next, without it.
    The address this page wrote itself (`sync_url`) and a page opened from the navigation are no links."""
    query = st.query_params.to_dict()
    if not query or query in (st.session_state.get(SYNCED_KEY), state.refused_link):
        return
    autostart = query.pop(AUTOSTART, None) == "1"
    config, error = config_from_link(query)
    if error is not None:
        state.link_error = error
        return
    if config != state.config:
        state.apply(config)  # the sidebar's path: a rebuild goes through the host's cost check
    if autostart and config == state.config and not state.running:
        if state.snapshot.done:
            state.reset()
        state.handle.run(True)


def sync_url(config: RunConfig) -> None:
    """Mirror the configuration in the address bar, so that a link reproduces the run."""
    if config.target == USER_DATA:
        return  # uploaded points cannot travel in a link; the address keeps the last shareable state
    query = config.to_query()
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)
    st.session_state[SYNCED_KEY] = query


@st.cache_data(show_spinner=False, max_entries=64)
def target_density(
    name: str, resolution: int, formula: str = "", box: tuple[float, ...] = DEFAULT_BOX
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, log p) of a target on its box grid; `formula` and `box` for a typed density."""
    target = config_target(DEFAULT.with_changes(target=name, formula=formula, box=box))
    grid, log_p = log_prob_grid(target, resolution)
    return grid.x.numpy(), grid.y.numpy(), log_p.numpy()


def shorten(text: str, limit: int = 60) -> str:
    """A formula in a one-line notice."""
    return text if len(text) <= limit else text[: limit - 1] + "…"

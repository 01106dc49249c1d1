"""One browser session's state: its configuration, its model's handle, and what the page says.

Each session's `Session` lives in `st.session_state`; nothing per user goes in
`st.cache_resource`, which every user shares. The model itself lives in a training worker
(`genviz.engine`): the page sends it commands and draws its latest snapshot. Target density
grids never change, so they are cached with `st.cache_data`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from genviz.config import USER_DATA, ConfigError, RunConfig
from genviz.data import target_log_prob_grid
from genviz.engine import SessionHandle, Snapshot, scheduler
from genviz.pointsfile import PointsError, read_points
from genviz.targets import TARGETS

DEFAULT = RunConfig(n_test=10_000, steps=3000)
STATE_KEY = "genviz"
TARGET_RESOLUTION = 128  # the target's heat map: computed once per target and cached
REBUILD_FIELDS = ("model", "target", "seed", "device")  # with the hyperparameters: need a fresh model
PLOTLY_CONFIG = {"displaylogo": False}


@dataclass
class Session:
    """One user's run: the configuration, the handle of its model, and what the page says about them."""

    config: RunConfig
    handle: SessionHandle
    notice: str | None = None  # "Model rebuilt: ...", shown until the next rebuild or reset
    link_error: str | None = None  # a shared link that could not be used
    build_error: str | None = None  # the controls ask for a model that cannot be built here
    points: torch.Tensor | None = None  # the user's own points, once a CSV is uploaded
    points_name: str | None = None
    points_error: str | None = None  # why the last upload was refused
    upload_seen: tuple[str, int] | None = None  # (name, size) of the last file handled
    # Figures by chart, with what they were built from: a refresh rebuilds only what changed.
    figures: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    def figure(self, chart: str, key: Any, build: Callable[[], Any]) -> Any:
        """The chart's figure for `key`, built once."""
        cached = self.figures.get(chart)
        if cached is None or cached[0] != key:
            cached = self.figures[chart] = (key, build())
        return cached[1]

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

    def load_points(self, name: str, raw: bytes) -> bool:
        """Validate an uploaded CSV; on success it becomes the 'your data' target. A refused
        file changes nothing but the message."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / Path(name).name
            path.write_bytes(raw)
            try:
                points = read_points(path)
            except PointsError as error:
                self.points_error = str(error).replace(str(path), name)
                return False
        self.points, self.points_name, self.points_error = points, name, None
        if self.config.target == USER_DATA and self._build(self.config, points, name):
            self.notice = f"Model rebuilt: new data from {name}"  # new points under the same target
        return True

    def step_once(self) -> None:
        self.handle.step()

    def toggle(self) -> None:
        snapshot = self.snapshot
        self.handle.run(not snapshot.running and not snapshot.done)


def describe_changes(old: RunConfig, new: RunConfig) -> list[str]:
    """The changes that need a new model, in words: 'target changed from moons to rings'."""
    names = [n for n in REBUILD_FIELDS if getattr(old, n) != getattr(new, n)]
    changes = [f"{n} changed from {getattr(old, n)} to {getattr(new, n)}" for n in names]
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
    return Session(config, handle, link_error=error)


def config_from_link(query: dict[str, str]) -> tuple[RunConfig, str | None]:
    try:
        config = RunConfig.from_query(query, base=DEFAULT)
        if config.target not in TARGETS:
            raise ConfigError(
                f"target {config.target!r} needs uploaded points; choose one of {', '.join(TARGETS)}"
            )
    except ValueError as error:
        return DEFAULT, f"Could not read this link: {error}. Showing the defaults instead."
    return config, None


def sync_url(config: RunConfig) -> None:
    """Mirror the configuration in the address bar, so that a link reproduces the run."""
    if config.target == USER_DATA:
        return  # uploaded points cannot travel in a link; the address keeps the last shareable state
    query = config.to_query()
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


@st.cache_data(show_spinner=False, max_entries=64)
def target_density(name: str, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, log p) of a target on its box grid."""
    grid, log_p = target_log_prob_grid(name, resolution)
    return grid.x.numpy(), grid.y.numpy(), log_p.numpy()

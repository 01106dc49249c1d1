"""One browser session's state: the Trainer, its configuration, and what the page says about it.

Each session's `Session` lives in `st.session_state`; nothing per user goes in
`st.cache_resource`, which every user shares. Target density grids never change, so
they are cached with `st.cache_data`.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from genviz.config import USER_DATA, ConfigError, RunConfig
from genviz.data import DataSource, target_log_prob_grid
from genviz.grid import DEFAULT_RESOLUTION
from genviz.metrics import Result
from genviz.models.base import ViewContext
from genviz.pointsfile import PointsError, read_points
from genviz.targets import TARGETS
from genviz.train import Trainer

DEFAULT = RunConfig(n_test=10_000, steps=3000)
STATE_KEY = "genviz"
LIVE_RESOLUTION = 128  # heat maps while training: cheap enough to redraw every tick
TICK_SECONDS = 0.5  # training per tick: long enough to amortise drawing, short enough for a click
RUN_EVERY = 0.2  # seconds between the end of one tick and the next
QUADRATURE_EVERY = 8  # ticks between quadrature cross-checks while training (a 200² grid)
N_SAMPLES = 1500
VIEW_POINTS = 1000  # held-out points a family view may draw
REBUILD_FIELDS = ("model", "target", "seed", "device")  # with the hyperparameters: need a fresh model
BATCH_SIZES = [2**k for k in range(4, 14)]
PLOTLY_CONFIG = {"displaylogo": False}

_process_ready = False


def configure_process() -> None:
    """One torch thread per server process: faster for these small models, fairer across users."""
    global _process_ready
    if not _process_ready:
        torch.set_num_threads(1)
        _process_ready = True


@dataclass
class Session:
    """One user's run: the Trainer, its configuration and what the page says about them."""

    config: RunConfig
    trainer: Trainer
    running: bool = False
    notice: str | None = None  # "Model rebuilt: ...", shown until the next rebuild or reset
    link_error: str | None = None  # a shared link that could not be used
    build_error: str | None = None  # the controls ask for a model that cannot be built here
    rate: float | None = None  # training steps per second of training time, last tick
    wall_rate: float | None = None  # steps per wall-clock second between the last two ticks
    last_tick: tuple[float, int] | None = None  # (time, step) at the end of the last tick
    ticks: int = 0
    checks: list[tuple[int, Result]] = field(default_factory=list)  # quadrature cross-checks
    view: dict[str, Any] | None = None  # the model's density grid (and samples) at view["step"]
    family_figure: tuple[Any, Any, Any] | None = None  # (step, controls, figure or error) of the family view
    points: torch.Tensor | None = None  # the user's own points, once a CSV is uploaded
    points_name: str | None = None
    points_error: str | None = None  # why the last upload was refused
    upload_seen: tuple[str, int] | None = None  # (name, size) of the last file handled
    # Streamlit starts a rerun in a new thread while the previous run is still training;
    # everything that touches the Trainer holds this lock.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def apply(self, config: RunConfig) -> None:
        """Training settings apply live; anything that changes the model rebuilds it."""
        with self.lock:
            self._apply(config)

    def _apply(self, config: RunConfig) -> None:
        if config == self.config:
            return
        changes = describe_changes(self.config, config)
        if changes:
            try:
                self.trainer = new_trainer(config, self.points, self.points_name)
            except (ValueError, RuntimeError) as error:  # ConfigError, or a family refusing its settings
                self.build_error, self.running = f"Cannot build this model: {error}", False
                return
            self.notice = "Model rebuilt: " + "; ".join(changes)
            self._forget()
        else:
            self.trainer.config = config  # the Trainer reads lr, batch size and schedule every step
        self.config, self.build_error, self.link_error = config, None, None

    def reset(self) -> None:
        with self.lock:
            trainer = new_trainer(self.config, self.points, self.points_name)
            self.trainer, self.running, self.notice = trainer, False, None
            self._forget()

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
        with self.lock:
            self.points, self.points_name, self.points_error = points, name, None
            if self.config.target == USER_DATA:  # new points under the same target: start again
                self.trainer = new_trainer(self.config, points, name)
                self.running, self.notice = False, f"Model rebuilt: new data from {name}"
                self._forget()
        return True

    def _forget(self) -> None:
        self.checks, self.view, self.ticks, self.family_figure = [], None, 0, None
        self.rate = self.wall_rate = self.last_tick = None

    def tick(self) -> None:
        """Train for a bounded time, then evaluate once."""
        before = self.trainer.train_seconds
        taken = self.trainer.train(max_seconds=TICK_SECONDS)
        spent = self.trainer.train_seconds - before
        self.rate = taken / spent if spent > 0 else None
        if taken:
            self.trainer.record()
        now, step = time.perf_counter(), self.trainer.step
        if self.last_tick is not None and now > self.last_tick[0]:
            self.wall_rate = (step - self.last_tick[1]) / (now - self.last_tick[0])
        self.last_tick = now, step
        self.ticks += 1
        self.running = self.running and not self.trainer.done

    def step_once(self) -> None:
        with self.lock:
            self.running = False
            if self.trainer.train(max_steps=1):
                self.trainer.record()

    def toggle(self) -> None:
        with self.lock:
            self.running = not self.running and not self.trainer.done
            self.last_tick = None  # a pause is not part of the overall rate

    def cross_check(self) -> tuple[int, Result] | None:
        """KL by quadrature: when paused, or every few ticks while training."""
        step = self.trainer.step
        stale = not self.checks or self.checks[-1][0] != step
        if stale and (not self.running or self.ticks % QUADRATURE_EVERY == 1):
            resolution = self.resolution(DEFAULT_RESOLUTION)
            log_q = None
            if resolution == self.resolution(LIVE_RESOLUTION):  # a capped family: reuse the live grid
                log_q = torch.from_numpy(self.model_view(overlay=False)["log_q"])
            result = self.trainer.kl_by_quadrature(resolution, log_q)
            if result is not None:
                self.checks.append((step, result))
        return self.checks[-1] if self.checks else None

    def resolution(self, wanted: int) -> int:
        """Grid cells per side for a live figure or check: `wanted`, or the family's cap."""
        return min(wanted, self.trainer.model.live_grid or wanted)

    def model_view(self, overlay: bool) -> dict[str, Any]:
        """The model's log density grid (and samples), computed once per step."""
        step = self.trainer.step
        if self.view is None or self.view["step"] != step:
            grid, log_q = self.trainer.density_grid(self.resolution(LIVE_RESOLUTION))
            self.view = {"step": step, "x": grid.x.numpy(), "y": grid.y.numpy(), "log_q": log_q.numpy()}
        if overlay and "samples" not in self.view:
            # A private RNG stream: drawing for display must not change the training run.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed + step)
                self.view["samples"] = self.trainer.samples(N_SAMPLES).numpy()
        return self.view

    def family_view(self, controls: dict[str, float]) -> tuple[Any, str | None]:
        """(figure, None) or (None, why): the family's view, drawn once per step and slider setting.
        A view that fails says so and leaves training untouched."""
        step, key = self.trainer.step, tuple(sorted(controls.items()))
        if self.family_figure is None or self.family_figure[:2] != (step, key):
            data = self.trainer.data
            context = ViewContext(data.box, data.test[:VIEW_POINTS], dict(controls), self.config.seed + step)
            try:
                with torch.random.fork_rng(devices=[]):
                    figure, error = self.trainer.model.view(context), None
            except (RuntimeError, ValueError, IndexError) as problem:
                figure, error = None, f"{type(problem).__name__}: {problem}"
            self.family_figure = (step, key, (figure, error))
        return self.family_figure[2]


def new_trainer(config: RunConfig, points: torch.Tensor | None = None, name: str | None = None) -> Trainer:
    """A fresh Trainer, evaluated once so that every curve starts at step 0."""
    configure_process()
    data = None
    if config.target == USER_DATA:
        if points is None:
            raise ConfigError("upload a CSV of points first")
        data = DataSource.from_points(points, torch.Generator().manual_seed(config.seed), name or USER_DATA)
    trainer = Trainer(config, data)
    trainer.record()
    return trainer


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
    try:
        return Session(config, new_trainer(config), link_error=error)
    except ConfigError as problem:
        message = f"This link cannot run here ({problem}); showing the defaults instead."
        return Session(DEFAULT, new_trainer(DEFAULT), link_error=message)


def config_from_link(query: dict[str, str]) -> tuple[RunConfig, str | None]:
    try:
        config = RunConfig.from_query(query, base=DEFAULT)
        if config.target not in TARGETS:
            raise ConfigError(
                f"target {config.target!r} needs uploaded points; choose one of {', '.join(TARGETS)}"
            )
        if "steps" in query:  # not among RunConfig's query fields, so read here
            config = config.with_changes(steps=_budget(query["steps"]))
    except ValueError as error:
        return DEFAULT, f"Could not read this link: {error}. Showing the defaults instead."
    return config, None


def _budget(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"steps: cannot read {text!r} as a step budget (a whole number ≥ 1)")
    return int(text)


def sync_url(config: RunConfig) -> None:
    """Mirror the configuration in the address bar, so that a link reproduces the run."""
    if config.target == USER_DATA:
        return  # uploaded points cannot travel in a link; the address keeps the last shareable state
    query = config.to_query() | {"steps": str(config.steps)}
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


@st.cache_data(show_spinner=False, max_entries=64)
def target_density(name: str, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, log p) of a target on its box grid."""
    grid, log_p = target_log_prob_grid(name, resolution)
    return grid.x.numpy(), grid.y.numpy(), log_p.numpy()

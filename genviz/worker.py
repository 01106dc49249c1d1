"""A training worker: one process that owns the models of the sessions assigned to it.

The web server never trains. Each worker process is one training slot: it trains its running
sessions round-robin in short slices, evaluates them at a bounded share of its time, and sends
back plain data (`Update`) that the page draws. Commands arrive on a queue and take effect
between slices, so a click acts within one slice.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from genviz.bundle import MAX_FILE_BYTES
from genviz.config import USER_DATA, ConfigError, RunConfig
from genviz.cost import check_cost
from genviz.data import TEST_FRACTION, DataSource
from genviz.grid import DEFAULT_RESOLUTION
from genviz.limits import HostLimits
from genviz.metrics import Result, log_q_at, private_samples
from genviz.models.base import GenerativeModel, ViewContext
from genviz.rundir import export_run, import_run
from genviz.train import Evaluation, Trainer

LIVE_MAX_RESOLUTION = 96  # the model's heat map while training is at most this fine
LIVE_MIN_RESOLUTION = 32
PAUSED_RESOLUTION = 128  # the full grid, drawn once training pauses
N_SAMPLES = 1500  # samples drawn over the model's density when asked for
VIEW_POINTS = 1000  # held-out points a family view may draw
WORKER_NICENESS = 10  # added to a training worker's niceness (0 → 10): the server schedules first
PUBLISH_EVERY = 0.1  # seconds between updates of one session sent to the server
FIRST_SLICE_SECONDS = 0.03  # trained before a Train click is answered, so its page shows a step at once
# A query (log q at given points, or samples) costs at most what a paused heat map does.
MAX_QUERY_POINTS = PAUSED_RESOLUTION**2
MAX_QUERY_SAMPLES = 5000
# Periodic work on a training session: (shortest interval in seconds, largest share of the
# session's training time). A task that costs c seconds runs at most every max(interval, c / share)
# of the session's own time, that is every c · n / share seconds when n sessions take turns, so
# evaluation never takes more than the sum of the shares (18 %) of a slot's time, whatever the
# family and however many sessions share the slot.
REFRESH = {"grid": (0.15, 0.1), "record": (0.5, 0.05), "view": (1.0, 0.02), "check": (4.0, 0.01)}
# A live heat map's budget: 9.6 ms. The live grid is as fine as this allows
# (measured on the model itself), so a cheap family refreshes sharply and a costly one coarsely.
GRID_SECONDS = 0.0096


def grid_budget(sharing: int) -> float:
    """Seconds one live heat map may cost when `sharing` sessions take turns on the slot.

    The heat map's share of a session's time makes it come every cost · n / share seconds, so at a
    fixed cost its rate falls as 1/n: six visitors on a slot would each see a new heat map about
    once a second. Dividing the budget by √n makes the rate fall as 1/√n instead, and the grid's
    side as n^(-1/4) (88² alone, 56² for six)."""
    return GRID_SECONDS / math.sqrt(max(1, sharing))


def fitting_resolution(per_cell: float, sharing: int) -> int:
    """The live grid's side whose heat map fits `grid_budget(sharing)`, at `per_cell` seconds a cell."""
    fits = int(math.sqrt(grid_budget(sharing) / max(per_cell, 1e-12))) // 8 * 8
    return min(max(fits, LIVE_MIN_RESOLUTION), LIVE_MAX_RESOLUTION)


@dataclass(frozen=True)
class DensityFrame:
    """The model's log density on the box grid at `step`, with samples when asked for."""

    step: int
    resolution: int
    x: np.ndarray
    y: np.ndarray
    log_q: np.ndarray
    samples: np.ndarray | None = None


@dataclass(frozen=True)
class ViewFrame:
    """The family's view (plain data) at `step` for the given slider settings, or why it failed."""

    step: int
    controls: tuple[tuple[str, float], ...]
    view: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Reply:
    """The answer to a query, computed at `step`: log q at the points asked for ((n,) float64,
    labelled by `kind` and `method` as `metrics.log_q_at` labels it), or samples ((n, 2) float32)."""

    step: int
    values: np.ndarray | None
    kind: str = ""
    method: str = ""
    error: str | None = None  # the query was refused, and why
    payload: Any = None  # another command's answer: a model file's bytes, a restored model's settings
    seconds: float = 0.0  # what computing it took, so that the asker can space its queries


@dataclass(frozen=True)
class Update:
    """What changed in one session since the worker last reported it. None: unchanged."""

    session: str
    seq: int  # the last command from this session the worker has applied
    step: int
    train_seconds: float
    lr: float
    progress: float
    running: bool
    done: bool
    stopped: str | None
    pause_reason: str | None
    ahead: int | None  # sessions before this one in the slot's queue while it waits; None: its turn
    evaluating: bool  # paused, with its full evaluation still to come
    sharing: int  # running sessions taking turns on this slot
    rate: float | None  # steps per second of training time in the last slice
    history_from: int  # index in the history of the first of `evaluations`
    evaluations: tuple[Evaluation, ...]
    checks: tuple[tuple[int, Result], ...] | None  # None: unchanged
    rollbacks: tuple[str, ...]
    best_note: str | None = None  # a kept best state: brought back, or better than the latest evaluation
    density: DensityFrame | None = None
    view: ViewFrame | None = None
    build_error: str | None = None
    memory_error: bool = False
    reply: Reply | None = None  # the answer to the command `seq`, when it was a query


@dataclass
class Cadence:
    """When a periodic task may next run, from what it last cost."""

    interval: float
    share: float
    next_at: float = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def ran(self, start: float, cost: float, sharing: int = 1) -> None:
        """It ran at `start` and cost `cost` seconds, while `sharing` sessions took turns.

        The next time counts from when this run was due, not from when it ran: a task checked only
        between slices of training is always a little late, and a period just longer than the
        time between two checks would otherwise run at every other check, half its rate. A task
        late by a period or more (its session was paused) starts its schedule again from now."""
        period = max(self.interval, cost * sharing / self.share)
        on_time = start - self.next_at < period
        self.next_at = (self.next_at if on_time else start) + period


@dataclass
class Run:
    """One session's Trainer inside the worker, and what its page asked to see."""

    session: str
    trainer: Trainer
    seq: int = 0
    running: bool = False
    pause_reason: str | None = None
    overlay: bool = False
    controls: tuple[tuple[str, float], ...] = ()
    rate: float | None = None
    sent_history: int = 0
    sent_checks: int = -1
    density: DensityFrame | None = None
    density_sent: bool = False
    view: ViewFrame | None = None
    view_sent: bool = False
    checks: list[tuple[int, Result]] = field(default_factory=list)
    last_publish: float = 0.0
    full_step: int = -1  # the step the last full (paused) evaluation was made at
    live_resolution: int = 0  # cells per side of the heat map while training; 0: not chosen yet
    pending_full: bool = False  # paused, and its full evaluation not made yet
    reply: Reply | None = None  # a query's answer, sent with the next update
    cadence: dict[str, Cadence] = field(default_factory=lambda: {k: Cadence(*v) for k, v in REFRESH.items()})

    @property
    def step(self) -> int:
        return self.trainer.step


def new_trainer(config: RunConfig, points: torch.Tensor | None, name: str | None) -> Trainer:
    """A fresh Trainer, evaluated once so that every curve starts at step 0."""
    data = None
    if config.target == USER_DATA:
        if points is None:
            raise ConfigError("upload a CSV of points first")
        data = DataSource.from_points(points, torch.Generator().manual_seed(config.seed), name or USER_DATA)
    trainer = Trainer(config, data)
    trainer.record()
    return trainer


Answer = Callable[[Trainer], Reply]  # a command's answer, made from the Trainer it installed


def restored_trainer(data: bytes, limits: HostLimits) -> Trainer:
    """The Trainer of a model file, checked against the host's limits; evaluated if it never was."""
    trainer = import_run(data, limits)
    if not trainer.history:
        trainer.record()
    return trainer


def _restored_reply(trainer: Trainer) -> Reply:
    """What the page needs of a restored model: its configuration (the payload), and a user's points
    (values, (n, 2) float32) under their name (method)."""
    data = trainer.data
    points = None if data.train_points is None else torch.cat([data.test, data.train_points]).numpy()
    return Reply(trainer.step, points, "restored", data.name, payload=trainer.config)


class Worker:
    """The sessions of one slot: commands in, training slices, updates out."""

    def __init__(self, outbox: Any, limits: HostLimits, waiting: Callable[[], bool] = lambda: False) -> None:
        self.outbox = outbox
        self.limits = limits
        self.waiting = waiting  # a command has come: a slice of training ends early to apply it
        self.runs: dict[str, Run] = {}
        self.ready: deque[str] = deque()  # running sessions, the head's turn now

    # ------------------------------------------------------------------ commands
    def handle(self, command: tuple) -> None:
        kind, session, seq, payload = command
        if kind == "census":  # which sessions hold a model here
            self.outbox.put(("census", sorted(self.runs)))
            return
        if kind == "build":
            self._build(session, seq, *payload)
            return
        if kind == "restore":
            self._restore(session, seq, *payload)
            return
        run = self.runs.get(session)
        if run is None:
            return
        if kind == "close":
            self.drop(session)
            return
        run.seq = seq
        error = getattr(self, f"_{kind}")(run, *payload)
        if error is not None:
            self.outbox.put(_error_update(session, seq, error, run.running))
        else:
            self.publish(run, force=True)

    def _build(self, session: str, seq: int, config: RunConfig, points: Any, name: str | None) -> None:
        def build() -> Trainer:
            held_out = None if points is None else max(1, round(len(points) * TEST_FRACTION))
            check_cost(config, self.limits, held_out)  # before anything is allocated
            return new_trainer(config, None if points is None else torch.as_tensor(points), name)

        self._install(session, seq, build)

    def _restore(self, session: str, seq: int, data: bytes) -> None:
        """A model file's Trainer in place of the session's model (which it keeps if the file is refused);
        the reply carries the configuration and a user's points, for the page's controls."""
        self._install(session, seq, lambda: restored_trainer(data, self.limits), _restored_reply)

    def _export(self, run: Run) -> str | None:
        """The model file of a session's Trainer, sent back as bytes; None, or why it cannot be."""
        data = export_run(run.trainer)
        if len(data) > MAX_FILE_BYTES:
            size, cap = len(data) / 2**20, MAX_FILE_BYTES >> 20
            return f"its model file would be {size:.0f} MB, and a model file may hold {cap} MB"
        run.reply = Reply(run.step, None, "model file", payload=data)
        return None

    def _install(
        self, session: str, seq: int, make: Callable[[], Trainer], reply: Answer | None = None
    ) -> None:
        """Replace the session's Trainer by `make()`; on a refusal keep the old one and say why.
        `reply`: the answer sent with the update, made from the new Trainer."""
        old = self.runs.pop(session, None)
        if old is not None and session in self.ready:
            self.ready.remove(session)
        try:
            trainer = make()
        except (ValueError, RuntimeError, MemoryError) as error:  # ConfigError, a family refusing
            if old is not None:
                self.runs[session] = old  # nothing the user had is thrown away
                old.running = False
            self.outbox.put(_error_update(session, seq, str(error), False))
            return
        run = Run(session, trainer, seq=seq)
        if old is not None:
            run.overlay, run.controls = old.overlay, old.controls
        self.runs[session] = run
        # Enough for the page to draw at once; the full grid and the cross-check follow.
        self._refresh_live_density(run)
        self._refresh_view(run)
        run.pending_full = True
        if reply is not None:
            run.reply = reply(trainer)
        self.publish(run, force=True)

    def _configure(self, run: Run, config: RunConfig) -> str | None:
        """Training settings that apply live; a batch size the host cannot afford is refused."""
        try:
            check_cost(config, self.limits, len(run.trainer.data.test))
        except ConfigError as error:
            return str(error)
        run.trainer.config = config  # the Trainer reads lr, batch size, schedule and budget every step
        if run.running and run.trainer.done:
            self._set_running(run, False)
        return None

    def _run(self, run: Run, wanted: bool, reason: str | None = None) -> None:
        starting = wanted and not run.running
        self._set_running(run, wanted and not run.trainer.done)
        run.pause_reason = reason
        if wanted and not self._check_caps(run) and starting and run.running:
            self._train_slice(run, FIRST_SLICE_SECONDS)
        if not run.running:
            run.pending_full = True  # after the reply, so that Pause takes effect at once

    def _step(self, run: Run) -> None:
        self._set_running(run, False)
        if not self._check_caps(run) and run.trainer.train(max_steps=1):
            run.trainer.record()
        run.pending_full = True

    def _watch(self, run: Run, overlay: bool, controls: tuple[tuple[str, float], ...]) -> None:
        changed_overlay = overlay and not run.overlay
        run.overlay, run.controls = overlay, controls
        if changed_overlay:
            run.density = None  # redraw with samples at once
            run.cadence["grid"].next_at = 0.0
        if run.view is None or run.view.controls != controls:
            run.cadence["view"].next_at = 0.0
            if not run.running:
                self._refresh_view(run)

    def _log_density(self, run: Run, points: np.ndarray) -> None:
        """log q at the points asked for (a classifier's grid and test points), labelled."""
        trainer = run.trainer
        if not _plain_points(points):
            run.reply = Reply(trainer.step, None, error=f"at most {MAX_QUERY_POINTS:,} finite (x, y) points")
            return
        seed, start = trainer.config.seed + trainer.step, time.perf_counter()
        try:
            log_q = log_q_at(trainer.model, torch.from_numpy(points), trainer.data.box, seed)
        except (RuntimeError, ValueError) as problem:
            run.reply = Reply(trainer.step, None, error=f"{type(problem).__name__}: {problem}")
            return
        spent = time.perf_counter() - start
        run.reply = Reply(trainer.step, log_q.values.numpy(), log_q.kind, log_q.method, seconds=spent)

    def _samples(self, run: Run, n: int, seed: int) -> None:
        """n samples of the model from a private stream seeded with `seed`: training's is untouched."""
        trainer = run.trainer
        if not (isinstance(n, int) and 1 <= n <= MAX_QUERY_SAMPLES):
            run.reply = Reply(trainer.step, None, error=f"between 1 and {MAX_QUERY_SAMPLES:,} samples")
            return
        drawn = private_samples(trainer.model, n, seed).float().numpy()
        run.reply = Reply(trainer.step, drawn, "samples", f"{n:,} samples of the model")

    def drop(self, session: str) -> None:
        """Forget a session: its model is freed."""
        if session in self.ready:
            self.ready.remove(session)
        self.runs.pop(session, None)

    def _set_running(self, run: Run, wanted: bool) -> None:
        if wanted and not run.running:
            self.ready.append(run.session)
        elif not wanted and run.running:
            self.ready.remove(run.session)
        run.running = wanted

    # ------------------------------------------------------------------ training
    @property
    def busy(self) -> bool:
        return bool(self.ready) or any(run.pending_full for run in self.runs.values())

    def work(self) -> None:
        """A paused model's full evaluation if one is waiting; else one slice of training for the
        session whose turn it is, then its due evaluations."""
        waiting = next((run for run in self.runs.values() if run.pending_full), None)
        if waiting is not None:
            self._evaluate_in_full(waiting)
            self.publish(waiting, force=True)
            return
        if not self.ready:
            return
        run = self.runs[self.ready[0]]
        try:
            self._train_slice(run, self.limits.slice_seconds)
            if not self.waiting():  # a click first; the evaluations come with the next slice
                self._refresh_training(run)
        except Exception as problem:  # one session's failure must not stop the others on this slot
            self._set_running(run, False)
            run.pause_reason = f"Training stopped: {type(problem).__name__}: {problem}"
        if len(self.ready) > 1 and run.running:
            self.ready.rotate(-1)  # the next session's turn
        for session in self.ready:
            self.publish(self.runs[session])
        if not run.running:
            self.publish(run, force=True)

    def _train_slice(self, run: Run, seconds: float) -> None:
        """Train up to `seconds`, less if a command comes or a cap is reached."""
        trainer = run.trainer
        before_steps, before_seconds = trainer.step, trainer.train_seconds
        limits = self.limits
        steps_left = max(0, limits.max_session_steps - trainer.step)
        seconds_left = max(0.0, limits.max_session_train_seconds - trainer.train_seconds)
        trainer.train(max_steps=steps_left, max_seconds=min(seconds, seconds_left), interrupt=self.waiting)
        spent = trainer.train_seconds - before_seconds
        if spent > 0 and trainer.step > before_steps:
            run.rate = (trainer.step - before_steps) / spent
        if trainer.done:
            self._set_running(run, False)
        self._check_caps(run)
        run.pending_full = not run.running

    def _check_caps(self, run: Run) -> bool:
        """Pause at the host's per-session caps; True when a cap is reached."""
        trainer, limits = run.trainer, self.limits
        reason = None
        if trainer.step >= limits.max_session_steps:
            reason = (
                f"This server allows {limits.max_session_steps:,} steps per model "
                "(GENVIZ_MAX_SESSION_STEPS); training paused. Reset to start again."
            )
        elif trainer.train_seconds >= limits.max_session_train_seconds:
            reason = (
                f"This server allows {limits.max_session_train_seconds:g} s of training per model "
                "(GENVIZ_MAX_SESSION_TRAIN_SECONDS); training paused. Reset to start again."
            )
        if reason is not None:
            self._set_running(run, False)
            run.pause_reason = reason
        return reason is not None

    def _refresh_training(self, run: Run) -> None:
        """While training: each evaluation at most as often as its cadence allows."""
        if not run.running:
            return
        now = time.perf_counter()
        cadence, sharing = run.cadence, len(self.ready)
        if cadence["grid"].due(now) and (run.density is None or run.density.step != run.step):
            self._timed(cadence["grid"], lambda: self._refresh_live_density(run, sharing), sharing)
        if cadence["record"].due(now) and run.trainer.history[-1].step != run.step:
            self._timed(cadence["record"], lambda: self._record(run), sharing)
        if cadence["view"].due(now) and (run.view is None or run.view.step != run.step):
            self._timed(cadence["view"], lambda: self._refresh_view(run), sharing)
        if cadence["check"].due(now) and (not run.checks or run.checks[-1][0] != run.step):
            self._timed(cadence["check"], lambda: self._cross_check(run), sharing)

    @staticmethod
    def _timed(cadence: Cadence, task: Any, sharing: int = 1) -> None:
        start = time.perf_counter()
        task()
        cadence.ran(start, time.perf_counter() - start, sharing)

    def _record(self, run: Run, live: bool = True) -> None:
        run.trainer.record(live=live)

    def _refresh_live_density(self, run: Run, sharing: int = 1) -> None:
        """The heat map while training, at the finest grid that fits its budget (`grid_budget`)."""
        if not run.live_resolution:
            run.live_resolution = run.trainer.live_resolution(LIVE_MAX_RESOLUTION)
        resolution = run.live_resolution
        start = time.perf_counter()
        self._refresh_density(run, resolution)
        per_cell = (time.perf_counter() - start) / resolution**2
        run.live_resolution = fitting_resolution(per_cell, sharing)

    def _evaluate_in_full(self, run: Run) -> None:
        """A paused model is evaluated once in full: held-out metrics, full grid, cross-check, view."""
        run.pending_full = False
        if run.full_step == run.step:
            return
        run.full_step = run.step
        if run.trainer.history[-1].step != run.step:
            self._record(run, live=False)
        self._refresh_density(run, PAUSED_RESOLUTION)
        self._cross_check(run)
        self._refresh_view(run)

    def _refresh_density(self, run: Run, resolution: int) -> None:
        trainer = run.trainer
        resolution = min(resolution, trainer.model.live_grid or resolution)
        grid, log_q = trainer.density_grid(resolution)
        samples = None
        if run.overlay:
            with torch.random.fork_rng(devices=[]):  # drawing for display leaves training's RNG alone
                torch.manual_seed(trainer.config.seed + trainer.step)
                samples = trainer.samples(N_SAMPLES).numpy()
        x, y = grid.x.numpy(), grid.y.numpy()
        run.density = DensityFrame(trainer.step, resolution, x, y, log_q.numpy(), samples)
        run.density_sent = False

    def _cross_check(self, run: Run) -> None:
        """KL by quadrature over the box, independent of the held-out sample."""
        trainer = run.trainer
        resolution = min(DEFAULT_RESOLUTION, trainer.model.live_grid or DEFAULT_RESOLUTION)
        log_q = None
        frame = run.density
        if frame is not None and frame.step == trainer.step and frame.resolution == resolution:
            log_q = torch.from_numpy(frame.log_q)  # a capped family: reuse the grid just drawn
        result = trainer.kl_by_quadrature(resolution, log_q)
        if result is not None:
            run.checks.append((trainer.step, result))

    def _refresh_view(self, run: Run) -> None:
        """The family's view; a view that fails says why and leaves training untouched."""
        trainer = run.trainer
        if type(trainer.model).view is GenerativeModel.view:
            return
        data = trainer.data
        controls = dict(run.controls)
        context = ViewContext(data.box, data.test[:VIEW_POINTS], controls, trainer.config.seed + trainer.step)
        try:
            with torch.random.fork_rng(devices=[]):
                view, error = trainer.model.view(context), None
        except (RuntimeError, ValueError, IndexError) as problem:
            view, error = None, f"{type(problem).__name__}: {problem}"
        run.view = ViewFrame(trainer.step, run.controls, view, error)
        run.view_sent = False

    # ------------------------------------------------------------------ reporting
    def publish(self, run: Run, force: bool = False) -> None:
        """Send what changed, at most every PUBLISH_EVERY seconds unless forced."""
        now = time.perf_counter()
        if not force and now - run.last_publish < PUBLISH_EVERY:
            return
        run.last_publish = now
        trainer = run.trainer
        history = trainer.history
        start = min(run.sent_history, len(history))
        checks = tuple(run.checks) if len(run.checks) != run.sent_checks else None
        position = self.ready.index(run.session) if run.running else None
        update = Update(
            session=run.session,
            seq=run.seq,
            step=trainer.step,
            train_seconds=trainer.train_seconds,
            lr=trainer.lr,
            progress=trainer.progress,
            running=run.running,
            done=trainer.done,
            stopped=trainer.stopped,
            pause_reason=run.pause_reason,
            ahead=position or None,
            evaluating=run.pending_full,
            sharing=len(self.ready),
            rate=run.rate,
            history_from=start,
            evaluations=tuple(history[start:]),
            checks=checks,
            rollbacks=tuple(r.message() for r in trainer.rollbacks[-3:]),
            best_note=trainer.best_note(),
            density=None if run.density_sent else run.density,
            view=None if run.view_sent else run.view,
            reply=run.reply,
        )
        self.outbox.put(update)
        run.reply = None
        run.sent_history, run.sent_checks = len(history), len(run.checks)
        run.density_sent = run.view_sent = True


def _plain_points(points: Any) -> bool:
    """A query's points: a float32 array of at most MAX_QUERY_POINTS finite (x, y) rows."""
    plain = isinstance(points, np.ndarray) and points.dtype == np.float32 and points.ndim == 2
    return plain and points.shape[1] == 2 and len(points) <= MAX_QUERY_POINTS and np.isfinite(points).all()


def _error_update(session: str, seq: int, message: str, running: bool) -> Update:
    """A refused command: the server keeps what it had, with the message (and whether it trains)."""
    nothing: dict[str, Any] = dict(step=0, train_seconds=0.0, lr=0.0, progress=0.0, done=False, stopped=None)
    nothing |= dict(pause_reason=None, ahead=None, evaluating=False, sharing=0, rate=None, history_from=0)
    nothing |= dict(evaluations=(), checks=None, rollbacks=())
    return Update(session, seq, running=running, build_error=message, **nothing)


def worker_main(inbox: Any, outbox: Any, limits: HostLimits) -> None:
    """The worker process: apply commands, train, report; exit when told or when the server is gone."""
    torch.set_num_threads(1)  # one core per slot: these small models gain nothing from more
    # Below the server in the CPU's queue: with every core training, the server's page runs and
    # its event loop (which sends every page its updates) still get a core the moment they wake.
    os.nice(WORKER_NICENESS)
    # At exit a queue's feeder thread is joined, and it blocks for good on a full pipe: this process
    # holds the pipe's read end too, so a server gone does not end the write. Updates unsent at exit
    # have no reader anyway.
    outbox.cancel_join_thread()
    worker = Worker(outbox, limits, waiting=lambda: not inbox.empty())
    parent = multiprocessing.parent_process()
    while parent is None or parent.is_alive():
        for command in waiting_commands(inbox, block=not worker.busy):
            if command is None:
                return
            try:
                worker.handle(command)
            except MemoryError:  # the session's model is lost; the others on this slot go on
                worker.drop(command[1])
                outbox.put(_error_update(command[1], command[2], "the model ran out of memory", False))
        worker.work()


def waiting_commands(inbox: Any, block: bool) -> list[tuple | None]:
    """Every command waiting now; when idle, wait up to half a second for the first."""
    commands = []
    try:
        commands.append(inbox.get(timeout=0.5) if block else inbox.get_nowait())
        while True:
            commands.append(inbox.get_nowait())
    except queue.Empty:
        pass
    return commands

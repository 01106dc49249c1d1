"""The live engine on the server side: training slots in worker processes, and one handle per session.

    handle = scheduler().open()
    handle.build(RunConfig(model="nsf"))
    handle.run(True)
    ...                      # the worker trains; handle.snapshot is always one consistent state
    handle.close()

The server process never trains, so drawing a page never slows training and one model that
runs out of memory takes down only its slot's worker, which is restarted.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import queue
import sys
import threading
import time
import types
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from genviz.bundle import MAX_FILE_BYTES
from genviz.limits import HostLimits

if TYPE_CHECKING:  # the server starts its workers before it imports torch, so that both load at once
    import numpy as np
    import torch

    from genviz.config import RunConfig
    from genviz.metrics import Result
    from genviz.train import Evaluation
    from genviz.worker import DensityFrame, Reply, Update, ViewFrame

_LOG = logging.getLogger(__name__)
BUILD_TIMEOUT = 120.0  # a build waits for a worker that may still be starting
COMMAND_TIMEOUT = 10.0
RATE_WINDOW = 3.0  # seconds of updates behind the wall-clock steps/s
KEPT_REPLIES = 8  # answers to queries a handle keeps until they are collected
BUSY = "the training server is busy; try again in a moment"
LOST = "The training worker for this model stopped (it may have run out of memory); Reset to rebuild it."


@dataclass(frozen=True)
class Snapshot:
    """Everything a page shows about one session, as of one update from its worker."""

    seq: int = 0
    step: int = 0
    train_seconds: float = 0.0
    lr: float = 0.0
    progress: float = 0.0
    running: bool = False
    done: bool = False
    stopped: str | None = None
    pause_reason: str | None = None
    ahead: int | None = None
    evaluating: bool = False  # paused, with its full evaluation on its way
    sharing: int = 0
    rate: float | None = None
    wall_rate: float | None = None
    history: tuple[Evaluation, ...] = ()
    checks: tuple[tuple[int, Result], ...] = ()
    rollbacks: tuple[str, ...] = ()
    best_note: str | None = None  # a kept best state, in words (see `Trainer.best_note`)
    density: DensityFrame | None = None
    view: ViewFrame | None = None
    build_error: str | None = None

    @property
    def ready(self) -> bool:
        """A model has been built and evaluated at least once."""
        return bool(self.history)

    def merged(self, update: Update, wall_rate: float | None) -> Snapshot:
        if update.build_error is not None:
            return replace(self, seq=update.seq, running=update.running, build_error=update.build_error)
        return Snapshot(
            seq=update.seq,
            step=update.step,
            train_seconds=update.train_seconds,
            lr=update.lr,
            progress=update.progress,
            running=update.running,
            done=update.done,
            stopped=update.stopped,
            pause_reason=update.pause_reason,
            ahead=update.ahead,
            evaluating=update.evaluating,
            sharing=update.sharing,
            rate=update.rate,
            wall_rate=wall_rate if update.running else None,
            history=self.history[: update.history_from] + update.evaluations,
            checks=self.checks if update.checks is None else update.checks,
            rollbacks=update.rollbacks,
            best_note=update.best_note,
            density=update.density or (self.density if update.history_from else None),
            view=update.view or (self.view if update.history_from else None),
        )


class SessionHandle:
    """One browser session's model, which lives in a worker process. Safe to use from any thread."""

    def __init__(self, scheduler: Scheduler, session: str) -> None:
        self.scheduler = scheduler
        self.session = session
        self.slot: Slot | None = None
        self.snapshot = Snapshot()
        self.last_seen = time.monotonic()
        self._seq = 0
        self._watching: tuple[bool, tuple] | None = None
        self._steps: deque[tuple[float, int]] = deque()
        self._changed = threading.Condition()
        self._replies: dict[int, Reply] = {}  # query answers by command number, until collected

    # ---------------------------------------------------------------- commands
    def build(
        self, config: RunConfig, points: torch.Tensor | None = None, name: str | None = None
    ) -> str | None:
        """Build a fresh model (a new session, a rebuild or a Reset); returns why it failed, or None.
        A failed build keeps the model the session had."""
        self.scheduler.place(self)
        payload = (config, None if points is None else points.numpy(), name)
        seq = self._send("build", payload)
        if not self.wait(seq, BUILD_TIMEOUT):
            return "the training server is busy; try again in a moment"
        self._watching = None  # the new model needs to hear what the page shows
        return self.snapshot.build_error

    def configure(self, config: RunConfig) -> str | None:
        """Training settings that apply live (learning rate, batch size, schedule, budget); returns
        why they were refused (a batch the host cannot afford), or None."""
        if not self.wait(self._send("configure", (config,)), COMMAND_TIMEOUT):
            return "the training server is busy; try again in a moment"
        return self.snapshot.build_error

    def run(self, wanted: bool, reason: str | None = None) -> None:
        self.last_seen = time.monotonic()
        self.wait(self._send("run", (wanted, reason)), COMMAND_TIMEOUT)

    def step(self) -> None:
        self.wait(self._send("step", ()), COMMAND_TIMEOUT)

    def watch(self, overlay: bool, controls: dict[str, float]) -> Snapshot:
        """Called by each refresh of the page: a heartbeat, and what it shows; returns the snapshot."""
        self.last_seen = time.monotonic()
        wanted = (overlay, tuple(sorted(controls.items())))
        if wanted != self._watching:
            self._watching = wanted
            self._send("watch", wanted)
        return self.snapshot

    def ask_log_density(self, points: np.ndarray) -> int:
        """Ask for log q at (n, 2) float32 points without waiting; returns the number whose
        `answer` to collect. The worker answers between two training slices."""
        return self._send("log_density", (points,))

    def ask_samples(self, n: int, seed: int) -> int:
        """Ask for n samples of the model, drawn from a stream seeded with `seed`, without waiting."""
        return self._send("samples", (n, seed))

    def export(self) -> tuple[bytes | None, str | None]:
        """(the model file's bytes, None), or (None, why not): the worker packs its Trainer."""
        if self.slot is None:  # the worker died with the model
            return None, LOST
        seq = self._send("export", ())
        if not self.wait(seq, COMMAND_TIMEOUT):
            return None, BUSY
        reply = self.answer(seq)
        return (reply.payload, None) if reply is not None else (None, self.snapshot.build_error or BUSY)

    def restore(self, data: bytes) -> tuple[Reply | None, str | None]:
        """Replace the model by a model file's; (the worker's reply, None) or (None, why it was refused).
        The size is checked here, before the bytes travel; a refused file keeps the model the session had."""
        if len(data) > MAX_FILE_BYTES:
            size, cap = len(data) / 2**20, MAX_FILE_BYTES >> 20
            return None, f"the file is {size:.0f} MB; a model file may hold {cap} MB"
        self.scheduler.place(self)
        seq = self._send("restore", (data,))
        if not self.wait(seq, BUILD_TIMEOUT):
            return None, BUSY
        self._watching = None  # the new model needs to hear what the page shows
        reply = self.answer(seq)
        return (reply, None) if reply is not None else (None, self.snapshot.build_error or BUSY)

    def answer(self, seq: int) -> Reply | None:
        """The worker's answer to query `seq`, once it has come (then it is forgotten); else None."""
        with self._changed:
            return self._replies.pop(seq, None)

    def close(self) -> None:
        if self.slot is not None:
            self._send("close", ())
            self.scheduler.forget(self)

    @property
    def pending(self) -> bool:
        """A command sent that the worker has not answered yet (it is busy, or still starting)."""
        return self._seq > self.snapshot.seq

    def wait(self, seq: int, timeout: float) -> bool:
        """Until the worker has applied command `seq`; False on a timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.snapshot.seq >= seq, timeout)

    def _send(self, kind: str, payload: tuple) -> int:
        with self._changed:
            self._seq += 1
            seq = self._seq
        assert self.slot is not None, "build the model first"
        self.slot.send((kind, self.session, seq, payload))
        return seq

    # ---------------------------------------------------------------- updates
    def receive(self, update: Update) -> None:
        with self._changed:
            if update.reply is not None:
                self._replies[update.seq] = update.reply
                while len(self._replies) > KEPT_REPLIES:  # answers nobody collected
                    self._replies.pop(min(self._replies))
            self.snapshot = self.snapshot.merged(update, self._wall_rate(update))
            self._changed.notify_all()

    def lost(self) -> None:
        """The worker died: the model is gone, the page says so."""
        with self._changed:
            self.snapshot = replace(self.snapshot, running=False, build_error=LOST, seq=self._seq)
            self.slot = None
            self._changed.notify_all()

    def _wall_rate(self, update: Update) -> float | None:
        now = time.monotonic()
        if not update.running:
            self._steps.clear()
            return None
        self._steps.append((now, update.step))
        while len(self._steps) > 2 and now - self._steps[0][0] > RATE_WINDOW:
            self._steps.popleft()
        (t0, s0), (t1, s1) = self._steps[0], self._steps[-1]
        return (s1 - s0) / (t1 - t0) if t1 - t0 > 0.5 else None


class Slot:
    """One worker process and the thread that reads its updates. The process starts with the slot,
    or (`start=False`) when the first session is placed on it."""

    def __init__(self, scheduler: Scheduler, index: int, start: bool = True) -> None:
        self.scheduler = scheduler
        self.index = index
        # Sessions whose model lives here; weak, so that a dropped session's handle can be collected.
        self.handles: weakref.WeakValueDictionary[str, SessionHandle] = weakref.WeakValueDictionary()
        self.process: Any = None
        if start:
            self.start()

    def start(self) -> None:
        """Start the worker, unless it runs already."""
        if self.process is None:
            self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # fork is unsafe with threads (and CUDA)
        self.inbox, self.outbox = context.Queue(), context.Queue()
        self._census: queue.Queue[set[str]] = queue.Queue()
        limits = self.scheduler.limits
        self.process = context.Process(target=_worker, args=(self.inbox, self.outbox, limits), daemon=True)
        with _plain_main():
            self.process.start()
        # Only the worker writes updates. With this process's copy of the pipe's write end closed, a
        # worker killed half-way through an update ends the pipe (EOF) instead of leaving the reader
        # waiting forever for the rest of a message that will never come.
        self.outbox._writer.close()
        self.reader = threading.Thread(target=self._read, name=f"genviz-slot-{self.index}", daemon=True)
        self.reader.start()

    def send(self, command: tuple) -> None:
        if self.process is not None:  # a worker not started holds no model to command
            self.inbox.put(command)

    def _read(self) -> None:
        process, outbox = self.process, self.outbox
        while not self.scheduler.closed:
            try:
                update = outbox.get(timeout=1.0)
            except queue.Empty:
                if not process.is_alive():
                    return self._restart()
                continue
            except Exception as error:
                # The end of the pipe: the worker died, perhaps half-way through an update. Anything
                # else: an update this server cannot read. Either way its sessions are told, not frozen.
                if self.scheduler.closed:
                    return
                if not isinstance(error, EOFError):
                    _LOG.exception("training slot %d: unreadable update; restarting its worker", self.index)
                process.kill()
                process.join(timeout=5)
                return self._restart()
            if isinstance(update, tuple):  # ("census", sessions)
                self._census.put(set(update[1]))
                continue
            self._deliver(update)

    def _deliver(self, update: Update) -> None:
        # A method of its own, so that the reading loop holds no reference to a session's handle.
        handle = self.handles.get(update.session)
        if handle is not None:
            handle.receive(update)

    def _restart(self) -> None:
        """The worker died (out of memory, killed): its sessions lose their models; a fresh one starts."""
        if self.scheduler.closed:
            return
        for handle in list(self.handles.values()):
            handle.lost()
        self.handles.clear()
        self._start()

    def census(self, timeout: float = COMMAND_TIMEOUT) -> set[str]:
        """The sessions whose models this slot's worker holds now."""
        if self.process is None:
            return set()
        self.send(("census", "", 0, ()))
        return self._census.get(timeout=timeout)

    def stop(self) -> None:
        if self.process is None:
            return
        self.inbox.put(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()


class Scheduler:
    """A fixed number of training slots shared by every session of this server."""

    def __init__(self, limits: HostLimits | None = None) -> None:
        self.limits = limits or HostLimits.from_environment()
        self.closed = False
        self._lock = threading.Lock()
        # One worker starts now; the others when a session is first placed on them: a first
        # visitor's worker loads torch without two more processes doing the same on the same cores,
        # and a server used by one person holds one worker's memory (about 330 MB), not one per core.
        self.slots = [Slot(self, i, start=i == 0) for i in range(self.limits.training_slots)]
        self._handles: weakref.WeakSet[SessionHandle] = weakref.WeakSet()
        self._monitor = threading.Thread(target=self._watch_idle, name="genviz-idle", daemon=True)
        self._monitor.start()

    def open(self) -> SessionHandle:
        handle = SessionHandle(self, uuid.uuid4().hex)
        self._handles.add(handle)
        # The page's session state owns the handle: when Streamlit drops the session, its model goes.
        weakref.finalize(handle, _close_session, weakref.ref(self), handle.session)
        return handle

    def place(self, handle: SessionHandle) -> None:
        """Put the session on the slot with the fewest sessions (a rebuild may move it)."""
        with self._lock:
            current = handle.slot
            loads = [len(s.handles) - (s is current) for s in self.slots]
            best = self.slots[loads.index(min(loads))]
            if current is not None and current is not best and len(current.handles) - 1 <= loads[best.index]:
                best = current  # moving would not balance anything
            if best is not current:
                if current is not None:
                    current.send(("close", handle.session, 0, ()))
                    current.handles.pop(handle.session, None)
                best.handles[handle.session] = handle
                handle.slot = best
                best.start()

    def forget(self, handle: SessionHandle) -> None:
        with self._lock:
            if handle.slot is not None:
                handle.slot.handles.pop(handle.session, None)
                handle.slot = None

    def census(self, slot: Slot) -> set[str]:
        return slot.census()

    def running(self) -> int:
        return sum(1 for slot in self.slots for h in list(slot.handles.values()) if h.snapshot.running)

    def _watch_idle(self) -> None:
        """Pause a session whose page has stopped asking for updates."""
        while not self.closed:
            time.sleep(min(1.0, self.limits.idle_pause_seconds / 4))
            self._pause_idle()

    def _pause_idle(self) -> None:
        # A method of its own, so that the sleeping loop holds no reference to a session's handle.
        limit, now = self.limits.idle_pause_seconds, time.monotonic()
        for slot in self.slots:
            for handle in list(slot.handles.values()):
                if handle.snapshot.running and now - handle.last_seen > limit:
                    reason = f"Paused: this page stopped asking for updates for {limit:g} s."
                    slot.send(("run", handle.session, handle.snapshot.seq, (False, reason)))

    def shutdown(self) -> None:
        self.closed = True
        for slot in self.slots:
            slot.stop()


def _worker(inbox: Any, outbox: Any, limits: HostLimits) -> None:
    from genviz.worker import worker_main  # in the worker process: torch and the models load here

    worker_main(inbox, outbox, limits)


def _close_session(scheduler_ref: weakref.ref, session: str) -> None:
    scheduler = scheduler_ref()
    if scheduler is None or scheduler.closed:
        return
    for slot in scheduler.slots:  # its entry in the slot's weak table may already be gone
        slot.handles.pop(session, None)
        slot.send(("close", session, 0, ()))


@contextlib.contextmanager
def _plain_main() -> Iterator[None]:
    """Start a worker without re-running the page: a spawned process re-imports `__main__`, and
    while Streamlit runs a page, `__main__` is that page's script."""
    with _scheduler_lock_for_start:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


_scheduler_lock_for_start = threading.Lock()
_scheduler: Scheduler | None = None
_scheduler_lock = threading.Lock()


def scheduler() -> Scheduler:
    """This server's scheduler, started on first use and stopped when the process exits."""
    global _scheduler
    with _scheduler_lock:
        if _scheduler is None or _scheduler.closed:
            _scheduler = Scheduler()
            atexit.register(_scheduler.shutdown)
        return _scheduler


__all__ = ["Scheduler", "SessionHandle", "Slot", "Snapshot", "scheduler"]

"""Live parts of a page that poll only while there is something new to show.

A page's live parts are fragments with `run_every`; their rates are set where they are declared.
So they are declared inside one keyed fragment, the *group*:

    group("live", draw_parts)          # draw_parts declares: part(draw_numbers, 0.12), ...

- The page's buttons rerun the group from their callbacks (`rerun_group` as their `on_click`, or
  `st.rerun(key)` inside one), so a click starts or stops the polling at once.
- The group's slow heartbeat reruns it every `HEARTBEAT` seconds, so the polling stops on its own
  soon after a run ends by itself (a step budget, a host's cap, an evaluation that arrived).

Every widget of a live page (a button, a checkbox, a slider) goes in the group, never in a part.
A part that stops or starts polling is a new fragment, and Streamlit drops a click on a widget
whose fragment has just been replaced (the browser still names the old one): a Train click in the
second the first evaluation arrives would be lost. The group's key keeps its identity.

Every interval stretches when the server's drawing falls behind (`DrawingLoad`): the parts' runs
share one interpreter, so a classroom of pages polling at their quiet rates would queue runs
faster than they finish. Instead each page redraws less often. And every run waits its turn at a
server-wide gate (`RunGate`) before its session's next run may start, so that the server sends
each run's output before the next one replaces it, whatever the browsers ask.

Nothing here reruns the whole page. In Streamlit a whole-page rerun requested from inside a
fragment (`st.rerun(scope="app")` in a fragment or its callbacks) races with the fragments' own
timed reruns: under load the browser receives elements for a page layout it no longer has ("Bad
delta path index"), closes its connection and shows a blank page.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx

from genviz.limits import HostLimits

HEARTBEAT = 2.0  # seconds: how soon the parts stop polling after a run ends by itself
STRETCH_SECONDS = 1.0  # how fast the drawing load's stretch relaxes once the load falls


class DrawingLoad:
    """How busy the server's drawing is, and how much to stretch every live page's intervals.

    Two rates, each decaying over `window` seconds: the live parts' CPU (each run's own thread
    time, so waiting for the interpreter lock is not counted) and the runs started per second.
    The second matters as much: Streamlit starts a thread for each run, and its event loop, which
    also sends every page its updates, waits for each start while the other runs hold the lock; at
    about 50 runs a second on two cores the loop fell behind and every page froze. The stretch is
    the factor that brings both rates at the unstretched intervals down to their targets (`cores`,
    `runs` per second), smoothed, between 1 and `most`, in steps of 2^¼ so that the browsers'
    timers are not replaced on every run."""

    def __init__(
        self,
        cores: float = 0.5,
        runs: float = 30.0,
        window: float = 3.0,
        most: float = 8.0,
        start: float | None = None,  # the clock's reading now (a simulation's own clock)
    ) -> None:
        self.target, self.runs_target, self.window, self.most = cores, runs, window, most
        self._lock = threading.Lock()
        self._rate = 0.0  # CPU seconds per second, at the current stretch
        self._runs = 0.0  # runs started per second, at the current stretch
        self._at = time.monotonic() if start is None else start
        self._stretch = 1.0
        self._local = threading.local()

    def record(self, cpu_seconds: float, now: float | None = None, *, runs: int = 0) -> None:
        """A run's CPU seconds once it ends, or `runs` started (with no CPU yet)."""
        with self._lock:
            self._advance(time.monotonic() if now is None else now, cpu_seconds, runs)

    def _advance(self, now: float, cpu_seconds: float = 0.0, runs: int = 0) -> None:
        """Decay both rates to `now`, add a run's figures, and move the stretch toward what they ask for."""
        elapsed = max(0.0, now - self._at)
        decay = math.exp(-elapsed / self.window)
        self._rate = self._rate * decay + cpu_seconds / self.window
        self._runs = self._runs * decay + runs / self.window
        self._at = max(self._at, now)
        demand = max(self._rate / self.target, self._runs / self.runs_target if self.runs_target else 0.0)
        wanted = min(self.most, max(1.0, demand * self._stretch))
        if wanted > self._stretch:  # a burst: stretch at once, before its runs pile up
            self._stretch = wanted
        else:  # relax over about a second, by time, so it relaxes even when no run comes
            self._stretch += (wanted - self._stretch) * (1.0 - math.exp(-elapsed / STRETCH_SECONDS))

    def stretch(self, now: float | None = None) -> float:
        """The factor on every interval now, in steps of 2^¼."""
        with self._lock:
            self._advance(time.monotonic() if now is None else now)
            return 2.0 ** (round(4 * math.log2(max(1.0, self._stretch))) / 4)

    def cores(self, now: float | None = None) -> float:
        """The drawing's current rate, in cores."""
        with self._lock:
            self._advance(time.monotonic() if now is None else now)
            return self._rate

    def measured(self, draw: Callable[[], None]) -> Callable[[], None]:
        """`draw`, its CPU time recorded; runs nested in a measured one (a group's parts) count once."""

        def run() -> None:
            if getattr(self._local, "inside", False):
                return draw()
            self.record(0.0, runs=1)
            self._local.inside, start = True, time.thread_time()
            try:
                draw()
            finally:
                self._local.inside = False
                self.record(time.thread_time() - start)
            TURNS.after_run()  # not on an exception: Streamlit's rerun requests must pass at once

        return run


class RunGate:
    """Spaces the live parts' runs over the whole server: at most `rate` a second, in bursts of `burst`.

    The browsers' timers cannot be trusted to slow down in time: a new interval reaches a browser
    only in a message, and Streamlit drops a fragment's unsent messages when its next run starts.
    When runs arrive faster than the event loop flushes them (twelve pages just after Train),
    every run's output is dropped before it is sent, no page hears of its longer interval, and
    the server spins while every page freezes. So each run, once drawn, waits for its turn
    (`after_run`): its session's next run cannot start before, and the event loop sends the
    output meanwhile. A session has at most one run at a time, so with n sessions a wait is at
    most n / rate seconds; the requests that come meanwhile are merged by Streamlit into one."""

    def __init__(self, rate: float, burst: float = 10.0, start: float | None = None) -> None:
        self.rate, self.burst = rate, burst
        self._lock = threading.Lock()
        self._tokens = burst
        self._at = time.monotonic() if start is None else start

    def wait(self, now: float | None = None) -> float:
        """Take one run's turn: the seconds its session waits before its next run may start."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic() if now is None else now
            self._tokens = min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
            self._at = max(self._at, now)
            self._tokens -= 1.0  # below zero: turns promised to the runs already waiting
            return max(0.0, -self._tokens / self.rate)

    def after_run(self) -> None:
        time.sleep(self.wait())


_HOST = HostLimits.from_environment()
DRAWING = DrawingLoad(runs=_HOST.page_runs_per_second)  # the server's, for all pages
TURNS = RunGate(rate=_HOST.page_runs_per_second)


def stretched(seconds: float | None) -> float | None:
    """A polling interval as the server's drawing load allows."""
    return None if seconds is None else seconds * DRAWING.stretch()


def group(key: str, draw: Callable[[], None]) -> None:
    """Draw `draw`, which declares the page's parts, as a keyed fragment with a heartbeat."""
    st.fragment(run_every=stretched(HEARTBEAT), key=key)(DRAWING.measured(draw))()


def part(draw: Callable[[], None], run_every: float | None) -> None:
    """Declare and draw one part of a group, polling every `run_every` seconds (stretched under
    load, see `DrawingLoad`) or not at all.

    Streamlit names a fragment after its function and keeps the browser's timer of a fragment
    declared again under the same name, even without `run_every`. So a polling part and a still
    one get different names: when the group's rerun declares the other one, the old fragment is
    dropped and the browser told to stop its timer."""
    named = _named(DRAWING.measured(draw), draw, polling=run_every is not None)
    st.fragment(run_every=stretched(run_every))(named)()


def rerun_group(key: str, action: Callable[[], None]) -> Callable[[], None]:
    """A button callback: do `action`, then rerun the group `key` (its rates follow the new state).

    Declared while the group draws its buttons. The browser can send a click's trigger two or three
    times within a few milliseconds: with the click's own rerun of the group, with a part's timed
    rerun that left at the same moment, and with the group's own timed rerun (seen 17 ms apart,
    both in runs of the group). Each would act (two steps for one Step), so a callback runs only
    in a rerun of the whole page or of its own group, and only once in `SAME_CLICK_SECONDS`."""
    own = _drawing_fragment()

    def callback() -> None:
        running = _fragments_this_run()
        if own is not None and running and own not in running:
            return  # the same click, delivered again with another fragment's rerun
        if not first_delivery(st.session_state, key):
            return  # the same click, delivered again with the group's timed rerun
        action()
        st.rerun(key)

    return callback


SAME_CLICK_SECONDS = 0.1  # far below a person's fastest clicks (about 0.15 s apart), far above a repeat
CLICKS_KEY = "genviz.last_click"


def first_delivery(
    state: Any, group: str, now: float | None = None, window: float = SAME_CLICK_SECONDS
) -> bool:
    """False for the same click delivered again: within `window` seconds of the last action of a
    group (kept in the session's `state`), a click is the same one."""
    now = time.monotonic() if now is None else now
    last = state.get(f"{CLICKS_KEY}.{group}")
    state[f"{CLICKS_KEY}.{group}"] = now
    return last is None or now - last >= window


def _drawing_fragment() -> str | None:
    """The fragment being drawn now (Streamlit 1.67's thread state; None outside a fragment)."""
    return ThreadState.get().fragment_id


def _fragments_this_run() -> list[str]:
    ctx = get_script_run_ctx()
    return list(ctx.fragment_ids_this_run or []) if ctx is not None else []


def _named(run: Callable[[], None], draw: Callable[[], None], polling: bool) -> Callable[[], None]:
    """`run` under a name taken from `draw`, which tells a polling part from a still one."""

    def named() -> None:
        run()

    named.__module__ = draw.__module__
    named.__qualname__ = f"{draw.__qualname__}.{'polling' if polling else 'still'}"
    return named

"""N visitors of one shared `streamlit run app.py`, each a websocket client instead of a browser.

In a classroom every student's browser runs on their own machine; on this one, a dozen Chromium tabs
(`benchmarks.live --visitors`) would take the CPUs from the server they measure. Here each visitor
is a light asyncio client that speaks Streamlit's own protocol on `/_stcore/stream`, as the
browser's app does: it sends a `rerun_script` BackMsg with the page's address, keeps the widget
values the server last gave, runs a timer for every `auto_rerun` the page's live fragments ask for
(replacing and dropping timers as the browser does), keeps the browser's cache of large elements
(so the server may send a reference instead of an element it sent before), and clicks a button by
sending its trigger with its fragment's rerun.

It starts its own server on a free loopback port, opens N sessions of the Explorer through the
same link as `benchmarks.live`, clicks Train in each, trains a warm-up, then measures per session
over the window: the training rate shown by the "Step" metric card, refreshes of the density chart
per second (deltas carrying the plotly chart keyed `model_density`, with new content), bytes
received per second, the longest silence (no message from the server at all), and errors
(exception elements and error boxes, compile errors, cache misses, disconnects); and per session,
the time from its Train click to the first higher step shown. Also the server's memory with its
training workers, idle and at its peak, the CPU used in the window by the server's process, by its
training workers and by the visitors themselves, the fairness (max/min steps/s across sessions),
the bare Trainer's rate for the same configuration (measured in its own process before the
sessions open), and the load average.

    python -m benchmarks.visitors --visitors 12 --model gmm --seconds 20
    python -m benchmarks.visitors --visitors 2 --model nsf --target moons --json visitors.json
    python -m benchmarks.visitors --app /path/to/other/checkout --visitors 4   # serve another tree

Figures are wall-clock rates on a shared machine: read them with the load average printed beside.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ContextInfo
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.runtime.state.common import user_key_from_element_id
from websockets.typing import Subprotocol

from benchmarks.live import (
    PAUSE_LABEL,
    ROOT,
    STEP_LABEL,
    TRAIN_LABEL,
    WARM_UP_SECONDS,
    Server,
    bare_rate,
    descendants,
    is_density_key,
    kb,
    link,
    rate,
    show,
    step_rate,
)

STREAM_PATH = "/_stcore/stream"  # Streamlit's websocket endpoint
HEALTH_PATH = "/_stcore/health"  # answers with the XSRF cookie the browser then hands back
XSRF_COOKIE = "_streamlit_xsrf"
# The elements a chart is drawn in: the live chart component, and plotly charts on older pages
CHART_ELEMENTS = ("bidi_component", "plotly_chart")
SUBPROTOCOL = "streamlit"  # the subprotocol the server selects; the XSRF token rides second in the list
CONTEXT = ContextInfo(
    timezone="UTC", timezone_offset=0, locale="en-US", is_embedded=False, color_scheme="light"
)
RECENT_FIGURES = 8  # a density chart counts as refreshed when its content is not among the last few
READY_TIMEOUT = 180.0  # seconds for every session to show its Step card, density chart and Train
TRAIN_TIMEOUT = 60.0  # seconds a session may take to show a higher step after its Train click
PAUSE_TIMEOUT = 10.0  # seconds for Train to come back after the closing Pause
CLOSE_TIMEOUT = 5.0
FINISHED = {
    ForwardMsg.FINISHED_SUCCESSFULLY,
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
}
DIGITS = re.compile(r"[^0-9]")
SHARING = re.compile(r"(\d+) sessions take turns")  # the progress line, when sessions share a slot


# ---------------------------------------------------------------------------------- messages
def query_of(url: str) -> str:
    """The query string a page at `url` sends (no leading "?")."""
    return urllib.parse.urlsplit(url).query


def rerun_message(
    query_string: str,
    page_script_hash: str,
    widgets: Iterable[WidgetState],
    fragment_id: str = "",
    auto: bool = False,
    cached: Iterable[str] = (),
    url: str = "",
) -> BackMsg:
    """A `rerun_script` BackMsg as the browser sends it: the page, every widget's value, the
    fragment to rerun (none: the whole page), and the hashes of the elements it has cached."""
    msg = BackMsg()
    state = msg.rerun_script
    state.query_string = query_string
    state.page_script_hash = page_script_hash
    state.widget_states.widgets.extend(widgets)
    state.fragment_id = fragment_id
    state.is_auto_rerun = auto
    state.cached_message_hashes.extend(cached)
    state.context_info.CopyFrom(CONTEXT)
    state.context_info.url = url
    return msg


def trigger(widget_id: str) -> WidgetState:
    """A button's click: its trigger, sent once with the rerun it starts."""
    return WidgetState(id=widget_id, trigger_value=True)


def _chosen(indices: Iterable[float], options: list[str]) -> list[str]:
    return [options[int(i)] for i in indices if 0 <= int(i) < len(options)]


def _present(widget: Any, name: str) -> bool:
    """Whether an optional field is set (a widget whose value is None leaves it unset)."""
    return widget.HasField(name) if widget.DESCRIPTOR.fields_by_name[name].has_presence else True


def _bool(state: WidgetState, widget: Any, setting: bool) -> bool:
    state.bool_value = widget.value if setting else widget.default
    return True


def _scalar(field: str) -> Any:
    """A setter for a widget whose value is one number or one string, sent in `field`."""

    def setter(state: WidgetState, widget: Any, setting: bool) -> bool:
        name = "value" if setting else "default"
        if not _present(widget, name):
            return False
        setattr(state, field, getattr(widget, name))
        return True

    return setter


_number, _text = _scalar("double_value"), _scalar("string_value")


def _choice(state: WidgetState, widget: Any, setting: bool) -> bool:
    if setting:
        if not widget.HasField("raw_value"):
            return False
        state.string_value = widget.raw_value
        return True
    chosen = _chosen([widget.default], list(widget.options)) if widget.HasField("default") else []
    if not chosen:
        return False
    state.string_value = chosen[0]
    return True


def _choices(state: WidgetState, widget: Any, setting: bool) -> bool:
    options = [o if isinstance(o, str) else o.content for o in widget.options]
    state.string_array_value.data.extend(widget.raw_values if setting else _chosen(widget.default, options))
    return True


def _slider(state: WidgetState, widget: Any, setting: bool) -> bool:
    if widget.options:  # a select_slider: the labels of its options
        chosen = widget.raw_value if setting else _chosen(widget.default, list(widget.options))
        state.string_array_value.data.extend(chosen)
    else:
        state.double_array_value.data.extend(widget.value if setting else widget.default)
    return True


# How the browser sends each kind of widget's value (Streamlit's `value_type` of that widget).
# Buttons send only their click's trigger; kinds not listed here are left to the server's state.
WIDGET_VALUES = {
    "checkbox": _bool,
    "number_input": _number,
    "text_input": _text,
    "text_area": _text,
    "color_picker": _text,
    "selectbox": _choice,
    "radio": _choice,
    "multiselect": _choices,
    "button_group": _choices,
    "slider": _slider,
}


def widget_value(element: Element, before: WidgetState | None) -> WidgetState | None:
    """The value the browser holds for a widget the server just drew: the value the server sets
    (`set_value`), else the one held already, else the widget's default. None for an element that
    is no widget kept here."""
    kind = element.WhichOneof("type")
    fill = WIDGET_VALUES.get(kind or "")
    if fill is None:
        return None
    widget = getattr(element, kind)
    setting = widget.set_value
    if before is not None and not setting:
        return before
    state = WidgetState(id=widget.id)
    return state if fill(state, widget, setting) else None


def step_shown(element: Element) -> int | None:
    """The step count of the "Step" metric card, or None for any other element."""
    if element.WhichOneof("type") != "metric" or element.metric.label != STEP_LABEL:
        return None
    digits = DIGITS.sub("", element.metric.body)
    return int(digits) if digits else None


def is_density_chart(msg: ForwardMsg) -> bool:
    """A delta that draws the density chart: a chart (the page's live chart component, or a plotly
    chart on older pages) whose element key is a density key."""
    if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
        return False
    element = msg.delta.new_element
    kind = element.WhichOneof("type")
    if kind not in CHART_ELEMENTS:
        return False
    return is_density_key(user_key_from_element_id(getattr(element, kind).id) or "")


# ------------------------------------------------------------------------------------- cache
@dataclass
class CacheEntry:
    payload: bytes
    run: int
    fragment_id: str


@dataclass
class MessageCache:
    """The browser's cache of large elements: the server sends a reference (`ref_hash`) instead
    of an element whose hash the client listed in its last rerun. An entry expires when it was
    last used more than `max_age` finished runs ago; a fragment's run ages only that fragment's."""

    max_age: int = 2
    run: int = 0
    entries: dict[str, CacheEntry] = field(default_factory=dict)

    def hashes(self) -> list[str]:
        return list(self.entries)

    def resolve(self, msg: ForwardMsg, payload: bytes) -> ForwardMsg | None:
        """The message itself, or the cached one a reference points to (with the reference's
        metadata); None for a reference to an element not cached."""
        if msg.WhichOneof("type") == "ref_hash":
            entry = self.entries.get(msg.ref_hash)
            if entry is None:
                return None
            entry.run = self.run
            cached = ForwardMsg()
            cached.ParseFromString(entry.payload)
            cached.metadata.CopyFrom(msg.metadata)
            return cached
        if msg.metadata.cacheable and msg.hash:
            entry = self.entries.get(msg.hash)
            if entry is not None:
                entry.run = self.run
            else:
                self.entries[msg.hash] = CacheEntry(payload, self.run, msg.delta.fragment_id)
        return msg

    def finished(self, fragment_ids: list[str]) -> None:
        self.run += 1
        for key, entry in list(self.entries.items()):
            if fragment_ids and entry.fragment_id not in fragment_ids:
                continue
            if self.run - entry.run > self.max_age:
                del self.entries[key]


# ----------------------------------------------------------------------------------- visitor
@dataclass
class Button:
    label: str
    fragment_id: str  # the fragment that draws it: its click reruns that fragment


@dataclass
class Log:
    """What one session received: (time, step) changes, density charts, frame sizes, and each
    distinct error with how often it came (an error box is drawn again with every rerun)."""

    steps: list[tuple[float, int]] = field(default_factory=list)
    charts: list[tuple[float, bool]] = field(default_factory=list)  # (time, new content)
    frames: list[tuple[float, int]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    reruns_sent: int = 0
    progress: str = ""  # the progress bar's last line
    clicked: tuple[float, int] | None = None  # (time, step shown) of the Train click
    trained: float | None = None  # when a step above the one at the click was first shown

    def step_shown(self, now: float, step: int) -> None:
        if self.steps and self.steps[-1][1] == step:
            return
        self.steps.append((now, step))
        if self.clicked is not None and self.trained is None and step > self.clicked[1]:
            self.trained = now

    def described_errors(self) -> list[str]:
        return [f"{text} (×{n})" if n > 1 else text for text, n in self.errors.items()]


class Visitor:
    """One session of the page over Streamlit's websocket, behaving as the browser's app does."""

    def __init__(self, server_url: str, page_url: str) -> None:
        self.server_url = server_url
        self.page_url = page_url
        self.query_string = query_of(page_url)
        self.page_script_hash = ""
        self.widgets: dict[str, WidgetState] = {}  # widget id -> the value sent with every rerun
        self.buttons: dict[str, Button] = {}  # widget id -> the button drawn last under that id
        self.drawn_in: dict[str, str] = {}  # widget id -> the fragment drawing it ("" outside any)
        self.seen_this_run: set[str] = set()
        self.fragment_ids: list[str] = []  # of the run in progress; empty for a whole-page run
        self.timers: dict[str, tuple[float, asyncio.Task[None]]] = {}
        self.cache = MessageCache()
        self.recent: deque[str] = deque(maxlen=RECENT_FIGURES)
        self.log = Log()
        self.changed = asyncio.Event()  # set whenever something the waits look at may have changed
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.closing = False

    # ---- connection
    async def open(self) -> None:
        self.ws = await open_stream(self.server_url)
        self.reader = asyncio.create_task(self._read())
        await self.rerun()

    async def close(self) -> None:
        self.closing = True
        self._cancel_timers(list(self.timers))
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), CLOSE_TIMEOUT)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader

    async def rerun(
        self, fragment_id: str = "", auto: bool = False, extra: Iterable[WidgetState] = ()
    ) -> None:
        widgets = [*self.widgets.values(), *extra]
        msg = rerun_message(
            self.query_string,
            self.page_script_hash,
            widgets,
            fragment_id=fragment_id,
            auto=auto,
            cached=self.cache.hashes(),
            url=self.page_url,
        )
        try:
            await self.ws.send(msg.SerializeToString())
            self.log.reruns_sent += 1
        except websockets.ConnectionClosed:
            pass  # the reader reports the disconnect

    def button(self, label: str) -> tuple[str, Button] | None:
        """The button named exactly `label` ("Train" is not "Help for Train samples")."""
        return next(((i, b) for i, b in self.buttons.items() if b.label == label), None)

    async def click(self, label: str) -> None:
        found = self.button(label)
        if found is None:
            raise RuntimeError(f"no {label!r} button on the page")
        widget_id, button = found
        await self.rerun(button.fragment_id, extra=[trigger(widget_id)])

    def error(self, text: str) -> None:
        self.log.errors[text] += 1

    # ---- what the server sends
    async def _read(self) -> None:
        try:
            async for payload in self.ws:
                data = payload if isinstance(payload, bytes) else payload.encode()
                self.received(data, time.perf_counter())
            if not self.closing:
                self.error(f"disconnected by the server: {self.ws.close_code} {self.ws.close_reason}")
        except websockets.ConnectionClosed as closed:
            if not self.closing:
                self.error(f"disconnected: {closed}")
        except Exception as error:  # a message this client cannot read: an error of the run
            self.error(f"client error: {error!r}")
        finally:
            self.changed.set()

    def received(self, payload: bytes, now: float) -> None:
        self.log.frames.append((now, len(payload)))
        raw = ForwardMsg()
        raw.ParseFromString(payload)
        msg = self.cache.resolve(raw, payload)
        if msg is None:
            self.error(f"cache miss for {raw.ref_hash}")
            return
        kind = msg.WhichOneof("type")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(msg, now)
        self.changed.set()

    def _on_new_session(self, msg: ForwardMsg, now: float) -> None:
        self.page_script_hash = msg.new_session.page_script_hash
        self.cache.max_age = msg.new_session.config.max_cached_message_age or self.cache.max_age
        self.fragment_ids = list(msg.metadata.run.fragment_ids)
        self.seen_this_run = set()
        if not self.fragment_ids:
            self._cancel_timers(list(self.timers))  # a whole-page run: every timer is declared again

    def _on_page_info_changed(self, msg: ForwardMsg, now: float) -> None:
        self.query_string = msg.page_info_changed.query_string

    def _on_auto_rerun(self, msg: ForwardMsg, now: float) -> None:
        fragment_id, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
        if not fragment_id:
            return  # a page-wide timer: none of this app's pages sets one
        current = self.timers.get(fragment_id)
        if current is not None and current[0] == interval:
            return  # declared again with the same interval: the countdown goes on
        self._cancel_timers([fragment_id])
        if interval > 0:
            self.timers[fragment_id] = (interval, asyncio.create_task(self._tick(fragment_id, interval)))

    def _on_stop_auto_rerun(self, msg: ForwardMsg, now: float) -> None:
        self._cancel_timers(list(msg.stop_auto_rerun.fragment_ids))

    def _on_script_finished(self, msg: ForwardMsg, now: float) -> None:
        status = msg.script_finished
        if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
            self.error("script finished with a compile error")
        if status in FINISHED:
            self._drop_stale_widgets()
            self.cache.finished(self.fragment_ids)

    def _on_session_event(self, msg: ForwardMsg, now: float) -> None:
        if msg.session_event.WhichOneof("type") == "script_compilation_exception":
            error = msg.session_event.script_compilation_exception
            self.error(f"compile error: {error.type}: {error.message[:200]}")

    def _on_page_not_found(self, msg: ForwardMsg, now: float) -> None:
        self.error(f"page not found: {msg.page_not_found.page_name!r}")

    def _on_delta(self, msg: ForwardMsg, now: float) -> None:
        if msg.delta.WhichOneof("type") != "new_element":
            return
        element = msg.delta.new_element
        kind = element.WhichOneof("type")
        if kind is None:
            return
        widget_id = getattr(getattr(element, kind), "id", "")
        if widget_id:
            self.drawn_in[widget_id] = msg.delta.fragment_id
            self.seen_this_run.add(widget_id)
        if kind == "exception" and not element.exception.is_warning:
            self.error(f"exception shown: {element.exception.type}: {element.exception.message[:200]}")
        elif kind == "alert" and element.alert.format == Alert.ERROR:
            self.error(f"error box shown: {element.alert.body[:200]}")
        elif kind == "button":
            self.buttons[widget_id] = Button(element.button.label, msg.delta.fragment_id)
        elif kind == "progress":
            self.log.progress = element.progress.text
        elif kind == "metric":
            step = step_shown(element)
            if step is not None:
                self.log.step_shown(now, step)
        elif is_density_chart(msg):
            new = msg.hash not in self.recent
            if new:
                self.recent.append(msg.hash)
            self.log.charts.append((now, new))
        state = widget_value(element, self.widgets.get(widget_id))
        if state is not None:
            self.widgets[widget_id] = state

    def _drop_stale_widgets(self) -> None:
        """Forget the widgets a finished run did not draw again: all of them after a whole-page
        run, those of the fragments it reran after a fragment's run."""
        for widget_id in list(self.drawn_in):
            if widget_id in self.seen_this_run:
                continue
            if not self.fragment_ids or self.drawn_in[widget_id] in self.fragment_ids:
                del self.drawn_in[widget_id]
                self.widgets.pop(widget_id, None)
                self.buttons.pop(widget_id, None)

    # ---- fragment timers
    async def _tick(self, fragment_id: str, interval: float) -> None:
        next_at = time.monotonic() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + interval, time.monotonic())  # late ticks are not made up for
            if self.closing:
                return
            await self.rerun(fragment_id, auto=True)

    def _cancel_timers(self, fragment_ids: list[str]) -> None:
        for fragment_id in fragment_ids:
            entry = self.timers.pop(fragment_id, None)
            if entry is not None:
                entry[1].cancel()

    # ---- waiting for the page
    def step(self) -> int | None:
        return self.log.steps[-1][1] if self.log.steps else None

    async def until(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if self.reader is not None and self.reader.done():
                raise RuntimeError(
                    f"the connection closed while waiting for {what}: {self.log.described_errors()}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {what} within {timeout:.0f} s")
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))

    async def ready(self) -> None:
        """Wait for the Step card, the density chart and the Train button."""
        await self.until(
            lambda: self.step() is not None and self.log.charts and self.button(TRAIN_LABEL) is not None,
            READY_TIMEOUT,
            "Step card, density chart and Train button",
        )

    async def start_training(self) -> None:
        """Click Train, and wait (a while) for a higher step: a session the server is slow to serve
        is measured all the same, and its wait is in its figures."""
        self.log.clicked = (time.perf_counter(), self.step() or 0)
        await self.click(TRAIN_LABEL)
        with contextlib.suppress(TimeoutError):
            await self.until(lambda: self.log.trained is not None, TRAIN_TIMEOUT, "a higher step")

    async def pause(self) -> None:
        """Click Pause when the page shows it, and wait for Train to come back."""
        if self.button(PAUSE_LABEL) is None:
            return
        await self.click(PAUSE_LABEL)
        with contextlib.suppress(TimeoutError, RuntimeError):
            await self.until(lambda: self.button(TRAIN_LABEL) is not None, PAUSE_TIMEOUT, "Train after Pause")


async def open_stream(server_url: str) -> Any:
    """A session's websocket to the server, opened as the browser's app opens it (its XSRF token
    riding in the subprotocols where the server sets one)."""
    cookie = await asyncio.to_thread(xsrf_cookie, server_url)
    headers = {"Origin": server_url}
    protocols = [Subprotocol(SUBPROTOCOL)]
    if cookie:
        headers["Cookie"] = f"{XSRF_COOKIE}={cookie}"
        protocols.append(Subprotocol(cookie))
    return await websockets.connect(
        "ws" + server_url.removeprefix("http") + STREAM_PATH,
        subprotocols=protocols,
        additional_headers=headers,
        max_size=None,
        ping_interval=None,  # a browser sends no pings; the server's own are answered
        open_timeout=60,
    )


def xsrf_cookie(server_url: str) -> str | None:
    """The XSRF cookie the health check sets (the browser's first request sets it the same way)."""
    with urllib.request.urlopen(server_url + HEALTH_PATH, timeout=10) as reply:
        for header in reply.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            if name.strip() == XSRF_COOKIE:
                return rest.split(";", 1)[0]
    return None


# ------------------------------------------------------------------------------- measurement
@dataclass
class SessionFigures:
    steps_per_s: float | None
    refreshes_per_s: float
    charts_per_s: float  # density chart deltas, new content or not
    received_per_s: float  # bytes
    first_step: int | None
    last_step: int | None
    reruns_sent: int
    train_latency_s: float | None  # from the Train click to the first higher step shown
    longest_silence_s: float  # the longest time in the window without a message from the server
    progress: str  # the progress line last shown
    slot_shared_by: int  # sessions taking turns on this session's training slot, as that line says
    errors: list[str]


@dataclass
class VisitorsFigures:
    model: str
    target: str
    visitors: int
    seconds: float
    bare_rate: float
    rates: list[float | None]
    fairness: float | None
    refreshes_per_s: list[float]
    received_per_s: list[float]
    rss_idle_mb: float
    rss_peak_mb: float
    client_cpu: float  # the visitors' own CPU use, in cores
    server_cpu: float  # the server process's, in cores
    workers_cpu: float  # its training workers', in cores
    errors: int
    server_log_errors: list[str]
    sessions: list[SessionFigures]


def window_figures(log: Log, start: float, end: float) -> SessionFigures:
    """One session's figures over [start, end] (perf_counter seconds)."""
    seconds = end - start
    changes = [(t * 1000, s) for t, s in log.steps if start <= t <= end]
    before = [s for t, s in log.steps if t < start]
    opened = [start * 1000, before[-1]] if before else None
    shown = changes[-1] if changes else ([start * 1000, before[-1]] if before else None)
    seen = {"steps": changes, "last_step": shown, "now": end * 1000}
    charts = [new for t, new in log.charts if start <= t <= end]
    received = sum(size for t, size in log.frames if start <= t <= end)
    return SessionFigures(
        steps_per_s=step_rate(opened, seen),
        refreshes_per_s=sum(charts) / seconds,
        charts_per_s=len(charts) / seconds,
        received_per_s=received / seconds,
        first_step=opened[1] if opened else None,
        last_step=shown[1] if shown else None,
        reruns_sent=log.reruns_sent,
        train_latency_s=log.trained - log.clicked[0] if log.trained and log.clicked else None,
        longest_silence_s=longest_gap([t for t, _ in log.frames], start, end),
        progress=log.progress,
        slot_shared_by=int(shared.group(1)) if (shared := SHARING.search(log.progress)) else 1,
        errors=log.described_errors(),
    )


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] with none of `times` in it."""
    inside = [start, *(t for t in times if start < t < end), end]
    return max(b - a for a, b in zip(inside, inside[1:], strict=False))


def cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU seconds used so far by these processes (those gone count nothing)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def fairness_of(rates: list[float | None]) -> float | None:
    known = [r for r in rates if r is not None]
    if not known or len(known) < len(rates) or max(known) <= 0:
        return None
    return max(known) / min(known) if min(known) > 0 else float("inf")


def server_log_errors(server: Server, limit: int = 20) -> list[str]:
    """Lines of the server's stderr that report an error or a traceback."""
    server.log.flush()
    server.log.seek(0)
    text = server.log.read().decode(errors="replace")
    marks = ("Traceback", "Error", "ERROR", "Exception")
    return [line.strip()[:300] for line in text.splitlines() if any(m in line for m in marks)][:limit]


async def each(visitors: list[Visitor], step: Any, what: str) -> list[Visitor]:
    """Run `step` in every session at once; those where it failed keep the failure as an error and
    are left out of the next steps."""
    results = await asyncio.gather(*(step(v) for v in visitors), return_exceptions=True)
    for visitor, result in zip(visitors, results, strict=True):
        if isinstance(result, BaseException):
            visitor.error(f"{what}: {type(result).__name__}: {result}")
    return [v for v, r in zip(visitors, results, strict=True) if not isinstance(r, BaseException)]


@dataclass
class Window:
    sessions: list[SessionFigures]
    rss_idle: int  # bytes, the server and its workers with every session open, none training
    rss_peak: int
    client_cpu: float  # CPU seconds per second of this process (all the visitors) in the window
    server_cpu: float  # of the server's own process (its one interpreter draws every page)
    workers_cpu: float  # of its training workers


async def measure(server: Server, args: argparse.Namespace) -> Window:
    """Open the sessions, click Train in each, warm up, measure the window, then pause them."""
    url = link(server.url, args.target, args.model)
    visitors = [Visitor(server.url, url) for _ in range(args.visitors)]
    try:
        going = await each(visitors, Visitor.open, "opening")
        going = await each(going, Visitor.ready, "loading")
        idle = server.rss()
        server.reset_peak()
        await each(going, Visitor.start_training, "starting to train")
        await asyncio.sleep(WARM_UP_SECONDS)
        workers = descendants(server.process.pid)
        start, cpu = time.perf_counter(), time.process_time()
        server_cpu, workers_cpu = cpu_seconds([server.process.pid]), cpu_seconds(workers)
        await asyncio.sleep(args.seconds)
        end, cpu = time.perf_counter(), time.process_time() - cpu
        server_cpu = cpu_seconds([server.process.pid]) - server_cpu
        workers_cpu = cpu_seconds(workers) - workers_cpu
        peak = server.rss_peak
        figures = [window_figures(v.log, start, end) for v in visitors]
        await asyncio.gather(*(v.pause() for v in visitors))
        seconds = end - start
        return Window(figures, idle, peak, cpu / seconds, server_cpu / seconds, workers_cpu / seconds)
    finally:
        await asyncio.gather(*(v.close() for v in visitors), return_exceptions=True)


def run(args: argparse.Namespace, root: Path) -> VisitorsFigures:
    bare = bare_rate(root, args.target, args.model, args.seconds, None)
    print(f"  bare Trainer: {bare:.0f} steps/s", file=sys.stderr, flush=True)
    server = Server(root, None)
    try:
        healthy = server.wait_until_healthy()
        print(f"  server healthy after {healthy:.1f} s", file=sys.stderr, flush=True)
        window = asyncio.run(measure(server, args))
        logged = server_log_errors(server)
        if args.server_log:
            server.log.seek(0)
            args.server_log.write_bytes(server.log.read())
    finally:
        server.close()
    sessions = window.sessions
    rates = [s.steps_per_s for s in sessions]
    return VisitorsFigures(
        model=args.model,
        target=args.target,
        visitors=args.visitors,
        seconds=args.seconds,
        bare_rate=bare,
        rates=rates,
        fairness=fairness_of(rates),
        refreshes_per_s=[s.refreshes_per_s for s in sessions],
        received_per_s=[s.received_per_s for s in sessions],
        rss_idle_mb=window.rss_idle / 2**20,
        rss_peak_mb=window.rss_peak / 2**20,
        client_cpu=window.client_cpu,
        server_cpu=window.server_cpu,
        workers_cpu=window.workers_cpu,
        errors=sum(len(s.errors) for s in sessions),
        server_log_errors=logged,
        sessions=sessions,
    )


# ------------------------------------------------------------------------------------ tables
def spread(values: list[float | None], fmt: Any = rate, unknown: str = "showed no step") -> str:
    """min / median / max of the known values, and how many sessions had none."""
    known = [v for v in values if v is not None]
    missing = len(values) - len(known)
    note = f" ({missing} {unknown})" if missing else ""
    if not known:
        return "—" + note
    return " / ".join(fmt(v) for v in (min(known), statistics.median(known), max(known))) + note


def seconds(value: float) -> str:
    return f"{value:.1f}"


def visitors_table(f: VisitorsFigures) -> str:
    known = [r for r in f.rates if r is not None]
    latencies = [s.train_latency_s for s in f.sessions]
    silences: list[float | None] = [s.longest_silence_s for s in f.sessions]
    lines = [
        "| model | visitors | st/s per session min / median / max | sum st/s | bare st/s | fairness max/min "
        "| refresh/s per session min / median / max | KB/s recv per session min / median / max "
        "| Train → higher step s min / median / max | longest silence s min / median / max "
        "| RSS idle → peak MB | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {f.model} | {f.visitors} | {spread(f.rates)} | {rate(sum(known))} | {rate(f.bare_rate)} "
        f"| {show(f.fairness, '.2f')} | {spread(list(f.refreshes_per_s), lambda v: f'{v:.2f}')} "
        f"| {spread(list(f.received_per_s), kb)} | {spread(latencies, seconds, 'showed none')} "
        f"| {spread(silences, seconds)} | {f.rss_idle_mb:.0f} → {f.rss_peak_mb:.0f} | {f.errors} |",
    ]
    return "\n".join(lines)


def sessions_table(f: VisitorsFigures) -> str:
    lines = [
        "| session | st/s | step at open → close | refresh/s | density deltas/s | KB/s recv "
        "| Train → higher step s | longest silence s | reruns sent | slot shared by | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, s in enumerate(f.sessions, 1):
        lines.append(
            f"| {i} | {rate(s.steps_per_s)} | {show(s.first_step, ',')} → {show(s.last_step, ',')} "
            f"| {s.refreshes_per_s:.2f} | {s.charts_per_s:.2f} | {kb(s.received_per_s)} "
            f"| {show(s.train_latency_s, '.1f')} | {s.longest_silence_s:.1f} | {s.reruns_sent} "
            f"| {s.slot_shared_by} | {len(s.errors)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--visitors", type=int, default=4, help="sessions on the one server")
    parser.add_argument("--model", default="gmm", help="the family every session trains")
    parser.add_argument("--target", default="8gaussians")
    parser.add_argument("--seconds", type=float, default=20.0, help="the measurement window")
    parser.add_argument("--app", type=Path, default=ROOT, help="the tree whose app.py is served")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--server-log", type=Path, help="keep the server's output in this file")
    args = parser.parse_args()
    if args.visitors < 1:
        parser.error("--visitors must be at least 1")
    root = args.app.resolve()

    load_before = os.getloadavg()
    figures = run(args, root)
    load_after = os.getloadavg()

    import streamlit
    import torch

    print(
        f"\n{args.visitors} websocket visitors on {args.target}, {args.seconds:g} s window; streamlit "
        f"{streamlit.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    print(visitors_table(figures))
    print(
        f"\nCPU in the window, in cores: the server process {figures.server_cpu:.2f}, its training workers "
        f"{figures.workers_cpu:.2f}, the {args.visitors} visitors themselves {figures.client_cpu:.2f}\n"
    )
    print(sessions_table(figures))
    errors = [e for s in figures.sessions for e in s.errors]
    if errors:
        print(f"\nerrors: {errors[:5]}")
    if figures.server_log_errors:
        print(f"\nthe server's log reports: {figures.server_log_errors[:5]}")
    if args.json:
        meta = {
            "target": args.target,
            "model": args.model,
            "seconds": args.seconds,
            "visitors": args.visitors,
            "app": str(root),
            "load_before": load_before,
            "load_after": load_after,
            "cpus": os.cpu_count(),
            "streamlit": streamlit.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
        args.json.write_text(
            json.dumps({"meta": meta, "figures": asdict(figures)}, indent=1), encoding="utf-8"
        )


if __name__ == "__main__":
    main()

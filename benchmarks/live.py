"""The live page in real Chromium against a real `streamlit run app.py`: what a visitor gets.

Starts its own server on a free loopback port, opens the Explorer in headless Chromium and
measures, per family: the page's training rate (from the "Step" metric card) beside the bare
Trainer's rate for the same configuration, measured in a separate process in the same run;
density-chart refreshes per second; websocket bytes per second and per refresh (and the
density chart's own frames per refresh); click-to-effect latency of Pause and Train; and, once
per server, the time from launching `streamlit run` to the first chart on screen. With
`--visitors N`, N browser contexts train the same family on one server: per-session rates,
their fairness (max/min), refreshes per page, the server's peak RSS, and errors shown.

    python -m benchmarks.live --models nsf --seconds 15
    python -m benchmarks.live --visitors 4 --seconds 15
    python -m benchmarks.live --models nsf,gmm --pin both --json live.json
    python -m benchmarks.live --app /path/to/other/checkout --models gmm   # serve another tree

`--pin` runs the server's training workers (and the bare Trainer) on the first CPU and the server
and the browser on the others, to show how much of a gap comes from the browser sharing cores;
`--pin both` prints the shared and the pinned variants. Figures are wall-clock rates on a shared
machine: compare columns of one run, and read the load average printed with them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# --- what the script looks for on the page; the only lines to change when the page changes ---
DENSITY_KEY = "density"  # Streamlit key of the model-density chart, or of the container holding it
DENSITY_ELEMENT = f".st-key-{DENSITY_KEY}"  # the CSS class Streamlit gives a keyed element
ANY_CHART = ".js-plotly-plot"  # a plotly chart's div
DENSITY_CHART = f"{DENSITY_ELEMENT} {ANY_CHART}"  # the density chart: the first chart in that element
STEP_LABEL = "Step"  # the metric card whose value is the step count
TRAIN_LABEL, PAUSE_LABEL = "Train", "Pause"  # the toggle button's two names
EXCEPTION = '[data-testid="stException"]'
# A websocket frame belongs to the density chart when one of the element ids in it
# ("$$ID-<hash>-<key>", Streamlit's id for keyed elements) has one of these keys, or a key that
# starts with one and a separator ("density.chart"): see `element_keys`. "density" keys the
# chart itself on pages up to 431fc7d; later pages key the container "density" and the chart
# inside it "model_density" (the container's own frame is small and carries no figure).
DENSITY_FRAME_KEYS = (DENSITY_KEY, "model_density")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # every visitor's tab counts as a foreground tab, as it would in a visitor's own browser
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
]
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_ARGS = ["--server.headless", "true", "--server.address", "127.0.0.1"]
SERVER_ARGS += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
BUDGET = 1_000_000  # the step budget put in the link, so no run ends at the page's default budget
N_TEST = 10_000  # held-out points of the page's Trainer (and so of the bare one)
WARM_UP_SECONDS = 2.0  # training before a measurement window opens
POLL_MS = 25  # the in-page watcher's period: the resolution of the latencies
STABLE_SECONDS = 2.0  # a paused page's step must stay put this long to count as stopped
CLICK_TIMEOUT = 30.0  # seconds before a click counts as having no effect
TRAIN_BEFORE_PAUSE = 2.0  # seconds of training between one latency round's Train and its Pause
RSS_EVERY = 0.25  # seconds between samples of the server's memory

# Installed in every page before Streamlit's own scripts: a 25 ms poll that logs, with their page
# times, each change of the Step card, of the Train/Pause button, and of the density chart. A
# chart is redrawn ("draws") whenever its div gets a new `data` object; a refresh is a draw whose
# content (a hash of the traces' JSON) differs from the last few shown, so a re-render of the
# same figure does not count. Streamlit may replace the chart's div on an update and keep the
# old one on screen for a while, so every density element on the page is looked at, and new
# divs ("mounts") and the most shown at once are logged too.
WATCHER_JS = """
(() => {
  if (window.top !== window || window.__genvizBench) return;
  const ELEMENT = %(element)s, CHART = %(chart)s, STEP = %(step)s, NAMES = [%(train)s, %(pause)s];
  const EXCEPTION = %(exception)s;
  const b = window.__genvizBench = {steps: [], buttons: [], refreshes: [], draws: [], mounts: []};
  b.most = b.exceptions = 0;
  const figures = new WeakSet(), divs = new WeakSet(), recent = [];
  const hash = data => {
    let text;
    try { text = JSON.stringify(data); } catch (error) { return Math.random(); }
    let h = 2166136261;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
    return h >>> 0;
  };
  const name = el => {
    const parts = (el.innerText || '').split('\\n').map(s => s.trim()).filter(Boolean);
    return parts.length ? parts[parts.length - 1] : '';
  };
  b.step = () => {
    for (const card of document.querySelectorAll('[data-testid="stMetric"]')) {
      const label = card.querySelector('[data-testid="stMetricLabel"]');
      if (!label || label.innerText.trim() !== STEP) continue;
      const value = card.querySelector('[data-testid="stMetricValue"]');
      const n = parseInt((value ? value.innerText : '').replace(/[^0-9]/g, ''), 10);
      return Number.isNaN(n) ? null : n;
    }
    return null;
  };
  b.toggle = () => [...document.querySelectorAll('button')].find(el => NAMES.includes(name(el))) || null;
  b.button = () => {
    const el = b.toggle();
    return el ? name(el) + (el.disabled ? ' (disabled)' : '') : null;
  };
  b.click = () => {
    const el = b.toggle(), t = performance.now();
    if (el) el.click();
    return el ? t : null;
  };
  b.charts = () => [...document.querySelectorAll(ELEMENT)].map(e => e.querySelector(CHART)).filter(Boolean);
  const poll = () => {
    const now = performance.now();
    const last = (log, value) => log.length && log[log.length - 1][1] === value;
    const step = b.step();
    if (step !== null && !last(b.steps, step)) b.steps.push([now, step]);
    const button = b.button();
    if (!last(b.buttons, button)) b.buttons.push([now, button]);
    b.exceptions = Math.max(b.exceptions, document.querySelectorAll(EXCEPTION).length);
    const charts = b.charts();
    b.most = Math.max(b.most, charts.length);
    for (const gd of charts) {
      if (!divs.has(gd)) { divs.add(gd); b.mounts.push(now); }
      if (!gd.data || figures.has(gd.data)) continue;
      figures.add(gd.data);
      b.draws.push(now);
      const h = hash(gd.data);
      if (recent.includes(h)) continue;
      recent.push(h);
      if (recent.length > 8) recent.shift();
      b.refreshes.push(now);
    }
  };
  b.since = t => ({
    now: performance.now(), most: b.most, exceptions: b.exceptions,
    steps: b.steps.filter(s => s[0] >= t), buttons: b.buttons.filter(s => s[0] >= t),
    refreshes: b.refreshes.filter(s => s >= t), mounts: b.mounts.filter(s => s >= t),
    draws: b.draws.filter(s => s >= t),
    last_step: b.steps.length ? b.steps[b.steps.length - 1] : null,
    last_button: b.buttons.length ? b.buttons[b.buttons.length - 1] : null,
  });
  setInterval(poll, %(poll)d);
})();
"""

BARE_CODE = """
import json, sys, time
import torch
torch.set_num_threads(1)  # as the server does for each of its Trainers
from genviz.config import RunConfig
from genviz.train import Trainer
target, model, seconds, budget, n_test, warm = sys.argv[1:7]
trainer = Trainer(RunConfig(target=target, model=model, steps=int(budget), n_test=int(n_test)))
trainer.train(max_seconds=float(warm))
start = time.perf_counter()
steps = trainer.train(max_seconds=float(seconds))
print(json.dumps({"steps": steps, "seconds": time.perf_counter() - start}))
"""


def watcher_js() -> str:
    values = {
        "element": DENSITY_ELEMENT,
        "chart": ANY_CHART,
        "exception": EXCEPTION,
        "step": STEP_LABEL,
        "train": TRAIN_LABEL,
        "pause": PAUSE_LABEL,
    }
    return WATCHER_JS % ({k: json.dumps(v) for k, v in values.items()} | {"poll": POLL_MS})


# ------------------------------------------------------------------------------------- frames
ID_MARK = b"$$ID-"


def element_keys(payload: bytes) -> list[str]:
    """User keys of the element ids in one ForwardMsg frame. A protobuf string is preceded by its
    varint length, so each id's end is known without decoding the message."""
    keys, at = [], payload.find(ID_MARK)
    while at != -1:
        if at >= 2 and payload[at - 2] & 0x80:
            length = (payload[at - 2] & 0x7F) | (payload[at - 1] << 7)
        else:
            length = payload[at - 1] if at >= 1 else 0
        parts = payload[at : at + length].split(b"-", 2)
        if len(parts) == 3:
            keys.append(parts[2].decode("utf-8", errors="replace"))
        at = payload.find(ID_MARK, at + len(ID_MARK))
    return keys


def is_density_key(key: str) -> bool:
    return any(
        key == k or (key.startswith(k) and key[len(k) : len(k) + 1] in ".-_/") for k in DENSITY_FRAME_KEYS
    )


@dataclass
class Frames:
    """Websocket frames received by one page: (time, bytes, the density key in it or None)."""

    log: list[tuple[float, int, str | None]] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("websocket", lambda ws: ws.on("framereceived", self.received))

    def received(self, payload: bytes | str) -> None:
        data = payload if isinstance(payload, bytes) else payload.encode()
        density = next((k for k in element_keys(data) if is_density_key(k)), None)
        self.log.append((time.perf_counter(), len(data), density))

    def between(self, start: float, end: float) -> tuple[int, dict[str, list[int]]]:
        """All bytes received in [start, end], and [frames, bytes] of each density key."""
        inside = [f for f in self.log if start <= f[0] <= end]
        keys: dict[str, list[int]] = {}
        for _, size, key in inside:
            if key is not None:
                keys.setdefault(key, [0, 0])
                keys[key][0] += 1
                keys[key][1] += size
        return sum(f[1] for f in inside), keys


# ------------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(command: list[str], cpu: int | None) -> tuple[list[str], Any]:
    """The command run on one CPU: under taskset when it exists, else by setting the affinity."""
    if cpu is None:
        return command, None
    if shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *command], None
    return command, lambda: os.sched_setaffinity(0, {cpu})


def descendants(pid: int) -> list[int]:
    """The processes started by `pid`, and theirs (the server's training workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def process_tree_rss(pid: int) -> int:
    """VmRSS in bytes of a process and all its descendants."""
    total = 0
    for current in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


class Server:
    """`streamlit run app.py` on a free loopback port, with its launch time and memory sampled."""

    def __init__(self, root: Path, cpu: int | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port)]
        command, preexec = pinned(command + SERVER_ARGS, cpu)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close); a file, not a pipe: a full pipe would stall the server
        self.launched = time.perf_counter()
        self.process = subprocess.Popen(
            command, cwd=root, stdout=subprocess.DEVNULL, stderr=self.log, preexec_fn=preexec
        )
        self.rss_peak = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(RSS_EVERY):
            self.rss_peak = max(self.rss_peak, process_tree_rss(self.process.pid))

    def rss(self) -> int:
        return process_tree_rss(self.process.pid)

    def reset_peak(self) -> None:
        self.rss_peak = self.rss()

    def wait_until_healthy(self, timeout: float = 120) -> float:
        """Seconds from launch until the health check answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                error = self.log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"streamlit exited with code {self.process.returncode}: {error}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        return time.perf_counter() - self.launched
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"streamlit did not answer at {self.url} within {timeout} s")

    def close(self) -> None:
        self._stop.set()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def bare_rate(root: Path, target: str, model: str, seconds: float, cpu: int | None) -> float:
    """The bare Trainer's steps per second for the page's configuration, in its own process."""
    command = [sys.executable, "-c", BARE_CODE, target, model, str(seconds), str(BUDGET), str(N_TEST)]
    command, preexec = pinned(command + [str(WARM_UP_SECONDS)], cpu)
    env = os.environ | {"PYTHONPATH": str(root)}
    done = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, check=True, preexec_fn=preexec
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["steps"] / figures["seconds"]


# --------------------------------------------------------------------------------------- page
class Visitor:
    """One browser context on the Explorer, with its watcher, frames and errors."""

    def __init__(self, browser: Any, url: str, frames: bool = True) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.add_init_script(watcher_js())
        self.page = self.context.new_page()
        self.console_errors: list[str] = []
        self.offline: set[str] = set()  # resources off this machine that could not be fetched
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.console_errors.append(f"pageerror: {str(e)[:300]}"))
        self.page.on("requestfailed", self._failed)
        self.frames = Frames()
        if frames:
            self.frames.attach(self.page)
        self.page.goto(url)

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        if where and not is_local(where) and message.text.startswith("Failed to load resource"):
            self.offline.add(where)  # e.g. an icon from a font CDN, on a machine with no internet
        else:
            self.console_errors.append(message.text[:300])

    def _failed(self, request: Any) -> None:
        if not is_local(request.url):
            self.offline.add(request.url)

    def ready(self, timeout: float = 120) -> None:
        """Wait for the Step card and the density chart."""
        self.page.wait_for_function(
            "() => window.__genvizBench && window.__genvizBench.step() !== null", timeout=timeout * 1000
        )
        self.page.locator(DENSITY_CHART).first.wait_for(state="visible", timeout=timeout * 1000)

    def now(self) -> float:
        return self.page.evaluate("() => performance.now()")

    def since(self, t: float) -> dict[str, Any]:
        return self.page.evaluate("t => window.__genvizBench.since(t)", t)

    def click_toggle(self) -> float:
        """Click Train/Pause from inside the page; returns the page time of the click."""
        t = self.page.evaluate("() => window.__genvizBench.click()")
        if t is None:
            raise RuntimeError(f"no {TRAIN_LABEL}/{PAUSE_LABEL} button on the page")
        return t

    def button(self) -> str | None:
        return self.page.evaluate("() => window.__genvizBench.button()")

    def exceptions(self) -> int:
        """The most exception boxes the page showed at once, now or since it loaded."""
        seen = self.page.evaluate("() => window.__genvizBench.exceptions")
        return max(seen, self.page.locator(EXCEPTION).count())

    def wait(self, seconds: float) -> None:
        """Sleep while Playwright delivers this page's events (frames arrive only during calls)."""
        self.page.wait_for_timeout(seconds * 1000)

    def close(self) -> None:
        self.context.close()


def is_local(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "") or url.startswith(("data:", "blob:"))


def step_rate(start: list[float] | None, seen: dict[str, Any]) -> float | None:
    """Steps per second shown by the Step card in a window: between its first and last change
    there, when it changed at least three times (free of the refresh period's rounding); else
    from the step shown when the window opened to the last one shown, over the window."""
    steps = seen["steps"]
    if len(steps) >= 3 and steps[-1][0] > steps[0][0]:
        return (steps[-1][1] - steps[0][1]) / ((steps[-1][0] - steps[0][0]) / 1000)
    if start is None or seen["last_step"] is None or seen["now"] <= start[0]:
        return None
    return (seen["last_step"][1] - start[1]) / ((seen["now"] - start[0]) / 1000)


def start_training(visitor: Visitor, click: bool = True, timeout: float = 120) -> None:
    """Click Train (unless `click` is False: clicked already) and wait for a step above 0."""
    t = visitor.now() if click else 0.0
    if click:
        visitor.click_toggle()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = visitor.since(t)
        if len(seen["steps"]) and seen["last_step"][1] > 0:
            return
        visitor.wait(0.1)
    raise TimeoutError("the page did not start training")


def pause_latency(visitor: Visitor) -> float | None:
    """Click Pause while training; ms until the button reads Train and the step has stopped."""
    clicked = visitor.click_toggle()
    deadline = time.monotonic() + CLICK_TIMEOUT
    while time.monotonic() < deadline:
        seen = visitor.since(clicked)
        named = [t for t, b in seen["buttons"] if b == TRAIN_LABEL]
        if named and (seen["last_button"] or [0, None])[1] == TRAIN_LABEL:
            last_change = seen["steps"][-1][0] if seen["steps"] else clicked
            stopped = max(named[0], last_change)
            if seen["now"] - stopped >= STABLE_SECONDS * 1000:
                return stopped - clicked
        visitor.wait(0.05)
    return None


def train_latency(visitor: Visitor) -> float | None:
    """Click Train while paused; ms until the Step card first shows a higher step."""
    before = visitor.since(0)["last_step"][1]
    clicked = visitor.click_toggle()
    deadline = time.monotonic() + CLICK_TIMEOUT
    while time.monotonic() < deadline:
        higher = [t for t, s in visitor.since(clicked)["steps"] if s > before]
        if higher:
            return higher[0] - clicked
        visitor.wait(0.05)
    return None


def median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def link(url: str, target: str, model: str) -> str:
    return f"{url}/?target={target}&model={model}&steps={BUDGET}"


@dataclass
class PageRow:
    variant: str
    model: str
    page_rate: float | None
    bare_rate: float
    refreshes_per_s: float
    mounts: int  # density chart divs created in the window
    draws: int  # new figure objects given to a density chart div in the window
    most_at_once: int  # the most density chart divs on the page at one time
    received_per_s: float  # bytes
    bytes_per_refresh: float | None
    density_bytes_per_refresh: float | None
    density_frames: int
    density_by_key: dict[str, list[int]]  # key -> [frames, bytes] in the window
    refreshes: int
    pause_ms: list[float | None]
    train_ms: list[float | None]
    pause_median_ms: float | None
    train_median_ms: float | None
    exceptions: int  # the most exception boxes shown at once
    console_errors: int  # console errors and uncaught page errors, offline resources apart
    console_messages: list[str]
    offline: list[str]  # resources off this machine that failed to load (no internet here)
    rss_peak_mb: float
    charts: int


@dataclass
class VisitorsRow:
    variant: str
    model: str
    visitors: int
    rates: list[float | None]
    bare_rate: float
    fairness: float | None
    refreshes_per_s: list[float]
    rss_idle_mb: float
    rss_peak_mb: float
    exceptions: int
    console_errors: int
    console_messages: list[str]
    offline: list[str]


@dataclass
class StartRow:
    variant: str
    healthy_s: float
    first_chart_s: float  # the first chart of any kind: the target's, previewed while the model builds
    model_chart_s: float  # the model's density


def measure_page(
    browser: Any,
    server: Server,
    root: Path,
    args: argparse.Namespace,
    variant: str,
    model: str,
    cpu: int | None,
) -> PageRow:
    bare = bare_rate(root, args.target, model, args.seconds, cpu)
    visitor = Visitor(browser, link(server.url, args.target, model))
    try:
        visitor.ready()
        server.reset_peak()
        start_training(visitor)
        pin_workers(server, cpu)  # this page's worker may have started with it
        visitor.wait(WARM_UP_SECONDS)
        opened = visitor.since(float("inf"))
        t0, wall0, first = opened["now"], time.perf_counter(), opened["last_step"]
        visitor.wait(args.seconds)
        seen, wall1 = visitor.since(t0), time.perf_counter()
        window = (seen["now"] - t0) / 1000
        received, density = visitor.frames.between(wall0, wall1)
        density_frames = sum(frames for frames, _ in density.values())
        density_bytes = sum(size for _, size in density.values())
        refreshes = len(seen["refreshes"])
        pauses, trains = [], []
        for round_ in range(args.clicks):
            if round_:
                visitor.wait(TRAIN_BEFORE_PAUSE)
            pauses.append(pause_latency(visitor))
            trains.append(train_latency(visitor))
        pause_latency(visitor)
        # frames of a keyed container alone carry no figure: under 1 kB each, on average
        attributed = density_bytes > 1000 * density_frames
        return PageRow(
            variant=variant,
            model=model,
            page_rate=step_rate(first and [t0, first[1]], seen),
            bare_rate=bare,
            refreshes_per_s=refreshes / window,
            mounts=len(seen["mounts"]),
            draws=len(seen["draws"]),
            most_at_once=seen["most"],
            received_per_s=received / (wall1 - wall0),
            bytes_per_refresh=received / refreshes if refreshes else None,
            density_bytes_per_refresh=density_bytes / refreshes if refreshes and attributed else None,
            density_frames=density_frames,
            density_by_key=density,
            refreshes=refreshes,
            pause_ms=pauses,
            train_ms=trains,
            pause_median_ms=median(pauses),
            train_median_ms=median(trains),
            exceptions=visitor.exceptions(),
            console_errors=len(visitor.console_errors),
            console_messages=visitor.console_errors[:20],
            offline=sorted(visitor.offline),
            rss_peak_mb=server.rss_peak / 2**20,
            charts=visitor.page.locator(ANY_CHART).count(),
        )
    finally:
        visitor.close()


def measure_visitors(
    browser: Any,
    server: Server,
    root: Path,
    args: argparse.Namespace,
    variant: str,
    model: str,
    cpu: int | None,
) -> VisitorsRow:
    bare = bare_rate(root, args.target, model, args.seconds, cpu)
    visitors = [
        Visitor(browser, link(server.url, args.target, model), frames=False) for _ in range(args.visitors)
    ]
    try:
        for visitor in visitors:
            visitor.ready()
        idle = server.rss()
        server.reset_peak()
        for visitor in visitors:
            visitor.click_toggle()
        for visitor in visitors:
            start_training(visitor, click=False)
        pin_workers(server, cpu)
        visitors[0].wait(WARM_UP_SECONDS)
        opened = [v.since(float("inf")) for v in visitors]
        starts = [o["now"] for o in opened]
        visitors[0].wait(args.seconds)
        seen = [v.since(t) for v, t in zip(visitors, starts, strict=True)]
        rates = [
            step_rate(o["last_step"] and [o["now"], o["last_step"][1]], s)
            for o, s in zip(opened, seen, strict=True)
        ]
        refreshes = [len(s["refreshes"]) / ((s["now"] - t) / 1000) for s, t in zip(seen, starts, strict=True)]
        peak = server.rss_peak
        known = [r for r in rates if r is not None]
        fairness = None
        if known and len(known) == len(rates) and max(known) > 0:
            fairness = max(known) / min(known) if min(known) > 0 else float("inf")
        exceptions = sum(v.exceptions() for v in visitors)
        for visitor in visitors:
            if visitor.button() == PAUSE_LABEL:
                visitor.click_toggle()
        return VisitorsRow(
            variant=variant,
            model=model,
            visitors=len(visitors),
            rates=rates,
            bare_rate=bare,
            fairness=fairness,
            refreshes_per_s=refreshes,
            rss_idle_mb=idle / 2**20,
            rss_peak_mb=peak / 2**20,
            exceptions=exceptions,
            console_errors=sum(len(v.console_errors) for v in visitors),
            console_messages=[e for v in visitors for e in v.console_errors][:20],
            offline=sorted(set().union(*(v.offline for v in visitors))),
        )
    finally:
        for visitor in visitors:
            visitor.close()


def server_start(
    browser: Any, server: Server, args: argparse.Namespace, variant: str, model: str
) -> StartRow:
    """Seconds from launching `streamlit run` to the health check, to the first chart shown, and to
    the model's density chart."""
    healthy = server.wait_until_healthy()
    visitor = Visitor(browser, link(server.url, args.target, model), frames=False)
    try:
        visitor.page.locator(ANY_CHART).first.wait_for(state="visible", timeout=120_000)
        first = time.perf_counter() - server.launched
        visitor.page.locator(DENSITY_CHART).first.wait_for(state="visible", timeout=120_000)
        return StartRow(variant, healthy, first, time.perf_counter() - server.launched)
    finally:
        visitor.close()


def pin_workers(server: Server, cpu: int | None) -> None:
    """Move the server's training workers started so far onto `cpu` (None: leave them)."""
    if cpu is not None:
        for worker in descendants(server.process.pid):
            os.sched_setaffinity(worker, {cpu})


@contextlib.contextmanager
def affinity(cpus: set[int] | None) -> Iterator[None]:
    """Run this process (and so Playwright's driver and Chromium, its children) on `cpus`."""
    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run_variant(args: argparse.Namespace, root: Path, variant: str) -> tuple[StartRow, list[Any]]:
    from playwright.sync_api import sync_playwright

    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, browser_cpus = (cpus[0], set(cpus[1:])) if variant == "pinned" else (None, None)
    rows: list[Any] = []
    with affinity(browser_cpus), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # The server inherits the browser's CPUs; once its training workers have started (a slot's
        # worker starts with its first session), they move to the first CPU, so that training has a
        # core of its own.
        server = Server(root, None)  # launched after the browser: its start excludes Chromium's
        try:
            start = server_start(browser, server, args, variant, args.models[0])
            pin_workers(server, server_cpu)
            print(
                f"  {variant}: server healthy after {start.healthy_s:.1f} s, first chart "
                f"after {start.first_chart_s:.1f} s, the model's after {start.model_chart_s:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            for model in args.models:
                if args.visitors:
                    row = measure_visitors(browser, server, root, args, variant, model, server_cpu)
                else:
                    row = measure_page(browser, server, root, args, variant, model, server_cpu)
                print(f"  {variant} {model}: done", file=sys.stderr, flush=True)
                rows.append(row)
        finally:
            server.close()
            browser.close()
    return start, rows


# ------------------------------------------------------------------------------------- tables
def show(value: float | None, spec: str = ".0f") -> str:
    return "—" if value is None else format(value, spec)


def rate(value: float | None) -> str:
    """Steps per second: whole numbers, one decimal below 10."""
    return show(value, ".1f" if value is not None and value < 10 else ".0f")


def kb(value: float | None) -> str:
    return show(None if value is None else value / 1000, ",.0f")


def page_table(rows: list[PageRow]) -> str:
    lines = [
        "| variant | model | page st/s | bare st/s | page/bare | refresh/s | KB/s recv | KB/refresh "
        "| density KB/refresh | Pause ms | Train ms | new divs/refresh | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r.page_rate / r.bare_rate if r.page_rate and r.bare_rate else None
        lines.append(
            f"| {r.variant} | {r.model} | {rate(r.page_rate)} | {rate(r.bare_rate)} | {show(ratio, '.2f')} "
            f"| {show(r.refreshes_per_s, '.2f')} | {kb(r.received_per_s)} | {kb(r.bytes_per_refresh)} "
            f"| {kb(r.density_bytes_per_refresh)} | {show(r.pause_median_ms)} | {show(r.train_median_ms)} "
            f"| {r.mounts / r.refreshes if r.refreshes else 0:.1f} | {r.exceptions + r.console_errors} |"
        )
    return "\n".join(lines)


def visitors_table(rows: list[VisitorsRow]) -> str:
    lines = [
        "| variant | model | visitors | st/s per session min / median / max | sum st/s | bare st/s "
        "| fairness max/min | refresh/s per page min / median | RSS idle → peak MB | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        known = [x for x in r.rates if x is not None]
        spread = "—"
        if known:
            spread = " / ".join(rate(x) for x in (min(known), statistics.median(known), max(known)))
        missing = f" ({len(r.rates) - len(known)} showed no step)" if len(known) < len(r.rates) else ""
        refresh = f"{min(r.refreshes_per_s):.2f} / {statistics.median(r.refreshes_per_s):.2f}"
        lines.append(
            f"| {r.variant} | {r.model} | {r.visitors} | {spread}{missing} | {rate(sum(known))} "
            f"| {rate(r.bare_rate)} | {show(r.fairness, '.2f')} | {refresh} "
            f"| {r.rss_idle_mb:.0f} → {r.rss_peak_mb:.0f} | {r.exceptions + r.console_errors} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="nsf,gmm,ar-mixture", help="comma-separated families")
    parser.add_argument("--target", default="8gaussians")
    parser.add_argument("--seconds", type=float, default=20.0, help="training per measurement window")
    parser.add_argument("--clicks", type=int, default=3, help="Pause/Train rounds for the latencies")
    parser.add_argument("--visitors", type=int, default=0, help="N browser contexts on one server")
    parser.add_argument(
        "--pin",
        nargs="?",
        const="on",
        default="off",
        choices=["off", "on", "both"],
        help="training workers on the first CPU, server and browser on the others; both: either way",
    )
    parser.add_argument("--app", type=Path, default=ROOT, help="the tree whose app.py is served")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    root = args.app.resolve()

    variants = {"off": ["shared"], "on": ["pinned"], "both": ["shared", "pinned"]}[args.pin]
    if "pinned" in variants and len(os.sched_getaffinity(0)) < 2:
        print("only one CPU available: running unpinned", file=sys.stderr)
        variants = ["shared"]
    load_before = os.getloadavg()
    starts, rows = [], []
    for variant in variants:
        start, found = run_variant(args, root, variant)
        starts.append(start)
        rows += found
    load_after = os.getloadavg()

    import streamlit
    import torch

    print(
        f"\nlive page on {args.target}, {args.seconds:g} s windows; streamlit {streamlit.__version__}, "
        f"torch {torch.__version__}, {os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after\n"
    )
    print("| variant | server healthy s | first chart s | model chart s |\n|---|---:|---:|---:|")
    for s in starts:
        print(f"| {s.variant} | {s.healthy_s:.1f} | {s.first_chart_s:.1f} | {s.model_chart_s:.1f} |")
    print()
    print(visitors_table(rows) if args.visitors else page_table(rows))
    for r in rows:
        if r.exceptions or r.console_errors:
            print(
                f"\n{r.variant} {r.model}: {r.exceptions} exceptions shown, {r.console_errors} console "
                f"errors: {r.console_messages[:5]}"
            )
    for r in rows:
        if isinstance(r, PageRow) and r.refreshes and r.mounts >= r.refreshes / 2:
            print(
                f"\n{r.variant} {r.model}: the density chart got a new div on {r.mounts} of {r.refreshes} "
                f"refreshes ({r.draws} draws); up to {r.most_at_once} density charts were on the page at once"
            )
    offline = sorted(set().union(*(r.offline for r in rows)))
    if offline:
        print(f"\nnot counted as errors, resources off this machine that failed to load: {offline[:5]}")
    if args.json:
        meta = {
            "target": args.target,
            "seconds": args.seconds,
            "models": args.models,
            "visitors": args.visitors,
            "pin": args.pin,
            "app": str(root),
            "load_before": load_before,
            "load_after": load_after,
            "cpus": os.cpu_count(),
            "streamlit": streamlit.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "density_chart": DENSITY_CHART,
        }
        figures = {"meta": meta, "starts": [asdict(s) for s in starts], "rows": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

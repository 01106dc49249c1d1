"""The Compare page's state and drawing: several families on one target at one budget, each run an
engine session (`genviz.engine`) of its own, then a leaderboard (`genviz.compare`).

Every run's handle lives in `st.session_state`; the scheduler shares the training slots fairly among
all of them, and each stops at its budget by itself (the Trainer honours `RunConfig.steps` and
`RunConfig.seconds`). A fragment polls the snapshots while any run trains; only the script thread
calls streamlit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from genviz import compare
from genviz.config import RunConfig
from genviz.cost import profile
from genviz.engine import SessionHandle, Snapshot, scheduler
from genviz.models import MODELS
from genviz.ui import polling
from genviz.ui.charts import live_chart
from genviz.ui.state import PLOTLY_CONFIG, TARGET_RESOLUTION, CachedFigures, target_density
from genviz.views import render

COMPARE_KEY = "genviz.compare"
DEFAULT_MODELS = ("nsf", "maf", "gmm", "gaussian")
DEFAULT_SECONDS = 8.0
MAX_PAGE_SECONDS = 120.0  # training seconds per run a page may ask for
MAX_PAGE_RUNS = 12  # runs (families × seeds) one page may start
# Runs of one page training at once: the scheduler shares slots per session, so a comparison holds
# at most this many turns in a round, whatever its size, beside other visitors' one each.
CONCURRENT_RUNS = 4
POLL_EVERY = 0.5
COMPARE_GROUP = "compare.live"  # the fragment group of the live part and its buttons
THUMB_HEIGHT = 230


@dataclass
class CompareRun:
    """One (family, seed) run and its engine session."""

    config: RunConfig
    handle: SessionHandle
    parameters: int
    error: str | None = None  # why it could not be built
    started: bool = False  # built and set training (runs wait for a free place, see CONCURRENT_RUNS)
    skipped: bool = False  # the comparison was stopped before this run started

    @property
    def snapshot(self) -> Snapshot:
        return self.handle.snapshot

    @property
    def finished(self) -> bool:
        if self.error is not None or self.skipped:
            return True
        snap = self.snapshot
        return self.started and snap.ready and not snap.running and not snap.evaluating

    def begin(self) -> None:
        self.started = True
        self.error = self.handle.build(self.config)
        if self.error is None:
            self.handle.run(True)


@dataclass
class CompareSession(CachedFigures):
    """One browser session's comparison."""

    spec: compare.CompareSpec | None = None
    runs: list[CompareRun] = field(default_factory=list)
    started: float = 0.0
    stopped: bool = False  # stopped by the user before the budget
    figures: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False)

    def start(self, spec: compare.CompareSpec) -> None:
        """Close the previous comparison's sessions, open one per run and start the first few."""
        self.close()
        self.spec, self.stopped, self.started, self.figures = spec, False, time.monotonic(), {}
        self.runs = [CompareRun(c, scheduler().open(), profile(c).parameters) for c in spec.configs()]
        self.advance()

    def advance(self) -> None:
        """Start waiting runs while fewer than CONCURRENT_RUNS train."""
        for run in self.runs:
            if sum(r.started and not r.finished for r in self.runs) >= CONCURRENT_RUNS:
                return
            if not run.started and not run.skipped:
                run.begin()

    def stop(self) -> None:
        for run in self.runs:
            if run.started and run.error is None:
                run.handle.run(False)
            run.skipped = not run.started
        self.stopped = True

    def close(self) -> None:
        for run in self.runs:
            run.handle.close()
        self.runs = []

    def heartbeat(self) -> None:
        """Tell every session that its page still watches (an unwatched session pauses), and start
        the next runs as others finish."""
        for run in self.runs:
            if run.started and run.error is None:
                run.handle.watch(False, {})
        self.advance()

    @property
    def active(self) -> bool:
        return bool(self.runs) and not all(run.finished for run in self.runs)

    @property
    def progress(self) -> float:
        if not self.runs:
            return 0.0
        return sum(1.0 if run.finished else run.snapshot.progress for run in self.runs) / len(self.runs)

    def results(self) -> list[compare.RunResult]:
        """A result for every run that has been evaluated."""
        goal = self.spec.kl_goal if self.spec else None
        return [
            compare.run_result(run.config, s.history, s.step, s.train_seconds, run.parameters, goal)
            for run in self.runs
            if run.started and run.error is None and (s := run.snapshot).ready
        ]


def compare_session() -> CompareSession:
    if COMPARE_KEY not in st.session_state:
        st.session_state[COMPARE_KEY] = CompareSession()
    return st.session_state[COMPARE_KEY]


# ------------------------------------------------------------------ controls


def spec_from_controls(targets: list[str]) -> compare.CompareSpec | None:
    """The comparison the widgets describe, or None with the reason shown."""
    top = st.columns([2, 3], vertical_alignment="bottom")
    target = top[0].selectbox("Target", targets, key="compare.target")
    models = top[1].multiselect(
        "Models", list(MODELS), default=list(DEFAULT_MODELS), key="compare.models",
        format_func=lambda name: f"{MODELS[name].title} ({name})",
    )  # fmt: skip
    kind, amount, seeds, goal = st.columns(4, vertical_alignment="bottom")
    budget = kind.radio(
        "Budget", ["seconds", "steps"], horizontal=True, key="compare.budget", help=BUDGET_HELP
    )
    if budget == "seconds":
        value = amount.number_input(
            "Seconds per run", 1.0, MAX_PAGE_SECONDS, DEFAULT_SECONDS, 1.0, key="compare.s"
        )
    else:
        value = amount.number_input("Steps per run", 1, 100_000, 500, 100, key="compare.steps")
    count = seeds.number_input("Seeds per model", 1, compare.MAX_SEEDS, 1, key="compare.seeds")
    kl_goal = goal.number_input("KL goal (nats)", 0.001, 10.0, 0.1, 0.05, format="%.3f", key="compare.goal")
    if not models:
        st.info("Choose at least one model.")
        return None
    if len(models) * int(count) > MAX_PAGE_RUNS:
        runs = len(models) * int(count)
        st.error(f"{runs} runs asked for; this page runs at most {MAX_PAGE_RUNS} (models × seeds).")
        return None
    budget_args = {"seconds": float(value)} if budget == "seconds" else {"steps": int(value)}
    try:
        return compare.CompareSpec(
            target, tuple(models), seeds=int(count), kl_goal=float(kl_goal), **budget_args
        )
    except ValueError as error:
        st.error(str(error))
        return None


BUDGET_HELP = (
    "every run gets the same budget: seconds of its own training time (runs share the server's "
    "training slots, so the wall time is longer) or optimisation steps"
)


def buttons(state: CompareSession, spec: compare.CompareSpec | None) -> None:
    """Run and Stop. Drawn in the live group, so that they follow the runs as they end by
    themselves; a click reruns the group, which sets its refresh timer."""
    run, stop, _ = st.columns([1, 1, 3])
    blocked = spec is None or state.active
    run.button("Run comparison", key="compare.run", icon=":material/play_arrow:", type="primary",
               disabled=blocked, on_click=polling.rerun_group(COMPARE_GROUP, lambda: state.start(spec)),
               width="stretch")  # fmt: skip
    stop.button("Stop", key="compare.stop", icon=":material/stop:", disabled=not state.active,
                on_click=polling.rerun_group(COMPARE_GROUP, state.stop), width="stretch")  # fmt: skip


# ------------------------------------------------------------------ the live part


def live_compare(state: CompareSession, spec: compare.CompareSpec | None) -> None:
    """The buttons, then the progress, curves and results, redrawn while runs train (see
    `genviz.ui.polling`). `spec` is what the controls above ask for."""

    def compare_group() -> None:
        buttons(state, spec)
        polling.part(_live, POLL_EVERY if state.active else None)

    polling.group(COMPARE_GROUP, compare_group)


def _live() -> None:
    state = compare_session()
    state.heartbeat()
    if not state.runs:
        st.caption("Choose a target, models and a budget, then run the comparison.")
        return
    st.progress(state.progress, text=progress_text(state))
    for run in state.runs:
        if run.error is not None:
            st.error(f"{run.config.model} (seed {run.config.seed}) could not be built: {run.error}")
    results = state.results()
    if results:
        kl_curves(state, results)
    if not state.active and results:
        leaderboard(state, results)
        thumbnails(state)


def progress_text(state: CompareSession) -> str:
    done = sum(run.finished and not run.skipped for run in state.runs)
    training = sum(run.started and not run.finished for run in state.runs)
    waiting = sum(not run.started and not run.skipped for run in state.runs)
    elapsed = time.monotonic() - state.started
    words = (
        f"{done} of {len(state.runs)} runs finished, {training} training, {waiting} waiting · {elapsed:.0f} s"
    )
    if state.stopped:
        words += " · stopped: the leaderboard shows where each run had got to"
    elif state.spec is not None:
        words += f" · {state.spec.budget_text()} per run, at most {CONCURRENT_RUNS} at a time"
    return words


def kl_curves(state: CompareSession, results: list[compare.RunResult]) -> None:
    """Every run's KL against its training time, overlaid, with the goal."""
    goal = state.spec.kl_goal if state.spec else None
    series = [
        (f"{r.model}" + (f" · seed {r.seed}" if state.spec and state.spec.seeds > 1 else ""),
         [t for _, t, _ in r.curve], [kl for _, _, kl in r.curve])
        for r in results
    ]  # fmt: skip
    key = tuple((r.model, r.seed, len(r.curve)) for r in results)
    figure = state.figure("curves", key, lambda: render.overlay_curves(
        series, title="KL(p‖q) during training", x_title="training seconds", goal=goal,
        goal_label=f"goal {goal:g}" if goal else "goal", height=320))  # fmt: skip
    live_chart(figure, key="compare.curves", config=PLOTLY_CONFIG)


def leaderboard(state: CompareSession, results: list[compare.RunResult]) -> None:
    rows = compare.leaderboard(results)
    spec = state.spec
    goal = spec.kl_goal if spec else None
    st.markdown("##### Leaderboard")
    st.dataframe(compare.table_rows(rows, goal), hide_index=True, key="compare.leaderboard")
    seeds = (
        "mean ± standard deviation across seeds" if spec and spec.seeds > 1 else "± the KL's standard error"
    )
    labels = {f"{r.kl_kind}, {r.kl_method}" for r in rows}
    methods = (
        f"KL: {labels.pop()}"
        if len(labels) == 1
        else "; ".join(f"{r.model}: {r.kl_kind}, {r.kl_method}" for r in rows)
    )
    st.caption(f"Best KL first; {seeds}. Held-out NLL and KL(p‖q) in nats. {methods}.")


def thumbnails(state: CompareSession) -> None:
    """Each family's learned density (its first seed), on the target's colour scale."""
    if state.spec is None:
        return
    firsts = [run for run in state.runs if run.config.seed == 0 and run.snapshot.density is not None]
    if not firsts:
        return
    x, y, log_p = target_density(state.spec.target, TARGET_RESOLUTION)
    cmax = render.density_scale(log_p, None)
    columns = st.columns(min(len(firsts) + 1, 6), gap="small")
    target_figure = state.figure("thumb.target", (state.spec.target, cmax), lambda: render.density_panel(
        x, y, log_p, cmax=cmax, title="target p(x)", height=THUMB_HEIGHT, colorbar=False))  # fmt: skip
    with columns[0]:
        live_chart(target_figure, key="compare.thumb.target", config=PLOTLY_CONFIG)
    for index, run in enumerate(firsts, start=1):
        frame = run.snapshot.density
        figure = state.figure(f"thumb.{run.config.model}", (frame.step, cmax), _thumbnail(frame, run, cmax))
        with columns[index % len(columns)]:
            live_chart(figure, key=f"compare.thumb.{run.config.model}", config=PLOTLY_CONFIG)


def _thumbnail(frame: Any, run: CompareRun, cmax: float) -> Callable[[], Any]:
    return lambda: render.density_panel(
        frame.x, frame.y, frame.log_q, cmax=cmax, title=run.config.model, height=THUMB_HEIGHT, colorbar=False
    )

"""Live parts of a page that poll only while there is something new to show.

A page's live parts are fragments with `run_every`; their rates are set where they are declared.
So they are declared inside one keyed fragment, the *group*:

    group("live", draw_parts)          # draw_parts declares: part(draw_numbers, 0.15), ...

- The page's buttons rerun the group from their callbacks (`rerun_group` as their `on_click`, or
  `st.rerun(key)` inside one), so a click starts or stops the polling at once.
- The group's slow heartbeat reruns it every `HEARTBEAT` seconds, so the polling stops on its own
  soon after a run ends by itself (a step budget, a host's cap, an evaluation that arrived).

Every widget of a live page (a button, a checkbox, a slider) goes in the group, never in a part.
A part that stops or starts polling is a new fragment, and Streamlit drops a click on a widget
whose fragment has just been replaced (the browser still names the old one): a Train click in the
second the first evaluation arrives would be lost. The group's key keeps its identity.

Nothing here reruns the whole page. In Streamlit a whole-page rerun requested from inside a
fragment (`st.rerun(scope="app")` in a fragment or its callbacks) races with the fragments' own
timed reruns: under load the browser receives elements for a page layout it no longer has ("Bad
delta path index"), closes its connection and shows a blank page.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx

HEARTBEAT = 2.0  # seconds: how soon the parts stop polling after a run ends by itself


def group(key: str, draw: Callable[[], None]) -> None:
    """Draw `draw`, which declares the page's parts, as a keyed fragment with a heartbeat."""
    st.fragment(run_every=HEARTBEAT, key=key)(draw)()


def part(draw: Callable[[], None], run_every: float | None) -> None:
    """Declare and draw one part of a group, polling every `run_every` seconds or not at all.

    Streamlit names a fragment after its function and keeps the browser's timer of a fragment
    declared again under the same name, even without `run_every`. So a polling part and a still
    one get different names: when the group's rerun declares the other one, the old fragment is
    dropped and the browser told to stop its timer."""
    st.fragment(run_every=run_every)(_named(draw, polling=run_every is not None))()


def rerun_group(key: str, action: Callable[[], None]) -> Callable[[], None]:
    """A button callback: do `action`, then rerun the group `key` (its rates follow the new state).

    Declared while the group draws its buttons. The browser can send a click's trigger twice: with
    the click's own rerun of the group, and with a part's timed rerun that left at the same moment.
    The second would act twice (two steps for one Step), so a callback runs only in a rerun of the
    whole page or of its own group."""
    own = _drawing_fragment()

    def callback() -> None:
        running = _fragments_this_run()
        if own is not None and running and own not in running:
            return  # the same click, delivered again with another fragment's rerun
        action()
        st.rerun(key)

    return callback


def _drawing_fragment() -> str | None:
    """The fragment being drawn now (Streamlit 1.67's thread state; None outside a fragment)."""
    return ThreadState.get().fragment_id


def _fragments_this_run() -> list[str]:
    ctx = get_script_run_ctx()
    return list(ctx.fragment_ids_this_run or []) if ctx is not None else []


def _named(draw: Callable[[], None], polling: bool) -> Callable[[], None]:
    def named() -> None:
        draw()

    named.__module__ = draw.__module__
    named.__qualname__ = f"{draw.__qualname__}.{'polling' if polling else 'still'}"
    return named

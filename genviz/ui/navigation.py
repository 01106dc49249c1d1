"""Pages run through app.py's navigation, and a page change sticks.

**Through app.py.** Streamlit decides once per server, when its first session starts and from the
folder alone, that an app beside a `pages/` folder is a folder app (its first multipage design):
until some run of app.py calls `st.navigation`, a page opened by its address runs alone, without
app.py: Streamlit's default navigation of file names, a narrow layout, none of app.py's setup. On a
fresh server whose first visitor comes by a shared link, that is every visitor's page until someone
opens the root. `run_through_app`, first in every page, turns the folder mode off and runs the page
again, through app.py.

**A page change sticks.**
When a visitor opens another page while a live page polls, the browser stops the old page's
timers, but a timer declared again by a run whose output was still on its way can fire once
more, naming the old page and one of its parts. Streamlit 1.67 accepts that request: the old
part still exists until the new page's run ends. Then it runs the part *as the old page*: the
browser, told the page changed, clears the new page it has just drawn, and the session forgets
the new page's widget values. The visitor sees an empty page under the new page's address, and
nothing redraws it (the new page's parts draw into containers that are gone). If the request comes
before the new page's run starts, it is merged with the page change and the old page wins.

`guard_page_changes` drops a rerun of a part that names a page other than the one the session is
on: a part's rerun never changes the page on purpose. (A stale request that comes before the new
page's run has started still wins over the page change; the visitor then clicks again. Guarding it
would need the page last asked for, which a page that switches to another by itself makes unreliable.)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection
from typing import Any

import streamlit as st
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.pages_manager import PagesManager

_LOGGER = logging.getLogger(__name__)


def is_stale(part_page: str, current_page: str, pages: Collection[str]) -> bool:
    """A part's rerun naming `part_page` is stale when the session is on another of the app's `pages`.
    Nothing is compared where either page is not known: a rerun that names none, or a session whose
    first run has not yet resolved its page (it stands on the main script, which is no page)."""
    return bool(part_page) and current_page in pages and part_page != current_page


def guard_page_changes() -> None:
    """Wrap `AppSession.request_rerun`, once per process, so that stale part reruns are dropped."""
    original = AppSession.request_rerun
    if getattr(original, "guards_page_changes", False):
        return

    @functools.wraps(original)
    def request_rerun(self: AppSession, client_state: Any) -> None:
        fragment = client_state.fragment_id if client_state is not None else ""
        if fragment and is_stale(client_state.page_script_hash, self.page_script_hash, self.get_pages()):
            _LOGGER.debug("dropped a rerun of part %s of a page no longer shown", fragment)
            return
        original(self, client_state)

    request_rerun.guards_page_changes = True  # type: ignore[attr-defined]
    AppSession.request_rerun = request_rerun  # type: ignore[method-assign]


def run_through_app() -> None:
    """First in every page: a page run alone as a page of the `pages/` folder runs again through app.py."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False  # for the server: `st.navigation` would set it too
        st.rerun()

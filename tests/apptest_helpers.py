"""What the AppTest-driven page tests share."""

from __future__ import annotations

import time
from collections.abc import Callable

from streamlit.testing.v1 import AppTest


def press(at: AppTest, key: str) -> AppTest:
    """Click the button `key` as a visitor would, then show the whole page.

    A live-view button reruns only its fragment group, and AppTest's element tree then holds
    only what that rerun drew; the browser keeps the rest of the page (the sidebar, the header).
    The second, full run gives the test the whole page again."""
    at.button(key=key).click().run()
    return at.run()


def run_until(at: AppTest, done: Callable[[AppTest], bool], timeout: float = 60) -> AppTest:
    """Rerun the page until `done(at)`: the worker trains between the runs."""
    deadline = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < deadline, "the page did not get there in time"
        time.sleep(0.2)
        at.run()
    return at

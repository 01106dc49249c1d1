"""What the AppTest-driven page tests share."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def press(at: AppTest, key: str) -> AppTest:
    """Click the button `key` as a visitor would, then show the whole page.

    A live-view button reruns only its fragment group, and AppTest's element tree then holds
    only what that rerun drew; the browser keeps the rest of the page (the sidebar, the header).
    The second, full run gives the test the whole page again."""
    at.button(key=key).click().run()
    return at.run()

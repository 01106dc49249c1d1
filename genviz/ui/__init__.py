"""The web app's building blocks: the only part of genviz that imports streamlit.

`state` keeps one Session per browser session, `widgets` builds the controls from the
registries, and `live` trains and draws in a timed fragment.
"""

from genviz.ui.files import files_popover
from genviz.ui.live import EXPLORER_TITLE, live_view, page_style, session_with_preview
from genviz.ui.navigation import guard_page_changes, run_through_app
from genviz.ui.state import Session, follow_link, session, sync_url
from genviz.ui.widgets import buttons, header, sidebar

__all__ = [
    "EXPLORER_TITLE",
    "Session",
    "buttons",
    "files_popover",
    "follow_link",
    "guard_page_changes",
    "header",
    "live_view",
    "page_style",
    "run_through_app",
    "session",
    "session_with_preview",
    "sidebar",
    "sync_url",
]

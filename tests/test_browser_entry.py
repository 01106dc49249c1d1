"""A fresh server whose first visitor comes by a shared link to a page, not to the root, in headless
Chromium (`python -m pytest -m browser`): the page runs through app.py, with the app's navigation
and wide layout, the link's settings, and the same for the next visitor.

Streamlit takes an app beside a `pages/` folder for a folder app until a run of app.py calls
`st.navigation`; without `ui.run_through_app` this page would run alone, under a navigation of
file names ("app", "about", …) in a narrow layout, for every visitor until someone opened the root.
"""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api")

import test_browser  # noqa: E402  (its server, browser and page fixtures: a fresh server for this module)
from test_browser import assert_no_exception, wait_for_step  # noqa: E402

server, browser, page = test_browser.server, test_browser.browser, test_browser.page

pytestmark = pytest.mark.browser

NAVIGATION_JS = "() => [...document.querySelectorAll('[data-testid=stSidebarNav] a')].map(a => a.innerText)"
WIDE_JS = "() => document.querySelector('[data-testid=stApp]').classList.contains('streamlit-wide')"


def navigation(page) -> list[str]:
    """The sidebar's page links, their titles without their icons' names."""
    return [text.strip().splitlines()[-1] for text in page.evaluate(NAVIGATION_JS)]


def test_a_link_to_a_page_on_a_fresh_server_opens_it_in_the_app(server: str, page, browser) -> None:
    link = f"{server}/explorer?target=moons&model=gmm"
    page.goto(link)
    page.get_by_role("link", name="Theory", exact=True).wait_for(timeout=90_000)  # the app's own navigation
    assert navigation(page) == [
        "Home",
        "Explorer",
        "Theory",
        "Generative vs discriminative",
        "Forward vs reverse KL",
        "Compare",
        "About",
    ]
    assert page.evaluate(WIDE_JS), "the page is not in the app's wide layout"
    page.get_by_role("button", name="Train", exact=True).click(timeout=60_000)
    assert wait_for_step(page, above=0) > 0
    assert "target=moons" in page.url and "model=gmm" in page.url  # the link's settings were kept
    assert_no_exception(page)
    second = browser.new_page(viewport={"width": 1400, "height": 1000})  # the next visitor, same link
    try:
        second.goto(link)
        second.get_by_role("link", name="Theory", exact=True).wait_for(timeout=60_000)
        assert "app" not in navigation(second) and second.evaluate(WIDE_JS)
    finally:
        second.close()

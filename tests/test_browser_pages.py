"""The Forward vs reverse KL, Compare and About pages in headless Chromium (`python -m pytest -m browser`):
each trains through the live engine and shows its labelled numbers and charts without an exception."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api")

import test_browser  # noqa: E402  (its server, browser and page fixtures, used here as they are)
from test_browser import assert_no_exception, metrics  # noqa: E402

from genviz.models import MODELS  # noqa: E402
from genviz.targets import TARGETS  # noqa: E402

server, browser, page = test_browser.server, test_browser.browser, test_browser.page

pytestmark = pytest.mark.browser


def open_page(page, server: str, link: str) -> None:
    """Open the app, then the page from the navigation (a cold server's first run starts its workers)."""
    page.goto(server)
    page.get_by_role("link", name=link).click(timeout=90_000)


def test_divergence_page_trains_both_fits(server: str, page) -> None:
    open_page(page, server, "Forward vs reverse KL")
    page.get_by_text("mode covering and mode seeking").wait_for(timeout=60_000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 5", timeout=60_000)
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="Pause", exact=True).wait_for(timeout=30_000)
    page.wait_for_timeout(3000)
    page.get_by_role("button", name="Pause", exact=True).click()
    page.get_by_role("button", name="Start").wait_for(timeout=30_000)
    assert {"KL(p‖q)", "KL(q‖p)"} <= set(metrics(page))
    assert page.get_by_text("exact ±").count() == 4  # each divergence of each fit, with its kind
    assert_no_exception(page)


def test_compare_page_ranks_the_default_families(server: str, page) -> None:
    open_page(page, server, "Compare")
    seconds = page.get_by_label("Seconds per run")
    seconds.fill("2")
    seconds.press("Enter")
    page.get_by_role("button", name="Run comparison").click()
    page.get_by_text("Leaderboard", exact=True).wait_for(timeout=120_000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 6", timeout=30_000)
    assert_no_exception(page)


def test_about_page_lists_every_family_and_target(server: str, page) -> None:
    open_page(page, server, "About")
    page.get_by_role("heading", name="Exact, bound, estimate").wait_for(timeout=60_000)  # the last one
    page.get_by_text(TARGETS["banana"].description).wait_for(timeout=60_000)  # the tables are drawn
    text = page.locator('[data-testid="stMain"]').inner_text()
    missing = [name for name in [*(f.title for f in MODELS.values()), *TARGETS] if name not in text]
    assert not missing, missing
    assert_no_exception(page)

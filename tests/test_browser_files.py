"""The Explorer's Save · share popover in headless Chromium: a model exported by the browser's own
download continues in another visitor's session through the real uploader; the link is the page's
address with every setting; each chart's toolbar offers its PNG.

Run with `python -m pytest -m browser tests/test_browser_files.py`."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from test_browser import assert_no_exception, browser, server, step, wait_for_step  # noqa: F401  (fixtures)

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

SMALL = "model=gmm&p.components=4&target=moons"


def open_explorer(browser, url: str):  # noqa: F811
    page = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True).new_page()
    page.goto(f"{url}/explorer?{SMALL}")
    wait_for_step(page)
    return page


def save_and_share(page) -> None:
    page.get_by_role("button", name="Save · share").click()
    page.get_by_role("button", name="Export model").wait_for(timeout=30_000)


def wait_for_text(page, text: str, timeout: float = 60) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout * 1000)


def test_a_downloaded_model_continues_in_another_session(server: str, browser, tmp_path: Path) -> None:  # noqa: F811
    first = open_explorer(browser, server)
    for taken in range(1, 4):
        first.get_by_role("button", name="Step", exact=True).click()
        assert wait_for_step(first, taken - 1) == taken, "one click on Step took more than one step"
    save_and_share(first)
    assert step(first) == 3
    with first.expect_download(timeout=60_000) as download:
        first.get_by_role("button", name="Export model").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == "genviz-gmm-moons-model.zip"
    assert "manifest.json" in zipfile.ZipFile(io.BytesIO(path.read_bytes())).namelist()
    link = first.locator('[data-testid="stCode"]').first.inner_text()
    assert link.startswith(f"{server}/explorer?") and "n_test=" in link and "p.components=4" in link
    assert_no_exception(first)

    second = open_explorer(browser, server.replace("127.0.0.1", "localhost"))  # another visitor
    save_and_share(second)
    second.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    wait_for_text(second, "Imported genviz-gmm-moons-model.zip: gmm on moons at step 3")
    deadline = time.monotonic() + 30
    while step(second) != 3:
        assert time.monotonic() < deadline, f"the Step card shows {step(second)}, not the imported 3"
        time.sleep(0.3)
    assert_no_exception(second)


def test_each_chart_offers_its_png(server: str, browser) -> None:  # noqa: F811
    page = open_explorer(browser, server)
    chart = page.locator(".st-key-density .js-plotly-plot").first
    chart.hover()
    button = chart.locator('.modebar-btn[data-title="Download plot as a PNG"]')
    assert button.count() == 1
    assert_no_exception(page)

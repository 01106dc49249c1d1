"""Drawing your data in headless Chromium: a mouse drag on the sidebar's canvas is a lasso stroke,
Box Select fills a rectangle, Undo and Clear take them back, and the drawing trains like an upload.

Run with `python -m pytest -m browser tests/test_browser_drawing.py`."""

from __future__ import annotations

import re

import pytest
from test_browser import browser, page, server, step, wait_for_step  # noqa: F401  (fixtures)

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

CANVAS = ".st-key-sketch_canvas .js-plotly-plot"


def choose_target(page, label: str) -> None:  # noqa: F811
    page.locator(".st-key-target").click()
    page.get_by_role("option", name=label).click()


def canvas_box(page) -> dict[str, float]:  # noqa: F811
    drag = page.locator(f"{CANVAS} .nsewdrag").first
    drag.wait_for(timeout=60_000)
    return drag.bounding_box()


def drag(page, path: list[tuple[float, float]]) -> None:  # noqa: F811
    """Drag the mouse through `path`, given as fractions of the canvas (0, 0 is its top left)."""
    box = canvas_box(page)
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in path]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


def strokes_shown(page, count: int) -> None:  # noqa: F811
    page.get_by_text(re.compile(rf"^{count} of at most \d+ strokes")).wait_for(timeout=60_000)


def test_drawing_strokes_and_training_on_them(server: str, page) -> None:  # noqa: F811
    page.goto(f"{server}/?model=gmm")
    wait_for_step(page)
    choose_target(page, "draw your data")
    strokes_shown(page, 0)
    drag(page, [(0.2, 0.5), (0.35, 0.3), (0.5, 0.5), (0.65, 0.7), (0.8, 0.5)])  # a wave, as a lasso
    strokes_shown(page, 1)
    page.locator(CANVAS).hover()
    page.locator('.st-key-sketch_canvas [data-title="Box Select"]').first.click()
    drag(page, [(0.15, 0.1), (0.35, 0.25)])
    strokes_shown(page, 2)
    page.get_by_role("button", name="Undo").click()
    strokes_shown(page, 1)
    page.get_by_role("button", name="Clear").click()
    strokes_shown(page, 0)
    drag(page, [(0.2, 0.2), (0.5, 0.8), (0.8, 0.2)])
    strokes_shown(page, 1)
    page.get_by_role("button", name="Train on it").click()
    page.get_by_text("Model rebuilt: target changed from 8gaussians to data").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"your drawing \(1 stroke\)")).first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Step", exact=True).click()
    wait_for_step(page, above=0)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("KL(p‖q) · unavailable").count() >= 1


def test_typing_a_density_and_a_hostile_one(server: str, page, tmp_path) -> None:  # noqa: F811
    page.goto(f"{server}/?model=gmm")
    wait_for_step(page)
    choose_target(page, "type a density (formula)")
    field = page.get_by_role("textbox", name="log p(x, y) + const")
    field.fill("x.__class__")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text(re.compile("__class__.* is not allowed")).first.wait_for(timeout=30_000)
    assert page.get_by_text("still showing 8gaussians").count() == 1
    field.fill("-(x**2 + y**2)/2")
    page.get_by_role("textbox", name="Box").fill("-6, 6, -6, 6")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("Model rebuilt: target changed from 8gaussians to formula").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"512² grid of \[−6, 6\]²")).first.wait_for(timeout=30_000)
    assert "formula=" in page.url
    page.get_by_role("button", name="Step", exact=True).click()
    wait_for_step(page, above=0)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(tmp_path / "typed.png"))

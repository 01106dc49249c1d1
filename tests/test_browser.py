"""The real app in headless Chromium: it trains live, draws its charts, and never shows an exception.

Run with `python -m pytest -m browser`. The README's screenshot comes from here:
`GENVIZ_SCREENSHOT=docs/screenshot.png python -m pytest -m browser` refreshes it, and
`GENVIZ_FAMILY_SHOTS=DIR` keeps one screenshot per model family in DIR.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from genviz.models import MODELS

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT_VARIABLE = "GENVIZ_SCREENSHOT"  # where to keep the screenshot; a temporary file otherwise
FAMILY_SHOTS_VARIABLE = "GENVIZ_FAMILY_SHOTS"  # a folder for one screenshot per family, if set
SERVER_LOG_VARIABLE = "GENVIZ_SERVER_LOG"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TRAIN_SECONDS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    command += ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
    # GENVIZ_SERVER_LOG names a file for the server's output, to see what it did when a test fails
    log = os.environ.get(SERVER_LOG_VARIABLE)
    output = open(log, "a") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the server)
    process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log:
            output.close()


@pytest.fixture(autouse=True)
def mark_server_log(request) -> None:
    """Each test's start in the server's log, when it is kept."""
    log = os.environ.get(SERVER_LOG_VARIABLE)
    if log:
        with open(log, "a") as out:
            out.write(f"==== {time.strftime('%H:%M:%S')} {request.node.name}\n")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield page
    page.close()


METRICS_JS = """() => Object.fromEntries([...document.querySelectorAll('[data-testid="stMetric"]')].map(
    m => [m.querySelector('[data-testid="stMetricLabel"]').innerText.trim(),
          m.querySelector('[data-testid="stMetricValue"]').innerText.trim()]))"""


def metrics(page) -> dict[str, str]:
    """Metric card label -> value, as shown."""
    return page.evaluate(METRICS_JS)


def step(page) -> int:
    return int(metrics(page)["Step"].replace(",", ""))


def wait_for_step(page, above: int = -1, timeout: float = 60) -> int:
    """Wait until the step metric is shown and above `above`; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Step" in metrics(page) and step(page) > above:
            return step(page)
        time.sleep(0.5)
    raise TimeoutError(f"the step metric did not pass {above}")


def assert_no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0


def test_trains_live_and_saves_a_screenshot(server: str, page, tmp_path: Path) -> None:
    page.goto(f"{server}/?target=8gaussians&model=nsf")
    page.get_by_role("button", name="Train", exact=True).click()
    assert wait_for_step(page, above=0) > 0
    # plotly draws its charts after the metrics, so wait for all three rather than count at once
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=30_000)
    assert_no_exception(page)
    time.sleep(TRAIN_SECONDS)
    page.get_by_role("button", name="Pause", exact=True).click()
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=30_000)
    time.sleep(2)  # the paused page adds its quadrature cross-check
    assert_no_exception(page)
    page.get_by_text(re.compile("cross-check at step .* quadrature")).wait_for(timeout=30_000)
    save_full_page(page, Path(os.environ.get(SCREENSHOT_VARIABLE, tmp_path / "screenshot.png")))


def save_full_page(page, path: Path) -> None:
    """Streamlit scrolls inside its main pane, so grow the viewport to the content before the shot."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, height)})
    time.sleep(1.5)  # plotly redraws at the new size
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def test_a_bad_link_shows_a_message_not_a_crash(server: str, page) -> None:
    page.goto(f"{server}/?model=nsf&p.bins=many")
    page.get_by_text("Could not read this link").wait_for(timeout=60_000)
    assert wait_for_step(page) == 0
    assert_no_exception(page)


def test_about_page(server: str, page) -> None:
    page.goto(f"{server}/about")
    page.get_by_text("Families of generative models").wait_for(timeout=60_000)
    assert_no_exception(page)


def test_two_visitors_train_separate_models(server: str, browser) -> None:
    """Each browser session owns its model: one visitor's training never moves another's."""
    first = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    second = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        first.goto(f"{server}/?target=moons&model=gmm")
        second.goto(f"{server}/?target=rings&model=gaussian")
        assert wait_for_step(first) == 0 and wait_for_step(second) == 0
        first.get_by_role("button", name="Train", exact=True).click()
        moved = wait_for_step(first, above=5)
        first.get_by_role("button", name="Pause", exact=True).click()
        second.reload()
        assert wait_for_step(second) == 0
        second.get_by_role("button", name="Step", exact=True).click()
        assert wait_for_step(second, above=0) == 1
        assert step(first) >= moved
        assert_no_exception(first)
        assert_no_exception(second)
    finally:
        first.context.close()
        second.context.close()


FAMILY_TRAIN_SECONDS = 6


def pause_or_reach_the_budget(page, timeout: float = 60) -> None:
    """Pause training, unless a fast family has already run through the page's step budget.

    A click waits until the button is stable, and a browser busy drawing a training page can take
    seconds to answer; so a click that was never made (no button, or not clickable in time) is
    tried again. A click that was made must bring the Train button back."""
    pause = page.get_by_role("button", name="Pause", exact=True)
    train = page.get_by_role("button", name="Train", exact=True)
    deadline = time.monotonic() + timeout
    while not train.count():
        assert time.monotonic() < deadline, "training neither paused nor reached its budget"
        try:
            pause.click(timeout=5_000)
        except playwright.TimeoutError:
            continue  # not clicked: the budget ended it meanwhile, or the browser was busy
        train.wait_for(timeout=30_000)  # clicked: Pause must act
        return


@pytest.mark.parametrize("model", list(MODELS))
def test_each_family_trains_and_draws_its_view(server: str, page, model: str, tmp_path: Path) -> None:
    """Picked by link, each family trains live with its defaults, then shows its four charts
    (densities, NLL, KL, its own view) and labelled numbers, with no exception or failed view."""
    page.goto(f"{server}/?target=8gaussians&model={model}")
    assert wait_for_step(page) == 0
    page.get_by_role("button", name="Train", exact=True).click()
    wait_for_step(page, above=0, timeout=120)
    time.sleep(FAMILY_TRAIN_SECONDS)
    pause_or_reach_the_budget(page)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=60_000)
    assert_no_exception(page)
    assert page.get_by_text("could not be drawn").count() == 0
    shown = metrics(page)
    assert any(label.startswith("KL(p‖q) · ") for label in shown), shown
    folder = os.environ.get(FAMILY_SHOTS_VARIABLE)
    if folder:
        save_full_page(page, Path(folder) / f"{model}.png")


CHART_KEYS = ("target_density", "model_density", "nll", "kl", "family_view")


def chart(page, key: str):
    """The plotly chart of the element with this key."""
    return page.locator(f".st-key-{key} .js-plotly-plot").last


def bounding_box(page, key: str, timeout: float = 30) -> dict[str, float]:
    """Where a chart is drawn, once it is: a fragment's first run may not have drawn it yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(playwright.Error):
            box = chart(page, key).bounding_box(timeout=1_000)
            if box is not None:
                return box
        time.sleep(0.1)
    raise TimeoutError(f"chart {key} was not drawn")


def chart_keys_shown(page) -> list[str]:
    """The keys of the charts drawn on the page, in order."""
    return [key for key in CHART_KEYS if page.locator(f".st-key-{key} .js-plotly-plot").count() >= 1]


def test_every_chart_is_there_after_the_budget_ends(server: str, page) -> None:
    """Training runs to its step budget and stops by itself; the page then still shows every chart."""
    page.goto(f"{server}/?target=rings&model=ar-mixture&steps=300")
    assert wait_for_step(page) == 0
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("step budget reached").wait_for(timeout=120_000)
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=30_000)
    time.sleep(2)  # the fragments' last redraws
    assert chart_keys_shown(page) == list(CHART_KEYS)
    assert step(page) == 300
    assert_no_exception(page)


def test_the_live_charts_fit_a_1400_by_900_screen(server: str, browser) -> None:
    """While training, the density pair and both curves are in view without scrolling."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"{server}/?target=moons&model=maf")
        assert wait_for_step(page) == 0
        page.get_by_role("button", name="Train", exact=True).click()
        wait_for_step(page, above=0)
        for key in CHART_KEYS[:4]:
            box = bounding_box(page, key)
            assert box["y"] >= 0 and box["y"] + box["height"] <= 900, (key, box)
            assert box["x"] >= 0 and box["x"] + box["width"] <= 1400, (key, box)
        page.get_by_role("button", name="Pause", exact=True).click()
        assert_no_exception(page)
    finally:
        page.close()


MODEL_CHART = ".st-key-model_density .genviz-chart"  # the div a live chart keeps (`genviz.ui.charts`)
REVISION_JS = "key => Number(document.querySelector(`.st-key-${key} .genviz-chart`)?.dataset.revision || 0)"


def test_a_refresh_updates_the_chart_in_place_and_keeps_the_zoom(server: str, page) -> None:
    """While training, new heat maps are drawn into the same plotly div (no remount per refresh),
    and a zoom the visitor made with the mouse survives the refreshes."""
    page.goto(f"{server}/?target=8gaussians&model=gmm")
    assert wait_for_step(page) == 0
    page.wait_for_function(f"({REVISION_JS})('model_density') >= 1", timeout=60_000)
    page.evaluate(f"() => {{ window.__chart = document.querySelector('{MODEL_CHART}'); }}")
    drag_a_zoom_box(page, page.locator(f"{MODEL_CHART} .nsewdrag").first)
    zoomed = page.evaluate(RANGES_JS)
    assert all(-4.5 < low < high < 4.5 for low, high in zoomed), zoomed
    before = page.evaluate(REVISION_JS, "model_density")
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function(f"({REVISION_JS})('model_density') >= {before + 5}", timeout=60_000)
    pause_or_reach_the_budget(page)
    assert page.evaluate(f"() => document.querySelector('{MODEL_CHART}') === window.__chart")
    assert page.evaluate(RANGES_JS) == zoomed
    assert_no_exception(page)


RANGES_JS = "() => ['xaxis', 'yaxis'].map(axis => window.__chart._fullLayout[axis].range)"


def drag_a_zoom_box(page, plot_area) -> None:
    """Drag the mouse over the middle fifth of a plot, as a visitor zooms in."""
    box = plot_area.bounding_box()
    x, y = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.4
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + box["width"] * 0.2, y + box["height"] * 0.2, steps=10)
    page.mouse.up()


def test_a_link_asking_for_a_huge_model_gets_a_message(server: str, page) -> None:
    """A crafted link cannot build a model of a billion parameters: it gets a message, the defaults."""
    widths = ",".join(["1024"] * 1000)
    page.goto(f"{server}/?target=moons&model=gan&p.hidden={widths}")
    page.get_by_text("Could not read this link").wait_for(timeout=60_000)
    assert wait_for_step(page) == 0
    page.get_by_role("button", name="Step", exact=True).click()
    assert wait_for_step(page, above=0) == 1  # the server still trains
    assert_no_exception(page)


def test_classifier_page_trains_both_classifiers(server: str, page) -> None:
    """The generative and discriminative classifiers train live and show labelled scores and regions."""
    page.goto(server)
    page.get_by_role("link", name="Generative vs discriminative").click(timeout=60_000)  # a cold server
    page.get_by_text("Generative vs discriminative classification").wait_for(timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    deadline = time.monotonic() + 120
    while not all(accuracy_shown(page, side) for side in ("generative", "discriminative")):
        assert time.monotonic() < deadline, "the accuracies were not shown"
        time.sleep(0.5)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=60_000)
    page.get_by_text("test points are less likely").first.wait_for(timeout=30_000)
    assert_no_exception(page)


def accuracy_shown(page, side: str) -> bool:
    """The classifier's accuracy card shows a percentage (the fragment may be redrawing it)."""
    with contextlib.suppress(playwright.Error):
        value = page.locator(f'.st-key-classify-{side} [data-testid="stMetricValue"]').first
        return value.inner_text(timeout=1_000).strip().endswith("%")
    return False


def test_a_home_leaf_trains_in_the_explorer_and_the_theory_page_shows_its_run(server: str, page) -> None:
    """Home is the default page; one click on a leaf of the tree opens the Explorer training that
    family; the Theory page shows the same run's numbers beside the chain, and its chart."""
    page.goto(server)
    page.get_by_text("The families of generative models").wait_for(timeout=60_000)
    page.get_by_role("link", name="Gaussian mixture", exact=True).click()
    assert wait_for_step(page, above=0) > 0  # no Train pressed: the link starts training
    assert "/explorer?" in page.url and "model=gmm" in page.url and "autostart" not in page.url
    page.get_by_role("link", name="Theory").first.click()
    page.get_by_text("Why the log").wait_for(timeout=60_000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=30_000)
    shown = metrics(page)
    assert {"H(p*) · exact", "KL(p*‖q) · exact", "held-out mean log q · exact"} <= set(shown), shown
    assert float(shown["H(p*) · exact"]) == 2.832
    page.get_by_role("cell", name="0 (underflow)").first.wait_for(timeout=30_000)  # the product, not the sum
    assert_no_exception(page)

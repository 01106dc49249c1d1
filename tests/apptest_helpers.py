"""What the AppTest-driven page tests share."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass
class Chart:
    """A chart the page drew: its key, figure and plotly config, as the browser receives them."""

    key: str
    figure: dict[str, Any]
    config: dict[str, Any]


def charts(at: AppTest) -> list[Chart]:
    """The page's charts (`genviz.ui.charts.live_chart`), in page order."""
    found = []
    for element in at.get("bidi_component"):
        spec = json.loads(element.proto.bytes)
        found.append(Chart(element.key, spec["figure"], spec["config"]))
    return found


def chart_keys(at: AppTest) -> list[str]:
    return [chart.key for chart in charts(at)]

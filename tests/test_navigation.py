"""A live page's timer that fires after the visitor opened another page cannot blank that page.

A real server and Streamlit's own websocket protocol, on a two-page app (`tests/apps/two_pages.py`):
the browser asks for the second page, then a timer of the first page's part fires once more, as a
browser does when the part's timer was declared again by output still on its way. Unguarded,
Streamlit then runs the part as the first page, and a browser clears the second page it has just
drawn; with `guard_page_changes` (as `app.py` installs it) the stale rerun is dropped."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from test_browser import free_port, wait_until_healthy

from benchmarks.visitors import open_stream, rerun_message
from genviz.ui.navigation import is_stale

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "apps" / "two_pages.py"


def test_only_a_part_of_another_page_is_stale() -> None:
    pages = {"first", "second"}
    assert is_stale("first", "second", pages)
    assert not is_stale("second", "second", pages)
    assert not is_stale("", "second", pages)  # a rerun that names no page
    assert not is_stale("first", "", pages)  # before the session's first run
    assert not is_stale("first", "main", pages)  # a first run that has not resolved its page yet


class Session:
    """One browser session over the websocket: every message the server sends, in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: list[ForwardMsg] = []
        self.ws: websockets.ClientConnection | None = None

    async def open(self) -> None:
        self.ws = await open_stream(self.url)
        asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for data in self.ws:
            message = ForwardMsg()
            message.ParseFromString(data)
            self.messages.append(message)

    async def rerun(self, page: str, fragment_id: str = "") -> None:
        message = rerun_message("", page, [], fragment_id=fragment_id, auto=bool(fragment_id))
        await self.ws.send(message.SerializeToString())

    async def finished_runs(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sum(m.WhichOneof("type") == "script_finished" for m in self.messages) < count:
            assert time.monotonic() < deadline, "the server did not finish its runs"
            await asyncio.sleep(0.05)

    async def started(self, page: str, after: int, timeout: float = 60) -> None:
        """Until a run of `page` has started, after the first `after` messages."""
        deadline = time.monotonic() + timeout
        while not any(m.new_session.page_script_hash == page for m in self.messages[after:]):
            assert time.monotonic() < deadline, "the server did not start the page"
            await asyncio.sleep(0.02)

    def of(self, kind: str) -> list[ForwardMsg]:
        return [m for m in self.messages if m.WhichOneof("type") == kind]


async def late_timer(url: str) -> tuple[list[str], str, str]:
    """Open the first page, ask for the second, and fire the first page's part's timer while the
    second runs; the pages of the runs that followed the request for the second page."""
    session = Session(url)
    await session.open()
    await session.rerun("")
    await session.finished_runs(1)
    first = session.of("new_session")[0].new_session.page_script_hash
    pages = {p.page_name: p.page_script_hash for p in session.of("navigation")[-1].navigation.app_pages}
    part = session.of("auto_rerun")[0].auto_rerun.fragment_id
    shown = session.of("navigation")[-1].navigation.page_script_hash  # what a browser's timers name
    await session.rerun(shown, fragment_id=part)  # the part's timer, at once: it runs
    await session.finished_runs(2)
    assert list(session.of("new_session")[-1].metadata.run.fragment_ids) == [part]
    second = pages["Second"]
    seen = len(session.messages)
    await session.rerun(second)  # the visitor opens the second page
    await session.started(second, after=seen)  # its run has started, and takes a second
    await session.rerun(first, fragment_id=part)  # the first page's timer, once more
    await session.finished_runs(3)
    await asyncio.sleep(1.5)  # time for a run that would follow
    runs = [
        m.new_session.page_script_hash
        for m in session.messages[seen:]
        if m.WhichOneof("type") == "new_session"
    ]
    await session.ws.close()
    return runs, first, second


@pytest.fixture(params=[False, True], ids=["unguarded", "guarded"])
def two_pages(request) -> Iterator[tuple[str, bool]]:
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true"]
    command += ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
    guarded = request.param
    env = {**os.environ, "TWO_PAGES_GUARDED": "1" if guarded else "0", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url, guarded
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_late_timer_of_the_page_left_does_not_run_it_again(two_pages: tuple[str, bool]) -> None:
    url, guarded = two_pages
    runs, first, second = asyncio.run(late_timer(url))
    assert runs[0] == second
    if guarded:
        assert runs == [second], "a part of the page left ran after the page change"
    else:  # Streamlit 1.67 by itself: the part runs as the first page, and a browser clears the second
        assert runs == [second, first], "Streamlit no longer runs the stale part: the guard may go"

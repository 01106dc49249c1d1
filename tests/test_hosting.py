"""The server's own settings for a shared host: .streamlit/config.toml and the CI script."""

from __future__ import annotations

import tomllib
from pathlib import Path

from streamlit import config as streamlit_config

from genviz.pointsfile import MAX_BYTES

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


def test_the_server_is_configured_for_a_shared_host() -> None:
    server, client = SETTINGS["server"], SETTINGS["client"]
    assert server["enableXsrfProtection"] is True and server["enableCORS"] is True
    assert server["enableStaticServing"] is False
    assert client["showErrorDetails"] in ("type", "none")  # no tracebacks in a student's browser
    # the uploader refuses what genviz.pointsfile would refuse anyway (Streamlit's MB are MiB)
    assert server["maxUploadSize"] * 2**20 == MAX_BYTES


def test_the_browser_keeps_large_elements_across_a_live_pages_runs() -> None:
    """A live page's parts run at different rates and each run ages the browser's cached elements:
    at Streamlit's default age of 2 a reference could arrive for an element just dropped."""
    assert SETTINGS["global"]["maxCachedMessageAge"] >= 10


def test_no_full_garbage_collection_after_each_script_run() -> None:
    """The live page reruns its fragments several times a second: a forced gc.collect(2) per run
    would cost the server more than drawing does."""
    assert SETTINGS["runner"]["postScriptGC"] is False


def test_every_setting_is_one_streamlit_knows() -> None:
    """A misspelt key is ignored with a warning at most: check each against Streamlit's own list."""
    known = streamlit_config._config_options_template
    keys = [f"{section}.{key}" for section, values in SETTINGS.items() for key in values]
    assert keys and [key for key in keys if key not in known] == []


def test_ci_installs_chromium_itself_and_runs_the_browser_tests() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = "\n".join(line for line in lines if not line.strip().startswith("#"))
    assert "apt-get install -y chromium" in commands and "playwright install" not in commands
    assert "python -m pytest && python -m pytest -m browser" in commands

"""The Explorer's files: export and import the trained model, download what the page shows, share a link.

Every download is built when its button is clicked (Streamlit calls the function then, on a server
thread), from the latest snapshot, so none of them costs the live refresh anything.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import numpy as np
import streamlit as st

from genviz.bundle import MAX_FILE_BYTES, npz_bytes
from genviz.config import USER_DATA, RunConfig
from genviz.data import config_target, log_prob_grid
from genviz.engine import Snapshot
from genviz.ui.state import PLOTLY_CONFIG, Session, session

IMPORT_KEY = "import_model"
CHARTS = {"target": "target density", "model": "model density", "nll": "NLL curve", "kl": "KL curve"}
MODEL_ONLY_HERE = (
    "The trained model lives only in this session, on this server: export it to keep it; import a "
    "model file (from here or from `python -m genviz train --out`) to continue training it."
)
PNG_NOTE = (
    "PNG: the camera button in each chart's toolbar (on hover) saves that chart, drawn by your browser."
)


def files_popover(container: Any) -> None:
    """One button that opens the model file, downloads and share link; it adds no height to the page."""
    state = session()
    with container.popover("Save · share", icon=":material/ios_share:", width="stretch"):
        model_file(state)
        st.divider()
        downloads(state)
        st.divider()
        share(state)


# ------------------------------------------------------------------ the model file


def model_file(state: Session) -> None:
    st.markdown("**Model file**")
    st.caption(MODEL_ONLY_HERE)
    st.download_button(
        "Export model", state.export_model, file_name=file_name(state.config, "model", "zip"),
        mime="application/zip", on_click="ignore", icon=":material/download:", width="stretch",
        help="a zip of the weights, the optimiser and random states, the step and the curves (no pickle)",
    )  # fmt: skip
    st.file_uploader(
        "Import model", type=["zip"], key=IMPORT_KEY, on_change=_import, max_upload_size=MAX_FILE_BYTES >> 20,
        help="a model file exported here, or a run directory zipped (`python -m genviz train --out`)",
    )  # fmt: skip
    for message in (state.import_error, state.export_error):
        if message:
            st.error(message)


def _import() -> None:
    """The uploader's callback: it runs before the page, so the sidebar is drawn for the new model."""
    upload = st.session_state.get(IMPORT_KEY)
    if upload is not None:
        session().import_model(upload.name, upload.getvalue())


# ------------------------------------------------------------------ what the page shows


def downloads(state: Session) -> None:
    st.markdown("**Download what you see**")
    config, left, right = state.config, *st.columns(2)
    _download(left, "Metrics (CSV)", lambda: history_csv(state.snapshot), file_name(config, "metrics", "csv"))
    density = file_name(config, "density", "npz")
    _download(right, "Density grid (.npz)", lambda: density_npz(state.snapshot, state.config), density)
    st.caption("Each chart as interactive HTML (it works offline):")
    columns = st.columns(2)
    for i, (chart, label) in enumerate(CHARTS.items()):
        _download(
            columns[i % 2],
            label,
            lambda chart=chart: chart_html(state, chart),
            file_name(config, chart, "html"),
        )
    st.caption(PNG_NOTE)


MIME = {"csv": "text/csv", "npz": "application/octet-stream", "html": "text/html"}


def _download(column: Any, label: str, build: Callable[[], bytes], name: str) -> None:
    """A button whose file is built when it is clicked."""
    mime, key = MIME[name.rsplit(".", 1)[1]], f"download.{name.rsplit('-', 1)[1]}"
    column.download_button(
        label, build, file_name=name, mime=mime, on_click="ignore", width="stretch", key=key
    )


def file_name(config: RunConfig, what: str, ext: str) -> str:
    """e.g. genviz-nsf-8gaussians-metrics.csv."""
    target = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.target)
    return f"genviz-{config.model}-{target}-{what}.{ext}"


def history_csv(snapshot: Snapshot) -> bytes:
    """The learning curve, one row per evaluation: the numbers the curves draw, what kind each is
    (exact, bound, estimate) and the quadrature cross-check made at that step, if any."""
    checks = {step: result.value for step, result in snapshot.checks}
    rows = []
    for evaluation in snapshot.history:
        row = evaluation.row()
        row |= {"nll_kind": evaluation.nll.kind, "kl_kind": evaluation.kl.kind, "live": evaluation.live}
        rows.append(row | {"kl_quadrature": checks.get(evaluation.step)})
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue().encode("utf-8")


def density_npz(snapshot: Snapshot, config: RunConfig) -> bytes:
    """The heat map's grid as drawn: x (m,), y (k,), log_q (k, m) with log_q[i, j] at (x[j], y[i]),
    log_p on the same grid when the target's density is known, the step, and the samples if shown."""
    frame = snapshot.density
    if frame is None:
        raise RuntimeError("no density has been drawn yet")
    arrays = {"x": frame.x, "y": frame.y, "log_q": frame.log_q, "step": np.array(frame.step)}
    if config.target != USER_DATA:
        grid, log_p = log_prob_grid(config_target(config), frame.resolution)
        if np.allclose(grid.x.numpy(), frame.x) and np.allclose(grid.y.numpy(), frame.y):
            arrays["log_p"] = log_p.double().numpy()
    if frame.samples is not None:
        arrays["samples"] = frame.samples
    return npz_bytes(arrays)


def chart_html(state: Session, chart: str) -> bytes:
    """A chart as the page last drew it, as a standalone HTML page with plotly.js inside it."""
    key = "curves" if chart in ("nll", "kl") else chart
    if key not in state.figures:
        raise RuntimeError(f"the {CHARTS[chart]} has not been drawn yet")
    figure = state.figures[key][1]
    if key == "curves":
        figure = figure[0] if chart == "nll" else figure[1]
    return figure.to_html(include_plotlyjs=True, full_html=True, config=PLOTLY_CONFIG).encode("utf-8")


# ------------------------------------------------------------------ the link


def share(state: Session) -> None:
    st.markdown("**Share this configuration**")
    if state.config.target == USER_DATA:
        st.caption("Your uploaded points cannot travel in a link; export the model to share the run.")
        return
    st.code(share_url(st.context.url, state.config), language=None, wrap_lines=True)
    st.caption(
        "The copy button copies the link. It carries every setting (target, model, hyperparameters, "
        "training settings, seed), so it retrains the same model from scratch; the trained model "
        "itself is not in it: export it above."
    )


def share_url(base: str | None, config: RunConfig) -> str:
    """The page's address (without its query) with the configuration as query parameters."""
    return f"{(base or '').split('?')[0]}?{urlencode(config.to_query())}"

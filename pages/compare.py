"""Compare: several families on one target at one budget, trained side by side, then ranked."""

import streamlit as st

from genviz import ui
from genviz.targets import TARGETS
from genviz.ui import compare

ui.run_through_app()  # first: a page opened by its address on a fresh server

state = compare.compare_session()
st.markdown("#### Compare families at equal budget")
st.caption(
    "Every model trains on fresh samples of the target for the same budget, in sessions of their own "
    "that share the server's training slots; each is ranked by its KL(p‖q) on the same held-out points."
)
spec = compare.spec_from_controls(list(TARGETS))
compare.live_compare(state, spec)

"""Theory: maximum likelihood is KL minimisation, each step beside the number from a live run."""

import streamlit as st

from genviz import ui
from genviz.ui import theory

ui.run_through_app()  # first: a page opened by its address on a fresh server

state = ui.session()  # the same run as the Explorer's, within one browser session
st.title("Maximum likelihood is KL minimisation")
st.markdown(
    "Fit a model p_θ to points x₁ … xₙ drawn from a data distribution p\\*. Read the chain from the "
    "top: each step keeps the same best θ, and the numbers beside it come from the run below — start "
    "it here, or carry on the one from the Explorer. Change the target: H(p\\*) moves, the optimum "
    "stays KL = 0."
)
theory.run_controls(state)
theory.derivation_live()

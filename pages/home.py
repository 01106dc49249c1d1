"""Home: what genviz is, where to start, and the taxonomy of generative models, each family a link."""

import streamlit as st

from genviz import ui
from genviz.ui import home

ui.run_through_app()  # first: a page opened by its address on a fresh server

if {"target", "model"} & set(st.query_params):  # a link made before the Explorer had its own address
    st.switch_page(home.EXPLORER, query_params=st.query_params.to_dict())

st.title("genviz: watch generative models learn")
st.markdown(
    "genviz trains a generative model on a 2D distribution while you watch the learned density take "
    "shape beside the target's. It shows that maximum likelihood is minimising KL(p\\*‖q): the held-out "
    "negative log-likelihood falls towards the target's entropy H(p\\*), and the gap is the KL. Every "
    "number is labelled for what it is — exact, a bound, an estimate, or unavailable — and the tests "
    "check each against an independent computation."
)
newcomer, derivation = st.columns(2)
with newcomer.container(border=True):
    st.markdown("**New here?** One click trains a neural spline flow on eight Gaussians.")
    home.start_here()
with derivation.container(border=True):
    st.markdown("**Why does the NLL stop at H(p\\*)?** The derivation, step by step, with live numbers.")
    st.page_link(home.THEORY, label="Theory: maximum likelihood is KL minimisation", icon=":material/school:")

st.header("The families of generative models")
st.caption(
    "After Goodfellow's taxonomy (NIPS 2016 tutorial): by how a model gives its density. Diffusion and "
    "flow matching came later, heirs of the implicit branches, with a likelihood through an ODE. Each "
    "family opens the Explorer on a target it learns well, and starts training."
)
home.taxonomy_tree()

"""Forward against reverse KL: the same family fitted to the same target by each divergence, live."""

import streamlit as st

from genviz import ui
from genviz.ui import divergences

ui.run_through_app()  # first: a page opened by its address on a fresh server

state = divergences.pair_session()
st.markdown("#### Forward vs reverse KL: mode covering and mode seeking")
divergences.controls(state)
divergences.live_pair(state)

with st.expander("Why the two fits differ", icon=":material/school:", expanded=True):
    left, right = st.columns(2)
    left.markdown("**Forward KL** (maximum likelihood, from samples of p):")
    left.latex(r"\mathrm{KL}(p\,\|\,q) = \mathbb{E}_{x\sim p}\left[\log p(x) - \log q(x)\right]")
    left.markdown(
        "Wherever p has mass and q has almost none, −log q is huge, so q must **cover every mode** "
        "of p, even at the price of mass between them: *mode covering*. It needs only samples of p."
    )
    right.markdown("**Reverse KL** (fitted to p's density, from samples of q):")
    right.latex(r"\mathrm{KL}(q\,\|\,p) = \mathbb{E}_{x\sim q}\left[\log q(x) - \log p(x)\right]")
    right.markdown(
        "Wherever q puts mass and p has almost none, −log p is huge, so q **stays inside p's modes** "
        "and may drop whole modes at little cost: *mode seeking*. On `2gaussians` a Gaussian fitted "
        "this way settles on one mode, with KL(q‖p) = −log 2/3 ≈ 0.405 (the heavier mode's weight). "
        "It needs p's normalised log density and samples of q drawn with gradients (x = μ + Lε for "
        "the Gaussian, a flow's inverse, every component of a mixture weighted by its π_k)."
    )
    st.caption(
        "Each fit shows both divergences, each labelled: KL(p‖q) by Monte Carlo on held-out samples of "
        "p, KL(q‖p) by Monte Carlo on fresh samples of q. On U1–U4, p is zero outside its box, where "
        "KL(q‖p) of any q with mass there is infinite; the KL(q‖p) shown is that of q restricted to the box."
    )

"""Explorer: pick a target and a model, train it live, and watch the NLL fall towards its floor H(p)."""

import streamlit as st

from genviz import ui

state = ui.session()
config = ui.sidebar(state)
if config is not None:
    state.apply(config)  # live for training settings; a fresh model for anything else
ui.sync_url(state.config)

st.title("Maximum likelihood is KL minimisation")
st.markdown(
    r"$\mathbb{E}_p[-\log q] = H(p) + \mathrm{KL}(p\,\|\,q)$: the held-out NLL never falls below "
    "the target's entropy H(p), and the gap between them is the KL divergence that training minimises."
)
ui.header(state)
ui.buttons(state)
ui.live_view()

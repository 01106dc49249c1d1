"""Explorer: pick a target and a model, train it live, and watch the NLL fall towards its floor H(p)."""

import streamlit as st

from genviz import ui

ui.run_through_app()  # first: a page opened by its address on a fresh server

state = ui.session_with_preview()
ui.follow_link(state)  # a link from another page (Home's leaves), and its autostart
config = ui.sidebar(state)
if config is not None:
    state.apply(config)  # live for training settings; a fresh model for anything else
ui.sync_url(state.config)

title, files, explain = st.columns([4.2, 1.6, 2], vertical_alignment="bottom")
title.markdown(f"#### {ui.EXPLORER_TITLE}")
ui.files_popover(files)  # export and import the model, downloads, the link
with explain.popover("Why the NLL cannot fall below H(p)", icon=":material/school:", width="stretch"):
    st.markdown(
        r"$\mathbb{E}_p[-\log q] = H(p) + \mathrm{KL}(p\,\|\,q)$: the held-out NLL never falls below "
        "the target's entropy H(p), and the gap between them is the KL divergence that training "
        "minimises. Every number is labelled for what it is: exact, a bound, or an estimate."
    )
ui.header(state)
ui.live_view()

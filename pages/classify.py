"""Generative vs discriminative: Bayes' rule on one density per class against a network on p(y | x)."""

import streamlit as st

from genviz import ui
from genviz.ui import classifier

ui.run_through_app()  # first: a page opened by its address on a fresh server

state = classifier.classifier_state()
classifier.apply(state, classifier.sidebar(state))

st.markdown("#### Generative vs discriminative classification")
st.markdown(
    "A **generative** classifier models how each class's points arise, p(x | y), and how common each "
    "class is, p(y): it learns p(x, y) and classifies by Bayes' rule, "
    r"$p(y \mid x) = p(x \mid y)\,p(y) \,/\, \sum_{y'} p(x \mid y')\,p(y')$. "
    "A **discriminative** one models p(y | x) only. Both are trained here on the same labelled "
    "points; only the generative one can draw new points of a class, or say how unusual a point is."
)
classifier.live_view(state)

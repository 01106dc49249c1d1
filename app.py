"""genviz: the web app. Run with `streamlit run app.py`."""

import streamlit as st

from genviz import ui

st.set_page_config(page_title="genviz", page_icon=":material/scatter_plot:", layout="wide")
ui.page_style()
pages = [
    st.Page("pages/explorer.py", title="Explorer", icon=":material/insights:", default=True),
    st.Page("pages/about.py", title="About", icon=":material/menu_book:"),
]
st.navigation(pages).run()

"""genviz: the web app. Run with `streamlit run app.py`."""

import streamlit as st

# The page setup and the navigation go first, before the slow imports below: on a cold server the
# first visitor would otherwise see Streamlit's default list of the pages folder, in a narrow layout.
st.set_page_config(page_title="genviz", page_icon=":material/scatter_plot:", layout="wide")
navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/explorer.py", title="Explorer", icon=":material/insights:"),
        st.Page("pages/theory.py", title="Theory", icon=":material/function:"),
        st.Page("pages/classify.py", title="Generative vs discriminative", icon=":material/category:"),
        st.Page("pages/divergences.py", title="Forward vs reverse KL", icon=":material/compare_arrows:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:"),
        st.Page("pages/about.py", title="About", icon=":material/menu_book:"),
    ]
)

from genviz import engine  # noqa: E402

engine.scheduler()  # start the training workers first: they load torch while this process does

from genviz import ui  # noqa: E402  (imports torch and the models)

ui.page_style()
navigation.run()

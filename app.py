"""genviz: the web app. Run with `streamlit run app.py`."""

from pathlib import Path

import streamlit as st


def preload_chart_library() -> None:
    """On a session's first run, start the browser loading its plotly library (4.7 MB of script).
    It would load it only when a page first shows a chart, after this process has loaded torch and
    the model is built; this way both happen at once. Harmless where the file is not found."""
    if st.session_state.get("plotly_preloaded"):
        return
    st.session_state["plotly_preloaded"] = True
    chunks = sorted((Path(st.__file__).parent / "static" / "static" / "js").glob("PlotlyChart.*.js"))
    if not chunks:
        return
    # The chunk is named relative to Streamlit's own bundle, as the browser app itself imports it.
    st.html(
        "<script>const bundle = document.querySelector('script[src*=\"/static/js/index.\"]');"
        f"if (bundle) import(new URL('{chunks[0].name}', bundle.src).href).catch(() => {{}});</script>",
        unsafe_allow_javascript=True,
    )


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

preload_chart_library()

from genviz import engine  # noqa: E402

engine.scheduler()  # start the training workers first: they load torch while this process does

from genviz import ui  # noqa: E402  (imports torch and the models)

ui.guard_page_changes()  # a live page's late timer cannot blank the page opened after it
ui.page_style()
navigation.run()

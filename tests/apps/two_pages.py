"""Two pages for `tests/test_navigation.py`: the first polls in a timed part, the second takes a
second to run, so that a late timer of the first page arrives while the second is running."""

import os
import time

import streamlit as st

if os.environ.get("TWO_PAGES_GUARDED") == "1":
    from genviz.ui.navigation import guard_page_changes

    guard_page_changes()


def first() -> None:
    @st.fragment(run_every=60)  # the test fires the timer itself
    def part() -> None:
        st.write("a part of the first page")

    part()


def second() -> None:
    st.text_input("a widget of the second page", key="second.text")
    time.sleep(1.0)
    st.write("the second page, drawn")


st.navigation([st.Page(first, title="First", default=True), st.Page(second, title="Second")]).run()

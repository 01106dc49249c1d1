"""The Home page's tree: the taxonomy of generative models as nested boxes, each family a link that
opens the Explorer on its showcase target and starts training, with its static thumbnail."""

from __future__ import annotations

import streamlit as st

from genviz.models import MODELS
from genviz.models.kinds import DENSITY_KINDS
from genviz.taxonomy import START_HERE, TREE, Node, families_at, link_query, showcase, thumbnail, unplaced

EXPLORER = "pages/explorer.py"
THEORY = "pages/theory.py"


def start_here() -> None:
    model, target = START_HERE
    st.page_link(
        EXPLORER,
        label=f"Start here: a {MODELS[model].title.lower()} learns {target}",
        icon=":material/play_circle:",
        query_params=link_query(model, target),
        help="opens the Explorer on this pair and starts training",
    )


def taxonomy_tree() -> None:
    """The tree as nested boxes, explicit density beside implicit; each family a link at its leaf."""
    explicit, implicit = TREE.children
    left, right = st.columns(2, gap="medium")
    with left:
        _branch(explicit, (explicit.key,), 0)
    with right:
        _branch(implicit, (implicit.key,), 0)
    rest = unplaced()  # a family whose branch the tree does not name yet still gets its link
    if rest:
        st.markdown("**Also here**")
        for name in rest:
            leaf_link(name)


def _branch(node: Node, path: tuple[str, ...], depth: int) -> None:
    with st.container(border=depth < 2):
        prefix = "↳ today's heir: " if node.heir else ""
        if depth < 2:
            st.markdown(f"{'#' * (depth + 4)} {prefix}{node.title}")
            st.caption(node.note)
        else:
            st.markdown(f"{prefix}**{node.title}**" + (f" — {node.note}" if node.note else ""))
        for name in families_at(path):
            leaf_link(name)
        for child in node.children:
            _branch(child, (*path, child.key), depth + 1)


THUMBNAIL_WIDTH = 56  # pixels: the family's density after a short run, beside its link


def leaf_link(name: str) -> None:
    """The family's link to the Explorer, with its thumbnail (a static file) when there is one."""
    family, target = MODELS[name], showcase(name)
    words = DENSITY_KINDS[family.density_kind].words.replace("**", "")
    image = thumbnail(name)
    if image is None:
        return _link(name, family, target, words)
    picture, link = st.columns([1, 6], vertical_alignment="center", gap="small")
    picture.image(str(image), width=THUMBNAIL_WIDTH)
    with link:
        _link(name, family, target, words)


def _link(name: str, family: type, target: str, words: str) -> None:
    st.page_link(
        EXPLORER,
        label=family.title,
        icon=":material/play_arrow:",
        query_params=link_query(name),
        help=f"{family.summary} Opens the Explorer on {target} and starts training.",
    )
    st.caption(f"trains on {target} · {words}")

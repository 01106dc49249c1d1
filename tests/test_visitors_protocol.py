"""The websocket visitors of `benchmarks.visitors` on hand-made Streamlit messages, without a server:
the reruns they send, the widget values they keep, the element cache, and the fragments' timers."""

from __future__ import annotations

import asyncio

from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from benchmarks.visitors import (
    MessageCache,
    Visitor,
    is_density_chart,
    query_of,
    rerun_message,
    step_shown,
    trigger,
    widget_value,
)

LIVE = "fragment-live"  # the fragment that draws the buttons


def element_id(key: str) -> str:
    return f"$$ID-0123456789abcdef-{key}"


def delta(element: Element, fragment_id: str = "", hash_: str = "") -> ForwardMsg:
    msg = ForwardMsg(hash=hash_)
    msg.delta.new_element.CopyFrom(element)
    msg.delta.fragment_id = fragment_id
    return msg


def button(label: str, key: str) -> Element:
    element = Element()
    element.button.id, element.button.label = element_id(key), label
    return element


def new_session(page: str, fragment_ids: tuple[str, ...] = ()) -> ForwardMsg:
    msg = ForwardMsg()
    msg.new_session.page_script_hash = page
    msg.new_session.config.max_cached_message_age = 2
    msg.metadata.run.fragment_ids.extend(fragment_ids)
    return msg


def auto_rerun(fragment_id: str, interval: float) -> ForwardMsg:
    msg = ForwardMsg()
    msg.auto_rerun.fragment_id, msg.auto_rerun.interval = fragment_id, interval
    return msg


class Socket:
    """Collects what a visitor sends."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)


def test_a_rerun_names_the_page_the_widgets_the_fragment_and_the_cache() -> None:
    widgets = [WidgetState(id=element_id("overlay"), bool_value=True), trigger(element_id("train"))]
    msg = rerun_message("target=moons", "page", widgets, fragment_id=LIVE, auto=True, cached=["h1"], url="u")
    state = msg.rerun_script
    assert msg.WhichOneof("type") == "rerun_script"
    assert (state.query_string, state.page_script_hash, state.fragment_id) == ("target=moons", "page", LIVE)
    assert state.is_auto_rerun and list(state.cached_message_hashes) == ["h1"]
    assert [w.WhichOneof("value") for w in state.widget_states.widgets] == ["bool_value", "trigger_value"]
    assert state.context_info.url == "u" and state.context_info.timezone == "UTC"
    assert query_of("http://127.0.0.1:1/?target=moons&model=gmm") == "target=moons&model=gmm"


def test_widget_values_come_from_the_default_then_stay_until_the_server_sets_one() -> None:
    checkbox = Element()
    checkbox.checkbox.id, checkbox.checkbox.default = element_id("overlay"), True
    first = widget_value(checkbox, None)
    assert first is not None and first.bool_value is True
    kept = WidgetState(id=checkbox.checkbox.id, bool_value=False)
    assert widget_value(checkbox, kept) is kept
    checkbox.checkbox.set_value, checkbox.checkbox.value = True, True
    assert widget_value(checkbox, kept).bool_value is True


def test_choices_are_sent_as_their_labels() -> None:
    selectbox = Element()
    selectbox.selectbox.id = element_id("target")
    selectbox.selectbox.options.extend(["moons", "rings"])
    selectbox.selectbox.default = 1
    assert widget_value(selectbox, None).string_value == "rings"
    select_slider = Element()
    select_slider.slider.id = element_id("lr")
    select_slider.slider.options.extend(["0.001", "0.01"])
    select_slider.slider.default.append(1)
    assert list(widget_value(select_slider, None).string_array_value.data) == ["0.01"]
    select_slider.slider.set_value = True
    select_slider.slider.raw_value.append("0.001")
    assert list(widget_value(select_slider, None).string_array_value.data) == ["0.001"]
    slider = Element()
    slider.slider.id = element_id("components")
    slider.slider.default.append(8)
    assert list(widget_value(slider, None).double_array_value.data) == [8.0]


def test_buttons_and_other_elements_have_no_value() -> None:
    assert widget_value(button("Train", "train"), None) is None
    markdown = Element()
    markdown.markdown.body = "text"
    assert widget_value(markdown, None) is None


def test_the_step_card_and_the_density_chart_are_recognised() -> None:
    card = Element()
    card.metric.label, card.metric.body = "Step", "12,345"
    assert step_shown(card) == 12345
    card.metric.label = "NLL"
    assert step_shown(card) is None
    chart = Element()
    chart.bidi_component.id, chart.bidi_component.bytes = element_id("model_density"), b"{}"
    assert is_density_chart(delta(chart))
    chart.bidi_component.id = element_id("nll")
    assert not is_density_chart(delta(chart))
    older = Element()  # a page that draws with st.plotly_chart
    older.plotly_chart.id, older.plotly_chart.spec = element_id("model_density"), "{}"
    assert is_density_chart(delta(older))


def test_the_cache_answers_references_and_forgets_old_entries() -> None:
    cache = MessageCache(max_age=2)
    chart = Element()
    chart.plotly_chart.id = element_id("model_density")
    msg = delta(chart, fragment_id=LIVE, hash_="h1")
    msg.metadata.cacheable = True
    assert cache.resolve(msg, msg.SerializeToString()) is msg
    assert cache.hashes() == ["h1"]
    ref = ForwardMsg(ref_hash="h1")
    ref.metadata.delta_path.extend([0, 3])
    resolved = cache.resolve(ref, ref.SerializeToString())
    assert resolved.delta.new_element.plotly_chart.id == chart.plotly_chart.id
    assert list(resolved.metadata.delta_path) == [0, 3]
    assert cache.resolve(ForwardMsg(ref_hash="unknown"), b"") is None
    for _ in range(3):
        cache.finished(["another fragment"])  # other fragments' runs do not age it
    assert cache.hashes() == ["h1"]
    for _ in range(3):
        cache.finished([])
    assert cache.hashes() == []


def test_timers_follow_auto_reruns_and_a_click_reruns_the_buttons_fragment() -> None:
    async def scenario() -> None:
        visitor = Visitor("http://127.0.0.1:1", "http://127.0.0.1:1/?target=moons")
        visitor.ws = Socket()
        for msg in (new_session("explorer"), delta(button("Help for Train samples", "help"))):
            visitor.received(msg.SerializeToString(), 0.0)
        visitor.received(delta(button("Train", "train"), fragment_id=LIVE).SerializeToString(), 0.0)
        visitor.received(auto_rerun("fast", 0.15).SerializeToString(), 0.0)
        task = visitor.timers["fast"][1]
        visitor.received(auto_rerun("fast", 0.15).SerializeToString(), 0.0)
        assert visitor.timers["fast"][1] is task  # the same interval again: the same countdown
        visitor.received(auto_rerun("fast", 0.5).SerializeToString(), 0.0)
        assert visitor.timers["fast"][1] is not task and visitor.timers["fast"][0] == 0.5
        visitor.received(new_session("explorer", ("fast",)).SerializeToString(), 0.0)
        assert "fast" in visitor.timers  # a fragment's run keeps the timers
        stop = ForwardMsg()
        stop.stop_auto_rerun.fragment_ids.append("fast")
        visitor.received(stop.SerializeToString(), 0.0)
        assert "fast" not in visitor.timers
        visitor.received(auto_rerun("slow", 1.0).SerializeToString(), 0.0)
        visitor.received(new_session("explorer").SerializeToString(), 0.0)
        assert not visitor.timers  # a whole-page run drops them all

        await visitor.click("Train")
        sent = rerun_message("", "", [])
        sent.ParseFromString(visitor.ws.sent[-1])
        assert sent.rerun_script.fragment_id == LIVE
        assert sent.rerun_script.page_script_hash == "explorer"
        assert sent.rerun_script.query_string == "target=moons"
        assert [(w.id, w.trigger_value) for w in sent.rerun_script.widget_states.widgets] == [
            (element_id("train"), True)
        ]
        await visitor.close()

    asyncio.run(scenario())

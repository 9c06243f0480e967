"""Crafted links and values on the real pages: no traceback (stException) on any, text from the link
shown literally (never as a Markdown link or image), many bad parameters in one warning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PHISH = "[session expired, log in here](https://evil.example/login)"
PIXEL = "![](https://evil.example/pixel.png)"


def app_with(params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def _markdown_texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown] + [w.value for w in at.warning] + [e.value for e in at.error] + \
        [c.value for c in at.caption]


def test_a_crafted_markdown_link_renders_as_text():
    at = app_with({"preset": "quickstart_cnn", PHISH: "1", "my_field_name": PIXEL, "optimizer.lr": PHISH,
                   "training.epochs": "9" * 5000})
    assert not at.exception
    assert len(at.warning) == 1  # one box for the whole link
    shown = "\n".join(c.value for c in at.code)
    assert PHISH[:40] in shown and "my_field_name" in shown  # literal, underscores intact
    assert "training.epochs" in shown and "too long" in shown
    for text in _markdown_texts(at):  # nothing rendered as Markdown carries the link
        assert "](https://evil" not in text


def test_a_thousand_unknown_parameters_give_one_warning():
    at = app_with({f"junk_{i}": str(i) for i in range(900)})
    assert not at.exception
    assert len(at.warning) == 1
    assert "ignored 900 unknown parameters" in "\n".join(c.value for c in at.code)


def test_a_query_over_streamlits_limit_is_said_on_the_page():
    at = app_with({f"k{i}": "1" for i in range(1_100)})  # Streamlit drops a query of more than 1,000 fields
    assert not at.exception
    if not at.warning:
        pytest.skip("this Streamlit's test harness does not pass the raw query string through")
    assert any("not applied" in w.value and "over the limit" in w.value for w in at.warning)


@pytest.mark.parametrize("values", ["1e999, 0.01", "9" * 5000, "true, 0.1", "NaN"])
def test_compare_value_box_with_numbers_python_cannot_take(values):
    at = AppTest.from_file(str(ROOT / "app_pages/compare.py"), default_timeout=90).run()
    at.radio(key="compare_kind").set_value("one setting").run()
    at.selectbox(key="compare_field").set_value("optimizer.lr").run()
    at.text_input(key="compare_values").set_value(values).run()
    assert not at.exception
    assert any("optimizer.lr" in e.value for e in at.error)


@pytest.mark.parametrize("text,bad", [(PHISH, "[session"), (PIXEL, "!["), ("www.evil.example", "www."),
                                      ("# heading", "# "), ("1. item", "1. "), (":red[x] :material/home:", ":red["),
                                      ("<img src=x onerror=alert(1)>", "<img"), ("_a_ and __b__", "_a_"),
                                      ("**bold**", "**")])
def test_md_makes_markdown_constructs_inert(text, bad):
    from ui.literal import md

    out = md(text)
    assert re.search(r"(?<!\\)" + re.escape(bad), out) is None  # the construct's mark is escaped
    assert out.replace("\\", "") == text  # the same characters, each shown literally
    assert len(md("x" * 1_000_000)) < 400
    assert md("adam_vs_sgd") == "adam_vs_sgd"  # snake_case never makes emphasis: names read as they are


def _failing_page():
    import streamlit as st

    from ui.literal import last_resort

    def page():
        st.write("before")
        if st.session_state.get("stop"):
            st.stop()
        raise RuntimeError("/srv/secret/path exploded")

    last_resort(page, "test")
    st.write("after")


def test_the_last_resort_handler_shows_a_short_message_and_lets_st_stop_through(caplog):
    at = AppTest.from_function(_failing_page, default_timeout=30).run()
    assert not at.exception
    assert len(at.error) == 1 and "Something went wrong" in at.error[0].value
    assert "/srv/secret" not in at.error[0].value  # the traceback is in the server log only
    assert [m.value for m in at.markdown] == ["before", "after"]
    at.session_state["stop"] = True
    at.run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown] == ["before"]  # st.stop ended the script, untouched

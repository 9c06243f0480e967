"""Text from outside (URL, file, name, upload, an error that quotes them) shown as literal text.

Streamlit's alerts, captions and headers render Markdown: a crafted name would become a link,
an image the browser fetches by itself, emphasis that eats underscores, or a colour directive.
:func:`md` makes any text inert for those renderers (the characters that start Markdown
constructs are backslash-escaped, which CommonMark defines as "this character, literally"; a
``www.`` that GFM would turn into a link is broken up the same way) and cuts it to a readable
length; :func:`details` shows a list of such texts in a code block (never parsed).
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Callable, Sequence

import streamlit as st

MAX_CHARS = 300  # one echoed value; the rest is summarised by its length
MAX_LINES = 20  # lines of a details block

# links and images need [ ] (and !), emphasis * _ ~, code `, HTML < >, Streamlit's directives and icons
# : and [ ], LaTeX $, tables |; the rest (= . , ' " ( ) { }) cannot start anything without these
# an underscore between letters or digits (snake_case) never makes emphasis in CommonMark: left as it is
_ACTIVE = re.compile(r"([\\`*\[\]<>!|~:$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_LINE_START = re.compile(r"^(\s*)([#+\-=>]|\d+[.)])")  # headings, lists, quotes at the start of the text
_WWW = re.compile(r"(?i)\b(www)\.")


def cut(text: object, limit: int = MAX_CHARS) -> str:
    s = str(text)
    return s if len(s) <= limit else s[:limit] + f"... ({len(s):,} characters)"


def md(text: object, limit: int = MAX_CHARS) -> str:
    """``text`` cut to ``limit`` and escaped so Markdown shows it character for character."""
    s = cut(text, limit).replace("\r", " ").replace("\n", " ")
    s = _ACTIVE.sub(r"\\\1", s)
    s = _WWW.sub(r"\1\\.", s)
    def start(m: re.Match) -> str:
        mark = m.group(2)  # "1." is escaped as "1\.": only punctuation can take a backslash
        return m.group(1) + (mark[:-1] + "\\" + mark[-1] if mark[0].isdigit() else "\\" + mark)

    return _LINE_START.sub(start, s)


def sentence(text: object, capital: bool = True) -> str:
    """``text`` as a sentence: a capital first letter (unless ``capital`` is False, e.g. after a colon
    or when it starts with a field name) and a full stop at the end (if it has none).

    Engine messages are written to follow a colon ("stopped during epoch 6"); shown on their own
    they read as sentences ("Stopped during epoch 6.")."""
    s = str(text).strip()
    if not s:
        return s
    if capital:
        s = s[0].upper() + s[1:]
    return s if s[-1] in ".!?" else s + "."


def details(lines: Sequence[str]) -> None:
    """Lines from outside in a plain code block (no Markdown, no HTML), at most MAX_LINES."""
    shown = [cut(x) for x in lines[:MAX_LINES]]
    if len(lines) > MAX_LINES:
        shown.append(f"... and {len(lines) - MAX_LINES} more")
    st.code("\n".join(shown), language=None, wrap_lines=True)


log = logging.getLogger("bigmodel.app")


def last_resort(run: Callable[[], object], where: str) -> None:
    """Run a page; an error nobody foresaw shows a short message, never a traceback.

    Streamlit's st.stop, st.rerun and st.switch_page raise BaseException subclasses
    (ScriptControlException), which ``except Exception`` lets pass untouched."""
    try:
        run()
    except Exception:  # noqa: BLE001 - the last resort: the traceback goes to the server log only
        ref = secrets.token_hex(4)
        log.exception("page %r failed (reference %s)", where, ref)
        st.error(f"Something went wrong on this page and it stopped (reference {ref}). Your workspace is "
                 "unchanged; change the last input or reload the page.", icon=":material/error:")

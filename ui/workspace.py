"""The browser side of the learner's workspace: a tiny component that keeps the token in a cookie.

The server reads the cookie back with ``st.context.cookies`` when a session starts (a reload,
a new tab, a lesson or share link); ui.state turns it into the workspace. The component is
drawn in the sessions that issued a new token.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from bigmodel_core.training.workspace import COOKIE_MAX_AGE

COOKIE = "bigmodel_workspace"
FOLDER = Path(__file__).with_name("workspace")
_component = components.declare_component("workspace_cookie", path=str(FOLDER))


REFUSED = ("This browser does not keep cookies, so this tab has a workspace of its own: a reload or a new tab "
           "starts an empty one. Download the runs you want to keep.")


def store_token(token: str, nonce: str) -> None:
    """Ask the browser to keep ``token`` (written once per nonce); if it refuses, the frame says so.

    The browser answers nothing: a component value would rerun the page it was drawn on, and a
    learner who has already clicked on to another page would be taken back."""
    _component(name=COOKIE, value=token, max_age=COOKIE_MAX_AGE, nonce=nonce, refused_text=REFUSED,
               key="workspace_cookie", default=None)


def cookie_token() -> str | None:
    """The token this browser sent when the session started (None without one, or outside a browser)."""
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no browser context (tests, scripts): no cookie
        return None
    return value if isinstance(value, str) else None

"""The browser side of the learner's workspace: a tiny component that keeps the token in a cookie.

The server reads the cookie back with ``st.context.cookies`` when a session starts (a reload,
a new tab, a lesson or share link); ui.state turns it into the workspace. The component is
drawn only while a newly issued token has not been confirmed as stored, then disappears.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from bigmodel_core.training.workspace import COOKIE_MAX_AGE

COOKIE = "bigmodel_workspace"
FOLDER = Path(__file__).with_name("workspace")
_component = components.declare_component("workspace_cookie", path=str(FOLDER))


def store_token(token: str, nonce: str) -> bool | None:
    """Ask the browser to keep ``token``: True once it did, False if it refused, None until it answers."""
    value = _component(name=COOKIE, value=token, max_age=COOKIE_MAX_AGE, nonce=nonce, key="workspace_cookie",
                       default=None)
    if isinstance(value, dict) and value.get("nonce") == nonce:
        return bool(value.get("stored"))
    return None


def cookie_token() -> str | None:
    """The token this browser sent when the session started (None without one, or outside a browser)."""
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no browser context (tests, scripts): no cookie
        return None
    return value if isinstance(value, str) else None

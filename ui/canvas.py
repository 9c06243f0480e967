"""A drawing pad: a small no-build component (``ui/canvas/index.html``, plain JavaScript, nothing fetched).

The learner draws white on black with the mouse, a pen or a finger; when a stroke ends (or on Clear
and Undo) the component sends ``{"side", "pixels", "strokes"}``: the drawing rendered onto a
``side`` x ``side`` grid of grey levels, base64-encoded row by row. The value is data from the
browser like any upload: :func:`bigmodel_core.inspect.try_input.drawing_pixels` checks its fields,
side, length and encoding before anything is used.
"""

from __future__ import annotations

from pathlib import Path

import streamlit.components.v1 as components

from bigmodel_core.inspect.try_input import CANVAS_SIDE

FOLDER = Path(__file__).with_name("canvas")
_component = components.declare_component("drawing_canvas", path=str(FOLDER))


def drawing_canvas(key: str, side: int = CANVAS_SIDE, hint: str = "") -> object:
    """Draw the pad; returns the last drawing the browser sent (None before the first stroke)."""
    return _component(side=side, hint=hint, key=key, default=None, height=360)

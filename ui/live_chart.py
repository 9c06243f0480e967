"""Live charts: a row of Plotly figures that stays mounted in the browser while it changes.

``st.plotly_chart`` gives a chart a new identity whenever its figure changes, so the browser
builds the whole plot again at every update of a live curve; on a small machine that runs the
browser and the training side by side, that CPU comes out of the training. This component keeps
one Plotly instance per figure and applies each update in place (``Plotly.react``), which also
keeps a zoom the learner made while the curve grows. Plotly's JavaScript comes from the
installed ``plotly`` package (nothing is downloaded); it is copied once, next to the page that
loads it, into a folder named after the plotly version and the page's contents.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import plotly
import streamlit as st
import streamlit.components.v1 as components

_PAGE = Path(__file__).with_name("live_chart") / "index.html"
_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _component_dir() -> Path:
    page = _PAGE.read_bytes()
    tag = hashlib.sha256(page + plotly.__version__.encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"bigmodel-live-chart-{tag}"
    if not (target / "index.html").is_file():
        staging = Path(tempfile.mkdtemp(prefix="bigmodel-live-chart-tmp-"))
        shutil.copyfile(_PLOTLY_JS, staging / "plotly.min.js")
        (staging / "index.html").write_bytes(page)  # last: its presence marks a complete folder
        try:
            staging.rename(target)
        except OSError:  # another process made it first
            shutil.rmtree(staging, ignore_errors=True)
    return target


_component = components.declare_component("live_chart", path=str(_component_dir()))

def live_chart(figures: Sequence[dict], key: str, revision: str = "", config: dict | None = None,
               poll_every: float = 0) -> None:
    """Draw ``figures`` (plain dicts in Plotly's figure format) side by side, stacked on narrow
    screens, and update them in place.

    ``key`` keeps the browser's element across updates; a change of ``revision`` resets any
    zoom the user made (a new run, another axis scale). With ``poll_every`` > 0 the chart
    reruns the fragment that draws it that many seconds after each update, like a fragment's
    ``run_every``, but it can start and stop without the enclosing page or fragment being
    drawn again (which would rebuild the chart in the browser)."""
    height = max(f["layout"].get("height", 340) for f in figures) if figures else 0
    _component(figures=list(figures), config=config or {}, revision=revision, poll_ms=int(poll_every * 1000),
               tick=st.session_state.get(key) or 0, key=key, default=None, height=height)

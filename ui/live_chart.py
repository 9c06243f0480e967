"""Live charts: a row of Plotly figures that stays mounted in the browser while it changes.

``st.plotly_chart`` gives a chart a new identity whenever its figure changes, so the browser
builds the whole plot again at every update of a live curve; on a small machine that runs the
browser and the training side by side, that CPU comes out of the training. This component keeps
one Plotly instance per figure and applies each update in place (``Plotly.react``), which also
keeps a zoom the learner made while the curve grows.

The same row shows the live look inside the model (ui.figures.live_probe): a figure with a ``rev``
key is redrawn only when its ``rev`` changes, so a probe measured once per epoch is drawn once
per epoch however often the curves update. On a narrow screen (a phone) the charts' toolbar is
not shown, so it cannot cover a legend.

The page loads plotly.js's "cartesian" bundle (scatter, bar, heatmap and the other 2-D traces;
1.5 MB instead of the full 4.8 MB bundle, so the chart is ready sooner after the page opens),
shipped next to it: ``plotly-cartesian.min.js`` from the npm package
``plotly.js-cartesian-dist-min`` at the plotly.js version the installed ``plotly`` package
bundles (MIT licence, in ``LICENSE.plotly``). Nothing is downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import streamlit as st
import streamlit.components.v1 as components

FOLDER = Path(__file__).with_name("live_chart")
_component = components.declare_component("live_chart", path=str(FOLDER))


def live_chart(figures: Sequence[dict], key: str, revision: str = "", config: dict | None = None,
               poll_every: float = 0, height: int | None = None) -> None:
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

"""bigmodel playground: entry point (``streamlit run app.py``).

Sets the page config, applies a shared URL (``?preset=``, dotted config fields,
``?lesson=``) once per distinct query, shows the shared sidebar (device, this workspace's
jobs) and runs the page chosen in the navigation. Nothing imported here loads torch: the first
page is drawn at once, and ui.warmup loads the engine in the background after it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from bigmodel_core.openmp import wait_passively
from ui import literal, sidebar, state, warmup
from ui.lesson import apply_lesson_query
from ui.pages import PAGES
from ui.urlcodec import config_from_query

# this server trains beside its pages and other learners' jobs: idle OpenMP threads sleep instead
# of spinning (bigmodel_core.openmp); nothing imported above loads torch, so it still takes effect
wait_passively()

# a file served by this server: a Material icon or an emoji as page_icon makes the browser fetch
# the favicon from an outside host
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"
# less empty space above each page's title, so the Train page's live view fits a laptop screen; on a
# phone no chart toolbar (it would sit over the legends, and a tap shows it instead of the values)
COMPACT = ("<style>[data-testid='stMainBlockContainer']{padding-top:3.2rem !important}"
           "@media (max-width: 640px){[data-testid='stMainBlockContainer']{padding-top:2.6rem !important}"
           ".js-plotly-plot .modebar-container{display:none !important}}</style>")

# a page that needs the engine waits this long at most for the warm-up thread, then imports it itself
ENGINE_WAIT = 120.0

st.set_page_config(page_title="bigmodel playground", page_icon=str(FAVICON), layout="wide")
st.html(COMPACT)

pages = [st.Page(p.script, title=p.title, icon=p.icon, url_path=p.url_path or None, default=not p.url_path)
         for p in PAGES]
nav = st.navigation(pages)
if nav.url_path:  # every page but Home needs the engine: load it on the warm-up thread, one import at a time
    # (several sessions importing torch at once, e.g. a class opening a lesson link after a restart,
    # can fail or stall inside torch's nested imports; waiting on one loader costs nothing more)
    warmup.start(delay=0.0)
    warmup.wait(ENGINE_WAIT)


def apply_query() -> None:
    """Restore the experiment from the URL once per distinct query string; what the link got wrong
    stays on the page as long as the link is in the address bar (a rerun, e.g. when the browser
    confirms its workspace cookie, does not wipe it)."""
    params = {k: st.query_params[k] for k in st.query_params}
    key = tuple(sorted(params.items()))
    if st.session_state.get("_applied_query") != key:
        st.session_state["_applied_query"] = key
        st.session_state["_query_notes"] = []
        if "lesson" in params:
            target = apply_lesson_query()
            if target is not None and target != nav.url_path:
                page = next((p for p in pages if p.url_path == target), None)
                if page is not None:
                    st.switch_page(page, query_params={"lesson": params["lesson"]})
            return
        cfg, st.session_state["_query_notes"] = config_from_query(params)
        if cfg is not None:
            state.set_config(cfg)
    warnings = st.session_state.get("_query_notes") or []
    if warnings:
        # one box however many parameters were bad; what the link said is shown literally, never as Markdown
        st.warning(f"Parts of this link were not applied ({len(warnings)} note{'s' * (len(warnings) > 1)}):",
                   icon=":material/link:")
        literal.details(warnings)


def dropped_query_notice() -> None:
    """Say so when Streamlit dropped the whole query (over its length or parameter-count limit):
    otherwise the page opens on defaults with no word about the link that was not applied."""
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
        from streamlit.runtime.state.query_params import sanitize_query_string
    except ImportError:  # a Streamlit without these internals: nothing to compare against
        return
    ctx = get_script_run_ctx()
    raw = getattr(ctx, "query_string", "") or ""
    if raw and not sanitize_query_string(raw):  # on every run while that link is in the address bar
        st.warning(f"This link's settings were not applied: its query ({len(raw):,} characters, "
                   f"{raw.count('&') + 1:,} parameters) is over the limit this server reads, so the page opened "
                   "with the current experiment instead.", icon=":material/link_off:")


dropped_query_notice()
apply_query()
device = sidebar.render(live=nav.url_path != "train")  # the Train page shows its job itself
state.sync_cookie()  # a new workspace's token goes to the browser's cookie (once)
try:
    literal.last_resort(nav.run, nav.url_path or "home")
finally:  # also when the page stopped early (st.stop)
    sidebar.show_device(device)  # a page that loaded the engine has the device to show now
    warmup.start()  # once per server, after the first page was drawn: the first Train click then loads nothing

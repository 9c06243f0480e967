"""bigmodel playground: entry point (``streamlit run app.py``).

Sets the page config, applies a shared URL (``?preset=``, dotted config fields,
``?lesson=``) once per distinct query, shows the shared sidebar (device, this workspace's
jobs) and runs the page chosen in the navigation.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import literal, sidebar, state
from ui.urlcodec import config_from_query

HERE = Path(__file__).resolve().parent

# (script, title, icon, url path); a page is listed once its script exists
PAGES = [
    ("app_pages/home.py", "Home", ":material/home:", ""),
    ("app_pages/build.py", "Build", ":material/construction:", "build"),
    ("app_pages/train.py", "Train", ":material/monitoring:", "train"),
    ("app_pages/compare.py", "Compare", ":material/compare_arrows:", "compare"),
    ("app_pages/finetune.py", "Fine-tune", ":material/tune:", "finetune"),
    ("app_pages/concepts.py", "Concepts", ":material/school:", "concepts"),
    ("app_pages/lessons.py", "Lessons", ":material/menu_book:", "lessons"),
    ("app_pages/runs.py", "Runs", ":material/folder_open:", "runs"),
]

st.set_page_config(page_title="bigmodel playground", page_icon=":material/neurology:", layout="wide")

pages = [st.Page(script, title=title, icon=icon, url_path=path or None, default=not path)
         for script, title, icon, path in PAGES if (HERE / script).exists()]
nav = st.navigation(pages)


def apply_query() -> None:
    """Restore the experiment from the URL once per distinct query string."""
    params = {k: st.query_params[k] for k in st.query_params}
    key = tuple(sorted(params.items()))
    if st.session_state.get("_applied_query") == key:
        return
    st.session_state["_applied_query"] = key
    if "lesson" in params:
        try:
            from ui.lesson import apply_lesson_query
        except ModuleNotFoundError:
            st.warning("lessons are not available in this version")
        else:
            target = apply_lesson_query()
            if target is not None and target != nav.url_path:
                page = next((p for p in pages if p.url_path == target), None)
                if page is not None:
                    st.switch_page(page, query_params={"lesson": params["lesson"]})
        return
    cfg, warnings = config_from_query(params)
    if warnings:
        # one box however many parameters were bad; what the link said is shown literally, never as Markdown
        st.warning(f"Parts of this link were not applied ({len(warnings)} note{'s' * (len(warnings) > 1)}):",
                   icon=":material/link:")
        literal.details(warnings)
    if cfg is not None:
        state.set_config(cfg)


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
    if raw and not sanitize_query_string(raw) and st.session_state.get("_dropped_query") != len(raw):
        st.session_state["_dropped_query"] = len(raw)
        st.warning(f"This link's settings were not applied: its query ({len(raw):,} characters, "
                   f"{raw.count('&') + 1:,} parameters) is over the limit this server reads, so the page opened "
                   "with the current experiment instead.", icon=":material/link_off:")


dropped_query_notice()
apply_query()
sidebar.render(live=nav.url_path != "train")  # the Train page shows its job itself
state.sync_cookie()  # a new workspace's token goes to the browser's cookie (once)
literal.last_resort(nav.run, nav.url_path or "home")

"""Shareable addresses for the current experiment."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import streamlit as st

from bigmodel_core.specs import ExperimentConfig
from ui.urlcodec import config_to_query


def share_url(cfg: ExperimentConfig, page: str) -> str:
    query = urlencode(config_to_query(cfg))
    try:
        parts = urlsplit(st.context.url)
        base = f"{parts.scheme}://{parts.netloc}"
    except Exception:  # noqa: BLE001 - no browser context (tests, scripts): a relative link still works
        base = ""
    return f"{base}/{page}?{query}"

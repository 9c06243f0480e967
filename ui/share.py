"""Shareable addresses for the current experiment."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import streamlit as st

from bigmodel_core.specs import ExperimentConfig
from ui.urlcodec import config_to_query


def share_url(cfg: ExperimentConfig, page: str) -> str:
    query = urlencode(config_to_query(cfg))
    url = getattr(st.context, "url", None)
    base = ""  # without a browser context (tests, scripts) a relative link still works
    if isinstance(url, str) and url:
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
    return f"{base}/{page}?{query}"

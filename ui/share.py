"""Shareable addresses: the current experiment, and a stored run its owner shared."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import streamlit as st

from bigmodel_core.config.specs import ExperimentConfig
from ui.urlcodec import config_to_query


def _base() -> str:
    url = getattr(st.context, "url", None)
    if isinstance(url, str) and url:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"
    return ""  # without a browser context (tests, scripts) a relative link still works


def share_url(cfg: ExperimentConfig, page: str) -> str:
    return f"{_base()}/{page}?{urlencode(config_to_query(cfg))}"


def run_url(run_id: str) -> str:
    """The read-only link to a stored run that its owner chose to share."""
    return f"{_base()}/runs?{urlencode({'run': run_id})}"

"""Streamlit glue shared by the pages: session state, widget groups, job polling.

``ui.figures`` holds the pure Plotly figure builders (no streamlit import there).
"""

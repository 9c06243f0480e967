"""Pure Plotly figure builders, one module per area (training, probes, compare, ...).

No streamlit imports here: every builder takes arrays and returns a ``go.Figure``.
"""

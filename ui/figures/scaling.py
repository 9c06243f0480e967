"""Loss against model size and training compute on log-log axes, with the fitted power law.

Pure Plotly (no streamlit). Every point is a measured run (one marker per run and seed, in the
run's colour of the Compare page); the fitted line ``loss = a * x^(-b)`` is drawn only over the
range of the points it was fitted on, and its formula, exponent and number of points are in the
legend. Training compute is the engine's estimate (3 x forward FLOPs x samples trained) and the
axis title says so.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from bigmodel_core.experiments.compare.scaling import PowerLaw, ScalePoint

from .compare import STYLE_GREY, _layout, colors_for

AXES = {"params": ("parameters N", "N"), "train_flops": ("training FLOPs C (estimated: 3 x forward x samples)", "C")}


def scaling_figure(points: Sequence[ScalePoint], fit: PowerLaw | None, against: str = "params",
                   height: int = 360, title: str | None = None) -> go.Figure:
    """Validation loss of each point against ``params`` or ``train_flops``; the fit as a dashed line."""
    axis_title, symbol = AXES[against]
    colors = colors_for(list(dict.fromkeys(p.run for p in points)))
    fig = go.Figure()
    for run, c in colors.items():
        mine = [p for p in points if p.run == run]
        fig.add_trace(go.Scatter(
            x=[getattr(p, against) for p in mine], y=[p.val_loss for p in mine], mode="markers", name=run,
            legendgroup=f"run:{run}", marker=dict(color=c, size=10, line=dict(color="white", width=1)),
            customdata=[[p.seed, p.params, p.train_flops] for p in mine],
            hovertemplate=(f"{run}<br>seed %{{customdata[0]}}<br>%{{customdata[1]:,}} parameters<br>"
                           "%{customdata[2]:.3g} training FLOPs<br>val loss %{y:.4f}<extra></extra>")))
    if fit is not None:
        xs = np.geomspace(min(fit.x), max(fit.x), 50)
        fig.add_trace(go.Scatter(x=xs.tolist(), y=np.asarray(fit.predict(xs)).tolist(), mode="lines",
                                 name=f"fit: loss ≈ {fit.a:.3g}·{symbol}^(−{fit.b:.3f}) ({fit.n} points, "
                                      f"R² {fit.r2:.2f})",
                                 line=dict(color=STYLE_GREY, dash="dash", width=2), hoverinfo="skip"))
    fig.update_xaxes(type="log", title_text=axis_title, showgrid=True)
    fig.update_yaxes(type="log", title_text="validation loss (final epoch)", showgrid=True)
    _layout(fig, height, title)
    fig.update_layout(hovermode="closest", legend=dict(y=-0.3))
    return fig

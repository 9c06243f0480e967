"""The numbers behind the probe figures as long tables, for CSV download."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .results import Confusion, Regression, RNNTrace, WeightHistogram


def maps_frame(maps: np.ndarray, what: str = "map") -> pd.DataFrame:
    """Long table (map, row, col, value) of a (C, H, W) stack of maps or filters."""
    c, h, w = maps.shape
    idx = np.indices((c, h, w)).reshape(3, -1)
    return pd.DataFrame({what: idx[0] + 1, "row": idx[1], "col": idx[2], "value": maps.reshape(-1)})


def filters_frame(filters: np.ndarray) -> pd.DataFrame:
    o, i, kh, kw = filters.shape
    idx = np.indices(filters.shape).reshape(4, -1)
    return pd.DataFrame({"filter": idx[0] + 1, "in_channel": idx[1] + 1, "row": idx[2], "col": idx[3],
                         "weight": filters.reshape(-1)})


def probabilities_frame(probs: np.ndarray, class_names: tuple[str, ...]) -> pd.DataFrame:
    names = list(class_names) or [str(i) for i in range(len(probs))]
    return pd.DataFrame({"class": names, "probability": probs})


def trace_frame(trace: RNNTrace) -> pd.DataFrame:
    """Long table (step, unit, hidden, cell, one column per gate) for one layer and direction."""
    steps, units = trace.hidden.shape
    cols: dict[str, Any] = {"step": np.repeat(trace.steps, units), "unit": np.tile(np.arange(1, units + 1), steps),
                            "hidden": trace.hidden.reshape(-1)}
    if trace.cell is not None:
        cols["cell"] = trace.cell.reshape(-1)
    for g, v in trace.gates.items():
        cols[f"{g}_gate" if g != "candidate" else "candidate"] = v.reshape(-1)
    return pd.DataFrame(cols)


def grad_norms_frame(steps: list[int], norms: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame({"step": steps, **norms})


def hidden_grads_frame(grads: dict[str, np.ndarray]) -> pd.DataFrame:
    t_len = len(next(iter(grads.values()))) if grads else 0
    return pd.DataFrame({"step": np.arange(t_len), **grads})


def weights_frame(hists: tuple[WeightHistogram, ...]) -> pd.DataFrame:
    rows = []
    for h in hists:
        for b in range(len(h.now)):
            rows.append({"layer": h.label, "bin_low": h.edges[b], "bin_high": h.edges[b + 1],
                         "count_start": None if h.start is None else int(h.start[b]), "count_now": int(h.now[b])})
    return pd.DataFrame(rows)


def confusion_frame(c: Confusion) -> pd.DataFrame:
    names = list(c.class_names) or [str(i) for i in range(len(c.matrix))]
    return pd.DataFrame(c.matrix, index=pd.Index(names, name="true \\ predicted"), columns=names)


def wrong_frame(c: Confusion) -> pd.DataFrame:
    name = (lambda k: c.class_names[k]) if c.class_names else str
    return pd.DataFrame([{"val_index": w.index, "true": name(w.true), "predicted": name(w.pred),
                          "confidence": w.confidence} for w in c.wrong],
                        columns=["val_index", "true", "predicted", "confidence"])


def regression_frame(r: Regression) -> pd.DataFrame:
    return pd.DataFrame({"target": r.targets, "prediction": r.predictions})

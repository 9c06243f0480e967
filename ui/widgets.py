"""Widget groups that read a part of the experiment config and return the edited part.

Widgets return plain config dicts (never built models); the page validates them with
the engine. Keys carry a revision number: loading a preset or a file bumps it, so every
widget starts again from the loaded values.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from bigmodel_core.config.specs import ACTIVATIONS, OPTIMIZERS, SCHEDULES
from bigmodel_core.limits import current_limits

REV = "build_rev"
PADDINGS = ["same", "valid", "0", "1", "2", "3"]
OPTIMIZER_LABELS = {
    "sgd": "SGD", "momentum": "SGD + momentum", "nesterov": "Nesterov momentum", "adagrad": "Adagrad",
    "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW (decoupled weight decay)",
}
DATA_DEFAULTS = {"handwritten_digits": (1400, 397), "sequential_digits": (1400, 397),
                 "sine_wave": (2000, 500), "adding_problem": (4000, 1000)}


def rev() -> int:
    return st.session_state.setdefault(REV, 0)


def bump() -> None:
    st.session_state[REV] = rev() + 1


def key(*parts: Any) -> str:
    return "w" + str(rev()) + "_" + "_".join(map(str, parts))


def default_data(name: str) -> dict[str, Any]:
    train, val = DATA_DEFAULTS.get(name, (4000, 1000))
    return {"name": name, "train_size": train, "val_size": val, "augment": False, "image_size": None,
            "seq_len": None}


def datasets_for(family: str) -> list[str]:
    # the data registry loads torch, and ui.lesson imports this module on every page, Home included
    from bigmodel_core.data import DATASET_NAMES, dataset_info  # noqa: PLC0415 - heavy import, paid when used

    kind = "image" if family == "cnn" else "sequence"
    return [n for n in DATASET_NAMES if dataset_info(n).kind == kind]


def conv_block(i: int, b: dict[str, Any], advanced: bool) -> dict[str, Any]:
    c = st.columns([1.1, 0.9, 1.2, 1.2, 0.9, 1.0] if advanced else [1.2, 1.0, 1.3, 1.0, 1.0])
    out = dict(b)
    out["channels"] = c[0].number_input("channels", 1, current_limits().max_channels, int(b["channels"]),
                                        key=key("conv", i, "ch"))
    out["kernel"] = c[1].number_input("kernel", 1, 15, int(b["kernel"]), key=key("conv", i, "k"))
    out["activation"] = c[2].selectbox("activation", ACTIVATIONS, ACTIVATIONS.index(b["activation"]),
                                       key=key("conv", i, "act"))
    pools = ["max", "avg", "none"]
    out["pool"] = c[3].selectbox("pool", pools, pools.index(b["pool"]), key=key("conv", i, "pool"))
    if advanced:
        out["dropout"] = c[4].number_input("dropout", 0.0, 0.95, float(b["dropout"]), 0.05,
                                           key=key("conv", i, "drop"))
        out["batchnorm"] = c[5].checkbox("batchnorm", bool(b["batchnorm"]), key=key("conv", i, "bn"))
        c2 = st.columns([1.1, 0.9, 1.2, 1.2, 0.9, 1.0])
        pad = str(b["padding"])
        out["stride"] = c2[0].number_input("stride", 1, 8, int(b["stride"]), key=key("conv", i, "s"))
        padding = c2[1].selectbox("padding", PADDINGS if pad in PADDINGS else PADDINGS + [pad],
                                  (PADDINGS if pad in PADDINGS else PADDINGS + [pad]).index(pad),
                                  key=key("conv", i, "pad"))
        out["padding"] = padding if padding in ("same", "valid") else int(padding)
        out["pool_size"] = c2[2].number_input("pool size", 2, 8, int(b.get("pool_size", 2)),
                                              key=key("conv", i, "ps"), disabled=out["pool"] == "none")
        out["residual"] = c2[3].checkbox("residual", bool(b.get("residual", False)), key=key("conv", i, "res"),
                                         help="Add the block's input to its conv output (a skip connection, "
                                              "as in ResNet): a 1x1 conv maps the input when channels or stride "
                                              "change. Needs padding \"same\".")
    else:
        out["batchnorm"] = c[4].checkbox("batchnorm", bool(b["batchnorm"]), key=key("conv", i, "bn"))
    return out


def dense_layer(i: int, d: dict[str, Any], advanced: bool) -> dict[str, Any]:
    c = st.columns(3)
    out = dict(d)
    out["units"] = c[0].number_input("units", 1, current_limits().max_units, int(d["units"]), key=key("dense", i, "u"))
    out["activation"] = c[1].selectbox("activation", ACTIVATIONS, ACTIVATIONS.index(d["activation"]),
                                       key=key("dense", i, "act"))
    if advanced:
        out["dropout"] = c[2].number_input("dropout", 0.0, 0.95, float(d["dropout"]), 0.05,
                                           key=key("dense", i, "drop"))
    return out


def rnn_options(m: dict[str, Any], advanced: bool) -> dict[str, Any]:
    c = st.columns(4)
    out = dict(m)
    out["hidden"] = c[0].number_input("hidden size", 1, current_limits().max_units, int(m["hidden"]),
                                      key=key("rnn", "hidden"))
    out["layers"] = c[1].number_input("layers", 1, current_limits().max_rnn_layers, int(m["layers"]),
                                      key=key("rnn", "layers"))
    if advanced:
        out["bidirectional"] = c[2].checkbox("bidirectional", bool(m["bidirectional"]), key=key("rnn", "bi"))
        out["dropout"] = c[3].number_input("dropout between layers", 0.0, 0.95, float(m["dropout"]), 0.05,
                                           key=key("rnn", "drop"), disabled=out["layers"] < 2)
    return out


def _grid(n: int, columns: int) -> list:
    """``n`` widget slots laid out ``columns`` to a row (a narrow settings column takes 1 or 2)."""
    slots: list = []
    while len(slots) < n:
        slots += st.columns(columns) if columns > 1 else [st.container()]
    return slots[:n]


def optimizer_options(o: dict[str, Any], advanced: bool, columns: int = 3) -> dict[str, Any]:
    out = dict(o)
    c = _grid(3, columns)
    out["name"] = c[0].selectbox("optimizer", OPTIMIZERS, OPTIMIZERS.index(o["name"]),
                                 format_func=lambda n: OPTIMIZER_LABELS[n], key=key("opt", "name"))
    out["lr"] = c[1].number_input("learning rate", 1e-6, 100.0, float(o["lr"]), format="%.5g",
                                  key=key("opt", "lr"))
    out["schedule"] = c[2].selectbox("schedule", SCHEDULES, SCHEDULES.index(o["schedule"]),
                                     key=key("opt", "sched"))
    if advanced:
        c = _grid(3, columns)
        uses_momentum = out["name"] in ("momentum", "nesterov", "rmsprop")
        m = o["momentum"] if o["momentum"] is not None else (0.9 if out["name"] in ("momentum", "nesterov") else 0.0)
        momentum = c[0].number_input("momentum", 0.0, 0.999, float(m), 0.05, key=key("opt", "mom"),
                                     disabled=not uses_momentum)
        out["momentum"] = momentum if uses_momentum else None
        out["weight_decay"] = c[1].number_input(
            "weight decay", 0.0, 1.0, float(o["weight_decay"]), format="%.5g", key=key("opt", "wd"),
            help="The optimizer's own decay. For Adam it is added to the gradient (coupled, like an L2 "
                 "penalty); AdamW decays the weights directly (decoupled).")
        if out["schedule"] == "step":
            out["step_size"] = c[2].number_input("decay every N epochs", 1, 100, int(o["step_size"] or 1),
                                                 key=key("opt", "step"))
    return out


def regularization_summary(r: dict[str, Any], data: dict[str, Any]) -> str:
    """One line for a collapsed settings group: "L2 0.001 · clip 1 · early stopping (3)", or "none"."""
    parts = [f"{name} {r[k]:g}" for k, name in (("l1", "L1"), ("l2", "L2"), ("label_smoothing", "smoothing"))
             if r.get(k)]
    if r.get("grad_clip"):
        parts.append(f"clip {r['grad_clip']:g}")
    if r.get("early_stopping"):
        parts.append(f"early stopping ({r['early_stopping'].get('patience', 3)})")
    if data.get("augment"):
        parts.append("augmentation")
    return " · ".join(parts) or "none"


def regularization_options(r: dict[str, Any], task: str, is_image: bool, data: dict[str, Any],
                           columns: int = 4) -> tuple[dict[str, Any], dict[str, Any]]:
    out, data = dict(r), dict(data)
    c = _grid(4, columns)
    out["l1"] = c[0].number_input("L1 penalty", 0.0, 1.0, float(r["l1"]), format="%.5g", key=key("reg", "l1"))
    out["l2"] = c[1].number_input("L2 penalty", 0.0, 1.0, float(r["l2"]), format="%.5g", key=key("reg", "l2"),
                                  help="Added to the loss: l2 * sum of squared weights (biases excluded).")
    out["label_smoothing"] = c[2].number_input("label smoothing", 0.0, 0.5, float(r["label_smoothing"]), 0.05,
                                               key=key("reg", "ls"), disabled=task != "classification")
    clip = c[3].number_input("gradient clip (0 = off)", 0.0, 100.0, float(r["grad_clip"] or 0.0), 0.5,
                             key=key("reg", "clip"))
    out["grad_clip"] = clip or None
    c = _grid(4, columns)
    es = r["early_stopping"]
    on = c[0].checkbox("early stopping", es is not None, key=key("reg", "es"))
    if on:
        patience = c[1].number_input("patience (epochs)", 1, 100, int((es or {}).get("patience", 3)),
                                     key=key("reg", "pat"))
        restore = c[2].checkbox("restore best weights", bool((es or {}).get("restore_best", True)),
                                key=key("reg", "restore"))
        out["early_stopping"] = {"patience": patience, "restore_best": restore}
    else:
        out["early_stopping"] = None
    data["augment"] = c[3].checkbox("augment images (shift/rotate)", bool(data["augment"]), key=key("reg", "aug"),
                                    disabled=not is_image)
    return out, data

"""Build: design a CNN or RNN/LSTM/GRU from widgets and see its shapes, parameters and FLOPs live."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from bigmodel_core.config.presets import load_preset, preset_descriptions, preset_names
from bigmodel_core.config.specs import FAMILIES, ConfigError, parse_config, parse_config_here
from bigmodel_core.data import dataset_info
from bigmodel_core.export import export_script
from bigmodel_core.limits import current_limits
from bigmodel_core.nn.models import summarize
from bigmodel_core.nn.shapes import SpecError, check_batches
from ui import labels, own_data, state, widgets
from ui.figures.training import PNG_CONFIG, architecture_figure
from ui.lesson import advanced_hidden, render_lesson_banner
from ui.literal import md, sentence
from ui.share import share_url

FAMILY_NAMES = {"cnn": "CNN", "rnn": "plain RNN", "lstm": "LSTM", "gru": "GRU"}

state.show_notice()
render_lesson_banner()
st.title("Build a model")
advanced = not advanced_hidden()
cfg = state.get_config()
d = cfg.to_dict()


def load(new_cfg, message: str) -> None:
    state.set_config(new_cfg)
    widgets.bump()
    state.notify(message)


# --- presets, upload, download -----------------------------------------------------------
with st.container(border=True):
    cols = st.columns([3, 1, 3])
    names = preset_names()
    desc = preset_descriptions()
    choice = cols[0].selectbox("Preset", names, index=None, placeholder="Choose a preset to load",
                               key="build_preset_choice", format_func=lambda n: f"{n} · {desc.get(n, '')[:60]}")
    if cols[1].button("Load preset", disabled=choice is None, width="stretch", key="build_load_preset"):
        load(load_preset(choice), f"Loaded preset {choice}.")
        st.rerun()
    upload = cols[2].file_uploader("Upload a config (.json)", type=["json"], key="build_upload",
                                   help="A config downloaded from this page or written by hand.")
    if upload is not None and st.session_state.get("_build_upload_id") != upload.file_id:
        st.session_state["_build_upload_id"] = upload.file_id
        try:
            new = parse_config_here(upload.getvalue())
        except ConfigError as exc:
            st.error(f"{md(upload.name)} was not loaded; the current design is unchanged. "
                     f"{md(sentence(exc, capital=False), 2000)}")
        else:
            load(new, f"Loaded {upload.name}.")
            st.rerun()

# --- family and input ------------------------------------------------------------------------
c = st.columns([1, 2, 2])
family = c[0].selectbox("Model family", FAMILIES, FAMILIES.index(d["model"]["family"]),
                        format_func=lambda f: FAMILY_NAMES[f],
                        key=widgets.key("family"))
if family != d["model"]["family"]:
    # each family keeps its own design in the workspace: CNN -> LSTM -> CNN gives the CNN back
    saved = state.design_of(family)
    model = saved or ({"family": "cnn", "conv": [{"channels": 16}, {"channels": 32}], "dense": [{"units": 64}]}
                      if family == "cnn" else {**{"hidden": 64, "layers": 1, "dense": []},
                                               **({k: v for k, v in d["model"].items()
                                                   if k in ("hidden", "layers", "dense", "bidirectional",
                                                            "dropout")}),
                                               "family": family})
    data = d["data"] if (family == "cnn") == (dataset_info(d["data"]["name"]).kind == "image") else \
        widgets.default_data("synthetic_digits" if family == "cnn" else "sequential_digits")
    old_name = FAMILY_NAMES[d["model"]["family"]]
    try:
        switched = parse_config({**d, "model": model, "data": data})
    except ConfigError:  # a design saved under other rules: start the family afresh
        saved = None
        switched = parse_config({**d, "model": {"family": family}, "data": data})
    load(switched, f"Switched to {FAMILY_NAMES[family]}" + (", with your earlier design of it" if saved else "")
         + f". Your {old_name} design is kept: switch back to get it again.")
    st.rerun()
options, _ = own_data.options(widgets.datasets_for(family), "image" if family == "cnn" else "sequence",
                              d["data"]["name"], "build", widgets.key("dataset"))  # the workspace's uploads too
ds = c[1].selectbox("Dataset (sets the input shape and outputs)", options,
                    options.index(d["data"]["name"]) if d["data"]["name"] in options else 0,
                    key=widgets.key("dataset"), format_func=own_data.labeller())
if ds != d["data"]["name"]:
    load(parse_config({**d, "data": widgets.default_data(ds)}), f"Dataset {ds}.")
    st.rerun()
data = dict(d["data"])
if ds == "handwritten_digits":
    size = c[2].radio("Image size", [28, 8], index=0 if (data["image_size"] or 28) == 28 else 1, horizontal=True,
                      key=widgets.key("imgsize"), help="The real scans are 8x8; 28 upsamples them.")
    data["image_size"] = None if size == 28 else 8
elif ds in ("sine_wave", "adding_problem"):
    default_len = dataset_info(ds).input_shape[0]
    data["seq_len"] = c[2].number_input("Sequence length", 5, current_limits().max_seq_len,
                                        int(data["seq_len"] or default_len), key=widgets.key("seqlen"))
info = dataset_info(ds, image_size=data["image_size"], seq_len=data["seq_len"])
c[2].caption(f"Input {' x '.join(map(str, info.input_shape))} · {info.num_outputs} outputs · {info.task}")

# --- layers ----------------------------------------------------------------------------------
m = d["model"]
placeholders: dict[str, st.delta_generator.DeltaGenerator] = {}
new_model = dict(m)
action = None


def list_buttons(kind: str, i: int, n: int, col) -> None:
    global action
    b = col.columns(3)
    if b[0].button("↑", key=widgets.key(kind, i, "up"), disabled=i == 0, help="move up"):
        action = (kind, "up", i)
    if b[1].button("↓", key=widgets.key(kind, i, "down"), disabled=i == n - 1, help="move down"):
        action = (kind, "down", i)
    if b[2].button("✕", key=widgets.key(kind, i, "del"), help="remove"):
        action = (kind, "del", i)


if family == "cnn":
    st.subheader("Convolution blocks")
    st.caption("Each block: conv → (batchnorm) → (+ input, when residual) → activation → pool → (dropout)")
    blocks = []
    for i, b in enumerate(m["conv"]):
        with st.container(border=True):
            head = st.columns([6, 1.2])
            head[0].markdown(f"**Block {i + 1}**")
            list_buttons("conv", i, len(m["conv"]), head[1])
            blocks.append(widgets.conv_block(i, b, advanced))
            placeholders[f"model.conv[{i}]"] = st.empty()
    if st.button("Add conv block", icon=":material/add:", key=widgets.key("conv", "add"),
                 disabled=len(m["conv"]) >= current_limits().max_conv_blocks):
        action = ("conv", "add", len(m["conv"]))
    new_model["conv"] = blocks
st.subheader("Recurrent layers" if family != "cnn" else "Dense layers")
if family != "cnn":
    with st.container(border=True):
        new_model.update(widgets.rnn_options(m, advanced))
        placeholders["model"] = st.empty()
    st.subheader("Dense layers")
dense = []
for j, layer in enumerate(m["dense"]):
    with st.container(border=True):
        head = st.columns([6, 1.2])
        head[0].markdown(f"**Dense {j + 1}**")
        list_buttons("dense", j, len(m["dense"]), head[1])
        dense.append(widgets.dense_layer(j, layer, advanced))
        placeholders[f"model.dense[{j}]"] = st.empty()
if st.button("Add dense layer", icon=":material/add:", key=widgets.key("dense", "add"),
             disabled=len(m["dense"]) >= current_limits().max_dense_layers):
    action = ("dense", "add", len(m["dense"]))
new_model["dense"] = dense
st.caption(f"Output layer: {info.num_outputs} units "
           f"({'class scores' if info.task == 'classification' else 'the predicted value'}).")

if action is not None:
    kind, what, i = action
    items = list(new_model["conv" if kind == "conv" else "dense"])
    if what == "add":
        items.append(dict(items[-1]) if items else ({"channels": 16} if kind == "conv" else {"units": 64}))
    elif what == "del":
        items.pop(i)
    else:
        j = i - 1 if what == "up" else i + 1
        items[i], items[j] = items[j], items[i]
    new_model["conv" if kind == "conv" else "dense"] = items
    try:
        load(parse_config({**d, "model": new_model, "data": data}), "")
    except ConfigError as exc:
        st.error(md(sentence(exc, capital=False), 2000))
    else:
        st.rerun()

# --- validate, summarize, draw -------------------------------------------------------------
try:
    new_cfg = parse_config({**d, "model": new_model, "data": data})
except ConfigError as exc:
    st.error(f"This design is not valid: {md(sentence(exc, capital=False), 2000)}")
    st.stop()
state.set_config(new_cfg)
error: SpecError | None = None
try:
    rows = summarize(new_cfg.model, info)
    check_batches(new_cfg, rows)
except SpecError as exc:
    error = exc
    rows = []
st.session_state["design_error"] = str(error) if error else None

st.divider()
if error is not None:
    target = placeholders.get(error.block) or placeholders.get("model")
    msg = f"**{md(labels.design_message(error), 2000)}** Fix this layer to continue; Train is disabled until then."
    if target is not None:
        target.error(msg, icon=":material/error:")
    st.error(msg, icon=":material/error:")
else:
    total = sum(r.params for r in rows)
    flops = sum(r.flops for r in rows)
    k = st.columns(4)
    k[0].metric("Parameters", f"{total:,}")
    k[1].metric("Forward FLOPs / sample", f"{flops / 1e6:,.2f} M")
    k[2].metric("Layers", len(rows))
    k[3].metric("Output", f"{info.num_outputs}")
    st.plotly_chart(architecture_figure(rows, info.input_shape), width="stretch", config=PNG_CONFIG,
                    key="build_arch")
    table = pd.DataFrame([{"#": r.index, "layer": r.name, "output shape": " x ".join(map(str, r.out_shape)),
                           "parameters": r.params, "FLOPs": r.flops} for r in rows])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"parameters": st.column_config.NumberColumn(format="localized"),
                                "FLOPs": st.column_config.NumberColumn(format="localized")})
    st.caption("Forward FLOPs for one sample, 2 per multiply-add: convolutions and matrix products counted by "
               "torch.utils.flop_counter; recurrent layers counted from their shapes (per step and direction, "
               "gates x 2 x hidden x (inputs + hidden)), because the counter sees nothing of an LSTM on CPU.")

cols = st.columns(4)
if cols[0].button("Train this model →", type="primary", disabled=error is not None, key="build_to_train",
                  width="stretch"):
    st.switch_page("app_pages/train.py")
cols[1].download_button("Download config (.json)", new_cfg.to_json(), file_name="experiment.json",
                        mime="application/json", width="stretch", key="build_download")
if error is None:
    cols[2].download_button("Export as PyTorch script", export_script(new_cfg), file_name="train_model.py",
                            mime="text/x-python", width="stretch", key="build_export")
with cols[3].popover("Share as URL", width="stretch"):
    st.code(share_url(new_cfg, "build"), language=None, wrap_lines=True)
    st.caption("Opening this address restores this experiment (any page takes the same query).")
with st.expander("Config JSON"):
    st.code(json.dumps(new_cfg.to_dict(), indent=2), language="json")

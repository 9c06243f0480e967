"""Home: what the playground does, the datasets and presets, where to start."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bigmodel_core.config.presets import load_preset, preset_descriptions, preset_names
from bigmodel_core.data import DATASET_NAMES, dataset_info
from ui import state

state.show_notice()
st.title("bigmodel playground")
st.markdown(
    "Build a **CNN** or an **RNN / LSTM / GRU** from widgets, train it live on toy datasets, watch the "
    "loss curves, feature maps and gates move, compare optimizers and regularizers fairly, and fine-tune "
    "pretrained weights. Every number on these pages was measured by the engine running below them."
)

c1, c2, c3 = st.columns(3)
c1.page_link("app_pages/build.py", label="**1. Build** a model", icon=":material/construction:")
c2.page_link("app_pages/train.py", label="**2. Train** it live", icon=":material/monitoring:")
c3.page_link("app_pages/lessons.py", label="**Workshop lessons**", icon=":material/menu_book:")

st.subheader("Start from a preset")
desc = preset_descriptions()
for name in preset_names():
    cols = st.columns([3, 8, 2])
    cols[0].markdown(f"**{name}**")
    cols[1].caption(desc.get(name, ""))
    if cols[2].button("Open", key=f"home_open_{name}", width="stretch"):
        state.set_config(load_preset(name))
        state.notify(f"Loaded preset {name}.")
        st.switch_page("app_pages/build.py")

st.subheader("Datasets")
st.caption("All generated here or shipped inside installed packages: nothing is downloaded.")
rows = []
for name in DATASET_NAMES:
    info = dataset_info(name)
    rows.append({"dataset": name, "kind": info.kind, "task": info.task,
                 "input": " x ".join(map(str, info.input_shape)), "outputs": info.num_outputs,
                 "about": info.description})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

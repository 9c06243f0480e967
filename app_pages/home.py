"""Home: one clear first step (train a first CNN), then the presets and lessons by group, and the datasets.

Loads no torch (the first page a learner sees is drawn at once, see ui.warmup): the datasets table
is drawn once the engine has loaded in the background, a few seconds after the server started.
"""

from __future__ import annotations

import streamlit as st

from bigmodel_core.config.lessons import LessonError, load_lesson
from bigmodel_core.config.presets import load_preset, preset_descriptions
from ui import catalog, state, warmup, widgets
from ui import lesson as lesson_ui

BIG_BUTTON = ("<style>.st-key-home_first_cnn button{min-height:3.6rem !important}"
              ".st-key-home_first_cnn button p{font-size:1.25rem !important;font-weight:600 !important}</style>")


def first_cnn() -> None:
    lesson_ui.end_lesson()  # a lesson's hidden controls would not fit this first step
    state.set_config(load_preset(catalog.FIRST_PRESET))
    widgets.bump()
    st.session_state[state.AUTOSTART] = True


st.html(BIG_BUTTON)
state.show_notice()
st.title("bigmodel playground")
st.markdown("Build a **CNN** or an **RNN / LSTM / GRU**, train it live on small datasets, and watch the loss curves, "
            "feature maps and gates move. Every number on these pages was measured by the engine running below them.")

with st.container(border=True, key="home_first_step"):
    c = st.columns([1.4, 3], vertical_alignment="center")
    if c[0].button("Train your first CNN", type="primary", icon=":material/play_arrow:", key="home_first_cnn",
                   width="stretch", on_click=first_cnn):
        st.switch_page("app_pages/train.py")
    c[1].markdown("A small convolutional network learns to read printed digits. The Train page opens with the "
                  "training already running: the loss falls, the accuracy climbs, and the feature maps of its first "
                  "layer change as it learns (about 15 s on a small server).")


def open_preset(name: str) -> None:
    lesson_ui.end_lesson()
    state.set_config(load_preset(name))
    widgets.bump()
    state.notify(f"Loaded the preset {name}.")


desc = preset_descriptions()
for group in catalog.GROUPS:
    st.subheader(group.title)
    st.caption(group.caption)
    cols = st.columns(3)
    for i, entry in enumerate(group.entries):
        with cols[i % 3].container(border=True, key=f"home_card_{entry.name}"):
            st.markdown(f"**{entry.title}**")
            if entry.kind == "lesson":
                try:
                    lesson = load_lesson(entry.name)
                except LessonError as exc:
                    st.caption(f"This lesson cannot be opened: {exc}.")
                    continue
                st.caption(f"lesson `{entry.name}` · {lesson.summary}")
                if st.button("Start the lesson", key=f"home_lesson_{entry.name}", width="stretch"):
                    st.switch_page(lesson.page_file, query_params={"lesson": entry.name})
            else:
                st.caption(f"preset `{entry.name}` · {desc.get(entry.name, '')}")
                if st.button("Open in Build", key=f"home_open_{entry.name}", width="stretch",
                             on_click=open_preset, args=(entry.name,)):
                    st.switch_page("app_pages/build.py")


def datasets() -> None:
    if not warmup.ready():
        st.caption("Loading the dataset list with the engine...")
        return
    if st.session_state.get("_home_datasets_polling"):
        st.session_state.pop("_home_datasets_polling")
        st.rerun(scope="app")  # once: the page is drawn again without the polling
    import pandas as pd  # noqa: PLC0415 - with the engine, once it has loaded

    from bigmodel_core.data import DATASET_NAMES, dataset_info  # noqa: PLC0415 - loads torch: after the warm-up

    rows = []
    for name in DATASET_NAMES:
        info = dataset_info(name)
        rows.append({"dataset": name, "kind": info.kind, "task": info.task,
                     "input": " x ".join(map(str, info.input_shape)), "outputs": info.num_outputs,
                     "about": info.description})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"about": st.column_config.TextColumn(width="large")})


st.subheader("Datasets")
st.caption("All generated here or shipped inside installed packages: nothing is downloaded.")
warmup.start()  # also when Home is run on its own (tests); app.py starts it after the first page otherwise
polling = not warmup.ready()
if polling:
    st.session_state["_home_datasets_polling"] = True
st.fragment(datasets, run_every=1.0 if polling else None)()

"""A learner's own datasets on the Train, Compare and Fine-tune pages: upload, choose, describe.

One upload box (a .zip of class folders, an .npz of arrays x and y, or a .csv of sequences with
a choice of classes or numbers to predict) that every page puts in its data settings, the
dataset choice that lists this workspace's uploads beside the built-in sets, and the panel that
says what the chosen upload holds and what a run of it uses (its name and content hash, classes
with their counts, sizes, and every cap applied).

The files are parsed by the engine (``bigmodel_core.data.uploads``) and kept in the
workspace's :class:`UploadStore` under the run store, so a reload or a new tab of the same
browser finds them and no other workspace ever lists them. A file the engine refuses shows its
message as literal text and changes nothing: the current experiment and the chosen dataset stay.
"""

from __future__ import annotations

import functools
import gc
from typing import Callable, Literal

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.data import DatasetError, build_dataset, is_upload_name
from bigmodel_core.data.uploads import UploadedDataError, UploadStore, fit_images, read_upload, uploaded_path
from bigmodel_core.data.uploads.errors import file_label
from bigmodel_core.limits import current_limits
from bigmodel_core.nn.shapes import SpecError, check_design
from bigmodel_core.training.jobs import release_free_memory
from bigmodel_core.training.trainer import load_data
from ui import labels, state
from ui.literal import md, sentence

Kind = Literal["image", "sequence"]
TYPES = ["zip", "npz", "csv"]
TASKS = {"classification": "classes (classification)", "regression": "numbers to predict (regression)"}
KIND_FILES = {"image": "a .zip with one folder of images per class, or an .npz with arrays x and y",
              "sequence": "a .csv of sequences (wide: one row per sequence with a label column; long: id, t, "
                          "feature columns, label)"}
MODEL_OF = {"image": "a CNN, which reads images", "sequence": "a recurrent network, which reads sequences"}
_META = "_own_data_meta"  # name -> meta of this workspace's uploads served in this process (read once a session)
_PICK = "_own_data_pick_"  # + page: a dataset just uploaded there, chosen at the next run
_ERROR = "_own_data_error_"  # + page: (what was tried, the engine's message) of the last refused file
_BOX = "_own_data_box_"  # + page: the upload box's generation (a new one is empty)
_TRIM = "_own_data_trim"  # set when a file was accepted: the next dataset build hands freed heap back


def store() -> UploadStore:
    return UploadStore(state.get_store().root, state.owner_id())


def metas() -> dict[str, dict]:
    """This workspace's uploaded datasets, newest first, each served in this process; name -> meta."""
    cache: dict[str, dict] = st.session_state.setdefault(_META, {})
    s = store()
    out: dict[str, dict] = {}
    for name in s.names():
        if name not in cache or uploaded_path(name) is None:
            try:
                cache[name] = s.meta(name)
                s.register(name)
            except (DatasetError, OSError, ValueError):
                cache.pop(name, None)  # a damaged file is not offered
                continue
        out[name] = cache[name]
    return out


def names(kind: Kind, shape: tuple[int, ...] | None = None) -> list[str]:
    """This workspace's uploads of ``kind``; with ``shape``, only those a model of that input reads
    (images of exactly that shape, sequences with as many features: any length)."""
    def fits(meta: dict) -> bool:
        have = tuple(meta.get("input_shape", ()))
        return shape is None or (have == tuple(shape) if kind == "image" else have[1:] == tuple(shape)[1:])

    return [n for n, m in metas().items() if m.get("kind") == kind and fits(m)]


def option_label(name: str, known: dict[str, dict] | None = None) -> str:
    """How a dataset reads in a choice: built-in names as they are, an upload by its file and hash
    (the file's name as this workspace uploaded it: ``known``, else this session's uploads)."""
    if not is_upload_name(name):
        return name
    meta = (known if known is not None else st.session_state.get(_META, {})).get(name)
    source = str(meta.get("source", "upload"))[:40] if meta else "upload"
    return f"my data: {source} ({name.removeprefix('upload-')[:8]})"


def labeller() -> Callable[[str], str]:
    """:func:`option_label` for a choice widget's format_func (called where no session is at hand)."""
    return functools.partial(option_label, known=dict(st.session_state.get(_META, {})))


def options(builtin: list[str], kind: Kind, current: str, page: str, key: str,
            shape: tuple[int, ...] | None = None) -> tuple[list[str], str | None]:
    """The datasets a page offers: ``builtin``, then this workspace's uploads of ``kind``, and the
    current one if it is an upload served here (a stored run it was opened from keeps its data).

    Also returns the dataset just uploaded on ``page`` (else None), made the choice of the widget ``key``
    (drawn after this)."""
    own = names(kind, shape)
    out = list(builtin) + [n for n in own if n not in builtin]
    if is_upload_name(current) and current not in out and uploaded_path(current) is not None:
        out.append(current)
    picked = st.session_state.pop(_PICK + page, None)
    if picked not in out:
        return out, None
    st.session_state[key] = picked  # sent to the browser with the widget: it shows the new choice
    return out, picked


def choice(where, label: str, opts: list[str], value: str, key: str, **kwargs):
    """A dataset selectbox over ``opts`` showing ``value``, held in the session state of ``key``.

    The value goes through the session state rather than ``index``: a widget the browser already
    shows keeps its own choice over a new default, but takes one the server sets."""
    if st.session_state.get(key) != value:
        st.session_state[key] = value
    return where.selectbox(label, opts, key=key, format_func=labeller(), **kwargs)


def upload_box(page: str, kind: Kind, shape: tuple[int, ...] | None = None) -> None:
    """The upload box. A good file is kept in the workspace and chosen (the page reruns); a refused one
    shows the engine's message, naming the file and the member, row or column, and changes nothing.

    ``shape``: the input a fixed model reads (pretrained weights): images are resized to it first,
    sequences must have its number of features."""
    gen = st.session_state.get(_BOX + page, 0)
    limit = current_limits().max_upload_bytes
    up = st.file_uploader("Your own data (.zip, .npz or .csv)", type=TYPES, key=f"own_data_file_{page}_{gen}",
                          help=f"For this model: {KIND_FILES[kind]}. At most {limit / 1e6:.0f} MB. 20% of each "
                               "class is held out for validation. Kept in this workspace only: nobody else sees it.")
    task = "classification"
    if kind == "sequence":
        task = st.radio("A CSV's labels are", list(TASKS), format_func=TASKS.get, horizontal=True,
                        key=f"own_data_task_{page}")
    if up is None:
        st.session_state.pop(_ERROR + page, None)
        return
    tried = (up.file_id, task, shape)
    held = st.session_state.get(_ERROR + page)
    if held is None or held[0] != tried:
        message = accept(up.getvalue(), up.name, kind, task, shape, page)
        if message is None:
            st.session_state[_BOX + page] = gen + 1  # an empty box: the dataset is in the list now
            forget_file(up.file_id)
            st.rerun()
        held = st.session_state[_ERROR + page] = (tried, message)
    st.error(md(sentence(held[1]), 1000), icon=":material/block:")


def forget_file(file_id: str) -> None:
    """Let go of an accepted file's bytes now. Streamlit keeps an uploaded file in the server's memory
    until the browser removes it or the session ends, and the box that held it is gone: the kept
    dataset is on disk, so the up to 20 MB are not held for the session's life. Freed heap goes
    back to the OS (parsing leaves some behind), as after every training."""
    try:
        ctx = get_script_run_ctx()
        if ctx is not None:
            ctx.uploaded_file_mgr.remove_file(session_id=ctx.session_id, file_id=file_id)
    except (AttributeError, KeyError):  # another Streamlit's internals: the session's end frees it
        pass
    st.session_state[_TRIM] = True  # once more after the next run has built the dataset
    gc.collect()  # the app turns Streamlit's collection after each run off; an upload is rare and leaves cycles
    release_free_memory()


def accept(data: bytes, filename: str, kind: Kind, task: str, shape: tuple[int, ...] | None,
           page: str) -> str | None:
    """Parse, check and keep one file; None when it was kept (and chosen on ``page``), else why not."""
    try:
        parsed = read_upload(data, filename, task=task if filename.lower().endswith(".csv") else None)
        if parsed.kind != kind:
            what = "images" if parsed.kind == "image" else "sequences"
            return (f"{file_label(parsed.source)} holds {what}, but this model is {MODEL_OF[kind]}; upload "
                    f"{KIND_FILES[kind]}, "
                    "or change the model family on the Build page")
        if shape is not None and kind == "image":
            parsed = fit_images(parsed, shape[1])
        elif shape is not None and parsed.input_shape[1:] != tuple(shape)[1:]:
            return (f"{file_label(parsed.source)} has {parsed.input_shape[1]} feature(s) per step, but this model "
                    f"reads {shape[1]}; nothing was kept")
        name = store().save(parsed)
    except (UploadedDataError, DatasetError) as exc:
        return str(exc)
    except OSError as exc:
        return f"{file_label(filename)} could not be kept in this workspace ({exc.strerror or exc}); nothing changed"
    st.session_state.setdefault(_META, {})[name] = parsed.meta()
    st.session_state[_PICK + page] = name
    return None


def describe(name: str, data: dict, seed: int) -> str | None:
    """What the uploaded dataset ``name`` holds and what a run with these ``data`` settings uses.

    Returns None, or the reason no run can use it with these settings (shown here too)."""
    meta = st.session_state.get(_META, {}).get(name)
    try:
        built = build_dataset(name, train_size=int(data["train_size"]), val_size=int(data["val_size"]), seed=seed)
    except DatasetError as exc:
        st.error(md(sentence(exc), 1000), icon=":material/error:")
        return str(exc)
    if st.session_state.pop(_TRIM, False):  # the first build after an upload: its transient heap goes back
        release_free_memory()
    info = built.info
    shape = " x ".join(map(str, info.input_shape[1:] if info.kind == "image" else info.input_shape))
    total = len(built.y_train) + len(built.y_val)
    source = md(meta.get("source", "an upload"), 80) if meta else "a stored run"
    what = f"{shape} pixels" if info.kind == "image" else f"{info.input_shape[0]} steps x {info.input_shape[1]} " \
                                                          "feature(s)"
    task = f"{len(info.class_names)} classes" if info.task == "classification" else "a number to predict"
    st.markdown(f"**Your data:** {source} · `{name}` (content hash {name.removeprefix('upload-')[:8]}) · {what} · "
                f"{task}")
    st.caption(used_sentence(data, meta, len(built.y_train), len(built.y_val), info.task))
    for note in (meta or {}).get("notes", []):
        st.caption(md(note, 300))
    if info.task == "classification":
        k = len(info.class_names)
        counts = store().class_counts(name) if name in metas() else []
        train = pd.Series(built.y_train.reshape(-1).numpy()).value_counts().reindex(range(k), fill_value=0)
        val = pd.Series(built.y_val.reshape(-1).numpy()).value_counts().reindex(range(k), fill_value=0)
        sizes = counts if len(counts) == k else [t + v for t, v in zip(train.tolist(), val.tolist())]
        st.caption(md(f"{k} classes ({'images' if info.kind == 'image' else 'sequences'} each): "
                      + " · ".join(f"{c} {n:,}" for c, n in zip(info.class_names[:40], sizes))
                      + (f" and {k - 40} more" if k > 40 else ""), 2000))
        table = pd.DataFrame({"class": list(info.class_names), **({"file": counts} if len(counts) == k else {}),
                              "train": train.tolist(), "val": val.tolist()})
        st.dataframe(table, hide_index=True, width="stretch", height=min(36 + 35 * k, 250))
    else:
        y = built.y_train.reshape(-1)
        st.caption(f"Targets from {float(y.min()):.3g} to {float(y.max()):.3g} (training part); {total:,} used.")
    return None


def used_sentence(data: dict, meta: dict | None, n_train: int, n_val: int, task: str = "classification") -> str:
    """"The config asks for 4,000 training samples; the file has 1,200: using 960 train / 240 validation"."""
    asked_train, asked_val = int(data["train_size"]), int(data["val_size"])
    held = f"{n_train:,} train / {n_val:,} validation"
    in_file = (meta or {}).get("samples")
    if in_file is None:
        return f"Using {held}."
    if n_train < asked_train or n_val < asked_val:
        return (f"The config asks for {asked_train:,} training and {asked_val:,} validation samples; the file has "
                f"{in_file:,}: using {held} (20% of {'each class' if task == 'classification' else 'the samples'} "
                "is held out for validation).")
    return f"The file has {in_file:,} samples; the config takes {held} of them."


def choose_for(base: ExperimentConfig, page: str) -> tuple[ExperimentConfig, str | None]:
    """A data choice for a page that starts from a whole experiment (Compare): the experiment's own
    dataset or one of this workspace's uploads of its kind, with the upload box under it.

    Returns the experiment on the chosen data, and the reason it cannot train there (or None)."""
    kind: Kind = "image" if base.model.family == "cnn" else "sequence"
    key = f"own_data_choice_{page}"
    opts, uploaded = options([base.data.name], kind, base.data.name, page, key)
    value = uploaded or st.session_state.get(key, base.data.name)
    value = value if value in opts else base.data.name
    chosen = choice(st, "Data", opts, value, key,
                    help="The base experiment's own dataset, or one of your uploads (every run uses the same).")
    problem = None
    if chosen != base.data.name:
        base = base.with_changes({"data.name": chosen, "data.image_size": None, "data.seq_len": None})
    if is_upload_name(chosen):
        problem = describe(chosen, base.data.model_dump(), base.seed) or design_problem(base)
        if problem is not None and problem.startswith("The design"):
            st.error(md(problem, 1000), icon=":material/error:")
    upload_box(page, kind)
    return base, problem


def design_problem(cfg: ExperimentConfig) -> str | None:
    """Why ``cfg``'s model cannot train on its (uploaded) data, or None; the batch rules count the
    training samples the file really gives."""
    try:
        check_design(cfg, train_samples=len(load_data(cfg).y_train))
    except SpecError as exc:
        return f"The design does not fit this data: {sentence(labels.design_message(exc), capital=False)}"
    except DatasetError as exc:
        return str(exc)
    return None

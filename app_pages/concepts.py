"""Concepts: the course text's formulas, computed live next to the numbers they produce.

Every number shown comes from bigmodel_core.inspect.concepts and is checked here against
PyTorch's own function (F.conv2d, F.max_pool2d, F.avg_pool2d, nn.LSTMCell, nn.GRUCell,
torch.optim); the page prints the difference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from bigmodel_core.inspect import concepts as C
from ui import state
from ui.figures.concepts import (
    conv_figure,
    gates_figure,
    optimizer_figure,
    optimizer_loss_figure,
    pool_figure,
)
from ui.literal import md, sentence

ROOT = Path(__file__).resolve().parent.parent
PLOT = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
DRAW_SIZE = 8
# A "7" to start drawing from.
DRAW_DEFAULT = np.zeros((DRAW_SIZE, DRAW_SIZE), dtype=bool)
DRAW_DEFAULT[1, 1:7] = True
for _r, _c in [(2, 6), (3, 5), (4, 4), (5, 4), (6, 3)]:
    DRAW_DEFAULT[_r, _c] = True


@st.cache_data(show_spinner=False, max_entries=4)
def examples(source: str) -> tuple[np.ndarray, list[str]]:
    return C.example_images(source, count=20)


@st.cache_data(show_spinner=False, max_entries=64)
def paths_for(surface: str, chosen: tuple[str, ...], lrs: tuple[float, ...], steps: int, start: tuple[float, float],
              momentum: float, noise: float, seed: int) -> tuple[list[C.OptimizerPath], float]:
    """torch.optim paths, and the largest difference from the hand-written update rules."""
    return C.paths_with_check(surface, chosen, lrs, steps, start, momentum, noise, seed)


def vec(v: np.ndarray) -> str:
    return r"\begin{bmatrix}" + " & ".join(f"{x:.2f}" for x in np.atleast_1d(v)) + r"\end{bmatrix}"


def num(v: float) -> str:
    return f"({v:.3g})" if v < 0 else f"{v:.3g}"


def link(page_file: str, label: str, url: str, icon: str) -> None:
    """st.page_link when the app's navigation knows the page; a plain link when the page runs alone."""
    try:
        st.page_link(page_file, label=label, icon=icon)
    except StreamlitPageNotFoundError:
        st.markdown(f"{icon} [{label}]({url})")


def checked(diff: float, what: str) -> None:
    if diff < 1e-9:
        st.success(f"Checked against PyTorch's {what}: the same numbers (largest difference {diff:.1e}).",
                   icon=":material/verified:")
    else:  # pragma: no cover - the tests keep this from happening
        st.error(f"PyTorch's {what} differs by {diff:.3g} from the numbers above.")


state.show_notice()
st.title("Concepts")
st.caption("The formulas of convolution, pooling, LSTM and GRU cells and the optimizers, each computed live next to "
           "its numbers. Every number is checked against PyTorch's own implementation.")

tab_conv, tab_pool, tab_rnn, tab_opt, tab_over = st.tabs(
    ["Convolution", "Pooling", "LSTM & GRU", "Optimizers", "Overfitting"], key="concepts_tabs")

# --- convolution ------------------------------------------------------------------------------------------
with tab_conv:
    st.markdown("A convolution slides a small kernel over the input; each output number is the **sum of the "
                "products** of the kernel with the input patch under it (PyTorch, like every deep-learning "
                "library, does not flip the kernel: strictly this is cross-correlation).")
    left, right = st.columns([1.25, 2.2])
    with left:
        source = st.radio("Input", [*C.EXAMPLE_SOURCES, "draw your own"], key="conv_source")
        if source == "draw your own":
            st.caption("Tick cells to draw (8x8).")
            drawn = st.data_editor(pd.DataFrame(DRAW_DEFAULT, columns=[str(c) for c in range(DRAW_SIZE)]),
                                   key="conv_draw", hide_index=True, width="stretch",
                                   column_config={str(c): st.column_config.CheckboxColumn(str(c), width=32)
                                                  for c in range(DRAW_SIZE)})
            image = drawn.to_numpy(dtype=float)
        else:
            images, labels = examples(source)
            pick = st.selectbox("Example", range(len(images)), key=f"conv_pick_{source}",
                                format_func=lambda k: f"digit {labels[k]} (#{k + 1})")
            image = images[pick]
        preset = st.selectbox("Kernel preset", list(C.KERNEL_PRESETS), index=1, key="conv_preset")
        kernel_df = st.data_editor(pd.DataFrame(C.kernel_preset(preset), columns=["0", "1", "2"]),
                                   key=f"conv_kernel_{preset}", width="stretch",
                                   column_config={c: st.column_config.NumberColumn(c, format="%.3g")
                                                  for c in ["0", "1", "2"]})
        kernel = kernel_df.to_numpy(dtype=float)
        if not np.isfinite(kernel).all():
            st.warning("Every kernel cell needs a number; empty cells count as 0.")
            kernel = np.nan_to_num(kernel)
        c1, c2 = st.columns(2)
        stride = c1.slider("Stride s", 1, 3, 1, key="conv_stride")
        padding = c2.slider("Padding p", 0, 2, 1, key="conv_padding")
    with right:
        h, w = image.shape
        try:
            conv = C.conv2d(image, kernel, stride=stride, padding=padding)
        except ValueError as exc:
            st.error(md(sentence(exc)))
            conv = None
        if conv is not None:
            oh, ow = conv.output.shape
            c1, c2 = st.columns(2)
            i = c1.number_input("Output row i", 0, oh - 1, min(oh // 2, oh - 1), key="conv_i")
            j = c2.number_input("Output column j", 0, ow - 1, min(ow // 2, ow - 1), key="conv_j")
            i, j = min(int(i), oh - 1), min(int(j), ow - 1)
            st.latex(r"y_{i,j} = \sum_{u=0}^{2}\sum_{v=0}^{2} x_{s\,i+u-p,\; s\,j+v-p}\; w_{u,v}")
            st.latex(r"H_{out} = \left\lfloor \frac{H + 2p - k}{s} \right\rfloor + 1 = "
                     rf"\left\lfloor \frac{{{h} + 2\cdot{padding} - 3}}{{{stride}}} \right\rfloor + 1 = {oh}"
                     rf"\qquad W_{{out}} = {ow}")
            st.plotly_chart(conv_figure(conv, i, j), width="stretch", config=PLOT, key="conv_fig")
            terms = C.conv_terms(conv, i, j)
            rows = [" + ".join(f"{num(t.x)}\\cdot{num(t.w)}" for t in terms[r * 3:(r + 1) * 3]) for r in range(3)]
            st.latex(rf"y_{{{i},{j}}} = " + r"\\ &+ ".join(rows).join([r"\begin{aligned}&", r"\end{aligned}"])
                     + rf" = {conv.output[i, j]:.4g}")
            with st.expander("The nine products, one per kernel cell"):
                st.dataframe(pd.DataFrame([{
                    "kernel (u, v)": f"({t.u}, {t.v})",
                    "input cell": f"({t.row}, {t.col})" + ("" if 0 <= t.row < h and 0 <= t.col < w else " padding"),
                    "x": t.x, "w": t.w, "x · w": t.product} for t in terms]), hide_index=True, width="stretch")
            checked(C.check_conv(image, conv), "F.conv2d")
    st.caption("The course text (the introductory text on large AI models this playground follows) has CNN code "
               "that calls F.relu without `import torch.nn.functional as F` and trains on a `train_labels` it never "
               "defines. The textbook_cnn preset is that network, fixed; Build and Train export it (or any "
               "experiment) as a script that runs.")

# --- pooling ----------------------------------------------------------------------------------------------
with tab_pool:
    st.markdown("Pooling shrinks a map by summarising each window: **max** keeps the strongest response (and "
                "remembers which cell won), **average** keeps the mean.")
    left, right = st.columns([1, 2.2])
    with left:
        have_map = conv is not None
        options = ["the convolution's output (after ReLU)", "the input image"] if have_map else ["the input image"]
        pool_src = st.radio("Pool", options, key="pool_source",
                            help="The convolution tab's settings decide both inputs.")
        x_pool = np.maximum(conv.output, 0.0) if pool_src.startswith("the conv") and conv is not None else image
        kind = st.radio("Kind", ["max", "avg"], horizontal=True, key="pool_kind",
                        format_func=lambda k: {"max": "max pooling", "avg": "average pooling"}[k])
        c1, c2 = st.columns(2)
        window = c1.slider("Window k", 2, 4, 2, key="pool_window")
        pstride = c2.slider("Stride", 1, 4, window, key=f"pool_stride_{window}")
    with right:
        try:
            pooled = C.pool2d(x_pool, kind, window, pstride)
        except ValueError as exc:
            st.error(md(sentence(exc)))
            pooled = None
        if pooled is not None:
            oh, ow = pooled.output.shape
            c1, c2 = st.columns(2)
            pi = min(int(c1.number_input("Output row", 0, oh - 1, oh // 2, key="pool_i")), oh - 1)
            pj = min(int(c2.number_input("Output column", 0, ow - 1, ow // 2, key="pool_j")), ow - 1)
            r0, c0 = C.pool_window(pooled, pi, pj)
            patch = x_pool[r0:r0 + window, c0:c0 + window]
            if kind == "max":
                wr, wc = pooled.winners[pi, pj]
                st.latex(rf"y_{{i,j}} = \max_{{0 \le u, v < k}} x_{{s i + u,\, s j + v}}"
                         rf"\qquad y_{{{pi},{pj}}} = \max({', '.join(f'{v:.3g}' for v in patch.flat)}) = "
                         rf"{pooled.output[pi, pj]:.4g}")
                st.markdown(f"The winner is input cell **({wr}, {wc})** (orange); in training only that cell "
                            "receives the gradient of this output.")
                what = "F.max_pool2d (values and winning cells)"
            else:
                st.latex(rf"y_{{i,j}} = \frac{{1}}{{k^2}} \sum_{{u, v}} x_{{s i + u,\, s j + v}}"
                         rf"\qquad y_{{{pi},{pj}}} = \frac{{{' + '.join(f'{v:.3g}' for v in patch.flat)}}}"
                         rf"{{{window * window}}} = {pooled.output[pi, pj]:.4g}")
                what = "F.avg_pool2d"
            st.plotly_chart(pool_figure(x_pool, pooled, pi, pj), width="stretch", config=PLOT, key="pool_fig")
            checked(C.check_pool(x_pool, pooled), what)

# --- LSTM and GRU -----------------------------------------------------------------------------------------
with tab_rnn:
    st.markdown("A recurrent cell reads a sequence one step at a time and carries a hidden state. Gates are "
                "numbers between 0 and 1 (sigmoids) that decide how much to let through. Step through a short "
                "sequence and see each gate computed from its equation.")
    left, right = st.columns([1, 2.2])
    with left:
        cell_kind = st.radio("Cell", ["lstm", "gru"], horizontal=True, key="rnn_kind",
                             format_func=lambda k: k.upper())
        seq_text = st.text_input("Input sequence (one number per time step)", "0.5, -1.0, 0.8, 0.0, 1.5, -0.5",
                                 key="rnn_seq")
        c1, c2 = st.columns(2)
        hidden = c1.slider("Hidden units", 1, 4, 2, key="rnn_hidden")
        wseed = c2.number_input("Weight seed", 0, 10_000, 0, key="rnn_seed",
                                help="Weights drawn like PyTorch's default init, from this seed")
    try:
        seq = [float(v) for v in seq_text.replace(";", ",").split(",") if v.strip()]
        if not seq:
            raise ValueError("type at least one number")
        if len(seq) > 30:
            raise ValueError(f"{len(seq)} steps; 30 at most keep it readable")
        if not all(np.isfinite(seq)):
            raise ValueError("every value must be a finite number")
    except ValueError as exc:
        right.error(f"The sequence is not a list of numbers: {md(exc)}")
        seq = []
    if seq:
        weights = C.random_cell(cell_kind, 1, hidden, seed=int(wseed))
        steps = C.lstm_steps(seq, weights) if cell_kind == "lstm" else C.gru_steps(seq, weights)
        with left:
            t = st.slider("Time step t", 1, len(seq), 1, key=f"rnn_t_{len(seq)}") if len(seq) > 1 else 1
        step = steps[t - 1]
        with right:
            st.markdown(f"Step **t = {t}**: input x_{t} = {seq[t - 1]:g}; h_{t - 1} = "
                        f"{np.array2string(step.h_prev, precision=3)}. W multiplies the input, U the previous "
                        "state. " + ("Each b is the sum of PyTorch's two biases for that gate (b_ih + b_hh)."
                                     if cell_kind == "lstm" else
                                     "b_r and b_z are each the sum of PyTorch's two biases for that gate (b_ir + b_hr, "
                                     "b_iz + b_hz); the candidate keeps them apart: b_h is PyTorch's b_in alone and "
                                     "b'_h is its b_hn, the one the reset gate scales."))
            if cell_kind == "lstm":
                st.latex(r"\begin{aligned}"
                         rf"i_t &= \sigma(W_i x_t + U_i h_{{t-1}} + b_i) &&= {vec(step.i)}\\"
                         rf"f_t &= \sigma(W_f x_t + U_f h_{{t-1}} + b_f) &&= {vec(step.f)}\\"
                         rf"g_t &= \tanh(W_g x_t + U_g h_{{t-1}} + b_g) &&= {vec(step.g)}\\"
                         rf"o_t &= \sigma(W_o x_t + U_o h_{{t-1}} + b_o) &&= {vec(step.o)}\\"
                         rf"c_t &= f_t \odot c_{{t-1}} + i_t \odot g_t &&= {vec(step.c)}\\"
                         rf"h_t &= o_t \odot \tanh(c_t) &&= {vec(step.h)}"
                         r"\end{aligned}")
                checked(C.check_cell(seq[:t], weights, step), "nn.LSTMCell (h_t and c_t, same weights)")
                st.caption("The forget gate f scales the old cell state and the input gate i adds new content: the "
                           "cell state is updated by addition, which is why gradients survive long sequences. "
                           "input_size is the number of features per step (1 here); the course text's LSTM code "
                           "declared input_size=100 for data with 1 feature per step.")
            else:
                st.latex(r"\begin{aligned}"
                         rf"r_t &= \sigma(W_r x_t + U_r h_{{t-1}} + b_r) &&= {vec(step.r)}\\"
                         rf"z_t &= \sigma(W_z x_t + U_z h_{{t-1}} + b_z) &&= {vec(step.z)}\\"
                         rf"\tilde h_t &= \tanh(W_h x_t + b_h + r_t \odot (U_h h_{{t-1}} + b'_h))"
                         rf" &&= {vec(step.n)}\\"
                         rf"h_t &= (1 - z_t) \odot h_{{t-1}} + z_t \odot \tilde h_t &&= {vec(step.h)}"
                         r"\end{aligned}")
                checked(C.check_cell(seq[:t], weights, step), "nn.GRUCell (h_t, same weights)")
                st.info(
                    "**A GRU has two gates only: the update gate z and the reset gate r.** It has no forget or "
                    "output gate and no separate cell state (the course text's GRU is wrong on this). The update "
                    "gate mixes old state and candidate: h_t = (1 − z_t) h_{t−1} + z_t h̃_t.\n\n"
                    "**Convention:** this page writes z as the share of the *new* candidate (the form most texts use). "
                    "PyTorch's nn.GRU writes the same cell with z and 1 − z swapped: h_t = (1 − z_t) n_t + z_t "
                    "h_(t−1), so PyTorch's z is 1 − (the z above): here "
                    f"{np.array2string(step.z_pytorch, precision=3)} at t = {t}. "
                    "Its update weights are the negatives of W_z, U_z, b_z above. PyTorch also applies the reset "
                    "gate after multiplying h_(t−1) by W_hn (as written above), not before as in the original paper.",
                    icon=":material/info:")
            st.plotly_chart(gates_figure(steps, t), width="stretch", config=PLOT, key="gates_fig")
        with st.expander("The weights (PyTorch layout, gates stacked by rows)"):
            names = ["i", "f", "g", "o"] if cell_kind == "lstm" else ["r", "z (PyTorch's)", "n"]
            rows = [f"{g}{u + 1}" for g in names for u in range(hidden)]
            st.dataframe(pd.DataFrame({"W_ih": weights.weight_ih[:, 0], "b_ih": weights.bias_ih,
                                       "b_hh": weights.bias_hh,
                                       **{f"W_hh[:, {k}]": weights.weight_hh[:, k] for k in range(hidden)}},
                                      index=rows), width="stretch")

# --- optimizers -------------------------------------------------------------------------------------------
with tab_opt:
    st.markdown("Every optimizer starts from the same point on a 2-D loss surface f(x, y). The paths are "
                "**torch.optim's own steps** on a 2-parameter tensor; the update rules below reproduce them.")
    left, right = st.columns([1, 2.2])
    with left:
        surface_name = st.selectbox("Surface", list(C.SURFACES), key="opt_surface",
                                    format_func=lambda n: C.SURFACES[n].title)
        surf = C.SURFACES[surface_name]
        st.latex(surf.latex)
        st.caption(surf.description)
        chosen = st.multiselect("Optimizers", list(C.OPTIMIZER_NAMES), list(C.OPTIMIZER_NAMES), key="opt_chosen",
                                format_func=lambda n: C.OPTIMIZER_LABELS[n])
        n_steps = st.slider("Steps", 10, 300, 100, 10, key="opt_steps")
        lr_options = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7,
                      1.0, 1.5, 2.0]
        with st.expander("Learning rates", expanded=True):
            lrs = {n: st.select_slider(f"{C.OPTIMIZER_LABELS[n]} lr", lr_options,
                                       min(lr_options, key=lambda v: abs(v - surf.lrs[n])),
                                       key=f"opt_lr_{surface_name}_{n}") for n in chosen}
        c1, c2 = st.columns(2)
        momentum = c1.slider("Momentum μ", 0.0, 0.99, 0.9, 0.01, key="opt_momentum")
        noise = c2.slider("SGD noise σ", 0.0, 3.0, 0.3, 0.1, key="opt_noise",
                          help="Gaussian noise added to the gradient: a stand-in for mini-batch noise")
        c1, c2 = st.columns(2)
        x0 = c1.number_input("start x", *surf.x_range, float(surf.start[0]), 0.1, key=f"opt_x0_{surface_name}")
        y0 = c2.number_input("start y", *surf.y_range, float(surf.start[1]), 0.001, format="%.3f",
                             key=f"opt_y0_{surface_name}")
    with right:
        paths, worst = paths_for(surface_name, tuple(chosen), tuple(lrs[n] for n in chosen), int(n_steps),
                                 (float(x0), float(y0)), float(momentum), float(noise), 0)
        xs, ys, zs = C.surface_grid(surface_name)
        st.plotly_chart(optimizer_figure(surf, xs, ys, zs, paths), width="stretch", config=PLOT, key="opt_fig")
        f_min = float(surf.fn(*surf.minimum))
        if paths:
            st.plotly_chart(optimizer_loss_figure(paths, f_min), width="stretch", config=PLOT, key="opt_loss_fig")
            table = []
            for p in paths:
                close = np.nonzero(p.losses - f_min < 1e-3)[0]
                table.append({"optimizer": C.OPTIMIZER_LABELS[p.name], "lr": p.lr,
                              "final loss": float(p.losses[-1]), "final point": f"({p.points[-1][0]:.3f}, "
                                                                                f"{p.points[-1][1]:.3f})",
                              "steps to f − f* < 1e-3": int(close[0]) if close.size else None,
                              "diverged": "yes: lower the lr" if p.diverged else ""})
            st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
            checked(worst, "torch.optim: each of its steps against one update of the rules below from the same "
                           "point, gradient and state")
    with st.expander("Update rules: exactly what torch.optim runs (g_t is the gradient at step t)", expanded=False):
        st.latex(r"\textbf{GD:}\quad \theta_{t} = \theta_{t-1} - \eta\, g_t")
        st.latex(r"\textbf{SGD:}\quad \theta_{t} = \theta_{t-1} - \eta\,(g_t + \epsilon_t),\quad "
                 r"\epsilon_t \sim \mathcal{N}(0, \sigma^2 I)")
        st.latex(r"\textbf{Momentum (PyTorch):}\quad b_t = \mu\, b_{t-1} + g_t\ (b_1 = g_1),\quad "
                 r"\theta_t = \theta_{t-1} - \eta\, b_t")
        st.latex(r"\textbf{Nesterov (PyTorch):}\quad b_t = \mu\, b_{t-1} + g_t\ (b_1 = g_1),\quad "
                 r"\theta_t = \theta_{t-1} - \eta\,(g_t + \mu\, b_t)")
        st.latex(r"\textbf{Adagrad:}\quad G_t = G_{t-1} + g_t^2,\quad "
                 r"\theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{G_t} + 10^{-10}}")
        st.latex(r"\textbf{RMSprop:}\quad v_t = 0.99\, v_{t-1} + 0.01\, g_t^2,\quad "
                 r"\theta_t = \theta_{t-1} - \eta\,\frac{g_t}{\sqrt{v_t} + 10^{-8}}")
        st.latex(r"\textbf{Adam:}\quad m_t = 0.9\, m_{t-1} + 0.1\, g_t,\ v_t = 0.999\, v_{t-1} + 0.001\, g_t^2,\ "
                 r"\hat m_t = \frac{m_t}{1 - 0.9^t},\ \hat v_t = \frac{v_t}{1 - 0.999^t},\ "
                 r"\theta_t = \theta_{t-1} - \eta\,\frac{\hat m_t}{\sqrt{\hat v_t} + 10^{-8}}")
        st.latex(r"\textbf{AdamW:}\quad \theta'_{t-1} = (1 - 0.01\,\eta)\,\theta_{t-1}\ "
                 r"\text{(decoupled weight decay, PyTorch's default 0.01), then Adam's step from } \theta'_{t-1}")
        st.caption("Many texts write momentum as v_t = μ v_(t−1) − η g_t, θ_t = θ_(t−1) + v_t; with a constant "
                   "learning rate that is the same path (v_t = −η b_t). Squares and square roots are per "
                   "coordinate.")

# --- overfitting ------------------------------------------------------------------------------------------
with tab_over:
    st.markdown("A model **overfits** when it learns its training examples by heart instead of the rule behind "
                "them: the training loss keeps falling while the loss on held-out data stops falling or rises. "
                "The remedies the course text lists, each available in the playground:")
    st.latex(r"\text{L2: } \mathcal{L} = \mathcal{L}_{data} + \lambda_2 \sum_w w^2 \qquad "
             r"\text{L1: } \mathcal{L} = \mathcal{L}_{data} + \lambda_1 \sum_w |w|")
    st.latex(r"\text{Dropout (training only): } \tilde a = \frac{m \odot a}{1 - p},\quad m_k \sim "
             r"\text{Bernoulli}(1 - p)")
    st.markdown("- a **smaller model** (fewer channels or units)\n- **more data**, or **data augmentation** "
                "(random shifts and rotations)\n- **L1/L2 penalties** on the weights (above)\n- **dropout** "
                "(above) and **early stopping** on the validation loss")
    st.markdown("See it happen: the Compare page trains the same CNN on 100 digits with and without each remedy, "
                "from identical initial weights, in one click.")
    link("app_pages/compare.py", "Open Compare (the Overfitting lesson button is at the top)", "/compare",
         ":material/compare_arrows:")
    link("app_pages/lessons.py", "Or take the 'Overfitting and dropout' lesson, step by step (Lessons page)",
         "/lessons",
         ":material/school:")

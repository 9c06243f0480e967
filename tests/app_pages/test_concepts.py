"""The Concepts page renders every section, and the numbers it prints are PyTorch's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from bigmodel_core.inspect import concepts as C

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def at() -> AppTest:
    """One app for the module: each test moves some widgets and reruns (the first render is the slow one)."""
    app = AppTest.from_file(str(ROOT / "app_pages/concepts.py"), default_timeout=120).run()
    assert not app.exception
    return app


def checks(app: AppTest) -> list[str]:
    return [s.value for s in app.success if s.value.startswith("Checked against PyTorch")]


def latex(app: AppTest) -> str:
    return "\n".join(x.value for x in app.latex)


def test_every_section_renders_and_is_checked_against_pytorch(at):
    assert [t.label for t in at.tabs] == ["Convolution", "Pooling", "LSTM & GRU", "Optimizers", "Overfitting"]
    found = " ".join(checks(at))
    for what in ("F.conv2d", "F.max_pool2d", "nn.LSTMCell", "torch.optim"):
        assert what in found
    assert not at.error


def test_the_printed_convolution_sum_is_f_conv2d(at):
    at.selectbox(key="conv_preset").set_value("sharpen")
    at.slider(key="conv_stride").set_value(2)
    at.slider(key="conv_padding").set_value(1).run()
    images, _ = C.example_images("handwritten digit (8x8)")
    ref = F.conv2d(torch.tensor(images[0])[None, None], torch.tensor(C.kernel_preset("sharpen"))[None, None],
                   stride=2, padding=1)[0, 0]
    assert ref.shape == (4, 4)
    i, j = int(at.number_input(key="conv_i").value), int(at.number_input(key="conv_j").value)
    text = latex(at)
    assert r"\right\rfloor + 1 = 4" in text  # the output-size formula with these numbers
    shown = next(x.value for x in at.latex if f"y_{{{i},{j}}} = " + r"\begin{aligned}" in x.value)
    match = re.search(r"\\end\{aligned\} = (-?[0-9.e+-]+)", shown)
    assert match and float(match.group(1)) == pytest.approx(float(ref[i, j]), abs=5e-4)
    assert any("F.conv2d" in c and "0.0e+00" in c for c in checks(at))


def test_drawing_your_own_input(at):
    at.radio(key="conv_source").set_value("draw your own").run()
    assert not at.exception
    assert any("F.conv2d" in c for c in checks(at))
    at.radio(key="conv_source").set_value("handwritten digit (8x8)").run()


def test_average_pooling_is_f_avg_pool2d(at):
    at.radio(key="pool_kind").set_value("avg")
    at.slider(key="pool_window").set_value(3).run()
    assert any("F.avg_pool2d" in c for c in checks(at))
    assert r"\frac{1}{k^2}" in latex(at)


def test_gru_section_uses_the_correct_equations_and_says_so(at):
    at.radio(key="rnn_kind").set_value("gru").run()
    text = latex(at)
    assert r"h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t" in text
    assert "f_t" not in text and "o_t" not in text  # no forget or output gate in a GRU
    assert any("nn.GRUCell" in c for c in checks(at))
    note = " ".join(i.value for i in at.info)
    assert "two gates only" in note and "h_t = (1 − z_t) n_t + z_t h_(t−1)" in note
    # the candidate's biases are PyTorch's b_in and b_hn, each once (never b_in + b_hn)
    words = " ".join(m.value for m in at.markdown)
    assert "b_h is PyTorch's b_in alone" in words and "b'_h is its b_hn" in words
    assert "b_in + b_hn" not in words


def test_stepping_through_the_lstm_shows_that_steps_gates(at):
    at.radio(key="rnn_kind").set_value("lstm")
    at.text_input(key="rnn_seq").set_value("1, 0.5, -2").run()
    at.slider(key="rnn_t_3").set_value(3).run()
    steps = C.lstm_steps([1, 0.5, -2], C.random_cell("lstm", 1, 2, seed=0))
    f3 = " & ".join(f"{v:.2f}" for v in steps[2].f)
    assert f3 in latex(at)
    assert any("nn.LSTMCell" in c for c in checks(at))


def test_a_sequence_that_is_not_numbers_is_explained(at):
    at.text_input(key="rnn_seq").set_value("1, two, 3").run()
    assert any("not a list of numbers" in e.value for e in at.error)
    at.text_input(key="rnn_seq").set_value("0.5, -1.0, 0.8").run()
    assert not at.error


def test_optimizer_paths_on_another_surface(at):
    at.selectbox(key="opt_surface").set_value("saddle")
    at.multiselect(key="opt_chosen").set_value(["gd", "adam"]).run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert list(table["optimizer"]) == ["GD", "Adam"]
    path = C.optimizer_path("saddle", "adam", C.SURFACES["saddle"].lrs["adam"], 100)
    assert table["final loss"].iloc[1] == pytest.approx(float(path.losses[-1]))
    assert any("torch.optim" in c for c in checks(at))


def test_overfitting_section_links_to_compare(at):
    text = " ".join(m.value for m in at.markdown)
    assert "overfits" in text
    assert "/compare" in text or at.get("page_link")

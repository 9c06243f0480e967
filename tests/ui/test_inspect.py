"""The inspect area rendered by Streamlit's AppTest for each model family: the right sections, no errors."""

import pytest
from streamlit.testing.v1 import AppTest


def _app(config: dict, source: str, poison: bool = False) -> None:
    import streamlit as st

    from bigmodel_core.config.specs import parse_config
    from bigmodel_core.inspect import probes
    from bigmodel_core.training.jobs import Job
    from bigmodel_core.training.store import RunStore, history_rows
    from bigmodel_core.training.trainer import EpochEnd
    from ui.inspect import render_inspect

    if "job" not in st.session_state:
        cfg = parse_config(config)
        job = Job(cfg, owner="me", make_trainer=probes.make_trainer, epoch_hooks=[probes.epoch_hook])
        trainer = probes.make_trainer(job)
        job.trainer = trainer
        for ev in trainer.run():
            job.record(ev)
            if isinstance(ev, EpochEnd):
                probes.epoch_hook(job, trainer, ev)
        job.status = "completed"
        if poison:  # what a diverged run leaves behind
            import torch

            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))
            job.set_extra(probes.PROBES, None)
        st.session_state.job = job
        if source == "run":
            import tempfile

            store = RunStore(tempfile.mkdtemp())
            rid = store.save(cfg, history_rows(trainer.result.history), trainer.summary(),
                             {k: v.clone() for k, v in trainer.model.state_dict().items()})
            st.session_state.run = store.load(rid)
    render_inspect(st.session_state.run if source == "run" else st.session_state.job)


def run_app(model: dict, data: dict, source: str = "job", poison: bool = False) -> AppTest:
    config = {"data": {"train_size": 48, "val_size": 24, **data}, "model": model,
              "training": {"epochs": 1, "batch_size": 16, "device": "cpu"}}
    at = AppTest.from_function(_app, kwargs={"config": config, "source": source, "poison": poison},
                               default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def headings(at: AppTest) -> list[str]:
    return [s.value for s in at.subheader]


def test_cnn_sections_and_scaling_switch():
    at = run_app({"family": "cnn", "conv": [{"channels": 4}], "dense": []}, {"name": "synthetic_digits"})
    assert headings(at) == ["Feature maps", "Filters", "Gradients", "Confusion matrix"]
    assert at.radio(key="inspect_scaling").value == "one per layer"
    at.radio(key="inspect_scaling").set_value("one per map").run()
    assert not at.exception
    at.number_input(key="inspect_index").set_value(5).run()
    assert not at.exception and "Validation example #5" in " ".join(c.value for c in at.caption)


@pytest.mark.parametrize("family,data,want", [
    ("lstm", {"name": "sequential_digits"}, ["Hidden state", "Gates", "Gradients", "Confusion matrix"]),
    ("gru", {"name": "adding_problem", "seq_len": 10}, ["Hidden state", "Gates", "Gradients",
                                                        "Predictions vs targets"]),
    ("rnn", {"name": "sine_wave", "seq_len": 10}, ["Hidden state", "Gradients", "Predictions vs targets"]),
])
def test_sequence_sections(family, data, want):
    at = run_app({"family": family, "hidden": 5, "layers": 2, "bidirectional": True}, data)
    assert headings(at) == want
    text = " ".join(c.value for c in at.caption)
    if family == "gru":
        assert "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}" in text
    if family == "rnn":
        assert "A plain RNN has no gates" in text
    at.selectbox(key="inspect_trace").set_value("layer 2 backward").run()
    assert not at.exception


def test_one_example_per_class_and_a_stored_run():
    at = run_app({"family": "cnn", "conv": [{"channels": 3}], "dense": []}, {"name": "shapes"}, source="run")
    assert headings(at) == ["Feature maps", "Filters", "Gradients", "Confusion matrix"]
    assert "final weights of run" in " ".join(c.value for c in at.caption)
    at.radio(key="inspect_pick").set_value("one per class").run()
    assert not at.exception and at.selectbox(key="inspect_class").options
    at.button(key="inspect_reroll").click().run()
    assert not at.exception


@pytest.mark.parametrize("model,data", [
    ({"family": "cnn", "conv": [{"channels": 3}], "dense": []}, {"name": "synthetic_digits"}),
    ({"family": "gru", "hidden": 4}, {"name": "sine_wave", "seq_len": 8}),
])
def test_a_diverged_model_is_drawn_with_a_note_not_an_error(model, data):
    at = run_app(model, data, poison=True)
    assert "Gradients" in headings(at)
    assert "the run diverged" in " ".join(c.value for c in at.caption)

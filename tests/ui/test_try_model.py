"""Which weights "Try your model" uses for a job (a copy after the latest epoch while it trains, the final
ones when it ends, none before the first epoch), and the inspect area's attributions of the confidently
wrong examples, under Streamlit's AppTest."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.ui.test_inspect import run_app


def _app() -> None:
    import streamlit as st
    import torch

    from bigmodel_core.config.specs import parse_config
    from bigmodel_core.inspect import probes
    from bigmodel_core.training.jobs import Job
    from bigmodel_core.training.trainer import EpochEnd
    from ui.try_model import model_for

    cfg = parse_config({"data": {"name": "synthetic_digits", "train_size": 64, "val_size": 16},
                        "model": {"family": "cnn", "conv": [{"channels": 3}], "dense": []},
                        "training": {"epochs": 2, "batch_size": 16, "device": "cpu"}})
    job = Job(cfg, owner="me")
    st.session_state.queued = model_for(job)
    trainer = probes.make_trainer(job)
    job.trainer, job.status = trainer, "running"
    st.session_state.before_first_epoch = model_for(job)
    events = trainer.run()
    for ev in events:
        job.record(ev)
        if isinstance(ev, EpochEnd):
            break
    live = model_for(job)
    st.session_state.live = live
    st.session_state.same_as_trainer = all(torch.equal(a, b) for a, b in zip(live.model.state_dict().values(),
                                                                          trainer.model.state_dict().values()))
    st.session_state.again_is_cached = model_for(job) is live
    for ev in events:  # the second epoch moves the trainer's weights, not the copy
        job.record(ev)
    st.session_state.copy_kept = any(not torch.equal(a, b) for a, b in zip(live.model.state_dict().values(),
                                                                           trainer.model.state_dict().values()))
    job.final_state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    job.status = "completed"
    final = model_for(job)
    st.session_state.final = final
    st.session_state.final_is_final = all(torch.equal(a, job.final_state[k])
                                          for k, a in final.model.state_dict().items())
    job.status, job.final_state = "failed", None
    st.session_state.failed = model_for(job)


def test_the_weights_tried_follow_the_job():
    at = AppTest.from_function(_app, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    s = at.session_state
    assert s.queued == s.before_first_epoch == ("Try your model becomes available at the end of the first epoch, "
                                                "on a copy of the weights as they are.")
    assert s.live.origin.startswith("a copy of the weights taken at step 4, after epoch 1 of 2")
    assert s.same_as_trainer and s.again_is_cached and s.copy_kept
    assert not s.live.model.training and not any(p.requires_grad for p in s.live.model.parameters())
    assert s.final.origin == "the final weights of the job" and s.final_is_final
    assert s.failed == "This job ended without weights to try (failed)."


def test_the_confidently_wrong_examples_get_attributions_for_their_wrong_class():
    at = run_app({"family": "cnn", "conv": [{"channels": 3}], "dense": []}, {"name": "synthetic_digits"})
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Why it was wrong: Grad-CAM of the last conv block" in c for c in charts)
    for method in ("integrated gradients", "saliency"):
        at.radio(key="inspect_why_method").set_value(method).run()
        assert not at.exception
        assert any(f"Why it was wrong: {method}" in c.proto.spec for c in at.get("plotly_chart"))
    at.toggle(key="inspect_why").set_value(False).run()
    assert not any("Why it was wrong" in c.proto.spec for c in at.get("plotly_chart"))


def test_a_sequence_models_wrong_examples_get_attributions_over_steps_and_features():
    at = run_app({"family": "lstm", "hidden": 5}, {"name": "sequential_digits"})
    assert at.radio(key="inspect_why_method").options == ["integrated gradients", "saliency"]
    assert any("Why it was wrong: integrated gradients" in c.proto.spec for c in at.get("plotly_chart"))

import numpy as np
import plotly.graph_objects as go
import pytest

from bigmodel_core.config.specs import parse_config
from bigmodel_core.inspect import probes
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.trainer import load_data
from ui.figures import probes as figs


@pytest.fixture(scope="module")
def cnn_result():
    cfg = parse_config({"data": {"name": "synthetic_digits", "train_size": 32, "val_size": 30},
                        "model": {"family": "cnn", "conv": [{"channels": 5}, {"channels": 6}], "dense": []}})
    ds = load_data(cfg)
    return probes.compute_probes(build_model(cfg.model, ds.info, seed=0), ds, spec=cfg.model, index=2)


@pytest.fixture(scope="module", params=["lstm", "gru"])
def seq_result(request):
    cfg = parse_config({"data": {"name": "adding_problem", "train_size": 32, "val_size": 20, "seq_len": 10},
                        "model": {"family": request.param, "hidden": 4, "layers": 2, "bidirectional": True}})
    ds = load_data(cfg)
    return probes.compute_probes(build_model(cfg.model, ds.info, seed=0), ds, spec=cfg.model)


def test_mosaic_tiles_maps_with_gaps_and_optional_per_map_scaling():
    maps = np.stack([np.full((2, 3), 1.0), np.arange(6.0).reshape(2, 3), np.full((2, 3), -2.0)])
    z, number, raw = figs.mosaic(maps)
    assert z.shape == (2 * 3 - 1, 2 * 4 - 1)  # 2x2 grid of 2x3 maps, 1-pixel gaps
    assert np.isnan(z[2]).all() and (number[:2, :3] == 1).all() and (number[3:, :3] == 3).all()
    zm, _, rawm = figs.mosaic(maps, per_map=True)
    assert np.nanmin(zm[:2, 4:]) == 0.0 and np.nanmax(zm[:2, 4:]) == 1.0  # map 2 stretched to 0..1
    assert np.array_equal(rawm[:2, 4:], maps[1])
    assert (zm[:2, :3] == 0).all()  # a flat map (a dead ReLU channel) stays dark instead of mid-scale


def test_feature_map_figures_share_one_scale_per_layer_or_one_per_map(cnn_result):
    fm = cnn_result.cnn.layers[0]
    fig = figs.feature_maps_figure(fm.maps, fm.name, scaling="layer", total=fm.shape[0])
    assert [type(t) for t in fig.data] == [go.Heatmap]
    hm = fig.data[0]
    assert hm.zmin == pytest.approx(float(fm.maps.min())) and hm.zmax == pytest.approx(float(fm.maps.max()))
    assert "5 maps 28x28" in fig.layout.title.text and "one scale" in fig.layout.title.text
    per = figs.feature_maps_figure(fm.maps, fm.name, scaling="map")
    assert (per.data[0].zmin, per.data[0].zmax) == (0.0, 1.0) and "each map" in per.layout.title.text
    capped = figs.feature_maps_figure(fm.maps[:3], fm.name, total=70)
    assert "first 3 of 70" in capped.layout.title.text
    with pytest.raises(ValueError, match="scaling"):
        figs.feature_maps_figure(fm.maps, fm.name, scaling="global")


def test_filters_input_and_probabilities(cnn_result):
    c = cnn_result.cnn
    f = figs.filters_figure(c.filters, c.filter_count)
    assert f.data[0].zmin == -f.data[0].zmax and "5 kernels 3x3" in f.layout.title.text
    assert isinstance(figs.input_figure(c.image, "input").data[0], go.Heatmap)
    p = figs.probabilities_figure(c.probs, c.class_names, c.label)
    assert isinstance(p.data[0], go.Bar) and len(p.data[0].y) == 10
    assert f"predicted {c.class_names[c.prediction]}" in p.layout.title.text


def test_hidden_state_and_gate_figures(seq_result):
    seq = seq_result.sequence
    assert [t.label for t in seq.traces] == ["layer 1 forward", "layer 1 backward", "layer 2 forward",
                                             "layer 2 backward"]
    tr = seq.traces[0]
    h = figs.hidden_state_figure(tr)
    assert h.data[0].z.shape == (4, 10)  # units x steps
    assert (h.data[0].zmin, h.data[0].zmax) == (-1.0, 1.0)
    g = figs.gates_figure(tr, seq.family)
    assert all(isinstance(t, go.Heatmap) for t in g.data)
    if seq.family == "lstm":
        assert [t.name for t in g.data] == ["input gate i_t", "forget gate f_t", "cell candidate g_t",
                                            "output gate o_t"]
        assert figs.hidden_state_figure(tr, "cell").data[0].z.shape == (4, 10)
    else:
        assert [t.name for t in g.data] == ["reset gate r_t", "update gate z_t", "candidate n_t"]
        assert "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}" in g.layout.title.subtitle.text
        with pytest.raises(ValueError, match="only LSTMs have a cell state"):
            figs.hidden_state_figure(tr, "cell")
    assert [t.coloraxis for t in g.data].count("coloraxis2") == 1  # the tanh candidate has its own scale
    m = figs.gate_means_figure(tr, seq.family)
    assert len(m.data) == len(tr.gates)


def test_sequence_regression_and_gradient_figures(seq_result):
    seq, reg = seq_result.sequence, seq_result.regression
    s = figs.sequence_figure(seq.x, seq.target, seq.output, "regression", ["value", "marker"])
    assert [t.name for t in s.data] == ["value", "marker", "target", "prediction"]
    sc = figs.prediction_scatter_figure(reg.predictions, reg.targets, reg.mae, reg.total)
    assert len(sc.data[1].x) == 20 and "MAE" in sc.layout.title.text
    hg = figs.hidden_grads_figure(seq.hidden_grads, 20)
    assert len(hg.data) == 4 and hg.layout.yaxis.type == "log"
    gn = figs.grad_norms_figure([1, 10, 20], {"1. gru 4": [1.0, 0.5, 0.1], "3. output 1": [2.0, 1.0, float("nan")]})
    assert [t.name for t in gn.data] == ["1. gru 4", "3. output 1"] and gn.layout.yaxis.type == "log"


def test_weight_histograms_and_errors(cnn_result):
    w = figs.weight_hist_figure(cnn_result.weights)
    assert [t.name for t in w.data] == ["now"] * len(cnn_result.weights)  # no start weights given
    conf = cnn_result.confusion
    cf = figs.confusion_figure(conf.matrix, conf.class_names)
    assert np.asarray(cf.data[0].z).sum() == 30 and "30 validation samples" in cf.layout.title.text
    gal = figs.wrong_gallery_figure(conf.wrong, conf.class_names)
    assert len(gal.data) == len(conf.wrong)
    assert "no mistakes" in figs.wrong_gallery_figure([], conf.class_names).layout.annotations[0].text


def test_png_config_names_the_download():
    cfg = figs.png_config("feature_maps_block1")
    assert cfg["toImageButtonOptions"] == {"format": "png", "filename": "feature_maps_block1", "scale": 2}

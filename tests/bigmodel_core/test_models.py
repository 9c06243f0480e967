import pytest
import torch

from bigmodel_core.config.presets import load_preset, preset_names
from bigmodel_core.config.specs import parse_config
from bigmodel_core.data import DATASET_NAMES, dataset_info
from bigmodel_core.nn.models import build_model, count_params, summarize
from bigmodel_core.nn.shapes import SpecError, infer_layers


def cnn(conv, dense=None, data="synthetic_digits", **data_kw):
    return parse_config({"data": {"name": data, **data_kw},
                         "model": {"family": "cnn", "conv": conv, "dense": dense or []}})


def info_of(cfg):
    return dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)


@pytest.mark.parametrize("name", preset_names())
def test_inferred_shapes_match_real_forward(name):
    cfg = load_preset(name)
    info = info_of(cfg)
    rows = infer_layers(cfg.model, info)
    model = build_model(cfg.model, info, seed=0)
    assert sum(r.params for r in rows) == count_params(model)
    out = model(torch.zeros(3, *info.input_shape))
    assert tuple(out.shape) == (3, info.num_outputs) == (3, rows[-1].out_shape[0])


def test_textbook_cnn_has_421642_parameters():
    cfg = load_preset("textbook_cnn")
    rows = summarize(cfg.model, info_of(cfg))
    assert sum(r.params for r in rows) == 421_642
    conv_rows = [r for r in rows if r.kind == "conv"]
    assert [r.out_shape for r in conv_rows] == [(32, 28, 28), (64, 14, 14)]
    # flop counter: conv1 = 2 * 28*28 * 32 * 9 multiply-adds
    assert conv_rows[0].flops == 2 * 28 * 28 * 32 * 9
    assert all(r.flops > 0 for r in rows if r.kind in ("conv", "dense", "output"))


CONV_OPTIONS = [
    dict(kernel=k, stride=st, padding=pad, pool=pool, batchnorm=bn, residual=res, activation=act)
    for k, st, pad in ((3, 1, "same"), (5, 2, "valid"), (2, 1, 1), (3, 2, "same"))
    for pool in ("none", "max", "avg")
    for bn in (False, True)
    for res in (False, True)
    for act in ("relu", "gelu")
    # a skip from the input can only match the output when the padding keeps the size
    if not res or pad == "same"
]


def block_outputs(block, x):
    """Each stage of a conv block run by hand: the shapes a learner sees in Build's table, in order."""
    y = block.bn(block.conv(x))
    out = [("conv", block.conv(x))]
    if not isinstance(block.bn, torch.nn.Identity):
        out.append(("batchnorm", y))
    if block.residual:
        y = y + block.skip(x)
        out.append(("skip", y))
    y = block.act(y)
    out.append(("activation", y))
    if not isinstance(block.pool, torch.nn.Identity):
        y = block.pool(y)
        out.append(("pool", y))
    if not isinstance(block.drop, torch.nn.Identity):
        y = block.drop(y)
        out.append(("dropout", y))
    return out, y


@pytest.mark.parametrize("opts", CONV_OPTIONS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_every_conv_option_shapes_for_every_block(opts):
    # three blocks with the same options, so each option meets a block that follows another block
    conv = [{"channels": c, "dropout": 0.1 if i == 2 else 0.0, **opts} for i, c in enumerate((4, 6, 3))]
    cfg = cnn(conv, [{"units": 5, "activation": "sigmoid", "dropout": 0.2}])
    info = info_of(cfg)
    try:
        rows = infer_layers(cfg.model, info)
    except SpecError:
        # a collapsing map is reported with the layer's name (tested below); the builder refuses it too
        with pytest.raises(SpecError):
            build_model(cfg.model, info, seed=1)
        return
    model = build_model(cfg.model, info, seed=1).eval()
    feats = torch.randn(2, *info.input_shape)
    for i, block in enumerate(model.blocks):
        stages, feats = block_outputs(block, feats)
        block_rows = [r for r in rows if r.block == f"model.conv[{i}]"]
        assert [r.kind for r in block_rows] == [kind for kind, _ in stages], f"block {i}"
        assert [r.out_shape for r in block_rows] == [tuple(t.shape[1:]) for _, t in stages], f"block {i}"
        assert sum(r.params for r in block_rows) == count_params(block), f"block {i}"
    assert sum(r.params for r in rows) == count_params(model)
    assert tuple(model(torch.randn(2, *info.input_shape)).shape) == (2, 10)


def test_collapsing_feature_map_names_layer():
    conv = [{"channels": 8, "kernel": 3, "pool": "max"}] * 5
    cfg = cnn(conv)
    with pytest.raises(SpecError) as exc:
        infer_layers(cfg.model, info_of(cfg))
    e = exc.value
    assert e.block == "model.conv[4]"
    assert "max pool" in str(e) and "1x1, too small for a 2x2 window" in str(e)


def test_valid_kernel_larger_than_input():
    cfg = cnn([{"channels": 4, "kernel": 9, "padding": "valid", "pool": "none"}],
              data="handwritten_digits", image_size=8, train_size=100, val_size=100)
    with pytest.raises(SpecError, match=r"layer 1 \(conv 9x9, 4\).*too small for a 9x9 kernel"):
        infer_layers(cfg.model, info_of(cfg))


def test_parameter_limit(monkeypatch):
    monkeypatch.setenv("BIGMODEL_MAX_PARAMS", "1000")
    cfg = cnn([{"channels": 16}], [{"units": 64}])
    with pytest.raises(SpecError, match="above the limit of 1,000"):
        infer_layers(cfg.model, info_of(cfg))


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_params_and_shapes(family, bidirectional):
    cfg = parse_config({"data": {"name": "sequential_digits", "train_size": 100, "val_size": 50},
                        "model": {"family": family, "hidden": 7, "layers": 2, "dropout": 0.3,
                                  "bidirectional": bidirectional, "dense": [{"units": 5}]}})
    info = info_of(cfg)
    rows = infer_layers(cfg.model, info)
    model = build_model(cfg.model, info, seed=0)
    ref = getattr(torch.nn, family.upper())(8, 7, num_layers=2, bidirectional=bidirectional)
    assert sum(r.params for r in rows if r.kind == "rnn") == sum(p.numel() for p in ref.parameters())
    assert sum(r.params for r in rows) == count_params(model)
    assert tuple(model(torch.zeros(4, 8, 8)).shape) == (4, 10)


def test_seeded_init_is_reproducible_and_does_not_touch_global_rng():
    cfg = load_preset("quickstart_cnn")
    info = info_of(cfg)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_model(cfg.model, info, seed=5).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    b = build_model(cfg.model, info, seed=5).state_dict()
    c = build_model(cfg.model, info, seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_all_datasets_have_a_buildable_default_model():
    for name in DATASET_NAMES:
        info = dataset_info(name)
        family = "cnn" if info.kind == "image" else "lstm"
        model_cfg = {"family": family} if family == "lstm" else {"family": "cnn"}
        cfg = parse_config({"data": {"name": name, "train_size": 100, "val_size": 50}, "model": model_cfg})
        assert infer_layers(cfg.model, info_of(cfg))

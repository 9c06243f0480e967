"""Residual blocks against hand-written PyTorch, and recurrent FLOPs against the formula and the counter."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bigmodel_core.config.specs import parse_config
from bigmodel_core.data import dataset_info
from bigmodel_core.nn.models import build_model, summarize
from bigmodel_core.nn.shapes import SpecError, infer_layers, recurrent_flops


def cnn(conv, data="synthetic_digits", **extra):
    return parse_config({"data": {"name": data, "train_size": 64, "val_size": 32},
                         "model": {"family": "cnn", "conv": conv, "dense": []}, **extra})


class HandResidual(nn.Module):
    """relu(bn(conv(x)) + shortcut(x)), then max pool: the block written out by hand."""

    def __init__(self, conv, bn, shortcut):
        super().__init__()
        self.conv, self.bn, self.shortcut = conv, bn, shortcut

    def forward(self, x):
        return torch.max_pool2d(torch.relu(self.bn(self.conv(x)) + self.shortcut(x)), 2)


@pytest.mark.parametrize("block,projection", [
    ({"channels": 1, "residual": True}, False),  # 1 -> 1 channel, same size: identity skip
    ({"channels": 4, "residual": True, "batchnorm": True}, True),  # channels change: 1x1 conv
    ({"channels": 4, "residual": True, "stride": 2}, True),  # stride 2: 1x1 conv with stride 2
])
def test_a_residual_block_equals_the_hand_written_module(block, projection):
    cfg = cnn([block])
    model = build_model(cfg.model, dataset_info("synthetic_digits"), seed=3).eval()
    b = model.blocks[0]
    assert isinstance(b.skip, nn.Conv2d) == projection
    if projection:
        assert b.skip.kernel_size == (1, 1) and b.skip.stride == (block.get("stride", 1),) * 2
    hand = HandResidual(b.conv, b.bn, b.skip if projection else (lambda x: x))
    x = torch.randn(5, 1, 28, 28)
    torch.testing.assert_close(b(x), hand(x), rtol=0, atol=0)
    # and the skip really is there: without it the output differs
    plain = torch.max_pool2d(torch.relu(b.bn(b.conv(x))), 2)
    assert not torch.allclose(b(x), plain)


def test_residual_shapes_parameters_and_flops_are_inferred_like_every_layer():
    cfg = cnn([{"channels": 4, "residual": True}, {"channels": 4, "residual": True, "pool": "none"},
               {"channels": 8, "stride": 2, "residual": True}])
    info = dataset_info("synthetic_digits")
    rows = infer_layers(cfg.model, info)
    skips = [r for r in rows if r.kind == "skip"]
    assert [r.module for r in skips] == ["blocks.0.skip", "", "blocks.2.skip"]
    assert [r.params for r in skips] == [1 * 4 + 4, 0, 4 * 8 + 8]
    model = build_model(cfg.model, info, seed=0)
    assert sum(r.params for r in rows) == sum(p.numel() for p in model.parameters())
    out = model.blocks[2](model.blocks[1](model.blocks[0](torch.zeros(1, 1, 28, 28))))
    assert tuple(out.shape[1:]) == next(r for r in reversed(rows) if r.block == "model.conv[2]").out_shape
    measured = {r.module: r.flops for r in summarize(cfg.model, info)}
    assert measured["blocks.2.skip"] == skips[2].flops == 2 * 4 * 8 * 7 * 7


def test_a_residual_block_whose_map_shrinks_is_refused_naming_the_block():
    with pytest.raises(SpecError, match=r"model.conv\[0\] is residual.*28x28.*26x26.*padding \"same\"") as exc:
        infer_layers(cnn([{"channels": 4, "residual": True, "padding": "valid"}]).model,
                     dataset_info("synthetic_digits"))
    assert exc.value.block == "model.conv[0]"


@pytest.mark.parametrize("family", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_flops_equal_the_formula_and_the_counter_where_it_counts(family, bidirectional):
    cfg = parse_config({"data": {"name": "sine_wave", "seq_len": 12, "train_size": 64, "val_size": 32},
                        "model": {"family": family, "hidden": 7, "layers": 2, "bidirectional": bidirectional}})
    info = dataset_info("sine_wave", seq_len=12)
    t, f = info.input_shape
    dirs = 2 if bidirectional else 1
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[family]
    # by hand: per step and direction, gates x (input matmul + state matmul), 2 FLOPs per multiply-add
    hand = [dirs * t * gates * 2 * 7 * (f + 7), dirs * t * gates * 2 * 7 * (7 * dirs + 7)]
    rnn_rows = [r for r in summarize(cfg.model, info) if r.kind == "rnn"]
    assert [r.flops for r in rnn_rows] == hand
    assert recurrent_flops(family, f, 7, t, dirs) == hand[0]
    layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[family](f, 7, batch_first=True,
                                                                    bidirectional=bidirectional)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        layer(torch.zeros(1, t, f))
    if family != "lstm":  # the counter sees nothing of nn.LSTM on CPU; where it counts, it agrees
        assert counter.get_total_flops() == hand[0]


def test_the_textbook_lstm_shows_its_recurrent_flops():
    from bigmodel_core.config.presets import load_preset

    cfg = load_preset("textbook_lstm")
    rows = summarize(cfg.model, dataset_info(cfg.data.name, seq_len=cfg.data.seq_len))
    assert all(r.flops > 0 for r in rows if r.kind == "rnn")
    assert sum(r.flops for r in rows) > 1_000_000


@pytest.mark.parametrize("preset", ["textbook_cnn", "textbook_lstm"])
def test_summary_json_has_a_row_per_layer_and_totals_matching_the_built_model(preset, capsys):
    import json

    from bigmodel_core.cli import main
    from bigmodel_core.config.presets import load_preset

    assert main(["summary", preset, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cfg = load_preset(preset)
    info = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    rows = summarize(cfg.model, info)
    assert [(r["name"], tuple(r["output_shape"]), r["params"], r["flops"]) for r in out["layers"]] == \
        [(r.name, r.out_shape, r.params, r.flops) for r in rows]
    model = build_model(cfg.model, info, seed=0)
    assert out["total_params"] == sum(p.numel() for p in model.parameters())
    assert out["total_flops"] == sum(r.flops for r in rows) > 0

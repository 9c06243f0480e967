"""Shape inference: every layer's output shape and parameter count, before any tensor exists.

``infer_layers`` walks the architecture analytically (like timm tracking ``prev_chs``) and
fails with a :class:`SpecError` naming the layer when a design is infeasible. The rules a
design must meet to train on its data (``check_design``: shapes, then the batch-size rule of
batch norm) live here too, and Build, the Trainer and ``validate`` all call them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bigmodel_core.config.specs import CNNSpec, ConvBlock, DenseLayer, ExperimentConfig, RNNSpec
from bigmodel_core.data import DatasetInfo, dataset_info
from bigmodel_core.limits import current_limits


class SpecError(ValueError):
    """An architecture that cannot be built; names the layer at fault.

    ``index`` is the 1-based layer number in the summary table (0 for the model as a
    whole) and ``block`` the config location ("model.conv[1]", "model.dense[0]").
    """

    def __init__(self, index: int, name: str, block: str, message: str):
        self.index, self.name, self.block, self.message = index, name, block, message
        where = f"layer {index} ({name})" if index else "model"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class LayerInfo:
    index: int  # 1-based, as shown to the learner
    name: str  # "conv 3x3, 16", "max pool 2x2", ...
    kind: str  # conv, batchnorm, activation, pool, dropout, flatten, dense, rnn, output
    block: str  # config location the layer comes from
    module: str  # qualified module name in the built model ("" when parameter-free glue)
    out_shape: tuple[int, ...]
    params: int
    flops: int = 0


def _padding(spec: ConvBlock) -> int | str:
    if spec.padding == "valid":
        return 0
    if spec.padding == "same":
        # PyTorch only supports padding="same" for stride 1; with larger strides use the
        # usual k//2 (output = ceil(input / stride) for odd kernels).
        return "same" if spec.stride == 1 else (spec.kernel - 1) // 2
    return int(spec.padding)


def recurrent_flops(family: str, in_features: int, hidden: int, steps: int, directions: int = 1) -> int:
    """Forward FLOPs of one recurrent layer for one sample, counted like torch.utils.flop_counter
    counts a matrix product (2 per multiply-add): each step and direction multiplies the input by
    W_ih and the previous state by W_hh for every gate (1 for a plain RNN, 3 for GRU, 4 for LSTM).
    The counter itself sees 0 for nn.LSTM on CPU, so recurrent layers are counted here."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[family]
    return directions * steps * gates * 2 * hidden * (in_features + hidden)


def _skip_row(idx: int, where: str, mod: str, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
              stride: int) -> LayerInfo:
    """The skip path of a residual block: identity when the conv keeps the shape, else a 1x1 conv
    with the block's stride (which must land on the conv's output size)."""
    (in_c, in_h, in_w), (c, h, w) = in_shape, out_shape
    if in_shape == out_shape:
        return LayerInfo(idx, "skip: identity (+ input)", "skip", where, "", out_shape, 0)
    sh, sw = (in_h - 1) // stride + 1, (in_w - 1) // stride + 1
    if (sh, sw) != (h, w):
        raise SpecError(idx, "skip", where,
                        f"{where} is residual, but a skip from its {in_h}x{in_w} input cannot match the conv's "
                        f"{h}x{w} output: use padding \"same\" on a residual block")
    name = f"skip: 1x1 conv, {c}" + (f", stride {stride}" if stride > 1 else "") + " (+)"
    return LayerInfo(idx, name, "skip", where, f"{mod}.skip", out_shape, in_c * c + c, 2 * in_c * c * h * w)


def _flat_features(layers: list[LayerInfo]) -> int:
    for layer in layers:
        if layer.kind == "flatten":
            return layer.out_shape[0]
    raise AssertionError("no flatten layer")


def _dense_rows(start: int, in_f: int, dense: list[DenseLayer], num_outputs: int,
                module_prefix: str, rows: list[LayerInfo]) -> None:
    idx = start
    sub = 0
    for j, layer in enumerate(dense):
        block = f"model.dense[{j}]"
        rows.append(LayerInfo(idx, f"dense {layer.units}", "dense", block, f"head.{sub}",
                              (layer.units,), in_f * layer.units + layer.units))
        idx += 1
        sub += 1
        rows.append(LayerInfo(idx, layer.activation, "activation", block, "", (layer.units,), 0))
        idx += 1
        sub += 1
        if layer.dropout > 0:
            rows.append(LayerInfo(idx, f"dropout {layer.dropout:g}", "dropout", block, "", (layer.units,), 0))
            idx += 1
            sub += 1
        in_f = layer.units
    rows.append(LayerInfo(idx, f"output {num_outputs}", "output", "model", "classifier",
                          (num_outputs,), in_f * num_outputs + num_outputs))


def infer_layers(spec: CNNSpec | RNNSpec, info: DatasetInfo) -> list[LayerInfo]:
    """Per-layer output shapes and parameter counts, computed without tensors.

    Raises SpecError naming the first layer whose input is too small, or the model when
    it exceeds the parameter limit.
    """
    rows: list[LayerInfo] = []
    if isinstance(spec, CNNSpec):
        c, h, w = info.input_shape
        idx = 1
        for i, block in enumerate(spec.conv):
            where, mod = f"model.conv[{i}]", f"blocks.{i}"
            pad = _padding(block)
            k, s = block.kernel, block.stride
            name = f"conv {k}x{k}, {block.channels}" + (f", stride {s}" if s > 1 else "")
            if pad == "same":
                oh, ow = h, w
            else:
                oh = (h + 2 * pad - k) // s + 1
                ow = (w + 2 * pad - k) // s + 1
                if h + 2 * pad < k or w + 2 * pad < k or oh < 1 or ow < 1:
                    raise SpecError(idx, name, where,
                                    f"input is {h}x{w} (padding {pad}), too small for a {k}x{k} kernel; "
                                    "the feature map would collapse to nothing")
            params = c * block.channels * k * k + block.channels
            in_c, in_h, in_w = c, h, w
            c, h, w = block.channels, oh, ow
            rows.append(LayerInfo(idx, name, "conv", where, f"{mod}.conv", (c, h, w), params))
            idx += 1
            if block.batchnorm:
                rows.append(LayerInfo(idx, "batchnorm", "batchnorm", where, f"{mod}.bn", (c, h, w), 2 * c))
                idx += 1
            if block.residual:
                rows.append(_skip_row(idx, where, mod, (in_c, in_h, in_w), (c, h, w), s))
                idx += 1
            rows.append(LayerInfo(idx, block.activation, "activation", where, "", (c, h, w), 0))
            idx += 1
            if block.pool != "none":
                p = block.pool_size
                name = f"{block.pool} pool {p}x{p}"
                if h < p or w < p:
                    raise SpecError(idx, name, where, f"input is {h}x{w}, too small for a {p}x{p} window")
                h, w = h // p, w // p
                rows.append(LayerInfo(idx, name, "pool", where, "", (c, h, w), 0))
                idx += 1
            if block.dropout > 0:
                rows.append(LayerInfo(idx, f"dropout {block.dropout:g}", "dropout", where, "", (c, h, w), 0))
                idx += 1
        flat = c * h * w
        rows.append(LayerInfo(idx, "flatten", "flatten", "model", "", (flat,), 0))
        _dense_rows(idx + 1, flat, spec.dense, info.num_outputs, "head", rows)
    else:
        t, f = info.input_shape
        dirs = 2 if spec.bidirectional else 1
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[spec.family]
        idx = 1
        in_f = f
        for i in range(spec.layers):
            if i > 0 and spec.dropout > 0:
                rows.append(LayerInfo(idx, f"dropout {spec.dropout:g}", "dropout", "model.dropout", "",
                                      (t, spec.hidden * dirs), 0))
                idx += 1
            per_dir = gates * (spec.hidden * (in_f + spec.hidden) + 2 * spec.hidden)
            name = f"{spec.family} {spec.hidden}" + (" bidirectional" if dirs == 2 else "")
            rows.append(LayerInfo(idx, name, "rnn", "model", f"rnn.{i}", (t, spec.hidden * dirs), per_dir * dirs,
                                  recurrent_flops(spec.family, in_f, spec.hidden, t, dirs)))
            idx += 1
            in_f = spec.hidden * dirs
        rows.append(LayerInfo(idx, "final state", "flatten", "model", "", (in_f,), 0))
        _dense_rows(idx + 1, in_f, spec.dense, info.num_outputs, "head", rows)
    total = sum(r.params for r in rows)
    limit = current_limits().max_params
    if total > limit:
        raise SpecError(0, "model", "model", f"{total:,} parameters is above the limit of {limit:,}")
    return rows


def check_design(cfg: ExperimentConfig, info: DatasetInfo | None = None,
                 train_samples: int | None = None) -> list[LayerInfo]:
    """The layers of ``cfg``'s model on its data, after checking the rules a design must meet to
    train there; raises SpecError naming the layer (or the model) otherwise. ``train_samples`` is
    how many training samples the data really gives (an uploaded file may hold fewer than
    ``data.train_size``); None takes ``data.train_size``."""
    if info is None:
        info = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    rows = infer_layers(cfg.model, info)
    check_batches(cfg, rows, train_samples)
    return rows


def check_batches(cfg: ExperimentConfig, rows: list[LayerInfo], train_samples: int | None = None) -> None:
    """Batch norm over a 1x1 feature map cannot train on a batch of one sample (one value per
    channel has no variance); say so up front instead of failing in the middle of an epoch.

    The batches are cut from the samples the run really trains on: ``train_samples`` when given
    (an uploaded file caps ``data.train_size`` to what it holds), else ``data.train_size``."""
    bs, asked = cfg.training.batch_size, cfg.data.train_size
    n = asked if train_samples is None else train_samples
    last = n % bs or min(bs, n)
    if min(bs, n, last) > 1:
        return
    samples = f"train_size {n}" if n == asked else \
        f"the {n} training samples the data gives (train_size asks for {asked})"
    for r in rows:
        if r.kind == "batchnorm" and r.out_shape[1:] == (1, 1):
            raise SpecError(r.index, r.name, r.block,
                            f"{r.block} batchnorm sees a 1x1 feature map, so every training batch needs at least "
                            f"2 samples, but {samples} with batch_size {bs} gives a batch of 1; change "
                            "training.batch_size or data.train_size")

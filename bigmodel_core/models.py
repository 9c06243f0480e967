"""Build models from the config, with shapes inferred before any tensor exists.

``infer_layers`` walks the architecture analytically (like timm tracking ``prev_chs``)
and fails with a :class:`SpecError` naming the layer when a design is infeasible.
``build_model`` turns the same spec into an ``nn.Module``; ``summarize`` adds per-layer
FLOPs measured with ``torch.utils.flop_counter`` on one sample.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .data import DatasetInfo
from .limits import current_limits
from .nn.seeded_dropout import SeededDropout
from .specs import CNNSpec, ConvBlock, DenseLayer, RNNSpec

ACTIVATION_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
}
_INIT_LOCK = threading.Lock()
RNN_LAYERS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


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


class ConvBlockModule(nn.Module):
    """conv -> batchnorm -> activation -> pool -> dropout; probes hook ``act`` and ``pool``."""

    def __init__(self, in_ch: int, spec: ConvBlock):
        super().__init__()
        pad = _padding(spec)
        self.conv = nn.Conv2d(in_ch, spec.channels, spec.kernel, stride=spec.stride, padding=pad)
        self.bn = nn.BatchNorm2d(spec.channels) if spec.batchnorm else nn.Identity()
        self.act = ACTIVATION_LAYERS[spec.activation]()
        if spec.pool == "max":
            self.pool: nn.Module = nn.MaxPool2d(spec.pool_size)
        elif spec.pool == "avg":
            self.pool = nn.AvgPool2d(spec.pool_size)
        else:
            self.pool = nn.Identity()
        self.drop = SeededDropout(spec.dropout) if spec.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pool(self.act(self.bn(self.conv(x)))))


def _dense_stack(in_features: int, layers: list[DenseLayer]) -> tuple[nn.Sequential, int]:
    mods: list[nn.Module] = []
    for layer in layers:
        mods += [nn.Linear(in_features, layer.units), ACTIVATION_LAYERS[layer.activation]()]
        if layer.dropout > 0:
            mods.append(SeededDropout(layer.dropout))
        in_features = layer.units
    return nn.Sequential(*mods), in_features


class ConvNet(nn.Module):
    def __init__(self, spec: CNNSpec, info: DatasetInfo):
        super().__init__()
        in_ch = info.input_shape[0]
        self.blocks = nn.ModuleList()
        for block in spec.conv:
            self.blocks.append(ConvBlockModule(in_ch, block))
            in_ch = block.channels
        layers = infer_layers(spec, info)
        flat = _flat_features(layers)
        self.head, last = _dense_stack(flat, spec.dense)
        self.classifier = nn.Linear(last, info.num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))

    def reset_classifier(self, num_outputs: int) -> None:
        self.classifier = nn.Linear(self.classifier.in_features, num_outputs)


class SeqNet(nn.Module):
    """Stacked single-layer RNN/LSTM/GRU modules, then a dense head on the final state.

    Layers are separate modules so inter-layer dropout can use the per-run generator and
    probes can read each layer's own weights.
    """

    def __init__(self, spec: RNNSpec, info: DatasetInfo):
        super().__init__()
        self.family = spec.family
        self.bidirectional = spec.bidirectional
        cls = RNN_LAYERS[spec.family]
        dirs = 2 if spec.bidirectional else 1
        in_f = info.input_shape[1]
        self.rnn = nn.ModuleList()
        for i in range(spec.layers):
            self.rnn.append(cls(in_f if i == 0 else spec.hidden * dirs, spec.hidden, batch_first=True,
                                bidirectional=spec.bidirectional))
        self.between = nn.ModuleList(
            [SeededDropout(spec.dropout) if spec.dropout > 0 else nn.Identity() for _ in range(spec.layers - 1)]
        )
        self.head, last = _dense_stack(spec.hidden * dirs, spec.dense)
        self.classifier = nn.Linear(last, info.num_outputs)

    def forward_sequence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All time steps of the last layer, and its final state (N x hidden*dirs)."""
        h_n = None
        for i, layer in enumerate(self.rnn):
            if i > 0:
                x = self.between[i - 1](x)
            x, state = layer(x)
            h_n = state[0] if isinstance(state, tuple) else state
        assert h_n is not None
        # h_n is (dirs, N, H): forward direction's final state, and backward's (which ends at t=0)
        final = torch.cat([h_n[0], h_n[1]], dim=1) if self.bidirectional else h_n[0]
        return x, final

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_sequence(x)[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))

    def reset_classifier(self, num_outputs: int) -> None:
        self.classifier = nn.Linear(self.classifier.in_features, num_outputs)


def _padding(spec: ConvBlock) -> int | str:
    if spec.padding == "valid":
        return 0
    if spec.padding == "same":
        # PyTorch only supports padding="same" for stride 1; with larger strides use the
        # usual k//2 (output = ceil(input / stride) for odd kernels).
        return "same" if spec.stride == 1 else (spec.kernel - 1) // 2
    return int(spec.padding)


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
            c, h, w = block.channels, oh, ow
            rows.append(LayerInfo(idx, name, "conv", where, f"{mod}.conv", (c, h, w), params))
            idx += 1
            if block.batchnorm:
                rows.append(LayerInfo(idx, "batchnorm", "batchnorm", where, f"{mod}.bn", (c, h, w), 2 * c))
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
            rows.append(LayerInfo(idx, name, "rnn", "model", f"rnn.{i}", (t, spec.hidden * dirs), per_dir * dirs))
            idx += 1
            in_f = spec.hidden * dirs
        rows.append(LayerInfo(idx, "final state", "flatten", "model", "", (in_f,), 0))
        _dense_rows(idx + 1, in_f, spec.dense, info.num_outputs, "head", rows)
    total = sum(r.params for r in rows)
    limit = current_limits().max_params
    if total > limit:
        raise SpecError(0, "model", "model", f"{total:,} parameters is above the limit of {limit:,}")
    return rows


def build_model(spec: CNNSpec | RNNSpec, info: DatasetInfo, seed: int | None = None) -> nn.Module:
    """Build the module (shapes checked first). With ``seed``, initial weights depend only on it."""
    infer_layers(spec, info)
    if seed is None:
        return _construct(spec, info)
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        # nn layers initialise from the global RNG; fork it so the caller's stream is untouched,
        # and hold a lock so two threads building at once cannot interleave draws.
        torch.manual_seed(seed)
        return _construct(spec, info)


def _construct(spec: CNNSpec | RNNSpec, info: DatasetInfo) -> nn.Module:
    return ConvNet(spec, info) if isinstance(spec, CNNSpec) else SeqNet(spec, info)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def summarize(spec: CNNSpec | RNNSpec, info: DatasetInfo, model: nn.Module | None = None) -> list[LayerInfo]:
    """infer_layers plus forward FLOPs per layer for one sample (matmuls and convolutions)."""
    rows = infer_layers(spec, info)
    model = model if model is not None else build_model(spec, info, seed=0)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.zeros((1, *info.input_shape), device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    model.train(was_training)
    counts = counter.get_flop_counts()
    prefix = type(model).__name__
    flops_by_module = {k[len(prefix) + 1:]: sum(v.values()) for k, v in counts.items() if k.startswith(prefix + ".")}
    return [replace(r, flops=int(flops_by_module.get(r.module, 0))) if r.module else r for r in rows]


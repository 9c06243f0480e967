"""Build models from the config: the layer table, the modules and the builder.

``build_model`` turns a model spec into an ``nn.Module`` whose layers are the ones
:func:`bigmodel_core.nn.shapes.infer_layers` predicted (re-exported here with SpecError and
the design checks); ``summarize`` adds per-layer FLOPs measured with
``torch.utils.flop_counter`` on one sample.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bigmodel_core.config.specs import CNNSpec, ConvBlock, DenseLayer, RNNSpec
from bigmodel_core.data import DatasetInfo

from .seeded_dropout import SeededDropout
from .shapes import LayerInfo, _flat_features, _padding, infer_layers

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


class ConvBlockModule(nn.Module):
    """conv -> batchnorm (-> + skip(input) when residual) -> activation -> pool -> dropout.

    Probes hook ``act`` and ``pool``. The skip is the identity when the conv keeps the input's
    shape, else a 1x1 convolution with the block's stride (as in ResNet's projection shortcut);
    it is added before the activation.
    """

    def __init__(self, in_ch: int, spec: ConvBlock, same_shape: bool = False):
        super().__init__()
        pad = _padding(spec)
        self.conv = nn.Conv2d(in_ch, spec.channels, spec.kernel, stride=spec.stride, padding=pad)
        self.bn = nn.BatchNorm2d(spec.channels) if spec.batchnorm else nn.Identity()
        self.residual = spec.residual
        if spec.residual:
            self.skip: nn.Module = nn.Identity() if same_shape else nn.Conv2d(in_ch, spec.channels, 1,
                                                                              stride=spec.stride)
        self.act = ACTIVATION_LAYERS[spec.activation]()
        if spec.pool == "max":
            self.pool: nn.Module = nn.MaxPool2d(spec.pool_size)
        elif spec.pool == "avg":
            self.pool = nn.AvgPool2d(spec.pool_size)
        else:
            self.pool = nn.Identity()
        self.drop = SeededDropout(spec.dropout) if spec.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        if self.residual:
            y = y + self.skip(x)
        return self.drop(self.pool(self.act(y)))


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
        layers = infer_layers(spec, info)
        self.blocks = nn.ModuleList()
        for i, block in enumerate(spec.conv):
            skip = [r for r in layers if r.block == f"model.conv[{i}]" and r.kind == "skip"]
            self.blocks.append(ConvBlockModule(in_ch, block, same_shape=bool(skip) and not skip[0].module))
            in_ch = block.channels
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
    """infer_layers plus forward FLOPs per layer for one sample (matmuls and convolutions): measured
    with torch.utils.flop_counter, except recurrent layers, counted by ``recurrent_flops``."""
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
    # recurrent layers keep infer_layers' count (the counter sees nothing of nn.LSTM on CPU)
    return [replace(r, flops=int(flops_by_module.get(r.module, 0))) if r.module and r.kind != "rnn" else r
            for r in rows]


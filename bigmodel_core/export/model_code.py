"""The script's ``Net`` class for the learner's design: the only generated model code.

The layers are created in the same order as the engine's builder after
``torch.manual_seed(seed)``, so the initial weights are identical.
"""

from __future__ import annotations

import json
from textwrap import indent

from bigmodel_core.config.specs import CNNSpec, ExperimentConfig, RNNSpec
from bigmodel_core.data import dataset_info
from bigmodel_core.nn.shapes import _padding, infer_layers

ACTIVATION_CODE = {
    "relu": "nn.ReLU()", "leaky_relu": "nn.LeakyReLU(0.01)", "gelu": "nn.GELU()", "tanh": "nn.Tanh()",
    "sigmoid": "nn.Sigmoid()", "elu": "nn.ELU()",
}


def _dense_lines(dense: list, in_features: str) -> tuple[list[str], str]:
    lines = []
    for layer in dense:
        lines.append(f"nn.Linear({in_features}, {layer.units}),")
        lines.append(f"{ACTIVATION_CODE[layer.activation]},")
        if layer.dropout > 0:
            lines.append(f"SeededDropout({layer.dropout}),")
        in_features = str(layer.units)
    return lines, in_features


def cnn_model_code(spec: CNNSpec, cfg: ExperimentConfig) -> str:
    info = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    rows = infer_layers(spec, info)
    c, h, w = info.input_shape
    feats: list[str] = []
    in_ch = c
    for i, block in enumerate(spec.conv):
        out_shape = next(r.out_shape for r in reversed(rows) if r.block == f"model.conv[{i}]")
        feats.append(f"# block {i + 1}: {in_ch}x{h}x{w} -> {'x'.join(map(str, out_shape))}")
        pad = _padding(block)
        args = [str(in_ch), str(block.channels), f"kernel_size={block.kernel}"]
        if block.stride != 1:
            args.append(f"stride={block.stride}")
        if pad != 0:
            args.append(f"padding={json.dumps(pad)}")
        conv = [f"nn.Conv2d({', '.join(args)}),"] + ([f"nn.BatchNorm2d({block.channels}),"] if block.batchnorm else [])
        if block.residual:
            skip_row = next(r for r in rows if r.block == f"model.conv[{i}]" and r.kind == "skip")
            skip = ("nn.Identity()" if not skip_row.module else
                    f"nn.Conv2d({in_ch}, {block.channels}, kernel_size=1"
                    + (f", stride={block.stride}" if block.stride != 1 else "") + ")")
            feats.append("Residual(")
            feats.append(indent("nn.Sequential(\n" + indent("\n".join(conv), " " * 4) + "\n),", " " * 4))
            feats.append(f"    {skip},  # the skip path, added to the conv's output")
            feats.append("),")
        else:
            feats += conv
        feats.append(f"{ACTIVATION_CODE[block.activation]},")
        if block.pool != "none":
            feats.append(f"nn.{'MaxPool2d' if block.pool == 'max' else 'AvgPool2d'}({block.pool_size}),")
        if block.dropout > 0:
            feats.append(f"SeededDropout({block.dropout}),")
        in_ch, h, w = out_shape
    flat = f"{in_ch} * {h} * {w}"
    head, last = _dense_lines(spec.dense, flat)
    out = info.num_outputs
    body = "\n".join(feats)
    head_body = "\n".join(["nn.Flatten(),"] + head)
    return (
        "class Net(nn.Module):\n"
        f'    """{len(spec.conv)} conv block(s), then {len(spec.dense)} dense layer(s), then {out} outputs."""\n\n'
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.features = nn.Sequential(\n"
        f"{indent(body, ' ' * 12)}\n"
        "        )\n"
        "        self.head = nn.Sequential(\n"
        f"{indent(head_body, ' ' * 12)}\n"
        "        )\n"
        f"        self.classifier = nn.Linear({last}, {out})\n\n"
        "    def forward(self, x):\n"
        "        return self.classifier(self.head(self.features(x)))\n"
    )


def rnn_model_code(spec: RNNSpec, cfg: ExperimentConfig) -> str:
    info = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    steps, features = info.input_shape
    cls = {"rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}[spec.family]
    two = spec.bidirectional
    bi = ", bidirectional=True" if two else ""
    width = f"{spec.hidden} * 2" if two else str(spec.hidden)
    head, last = _dense_lines(spec.dense, width)
    state = "(h_n, c_n)" if spec.family == "lstm" else "h_n"
    final = ("torch.cat([h_n[0], h_n[1]], dim=1)  # the forward direction's last state and the backward one's"
             if two else "h_n[0]  # h_n is directions x batch x hidden")
    init = [f"# input_size = {features}: the number of features each time step of the data really has"]
    if features == 1:
        init[0] += " (the textbook declared input_size=100 but fed 1)"
    if spec.layers == 1:
        init.append(f"self.rnn = {cls}({features}, {spec.hidden}, batch_first=True{bi})")
        fwd = [f"_, {state} = self.rnn(x)"]
    else:
        init.append("# stacked one layer at a time so the dropout between layers can use the seeded generator")
        init.append("self.rnn = nn.ModuleList([")
        for i in range(spec.layers):
            in_f = str(features) if i == 0 else width
            init.append(f"    {cls}({in_f}, {spec.hidden}, batch_first=True{bi}),")
        init.append("])")
        drop = f"SeededDropout({spec.dropout})" if spec.dropout > 0 else "nn.Identity()"
        init.append(f"self.between = nn.ModuleList([{drop} for _ in range({spec.layers - 1})])")
        fwd = ["for i, layer in enumerate(self.rnn):",
               "    if i > 0:",
               "        x = self.between[i - 1](x)",
               f"    x, {state} = layer(x)"]
    if head:
        init += ["self.head = nn.Sequential("] + ["    " + h for h in head] + [")"]
    else:
        init.append("self.head = nn.Identity()  # no dense layers between the last state and the output")
    init.append(f"self.classifier = nn.Linear({last}, {info.num_outputs})")
    fwd += [f"final = {final}", "return self.classifier(self.head(final))"]
    return (
        "class Net(nn.Module):\n"
        f'    """{spec.layers} {spec.family.upper()} layer(s) of {spec.hidden} units over {steps} steps, then '
        f'{info.num_outputs} output(s) from the last state."""\n\n'
        "    def __init__(self):\n"
        "        super().__init__()\n"
        + indent("\n".join(init), " " * 8) + "\n\n"
        "    def forward(self, x):  # x: batch x steps x features\n"
        + indent("\n".join(fwd), " " * 8) + "\n"
    )


def has_dropout(cfg: ExperimentConfig) -> bool:
    m = cfg.model
    if isinstance(m, CNNSpec):
        return any(b.dropout > 0 for b in m.conv) or any(d.dropout > 0 for d in m.dense)
    return (m.dropout > 0 and m.layers > 1) or any(d.dropout > 0 for d in m.dense)

"""Export an experiment as one standalone, readable PyTorch training script.

``export_script(config)`` writes a script that needs only torch plus what its dataset
comes from (numpy, Pillow and the bundled fonts for the rendered digits, letters and
shapes; scikit-learn for the real digits). It never imports ``bigmodel_core``.

The script is assembled from the engine's own source: the data generators
(``data/seeding.py``, ``warps.py``, ``glyphs.py``, ``shapes.py``, ``sequences.py``,
``real_digits.py``, ``augment.py``), ``SeededDropout`` (``nn/seeded_dropout.py``) and the
training loop (``training/plain_loop.py``) are copied with ``inspect.getsource``. Only the
``Net`` class for the learner's design, the config literal and a few lines that bind the
dataset are generated. The layers are created in the same order as the engine's after
``torch.manual_seed(seed)``, so the initial weights are identical, and the loop draws from
the same seeded generators, so on CPU the script prints the same metrics as the
playground. The tests run every preset's script and compare.

CLI: ``python -m bigmodel_core export-code CONFIG -o script.py``.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
from pathlib import Path
from textwrap import dedent, indent
from types import ModuleType

from bigmodel_core.config.presets import load_config_arg
from bigmodel_core.config.specs import CNNSpec, ExperimentConfig, RNNSpec
from bigmodel_core.data import FONT_DIR, augment, dataset_info, glyphs, real_digits, seeding, sequences, shapes, warps
from bigmodel_core.data.registry import is_upload_name
from bigmodel_core.data.uploads import normalised, split
from bigmodel_core.nn import residual, seeded_dropout
from bigmodel_core.nn.shapes import _padding, infer_layers
from bigmodel_core.training import plain_loop

__all__ = ["export_script", "add_cli", "COPIED_MODULES"]

FONT_DATASETS = ("synthetic_digits", "synthetic_letters")  # rendered from the bundled fonts
UPLOAD_FILE = "data.npz"  # an uploaded dataset's script reads the run's copy of it from beside itself
GLYPH_CHARS = {"synthetic_digits": "DIGIT_CHARS", "synthetic_letters": "LETTER_CHARS"}
# Every engine module the scripts copy source from; each imports only the standard library,
# torch, numpy, Pillow, scikit-learn and the others in this tuple (the tests check it).
COPIED_MODULES: tuple[ModuleType, ...] = (seeding, warps, glyphs, shapes, sequences, real_digits, augment,
                                          normalised, split, seeded_dropout, residual, plain_loop)

ACTIVATION_CODE = {
    "relu": "nn.ReLU()", "leaky_relu": "nn.LeakyReLU(0.01)", "gelu": "nn.GELU()", "tanh": "nn.Tanh()",
    "sigmoid": "nn.Sigmoid()", "elu": "nn.ELU()",
}
OPTIMIZER_LABELS = {
    "sgd": "SGD", "momentum": "SGD with momentum", "nesterov": "SGD with Nesterov momentum", "adagrad": "Adagrad",
    "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW",
}
STDLIB = {"argparse", "copy", "hashlib", "json", "math", "pathlib", "time"}


def _code(text: str) -> str:
    return dedent(text).strip("\n") + "\n"


# --------------------------------------------------------------------------------------
# Copied source
# --------------------------------------------------------------------------------------


class _Source:
    """The script's code so far: its import lines and its sections, in order."""

    def __init__(self) -> None:
        self.imports: dict[str, set[str]] = {}  # module -> names ("" = ``import module [as x]``)
        self.plain: set[str] = set()

    def add_imports(self, tree: ast.Module) -> None:
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.plain.add(alias.name + (f" as {alias.asname}" if alias.asname else ""))
            elif isinstance(node, ast.ImportFrom) and not node.level:  # relative: defined in the script
                names = self.imports.setdefault(node.module or "", set())
                names |= {a.name + (f" as {a.asname}" if a.asname else "") for a in node.names}

    def import_block(self, comments: dict[str, str]) -> str:
        lines = [(f"import {p}", p.split()[0]) for p in self.plain]
        lines += [(f"from {m} import {', '.join(sorted(ns))}", m) for m, ns in self.imports.items()]
        std = sorted((line for line, mod in lines if mod.split(".")[0] in STDLIB),
                     key=lambda line: (line.startswith("from"), line))
        third = sorted((line for line, mod in lines if mod.split(".")[0] not in STDLIB),
                       key=lambda line: (line.startswith("from"), line))
        third = [line + comments.get(line, "") for line in third]
        return "\n".join(std) + "\n\n" + "\n".join(third) + "\n"


def _module_code(module: ModuleType, source: _Source) -> str:
    """The code of a copied module after its docstring and imports, under its docstring's first line."""
    text = inspect.getsource(module)
    tree = ast.parse(text)
    source.add_imports(tree)
    last_import = max(n.end_lineno or 0 for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    body = "\n".join(text.splitlines()[last_import:]).strip("\n")
    summary = (ast.get_docstring(tree) or "").splitlines()[0]
    return f"# {summary}\n\n{body}\n"


def _function_code(function: object, source: _Source) -> str:
    """One function's source, with its module's imports."""
    source.add_imports(ast.parse(inspect.getsource(inspect.getmodule(function))))  # type: ignore[arg-type]
    return inspect.getsource(function)  # type: ignore[arg-type]


def _data_section(cfg: ExperimentConfig, source: _Source) -> str:
    """Code that defines load_data(train_size, val_size, seed[, fonts_dir]) for the config's dataset."""
    d = cfg.data
    name = d.name
    info = dataset_info(name, image_size=d.image_size, seq_len=d.seq_len)
    parts = [_module_code(seeding, source)]
    head = f"DATASET = {json.dumps(name)}\n"
    if name in FONT_DATASETS:
        parts += [_module_code(warps, source), _module_code(glyphs, source)]
        head += ("# Where the playground keeps its fonts; pass --fonts-dir when running the script elsewhere.\n"
                 f"DEFAULT_FONTS_DIR = {json.dumps(str(FONT_DIR))}\n")
        glue = _code(f'''
            def load_data(train_size, val_size, seed, fonts_dir=None):
                here = Path(__file__).resolve().parent
                folders = [fonts_dir] if fonts_dir else [DEFAULT_FONTS_DIR, here / "fonts", here / "assets" / "fonts"]
                try:
                    templates = glyph_templates({GLYPH_CHARS[name]}, find_fonts_dir(folders))
                except FileNotFoundError as exc:
                    raise SystemExit(f"{{exc}}; pass --fonts-dir pointing to the playground's assets/fonts folder")
                return split_samples(lambda n, gen: sample_glyphs(templates, n, gen), DATASET, train_size, val_size,
                                     seed)
        ''')
    elif name == "shapes":
        parts += [_module_code(warps, source), _module_code(shapes, source)]
        glue = _code('''
            def load_data(train_size, val_size, seed):
                templates = shape_templates()
                return split_samples(lambda n, gen: sample_shapes(templates, n, gen), DATASET, train_size, val_size,
                                     seed)
        ''')
    elif name == "handwritten_digits":
        parts += [_module_code(real_digits, source)]
        head += f"IMAGE_SIZE = {info.input_shape[-1]}  # the 8x8 scans are upsampled to this size (8: kept)\n"
        glue = _code('''
            def load_data(train_size, val_size, seed):
                x_train, y_train, x_val, y_val = split_real_digits(DATASET, train_size, val_size, seed)
                return as_images(x_train, IMAGE_SIZE), y_train, as_images(x_val, IMAGE_SIZE), y_val
        ''')
    elif name == "sequential_digits":
        parts += [_module_code(real_digits, source)]
        glue = _code('''
            def load_data(train_size, val_size, seed):
                # each 8x8 image is read top to bottom: 8 time steps of 8 pixel features
                return split_real_digits(DATASET, train_size, val_size, seed)
        ''')
    elif name in ("sine_wave", "adding_problem"):
        sampler = sequences.sample_sine_wave if name == "sine_wave" else sequences.sample_adding_problem
        parts += ["# " + (inspect.getmodule(sampler).__doc__ or "").splitlines()[0] + "\n\n"
                  + _function_code(sampler, source)]
        head += f"SEQ_LEN = {info.input_shape[0]}\n"
        glue = _code(f'''
            def load_data(train_size, val_size, seed):
                return split_samples(lambda n, gen: {sampler.__name__}(n, gen, SEQ_LEN), DATASET, train_size, val_size,
                                     seed)
        ''')
    elif is_upload_name(name):
        parts += [_module_code(normalised, source), _module_code(split, source)]
        source.imports.setdefault("pathlib", set()).add("Path")
        head += (f"# The uploaded data the run trained on: its run folder keeps it as {UPLOAD_FILE}.\n"
                 f"DATA_FILE = {json.dumps(UPLOAD_FILE)}  # read from beside this script\n")
        glue = _code('''
            def load_data(train_size, val_size, seed):
                path = Path(__file__).resolve().parent / DATA_FILE
                if not path.is_file():
                    raise FileNotFoundError(f"{path} is missing: copy {DATA_FILE} from the run folder next to it")
                x, y, meta = read_normalised(path)
                if meta["name"] != DATASET:
                    raise ValueError(f"{path} holds the dataset {meta['name']}, not {DATASET}")
                classification = meta["task"] == "classification"
                *data, notes = split_uploaded(x, y, classification, DATASET, train_size, val_size, seed)
                for note in notes:
                    print(note)
                return tuple(data)
        ''')
    else:  # pragma: no cover - every registered dataset is handled above
        raise ValueError(f"export does not know dataset {name!r}")
    parts.append("# The dataset of this experiment\n\n" + head + "\n\n" + glue)
    if d.augment and info.kind == "image":
        parts.append(_module_code(augment, source))
    return "\n\n".join(p.rstrip("\n") + "\n" for p in parts)


# --------------------------------------------------------------------------------------
# Model: the only generated code, besides the config literal and the dataset binding
# --------------------------------------------------------------------------------------


def _dense_lines(dense: list, in_features: str) -> tuple[list[str], str]:
    lines = []
    for layer in dense:
        lines.append(f"nn.Linear({in_features}, {layer.units}),")
        lines.append(f"{ACTIVATION_CODE[layer.activation]},")
        if layer.dropout > 0:
            lines.append(f"SeededDropout({layer.dropout}),")
        in_features = str(layer.units)
    return lines, in_features


def _cnn_model(spec: CNNSpec, cfg: ExperimentConfig) -> str:
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


def _rnn_model(spec: RNNSpec, cfg: ExperimentConfig) -> str:
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



def _has_dropout(cfg: ExperimentConfig) -> bool:
    m = cfg.model
    if isinstance(m, CNNSpec):
        return any(b.dropout > 0 for b in m.conv) or any(d.dropout > 0 for d in m.dense)
    return (m.dropout > 0 and m.layers > 1) or any(d.dropout > 0 for d in m.dense)



def _title(cfg: ExperimentConfig) -> str:
    m = cfg.model
    arch = (f"a CNN ({len(m.conv)} conv block(s), {len(m.dense)} dense layer(s))" if isinstance(m, CNNSpec)
            else f"a {m.layers}-layer {m.family.upper()} ({m.hidden} units)")
    return f"Train {arch} on {cfg.data.name} with {OPTIMIZER_LABELS[cfg.optimizer.name]}."



def _literal(value: object, level: int = 0, width: int = 110) -> str:
    """``value`` (JSON data) as a Python literal, one entry a line where it does not fit on one."""
    if isinstance(value, dict):
        entries = [f"{json.dumps(k)}: {_literal(v, level + 1, 10**6)}" for k, v in value.items()]
        brackets = "{}"
    elif isinstance(value, list):
        entries = [_literal(v, level + 1, 10**6) for v in value]
        brackets = "[]"
    else:
        return json.dumps(value) if isinstance(value, str) else repr(value)
    flat = brackets[0] + ", ".join(entries) + brackets[1]
    if 4 * level + len(flat) + 30 <= width:
        return flat
    pad = "    " * (level + 1)
    items = value.items() if isinstance(value, dict) else enumerate(value)
    lines = [pad + (f"{json.dumps(k)}: " if isinstance(value, dict) else "") + _literal(v, level + 1, width) + ","
             for k, v in items]
    return brackets[0] + "\n" + "\n".join(lines) + "\n" + "    " * level + brackets[1]


def _config_literal(cfg: ExperimentConfig) -> str:
    return ("# The experiment config this script was exported from (the playground's JSON, as a Python dict).\n"
            "# The command-line options override seed, sizes, epochs, batch size, learning rate and device.\n"
            "CONFIG = " + _literal(cfg.to_dict()) + "\n")


def _main_code(cfg: ExperimentConfig, classification: bool) -> str:
    augment_arg = "augment_images" if cfg.data.augment and dataset_info(
        cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len).kind == "image" else "None"
    fonts = cfg.data.name in FONT_DATASETS
    return _code(f'''
        def main(argv=None):
            return command_line(argv, CONFIG, load_data, Net, classification={classification}, augment={augment_arg},
                                description=__doc__.splitlines()[0], fonts={fonts})


        if __name__ == "__main__":
            main()
    ''')


def export_script(config: ExperimentConfig, filename: str = "train.py") -> str:
    """One standalone PyTorch script that trains ``config`` exactly as the playground does.

    ``filename`` only appears in the usage lines of the script's docstring.
    """
    cfg = config
    info = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    classification = info.task == "classification"
    cnn = isinstance(cfg.model, CNNSpec)
    source = _Source()
    source.plain.add("torch")
    source.imports.setdefault("torch", set()).add("nn")  # the Net class
    data_code = _data_section(cfg, source)
    model_code = _cnn_model(cfg.model, cfg) if cnn else _rnn_model(cfg.model, cfg)
    if _has_dropout(cfg):
        model_code = _module_code(seeded_dropout, source) + "\n\n" + model_code
    if cnn and any(b.residual for b in cfg.model.conv):
        model_code = _module_code(residual, source) + "\n\n" + model_code
    train_code = _module_code(plain_loop, source)
    usage = [f"    python {filename}                  # the exported settings",
             f"    python {filename} --epochs 1 --train-size 256 --val-size 128 --device cpu"]
    if cfg.data.name in FONT_DATASETS:
        usage.append(f"    python {filename} --fonts-dir path/to/assets/fonts   # where the playground's fonts are")
    deps = "torch" + {"synthetic_digits": ", numpy and Pillow (with the bundled fonts)",
                      "synthetic_letters": ", numpy and Pillow (with the bundled fonts)",
                      "shapes": ", numpy and Pillow", "handwritten_digits": " and scikit-learn (its bundled digits)",
                      "sequential_digits": " and scikit-learn (its bundled digits)"}.get(cfg.data.name, "")
    if is_upload_name(cfg.data.name):
        deps = f"torch and numpy (to read {UPLOAD_FILE}, the run's data, which must be beside the script)"
    doc = (f'"""{_title(cfg)}\n\n'
           "Exported from the bigmodel playground: the same data, model, initial weights, optimizer and data\n"
           "order as the playground's run, so on CPU it prints the same metrics.\n"
           f"Needs only {deps}.\n\n"
           "Run it:\n\n"
           + "\n".join(usage) + '\n"""\n')
    comments = {"import torch.nn.functional as F": "  # (the textbook's CNN code forgot this import)"} if cnn else {}
    sections = [
        "#!/usr/bin/env python3\n" + doc,
        source.import_block(comments),
        _config_literal(cfg),
        _banner("data") + data_code,
        _banner("model") + model_code,
        _banner("training") + train_code,
        _main_code(cfg, classification),
    ]
    return "\n\n".join(s.rstrip("\n") + "\n" for s in sections)


def _banner(title: str) -> str:
    return f"# ---- {title} " + "-" * (110 - len(title)) + "\n\n"


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def cmd_export_code(args: argparse.Namespace) -> int:
    cfg = load_config_arg(args.config)
    code = export_script(cfg, Path(args.out).name if args.out not in (None, "-") else "train.py")
    if args.out in (None, "-"):
        sys.stdout.write(code)
        return 0
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"-o {args.out}: is a folder; give a file name such as {out / 'train.py'}")
    if not out.parent.is_dir():
        raise ValueError(f"-o {args.out}: the folder {out.parent} does not exist")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(code)
    tmp.replace(out)  # never leave a half-written script behind
    print(f"wrote {out} ({len(code.splitlines())} lines); run it with: python {out}", file=sys.stderr)
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export-code", help="write a standalone PyTorch script for a config")
    p.add_argument("config", help="a config JSON file or a preset name")
    p.add_argument("-o", "--out", help="script file to write (default: print to stdout)")
    p.set_defaults(func=cmd_export_code)

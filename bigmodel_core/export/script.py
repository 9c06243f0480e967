"""The whole script: docstring, imports, the config literal, data, model, training loop, ``main``.

Also the command line's ``export-code`` (its arguments are parsed in :mod:`bigmodel_core.cli`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bigmodel_core.config.presets import load_config_arg
from bigmodel_core.config.specs import CNNSpec, ExperimentConfig
from bigmodel_core.data import dataset_info
from bigmodel_core.data.registry import is_upload_name
from bigmodel_core.nn import residual, seeded_dropout
from bigmodel_core.training import memory_format, plain_loop

from .copied import FONT_DATASETS, UPLOAD_FILE, ScriptSource, code_block, data_section, module_code
from .model_code import cnn_model_code, has_dropout, rnn_model_code

OPTIMIZER_LABELS = {
    "sgd": "SGD", "momentum": "SGD with momentum", "nesterov": "SGD with Nesterov momentum", "adagrad": "Adagrad",
    "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW",
}


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
    return code_block(f'''
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
    source = ScriptSource()
    source.plain.add("torch")
    source.imports.setdefault("torch", set()).add("nn")  # the Net class
    data_code = data_section(cfg, source)
    model_code = cnn_model_code(cfg.model, cfg) if cnn else rnn_model_code(cfg.model, cfg)
    if has_dropout(cfg):
        model_code = module_code(seeded_dropout, source) + "\n\n" + model_code
    if cnn and any(b.residual for b in cfg.model.conv):
        model_code = module_code(residual, source) + "\n\n" + model_code
    # the loop trains a CNN in channels_last on a CPU as the engine does (memory_format's rule)
    train_code = module_code(memory_format, source) + "\n\n" + module_code(plain_loop, source)
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
           "order as the playground's run, so on CPU, at the same thread count, it prints the same metrics.\n"
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


def write_script(config: str, out: str | None = None) -> int:
    """Write the script for ``config`` (a JSON file or a preset name) to ``out``, or to stdout
    when ``out`` is None or ``-``; the file is replaced whole, never left half-written."""
    cfg = load_config_arg(config)
    code = export_script(cfg, Path(out).name if out not in (None, "-") else "train.py")
    if out in (None, "-"):
        sys.stdout.write(code)
        return 0
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"-o {out}: is a folder; give a file name such as {path / 'train.py'}")
    if not path.parent.is_dir():
        raise ValueError(f"-o {out}: the folder {path.parent} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(code)
    tmp.replace(path)  # never leave a half-written script behind
    print(f"wrote {path} ({len(code.splitlines())} lines); run it with: python {path}", file=sys.stderr)
    return 0

"""The engine's own source, copied into the script: the data generators, SeededDropout, the loop.

``data/seeding.py``, ``warps.py``, ``glyphs.py``, ``shapes.py``, ``sequences.py``,
``real_digits.py``, ``augment.py``, ``nn/seeded_dropout.py``, ``nn/residual.py``,
``training/memory_format.py`` and ``training/plain_loop.py`` are copied with ``inspect.getsource``;
their imports are merged into one import block, and only a few lines that bind the experiment's
dataset are generated.
"""

from __future__ import annotations

import ast
import inspect
import json
from textwrap import dedent
from types import ModuleType

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.data import FONT_DIR, augment, dataset_info, glyphs, real_digits, seeding, sequences, shapes, warps
from bigmodel_core.data.registry import is_upload_name
from bigmodel_core.data.uploads import normalised, split
from bigmodel_core.nn import residual, seeded_dropout
from bigmodel_core.training import memory_format, plain_loop

FONT_DATASETS = ("synthetic_digits", "synthetic_letters")  # rendered from the bundled fonts
UPLOAD_FILE = "data.npz"  # an uploaded dataset's script reads the run's copy of it from beside itself
GLYPH_CHARS = {"synthetic_digits": "DIGIT_CHARS", "synthetic_letters": "LETTER_CHARS"}


# Every engine module the scripts copy source from; each imports only the standard library,
# torch, numpy, Pillow, scikit-learn and the others in this tuple (the tests check it).
COPIED_MODULES: tuple[ModuleType, ...] = (seeding, warps, glyphs, shapes, sequences, real_digits, augment,
                                          normalised, split, seeded_dropout, residual, memory_format, plain_loop)

STDLIB = {"argparse", "copy", "gzip", "hashlib", "importlib", "json", "math", "pathlib", "time"}


def code_block(text: str) -> str:
    return dedent(text).strip("\n") + "\n"


class ScriptSource:
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


def module_code(module: ModuleType, source: ScriptSource) -> str:
    """The code of a copied module after its docstring and imports, under its docstring's first line."""
    text = inspect.getsource(module)
    tree = ast.parse(text)
    source.add_imports(tree)
    last_import = max(n.end_lineno or 0 for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    body = "\n".join(text.splitlines()[last_import:]).strip("\n")
    summary = (ast.get_docstring(tree) or "").splitlines()[0]
    return f"# {summary}\n\n{body}\n"


def function_code(function: object, source: ScriptSource) -> str:
    """One function's source, with its module's imports."""
    source.add_imports(ast.parse(inspect.getsource(inspect.getmodule(function))))  # type: ignore[arg-type]
    return inspect.getsource(function)  # type: ignore[arg-type]


def data_section(cfg: ExperimentConfig, source: ScriptSource) -> str:
    """Code that defines load_data(train_size, val_size, seed[, fonts_dir]) for the config's dataset."""
    d = cfg.data
    name = d.name
    info = dataset_info(name, image_size=d.image_size, seq_len=d.seq_len)
    parts = [module_code(seeding, source)]
    head = f"DATASET = {json.dumps(name)}\n"
    if name in FONT_DATASETS:
        parts += [module_code(warps, source), module_code(glyphs, source)]
        head += ("# Where the playground keeps its fonts; pass --fonts-dir when running the script elsewhere.\n"
                 f"DEFAULT_FONTS_DIR = {json.dumps(str(FONT_DIR))}\n")
        glue = code_block(f'''
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
        parts += [module_code(warps, source), module_code(shapes, source)]
        glue = code_block('''
            def load_data(train_size, val_size, seed):
                templates = shape_templates()
                return split_samples(lambda n, gen: sample_shapes(templates, n, gen), DATASET, train_size, val_size,
                                     seed)
        ''')
    elif name == "handwritten_digits":
        parts += [module_code(real_digits, source)]
        head += f"IMAGE_SIZE = {info.input_shape[-1]}  # the 8x8 scans are upsampled to this size (8: kept)\n"
        glue = code_block('''
            def load_data(train_size, val_size, seed):
                x_train, y_train, x_val, y_val = split_real_digits(DATASET, train_size, val_size, seed)
                return as_images(x_train, IMAGE_SIZE), y_train, as_images(x_val, IMAGE_SIZE), y_val
        ''')
    elif name == "sequential_digits":
        parts += [module_code(real_digits, source)]
        glue = code_block('''
            def load_data(train_size, val_size, seed):
                # each 8x8 image is read top to bottom: 8 time steps of 8 pixel features
                return split_real_digits(DATASET, train_size, val_size, seed)
        ''')
    elif name in ("sine_wave", "adding_problem"):
        sampler = sequences.sample_sine_wave if name == "sine_wave" else sequences.sample_adding_problem
        parts += ["# " + (inspect.getmodule(sampler).__doc__ or "").splitlines()[0] + "\n\n"
                  + function_code(sampler, source)]
        head += f"SEQ_LEN = {info.input_shape[0]}\n"
        glue = code_block(f'''
            def load_data(train_size, val_size, seed):
                return split_samples(lambda n, gen: {sampler.__name__}(n, gen, SEQ_LEN), DATASET, train_size, val_size,
                                     seed)
        ''')
    elif is_upload_name(name):
        parts += [module_code(normalised, source), module_code(split, source)]
        source.imports.setdefault("pathlib", set()).add("Path")
        head += (f"# The uploaded data the run trained on: its run folder keeps it as {UPLOAD_FILE}.\n"
                 f"DATA_FILE = {json.dumps(UPLOAD_FILE)}  # read from beside this script\n")
        glue = code_block('''
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
        parts.append(module_code(augment, source))
    return "\n\n".join(p.rstrip("\n") + "\n" for p in parts)

"""Export an experiment as one standalone, readable PyTorch training script.

``export_script(config)`` writes a script that needs only torch and numpy plus what its
dataset comes from (Pillow and the bundled fonts for the rendered digits, letters and
shapes; scikit-learn for the real digits). It never imports ``bigmodel_core``. The script
rebuilds the same data (the generators below are line-for-line copies of ``data.py``),
the same model (layers created in the same order after ``torch.manual_seed(seed)``, so
the initial weights are identical), the same optimizer, schedule and regularizers, and
shuffles with the same seeded generator, so on CPU it prints the same metrics as the
playground. The tests run every preset's script and compare.

CLI: ``python -m bigmodel_core export-code CONFIG -o script.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from textwrap import dedent, indent

from .data import FONT_DIR, FONT_FILES, dataset_info
from .models import _padding, infer_layers
from .presets import load_config_arg
from .specs import CNNSpec, ExperimentConfig, RNNSpec

__all__ = ["export_script", "add_cli"]

FONT_DATASETS = ("synthetic_digits", "synthetic_letters")  # rendered from the bundled fonts
SKLEARN_DATASETS = ("handwritten_digits", "sequential_digits")

ACTIVATION_CODE = {
    "relu": "nn.ReLU()", "leaky_relu": "nn.LeakyReLU(0.01)", "gelu": "nn.GELU()", "tanh": "nn.Tanh()",
    "sigmoid": "nn.Sigmoid()", "elu": "nn.ELU()",
}
OPTIMIZER_LABELS = {
    "sgd": "SGD", "momentum": "SGD with momentum", "nesterov": "SGD with Nesterov momentum", "adagrad": "Adagrad",
    "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW",
}


def _code(text: str) -> str:
    return dedent(text).strip("\n") + "\n"


# --------------------------------------------------------------------------------------
# Data: copies of bigmodel_core/data.py, one snippet per piece a dataset needs
# --------------------------------------------------------------------------------------

SEEDING = _code('''
    def make_generator(name, split, seed):
        """A CPU generator seeded from (dataset name, split, seed); identical on every machine."""
        digest = hashlib.sha256(f"{name}|{split}|{seed}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


    def uniform(gen, n, low, high):
        return low + (high - low) * torch.rand(n, generator=gen)
''')

WARP = _code('''
    TEMPLATE_SIZE = 56  # templates are drawn at 2x the output resolution ...
    OUT_SIZE = 28  # ... warped at 2x, then 2x2-averaged: cheap anti-aliasing


    def balanced_labels(n, num_classes, gen):
        """Labels as equal as possible per class, in random order."""
        labels = torch.arange(n, dtype=torch.int64) % num_classes
        return labels[torch.randperm(n, generator=gen)]


    def inverse_affine(angle, scale, aspect, shear, shift_x, shift_y):
        """affine_grid matrices for p_out = R(angle) @ Shear @ diag(scale*aspect, scale/aspect) @ p_in + shift."""
        cos, sin = torch.cos(angle), torch.sin(angle)
        sx, sy = scale * aspect, scale / aspect
        m00, m01 = cos * sx, (cos * shear - sin) * sy
        m10, m11 = sin * sx, (sin * shear + cos) * sy
        det = m00 * m11 - m01 * m10
        i00, i01, i10, i11 = m11 / det, -m01 / det, -m10 / det, m00 / det
        t0 = -(i00 * shift_x + i01 * shift_y)
        t1 = -(i10 * shift_x + i11 * shift_y)
        return torch.stack([torch.stack([i00, i01, t0], dim=1), torch.stack([i10, i11, t1], dim=1)], dim=1)


    def affine_grid(theta, height, width):
        """Same result as F.affine_grid(theta, (N, C, H, W), align_corners=False), computed faster."""
        xs = (2 * torch.arange(width, dtype=theta.dtype) + 1) / width - 1
        ys = (2 * torch.arange(height, dtype=theta.dtype) + 1) / height - 1
        along_w = theta[:, :, 0, None, None] * xs
        along_h = theta[:, :, 1, None, None] * ys[:, None] + theta[:, :, 2, None, None]
        return (along_w + along_h).permute(0, 2, 3, 1)


    def warp_templates(templates, index, theta, chunk=2048):
        """Warp templates[index] (K x 56 x 56) by theta into N x 1 x 28 x 28."""
        out = torch.empty(index.numel(), 1, OUT_SIZE, OUT_SIZE)
        for start in range(0, index.numel(), chunk):
            idx = index[start:start + chunk]
            grid = affine_grid(theta[start:start + chunk], TEMPLATE_SIZE, TEMPLATE_SIZE)
            warped = F.grid_sample(templates[idx].unsqueeze(1), grid, mode="bilinear", padding_mode="zeros",
                                   align_corners=False)
            out[start:start + idx.numel()] = F.avg_pool2d(warped, 2)
        return out


    def ink_and_noise(x, gen):
        """Random ink intensity, a faint background and Gaussian noise, clipped to [0, 1]."""
        n = x.shape[0]
        ink = uniform(gen, n, 0.7, 1.0).view(n, 1, 1, 1)
        background = uniform(gen, n, 0.0, 0.12).view(n, 1, 1, 1)
        sigma = uniform(gen, n, 0.02, 0.2).view(n, 1, 1, 1)
        noise = torch.randn(x.shape, generator=gen) * sigma
        return (background + (ink - background) * x + noise).clamp_(0.0, 1.0)
''')

FONTS = _code('''
    FONT_FILES = %(font_files)s
    # Where the playground keeps its fonts; pass --fonts-dir when running the script elsewhere.
    DEFAULT_FONTS_DIR = %(font_dir)s


    def find_fonts_dir(arg):
        here = Path(__file__).resolve().parent
        for candidate in ([arg] if arg else [DEFAULT_FONTS_DIR, here / "fonts", here / "assets" / "fonts"]):
            if all((Path(candidate) / f).is_file() for f in FONT_FILES):
                return Path(candidate)
        raise SystemExit(f"fonts not found ({', '.join(FONT_FILES)}); pass --fonts-dir pointing to the "
                         "playground's assets/fonts folder")
''')

GLYPHS = _code('''
    GLYPH_RENDER = 2 * TEMPLATE_SIZE  # glyphs are drawn at 112 px, then halved to the 56 px template
    GLYPH_HEIGHT = 76  # ink height of a digit/capital at 112 px
    GLYPH_MAX = 92  # no glyph may exceed this box, so rotations still fit
    GLYPH_WEIGHTS = ((0, True), (0, False), (2, False), (4, False))  # (stroke px, erode): light..heavy


    def render_glyph(font, char, stroke):
        """One glyph, ink-box centred on a 112 x 112 canvas, values in [0, 1]."""
        big = Image.new("L", (3 * GLYPH_RENDER, 3 * GLYPH_RENDER), 0)
        ImageDraw.Draw(big).text((GLYPH_RENDER // 2, GLYPH_RENDER // 4), char, font=font, fill=255,
                                 stroke_width=stroke, stroke_fill=255)
        ink = big.crop(big.getbbox())
        width, height = ink.size
        if max(width, height) > GLYPH_MAX:  # e.g. W, M: shrink instead of clipping
            factor = GLYPH_MAX / max(width, height)
            ink = ink.resize((max(1, round(width * factor)), max(1, round(height * factor))), Image.LANCZOS)
            width, height = ink.size
        canvas = Image.new("L", (GLYPH_RENDER, GLYPH_RENDER), 0)
        canvas.paste(ink, ((GLYPH_RENDER - width) // 2, (GLYPH_RENDER - height) // 2))
        return np.asarray(canvas, dtype=np.float32) / 255.0


    def glyph_templates(chars, fonts_dir):
        """(len(chars), 12 styles, 56, 56): three fonts x four weights."""
        per_char = [[] for _ in chars]
        for file in FONT_FILES:
            path = str(fonts_dir / file)
            probe = ImageFont.truetype(path, 200, layout_engine=ImageFont.Layout.BASIC)
            # size the font so a capital H is GLYPH_HEIGHT tall
            probe_img = Image.new("L", (400, 400), 0)
            ImageDraw.Draw(probe_img).text((40, 40), "H", font=probe, fill=255)
            _, top, _, bottom = probe_img.getbbox() or (0, 0, 0, 200)
            size = max(8, round(200 * GLYPH_HEIGHT / (bottom - top)))
            font = ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)
            for i, char in enumerate(chars):
                for stroke, _erode in GLYPH_WEIGHTS:
                    per_char[i].append(render_glyph(font, char, stroke))
        templates = torch.from_numpy(np.stack([np.stack(styles) for styles in per_char]))
        erode = torch.tensor([e for _ in FONT_FILES for _, e in GLYPH_WEIGHTS])
        # light weight: a 3x3 min-filter thins every stroke
        templates[:, erode] = -F.max_pool2d(-templates[:, erode], 3, stride=1, padding=1)
        return F.avg_pool2d(templates, 2).contiguous()


    def sample_glyphs(templates, n, gen):
        """n noisy, randomly rotated, scaled, sheared and shifted glyphs with their labels."""
        num_classes, num_styles = templates.shape[:2]
        y = balanced_labels(n, num_classes, gen)
        style = torch.randint(0, num_styles, (n,), generator=gen)
        theta = inverse_affine(
            angle=uniform(gen, n, -15.0, 15.0) * (math.pi / 180.0),
            scale=uniform(gen, n, 0.8, 1.15),
            aspect=torch.exp(uniform(gen, n, -0.15, 0.15)),
            shear=uniform(gen, n, -0.3, 0.3),
            shift_x=uniform(gen, n, -0.12, 0.12),
            shift_y=uniform(gen, n, -0.12, 0.12),
        )
        flat = templates.reshape(num_classes * num_styles, TEMPLATE_SIZE, TEMPLATE_SIZE)
        x = warp_templates(flat, y * num_styles + style, theta)
        return ink_and_noise(x, gen), y


    def load_data(train_size, val_size, seed, fonts_dir=None):
        templates = glyph_templates(CHARS, find_fonts_dir(fonts_dir))
        x_val, y_val = sample_glyphs(templates, val_size, make_generator(DATASET, "val", seed))
        x_train, y_train = sample_glyphs(templates, train_size, make_generator(DATASET, "train", seed))
        return x_train, y_train, x_val, y_val
''')

SHAPES = _code('''
    SHAPE_NAMES = ("circle", "square", "triangle", "cross", "star", "crescent", "arrow", "heart")
    SUPERSAMPLE = 4  # polygons are drawn at 4x and box-filtered: Pillow does not anti-alias them
    RADIUS = 0.85  # shape extent, in half-canvas units


    def regular_polygon(count, radius, phase):
        return [(radius * math.cos(phase + 2 * math.pi * k / count), radius * math.sin(phase + 2 * math.pi * k / count))
                for k in range(count)]


    def shape_outline(name):
        """Polygon vertices in [-1, 1]^2 (y down), or None for round shapes."""
        if name == "square":
            return [(-0.78, -0.78), (0.78, -0.78), (0.78, 0.78), (-0.78, 0.78)]
        if name == "triangle":
            return regular_polygon(3, 1.0, -math.pi / 2)
        if name == "cross":
            a, w = 0.9, 0.28
            return [(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a), (-w, a), (-w, w), (-a, w),
                    (-a, -w), (-w, -w)]
        if name == "star":
            outer = regular_polygon(5, 1.0, -math.pi / 2)
            inner = regular_polygon(5, 0.42, -math.pi / 2 + math.pi / 5)
            return [p for pair in zip(outer, inner) for p in pair]
        if name == "arrow":
            return [(-0.95, -0.22), (0.15, -0.22), (0.15, -0.62), (0.95, 0.0), (0.15, 0.62), (0.15, 0.22),
                    (-0.95, 0.22)]
        if name == "heart":
            ts = np.linspace(0.0, 2 * math.pi, 96, endpoint=False)
            xs = 16 * np.sin(ts) ** 3
            ys = -(13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts) - np.cos(4 * ts))
            return [(float(x) / 17.0, (float(y) - 2.5) / 17.0) for x, y in zip(xs, ys)]
        return None


    def shape_templates():
        """(8 shapes, 3 styles, 56, 56): filled, thin outline, thick outline."""
        big = TEMPLATE_SIZE * SUPERSAMPLE
        half = big / 2
        radius = RADIUS * half

        def to_px(points):
            return [(half + radius * x, half + radius * y) for x, y in points]

        def disc(draw, cx, cy, r, fill):
            draw.ellipse(to_px([(cx - r, cy - r), (cx + r, cy + r)]), fill=fill)

        masks = []
        for name in SHAPE_NAMES:
            img = Image.new("L", (big, big), 0)
            draw = ImageDraw.Draw(img)
            polygon = shape_outline(name)
            if polygon is not None:
                draw.polygon(to_px(polygon), fill=255)
            elif name == "circle":
                disc(draw, 0.0, 0.0, 0.9, 255)
            else:  # crescent
                disc(draw, 0.0, 0.0, 0.95, 255)
                disc(draw, 0.42, -0.18, 0.78, 0)
            masks.append(np.asarray(img, dtype=np.float32) / 255.0)
        filled = torch.from_numpy(np.stack(masks)).unsqueeze(1)
        styles = [filled]
        for ring in (14, 22):  # outline = mask minus its erosion (a separable min-filter)
            eroded = -F.max_pool2d(-filled, (2 * ring + 1, 1), stride=1, padding=(ring, 0))
            eroded = -F.max_pool2d(-eroded, (1, 2 * ring + 1), stride=1, padding=(0, ring))
            styles.append(filled - eroded)
        return F.avg_pool2d(torch.cat(styles, dim=1), SUPERSAMPLE).contiguous()


    def sample_shapes(templates, n, gen):
        num_classes, num_styles = templates.shape[:2]
        y = balanced_labels(n, num_classes, gen)
        style = torch.randint(0, num_styles, (n,), generator=gen)
        scale = uniform(gen, n, 0.6, 1.0)
        reach = (0.97 - RADIUS * 1.25 * scale).clamp(min=0.0)  # shift as far as the shape still fits
        theta = inverse_affine(
            angle=uniform(gen, n, -math.pi, math.pi),
            scale=scale,
            aspect=torch.exp(uniform(gen, n, -0.15, 0.15)),
            shear=uniform(gen, n, -0.15, 0.15),
            shift_x=uniform(gen, n, -1.0, 1.0) * reach,
            shift_y=uniform(gen, n, -1.0, 1.0) * reach,
        )
        flat = templates.reshape(num_classes * num_styles, TEMPLATE_SIZE, TEMPLATE_SIZE)
        x = warp_templates(flat, y * num_styles + style, theta)
        return ink_and_noise(x, gen), y


    def load_data(train_size, val_size, seed):
        templates = shape_templates()
        x_val, y_val = sample_shapes(templates, val_size, make_generator(DATASET, "val", seed))
        x_train, y_train = sample_shapes(templates, train_size, make_generator(DATASET, "train", seed))
        return x_train, y_train, x_val, y_val
''')

REAL_DIGITS = _code('''
    def class_interleaved_order(y, gen):
        """A seeded permutation that cycles through the classes, so every prefix is (almost) stratified."""
        n = y.numel()
        perm = torch.randperm(n, generator=gen)
        y_perm = y[perm]
        rank = torch.empty(n, dtype=torch.int64)
        for cls in torch.unique(y_perm):
            where = (y_perm == cls).nonzero(as_tuple=True)[0]
            rank[where] = torch.arange(where.numel())
        return perm[torch.argsort(rank * n + torch.arange(n))]


    def load_data(train_size, val_size, seed):
        """scikit-learn's 1,797 real 8x8 digits (installed with it, no download); val first, then train."""
        if train_size + val_size > 1797:
            raise SystemExit(f"the digits set has 1,797 images; train_size + val_size = {train_size + val_size}")
        bunch = load_digits()
        images = torch.as_tensor(bunch.images, dtype=torch.float32) / 16.0
        labels = torch.as_tensor(bunch.target, dtype=torch.int64)
        order = class_interleaved_order(labels, make_generator(DATASET, "split", seed))
        val_idx, train_idx = order[:val_size], order[val_size:val_size + train_size]
        return %(prepare)s(images[train_idx]), labels[train_idx], %(prepare)s(images[val_idx]), labels[val_idx]
''')

RESIZE = {
    8: _code('''
        def as_images(x):
            return x.unsqueeze(1).contiguous()  # N x 1 x 8 x 8
    '''),
    28: _code('''
        def as_images(x):
            """N x 8 x 8 -> N x 1 x 28 x 28 (bilinear keeps values in [0, 1])."""
            return F.interpolate(x.unsqueeze(1), size=(28, 28), mode="bilinear", align_corners=False).contiguous()
    '''),
}

SINE = _code('''
    def sample_sine_wave(n, gen):
        """SEQ_LEN noisy steps of A*sin(w*t + phi); the target is the clean value one step later."""
        t = torch.arange(SEQ_LEN + 1, dtype=torch.float32)
        freq = uniform(gen, n, 2 * math.pi / 30.0, 2 * math.pi / 6.0).unsqueeze(1)
        phase = uniform(gen, n, 0.0, 2 * math.pi).unsqueeze(1)
        amplitude = uniform(gen, n, 0.5, 1.5).unsqueeze(1)
        clean = amplitude * torch.sin(freq * t + phase)
        noisy = clean[:, :SEQ_LEN] + 0.05 * torch.randn(n, SEQ_LEN, generator=gen)
        return noisy.unsqueeze(2).contiguous(), clean[:, SEQ_LEN:].contiguous()  # N x T x 1 features, N x 1


    def load_data(train_size, val_size, seed):
        x_val, y_val = sample_sine_wave(val_size, make_generator(DATASET, "val", seed))
        x_train, y_train = sample_sine_wave(train_size, make_generator(DATASET, "train", seed))
        return x_train, y_train, x_val, y_val
''')

ADDING = _code('''
    def sample_adding_problem(n, gen):
        """Feature 0: uniform noise; feature 1 marks one step in each half; target: the sum of the two marked values."""
        half = SEQ_LEN // 2
        values = torch.rand(n, SEQ_LEN, generator=gen)
        first = (torch.rand(n, generator=gen) * half).long().clamp_(max=half - 1)
        second = half + (torch.rand(n, generator=gen) * (SEQ_LEN - half)).long().clamp_(max=SEQ_LEN - half - 1)
        markers = torch.zeros(n, SEQ_LEN)
        rows = torch.arange(n)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        target = values[rows, first] + values[rows, second]
        return torch.stack([values, markers], dim=2), target.unsqueeze(1)  # N x T x 2 features, N x 1


    def load_data(train_size, val_size, seed):
        x_val, y_val = sample_adding_problem(val_size, make_generator(DATASET, "val", seed))
        x_train, y_train = sample_adding_problem(train_size, make_generator(DATASET, "train", seed))
        return x_train, y_train, x_val, y_val
''')

AUGMENT = _code('''
    def augment_images(x, gen):
        """Randomly shift (up to ~2 px) and rotate (up to ~10 degrees) a batch of images."""
        n, _, height, width = x.shape
        draws = torch.rand(n, 3, generator=gen, device=gen.device).to(device=x.device, dtype=torch.float32)
        angle = (draws[:, 0] * 2 - 1) * (10.0 * math.pi / 180.0)
        shift_px = (draws[:, 1:] * 2 - 1) * 2.0
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([
            torch.stack([cos, -sin * height / width, shift_px[:, 0] * 2 / width], dim=1),
            torch.stack([sin * width / height, cos, shift_px[:, 1] * 2 / height], dim=1),
        ], dim=1).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
''')

DROPOUT = _code('''
    class SeededDropout(nn.Module):
        """nn.Dropout, but drawing its masks from one seeded generator so a run is reproducible."""

        def __init__(self, p):
            super().__init__()
            self.p = p
            self.generator = None

        def forward(self, x):
            if not self.training or self.p == 0.0:
                return x
            keep = 1.0 - self.p
            mask = torch.empty_like(x).bernoulli_(keep, generator=self.generator)
            return x * mask / keep
''')


def _data_section(cfg: ExperimentConfig) -> tuple[list[str], str]:
    """(imports, code) that define DATASET constants and load_data(train_size, val_size, seed[, fonts_dir])."""
    d = cfg.data
    name = d.name
    info = dataset_info(name, image_size=d.image_size, seq_len=d.seq_len)
    imports: list[str] = []
    head = f"DATASET = {json.dumps(name)}\n"
    parts = [SEEDING]
    if name in ("synthetic_digits", "synthetic_letters"):
        imports += ["from pathlib import Path", "from PIL import Image, ImageDraw, ImageFont"]
        chars = "0123456789" if name == "synthetic_digits" else "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        head += f"CHARS = {json.dumps(chars)}  # the classes, in label order\n"
        parts += [WARP, FONTS % {"font_files": "(" + ", ".join(json.dumps(f) for f in FONT_FILES) + ")",
                                 "font_dir": json.dumps(str(FONT_DIR))}, GLYPHS]
    elif name == "shapes":
        imports += ["from PIL import Image, ImageDraw"]
        parts += [WARP, SHAPES]
    elif name in SKLEARN_DATASETS:
        imports += ["from sklearn.datasets import load_digits"]
        if name == "handwritten_digits":
            parts += [RESIZE[info.input_shape[-1]], REAL_DIGITS % {"prepare": "as_images"}]
        else:
            head += "# each 8x8 image is read top to bottom: 8 time steps of 8 pixel features\n"
            parts += [REAL_DIGITS % {"prepare": ""}]
    elif name == "sine_wave":
        head += f"SEQ_LEN = {info.input_shape[0]}\n"
        parts += [SINE]
    elif name == "adding_problem":
        head += f"SEQ_LEN = {info.input_shape[0]}\n"
        parts += [ADDING]
    else:  # pragma: no cover - every registered dataset is handled above
        raise ValueError(f"export does not know dataset {name!r}")
    if d.augment:
        parts.append(AUGMENT)
    return imports, head + "\n\n" + "\n\n".join(parts)


# --------------------------------------------------------------------------------------
# Model
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
        feats.append(f"nn.Conv2d({', '.join(args)}),")
        if block.batchnorm:
            feats.append(f"nn.BatchNorm2d({block.channels}),")
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


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def _optimizer_code(cfg: ExperimentConfig) -> str:
    o = cfg.optimizer
    m = o.effective_momentum
    calls = {
        "sgd": "torch.optim.SGD(groups, lr=lr)",
        "momentum": f"torch.optim.SGD(groups, lr=lr, momentum={m})",
        "nesterov": f"torch.optim.SGD(groups, lr=lr, momentum={m}, nesterov=True)",
        "adagrad": "torch.optim.Adagrad(groups, lr=lr)",
        "rmsprop": f"torch.optim.RMSprop(groups, lr=lr, momentum={m})",
        "adam": "torch.optim.Adam(groups, lr=lr)",
        "adamw": "torch.optim.AdamW(groups, lr=lr)",
    }
    return calls[o.name]


def _schedule_code(cfg: ExperimentConfig) -> str:
    o = cfg.optimizer
    if o.schedule == "step":
        size = f"{o.step_size}" if o.step_size else "max(1, epochs // 3)"
        return _code(f'''
            def lr_factor(epoch, step, total_steps, epochs):
                """Step schedule: multiply the learning rate by {o.gamma} every {size} epoch(s)."""
                return {o.gamma} ** (epoch // {size})
        ''')
    if o.schedule == "cosine":
        return _code('''
            def lr_factor(epoch, step, total_steps, epochs):
                """Cosine schedule: from the full learning rate down to 0 over the run, updated every batch."""
                return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
        ''')
    return ""


def _train_code(cfg: ExperimentConfig, classification: bool) -> str:
    reg = cfg.regularization
    es = reg.early_stopping
    o = cfg.optimizer
    has_dropout = _has_dropout(cfg)
    augment = cfg.data.augment
    schedule = o.schedule
    metric = "acc" if classification else "mae"
    metric_key = "val_accuracy" if classification else "val_mae"
    if classification:
        loss_def = (f"F.cross_entropy(out, y, label_smoothing={reg.label_smoothing})"
                    if reg.label_smoothing else "F.cross_entropy(out, y)")
        metric_def = "(out.argmax(1) == y).sum()  # correct predictions"
        eval_loss = "F.cross_entropy(out, yb)"
    else:
        loss_def = "F.mse_loss(out, y)"
        metric_def = "(out - y).abs().sum()  # absolute errors"
        eval_loss = "F.mse_loss(out, yb)"

    L: list[str] = []
    add = L.append
    add("def loss_fn(out, y):")
    add(f"    return {loss_def}")
    add("")
    add("")
    add("def metric_sum(out, y):")
    add(f"    return {metric_def}")
    add("")
    add("")
    add("@torch.no_grad()")
    add("def evaluate(model, x, y, chunk=1024):")
    add('    """Mean loss and metric on held-out data, in eval mode."""')
    add("    model.eval()")
    add("    loss_sum, metric_total = 0.0, 0.0")
    add("    for i in range(0, len(x), chunk):")
    add("        out, yb = model(x[i:i + chunk]), y[i:i + chunk]")
    add(f"        loss_sum += {eval_loss} * len(yb)")
    add("        metric_total += metric_sum(out, yb)")
    add("    model.train()")
    add("    return float(loss_sum) / len(x), float(metric_total) / len(x)")
    add("")
    add("")
    add("def train(args, device):")
    fonts_arg = ", args.fonts_dir" if cfg.data.name in FONT_DATASETS else ""
    add(f"    x_train, y_train, x_val, y_val = load_data(args.train_size, args.val_size, args.seed{fonts_arg})")
    add("    # the whole (small) dataset goes to the device once")
    add("    x_train, y_train = x_train.to(device), y_train.to(device)")
    add("    x_val, y_val = x_val.to(device), y_val.to(device)")
    add("")
    add("    torch.manual_seed(args.seed)  # the initial weights depend only on the seed")
    add("    model = Net().to(device)")
    add("    print(model)")
    add("    print(f\"{sum(p.numel() for p in model.parameters()):,} parameters\")")
    add("")
    add("    # weights (2-D and up) get weight decay" + (" and the L1/L2 penalty" if reg.l1 or reg.l2 else "")
        + "; biases and norm scales do not")
    add("    decay = [p for p in model.parameters() if p.dim() >= 2]")
    add("    no_decay = [p for p in model.parameters() if p.dim() < 2]")
    add(f"    groups = [{{\"params\": decay, \"weight_decay\": {o.weight_decay}}}, "
        "{\"params\": no_decay, \"weight_decay\": 0.0}]")
    add("    groups = [g for g in groups if g[\"params\"]]")
    add("    lr = args.lr")
    add(f"    optimizer = {_optimizer_code(cfg)}")
    add("")
    add("    # every random draw comes from its own seeded generator, so the run is reproducible")
    add("    shuffle_gen = torch.Generator().manual_seed(args.seed * 4 + 1)")
    if augment:
        add("    augment_gen = torch.Generator().manual_seed(args.seed * 4 + 2)")
    if has_dropout:
        add("    dropout_gen = torch.Generator(device=device).manual_seed(args.seed * 4 + 3)")
        add("    for m in model.modules():")
        add("        if isinstance(m, SeededDropout):")
        add("            m.generator = dropout_gen")
    add("")
    add("    n = len(x_train)")
    add("    batches = math.ceil(n / args.batch_size)")
    if schedule == "cosine":
        add("    total_steps = args.epochs * batches")
    if es is not None:
        add(f"    patience, best_val, since_best, best_state = {es.patience}, math.inf, 0, None")
    else:
        add("    best_val = math.inf")
    add("    history, best_epoch, status, step, first_loss = [], None, \"completed\", 0, None")
    add("    t_start = time.perf_counter()")
    add("    model.train()")
    add("    for epoch in range(args.epochs):")
    add("        t_epoch = time.perf_counter()")
    add("        perm = torch.randperm(n, generator=shuffle_gen).to(device)")
    add("        loss_total = torch.zeros((), device=device)")
    add("        metric_total = torch.zeros((), device=device)")
    add("        seen = 0")
    if schedule == "step":
        add("        for g in optimizer.param_groups:")
        add("            g[\"lr\"] = args.lr * lr_factor(epoch, step, 0, args.epochs)")
    add("        for b in range(batches):")
    if schedule == "cosine":
        add("            for g in optimizer.param_groups:")
        add("                g[\"lr\"] = args.lr * lr_factor(epoch, step, total_steps, args.epochs)")
    add("            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]")
    add("            xb, yb = x_train[idx], y_train[idx]")
    if augment:
        add("            xb = augment_images(xb, augment_gen)")
    add("            out = model(xb)")
    add("            loss = loss_fn(out, yb)")
    if reg.l1 or reg.l2:
        add("            penalty = torch.zeros((), device=device)")
        add("            for p in decay:")
        if reg.l1:
            add(f"                penalty = penalty + {reg.l1} * p.abs().sum()  # L1")
        if reg.l2:
            add(f"                penalty = penalty + {reg.l2} * p.pow(2).sum()  # L2")
        add("            objective = loss + penalty")
    else:
        add("            objective = loss")
    add("            optimizer.zero_grad(set_to_none=True)")
    add("            objective.backward()")
    if reg.grad_clip is not None:
        add("            # clipping the global gradient norm keeps one exploding step from throwing the weights away")
        add(f"            torch.nn.utils.clip_grad_norm_(model.parameters(), {reg.grad_clip})")
    add("            optimizer.step()")
    add("            step += 1")
    add("            loss_value = loss.item()")
    add("            first_loss = first_loss or max(loss_value, 1e-3)")
    add("            if not math.isfinite(loss_value) or loss_value > 1e4 * first_loss:")
    add("                status = \"diverged\"")
    add("                print(f\"the loss became {loss_value} in epoch {epoch + 1}: lower the learning rate\")")
    add("                break")
    add("            loss_total += loss.detach() * len(idx)")
    add("            metric_total += metric_sum(out.detach(), yb)")
    add("            seen += len(idx)")
    add("        if status != \"completed\":")
    add("            break")
    add("        val_loss, val_metric = evaluate(model, x_val, y_val)")
    add("        row = {\"epoch\": epoch + 1, \"train_loss\": loss_total.item() / seen,")
    add(f"               \"train_{metric}\": metric_total.item() / seen, \"val_loss\": val_loss, "
        f"\"val_{metric}\": val_metric,")
    add("               \"lr\": optimizer.param_groups[-1][\"lr\"], \"seconds\": time.perf_counter() - t_epoch}")
    add("        history.append(row)")
    add("        print(f\"epoch {epoch + 1}/{args.epochs}: train loss {row['train_loss']:.4f} \"")
    add(f"              f\"train {metric} {{row['train_{metric}']:.4f}} val loss {{val_loss:.4f}} "
        f"val {metric} {{val_metric:.4f}} \"")
    add("              f\"({row['seconds']:.1f}s)\")")
    add("        if val_loss < best_val:")
    if es is not None:
        add("            best_val, best_epoch, since_best = val_loss, epoch + 1, 0")
        if es.restore_best:
            add("            best_state = copy.deepcopy(model.state_dict())")
        add("        else:")
        add("            since_best += 1")
        add("        if since_best >= patience:")
        add("            print(f\"early stopping: no improvement for {patience} epochs (best epoch {best_epoch})\")")
        add("            break")
    else:
        add("            best_val, best_epoch = val_loss, epoch + 1")
    add("")
    add("    final = history[-1] if history else None")
    if es is not None and es.restore_best:
        add("    if best_state is not None and status == \"completed\":")
        add("        model.load_state_dict(best_state)  # restore the weights of the best epoch")
        add("        final = history[best_epoch - 1]")
    add("    summary = {")
    add("        \"status\": status,")
    add("        \"epochs_run\": len(history),")
    add("        \"best_epoch\": best_epoch,")
    add("        \"final\": {\"train_loss\": final[\"train_loss\"], \"val_loss\": final[\"val_loss\"],")
    add(f"                  \"{metric_key}\": final[\"val_{metric}\"]}} if final else None,")
    add("        \"params\": sum(p.numel() for p in model.parameters()),")
    add("        \"device\": str(device),")
    add("        \"wall_seconds\": round(time.perf_counter() - t_start, 3),")
    add("    }")
    add("    return model, history, summary")
    return "\n".join(L) + "\n"


def _has_dropout(cfg: ExperimentConfig) -> bool:
    m = cfg.model
    if isinstance(m, CNNSpec):
        return any(b.dropout > 0 for b in m.conv) or any(d.dropout > 0 for d in m.dense)
    return (m.dropout > 0 and m.layers > 1) or any(d.dropout > 0 for d in m.dense)


def _main_code(cfg: ExperimentConfig) -> str:
    d, t = cfg.data, cfg.training
    fonts = d.name in FONT_DATASETS
    lines = [
        "def pick_device(name):",
        "    if name == \"auto\":",
        "        if torch.cuda.is_available():",
        "            return torch.device(\"cuda\")",
        "        if getattr(torch.backends, \"mps\", None) is not None and torch.backends.mps.is_available():",
        "            return torch.device(\"mps\")",
        "        return torch.device(\"cpu\")",
        "    return torch.device(name)",
        "",
        "",
        "def main(argv=None):",
        "    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])",
        f"    parser.add_argument(\"--epochs\", type=int, default={t.epochs})",
        f"    parser.add_argument(\"--train-size\", type=int, default={d.train_size})",
        f"    parser.add_argument(\"--val-size\", type=int, default={d.val_size})",
        f"    parser.add_argument(\"--batch-size\", type=int, default={t.batch_size})",
        f"    parser.add_argument(\"--lr\", type=float, default={cfg.optimizer.lr!r})",
        f"    parser.add_argument(\"--seed\", type=int, default={cfg.seed})",
        f"    parser.add_argument(\"--device\", default={json.dumps(t.device)}, help=\"auto, cpu, cuda or mps\")",
    ]
    if fonts:
        lines.append("    parser.add_argument(\"--fonts-dir\", help=\"folder with the DejaVu fonts the digits are "
                     "rendered from\")")
    lines += [
        "    parser.add_argument(\"--save\", help=\"write the trained weights (state_dict) to this file\")",
        "    args = parser.parse_args(argv)",
        "    for name in (\"epochs\", \"train_size\", \"val_size\", \"batch_size\"):",
        "        if getattr(args, name) < 1:",
        "            parser.error(f\"--{name.replace('_', '-')} must be at least 1\")",
        "    model, history, summary = train(args, pick_device(args.device))",
        "    if args.save:",
        "        torch.save(model.state_dict(), args.save)",
        "    print(json.dumps(summary))  # the last line: the same summary the playground stores",
        "    return summary",
        "",
        "",
        "if __name__ == \"__main__\":",
        "    main()",
    ]
    return "\n".join(lines) + "\n"


def _title(cfg: ExperimentConfig) -> str:
    m = cfg.model
    arch = (f"a CNN ({len(m.conv)} conv block(s), {len(m.dense)} dense layer(s))" if isinstance(m, CNNSpec)
            else f"a {m.layers}-layer {m.family.upper()} ({m.hidden} units)")
    return f"Train {arch} on {cfg.data.name} with {OPTIMIZER_LABELS[cfg.optimizer.name]}."


def _config_comment(cfg: ExperimentConfig) -> str:
    lines = ["# The experiment config this script was exported from:"]
    for key, value in cfg.to_dict().items():
        lines.append(f"#   {key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def export_script(config: ExperimentConfig, filename: str = "train.py") -> str:
    """One standalone PyTorch script that trains ``config`` exactly as the playground does.

    ``filename`` only appears in the usage lines of the script's docstring.
    """
    cfg = config
    info = dataset_info(cfg.data.name, image_size=cfg.data.image_size, seq_len=cfg.data.seq_len)
    classification = info.task == "classification"
    data_imports, data_code = _data_section(cfg)
    cnn = isinstance(cfg.model, CNNSpec)
    model_code = _cnn_model(cfg.model, cfg) if cnn else _rnn_model(cfg.model, cfg)
    es = cfg.regularization.early_stopping
    std = ["import argparse"]
    if es is not None and es.restore_best:
        std.append("import copy")
    std += ["import hashlib", "import json", "import math", "import time"]
    std += [i for i in data_imports if i.startswith("from pathlib")]
    third = []
    if cfg.data.name in FONT_DATASETS or cfg.data.name == "shapes":
        third.append("import numpy as np")
    third += ["import torch", "import torch.nn as nn",
              "import torch.nn.functional as F" + ("  # (the textbook's CNN code forgot this import)" if cnn else "")]
    third += sorted(i for i in data_imports if not i.startswith("from pathlib"))
    usage = [f"    python {filename}                  # the exported settings",
             f"    python {filename} --epochs 1 --train-size 256 --val-size 128 --device cpu"]
    if cfg.data.name in FONT_DATASETS:
        usage.append(f"    python {filename} --fonts-dir path/to/assets/fonts   # where the playground's fonts are")
    deps = "torch" + {"synthetic_digits": ", numpy and Pillow (with the bundled fonts)",
                      "synthetic_letters": ", numpy and Pillow (with the bundled fonts)",
                      "shapes": ", numpy and Pillow", "handwritten_digits": " and scikit-learn (its bundled digits)",
                      "sequential_digits": " and scikit-learn (its bundled digits)"}.get(cfg.data.name, "")
    doc = (f'"""{_title(cfg)}\n\n'
           "Exported from the bigmodel playground: the same data, model, initial weights, optimizer and data\n"
           "order as the playground's run, so on CPU it prints the same metrics.\n"
           f"Needs only {deps}.\n\n"
           + "\n".join(usage) + '\n"""\n')
    schedule = _schedule_code(cfg)
    sections = [
        "#!/usr/bin/env python3\n" + doc,
        "\n".join(std) + "\n\n" + "\n".join(third) + "\n",
        _config_comment(cfg),
        "# ---- data " + "-" * 78 + "\n\n" + data_code,
        "# ---- model " + "-" * 77 + "\n\n" + (DROPOUT + "\n\n" if _has_dropout(cfg) else "") + model_code,
        "# ---- training " + "-" * 74 + "\n\n" + (schedule + "\n\n" if schedule else "")
        + _train_code(cfg, classification),
        _main_code(cfg),
    ]
    return "\n\n".join(s.rstrip("\n") + "\n" for s in sections)


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

"""Model size sweeps and the power law fitted to them: loss against parameters and training compute.

:func:`plan_scale` makes one run per model size of a base design: a width multiplier scales
every conv block's channels and every dense layer's units (an RNN's hidden size), and a depth
sets how many conv blocks (recurrent layers) there are; blocks beyond the base's copy its last
block without pooling, so the image size stays feasible. All runs share the data, the batch
order, the seed and the number of epochs (the same budget in samples); their initial weights
differ because their shapes do.

:func:`model_size` counts parameters and forward FLOPs exactly as ``python -m bigmodel_core summary``
does (``nn.models.summarize``). Training compute is estimated from it as
``TRAIN_FLOPS_PER_FORWARD x forward FLOPs per sample x samples trained``: the backward pass costs
about twice the forward one (Kaplan et al., 2020, "Scaling Laws for Neural Language Models", use
the same 6N-per-token rule); validation passes are not counted. :func:`fit_power_law` fits
``loss = a * x^(-b)`` by least squares on ``log loss = log a - b log x``. A fit on a handful of
small models trained for a few epochs is a rough local slope, not a law: the page says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from bigmodel_core.config.specs import ConfigError, ExperimentConfig
from bigmodel_core.data import dataset_info
from bigmodel_core.nn.models import summarize
from bigmodel_core.nn.shapes import SpecError

from .comparison import MAX_RUNS, CompareRun, Comparison
from .naming import fmt_value

DEFAULT_WIDTHS = (0.25, 0.5, 1.0, 2.0)
MAX_WIDTH = 16.0
TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward (about 2x forward); the usual estimate, not a count
FIT_NOTE = ("A power law fitted to {n} small models trained for a few epochs is a rough slope over this range, "
            "not a scaling law: a few more points, other seeds or longer training can move the exponent.")


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def scale_changes(base: ExperimentConfig, width: float = 1.0, depth: int | None = None) -> dict[str, Any]:
    """Dotted-path changes that give ``base`` the width multiplier and depth (None: the base's depth)."""
    if not (isinstance(width, (int, float)) and not isinstance(width, bool) and 0 < width <= MAX_WIDTH):
        raise ConfigError([("width", f"a width multiplier is above 0 and at most {MAX_WIDTH:g}, got {width!r}")])
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ConfigError([("depth", f"a depth is a whole number of blocks or layers, at least 1; got {depth!r}")])
    model = base.to_dict()["model"]
    ch: dict[str, Any] = {}
    if base.model.family == "cnn":
        blocks = model["conv"]
        if depth is not None and depth != len(blocks):
            extra = dict(blocks[-1], pool="none")
            blocks = blocks[:depth] + [dict(extra) for _ in range(depth - len(blocks))]
        ch["model.conv"] = [dict(b, channels=_scaled(b["channels"], width)) for b in blocks]
    else:
        ch["model.hidden"] = _scaled(model["hidden"], width)
        if depth is not None:
            ch["model.layers"] = depth
    ch["model.dense"] = [dict(d, units=_scaled(d["units"], width)) for d in model["dense"]]
    return ch


def size_name(width: float, depth: int | None, family: str) -> str:
    bits = [f"width x{fmt_value(float(width))}"]
    if depth is not None:
        bits.append(f"{depth} {'blocks' if family == 'cnn' else 'layers'}")
    return ", ".join(bits)


def plan_scale(base: ExperimentConfig, widths: Sequence[float] = DEFAULT_WIDTHS,
               depths: Sequence[int] | None = None) -> Comparison:
    """One run per (width, depth) pair (every width at every depth), at most MAX_RUNS of them."""
    widths = list(dict.fromkeys(float(w) for w in widths))
    depth_list: list[int | None] = list(dict.fromkeys(depths)) if depths else [None]
    pairs = [(w, d) for d in depth_list for w in widths]
    if not pairs:
        raise ConfigError([("widths", "choose at least one width multiplier")])
    if len(pairs) > MAX_RUNS:
        raise ConfigError([("runs", f"{len(widths)} widths x {len(depth_list)} depths is {len(pairs)} runs, more "
                                    f"than the {MAX_RUNS} a comparison holds")])
    runs = []
    for w, d in pairs:
        name = size_name(w, d, base.model.family)
        try:
            cfg = base.with_changes(scale_changes(base, w, d))
            model_size(cfg)  # shapes checked here: an image pooled too small is named with its size
        except (ConfigError, SpecError) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [("model", str(exc))]
            raise ConfigError([(path, f"{name} is not allowed: {msg}") for path, msg in problems]) from None
        runs.append(CompareRun(name, cfg))
    sizes = [model_size(r.config).params for r in runs]
    if len(set(sizes)) < len(sizes):
        raise ConfigError([("widths", "two of these sizes give the same number of parameters (widths round to "
                                      "whole channels): choose sizes further apart")])
    return Comparison(base=base, runs=runs, title="model size", kind="scale")


@dataclass(frozen=True)
class ModelSize:
    params: int
    forward_flops: int  # per sample, 2 per multiply-add, as the summary counts them


def model_size(cfg: ExperimentConfig) -> ModelSize:
    """Parameters and forward FLOPs per sample, the totals of ``python -m bigmodel_core summary --json``."""
    d = cfg.data
    rows = summarize(cfg.model, dataset_info(d.name, image_size=d.image_size, seq_len=d.seq_len))
    return ModelSize(sum(r.params for r in rows), sum(r.flops for r in rows))


def training_flops(size: ModelSize, samples: int) -> int:
    """Estimated training compute: TRAIN_FLOPS_PER_FORWARD x forward FLOPs x samples trained."""
    return TRAIN_FLOPS_PER_FORWARD * size.forward_flops * int(samples)


@dataclass(frozen=True)
class PowerLaw:
    """``y = a * x^(-b)``, fitted in log space on the points ``x``, ``y``."""

    a: float
    b: float
    r2: float  # of the straight line in log-log space
    x: tuple[float, ...]
    y: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.x)

    def predict(self, x: float | np.ndarray) -> float | np.ndarray:
        return self.a * np.power(x, -self.b)

    def describe(self, what: str = "N") -> str:
        return f"loss ≈ {self.a:.3g} · {what}^(-{self.b:.3f}), fitted on {self.n} points (R² {self.r2:.2f})"


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Least squares on ``log y = log a - b log x`` (numpy.polyfit of degree 1)."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError("x and y must be two lists of the same length")
    if len(xs) < 2 or len(set(xs.tolist())) < 2:
        raise ValueError(f"a power law needs at least 2 points at different sizes; got {len(xs)}")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys)) and np.all(xs > 0) and np.all(ys > 0)):
        raise ValueError("a power law is fitted in log space: every x and y must be finite and above 0")
    lx, ly = np.log(xs), np.log(ys)
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (slope * lx + intercept)
    total = float(np.sum((ly - ly.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid ** 2)) / total if total > 0 else 1.0
    return PowerLaw(a=float(math.exp(intercept)), b=float(-slope), r2=r2, x=tuple(xs.tolist()), y=tuple(ys.tolist()))


@dataclass(frozen=True)
class ScalePoint:
    """One finished run of a size sweep: its size, its compute and its validation loss."""

    run: str
    seed: int
    params: int
    forward_flops: int
    train_flops: int
    val_loss: float  # the last epoch's
    best_val_loss: float
    epochs: int


def scale_points(comp: Comparison) -> list[ScalePoint]:
    """The runs with a finite validation loss (a diverged or unfinished run has no point)."""
    return points_of(comp.runs)


def points_of(runs: Sequence[CompareRun]) -> list[ScalePoint]:
    out = []
    for r in runs:
        losses = [e.get("val_loss") for e in r.epochs]
        losses = [v for v in losses if isinstance(v, (int, float)) and math.isfinite(v)]
        if r.status != "completed" or not losses:
            continue
        size = model_size(r.config)
        info = (r.summary or {}).get("comparison")
        samples = info.get("train_samples") if isinstance(info, dict) else None
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            samples = r.config.data.train_size
        out.append(ScalePoint(r.name, r.config.seed, size.params, size.forward_flops,
                              training_flops(size, samples * len(r.epochs)), float(losses[-1]), float(min(losses)),
                              len(r.epochs)))
    return out


def fit_points(points: Sequence[ScalePoint], against: str = "params") -> PowerLaw | None:
    """The fit of validation loss against ``params`` or ``train_flops``; None with fewer than 2 sizes."""
    xs = [float(getattr(p, against)) for p in points]
    if len(set(xs)) < 2:
        return None
    return fit_power_law(xs, [p.val_loss for p in points])


def scale_rows(points: Sequence[ScalePoint]) -> list[dict[str, Any]]:
    return [{"run": p.run, "seed": p.seed, "parameters": p.params, "forward FLOPs / sample": p.forward_flops,
             "training FLOPs (est.)": p.train_flops, "final val loss": round(p.val_loss, 4),
             "best val loss": round(p.best_val_loss, 4), "epochs": p.epochs} for p in points]


__all__ = ["DEFAULT_WIDTHS", "FIT_NOTE", "MAX_WIDTH", "ModelSize", "PowerLaw", "ScalePoint", "TRAIN_FLOPS_PER_FORWARD",
           "fit_points", "fit_power_law", "model_size", "plan_scale", "points_of", "scale_changes", "scale_points",
           "scale_rows", "size_name", "training_flops"]

"""Why did the model decide: attribution maps over its input, computed with Captum.

For one input (or a few) and one output (the predicted class by default, or any class the learner
picks; the single output of a regression model), on a probe copy of the model (eval mode, weights
frozen, see ``probes.probe_copy``):

- **saliency**: |d score / d input| (Captum's ``Saliency``), the score being the class's logit (the
  output before softmax) or the regression output; an image with several channels keeps the largest
  channel per pixel, as Simonyan et al. do;
- **integrated gradients** (``IntegratedGradients``) from a black baseline (the background of the
  training images; zeros for a sequence): signed, and complete: the attributions add up to
  score(input) - score(baseline), which :class:`Explanation` reports beside them;
- **Grad-CAM** for CNNs (``LayerGradCam`` on the last conv block's activation, with the ReLU of the
  original paper: ReLU(sum_k mean(d score / d A_k) * A_k)), also upsampled to the input's size
  (``LayerAttribution.interpolate``, bilinear) to lie over the picture;
- for RNN, LSTM and GRU models the same saliency and integrated gradients over the (time step, feature)
  grid, and summed over features per time step: which steps the decision rests on.

Captum is imported on first use only: the first page of the app stays torch-free, and a page that never
draws an attribution never pays for it. ``captum.attr`` also imports its plotting helpers at import time
(matplotlib.pyplot and IPython: about 2 s and 35 MB of a server's memory) though nothing here plots with
them (the pages draw with Plotly), so that one module waits behind a stand-in (bigmodel_core.deferred)
until one of its names is used. No streamlit here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bigmodel_core.deferred import defer_captum_plots
from bigmodel_core.nn.models import ConvNet, SeqNet

from .probes.common import model_device, to_numpy

IG_STEPS = 32  # integration points (Gauss-Legendre): the completeness gap is ~1e-5 of the score on these models
METHODS = ("saliency", "integrated gradients", "grad-cam")
_warm_lock = threading.Lock()


class AttributionError(ValueError):
    """An attribution that does not apply to this model or input; the message says why."""


def _captum() -> Any:
    defer_captum_plots()  # its plotting module (matplotlib.pyplot, IPython) is loaded only if a plot is asked for
    import captum.attr  # noqa: PLC0415 - optional heavy dependency, see above

    return captum.attr


def warm() -> None:
    """Import Captum now (e.g. in a background thread while a page draws), so the first attribution is quick."""
    with _warm_lock:
        _captum()


@dataclass(frozen=True)
class Explanation:
    """The model's answer for one input and the attributions of one of its outputs.

    Images: maps are (H, W); sequences: (T, F) with per-step sums (T,). Numpy only, so a page can
    draw it and a test compare it.
    """

    kind: str  # "image" | "sequence"
    task: str  # "classification" | "regression"
    output: np.ndarray  # class probabilities (K,) or the prediction (1,)
    scores: np.ndarray  # logits (K,) or the prediction (1,): what the attributions explain
    target: int  # the output index explained
    saliency: np.ndarray
    integrated: np.ndarray
    ig_total: float  # sum of the integrated-gradients attributions
    ig_expected: float  # score(input) - score(baseline): what that sum should be
    grad_cam: np.ndarray | None = None  # (H, W), upsampled from the layer's grid
    grad_cam_layer: np.ndarray | None = None  # (h, w) on the last conv block's own grid
    grad_cam_name: str = ""  # "block 2 after relu"

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.output)) if self.task == "classification" else 0

    @property
    def ig_gap(self) -> float:
        """How far the integrated gradients are from complete (0 is exact)."""
        return self.ig_total - self.ig_expected

    @property
    def saliency_steps(self) -> np.ndarray | None:
        return self.saliency.sum(axis=1) if self.kind == "sequence" else None

    @property
    def integrated_steps(self) -> np.ndarray | None:
        return self.integrated.sum(axis=1) if self.kind == "sequence" else None


def _kind(model: nn.Module) -> str:
    if isinstance(model, ConvNet):
        return "image"
    if isinstance(model, SeqNet):
        return "sequence"
    raise AttributionError(f"attributions are drawn for this playground's CNNs and RNNs; this model is a "
                           f"{type(model).__name__}")


def _no_cudnn_rnn(model: nn.Module):
    # cuDNN computes an RNN's backward only in training mode; the probe copy is in eval mode, so on a GPU
    # the gradient with respect to the input goes through PyTorch's own kernels instead
    return torch.backends.cudnn.flags(enabled=not isinstance(model, SeqNet))


def _batch(model: nn.Module, x: torch.Tensor, kind: str) -> torch.Tensor:
    want = 3 if kind == "image" else 2
    if x.dim() == want:
        x = x.unsqueeze(0)
    if x.dim() != want + 1:
        raise AttributionError(f"expected an input of {want} dimensions (or a batch of them), got shape "
                               f"{tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise AttributionError("the input has values that are not finite numbers")
    return x.detach().float().to(model_device(model))


def _targets(scores: torch.Tensor, task: str, target: int | Sequence[int] | None) -> list[int]:
    n, k = scores.shape
    if task == "regression":
        return [0] * n
    if target is None:
        return [int(v) for v in scores.argmax(dim=1)]
    ts = [int(target)] * n if isinstance(target, (int, np.integer)) else [int(t) for t in target]
    if len(ts) != n:
        raise AttributionError(f"{len(ts)} targets for {n} inputs")
    bad = [t for t in ts if not 0 <= t < k]
    if bad:
        raise AttributionError(f"class {bad[0]} does not exist; this model has classes 0 to {k - 1}")
    return ts


def last_conv_activation(model: ConvNet) -> tuple[nn.Module, str]:
    """The module Grad-CAM looks at: the last conv block's activation, and its name for a caption."""
    if len(model.blocks) == 0:
        raise AttributionError("this CNN has no conv layers, so there is no Grad-CAM")
    act = model.blocks[-1].act
    return act, f"block {len(model.blocks)} after {type(act).__name__.lower()}"


def explain_batch(model: nn.Module, x: torch.Tensor, task: str, target: int | Sequence[int] | None = None,
                  methods: Sequence[str] = METHODS, ig_steps: int = IG_STEPS) -> list[Explanation]:
    """Attributions for every input of a batch (N x C x H x W or N x T x F), each for its own target.

    ``model`` must be a probe copy (eval mode; its weights are never changed). ``methods`` picks
    among :data:`METHODS` (Grad-CAM applies to CNNs only and is skipped for sequences).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise AttributionError(f"unknown attribution method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    kind = _kind(model)
    xb = _batch(model, x, kind)
    ca = _captum()
    with _no_cudnn_rnn(model), torch.no_grad():
        scores = model(xb)
    targets = _targets(scores, task, target)
    n = len(xb)
    zeros = np.zeros(xb.shape[1:] if kind == "sequence" else xb.shape[2:], dtype=np.float32)
    sal = [zeros] * n
    ig = [zeros] * n
    ig_total = [0.0] * n
    ig_expected = [0.0] * n
    cams: list[np.ndarray | None] = [None] * n
    cams_layer: list[np.ndarray | None] = [None] * n
    cam_name = ""
    with _no_cudnn_rnn(model), torch.enable_grad():
        if "saliency" in methods:
            s = ca.Saliency(model).attribute(xb.clone().requires_grad_(True), target=targets, abs=True)
            s = to_numpy(s)
            sal = list(s.max(axis=1) if kind == "image" else s)
        if "integrated gradients" in methods:
            baseline = torch.zeros_like(xb)
            a, _delta = ca.IntegratedGradients(model).attribute(
                xb.clone().requires_grad_(True), baselines=baseline, target=targets, n_steps=ig_steps,
                internal_batch_size=max(ig_steps, 64), return_convergence_delta=True)
            a = to_numpy(a)
            ig = list(a.sum(axis=1) if kind == "image" else a)
            with torch.no_grad():
                base_scores = model(baseline)
            rows = torch.arange(n)
            tt = torch.as_tensor(targets)
            expected = to_numpy(scores[rows, tt] - base_scores[rows, tt])
            ig_total = [float(v.sum()) for v in a]
            ig_expected = [float(v) for v in expected]
        if "grad-cam" in methods and kind == "image":
            layer, cam_name = last_conv_activation(model)  # type: ignore[arg-type]
            cam = ca.LayerGradCam(model, layer).attribute(xb.clone().requires_grad_(True), target=targets,
                                                          relu_attributions=True)
            up = ca.LayerAttribution.interpolate(cam, tuple(xb.shape[2:]), interpolate_mode="bilinear")
            cams_layer = list(to_numpy(cam)[:, 0])
            cams = list(to_numpy(up)[:, 0])
    probs = torch.softmax(scores, dim=1) if task == "classification" else scores
    out, sc = to_numpy(probs), to_numpy(scores)
    return [Explanation(kind, task, out[i], sc[i], targets[i], np.asarray(sal[i]), np.asarray(ig[i]), ig_total[i],
                        ig_expected[i], cams[i], cams_layer[i], cam_name) for i in range(n)]


def explain(model: nn.Module, x: torch.Tensor, task: str, target: int | None = None,
            methods: Sequence[str] = METHODS, ig_steps: int = IG_STEPS) -> Explanation:
    """The model's answer for one input (C x H x W or T x F) and the attributions of ``target``
    (None: the predicted class)."""
    return explain_batch(model, x, task, target, methods, ig_steps)[0]

"""What the model gets wrong: the confusion matrix and the most confidently wrong examples
(classification), or predictions against targets (regression), over the whole validation split."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bigmodel_core.data import Dataset
from bigmodel_core.training.plain_loop import EVAL_CHUNK

from .common import model_device, probe_copy, to_numpy
from .results import MAX_POINTS, MAX_WRONG, Confusion, ProbeError, Regression, WrongExample


@torch.no_grad()
def validation_outputs(model: nn.Module, dataset: Dataset, chunk: int = EVAL_CHUNK) -> torch.Tensor:
    """The model's outputs on the whole validation split (eval mode, on a copy)."""
    m = probe_copy(model)
    dev = model_device(m)
    return torch.cat([m(dataset.x_val[i:i + chunk].to(dev)) for i in range(0, len(dataset.x_val), chunk)])


def confusion(outputs: torch.Tensor, dataset: Dataset, max_wrong: int = MAX_WRONG) -> Confusion:
    """Confusion matrix (rows true, columns predicted) and the most confidently wrong examples."""
    if dataset.info.task != "classification":
        raise ProbeError(f"a confusion matrix needs a classification task; {dataset.info.name} is regression")
    # numpy from here on: a few thousand numbers, and no tiny torch ops that wake a busy thread pool
    out = to_numpy(outputs)
    y = dataset.y_val.detach().cpu().numpy()
    if len(out) != len(y):
        raise ProbeError(f"{len(out)} outputs for {len(y)} validation samples")
    k = dataset.info.num_outputs
    e = np.exp(out - out.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    conf = probs[np.arange(len(pred)), pred]
    matrix = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(np.int64)
    wrong_idx = np.flatnonzero(pred != y)
    order = wrong_idx[np.argsort(-conf[wrong_idx], kind="stable")[:max_wrong]]
    wrong = tuple(WrongExample(int(i), int(y[i]), int(pred[i]), float(conf[i]), to_numpy(dataset.x_val[int(i)]))
                  for i in order)
    return Confusion(matrix, dataset.info.class_names, wrong)


def regression(outputs: torch.Tensor, dataset: Dataset, max_points: int = MAX_POINTS) -> Regression:
    if dataset.info.task != "regression":
        raise ProbeError(f"prediction-vs-target plots are for regression; {dataset.info.name} is classification")
    out, y = to_numpy(outputs)[:, 0], dataset.y_val.detach().cpu().numpy()[:, 0]
    return Regression(out[:max_points], y[:max_points], float(np.abs(out - y).mean()), len(y))

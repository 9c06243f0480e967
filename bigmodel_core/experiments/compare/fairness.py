"""Fairness: shared initial weights where architectures match, and evidence of identical batches.

Initial weights are built once from the base config's seed and passed as ``init_state`` to
every run whose parameter names and shapes match; the others build from their own seed and
the table says how many of their weight tensors still equal the shared ones. Every run
shuffles, augments and drops out from generators seeded by the same seed, and
:class:`BatchDigest` records a digest of the first epoch's batches to show it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bigmodel_core.config.specs import ExperimentConfig
from bigmodel_core.data import dataset_info
from bigmodel_core.nn.models import build_model
from bigmodel_core.training.trainer import Callback, EpochEnd, RunEnd, Trainer

from .comparison import Comparison


def state_sha(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def _weight_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Parameters of the layers that draw random initial weights, in construction order."""
    return [p for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.RNNBase))
            for p in m.parameters(recurse=False)]


@dataclass(frozen=True)
class InitPlan:
    state: dict[str, torch.Tensor] | None  # passed as init_state, or None: the run builds its own
    note: str  # shown in the fairness table


def initial_states(comp: Comparison) -> list[InitPlan]:
    """Build the base weights once; share them with every run whose parameter names and shapes match."""
    b = comp.base
    base_model = build_model(b.model, dataset_info(b.data.name, image_size=b.data.image_size,
                                                   seq_len=b.data.seq_len), seed=b.seed)
    base_state = {k: v.detach().clone() for k, v in base_model.state_dict().items()}
    shapes = {k: tuple(v.shape) for k, v in base_state.items()}
    base_weights = _weight_tensors(base_model)
    plans = []
    for run in comp.runs:
        c = run.config
        model = build_model(c.model, dataset_info(c.data.name, image_size=c.data.image_size,
                                                  seq_len=c.data.seq_len), seed=c.seed)
        own = model.state_dict()
        if c.seed != b.seed:
            plans.append(InitPlan(None, f"own (seed {c.seed})"))
        elif {k: tuple(v.shape) for k, v in own.items()} == shapes:
            plans.append(InitPlan(base_state, "shared"))
        else:
            # the same seed draws the same values for the layers both have (dropout and batchnorm
            # take no random draws): say how many weight tensors still match exactly
            mine = _weight_tensors(model)
            same = sum(1 for a, w in zip(base_weights, mine) if a.shape == w.shape and torch.equal(a, w))
            plans.append(InitPlan(None, f"own (architecture differs): {same} of {len(mine)} weight tensors equal"))
    return plans


class BatchDigest(Callback):
    """Evidence that runs saw the same data: digests of the first epoch's training batches.

    ``data_sha``: the inputs as the model sees them (after augmentation) and the batch
    boundaries; ``order_sha``: the targets of every batch, which stays equal for augmented runs;
    ``first_batch``: a copy of the first batch's inputs. One epoch is evidence enough: the
    digests are sealed when it ends, and recording costs nothing after that.
    """

    def __init__(self) -> None:
        self.first_batch: torch.Tensor | None = None
        self.data_sha: str | None = None
        self.order_sha: str | None = None
        self._data = hashlib.sha256()
        self._order = hashlib.sha256()
        self._sealed = False

    def on_batch(self, trainer: Trainer, xb: torch.Tensor, yb: torch.Tensor) -> None:
        if self._sealed:
            return
        x = xb.detach()
        if self.first_batch is None:
            self.first_batch = x.cpu().clone()
        self._data.update(repr(tuple(x.shape)).encode())  # batch boundaries count, not only the order
        self._data.update(x.cpu().contiguous().numpy().tobytes())
        self._order.update(repr(tuple(yb.shape)).encode())
        self._order.update(yb.detach().cpu().contiguous().numpy().tobytes())

    def _seal(self) -> None:
        if not self._sealed:
            self._sealed = True
            self.data_sha = self._data.hexdigest()[:12]
            self.order_sha = self._order.hexdigest()[:12]

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        self._seal()

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        self._seal()


class CompareTrainer(Trainer):
    """A Trainer that records what fairness needs (:class:`BatchDigest`, the initial weights'
    digest) and tags its summary with the comparison."""

    def __init__(self, config: ExperimentConfig, *, comparison_id: str = "", name: str = "", index: int = 0,
                 init_note: str = "", **kwargs: Any):
        super().__init__(config, **kwargs)
        self.comparison_id, self.name, self.index, self.init_note = comparison_id, name, index, init_note
        self.init_sha = state_sha(self.model.state_dict())
        self.digest = self.add_callback(BatchDigest())

    @property
    def first_batch(self) -> torch.Tensor | None:
        return self.digest.first_batch

    @property
    def data_sha(self) -> str | None:
        return self.digest.data_sha

    @property
    def order_sha(self) -> str | None:
        return self.digest.order_sha

    def summary(self) -> dict[str, Any]:
        s = super().summary()
        s["comparison"] = {"id": self.comparison_id, "name": self.name, "index": self.index, "init": self.init_note,
                           "init_sha": self.init_sha, "data_sha": self.data_sha, "order_sha": self.order_sha,
                           "train_samples": int(len(self.y_train))}
        return s

"""The named points of :meth:`Trainer.run` where probes, fairness checks and fine-tuning plug in.

Like fastai's ``before_epoch`` / ``after_batch`` and Lightning's hooks, a callback overrides
only the points it needs; the loop itself stays a plain, readable loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import torch

from .events import EpochEnd, RunEnd

if TYPE_CHECKING:
    from .trainer import Trainer


class Callback:
    """Named points of :meth:`Trainer.run` where probes, fairness checks and fine-tuning plug in.

    Every hook does nothing here; a subclass overrides the ones it needs (``Trainer(callbacks=[...])``,
    or :meth:`Trainer.add_callback` before the run starts). Hooks run on the training thread, in the
    order the callbacks were given, and see the trainer itself.
    """

    def on_run_start(self, trainer: Trainer) -> None:
        """Before the first batch."""

    def on_train_mode(self, trainer: Trainer) -> None:
        """Right after the trainer put the model in training mode (at the start, after each evaluation)."""

    def on_batch(self, trainer: Trainer, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """A training batch as the model is about to see it (after augmentation)."""

    def after_backward(self, trainer: Trainer, step: int) -> None:
        """The gradients of ``step`` (1-based over the run) are in ``.grad``, before clipping."""

    def on_validation(self, trainer: Trainer, outputs: torch.Tensor) -> None:
        """The model's outputs over the whole validation split of the evaluation that just ran."""

    def on_epoch_end(self, trainer: Trainer, event: EpochEnd) -> None:
        """An epoch was trained and validated; ``event`` is what run() yields next."""

    def on_run_end(self, trainer: Trainer, event: RunEnd) -> None:
        """The run ended (any status); ``event`` is its last event."""


C = TypeVar("C", bound=Callback)

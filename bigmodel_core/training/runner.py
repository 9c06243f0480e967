"""Train a config to the end and write its run folder (the CLI's ``train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from bigmodel_core.config.specs import ExperimentConfig

from .store import history_rows, write_run
from .trainer import Control, Event, Trainer


def run_and_save(trainer: Trainer, out: Path, *, on_event: Callable[[Event], None] | None = None) -> dict[str, Any]:
    """Run ``trainer`` to the end and write its run folder; its summary."""
    for ev in trainer.run():
        if on_event is not None:
            on_event(ev)
    summary = trainer.summary()
    write_run(Path(out), trainer.config, history_rows(trainer.result.history), summary, trainer.model.state_dict())
    return summary


def train_and_save(config: ExperimentConfig, out: Path, *, on_event: Callable[[Event], None] | None = None,
                   control: Control | None = None) -> dict[str, Any]:
    return run_and_save(Trainer(config, control=control), out, on_event=on_event)

"""Train a config to the end and write its run folder (the CLI's ``train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from bigmodel_core.config.specs import ExperimentConfig

from .store import history_rows, write_run
from .trainer import Control, Event, Trainer


def train_and_save(config: ExperimentConfig, out: Path, *, on_event: Callable[[Event], None] | None = None,
                   control: Control | None = None) -> dict[str, Any]:
    trainer = Trainer(config, control=control)
    for ev in trainer.run():
        if on_event is not None:
            on_event(ev)
    summary = trainer.summary()
    write_run(Path(out), config, history_rows(trainer.result.history), summary, trainer.model.state_dict())
    return summary

"""Words for the learner where the engine has keys: metric names, epoch-table columns, design errors.

The engine's keys (``val_accuracy``, ``train_metric``, ``model.conv[4]``) stay in files and
downloads, which other programs read; pages show these names instead. No streamlit, no torch.
"""

from __future__ import annotations

import re
from typing import Any

SUMMARY_LABELS = {"train_loss": "train loss (running, as trained)", "val_loss": "validation loss",
                  "val_accuracy": "validation accuracy", "val_mae": "validation MAE",
                  "train_eval_loss": "train loss (eval mode)"}


def metric_word(task: str) -> str:
    return "accuracy" if task == "classification" else "MAE"


def epoch_columns(task: str) -> dict[str, str]:
    """metrics.csv column -> the Epoch table's heading."""
    m = metric_word(task)
    # running: the epoch's mean as trained (dropout on, augmented, smoothed); eval mode: the clean value
    return {"epoch": "epoch", "train_loss": "train loss (running, as trained)", "val_loss": "validation loss",
            "train_metric": f"train {m} (running, as trained)", "val_metric": f"validation {m}",
            "train_eval_loss": "train loss (eval mode)", "train_eval_metric": f"train {m} (eval mode)",
            "lr": "learning rate", "seconds": "seconds", "step": "step"}


def human_rows(rows: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """Epoch rows with the table's headings (unknown keys keep theirs)."""
    names = epoch_columns(task)
    return [{names.get(k, k.replace("_", " ")): v for k, v in r.items()} for r in rows]


def final_line(final: dict[str, Any]) -> str:
    """``{"val_accuracy": 0.98, ...}`` as "validation accuracy 0.9800 · ..." (numbers only)."""
    names = dict(SUMMARY_LABELS, train_eval_metric=f"train {'MAE' if 'val_mae' in final else 'accuracy'} (eval mode)")
    return " · ".join(f"{names.get(k, k.replace('_', ' '))} {v:.4f}" for k, v in final.items()
                      if isinstance(v, (int, float)) and not isinstance(v, bool))


def repeat_note(summary: dict[str, Any]) -> str:
    """Where a run's numbers repeat: " · CPU, 2 threads: the same config and seed repeat these numbers
    at 2 threads" ("" for runs stored before the thread count was recorded)."""
    threads, device = summary.get("threads"), summary.get("device")
    if not isinstance(threads, int) or isinstance(threads, bool) or not isinstance(device, str):
        return ""
    if device != "CPU":
        return f" · {device}"
    return f" · CPU, {threads} threads: the same config and seed repeat these numbers at {threads} threads"


_BLOCK = re.compile(r"^model\.(conv|dense)\[(\d+)\]$")


def block_name(block: str) -> str | None:
    """A config location as the Build page names it: "model.conv[4]" -> "Block 5", "model.dense[0]" -> "Dense 1"."""
    m = _BLOCK.match(block or "")
    if not m:
        return None
    return ("Block " if m.group(1) == "conv" else "Dense ") + str(int(m.group(2)) + 1)


def design_message(exc: Any) -> str:
    """A SpecError in the Build page's words: "Block 5, max pool 2x2 (layer 15 of the table): input is 1x1, ..."."""
    index, name, block, message = (getattr(exc, a, None) for a in ("index", "name", "block", "message"))
    if message is None:
        return _full_stop(str(exc))
    where = block_name(block)
    if where and index:
        head = f"{where}, {name} (layer {index} of the table)"
    elif index:
        head = f"Layer {index} ({name})"
    else:
        head = "The model"
    return _full_stop(f"{head}: {message}")


def _full_stop(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."

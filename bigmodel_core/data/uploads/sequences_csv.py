"""Uploaded sequences: a CSV table with a header, in one of two layouts.

- wide: one row per sequence, T value columns (one feature per step) and a column named
  ``label``; an ``id`` column, if there is one, only names the rows;
- long: one row per time step, with columns ``id`` (which sequence), ``t`` (its step: rows are
  ordered by it), one or more feature columns, and ``label`` (the same on every row of a sequence).

Column names are matched without regard to case or surrounding spaces. Labels are class names
(text or numbers) for classification, or numbers to predict when ``task="regression"``.
Every value must be a finite number; every sequence must have the same number of steps, from
``SEQ_LEN_RANGE[0]`` up to the lower of ``SEQ_LEN_RANGE[1]`` and ``max_seq_len``. Messages
name the line of the file (the header is line 1), the column or the sequence at fault.
"""

from __future__ import annotations

import csv
import io
import math
from array import array
from typing import Literal

import numpy as np

from bigmodel_core.limits import current_limits

from ..registry import SEQ_LEN_RANGE
from .errors import UploadedDataError, shown
from .labels import class_names_of, encode
from .uploaded import UploadedData

Task = Literal["classification", "regression"]
FLOAT32_MAX = float(np.finfo(np.float32).max)  # values are trained on as float32


def _text(data: bytes, label: str) -> str:
    if not data.strip():
        raise UploadedDataError(f"{label} is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadedDataError(f"{label} is not UTF-8 text (byte {exc.start:,} cannot be read); save it as "
                                "UTF-8 CSV") from None


def _number(text: str, label: str, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        what = "is empty" if not text.strip() else f"is {shown(text, 40)}, not a number"
        raise UploadedDataError(f"{label}: line {line:,}, column {shown(column)} {what}") from None
    if not math.isfinite(value):
        raise UploadedDataError(f"{label}: line {line:,}, column {shown(column)} is {shown(text.strip(), 40)}; "
                                "every value must be a finite number")
    if abs(value) > FLOAT32_MAX:
        raise UploadedDataError(f"{label}: line {line:,}, column {shown(column)} is {shown(text.strip(), 40)}, "
                                f"beyond the {FLOAT32_MAX:.3g} a 32-bit float holds")
    return value


class _Rows:
    """The CSV's data rows with their line numbers, each checked to have as many fields as the header."""

    def __init__(self, text: str, label: str):
        self.label = label
        self.reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            header = next(self.reader, None)
        except csv.Error as exc:
            raise UploadedDataError(f"{label}: line 1 cannot be read as CSV ({exc})") from None
        if not header or not any(h.strip() for h in header):
            raise UploadedDataError(f"{label} has no header line; the first line must name the columns")
        self.header = [h.strip() for h in header]
        self.count = 0

    def __iter__(self):
        limit = current_limits().max_csv_rows
        width = len(self.header)
        while True:
            try:
                row = next(self.reader, None)
            except csv.Error as exc:
                raise UploadedDataError(f"{self.label}: line {self.reader.line_num:,} cannot be read as CSV "
                                        f"({exc})") from None
            if row is None:
                return
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            self.count += 1
            if self.count > limit:
                raise UploadedDataError(f"{self.label} has more than {limit:,} rows; the limit is {limit:,}")
            line = self.reader.line_num
            if len(row) != width:
                raise UploadedDataError(f"{self.label}: line {line:,} has {len(row)} fields but the header has "
                                        f"{width}; every row needs a value for every column")
            yield line, row


def _columns(header: list[str], label: str) -> dict[str, int]:
    """Where id, t and label are (by lower-case name), after checking the header names."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            raise UploadedDataError(f"{label}: column {i + 1} of the header has no name; name every column "
                                    "(pandas: to_csv(index=False))")
        if name.lower() in seen:
            raise UploadedDataError(f"{label}: the header names the column {shown(name)} twice")
        seen[name.lower()] = i
    if "label" not in seen:
        hint = ""
        if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
            hint = " (the header looks separated by semicolons or tabs; use commas)"
        raise UploadedDataError(f"{label} has no column named 'label'{hint}; use the wide layout (one row per "
                                "sequence: its values and a label) or the long layout (id, t, feature columns, label)")
    if "t" in seen and "id" not in seen:
        raise UploadedDataError(f"{label} has a column 't' but no column 'id'; the long layout needs both, to know "
                                "which sequence and which step a row is")
    return seen


def _check_length(steps: int, label: str, where: str) -> None:
    low, high = SEQ_LEN_RANGE[0], min(SEQ_LEN_RANGE[1], current_limits().max_seq_len)
    if not low <= steps <= high:
        raise UploadedDataError(f"{label}: {where} {steps:,} steps; sequences need {low} to {high:,} steps")


def _label_value(text: str, task: Task, label: str, line: int, column: str) -> str | float:
    if task == "regression":
        return _number(text, label, line, column)
    name = text.strip()
    if not name:
        raise UploadedDataError(f"{label}: line {line:,} has no label")
    return name


def _wide(rows: _Rows, cols: dict[str, int], task: Task, label: str) -> tuple[np.ndarray, list, list[int]]:
    skip = {cols["label"], cols.get("id", -1)}
    value_cols = [i for i in range(len(rows.header)) if i not in skip]
    if not value_cols:
        raise UploadedDataError(f"{label} has a label column but no value columns")
    _check_length(len(value_cols), label, "the rows have")
    label_col, names = cols["label"], rows.header
    values: array = array("f")
    labels: list = []
    lines: list[int] = []
    for line, row in rows:
        values.extend(_number(row[i], label, line, names[i]) for i in value_cols)
        labels.append(_label_value(row[label_col], task, label, line, names[label_col]))
        lines.append(line)
    x = np.frombuffer(values, dtype=np.float32).reshape(len(labels), len(value_cols), 1)
    return x, labels, lines


def _long(rows: _Rows, cols: dict[str, int], task: Task, label: str) -> tuple[np.ndarray, list, list[int]]:
    id_col, t_col, label_col = cols["id"], cols["t"], cols["label"]
    names = rows.header
    feature_cols = [i for i in range(len(names)) if i not in (id_col, t_col, label_col)]
    if not feature_cols:
        raise UploadedDataError(f"{label} has columns id, t and label but no feature column")
    limit = current_limits().max_seq_features
    if len(feature_cols) > limit:
        raise UploadedDataError(f"{label} has {len(feature_cols)} feature columns; the limit is {limit}")
    codes: dict[str, int] = {}
    first_line: list[int] = []
    seq_label: list = []
    code_of_row, steps, features, lines = array("q"), array("d"), array("f"), array("q")
    for line, row in rows:
        key = row[id_col].strip()
        if not key:
            raise UploadedDataError(f"{label}: line {line:,} has no id")
        value = _label_value(row[label_col], task, label, line, names[label_col])
        code = codes.setdefault(key, len(codes))
        if code == len(seq_label):
            seq_label.append(value)
            first_line.append(line)
        elif seq_label[code] != value:
            raise UploadedDataError(f"{label}: sequence {shown(key)} has label {shown(seq_label[code])} on line "
                                    f"{first_line[code]:,} but {shown(value)} on line {line:,}; a sequence "
                                    "has one label")
        code_of_row.append(code)
        steps.append(_number(row[t_col], label, line, names[t_col]))
        features.extend(_number(row[i], label, line, names[i]) for i in feature_cols)
        lines.append(line)
    if not codes:
        return np.empty((0, 0, len(feature_cols)), np.float32), [], []
    code_arr = np.frombuffer(code_of_row, dtype=np.int64)
    t_arr = np.frombuffer(steps, dtype=np.float64)
    line_arr = np.frombuffer(lines, dtype=np.int64)
    order = np.lexsort((t_arr, code_arr))  # by sequence, then by t
    counts = np.bincount(code_arr, minlength=len(codes))
    ids = list(codes)
    same_t = np.flatnonzero((np.diff(code_arr[order]) == 0) & (np.diff(t_arr[order]) == 0))
    if same_t.size:
        a, b = sorted((int(line_arr[order[same_t[0]]]), int(line_arr[order[same_t[0] + 1]])))
        key = ids[int(code_arr[order[same_t[0]]])]
        raise UploadedDataError(f"{label}: sequence {shown(key)} has two rows with t = {t_arr[order[same_t[0]]]:g} "
                                f"(lines {a:,} and {b:,})")
    if (counts != counts[0]).any():
        odd = int(np.flatnonzero(counts != counts[0])[0])
        raise UploadedDataError(f"{label}: sequence {shown(ids[odd])} has {counts[odd]:,} steps but sequence "
                                f"{shown(ids[0])} has {counts[0]:,}; every sequence needs the same number of steps")
    _check_length(int(counts[0]), label, f"sequence {shown(ids[0])} has")
    x = np.frombuffer(features, dtype=np.float32).reshape(-1, len(feature_cols))[order]
    return x.reshape(len(codes), int(counts[0]), len(feature_cols)), seq_label, first_line


def sequences_from_csv(data: bytes, source: str, task: Task = "classification") -> UploadedData:
    """The sequences of a CSV file; ``source`` is the file's name (for messages and the notes)."""
    label = shown(source, 60)
    rows = _Rows(_text(data, label), label)
    cols = _columns(rows.header, label)
    layout = "long" if "t" in cols else "wide"
    x, labels, lines = (_long if layout == "long" else _wide)(rows, cols, task, label)
    if not labels:
        raise UploadedDataError(f"{label} has a header but no rows")
    limit = current_limits().max_upload_samples
    if len(labels) > limit:
        raise UploadedDataError(f"{label} holds {len(labels):,} sequences; the limit is {limit:,}")
    n, steps, feats = x.shape
    what = f"{n:,} sequences of {steps} steps with {feats} feature(s) ({layout} layout)"
    if task == "regression":
        if n < 2:
            raise UploadedDataError(f"{label} holds 1 sequence; it needs at least 2, one to train on and one to "
                                    "validate")
        y = np.asarray(labels, dtype=np.float32)
        return UploadedData("sequence", "regression", np.ascontiguousarray(x), y, (), source,
                            (f"{what}, each with a number to predict.",))
    class_names = class_names_of(labels, label)
    notes = (f"{what} in {len(class_names)} classes.",)
    return UploadedData("sequence", "classification", np.ascontiguousarray(x), encode(labels, class_names),
                        class_names, source, notes)

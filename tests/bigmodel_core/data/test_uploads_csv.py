"""Uploaded sequences (data/uploads/sequences_csv.py): wide and long CSV layouts, good and bad.

Every file is written in the test; a refusal is one UploadedDataError naming the file and the
line, column or sequence at fault.
"""

from __future__ import annotations

import numpy as np
import pytest

from bigmodel_core.data.uploads import UploadedDataError, read_upload
from tests.bigmodel_core.data.upload_files import long_csv, wide_csv


def refused(text: str | bytes, *needles: str, filename: str = "seq.csv", **kw) -> str:
    data = text.encode() if isinstance(text, str) else text
    with pytest.raises(UploadedDataError) as info:
        read_upload(data, filename, **kw)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"'{filename}'"), message
    for needle in needles:
        assert needle in message, message
    return message


def rows(n: int = 6, steps: int = 6) -> tuple[list[list[float]], list[str]]:
    rng = np.random.default_rng(3)
    return rng.normal(size=(n, steps)).round(4).tolist(), ["up" if i % 2 else "down" for i in range(n)]


# --- good files ----------------------------------------------------------------------------------------


def test_wide_layout_one_row_per_sequence_with_text_labels():
    values, labels = rows()
    up = read_upload(wide_csv(values, labels).encode(), "seq.csv")
    assert up.kind == "sequence" and up.task == "classification"
    assert up.x.shape == (6, 6, 1) and up.x.dtype == np.float32
    np.testing.assert_array_equal(up.x[:, :, 0], np.asarray(values, dtype=np.float32))
    assert up.class_names == ("down", "up")
    assert [up.class_names[i] for i in up.y] == labels
    assert "wide layout" in up.notes[0]


def test_wide_layout_label_anywhere_id_column_ignored_case_and_spaces_in_the_header():
    text = " ID , Label ,a,b,c,d,e\nr1,x,1,2,3,4,5\nr2,y,2,3,4,5,6\nr3,x,0,0,0,0,0\nr4,y,9,9,9,9,9\n"
    up = read_upload(text.encode(), "s.csv")
    assert up.x.shape == (4, 5, 1)
    assert up.x[1, :, 0].tolist() == [2, 3, 4, 5, 6]
    assert up.y.tolist() == [0, 1, 0, 1]


def test_long_layout_rows_in_any_order_sorted_by_t():
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(7, 3)).astype(np.float32) for _ in range(4)]
    labels = ["a", "b", "a", "b"]
    order = rng.permutation(28).tolist()
    up = read_upload(long_csv(seqs, labels, order).encode(), "long.csv")
    assert up.x.shape == (4, 7, 3)
    first_seen = []
    for j in order:  # samples come in the order their id first appears
        if j // 7 not in first_seen:
            first_seen.append(j // 7)
    np.testing.assert_array_equal(up.x, np.stack([seqs[i] for i in first_seen]))
    assert [up.class_names[i] for i in up.y] == [labels[i] for i in first_seen]
    assert "long layout" in up.notes[0]


def test_regression_when_asked_and_numeric_class_labels_sort_by_value():
    values, _ = rows()
    targets = [0.5, -1.25, 3.0, 2.0, 1e-3, 7.5]
    up = read_upload(wide_csv(values, targets).encode(), "r.csv", task="regression")
    assert up.task == "regression" and up.class_names == ()
    assert up.y.dtype == np.float32 and up.y.tolist() == pytest.approx(targets)
    up = read_upload(wide_csv(values, [10, 2, 10, 2, 1, 1]).encode(), "c.csv")
    assert up.class_names == ("1", "2", "10") and up.y.tolist() == [2, 1, 2, 1, 0, 0]


def test_utf8_with_bom_quoted_fields_and_blank_lines():
    text = ('\ufefflabel,v1,v2,v3,v4,v5\n"caf\u00e9, ouvert",1,2,3,4,5\n\n"caf\u00e9, ouvert",1,2,3,4,5\n'
            "shut,0,0,0,0,0\nshut,1,1,1,1,1\n")
    up = read_upload(text.encode("utf-8"), "s.csv")
    assert up.class_names == ("caf\u00e9, ouvert", "shut")


# --- bad files -----------------------------------------------------------------------------------------

GOOD_HEAD = "label,v1,v2,v3,v4,v5\n"
GOOD_ROWS = "a,1,2,3,4,5\nb,1,2,3,4,5\na,1,2,3,4,5\nb,1,2,3,4,5\n"


@pytest.mark.parametrize("text,needles", [
    ("", ["is empty"]),
    ("   \n\n", ["is empty"]),
    ("label,v1,v2,v3,v4,v5\n", ["has a header but no rows"]),
    (GOOD_HEAD + GOOD_ROWS + "a,1,2,3,4\n", ["line 6 has 5 fields but the header has 6"]),
    (GOOD_HEAD + GOOD_ROWS + "a,1,2,3,4,5,6\n", ["line 6 has 7 fields"]),
    (GOOD_HEAD + "a,1,2,x,4,5\n" + GOOD_ROWS, ["line 2, column 'v3' is 'x', not a number"]),
    (GOOD_HEAD + "a,1,2,,4,5\n" + GOOD_ROWS, ["line 2, column 'v3' is empty"]),
    (GOOD_HEAD + GOOD_ROWS + "a,1,nan,3,4,5\n", ["line 6, column 'v2' is 'nan'", "finite number"]),
    (GOOD_HEAD + GOOD_ROWS + "a,1,2,-inf,4,5\n", ["line 6, column 'v3' is '-inf'"]),
    (GOOD_HEAD + GOOD_ROWS + "a,1,2,1e39,4,5\n", ["line 6, column 'v3' is '1e39', beyond"]),
    (GOOD_HEAD + GOOD_ROWS + " ,1,2,3,4,5\n", ["line 6 has no label"]),
    ("v1,v2,v3,v4,v5\n1,2,3,4,5\n", ["no column named 'label'"]),
    ("label;v1;v2;v3;v4;v5\na;1;2;3;4;5\n", ["no column named 'label'", "semicolons"]),
    ("t,label,f\n1,a,2\n", ["has a column 't' but no column 'id'"]),
    ("label,v1,V1,v3,v4,v5\n" + GOOD_ROWS, ["names the column 'V1' twice"]),
    (",label,v1,v2,v3,v4,v5\n0," + GOOD_ROWS.replace("\n", "\n0,")[:-2], ["column 1 of the header has no name"]),
    ("label\na\nb\n", ["has a label column but no value columns"]),
    ("label,v1,v2,v3\na,1,2,3\nb,1,2,3\n", ["the rows have 3 steps; sequences need 5 to 1,000 steps"]),
    ("label," + ",".join(f"v{i}" for i in range(1001)) + "\n", ["the rows have 1,001 steps"]),
    (GOOD_HEAD + "a,1,2,3,4,5\na,1,2,3,4,5\na,1,2,3,4,5\n", ["has a single class ('a')"]),
    (GOOD_HEAD + GOOD_ROWS + "c,1,2,3,4,5\n", ["class 'c' has only 1 sample"]),
    ('label,v1,v2,v3,v4,v5\n"a,1,2,3,4,5\n', ["cannot be read as CSV"]),
    (GOOD_HEAD + GOOD_ROWS + "a\x00,1,2,3,4,5\n", ["the label 'a\\x00' has a control character"]),
    (GOOD_HEAD + GOOD_ROWS + "a,1,2\x00,3,4,5\n", ["line 6, column 'v2' is '2\\x00', not a number"]),
])
def test_bad_wide_files_are_named(text, needles):
    refused(text, *needles)


def long_text(lines: list[str]) -> str:
    return "id,t,f,label\n" + "".join(line + "\n" for line in lines)


def seq(name: str, steps: int, label: str, start: int = 0) -> list[str]:
    return [f"{name},{t},{t * 0.5},{label}" for t in range(start, start + steps)]


@pytest.mark.parametrize("lines,needles", [
    (seq("a", 6, "x") + seq("b", 7, "y") + seq("c", 6, "x") + seq("d", 6, "y"),
     ["sequence 'b' has 7 steps but sequence 'a' has 6", "same number of steps"]),
    (seq("a", 6, "x") + ["a,3,1.0,x"] + seq("b", 7, "y"), ["sequence 'a' has two rows with t = 3 (lines 5 and 8)"]),
    (seq("a", 6, "x") + ["a,9,1.0,y"], ["sequence 'a' has label 'x' on line 2 but 'y' on line 8"]),
    (seq("a", 6, "x") + [",9,1.0,x"], ["line 8 has no id"]),
    (seq("a", 6, "x") + ["a,later,1.0,x"], ["line 8, column 't' is 'later', not a number"]),
    (seq("a", 3, "x") + seq("b", 3, "y"), ["sequence 'a' has 3 steps; sequences need 5 to 1,000 steps"]),
    (seq("a", 1001, "x") + seq("b", 1001, "y"), ["sequence 'a' has 1,001 steps"]),
])
def test_bad_long_files_are_named(lines, needles):
    refused(long_text(lines), *needles)


def test_long_layout_needs_a_feature_column_and_at_most_the_feature_limit(monkeypatch):
    refused("id,t,label\na,1,x\n", "has columns id, t and label but no feature column")
    monkeypatch.setenv("BIGMODEL_MAX_SEQ_FEATURES", "2")
    refused("id,t,f1,f2,f3,label\na,1,1,2,3,x\n", "has 3 feature columns; the limit is 2")


def test_regression_labels_must_be_numbers():
    refused(GOOD_HEAD + GOOD_ROWS, "line 2, column 'label' is 'a', not a number", task="regression")
    refused(GOOD_HEAD + "1,1,2,3,4,5\n", "holds 1 sequence; it needs at least 2", task="regression")


def test_row_sequence_and_class_limits_are_tunable(monkeypatch):
    values, labels = rows(n=8)
    text = wide_csv(values, labels)
    monkeypatch.setenv("BIGMODEL_MAX_CSV_ROWS", "5")
    refused(text, "has more than 5 rows; the limit is 5")
    monkeypatch.delenv("BIGMODEL_MAX_CSV_ROWS")
    monkeypatch.setenv("BIGMODEL_MAX_UPLOAD_SAMPLES", "7")
    refused(text, "holds 8 sequences; the limit is 7")
    monkeypatch.delenv("BIGMODEL_MAX_UPLOAD_SAMPLES")
    monkeypatch.setenv("BIGMODEL_MAX_UPLOAD_CLASSES", "3")
    many = wide_csv(values, [0, 1, 2, 3, 0, 1, 2, 3])
    refused(many, "has 4 different labels; the limit is 3 classes", "ask for regression")
    monkeypatch.setenv("BIGMODEL_MAX_SEQ_LEN", "5")
    refused(wide_csv(rows(steps=6)[0], labels[:6]), "the rows have 6 steps; sequences need 5 to 5 steps")


def test_not_utf8_and_hostile_names_are_shown_escaped_and_short():
    refused(GOOD_HEAD.encode() + b"\xff\xfe,1,2,3,4,5\n", "is not UTF-8 text (byte 21 cannot be read)")
    message = refused(GOOD_HEAD + GOOD_ROWS + "a,1,2," + "<b>" * 100 + ",4,5\n", "line 6, column 'v3' is '<b><b>")
    assert len(message) < 250
    message = refused(GOOD_HEAD + GOOD_ROWS + "a\u202e\x1b[31m,1,2,3,4,5\n", "has a control character")
    assert "\x1b" not in message
    with pytest.raises(UploadedDataError, match=r"^'seq.csv' has a single class"):
        read_upload((GOOD_HEAD + "a,1,2,3,4,5\na,1,2,3,4,5\n").encode(), "../../etc/seq.csv")


def test_a_csv_cannot_be_read_as_images_and_images_not_as_csv():
    refused(GOOD_HEAD + GOOD_ROWS, "is not a readable zip archive", filename="seq.zip")
    refused(b"\x89PNG\r\n\x1a\n garbage", "is not UTF-8 text (byte 0 cannot be read)", filename="seq.csv")

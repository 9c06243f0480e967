"""A learner's own input: the canvas payload, uploaded pictures and edited sequences become the exact tensor
the model receives, the prediction for it is the model's output on it, and bad input gets a clear message."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from bigmodel_core.config.presets import load_preset
from bigmodel_core.data import dataset_info
from bigmodel_core.data.real_digits import as_images
from bigmodel_core.data.uploads.images import resize
from bigmodel_core.inspect import probes
from bigmodel_core.inspect.attributions import explain
from bigmodel_core.inspect.try_input import (
    CANVAS_SIDE,
    TryInputError,
    drawing_pixels,
    encode_drawing,
    image_file_pixels,
    looks_inverted,
    parse_sequence_text,
    prepare_image,
    prepare_sequence,
)
from bigmodel_core.nn.models import build_model
from tests.bigmodel_core.data.upload_files import image_bytes, png_header_only

DIGITS = dataset_info("synthetic_digits")
SCANS_28 = dataset_info("handwritten_digits", image_size=28)
SCANS_8 = dataset_info("handwritten_digits", image_size=8)
ROWS = dataset_info("sequential_digits")
ADDING = dataset_info("adding_problem", seq_len=6)


def a_one(side: int = CANVAS_SIDE) -> np.ndarray:
    grid = np.zeros((side, side), dtype=np.float32)
    grid[side // 6: 5 * side // 6, side // 2 - side // 16: side // 2 + side // 16] = 1.0
    return grid


def test_a_drawing_round_trips_through_the_canvas_payload():
    grid = a_one()
    back = drawing_pixels(encode_drawing(grid))
    assert back.shape == (CANVAS_SIDE, CANVAS_SIDE) and back.dtype == np.float32
    np.testing.assert_array_equal(back, grid)
    assert drawing_pixels(None) is None
    assert drawing_pixels(encode_drawing(np.zeros((CANVAS_SIDE, CANVAS_SIDE)))) is None  # cleared: no strokes


def test_a_drawing_is_resized_to_the_models_input_as_uploaded_images_are():
    grid = a_one()
    prep = prepare_image(grid, DIGITS)
    assert prep.x.shape == (1, 28, 28) and prep.x.dtype == torch.float32
    np.testing.assert_array_equal(prep.x[0].numpy(), resize(grid[None], 28)[0])
    assert 0.0 <= float(prep.x.min()) and float(prep.x.max()) <= 1.0
    assert "112 x 112 → 28 x 28" in prep.steps[0]


def test_for_the_scanned_digits_a_drawing_goes_through_their_8_x_8_as_the_training_images_do():
    grid = a_one()
    small = resize(grid[None], 8)
    prep = prepare_image(grid, SCANS_28)
    expected = as_images(torch.from_numpy(small), 28)[0]
    torch.testing.assert_close(prep.x, expected, rtol=0, atol=0)
    assert "8 x 8" in prep.steps[0]
    eight = prepare_image(grid, SCANS_8)
    assert eight.x.shape == (1, 8, 8)
    np.testing.assert_array_equal(eight.x[0].numpy(), small[0])


def test_the_prediction_for_a_drawn_digit_is_the_models_output_on_the_same_tensor():
    cfg = load_preset("quickstart_cnn")
    model = probes.probe_copy(build_model(cfg.model, DIGITS, seed=0))
    x = prepare_image(drawing_pixels(encode_drawing(a_one())), DIGITS).x
    ex = explain(model, x, "classification")
    with torch.no_grad():
        probs = torch.softmax(model(x[None]), dim=1)[0]
    np.testing.assert_allclose(ex.output, probs.numpy(), rtol=1e-6, atol=1e-7)
    assert ex.prediction == int(probs.argmax())


def payload(**changes) -> dict:
    p = encode_drawing(a_one())
    p.update(changes)
    return {k: v for k, v in p.items() if v is not ...}


@pytest.mark.parametrize("bad, message", [
    ("a string", "the drawing must be an object with side and pixels, got str"),
    ([1, 2, 3], "the drawing must be an object with side and pixels, got list"),
    (payload(extra=1), "the drawing has unknown fields: 'extra'"),
    (payload(side=28), "the drawing must be 112 x 112 pixels, got side '28'"),
    (payload(side=True), "the drawing must be 112 x 112 pixels, got side 'True'"),
    (payload(side="112"), "the drawing must be 112 x 112 pixels"),
    (payload(strokes=-1), "stroke count must be a whole number of at least 0"),
    (payload(pixels=[0] * 12544), "the drawing's pixels must be a base64 text, got list"),
    (payload(pixels="A" * 10_000_000), "the drawing's pixels are 10,000,000 characters; 112 x 112 pixels take"),
    (payload(pixels="not base64!!"), "the drawing's pixels are not valid base64"),
    (payload(pixels=base64.b64encode(bytes(100)).decode()), "the drawing has 100 pixels; a 112 x 112 drawing has "
                                                            "12,544"),
])
def test_bad_canvas_payloads_are_refused_naming_what_is_wrong(bad, message):
    with pytest.raises(TryInputError) as exc:
        drawing_pixels(bad)
    assert message in str(exc.value)


def test_an_uploaded_picture_is_checked_and_decoded_like_a_dataset_upload():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=(60, 40, 3), dtype=np.uint8)
    pixels = image_file_pixels(image_bytes(photo, "JPEG"), "phone/photo.JPG")
    assert pixels.shape == (60, 40) and 0 <= pixels.min() and pixels.max() <= 1
    prep = prepare_image(pixels, DIGITS)
    assert prep.x.shape == (1, 28, 28) and "40 x 60 → 28 x 28" in prep.steps[0]
    paper = np.full((30, 30), 255, dtype=np.uint8)
    paper[10:20, 14:16] = 0
    assert looks_inverted(image_file_pixels(image_bytes(paper, "BMP"), "ink.bmp"))
    assert not looks_inverted(1.0 - image_file_pixels(image_bytes(paper, "PNG"), "ink.png"))


@pytest.mark.parametrize("data, name, message", [
    (b"GIF89a....", "anim.gif", "'anim.gif' is not a PNG, JPEG or BMP file (by its name)"),
    (b"", "empty.png", "'empty.png' is empty"),
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "broken.png", "'broken.png' is"),
    (b"hello, not an image", "notes.jpg", "'notes.jpg' is not a PNG, JPEG or BMP image"),
])
def test_bad_pictures_get_a_clear_message(data, name, message):
    with pytest.raises(TryInputError) as exc:
        image_file_pixels(data, name)
    assert message in str(exc.value)


def test_pictures_over_the_upload_limits_are_refused_before_decoding(monkeypatch):
    monkeypatch.setenv("BIGMODEL_MAX_UPLOAD_BYTES", "1000")
    big = image_bytes(np.random.default_rng(1).integers(0, 256, (80, 80), dtype=np.uint8), "PNG")
    with pytest.raises(TryInputError, match=r"'big.png' is [\d,]+ bytes; the limit is 1,000 bytes"):
        image_file_pixels(big, "big.png")
    monkeypatch.setenv("BIGMODEL_MAX_UPLOAD_BYTES", "20000000")
    monkeypatch.setenv("BIGMODEL_MAX_IMAGE_PIXELS", "10000")
    with pytest.raises(TryInputError, match=r"'huge.png' is 200 x 200 pixels; the limit is 10,000 pixels per image"):
        image_file_pixels(png_header_only(200, 200), "huge.png")


def test_a_sequence_model_refuses_a_picture_and_an_image_model_a_sequence():
    with pytest.raises(TryInputError, match="sequential_digits is a sequence dataset"):
        prepare_image(a_one(), ROWS)
    with pytest.raises(TryInputError, match="synthetic_digits is an image dataset"):
        prepare_sequence([[0.0]], DIGITS)


def test_an_edited_sequence_is_the_models_input_as_typed():
    values = np.arange(12, dtype=np.float64).reshape(6, 2) / 10
    prep = prepare_sequence(values.astype(object), ADDING, ["value", "marker"])
    assert prep.x.shape == (6, 2) and prep.x.dtype == torch.float32
    np.testing.assert_allclose(prep.x.numpy(), values, rtol=1e-6)
    text = parse_sequence_text("0, 1\n0.5, 0\n1,0;2, 0\n3,1\n-4e-1, 0", ADDING)
    np.testing.assert_allclose(text.x[:, 0].numpy(), [0, 0.5, 1, 2, 3, -0.4], rtol=1e-6)


@pytest.mark.parametrize("edit, message", [
    ((2, 1, None), "step 2, marker is empty; type a number"),
    ((0, 0, "  "), "step 0, value is empty"),
    ((3, 0, "abc"), "step 3, value: 'abc' is not a number"),
    ((1, 1, float("nan")), "step 1, marker is nan, not a finite number"),
    ((4, 0, float("inf")), "step 4, value is inf, not a finite number"),
    ((5, 0, 1e9), "step 5, value is 1e+09; values are limited to ±1e+06"),
    ((0, 1, True), "step 0, marker is True, not a number"),
    ((0, 0, "9" * 60), "is 60 characters, too long for a number"),
])
def test_bad_values_in_an_edited_sequence_name_their_step_and_feature(edit, message):
    values = np.zeros((6, 2), dtype=object)
    t, f, v = edit
    values[t, f] = v
    with pytest.raises(TryInputError) as exc:
        prepare_sequence(values, ADDING, ["value", "marker"])
    assert message in str(exc.value)


@pytest.mark.parametrize("values, message", [
    (np.zeros((5, 2)), "the model reads sequences of 6 steps; this one has 5"),
    (np.zeros((6, 3)), "the sequence must have 2 value(s) per step (value, marker), got shape (6, 3)"),
])
def test_a_sequence_of_the_wrong_shape_is_refused(values, message):
    with pytest.raises(TryInputError) as exc:
        prepare_sequence(values, ADDING, ["value", "marker"])
    assert message in str(exc.value)


@pytest.mark.parametrize("text, message", [
    ("", "the sequence is empty"),
    ("1, 2\n3", "line 2 has 1 value(s); each step needs 2"),
    ("x" * 300_000, "the sequence text is 300,000 characters; the limit is 200,000"),
])
def test_bad_pasted_sequences_get_a_clear_message(text, message):
    with pytest.raises(TryInputError) as exc:
        parse_sequence_text(text, ADDING)
    assert message in str(exc.value)

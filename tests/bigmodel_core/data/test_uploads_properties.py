"""Property-based tests of the upload parsers (hypothesis).

Random valid CSVs (both layouts) and random zips of class folders round-trip to the right
shapes, values and labels; random bytes, random text and random damage to valid files never
raise anything but UploadedDataError.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigmodel_core.data.uploads import UploadedData, UploadedDataError, read_upload
from bigmodel_core.data.uploads.images import resize
from tests.bigmodel_core.data.upload_files import image_bytes, long_csv, npz_bytes, wide_csv, zip_bytes

SETTINGS = settings(max_examples=80, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)
class_name = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                     min_size=1, max_size=8).map(str.strip).filter(lambda s: s and '"' not in s)


@st.composite
def labelled(draw, min_per_class: int = 2) -> list[str]:
    """A label per sample: 2-4 distinct names, each used at least twice, in random order."""
    names = draw(st.lists(class_name, min_size=2, max_size=4, unique=True))
    counts = draw(st.lists(st.integers(min_per_class, 4), min_size=len(names), max_size=len(names)))
    labels = [n for n, c in zip(names, counts) for _ in range(c)]
    return draw(st.permutations(labels))


def quoted(name: str) -> str:
    return '"' + name + '"'


@given(labels=labelled(), steps=st.integers(5, 12), data=st.data())
@SETTINGS
def test_random_wide_csv_round_trips(labels, steps, data):
    values = [data.draw(st.lists(finite, min_size=steps, max_size=steps)) for _ in labels]
    up = read_upload(wide_csv(values, [quoted(n) for n in labels]).encode(), "w.csv")
    assert up.x.shape == (len(labels), steps, 1)
    np.testing.assert_array_equal(up.x[:, :, 0], np.asarray(values, dtype=np.float32))
    assert [up.class_names[i] for i in up.y] == labels
    assert sorted(up.class_names) == sorted(set(labels))


@given(labels=labelled(), steps=st.integers(5, 9), features=st.integers(1, 3), seed=st.integers(0, 2**16))
@SETTINGS
def test_random_long_csv_round_trips_in_any_row_order(labels, steps, features, seed):
    rng = np.random.default_rng(seed)
    seqs = [rng.normal(size=(steps, features)).astype(np.float32) for _ in labels]
    order = rng.permutation(len(labels) * steps).tolist()
    up = read_upload(long_csv(seqs, [quoted(n) for n in labels], order).encode(), "l.csv")
    first = list(dict.fromkeys(j // steps for j in order))
    assert up.x.shape == (len(labels), steps, features)
    np.testing.assert_array_equal(up.x, np.stack([seqs[i] for i in first]))
    assert [up.class_names[i] for i in up.y] == [labels[i] for i in first]


@given(labels=labelled(), side=st.integers(8, 28), seed=st.integers(0, 2**16), wrapped=st.booleans())
@SETTINGS
def test_random_zip_of_class_folders_round_trips(labels, side, seed, wrapped):
    rng = np.random.default_rng(seed)
    folders = {n: f"class{i}" for i, n in enumerate(sorted(set(labels)))}  # folder names a file system takes
    members, pixels = {}, {}
    for i, name in enumerate(labels):
        p = rng.integers(0, 256, size=(side, side), dtype=np.uint8)
        path = f"{folders[name]}/{i:03d}.png"
        members[("top/" if wrapped else "") + path] = image_bytes(p)
        pixels[path] = p
    up = read_upload(zip_bytes(members), "z.zip")
    order = sorted(pixels)  # members are read in path order
    assert up.x.shape == (len(labels), 1, side, side)
    np.testing.assert_array_equal(up.x[:, 0], np.stack([pixels[p] for p in order]).astype(np.float32) / 255)
    assert [up.class_names[i] for i in up.y] == [p.split("/")[0] for p in order]


@given(sizes=st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)) | st.sampled_from([(8, 8), (28, 28)]),
                      min_size=4, max_size=8), seed=st.integers(0, 2**16))
@SETTINGS
def test_random_image_sizes_keep_a_common_square_size_or_each_become_28(sizes, seed):
    rng = np.random.default_rng(seed)
    members, pixels = {}, {}
    for i, (h, w) in enumerate(sizes):
        path = f"{'ab'[i % 2]}/{i:03d}.png"
        pixels[path] = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
        members[path] = image_bytes(pixels[path])
    up = read_upload(zip_bytes(members), "s.zip")
    order = sorted(pixels)
    scaled = [pixels[p].astype(np.float32) / 255 for p in order]
    if len(set(sizes)) == 1 and sizes[0][0] == sizes[0][1] and 8 <= sizes[0][0] <= 28:
        np.testing.assert_array_equal(up.x[:, 0], np.stack(scaled))
    else:
        expected = [s if s.shape == (28, 28) else resize(s[None], 28)[0] for s in scaled]
        np.testing.assert_array_equal(up.x[:, 0], np.stack(expected))


@given(n=st.integers(4, 12), height=st.integers(1, 40), width=st.integers(1, 40), four_d=st.booleans(),
       dtype=st.sampled_from(["uint8", "int16", "float32", "float64", "bool"]), seed=st.integers(0, 2**16))
@SETTINGS
def test_random_npz_images_have_the_right_shape_and_range(n, height, width, four_d, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, height, width)) * 100).astype(dtype)
    y = np.array([i % 2 for i in range(n)])
    up = read_upload(npz_bytes(x=x[:, None] if four_d else x, y=y), "n.npz")
    side = height if height == width and 8 <= height <= 28 else 28
    assert up.x.shape == (n, 1, side, side) and up.x.dtype == np.float32
    assert 0.0 <= up.x.min() and up.x.max() <= 1.0
    assert up.y.tolist() == y.tolist()


def parsed_or_refused(data: bytes, filename: str, task=None) -> None:
    try:
        result = read_upload(data, filename, task=task)
    except UploadedDataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(result, UploadedData)
    assert np.isfinite(result.x).all() and len(result.x) == len(result.y)


@given(data=st.binary(max_size=2000), kind=st.sampled_from(["x.zip", "x.npz", "x.csv"]),
       task=st.sampled_from([None, "regression"]))
@SETTINGS
def test_random_bytes_are_only_ever_refused_with_the_upload_error(data, kind, task):
    parsed_or_refused(data, kind, task)


csv_chars = st.sampled_from(list("abc,\"\n\r\t;01234.5e-+ ") + ["nan", "inf", "label", "id", "t", "\x00", "\u00e9"])


@given(text=st.lists(csv_chars, max_size=300).map("".join), task=st.sampled_from([None, "regression"]))
@SETTINGS
def test_random_csv_like_text_is_only_ever_refused_with_the_upload_error(text, task):
    parsed_or_refused(("label,v1,v2,v3,v4,v5\n" + text).encode(), "x.csv", task)
    parsed_or_refused(("id,t,f,label\n" + text).encode(), "x.csv", task)


def _valid_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    members = {f"{c}/{i}.{ext}": image_bytes(rng.integers(0, 256, size=(10, 12), dtype=np.uint8), fmt)
               for c in "ab" for i, (ext, fmt) in enumerate([("png", "PNG"), ("jpg", "JPEG"), ("bmp", "BMP")])}
    seqs = [rng.normal(size=(6, 2)) for _ in range(4)]
    return {"x.zip": zip_bytes(members), "x.npz": npz_bytes(x=rng.integers(0, 9, size=(4, 8, 8)), y=np.arange(4) % 2),
            "x.csv": long_csv(seqs, ["a", "b", "a", "b"]).encode()}


VALID = _valid_files()


@given(kind=st.sampled_from(sorted(VALID)), data=st.data())
@SETTINGS
def test_damaged_valid_files_are_only_ever_refused_with_the_upload_error(kind, data):
    raw = bytearray(VALID[kind])
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), max_size=8))
    for pos, value in edits:
        raw[pos] = value
    cut = data.draw(st.integers(1, len(raw)))
    parsed_or_refused(bytes(raw[:cut]), kind)


@given(data=st.data())
@SETTINGS
def test_damaged_members_inside_a_sound_archive_are_refused_with_the_upload_error(data):
    """The archive itself reads fine; a member's bytes (an image, an npy array) are garbled."""
    source = zipfile.ZipFile(io.BytesIO(VALID[data.draw(st.sampled_from(["x.zip", "x.npz"]))]))
    members = {i.filename: bytearray(source.read(i)) for i in source.infolist()}
    name = data.draw(st.sampled_from(sorted(members)))
    content = members[name]
    for pos, value in data.draw(st.lists(st.tuples(st.integers(0, len(content) - 1), st.integers(0, 255)),
                                         min_size=1, max_size=8)):
        content[pos] = value
    members[name] = content[:data.draw(st.integers(0, len(content)))]
    parsed_or_refused(zip_bytes({k: bytes(v) for k, v in members.items()}),
                      "x.npz" if name.endswith(".npy") else "x.zip")

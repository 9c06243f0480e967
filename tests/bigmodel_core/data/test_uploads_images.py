"""Uploaded images (data/uploads): zips of class folders and npz arrays, good and bad.

Every file is made in the test. Pillow is the oracle for decoding and grayscale conversion; a
refusal is one UploadedDataError naming the file and the member or array, and nothing is written.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile

from bigmodel_core.data.uploads import UploadedDataError, archive, read_upload
from bigmodel_core.data.uploads.images import resize
from tests.bigmodel_core.data.upload_files import (
    class_zip,
    image_bytes,
    noise,
    npz_bytes,
    png_header_only,
    set_declared_size,
    zip_bytes,
)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def refused(data: bytes, filename: str, *needles: str, **kw) -> str:
    with pytest.raises(UploadedDataError) as info:
        read_upload(data, filename, **kw)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# --- good zips --------------------------------------------------------------------------------------


def test_class_folders_become_classes_and_pixels_are_scaled_like_the_builtin_sets(rng):
    data, pixels = class_zip(rng, {"cat": 3, "dog": 4})
    up = read_upload(data, "pets.zip")
    assert up.kind == "image" and up.task == "classification"
    assert up.class_names == ("cat", "dog")
    assert up.x.shape == (7, 1, 28, 28) and up.x.dtype == np.float32
    assert up.y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    expected = np.stack(pixels["cat"] + pixels["dog"]).astype(np.float32) / 255
    np.testing.assert_array_equal(up.x[:, 0], expected)
    assert 0.0 <= up.x.min() and up.x.max() <= 1.0
    assert up.name.startswith("upload-") and len(up.name) == len("upload-") + 16
    assert up.source == "pets.zip"


def test_one_wrapping_folder_is_fine_and_the_name_depends_on_content_only(rng):
    plain, _ = class_zip(np.random.default_rng(1), {"a": 2, "b": 2})
    wrapped, _ = class_zip(np.random.default_rng(1), {"a": 2, "b": 2}, wrapper="my data")
    stored = zipfile.ZipFile(io.BytesIO(plain))
    again = zip_bytes({i.filename: stored.read(i) for i in stored.infolist()}, method=zipfile.ZIP_STORED)
    names = {read_upload(d, f).name for d, f in [(plain, "x.zip"), (wrapped, "other name.zip"), (again, "y.zip")]}
    assert len(names) == 1  # the same images, zipped three ways
    assert read_upload(wrapped, "w.zip").class_names == ("a", "b")


def test_small_square_images_keep_their_size_other_sizes_become_28(rng):
    eight, pixels = class_zip(rng, {"0": 2, "1": 2}, size=(8, 8))
    up = read_upload(eight, "digits.zip")
    assert up.x.shape == (4, 1, 8, 8)
    assert "keep that size" in " ".join(up.notes)
    big, big_pixels = class_zip(rng, {"0": 2, "1": 2}, size=(40, 64))
    up = read_upload(big, "big.zip")
    assert up.x.shape == (4, 1, 28, 28)
    expected = resize(np.stack(big_pixels["0"] + big_pixels["1"]).astype(np.float32) / 255, 28)
    np.testing.assert_allclose(up.x[:, 0], expected, atol=1e-6)
    assert "64 x 40 images were resized to 28 x 28" in " ".join(up.notes)


def test_mixed_sizes_are_all_resized_to_28(rng):
    members = {"a/1.png": image_bytes(noise(rng, 8, 8)), "a/2.png": image_bytes(noise(rng, 20, 20)),
               "b/1.png": image_bytes(noise(rng, 30, 10)), "b/2.png": image_bytes(noise(rng, 28, 28))}
    up = read_upload(zip_bytes(members), "mixed.zip")
    assert up.x.shape == (4, 1, 28, 28)
    assert "4 different sizes" in " ".join(up.notes)


def test_resize_matches_torch_interpolate(rng):
    x = rng.random((3, 50, 40)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(x)[:, None], size=(28, 28), mode="bilinear", align_corners=False,
                             antialias=True)[:, 0].numpy()
    np.testing.assert_array_equal(resize(x, 28), expected)


@pytest.mark.parametrize("fmt", ["JPEG", "BMP"])
def test_jpeg_and_bmp_colour_images_become_pillows_grayscale(rng, fmt):
    members, files = {}, {}
    for cls in ("red", "blue"):
        for i in range(2):
            data = image_bytes(noise(rng, 16, 16, colour=True), fmt)
            members[f"{cls}/{i}.{'jpg' if fmt == 'JPEG' else 'bmp'}"] = data
            files[(cls, i)] = data
    up = read_upload(zip_bytes(members), "colours.zip")
    expected = [np.asarray(Image.open(io.BytesIO(files[(c, i)])).convert("L"), dtype=np.float32) / 255
                for c in ("blue", "red") for i in range(2)]
    np.testing.assert_array_equal(up.x[:, 0], np.stack(expected))
    assert "4 colour image(s) were converted to grayscale" in " ".join(up.notes)


def test_sixteen_bit_png_is_scaled_by_65535(rng):
    values = rng.integers(0, 65536, size=(10, 10), dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, "PNG")
    members = {"a/1.png": buf.getvalue(), "a/2.png": buf.getvalue(), "b/1.png": buf.getvalue(),
               "b/2.png": buf.getvalue()}
    up = read_upload(zip_bytes(members), "deep.zip")
    np.testing.assert_allclose(up.x[0, 0], values.astype(np.float32) / 65535, rtol=1e-6)


def test_class_names_in_natural_order_and_system_files_skipped(rng):
    members = {f"{c}/{i}.png": image_bytes(noise(rng, 8, 8)) for c in ("10", "2", "1") for i in range(2)}
    members.update({"__MACOSX/2/._0.png": b"junk", "2/.DS_Store": b"junk", "10/Thumbs.db": b"junk"})
    up = read_upload(zip_bytes(members), "n.zip")
    assert up.class_names == ("1", "2", "10")
    assert "Skipped 3 file(s)" in " ".join(up.notes)


# --- bad zips: refused before anything is unpacked -----------------------------------------------------


def test_a_kilobyte_zip_declaring_a_gigabyte_is_refused_before_extraction(rng, monkeypatch):
    small = zip_bytes({"a/1.png": image_bytes(noise(rng, 8, 8)), })
    bomb = set_declared_size(small, 1 << 30)
    assert len(bomb) < 1500

    def no_reading(*args, **kwargs):
        raise AssertionError("a member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    refused(bomb, "bomb.zip", "'bomb.zip' unpacks to 1,073,741,824 bytes", "limit is 100,000,000")


def test_a_zip_that_really_expands_past_the_limit_is_refused_before_extraction(monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("a/zeros.png", "w") as f:
            block = bytes(1 << 20)
            for _ in range(120):
                f.write(block)
    assert len(buf.getvalue()) < 1_000_000
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: (_ for _ in ()).throw(AssertionError("opened")))
    refused(buf.getvalue(), "zeros.zip", "unpacks to 125,829,120 bytes")


def test_a_header_that_understates_the_size_gets_no_further_than_it_declared():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/big.png", bytes(5_000_000))
        for name in ("a/small.png", "b/1.png", "b/2.png"):
            z.writestr(name, bytes(10))
    lying = set_declared_size(buf.getvalue(), 1000)  # the first member claims 1,000 bytes
    refused(lying, "lie.zip", "'lie.zip': member 'a/big.png' is damaged")


def test_unpacked_bytes_are_counted_while_reading(monkeypatch):
    data = zip_bytes({"a/1.png": bytes(2000), "a/2.png": bytes(2000), "b/1.png": bytes(1000), "b/2.png": bytes(1000)})
    monkeypatch.setenv("BIGMODEL_MAX_UNPACKED_BYTES", "5000")
    refused(data, "x.zip", "unpacks to 6,000 bytes; the limit is 5,000")
    # the directory says 6,000 bytes; were it to lie, the counting while reading stops at the limit
    monkeypatch.setattr(archive, "_checked_entries", lambda zf, label: (
        [(i, tuple(i.filename.split("/"))) for i in zf.infolist()], 0))
    with archive.Archive(data, "'x.zip'") as members:
        with pytest.raises(UploadedDataError, match="'x.zip' unpacks to more than 5,000 bytes"):
            for _ in members.members():
                pass


@pytest.mark.parametrize("evil", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "C:/evil.png",
                                  "..\\evil.png", "a\\..\\..\\evil.png"])
def test_paths_escaping_the_archive_are_refused_and_nothing_is_written(rng, tmp_path, monkeypatch, evil):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    good = {f"{c}/{i}.png": image_bytes(noise(rng, 8, 8)) for c in "ab" for i in range(2)}
    data = zip_bytes({**good, evil: image_bytes(noise(rng, 8, 8))})
    message = refused(data, "slip.zip", "'slip.zip': member")
    assert "absolute path" in message or "'..'" in message
    assert [p.name for p in tmp_path.iterdir()] == ["work"] and list(work.iterdir()) == []


def test_zip_slip_through_a_folder_entry_is_refused(rng):
    data = zip_bytes({"a/1.png": image_bytes(noise(rng, 8, 8)), "../outside/": b""})
    refused(data, "d.zip", "'..' in its path")


def test_symbolic_links_and_encrypted_members_are_refused(rng):
    def with_info(edit) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for c in "ab":
                for i in range(2):
                    z.writestr(f"{c}/{i}.png", image_bytes(noise(rng, 8, 8)))
            info = zipfile.ZipInfo("a/link.png")
            edit(info)
            z.writestr(info, b"/etc/passwd")
        return buf.getvalue()

    def link(info):
        info.external_attr = (stat.S_IFLNK | 0o777) << 16

    refused(with_info(link), "l.zip", "member 'a/link.png' is a symbolic link")
    # zipfile never writes the "encrypted" flag itself: set it in the last member's directory entry
    data = bytearray(with_info(lambda info: None))
    entry = data.rfind(b"PK\x01\x02")
    data[entry + 8] |= 0x1
    refused(bytes(data), "e.zip", "member 'a/link.png' is encrypted")


def test_nested_archives_are_refused_by_name_and_by_content(rng):
    inner, _ = class_zip(rng, {"a": 2, "b": 2})
    good = {f"{c}/{i}.png": image_bytes(noise(rng, 8, 8)) for c in "ab" for i in range(2)}
    refused(zip_bytes({**good, "a/more.zip": inner}), "n.zip", "member 'a/more.zip' is an archive inside the archive")
    refused(zip_bytes({**good, "a/sneaky.png": inner}), "n.zip", "member 'a/sneaky.png' is an archive inside")


def test_too_many_members_counted_before_the_directory_is_parsed(rng, monkeypatch):
    monkeypatch.setenv("BIGMODEL_MAX_ARCHIVE_MEMBERS", "5")
    data, _ = class_zip(rng, {"a": 3, "b": 3}, size=(8, 8))
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: (_ for _ in ()).throw(AssertionError("parsed")))
    refused(data, "many.zip", "'many.zip' holds more than 5 files; the limit is 5")


def test_over_the_upload_size_limit(rng, monkeypatch):
    data, _ = class_zip(rng, {"a": 2, "b": 2})
    monkeypatch.setenv("BIGMODEL_MAX_UPLOAD_BYTES", str(len(data) - 1))
    refused(data, "x.zip", f"'x.zip' is {len(data):,} bytes; the limit is {len(data) - 1:,}")


@pytest.mark.parametrize("members,needle", [
    ({"a/1.txt": b"hello", "a/2.png": None, "b/1.png": None, "b/2.png": None},
     "member 'a/1.txt' is not an image"),
    ({"a/1.png": b"hello, not a png", "a/2.png": None, "b/1.png": None, "b/2.png": None},
     "member 'a/1.png' is not a PNG, JPEG or BMP image"),
    ({"a/1.png": "gif", "a/2.png": None, "b/1.png": None, "b/2.png": None},
     "member 'a/1.png' is not a PNG, JPEG or BMP image"),
    ({"a/1.png": "truncated", "a/2.png": None, "b/1.png": None, "b/2.png": None},
     "member 'a/1.png' is a damaged or truncated image"),
    ({"top.png": None, "a/2.png": None, "b/1.png": None, "b/2.png": None},
     "member 'top.png' is not inside a class folder"),
    ({"a/deeper/1.png": None, "a/2.png": None, "b/1.png": None, "b/2.png": None},
     "member 'a/deeper/1.png' is in a folder inside a class folder"),
    ({"a/1.png": None, "a/2.png": None, "a/3.png": None}, "has a single class ('a')"),
    ({"a/1.png": None, "a/2.png": None, "b/1.png": None}, "class 'b' has only 1 sample"),
    ({"__MACOSX/a/._1.png": b"junk", "empty/": b""}, "holds no images"),
])
def test_bad_members_are_named(rng, members, needle):
    def content(value):
        if value is None:
            return image_bytes(noise(rng, 8, 8))
        if value == "gif":
            return image_bytes(noise(rng, 8, 8), "GIF")
        if value == "truncated":
            return image_bytes(noise(rng, 64, 64))[:300]
        return value

    refused(zip_bytes({k: content(v) for k, v in members.items()}), "bad.zip", "'bad.zip'", needle)


def test_a_bomb_image_is_refused_from_its_header_before_decoding(rng, monkeypatch):
    good = {f"{c}/{i}.png": image_bytes(noise(rng, 8, 8)) for c in "ab" for i in range(2)}
    bomb = png_header_only(100_000, 100_000)
    real_load = ImageFile.ImageFile.load

    def load(self):
        assert self.size[0] < 6000, "the bomb was decoded"
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    refused(zip_bytes({**good, "a/huge.png": png_header_only(6000, 6000)}), "b.zip",
            "member 'a/huge.png' is 6,000 x 6,000 pixels; the limit is 20,000,000 pixels per image")
    refused(zip_bytes({**good, "a/huge.png": bomb}), "b.zip", "member 'a/huge.png' declares more than",
            "the limit is 20,000,000 pixels per image")


def test_the_pixel_limit_is_tunable(rng, monkeypatch):
    monkeypatch.setenv("BIGMODEL_MAX_IMAGE_PIXELS", "1000")
    data, _ = class_zip(rng, {"a": 2, "b": 2}, size=(40, 40))
    refused(data, "x.zip", "is 40 x 40 pixels; the limit is 1,000 pixels per image")


def test_damaged_archives_and_unknown_kinds(rng):
    refused(b"this is not a zip at all", "x.zip", "'x.zip' is not a readable zip archive")
    data, _ = class_zip(rng, {"a": 2, "b": 2})
    refused(data[: len(data) // 2], "half.zip", "'half.zip' is not a readable zip archive")
    refused(data, "x.tar", "'x.tar' is not a file the playground reads", ".zip", ".npz", ".csv")
    refused(b"", "empty.zip", "'empty.zip' is empty")
    refused(data, "x.zip", "regression works on sequence CSV files", task="regression")


def test_duplicate_member_names_are_refused(rng):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        for name in ("a/1.png", "a/2.png", "b/1.png", "b/1.png"):
            z.writestr(name, image_bytes(noise(rng, 8, 8)))
    refused(buf.getvalue(), "dup.zip", "member 'b/1.png' appears twice")


# --- npz ------------------------------------------------------------------------------------------------


def test_npz_uint8_images_give_the_same_dataset_as_the_same_pngs(rng):
    data, pixels = class_zip(rng, {"0": 3, "1": 3}, size=(12, 12))
    x = np.stack(pixels["0"] + pixels["1"])
    y = np.array([0, 0, 0, 1, 1, 1])
    from_zip = read_upload(data, "a.zip")
    from_npz = read_upload(npz_bytes(x=x[:, None], y=y), "a.npz")
    np.testing.assert_array_equal(from_zip.x, from_npz.x)
    assert from_zip.name == from_npz.name  # a hash of the normalised content, not of the file


def test_npz_numbers_are_scaled_linearly_and_labels_may_be_text(rng):
    x = rng.integers(0, 17, size=(6, 8, 8)).astype(np.int64)
    x[0, 0, 0], x[1, 0, 0] = 0, 16
    up = read_upload(npz_bytes(x=x, y=np.array(["b", "a", "b", "a", "c", "c"])), "d.npz")
    np.testing.assert_allclose(up.x[:, 0], x / 16, rtol=1e-6)
    assert up.class_names == ("a", "b", "c") and up.y.tolist() == [1, 0, 1, 0, 2, 2]
    assert any("scaled linearly" in n for n in up.notes)
    floats = rng.random((4, 28, 28))
    up = read_upload(npz_bytes(x=floats, y=np.array([b"x", b"y", b"x", b"y"])), "f.npz")
    np.testing.assert_allclose(up.x[:, 0], floats, rtol=1e-7)
    assert up.class_names == ("x", "y")
    up = read_upload(npz_bytes(x=rng.random((4, 1, 50, 30)).astype(np.float32), y=np.array([[3], [5], [3], [5]])),
                     "g.npz")
    assert up.x.shape == (4, 1, 28, 28) and up.class_names == ("3", "5")


@pytest.mark.parametrize("arrays,needle", [
    ({"x": np.zeros((4, 8, 8)), "y": np.array([0.5, 1.0, 0.5, 1.0])}, "y holds floating-point numbers"),
    ({"x": np.zeros((4, 8, 8)), "y": np.array([1, 2, 1])}, "x holds 4 images but y holds 3 labels"),
    ({"x": np.zeros((4, 8, 8))}, "has no array 'y'"),
    ({"x": np.zeros((4, 8, 8)), "y": np.array([0, 1, 0, 1]), "z": np.zeros(3)}, "holds 'z.npy'"),
    ({"x": np.zeros((4, 8)), "y": np.array([0, 1, 0, 1])}, "x has shape (4, 8)"),
    ({"x": np.zeros((4, 3, 8, 8)), "y": np.array([0, 1, 0, 1])}, "x has shape (4, 3, 8, 8)"),
    ({"x": np.full((4, 8, 8), np.nan), "y": np.array([0, 1, 0, 1])}, "x holds NaN or infinite values (sample 0)"),
    ({"x": np.zeros((4, 8, 8), dtype=complex), "y": np.array([0, 1, 0, 1])}, "x holds complex128 values"),
    ({"x": np.zeros((4, 8, 8)), "y": np.array([0, 0, 0, 0])}, "has a single class ('0')"),
    ({"x": np.zeros((4, 8, 8)), "y": np.array([0, 1, 1, 1])}, "class '0' has only 1 sample"),
    ({"x": np.array([None] * 4, dtype=object), "y": np.array([0, 1, 0, 1])}, "holds Python objects"),
])
def test_bad_npz_arrays_are_named(arrays, needle):
    refused(npz_bytes(**arrays), "bad.npz", "'bad.npz'", needle)


def test_an_npy_header_declaring_more_than_it_holds_is_refused_without_allocating():
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, dtype=np.float64))
    header["shape"] = (10 ** 9, 1000, 1000)  # 8e15 bytes, were it allocated
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    fake = buf.getvalue() + bytes(64)
    members = {"x.npy": fake, "y.npy": _npy_of(np.array([0, 1]))}
    refused(zip_bytes(members), "lie.npz", "array 'x' declares shape (1000000000, 1000, 1000)", "holds 64 bytes")


def _npy_of(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def test_garbage_npz_members_are_refused():
    refused(zip_bytes({"x.npy": b"\x93NUMPY garbage", "y.npy": _npy_of(np.array([0, 1]))}), "g.npz",
            "array 'x' is not a readable .npy array")
    refused(zip_bytes({"x.npy": struct.pack("<6sBB", b"\x93NUMPY", 3, 0) + b"\x00" * 10,
                       "y.npy": _npy_of(np.array([0, 1]))}), "v.npz", "not a readable .npy array (format 3.0")

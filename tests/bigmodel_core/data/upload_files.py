"""Uploaded files made on the fly for the upload tests: PNG/JPEG/BMP images, zips, npz and CSV text."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image


def image_bytes(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    """An image file of ``pixels`` (H x W uint8 gray, or H x W x 3 colour)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def noise(rng: np.random.Generator, height: int, width: int, colour: bool = False) -> np.ndarray:
    shape = (height, width, 3) if colour else (height, width)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)  # kept as given: no sanitising of '..' or '/'
            info.compress_type = method
            z.writestr(info, data)
    return buf.getvalue()


def class_zip(rng: np.random.Generator, classes: dict[str, int], size: tuple[int, int] = (28, 28),
              wrapper: str | None = None, fmt: str = "PNG") -> tuple[bytes, dict[str, list[np.ndarray]]]:
    """A zip of class folders holding ``classes[name]`` random images each; also returns the pixels."""
    members, pixels = {}, {}
    ext = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp"}[fmt]
    for name, count in classes.items():
        pixels[name] = [noise(rng, *size) for _ in range(count)]
        for i, p in enumerate(pixels[name]):
            path = f"{name}/{i:03d}.{ext}"
            members[f"{wrapper}/{path}" if wrapper else path] = image_bytes(p, fmt)
    return zip_bytes(members), pixels


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def set_declared_size(data: bytes, size: int) -> bytes:
    """The zip ``data`` (one member) with the member's uncompressed size rewritten in both headers."""
    out = bytearray(data)
    local = out.find(b"PK\x03\x04")
    central = out.find(b"PK\x01\x02")
    struct.pack_into("<I", out, local + 22, size)  # local header: uncompressed size
    struct.pack_into("<I", out, central + 24, size)  # central directory: uncompressed size
    return bytes(out)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels, with a token amount of data."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def wide_csv(values: list[list[float]], labels: list[object]) -> str:
    head = ",".join(f"v{i}" for i in range(len(values[0]))) + ",label\n"
    return head + "".join(",".join(repr(float(v)) for v in row) + f",{lab}\n" for row, lab in zip(values, labels))


def long_csv(sequences: list[np.ndarray], labels: list[object], order: list[int] | None = None) -> str:
    """id,t,f0..,label rows for N sequences of T x F values; ``order`` shuffles the rows."""
    feats = sequences[0].shape[1]
    rows = []
    for i, (seq, lab) in enumerate(zip(sequences, labels)):
        for t, step in enumerate(seq):
            rows.append(f"s{i},{t}," + ",".join(repr(float(v)) for v in step) + f",{lab}\n")
    if order is not None:
        rows = [rows[j] for j in order]
    return "id,t," + ",".join(f"f{j}" for j in range(feats)) + ",label\n" + "".join(rows)

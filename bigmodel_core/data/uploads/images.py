"""Uploaded images: a .zip with one folder per class, or an .npz with arrays x and y.

Both end as N x 1 x H x W float32 in [0, 1], like the built-in image sets (bright strokes
are 1, the background near 0; nothing is inverted, so dark-on-white photos stay so). Colour
becomes grayscale (ITU-R 601 luma, as Pillow's "L"). When every image is square with a side
from 8 to 28 pixels, the images keep that size (the 8 x 8 digits stay 8 x 8); otherwise each
is resized to 28 x 28 (bilinear, antialiased when shrinking; a non-square image is stretched).

A zip holds class folders with PNG, JPEG or BMP files (one folder wrapping them all is fine);
each image's size is read from its header and checked against ``max_image_pixels`` before
it is decoded. An npz holds ``x`` (N x H x W or N x 1 x H x W, any numeric dtype) and ``y``
(N whole numbers or strings); its arrays are read with ``allow_pickle=False`` after their
headers are checked, so a header that declares more than its member holds is refused
instead of allocated.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from bigmodel_core.limits import current_limits

from .archive import Archive, Member
from .errors import UploadedDataError, shown
from .labels import class_names_of, encode
from .uploaded import UploadedData

OUT_SIZE = 28  # the built-in image sets' size
KEEP_SIZES = range(8, OUT_SIZE + 1)  # square images of these sides keep their size
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
FORMATS = ("PNG", "JPEG", "BMP")  # the only decoders Pillow may try on an upload
_CHUNK = 1024  # images resized at once when the whole set turns to 28 x 28
_CHUNK_PIXELS = 4_000_000  # pixels of an npz scaled and resized at once (16 MB as float32)


# ---------------------------------------------------------------------------------------
# Pixels
# ---------------------------------------------------------------------------------------


def resize(x: np.ndarray | torch.Tensor, size: int) -> np.ndarray:
    """N x H x W floats as N x size x size: bilinear, antialiased when shrinking."""
    t = torch.as_tensor(x, dtype=torch.float32).unsqueeze(1)
    shrink = t.shape[-1] > size or t.shape[-2] > size
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return out.squeeze(1).clamp_(0.0, 1.0).numpy()


def _gray(img: Image.Image) -> np.ndarray:
    """An image as H x W float32 in [0, 1]."""
    if img.mode.startswith("I"):  # 16-bit grayscale PNGs
        return np.clip(np.asarray(img, dtype=np.float32) / 65535.0, 0.0, 1.0)
    if img.mode == "F":
        return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
    return np.asarray(img.convert("L"), dtype=np.float32) / np.float32(255.0)


def decode_image(data: bytes, where: str, limit: int) -> tuple[np.ndarray, bool]:
    """One image file's pixels (H x W float32 in [0, 1]) and whether it had colour; at most ``limit`` pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked next
            img = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise UploadedDataError(f"{where} is not a PNG, JPEG or BMP image") from None
    except Image.DecompressionBombError:  # Pillow's own refusal, at twice its MAX_IMAGE_PIXELS
        raise UploadedDataError(f"{where} declares more than {Image.MAX_IMAGE_PIXELS * 2:,} pixels; the limit is "
                                f"{limit:,} pixels per image") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's header parsers raise many types on a damaged file
        raise UploadedDataError(f"{where} is a damaged image ({_reason(exc)})") from None
    with img:
        width, height = img.size
        if width * height > limit:
            raise UploadedDataError(f"{where} is {width:,} x {height:,} pixels; the limit is {limit:,} pixels "
                                    "per image")
        if width < 1 or height < 1:
            raise UploadedDataError(f"{where} has no pixels ({width} x {height})")
        colour = img.mode not in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
        try:
            if img.format == "JPEG" and max(width, height) > 2 * OUT_SIZE:
                img.draft("L", (2 * OUT_SIZE, 2 * OUT_SIZE))  # decode a photo at 1/2..1/8 scale: far less work
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # palette transparency and the like: the pixels are still right
                img.load()
                img = ImageOps.exif_transpose(img)  # a phone photo the right way up
                pixels = _gray(img)
        except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on a damaged file
            raise UploadedDataError(f"{where} is a damaged or truncated image ({_reason(exc)})") from None
    return pixels, colour


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:100] or type(exc).__name__


# ---------------------------------------------------------------------------------------
# A zip of class folders
# ---------------------------------------------------------------------------------------


def _class_of(paths: list[tuple[str, ...]], label: str) -> list[str]:
    """The class folder of every file, after dropping one folder that wraps them all."""
    inner = paths
    if paths and all(len(p) == 3 for p in paths) and len({p[0] for p in paths}) == 1:
        inner = [p[1:] for p in paths]
    classes = []
    for full, path in zip(paths, inner):
        where = f"{label}: member {shown('/'.join(full))}"
        if len(path) == 1:
            raise UploadedDataError(f"{where} is not inside a class folder; put each image in a folder named "
                                    "after its class (cat/1.png, dog/2.png)")
        if len(path) > 2:
            raise UploadedDataError(f"{where} is in a folder inside a class folder; use one folder per class with "
                                    "the images directly in it")
        if not path[-1].lower().endswith(IMAGE_EXTENSIONS):
            raise UploadedDataError(f"{where} is not an image; class folders may hold PNG, JPEG or BMP files only")
        classes.append(path[0])
    return classes


def images_from_zip(data: bytes, source: str) -> UploadedData:
    """The images of a zip of class folders; ``source`` is the file's name (for messages and the notes)."""
    label = shown(source, 60)
    with Archive(data, label) as archive:
        return _decoded(archive, label, source)


def _decoded(archive: Archive, label: str, source: str) -> UploadedData:
    if not archive.paths:
        raise UploadedDataError(f"{label} holds no images; put PNG, JPEG or BMP files in one folder per class")
    limit = current_limits().max_upload_samples
    if len(archive.paths) > limit:
        raise UploadedDataError(f"{label} holds {len(archive.paths):,} images; the limit is {limit:,}")
    folders = _class_of(archive.paths, label)
    class_names = class_names_of(folders, label, what="class folder")
    n = len(archive.paths)
    pixel_limit = current_limits().max_image_pixels  # read once: the environment lookup costs more than a small PNG
    kept: np.ndarray | None = None  # N x S x S while every image so far is square of the same side S in 8..28
    out: np.ndarray | None = None  # N x 28 x 28 once one is not
    sizes, colour = set(), 0
    for i, member in enumerate(archive.members()):  # one member's bytes at a time
        image, had_colour = decode_image(member.data, f"{label}: member {shown('/'.join(member.path))}",
                                         pixel_limit)
        colour += had_colour
        sizes.add(image.shape)
        side = image.shape[0]
        if out is None and image.shape[1] == side and side in KEEP_SIZES and (kept is None or kept.shape[1] == side):
            if kept is None:
                kept = np.empty((n, side, side), dtype=np.float32)
            kept[i] = image
            continue
        if out is None:  # from now on every image is 28 x 28, the ones so far too
            out = np.empty((n, OUT_SIZE, OUT_SIZE), dtype=np.float32)
            for start in range(0, i, _CHUNK):
                chunk = kept[start:min(i, start + _CHUNK)]
                out[start:start + len(chunk)] = chunk if chunk.shape[1] == OUT_SIZE else resize(chunk, OUT_SIZE)
            kept = None
        out[i] = image if image.shape == (OUT_SIZE, OUT_SIZE) else resize(image[None], OUT_SIZE)[0]
    notes = [f"{n:,} images in {len(class_names)} classes, one per folder."]
    if archive.skipped:
        notes.append(f"Skipped {archive.skipped} file(s) that the operating system adds to archives "
                     "(__MACOSX, .DS_Store, Thumbs.db).")
    if colour:
        notes.append(f"{colour:,} colour image(s) were converted to grayscale.")
    if out is None:
        notes.append(f"The images are {kept.shape[1]} x {kept.shape[1]} pixels and keep that size.")
        x = kept[:, None]
    else:
        x = out[:, None]
        if len(sizes) == 1:
            (height, width), = sizes
            notes.append(f"The {width} x {height} images were resized to {OUT_SIZE} x {OUT_SIZE} pixels.")
        else:
            notes.append(f"The images have {len(sizes)} different sizes, so each was resized to {OUT_SIZE} x "
                         f"{OUT_SIZE} pixels.")
    y = encode(folders, class_names)
    return UploadedData("image", "classification", x, y, class_names, source, tuple(notes))


# ---------------------------------------------------------------------------------------
# An npz of arrays x and y
# ---------------------------------------------------------------------------------------


def _npy(member: Member, label: str) -> np.ndarray:
    """An array from an .npy member, its header checked against the bytes it really has."""
    name = member.path[-1][:-4]
    where = f"{label}: array {shown(name)}"
    stream = io.BytesIO(member.data)
    try:
        version = np.lib.format.read_magic(stream)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise UploadedDataError(f"{where} is not a readable .npy array (format {version[0]}.{version[1]}; "
                                    "numpy's np.savez writes 1.0 or 2.0)")
        shape, fortran, dtype = readers[version](stream)
    except UploadedDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many types on a damaged header
        raise UploadedDataError(f"{where} is not a readable .npy array ({_reason(exc)})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise UploadedDataError(f"{where} holds Python objects or records ({dtype}); save plain numbers or text")
    count = math.prod(shape)
    offset = stream.tell()
    if count * dtype.itemsize != len(member.data) - offset:
        raise UploadedDataError(f"{where} declares shape {shape} of {dtype} ({count * dtype.itemsize:,} bytes) "
                                f"but holds {len(member.data) - offset:,} bytes")
    flat = np.frombuffer(member.data, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran else "C")


def _scaling(x: np.ndarray, label: str) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """How to bring chunks of x to float32 in [0, 1] (the same for every image), and a note saying so."""
    if x.dtype.kind == "b":
        return (lambda chunk: chunk.astype(np.float32)), "x holds booleans: False is 0, True is 1."
    if x.dtype == np.uint8:  # in float32, exactly as an 8-bit image file's pixels are
        return (lambda chunk: chunk.astype(np.float32) / np.float32(255.0),
                "x holds bytes (0 to 255), divided by 255 like 8-bit images.")
    if x.dtype.kind == "f":
        for start in range(0, len(x), _CHUNK):
            chunk = x[start:start + _CHUNK]
            bad = ~np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)
            if bad.any():
                raise UploadedDataError(f"{label}: x holds NaN or infinite values (sample {start + int(bad.argmax())})")
    low, high = float(x.min()), float(x.max())
    if low >= 0.0 and high <= 1.0:
        low, high, note = 0.0, 1.0, "x is already in [0, 1] and is kept as it is."
    else:
        note = f"x ranges from {low:g} to {high:g} and was scaled linearly to [0, 1] (the same for every image)."
    # everything divided by the largest magnitude first, so that high - low cannot overflow near 1e308
    m = max(1.0, abs(low), abs(high))
    low, high = low / m, high / m
    span = high - low if high > low else 1.0
    return (lambda chunk: np.clip((chunk.astype(np.float64) / m - low) / span, 0.0, 1.0).astype(np.float32)), note


def _labels(y: np.ndarray, label: str) -> list[str]:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UploadedDataError(f"{label}: y has shape {y.shape}; it needs one label per image (shape N)")
    kind = y.dtype.kind
    if kind in "iu":
        return [str(v) for v in y.tolist()]
    if kind == "U":
        return [v.strip() for v in y.tolist()]
    if kind == "S":
        try:
            return [v.decode("utf-8").strip() for v in y.tolist()]
        except UnicodeDecodeError:
            raise UploadedDataError(f"{label}: y holds bytes that are not UTF-8 text") from None
    if kind == "f":
        raise UploadedDataError(f"{label}: y holds floating-point numbers ({y.dtype}); class labels must be whole "
                                "numbers or text (y.astype(int))")
    raise UploadedDataError(f"{label}: y holds {y.dtype} values; class labels must be whole numbers or text")


def images_from_npz(data: bytes, source: str) -> UploadedData:
    """The images of an npz with arrays x and y; ``source`` is the file's name (for messages and the notes)."""
    label = shown(source, 60)
    arrays = {}
    with Archive(data, label) as archive:
        members = list(archive.members())
    for member in members:
        file = "/".join(member.path)
        if not file.endswith(".npy") or file[:-4] not in ("x", "y"):
            raise UploadedDataError(f"{label} holds {shown(file)}; an image .npz holds exactly two arrays, x and y "
                                    "(np.savez(f, x=images, y=labels))")
        arrays[file[:-4]] = _npy(member, label)
    for key in ("x", "y"):
        if key not in arrays:
            raise UploadedDataError(f"{label} has no array {key!r}; save x (images) and y (labels): "
                                    "np.savez(f, x=images, y=labels)")
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise UploadedDataError(f"{label}: x has shape {x.shape}; images need N x H x W or N x 1 x H x W")
    if x.dtype.kind not in "biuf":
        raise UploadedDataError(f"{label}: x holds {x.dtype} values; images need numbers")
    n, height, width = x.shape
    limit = current_limits()
    if n < 1 or height < 1 or width < 1:
        raise UploadedDataError(f"{label}: x has shape {x.shape}, which holds no pixels")
    if n > limit.max_upload_samples:
        raise UploadedDataError(f"{label}: x holds {n:,} images; the limit is {limit.max_upload_samples:,}")
    if height * width > limit.max_image_pixels:
        raise UploadedDataError(f"{label}: the images are {height:,} x {width:,} pixels; the limit is "
                                f"{limit.max_image_pixels:,} pixels per image")
    names = _labels(y, label)
    if len(names) != n:
        raise UploadedDataError(f"{label}: x holds {n:,} images but y holds {len(names):,} labels")
    class_names = class_names_of(names, label)
    scale, scale_note = _scaling(x, label)
    keep = height == width and height in KEEP_SIZES
    side = height if keep else OUT_SIZE
    images = np.empty((n, 1, side, side), dtype=np.float32)
    step = max(1, _CHUNK_PIXELS // (height * width))  # a chunk's float copy stays small whatever the image size
    for start in range(0, n, step):
        chunk = scale(x[start:start + step])
        images[start:start + len(chunk), 0] = chunk if keep else resize(chunk, OUT_SIZE)
    size_note = f"The images are {height} x {width} pixels and keep that size." if keep else \
        f"The {width} x {height} images were resized to {OUT_SIZE} x {OUT_SIZE} pixels."
    notes = (f"{n:,} images in {len(class_names)} classes.", scale_note, size_note)
    return UploadedData("image", "classification", images, encode(names, class_names),
                        class_names, source, notes)

"""Members of an uploaded .zip (or .npz), read into memory after every check on its directory.

Nothing is ever extracted to disk. Before a single member is decompressed, the archive's
central directory must pass: at most ``max_archive_members`` entries (counted from the raw
bytes too, before zipfile parses the directory), a declared unpacked size within
``max_unpacked_bytes``, no path that could leave a folder (absolute, ``..``, a drive letter,
a NUL), no encrypted member, no symbolic link, no name twice, no archive inside the archive.
While members are read, the bytes that really come out are counted against the same limits,
so a header that lies about its size gets no further than the size it declared.
"""

from __future__ import annotations

import io
import lzma
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from bigmodel_core.limits import current_limits

from .errors import UploadedDataError, shown

# What zipfile raises on a damaged archive or member, besides BadZipFile (CRC, headers, sizes).
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, NotImplementedError, RuntimeError,
               zlib.error, lzma.LZMAError)
_CENTRAL_ENTRY = b"PK\x01\x02"  # every central-directory entry starts with it
_ARCHIVE_EXTENSIONS = (".zip", ".npz", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".jar", ".whl")
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf\x27\x1c",
                  b"Rar!\x1a\x07", b"\x28\xb5\x2f\xfd")
# Files that operating systems add to archives by themselves; skipped, and counted in a note.
_SYSTEM_FILES = {".ds_store", "thumbs.db", "desktop.ini"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Member:
    path: tuple[str, ...]  # the member's name split into folders and the file name
    data: bytes


def _parts(name: str, label: str) -> tuple[str, ...]:
    """The parts of a member name, or UploadedDataError for one that could point anywhere else."""
    where = f"{label}: member {shown(name)}"
    if "\x00" in name:
        raise UploadedDataError(f"{where} has a NUL character in its name")
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        raise UploadedDataError(f"{where} has an absolute path; an archive may only hold relative paths")
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UploadedDataError(f"{where} has '..' in its path, which would point outside the archive")
    return parts


def _is_system_file(parts: tuple[str, ...]) -> bool:
    return parts[0] == "__MACOSX" or parts[-1].lower() in _SYSTEM_FILES or parts[-1].startswith("._")


def _open(data: bytes, label: str) -> zipfile.ZipFile:
    limit = current_limits().max_archive_members
    if data.count(_CENTRAL_ENTRY) > limit:
        # checked on the raw bytes: zipfile would parse the whole directory into memory first
        raise UploadedDataError(f"{label} holds more than {limit:,} files; the limit is {limit:,}")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as exc:
        raise UploadedDataError(f"{label} is not a readable zip archive ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:120]
    return text or type(exc).__name__


def _checked_entries(zf: zipfile.ZipFile, label: str) -> tuple[list[tuple[zipfile.ZipInfo, tuple[str, ...]]], int]:
    """The file entries to read (and the count of system files skipped), after every directory check."""
    lim = current_limits()
    infos = zf.infolist()
    if len(infos) > lim.max_archive_members:
        raise UploadedDataError(f"{label} holds {len(infos):,} files; the limit is {lim.max_archive_members:,}")
    declared = sum(i.file_size for i in infos)
    if declared > lim.max_unpacked_bytes:
        raise UploadedDataError(f"{label} unpacks to {declared:,} bytes; the limit is {lim.max_unpacked_bytes:,}")
    seen: set[tuple[str, ...]] = set()
    entries, skipped = [], 0
    for info in infos:
        parts = _parts(info.filename, label)
        where = f"{label}: member {shown(info.filename)}"
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UploadedDataError(f"{where} is a symbolic link; an archive may only hold plain files and folders")
        if info.flag_bits & 0x1:
            raise UploadedDataError(f"{where} is encrypted; pack the files without a password")
        if info.is_dir() or not parts:
            continue
        if parts in seen:
            raise UploadedDataError(f"{where} appears twice in the archive")
        seen.add(parts)
        if _is_system_file(parts):
            skipped += 1
            continue
        if parts[-1].lower().endswith(_ARCHIVE_EXTENSIONS):
            raise UploadedDataError(f"{where} is an archive inside the archive; put the files themselves in it")
        entries.append((info, parts))
    entries.sort(key=lambda e: e[1])
    return entries, skipped


class Archive:
    """An uploaded zip whose directory passed every check; its members are read one at a time.

    ``paths`` (sorted) are known before anything is decompressed; :meth:`members` reads them in
    that order, so only one member's bytes need be held at a time. Use it in a ``with`` block.
    """

    def __init__(self, data: bytes, label: str):
        self.label = label
        self._zip = _open(data, label)
        try:
            self._entries, self.skipped = _checked_entries(self._zip, label)
        except UploadedDataError:
            self._zip.close()
            raise
        except _ZIP_ERRORS as exc:  # a directory entry zipfile cannot describe (a garbled name or field)
            self._zip.close()
            raise UploadedDataError(f"{label} has a damaged directory ({_reason(exc)})") from None
        self.paths = [parts for _, parts in self._entries]

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()

    def members(self) -> Iterator[Member]:
        """Every file member with its bytes, counted as they come out against ``max_unpacked_bytes``."""
        limit = current_limits().max_unpacked_bytes
        total = 0
        for info, parts in self._entries:
            content = _read_member(self._zip, info, self.label, limit - total, limit)
            total += len(content)
            if content.startswith(_ARCHIVE_MAGIC):
                raise UploadedDataError(f"{self.label}: member {shown(info.filename)} is an archive inside the "
                                        "archive; put the files themselves in it")
            yield Member(parts, content)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, budget: int, limit: int) -> bytes:
    """The member's bytes, counted as they come out: never more than it declared, nor than ``budget``."""
    where = f"{label}: member {shown(info.filename)}"
    chunks, got = [], 0
    try:
        with zf.open(info) as stream:
            while True:
                chunk = stream.read(min(_CHUNK, max(0, info.file_size - got), max(0, budget - got)) + 1)
                if not chunk:
                    break
                got += len(chunk)
                if got > info.file_size:
                    raise UploadedDataError(f"{where} unpacks to more than the {info.file_size:,} bytes its "
                                            "header declares")
                if got > budget:
                    raise UploadedDataError(f"{label} unpacks to more than {limit:,} bytes; the limit is {limit:,}")
                chunks.append(chunk)
    except UploadedDataError:
        raise
    except _ZIP_ERRORS as exc:
        raise UploadedDataError(f"{where} is damaged ({_reason(exc)})") from None
    return b"".join(chunks)

"""Persisting generated images: bytes to disk, safely.

:func:`decode_b64_image` turns a ``b64_json`` payload into bytes and refuses a truncated or
corrupt one (the fault suite cuts payloads in the middle) with a :class:`CorruptImageError`
(the server's problem). :class:`ImageStore` writes images atomically (temp file in the same
directory, ``fsync``, ``os.replace``; an interrupted save, Ctrl-C included, removes its temp
file), names them by content hash so saving twice is a no-op, and turns every disk failure
into a :class:`StorageError` that names the directory and the OS reason. Nothing here touches
the network.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import mimetypes
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from langchain_imagegen.errors import CorruptImageError, StorageError

__all__ = ["ImageStore", "SavedImage", "decode_b64_image", "sniff_image_type"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The IEND chunk is always the same 12 bytes: length 0, type, and its fixed CRC.
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
# Some encoders pad after the end marker; a truncated JPEG cannot end in FFD9 (entropy-coded
# data stuffs every FF with 00), so looking a little before the end stays safe.
_JPEG_EOI_WINDOW = 32
_GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
_SVG_HEAD = 4096
_SVG_ROOT = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*"  # optional UTF-8 BOM
    rb"(?:<\?xml\b[^>]*\?>\s*)?"  # optional XML declaration
    rb"(?:(?:<!--.*?-->|<!DOCTYPE\b[^>\[]*(?:\[.*?\])?\s*>|<\?[^>]*\?>)\s*)*"  # comments etc.
    rb"<svg[\s>/]",
    re.DOTALL | re.IGNORECASE,
)
_SVG_CLOSE = re.compile(rb"</svg\s*>|<svg\b[^>]*/>\s*\Z", re.IGNORECASE)
_DATA_URL = re.compile(r"\Adata:[^,;]*(?:;[^,;]*)*;base64,", re.IGNORECASE)
_WHITESPACE = frozenset(" \t\r\n\v\f")

_FORMAT_NAMES = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "image/svg+xml": "SVG",
}
# Formats a hint may name when the bytes are not sniffable (the hint is only a fallback).
_HINT_EXTENSIONS = {
    "image/avif": "avif",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/jxl": "jxl",
}
_EXTENSION_OK = re.compile(r"\A[a-z0-9]{1,10}\Z")
_HASH_CHARS = 16
_CHUNK = 1 << 20
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def sniff_image_type(data: bytes) -> tuple[str, str] | None:
    """The ``(mime type, extension)`` of image bytes from their magic bytes, else ``None``.

    Recognises PNG, JPEG, WebP (``RIFF....WEBP``), GIF and SVG (``<svg`` or ``<?xml`` followed
    by an ``svg`` root). The extension has no leading dot (``"png"``, ``"jpg"``...).
    """
    if data.startswith(_PNG_SIGNATURE):
        return "image/png", "png"
    if data.startswith(_JPEG_SOI):
        return "image/jpeg", "jpg"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    if data.startswith(_GIF_SIGNATURES):
        return "image/gif", "gif"
    if _SVG_ROOT.match(data[:_SVG_HEAD]):
        return "image/svg+xml", "svg"
    return None


def _incompleteness(data: bytes, mime_type: str) -> str | None:
    """Why sniffed image bytes look truncated, or ``None`` when their end is where it belongs."""
    if mime_type == "image/png":
        if data.rfind(_PNG_IEND, len(_PNG_SIGNATURE)) == -1:
            return "the PNG has no IEND chunk"
    elif mime_type == "image/jpeg":
        if data.rfind(_JPEG_EOI, max(len(_JPEG_SOI), len(data) - _JPEG_EOI_WINDOW)) == -1:
            return "the JPEG has no FFD9 end marker"
    elif mime_type == "image/webp":
        riff_size = int.from_bytes(data[4:8], "little")
        if riff_size < 4 or len(data) < riff_size + 8:
            return f"the WebP RIFF header announces {riff_size + 8} bytes"
    elif mime_type == "image/gif":
        if not data.rstrip(b"\x00").endswith(b";"):
            return "the GIF has no trailer"
    elif mime_type == "image/svg+xml" and not _SVG_CLOSE.search(data[-_SVG_HEAD:]):
        return "the SVG has no closing </svg> tag"
    return None


def _strip_b64(b64: str) -> str:
    text = b64.strip()
    match = _DATA_URL.match(text)
    if match:
        text = text[match.end() :].lstrip()
    if any(ch in text for ch in _WHITESPACE):  # MIME-style line breaks
        text = "".join(text.split())
    return text


def decode_b64_image(b64: str) -> bytes:
    """Decode a base64 image (optionally a ``data:image/...;base64,`` URL), strictly.

    Raises:
        CorruptImageError: the payload is empty, has bad padding or non-base64 characters, or
            decodes to bytes that are not a complete image (a PNG without IEND, a JPEG
            without its FFD9 end marker, a WebP shorter than its RIFF header says...).
    """
    if not isinstance(b64, str):
        raise CorruptImageError(f"expected a base64 string, got {type(b64).__name__}")
    text = _strip_b64(b64)
    size = len(text)

    def corrupt(reason: str) -> CorruptImageError:
        return CorruptImageError(
            f"the server sent a truncated or corrupt base64 image ({size} bytes): {reason}"
        )

    if not text:
        raise corrupt("the payload is empty")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise corrupt(f"invalid base64 ({exc})") from exc
    del text
    kind = sniff_image_type(data)
    if kind is None:
        raise corrupt(f"the {len(data)} decoded bytes are not a PNG, JPEG, WebP, GIF or SVG")
    reason = _incompleteness(data, kind[0])
    if reason is not None:
        raise corrupt(f"{reason} ({len(data)} decoded bytes)")
    return data


@dataclass(frozen=True)
class SavedImage:
    """An image on disk: where it is, what it is, and its content hash.

    ``created`` is ``False`` when the file already existed with the same content (the save
    was a no-op); :meth:`ImageStore.discard` leaves such files alone.
    """

    path: Path
    mime_type: str
    size_bytes: int
    sha256: str
    created: bool = field(default=True, compare=False)


def _current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` is set-and-get, racy)."""
    with (
        contextlib.suppress(OSError, ValueError),
        open("/proc/self/status", encoding="ascii", errors="replace") as status,
    ):
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _file_sha256(path: Path, size: int) -> str | None:
    """The sha256 of a regular file of exactly ``size`` bytes, else ``None``."""
    try:
        if not path.is_file() or path.stat().st_size != size:
            return None
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); best effort, meaningless on Windows."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class ImageStore:
    """Saves images under one directory, atomically, named by content hash.

    Files are named ``<first 16 hex of sha256>.<ext>``, the extension sniffed from the bytes.
    The directory (and its parents) is created on the first save. A disk failure raises
    :class:`StorageError`, bytes that are not a complete image (empty ones included) raise
    :class:`CorruptImageError` (the server's problem); neither leaves a partial file behind.
    """

    def __init__(self, output_dir: str | os.PathLike[str]) -> None:
        self.output_dir: Path = Path(output_dir).expanduser().resolve()

    def __repr__(self) -> str:
        return f"ImageStore({str(self.output_dir)!r})"

    def _kind(self, data: bytes, mime_type_hint: str | None) -> tuple[str, str]:
        kind = sniff_image_type(data)
        if kind is not None:
            reason = _incompleteness(data, kind[0])
            if reason is not None:
                raise CorruptImageError(
                    f"refusing to save a truncated or corrupt {_FORMAT_NAMES[kind[0]]} image "
                    f"({len(data)} bytes) to {self.output_dir}: {reason}"
                )
            return kind
        hint = (mime_type_hint or "").split(";", 1)[0].strip().lower()
        if hint.startswith("image/") and hint not in _FORMAT_NAMES:
            guessed = mimetypes.guess_extension(hint, strict=False)
            ext = _HINT_EXTENSIONS.get(hint) or (guessed or "").lstrip(".").lower()
            if _EXTENSION_OK.match(ext):
                return hint, ext
        said = f" (declared {mime_type_hint!r})" if mime_type_hint else ""
        raise CorruptImageError(
            f"refusing to save {len(data)} bytes to {self.output_dir}: they are not a "
            f"recognisable image{said}"
        )

    def _failure(self, exc: BaseException) -> StorageError:
        error = StorageError(f"could not save image to {self.output_dir}: {_describe(exc)}")
        if isinstance(exc, OSError):
            error.errno = exc.errno
        return error

    def save(self, data: bytes, *, mime_type_hint: str | None = None) -> SavedImage:
        """Write ``data`` to ``<output_dir>/<hash16>.<ext>`` atomically and describe the file.

        ``mime_type_hint`` is only used when the bytes are not a sniffable format and the hint
        names another image type (e.g. ``image/avif``). Saving the same bytes again does not
        rewrite the file.

        Raises:
            CorruptImageError: the bytes are empty or not a complete image.
            TypeError: ``data`` is not bytes.
            StorageError: the directory cannot be created or written (the message names it
                and the OS reason; ``errno`` is copied from the OS error).
        """
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"expected image bytes, got {type(data).__name__}")
        if not data:  # what a server sent: nothing is wrong with the disk
            raise CorruptImageError(f"refusing to save an empty image to {self.output_dir}")
        mime_type, ext = self._kind(data, mime_type_hint)
        size = len(data)
        sha256 = hashlib.sha256(data).hexdigest()
        final = self.output_dir / f"{sha256[:_HASH_CHARS]}.{ext}"
        if _file_sha256(final, size) == sha256:
            return SavedImage(final, mime_type, size, sha256, created=False)

        # Named before it exists, so that an interruption anywhere (Ctrl-C included: the
        # ``finally`` runs for it too) cannot leave a temp file nobody knows of.
        tmp = self.output_dir / f".{secrets.token_hex(8)}.part"
        replaced = False
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_current_umask())  # created 0600, as mkstemp does
            os.replace(tmp, final)
            replaced = True
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            if not replaced:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        _fsync_dir(self.output_dir)
        return SavedImage(final, mime_type, size, sha256, created=True)

    async def asave(self, data: bytes, *, mime_type_hint: str | None = None) -> SavedImage:
        """:meth:`save` in a worker thread, so disk writes do not block the event loop.

        If the awaiting task is cancelled, the write still completes in its thread.
        """
        return await asyncio.to_thread(self.save, data, mime_type_hint=mime_type_hint)

    def discard(self, saved: SavedImage) -> bool:
        """Remove an image this store saved, to roll back a call that later failed.

        Returns ``True`` if the file was removed, ``False`` if there was nothing to remove
        (already gone, or the save found the file already there: it belongs to an earlier
        call). In a rollback, wrap it in ``contextlib.suppress(StorageError)``.

        Raises:
            ValueError: ``saved`` is not in this store's directory.
            StorageError: the file exists but could not be removed.
        """
        if saved.path.parent != self.output_dir:
            raise ValueError(f"{saved.path} was not saved by {self!r}")
        if not saved.created:
            return False
        try:
            saved.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            error = StorageError(f"could not remove {saved.path}: {exc}")
            error.errno = exc.errno
            raise error from exc
        return True

"""Image bytes: what they are (sniffed from magic bytes) and strict base64 decoding.

:func:`decode_b64_image` turns a ``b64_json`` payload into bytes and refuses a truncated or
corrupt one (the fault suite cuts payloads in the middle) with a :class:`CorruptImageError`
(the server's problem). :func:`image_kind` decides the type and file extension a store saves
bytes under, and refuses bytes that are not a complete image.
"""

from __future__ import annotations

import binascii
import hashlib
import mimetypes
import re
import sys

from langchain_imagegen.errors import CorruptImageError

__all__ = ["content_name", "decode_b64_image", "image_kind", "sniff_image_type"]

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


# ``base64.b64decode(text, validate=True)`` without its copy of the text into an ASCII bytes
# object (binascii reads an ASCII str in place): a 2 MB image is 2.7 MB of base64, which the
# copy doubled while the image was decoded.
if sys.version_info >= (3, 11):

    def _b64decode(text: str) -> bytes:
        return binascii.a2b_base64(text, strict_mode=True)

else:
    _BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")  # base64.b64decode's check on 3.10

    def _b64decode(text: str) -> bytes:
        if not _BASE64.fullmatch(text):
            raise binascii.Error("Non-base64 digit found")
        return binascii.a2b_base64(text)


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
        data = _b64decode(text)
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


def image_kind(data: bytes, mime_type_hint: str | None, destination: str) -> tuple[str, str]:
    """The ``(mime type, extension)`` a store saves ``data`` under.

    The type is sniffed from the bytes; ``mime_type_hint`` is only used when they are not a
    sniffable format and the hint names another image type (e.g. ``image/avif``).
    ``destination`` (a directory or ``s3://bucket/prefix``) is named in errors.

    Raises:
        TypeError: ``data`` is not bytes.
        CorruptImageError: the bytes are empty, truncated, or not a recognisable image.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"expected image bytes, got {type(data).__name__}")
    if not data:  # what a server sent: nothing is wrong with the storage
        raise CorruptImageError(f"refusing to save an empty image to {destination}")
    kind = sniff_image_type(data)
    if kind is not None:
        reason = _incompleteness(data, kind[0])
        if reason is not None:
            raise CorruptImageError(
                f"refusing to save a truncated or corrupt {_FORMAT_NAMES[kind[0]]} image "
                f"({len(data)} bytes) to {destination}: {reason}"
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
        f"refusing to save {len(data)} bytes to {destination}: they are not a "
        f"recognisable image{said}"
    )


PREVIEW_PREFIX = "preview-"
"""Names of streamed previews start with this: they sit beside the images, never mistaken
for one."""


def content_name(data: bytes, ext: str, *, preview: bool = False) -> tuple[str, str]:
    """``(sha256 hex, "<first 16 hex>.<ext>")``: the name an image is stored under, the same
    for the same bytes on every machine, so a retry or a second worker rewrites nothing new.
    A streamed preview's name starts with :data:`PREVIEW_PREFIX`."""
    sha256 = hashlib.sha256(data).hexdigest()
    prefix = PREVIEW_PREFIX if preview else ""
    return sha256, f"{prefix}{sha256[:_HASH_CHARS]}.{ext}"

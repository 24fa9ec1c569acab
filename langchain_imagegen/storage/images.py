"""Image bytes: what they are (sniffed from magic bytes) and strict base64 decoding.

:func:`decode_b64_image` turns a ``b64_json`` payload into bytes and refuses a truncated or
corrupt one (the fault suite cuts payloads in the middle) with a :class:`CorruptImageError`
(the server's problem). :func:`image_kind` decides the type and file extension a store saves
bytes under, and refuses bytes that are not a complete image (:func:`classify_image` says
why without raising). :func:`content_name` names stored images, :func:`name_segments` checks
a name relative to a store's root, and :func:`image_size` / :func:`png_has_alpha` read what an
edit needs to know from the headers, without Pillow.
"""

from __future__ import annotations

import binascii
import hashlib
import mimetypes
import re
import sys

from langchain_imagegen.errors import CorruptImageError

__all__ = [
    "PREVIEW_PREFIX",
    "classify_image",
    "content_hash_of",
    "content_name",
    "data_url_base64",
    "decode_b64_image",
    "format_name",
    "image_kind",
    "image_size",
    "is_preview_name",
    "name_segments",
    "png_has_alpha",
    "sniff_image_type",
]

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


def data_url_base64(text: str) -> str | None:
    """The base64 after the header of a ``data:[<type>][;<param>]*;base64,`` URI; ``None``
    when ``text`` is not such a URI."""
    match = _DATA_URL.match(text)
    return text[match.end() :] if match else None


def _strip_b64(b64: str) -> str:
    text = b64.strip()
    if (payload := data_url_base64(text)) is not None:
        text = payload.lstrip()
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


def classify_image(data: bytes, mime_type_hint: str | None = None) -> tuple[str, str] | str:
    """The ``(mime type, extension)`` of complete image bytes, or why they are not one.

    The type is sniffed from the bytes; ``mime_type_hint`` is only used when they are not a
    sniffable format and the hint names another image type (e.g. ``image/avif``). The reason
    (a ``str``) reads after "the bytes are ...": ``"empty"``, ``"a truncated or corrupt PNG
    (the PNG has no IEND chunk)"``, ``"not a recognisable image (declared 'text/html')"``.
    """
    if not data:
        return "empty"
    kind = sniff_image_type(data)
    if kind is not None:
        reason = _incompleteness(data, kind[0])
        if reason is not None:
            return f"a truncated or corrupt {_FORMAT_NAMES[kind[0]]} image ({reason})"
        return kind
    hint = (mime_type_hint or "").split(";", 1)[0].strip().lower()
    if hint.startswith("image/") and hint not in _FORMAT_NAMES:
        guessed = mimetypes.guess_extension(hint, strict=False)
        ext = _HINT_EXTENSIONS.get(hint) or (guessed or "").lstrip(".").lower()
        if _EXTENSION_OK.match(ext):
            return hint, ext
    said = f" (declared {mime_type_hint!r})" if mime_type_hint else ""
    return f"not a recognisable image{said}"


def format_name(mime_type: str) -> str:
    """How people name an image type: ``"PNG"``, ``"JPEG"``, ``"WebP"``; else the subtype."""
    return _FORMAT_NAMES.get(mime_type) or mime_type.rsplit("/", 1)[-1].upper()


def image_kind(data: bytes, mime_type_hint: str | None, destination: str) -> tuple[str, str]:
    """The ``(mime type, extension)`` a store saves ``data`` under (see
    :func:`classify_image`). ``destination`` (a directory or ``s3://bucket/prefix``) is named
    in errors.

    Raises:
        TypeError: ``data`` is not bytes.
        CorruptImageError: the bytes are empty, truncated, or not a recognisable image.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"expected image bytes, got {type(data).__name__}")
    if not data:  # what a server sent: nothing is wrong with the storage
        raise CorruptImageError(f"refusing to save an empty image to {destination}")
    kind = classify_image(data, mime_type_hint)
    if isinstance(kind, tuple):
        return kind
    raise CorruptImageError(f"refusing to save {len(data)} bytes to {destination}: they are {kind}")


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


# --- names in a store ---------------------------------------------------------------------

_CONTENT_NAME = re.compile(r"\A([0-9a-f]{16})\.([a-z0-9]{1,10})\Z")
_MAX_NAME_CHARS = 1024
_MAX_SEGMENT_CHARS = 255


def content_hash_of(name: str) -> str | None:
    """The 16 hex of a finished image's name (``"3f9a...c2.png"``), else ``None``: previews,
    temp files and other names are not content names."""
    match = _CONTENT_NAME.match(name)
    return match[1] if match else None


def is_preview_name(name: str) -> bool:
    """Whether the last segment of ``name`` is a streamed preview's (never a result)."""
    return name.rsplit("/", 1)[-1].startswith(PREVIEW_PREFIX)


def name_segments(name: str) -> list[str]:
    """The ``/``-separated segments of a name relative to a store's root, checked.

    Refused (``ValueError``): an empty or overlong name, an absolute one, NUL or other
    control characters, backslashes, empty segments, ``.`` and ``..``, and hidden segments
    (a leading dot: the stores' temp files, and dotfiles are never images of theirs).
    """
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME_CHARS:
        raise ValueError("an image name must be a non-empty relative name")
    if not name.isprintable() or "\\" in name:
        raise ValueError("an image name cannot hold control characters or backslashes")
    segments = name.split("/")
    for segment in segments:
        if not segment or segment.startswith(".") or len(segment) > _MAX_SEGMENT_CHARS:
            raise ValueError(
                "an image name is relative, without empty, '.', '..' or hidden segments"
            )
    return segments


# --- dimensions and transparency, read from the headers (no Pillow) -------------------------

# Start-of-frame markers carry the dimensions (ITU T.81 table B.1): every SOFn but DHT (C4),
# JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RSTn, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})
_PNG_ALPHA_COLOUR_TYPES = frozenset({4, 6})  # greyscale + alpha, RGB + alpha (PNG spec 11.2.2)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _JPEG_STANDALONE:
            at += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        if marker in _JPEG_SOF:
            if at + 9 > len(data):
                return None
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return width, height
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    # RFC 9649: the first chunk is VP8 (lossy), VP8L (lossless) or VP8X (extended).
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        return width, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a PNG, JPEG, WebP or GIF, read from its header, else ``None``."""
    kind = sniff_image_type(data)
    mime_type = kind[0] if kind else None
    if mime_type == "image/png":
        return _png_size(data)
    if mime_type == "image/jpeg":
        return _jpeg_size(data)
    if mime_type == "image/webp":
        return _webp_size(data)
    if mime_type == "image/gif" and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    return None


def png_has_alpha(data: bytes) -> bool:
    """Whether a PNG has transparency: an alpha channel (colour types 4 and 6: LA, RGBA) or a
    ``tRNS`` chunk (which comes before the first ``IDAT``). ``False`` for other bytes."""
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 26 or _png_size(data) is None:
        return False
    if data[25] in _PNG_ALPHA_COLOUR_TYPES:
        return True
    at = len(_PNG_SIGNATURE)
    while at + 8 <= len(data):
        kind = data[at + 4 : at + 8]
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        at += 12 + int.from_bytes(data[at : at + 4], "big")  # length, type, data, CRC
    return False

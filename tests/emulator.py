"""Spec-faithful loopback emulator of the OpenAI Images API (``POST /v1/images/generations``
and the multipart ``POST /v1/images/edits``).

Serves the integration tests, the benchmark and the fault/load/leak suites (and records the
docs cassettes) without any network access. Sources, cited in brackets:

* ``[API]``: the OpenAI API reference for ``POST /images/generations`` and
  ``POST /images/edits`` and its OpenAPI spec (``openai/openai-openapi``, ``openapi.yaml`` at
  commit ``f85dbe22``, 2026-08-21; excerpts in ``tests/data/openapi``), with the client
  behaviour of ``openai/openai-python``;
* ``[models]``: ``docs/models.md``, each model's sizes, qualities, limits and shutdown date,
  with its public source;
* ``[errors]``: error bodies as the API sends them: recorded (``tests/data/recorded``, see
  its SOURCES.md) or quoted verbatim in public issue reports;
* ``[recorded]``: the recorded exchanges in ``tests/data/recorded``;
* ``[Azure]``: Microsoft's Azure OpenAI image-generation how-to and REST reference;
* ``[gateways]``: how OpenAI-compatible gateways deviate (``docs/providers.md``).

Behaviour:

* routes (edits: ``.../images/edits`` beside each, see below): OpenAI
  ``/v1/images/generations`` (bearer auth), Azure deployment style
  ``/openai/deployments/{name}/images/generations?api-version=...`` and Azure v1 style
  ``/openai/v1/images/generations`` (``api-key`` header or bearer) [API, Azure], plus
  ``GET /files/<name>`` serving the images behind ``url`` responses;
* request validation is delegated to :func:`spec_validator.validate_request`, so every error is
  the body the real API sends [API];
* success bodies have the per-model shapes real responses have [API, recorded] and carry
  real image bytes (PNG, baseline JPEG, lossless WebP) of the resolved size;
* scripted faults (:class:`Fault`) come from a FIFO queue or from a ``[[fault:NAME]]`` /
  ``[[fault:NAME:ARG]]`` marker in the prompt (deterministic, also for cassette recording);
* ``stream: true`` (GPT image models; the validator answers it with 400 ``unknown_parameter``
  for DALL·E) is answered ``text/event-stream`` with chunked transfer encoding, one chunk per
  SSE event, each preceded by ``stream_interval_s`` seconds: per image ``partial_images``
  ``image_generation.partial_image`` events (previews: same size, other bytes) then one
  ``image_generation.completed`` [API]. :attr:`Emulator.stream_log` records when each event
  was written (:class:`StreamRecord`); :meth:`Emulator.stats` counts streams started,
  finished and abandoned by the client (noticed at once, also between events).

Stream fault markers (ARG in brackets; I = seconds between events, overriding the knob):
``stream_interval:S``; ``stream_cut[:K[,I]]`` (FIN mid-body after K partials, no completed
event) and ``stream_reset[:K[,I]]`` (RST); ``stream_error[:K[,I]]`` (``event: error`` with a
``server_error`` envelope after K partials) and ``stream_error_flat[:K[,I]]`` (flat
``moderation_blocked`` data, no ``event:`` line); ``stream_ignored`` (plain JSON answer);
``stream_spec_example[:I]`` (only the fields of the spec's example); ``stream_quirks[:I]``
(CRLF, ``: keep-alive`` comments, multi-line ``data:``, ``id:``/``retry:``, ``data: [DONE]``);
``stream_stall[:S[,I]]`` (S seconds of silence after the first partial; ``stop()`` ends it).
``truncated_base64``, ``invalid_json``, ``empty_data`` and ``fewer_images`` shape streams too.

Edits (``POST /v1/images/edits``, Azure ``/openai/deployments/{name}/images/edits?api-version=``
and ``/openai/v1/images/edits``, auth as for generations) [API]:

* the body is multipart/form-data (:func:`parse_multipart`, stdlib); input images come as
  ``image`` or ``image[]`` parts, one or repeated, in any mix (openai-python sends a list as
  one ``image[]`` part per file), plus an optional ``mask`` part; text parts are the fields;
* :func:`spec_validator.validate_edit_request` answers with the API's error bodies: model
  default ``gpt-image-1.5``, dall-e-3 refused, GPT image models up to 16 png/webp/jpeg images
  (declared Content-Type, then the real format by magic bytes) each under 50 MB, dall-e-2 one
  square PNG under 4 MB (with an alpha channel when there is no mask), the mask a PNG under
  4 MB with the first image's dimensions and alpha, ``input_fidelity`` high/low (not
  gpt-image-1-mini), every other field by the generation rules of the same model;
* :attr:`Emulator.received_requests` keeps each edit's :class:`ReceivedEdit` (fields, and per
  file its field name, filename, declared type, size, SHA-256, sniffed format, dimensions,
  mode);
* answers have the generation shapes of the same model (b64 and usage for GPT image models,
  with input image tokens; url or b64 for dall-e-2); the images' colour (PNG/WebP) and tag
  come from :func:`edit_digest` of the prompt and inputs, so an output shows what it was made
  from; ``stream=true`` answers ``image_edit.partial_image`` / ``image_edit.completed``
  events with the same machinery, faults and markers as generations. A body over 16 MB is
  answered 413 before any validation (the 50 MB rule is tested on the validator).

The server binds 127.0.0.1 only and never opens an outgoing connection. It accepts connections
with the listening socket's own class, so a long-lived emulator keeps working while
pytest-socket swaps ``socket.socket`` between tests.

Run ``python tests/emulator.py --port 8765`` for a foreground instance (see ``--help``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.message
import email.parser
import email.utils
import functools
import hashlib
import json
import math
import random
import re
import secrets
import selectors
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import SplitResult, parse_qs, parse_qsl, quote, urlsplit

if TYPE_CHECKING:
    from tests.spec_validator import (
        EDIT_DEFAULT_MODEL,
        EDIT_IMAGE_FIELDS,
        ApiError,
        Family,
        ImageInfo,
        UploadedFile,
        model_family,
        parse_size,
        probe_image,
        validate_edit_request,
        validate_request,
    )
else:
    try:  # the project venv puts the repo root on sys.path (editable install)
        from tests.spec_validator import (
            EDIT_DEFAULT_MODEL,
            EDIT_IMAGE_FIELDS,
            ApiError,
            Family,
            ImageInfo,
            UploadedFile,
            model_family,
            parse_size,
            probe_image,
            validate_edit_request,
            validate_request,
        )
    except ModuleNotFoundError:  # ``python tests/emulator.py`` with a bare interpreter
        from spec_validator import (
            EDIT_DEFAULT_MODEL,
            EDIT_IMAGE_FIELDS,
            ApiError,
            Family,
            ImageInfo,
            UploadedFile,
            model_family,
            parse_size,
            probe_image,
            validate_edit_request,
            validate_request,
        )

# ---- provider mode (tests/provider_emulator.py): other providers' formats -------------------
if TYPE_CHECKING:
    from tests.provider_emulator import PROVIDERS, ProviderContext, has_provider_marker
else:
    try:
        from tests.provider_emulator import PROVIDERS, ProviderContext, has_provider_marker
    except ModuleNotFoundError:  # ``python tests/emulator.py`` with a bare interpreter
        from provider_emulator import PROVIDERS, ProviderContext, has_provider_marker

__all__ = [
    "DEFAULT_API_KEY",
    "FAULT_MARKERS",
    "Emulator",
    "EmulatorStats",
    "Fault",
    "FaultKind",
    "FormPart",
    "ReceivedEdit",
    "ReceivedFile",
    "ReceivedRequest",
    "StreamRecord",
    "edit_digest",
    "encode_image",
    "main",
    "parse_multipart",
]

DEFAULT_API_KEY: Final = "sk-test-emulator"
_HOST: Final = "127.0.0.1"
_MAX_BODY_BYTES: Final = 16 * 1024 * 1024
_MAX_STORED_FILES: Final = 2048
_MAX_STORED_BYTES: Final = 256 * 1024 * 1024
_GPT_FAMILIES: Final[frozenset[str]] = frozenset({"gpt-image-1", "gpt-image-2"})

# ============================================================================================
# Image encoders (stdlib only). Solid colour so any size is cheap; verified with Pillow/libjpeg/
# libwebp while writing this module.
# ============================================================================================

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_RGB: Final = (0x2A, 0x7F, 0xBF)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 over type+data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, idat: bytes, *, rgba: bool, comment: bytes) -> bytes:
    """Assemble a PNG; the tEXt comment makes every generated image's bytes distinct."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if rgba else 2, 0, 0, 0)
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", ihdr),
            _png_chunk(b"tEXt", b"Comment\x00" + comment),
            _png_chunk(b"IDAT", idat),
            _png_chunk(b"IEND", b""),
        )
    )


@functools.lru_cache(maxsize=32)
def _solid_idat(width: int, height: int, rgba: bool, rgb: tuple[int, int, int] = _RGB) -> bytes:
    """Zlib stream of a solid image, row by row so 3840x2160 never needs 33 MB at once."""
    pixel = bytes(rgb) + (b"\x00" if rgba else b"")  # transparent background: alpha 0
    row = b"\x00" + pixel * width
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    return b"".join(parts)


@functools.lru_cache(maxsize=4)
def _noise_idat(target_bytes: int) -> tuple[int, int, bytes]:
    """Stored (uncompressed) random RGB pixels so the PNG really weighs ~``target_bytes``."""
    width = 1024
    row_bytes = 3 * width
    height = max(1, target_bytes // (row_bytes + 1))
    pixels = random.Random(target_bytes).randbytes(row_bytes * height)
    raw = b"".join(b"\x00" + pixels[i * row_bytes : (i + 1) * row_bytes] for i in range(height))
    return width, height, zlib.compress(raw, 0)


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


@functools.lru_cache(maxsize=32)
def _jpeg_scan(width: int, height: int) -> bytes:
    """Huffman-coded scan of a uniform grey (200) baseline greyscale image.

    Each 8x8 block is DC-only: the first block codes DC=72 (576 / quantiser 8, category 7),
    later blocks code a zero DC difference, and every block ends with EOB.
    """
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits = "01" + "1001000" + "0" + "000" * (blocks - 1)
    bits += "1" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return data.replace(b"\xff", b"\xff\x00")  # byte stuffing


def _jpeg(width: int, height: int, comment: bytes) -> bytes:
    """Baseline JFIF, one component, custom two-code DC table and one-code (EOB) AC table."""
    return b"".join(
        (
            b"\xff\xd8",
            _jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _jpeg_segment(0xFE, comment),
            _jpeg_segment(0xDB, b"\x00" + bytes([8] + [1] * 63)),
            _jpeg_segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"),
            _jpeg_segment(0xC4, b"\x00" + bytes([0, 2] + [0] * 14) + bytes([0, 7])),
            _jpeg_segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00"),
            _jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"),
            _jpeg_scan(width, height),
            b"\xff\xd9",
        )
    )


class _LsbBits:
    """LSB-first bit writer, the packing VP8L uses."""

    def __init__(self) -> None:
        self._value = 0
        self._count = 0

    def put(self, value: int, nbits: int) -> None:
        self._value |= value << self._count
        self._count += nbits

    def to_bytes(self) -> bytes:
        return self._value.to_bytes((self._count + 7) // 8, "little")


@functools.lru_cache(maxsize=32)
def _webp(width: int, height: int, transparent: bool, rgb: tuple[int, int, int] = _RGB) -> bytes:
    """Lossless (VP8L) WebP of one colour: five single-symbol prefix codes, zero data bits."""
    alpha = 0 if transparent else 0xFF
    bits = _LsbBits()
    bits.put(0x2F, 8)  # VP8L signature
    bits.put(width - 1, 14)
    bits.put(height - 1, 14)
    bits.put(1 if transparent else 0, 1)  # alpha_is_used hint
    bits.put(0, 3)  # version
    bits.put(0, 1)  # no transform
    bits.put(0, 1)  # no colour cache
    bits.put(0, 1)  # no meta prefix codes
    for symbol in (rgb[1], rgb[0], rgb[2], alpha):  # green, red, blue, alpha
        bits.put(1, 1)  # simple code
        bits.put(0, 1)  # one symbol
        bits.put(1, 1)  # 8-bit symbol
        bits.put(symbol, 8)
    bits.put(0b0001, 4)  # distance code: simple, one symbol, 1-bit symbol 0
    data = bits.to_bytes()
    chunk = b"VP8L" + struct.pack("<I", len(data)) + data + b"\x00" * (len(data) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def encode_image(
    output_format: str,
    width: int,
    height: int,
    *,
    transparent: bool = False,
    tag: str = "",
    pad_to_bytes: int | None = None,
    rgb: tuple[int, int, int] = _RGB,
) -> bytes:
    """Real image bytes in ``output_format`` (png/jpeg/webp).

    ``pad_to_bytes`` (PNG only) swaps in random pixels sized to roughly that many bytes, for
    memory benchmarks; the dimensions then follow the payload, not ``width``/``height``.
    ``rgb`` is the solid colour of PNG and WebP images (the JPEG is always grey; its ``tag``
    comment keeps the bytes distinct).
    """
    comment = tag.encode("ascii", "replace")
    if output_format == "jpeg":
        return _jpeg(width, height, comment or b"emulator")
    if output_format == "webp":
        return _webp(width, height, transparent, rgb)
    if pad_to_bytes:
        noise_width, noise_height, idat = _noise_idat(pad_to_bytes)
        return _png(noise_width, noise_height, idat, rgba=False, comment=comment)
    return _png(
        width,
        height,
        _solid_idat(width, height, transparent, rgb),
        rgba=transparent,
        comment=comment,
    )


# ============================================================================================
# Canned bodies (verbatim where the API's body is known [errors])
# ============================================================================================

_OPENAI_MISSING_KEY: Final = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
    "(with blank username) if you're accessing the API from your browser and are prompted for "
    "a username. You can obtain an API key from https://platform.openai.com/account/api-keys."
)
_AZURE_BAD_KEY: Final = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
_BAD_JSON: Final = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please contact "
    "us through our help center at help.openai.com.)"
)
_SAFETY_DALLE: Final = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text "
    "that is not allowed by our safety system."
)
# Error events inside a stream. No recorded images stream error is known (UNVERIFIED), so both
# shapes a client must survive are offered: the usual ``error`` envelope inside the event, and a
# flat ``code``/``message`` object (the shape of the Responses API's ``error`` event) carrying
# the images moderation code.
_STREAM_SERVER_ERROR: Final[Mapping[str, Any]] = {
    "type": "error",
    "error": {
        "type": "server_error",
        "code": "server_error",
        "message": "The server had an error processing your request.",
        "param": None,
    },
}
_STREAM_MODERATION_FLAT: Final[Mapping[str, Any]] = {
    "type": "error",
    "code": "moderation_blocked",
    "message": "Your request was rejected by the safety system.",
    "param": None,
}
_CLOUDFLARE_502: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _openai_error(
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """[API] standard envelope."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _mask_key(key: str) -> str:
    """OpenAI echoes short keys verbatim (``fake_key`` [errors]) and masks long ones."""
    if len(key) <= 12:
        return key
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def _invalid_api_key_body(key: str) -> dict[str, Any]:
    """[errors] verbatim 401 body (recorded)."""
    return _openai_error(
        f"Incorrect API key provided: {_mask_key(key)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


# ============================================================================================
# Faults
# ============================================================================================

FaultKind = Literal[
    "http",  # answer with a fixed status/body/headers instead of generating
    "connection_reset",  # read the request, then close with RST (SO_LINGER 0), no answer
    "connection_close",  # read the request, then close cleanly (FIN), no answer
    "read_timeout",  # sleep ``seconds`` and then answer normally
    "invalid_json",  # 200 whose JSON body is cut in half
    "empty_data",  # 200 with ``data: []``
    "fewer_images",  # 200 with ``count`` fewer images than asked
    "truncated_base64",  # b64_json (or the served file behind a url) cut in the middle
    "url_instead_of_b64",  # gateway that returns data[].url for a GPT image model
    # ``stream: true`` only (a request that is not streamed is answered normally):
    "stream_interval",  # events spaced by ``interval_s`` instead of the emulator's knob
    "stream_cut",  # after ``count`` partial events the connection closes (FIN) mid-body
    "stream_reset",  # the same, closed with RST
    "stream_error",  # after ``count`` partials an ``event: error`` carrying ``body``
    "stream_error_flat",  # the same without an ``event:`` line
    "stream_ignored",  # gateway that ignores ``stream`` and answers the plain JSON body
    "stream_spec_example",  # events shaped like the spec's example (fewer fields)
    "stream_quirks",  # CRLF, comments, multi-line data, id:/retry: lines, ``data: [DONE]``
    "stream_stall",  # silence for ``seconds`` after the first partial event
]
_PRE_KINDS: Final[frozenset[str]] = frozenset(
    {"http", "connection_reset", "connection_close", "read_timeout"}
)


def _json_bytes(payload: object, *, pretty: bool) -> bytes:
    """Errors are pretty-printed (indent 2), successes compact: matches recorded lengths."""
    if pretty:
        return json.dumps(payload, indent=2).encode()
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour for one generation request. Build with the classmethods.

    ``body`` may contain the literal ``{request_id}``; it is replaced by the reply's
    ``x-request-id`` (real moderation messages quote the request id).
    """

    name: str
    kind: FaultKind
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    count: int = 1
    interval_s: float | None = None
    """Streamed answers: seconds between events (overrides ``Emulator.stream_interval_s``)."""

    # ---- generic ------------------------------------------------------------------------
    @classmethod
    def http(
        cls,
        status: int,
        body: Mapping[str, Any] | str | bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        name: str = "http",
    ) -> Fault:
        """Any status with a JSON (mapping), text or raw body and extra headers."""
        if isinstance(body, Mapping):
            raw, default_type = _json_bytes(dict(body), pretty=True), "application/json"
        elif isinstance(body, str):
            raw, default_type = body.encode(), "text/plain; charset=utf-8"
        else:
            raw, default_type = body, "application/json"
        return cls(
            name=name,
            kind="http",
            status=status,
            body=raw,
            content_type=content_type or default_type,
            headers=tuple((headers or {}).items()),
        )

    # ---- transport ----------------------------------------------------------------------
    @classmethod
    def connection_reset(cls) -> Fault:
        """Close the socket with RST after reading the request."""
        return cls(name="connection_reset", kind="connection_reset")

    @classmethod
    def connection_close(cls) -> Fault:
        """Close the socket cleanly after reading the request, without any answer."""
        return cls(name="connection_close", kind="connection_close")

    @classmethod
    def read_timeout(cls, seconds: float = 5.0) -> Fault:
        """Sleep ``seconds`` before answering normally (client read timeouts)."""
        return cls(name="read_timeout", kind="read_timeout", seconds=seconds)

    # ---- retryable statuses [API, errors] --------------------------------------
    @classmethod
    def rate_limit(
        cls, retry_after: float | None = None, retry_after_ms: int | None = None
    ) -> Fault:
        """[errors] 429 ``rate_limit_exceeded`` (verbatim shape; "…" parts filled in)."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        body = {
            "error": {
                "code": "rate_limit_exceeded",
                "message": "Rate limit exceeded for images per minute in organization "
                "org-emulator. Limit: 5/1min. Current: 6/1min. Please visit "
                "https://platform.openai.com/docs/guides/rate-limits to learn how to "
                "increase your rate limit.",
                "param": None,
                "type": "requests",
            }
        }
        return cls.http(429, body, headers=headers, name="rate_limit")

    @classmethod
    def cloudflare_1015(cls, retry_after: int = 54749) -> Fault:
        """[errors] Cloudflare edge block: 429 text/plain ``error code: 1015``."""
        return cls.http(
            429,
            "error code: 1015",
            headers={"retry-after": str(retry_after)},
            content_type="text/plain; charset=UTF-8",
            name="cloudflare_1015",
        )

    @classmethod
    def server_error(cls) -> Fault:
        """500 with OpenAI's generic server_error envelope (no recorded or reported body known)."""
        body = _openai_error(
            "The server had an error while processing your request. Sorry about that!",
            type_="server_error",
        )
        return cls.http(500, body, name="server_error")

    @classmethod
    def service_unavailable(cls, retry_after: float | None = None) -> Fault:
        """503 overloaded (no recorded or reported body known)."""
        headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
        body = _openai_error("The server is overloaded or not ready yet.", type_="server_error")
        return cls.http(503, body, headers=headers, name="service_unavailable")

    @classmethod
    def bad_gateway(cls) -> Fault:
        """502 with a Cloudflare HTML page instead of JSON."""
        return cls.http(502, _CLOUDFLARE_502, content_type="text/html", name="bad_gateway")

    # ---- non-retryable 4xx [errors, Azure] ---------------------------------------------------
    @classmethod
    def moderation_blocked(
        cls, stage: str = "input", categories: Sequence[str] = ("sexual",)
    ) -> Fault:
        """[errors] GPT-image 400 ``moderation_blocked`` with ``moderation_details``."""
        cats = ", ".join(categories)
        body = {
            "error": {
                "message": "Your request was rejected by the safety system. If you believe "
                "this is an error, contact us at help.openai.com and include the request ID "
                f"{{request_id}}. safety_violations=[{cats}].",
                "type": "image_generation_user_error",
                "param": None,
                "code": "moderation_blocked",
                "moderation_details": {"moderation_stage": stage, "categories": list(categories)},
            }
        }
        return cls.http(400, body, name="moderation_blocked")

    @classmethod
    def content_policy_violation(cls) -> Fault:
        """[errors] DALL·E 400 ``content_policy_violation`` (verbatim)."""
        body = {
            "error": {
                "code": "content_policy_violation",
                "message": _SAFETY_DALLE,
                "param": None,
                "type": "invalid_request_error",
            }
        }
        return cls.http(400, body, name="content_policy_violation")

    @classmethod
    def azure_content_filter(cls) -> Fault:
        """[Azure] Azure 400 with ``inner_error`` ResponsibleAIPolicyViolation (verbatim)."""
        body = {
            "error": {
                "code": "content_policy_violation",
                "inner_error": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_results": {"jailbreak": {"detected": False, "filtered": False}},
                },
                "message": _SAFETY_DALLE,
                "type": "invalid_request_error",
            }
        }
        return cls.http(400, body, name="azure_content_filter")

    @classmethod
    def azure_legacy_content_filter(cls) -> Fault:
        """[Azure] legacy Azure shape: 200, no envelope, ``created`` next to ``error``."""
        body = {
            "created": 1698435368,
            "error": {
                "code": "contentFilter",
                "message": "Your task failed as a result of our safety system.",
            },
        }
        return cls.http(200, body, name="azure_legacy_content_filter")

    @classmethod
    def billing_hard_limit(cls) -> Fault:
        """[errors] 400 (not 429) ``billing_hard_limit_reached`` (verbatim)."""
        body = {
            "error": {
                "code": "billing_hard_limit_reached",
                "message": "Billing hard limit has been reached",
                "param": None,
                "type": "invalid_request_error",
            }
        }
        return cls.http(400, body, name="billing_hard_limit")

    @classmethod
    def org_not_verified(cls, model: str = "gpt-image-1") -> Fault:
        """[errors] 403 "organization must be verified" (verbatim)."""
        body = _openai_error(
            f"Your organization must be verified to use the model `{model}`. Please go to: "
            "https://platform.openai.com/settings/organization/general and click on Verify "
            "Organization. If you just verified, it can take up to 15 minutes for access to "
            "propagate."
        )
        return cls.http(403, body, name="org_not_verified")

    # ---- malformed "successes" [gateways] -------------------------------------
    @classmethod
    def error_in_200(cls, body: Mapping[str, Any] | None = None) -> Fault:
        """200 whose JSON is ``{"error": {...}}`` (gateways, [gateways])."""
        payload = body or _openai_error(
            "The server had an error while processing your request. Sorry about that!",
            type_="server_error",
        )
        return cls.http(200, payload, name="error_in_200")

    @classmethod
    def error_without_envelope(cls, status: int = 400, message: str | None = None) -> Fault:
        """[gateways] relay body ``{"message": ...}`` with no ``error`` wrapper."""
        text = message or (
            "Your request was rejected as a result of our safety system. (request id: {request_id})"
        )
        return cls.http(status, {"message": text}, name="error_without_envelope")

    @classmethod
    def invalid_json(cls) -> Fault:
        """200 ``application/json`` whose body is a success payload cut in half."""
        return cls(name="invalid_json", kind="invalid_json")

    @classmethod
    def empty_data(cls) -> Fault:
        """200 with ``data: []``."""
        return cls(name="empty_data", kind="empty_data")

    @classmethod
    def fewer_images(cls, missing: int = 1) -> Fault:
        """200 with ``missing`` fewer images than ``n`` (never below zero)."""
        return cls(name="fewer_images", kind="fewer_images", count=missing)

    @classmethod
    def truncated_base64(cls) -> Fault:
        """``b64_json`` cut mid-way (for url responses the served file is cut instead)."""
        return cls(name="truncated_base64", kind="truncated_base64")

    @classmethod
    def url_instead_of_b64(cls) -> Fault:
        """Return ``data[].url`` even where ``b64_json`` is expected (GPT image via gateway)."""
        return cls(name="url_instead_of_b64", kind="url_instead_of_b64")

    # ---- streaming (``stream: true``) [API] ---------------------------------------------
    # Each applies to a streamed request only; ``interval_s`` overrides the emulator's
    # ``stream_interval_s`` for that request. "After K partials" means right after the K-th
    # partial_image event, or before the first completed event if fewer come before it.
    @classmethod
    def stream_interval(cls, seconds: float) -> Fault:
        """A normal stream whose events are ``seconds`` apart."""
        return cls(name="stream_interval", kind="stream_interval", interval_s=seconds)

    @classmethod
    def stream_cut(
        cls, after_partials: int = 1, *, reset: bool = False, interval_s: float | None = None
    ) -> Fault:
        """Close the connection mid-body after ``after_partials`` partial events: no completed
        event, no terminating chunk (FIN, or RST with ``reset``)."""
        kind: FaultKind = "stream_reset" if reset else "stream_cut"
        return cls(name=kind, kind=kind, count=after_partials, interval_s=interval_s)

    @classmethod
    def stream_error(
        cls,
        after_partials: int = 1,
        payload: Mapping[str, Any] | None = None,
        *,
        interval_s: float | None = None,
    ) -> Fault:
        """After ``after_partials`` partials, ``event: error`` with ``payload`` (default: a
        ``server_error`` envelope), then the stream ends cleanly."""
        data = _json_bytes(dict(payload or _STREAM_SERVER_ERROR), pretty=False)
        return cls(
            name="stream_error",
            kind="stream_error",
            body=data,
            count=after_partials,
            interval_s=interval_s,
        )

    @classmethod
    def stream_error_flat(
        cls,
        after_partials: int = 1,
        payload: Mapping[str, Any] | None = None,
        *,
        interval_s: float | None = None,
    ) -> Fault:
        """Like :meth:`stream_error` but no ``event:`` line and, by default, a flat
        ``moderation_blocked`` payload (``code``/``message`` at top level, no envelope)."""
        data = _json_bytes(dict(payload or _STREAM_MODERATION_FLAT), pretty=False)
        return cls(
            name="stream_error_flat",
            kind="stream_error_flat",
            body=data,
            count=after_partials,
            interval_s=interval_s,
        )

    @classmethod
    def stream_ignored(cls) -> Fault:
        """A gateway that ignores ``stream``: the plain JSON body a non-streamed request gets."""
        return cls(name="stream_ignored", kind="stream_ignored")

    @classmethod
    def stream_spec_example(cls, *, interval_s: float | None = None) -> Fault:
        """Events with only the fields of the spec's own streaming example: partials carry
        ``type``, ``b64_json``, ``partial_image_index``; completed ``type``, ``b64_json``,
        ``usage``."""
        return cls(name="stream_spec_example", kind="stream_spec_example", interval_s=interval_s)

    @classmethod
    def stream_quirks(cls, *, interval_s: float | None = None) -> Fault:
        """Valid but unusual SSE framing (WHATWG HTML, server-sent events): CRLF line ends,
        ``: keep-alive`` comments between events, ``id:`` and ``retry:`` lines, ``data:``
        without a space on partial events, the first partial and the completed event
        pretty-printed over several ``data:`` lines, and a final ``data: [DONE]``."""
        return cls(name="stream_quirks", kind="stream_quirks", interval_s=interval_s)

    @classmethod
    def stream_stall(cls, seconds: float = 5.0, *, interval_s: float | None = None) -> Fault:
        """Silence for ``seconds`` after the first partial event (before the completed event
        when there is none), then carry on; :meth:`Emulator.stop` ends the wait."""
        return cls(name="stream_stall", kind="stream_stall", seconds=seconds, interval_s=interval_s)

    # ---- prompt markers -----------------------------------------------------------------
    @classmethod
    def from_marker(cls, name: str, arg: str | None = None) -> Fault:
        """Build the fault named in a ``[[fault:NAME]]`` / ``[[fault:NAME:ARG]]`` marker.

        ARG is: seconds for rate_limit / service_unavailable (Retry-After) and read_timeout,
        the stage for moderation_blocked, the missing count for fewer_images, the status for
        ``http`` (empty body). Stream markers take ``K[,I]`` (stream_cut, stream_reset,
        stream_error, stream_error_flat: K partials first, default 1), ``S[,I]``
        (stream_stall: S seconds of silence, default 5), ``S`` (stream_interval) or ``I``
        (stream_spec_example, stream_quirks), where I is the seconds between events.
        Raises KeyError for an unknown name.
        """
        return FAULT_MARKERS[name](arg)


def _float_arg(arg: str | None, default: float | None) -> float | None:
    return default if not arg else float(arg)


def _stream_args(arg: str | None) -> tuple[str | None, float | None]:
    """``"K"`` or ``"K,I"`` -> (K, interval seconds or None)."""
    first, _, interval = (arg or "").partition(",")
    return first or None, _float_arg(interval, None)


def _after_marker(build: Callable[..., Fault]) -> Callable[[str | None], Fault]:
    """Marker constructor for the "after K partials" stream faults."""

    def make(arg: str | None) -> Fault:
        count, interval = _stream_args(arg)
        return build(int(count or "1"), interval_s=interval)

    return make


def _stall_marker(arg: str | None) -> Fault:
    seconds, interval = _stream_args(arg)
    return Fault.stream_stall(_float_arg(seconds, 5.0) or 0.0, interval_s=interval)


FAULT_MARKERS: Final[Mapping[str, Callable[[str | None], Fault]]] = {
    "http": lambda a: Fault.http(int(a or "500")),
    "connection_reset": lambda a: Fault.connection_reset(),
    "connection_close": lambda a: Fault.connection_close(),
    "read_timeout": lambda a: Fault.read_timeout(_float_arg(a, 5.0) or 0.0),
    "rate_limit": lambda a: Fault.rate_limit(retry_after=_float_arg(a, None)),
    "cloudflare_1015": lambda a: Fault.cloudflare_1015(),
    "server_error": lambda a: Fault.server_error(),
    "service_unavailable": lambda a: Fault.service_unavailable(_float_arg(a, None)),
    "bad_gateway": lambda a: Fault.bad_gateway(),
    "moderation_blocked": lambda a: Fault.moderation_blocked(a or "input"),
    "content_policy_violation": lambda a: Fault.content_policy_violation(),
    "azure_content_filter": lambda a: Fault.azure_content_filter(),
    "azure_legacy_content_filter": lambda a: Fault.azure_legacy_content_filter(),
    "billing_hard_limit": lambda a: Fault.billing_hard_limit(),
    "org_not_verified": lambda a: Fault.org_not_verified(),
    "error_in_200": lambda a: Fault.error_in_200(),
    "error_without_envelope": lambda a: Fault.error_without_envelope(),
    "invalid_json": lambda a: Fault.invalid_json(),
    "empty_data": lambda a: Fault.empty_data(),
    "fewer_images": lambda a: Fault.fewer_images(int(a or "1")),
    "truncated_base64": lambda a: Fault.truncated_base64(),
    "url_instead_of_b64": lambda a: Fault.url_instead_of_b64(),
    "stream_interval": lambda a: Fault.stream_interval(_float_arg(a, 0.0) or 0.0),
    "stream_cut": _after_marker(Fault.stream_cut),
    "stream_reset": _after_marker(functools.partial(Fault.stream_cut, reset=True)),
    "stream_error": _after_marker(Fault.stream_error),
    "stream_error_flat": _after_marker(Fault.stream_error_flat),
    "stream_ignored": lambda a: Fault.stream_ignored(),
    "stream_spec_example": lambda a: Fault.stream_spec_example(interval_s=_float_arg(a, None)),
    "stream_quirks": lambda a: Fault.stream_quirks(interval_s=_float_arg(a, None)),
    "stream_stall": _stall_marker,
}
"""Marker name -> constructor taking the optional ARG string."""

_MARKER_RE: Final = re.compile(r"\[\[fault:([a-z0-9_]+)(?::([^\]]*))?\]\]")


# ============================================================================================
# Records and stats
# ============================================================================================


@dataclass(frozen=True)
class ReceivedFile:
    """One file part of an edit request: what was declared and what the bytes are."""

    field: str
    """The part's form name: ``image``, ``image[]``, ``mask`` (or whatever was sent)."""
    filename: str | None
    content_type: str | None
    """The part's declared Content-Type (None when the part had none)."""
    size: int
    sha256: str
    """Hex SHA-256 of the bytes."""
    format: str | None
    """Sniffed from the bytes: ``png``, ``jpeg``, ``webp``, or None (not an image we read)."""
    width: int | None
    height: int | None
    mode: str | None
    """PIL-style mode (``RGB``, ``RGBA``, ``L``, ``LA``, ``P``, ``CMYK``) from the header."""
    has_alpha: bool = False
    """Alpha channel, or PNG ``tRNS`` transparency."""


@dataclass(frozen=True)
class ReceivedEdit:
    """The multipart body of an edit request, as parsed (see :attr:`ReceivedRequest.edit`)."""

    content_type: str
    """The request's Content-Type header (with its boundary)."""
    fields: tuple[tuple[str, str], ...]
    """Text parts, in order, repeated names kept (``ReceivedRequest.body`` keeps the last)."""
    files: tuple[ReceivedFile, ...]
    """File parts, in order."""
    digest: str
    """:func:`edit_digest` of the prompt and input files: the edited images' PNG/WebP colour is
    its first three bytes and their ``tEXt``/COM tag starts ``edit-<first 16 hex digits>-``."""
    parsed: bool = True
    """False when the body was not multipart/form-data the emulator could read."""

    @property
    def images(self) -> tuple[ReceivedFile, ...]:
        """The input images (``image`` and ``image[]`` parts), in the order sent."""
        return tuple(upload for upload in self.files if upload.field in EDIT_IMAGE_FIELDS)

    @property
    def mask(self) -> ReceivedFile | None:
        return next((upload for upload in self.files if upload.field == "mask"), None)


@dataclass(frozen=True)
class ReceivedRequest:
    """One generation or edit request as it reached the emulator."""

    path: str
    headers: Mapping[str, str]
    body: dict[str, Any]
    """As sent; ``{"__unparseable__": text}`` when it was not a JSON object (so that
    ``is_valid`` rejects it). For an edit: its text fields (the last of repeated names), as
    strings."""
    model: str | None = None
    """Azure: the model the deployment resolved to (replaces ``body["model"]``)."""
    edit: ReceivedEdit | None = None
    """Set for ``/images/edits`` requests: fields and files as parsed."""
    received_at: float = field(default_factory=time.monotonic)
    """When the request had been read (``time.monotonic()``, the system-wide clock): rate
    limits are checked against these."""

    @property
    def is_edit(self) -> bool:
        return self.edit is not None

    @property
    def effective_body(self) -> dict[str, Any]:
        """The body as validated (Azure deployment mapped to its model)."""
        if self.model is None:
            return self.body
        return {**self.body, "model": self.model}


@dataclass(frozen=True)
class EmulatorStats:
    """Snapshot of the counters (for load and leak tests)."""

    requests_received: int
    generation_requests: int
    images_produced: int
    open_connections: int
    peak_connections: int
    connections_accepted: int
    faults_applied: int
    internal_errors: int
    responses_by_status: Mapping[int, int]
    streams_started: int = 0
    """Streamed answers whose status line and headers went out."""
    streams_finished: int = 0
    """Streamed answers carried out to their scripted end (a scripted cut counts)."""
    streams_abandoned: int = 0
    """Streamed answers the client went away from before their end (a write failed, or the
    client closed while the emulator waited between events)."""
    stream_events_written: int = 0
    """SSE events (data-carrying, comments excluded) handed to the socket."""
    edit_requests: int = 0
    """Requests to an ``/images/edits`` route (not counted in ``generation_requests``)."""
    peak_requests_in_flight: int = 0
    """The most requests being handled at once (read, not yet answered): for throughput
    benchmarks, how much concurrency a client really achieved."""


@dataclass(frozen=True)
class StreamRecord:
    """One step of a streamed answer, as carried out (see :attr:`Emulator.stream_log`)."""

    request_id: str
    """The answer's ``x-request-id``."""
    what: str
    """The SSE event's type (``image_generation.partial_image``, ``image_generation.completed``,
    ``error``) or one of: ``headers`` (status line and headers), ``comment``, ``[DONE]``,
    ``end`` (terminating chunk), ``cut`` (closed mid-body by a fault), ``abandoned`` (the client
    went away), ``stopped`` (:meth:`Emulator.stop` during the stream)."""
    at: float
    """``time.monotonic()`` just before the bytes were handed to the socket, or when the
    outcome (cut, abandoned, stopped) was noticed."""
    nbytes: int = 0
    """Bytes of the SSE frame (chunk framing excluded)."""


@dataclass
class _Counters:
    requests_received: int = 0
    generation_requests: int = 0
    images_produced: int = 0
    open_connections: int = 0
    peak_connections: int = 0
    connections_accepted: int = 0
    faults_applied: int = 0
    internal_errors: int = 0
    responses_by_status: dict[int, int] = field(default_factory=dict)
    streams_started: int = 0
    streams_finished: int = 0
    streams_abandoned: int = 0
    stream_events_written: int = 0
    edit_requests: int = 0
    requests_in_flight: int = 0
    peak_requests_in_flight: int = 0


@dataclass(frozen=True)
class _Send:
    """Stream step: write one SSE frame (or comment) as its own chunk."""

    data: bytes
    what: str
    is_event: bool = True


@dataclass(frozen=True)
class _Pause:
    """Stream step: wait, watching for the client going away and for stop()."""

    seconds: float


@dataclass(frozen=True)
class _Hangup:
    """Stream step: close mid-body (FIN, or RST with ``reset``)."""

    reset: bool


_StreamStep = _Send | _Pause | _Hangup


@dataclass
class _Reply:
    """What the handler should do: send a response, stream one, or drop the connection."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: Literal["send", "reset", "close"] = "send"
    stream: tuple[_StreamStep, ...] | None = None
    """Set for a streamed answer: sent with chunked transfer encoding, one chunk per step."""
    request_id: str = ""


@dataclass(frozen=True)
class _Route:
    kind: Literal["openai", "azure_deployment", "azure_v1"]
    deployment: str | None = None
    operation: Literal["generations", "edits"] = "generations"


@dataclass(frozen=True)
class _StoredFile:
    data: bytes
    content_type: str
    expires_at: float


_ROUTES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"/v1/images/(generations|edits)/?"), "openai"),
    (re.compile(r"/openai/deployments/([^/]+)/images/(generations|edits)/?"), "azure_deployment"),
    (re.compile(r"/openai/v1/images/(generations|edits)/?"), "azure_v1"),
)


def _match_route(path: str) -> _Route | None:
    for pattern, kind in _ROUTES:
        match = pattern.fullmatch(path)
        if match is not None:
            *deployment, operation = match.groups()
            deployment_name = deployment[0] if deployment else None
            return _Route(cast(Any, kind), deployment_name, cast(Any, operation))
    return None


def _bearer(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _json_reply(status: int, payload: object, headers: Iterable[tuple[str, str]] = ()) -> _Reply:
    return _Reply(status, _json_bytes(payload, pretty=status >= 400), headers=list(headers))


def _error_reply(error: ApiError) -> _Reply:
    return _json_reply(error.status, error.body)


# ============================================================================================
# Response building helpers (pure)
# ============================================================================================

# [API] observed output tokens per 1024x1024 image; scaled by pixel count.
_TOKENS_PER_MEGAPIXEL: Final[Mapping[str, int]] = {"low": 272, "medium": 1056, "high": 4160}


def _resolved_dims(family: Family, size: object) -> tuple[int, int]:
    """Concrete size the image gets. ``auto``/absent -> 1024x1024 for every family [models]."""
    if isinstance(size, str):
        dims = parse_size(size)
        if dims is not None:
            return dims
    return 1024, 1024


def _resolved_quality(quality: object, n: int) -> str:
    """[models, recorded] ``auto`` resolves to ``high`` for n=1 and ``medium`` for n>1."""
    if quality in _TOKENS_PER_MEGAPIXEL:
        return str(quality)
    return "high" if n == 1 else "medium"


def _usage(prompt: str, n: int, quality: str, width: int, height: int) -> dict[str, Any]:
    """[API] ImageGenUsage with plausible numbers (11 input tokens for a short prompt)."""
    text_tokens = math.ceil(len(prompt) / 4) + 5
    input_tokens = text_tokens * n
    per_image = round(_TOKENS_PER_MEGAPIXEL[quality] * width * height / (1024 * 1024))
    output_tokens = per_image * n
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": input_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _azure_filter_results() -> dict[str, Any]:
    """[Azure] per-image Azure DALL·E extras (all clear)."""
    safe = {"severity": "safe", "filtered": False}
    content = {key: dict(safe) for key in ("sexual", "violence", "hate", "self_harm")}
    prompt = {**content, "profanity": {"detected": False, "filtered": False}}
    return {"prompt_filter_results": prompt, "content_filter_results": content}


def _sas_time(epoch: float) -> str:
    return quote(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)), safe="")


def _blob_error(code: str, message: str, rid: str) -> bytes:
    """Azure-blob style XML error, as the real image URLs answer."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{code}</Code><Message>{message}\nRequestId:{rid}</Message></Error>"
    ).encode()


# ============================================================================================
# Streamed answers (pure): events -> SSE frames -> steps the handler carries out
# ============================================================================================

# [API] event types: ``image_generation.*`` for generations, ``image_edit.*`` for edits.
_PARTIAL_SUFFIX: Final = ".partial_image"
_COMPLETED_SUFFIX: Final = ".completed"


def _is_partial(event: Mapping[str, Any]) -> bool:
    return str(event["type"]).endswith(_PARTIAL_SUFFIX)


def _is_completed(event: Mapping[str, Any]) -> bool:
    return str(event["type"]).endswith(_COMPLETED_SUFFIX)


# Previews are lighter shades of the final colour (and tagged ``-partial-P``), so their bytes
# never equal the final image's, whatever the output format.
_PREVIEW_RGB: Final[tuple[tuple[int, int, int], ...]] = (
    (0xB8, 0xCF, 0xE5),
    (0x8A, 0xB2, 0xD9),
    (0x5C, 0x96, 0xCC),
)
_AFTER_PARTIALS_KINDS: Final[frozenset[str]] = frozenset(
    {"stream_cut", "stream_reset", "stream_error", "stream_error_flat"}
)


def _sse_frame(
    data_lines: Sequence[str],
    *,
    event: str | None,
    event_id: str | None = None,
    retry_ms: int | None = None,
    newline: str = "\n",
    space: bool = True,
) -> bytes:
    """One SSE message (WHATWG HTML, server-sent events): field lines, then a blank line."""
    lines: list[str] = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    if retry_ms is not None:
        lines.append(f"retry: {retry_ms}")
    prefix = "data: " if space else "data:"
    lines.extend(prefix + line for line in data_lines)
    return (newline.join(lines) + newline + newline).encode()


def _spec_example_shape(event: Mapping[str, Any]) -> dict[str, Any]:
    """The fields (and key order) of the spec's streaming example [API]."""
    if _is_partial(event):
        return {key: event[key] for key in ("type", "b64_json", "partial_image_index")}
    usage = event["usage"]
    return {
        "type": event["type"],
        "b64_json": event["b64_json"],
        "usage": {
            "total_tokens": usage["total_tokens"],
            "input_tokens": usage["input_tokens"],
            "output_tokens": usage["output_tokens"],
            "input_tokens_details": usage["input_tokens_details"],
        },
    }


def _interruption_point(events: Sequence[Mapping[str, Any]], partials: int) -> int:
    """Index of the event before which "after ``partials`` partial events" falls: right after
    the K-th partial, or at the first completed event if fewer partials precede it."""
    seen = 0
    for position, event in enumerate(events):
        if seen >= partials or _is_completed(event):
            return position
        seen += _is_partial(event)
    return len(events)


def _stream_steps(
    events: Sequence[Mapping[str, Any]], fault: Fault | None, interval_s: float, rid: str
) -> list[_StreamStep]:
    """Frame ``events`` as the fault (if any) scripts it, each preceded by ``interval_s``."""
    kind = fault.kind if fault is not None else None
    quirks = kind == "stream_quirks"
    stop_at = (
        _interruption_point(events, fault.count) if fault and kind in _AFTER_PARTIALS_KINDS else -1
    )
    stall_at = _interruption_point(events, 1) if fault and kind == "stream_stall" else -1
    steps: list[_StreamStep] = []

    def gap(first: bool) -> None:
        if not quirks or first:
            steps.extend([_Pause(interval_s)] if interval_s > 0 else [])
            return
        half = [_Pause(interval_s / 2)] if interval_s > 0 else []
        steps.extend([*half, _Send(b": keep-alive\r\n\r\n", "comment", is_event=False), *half])

    for position, event in enumerate(events):
        if position == stall_at and fault is not None:
            steps.append(_Pause(fault.seconds))
        if position == stop_at:
            break
        gap(first=position == 0)
        text = json.dumps(event, separators=(",", ":"))
        if kind == "invalid_json" and _is_completed(event):
            text = text[: len(text) // 2]
        if quirks:
            pretty = position == 0 or _is_completed(event)
            frame = _sse_frame(
                json.dumps(event, indent=2).splitlines() if pretty else [text],
                event=event["type"],
                event_id=f"{rid}-{position}",
                retry_ms=3000 if position == 0 else None,
                newline="\r\n",
                space=_is_completed(event),
            )
        else:
            frame = _sse_frame([text], event=event["type"])
        steps.append(_Send(frame, event["type"]))
    if stop_at >= 0 and fault is not None:
        if kind in ("stream_cut", "stream_reset"):
            steps.append(_Hangup(reset=kind == "stream_reset"))
            return steps
        gap(first=stop_at == 0)
        named = "error" if kind == "stream_error" else None
        steps.append(_Send(_sse_frame([fault.body.decode()], event=named), "error"))
    if quirks:
        gap(first=not events)
        steps.append(_Send(b"data: [DONE]\r\n\r\n", "[DONE]"))
    return steps


# ============================================================================================
# Edits (pure): multipart parsing, the input digest, how an edit's images look
# ============================================================================================


@dataclass(frozen=True)
class FormPart:
    """One part of a multipart/form-data body (RFC 7578)."""

    name: str
    filename: str | None
    """Present for file parts (httpx and openai-python always send one for a file)."""
    content_type: str | None
    data: bytes


def _disposition_param(headers: email.message.Message, name: str) -> str | None:
    value = headers.get_param(name, header="content-disposition")
    if value is None:
        return None
    return email.utils.collapse_rfc2231_value(cast(Any, value))


def _form_part(block: bytes) -> FormPart | None:
    if block.startswith(b"\r\n"):
        head, data = b"", block[2:]
    else:
        split = block.find(b"\r\n\r\n")
        if split < 0:
            return None
        head, data = block[: split + 2], block[split + 4 :]
    # Part headers are UTF-8 (names and filenames as browsers and httpx send them [WHATWG]).
    headers = email.parser.HeaderParser().parsestr(head.decode("utf-8", "replace"))
    if headers.get_content_disposition() != "form-data":
        return None
    name = _disposition_param(headers, "name")
    if name is None:
        return None
    part_type = headers.get("content-type")
    return FormPart(
        name,
        _disposition_param(headers, "filename"),
        part_type.strip() if part_type else None,
        data,
    )


def parse_multipart(content_type: str, raw: bytes) -> list[FormPart] | None:
    """The parts of a multipart/form-data body, or None when ``content_type`` is not
    multipart/form-data with a boundary or the body does not follow it (RFC 2046 5.1.1:
    optional preamble, ``--boundary`` lines, CRLF before each delimiter, ``--boundary--``)."""
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        return None
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    separator = b"\r\n" + delimiter
    if raw.startswith(delimiter):
        pos = len(delimiter)
    else:
        start = raw.find(separator)
        if start < 0:
            return None
        pos = start + len(separator)
    parts: list[FormPart] = []
    while True:
        if raw.startswith(b"--", pos):
            return parts
        line_end = raw.find(b"\r\n", pos)
        if line_end < 0 or raw[pos:line_end].strip(b" \t"):
            return None
        end = raw.find(separator, line_end + 2)
        if end < 0:
            return None
        part = _form_part(raw[line_end + 2 : end])
        if part is None:
            return None
        parts.append(part)
        pos = end + len(separator)


def _parse_form(content_type: str, raw: bytes) -> list[FormPart] | None:
    """Multipart parts, or a urlencoded form's fields as text parts (what httpx sends when a
    request has no file at all), or None."""
    if content_type.partition(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        text = raw.decode("utf-8", "replace")
        pairs = parse_qsl(text, keep_blank_values=True)
        return [FormPart(name, None, None, value.encode()) for name, value in pairs]
    return parse_multipart(content_type, raw)


def edit_digest(prompt: str, files: Iterable[tuple[str, str]]) -> str:
    """Hex SHA-256 over the prompt and each ``(field, sha256 hex)`` of the input files, in
    order: what an edit's output is made to depend on."""
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass"))
    for name, file_sha in files:
        digest.update(b"\x00" + name.encode() + b"\x00" + file_sha.encode())
    return digest.hexdigest()


def _received_file(part: FormPart) -> ReceivedFile:
    info: ImageInfo | None = probe_image(part.data)
    return ReceivedFile(
        field=part.name,
        filename=part.filename,
        content_type=part.content_type,
        size=len(part.data),
        sha256=hashlib.sha256(part.data).hexdigest(),
        format=info.format if info else None,
        width=info.width if info else None,
        height=info.height if info else None,
        mode=info.mode if info else None,
        has_alpha=info.has_alpha if info else False,
    )


def _edit_typed_body(fields: Mapping[str, str]) -> dict[str, Any]:
    """A validated edit's fields as the generation pipeline reads a JSON body [API]."""
    body: dict[str, Any] = {"model": EDIT_DEFAULT_MODEL, **fields}
    for key in ("n", "output_compression", "partial_images"):
        if key in body:
            body[key] = int(body[key])
    if "stream" in body:
        body["stream"] = body["stream"] == "true"
    return body


@dataclass(frozen=True)
class _Look:
    """How a success is drawn: generations use the defaults; an edit's images take their colour
    and tag from :func:`edit_digest`, and its usage counts the input images."""

    events: str = "image_generation"
    """Stream event type prefix [API]: ``image_generation`` or ``image_edit``."""
    tag_prefix: str = ""
    rgb: tuple[int, int, int] = _RGB
    input_image_tokens: int = 0


_GENERATION_LOOK: Final = _Look()


def _edit_look(edit: ReceivedEdit) -> _Look:
    rgb = (int(edit.digest[0:2], 16), int(edit.digest[2:4], 16), int(edit.digest[4:6], 16))
    if rgb in _PREVIEW_RGB:  # keep final images distinct from previews
        rgb = (rgb[0] ^ 1, rgb[1], rgb[2])
    # Emulator convention (not OpenAI's formula): 1 input token per 4096 input pixels.
    tokens = sum(
        math.ceil((image.width or 0) * (image.height or 0) / 4096) for image in edit.images
    )
    return _Look("image_edit", f"edit-{edit.digest[:16]}-", rgb, tokens)


def _with_input_images(usage: dict[str, Any], image_tokens: int) -> dict[str, Any]:
    """Add input image tokens to an ImageGenUsage/ImagesUsage [API]."""
    if image_tokens:
        usage["input_tokens"] += image_tokens
        usage["input_tokens_details"]["image_tokens"] += image_tokens
        usage["total_tokens"] += image_tokens
    return usage


# ============================================================================================
# HTTP plumbing
# ============================================================================================


class _Server(ThreadingHTTPServer):
    """Threaded HTTP/1.1 server bound to loopback."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # listen backlog for 100+ simultaneous connects

    def __init__(self, emulator: Emulator, port: int) -> None:
        self.emulator = emulator
        super().__init__((_HOST, port), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept with the listening socket's own class.

        ``socket.accept`` builds the new socket via the module global ``socket.socket``, which
        pytest-socket replaces with a guard that raises; this keeps a server started in an
        enabled test alive when later tests disable sockets.
        """
        listener = self.socket
        fd, address = cast(Any, listener)._accept()
        conn = type(listener)(listener.family, listener.type, listener.proto, fileno=fd)
        if socket.getdefaulttimeout() is None and listener.gettimeout():
            conn.setblocking(True)
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Count, do not print. A client hanging up is no error of the emulator's: one that
        stops reading an event stream early (an error event, a cancel) leaves the rest unread,
        and its kernel resets the connection while the handler waits for the next request."""
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        self.emulator._note_internal_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP adapter: reads the request, asks :class:`Emulator` what to do, writes it."""

    protocol_version = "HTTP/1.1"
    server_version = "imagegen-emulator/1.0"
    sys_version = ""
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms per request on loopback). Real API front ends set TCP_NODELAY.
    disable_nagle_algorithm = True

    @property
    def _emulator(self) -> Emulator:
        return cast(_Server, self.server).emulator

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self._emulator.idle_timeout_s)  # idle keep-alive bound
        self._emulator._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._emulator._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        emulator = self._emulator
        emulator._count_request()
        raw = self._read_body()
        if raw is None:
            self._write(_json_reply(413, _openai_error("Request body too large or malformed.")))
            self.close_connection = True
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        emulator._request_in_flight(+1)
        try:
            reply = emulator.dispatch(method, self.path, headers, raw)
            self._write(reply)
        finally:
            emulator._request_in_flight(-1)

    def _read_body(self) -> bytes | None:
        """Whole request body (Content-Length or chunked), so keep-alive stays in sync."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            return None
        if not 0 <= length <= _MAX_BODY_BYTES:
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > _MAX_BODY_BYTES:
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _write(self, reply: _Reply) -> None:
        if reply.action != "send":
            self._drop(reset=reply.action == "reset")
            return
        if reply.stream is not None:
            self._write_stream(reply, reply.stream)
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # client gave up (read_timeout tests, resets)
            self.close_connection = True

    def _write_stream(self, reply: _Reply, steps: Sequence[_StreamStep]) -> None:
        """Chunked transfer encoding, one chunk per write: with Nagle off each SSE frame leaves
        at once, so the client sees events arrive one by one."""
        emulator, rid = self._emulator, reply.request_id
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in reply.headers:
                self.send_header(name, value)
            emulator._log_stream(rid, "headers")
            self.end_headers()
        except OSError:
            self._end_stream(rid, emulator._gone_or_stopped())
            return
        emulator._count_stream("streams_started")
        for step in steps:
            if isinstance(step, _Pause):
                state = emulator._wait_on_client(self.connection, step.seconds)
                if state != "ok":
                    self._end_stream(rid, state)
                    return
            elif isinstance(step, _Hangup):
                emulator._log_stream(rid, "cut")
                emulator._count_stream("streams_finished")
                self._drop(reset=step.reset)
                return
            else:
                emulator._log_stream(rid, step.what, len(step.data))
                try:
                    self.wfile.write(b"%x\r\n%b\r\n" % (len(step.data), step.data))
                except OSError:
                    self._end_stream(rid, emulator._gone_or_stopped())
                    return
                if step.is_event:
                    emulator._count_stream("stream_events_written")
        emulator._log_stream(rid, "end")
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self._end_stream(rid, emulator._gone_or_stopped())
            return
        emulator._count_stream("streams_finished")

    def _end_stream(self, rid: str, state: Literal["gone", "stopped"]) -> None:
        """The client went away (or the emulator is stopping): record it, close."""
        self._emulator._log_stream(rid, "abandoned" if state == "gone" else "stopped")
        if state == "gone":
            self._emulator._count_stream("streams_abandoned")
        self._drop(reset=False)

    def _drop(self, *, reset: bool) -> None:
        """Close without answering; with ``reset`` the peer sees ECONNRESET."""
        self.close_connection = True
        conn = self.connection
        try:
            if reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # drop the makefile() reference so close() is real
            conn.close()
        except OSError:
            pass


# ============================================================================================
# The emulator
# ============================================================================================


class Emulator:
    """Loopback Images API. Use as a context manager; knobs may be changed between requests.

    Knobs: ``latency_s`` (sleep before each successful generation), ``faults`` (FIFO list of
    :class:`Fault`, one consumed per authenticated generation request), ``image_bytes`` (pad
    PNGs to ~N bytes), ``record_bodies``, ``url_ttl_s``, ``shut_down_models`` (ids answered
    with 404 ``model_not_found``), ``api_key``, ``stream_interval_s`` (seconds before each
    event of a streamed answer; a fault's ``interval_s`` overrides it per request).
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        deployments: Mapping[str, str] | None = None,
        latency_s: float = 0.0,
        image_bytes: int | None = None,
        record_bodies: bool = True,
        max_recorded: int = 10_000,
        port: int = 0,
        max_lifetime_s: float = 900.0,
        idle_timeout_s: float = 30.0,
        url_ttl_s: float = 3600.0,
        shut_down_models: Iterable[str] = (),
        stream_interval_s: float = 0.0,
        provider: str | None = None,
    ) -> None:
        # Provider mode: generation requests are answered as tests/provider_emulator.py's
        # PROVIDERS[provider] would (its routes, auth, validation, bodies); None = OpenAI/Azure.
        if provider is not None and provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
        self.provider = provider
        self.api_key = api_key
        self.deployments: dict[str, str] = dict(deployments or {})
        self.latency_s = latency_s
        self.image_bytes = image_bytes
        self.record_bodies = record_bodies
        self.url_ttl_s = url_ttl_s
        self.shut_down_models: set[str] = set(shut_down_models)
        self.idle_timeout_s = idle_timeout_s
        self.stream_interval_s = stream_interval_s
        self.faults: list[Fault] = []
        self._port = port
        self._max_lifetime_s = max_lifetime_s
        self._lock = threading.Lock()
        self._lifecycle = threading.Lock()
        self._stop_event = threading.Event()
        self._counters = _Counters()
        self._received: deque[ReceivedRequest] = deque(maxlen=max_recorded)
        self._errors: deque[str] = deque(maxlen=100)
        self._stream_log: deque[StreamRecord] = deque(maxlen=max_recorded)
        self._files: OrderedDict[str, _StoredFile] = OrderedDict()
        self._files_bytes = 0
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> Emulator:
        """Bind 127.0.0.1, serve in a daemon thread, arm the lifetime watchdog."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("emulator already started")
            self._stop_event.clear()
            self._server = _Server(self, self._port)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.01},  # stop() waits up to one interval
                name=f"emulator-{self.port}",
                daemon=True,
            )
            self._thread.start()
            self._watchdog = threading.Timer(self._max_lifetime_s, self.stop)
            self._watchdog.daemon = True
            self._watchdog.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake sleeping handlers, cut open connections, close the socket."""
        with self._lifecycle:
            server, thread, watchdog = self._server, self._thread, self._watchdog
            if server is None:
                return
            self._server = self._thread = self._watchdog = None
            self._stop_event.set()
            server.shutdown()
            with self._lock:
                connections = list(self._connections)
            for conn in connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            server.server_close()
            if thread is not None:
                thread.join(timeout=5)
            if watchdog is not None and watchdog is not threading.current_thread():
                watchdog.cancel()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds`` or until stopped; True if stopped."""
        return self._stop_event.wait(seconds)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Root, e.g. ``http://127.0.0.1:PORT`` (also the Azure endpoint)."""
        return f"http://{_HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def azure_v1_base_url(self) -> str:
        """Azure v1-style base URL ``http://127.0.0.1:PORT/openai/v1`` [Azure]."""
        return f"{self.url}/openai/v1"

    # ---- knobs and observations ---------------------------------------------------------
    def push_fault(self, *faults: Fault) -> None:
        """Append faults to the FIFO queue (thread-safe)."""
        with self._lock:
            self.faults.extend(faults)

    def stats(self) -> EmulatorStats:
        with self._lock:
            c = self._counters
            return EmulatorStats(
                requests_received=c.requests_received,
                generation_requests=c.generation_requests,
                images_produced=c.images_produced,
                open_connections=c.open_connections,
                peak_connections=c.peak_connections,
                connections_accepted=c.connections_accepted,
                faults_applied=c.faults_applied,
                internal_errors=c.internal_errors,
                responses_by_status=dict(c.responses_by_status),
                streams_started=c.streams_started,
                streams_finished=c.streams_finished,
                streams_abandoned=c.streams_abandoned,
                stream_events_written=c.stream_events_written,
                edit_requests=c.edit_requests,
                peak_requests_in_flight=c.peak_requests_in_flight,
            )

    def reset(self) -> None:
        """Empty the fault queue and zero the counters: a fresh start for the next test
        when one emulator serves many."""
        with self._lock:
            self.faults.clear()
        self.reset_stats()

    def reset_stats(self) -> None:
        """Zero the counters (open connections are kept) and forget recorded requests."""
        with self._lock:
            open_now = self._counters.open_connections
            busy = self._counters.requests_in_flight
            self._counters = _Counters(
                open_connections=open_now,
                peak_connections=open_now,
                requests_in_flight=busy,
                peak_requests_in_flight=busy,
            )
            self._received.clear()
            self._errors.clear()
            self._stream_log.clear()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._counters.open_connections

    @property
    def received_requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._received)

    @property
    def received_bodies(self) -> list[dict[str, Any]]:
        """Effective bodies of the last ``max_recorded`` generation requests."""
        return [request.effective_body for request in self.received_requests]

    @property
    def stream_log(self) -> list[StreamRecord]:
        """What the streamed answers did and when, oldest first (last ``max_recorded``)."""
        with self._lock:
            return list(self._stream_log)

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of unexpected handler failures (should stay empty)."""
        with self._lock:
            return list(self._errors)

    # ---- handler callbacks --------------------------------------------------------------
    def _connection_opened(self, conn: socket.socket) -> None:
        with self._lock:
            c = self._counters
            c.open_connections += 1
            c.connections_accepted += 1
            c.peak_connections = max(c.peak_connections, c.open_connections)
            self._connections.add(conn)

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._counters.open_connections -= 1
            self._connections.discard(conn)

    def _count_request(self) -> None:
        with self._lock:
            self._counters.requests_received += 1

    def _request_in_flight(self, change: int) -> None:
        with self._lock:
            c = self._counters
            c.requests_in_flight += change
            c.peak_requests_in_flight = max(c.peak_requests_in_flight, c.requests_in_flight)

    def _note_internal_error(self, text: str) -> None:
        with self._lock:
            self._counters.internal_errors += 1
            self._errors.append(text)

    def _log_stream(self, rid: str, what: str, nbytes: int = 0) -> None:
        record = StreamRecord(rid, what, time.monotonic(), nbytes)
        with self._lock:
            self._stream_log.append(record)

    def _count_stream(
        self,
        counter: Literal[
            "streams_started", "streams_finished", "streams_abandoned", "stream_events_written"
        ],
    ) -> None:
        with self._lock:
            setattr(self._counters, counter, getattr(self._counters, counter) + 1)

    def _gone_or_stopped(self) -> Literal["gone", "stopped"]:
        """Why a stream write failed: stop() cut the connection, or the client left."""
        return "stopped" if self._stop_event.is_set() else "gone"

    def _wait_on_client(
        self, conn: socket.socket, seconds: float
    ) -> Literal["ok", "gone", "stopped"]:
        """Wait between stream events, noticing at once a client that closes (its socket turns
        readable at EOF: the request was read whole, so nothing else is expected) and stop()
        (which shuts every connection down)."""
        deadline = time.monotonic() + seconds
        with selectors.DefaultSelector() as selector:
            selector.register(conn, selectors.EVENT_READ)
            while True:
                if self._stop_event.is_set():
                    return "stopped"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "ok"
                if not selector.select(min(remaining, 0.25)):
                    continue
                if _peer_closed(conn):
                    return self._gone_or_stopped()
                # Bytes from the client mid-stream (a pipelined request): just wait.
                return "stopped" if self._stop_event.wait(max(0.0, remaining)) else "ok"

    def _sleep(self, seconds: float) -> None:
        """Interruptible by :meth:`stop`, so a sleeping handler never outlives the server."""
        if seconds > 0:
            self._stop_event.wait(seconds)

    # ---- dispatch -----------------------------------------------------------------------
    def dispatch(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> _Reply:
        """Route one request; always returns a reply (bugs become a 500 and are recorded)."""
        rid = f"req_{uuid.uuid4().hex}"
        started = time.monotonic()
        try:
            reply = self._route(method, target, headers, raw, rid)
        except Exception:  # noqa: BLE001 - surfaced via internal_errors, answered as 500
            self._note_internal_error(traceback.format_exc())
            reply = _json_reply(500, _openai_error("emulator bug", type_="server_error"))
        reply.body = reply.body.replace(b"{request_id}", rid.encode())
        reply.request_id = rid
        elapsed_ms = str(int((time.monotonic() - started) * 1000))
        reply.headers[:0] = [
            ("x-request-id", rid),
            ("openai-version", "2020-10-01"),
            ("openai-processing-ms", elapsed_ms),
        ]
        with self._lock:
            by_status = self._counters.responses_by_status
            by_status[reply.status] = by_status.get(reply.status, 0) + 1
        return reply

    def _route(
        self, method: str, target: str, headers: Mapping[str, str], raw: bytes, rid: str
    ) -> _Reply:
        split = urlsplit(target)
        if method == "GET" and split.path.startswith("/files/"):
            return self._serve_file(split.path[len("/files/") :], rid)
        if method == "GET" and split.path.startswith("/generated-images/"):  # LocalAI's URLs
            return self._serve_file(split.path[len("/generated-images/") :], rid)
        if self.provider is not None and method == "POST":
            return self._provider_generation(split, headers, raw, rid)
        route = _match_route(split.path)
        if route is None or method != "POST":
            return _json_reply(404, _openai_error(f"Invalid URL ({method} {split.path})"))
        if route.operation == "edits":
            return self._edit(route, split, headers, raw, rid)
        return self._generation(route, split, headers, raw, rid)

    def _provider_generation(
        self, target: SplitResult, headers: Mapping[str, str], raw: bytes, rid: str
    ) -> _Reply:
        """Provider mode: record, apply queued faults and the emulator's own markers (transport,
        latency), then let tests/provider_emulator.py answer as the provider would."""
        behaviour = PROVIDERS[cast(str, self.provider)]
        if not behaviour.serves(target.path):
            return _json_reply(404, _openai_error(f"Invalid URL (POST {target.path})"))
        with self._lock:
            self._counters.generation_requests += 1
        body = _parse_object(raw)
        self._record(target.path, headers, raw, body, None)
        fault = None if has_provider_marker(body) else self._take_fault(body)
        if fault is not None:
            if fault.kind not in _PRE_KINDS:
                return _json_reply(
                    500, _openai_error(f"emulator: fault {fault.name!r} has no provider-mode form")
                )
            early = self._apply_pre_fault(fault)
            if early is not None:
                return early
        self._sleep(self.latency_s)
        context = ProviderContext(
            api_key=self.api_key,
            root_url=self.url,
            request_id=rid,
            encode=lambda fmt, width, height, tag: encode_image(
                fmt, width, height, tag=tag, pad_to_bytes=self.image_bytes
            ),
            store=lambda data, fmt: self._store_file(data, fmt, self.url_ttl_s),
        )
        answer = behaviour.handle(target.path, headers, raw, context)
        with self._lock:
            self._counters.images_produced += answer.images
        return _Reply(answer.status, answer.body, answer.media_type, list(answer.headers))

    def _serve_file(self, name: str, rid: str) -> _Reply:
        with self._lock:
            stored = self._files.get(name)
        if stored is None:
            body = _blob_error("BlobNotFound", "The specified blob does not exist.", rid)
            return _Reply(404, body, "application/xml")
        if time.time() > stored.expires_at:
            body = _blob_error(
                "AuthenticationFailed",
                "Server failed to authenticate the request. Signed expiry time has passed.",
                rid,
            )
            return _Reply(403, body, "application/xml")
        return _Reply(200, stored.data, stored.content_type)

    # ---- generation pipeline ------------------------------------------------------------
    def _generation(
        self,
        route: _Route,
        target: SplitResult,
        headers: Mapping[str, str],
        raw: bytes,
        rid: str,
    ) -> _Reply:
        with self._lock:
            self._counters.generation_requests += 1
        body = _parse_object(raw)
        azure_model, route_error = self._resolve_azure(route, parse_qs(target.query), body)
        self._record(target.path, headers, raw, body, azure_model)
        early, fault = self._admit(route, headers, body, route_error)
        if early is not None:
            return early
        if body is None:
            return _json_reply(400, _openai_error(_BAD_JSON))
        effective = body if azure_model is None else {**body, "model": azure_model}
        rejection = self._reject(route, effective)
        if rejection is not None:
            return rejection
        self._sleep(self.latency_s)
        return self._success(route, effective, fault, rid)

    def _admit(
        self,
        route: _Route,
        headers: Mapping[str, str],
        body: dict[str, Any] | None,
        route_error: _Reply | None,
    ) -> tuple[_Reply | None, Fault | None]:
        """What generations and edits check before the body, in the API's order: the key,
        the route, then the fault queue. Returns the reply that ends the request here (or
        ``None``) and the fault left for the answer."""
        auth_error = self._check_auth(route, headers)
        if auth_error is not None:
            return auth_error, None
        if route_error is not None:
            return route_error, None
        fault = self._take_fault(body)
        if fault is not None and fault.kind in _PRE_KINDS:
            return self._apply_pre_fault(fault), None
        return None, fault

    def _edit(
        self,
        route: _Route,
        target: SplitResult,
        headers: Mapping[str, str],
        raw: bytes,
        rid: str,
    ) -> _Reply:
        """[API] multipart edit: the generation pipeline (auth, Azure routing, faults, latency,
        success shapes, streaming) around :func:`spec_validator.validate_edit_request`."""
        with self._lock:
            self._counters.edit_requests += 1
        content_type = headers.get("content-type", "")
        parts = _parse_form(content_type, raw)
        texts = [(part.name, _form_text(part)) for part in parts or () if part.filename is None]
        fields = dict(texts)  # the last of repeated names wins
        uploads = [part for part in parts or () if part.filename is not None]
        hashes = [(part.name, hashlib.sha256(part.data).hexdigest()) for part in uploads]
        edit = ReceivedEdit(
            content_type=content_type,
            fields=tuple(texts),
            files=tuple(_received_file(part) for part in uploads),
            digest=edit_digest(fields.get("prompt", ""), hashes),
            parsed=parts is not None,
        )
        azure_model, route_error = self._resolve_azure(
            route, parse_qs(target.query), dict(fields) if parts is not None else None
        )
        body = dict(fields) if parts is not None else None
        self._record(target.path, headers, raw, body, azure_model, edit)
        early, fault = self._admit(route, headers, body, route_error)
        if early is not None:
            return early
        if parts is None:
            # UNVERIFIED wording; the real endpoint also takes JSON bodies with image
            # references (EditImageBodyJsonParam), which the emulator does not model.
            return _json_reply(
                400,
                _openai_error(
                    "The emulator reads edits as multipart/form-data (or a urlencoded form "
                    "without files) only; got Content-Type "
                    f"{content_type or '(none)'!r} or a body that does not follow its boundary."
                ),
            )
        effective = fields if azure_model is None else {**fields, "model": azure_model}
        files = [
            UploadedFile(
                part.name, part.filename, part.content_type or "application/octet-stream", part.data
            )
            for part in uploads
        ]
        error = validate_edit_request(effective, files)
        if error is not None:
            return _error_reply(error)
        typed = _edit_typed_body(effective)
        rejection = self._reject_deployment(route, typed)
        if rejection is not None:
            return rejection
        self._sleep(self.latency_s)
        return self._success(route, typed, fault, rid, _edit_look(edit))

    def _record(
        self,
        path: str,
        headers: Mapping[str, str],
        raw: bytes,
        body: dict[str, Any] | None,
        azure_model: str | None,
        edit: ReceivedEdit | None = None,
    ) -> None:
        if not self.record_bodies:
            return
        if body is None:
            body = {"__unparseable__": raw[:2000].decode("utf-8", "replace")}
        request = ReceivedRequest(path, dict(headers), body, azure_model, edit)
        with self._lock:
            self._received.append(request)

    def _resolve_azure(
        self,
        route: _Route,
        query: Mapping[str, list[str]],
        body: dict[str, Any] | None,
    ) -> tuple[str | None, _Reply | None]:
        """[Azure] Azure: api-version is mandatory on the deployment route; the deployment (path
        or body ``model``) maps to a model via ``deployments`` or, failing that, by name."""
        if route.kind == "openai":
            return None, None
        if route.kind == "azure_deployment" and not query.get("api-version"):
            return None, _json_reply(
                404, {"error": {"code": "404", "message": "Resource not found"}}
            )
        name = route.deployment
        if route.kind == "azure_v1":
            model = body.get("model") if body is not None else None
            name = model if isinstance(model, str) else None
        resolved = self.deployments.get(name) if name is not None else None
        if resolved is None and name is not None and model_family(name) is not None:
            resolved = name
        if resolved is None:
            error = {
                "error": {
                    "code": "DeploymentNotFound",
                    "message": "The API deployment for this resource does not exist. If you "
                    "created the deployment within the last 5 minutes, please wait a moment "
                    "and try again.",
                }
            }
            return None, _json_reply(404, error)
        return resolved, None

    def _check_auth(self, route: _Route, headers: Mapping[str, str]) -> _Reply | None:
        """[API, errors] bearer key for OpenAI; [Azure] ``api-key`` header or bearer for Azure."""
        bearer = _bearer(headers)
        if route.kind == "openai":
            if bearer == self.api_key:
                return None
            challenge = [("WWW-Authenticate", 'Bearer realm="OpenAI API"')]
            if not bearer:
                return _json_reply(401, _openai_error(_OPENAI_MISSING_KEY), challenge)
            return _json_reply(401, _invalid_api_key_body(bearer), challenge)
        if self.api_key in (headers.get("api-key"), bearer):
            return None
        return _json_reply(401, {"error": {"code": "401", "message": _AZURE_BAD_KEY}})

    def _take_fault(self, body: dict[str, Any] | None) -> Fault | None:
        """Queue first (FIFO), then a ``[[fault:...]]`` marker in the prompt."""
        with self._lock:
            if self.faults:
                self._counters.faults_applied += 1
                return self.faults.pop(0)
        prompt = body.get("prompt") if body is not None else None
        if not isinstance(prompt, str):
            return None
        match = _MARKER_RE.search(prompt)
        if match is None:
            return None
        with self._lock:
            self._counters.faults_applied += 1
        name, arg = match.group(1), match.group(2)
        if name not in FAULT_MARKERS:
            return Fault.http(500, _openai_error(f"emulator: unknown fault marker {name!r}"))
        return Fault.from_marker(name, arg)

    def _apply_pre_fault(self, fault: Fault) -> _Reply | None:
        """Faults that replace the answer; None means "sleep done, continue normally"."""
        if fault.kind == "read_timeout":
            self._sleep(fault.seconds)
            return None
        if fault.kind == "connection_reset":
            return _Reply(action="reset")
        if fault.kind == "connection_close":
            return _Reply(action="close")
        return _Reply(fault.status, fault.body, fault.content_type, list(fault.headers))

    def _reject(self, route: _Route, body: Mapping[str, Any]) -> _Reply | None:
        """Spec validation [API, models], shut-down models [models], Azure's no-WebP rule
        [Azure]."""
        error = validate_request(body)
        if error is not None:
            return _error_reply(error)
        return self._reject_deployment(route, body)

    def _reject_deployment(self, route: _Route, body: Mapping[str, Any]) -> _Reply | None:
        """Shut-down models [models] and Azure's no-WebP rule [Azure], for a valid body."""
        model = str(body.get("model") or "dall-e-2")
        if model in self.shut_down_models:
            return _json_reply(
                404,
                _openai_error(
                    f"The model `{model}` does not exist or you do not have access to it.",
                    code="model_not_found",
                ),
            )
        if route.kind != "openai" and body.get("output_format") == "webp":
            # UNVERIFIED wording: Azure documents "WEBP images aren't supported" [Azure].
            return _json_reply(
                400,
                _openai_error(
                    "Invalid value: 'webp'. Supported values are: 'png' and 'jpeg'.",
                    param="output_format",
                    code="invalid_value",
                ),
            )
        return None

    def _success(
        self,
        route: _Route,
        body: Mapping[str, Any],
        fault: Fault | None,
        rid: str,
        look: _Look = _GENERATION_LOOK,
    ) -> _Reply:
        family = cast(Family, model_family(str(body.get("model") or "dall-e-2")))
        gpt = family in _GPT_FAMILIES
        n = int(body.get("n") or 1)
        width, height = _resolved_dims(family, body.get("size"))
        output_format = str(body.get("output_format") or "png") if gpt else "png"
        transparent = gpt and body.get("background") == "transparent"
        kind = fault.kind if fault is not None else None
        if gpt and body.get("stream") is True and kind != "stream_ignored":
            return self._stream(
                body, n, (width, height), output_format, transparent, rid, fault, look
            )
        count = _image_count(n, fault)
        images = [
            encode_image(
                output_format,
                width,
                height,
                transparent=transparent,
                tag=f"{look.tag_prefix}{rid}-{i}",
                pad_to_bytes=self.image_bytes,
                rgb=look.rgb,
            )
            for i in range(count)
        ]
        as_url = kind == "url_instead_of_b64" or (
            not gpt and body.get("response_format") != "b64_json"
        )
        items = [
            self._data_item(image, output_format, as_url, kind == "truncated_base64", route)
            for image in images
        ]
        if family == "dall-e-3":
            revised = f"A detailed, vivid illustration of: {str(body['prompt']).strip()}"
            items = [{"revised_prompt": revised, **item} for item in items]
        if route.kind != "openai" and not gpt:
            items = [{**item, **_azure_filter_results()} for item in items]
        payload: dict[str, Any] = {"created": int(time.time())}
        if gpt:
            quality = _resolved_quality(body.get("quality"), n)
            payload["background"] = "transparent" if transparent else "opaque"
            payload["data"] = items
            payload["output_format"] = output_format
            payload["quality"] = quality
            payload["size"] = f"{width}x{height}"
            usage = _usage(str(body["prompt"]), n, quality, width, height)
            payload["usage"] = _with_input_images(usage, look.input_image_tokens * n)
        else:
            payload["data"] = items
        with self._lock:
            self._counters.images_produced += count
        data = _json_bytes(payload, pretty=False)
        if kind == "invalid_json":
            data = data[: len(data) // 2]
        return _Reply(200, data)

    def _data_item(
        self, image: bytes, output_format: str, as_url: bool, truncate: bool, route: _Route
    ) -> dict[str, Any]:
        if as_url:
            stored = image[: len(image) // 2] if truncate else image
            ttl = self.url_ttl_s if route.kind == "openai" else 24 * 3600.0  # [Azure] 24 h
            return {"url": self._store_file(stored, output_format, ttl)}
        encoded = base64.b64encode(image).decode("ascii")
        if truncate:
            encoded = encoded[: (len(encoded) // 2) | 1]  # odd length: never valid base64
        return {"b64_json": encoded}

    def _store_file(self, data: bytes, output_format: str, ttl_s: float) -> str:
        """Keep the bytes for ``GET /files/<name>`` and return a SAS-like URL [API]."""
        name = f"img-{secrets.token_hex(12)}.{output_format}"
        created = time.time()
        content_type = f"image/{output_format}"
        with self._lock:
            self._files[name] = _StoredFile(data, content_type, created + ttl_s)
            self._files_bytes += len(data)
            while self._files and (
                len(self._files) > _MAX_STORED_FILES or self._files_bytes > _MAX_STORED_BYTES
            ):
                _, evicted = self._files.popitem(last=False)
                self._files_bytes -= len(evicted.data)
        sig = quote(base64.b64encode(hashlib.sha256(name.encode()).digest()).decode(), safe="")
        query = (
            f"st={_sas_time(created - 3600)}&se={_sas_time(created + ttl_s)}"
            f"&sp=r&sv=2024-08-04&sr=b&rscd=inline&rsct={quote(content_type, safe='')}"
            f"&sig={sig}"
        )
        return f"{self.url}/files/{name}?{query}"

    def _stream(
        self,
        body: Mapping[str, Any],
        n: int,
        dims: tuple[int, int],
        output_format: str,
        transparent: bool,
        rid: str,
        fault: Fault | None,
        look: _Look = _GENERATION_LOOK,
    ) -> _Reply:
        """[API] ``stream: true``: per image, ``partial_images`` preview events then one
        completed event. The events carry no image index, so with n > 1 the images follow one
        another. Previews have the final image's size but other bytes (a lighter colour, a
        ``-partial-P`` tag). ``empty_data``/``fewer_images`` drop images, ``truncated_base64``
        cuts the completed ``b64_json`` and ``invalid_json`` the completed event's JSON."""
        width, height = dims
        quality = _resolved_quality(body.get("quality"), n)
        common = {
            "created_at": int(time.time()),
            "size": f"{width}x{height}",
            "quality": quality,
            "background": "transparent" if transparent else "opaque",
            "output_format": output_format,
        }
        usage = _usage(str(body["prompt"]), 1, quality, width, height)
        usage = _with_input_images(usage, look.input_image_tokens)
        usage.pop("output_tokens_details")  # [API] ImagesUsage: not in the streamed usage
        partials = int(body.get("partial_images") or 0)
        count = _image_count(n, fault)
        truncate = fault is not None and fault.kind == "truncated_base64"
        events: list[dict[str, Any]] = []
        for i in range(count):
            for p in range(partials):
                preview = encode_image(
                    output_format,
                    width,
                    height,
                    transparent=transparent,
                    tag=f"{look.tag_prefix}{rid}-{i}-partial-{p}",
                    rgb=_PREVIEW_RGB[p % len(_PREVIEW_RGB)],
                )
                events.append(
                    {
                        "type": look.events + _PARTIAL_SUFFIX,
                        "b64_json": base64.b64encode(preview).decode("ascii"),
                        **common,
                        "partial_image_index": p,
                    }
                )
            image = encode_image(
                output_format,
                width,
                height,
                transparent=transparent,
                tag=f"{look.tag_prefix}{rid}-{i}",
                pad_to_bytes=self.image_bytes,
                rgb=look.rgb,
            )
            encoded = base64.b64encode(image).decode("ascii")
            if truncate:
                encoded = encoded[: (len(encoded) // 2) | 1]  # odd length: never valid base64
            completed = look.events + _COMPLETED_SUFFIX
            events.append({"type": completed, "b64_json": encoded, **common, "usage": usage})
        if fault is not None and fault.kind == "stream_spec_example":
            events = [_spec_example_shape(event) for event in events]
        with self._lock:
            self._counters.images_produced += count
        interval = self.stream_interval_s
        if fault is not None and fault.interval_s is not None:
            interval = fault.interval_s
        return _Reply(
            200,
            content_type="text/event-stream; charset=utf-8",
            headers=[("Cache-Control", "no-cache")],
            stream=tuple(_stream_steps(events, fault, interval, rid)),
        )


def _peer_closed(conn: socket.socket) -> bool:
    """True when a readable socket is at EOF or broken (not merely holding data)."""
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError, TimeoutError):
        return False
    except OSError:
        return True


def _form_text(part: FormPart) -> str:
    """A text part's value (UTF-8, as browsers and httpx send it [WHATWG])."""
    return part.data.decode("utf-8", "replace")


def _parse_object(raw: bytes) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _image_count(n: int, fault: Fault | None) -> int:
    if fault is None:
        return n
    if fault.kind == "empty_data":
        return 0
    if fault.kind == "fewer_images":
        return max(0, n - fault.count)
    return n


# ============================================================================================
# Foreground entry point
# ============================================================================================


def _parse_deployment(text: str) -> tuple[str, str]:
    name, sep, model = text.partition("=")
    if not sep or not name or not model:
        raise argparse.ArgumentTypeError("expected NAME=MODEL")
    return name, model


def main(argv: Sequence[str] | None = None) -> int:
    """``python tests/emulator.py --port 8765 [--seconds 600]``: serve in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seconds", type=float, default=600.0, help="lifetime bound")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per generation")
    parser.add_argument("--image-bytes", type=int, default=None, help="pad PNGs to ~N bytes")
    parser.add_argument(
        "--stream-interval", type=float, default=0.0, help="seconds before each streamed event"
    )
    parser.add_argument(
        "--deployment",
        type=_parse_deployment,
        action="append",
        default=[],
        metavar="NAME=MODEL",
        help="Azure deployment mapping (repeatable)",
    )
    parser.add_argument(
        "--provider",
        choices=sorted(PROVIDERS),
        default=None,
        help="answer as this provider (tests/provider_emulator.py) instead of OpenAI/Azure",
    )
    args = parser.parse_args(argv)
    emulator = Emulator(
        provider=args.provider,
        port=args.port,
        api_key=args.api_key,
        latency_s=args.latency,
        image_bytes=args.image_bytes,
        stream_interval_s=args.stream_interval,
        deployments=dict(args.deployment),
        max_lifetime_s=args.seconds + 1.0,
    )
    with emulator:
        print(
            f"emulator on {emulator.base_url} (api key {emulator.api_key!r}, "
            f"Azure endpoint {emulator.url}); stopping after {args.seconds:g}s",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            emulator.wait(args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

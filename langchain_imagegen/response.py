"""Turn a 2xx ``/images/generations`` body into an :class:`ImagesResponse`, or raise.

Lenient where real servers vary (the OpenAI API reference makes every field of an image
optional; gateways differ, see docs/models.md): ``url`` or ``b64_json`` whatever was asked for,
any string for ``size``/``quality`` (gpt-image-2 custom sizes), and no reliance on
``revised_prompt``, ``usage`` or the top-level extras. An unusable item (``{}``, an empty
``b64_json``, a ``url`` that is not http(s)) is dropped with a reason and the good ones kept:
they were generated and billed. Strict where continuing would hide a failure: an ``error``
object inside a 2xx is raised as the error it describes, and a body without a single usable
image raises :class:`MalformedResponseError`. One ``json.loads`` and plain ``isinstance``
checks; no pydantic on this path (the b64 payloads are megabytes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_imagegen.errors import (
    ContentPolicyError,
    MalformedResponseError,
    error_from_body,
    request_id_from,
)
from langchain_imagegen.storage.images import data_url_base64

__all__ = ["ImagesResponse", "ReturnedImage", "parse_images_response"]

_SNIPPET = 200


@dataclass(frozen=True)
class ReturnedImage:
    """One usable ``data[]`` item: a non-blank ``b64_json``, an http(s) ``url``, or both."""

    b64_json: str | None
    url: str | None
    revised_prompt: str | None = None


@dataclass(frozen=True)
class ImagesResponse:
    """A successful generation.

    ``attempts`` and ``elapsed_s`` are filled in by :class:`~langchain_imagegen.client.
    ImagesClient`: how many HTTP attempts the logical request took (1 = no retry) and the
    wall time in seconds including retry waits. ``dropped`` says, for each unusable ``data``
    item, which one and why (``"data[1]: it has neither `url` nor `b64_json`"``); ``images``
    holds the others. ``size``, ``quality``, ``background``, ``output_format`` and ``usage``
    are the response's top-level fields, as the server reported them (``None`` if absent).
    """

    created: int | None
    images: tuple[ReturnedImage, ...]
    usage: dict[str, Any] | None = None
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    request_id: str | None = None
    attempts: int = 1
    elapsed_s: float = 0.0
    dropped: tuple[str, ...] = ()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _snippet(content: bytes) -> str:
    text = content[: _SNIPPET * 4].decode("utf-8", errors="replace")
    return " ".join(text.split())[:_SNIPPET] or "(empty body)"


def parse_images_response(
    status: int,
    content: bytes,
    headers: Mapping[str, str],
    *,
    attempts: int = 1,
    elapsed_s: float = 0.0,
) -> ImagesResponse:
    """Parse a 2xx body; raise the mapped :class:`~langchain_imagegen.errors.APIError` if it
    is an error body, :class:`MalformedResponseError` if it holds no usable images.

    ``attempts`` and ``elapsed_s`` are copied onto the result (the client knows them, and the
    result is frozen, so they are set when it is built).
    """
    request_id = request_id_from(headers)

    def malformed(problem: str) -> MalformedResponseError:
        return MalformedResponseError(
            f"the server answered HTTP {status} but {problem}",
            status_code=status,
            request_id=request_id,
        )

    try:
        payload = json.loads(content)
    except ValueError:
        raise malformed(f"the body is not JSON: {_snippet(content)}") from None
    if (
        isinstance(payload, list)
        and payload
        and isinstance(payload[0], dict)
        and ("error" in payload[0])
    ):
        # Google's compatibility layer reports errors as a list, also with a 2xx status.
        raw = content[: _SNIPPET * 4].decode("utf-8", errors="replace")
        raise error_from_body(status, payload, request_id=request_id, raw_text=raw)
    if not isinstance(payload, dict):
        raise malformed(f"the body is a JSON {type(payload).__name__}, not an object")

    # OpenAI's ``data``; SiliconFlow-style servers answer ``images`` (docs/providers.md).
    data = payload.get("data") if "data" in payload else payload.get("images")
    if (
        payload.get("error")
        or payload.get("detail")
        or (not isinstance(data, list) and _str(payload.get("message")))
    ):
        # An error reported with a 2xx status, enveloped or bare (some gateways do this).
        raw = content[: _SNIPPET * 4].decode("utf-8", errors="replace")
        raise error_from_body(status, payload, request_id=request_id, raw_text=raw)
    if not isinstance(data, list):
        keys = ", ".join(sorted(str(k) for k in payload)[:10]) or "none"
        raise malformed(
            f"the body has no `data` (or `images`) list of images (top-level keys: {keys})"
        )
    if not data and _str(payload.get("block_reason")):
        # xAI: nothing generated, and why (its moderation).
        raise ContentPolicyError(
            f"the provider's moderation blocked the request: {payload['block_reason']}",
            status_code=status,
            request_id=request_id,
        )
    if not data:
        raise malformed("it returned no images (`data` is empty)")

    images: list[ReturnedImage] = []
    dropped: list[str] = []
    for index, item in enumerate(data):
        image_or_reason = _image(item)
        if isinstance(image_or_reason, str):
            dropped.append(f"data[{index}]: {image_or_reason}")
        else:
            images.append(image_or_reason)
    if not images and dropped and all(reason.endswith(_BLOCKED) for reason in dropped):
        raise ContentPolicyError(
            f"the provider's moderation blocked every image ({len(dropped)}); rephrase the prompt",
            status_code=status,
            request_id=request_id,
        )
    if not images:
        raise malformed(f"it returned no usable image ({'; '.join(dropped)[: _SNIPPET * 2]})")

    usage = payload.get("usage")
    return ImagesResponse(
        created=_created(payload.get("created")),
        images=tuple(images),
        usage=usage if isinstance(usage, dict) else None,
        size=_str(payload.get("size")),
        quality=_str(payload.get("quality")),
        background=_str(payload.get("background")),
        output_format=_str(payload.get("output_format")),
        request_id=request_id,
        attempts=attempts,
        elapsed_s=elapsed_s,
        dropped=tuple(dropped),
    )


def _image(item: Any) -> ReturnedImage | str:
    """The usable image in one ``data`` item, or why there is none."""
    if not isinstance(item, dict):
        return f"it is a JSON {type(item).__name__}, not an object"
    if item.get("respect_moderation") is False:  # xAI: the image was blocked
        return _BLOCKED
    b64 = item.get("b64_json")
    b64 = _base64_payload(b64) if isinstance(b64, str) and b64.strip() else None
    url = _str(item.get("url"))
    if url is not None and url[:5].lower() == "data:" and b64 is None:
        b64, url = _base64_payload(url), None  # an image inline as a data URI
    if url is not None and not url.lower().startswith(("https://", "http://")):
        # Never an image location shown to an LLM: file:///etc/passwd, javascript:, data:.
        if b64 is None:
            return "the server returned a non-http(s) URL"
        url = None
    if b64 is None and url is None:
        return "it has neither `url` nor a non-empty `b64_json`"
    revised = item.get("revised_prompt")
    return ReturnedImage(b64, url, revised if isinstance(revised, str) else None)


_BLOCKED = "the provider's moderation blocked it"


def _base64_payload(text: str) -> str | None:
    """The base64 of a ``b64_json`` value or a ``data:image/...;base64,`` URI (some servers
    put the URI in either field); ``None`` for a data URI that is not base64."""
    if text[:5].lower() != "data:":
        return text
    payload = data_url_base64(text)
    return payload if payload is not None and payload.strip() else None


def _created(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None

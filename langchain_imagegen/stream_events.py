"""Read a streamed generation (``stream: true``): previews as they come, then one ImagesResponse.

The server sends server-sent events (OpenAI API reference, ``ImageGenStreamEvent`` in openai-openapi
commit f85dbe22): ``image_generation.partial_image`` events, rough previews carrying ``b64_json``
and ``partial_image_index``, then one ``image_generation.completed`` event with the final image
and ``usage`` (an edit's stream: ``image_edit.partial_image`` and ``image_edit.completed``,
``ImageEditStreamEvent``). The spec's own example omits fields it calls required, so only
``type`` and the image are relied on: a missing ``partial_image_index`` is numbered by arrival
order, and the SSE ``event:`` name stands in for a missing JSON ``type`` (the JSON ``type``
wins when they differ).

Errors reported inside the stream are raised as the :mod:`errors` class they describe: an
``error`` event, ``{"type": "error", "error": {...}}``, the flat Responses-API-like
``{"type": "error", "code": ..., "message": ...}``, any payload with an ``error`` object, or a
bare ``message`` without an image. The HTTP status was a 2xx by then, so the class is chosen by
the error's ``code``/``type`` (:data:`_STATUS_OF_ERROR`); a stream that ends before the final
image is a cut connection (:class:`~langchain_imagegen.errors.APIConnectionError`, retryable).

Nothing here does I/O: the client feeds the body's chunks and calls :meth:`ImageStream.finish`
when the body ends. Previews are handed back and not kept; only the final image is.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_imagegen.errors import (
    APIConnectionError,
    APIError,
    MalformedResponseError,
    error_from_body,
    request_id_from,
)
from langchain_imagegen.response import ImagesResponse, _created, _image, _str
from langchain_imagegen.sse import ServerSentEvent, SSEDecoder

__all__ = ["ImageStream", "PartialImage"]

logger = logging.getLogger(__name__)

PARTIAL_IMAGE = "image_generation.partial_image"
COMPLETED = "image_generation.completed"
# An edit streams the same events under its own names (``ImageEditStreamEvent``).
EDIT_PARTIAL_IMAGE = "image_edit.partial_image"
EDIT_COMPLETED = "image_edit.completed"
_PARTIALS = frozenset({PARTIAL_IMAGE, EDIT_PARTIAL_IMAGE})
_COMPLETIONS = frozenset({COMPLETED, EDIT_COMPLETED})
_ERROR = "error"
_DONE = "[DONE]"
_UNNAMED = "message"  # the SSE event name when the server sent no ``event:`` line
_OURS = _PARTIALS | _COMPLETIONS | {_ERROR, _UNNAMED}
"""Event names whose data must be JSON; any other name's non-JSON data is ignored."""

_SNIPPET = 200

_STATUS_OF_ERROR: Mapping[str, int] = {
    "invalid_request_error": 400,
    "invalid_prompt": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "internal_error": 500,
    "api_error": 500,
    "service_unavailable": 503,
}
"""The HTTP status an in-stream error ``code`` (else ``type``) stands for, so that
:func:`~langchain_imagegen.errors.error_from_body` picks the class it would for that status.
Other ``invalid_*`` codes are 400; anything else is a server failure (500): the request had
been accepted. Policy and billing codes are recognised by ``error_from_body`` itself."""


@dataclass(frozen=True, slots=True)
class PartialImage:
    """A rough preview of the image being generated (not the final image).

    ``index`` is the server's ``partial_image_index`` (0-based), or the preview's arrival
    order when the server sent none. The other fields are as the event reported them.
    """

    index: int
    b64_json: str
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None

    def __repr__(self) -> str:  # the base64 is megabytes: show its length, not its text
        return (
            f"PartialImage(index={self.index}, b64_json=<{len(self.b64_json)} chars>, "
            f"size={self.size!r}, quality={self.quality!r}, background={self.background!r}, "
            f"output_format={self.output_format!r})"
        )


class ImageStream:
    """Reads the event stream of ONE streamed generation request.

    ``status`` and ``headers`` are the response's (``headers`` as the client picked them; the
    request id is read from them). Call :meth:`feed` with each body chunk, then :meth:`finish`
    when the body ended. Both raise the mapped :class:`~langchain_imagegen.errors.APIError`
    if the stream reports an error or sends something unusable.
    """

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        self._status = status
        self._request_id = request_id_from(headers)
        self._decoder = SSEDecoder()
        self._partials_seen = 0
        self._final: ImagesResponse | None = None
        self.error: APIError | None = None
        """The error the stream reported (an error event, an event that is not JSON)."""

    @property
    def completed(self) -> bool:
        """Whether the final image has arrived (the rest of the stream can be ignored)."""
        return self._final is not None

    @property
    def partials_seen(self) -> int:
        """Preview events received so far, including unusable ones that were skipped."""
        return self._partials_seen

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished event (see :attr:`SSEDecoder.buffered`)."""
        return self._decoder.buffered

    def feed(self, chunk: bytes) -> list[PartialImage]:
        """Decode ``chunk``; return the previews it completed, in order.

        An error event ends the stream: it is kept in :attr:`error` (and raised by
        :meth:`finish`), and the previews that came before it, even in the same chunk, are
        still returned: networks join events into one chunk as they like.
        """
        if self.error is not None:
            return []
        return self._take(self._decoder.feed(chunk))

    def finish(self, *, attempts: int = 1, elapsed_s: float = 0.0) -> ImagesResponse:
        """The body ended: return the final image as an :class:`ImagesResponse`.

        Raises :class:`~langchain_imagegen.errors.APIConnectionError` (retryable) if the stream
        ended before the final image: previews are not the final image.
        """
        if self.error is None:
            self._take(self._decoder.end())  # a last event missing its blank line counts
        if self.error is not None:
            raise self.error
        if self._final is None:
            raise self.cut()
        return dataclasses.replace(self._final, attempts=attempts, elapsed_s=elapsed_s)

    def cut(self, how: str | None = None) -> APIConnectionError:
        """The error for this stream ending before the final image (retryable, as a cut
        connection is); ``how`` it ended, if it broke off (``"RemoteProtocolError: ..."``)."""
        previews = self._partials_seen
        broke = f": {how}" if how else ""
        return APIConnectionError(
            f"the image stream ended before the final image arrived{broke} "
            f"({previews} preview{'' if previews == 1 else 's'} had arrived; "
            "previews are not the final image)",
            status_code=self._status,
            request_id=self._request_id,
        )

    def _take(self, events: list[ServerSentEvent]) -> list[PartialImage]:
        previews: list[PartialImage] = []
        for event in events:
            try:
                preview = self._take_event(event)
            except APIError as error:  # the stream failed; what came before it stands
                self.error = error
                break
            if preview is not None:
                previews.append(preview)
        return previews

    def _take_event(self, event: ServerSentEvent) -> PartialImage | None:
        text = event.data.strip()
        if text == _DONE:
            return None
        if self._final is not None:
            logger.debug("ignoring a %r event after the final image", event.event)
            return None
        payload: Any = {}
        if text:
            try:
                payload = json.loads(text)
            except ValueError:
                self._not_json(event, text)  # raises, unless the event is not ours
                return None
        fields: Mapping[str, Any] = payload if isinstance(payload, dict) else {}
        kind = _str(fields.get("type")) or event.event
        if kind == _ERROR or fields.get("error") or _reports_error(fields):
            raise self._error(payload, fields, kind, raw=text)
        if kind in _PARTIALS:
            return self._preview(fields)
        if kind in _COMPLETIONS:
            self._complete(fields, kind)
            return None
        logger.debug("ignoring an image stream event of unknown type %r", kind)
        return None

    def _not_json(self, event: ServerSentEvent, text: str) -> None:
        if event.event == _ERROR:
            raise self._error(None, {}, _ERROR, raw=text)
        if event.event not in _OURS:
            logger.debug("ignoring a non-JSON %r event", event.event)
            return
        raise MalformedResponseError(
            f"the server answered HTTP {self._status} but the stream's {event.event!r} event "
            f"is not JSON ({len(text)} characters): {_snippet(text)}",
            status_code=self._status,
            request_id=self._request_id,
        )

    def _preview(self, fields: Mapping[str, Any]) -> PartialImage | None:
        arrival = self._partials_seen
        self._partials_seen += 1
        b64 = fields.get("b64_json")
        if not isinstance(b64, str) or not b64.strip():
            logger.debug("skipping preview %d: it has no b64_json", arrival)
            return None
        index = fields.get("partial_image_index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            index = arrival
        return PartialImage(
            index=index,
            b64_json=b64,
            size=_str(fields.get("size")),
            quality=_str(fields.get("quality")),
            background=_str(fields.get("background")),
            output_format=_str(fields.get("output_format")),
        )

    def _complete(self, fields: Mapping[str, Any], kind: str) -> None:
        image = _image(fields)  # the final image, checked as a non-streamed ``data[]`` item is
        if isinstance(image, str):
            raise MalformedResponseError(
                f"the server answered HTTP {self._status} but the stream's {kind!r} event "
                f"holds no usable image: {image}",
                status_code=self._status,
                request_id=self._request_id,
            )
        usage = fields.get("usage")
        self._final = ImagesResponse(
            created=_created(fields.get("created_at", fields.get("created"))),
            images=(image,),
            usage=usage if isinstance(usage, dict) else None,
            size=_str(fields.get("size")),
            quality=_str(fields.get("quality")),
            background=_str(fields.get("background")),
            output_format=_str(fields.get("output_format")),
            request_id=self._request_id,
        )

    def _error(self, payload: Any, fields: Mapping[str, Any], kind: str, *, raw: str) -> APIError:
        inner = fields.get("error")
        if isinstance(inner, Mapping):
            details: Mapping[str, Any] = inner
        elif isinstance(inner, str):
            details = {"message": inner}
        elif fields:
            # Flat shape: the payload is the error; its ``type`` names the event, not the error.
            details = {k: v for k, v in fields.items() if not (k == "type" and v == kind)}
        else:
            details = {"message": f"the server reported an error in the stream: {_snippet(raw)}"}
        error = error_from_body(
            _status_of(details),
            {"error": details},
            request_id=self._request_id,
            raw_text=raw[: _SNIPPET * 4],
        )
        # The class comes from what the event says; the status and body stay what was received
        # (a 2xx status lets retry.is_retryable_error follow the class's ``retryable`` flag).
        error.status_code = self._status
        error.body = payload
        return error


def _reports_error(fields: Mapping[str, Any]) -> bool:
    """A bare ``{"message": ...}`` without an image: an error, as some gateways send it."""
    has_image = _str(fields.get("b64_json")) or _str(fields.get("url"))
    return bool(_str(fields.get("message"))) and not has_image


def _status_of(details: Mapping[str, Any]) -> int:
    for key in ("code", "type"):
        name = (_str(details.get(key)) or "").lower()
        if name in _STATUS_OF_ERROR:
            return _STATUS_OF_ERROR[name]
        if name.startswith("invalid_"):
            return 400
    return 500


def _snippet(text: str) -> str:
    return " ".join(text[: _SNIPPET * 4].split())[:_SNIPPET] or "(empty)"

"""Every exception the package raises, in one place (as httpx does).

API errors keep what the server said (status, code, param, type, request id) and carry a
``hint``: one sentence an LLM can act on. :func:`error_from_response` maps a response to
the right class, tolerating the gateway deviations of api-facts §7 (no envelope, ``param:
""``, unknown ``type`` strings, non-JSON bodies).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BillingError",
    "ConfigurationError",
    "ContentPolicyError",
    "CorruptImageError",
    "ImageGenError",
    "InvalidArgumentError",
    "MalformedResponseError",
    "MissingCredentialError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "StorageError",
    "error_from_body",
    "error_from_response",
]


class ImageGenError(Exception):
    """Base class of every error raised by langchain-imagegen."""

    hint: str = "the image generation failed"

    def agent_message(self) -> str:
        """The text an agent sees: what happened and what to do about it."""
        return f"{self}. {self.hint[:1].upper()}{self.hint[1:]}."


class InvalidArgumentError(ImageGenError, ValueError):
    """The proposed arguments cannot be turned into a valid request (e.g. a blank prompt)."""

    hint = "fix the arguments and call the tool again"


class ConfigurationError(ImageGenError):
    """The tool is not set up to reach an endpoint (no key, no Azure endpoint, ...)."""

    hint = "a person must fix the tool's configuration; retrying won't help"


class StorageError(ImageGenError, OSError):
    """An image could not be saved (unwritable or full output_dir, a bad download)."""

    hint = "the images were not saved; check output_dir (permissions, free space)"


class CorruptImageError(StorageError):
    """The server sent image data that is truncated, corrupt or not an image at all."""

    hint = "the server sent a damaged image; ask again (nothing was saved for it)"


class APIError(ImageGenError):
    """The Images API (or a gateway in front of it) answered with an error."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,  # the field's name in the API's error object
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param or None  # gateways send "" (api-facts §7)
        self.type = type
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        details = [
            f"HTTP {self.status}" if self.status is not None else "",
            self.code or "",
            f"request id {self.request_id}" if self.request_id else "",
        ]
        said = ", ".join(d for d in details if d)
        return f"{self.message} ({said})" if said else self.message


class BadRequestError(APIError):
    """400/422: the server rejected the request as invalid."""

    hint = "the server rejected the request; change the arguments named in the message"


class ContentPolicyError(BadRequestError):
    """The safety system refused the prompt or the generated image.

    Normalises ``content_policy_violation``, ``moderation_blocked`` (with its
    ``moderation_stage``), Azure ``content_filter`` / ``ResponsibleAIPolicyViolation``.
    """

    hint = (
        "the safety system refused this request; rephrase the prompt without the flagged "
        "content, do not retry it unchanged"
    )

    def __init__(self, message: str, *, stage: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.stage = stage


class BillingError(APIError):
    """The account's billing limit was reached (a 400, not a 429: api-facts §5.2)."""

    hint = "the account's billing limit is reached; a person must raise it, retrying won't help"


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""

    hint = "the API key was rejected; a person must fix the key, retrying won't help"


class MissingCredentialError(AuthenticationError, ConfigurationError):
    """No usable credential is configured; raised before any request is sent."""

    hint = "no API key or token is configured; a person must set one, retrying won't help"


class PermissionDeniedError(APIError):
    """403: the key may not use this model (e.g. organization not verified)."""

    hint = "this account may not use this model; a person must grant access, or use another model"


class ModelNotFoundError(APIError):
    """404 or ``model_not_found``: the model does not exist here or was shut down."""

    hint = "the model is not available on this endpoint; configure another model"


class RateLimitError(APIError):
    """429: too many requests; retried with backoff before this is raised."""

    retryable = True
    hint = "the rate limit is reached; wait a minute before asking for more images"


class ServerError(APIError):
    """5xx (or 408/409): a server-side failure; retried before this is raised."""

    retryable = True
    hint = "the image service failed; try again later"


class MalformedResponseError(APIError):
    """The server answered 2xx with something that is not a usable ImagesResponse."""

    hint = "the image service answered with something unusable; try again later"


class APIConnectionError(APIError):
    """The request never got an answer: DNS, refused or reset connection."""

    retryable = True
    hint = "the image service could not be reached; try again later"


class APITimeoutError(APIConnectionError):
    """No answer within the timeout."""

    hint = "the image service did not answer in time; try again later or ask for fewer images"


_POLICY_CODES = frozenset(
    {
        "content_policy_violation",
        "moderation_blocked",
        "content_filter",
        "contentfilter",
        "responsibleaipolicyviolation",
        "content_safety_violation",
        "image_content_policy_violation",
    }
)
_BILLING_CODES = frozenset(
    {"billing_hard_limit_reached", "insufficient_quota", "billing_not_active"}
)
_SNIPPET = 200


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _error_object(payload: Any) -> Mapping[str, Any] | None:
    """The error object of a body: enveloped (``{"error": {...}}``), bare (``{"message":
    ...}``, api-facts §7) or a plain string under ``error``."""
    if not isinstance(payload, Mapping):
        return None
    inner = payload.get("error")
    if isinstance(inner, Mapping):
        return inner
    if isinstance(inner, str):
        return {"message": inner}
    if "message" in payload and "data" not in payload:
        return payload
    return None


def _policy_stage(error: Mapping[str, Any]) -> str | None:
    details = error.get("moderation_details")
    if isinstance(details, Mapping):
        return _text(details.get("moderation_stage"))
    return None


def _is_policy(error: Mapping[str, Any], message: str) -> bool:
    codes = [error.get("code"), error.get("type")]
    inner = error.get("inner_error") or error.get("innererror")
    if isinstance(inner, Mapping):
        codes.append(inner.get("code"))
    if any(isinstance(c, str) and c.lower() in _POLICY_CODES for c in codes):
        return True
    lowered = message.lower()
    return "safety system" in lowered or "content filter" in lowered


def error_from_body(
    status: int | None,
    payload: Any,
    *,
    request_id: str | None = None,
    raw_text: str = "",
) -> APIError:
    """Build the right :class:`APIError` from a status and a decoded body (or ``None``)."""
    error = _error_object(payload)
    if error is None:
        snippet = " ".join(raw_text.split())[:_SNIPPET] or "(empty body)"
        message = f"the server answered with a non-JSON or unrecognised body: {snippet}"
        error = {}
    else:
        message = _text(error.get("message")) or "the server reported an error without a message"
    code = _text(error.get("code"))
    fields: dict[str, Any] = {
        "status": status,
        "code": code,
        "param": _text(error.get("param")),
        "type": _text(error.get("type")),
        "request_id": request_id,
        "body": payload,
    }
    lowered_code = (code or "").lower()
    if error and _is_policy(error, message):
        return ContentPolicyError(message, stage=_policy_stage(error), **fields)
    if lowered_code in _BILLING_CODES:
        return BillingError(message, **fields)
    if lowered_code == "model_not_found" or status == 404:
        return ModelNotFoundError(message, **fields)
    if status == 401 or lowered_code == "invalid_api_key":
        return AuthenticationError(message, **fields)
    if status == 403:
        return PermissionDeniedError(message, **fields)
    if status == 429 or lowered_code == "rate_limit_exceeded":
        return RateLimitError(message, **fields)
    if status is not None and (status >= 500 or status in (408, 409)):
        return ServerError(message, **fields)
    if status is not None and 200 <= status < 300:
        return MalformedResponseError(message, **fields)
    return BadRequestError(message, **fields)


def error_from_response(status: int, content: bytes, headers: Mapping[str, str]) -> APIError:
    """Map an HTTP response (any status) whose body is an error to an :class:`APIError`."""
    request_id = headers.get("x-request-id") or headers.get("apim-request-id")
    text = content.decode("utf-8", errors="replace")
    try:
        payload: Any = json.loads(text) if text.strip() else None
    except ValueError:
        payload = None
    return error_from_body(status, payload, request_id=request_id, raw_text=text)

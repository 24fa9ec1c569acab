"""Every exception the package raises, in one place (as httpx and openai-python do).

The hierarchy::

    ImageGenError                       anything this package raises
    ├── InvalidArgumentError            (also ValueError) the arguments cannot make a request
    ├── ConfigurationError              the tool is not set up to reach an endpoint
    │   └── MissingCredentialError      (also AuthenticationError) no key or token at all
    ├── StorageError                    (also OSError) the disk: output_dir unwritable or full
    ├── BudgetExceededError             refused before sending: the estimate is over what is left
    └── APIError                        the server (or a gateway in front of it) or the link
        ├── BadRequestError             400/422
        │   └── ContentPolicyError      the safety system refused the prompt or the image
        ├── BillingError                the account's billing limit (a 400, not a 429)
        ├── AuthenticationError         401
        ├── PermissionDeniedError       403
        ├── ModelNotFoundError          404 or ``model_not_found``
        ├── RateLimitError              429, retried first
        ├── InternalServerError         5xx, 408, 409, retried first
        ├── MalformedResponseError      a 2xx whose body is not a usable answer
        │   └── CorruptImageError       an image payload that is truncated or not an image
        ├── ImageDownloadError          an image URL could not be fetched (the link, not the disk)
        └── APIConnectionError          no answer: DNS, refused or reset connection
            └── APITimeoutError         no answer in time, or the call's deadline passed

Names and attributes follow openai-python's ``_exceptions.py`` where the concept is the same:
an :class:`APIError` has ``message``, ``body``, ``code``, ``param``, ``type``, and, when an HTTP
answer was received, ``status_code`` and ``request_id``. Every error carries a ``hint``: one
sentence an LLM can act on. :func:`error_from_response` maps a response to the right class,
tolerating what gateways do differently from OpenAI (no ``{"error": ...}`` envelope,
``param: ""``, unknown ``type`` strings, non-JSON bodies).
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
    "BudgetExceededError",
    "ConfigurationError",
    "ContentPolicyError",
    "CorruptImageError",
    "ImageDownloadError",
    "ImageGenError",
    "InternalServerError",
    "InvalidArgumentError",
    "MalformedResponseError",
    "MissingCredentialError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "StorageError",
    "error_from_body",
    "error_from_response",
    "request_id_from",
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
    """An image could not be saved: output_dir is unwritable or full (the disk's problem)."""

    hint = "the images were not saved; check output_dir (permissions, free space)"


def _usd(amount: float) -> str:
    """``$0.04``, ``$0.0401``, ``$1,234.50``: cents always, finer digits only when there are
    any (per-image prices go down to fractions of a cent)."""
    sign = "-" if amount < 0 else ""
    whole, _, fraction = f"{abs(amount):,.6f}".rstrip("0").partition(".")
    return f"{sign}${whole}.{fraction.ljust(2, '0')}"


class BudgetExceededError(ImageGenError):
    """A call was refused before any request was sent: its estimated cost is more than a
    budget has left, or more than the per-call cap (``max_cost_per_call``). Nothing was spent.

    ``estimated_usd`` is what the call would cost, ``remaining_usd`` what the budget has left
    (for the per-call cap: the cap), ``limit_usd`` the budget's limit (or the cap),
    ``reserved_usd`` what calls still running hold, ``what`` the call as the caller described it;
    ``reason`` is the message without "refused before sending".
    """

    retryable = False  # the same call is refused again; a smaller one may fit
    hint = (
        "nothing was sent or charged; ask for fewer images, a lower quality or a smaller size "
        "so the estimate fits, or stop generating images"
    )

    def __init__(
        self,
        *,
        estimated_usd: float,
        remaining_usd: float,
        limit_usd: float,
        what: str = "",
        reserved_usd: float = 0.0,
        per_call: bool = False,
    ) -> None:
        self.estimated_usd = estimated_usd
        self.remaining_usd = remaining_usd
        self.limit_usd = limit_usd
        self.reserved_usd = reserved_usd
        self.what = what
        self.per_call = per_call
        estimate = f"the estimate for {what or 'this call'} is {_usd(estimated_usd)}"
        if per_call:
            over = f"over the per-call limit of {_usd(limit_usd)}"
        elif remaining_usd > 0:
            over = f"but the budget has {_usd(remaining_usd)} left of {_usd(limit_usd)}"
        else:
            over = f"but the budget of {_usd(limit_usd)} is used up"
        held = (
            f" (calls still running hold another {_usd(reserved_usd)})"
            if reserved_usd > 0 and not per_call
            else ""
        )
        self.reason = f"{estimate}, {over}{held}"
        super().__init__(f"refused before sending: {self.reason}")

    @property
    def used_up(self) -> bool:
        """Whether the budget has nothing left, so no smaller call can fit either."""
        return not self.per_call and self.remaining_usd <= 0

    def agent_message(self) -> str:
        if self.used_up:
            return (
                f"{self}. Nothing was sent or charged. Stop generating images: "
                "a person must raise the budget."
            )
        return super().agent_message()


class APIError(ImageGenError):
    """The Images API (or a gateway in front of it) answered with an error."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,  # the field's name in the API's error object
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.param = param or None  # some gateways send "" for "no parameter"
        self.type = type
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        details = [
            f"HTTP {self.status_code}" if self.status_code is not None else "",
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
    """The account's billing limit was reached (OpenAI answers 400, not 429: docs/models.md)."""

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


class InternalServerError(APIError):
    """5xx (or 408/409): a server-side failure; retried before this is raised."""

    retryable = True
    hint = "the image service failed; try again later"


ServerError = InternalServerError
"""The 0.1.0 name; :class:`InternalServerError` is openai-python's name for it."""


class MalformedResponseError(APIError):
    """The server answered 2xx with something that is not a usable ImagesResponse."""

    hint = "the image service answered with something unusable; try again later"


class CorruptImageError(MalformedResponseError):
    """The server sent image data that is truncated, corrupt or not an image at all.

    A response error, not a storage one: the payload was damaged before it reached the disk.
    """

    hint = "the server sent a damaged image; ask again (nothing was saved for it)"


class ImageDownloadError(APIError):
    """An image URL the server returned could not be fetched.

    Raised for every download failure: a non-http(s) or invalid URL, a redirect loop or a
    redirect to a non-http(s) URL, a body over the size cap, an error status (an expired
    link's 403), an unreachable host after retries. The link or its server failed, not the
    disk. Messages name ``scheme://host/path`` only: image URLs carry signatures.
    """

    hint = "the image was generated but could not be downloaded; its URL may still work"


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
# Google answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
_AUTH_CODES = frozenset({"invalid_api_key", "unauthenticated", "api_key_invalid"})
_RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded", "resource_exhausted"})
_BILLING_CODES = frozenset(
    {"billing_hard_limit_reached", "insufficient_quota", "billing_not_active"}
)
_SNIPPET = 200


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _error_object(payload: Any) -> Mapping[str, Any] | None:
    """The error object of a body, in any of the shapes servers send (docs/providers.md):
    enveloped (``{"error": {...}}``, also inside a one-item list as Google sends it), bare
    (``{"message": ...}``, also with ``data: null`` as SiliconFlow sends it), a plain string under
    ``error`` (with a top-level ``code``, as xAI sends), or FastAPI's ``{"detail": ...}`` (a
    string, an object with an ``error`` or a ``message``, or a list of validation errors)."""
    if isinstance(payload, list) and payload:
        return _error_object(payload[0])  # Google's compatibility layer: [{"error": {...}}]
    if not isinstance(payload, Mapping):
        return None
    inner = payload.get("error")
    if isinstance(inner, Mapping):
        return inner
    if isinstance(inner, str):
        return {"message": inner, "code": payload.get("code")}
    if "message" in payload and not isinstance(payload.get("data"), list):
        return payload  # bare, or SiliconFlow's {code, message, data: null}
    detail = payload.get("detail")
    if isinstance(detail, str):
        return {"message": detail}
    if isinstance(detail, Mapping):
        return _error_object(detail) or {"message": json.dumps(detail)[:_SNIPPET]}
    if isinstance(detail, list) and detail:
        return {"message": "; ".join(_validation_problem(item) for item in detail[:5])}
    return None


def _validation_problem(item: Any) -> str:
    """One entry of FastAPI's validation error list: ``field: message``."""
    if not isinstance(item, Mapping):
        return str(item)[:_SNIPPET]
    where = item.get("loc")
    parts = where if isinstance(where, list) else []
    field = ".".join(str(part) for part in parts if part != "body")
    message = _text(item.get("msg")) or "invalid"
    return f"{field}: {message}" if field else message


def _policy_stage(error: Mapping[str, Any]) -> str | None:
    details = error.get("moderation_details")
    if isinstance(details, Mapping):
        return _text(details.get("moderation_stage"))
    return None


# How other providers word a moderation block (docs/providers.md): xAI "rejected by content
# moderation", Together "NSFW content detected", DeepInfra and vLLM-Omni "safety checker",
# SiliconFlow "sensitive content", OpenRouter "flagged by moderation".
_POLICY_PHRASES = (
    "safety system",
    "content filter",
    "content moderation",
    "nsfw",
    "safety checker",
    "sensitive content",
    "flagged by moderation",
)


def _codes(error: Mapping[str, Any]) -> list[str]:
    """Every code-like string of an error object, lower case: OpenAI's ``code`` and
    ``type``, Azure's inner error code, Google's ``status`` and its details' ``reason``."""
    found = [error.get("code"), error.get("type"), error.get("status")]
    inner = error.get("inner_error") or error.get("innererror")
    if isinstance(inner, Mapping):
        found.append(inner.get("code"))
    details = error.get("details")
    if isinstance(details, list):
        found += [item.get("reason") for item in details if isinstance(item, Mapping)]
    return [code.lower() for code in found if isinstance(code, str)]


def _is_policy(error: Mapping[str, Any], message: str) -> bool:
    if _POLICY_CODES.intersection(_codes(error)):
        return True
    metadata = error.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("reasons"):
        return True  # OpenRouter's moderation: the reasons the input was flagged
    lowered = message.lower()
    return any(phrase in lowered for phrase in _POLICY_PHRASES)


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
        "status_code": status,
        "code": code,
        "param": _text(error.get("param")),
        "type": _text(error.get("type")),
        "request_id": request_id,
        "body": payload,
    }
    codes = set(_codes(error))
    if error and _is_policy(error, message):
        return ContentPolicyError(message, stage=_policy_stage(error), **fields)
    if codes & _BILLING_CODES:
        return BillingError(message, **fields)
    if "model_not_found" in codes or status == 404:
        return ModelNotFoundError(message, **fields)
    if status == 401 or codes & _AUTH_CODES:
        return AuthenticationError(message, **fields)
    if status == 403:
        return PermissionDeniedError(message, **fields)
    if status == 429 or codes & _RATE_LIMIT_CODES:
        return RateLimitError(message, **fields)
    if status is not None and (status >= 500 or status in (408, 409)):
        return InternalServerError(message, **fields)
    if status is not None and 200 <= status < 300:
        return MalformedResponseError(message, **fields)
    return BadRequestError(message, **fields)


def request_id_from(headers: Mapping[str, str]) -> str | None:
    """The request id a response carries: OpenAI's ``x-request-id``, else Azure API
    Management's ``apim-request-id``."""
    return headers.get("x-request-id") or headers.get("apim-request-id")


def error_from_response(status: int, content: bytes, headers: Mapping[str, str]) -> APIError:
    """Map an HTTP response (any status) whose body is an error to an :class:`APIError`."""
    request_id = request_id_from(headers)
    text = content.decode("utf-8", errors="replace")
    try:
        payload: Any = json.loads(text) if text.strip() else None
    except ValueError:
        payload = None
    return error_from_body(status, payload, request_id=request_id, raw_text=text)

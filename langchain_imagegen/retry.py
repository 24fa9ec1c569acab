"""When to retry and how long to wait: pure decisions, no I/O, no clock unless passed one.

The rules copy openai-python (``BaseClient._should_retry`` and ``_calculate_retry_timeout`` in
``openai/_base_client.py``): retry 408, 409, 429 and 5xx,
honour ``x-should-retry`` from the server, wait what ``Retry-After`` (or ``retry-after-ms``)
asks for, otherwise back off exponentially (0.5 s doubling to 8 s) with up to 25 % jitter.
Two deliberate differences, both to keep an agent from hanging:

* a server-requested wait longer than :attr:`RetryPolicy.max_retry_after` means "give up now"
  (a Cloudflare 429 with ``retry-after: 54749`` must not park the agent for 15 hours), and
* every retry must fit before the call's deadline (by default :attr:`RetryPolicy.total_budget`
  after it started): the wall-clock bound of one logical request including its waits.

Content-policy refusals and billing limits are never retried, whatever their status or
headers say: the same request cannot succeed (docs/models.md).
"""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from langchain_imagegen.errors import APIError, BillingError, ContentPolicyError

__all__ = [
    "RetryPolicy",
    "backoff_delay",
    "is_retryable_error",
    "is_retryable_status",
    "next_delay",
    "retry_after_seconds",
]

_RETRYABLE_STATUSES = frozenset({408, 409, 429})
_JITTER = 0.25  # a delay is scaled by a factor drawn from [1 - _JITTER, 1]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one logical request.

    ``max_retries`` counts retries, so at most ``max_retries + 1`` attempts are made.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 120.0
    total_budget: float = 900.0
    """The wall-clock bound, in seconds, of one call: every attempt, wait and body read."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        for name in ("initial_delay", "max_delay", "max_retry_after", "total_budget"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """``headers[name]`` for lower-case ``name``, case-insensitively for plain dicts too."""
    value = headers.get(name)
    if value is not None:
        return value
    if isinstance(headers, dict):  # httpx.Headers is already case-insensitive
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == name:
                return str(item)
    return None


def _should_retry_header(headers: Mapping[str, str]) -> bool | None:
    value = _header(headers, "x-should-retry")
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def is_retryable_status(status: int, headers: Mapping[str, str]) -> bool:
    """Whether an HTTP error status is worth retrying (openai-python's rule).

    ``x-should-retry: true`` / ``false`` from the server overrides the status.
    """
    override = _should_retry_header(headers)
    if override is not None:
        return override
    return status in _RETRYABLE_STATUSES or status >= 500


def is_retryable_error(error: BaseException, headers: Mapping[str, str] | None = None) -> bool:
    """Whether the request that raised ``error`` may be sent again.

    Policy refusals and billing limits: never. An HTTP error status: :func:`is_retryable_status`.
    Otherwise (connection failures, timeouts, an error body inside a 2xx) the server's
    ``x-should-retry`` if any, else the class's ``retryable`` flag from :mod:`errors`.
    """
    if isinstance(error, (ContentPolicyError, BillingError)) or not isinstance(error, APIError):
        return False
    headers = headers or {}
    status = error.status_code
    if status is not None and not 200 <= status < 300:
        return is_retryable_status(status, headers)
    override = _should_retry_header(headers)
    return error.retryable if override is None else override


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait the server asked for, in seconds, or ``None`` if it asked for none.

    Reads ``retry-after-ms`` (OpenAI's own, milliseconds), then ``Retry-After`` as seconds
    or as an HTTP-date (relative to ``now``, Unix seconds, default ``time.time()``). A date
    in the past gives a negative number; unparseable values give ``None``.
    """
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            pass
        else:
            if not math.isnan(value):
                return value
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        return None if math.isnan(value) else value
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; "-0000" parses as naive
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() - (time.time() if now is None else now)


def backoff_delay(
    policy: RetryPolicy, retry_number: int, rng: random.Random | None = None
) -> float:
    """Exponential backoff for the ``retry_number``-th retry (1-based), with jitter.

    The base is ``initial_delay * 2 ** (retry_number - 1)`` capped at ``max_delay``; the
    result lies in ``[0.75 * base, base]``.
    """
    exponent = min(max(retry_number - 1, 0), 64)  # no overflow for absurd retry counts
    base = min(policy.initial_delay * 2.0**exponent, policy.max_delay)
    draw = rng.random() if rng is not None else random.random()  # noqa: S311 (jitter, not crypto)
    return base * (1.0 - _JITTER * draw)


def next_delay(
    policy: RetryPolicy,
    retry_number: int,
    headers: Mapping[str, str],
    remaining: float,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before the ``retry_number``-th retry (1-based), or ``None`` to give up.

    Gives up when the retries are spent, when the server asks for a wait longer than
    ``max_retry_after``, or when the wait would not end before the deadline, ``remaining``
    seconds away. Whether the failure is retryable at all is :func:`is_retryable_error`'s
    call, made before this one.
    """
    if retry_number > policy.max_retries:
        return None
    requested = retry_after_seconds(headers)
    if requested is not None and requested > 0:
        if requested > policy.max_retry_after:
            return None
        delay = requested
    else:
        delay = backoff_delay(policy, retry_number, rng)
    if delay >= remaining:
        return None
    return delay

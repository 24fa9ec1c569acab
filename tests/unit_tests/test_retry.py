"""Pure retry decisions: statuses, server hints, backoff bounds, caps and the budget."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import httpx
import pytest

from langchain_imagegen.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ContentPolicyError,
    MalformedResponseError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    error_from_body,
)
from langchain_imagegen.retry import (
    RetryPolicy,
    backoff_delay,
    is_retryable_error,
    is_retryable_status,
    next_delay,
    retry_after_seconds,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "expected"),
    [(408, True), (409, True), (429, True), (500, True), (502, True), (503, True), (599, True),
     (400, False), (401, False), (403, False), (404, False), (422, False)],
)  # fmt: skip
def test_retryable_statuses(status: int, expected: bool) -> None:
    assert is_retryable_status(status, {}) is expected


def test_x_should_retry_overrides_status() -> None:
    assert is_retryable_status(400, {"x-should-retry": "true"}) is True
    assert is_retryable_status(503, {"x-should-retry": "false"}) is False
    assert is_retryable_status(503, {"X-Should-Retry": "FALSE"}) is False
    assert is_retryable_status(503, httpx.Headers({"X-Should-Retry": "false"})) is False
    assert is_retryable_status(503, {"x-should-retry": "maybe"}) is True  # ignored


class TestRetryableError:
    def test_transient_classes(self) -> None:
        assert is_retryable_error(APIConnectionError("reset"))
        assert is_retryable_error(APITimeoutError("slow"))
        assert is_retryable_error(RateLimitError("slow down", status_code=429))
        assert is_retryable_error(ServerError("boom", status_code=502))

    @pytest.mark.parametrize(
        "error",
        [
            BadRequestError("bad", status_code=400),
            ContentPolicyError("no", status_code=400, code="content_policy_violation"),
            BillingError("pay", status_code=400, code="billing_hard_limit_reached"),
            AuthenticationError("key", status_code=401),
            PermissionDeniedError("verify", status_code=403),
            ModelNotFoundError("gone", status_code=404),
            MalformedResponseError("junk", status_code=200),
        ],
    )
    def test_never_retried(self, error: Exception) -> None:
        assert not is_retryable_error(error)

    def test_quota_429_is_not_retried(self) -> None:
        for code in ("insufficient_quota", "billing_hard_limit_reached"):
            error = error_from_body(429, {"error": {"message": "quota", "code": code}})
            assert isinstance(error, BillingError)
            assert not is_retryable_error(error, {})

    def test_policy_and_billing_ignore_x_should_retry(self) -> None:
        yes = {"x-should-retry": "true"}
        assert not is_retryable_error(ContentPolicyError("no", status_code=400), yes)
        assert not is_retryable_error(BillingError("pay", status_code=400), yes)
        assert is_retryable_error(BadRequestError("bad", status_code=400), yes)
        assert not is_retryable_error(
            ServerError("x", status_code=500), {"x-should-retry": "false"}
        )

    def test_error_inside_2xx_uses_class(self) -> None:
        assert is_retryable_error(RateLimitError("slow", status_code=200))
        assert not is_retryable_error(MalformedResponseError("junk", status_code=200))

    def test_not_an_api_error(self) -> None:
        assert not is_retryable_error(ValueError("x"))


class TestRetryAfter:
    def test_absent(self) -> None:
        assert retry_after_seconds({}) is None

    def test_seconds(self) -> None:
        assert retry_after_seconds({"retry-after": "7"}) == 7.0
        assert retry_after_seconds({"Retry-After": "1.5"}) == 1.5

    def test_milliseconds_win(self) -> None:
        assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25

    def test_bad_milliseconds_fall_back(self) -> None:
        assert retry_after_seconds({"retry-after-ms": "soon", "retry-after": "3"}) == 3.0

    def test_http_date(self) -> None:
        when = datetime.fromtimestamp(NOW + 30, tz=timezone.utc)
        value = retry_after_seconds({"retry-after": format_datetime(when, usegmt=True)}, NOW)
        assert value == pytest.approx(30.0)

    def test_http_date_in_the_past_is_negative(self) -> None:
        when = datetime.fromtimestamp(NOW - 10, tz=timezone.utc)
        value = retry_after_seconds({"retry-after": format_datetime(when, usegmt=True)}, NOW)
        assert value == pytest.approx(-10.0)

    def test_garbage(self) -> None:
        assert retry_after_seconds({"retry-after": "later please"}) is None
        assert retry_after_seconds({"retry-after": "nan"}) is None

    def test_httpx_headers(self) -> None:
        assert retry_after_seconds(httpx.Headers({"Retry-After": "4"})) == 4.0


class TestBackoff:
    @pytest.mark.parametrize(("retry", "base"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0)])
    def test_bounds(self, retry: int, base: float) -> None:
        policy = RetryPolicy()
        rng = random.Random(1)
        delays = [backoff_delay(policy, retry, rng) for _ in range(500)]
        assert min(delays) >= 0.75 * base
        assert max(delays) <= base
        assert len(set(delays)) > 1  # jittered

    def test_capped_at_max_delay(self) -> None:
        policy = RetryPolicy(max_delay=8.0)
        for retry in (6, 10, 1000):
            assert 6.0 <= backoff_delay(policy, retry, random.Random(0)) <= 8.0

    def test_default_rng(self) -> None:
        assert 0.375 <= backoff_delay(RetryPolicy(), 1) <= 0.5


class TestNextDelay:
    def test_backoff_without_header(self) -> None:
        delay = next_delay(RetryPolicy(), 1, {}, 900.0, random.Random(0))
        assert delay is not None
        assert 0.375 <= delay <= 0.5

    def test_retries_spent(self) -> None:
        policy = RetryPolicy(max_retries=2)
        assert next_delay(policy, 2, {}, 900.0) is not None
        assert next_delay(policy, 3, {}, 900.0) is None
        assert next_delay(RetryPolicy(max_retries=0), 1, {}, 900.0) is None

    def test_honours_retry_after(self) -> None:
        assert next_delay(RetryPolicy(), 1, {"retry-after": "20"}, 900.0) == 20.0
        assert next_delay(RetryPolicy(), 1, {"retry-after-ms": "1500"}, 900.0) == 1.5

    def test_retry_after_at_the_cap_is_honoured(self) -> None:
        assert next_delay(RetryPolicy(), 1, {"retry-after": "120"}, 900.0) == 120.0

    def test_retry_after_beyond_cap_gives_up(self) -> None:
        # Cloudflare's 1015 rate-limit block answers retry-after: 54749 (15 hours).
        assert next_delay(RetryPolicy(), 1, {"retry-after": "54749"}, 900.0) is None
        assert next_delay(RetryPolicy(max_retry_after=5), 1, {"retry-after": "6"}, 900.0) is None

    def test_non_positive_retry_after_uses_backoff(self) -> None:
        delay = next_delay(RetryPolicy(), 2, {"retry-after": "0"}, 900.0, random.Random(0))
        assert delay is not None
        assert 0.75 <= delay <= 1.0

    def test_wait_must_end_before_the_deadline(self) -> None:
        policy = RetryPolicy()
        assert next_delay(policy, 1, {"retry-after": "30"}, remaining=40.0) == 30.0
        assert next_delay(policy, 1, {"retry-after": "30"}, remaining=25.0) is None
        assert next_delay(policy, 1, {"retry-after": "30"}, remaining=30.0) is None
        assert next_delay(policy, 1, {}, remaining=0.0) is None
        assert next_delay(policy, 1, {}, remaining=-150.0) is None


def test_policy_defaults_match_openai_python() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.initial_delay, policy.max_delay) == (2, 0.5, 8.0)
    assert policy.max_retry_after == 120.0
    assert policy.total_budget == 900.0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"initial_delay": -0.1}, {"total_budget": float("inf")},
     {"max_delay": float("nan")}],
)  # fmt: skip
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]

"""Rate limits before a request is sent: LangChain's rate limiters, and images per minute.

A tool's ``rate_limiter`` is any ``langchain_core.rate_limiters.BaseRateLimiter`` (as chat
models take): it is acquired once before every HTTP request a call makes, fan-out requests
included, from their threads or tasks. Providers that limit images rather than requests
(OpenAI's image models: images per minute) get :class:`ImagesPerMinute`, acquired once per
image a request asks for. A limiter shared by several tools limits them together; one
shared by several worker processes must be backed by a shared store (see docs/cost.md).

Waiting is bounded by the call's deadline: a call that would wait past it ends with
:class:`~langchain_imagegen.errors.APITimeoutError` and sends nothing more. A 429 answer
still wins: the client waits as the server says (``Retry-After``) before retrying.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.rate_limiters import BaseRateLimiter

from langchain_imagegen.errors import APITimeoutError, InvalidArgumentError

__all__ = ["ImagesPerMinute", "RequestLimits"]

_POLL_S = 0.02
"""How often a waiting request asks its limiter again (the limiter's own check interval
may be longer)."""


class ImagesPerMinute(BaseRateLimiter):
    """At most ``images_per_minute`` images a minute: a token bucket that starts full (the
    first ``images_per_minute`` images go at once, as a fresh minute allows) and refills
    continuously. Safe across threads and asyncio tasks; ``acquire`` takes one image."""

    def __init__(self, images_per_minute: float, *, clock: Callable[[], float] = time.monotonic):
        if not images_per_minute > 0:
            raise InvalidArgumentError(
                f"images_per_minute must be positive, got {images_per_minute!r}"
            )
        self.images_per_minute = images_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(images_per_minute)
        self._last = clock()

    def _take(self) -> bool:
        with self._lock:
            now = self._clock()
            rate = self.images_per_minute / 60.0
            self._tokens = min(self.images_per_minute, self._tokens + (now - self._last) * rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def acquire(self, *, blocking: bool = True) -> bool:
        while not self._take():
            if not blocking:
                return False
            time.sleep(_POLL_S)
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        while not self._take():
            if not blocking:
                return False
            await asyncio.sleep(_POLL_S)
        return True

    def __repr__(self) -> str:
        return f"ImagesPerMinute({self.images_per_minute:g})"


@dataclass(frozen=True)
class RequestLimits:
    """The limiters one request waits for: ``per_request`` once, ``per_image`` once for
    each image the request asks for."""

    per_request: BaseRateLimiter | None = None
    per_image: BaseRateLimiter | None = None

    def __bool__(self) -> bool:
        return self.per_request is not None or self.per_image is not None

    def _turns(self, images: int) -> list[BaseRateLimiter]:
        turns = [self.per_request] if self.per_request is not None else []
        if self.per_image is not None:
            turns += [self.per_image] * max(1, images)
        return turns

    def wait(self, images: int, deadline: float, clock: Callable[[], float]) -> None:
        """Block until every limiter lets a request of ``images`` images go.

        Raises:
            APITimeoutError: ``deadline`` (on ``clock``) would pass first.
        """
        for limiter in self._turns(images):
            while not limiter.acquire(blocking=False):
                _check(deadline, clock)
                time.sleep(_POLL_S)

    async def await_turn(self, images: int, deadline: float, clock: Callable[[], float]) -> None:
        """:meth:`wait`, without blocking the event loop."""
        for limiter in self._turns(images):
            while not await limiter.aacquire(blocking=False):
                _check(deadline, clock)
                await asyncio.sleep(_POLL_S)


def _check(deadline: float, clock: Callable[[], float]) -> None:
    if clock() >= deadline:
        raise APITimeoutError(
            "the call's time budget (retry_budget) ran out while waiting for the rate limit "
            "(rate_limiter / images_per_minute); the request was not sent"
        )

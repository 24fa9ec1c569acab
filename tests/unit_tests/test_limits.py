"""ImagesPerMinute on an injected clock, RequestLimits' turns, and the tool's limiters:
kept across reconfiguration, shared by copies, refused by pickles."""

from __future__ import annotations

import copy
import pickle

import pytest
from langchain_core.rate_limiters import InMemoryRateLimiter
from pydantic import SecretStr

from langchain_imagegen.errors import APITimeoutError, InvalidArgumentError
from langchain_imagegen.limits import ImagesPerMinute, RequestLimits
from langchain_imagegen.tool import ImageGenerationTool


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_fresh_minute_allows_its_images_at_once_then_one_per_interval() -> None:
    clock = Clock()
    limiter = ImagesPerMinute(6, clock=clock)
    assert [limiter.acquire(blocking=False) for _ in range(7)] == [True] * 6 + [False]
    clock.now += 9.9  # one image every 10 s
    assert not limiter.acquire(blocking=False)
    clock.now += 0.1
    assert limiter.acquire(blocking=False)
    clock.now += 600  # the bucket holds a minute's images, no more
    assert [limiter.acquire(blocking=False) for _ in range(7)] == [True] * 6 + [False]


async def test_the_async_acquire_takes_from_the_same_bucket() -> None:
    clock = Clock()
    limiter = ImagesPerMinute(1, clock=clock)
    assert await limiter.aacquire(blocking=False)
    assert not await limiter.aacquire(blocking=False)
    assert not limiter.acquire(blocking=False)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_images_per_minute_must_be_positive(bad: float) -> None:
    with pytest.raises(InvalidArgumentError, match="images_per_minute must be positive"):
        ImagesPerMinute(bad)


def test_a_request_waits_once_per_request_and_once_per_image() -> None:
    clock = Clock()
    per_image = ImagesPerMinute(3, clock=clock)
    limits = RequestLimits(per_image=per_image)
    limits.wait(3, deadline=clock.now + 1, clock=clock)  # the minute's three images
    with pytest.raises(APITimeoutError, match="waiting for the rate limit"):
        limits.wait(1, deadline=clock.now, clock=clock)
    assert not RequestLimits()


def _tool(**kwargs: object) -> ImageGenerationTool:
    return ImageGenerationTool(api_key=SecretStr("sk-test"), **kwargs)  # type: ignore[arg-type]


def test_the_images_per_minute_limiter_is_the_tools_state_across_changes() -> None:
    tool = _tool(images_per_minute=5)
    limiter = tool._image_limiter()
    assert isinstance(limiter, ImagesPerMinute)
    tool.max_images = 3  # another field: the same bucket
    assert tool._image_limiter() is limiter
    tool.images_per_minute = 10  # a new limit: a new bucket
    assert tool._image_limiter() is not limiter


def test_copies_share_the_limiters_and_pickles_refuse_them() -> None:
    limiter = InMemoryRateLimiter(requests_per_second=1)
    tool = _tool(rate_limiter=limiter)
    assert tool.model_copy(deep=True).rate_limiter is limiter
    assert copy.deepcopy(tool).rate_limiter is limiter
    with pytest.raises(TypeError, match="rate limiters"):
        pickle.dumps(tool)
    assert "rate_limiter" not in tool.model_dump()

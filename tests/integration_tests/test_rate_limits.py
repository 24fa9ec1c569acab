"""Rate limits, measured on the emulator: a ``rate_limiter`` of R requests a second makes a
fan-out of N requests take at least (N - 1) / R seconds and never lets more than R requests
reach the server in any second; the wait ends at the call's deadline with nothing sent; an
images-per-minute limit counts images, shared by the tools of ``image_tools``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.rate_limiters import InMemoryRateLimiter

from langchain_imagegen import image_tools
from langchain_imagegen.errors import APITimeoutError
from langchain_imagegen.limits import ImagesPerMinute
from langchain_imagegen.tool import ImageGenerationTool
from tests.conftest import EMULATOR_KEY
from tests.integration_tests.conftest import LIVE, Target

pytestmark = LIVE

RATE = 5.0  # requests a second
JITTER_S = 0.05  # loopback and thread scheduling between the limiter and the server
POLL_S = 0.01  # how often the limiter looks for a token
# The limiter refills by elapsed time and polls every POLL_S: a token taken up to one poll
# late leaves that much towards the next, so requests may follow 1 / RATE - POLL_S apart.
SPACING_S = 1 / RATE - POLL_S


def _tool(target: Target, made: list[ImageGenerationTool], tmp_path: Path, **kwargs: Any) -> Any:
    tool = ImageGenerationTool(
        model="dall-e-3",  # one image per request: n images are n requests
        api_key=EMULATOR_KEY,
        base_url=target.base_url,
        output_dir=str(tmp_path),
        max_images=10,
        **kwargs,
    )
    made.append(tool)
    return tool


def _call(tool: Any, mode: str, args: dict[str, Any]) -> Any:
    return tool.generate(args) if mode == "sync" else asyncio.run(tool.agenerate(args))


def _most_in_any_second(times: list[float]) -> int:
    """The most requests that arrived within a window that RATE + 1 requests spaced as the
    limiter allows cannot fit in (about one second, less the polling and the jitter)."""
    window = RATE * SPACING_S - JITTER_S  # RATE requests never fit in it
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_fan_out_waits_for_the_rate_limiter(
    target: Target, made: list[ImageGenerationTool], tmp_path: Path, mode: str
) -> None:
    limiter = InMemoryRateLimiter(
        requests_per_second=RATE, check_every_n_seconds=POLL_S, max_bucket_size=1
    )
    tool = _tool(target, made, tmp_path, rate_limiter=limiter)
    images = int(RATE) + 1  # the fewest that must not all fit in a second: about 1 s of waits

    result = _call(tool, mode, {"prompt": "a lighthouse", "n": images})

    assert len(result.images) == images
    times = sorted(request.received_at for request in target.requests())
    assert len(times) == images
    assert times[-1] - times[0] >= (images - 1) * SPACING_S - JITTER_S
    assert _most_in_any_second(times) <= RATE


def test_one_limiter_limits_two_tools_together(
    target: Target, made: list[ImageGenerationTool], tmp_path: Path
) -> None:
    limiter = InMemoryRateLimiter(
        requests_per_second=RATE, check_every_n_seconds=POLL_S, max_bucket_size=1
    )
    first = _tool(target, made, tmp_path, rate_limiter=limiter)
    second = _tool(target, made, tmp_path, rate_limiter=limiter)

    async def both() -> None:
        await asyncio.gather(
            first.agenerate({"prompt": "a fox", "n": 3}),
            second.agenerate({"prompt": "a cat", "n": 3}),
        )

    asyncio.run(both())

    times = sorted(request.received_at for request in target.requests())
    assert len(times) == 6
    assert times[-1] - times[0] >= 5 * SPACING_S - JITTER_S
    assert _most_in_any_second(times) <= RATE


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_waiting_ends_at_the_deadline_and_sends_nothing(
    target: Target, made: list[ImageGenerationTool], tmp_path: Path, mode: str
) -> None:
    # One request every 100 s, and the first token takes that long to come. Any budget far
    # below that shows the wait ending at the deadline; a short one keeps the test short.
    limiter = InMemoryRateLimiter(requests_per_second=0.01, check_every_n_seconds=0.01)
    tool = _tool(target, made, tmp_path, rate_limiter=limiter, retry_budget=0.2)

    with pytest.raises(APITimeoutError, match="waiting for the rate limit"):
        _call(tool, mode, {"prompt": "a fox"})

    assert target.requests() == []


def test_images_per_minute_counts_images_and_is_shared_by_image_tools(
    target: Target, made: list[ImageGenerationTool], tmp_path: Path
) -> None:
    generate, edit = image_tools(
        model="gpt-image-1",
        api_key=EMULATOR_KEY,
        base_url=target.base_url,
        output_dir=str(tmp_path),
        images_per_minute=3,
        # Per call: the first two take tens of ms; the third waits it out (for its 20 s token).
        retry_budget=0.5,
    )
    made.extend([generate, edit])  # type: ignore[list-item]
    assert generate.image_rate_limiter is edit.image_rate_limiter
    assert isinstance(generate.image_rate_limiter, ImagesPerMinute)

    first = generate.generate({"prompt": "a fox", "n": 2})  # two of this minute's three
    handle = first.images[0].handle
    edit.edit({"prompt": "bluer", "images": [handle]})  # the third
    with pytest.raises(APITimeoutError, match="rate limit"):
        generate.generate({"prompt": "a cat"})  # the next one comes in 20 s

    generation, edition = target.requests()  # the third call sent nothing
    assert (generation.is_edit, edition.is_edit) == (False, True)

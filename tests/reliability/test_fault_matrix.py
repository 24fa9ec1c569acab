"""Fault matrix: every way the Images API (or a gateway in front of it) misbehaves, end to end.

Each case scripts the emulator's FIFO fault queue, calls the tool, and checks three things:
the right retries happened (the emulator counts the generation requests it received), the
caller gets the right error class (``tool.generate`` / ``agenerate`` raise it) and the LLM the
right message (``tool.invoke(ToolCall)`` answers an error ``ToolMessage``), and nothing is left
half-written in ``output_dir`` (no ``.part`` file, no file for a failed image).

Time is fake where waiting is not the point: each case runs the tool's own configuration
(its endpoint, timeout and retry policy, its ``output_dir``) through an
:class:`~langchain_imagegen.client.ImagesClient` on a :class:`~tests.fake_time.FakeTime`, so a
Retry-After of 0.8 s is recorded (and checked exactly) instead of slept. The LLM's message is
checked through ``tool.invoke`` itself, in real time, for every case that makes one attempt
(no wait), and for a few cases where real timing is the point: a Retry-After honoured on the
wall clock, and read timeouts (httpx's timer is real whatever the clock says).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from langchain_imagegen.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ContentPolicyError,
    CorruptImageError,
    ImageGenError,
    InternalServerError,
    MalformedResponseError,
    PermissionDeniedError,
    RateLimitError,
)
from langchain_imagegen.generation import ImageGenerator
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.storage import ImageStore
from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import Emulator, Fault
from tests.fake_time import FakeTime
from tests.reliability.conftest import EMULATOR_MARKS, MakeTool, files_under, tool_call

pytestmark = EMULATOR_MARKS

PROMPT = "a lighthouse at dawn, watercolor"


def _requests(emulator: Emulator) -> int:
    return emulator.stats().generation_requests


def _no_partial_files(out_dir: Path) -> None:
    leftovers = [p for p in files_under(out_dir) if p.name.endswith(".part")]
    assert not leftovers, leftovers


def _on_fake_time(tool: ImageGenerationTool, fake: FakeTime) -> ImageGenerator:
    """The tool's configuration, with its client on ``fake`` time (nothing slept for real)."""
    return ImageGenerator(
        fake.client_for(tool),
        ImageStore(tool.output_dir),
        download_urls=tool.download_urls,
        max_download_bytes=tool.max_download_bytes,
    )


def _run(tool: ImageGenerationTool, fake: FakeTime, args: dict[str, Any]) -> ImageGenerationResult:
    return _on_fake_time(tool, fake).run(tool.coerce(args))


async def _arun(
    tool: ImageGenerationTool, fake: FakeTime, args: dict[str, Any]
) -> ImageGenerationResult:
    return await _on_fake_time(tool, fake).arun(tool.coerce(args))


# --------------------------------------------------------------------------------------------
# Failures: the right error after the right number of attempts, nothing on disk
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A scripted failure and what it must end in."""

    faults: Callable[[], list[Fault]]
    error: type[ImageGenError]
    requests: int
    """Generation requests the emulator must receive for one call."""
    says: tuple[str, ...]
    """Fragments the LLM's error message must contain (case-insensitive)."""
    tool: dict[str, Any] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=lambda: {"prompt": PROMPT})
    waits: tuple[float, ...] | None = None
    """The waits the server asked for (Retry-After), exactly; None: backoff, counted only."""
    max_seconds: float = 2.0
    """A bound on a single-attempt call on the real clock (generous)."""


FAILURES: dict[str, Failure] = {
    "429 every time: retried up to max_retries, then RateLimitError": Failure(
        lambda: [Fault.rate_limit(retry_after=0.1)] * 2,
        RateLimitError,
        requests=2,
        says=("rate limit", "wait"),
        tool={"max_retries": 1},
        waits=(0.1,),
    ),
    "429 Retry-After above the 120 s cap: no retry at all": Failure(
        lambda: [Fault.cloudflare_1015(retry_after=54749)],
        RateLimitError,
        requests=1,
        says=("error code: 1015", "rate limit"),
    ),
    "429 Retry-After beyond the retry budget: no retry at all": Failure(
        lambda: [Fault.rate_limit(retry_after=5)],
        RateLimitError,
        requests=1,
        says=("rate limit",),
        tool={"retry_budget": 2.0},
    ),
    "500 every time: retried, then InternalServerError": Failure(
        lambda: [Fault.server_error()] * 2,
        InternalServerError,
        requests=2,
        says=("HTTP 500", "try again later"),
        tool={"max_retries": 1},
    ),
    "502 HTML page every time: retried, then InternalServerError with a short snippet": Failure(
        lambda: [Fault.bad_gateway()] * 2,
        InternalServerError,
        requests=2,
        says=("502 Bad Gateway", "HTTP 502"),
        tool={"max_retries": 1},
    ),
    "503 every time: retried, then InternalServerError": Failure(
        lambda: [Fault.service_unavailable(retry_after=0.1)] * 3,
        InternalServerError,
        requests=3,
        says=("overloaded", "HTTP 503"),
        waits=(0.1, 0.1),
    ),
    "connection reset every time: retried, then APIConnectionError": Failure(
        lambda: [Fault.connection_reset()] * 2,
        APIConnectionError,
        requests=2,
        says=("could not reach 127.0.0.1", "could not be reached"),
        tool={"max_retries": 1},
    ),
    "read timeout (0.2 s timeout, 1 s server, max_retries=0): APITimeoutError": Failure(
        lambda: [Fault.read_timeout(1.0)],
        APITimeoutError,
        requests=1,
        says=("within the timeout", "did not answer in time"),
        tool={"timeout": 0.2, "max_retries": 0},
        max_seconds=0.9,
    ),
    "200 with half a JSON body: MalformedResponseError, not retried": Failure(
        lambda: [Fault.invalid_json()],
        MalformedResponseError,
        requests=1,
        says=("not JSON", "unusable"),
    ),
    "200 carrying an error object: MalformedResponseError, not retried": Failure(
        lambda: [Fault.error_in_200()],
        MalformedResponseError,
        requests=1,
        says=("The server had an error", "HTTP 200"),
    ),
    "200 carrying a content-filter error (legacy Azure): ContentPolicyError": Failure(
        lambda: [Fault.azure_legacy_content_filter()],
        ContentPolicyError,
        requests=1,
        says=("safety system", "rephrase"),
    ),
    "200 with empty data: MalformedResponseError, not retried": Failure(
        lambda: [Fault.empty_data()],
        MalformedResponseError,
        requests=1,
        says=("no images", "`data` is empty"),
    ),
    "truncated base64: CorruptImageError, nothing saved": Failure(
        lambda: [Fault.truncated_base64()],
        CorruptImageError,
        requests=1,
        says=("truncated or corrupt", "damaged image"),
        args={"prompt": PROMPT, "n": 2},
    ),
    "truncated file behind a URL (download_urls): CorruptImageError, nothing saved": Failure(
        lambda: [Fault.truncated_base64()],
        CorruptImageError,
        requests=1,
        says=("truncated or corrupt",),
        tool={"model": "dall-e-2", "download_urls": True},
    ),
    "400 moderation_blocked: ContentPolicyError, never retried": Failure(
        lambda: [Fault.moderation_blocked()],
        ContentPolicyError,
        requests=1,
        says=("safety system", "do not retry it unchanged"),
    ),
    "403 organization not verified: PermissionDeniedError, never retried": Failure(
        lambda: [Fault.org_not_verified()],
        PermissionDeniedError,
        requests=1,
        says=("must be verified", "a person must grant access"),
    ),
    "401 wrong key: AuthenticationError, never retried": Failure(
        lambda: [],
        AuthenticationError,
        requests=1,
        says=("Incorrect API key", "retrying won't help"),
        tool={"api_key": "sk-wrong-key-0123456789"},
    ),
}


def _check_failure(
    case: Failure, emulator: Emulator, out_dir: Path, error: ImageGenError, fake: FakeTime
) -> None:
    assert isinstance(error, case.error), repr(error)
    assert len(str(error)) < 600  # a snippet of an error page, never the page
    assert _requests(emulator) == case.requests
    assert len(fake.slept) == case.requests - 1  # one wait before each retry, none after
    if case.waits is not None:
        assert fake.slept == list(case.waits)  # what the server asked for, exactly
    assert files_under(out_dir) == []  # no image for a failed call, no .part file
    assert not emulator.faults  # every scripted fault was consumed: no more, no fewer attempts
    text = error.agent_message().lower()
    for fragment in case.says:
        assert fragment.lower() in text, (fragment, text)


def _check_error_message(case: Failure, message: Any, emulator: Emulator, out_dir: Path) -> None:
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.tool_call_id == "call_1"
    text = str(message.content).lower()
    for fragment in case.says:
        assert fragment.lower() in text, (fragment, message.content)
    assert _requests(emulator) == case.requests
    assert files_under(out_dir) == []


@pytest.mark.parametrize("name", list(FAILURES))
def test_failure_sync(name: str, emulator: Emulator, make_tool: MakeTool, out_dir: Path) -> None:
    case = FAILURES[name]
    tool = make_tool(**case.tool)
    fake = FakeTime()
    emulator.push_fault(*case.faults())
    with pytest.raises(ImageGenError) as raised:
        _run(tool, fake, case.args)
    _check_failure(case, emulator, out_dir, raised.value, fake)

    if case.requests == 1:  # nothing to wait for: the tool itself, on the real clock
        emulator.reset_stats()
        emulator.push_fault(*case.faults())
        started = time.monotonic()
        message = tool.invoke(tool_call(case.args))
        assert time.monotonic() - started < case.max_seconds
        _check_error_message(case, message, emulator, out_dir)


@pytest.mark.parametrize("name", list(FAILURES))
async def test_failure_async(
    name: str, emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    case = FAILURES[name]
    tool = make_tool(**case.tool)
    fake = FakeTime()
    try:
        emulator.push_fault(*case.faults())
        with pytest.raises(ImageGenError) as raised:
            await _arun(tool, fake, case.args)
        _check_failure(case, emulator, out_dir, raised.value, fake)

        if case.requests == 1:
            emulator.reset_stats()
            emulator.push_fault(*case.faults())
            started = time.monotonic()
            message = await tool.ainvoke(tool_call(case.args))
            assert time.monotonic() - started < case.max_seconds
            _check_error_message(case, message, emulator, out_dir)
    finally:
        await tool.aclose()


# --------------------------------------------------------------------------------------------
# Transient failures then success: retried, and the result says so
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    faults: Callable[[], list[Fault]]
    attempts: int
    waits: tuple[float, ...] | None = None
    """The waits the server asked for (Retry-After), exactly; None: backoff, counted only."""
    tool: dict[str, Any] = field(default_factory=dict)


RECOVERIES: dict[str, Recovery] = {
    "429 with Retry-After: 0.8 s, honoured, then success": Recovery(
        lambda: [Fault.rate_limit(retry_after=0.8)], attempts=2, waits=(0.8,)
    ),
    "429 with retry-after-ms: 300, honoured, then success": Recovery(
        lambda: [Fault.rate_limit(retry_after_ms=300)], attempts=2, waits=(0.3,)
    ),
    "500 then success": Recovery(lambda: [Fault.server_error()], attempts=2),
    "502 HTML then success": Recovery(lambda: [Fault.bad_gateway()], attempts=2),
    "503 with Retry-After then success": Recovery(
        lambda: [Fault.service_unavailable(retry_after=0.2)], attempts=2, waits=(0.2,)
    ),
    "503, 500, then success (two retries)": Recovery(
        lambda: [Fault.service_unavailable(retry_after=0.1), Fault.server_error()], attempts=3
    ),
    "connection reset then success": Recovery(lambda: [Fault.connection_reset()], attempts=2),
    "connection closed without answer then success": Recovery(
        lambda: [Fault.connection_close()], attempts=2
    ),
    "read timeout (0.2 s) then success": Recovery(
        lambda: [Fault.read_timeout(1.0)], attempts=2, tool={"timeout": 0.2}
    ),
}


def _check_recovery(
    case: Recovery, emulator: Emulator, out_dir: Path, result: ImageGenerationResult, fake: FakeTime
) -> None:
    assert len(result.images) == 1
    assert result.requests[0].attempts == case.attempts
    assert result.requests[0].error is None
    assert _requests(emulator) == case.attempts
    assert len(fake.slept) == case.attempts - 1
    if case.waits is not None:
        assert fake.slept == list(case.waits)
    assert [Path(image.path or "") for image in result.images] == files_under(out_dir)
    _no_partial_files(out_dir)


@pytest.mark.parametrize("name", list(RECOVERIES))
def test_recovery_sync(name: str, emulator: Emulator, make_tool: MakeTool, out_dir: Path) -> None:
    case = RECOVERIES[name]
    tool = make_tool(**case.tool)
    fake = FakeTime()
    emulator.push_fault(*case.faults())
    _check_recovery(case, emulator, out_dir, _run(tool, fake, {"prompt": PROMPT}), fake)


@pytest.mark.parametrize("name", list(RECOVERIES))
async def test_recovery_async(
    name: str, emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    case = RECOVERIES[name]
    tool = make_tool(**case.tool)
    fake = FakeTime()
    try:
        emulator.push_fault(*case.faults())
        result = await _arun(tool, fake, {"prompt": PROMPT})
        _check_recovery(case, emulator, out_dir, result, fake)
    finally:
        await tool.aclose()


# Where real time is the point: the wait the server asked for is really waited, through the
# tool itself, and a read timeout fires on httpx's real timer.
REAL_TIME = {
    "429 with retry-after-ms: 300, honoured, then success": 0.3,
    "read timeout (0.2 s) then success": 0.2,
}


@pytest.mark.parametrize("name", list(REAL_TIME))
def test_recovery_in_real_time_sync(
    name: str, emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    case = RECOVERIES[name]
    tool = make_tool(**case.tool)
    emulator.push_fault(*case.faults())
    started = time.monotonic()
    message = tool.invoke(tool_call({"prompt": PROMPT}))
    assert time.monotonic() - started >= REAL_TIME[name]
    assert message.status == "success", message.content
    assert message.artifact.requests[0].attempts == case.attempts
    assert _requests(emulator) == case.attempts
    assert [Path(image.path) for image in message.artifact.images] == files_under(out_dir)


@pytest.mark.parametrize("name", list(REAL_TIME))
async def test_recovery_in_real_time_async(
    name: str, emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    case = RECOVERIES[name]
    tool = make_tool(**case.tool)
    try:
        emulator.push_fault(*case.faults())
        started = time.monotonic()
        message = await tool.ainvoke(tool_call({"prompt": PROMPT}))
        assert time.monotonic() - started >= REAL_TIME[name]
        assert message.status == "success", message.content
        assert message.artifact.requests[0].attempts == case.attempts
        assert _requests(emulator) == case.attempts
    finally:
        await tool.aclose()


# --------------------------------------------------------------------------------------------
# Partial results: fewer images than asked, one request of a fan-out failing
# --------------------------------------------------------------------------------------------


def test_fewer_images_than_asked_is_a_reported_shortfall(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    tool = make_tool()
    emulator.push_fault(Fault.fewer_images(1))
    message = tool.invoke(tool_call({"prompt": PROMPT, "n": 3}))
    assert message.status == "success"
    result = message.artifact
    assert len(result.images) == 2
    assert result.shortfall == 1
    assert "Asked for 3 images but received 2; 1 missing." in message.content
    assert _requests(emulator) == 1  # a short answer is not retried
    assert sorted(Path(image.path) for image in result.images) == files_under(out_dir)


def test_one_request_of_a_fan_out_failing_keeps_the_others(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    tool = make_tool(model="dall-e-3", max_retries=0)
    emulator.push_fault(Fault.moderation_blocked())  # whichever request comes first
    message = tool.invoke(tool_call({"prompt": PROMPT, "n": 3}))
    assert message.status == "success"
    result = message.artifact
    assert len(result.images) == 2
    assert len(result.errors) == 1
    assert "Request failed:" in message.content
    assert "safety system" in message.content
    assert _requests(emulator) == 3
    assert files_under(out_dir) == []  # dall-e-3 answers URLs; nothing was to be saved


def test_one_corrupt_image_of_several_is_dropped_alone(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    tool = make_tool(model="dall-e-3", download_urls=True)
    emulator.push_fault(Fault.truncated_base64())  # the file behind the first answer's URL
    result = tool.generate({"prompt": PROMPT, "n": 2})
    assert len(result.images) == 1
    assert len(result.errors) == 1
    assert "truncated or corrupt" in result.errors[0]
    assert [Path(image.path or "") for image in result.images] == files_under(out_dir)

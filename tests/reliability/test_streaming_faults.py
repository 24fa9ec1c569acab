"""Streamed previews (``partial_images``) under faults: what a broken, odd or slow event stream
costs, sync and async, against the loopback emulator (``tests/emulator.py``).

A fault is queued for the next request (``Emulator.push_fault``, first come first served, so a
retry gets a clean stream) or written in the prompt as a ``[[fault:NAME:ARG]]`` marker (every
attempt gets it). Each test checks what was retried (the emulator's request count and stream
counters), the events the caller heard (``partial`` / ``restarted`` / ``received`` /
``saved``), the error the caller or the LLM gets, and what is left in ``output_dir``: previews
may stay (they were announced), a final image only on success, never a ``.part`` temp file.
Timing is only ever bounded generously; order comes from the events and the emulator's log.
A retried stream runs what ``tool.generate`` runs with the tool's client on a fake clock (the
backoff is recorded, not slept), but for the fan-out case, which goes through the tool itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from langchain_imagegen.errors import (
    APIConnectionError,
    APITimeoutError,
    ContentPolicyError,
    InternalServerError,
)
from langchain_imagegen.generation import ImageGenerator
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.storage import ImageStore
from langchain_imagegen.tool import ImageGenerationTool
from tests.conftest import wait_for
from tests.emulator import Emulator, Fault, encode_image
from tests.fake_time import FakeTime
from tests.reliability.conftest import EMULATOR_MARKS, MakeTool, files_under, tool_call

pytestmark = EMULATOR_MARKS

PROMPT = "a lighthouse at dawn"
Events = list[tuple[str, dict[str, Any]]]


def _recorder() -> tuple[Events, Callable[[str, dict[str, Any]], None]]:
    events: Events = []

    def on_event(stage: str, data: dict[str, Any]) -> None:
        events.append((stage, dict(data)))

    return events, on_event


def _arecorder() -> tuple[Events, Callable[[str, dict[str, Any]], Any]]:
    events: Events = []

    async def on_event(stage: str, data: dict[str, Any]) -> None:
        events.append((stage, dict(data)))

    return events, on_event


def _stages(events: Events) -> list[str]:
    return [stage for stage, _ in events]


def _previews(directory: Path) -> list[Path]:
    return [p for p in files_under(directory) if p.name.startswith("preview-")]


def _finals(directory: Path) -> list[Path]:
    """Files that are neither previews nor temp files: saved final images."""
    return [
        p
        for p in files_under(directory)
        if not p.name.startswith(("preview-", ".")) and not p.name.endswith(".part")
    ]


def _temp_files(directory: Path) -> list[Path]:
    return [p for p in files_under(directory) if p.name.endswith(".part") or p.name.startswith(".")]


async def _await_for(condition: Callable[[], bool], seconds: float) -> bool:
    limit = time.monotonic() + seconds
    while time.monotonic() < limit:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def _generate(
    tool: ImageGenerationTool,
    fake: FakeTime,
    args: dict[str, Any],
    on_event: Callable[[str, dict[str, Any]], None],
) -> ImageGenerationResult:
    """What ``tool.generate(args, on_event=on_event)`` runs, its client on ``fake`` time:
    the backoff before a retry is recorded in ``fake.slept`` instead of slept (as in
    test_fault_matrix.py, time is fake where waiting is not the point)."""
    with fake.client_for(tool) as client:
        generator = ImageGenerator(client, ImageStore(tool.output_dir))
        return generator.run(tool.coerce(args), on_event)


async def _agenerate(
    tool: ImageGenerationTool,
    fake: FakeTime,
    args: dict[str, Any],
    on_event: Callable[[str, dict[str, Any]], Any],
) -> ImageGenerationResult:
    """What ``tool.agenerate(args, on_event=on_event)`` runs, its client on ``fake`` time."""
    async with fake.client_for(tool) as client:
        generator = ImageGenerator(client, ImageStore(tool.output_dir))
        return await generator.arun(tool.coerce(args), on_event)


def _real_internal_errors(emulator: Emulator) -> list[str]:
    """The emulator's internal errors, less a client resetting an idle keep-alive connection
    (a client that stops reading a stream early closes with unread bytes: an RST, which the
    emulator's ``handle_error`` counts; see the report for issue 11)."""
    return [e for e in emulator.internal_errors if "ConnectionResetError" not in e]


def _check_final_image(result: ImageGenerationResult, out_dir: Path) -> None:
    """One final image, the bytes the last (successful) stream's completed event carried."""
    (image,) = result.images
    assert image.path is not None
    path = Path(image.path)
    assert not path.name.startswith("preview-")
    (request,) = result.requests
    assert request.request_id is not None
    width, height = (int(edge) for edge in (image.size or "1024x1024").split("x"))
    assert path.read_bytes() == encode_image(
        image.output_format or "png", width, height, tag=f"{request.request_id}-0"
    )
    assert _finals(out_dir) == [path]


# --- odd but valid streams -----------------------------------------------------------------------


def test_stream_ignored_json_answer_works_without_previews(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    emulator.push_fault(Fault.stream_ignored())
    tool = make_tool(partial_images=2)
    events, on_event = _recorder()

    result = tool.generate({"prompt": PROMPT}, on_event=on_event)

    assert emulator.received_bodies[0]["stream"] is True
    assert emulator.stats().streams_started == 0  # a plain JSON answer
    assert _stages(events) == ["requested", "received", "saved"]
    assert _previews(out_dir) == []
    _check_final_image(result, out_dir)
    assert result.usage is not None


async def test_stream_ignored_json_answer_works_without_previews_async(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    emulator.push_fault(Fault.stream_ignored())
    tool = make_tool(partial_images=2)
    events, on_event = _arecorder()

    result = await tool.agenerate({"prompt": PROMPT}, on_event=on_event)

    assert _stages(events) == ["requested", "received", "saved"]
    assert _previews(out_dir) == []
    _check_final_image(result, out_dir)
    await tool.aclose()


@pytest.mark.parametrize("fault", [Fault.stream_spec_example, Fault.stream_quirks])
def test_unusual_but_valid_streams_are_read(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path, fault: Callable[[], Fault]
) -> None:
    emulator.push_fault(fault())
    tool = make_tool(partial_images=3)
    events, on_event = _recorder()

    result = tool.generate({"prompt": PROMPT}, on_event=on_event)

    assert _stages(events) == ["requested", "partial", "partial", "partial", "received", "saved"]
    assert [data["partial_index"] for stage, data in events if stage == "partial"] == [0, 1, 2]
    assert len(_previews(out_dir)) == 3
    _check_final_image(result, out_dir)
    assert result.usage is not None
    assert result.usage["total_tokens"] > 0
    assert emulator.stats().generation_requests == 1


@pytest.mark.parametrize("fault", [Fault.stream_spec_example, Fault.stream_quirks])
async def test_unusual_but_valid_streams_are_read_async(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path, fault: Callable[[], Fault]
) -> None:
    emulator.push_fault(fault())
    tool = make_tool(partial_images=2)
    events, on_event = _arecorder()

    result = await tool.agenerate({"prompt": PROMPT}, on_event=on_event)

    assert _stages(events) == ["requested", "partial", "partial", "received", "saved"]
    assert len(_previews(out_dir)) == 2
    _check_final_image(result, out_dir)
    await tool.aclose()


# --- failures mid-stream, then a retry that succeeds ---------------------------------------------


def _check_restarted(events: Events, *, discarded: int, partial_images: int, reason: str) -> None:
    """Previews of the failed attempt, then ``restarted``, then a whole new stream."""
    assert _stages(events) == [
        "requested",
        *["partial"] * discarded,
        "restarted",
        *["partial"] * partial_images,
        "received",
        "saved",
    ]
    (restarted,) = [data for stage, data in events if stage == "restarted"]
    assert restarted["request_index"] == 0
    assert restarted["attempt"] == 2
    assert restarted["previews_discarded"] == discarded
    assert reason in restarted["reason"]
    after = [data["partial_index"] for stage, data in events[discarded + 2 :] if stage == "partial"]
    assert after == list(range(partial_images))  # the new stream starts over at 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.stream_error(2), "The server had an error processing your request"),
        (Fault.stream_cut(2), "peer closed connection"),
        (Fault.stream_cut(2, reset=True), "Connection reset"),
    ],
    ids=["error_event", "cut", "reset"],
)
def test_failed_stream_is_retried_and_announced_as_restarted(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path, fault: Fault, reason: str
) -> None:
    emulator.push_fault(fault)
    tool = make_tool(partial_images=3)
    events, on_event = _recorder()
    fake = FakeTime()

    result = _generate(tool, fake, {"prompt": PROMPT}, on_event)

    assert emulator.stats().generation_requests == 2
    assert result.requests[0].attempts == 2
    assert len(fake.slept) == 1  # the backoff before the retry
    _check_restarted(events, discarded=2, partial_images=3, reason=reason)
    # The final image is the retry's: its request id is the second stream's.
    second = [r.request_id for r in emulator.stream_log if r.what == "headers"][1]
    assert result.requests[0].request_id == second
    _check_final_image(result, out_dir)
    assert len(_previews(out_dir)) == 5  # every preview announced was saved
    assert _temp_files(out_dir) == []
    assert _real_internal_errors(emulator) == []


@pytest.mark.parametrize(
    "fault", [Fault.stream_error(1), Fault.stream_cut(1)], ids=["error_event", "cut"]
)
async def test_failed_stream_is_retried_and_announced_as_restarted_async(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path, fault: Fault
) -> None:
    emulator.push_fault(fault)
    tool = make_tool(partial_images=2)
    events, on_event = _arecorder()
    fake = FakeTime()

    result = await _agenerate(tool, fake, {"prompt": PROMPT}, on_event)

    assert emulator.stats().generation_requests == 2
    assert len(fake.slept) == 1  # the backoff before the retry
    _check_restarted(events, discarded=1, partial_images=2, reason="")
    _check_final_image(result, out_dir)
    assert _real_internal_errors(emulator) == []
    await tool.aclose()


def test_stream_error_before_any_preview_retries_without_restarted_event(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    """Nothing was announced, so nothing has to be taken back."""
    emulator.push_fault(Fault.stream_error(0))
    tool = make_tool(partial_images=2)
    events, on_event = _recorder()
    fake = FakeTime()

    result = _generate(tool, fake, {"prompt": PROMPT}, on_event)

    assert emulator.stats().generation_requests == 2
    assert len(fake.slept) == 1  # the backoff before the retry
    assert _stages(events) == ["requested", "partial", "partial", "received", "saved"]
    _check_final_image(result, out_dir)


def test_only_the_failed_request_of_a_fan_out_restarts(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    tool = make_tool(partial_images=2)
    emulator.push_fault(Fault.stream_cut(1))  # the first request to arrive is cut once
    events, on_event = _recorder()

    # Through the tool itself, on the real clock: one restart with the tool's own backoff.
    result = tool.generate({"prompt": PROMPT, "n": 2}, on_event=on_event)

    assert emulator.stats().generation_requests == 3
    (restarted,) = [data for stage, data in events if stage == "restarted"]
    index = restarted["request_index"]
    assert restarted["previews_discarded"] == 1
    assert sorted(r.attempts for r in result.requests) == [1, 2]
    assert result.requests[index].attempts == 2
    assert sorted(image.request_index for image in result.images) == [0, 1]
    for i in (0, 1):
        stages = [stage for stage, data in events if data.get("request_index") == i]
        expected = ["requested", "partial", "partial", "received", "saved"]
        if i == index:
            expected = [
                "requested",
                "partial",
                "restarted",
                "partial",
                "partial",
                "received",
                "saved",
            ]
        assert stages == expected


# --- failures that end the call ------------------------------------------------------------------


def test_moderation_in_the_stream_is_not_retried_and_reaches_the_agent(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    emulator.push_fault(Fault.stream_error_flat(1))
    tool = make_tool(partial_images=2)

    message = tool.invoke(tool_call({"prompt": PROMPT}))

    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.artifact is None
    assert isinstance(message.content, str)
    assert "safety system" in message.content
    assert "rephrase the prompt" in message.content
    assert "moderation_blocked" in message.content
    assert "preview-" not in message.content
    assert emulator.stats().generation_requests == 1  # a refusal is not retried
    assert len(_previews(out_dir)) == 1
    assert _finals(out_dir) == []
    assert _temp_files(out_dir) == []


async def test_moderation_in_the_stream_raises_content_policy_error_async(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    emulator.push_fault(Fault.stream_error_flat(2))
    tool = make_tool(partial_images=3)
    events, on_event = _arecorder()

    with pytest.raises(ContentPolicyError) as caught:
        await tool.agenerate({"prompt": PROMPT}, on_event=on_event)

    assert caught.value.retryable is False
    assert _stages(events) == ["requested", "partial", "partial"]
    assert emulator.stats().generation_requests == 1
    assert _finals(out_dir) == []
    await tool.aclose()


def test_server_error_in_every_stream_gives_up_after_the_retries(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    tool = make_tool(partial_images=1, max_retries=1)
    events, on_event = _recorder()
    fake = FakeTime()

    with pytest.raises(InternalServerError) as caught:
        _generate(tool, fake, {"prompt": f"{PROMPT} [[fault:stream_error:1]]"}, on_event)

    assert "The server had an error processing your request" in str(caught.value)
    assert emulator.stats().generation_requests == 2
    assert len(fake.slept) == 1  # one backoff: the one retry
    assert _stages(events) == ["requested", "partial", "restarted", "partial"]
    assert _finals(out_dir) == []


def test_cut_stream_without_retries_fails_with_no_image(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    emulator.push_fault(Fault.stream_cut(2))
    tool = make_tool(partial_images=3, max_retries=0)

    message = tool.invoke(tool_call({"prompt": PROMPT}))

    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.artifact is None  # previews are not reported as images
    assert isinstance(message.content, str)
    assert "preview-" not in message.content
    assert "try again" in message.content
    assert emulator.stats().generation_requests == 1
    assert len(_previews(out_dir)) == 2
    assert _finals(out_dir) == []
    assert _temp_files(out_dir) == []


async def test_cut_stream_without_retries_raises_a_connection_error_async(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    emulator.push_fault(Fault.stream_cut(1))
    tool = make_tool(partial_images=2, max_retries=0)
    events, on_event = _arecorder()

    with pytest.raises(APIConnectionError) as caught:
        await tool.agenerate({"prompt": PROMPT}, on_event=on_event)

    assert caught.value.retryable is True
    assert _stages(events) == ["requested", "partial"]
    assert _finals(out_dir) == []
    await tool.aclose()


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_cut_stream_error_says_the_stream_ended_before_the_final_image(
    emulator: Emulator, make_tool: MakeTool, reset: bool
) -> None:
    emulator.push_fault(Fault.stream_cut(2, reset=reset))
    tool = make_tool(partial_images=3, max_retries=0)

    message = tool.invoke(tool_call({"prompt": PROMPT}))

    assert isinstance(message.content, str)
    assert "ended before the final image" in message.content
    assert "2 previews" in message.content
    assert "could not reach" not in message.content


async def test_cut_stream_error_says_the_stream_ended_before_the_final_image_async(
    emulator: Emulator, make_tool: MakeTool
) -> None:
    emulator.push_fault(Fault.stream_cut(1))
    tool = make_tool(partial_images=2, max_retries=0)

    with pytest.raises(APIConnectionError) as caught:
        await tool.agenerate({"prompt": PROMPT})

    await tool.aclose()
    assert "ended before the final image" in str(caught.value)
    assert "could not reach" not in str(caught.value)


def test_clean_end_without_the_final_image_says_so(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    """A stream that ends cleanly with no completed event (``fewer_images``: no event at all)."""
    emulator.push_fault(Fault.fewer_images())
    tool = make_tool(partial_images=2, max_retries=0)

    with pytest.raises(APIConnectionError) as caught:
        tool.generate({"prompt": PROMPT})

    assert "ended before the final image" in str(caught.value)
    assert "previews are not the final image" in str(caught.value)
    assert _finals(out_dir) == []


# --- a stream that stalls: the call's deadline ---------------------------------------------------

BUDGET_S = 1.0  # the first preview comes in milliseconds, the stall (60 s) never ends
MARGIN_S = 3.0
"""Generous: the call ends at the deadline plus bookkeeping, on a busy machine."""
STALL = f"{PROMPT} [[fault:stream_stall:60]]"


def test_stalled_stream_ends_at_the_deadline(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    tool = make_tool(partial_images=2, retry_budget=BUDGET_S, timeout=60.0)
    events, on_event = _recorder()

    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        tool.generate({"prompt": STALL}, on_event=on_event)
    took = time.monotonic() - started

    assert BUDGET_S * 0.5 < took < BUDGET_S + MARGIN_S, took
    assert "time budget" in str(caught.value)
    assert _stages(events) == ["requested", "partial"]  # the preview before the stall
    assert wait_for(lambda: emulator.stats().streams_abandoned == 1, MARGIN_S)
    assert _finals(out_dir) == []
    assert _temp_files(out_dir) == []


async def test_stalled_stream_ends_at_the_deadline_async(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    tool = make_tool(partial_images=2, retry_budget=BUDGET_S, timeout=60.0)

    started = time.monotonic()
    message = await tool.ainvoke(tool_call({"prompt": STALL}))
    took = time.monotonic() - started

    assert BUDGET_S * 0.5 < took < BUDGET_S + MARGIN_S, took
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert "time budget" in message.content
    assert await _await_for(lambda: emulator.stats().streams_abandoned == 1, MARGIN_S)
    assert _finals(out_dir) == []
    await tool.aclose()


# --- cancellation and Ctrl-C ---------------------------------------------------------------------


async def test_cancelling_mid_stream_abandons_it_at_once(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    tool = make_tool(partial_images=2)
    call = asyncio.ensure_future(tool.agenerate({"prompt": STALL, "n": 2}))
    assert await _await_for(lambda: len(_previews(out_dir)) == 2, 20), "no preview arrived"

    started = time.monotonic()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert time.monotonic() - started < 2.0

    # Both streams are given up (the emulator notices a closed socket while it waits).
    assert await _await_for(lambda: emulator.stats().streams_abandoned == 2, 5.0)
    assert emulator.stats().streams_finished == 0
    assert emulator.stats().generation_requests == 2  # nothing retried after the cancel
    assert _finals(out_dir) == []
    assert _temp_files(out_dir) == []
    await tool.aclose()


_INTERRUPTED_SCRIPT = textwrap.dedent(
    """
    import sys
    from langchain_imagegen import ImageGenerationTool

    base_url, key, out = sys.argv[1:4]
    tool = ImageGenerationTool(
        model="gpt-image-1", base_url=base_url, api_key=key, output_dir=out, partial_images=2
    )
    def on_event(stage, data):
        print(stage, flush=True)
    try:
        tool.generate({"prompt": sys.argv[4]}, on_event=on_event)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    print("finished", flush=True)
    """
)


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_stops_a_sync_stream_at_once(emulator: Emulator, tmp_path: Path) -> None:
    """SIGINT to a process whose main thread is reading a stalled stream."""
    out = tmp_path / "images"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _INTERRUPTED_SCRIPT,
            emulator.base_url,
            emulator.api_key,
            str(out),
            STALL,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: len(_previews(out)) == 1, 60), "no preview arrived"
        time.sleep(0.2)  # into the stall
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        took = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert took < 3.0, f"Ctrl-C took {took:.2f} s"
    assert stdout.split() == ["requested", "partial", "interrupted"]
    assert wait_for(lambda: emulator.stats().streams_abandoned == 1, 5.0)
    assert _finals(out) == []
    assert _temp_files(out) == []

"""Load: 1000 async calls, 100 at a time, lose no image and leak no connection or descriptor.

The emulator answers with URLs after 10 ms. Afterwards every call must have succeeded with
all its images, the emulator must have produced exactly the images the calls returned, and
once the tool is closed the emulator must see no open connection and the process must hold
no more file descriptors than before (``/proc/self/fd``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import Emulator
from tests.reliability.conftest import EMULATOR_MARKS, tool_call

pytestmark = EMULATOR_MARKS

CALLS = 1000
CONCURRENCY = 100
IMAGES_PER_CALL = 2
TIME_LIMIT_S = 120.0


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _fds_settled(limit: int, seconds: float = 5.0) -> int:
    """The open descriptors once they are back to ``limit`` (bounded wait). A socket the
    server side has counted as closed can still be a descriptor for a moment, and objects of
    earlier tests may be collected meanwhile; a real leak stays above the limit."""
    deadline = time.monotonic() + seconds
    while _open_fds() > limit and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    return _open_fds()


async def _afds_settled(limit: int, seconds: float = 5.0) -> int:
    """:func:`_fds_settled` for async tests: the loop keeps running its callbacks meanwhile."""
    deadline = time.monotonic() + seconds
    while _open_fds() > limit and time.monotonic() < deadline:
        gc.collect()
        await asyncio.sleep(0.05)
    return _open_fds()


async def _settle(emulator: Emulator, seconds: float = 10.0) -> None:
    """Wait (bounded) until the server side has seen every connection close."""
    deadline = time.monotonic() + seconds
    while emulator.open_connections and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # a server-side counter: nothing to await on


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(latency_s=0.01, record_bodies=False, max_lifetime_s=300) as emu:
        yield emu


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
async def test_1000_calls_at_concurrency_100(emulator: Emulator, tmp_path: Path) -> None:
    tool = ImageGenerationTool(
        model="dall-e-2",
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        output_dir=str(tmp_path),
        max_retries=0,  # a failure must show, not be papered over
        timeout=30.0,
    )
    fds_before = _open_fds()
    gate = asyncio.Semaphore(CONCURRENCY)
    in_flight = peak = 0

    async def one(index: int) -> tuple[str, int]:
        nonlocal in_flight, peak
        async with gate:
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                message = await tool.ainvoke(
                    tool_call({"prompt": f"load test {index}", "n": IMAGES_PER_CALL}, f"c{index}")
                )
            finally:
                in_flight -= 1
        return message.status, len(message.artifact.images) if message.artifact else 0

    started = time.monotonic()
    try:
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(CALLS))), timeout=TIME_LIMIT_S
        )
    finally:
        await tool.aclose()
    elapsed = time.monotonic() - started

    statuses = [status for status, _ in outcomes]
    assert statuses.count("success") == CALLS, {s: statuses.count(s) for s in set(statuses)}
    returned = sum(images for _, images in outcomes)
    assert returned == CALLS * IMAGES_PER_CALL
    stats = emulator.stats()
    assert stats.generation_requests == CALLS  # n=2 fits one dall-e-2 request: no retries
    assert stats.images_produced == returned  # nothing produced and then lost
    assert stats.responses_by_status == {200: CALLS}
    assert peak == CONCURRENCY
    assert elapsed < TIME_LIMIT_S

    await _settle(emulator)
    assert emulator.open_connections == 0
    assert await _afds_settled(fds_before) <= fds_before
    assert not os.listdir(tmp_path)  # URL answers: nothing written
    print(  # shown with -s / -rP; docs/reliability.md quotes it
        f"\nload: {CALLS} calls, concurrency {peak}, {returned} images, "
        f"{stats.connections_accepted} connections accepted (peak {stats.peak_connections}), "
        f"{elapsed:.1f} s; fds {fds_before} -> {_open_fds()}"
    )


async def test_connections_are_reused_not_piled_up(emulator: Emulator, tmp_path: Path) -> None:
    """Sequential calls ride one keep-alive connection; closing releases it."""
    tool = ImageGenerationTool(
        model="dall-e-2",
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        output_dir=str(tmp_path),
    )
    fds_before = _open_fds()
    try:
        for index in range(50):
            message = await tool.ainvoke(tool_call({"prompt": f"seq {index}"}, f"s{index}"))
            assert message.status == "success"
        assert emulator.stats().connections_accepted == 1
    finally:
        await tool.aclose()
    await _settle(emulator)
    assert emulator.open_connections == 0
    assert await _afds_settled(fds_before) <= fds_before


def test_sync_fan_out_under_load_releases_everything(emulator: Emulator, tmp_path: Path) -> None:
    """200 sync calls of 4 images on a one-image-per-request model (800 requests, thread
    fan-out): nothing lost, no thread or connection left behind after close."""
    import threading

    tool = ImageGenerationTool(
        model="dall-e-3",
        api_key=emulator.api_key,
        base_url=emulator.base_url,
        output_dir=str(tmp_path),
        max_retries=0,
    )
    threads_before = threading.active_count()
    fds_before = _open_fds()
    try:
        for index in range(200):
            result = tool.generate({"prompt": f"fan {index}", "n": 4})
            assert len(result.images) == 4
    finally:
        tool.close()
    stats = emulator.stats()
    assert stats.generation_requests == 800
    assert stats.images_produced == 800
    deadline = time.monotonic() + 10
    while emulator.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.open_connections == 0
    assert _fds_settled(fds_before) <= fds_before
    # Only the emulator's own per-connection threads may still be winding down.
    deadline = time.monotonic() + 10
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before


def test_repeated_asyncio_runs_leave_no_descriptors(emulator: Emulator, tmp_path: Path) -> None:
    """A notebook or script calling ``asyncio.run(tool.ainvoke(...))`` again and again: each
    run's connections are closed when its loop ends, not at garbage collection."""

    tool = ImageGenerationTool(
        model="dall-e-2", api_key=emulator.api_key, base_url=emulator.base_url,
        output_dir=str(tmp_path),
    )  # fmt: skip
    asyncio.run(tool.ainvoke(tool_call({"prompt": "warm up"})))
    gc.disable()  # closed by the client, or not at all
    try:
        fds_before = _open_fds()
        for index in range(30):  # each used to leave about two sockets to the collector
            message = asyncio.run(tool.ainvoke(tool_call({"prompt": f"run {index}"})))
            assert message.status == "success"
        fds_after = _open_fds()
    finally:
        gc.enable()
        tool.close()
    assert fds_after - fds_before <= 3, f"{fds_after - fds_before} descriptors left open"

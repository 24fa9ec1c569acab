"""No connection outlives its event loop: a client used from many ``asyncio.run`` calls.

An ``httpx.AsyncClient`` belongs to the loop that opened its connections. The client makes
one per loop; when ``asyncio.run`` ends, that loop's client must be closed then, not whenever
the garbage collector gets to it (100 runs used to leave 55 sockets open).
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from langchain_imagegen.client import ImagesClient
from langchain_imagegen.endpoint import Endpoint
from tests.emulator import Emulator

pytestmark = [pytest.mark.emulator, pytest.mark.enable_socket,
              pytest.mark.allow_hosts(["127.0.0.1"])]  # fmt: skip

BODY = {"model": "gpt-image-1", "prompt": "a red fox", "size": "1024x1024"}
RUNS = 100


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(max_lifetime_s=120) as emu:
        yield emu


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd (Linux)")
def test_hundred_asyncio_runs_leave_no_open_connections(emulator: Emulator) -> None:
    endpoint = Endpoint.openai(base_url=emulator.base_url, api_key=SecretStr(emulator.api_key))
    client = ImagesClient(endpoint)
    asyncio.run(client.agenerate(BODY))  # warm up: imports, the emulator's first thread
    gc.disable()  # what is closed must be closed by the client, not by the collector
    try:
        before = _open_fds()
        for _ in range(RUNS):
            response = asyncio.run(client.agenerate(BODY))
            assert len(response.images) == 1
        after = _open_fds()
    finally:
        gc.enable()
    assert after - before <= 3, f"{after - before} file descriptors left open by {RUNS} runs"
    client.close()


def test_the_loops_client_is_closed_when_asyncio_run_ends(emulator: Emulator) -> None:
    endpoint = Endpoint.openai(base_url=emulator.base_url, api_key=SecretStr(emulator.api_key))
    client = ImagesClient(endpoint)

    async def call() -> object:
        await client.agenerate(BODY)
        return await client._async_client()

    http_client = asyncio.run(call())
    assert http_client.is_closed  # type: ignore[attr-defined]


async def test_aclose_still_closes_the_running_loops_client(emulator: Emulator) -> None:
    endpoint = Endpoint.openai(base_url=emulator.base_url, api_key=SecretStr(emulator.api_key))
    client = ImagesClient(endpoint)
    await client.agenerate(BODY)
    http_client = await client._async_client()
    await client.aclose()
    assert http_client.is_closed
    await client.agenerate(BODY)  # a later call opens a new one
    await client.aclose()


def test_a_loop_that_shut_its_async_generators_down_gets_a_new_client(
    emulator: Emulator,
) -> None:
    endpoint = Endpoint.openai(base_url=emulator.base_url, api_key=SecretStr(emulator.api_key))
    client = ImagesClient(endpoint)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(client.agenerate(BODY))
        first = loop.run_until_complete(client._async_client())
        loop.run_until_complete(loop.shutdown_asyncgens())
        assert first.is_closed
        assert len(loop.run_until_complete(client.agenerate(BODY)).images) == 1
        assert loop.run_until_complete(client._async_client()) is not first
        loop.run_until_complete(client.aclose())
    finally:
        loop.close()

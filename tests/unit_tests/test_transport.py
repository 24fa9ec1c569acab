"""The async transport of the clients the package creates (langchain_imagegen/transport.py):
httpx's ``AsyncHTTPTransport`` over aiohttp's or httpcore2's pool. Failures must reach the
caller as the httpx exceptions httpx's own transport raises, connections must be reused, and
the package must use it for the clients it creates only (an injected client is the caller's).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator

import httpx
import pytest

from langchain_imagegen.client import DEFAULT_LIMITS
from langchain_imagegen.tool import ImageGenerationTool
from langchain_imagegen.transport import (
    POOL_ENV,
    AiohttpAsyncTransport,
    PooledAsyncTransport,
    pooled_async_transport,
)
from tests.emulator import DEFAULT_API_KEY, Emulator, Fault

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]

TRANSPORTS = {"aiohttp": AiohttpAsyncTransport, "httpcore2": PooledAsyncTransport}


@pytest.fixture(params=sorted(TRANSPORTS))
def pool(request: pytest.FixtureRequest) -> str:
    """Each pool, where it is installed (httpcore2 needs Python 3.11+)."""
    name: str = request.param
    pytest.importorskip(name)
    return name


BODY = {"model": "dall-e-2", "prompt": "a lighthouse", "size": "256x256"}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(max_lifetime_s=120) as emu:
        yield emu


def _client(pool: str, **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=TRANSPORTS[pool](limits=DEFAULT_LIMITS),
        headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_transport_is_httpx_own_so_its_stubs_apply(pool: str) -> None:
    """vcrpy (cassette replay) stubs ``AsyncHTTPTransport.handle_async_request``: the pooled
    transports must send through that very method, not an override of their own."""
    transport = TRANSPORTS[pool](limits=DEFAULT_LIMITS)
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert "handle_async_request" not in vars(type(transport))


def test_the_environment_picks_the_pool(monkeypatch: pytest.MonkeyPatch, pool: str) -> None:
    monkeypatch.setenv(POOL_ENV, pool)
    assert type(pooled_async_transport(DEFAULT_LIMITS)) is TRANSPORTS[pool]
    monkeypatch.setenv(POOL_ENV, "httpx")
    assert pooled_async_transport(DEFAULT_LIMITS) is None
    monkeypatch.setenv(POOL_ENV, "urllib3")
    with pytest.raises(ValueError, match="aiohttp, httpcore2, httpx"):
        pooled_async_transport(DEFAULT_LIMITS)


def test_unset_the_fastest_pool_installed_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POOL_ENV, raising=False)
    installed = [name for name in ("aiohttp", "httpcore2") if importlib.util.find_spec(name)]
    expected = TRANSPORTS[installed[0]] if installed else type(None)
    assert type(pooled_async_transport(DEFAULT_LIMITS)) is expected


async def test_concurrent_requests_succeed_and_reuse_connections(
    emulator: Emulator, pool: str
) -> None:
    """30 callers, each sending 4 requests one after another: more connections open than
    ``max_keepalive_connections`` (20). httpcore 1.0's pool then closes every connection a
    response frees (it compares the limit with all connections, not the idle ones): about
    110 of 120 requests opened a connection of their own. These pools keep them."""
    emulator.latency_s = 0.02
    url = f"{emulator.base_url}/images/generations"
    statuses: list[int] = []
    async with _client(pool, timeout=30) as client:

        async def caller() -> None:
            for _ in range(4):
                response = await client.post(url, json=BODY)
                assert len(response.json()["data"]) == 1
                statuses.append(response.status_code)

        await asyncio.gather(*(caller() for _ in range(30)))
    assert statuses == [200] * 120
    stats = emulator.stats()
    assert stats.generation_requests == 120
    assert stats.connections_accepted <= 45


async def test_a_read_timeout_is_httpx_read_timeout(emulator: Emulator, pool: str) -> None:
    emulator.push_fault(Fault.read_timeout(seconds=2.0))
    async with _client(pool, timeout=httpx.Timeout(5.0, read=0.2)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{emulator.base_url}/images/generations", json=BODY)


async def test_a_dropped_connection_is_httpx_remote_protocol_error(
    emulator: Emulator, pool: str
) -> None:
    emulator.push_fault(Fault.connection_close())
    async with _client(pool, timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{emulator.base_url}/images/generations", json=BODY)


async def test_a_refused_connection_is_httpx_connect_error(emulator: Emulator, pool: str) -> None:
    closed = emulator.base_url
    emulator.stop()
    async with _client(pool, timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"{closed}/images/generations", json=BODY)


async def test_the_tool_creates_its_client_on_it_and_keeps_an_injected_one(
    emulator: Emulator, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(POOL_ENV, pool)
    tool = ImageGenerationTool(
        model="dall-e-2", api_key=DEFAULT_API_KEY, base_url=emulator.base_url
    )
    assert tool._client is not None
    client = await tool._client._async_client()
    assert type(client._transport) is TRANSPORTS[pool]
    await tool.aclose()

    mine = httpx.AsyncClient()
    injected = ImageGenerationTool(
        model="dall-e-2",
        api_key=DEFAULT_API_KEY,
        base_url=emulator.base_url,
        http_async_client=mine,
    )
    assert injected._client is not None
    assert await injected._client._async_client() is mine
    assert type(mine._transport) is httpx.AsyncHTTPTransport
    await mine.aclose()


STREAM = {"model": "gpt-image-1", "prompt": "a lighthouse", "stream": True, "partial_images": 2}


async def test_a_stream_arrives_in_pieces_as_it_is_written(emulator: Emulator, pool: str) -> None:
    emulator.stream_interval_s = 0.05
    url = f"{emulator.base_url}/images/generations"
    async with (
        _client(pool, timeout=30) as client,
        client.stream("POST", url, json=STREAM) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        pieces = [chunk async for chunk in response.aiter_bytes()]
    body = b"".join(pieces)
    assert body.count(b"event: image_generation.partial_image\n") == 2
    assert body.count(b"event: image_generation.completed\n") == 1
    assert len(pieces) >= 3  # the events came as they were written, 50 ms apart


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
async def test_a_stream_cut_mid_body_is_an_httpx_transport_error(
    emulator: Emulator, pool: str, reset: bool
) -> None:
    emulator.push_fault(Fault.stream_cut(1, reset=reset))
    url = f"{emulator.base_url}/images/generations"
    async with _client(pool, timeout=30) as client:
        async with client.stream("POST", url, json=STREAM) as response:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                async for _ in response.aiter_bytes():
                    pass
        # The pool survives the broken connection: the next request gets a fresh one.
        assert (await client.post(url, json=BODY)).status_code == 200

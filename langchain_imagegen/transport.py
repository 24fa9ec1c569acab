"""The async transport of the HTTP clients the package creates: httpx's, over a faster pool.

httpcore 1.0's async connection pool (under ``httpx.AsyncHTTPTransport``) spends most of a
call's CPU at high concurrency: once more connections are open than
``max_keepalive_connections`` it closes every connection a response frees (it compares the
keep-alive limit with *all* connections, not the idle ones), so each request opens a new one;
with a larger keep-alive limit its assignment pass scans every connection for every queued
request. Measured with ``benchmarks/run.py`` (1,000 calls at concurrency 100 on loopback, see
docs/performance.md), the pool beneath httpx's transport is what a call's CPU goes to, so it
is the part replaced:

* ``aiohttp``'s connection pool (its HTTP parser is compiled), the fastest measured, when it
  is installed (the ``fast`` extra installs it; s3fs brings it too);
* else httpcore2's pool (the maintained successor of httpcore that httpx2, langsmith and the
  openai SDK use; Python 3.11+), when it is installed: it counts idle connections and assigns
  in one pass;
* otherwise httpx's own. ``LANGCHAIN_IMAGEGEN_HTTP_POOL=aiohttp|httpcore2|httpx`` picks one.

Either way the transport *is* ``httpx.AsyncHTTPTransport``: only its ``_pool`` is another, so
everything that works on httpx's transport keeps working (event hooks, auth, vcrpy cassette
replay, which stubs ``AsyncHTTPTransport.handle_async_request``), and the pool's failures reach
httpx as httpcore's exceptions, which httpx maps to ``httpx.ReadTimeout`` and the rest as
usual. Proxies from the environment keep transports of httpx's own (the client mounts them).
A client the caller passes in is used as it is.
"""

from __future__ import annotations

import importlib.util
import os
import ssl
from collections.abc import AsyncIterable, AsyncIterator
from types import ModuleType, TracebackType
from typing import Any, cast

import httpcore
import httpx

from langchain_imagegen.tls import shared_ssl_context

__all__ = ["POOL_ENV", "AiohttpAsyncTransport", "PooledAsyncTransport", "pooled_async_transport"]

POOL_ENV = "LANGCHAIN_IMAGEGEN_HTTP_POOL"
"""Which pool the package's async clients use: ``aiohttp``, ``httpcore2`` or ``httpx``
(unset: the first of them that is installed)."""
_POOLS = ("aiohttp", "httpcore2", "httpx")
#: Unset, the first of these that is installed: aiohttp's pool is the fastest measured (the
#: ``fast`` extra installs it; s3fs brings it too), then httpcore2's.
_AUTO = ("aiohttp", "httpcore2", "httpx")


def pooled_async_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport | None:
    """The transport for a client the package creates, with ``limits``; ``None`` for httpx's
    own (the caller then lets httpx build it)."""
    chosen = os.environ.get(POOL_ENV, "").strip().lower()
    if chosen and chosen not in _POOLS:
        raise ValueError(f"{POOL_ENV}={chosen!r}: expected one of {', '.join(_POOLS)}")
    for pool in (chosen,) if chosen else _AUTO:
        if pool != "httpx" and importlib.util.find_spec(pool) is None:
            if chosen:
                raise ImportError(f"{POOL_ENV}={chosen}, but {chosen} is not installed")
            continue
        if pool == "aiohttp":
            return AiohttpAsyncTransport(limits=limits)
        if pool == "httpcore2":
            return PooledAsyncTransport(limits=limits)
        break
    return None


class PooledAsyncTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool is httpcore2's (no proxy: a proxy
    from the environment gets a transport of httpx's own, mounted by the client)."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        import httpcore2

        context = shared_ssl_context()
        super().__init__(verify=context, limits=limits)
        # httpx's handle_async_request (the method vcrpy stubs) sends through ``_pool``:
        # only the pool is replaced, so the request path stays httpx's own.
        self._pool = _Pool(  # type: ignore[assignment]
            httpcore2,
            httpcore2.AsyncConnectionPool(
                ssl_context=context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
            ),
        )


class _Pool:
    """httpcore's pool interface (what httpx calls) over an httpcore2 pool: requests are
    handed over as httpcore2's, and httpcore2's exceptions come back as httpcore's."""

    def __init__(self, httpcore2: ModuleType, pool: Any) -> None:
        self._httpcore2 = httpcore2
        self._inner = pool
        self._errors = _exception_map(httpcore2)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        url = request.url
        core2 = self._httpcore2
        try:
            response = await self._inner.handle_async_request(
                core2.Request(
                    request.method,
                    core2.URL(scheme=url.scheme, host=url.host, port=url.port, target=url.target),
                    headers=request.headers,
                    content=request.stream,
                    extensions=request.extensions,
                )
            )
        except Exception as exc:
            raise self._translated(exc) from exc
        return httpcore.Response(
            response.status,
            headers=response.headers,
            content=_Body(response.stream, self),
            extensions=response.extensions,
        )

    def _translated(self, exc: Exception) -> Exception:
        for kind in type(exc).__mro__:
            target = self._errors.get(kind)
            if target is not None:
                return target(*exc.args)
        return exc

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _Pool:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc_value, traceback)


class _Body:
    """A response body from httpcore2, its errors raised as httpcore's."""

    def __init__(self, stream: Any, pool: _Pool) -> None:
        self._stream = stream
        self._pool = pool
        self._chunks: AsyncIterator[bytes] | None = None

    def __aiter__(self) -> _Body:
        self._chunks = self._stream.__aiter__()
        return self

    async def __anext__(self) -> bytes:
        assert self._chunks is not None
        try:
            chunk: bytes = await self._chunks.__anext__()
        except StopAsyncIteration:
            raise
        except Exception as exc:
            raise self._pool._translated(exc) from exc
        return chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        except Exception as exc:
            raise self._pool._translated(exc) from exc


class AiohttpAsyncTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool is aiohttp's."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        context = shared_ssl_context()
        super().__init__(verify=context, limits=limits)
        # As above: httpx's handle_async_request sends through ``_pool``.
        self._pool = _AiohttpPool(limits, context)  # type: ignore[assignment]


class _AiohttpPool:
    """httpcore's pool interface (what httpx calls) over an aiohttp session. The session is
    made on the first request, in the event loop that sends it (the package's async clients
    are one per loop). Cookies, redirects, decompression, proxies and default headers are
    httpx's business: aiohttp does none of them here."""

    def __init__(self, limits: httpx.Limits, context: ssl.SSLContext) -> None:
        self._limits = limits
        self._context = context
        self._session: Any = None

    def _open(self) -> Any:
        import aiohttp

        keepalive = self._limits.keepalive_expiry
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            ssl=self._context,
            keepalive_timeout=15.0 if keepalive is None else keepalive,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=False,
            skip_auto_headers=_AIOHTTP_OWN_HEADERS,
        )

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        import aiohttp
        from yarl import URL

        if self._session is None:
            self._session = self._open()
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        connect, pool = timeouts.get("connect"), timeouts.get("pool")
        url = request.url
        if url.scheme not in (b"http", b"https"):  # as httpcore's pool refuses it
            scheme = url.scheme.decode("ascii", "replace")
            raise httpcore.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme}://'."
            )
        host = url.host.decode("ascii")
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        port = f":{url.port}" if url.port is not None else ""
        target = f"{url.scheme.decode('ascii')}://{host}{port}{url.target.decode('ascii')}"
        chunks = [chunk async for chunk in cast("AsyncIterable[bytes]", request.stream)]
        try:
            response = await self._session.request(
                request.method.decode("ascii"),
                URL(target, encoded=True),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers],
                data=chunks[0] if len(chunks) == 1 else b"".join(chunks),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    # aiohttp's ``connect`` covers the wait for a pooled connection too.
                    connect=None if connect is None or pool is None else connect + pool,
                    sock_connect=connect,
                    sock_read=timeouts.get("read"),
                ),
            )
        except aiohttp.ClientError as exc:
            raise _from_aiohttp(exc, aiohttp) from exc
        return httpcore.Response(
            response.status,
            headers=list(response.raw_headers),
            content=_AiohttpBody(response),
            extensions={
                "http_version": b"HTTP/%d.%d" % tuple(response.version),
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
            },
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> _AiohttpPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()


#: Headers aiohttp would add of its own; httpx sends its own (or none, as asked).
_AIOHTTP_OWN_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class _AiohttpBody:
    """An aiohttp response body as httpcore's stream: chunks as they arrive, aiohttp's
    errors raised as httpcore's; closing returns the connection to the pool when the body was
    read to its end, and closes it otherwise."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def __aiter__(self) -> _AiohttpBody:
        return self

    async def __anext__(self) -> bytes:
        import aiohttp

        try:
            chunk: bytes = await self._response.content.readany()
        except aiohttp.ClientError as exc:
            raise _from_aiohttp(exc, aiohttp) from exc
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


def _from_aiohttp(exc: Exception, aiohttp: ModuleType) -> Exception:
    """httpcore's exception for an aiohttp one (the one httpx's own pool would raise)."""
    for theirs, ours in _AIOHTTP_ERRORS:
        kind = getattr(aiohttp, theirs, None)  # ConnectionTimeoutError: aiohttp 3.10+
        if kind is not None and isinstance(exc, kind):
            return ours(str(exc) or type(exc).__name__)
    return httpcore.NetworkError(str(exc) or type(exc).__name__)


#: aiohttp's exceptions, most specific first, and httpcore's for each.
_AIOHTTP_ERRORS: tuple[tuple[str, type[Exception]], ...] = (
    ("ConnectionTimeoutError", httpcore.ConnectTimeout),
    ("ServerTimeoutError", httpcore.ReadTimeout),
    ("ClientConnectorError", httpcore.ConnectError),
    ("ServerDisconnectedError", httpcore.RemoteProtocolError),
    ("ClientPayloadError", httpcore.RemoteProtocolError),
    ("ClientResponseError", httpcore.RemoteProtocolError),
    ("InvalidURL", httpcore.UnsupportedProtocol),
    ("ClientOSError", httpcore.ReadError),
)


def _exception_map(httpcore2: ModuleType) -> dict[type[BaseException], type[Exception]]:
    """Each httpcore2 exception class to httpcore's of the same name (httpx maps those)."""
    mapped: dict[type[BaseException], type[Exception]] = {}
    for name in httpcore.__all__:
        ours, theirs = getattr(httpcore, name), getattr(httpcore2, name, None)
        if (
            isinstance(ours, type)
            and issubclass(ours, Exception)
            and isinstance(theirs, type)
            and issubclass(theirs, BaseException)
        ):
            mapped[theirs] = ours
    return mapped

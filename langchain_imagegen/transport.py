"""The async transport of the HTTP clients the package creates: httpx, over httpcore2's pool.

httpcore 1.0's async connection pool (under ``httpx.AsyncHTTPTransport``) spends most of a
call's CPU at high concurrency: once more connections are open than ``max_keepalive_connections``
it closes every connection a response frees (it compares the keep-alive limit with *all*
connections, not the idle ones), so each request opens a new one; and with a larger keep-alive
limit its assignment pass scans every connection for every queued request. httpcore2 (the
maintained successor that httpx2, langsmith and the openai SDK use) counts idle connections
and assigns in one pass. 1,000 calls at concurrency 100 on loopback: about 0.9 ms of client CPU
per raw httpx call against 0.6 ms over httpcore2 (``benchmarks/run.py``, docs/performance.md).

:class:`PooledAsyncTransport` keeps httpx's API and its ``AsyncHTTPTransport``: only the pool
beneath it is httpcore2's. So everything that works on httpx's transport keeps working (event
hooks, auth, vcrpy cassette replay, which stubs ``AsyncHTTPTransport.handle_async_request``),
and httpcore2's exceptions reach httpx as httpcore's, which httpx maps to ``httpx.ReadTimeout``
and the rest as usual. It is used when httpcore2 is installed (Python 3.11+); otherwise the
clients keep httpx's own transport. A client the caller passes in is used as it is.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from types import ModuleType, TracebackType
from typing import Any

import httpcore
import httpx

__all__ = ["PooledAsyncTransport", "pooled_async_transport"]


def pooled_async_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport | None:
    """A :class:`PooledAsyncTransport` with ``limits``, or ``None`` when httpcore2 is not
    installed (the caller then lets httpx build its own transport)."""
    if importlib.util.find_spec("httpcore2") is None:
        return None
    return PooledAsyncTransport(limits=limits)


class PooledAsyncTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool is httpcore2's (no proxy: a proxy
    from the environment gets a transport of httpx's own, mounted by the client)."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        import httpcore2

        context = httpx.create_ssl_context()
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

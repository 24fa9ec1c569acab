"""Send a generation request and get images back: the only module here that does network I/O.

:class:`ImagesClient` posts a JSON body to an :class:`~langchain_imagegen.endpoint.Endpoint`,
retries per :class:`~langchain_imagegen.retry.RetryPolicy`, maps failures with
:mod:`~langchain_imagegen.errors` and parses success with
:mod:`~langchain_imagegen.response`. It also downloads returned image URLs with a size cap.

Why it looks like this:

* One lazily created ``httpx.Client`` and one ``httpx.AsyncClient`` per event loop (an
  ``AsyncClient``'s connections belong to the loop that opened them), pooled for 100+
  concurrent requests, so a call costs a dict copy and a POST, not a TLS handshake.
* Timeout 600 s read / 10 s connect by default: gpt-image-2 at high quality or 4K takes
  minutes; the 30-120 s defaults of other wrappers are too short (api-facts §1, anchors §0).
* The request timeout is always passed per request, so an injected client's own (httpx: 5 s)
  default never cuts a generation short. Injected clients are never closed by us.
* Downloads never carry the endpoint's credential: image URLs point at third-party storage.
  Their URLs carry SAS signatures, so messages name only the host.
* Sleeping goes through the module globals ``_sleep`` / ``_asleep`` and timing through
  ``_clock``, so tests can patch them without touching ``time`` or ``asyncio``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from langchain_imagegen.endpoint import Endpoint
from langchain_imagegen.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    InvalidArgumentError,
    MalformedResponseError,
    StorageError,
    error_from_response,
)
from langchain_imagegen.response import ImagesResponse, parse_images_response
from langchain_imagegen.retry import RetryPolicy, is_retryable_error, next_delay

__all__ = ["DEFAULT_LIMITS", "DEFAULT_TIMEOUT", "ImagesClient"]

DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
#: Enough connections for 100 concurrent generations plus downloads. Only 20 are kept idle
#: (httpx's default): httpcore scans every pooled connection on each request and response,
#: so 128 idle ones made 100 concurrent calls take 2.9 s instead of 0.46 s (200 ms server).
DEFAULT_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=20)

_log = logging.getLogger(__name__)
_sleep = time.sleep
_asleep = asyncio.sleep
_clock = time.monotonic
_NO_HEADERS: Mapping[str, str] = {}
_DOWNLOAD_CHUNK = 64 * 1024
_ERROR_BODY_LIMIT = 64 * 1024  # an error page is read only this far (a snippet is kept)


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("langchain-imagegen")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        version = "0"
    return f"langchain-imagegen/{version}"


# Kept to two: every extra header costs ~2 us per request inside httpx.
_DEFAULT_HEADERS = {"Content-Type": "application/json", "User-Agent": _user_agent()}


class ImagesClient:
    """POST ``/images/generations`` with retries, sync and async, plus capped downloads.

    ``generate``/``agenerate`` return an :class:`ImagesResponse` whose ``attempts`` and
    ``elapsed_s`` say how many HTTP attempts were made and how long it all took. Use as a
    (async) context manager, or call :meth:`close` / :meth:`aclose`.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        rng: random.Random | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._limits = limits
        self._rng = rng
        self._url = httpx.URL(endpoint.url, params=endpoint.query or None)
        parts = (timeout.connect, timeout.read, timeout.write, timeout.pool)
        self._longest_timeout = max(math.inf if p is None else p for p in parts)
        self._injected = http_client
        self._ainjected = async_http_client
        self._client: httpx.Client | None = http_client
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._aclients = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    @property
    def timeout(self) -> httpx.Timeout:
        return self._timeout

    @property
    def retry(self) -> RetryPolicy:
        return self._retry

    def __repr__(self) -> str:
        return (
            f"ImagesClient(endpoint={self._endpoint!r}, timeout={self._timeout!r}, "
            f"retry={self._retry!r})"
        )

    # -- HTTP clients ------------------------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=self._timeout, limits=self._limits)
                client = self._client
        return client

    def _async_client(self) -> httpx.AsyncClient:
        if self._ainjected is not None:
            return self._ainjected
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            with self._lock:
                client = self._aclients.get(loop)
                if client is None:
                    for old in [lp for lp in self._aclients if lp.is_closed()]:
                        del self._aclients[old]  # its connections died with its loop
                    client = httpx.AsyncClient(timeout=self._timeout, limits=self._limits)
                    self._aclients[loop] = client
        return client

    def close(self) -> None:
        """Close the sync HTTP client we created (injected clients are the caller's)."""
        with self._lock:
            client, self._client = self._client, self._injected
        if client is not None and client is not self._injected:
            client.close()

    async def aclose(self) -> None:
        """Close the current loop's async HTTP client we created, and the sync one."""
        self.close()
        if self._ainjected is not None:
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._aclients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def __enter__(self) -> ImagesClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> ImagesClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- generation --------------------------------------------------------------------------

    def generate(self, body: dict[str, Any]) -> ImagesResponse:
        """POST ``body``; retry retryable failures; return the parsed images or raise."""
        headers = self._headers(self._endpoint.headers())  # no credential: raise, send nothing
        content = _encode(body)
        client = self._sync_client()
        start = _clock()
        attempt = 1
        while True:
            try:
                response = client.post(
                    self._url, content=content, headers=headers, timeout=self._budgeted(start)
                )
            except httpx.TransportError as exc:
                error: APIError = self._transport_error(exc)
                response_headers = _NO_HEADERS
            except httpx.RequestError as exc:
                raise self._request_error(exc) from exc
            else:
                result = _result(response, attempt, start)
                if isinstance(result, ImagesResponse):
                    return result
                error, response_headers = result, response.headers
            delay = self._delay(error, response_headers, attempt, start)
            if delay is None:
                raise self._scrubbed(error, headers)
            _sleep(delay)
            attempt += 1
            if self._endpoint.token_provider is not None:
                headers = self._headers(self._endpoint.headers())  # refresh the token

    async def agenerate(self, body: dict[str, Any]) -> ImagesResponse:
        """Async :meth:`generate`."""
        headers = self._headers(await self._endpoint.aheaders())
        content = _encode(body)
        client = self._async_client()
        start = _clock()
        attempt = 1
        while True:
            try:
                response = await client.post(
                    self._url, content=content, headers=headers, timeout=self._budgeted(start)
                )
            except httpx.TransportError as exc:
                error: APIError = self._transport_error(exc)
                response_headers = _NO_HEADERS
            except httpx.RequestError as exc:
                raise self._request_error(exc) from exc
            else:
                result = _result(response, attempt, start)
                if isinstance(result, ImagesResponse):
                    return result
                error, response_headers = result, response.headers
            delay = self._delay(error, response_headers, attempt, start)
            if delay is None:
                raise self._scrubbed(error, headers)
            await _asleep(delay)
            attempt += 1
            if self._endpoint.async_token_provider or self._endpoint.token_provider:
                headers = self._headers(await self._endpoint.aheaders())

    # -- download ----------------------------------------------------------------------------

    def download(self, url: str, *, max_bytes: int) -> tuple[bytes, str | None]:
        """GET an image URL (http/https only) into memory, at most ``max_bytes`` bytes.

        Returns ``(content, content_type)``. Raises :class:`StorageError` for another scheme,
        an oversized body, an error status or an unreachable host (after retries).
        """
        target = _download_url(url, max_bytes)
        client = self._sync_client()
        start = _clock()
        attempt = 1
        while True:
            try:
                with client.stream(
                    "GET", target, timeout=self._budgeted(start), follow_redirects=True
                ) as response:
                    if response.is_success:
                        _check_length(response, target, max_bytes)
                        buffer = bytearray()
                        for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
                            buffer += chunk
                            if len(buffer) > max_bytes:
                                raise _too_big(target, max_bytes)
                        return bytes(buffer), response.headers.get("content-type")
                    head = bytearray()
                    for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
                        head += chunk
                        if len(head) >= _ERROR_BODY_LIMIT:
                            break
                    error = error_from_response(response.status_code, bytes(head), response.headers)
                    response_headers: Mapping[str, str] = response.headers
            except httpx.TransportError as exc:
                error = self._transport_error(exc, target)
                response_headers = _NO_HEADERS
            except httpx.RequestError as exc:
                raise _download_failed(target, exc) from exc
            delay = self._delay(error, response_headers, attempt, start)
            if delay is None:
                raise _download_failed(target, error) from error
            _sleep(delay)
            attempt += 1

    async def adownload(self, url: str, *, max_bytes: int) -> tuple[bytes, str | None]:
        """Async :meth:`download`."""
        target = _download_url(url, max_bytes)
        client = self._async_client()
        start = _clock()
        attempt = 1
        while True:
            try:
                async with client.stream(
                    "GET", target, timeout=self._budgeted(start), follow_redirects=True
                ) as response:
                    if response.is_success:
                        _check_length(response, target, max_bytes)
                        buffer = bytearray()
                        async for chunk in response.aiter_bytes(_DOWNLOAD_CHUNK):
                            buffer += chunk
                            if len(buffer) > max_bytes:
                                raise _too_big(target, max_bytes)
                        return bytes(buffer), response.headers.get("content-type")
                    head = bytearray()
                    async for chunk in response.aiter_bytes(_DOWNLOAD_CHUNK):
                        head += chunk
                        if len(head) >= _ERROR_BODY_LIMIT:
                            break
                    error = error_from_response(response.status_code, bytes(head), response.headers)
                    response_headers: Mapping[str, str] = response.headers
            except httpx.TransportError as exc:
                error = self._transport_error(exc, target)
                response_headers = _NO_HEADERS
            except httpx.RequestError as exc:
                raise _download_failed(target, exc) from exc
            delay = self._delay(error, response_headers, attempt, start)
            if delay is None:
                raise _download_failed(target, error) from error
            await _asleep(delay)
            attempt += 1

    # -- helpers -----------------------------------------------------------------------------

    def _headers(self, endpoint_headers: dict[str, str]) -> dict[str, str]:
        headers = _DEFAULT_HEADERS.copy()
        headers.update(endpoint_headers)
        return headers

    def _budgeted(self, start: float) -> httpx.Timeout:
        """The request timeout, shrunk so the attempt cannot outlive the retry budget."""
        remaining = self._retry.total_budget - (_clock() - start)
        timeout = self._timeout
        if self._longest_timeout <= remaining:
            return timeout
        remaining = max(remaining, 0.001)
        return httpx.Timeout(
            connect=_cap(timeout.connect, remaining),
            read=_cap(timeout.read, remaining),
            write=_cap(timeout.write, remaining),
            pool=_cap(timeout.pool, remaining),
        )

    def _delay(
        self, error: APIError, headers: Mapping[str, str], attempt: int, start: float
    ) -> float | None:
        if not is_retryable_error(error, headers):
            return None
        delay = next_delay(self._retry, attempt, headers, _clock() - start, self._rng)
        if delay is not None:
            _log.info(
                "image request attempt %d failed (%s, status %s); retrying in %.2fs",
                attempt,
                type(error).__name__,
                error.status,
                delay,
            )
        return delay

    def _scrubbed(self, error: APIError, request_headers: Mapping[str, str]) -> APIError:
        """Blank the credential if the server echoed it ("Incorrect API key provided: ...")."""
        names = {"authorization", "api-key", self._endpoint.auth_header.lower()}
        for name, value in request_headers.items():
            secret = value.removeprefix("Bearer ").strip()
            if name.lower() not in names or len(secret) < 8:
                continue
            if secret in error.message:
                error.message = error.message.replace(secret, "***")
                error.args = (error.message,)
            if error.body is not None:
                dumped = json.dumps(error.body)
                if secret in dumped:
                    error.body = json.loads(dumped.replace(secret, "***"))
        return error

    def _transport_error(self, exc: httpx.TransportError, url: httpx.URL | None = None) -> APIError:
        host = (url or self._url).host
        error: APIError
        if isinstance(exc, httpx.TimeoutException):
            error = APITimeoutError(
                f"no answer from {host} within the timeout ({type(exc).__name__}; "
                f"read timeout {self._timeout.read}s)"
            )
        else:
            error = APIConnectionError(f"could not reach {host}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error

    def _request_error(self, exc: httpx.RequestError) -> APIError:
        if isinstance(exc, httpx.DecodingError):
            return MalformedResponseError(
                f"the response from {self._url.host} could not be decoded: {exc}"
            )
        return APIConnectionError(f"the request to {self._url.host} failed: {type(exc).__name__}")


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _result(response: httpx.Response, attempt: int, start: float) -> ImagesResponse | APIError:
    """The parsed images, or the error to raise or retry (returned, not raised: cheaper)."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            return parse_images_response(
                status,
                response.content,
                response.headers,
                attempts=attempt,
                elapsed_s=_clock() - start,
            )
        except APIError as error:
            return error
    return error_from_response(status, response.content, response.headers)


def _cap(value: float | None, limit: float) -> float:
    return limit if value is None else min(value, limit)


def _where(url: httpx.URL) -> str:
    """``scheme://host/path`` without query: image URLs carry signatures (SAS ``sig=``)."""
    return f"{url.scheme}://{url.host}{url.path}"


def _download_url(url: str, max_bytes: int) -> httpx.URL:
    if max_bytes <= 0:
        raise InvalidArgumentError(f"max_bytes must be positive, got {max_bytes}")
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise StorageError(f"cannot download the image: invalid URL ({exc})") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise StorageError(
            f"cannot download the image: only http(s) URLs are fetched, got scheme "
            f"{target.scheme or '(none)'!r}"
        )
    return target


def _check_length(response: httpx.Response, target: httpx.URL, max_bytes: int) -> None:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(target, max_bytes, declared=int(declared))


def _too_big(target: httpx.URL, max_bytes: int, declared: int | None = None) -> StorageError:
    size = f" (declared {declared} bytes)" if declared is not None else ""
    return StorageError(
        f"the image at {_where(target)} is larger than the {max_bytes}-byte limit{size}; "
        "download aborted"
    )


def _download_failed(target: httpx.URL, cause: BaseException) -> StorageError:
    detail = str(cause) if isinstance(cause, APIError) else type(cause).__name__
    return StorageError(f"the image at {_where(target)} could not be downloaded: {detail}")

"""Send a generation request and get images back: the only module here that does network I/O.

:class:`ImagesClient` posts a JSON body to an :class:`~langchain_imagegen.endpoint.Endpoint`,
retries per :class:`~langchain_imagegen.retry.RetryPolicy`, maps failures with
:mod:`~langchain_imagegen.errors` and parses success with
:mod:`~langchain_imagegen.response`. It also downloads returned image URLs with a size cap.

Why it looks like this:

* Each operation (generate, download) is written once, as a generator that yields what it
  needs done (authorise, exchange a request, wait) and receives the outcome; a sync and an
  async driver do the I/O. This is httpx's ``Auth.auth_flow`` pattern
  (``sync_auth_flow`` / ``async_auth_flow``): the retry logic cannot drift between the two.
* One deadline bounds a whole call: every attempt, every wait and every body read. httpx's
  timeouts are per read, so a server sending a byte every half second would never trip them:
  bodies are streamed and the deadline checked between chunks, and each request's timeouts
  are capped to the time left. The async driver runs each exchange under
  ``asyncio.timeout`` (``wait_for`` on 3.10), an exact bound; a sync body read cannot be
  cancelled, so
  :mod:`~langchain_imagegen.watchdog` shuts its socket down at the deadline. (Before the
  body, a sync request's connect, send and header phases are each bounded by the time that
  was left when it was sent.)
* Bodies are capped: a generation answer at :data:`DEFAULT_MAX_RESPONSE_BYTES`, a download
  at the caller's ``max_bytes``, an error page at 64 KiB, each checked against
  ``Content-Length`` first and counted while streaming, never read whole into memory first.
* A request with ``stream: true`` may be answered with server-sent events: they are parsed as
  they arrive (:mod:`~langchain_imagegen.stream_events`), each preview is handed to the
  caller's ``on_stream`` at once and dropped, and only the event being received is buffered
  (under the same cap). A server that ignores ``stream`` and answers JSON is read as usual.
  Retries apply as before; when an attempt that had sent previews is retried, the caller is
  told (:class:`StreamRestarted`) before the image starts over.
* One lazily created ``httpx.Client`` and one ``httpx.AsyncClient`` per event loop (an
  ``AsyncClient``'s connections belong to the loop that opened them), pooled for 100+
  concurrent requests, so a call costs a dict copy and a POST, not a TLS handshake.
* Timeout 600 s read / 10 s connect by default: gpt-image-2 at high quality or 4K takes
  minutes (docs/models.md); the 30-120 s defaults of other wrappers are too short.
* The request timeout is always passed per request, so an injected client's own (httpx: 5 s)
  default never cuts a generation short. Injected clients are never closed by us.
* Downloads never carry the endpoint's credential: image URLs point at third-party storage.
  Their URLs carry SAS signatures, so messages name only ``scheme://host/path``.
* The clock, ``sleep`` and ``asleep`` are injected like ``rng``, so tests run retries on a
  fake clock without waiting.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import math
import random
import socket
import sys
import threading
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx

from langchain_imagegen.endpoint import Endpoint
from langchain_imagegen.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    ImageDownloadError,
    InvalidArgumentError,
    MalformedResponseError,
    error_from_response,
    request_id_from,
)
from langchain_imagegen.response import ImagesResponse, parse_images_response
from langchain_imagegen.retry import RetryPolicy, is_retryable_error, next_delay
from langchain_imagegen.stream_events import ImageStream, PartialImage
from langchain_imagegen.tls import shared_ssl_context
from langchain_imagegen.watchdog import WATCHDOG

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "Cancellation",
    "ImagesClient",
    "StreamEvent",
    "StreamRestarted",
]

DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
#: Enough connections for 100 concurrent generations plus downloads. Only 20 are kept idle
#: (httpx's default): httpcore scans every pooled connection on each request and response,
#: so many idle ones slow every concurrent call down (measured in docs/performance.md).
DEFAULT_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=20)

#: The largest legitimate base64 image: the largest size any model accepts (3840x2160,
#: docs/models.md) as a PNG that does not compress at all (4 bytes a pixel for RGBA, plus one
#: filter byte a row), with 1 % for PNG chunks and zlib block headers, times 4/3 for base64.
_LARGEST_B64_IMAGE = math.ceil((3840 * 2160 * 4 + 2160) * 1.01 * 4 / 3)
#: The cap on a generation's JSON body: 10 such images (the most ``n`` allows), plus 1 MiB for
#: the JSON around them (revised prompts, usage). About 447 MB; a larger body is refused.
DEFAULT_MAX_RESPONSE_BYTES = 10 * _LARGEST_B64_IMAGE + 1024 * 1024

_log = logging.getLogger(__name__)
_NO_HEADERS: Mapping[str, str] = {}
_ERROR_BODY_LIMIT = 64 * 1024  # an error page is read only this far (a snippet is kept)
#: The response headers the client and the parser read. Each httpx ``Headers`` lookup scans
#: every header, so they are picked out together in one pass.
_READ_HEADERS = frozenset({"content-length", "x-request-id", "apim-request-id"})
_TIMEOUT_PHASE: dict[type[Exception], str] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}

_T = TypeVar("_T")


@dataclass(frozen=True)
class StreamRestarted:
    """A streamed attempt failed after sending previews and the image starts over: the
    previews already announced belong to an image that will not be finished."""

    attempt: int
    """The attempt starting now (2 for the first retry)."""
    previews: int
    """How many previews the failed attempt had sent."""
    reason: str
    """Why it failed (the error's message)."""


class Cancellation:
    """Ends a call's sync exchanges from another thread, at once.

    A sync read cannot be interrupted from outside; :meth:`cancel` shuts down the socket of
    every body being read under it (the read fails at once, as at a deadline), and no
    exchange starts after it. For fan-out threads whose caller was interrupted (Ctrl-C): a
    stream of previews would otherwise go on until its deadline. Async calls are cancelled
    as tasks instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reading: set[object] = set()
        self.cancelled = False

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            reading, self._reading = self._reading, set()
        for token in reading:
            WATCHDOG.fire(token)

    def _track(self, token: object) -> None:
        with self._lock:
            if not self.cancelled:
                self._reading.add(token)
                return
        WATCHDOG.fire(token)  # cancelled while the request was sent

    def _untrack(self, token: object) -> None:
        with self._lock:
            self._reading.discard(token)


StreamEvent = PartialImage | StreamRestarted
"""What a streamed generation hands to ``on_stream``, as it happens."""
SyncStreamSink = Callable[[StreamEvent], None]
AsyncStreamSink = Callable[[StreamEvent], Awaitable[None]]


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("langchain-imagegen")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        version = "0"
    return f"langchain-imagegen/{version}"


# Kept to two: every extra header is work inside httpx on every request. An edit's multipart
# body gets its Content-Type (with the boundary) from httpx instead.
_DEFAULT_HEADERS = {"Content-Type": "application/json", "User-Agent": _user_agent()}

FileField = tuple[str, tuple[str, bytes, str]]
"""One file of an edit: ``(field, (filename, bytes, content type))``, as httpx takes it."""


# -- what a flow asks its driver to do, and what it gets back ---------------------------------


class _Authorize:
    """Get the endpoint's headers (a fresh token when a provider gives one)."""


_AUTHORIZE = _Authorize()


@dataclass(frozen=True)
class _Wait:
    seconds: float


# The two messages built on every attempt are plain slotted dataclasses, not frozen ones: a
# frozen dataclass sets each field through ``object.__setattr__``, and neither is ever changed.
@dataclass(slots=True)
class _Exchange:
    """Send one request and read its body: at most ``limit`` bytes of a 2xx, 64 KiB of an
    error, all before ``deadline``. With ``stream``, an event-stream answer is parsed as it
    arrives, never buffered whole; the driver counts the previews it passed on in
    ``previews`` (so the flow knows, whatever the outcome, whether a retry starts over)."""

    method: str
    url: httpx.URL
    headers: Mapping[str, str]
    content: bytes | None
    limit: int
    deadline: float
    follow_redirects: bool = False
    stream: bool = False
    previews: int = 0
    form: Mapping[str, str] | None = None  # with ``files``: a multipart body instead
    files: Sequence[FileField] | None = None


@dataclass(frozen=True)
class _Notify:
    """Tell the caller's ``on_stream`` something."""

    event: StreamEvent


@dataclass(slots=True)
class _Received:
    response: httpx.Response  # status and headers; the stream is closed
    content: bytes
    too_large: bool  # a 2xx body over the limit: abandoned, ``content`` is incomplete
    declared: int | None  # Content-Length, if the server sent one
    read_headers: Mapping[str, str]  # those of ``_READ_HEADERS`` the response has
    stream: ImageStream | None = None  # an event stream, parsed (``content`` is empty)
    stream_error: APIError | None = None  # an error event ended the stream


class _DeadlinePassed:
    """The call's deadline passed before the exchange could finish."""


_DEADLINE_PASSED = _DeadlinePassed()

_Step = _Authorize | _Wait | _Exchange | _Notify
_Outcome = _Received | httpx.RequestError | _DeadlinePassed
_Flow = Generator[_Step, Any, _T]


class _BodyReader:
    """Collects a streamed body under a size cap and the call's deadline (sync and async);
    an event stream is parsed instead of collected, its previews queued in ``previews``."""

    def __init__(
        self, response: httpx.Response, step: _Exchange, clock: Callable[[], float]
    ) -> None:
        self.response = response
        self.deadline = step.deadline
        self.clock = clock
        self.success = response.is_success
        self.limit = step.limit if self.success else _ERROR_BODY_LIMIT
        self.read_headers = _pick_headers(response.headers)
        declared = self.read_headers.get("content-length", "")
        self.declared = int(declared) if declared.isdigit() else None
        self.buffer = bytearray()
        self.too_large = self.success and self.declared is not None and self.declared > self.limit
        self.late = False
        self.stream: ImageStream | None = None
        self.stream_error: APIError | None = None
        self.previews: list[PartialImage] = []
        content_type = response.headers.get("content-type", "") if step.stream else ""
        if self.success and content_type.lower().startswith("text/event-stream"):
            # Previews and the final image add up past any one image: the cap applies to
            # what is buffered at a time, one event, not to the whole stream.
            self.stream = ImageStream(response.status_code, self.read_headers)
            self.too_large = False

    @property
    def wants_body(self) -> bool:
        return not self.too_large

    def take(self, chunk: bytes) -> bool:
        """Keep ``chunk``; whether to read on."""
        if self.stream is not None:
            return self._parse(chunk, self.stream)
        self.buffer += chunk
        if len(self.buffer) > self.limit:
            if self.success:
                self.too_large = True
            else:
                del self.buffer[self.limit :]  # an error page: a snippet is enough
            return False
        if len(self.buffer) == self.declared:
            return True  # complete, even if it arrived late: the stream ends here
        if self.clock() >= self.deadline:
            self.late = True
            return False
        return True

    def _parse(self, chunk: bytes, stream: ImageStream) -> bool:
        self.previews += stream.feed(chunk)
        if stream.error is not None:  # an error event: the stream says it failed
            self.stream_error = stream.error
            return False
        if stream.buffered > self.limit:
            self.too_large = True
            return False
        if self.clock() >= self.deadline:
            self.late = True
            return False
        return True

    def broken(self, exc: httpx.TransportError) -> _Received | _DeadlinePassed | None:
        """The outcome of an event stream that broke off mid-body (``None``: no event stream
        had begun). The server did answer: a cut stream, not an unreachable host."""
        if self.stream is None:
            return None
        self.stream_error = self.stream.cut(f"{type(exc).__name__}: {exc}")
        return self.outcome()

    def outcome(self) -> _Received | _DeadlinePassed:
        if self.late:
            return _DEADLINE_PASSED
        return _Received(
            self.response,
            bytes(self.buffer),
            self.too_large,
            self.declared,
            self.read_headers,
            self.stream,
            self.stream_error,
        )


def _pick_headers(headers: httpx.Headers) -> dict[str, str]:
    """The headers named in ``_READ_HEADERS``, found in one pass; a repeated one is joined
    with commas, as an httpx ``Headers`` lookup joins it."""
    picked: dict[str, str] = {}
    for name, value in headers.multi_items():  # names come lower-cased
        if name in _READ_HEADERS:
            picked[name] = f"{picked[name]}, {value}" if name in picked else value
    return picked


async def _close_with_loop(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Closes ``client`` when its event loop shuts down (see ``ImagesClient._async_client``)."""
    try:
        yield
    finally:
        await client.aclose()


class ImagesClient:
    """POST ``/images/generations`` with retries, sync and async, plus capped downloads.

    ``generate``/``agenerate`` return an :class:`ImagesResponse` whose ``attempts`` and
    ``elapsed_s`` say how many HTTP attempts were made and how long it all took. Every call
    takes a ``deadline`` on :meth:`clock` (default :meth:`deadline`, ``retry.total_budget``
    from now) that bounds everything it does. Use as a (async) context manager, or call
    :meth:`close` / :meth:`aclose`.

    ``clock``, ``sleep`` and ``asleep`` default to ``time.monotonic``, ``time.sleep`` and
    ``asyncio.sleep``; ``max_response_bytes`` caps a generation's JSON body.
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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if max_response_bytes <= 0:
            raise InvalidArgumentError(
                f"max_response_bytes must be positive, got {max_response_bytes}"
            )
        self._endpoint = endpoint
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._limits = limits
        self._rng = rng
        self._clock = clock
        self._sleep = sleep
        self._asleep = asleep
        self._max_response_bytes = max_response_bytes
        self._url = httpx.URL(endpoint.url, params=endpoint.query or None)
        edits = endpoint.edits_url
        self._edits_url = None if edits is None else httpx.URL(edits, params=endpoint.query or None)
        parts = (timeout.connect, timeout.read, timeout.write, timeout.pool)
        self._longest_timeout = max(math.inf if p is None else p for p in parts)
        self._refresh_token = (
            endpoint.token_provider is not None or endpoint.async_token_provider is not None
        )
        self._injected = http_client
        self._ainjected = async_http_client
        self._client: httpx.Client | None = http_client
        self._aclients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
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

    def request_url(self, *, edit: bool = False) -> str:
        """The full URL (query included) a generation, or with ``edit`` an edit, is sent to
        (the generations URL when there is no edits URL beside it)."""
        return str(self._edits_url if edit and self._edits_url is not None else self._url)

    def clock(self) -> float:
        """Now, on the clock deadlines are measured on (the injected one)."""
        return self._clock()

    def deadline(self) -> float:
        """The deadline of a call starting now: ``retry.total_budget`` seconds away."""
        return self._clock() + self._retry.total_budget

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
                    self._client = httpx.Client(
                        timeout=self._timeout, limits=self._limits, verify=shared_ssl_context()
                    )
                client = self._client
        return client

    async def _async_client(self) -> httpx.AsyncClient:
        if self._ainjected is not None:
            return self._ainjected
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(loop)
        if entry is not None and not entry[0].is_closed:
            return entry[0]
        with self._lock:
            entry = self._aclients.get(loop)
            if entry is None or entry[0].is_closed:  # closed: by a shutdown_asyncgens() call
                for old in [lp for lp in self._aclients if lp.is_closed()]:
                    del self._aclients[old]  # its connections died with its loop
                # Imported here: the transport imports httpcore (and httpcore2), which a
                # sync-only process never needs (httpx imports httpcore on first use too).
                from langchain_imagegen.transport import pooled_async_transport

                client = httpx.AsyncClient(
                    timeout=self._timeout,
                    limits=self._limits,
                    verify=shared_ssl_context(),
                    transport=pooled_async_transport(self._limits),
                )
                # The loop finalises its open async generators when it shuts down
                # (loop.shutdown_asyncgens(), which asyncio.run calls): one started here,
                # and kept referenced so it is not finalised sooner, closes the client
                # there, instead of at garbage collection after the loop is gone.
                entry = (client, _close_with_loop(client))
                self._aclients[loop] = entry
                started = False
            else:
                started = True
        if not started:
            await entry[1].asend(None)  # runs to its ``yield``: registered with the loop
        return entry[0]

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
        with self._lock:
            entry = self._aclients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[1].aclose()  # its ``finally`` closes the client

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

    # -- public calls ------------------------------------------------------------------------

    def generate(
        self,
        body: dict[str, Any],
        *,
        deadline: float | None = None,
        on_stream: SyncStreamSink | None = None,
        cancellation: Cancellation | None = None,
    ) -> ImagesResponse:
        """POST ``body``; retry retryable failures; return the parsed images or raise.

        ``deadline`` (on :meth:`clock`; default :meth:`deadline`) bounds every attempt, wait
        and body read; when it passes, :class:`APITimeoutError` is raised. When ``body`` has
        ``stream: true``, each preview (:class:`~langchain_imagegen.stream_events.
        PartialImage`) and each restart (:class:`StreamRestarted`) is passed to
        ``on_stream`` as it happens; the final image is returned as usual. Another thread
        may end the call through ``cancellation``; it then fails as if its deadline had
        passed.
        """
        return self._run(self._generation(body, deadline), on_stream, cancellation)

    async def agenerate(
        self,
        body: dict[str, Any],
        *,
        deadline: float | None = None,
        on_stream: AsyncStreamSink | None = None,
    ) -> ImagesResponse:
        """Async :meth:`generate`; ``on_stream`` is awaited."""
        return await self._arun(self._generation(body, deadline), on_stream)

    def edit(
        self,
        fields: dict[str, Any],
        files: Sequence[FileField],
        *,
        deadline: float | None = None,
        on_stream: SyncStreamSink | None = None,
        cancellation: Cancellation | None = None,
    ) -> ImagesResponse:
        """POST a multipart edit to the endpoint's ``/images/edits``: ``fields`` as form
        fields (``True`` is sent as ``true``), ``files`` as given (e.g. ``("image[]",
        ("a.png", data, "image/png"))``). Everything else is as :meth:`generate`: retries
        (which send the same bytes again, not copies of them), the deadline, the size cap,
        streamed previews (``image_edit.*`` events).

        Raises:
            ConfigurationError: the endpoint's URL has no ``/images/edits`` beside it.
        """
        flow = self._edit(fields, files, deadline)
        return self._run(flow, on_stream, cancellation)

    async def aedit(
        self,
        fields: dict[str, Any],
        files: Sequence[FileField],
        *,
        deadline: float | None = None,
        on_stream: AsyncStreamSink | None = None,
    ) -> ImagesResponse:
        """Async :meth:`edit`; ``on_stream`` is awaited."""
        return await self._arun(self._edit(fields, files, deadline), on_stream)

    def download(
        self, url: str, *, max_bytes: int, deadline: float | None = None
    ) -> tuple[bytes, str | None]:
        """GET an image URL (http/https only) into memory, at most ``max_bytes`` bytes.

        Returns ``(content, content_type)``. Raises :class:`ImageDownloadError` for every
        failure: another scheme, an invalid URL, a redirect loop or a redirect off http(s), an
        oversized body, an error status, an unreachable host (after retries) or the
        ``deadline`` (as for :meth:`generate`) passing.
        """
        return self._run(self._download(url, max_bytes, deadline))

    async def adownload(
        self, url: str, *, max_bytes: int, deadline: float | None = None
    ) -> tuple[bytes, str | None]:
        """Async :meth:`download`."""
        return await self._arun(self._download(url, max_bytes, deadline))

    # -- the flows: what to do, written once ------------------------------------------------

    def _generation(self, body: dict[str, Any], deadline: float | None) -> _Flow[ImagesResponse]:
        wire = self._endpoint.wire.write(body)
        return self._images_post(
            self._url, body.get("stream") is True, deadline, content=_encode(wire)
        )

    def _edit(
        self, fields: dict[str, Any], files: Sequence[FileField], deadline: float | None
    ) -> _Flow[ImagesResponse]:
        if self._edits_url is None:
            raise ConfigurationError(
                f"cannot edit through {self._endpoint.display_url}: its URL does not end in "
                "/images/generations, so there is no /images/edits beside it"
            )
        written = self._endpoint.wire.write(fields)
        form = {name: _form_value(value) for name, value in written.items()}
        streaming = fields.get("stream") is True
        return self._images_post(self._edits_url, streaming, deadline, form=form, files=files)

    def _images_post(
        self,
        url: httpx.URL,
        streaming: bool,
        deadline: float | None,
        *,
        content: bytes | None = None,
        form: Mapping[str, str] | None = None,
        files: Sequence[FileField] | None = None,
    ) -> _Flow[ImagesResponse]:
        """POST a generation (a JSON ``content``) or an edit (``form`` and ``files``)."""
        started = self._clock()
        deadline = started + self._retry.total_budget if deadline is None else deadline
        headers = yield _AUTHORIZE  # no credential: raise before anything is sent
        attempt = 1
        while True:
            exchange = _Exchange(
                "POST",
                url,
                _multipart(headers) if files is not None else headers,
                content,
                self._max_response_bytes,
                deadline,
                stream=streaming,
                form=form,
                files=files,
            )
            outcome = yield exchange
            response_headers = _NO_HEADERS
            if isinstance(outcome, _DeadlinePassed):
                raise self._deadline_error(f"no usable answer from {url.host}", attempt)
            if isinstance(outcome, _Received):
                response_headers = outcome.response.headers
                failure = self._answer(outcome, attempt, self._clock() - started)
                if isinstance(failure, ImagesResponse):
                    return failure
            elif isinstance(outcome, httpx.TransportError):
                failure = self._transport_error(outcome, url)
            else:
                raise self._request_error(outcome) from outcome
            delay = self._delay(failure, response_headers, attempt, deadline)
            if delay is None:
                raise self._scrubbed(failure, headers)
            yield _Wait(delay)
            attempt += 1
            if exchange.previews:
                reason = self._scrubbed(failure, headers).message
                yield _Notify(StreamRestarted(attempt, exchange.previews, reason))
            if self._refresh_token:
                headers = yield _AUTHORIZE

    def _download(
        self, url: str, max_bytes: int, deadline: float | None
    ) -> _Flow[tuple[bytes, str | None]]:
        deadline = self.deadline() if deadline is None else deadline
        target = _download_url(url, max_bytes)
        attempt = 1
        while True:
            outcome = yield _Exchange(
                "GET", target, _NO_HEADERS, None, max_bytes, deadline, follow_redirects=True
            )
            response_headers = _NO_HEADERS
            if isinstance(outcome, _DeadlinePassed):
                budget = self._deadline_error("no complete image", attempt)
                raise _download_failed(target, budget) from budget
            if isinstance(outcome, _Received):
                response = outcome.response
                if response.is_success and outcome.too_large:
                    raise _too_big(target, max_bytes, outcome.declared)
                if response.is_success:
                    return outcome.content, response.headers.get("content-type")
                failure = error_from_response(
                    response.status_code, outcome.content, response.headers
                )
                response_headers = response.headers
            elif isinstance(outcome, httpx.UnsupportedProtocol):
                # The first URL was http(s); only a redirect can lead elsewhere (file://).
                raise _download_failed(target, "it redirected to a non-http(s) URL") from outcome
            elif isinstance(outcome, httpx.TooManyRedirects):
                raise _download_failed(target, "too many redirects (a loop?)") from outcome
            elif isinstance(outcome, httpx.TransportError):
                failure = self._transport_error(outcome, target)
            else:
                raise _download_failed(target, type(outcome).__name__) from outcome
            delay = self._delay(failure, response_headers, attempt, deadline)
            if delay is None:
                raise _download_failed(target, failure) from failure
            yield _Wait(delay)
            attempt += 1

    # -- the drivers: how, sync and async ---------------------------------------------------

    def _run(
        self,
        flow: _Flow[_T],
        on_stream: SyncStreamSink | None = None,
        cancellation: Cancellation | None = None,
    ) -> _T:
        client = self._sync_client()
        outcome: Any = None
        while True:
            try:
                step = flow.send(outcome)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            outcome = None
            if isinstance(step, _Exchange):
                outcome = self._exchange(client, step, on_stream, cancellation)
            elif isinstance(step, _Wait):
                self._sleep(step.seconds)
            elif isinstance(step, _Notify):
                if on_stream is not None:
                    on_stream(step.event)
            else:
                outcome = self._headers(self._endpoint.headers())

    async def _arun(self, flow: _Flow[_T], on_stream: AsyncStreamSink | None = None) -> _T:
        client: httpx.AsyncClient | None = None
        outcome: Any = None
        while True:
            try:
                step = flow.send(outcome)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            outcome = None
            if isinstance(step, _Exchange):
                client = client or await self._async_client()
                outcome = await self._aexchange(client, step, on_stream)
            elif isinstance(step, _Wait):
                await self._asleep(step.seconds)
            elif isinstance(step, _Notify):
                if on_stream is not None:
                    await on_stream(step.event)
            else:
                outcome = self._headers(await self._endpoint.aheaders())

    def _exchange(
        self,
        client: httpx.Client,
        step: _Exchange,
        on_stream: SyncStreamSink | None,
        cancellation: Cancellation | None,
    ) -> _Outcome:
        remaining = step.deadline - self._clock()
        if remaining <= 0 or (cancellation is not None and cancellation.cancelled):
            return _DEADLINE_PASSED
        request = self._request(client, step, remaining)
        fired = False
        reader: _BodyReader | None = None
        try:
            response = client.send(request, stream=True, follow_redirects=step.follow_redirects)
            guard = _watch(response, step.deadline - self._clock())
            if cancellation is not None and guard is not None:
                cancellation._track(guard)
            try:
                reader = _BodyReader(response, step, self._clock)
                if reader.wants_body:
                    for chunk in response.iter_bytes():
                        reading = reader.take(chunk)
                        # Previews first: the chunk that ends the stream may carry some.
                        for preview in _drain(reader.previews):
                            step.previews += 1
                            if on_stream is not None:
                                on_stream(preview)
                        if not reading:
                            break
            finally:
                # Released before the connection can go back to the pool, where another
                # request might pick it up: the watchdog never touches a pooled socket.
                if cancellation is not None and guard is not None:
                    cancellation._untrack(guard)
                fired = guard is not None and WATCHDOG.release(guard)
                response.close()
        except httpx.RequestError as exc:
            if fired:
                return _DEADLINE_PASSED
            outcome = self._unless_deadline(exc, remaining)
            if reader is not None and isinstance(outcome, httpx.TransportError):
                return reader.broken(outcome) or outcome
            return outcome
        return reader.outcome()

    async def _aexchange(
        self, client: httpx.AsyncClient, step: _Exchange, on_stream: AsyncStreamSink | None
    ) -> _Outcome:
        remaining = step.deadline - self._clock()
        if remaining <= 0:
            return _DEADLINE_PASSED
        request = self._request(client, step, remaining)

        async def exchange() -> _Received | _DeadlinePassed:
            response = await client.send(
                request, stream=True, follow_redirects=step.follow_redirects
            )
            reader = _BodyReader(response, step, self._clock)
            try:
                if reader.wants_body:
                    async for chunk in response.aiter_bytes():
                        reading = reader.take(chunk)
                        # Previews first: the chunk that ends the stream may carry some.
                        for preview in _drain(reader.previews):
                            step.previews += 1
                            if on_stream is not None:
                                await on_stream(preview)
                        if not reading:
                            break
            except httpx.TransportError as exc:
                outcome = self._unless_deadline(exc, remaining)
                if not isinstance(outcome, httpx.TransportError):
                    return _DEADLINE_PASSED
                broken = reader.broken(outcome)
                if broken is None:
                    raise
                return broken
            finally:
                await response.aclose()
            return reader.outcome()

        try:
            return await _within(exchange(), remaining)
        except asyncio.TimeoutError:
            return _DEADLINE_PASSED
        except httpx.RequestError as exc:
            return self._unless_deadline(exc, remaining)

    # -- helpers -----------------------------------------------------------------------------

    def _request(
        self, client: httpx.Client | httpx.AsyncClient, step: _Exchange, remaining: float
    ) -> httpx.Request:
        """The request of ``step``, its timeouts capped to the ``remaining`` seconds."""
        return client.build_request(
            step.method,
            step.url,
            content=step.content,
            data=step.form,
            files=step.files,
            headers=step.headers,
            timeout=self._timeout_within(remaining),
        )

    def _headers(self, endpoint_headers: dict[str, str]) -> dict[str, str]:
        headers = _DEFAULT_HEADERS.copy()
        headers.update(endpoint_headers)
        return headers

    def _timeout_within(self, remaining: float) -> httpx.Timeout:
        """The request timeout, each part shrunk to ``remaining`` seconds if longer."""
        timeout = self._timeout
        if self._longest_timeout <= remaining:
            return timeout
        return httpx.Timeout(
            connect=_cap(timeout.connect, remaining),
            read=_cap(timeout.read, remaining),
            write=_cap(timeout.write, remaining),
            pool=_cap(timeout.pool, remaining),
        )

    def _unless_deadline(self, exc: httpx.RequestError, remaining: float) -> _Outcome:
        """``exc``, or the deadline if it is a timeout that was shrunk to the time left."""
        phase = _TIMEOUT_PHASE.get(type(exc))
        if phase is not None:
            configured = getattr(self._timeout, phase)
            if configured is None or configured > remaining:
                return _DEADLINE_PASSED
        return exc

    def _answer(
        self, received: _Received, attempt: int, elapsed: float
    ) -> ImagesResponse | APIError:
        """The parsed images, or the error (returned, not raised: the flow decides whether
        to retry it)."""
        response = received.response
        status = response.status_code
        if not response.is_success:
            return error_from_response(status, received.content, response.headers)
        if received.stream_error is not None:
            return received.stream_error
        if received.too_large:
            size = f"{received.declared} bytes" if received.declared is not None else "more"
            return MalformedResponseError(
                f"the answer from {self._url.host} is too large ({size}; the limit is "
                f"{self._max_response_bytes} bytes, max_response_bytes); it was not read",
                status_code=status,
                request_id=request_id_from(received.read_headers),
            )
        try:
            if received.stream is not None:
                return received.stream.finish(attempts=attempt, elapsed_s=elapsed)
            return parse_images_response(
                status,
                received.content,
                received.read_headers,
                attempts=attempt,
                elapsed_s=elapsed,
            )
        except APIError as error:
            return error

    def _delay(
        self, error: APIError, headers: Mapping[str, str], attempt: int, deadline: float
    ) -> float | None:
        if not is_retryable_error(error, headers):
            return None
        remaining = deadline - self._clock()
        delay = next_delay(self._retry, attempt, headers, remaining, self._rng)
        if delay is not None:
            _log.info(
                "image request attempt %d failed (%s, status %s); retrying in %.2fs",
                attempt,
                type(error).__name__,
                error.status_code,
                delay,
            )
        return delay

    def _deadline_error(self, what: str, attempt: int) -> APITimeoutError:
        tries = "1 attempt" if attempt == 1 else f"{attempt} attempts"
        return APITimeoutError(
            f"{what} within the call's time budget ({self._retry.total_budget:g} s, "
            f"retry_budget) after {tries}"
        )

    def _scrubbed(self, error: APIError, request_headers: Mapping[str, str]) -> APIError:
        """Blank the credential if the server echoed it ("Incorrect API key provided: ...").

        Any configured key, however short: a 3-character test key is still a secret.
        """
        names = {"authorization", "api-key", self._endpoint.auth_header.lower()}
        for name, value in request_headers.items():
            secret = value.removeprefix("Bearer ").strip()
            if name.lower() not in names or not secret:
                continue
            if secret in error.message:
                error.message = error.message.replace(secret, "***")
                error.args = (error.message,)
            if error.body is not None:
                dumped = json.dumps(error.body)
                if secret in dumped:
                    error.body = json.loads(dumped.replace(secret, "***"))
        return error

    def _transport_error(self, exc: httpx.TransportError, url: httpx.URL) -> APIError:
        error: APIError
        if isinstance(exc, httpx.TimeoutException):
            error = APITimeoutError(
                f"no answer from {url.host} within the timeout ({type(exc).__name__}; "
                f"read timeout {self._timeout.read}s)"
            )
        else:
            error = APIConnectionError(f"could not reach {url.host}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error

    def _request_error(self, exc: httpx.RequestError) -> APIError:
        if isinstance(exc, httpx.DecodingError):
            return MalformedResponseError(
                f"the response from {self._url.host} could not be decoded: {exc}"
            )
        return APIConnectionError(f"the request to {self._url.host} failed: {type(exc).__name__}")


def _drain(queue: list[PartialImage]) -> Iterator[PartialImage]:
    """Take the queued previews, oldest first, so none is held once it is handed on."""
    while queue:
        yield queue.pop(0)


def _watch(response: httpx.Response, seconds: float) -> object | None:
    """Have the watchdog end this response's socket reads at the deadline (real sockets only)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    return WATCHDOG.watch(sock, seconds) if isinstance(sock, socket.socket) else None


async def _within(awaitable: Awaitable[_T], seconds: float) -> _T:
    """``awaitable``, cancelled after ``seconds`` (raising ``asyncio.TimeoutError``).

    ``asyncio.timeout`` (3.11+) runs it in the current task; ``wait_for`` on 3.11 wraps it in
    a task of its own, one more task and scheduling round trip per exchange (3.12's
    ``wait_for`` is ``asyncio.timeout``).
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


def _multipart(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` without the JSON Content-Type: httpx sets a multipart one, with its
    boundary."""
    return {name: value for name, value in headers.items() if name.lower() != "content-type"}


def _form_value(value: Any) -> str:
    """A form field's text: booleans as JSON spells them (``stream=true``), structures as
    JSON, everything else as ``str``."""
    if isinstance(value, bool | dict | list):
        return json.dumps(value)
    return str(value)


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


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
        raise ImageDownloadError(f"cannot download the image: invalid URL ({exc})") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise ImageDownloadError(
            f"cannot download the image: only http(s) URLs are fetched, got scheme "
            f"{target.scheme or '(none)'!r}"
        )
    return target


def _too_big(target: httpx.URL, max_bytes: int, declared: int | None) -> ImageDownloadError:
    size = f" (declared {declared} bytes)" if declared is not None else ""
    return ImageDownloadError(
        f"the image at {_where(target)} is larger than the {max_bytes}-byte limit{size}; "
        "download aborted"
    )


def _download_failed(target: httpx.URL, cause: APIError | str) -> ImageDownloadError:
    """``cause``'s message, status, code and request id, prefixed with what failed."""
    if isinstance(cause, str):
        return ImageDownloadError(f"the image at {_where(target)} could not be downloaded: {cause}")
    return ImageDownloadError(
        f"the image at {_where(target)} could not be downloaded: {cause.message}",
        status_code=cause.status_code,
        code=cause.code,
        request_id=cause.request_id,
    )

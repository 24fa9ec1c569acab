"""One deadline bounds a whole call, and every download failure is an ImageDownloadError.

A tiny HTTP server on 127.0.0.1 misbehaves in the ways a real one can and httpx's per-read
timeouts cannot catch: it trickles a body one byte at a time, or accepts and says nothing.
It also redirects in a loop or to ``file://``, which only a real transport (not
``httpx.MockTransport``) refuses the way production does. Every server thread stops by
itself within a few seconds; timing asserts are generous (deadline + 2 s).
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from langchain_imagegen.client import ImagesClient
from langchain_imagegen.endpoint import Endpoint
from langchain_imagegen.errors import APITimeoutError, ImageDownloadError
from langchain_imagegen.retry import RetryPolicy

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]

BODY = {"model": "gpt-image-1", "prompt": "a red fox"}
DEADLINE_S = 0.3
"""The deadline of the trickling, silent and failing calls: short, as the server never
answers within any deadline (only an upper bound on the call's time is asserted)."""
TRICKLE_GAP_S = 0.1  # a third of DEADLINE_S: the read timeout (the time left) never fires
TRICKLE_BYTES = 100  # 10 s of trickling: far longer than any deadline below
SERVER_LIFETIME_S = 12.0
SLACK_S = 2.0  # how far past its deadline a call may end, generously
LATE_BUDGET_S = 0.75
LATE_S = 0.6
"""Headers 0.15 s before LATE_BUDGET_S (the stall starts before the deadline), and late enough
that a read timeout of the time left when the request was sent (LATE_BUDGET_S) would end the
call after LATE_S + LATE_BUDGET_S = 1.35 s, past the 1.25 s the test allows."""


class MisbehavingServer:
    """Answers by path: ``/trickle`` (a 200 whose body comes one byte every TRICKLE_GAP_S),
    ``/late-stall`` (headers after LATE_S, one byte of the body, then nothing),
    ``/silent`` (accepts, never answers), ``/loop`` (redirects to itself), ``/to-file``
    (redirects to ``file:///etc/passwd``), ``/expired`` (403, as an expired signed link)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)  # how soon close() stops the accept loop
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = time.monotonic()
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._stop.set()
        self._accept.join(5)
        for thread in self._threads:
            thread.join(5)
        self._sock.close()

    def _alive(self) -> bool:
        return not self._stop.is_set() and time.monotonic() - self._started < SERVER_LIFETIME_S

    def _serve(self) -> None:
        while self._alive():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                request = conn.recv(65536).decode("latin-1")
                path = request.split(" ", 2)[1] if request.count(" ") >= 2 else "/"
                self._reply(conn, path)
            except OSError:
                pass  # the client gave up: that is what the tests want

    def _reply(self, conn: socket.socket, path: str) -> None:
        if path.startswith("/trickle"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n" % TRICKLE_BYTES)  # fmt: skip
            for _ in range(TRICKLE_BYTES):
                if not self._alive():
                    return
                conn.sendall(b" ")
                time.sleep(TRICKLE_GAP_S)
        elif path.startswith("/late-stall"):
            time.sleep(LATE_S)  # headers just before the deadline, then one byte, then nothing
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100\r\n\r\n{")
            while self._alive():
                time.sleep(0.1)
        elif path.startswith("/silent"):
            while self._alive():
                time.sleep(0.1)
        elif path.startswith(("/loop", "/to-file")):
            target = path if path.startswith("/loop") else "file:///etc/passwd"
            conn.sendall(b"HTTP/1.1 302 Found\r\nConnection: close\r\nLocation: %s\r\n"
                         b"Content-Length: 0\r\n\r\n" % target.encode())  # fmt: skip
        else:
            body = b"<Error><Code>AuthenticationFailed</Code></Error>"
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip


@pytest.fixture
def server() -> Iterator[MisbehavingServer]:
    served = MisbehavingServer()
    yield served
    served.close()


def _client(server: MisbehavingServer, path: str, **kwargs: Any) -> ImagesClient:
    endpoint = Endpoint.openai(base_url=server.url(path), api_key=SecretStr("sk-test"))
    return ImagesClient(endpoint, retry=RetryPolicy(max_retries=0), **kwargs)


# -- the deadline is a wall-clock bound ------------------------------------------------------


@pytest.mark.parametrize("path", ["/trickle", "/silent"])
def test_a_trickling_or_silent_answer_ends_at_the_deadline(
    server: MisbehavingServer, path: str
) -> None:
    client = _client(server, path)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="time budget") as info:
        client.generate(BODY, deadline=client.clock() + DEADLINE_S)
    assert time.monotonic() - started < DEADLINE_S + SLACK_S
    assert "retry_budget" in str(info.value)  # names the setting that bounds the call
    client.close()


@pytest.mark.parametrize("path", ["/trickle", "/silent"])
async def test_async_a_trickling_or_silent_answer_ends_at_the_deadline(
    server: MisbehavingServer, path: str
) -> None:
    client = _client(server, path)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="time budget"):
        await client.agenerate(BODY, deadline=client.clock() + DEADLINE_S)
    assert time.monotonic() - started < DEADLINE_S + SLACK_S
    await client.aclose()


def test_a_body_stalling_just_before_the_deadline_ends_at_the_deadline(
    server: MisbehavingServer,
) -> None:
    """The body's first read starts 0.6 s into a 0.75 s budget with a read timeout of 0.75 s
    (what was left when the request was sent): without the watchdog it would end near 1.35 s."""
    client = _client(server, "/late-stall")
    for run in (
        lambda: client.generate(BODY, deadline=client.clock() + LATE_BUDGET_S),
        lambda: asyncio.run(client.agenerate(BODY, deadline=client.clock() + LATE_BUDGET_S)),
    ):
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="time budget"):
            run()
        assert time.monotonic() - started < LATE_BUDGET_S + 0.5
    client.close()


def test_the_default_deadline_is_the_retry_budget(server: MisbehavingServer) -> None:
    endpoint = Endpoint.openai(base_url=server.url("/trickle"), api_key=SecretStr("sk-test"))
    client = ImagesClient(endpoint, retry=RetryPolicy(total_budget=DEADLINE_S))
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match=rf"time budget \({DEADLINE_S:g} s, retry_budget\)"):
        client.generate(BODY)
    assert time.monotonic() - started < DEADLINE_S + SLACK_S
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="time budget"):
        asyncio.run(client.agenerate(BODY))
    assert time.monotonic() - started < DEADLINE_S + SLACK_S
    client.close()


def test_a_deadline_already_passed_sends_nothing() -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    transport = httpx.MockTransport(never)
    client = ImagesClient(
        Endpoint.openai(api_key=SecretStr("sk-test")),
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    with pytest.raises(APITimeoutError, match="time budget"):
        client.generate(BODY, deadline=client.clock() - 1)
    with pytest.raises(APITimeoutError, match="time budget"):
        asyncio.run(client.agenerate(BODY, deadline=client.clock()))
    with pytest.raises(ImageDownloadError, match="time budget"):
        client.download("https://blob.example/a.png", max_bytes=10, deadline=client.clock())


def test_deadline_is_the_clock_plus_the_budget() -> None:
    now = [500.0]
    client = ImagesClient(
        Endpoint.openai(api_key=SecretStr("sk-test")),
        retry=RetryPolicy(total_budget=42.0),
        clock=lambda: now[0],
    )
    assert client.clock() == 500.0
    assert client.deadline() == 542.0


# -- downloads: the link's failures, each as ImageDownloadError -------------------------------


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/trickle.png", "time budget"),
        ("/loop.png", "too many redirects"),
        ("/to-file.png", "redirected to a non-http(s) URL"),
        ("/expired.png", "AuthenticationFailed"),
    ],
)
def test_download_failures_are_image_download_errors(
    server: MisbehavingServer, path: str, says: str
) -> None:
    client = _client(server, "/v1")
    url = server.url(path) + "?se=2026&sig=SAS-SECRET"
    for run in (
        lambda: client.download(url, max_bytes=1000, deadline=client.clock() + DEADLINE_S),
        lambda: asyncio.run(
            client.adownload(url, max_bytes=1000, deadline=client.clock() + DEADLINE_S)
        ),
    ):
        started = time.monotonic()
        with pytest.raises(ImageDownloadError, match=re.escape(says)) as info:
            run()
        assert time.monotonic() - started < DEADLINE_S + SLACK_S
        assert "SAS-SECRET" not in str(info.value)
        assert f"127.0.0.1{path}" in str(info.value)
    client.close()


def test_an_expired_link_keeps_its_status(server: MisbehavingServer) -> None:
    client = _client(server, "/v1")
    with pytest.raises(ImageDownloadError) as info:
        client.download(server.url("/expired.png"), max_bytes=1000)
    assert info.value.status_code == 403
    client.close()


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "javascript:alert(1)", "ftp://h/x.png", "/relative.png", "http://"],
)
def test_a_non_http_or_invalid_url_is_refused_before_any_request(url: str) -> None:
    client = ImagesClient(Endpoint.openai(api_key=SecretStr("sk-test")))
    with pytest.raises(ImageDownloadError, match="cannot download the image"):
        client.download(url, max_bytes=100)
    with pytest.raises(ImageDownloadError, match="cannot download the image"):
        asyncio.run(client.adownload(url, max_bytes=100))

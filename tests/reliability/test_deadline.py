"""``retry_budget`` bounds a whole call: every request of a fan-out, their retries, and the
downloads after them.

A small loopback server (the emulator's files are always quick) fails the first attempt of
each of two requests, answers the retries with a URL after a pause, and never finishes
serving the files. With a 1.2 s budget the call must end at about 1.2 s with both images kept
at their URLs. Before one deadline was shared by the call, each download got a fresh budget of
its own and the call took 5 s (with a 2 s budget).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import encode_image
from tests.reliability.conftest import EMULATOR_MARKS, files_under

pytestmark = EMULATOR_MARKS

BUDGET_S = 1.2
"""The retries' answers come about 0.6 s in (a backoff of at most 0.5 s, then
ANSWER_AFTER_S): the rest is left for the downloads to hang in, and for a busy machine."""
MARGIN_S = 1.0
"""Generous: the call ends at the deadline plus a little bookkeeping."""
ANSWER_AFTER_S = 0.1
HANG_S = 60.0


class _SlowImages(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.generations = 0
        self.downloads = 0
        self.release = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _SlowImages

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        with self.server.lock:
            self.server.generations += 1
            number = self.server.generations
        if number <= 2:  # the first attempt of each of the two requests
            error = {"error": {"message": "The server had an error", "type": "server_error"}}
            self._reply(500, json.dumps(error).encode())
            return
        self.server.release.wait(ANSWER_AFTER_S)
        url = f"http://127.0.0.1:{self.server.server_address[1]}/files/{number}.png"
        self._reply(200, json.dumps({"created": 1, "data": [{"url": url}]}).encode())

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.downloads += 1
        self.server.release.wait(HANG_S)  # the file never comes (within the test)
        self._reply(200, encode_image("png", 1, 1), "image/png")


@pytest.fixture
def server() -> Iterator[_SlowImages]:
    slow = _SlowImages()
    thread = threading.Thread(target=slow.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield slow
    finally:
        slow.release.set()
        slow.shutdown()
        slow.server_close()
        thread.join(5)


@pytest.fixture
def tool(server: _SlowImages, tmp_path: Path) -> Iterator[ImageGenerationTool]:
    made = ImageGenerationTool(
        model="dall-e-3",  # one image a request: n=2 is two requests
        api_key="sk-test",
        base_url=server.base_url,
        download_urls=True,
        retry_budget=BUDGET_S,
        timeout=HANG_S,
        output_dir=str(tmp_path / "images"),
    )
    yield made
    made.close()


def _check(result: Any, took: float, server: _SlowImages, tmp_path: Path) -> None:
    assert server.generations == 4  # two requests, each retried once
    assert took < BUDGET_S + MARGIN_S, f"the call took {took:.2f} s"
    assert len(result.images) == 2
    assert all(image.url and image.download_error for image in result.images)
    assert files_under(tmp_path / "images") == []


def test_the_budget_bounds_requests_retries_and_downloads(
    server: _SlowImages, tool: ImageGenerationTool, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = tool.generate({"prompt": "a fox", "n": 2})
    _check(result, time.monotonic() - started, server, tmp_path)


async def test_the_budget_bounds_requests_retries_and_downloads_async(
    server: _SlowImages, tool: ImageGenerationTool, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = await tool.agenerate({"prompt": "a fox", "n": 2})
    _check(result, time.monotonic() - started, server, tmp_path)
    await tool.aclose()

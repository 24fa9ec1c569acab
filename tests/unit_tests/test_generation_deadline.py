"""One deadline per call: every request and every download of a call gets the deadline taken
when the call started, however long the others took.

A fake client with a fake clock stands in for the network: each request "takes" several
seconds of that clock (as retries would), so a deadline computed per request or per download
would come out later than the call's. The end-to-end bound (a slow download after slow
requests) is in ``tests/reliability/test_deadline.py``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from langchain_imagegen.client import ImagesClient
from langchain_imagegen.coercion import coerce_params
from langchain_imagegen.generation import ImageGenerator
from langchain_imagegen.response import ImagesResponse, ReturnedImage
from langchain_imagegen.storage import ImageStore
from tests.emulator import encode_image

BUDGET = 10.0
START = 1000.0
URL = "https://files.example/img-{}.png"


class FakeClient:
    """What :class:`ImageGenerator` uses of an :class:`ImagesClient`, on a fake clock that
    each request and download moves forward by ``takes`` seconds."""

    def __init__(self, takes: float = 4.0) -> None:
        self.now = START
        self.takes = takes
        self.lock = threading.Lock()
        self.generate_deadlines: list[float | None] = []
        self.download_deadlines: list[float | None] = []

    def clock(self) -> float:
        return self.now

    def deadline(self) -> float:
        return self.now + BUDGET

    def _spend(self, into: list[float | None], deadline: float | None) -> int:
        with self.lock:
            into.append(deadline)
            self.now += self.takes
            return len(into)

    def _response(self, number: int) -> ImagesResponse:
        return ImagesResponse(created=1, images=(ReturnedImage(None, URL.format(number)),))

    def _image(self, deadline: float | None) -> tuple[bytes, str | None]:
        number = self._spend(self.download_deadlines, deadline)
        return encode_image("png", 1, 1, tag=str(number)), "image/png"

    def generate(
        self, body: dict[str, Any], *, deadline: float | None = None, **_: Any
    ) -> ImagesResponse:
        return self._response(self._spend(self.generate_deadlines, deadline))

    async def agenerate(
        self, body: dict[str, Any], *, deadline: float | None = None, **_: Any
    ) -> ImagesResponse:
        return self._response(self._spend(self.generate_deadlines, deadline))

    def download(
        self, url: str, *, max_bytes: int, deadline: float | None = None
    ) -> tuple[bytes, str | None]:
        return self._image(deadline)

    async def adownload(
        self, url: str, *, max_bytes: int, deadline: float | None = None
    ) -> tuple[bytes, str | None]:
        return self._image(deadline)


def _generator(client: FakeClient, tmp_path: Path) -> ImageGenerator:
    store = ImageStore(tmp_path / "images")
    return ImageGenerator(cast(ImagesClient, client), store, download_urls=True)


@pytest.mark.parametrize("images", [1, 3])
def test_every_request_and_download_shares_the_call_deadline(tmp_path: Path, images: int) -> None:
    client = FakeClient()
    plan = coerce_params("dall-e-3", {"prompt": "a fox", "n": images})  # one image a request
    result = _generator(client, tmp_path).run(plan)
    assert len(result.images) == images
    assert all(image.path for image in result.images)
    assert client.generate_deadlines == [START + BUDGET] * images
    assert client.download_deadlines == [START + BUDGET] * images


@pytest.mark.parametrize("images", [1, 3])
async def test_every_async_request_and_download_shares_the_call_deadline(
    tmp_path: Path, images: int
) -> None:
    client = FakeClient()
    plan = coerce_params("dall-e-3", {"prompt": "a fox", "n": images})
    result = await _generator(client, tmp_path).arun(plan)
    assert len(result.images) == images
    assert all(image.path for image in result.images)
    assert client.generate_deadlines == [START + BUDGET] * images
    assert client.download_deadlines == [START + BUDGET] * images


def test_each_call_gets_its_own_deadline(tmp_path: Path) -> None:
    client = FakeClient(takes=1.0)
    generator = _generator(client, tmp_path)
    plan = coerce_params("dall-e-3", {"prompt": "a fox"})
    generator.run(plan)
    asyncio.run(generator.arun(plan))
    assert client.generate_deadlines == [START + BUDGET, START + 2.0 + BUDGET]

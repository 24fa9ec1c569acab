"""A failed download is the link's problem, and the image is not lost.

With ``download_urls=True``, an image whose URL cannot be fetched (a redirect loop, a redirect
to ``file://``, a file over the size cap, an expired link's 403) stays in the result at its
URL with ``download_error`` set; the LLM reads the URL and that the download failed, and
nothing is written. A URL that is not http(s) is never shown as an image location: the item
is left out and the shortfall reported. Also here: items without a usable image cost only
themselves, and each image carries what the response said about it. HTTP goes to an
``httpx.MockTransport`` (sync and async).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolMessage

from langchain_imagegen.errors import CorruptImageError, MalformedResponseError
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import encode_image

FILES = "https://files.example"
PNG = encode_image("png", 2, 2, tag="downloaded")
MAX_BYTES = 1000
Handler = Callable[[httpx.Request], httpx.Response]


def _file(request: httpx.Request) -> httpx.Response:
    """The image host: each path is one way for a download to go."""
    path = request.url.path
    if path == "/loop.png":
        return httpx.Response(302, headers={"location": f"{FILES}/loop.png"})
    if path == "/to-file.png":
        return httpx.Response(302, headers={"location": "file:///etc/passwd"})
    if path == "/large.png":
        return httpx.Response(200, content=b"\x89PNG" + b"\0" * (MAX_BYTES * 4))
    if path == "/expired.png":
        body = (
            '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
            "<Message>Signed expiry time has to be after signed start time.</Message></Error>"
        )
        return httpx.Response(403, text=body, headers={"content-type": "application/xml"})
    if path == "/empty.png":
        return httpx.Response(200, content=b"", headers={"content-type": "image/png"})
    if path == "/ok.png":
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
    return httpx.Response(404)


def _server(*items: dict[str, Any], top: dict[str, Any] | None = None) -> Handler:
    """Answers every generation with ``items`` (and ``top``-level fields), serves the files."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"created": 1, "data": list(items), **(top or {})})
        return _file(request)

    return handler


@pytest.fixture
def make_tool(tmp_path: Path) -> Iterator[Callable[[Handler], ImageGenerationTool]]:
    clients: list[httpx.Client | httpx.AsyncClient] = []

    def make(handler: Handler, **kwargs: Any) -> ImageGenerationTool:
        sync = httpx.Client(transport=httpx.MockTransport(handler))
        async_ = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.extend([sync, async_])
        options: dict[str, Any] = {
            "model": "dall-e-2",
            "api_key": "sk-test",
            "base_url": "https://gateway.example/v1",
            "http_client": sync,
            "http_async_client": async_,
            "download_urls": True,
            "max_download_bytes": MAX_BYTES,
            "output_dir": str(tmp_path / "images"),
            "max_retries": 0,
        }
        return ImageGenerationTool(**{**options, **kwargs})

    yield make
    for client in clients:
        if isinstance(client, httpx.Client):
            client.close()


def _files(tmp_path: Path) -> list[Path]:
    images = tmp_path / "images"
    return sorted(images.rglob("*")) if images.exists() else []


async def _both(tool: ImageGenerationTool, args: dict[str, Any]) -> list[ImageGenerationResult]:
    return [tool.generate(args), await tool.agenerate(args)]


def _tool_message(tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    call = {"name": tool.name, "args": args, "id": "call_1", "type": "tool_call"}
    message = tool.invoke(call)
    assert isinstance(message, ToolMessage)
    return message


FAILURES = {
    "redirect loop": ("loop.png", "redirect"),
    "redirect to file://": ("to-file.png", "file"),
    "over the size cap": ("large.png", f"{MAX_BYTES}-byte limit"),
    "expired link (403)": ("expired.png", "HTTP 403"),
}


@pytest.mark.parametrize(("name", "says"), FAILURES.values(), ids=FAILURES.keys())
async def test_a_failed_download_keeps_the_image_at_its_url(
    make_tool: Callable[..., ImageGenerationTool], tmp_path: Path, name: str, says: str
) -> None:
    url = f"{FILES}/{name}?se=2026-12-01T10%3A00%3A00Z&sig=secret"
    tool = make_tool(_server({"url": url, "revised_prompt": "a red fox"}))
    for result in await _both(tool, {"prompt": "a fox"}):
        (image,) = result.images
        assert image.url == url
        assert image.path is None
        assert image.download_error is not None
        assert says.lower() in image.download_error.lower()
        assert "sig=secret" not in image.download_error  # messages name scheme://host/path
        assert result.shortfall == 0
        assert result.errors == []
        text = result.to_text()
        assert url in text
        assert "download failed" in text
    message = _tool_message(tool, {"prompt": "a fox"})
    assert message.status == "success"
    assert url in str(message.content)
    assert "download failed" in str(message.content)
    assert _files(tmp_path) == []


async def test_only_failed_downloads_is_still_a_result(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    tool = make_tool(_server({"url": f"{FILES}/expired.png"}, {"url": f"{FILES}/loop.png"}))
    for result in await _both(tool, {"prompt": "a fox", "n": 2}):
        assert [image.url for image in result.images] == [
            f"{FILES}/expired.png",
            f"{FILES}/loop.png",
        ]
        assert all(image.download_error for image in result.images)


async def test_good_downloads_beside_a_failed_one_are_saved(
    make_tool: Callable[..., ImageGenerationTool], tmp_path: Path
) -> None:
    tool = make_tool(_server({"url": f"{FILES}/ok.png"}, {"url": f"{FILES}/expired.png"}))
    for result in await _both(tool, {"prompt": "a fox", "n": 2}):
        saved, failed = result.images
        assert saved.path is not None
        assert saved.sha256 == hashlib.sha256(PNG).hexdigest()
        assert saved.download_error is None
        assert failed.path is None
        assert failed.download_error is not None
    assert len(_files(tmp_path)) == 1  # the same bytes twice: one file


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "javascript:alert(1)", "ftp://files.example/a.png"]
)
async def test_a_url_that_is_not_http_is_never_shown(
    make_tool: Callable[..., ImageGenerationTool], location: str
) -> None:
    tool = make_tool(_server({"url": location}, {"url": f"{FILES}/ok.png"}))
    for result in await _both(tool, {"prompt": "a fox", "n": 2}):
        assert [image.url for image in result.images] == [f"{FILES}/ok.png"]
        assert result.shortfall == 1
        (error,) = result.errors
        assert "non-http(s) URL" in error
        assert location not in result.to_text()
        assert location not in result.model_dump_json()
    message = _tool_message(tool, {"prompt": "a fox", "n": 2})
    assert location not in str(message.content)
    assert "Asked for 2 images but received 1; 1 missing." in str(message.content)


async def test_only_non_http_urls_is_an_error_that_does_not_show_them(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    tool = make_tool(_server({"url": "file:///etc/passwd"}))
    with pytest.raises(MalformedResponseError, match="non-http") as sync_info:
        tool.generate({"prompt": "a fox"})
    with pytest.raises(MalformedResponseError, match="non-http") as async_info:
        await tool.agenerate({"prompt": "a fox"})
    for info in (sync_info, async_info):
        assert "/etc/passwd" not in str(info.value)
    message = _tool_message(tool, {"prompt": "a fox"})
    assert message.status == "error"
    assert "/etc/passwd" not in str(message.content)


# --- one bad item does not discard the good ones ---------------------------------------------


GOOD_B64 = base64.b64encode(encode_image("png", 1, 1, tag="good")).decode()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({}, "neither `url` nor a non-empty `b64_json`"),
        ({"b64_json": ""}, "neither `url` nor a non-empty `b64_json`"),
        ({"b64_json": None, "revised_prompt": "x"}, "neither `url` nor a non-empty `b64_json`"),
        ("not an object", "not an object"),
    ],
    ids=["empty object", "empty b64_json", "null b64_json", "a string"],
)
async def test_an_item_without_an_image_costs_only_itself(
    make_tool: Callable[..., ImageGenerationTool], tmp_path: Path, bad: Any, reason: str
) -> None:
    tool = make_tool(_server({"b64_json": GOOD_B64}, bad), model="gpt-image-1")
    for result in await _both(tool, {"prompt": "a fox", "n": 2}):
        (image,) = result.images
        assert image.path is not None
        assert result.shortfall == 1
        (error,) = result.errors
        assert "1 of the 2 items the server returned carried no usable image" in error
        assert "data[1]" in error
        assert reason in error
        assert "Asked for 2 images but received 1; 1 missing." in result.to_text()
    assert len(_files(tmp_path)) == 1


# --- what the response said about its images -------------------------------------------------


async def test_each_image_carries_what_the_response_said(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    top = {
        "size": "1536x1024",
        "quality": "high",
        "background": "opaque",
        "output_format": "png",
        "usage": {"input_tokens": 10, "output_tokens": 4160, "total_tokens": 4170},
    }
    tool = make_tool(_server({"b64_json": GOOD_B64}, top=top), model="gpt-image-1")
    for result in await _both(tool, {"prompt": "a fox", "size": "1024x1024"}):
        (image,) = result.images
        assert (image.size, image.quality, image.background, image.output_format) == (
            "1536x1024",
            "high",
            "opaque",
            "png",
        )
        assert result.usage == top["usage"]


async def test_without_a_size_in_the_response_the_size_asked_for_is_kept(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    tool = make_tool(_server({"url": f"{FILES}/ok.png"}), download_urls=False)
    for result in await _both(tool, {"prompt": "a fox", "size": "512x512"}):
        (image,) = result.images
        assert image.size == "512x512"
        assert (image.quality, image.background, image.output_format) == (None, None, None)


def test_the_request_body_is_unchanged_by_the_response(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    sent: list[dict[str, Any]] = []
    answer = _server({"url": f"{FILES}/ok.png"}, top={"size": "1024x1024"})

    def recording(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            sent.append(json.loads(request.content))
        return answer(request)

    result = make_tool(recording).generate({"prompt": "a fox", "size": "512x512"})
    assert sent[0]["size"] == "512x512"
    assert result.requests[0].body["size"] == "512x512"
    assert result.images[0].size == "1024x1024"


async def test_an_empty_download_is_the_servers_problem_not_the_disks(
    make_tool: Callable[..., ImageGenerationTool], tmp_path: Path
) -> None:
    tool = make_tool(_server({"url": f"{FILES}/empty.png"}, {"url": f"{FILES}/ok.png"}))
    for result in await _both(tool, {"prompt": "a fox", "n": 2}):
        assert [image.url for image in result.images] == [f"{FILES}/ok.png"]
        (error,) = result.errors
        assert "empty image" in error
    with pytest.raises(CorruptImageError, match="empty image") as info:
        make_tool(_server({"url": f"{FILES}/empty.png"})).generate({"prompt": "a fox"})
    assert "output_dir" not in info.value.agent_message()
    assert len(_files(tmp_path)) == 1

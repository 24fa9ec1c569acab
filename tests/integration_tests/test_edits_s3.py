"""Edits with the images in object storage, against a real S3 API on loopback (moto,
``tests/s3_server.py``) and the loopback emulator.

The generation tool saves into ``s3://BUCKET/agents/run-1`` and gives the LLM each image's
handle and signed link; the edit tool reads the image back from the bucket by its handle or
storage URI (through s3fs), or downloads it by the signed link, uploads it to the emulator, and
stores the edited image in the same bucket. Other buckets
and other prefixes are refused without a single request to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from langchain_core.messages import ToolCall

from langchain_imagegen import image_tools
from langchain_imagegen.edit_tool import ImageEditTool
from langchain_imagegen.result import GeneratedImage, ImageGenerationResult
from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import ReceivedRequest, encode_image
from tests.integration_tests.conftest import LIVE, Target
from tests.integration_tests.test_edits import MODES, edited, edits, run, sha
from tests.integration_tests.test_tool import failed, succeeded
from tests.s3_server import S3_LIVE, S3Bucket

pytestmark = [*LIVE, *S3_LIVE]

PREFIX = "agents/run-1"


@pytest.fixture
def s3_tools(
    target: Target, s3_bucket: S3Bucket, made: list[ImageGenerationTool]
) -> tuple[ImageGenerationTool, ImageEditTool]:
    generate, edit = image_tools(
        model="gpt-image-1",
        base_url=target.base_url,
        output_dir=f"{s3_bucket.url}/{PREFIX}",
        storage_options=s3_bucket.storage_options,
    )
    made.extend([generate, edit])
    assert isinstance(edit, ImageEditTool)
    return generate, edit


@pytest.fixture
def other_bucket(s3_bucket: S3Bucket) -> Iterator[str]:
    """A second bucket on the same server, deleted afterwards."""
    name = s3_bucket.server.create_bucket()
    try:
        yield name
    finally:
        s3_bucket.server.delete_bucket(name)


def generated_image(generate: ImageGenerationTool) -> GeneratedImage:
    message = generate.invoke(
        ToolCall(name="generate_image", args={"prompt": "a kite"}, id="g", type="tool_call")
    )
    _, result = succeeded(message)
    (image,) = result.images
    assert image.handle is not None
    assert image.link is not None
    assert image.handle in str(message.content)
    return image


def assert_stored_in_bucket(
    result: ImageGenerationResult, request: ReceivedRequest, bucket: S3Bucket
) -> None:
    """Every edited image is an object under the prefix (the emulator's answer to exactly
    ``request``'s inputs), and its signed link serves those bytes."""
    assert request.edit is not None
    tag = f"edit-{request.edit.digest[:16]}-".encode()
    objects = bucket.objects(PREFIX)
    for image in result.images:
        assert image.path is None
        assert image.sha256 is not None
        key = f"{PREFIX}/{image.sha256[:16]}.png"
        assert image.uri == f"{bucket.url}/{key}"
        data = objects[key]
        assert tag in data
        assert sha(data) == image.sha256
        assert image.link is not None
        assert httpx.get(image.link).content == data


def no_request_to(bucket: S3Bucket, name: str) -> bool:
    return not any(r.path.startswith(f"/{name}") for r in bucket.server.received())


@pytest.mark.parametrize("mode", MODES)
async def test_edit_by_handle_reads_from_the_bucket_and_stores_the_edit_there(
    s3_tools: tuple[ImageGenerationTool, ImageEditTool],
    target: Target,
    s3_bucket: S3Bucket,
    mode: str,
) -> None:
    generate, edit = s3_tools
    image = generated_image(generate)
    assert image.handle is not None

    text, result = edited(
        await run(edit, {"prompt": "add a hat", "images": [image.handle]}, mode), [image.handle]
    )

    (request,) = edits(target)
    assert request.edit is not None
    assert [p.sha256 for p in request.edit.images] == [image.sha256]
    assert_stored_in_bucket(result, request, s3_bucket)
    assert s3_bucket.secret not in text
    assert s3_bucket.secret not in result.model_dump_json()


@pytest.mark.parametrize("mode", MODES)
async def test_edit_by_the_signed_link_or_the_uri_the_result_gave(
    s3_tools: tuple[ImageGenerationTool, ImageEditTool],
    target: Target,
    s3_bucket: S3Bucket,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    generate, edit = s3_tools
    image = generated_image(generate)
    assert image.link is not None
    assert image.uri is not None
    downloads: list[str] = []
    real_download, real_adownload = edit.client.download, edit.client.adownload

    def download(url: str, **kwargs: Any) -> Any:
        downloads.append(url)
        return real_download(url, **kwargs)

    async def adownload(url: str, **kwargs: Any) -> Any:
        downloads.append(url)
        return await real_adownload(url, **kwargs)

    monkeypatch.setattr(edit.client, "download", download)
    monkeypatch.setattr(edit.client, "adownload", adownload)

    _, by_link = edited(
        await run(edit, {"prompt": "add a hat", "images": [image.link]}, mode), [image.handle or ""]
    )
    _, by_uri = edited(
        await run(edit, {"prompt": "add a scarf", "images": [image.uri]}, mode),
        [image.handle or ""],
    )

    for request, result in zip(edits(target), (by_link, by_uri), strict=True):
        assert request.edit is not None
        assert [p.sha256 for p in request.edit.images] == [image.sha256]
        assert_stored_in_bucket(result, request, s3_bucket)
    # A signed link is an http(s) URL like any other: downloaded (capped, no credential
    # added); the store's URI is read through the store. Either way the lineage is the handle.
    assert downloads == [image.link]
    assert target.http_calls() == 3  # the generation and the two edits


async def test_edit_the_edit_in_the_bucket(
    s3_tools: tuple[ImageGenerationTool, ImageEditTool], target: Target, s3_bucket: S3Bucket
) -> None:
    generate, edit = s3_tools
    image = generated_image(generate)
    assert image.handle is not None

    _, first = edited(
        await run(edit, {"prompt": "a hat", "images": [image.handle]}, "async"), [image.handle]
    )
    second_input = first.images[0].handle
    assert second_input is not None
    _, second = edited(
        await run(edit, {"prompt": "a scarf", "images": [second_input]}, "sync"), [second_input]
    )

    _, last = edits(target)
    assert last.edit is not None
    assert [p.sha256 for p in last.edit.images] == [first.images[0].sha256]
    assert_stored_in_bucket(second, last, s3_bucket)


@pytest.mark.parametrize("mode", MODES)
async def test_another_bucket_or_prefix_is_refused_and_never_asked(
    s3_tools: tuple[ImageGenerationTool, ImageEditTool],
    target: Target,
    s3_bucket: S3Bucket,
    other_bucket: str,
    mode: str,
) -> None:
    generate, edit = s3_tools
    image = generated_image(generate)
    assert image.handle is not None
    assert image.sha256 is not None
    name = f"{image.sha256[:16]}.png"
    planted = encode_image("png", 32, 32, tag="in another bucket")
    fs = s3_bucket.filesystem()
    fs.pipe_file(f"{other_bucket}/{PREFIX}/{name}", planted)
    fs.pipe_file(f"{s3_bucket.name}/elsewhere/{name}", planted)
    s3_bucket.server.clear_received()

    for ref in (
        f"s3://{other_bucket}/{PREFIX}/{name}",
        f"s3://{s3_bucket.name}/elsewhere/{name}",
        f"s3://{s3_bucket.name}/{PREFIX}/../elsewhere/{name}",
        f"s3://{s3_bucket.name}/agents/{name}",
    ):
        text = failed(await run(edit, {"prompt": "a hat", "images": [ref]}, mode))
        assert f"refer to an earlier image by its handle: {image.handle}" in text
        assert s3_bucket.secret not in text

    assert no_request_to(s3_bucket, other_bucket)
    assert not any("/elsewhere/" in r.path for r in s3_bucket.server.received())
    assert target.emulator.stats().edit_requests == 0


def test_a_new_tool_on_the_same_prefix_edits_by_an_earlier_handle(
    s3_tools: tuple[ImageGenerationTool, ImageEditTool],
    target: Target,
    s3_bucket: S3Bucket,
    made: list[ImageGenerationTool],
) -> None:
    """Handles name content, not a process: a new edit tool on the same bucket and prefix
    (another run, another machine) edits an image by the handle an earlier run gave."""
    generate, _ = s3_tools
    image = generated_image(generate)
    assert image.handle is not None
    fresh = ImageEditTool(
        model="gpt-image-2",
        base_url=target.base_url,
        output_dir=f"{s3_bucket.url}/{PREFIX}",
        storage_options=s3_bucket.storage_options,
    )
    made.append(fresh)

    message = fresh.invoke(
        ToolCall(
            name="edit_image",
            args={"prompt": "a hat", "images": [image.handle]},
            id="e",
            type="tool_call",
        )
    )

    _, result = edited(message, [image.handle])
    (request,) = edits(target)
    assert_stored_in_bucket(result, request, s3_bucket)
    assert urlsplit(result.images[0].link or "").path.startswith(f"/{s3_bucket.name}/{PREFIX}/")

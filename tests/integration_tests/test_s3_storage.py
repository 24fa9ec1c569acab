"""Object storage end to end, against a real S3 API on loopback (moto, ``tests/s3_server.py``).

The first tests check the test server itself with s3fs alone (what the tool relies on: a
PUT, a presigned link fetched over HTTP, a scripted upload fault); the others run the tool
against it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import hashlib
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from langchain_core.messages import ToolMessage

from langchain_imagegen import ImageGenerationResult, ImageGenerationTool
from tests.emulator import Fault
from tests.integration_tests.conftest import LIVE, Target
from tests.integration_tests.test_tool import ainvoke, invoke
from tests.s3_server import S3_LIVE, S3Bucket, S3Fault, S3Server

pytestmark = [*LIVE, *S3_LIVE]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_server_stores_bytes_and_serves_a_presigned_link(s3_bucket: S3Bucket) -> None:
    data = os.urandom(50_000)
    fs = s3_bucket.filesystem()
    path = f"{s3_bucket.name}/images/raw.png"

    fs.pipe_file(path, data, ContentType="image/png")
    link = fs.sign(path, expiration=60)
    response = httpx.get(link)

    assert link.startswith(s3_bucket.server.endpoint_url + "/")
    assert response.status_code == 200
    assert _sha(response.content) == _sha(data)
    assert response.headers["content-type"] == "image/png"
    assert fs.info(path)["ContentType"] == "image/png"
    assert s3_bucket.objects() == {"images/raw.png": data}


def test_server_answers_a_queued_upload_fault(s3_bucket: S3Bucket) -> None:
    fs = s3_bucket.filesystem()
    s3_bucket.server.push_fault(S3Fault(key_contains="second"))

    fs.pipe_file(f"{s3_bucket.name}/first.png", b"1")
    with pytest.raises(PermissionError):
        fs.pipe_file(f"{s3_bucket.name}/second.png", b"2")
    fs.pipe_file(f"{s3_bucket.name}/third.png", b"3")

    assert s3_bucket.objects() == {"first.png": b"1", "third.png": b"3"}
    uploads = [r.path for r in s3_bucket.server.received() if r.is_object_upload]
    assert uploads == [f"/{s3_bucket.name}/{n}.png" for n in ("first", "second", "third")]


def test_each_test_gets_a_fresh_empty_bucket(s3_bucket: S3Bucket) -> None:
    buckets = {b["Name"] for b in s3_bucket.filesystem().call_s3("list_buckets")["Buckets"]}

    # Every earlier test's bucket (made by this fixture, named test-*) is gone.
    assert {name for name in buckets if name.startswith("test-")} == {s3_bucket.name}
    assert s3_bucket.objects() == {}


def test_server_starts_and_stops_quickly_and_completely() -> None:
    server = S3Server()
    started = time.perf_counter()
    with server:
        url = server.endpoint_url
        assert httpx.get(f"{url}/").status_code == 200  # ListBuckets
        threads = {t.name for t in threading.enumerate()}
        assert f"s3-server-{server.port}" in threads
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0
    assert f"s3-server-{url.rsplit(':', 1)[1]}" not in {t.name for t in threading.enumerate()}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/")


# --- the tool, end to end ---------------------------------------------------------------------
#
# The images come from the loopback emulator (``target``, see ``conftest.py``): gpt-image
# models answer in base64, dall-e-3 with URLs the emulator serves, which the tool copies into
# the bucket. Every link the LLM reads is fetched over HTTP and must return the stored bytes.

PREFIX = "agents/run-1"


@pytest.fixture
def s3_tool(target: Target, s3_bucket: S3Bucket, made: list[ImageGenerationTool]) -> Any:
    """Builds a tool that sends to the emulator and saves to ``s3://BUCKET/agents/run-1``."""

    def make(model: str, **kwargs: Any) -> ImageGenerationTool:
        kwargs.setdefault("output_dir", f"{s3_bucket.url}/{PREFIX}")
        kwargs.setdefault("storage_options", s3_bucket.storage_options)
        tool = ImageGenerationTool(model=model, base_url=target.base_url, **kwargs)
        made.append(tool)
        return tool

    return make


def assert_no_secret(bucket: S3Bucket, *texts: str) -> None:
    for text in texts:
        assert bucket.secret not in text


def stored_in_bucket(
    message: ToolMessage, bucket: S3Bucket, *, expected: int
) -> tuple[str, ImageGenerationResult]:
    """The invariants of a remote save: each image is one object under the prefix, named by
    its content hash, with its content type; the LLM reads an http(s) link (never a local
    path) that fetches exactly the stored bytes; no base64 and no secret anywhere."""
    assert isinstance(message.content, str)
    assert isinstance(message.artifact, ImageGenerationResult)
    text, result = message.content, message.artifact
    artifact_json = result.model_dump_json()
    assert text == result.to_text()
    assert "iVBORw0KGgo" not in text + artifact_json  # no base64 PNG
    assert_no_secret(bucket, text, artifact_json, repr(result))
    assert len(result.images) == expected

    objects = bucket.objects(PREFIX)
    assert len(objects) == expected
    fs = bucket.filesystem()
    with httpx.Client() as client:
        for image in result.images:
            assert image.path is None
            assert image.uri is not None
            assert image.uri.startswith(f"{bucket.url}/{PREFIX}/")
            key = image.uri.removeprefix(f"{bucket.url}/")
            data = objects[key]
            assert image.sha256 == _sha(data)
            assert key.rsplit("/", 1)[1].startswith(_sha(data)[:16])
            assert image.size_bytes == len(data)
            assert fs.info(f"{bucket.name}/{key}")["ContentType"] == image.mime_type
            metadata = fs.metadata(f"{bucket.name}/{key}")
            assert metadata["model"] == result.model
            assert metadata["prompt-sha256"] == _sha(result.prompt.encode())

            assert image.link is not None
            assert image.link.startswith(bucket.server.endpoint_url + "/")
            assert image.link in text
            assert image.link_expires_at is not None
            response = client.get(image.link)
            assert response.status_code == 200, image.link
            assert _sha(response.content) == _sha(data)
    assert str(Path.cwd()) not in text  # no local path for the LLM
    assert "/tmp/" not in text
    return text, result


def test_tool_saves_base64_images_to_s3_and_links_them_sync(
    s3_tool: Any, s3_bucket: S3Bucket
) -> None:
    tool = s3_tool("gpt-image-1")

    message = invoke(tool, {"prompt": "two paper boats", "n": 2, "quality": "low"})

    assert message.status == "success", message.content
    _text, result = stored_in_bucket(message, s3_bucket, expected=2)
    assert {image.mime_type for image in result.images} == {"image/png"}
    assert_no_secret(s3_bucket, repr(tool), str(tool.model_dump()), tool.model_dump_json())


async def test_tool_saves_base64_images_to_s3_and_links_them_async(
    s3_tool: Any, s3_bucket: S3Bucket
) -> None:
    tool = s3_tool("gpt-image-1")

    message = await ainvoke(
        tool, {"prompt": "two paper boats", "n": 2, "quality": "low", "output_format": "jpeg"}
    )

    assert message.status == "success", message.content
    _text, result = stored_in_bucket(message, s3_bucket, expected=2)
    assert {image.mime_type for image in result.images} == {"image/jpeg"}
    await tool.aclose()


def _check_fan_out_copied(target: Target, bucket: S3Bucket, result: ImageGenerationResult) -> None:
    assert len(result.requests) == 3  # dall-e-3 makes one image per request
    assert all(r.error is None for r in result.requests)
    assert len(target.requests()) == 3
    for image in result.images:
        assert image.url is not None
        assert image.url.startswith(target.root)  # where the image server put it
        assert image.link is not None
        assert image.link.startswith(bucket.server.endpoint_url)  # our copy in the bucket
        assert image.revised_prompt is not None


def test_dall_e_3_fan_out_copies_url_images_into_the_bucket_sync(
    s3_tool: Any, s3_bucket: S3Bucket, target: Target
) -> None:
    tool = s3_tool("dall-e-3")  # download_urls stays False: remote storage copies anyway

    message = invoke(tool, {"prompt": "three lanterns", "n": 3})

    assert message.status == "success", message.content
    _text, result = stored_in_bucket(message, s3_bucket, expected=3)
    _check_fan_out_copied(target, s3_bucket, result)
    assert target.http_calls() == 6  # three generations, three downloads


async def test_dall_e_3_fan_out_copies_url_images_into_the_bucket_async(
    s3_tool: Any, s3_bucket: S3Bucket, target: Target
) -> None:
    tool = s3_tool("dall-e-3")

    message = await ainvoke(tool, {"prompt": "three lanterns", "n": 3})

    assert message.status == "success", message.content
    _text, result = stored_in_bucket(message, s3_bucket, expected=3)
    _check_fan_out_copied(target, s3_bucket, result)
    await tool.aclose()


def test_links_expire_when_link_expires_in_says(s3_tool: Any, s3_bucket: S3Bucket) -> None:
    tool = s3_tool("gpt-image-1", link_expires_in=90)
    before = dt.datetime.now(dt.timezone.utc)

    message = invoke(tool, {"prompt": "an hourglass", "quality": "low"})
    after = dt.datetime.now(dt.timezone.utc)

    _text, result = stored_in_bucket(message, s3_bucket, expected=1)
    (image,) = result.images
    assert image.link_expires_at is not None
    # Signed during the call, for 90 s (however long a loaded machine made the call take).
    second = dt.timedelta(seconds=1)
    window = dt.timedelta(seconds=90)
    assert before + window - second <= image.link_expires_at <= after + window + second
    signed_until = int(parse_qs(urlsplit(image.link or "").query)["Expires"][0])
    assert abs(signed_until - image.link_expires_at.timestamp()) <= 2
    unsigned = (image.link or "").split("?", 1)[0]
    assert httpx.get(unsigned).status_code == 403  # the bucket is private: the signature counts


def test_public_base_url_links_are_the_base_joined_with_the_key(
    s3_tool: Any, s3_bucket: S3Bucket
) -> None:
    """A bucket anyone may read (a bucket policy; or a CDN in front of one): the link is
    ``public_base_url`` + the object key, unsigned, never expiring, and it fetches."""
    public = f"{s3_bucket.server.endpoint_url}/{s3_bucket.name}"
    s3_bucket.make_public()
    tool = s3_tool("gpt-image-1", public_base_url=public)

    message = invoke(tool, {"prompt": "a weather vane", "quality": "low"})

    (image,) = message.artifact.images
    assert image.link == f"{public}/{image.uri.removeprefix(f'{s3_bucket.url}/')}"
    assert image.link_expires_at is None
    assert image.link in message.content
    response = httpx.get(image.link)
    assert response.status_code == 200
    assert _sha(response.content) == image.sha256


# --- failures cost only what failed -----------------------------------------------------------


def _check_one_refused(result: ImageGenerationResult, text: str) -> None:
    failed = [r for r in result.requests if r.error]
    assert len(failed) == 1
    assert "safety system" in (failed[0].error or "")
    assert result.shortfall == 1
    assert "Asked for 3 images but received 2; 1 missing." in text


def test_partial_failure_keeps_the_other_images_in_the_bucket_sync(
    s3_tool: Any, s3_bucket: S3Bucket, target: Target
) -> None:
    target.push_fault(Fault.content_policy_violation())
    tool = s3_tool("dall-e-3")

    message = invoke(tool, {"prompt": "three owls", "n": 3})

    assert message.status == "success", message.content
    text, result = stored_in_bucket(message, s3_bucket, expected=2)
    _check_one_refused(result, text)


async def test_partial_failure_keeps_the_other_images_in_the_bucket_async(
    s3_tool: Any, s3_bucket: S3Bucket, target: Target
) -> None:
    target.push_fault(Fault.content_policy_violation())
    tool = s3_tool("dall-e-3")

    message = await ainvoke(tool, {"prompt": "three owls", "n": 3})

    assert message.status == "success", message.content
    text, result = stored_in_bucket(message, s3_bucket, expected=2)
    _check_one_refused(result, text)
    await tool.aclose()


def _check_one_upload_refused(
    result: ImageGenerationResult, text: str, bucket: S3Bucket, target: Target
) -> None:
    """One PUT answered 403 AccessDenied by the S3 server: that image is lost with a clear
    error naming the store and the reason; the two others are kept and linked."""
    failed = [r for r in result.requests if r.error]
    assert len(failed) == 1
    error = failed[0].error or ""
    assert f"{bucket.url}/{PREFIX}" in error
    assert "Access Denied" in error or "AccessDenied" in error
    assert error in text or f"{bucket.url}/{PREFIX}" in text
    assert result.shortfall == 1
    assert len(target.requests()) == 3  # the generation itself succeeded three times
    uploads = [r for r in bucket.server.received() if r.is_object_upload]
    assert len(uploads) == 3
    assert_no_secret(bucket, error, text)


def test_upload_refused_by_s3_costs_only_that_image_sync(
    s3_tool: Any, s3_bucket: S3Bucket, target: Target
) -> None:
    s3_bucket.server.push_fault(S3Fault())
    tool = s3_tool("dall-e-3")

    message = invoke(tool, {"prompt": "three kites", "n": 3})

    assert message.status == "success", message.content
    text, result = stored_in_bucket(message, s3_bucket, expected=2)
    _check_one_upload_refused(result, text, s3_bucket, target)


async def test_upload_refused_by_s3_costs_only_that_image_async(
    s3_tool: Any, s3_bucket: S3Bucket, target: Target
) -> None:
    s3_bucket.server.push_fault(S3Fault())
    tool = s3_tool("dall-e-3")

    message = await ainvoke(tool, {"prompt": "three kites", "n": 3})

    assert message.status == "success", message.content
    text, result = stored_in_bucket(message, s3_bucket, expected=2)
    _check_one_upload_refused(result, text, s3_bucket, target)
    await tool.aclose()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_missing_bucket_is_a_clear_error_naming_it(
    mode: str, s3_tool: Any, s3_bucket: S3Bucket
) -> None:
    missing = f"{s3_bucket.name}-missing"
    tool = s3_tool("gpt-image-1", output_dir=f"s3://{missing}/{PREFIX}")
    args = {"prompt": "a paper crane", "quality": "low"}

    message = invoke(tool, args) if mode == "sync" else await ainvoke(tool, args)

    assert message.status == "error"
    assert isinstance(message.content, str)
    assert f"s3://{missing}/{PREFIX}" in message.content
    assert "Traceback" not in message.content
    assert_no_secret(s3_bucket, message.content)
    assert not s3_bucket.filesystem().exists(missing)  # nothing created, nothing half-written
    await tool.aclose()


# --- uploads wait on the network, not on each other -------------------------------------------

UPLOAD_DELAY_S = 0.6


def test_uploads_of_one_response_run_concurrently_sync(
    s3_tool: Any, s3_bucket: S3Bucket, target: Target
) -> None:
    s3_bucket.server.slow_uploads(UPLOAD_DELAY_S)
    tool = s3_tool("gpt-image-1")  # one request, three images in its answer

    message = invoke(tool, {"prompt": "three bells", "n": 3, "quality": "low"})

    assert message.status == "success", message.content
    stored_in_bucket(message, s3_bucket, expected=3)
    assert s3_bucket.server.max_uploads_in_flight() == 3


def test_fan_out_uploads_run_concurrently_sync(
    s3_tool: Any, s3_bucket: S3Bucket, target: Target
) -> None:
    s3_bucket.server.slow_uploads(UPLOAD_DELAY_S)
    tool = s3_tool("dall-e-3")  # three requests, one image each

    message = invoke(tool, {"prompt": "three bells", "n": 3})

    assert message.status == "success", message.content
    stored_in_bucket(message, s3_bucket, expected=3)
    # Each request's answer arrives on its own time; on a loaded machine one may come too
    # late to overlap both others, but one upload at a time is what must never happen.
    assert s3_bucket.server.max_uploads_in_flight() > 1


async def test_async_uploads_run_concurrently_and_leave_the_event_loop_free(
    s3_tool: Any, s3_bucket: S3Bucket, target: Target
) -> None:
    """A ticker on the same event loop keeps ticking while three slow uploads are held by
    the server: an upload that blocked the loop would leave a gap of the whole delay."""
    # Longer than the other tests' delay: what a blocked loop would show (the whole delay)
    # must stand well clear of what a loaded 2-core machine does to a ticker.
    delay = 1.5
    s3_bucket.server.slow_uploads(delay)
    tool = s3_tool("dall-e-3")
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    # A full garbage collection of this big test process stops every thread for ~0.3 s;
    # what is measured here is the tool, so none runs meanwhile.
    gc.collect()
    gc.disable()
    ticker = asyncio.create_task(tick())
    try:
        message = await ainvoke(tool, {"prompt": "three bells", "n": 3})
    finally:
        ticker.cancel()
        gc.enable()

    assert message.status == "success", message.content
    stored_in_bucket(message, s3_bucket, expected=3)
    # Each request's answer arrives on its own time; on a loaded machine one may come too
    # late to overlap both others, but one upload at a time is what must never happen.
    assert s3_bucket.server.max_uploads_in_flight() > 1
    longest_gap = max(later - earlier for earlier, later in itertools.pairwise(ticks))
    # An upload on the loop would stall it for the whole delay; a loaded 2-core CI machine
    # (and the S3 server, in this process) can delay a tick by a fraction of it.
    assert longest_gap < delay / 2, f"event loop blocked for {longest_gap:.2f} s"
    await tool.aclose()

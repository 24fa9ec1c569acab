"""Streamed previews (``partial_images``) end to end, live against the loopback emulator.

The emulator answers ``stream: true`` with a real chunked event stream (``tests/emulator.py``):
per image ``partial_images`` preview events, then one ``image_generation.completed`` event. Its
images are deterministic: the final image of request ``rid`` is
``encode_image(format, w, h, tag=f"{rid}-0")`` and preview ``p`` carries the tag
``f"{rid}-0-partial-{p}"`` (another colour too), so a test can tell, byte for byte, the final
image from every preview. Events are read as a caller reads them: a callback handler's
``on_custom_event`` (sync ``invoke``) and ``astream_events`` (async); when they arrived is
compared with the emulator's own write log (``Emulator.stream_log``), never with a fixed delay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolCall, ToolMessage

from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import EVENT_NAME, ImageGenerationTool
from tests.conftest import wait_for
from tests.emulator import Fault, encode_image
from tests.integration_tests.conftest import LIVE, Target
from tests.integration_tests.test_tool import succeeded
from tests.s3_server import S3_LIVE, S3Bucket

pytestmark = [*LIVE, *S3_LIVE]

PROMPT = "a lighthouse at dawn, watercolor"
COMPLETED = "image_generation.completed"
PARTIAL = "image_generation.partial_image"


# --- how a caller sees the events ----------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One ``image_generation`` event and when the caller got it (``time.monotonic()``)."""

    at: float
    data: dict[str, Any]

    @property
    def stage(self) -> str:
        return str(self.data["stage"])


class EventRecorder(BaseCallbackHandler):
    """Keeps the tool's custom events with their arrival time (called in the thread that
    dispatched them, so the time is when the tool announced the event)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if name == EVENT_NAME:
            self.seen.append(Seen(time.monotonic(), dict(data)))


def _call(args: dict[str, Any]) -> ToolCall:
    return ToolCall(name="generate_image", args=args, id="call_1", type="tool_call")


def invoke_recorded(
    tool: ImageGenerationTool, args: dict[str, Any]
) -> tuple[ToolMessage, list[Seen]]:
    """``tool.invoke`` with a callback handler attached: the message and the events."""
    recorder = EventRecorder()
    message = tool.invoke(_call(args), config={"callbacks": [recorder]})
    assert isinstance(message, ToolMessage)
    return message, recorder.seen


async def astream_recorded(
    tool: ImageGenerationTool, args: dict[str, Any]
) -> tuple[ToolMessage, list[Seen]]:
    """``tool.astream_events``: the final message and the events as they came out."""
    seen: list[Seen] = []
    message: ToolMessage | None = None
    async for event in tool.astream_events(_call(args), version="v2"):
        if event["event"] == "on_custom_event" and event["name"] == EVENT_NAME:
            seen.append(Seen(time.monotonic(), dict(event["data"])))
        elif event["event"] == "on_tool_end":
            message = event["data"]["output"]
    assert isinstance(message, ToolMessage)
    return message, seen


@pytest.fixture
def make_tool(made: list[ImageGenerationTool], tmp_path: Path, target: Target) -> Any:
    def make(model: str, **kwargs: Any) -> ImageGenerationTool:
        kwargs.setdefault("output_dir", str(tmp_path / "images"))
        kwargs.setdefault("base_url", target.base_url)
        tool = ImageGenerationTool(model=model, **kwargs)
        made.append(tool)
        return tool

    return make


# --- what every streamed success keeps -----------------------------------------------------------


def _stages(seen: Iterable[Seen], index: int) -> list[str]:
    return [s.stage for s in seen if s.data.get("request_index") == index]


def check_streamed(
    target: Target,
    message: ToolMessage,
    seen: list[Seen],
    directory: Path,
    *,
    partial_images: int,
    images: int,
) -> ImageGenerationResult:
    """A streamed call that succeeded: one streamed request per image, the final images in the
    result (byte for byte what the completed events carried), every preview saved beside them
    as ``preview-*`` and announced in order before its request's final image, none of them in
    the result or the LLM's text."""
    text, result = succeeded(message)
    # What was sent: one image per request, each streamed.
    bodies = [r.body for r in target.requests()]
    assert len(bodies) == images
    for body in bodies:
        assert body["stream"] is True
        assert body["partial_images"] == partial_images
        assert body.get("n", 1) == 1
    # Counted once each terminating chunk is written, which the client can have read first.
    assert wait_for(lambda: target.emulator.stats().streams_finished == images)

    # The final images, and only they, are the result.
    assert len(result.images) == images
    assert sorted(i.request_index for i in result.images) == list(range(images))
    finals: set[bytes] = set()
    for image in result.images:
        assert image.path is not None
        path = Path(image.path)
        assert path.parent == directory
        assert not path.name.startswith("preview-")
        rid = result.requests[image.request_index].request_id
        assert rid is not None
        width, height = (int(edge) for edge in (image.size or "1024x1024").split("x"))
        data = path.read_bytes()
        assert data == encode_image(image.output_format or "png", width, height, tag=f"{rid}-0")
        finals.add(data)
    assert result.usage is not None
    assert result.usage["total_tokens"] > 0
    assert all(r.usage and r.usage["total_tokens"] > 0 for r in result.requests)

    # Previews: saved beside the images, announced, never reported as images.
    partials = [s.data for s in seen if s.stage == "partial"]
    assert len(partials) == images * partial_images
    assert all("error" not in p for p in partials), partials
    on_disk = {p.name for p in directory.iterdir() if p.name.startswith("preview-")}
    announced = {Path(p["path"]).name for p in partials}
    assert announced == on_disk
    assert len(on_disk) == images * partial_images  # every preview has bytes of its own
    for event in partials:
        path = Path(event["path"])
        assert event["uri"] == str(path)
        rid = result.requests[event["request_index"]].request_id
        data = path.read_bytes()
        assert f"{rid}-0-partial-{event['partial_index']}".encode() in data
        assert data not in finals
    assert "preview-" not in text
    assert "preview-" not in result.model_dump_json()
    assert {Path(i.path or "").name for i in result.images}.isdisjoint(on_disk)

    # Order: per request, every preview (0..N-1) before the request is received and saved.
    assert [s.stage for s in seen[:images]] == ["requested"] * images
    for index in range(images):
        assert _stages(seen, index) == [
            "requested",
            *["partial"] * partial_images,
            "received",
            "saved",
        ]
        indexes = [
            s.data["partial_index"]
            for s in seen
            if s.stage == "partial" and s.data["request_index"] == index
        ]
        assert indexes == list(range(partial_images))
    return result


# --- happy path ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-2"])
@pytest.mark.parametrize("partial_images", [1, 2, 3])
def test_streamed_previews_then_the_final_image_sync(
    target: Target, make_tool: Any, tmp_path: Path, model: str, partial_images: int
) -> None:
    tool = make_tool(model, partial_images=partial_images)

    message, seen = invoke_recorded(tool, {"prompt": PROMPT})

    result = check_streamed(
        target, message, seen, tmp_path / "images", partial_images=partial_images, images=1
    )
    assert result.adjustments == []


@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-2"])
@pytest.mark.parametrize("partial_images", [1, 3])
async def test_streamed_previews_then_the_final_image_async(
    target: Target, make_tool: Any, tmp_path: Path, model: str, partial_images: int
) -> None:
    tool = make_tool(model, partial_images=partial_images)

    message, seen = await astream_recorded(tool, {"prompt": PROMPT, "output_format": "jpeg"})

    result = check_streamed(
        target, message, seen, tmp_path / "images", partial_images=partial_images, images=1
    )
    assert result.images[0].mime_type == "image/jpeg"
    await tool.aclose()


def test_fan_out_streams_one_image_per_request_sync(
    target: Target, make_tool: Any, tmp_path: Path
) -> None:
    tool = make_tool("gpt-image-1", partial_images=2)

    message, seen = invoke_recorded(tool, {"prompt": PROMPT, "n": 3})

    result = check_streamed(target, message, seen, tmp_path / "images", partial_images=2, images=3)
    (adjustment,) = result.adjustments
    assert adjustment.field == "n"
    assert "a streamed request makes 1 image" in adjustment.reason
    assert "3 parallel requests" in adjustment.reason
    assert target.emulator.stats().peak_connections >= 2  # the three streams overlapped


async def test_fan_out_streams_one_image_per_request_async(
    target: Target, make_tool: Any, tmp_path: Path
) -> None:
    tool = make_tool("gpt-image-2", partial_images=2)

    message, seen = await astream_recorded(tool, {"prompt": PROMPT, "n": 3})

    check_streamed(target, message, seen, tmp_path / "images", partial_images=2, images=3)
    await tool.aclose()


def test_no_listener_still_saves_previews_and_returns_the_final_image(
    target: Target, make_tool: Any, tmp_path: Path
) -> None:
    """Without a callback handler nobody hears the events, but the stream is still read
    (previews saved, then the final image)."""
    tool = make_tool("gpt-image-1", partial_images=2)

    message = tool.invoke(_call({"prompt": PROMPT}))

    _text, result = succeeded(message)
    previews = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert len(result.images) == 1
    assert len([name for name in previews if name.startswith("preview-")]) == 2
    assert target.requests()[0].body["stream"] is True


# --- previews arrive live ------------------------------------------------------------------------


def _written(target: Target, what: str) -> dict[str, float]:
    """When the emulator wrote its first ``what`` event, per request id."""
    first: dict[str, float] = {}
    for record in target.emulator.stream_log:
        if record.what == what:
            first.setdefault(record.request_id, record.at)
    return first


def check_live(target: Target, message: ToolMessage, seen: list[Seen]) -> None:
    """The first preview reached the caller before the emulator even wrote the final image."""
    _text, result = succeeded(message)
    rid = result.requests[0].request_id
    assert rid is not None
    completed_at = _written(target, COMPLETED)[rid]
    first_partial_written = _written(target, PARTIAL)[rid]
    first_partial_seen = next(s.at for s in seen if s.stage == "partial")
    assert first_partial_written < first_partial_seen < completed_at
    received_seen = next(s.at for s in seen if s.stage == "received")
    assert received_seen > completed_at


def test_preview_reaches_the_caller_before_the_final_image_is_sent_sync(
    target: Target, make_tool: Any
) -> None:
    target.push_fault(Fault.stream_interval(0.3))  # 0.6 s from the first preview to the final
    tool = make_tool("gpt-image-1", partial_images=2)

    message, seen = invoke_recorded(tool, {"prompt": PROMPT})

    check_live(target, message, seen)


async def test_preview_reaches_the_caller_before_the_final_image_is_sent_async(
    target: Target, make_tool: Any
) -> None:
    target.push_fault(Fault.stream_interval(0.3))
    tool = make_tool("gpt-image-2", partial_images=2)

    message, seen = await astream_recorded(tool, {"prompt": PROMPT})

    check_live(target, message, seen)
    await tool.aclose()


async def test_every_request_of_a_fan_out_streams_live(target: Target, make_tool: Any) -> None:
    target.push_fault(Fault.stream_interval(0.3), Fault.stream_interval(0.3))
    tool = make_tool("gpt-image-1", partial_images=2)

    message, seen = await astream_recorded(tool, {"prompt": PROMPT, "n": 2})

    _text, result = succeeded(message)
    completed = _written(target, COMPLETED)
    for index, request in enumerate(result.requests):
        assert request.request_id is not None
        first_seen = next(
            s.at for s in seen if s.stage == "partial" and s.data["request_index"] == index
        )
        assert first_seen < completed[request.request_id]
    await tool.aclose()


# --- models that do not stream -------------------------------------------------------------------


@pytest.mark.parametrize("model", ["dall-e-2", "dall-e-3"])
def test_dall_e_gets_no_stream_fields_sync(
    target: Target, make_tool: Any, tmp_path: Path, model: str
) -> None:
    tool = make_tool(model, partial_images=2)

    message, seen = invoke_recorded(tool, {"prompt": PROMPT})

    # The emulator answers 400 unknown_parameter to a DALL·E request with stream fields.
    text, result = succeeded(message)
    (body,) = [r.body for r in target.requests()]
    assert "stream" not in body
    assert "partial_images" not in body
    (adjustment,) = [a for a in result.adjustments if a.field == "partial_images"]
    assert (adjustment.proposed, adjustment.applied) == (2, 0)
    assert f"{model} does not stream previews" in adjustment.reason
    assert adjustment.describe() in text
    assert len(result.images) == 1
    assert result.images[0].url is not None
    assert [s.stage for s in seen] == ["requested", "received"]  # a URL: nothing saved
    assert target.emulator.stats().streams_started == 0
    assert not (tmp_path / "images").exists() or not any((tmp_path / "images").iterdir())


async def test_dall_e_3_gets_no_stream_fields_async(target: Target, make_tool: Any) -> None:
    tool = make_tool("dall-e-3", partial_images=3, download_urls=True)

    message, seen = await astream_recorded(tool, {"prompt": PROMPT, "n": 2})

    _text, result = succeeded(message)
    for request in target.requests():
        assert "stream" not in request.body
        assert "partial_images" not in request.body
    assert {a.field for a in result.adjustments} >= {"partial_images", "n"}
    assert len(result.images) == 2
    assert all(image.path and "preview-" not in image.path for image in result.images)
    assert "partial" not in {s.stage for s in seen}
    await tool.aclose()


# --- remote storage ------------------------------------------------------------------------------


PREFIX = "streams/run-1"


@pytest.fixture
def s3_tool(target: Target, s3_bucket: S3Bucket, made: list[ImageGenerationTool]) -> Any:
    def make(model: str, **kwargs: Any) -> ImageGenerationTool:
        tool = ImageGenerationTool(
            model=model,
            base_url=target.base_url,
            output_dir=f"{s3_bucket.url}/{PREFIX}",
            storage_options=s3_bucket.storage_options,
            **kwargs,
        )
        made.append(tool)
        return tool

    return make


def check_previews_in_bucket(
    bucket: S3Bucket, message: ToolMessage, seen: list[Seen], *, partial_images: int
) -> None:
    """Previews are ``preview-*`` objects beside the image; their events name the object's
    ``s3://`` URI only: no local path, no signed link (events go to tracers)."""
    text, result = succeeded(message)
    objects = bucket.objects(PREFIX)
    previews = {key for key in objects if key.rsplit("/", 1)[1].startswith("preview-")}
    assert len(previews) == partial_images
    (image,) = result.images
    assert image.uri is not None
    assert image.uri.removeprefix(f"{bucket.url}/") in objects
    assert image.uri.removeprefix(f"{bucket.url}/") not in previews
    partials = [s.data for s in seen if s.stage == "partial"]
    assert [p["partial_index"] for p in partials] == list(range(partial_images))
    for event in partials:
        assert set(event) == {"stage", "request_index", "partial_index", "uri"}
        assert event["uri"].startswith(f"s3://{bucket.name}/{PREFIX}/preview-")
        assert event["uri"].removeprefix(f"{bucket.url}/") in previews
    dumped = json.dumps([s.data for s in seen])
    assert bucket.server.endpoint_url not in dumped  # no link, signed or not
    assert "Signature" not in dumped
    assert bucket.secret not in dumped
    assert "preview-" not in text


def test_previews_go_to_the_bucket_sync(s3_tool: Any, s3_bucket: S3Bucket) -> None:
    tool = s3_tool("gpt-image-1", partial_images=2)

    message, seen = invoke_recorded(tool, {"prompt": PROMPT, "quality": "low"})

    check_previews_in_bucket(s3_bucket, message, seen, partial_images=2)


async def test_previews_go_to_the_bucket_async(s3_tool: Any, s3_bucket: S3Bucket) -> None:
    tool = s3_tool("gpt-image-2", partial_images=3)

    message, seen = await astream_recorded(tool, {"prompt": PROMPT, "quality": "low"})

    check_previews_in_bucket(s3_bucket, message, seen, partial_images=3)
    await tool.aclose()

"""ImageStream: a streamed generation's events (openai-openapi f85dbe22 ``ImageGenStreamEvent``,
vendored in ``tests/data/openapi``) become previews and one ImagesResponse, or the mapped error."""

from __future__ import annotations

import gc
import inspect
import json
import logging
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from langchain_imagegen.errors import (
    APIConnectionError,
    APIError,
    BadRequestError,
    ContentPolicyError,
    InternalServerError,
    MalformedResponseError,
    RateLimitError,
)
from langchain_imagegen.response import ImagesResponse, ReturnedImage
from langchain_imagegen.retry import is_retryable_error
from langchain_imagegen.stream_events import ImageStream, PartialImage
from tests.conftest import TINY_PNG_B64

SPEC_FILE = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "openapi"
    / "openapi-images-2026-08-21-f85dbe22.yaml"
)
HEADERS = {"x-request-id": "req_stream_1", "content-type": "text/event-stream"}


def _spec() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return document


SPEC = _spec()
SCHEMAS = SPEC["components"]["schemas"]
PARTIAL_EXAMPLE: dict[str, Any] = json.loads(
    SCHEMAS["ImageGenPartialImageEvent"]["x-oaiMeta"]["example"]
)
COMPLETED_EXAMPLE: dict[str, Any] = json.loads(
    SCHEMAS["ImageGenCompletedEvent"]["x-oaiMeta"]["example"]
)
STREAMING_RESPONSE_EXAMPLE: str = next(
    example["response"]
    for example in SPEC["paths"]["/images/generations"]["post"]["x-oaiMeta"]["examples"]
    if example["title"] == "Streaming"
)


def sse(payload: dict[str, Any] | str, event: str | None = None) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


def run(
    chunks: Iterable[bytes], status: int = 200, headers: dict[str, str] | None = None
) -> tuple[list[PartialImage], ImagesResponse]:
    stream = ImageStream(status, HEADERS if headers is None else headers)
    previews: list[PartialImage] = []
    for chunk in chunks:
        previews += stream.feed(chunk)
    return previews, stream.finish()


def feed_all(chunks: Iterable[bytes]) -> ImageStream:
    """The stream after ``chunks``; raises the error it reported, if any."""
    stream = ImageStream(200, HEADERS)
    for chunk in chunks:
        stream.feed(chunk)
    if stream.error is not None:
        raise stream.error
    return stream


# --- the spec's examples --------------------------------------------------------------------


def test_spec_schema_examples_make_previews_and_final_image() -> None:
    partial = PARTIAL_EXAMPLE | {"b64_json": "cHJldmlldw=="}
    second = partial | {"partial_image_index": 1, "b64_json": "cHJldmlldzI="}
    completed = COMPLETED_EXAMPLE | {"b64_json": TINY_PNG_B64}
    stream_bytes = (
        sse(partial, "image_generation.partial_image")
        + sse(second, "image_generation.partial_image")
        + sse(completed, "image_generation.completed")
    )
    previews, response = run([stream_bytes])
    assert previews == [
        PartialImage(0, "cHJldmlldw==", "1024x1024", "high", "transparent", "png"),
        PartialImage(1, "cHJldmlldzI=", "1024x1024", "high", "transparent", "png"),
    ]
    assert response == ImagesResponse(
        created=1620000000,
        images=(ReturnedImage(TINY_PNG_B64, None, None),),
        usage=COMPLETED_EXAMPLE["usage"],
        size="1024x1024",
        quality="high",
        background="transparent",
        output_format="png",
        request_id="req_stream_1",
    )


def test_spec_streaming_response_example_with_its_omissions() -> None:
    # The path's own example sends only type, b64_json ("...") and the index or usage.
    previews, response = run([STREAMING_RESPONSE_EXAMPLE.encode()], headers={})
    assert previews == [PartialImage(0, "...", None, None, None, None)]
    assert response.images == (ReturnedImage("...", None, None),)
    assert response.usage == {
        "total_tokens": 100,
        "input_tokens": 50,
        "output_tokens": 50,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
    }
    assert (response.created, response.size, response.request_id) == (None, None, None)


def test_attempts_and_elapsed_are_copied_onto_the_result() -> None:
    stream = feed_all([sse({"type": "image_generation.completed", "b64_json": "QQ=="})])
    response = stream.finish(attempts=3, elapsed_s=12.5)
    assert (response.attempts, response.elapsed_s) == (3, 12.5)


# --- leniency -------------------------------------------------------------------------------


def test_missing_or_bad_index_is_numbered_by_arrival() -> None:
    events = [
        sse({"type": "image_generation.partial_image", "b64_json": "QQ=="}),
        sse(
            {
                "type": "image_generation.partial_image",
                "b64_json": "Qg==",
                "partial_image_index": -1,
            }
        ),
        sse(
            {
                "type": "image_generation.partial_image",
                "b64_json": "Qw==",
                "partial_image_index": True,
            }
        ),
        sse(
            {
                "type": "image_generation.partial_image",
                "b64_json": "RA==",
                "partial_image_index": "3",
            }
        ),
        sse(
            {"type": "image_generation.partial_image", "b64_json": "RQ==", "partial_image_index": 7}
        ),
        sse({"type": "image_generation.completed", "b64_json": "Rg=="}),
    ]
    previews, _ = run(events)
    assert [(p.index, p.b64_json) for p in previews] == [
        (0, "QQ=="),
        (1, "Qg=="),
        (2, "Qw=="),
        (3, "RA=="),
        (7, "RQ=="),
    ]


def test_blank_or_missing_preview_image_is_skipped_and_counted() -> None:
    stream = ImageStream(200, HEADERS)
    previews = stream.feed(
        sse({"type": "image_generation.partial_image", "b64_json": "  ", "partial_image_index": 0})
        + sse({"type": "image_generation.partial_image", "b64_json": None})
        + sse({"type": "image_generation.partial_image"})
        + sse("", "image_generation.partial_image")
        + sse({"type": "image_generation.partial_image", "b64_json": "QQ=="})
    )
    assert [(p.index, p.b64_json) for p in previews] == [(4, "QQ==")]
    assert stream.partials_seen == 5


def test_event_name_stands_in_for_missing_type() -> None:
    previews, response = run(
        [
            sse({"b64_json": "QQ=="}, "image_generation.partial_image"),
            sse({"b64_json": "Qg==", "created_at": 5}, "image_generation.completed"),
        ]
    )
    assert [p.b64_json for p in previews] == ["QQ=="]
    assert response.images[0].b64_json == "Qg=="
    assert response.created == 5


def test_an_edit_streams_the_same_events_under_its_own_names() -> None:
    """``ImageEditStreamEvent``: ``image_edit.partial_image`` then ``image_edit.completed``."""
    previews, response = run(
        [
            sse({"type": "image_edit.partial_image", "b64_json": "QQ==", "partial_image_index": 0}),
            sse({"b64_json": "Qg=="}, "image_edit.partial_image"),
            sse({"type": "image_edit.completed", "b64_json": "Qw==", "usage": {"total_tokens": 3}}),
        ]
    )
    assert [(p.index, p.b64_json) for p in previews] == [(0, "QQ=="), (1, "Qg==")]
    assert response.images[0].b64_json == "Qw=="
    assert response.usage == {"total_tokens": 3}


def test_json_type_wins_over_event_name() -> None:
    stream = ImageStream(200, HEADERS)
    previews = stream.feed(
        sse(
            {"type": "image_generation.completed", "b64_json": "QQ=="},
            "image_generation.partial_image",
        )
    )
    assert previews == []
    assert stream.completed
    assert stream.partials_seen == 0


def test_final_image_as_url_with_revised_prompt() -> None:
    completed = {
        "type": "image_generation.completed",
        "url": "https://gateway.example/img/1.png",
        "revised_prompt": "an otter",
    }
    _, response = run([sse(completed)])
    assert response.images == (
        ReturnedImage(None, "https://gateway.example/img/1.png", "an otter"),
    )


@pytest.mark.parametrize(
    "completed",
    [
        {"type": "image_generation.completed", "b64_json": " "},
        {"type": "image_generation.completed", "usage": {}},
        {"type": "image_generation.completed", "url": "file:///etc/passwd"},
    ],
)
def test_completed_without_usable_image_is_malformed(completed: dict[str, Any]) -> None:
    stream = ImageStream(200, HEADERS)
    assert stream.feed(sse(completed)) == []
    with pytest.raises(MalformedResponseError, match="holds no usable image") as raised:
        stream.finish()
    assert raised.value.request_id == "req_stream_1"
    assert not stream.completed


def test_done_keep_alives_and_events_after_completed_are_ignored() -> None:
    previews, response = run(
        [
            b": keep-alive\n\n",
            sse({"type": "image_generation.partial_image", "b64_json": "QQ=="}),
            sse("[DONE]"),  # ends nothing by itself
            sse({"type": "image_generation.completed", "b64_json": "Qg=="}),
            sse({"type": "image_generation.partial_image", "b64_json": "Qw=="}),
            sse({"type": "image_generation.completed", "b64_json": "RA=="}),
            sse({"type": "error", "error": {"code": "server_error", "message": "late"}}),
            sse("not json at all"),
            sse("[DONE]"),
        ]
    )
    assert [p.b64_json for p in previews] == ["QQ=="]
    assert response.images[0].b64_json == "Qg=="


def test_done_alone_is_not_a_final_image() -> None:
    with pytest.raises(APIConnectionError, match="ended before the final image"):
        run([sse("[DONE]")])


def test_unknown_event_types_are_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="langchain_imagegen.stream_events")
    previews, response = run(
        [
            sse({"type": "image_generation.progress", "percent": 50}),
            sse({"percent": 60}, "progress"),
            sse("pong", "ping"),  # non-JSON data of an event that is not ours
            sse("[1, 2]"),  # JSON, but not an object
            sse({"type": "image_generation.completed", "b64_json": "QQ=="}),
        ]
    )
    assert previews == []
    assert response.images[0].b64_json == "QQ=="
    logged = caplog.text
    assert "image_generation.progress" in logged
    assert "'progress'" in logged
    assert "'ping'" in logged


def test_a_last_event_without_blank_line_still_completes() -> None:
    body = b'data: {"type":"image_generation.completed","b64_json":"QQ=="}\n'
    _, response = run([body])
    assert response.images[0].b64_json == "QQ=="


def test_previews_are_not_kept_and_repr_hides_base64() -> None:
    stream = ImageStream(200, HEADERS)
    [preview] = stream.feed(
        sse({"type": "image_generation.partial_image", "b64_json": "A" * 100_000})
    )
    assert "AAAA" not in repr(preview)
    assert "<100000 chars>" in repr(preview)
    b64 = preview.b64_json
    del preview
    # Only this test's frame still refers to the preview's base64: the stream kept nothing.
    assert all(inspect.isframe(referrer) for referrer in gc.get_referrers(b64))
    assert stream.buffered == 0


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "event", "expected"),
    [
        (
            {
                "type": "error",
                "error": {
                    "type": "server_error",
                    "code": "server_error",
                    "message": "The server had an error.",
                    "param": None,
                },
            },
            None,
            InternalServerError,
        ),
        (
            {
                "type": "error",
                "code": "server_error",
                "message": "The server had an error.",
                "param": None,
            },
            None,
            InternalServerError,
        ),
        (
            {
                "type": "error",
                "error": {
                    "type": "image_generation_user_error",
                    "code": "moderation_blocked",
                    "message": "Your request was rejected by the safety system.",
                    "param": None,
                    "moderation_details": {"moderation_stage": "output"},
                },
            },
            None,
            ContentPolicyError,
        ),
        (
            {
                "type": "error",
                "code": "moderation_blocked",
                "message": "Rejected by the safety system.",
                "param": None,
            },
            None,
            ContentPolicyError,
        ),
        (
            {"code": "content_policy_violation", "message": "Blocked.", "param": None},
            "error",
            ContentPolicyError,
        ),
        (
            {"error": {"type": "requests", "code": "rate_limit_exceeded", "message": "Slow down."}},
            None,
            RateLimitError,
        ),
        (
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "code": None, "message": "Bad size."},
            },
            "error",
            BadRequestError,
        ),
        ({"message": "upstream timed out"}, None, InternalServerError),
        (
            {"type": "error", "code": "ERR_SOMETHING", "message": "Unknown failure."},
            None,
            InternalServerError,
        ),
    ],
)
def test_error_events_map_to_error_classes(
    payload: dict[str, Any], event: str | None, expected: type[APIError]
) -> None:
    stream = ImageStream(200, HEADERS)
    partial = sse({"type": "image_generation.partial_image", "b64_json": "QQ=="})
    # The preview before the error, in the same chunk, is kept; the error ends the stream.
    previews = stream.feed(partial + sse(payload, event))
    assert [preview.b64_json for preview in previews] == ["QQ=="]
    assert stream.feed(partial) == []
    with pytest.raises(expected) as raised:
        stream.finish()
    assert raised.value is stream.error
    error = raised.value
    assert type(error) is expected
    assert error.request_id == "req_stream_1"
    assert error.status_code == 200  # what was received
    assert error.body == payload
    assert error.message == payload.get("error", payload)["message"]
    assert is_retryable_error(error, HEADERS) == (expected in (InternalServerError, RateLimitError))


def test_flat_error_keeps_code_and_param_but_not_the_event_type() -> None:
    payload = {"type": "error", "code": "server_error", "message": "boom", "param": "size"}
    with pytest.raises(InternalServerError) as raised:
        feed_all([sse(payload)])
    assert (raised.value.code, raised.value.param, raised.value.type) == (
        "server_error",
        "size",
        None,
    )


def test_policy_error_keeps_its_stage() -> None:
    payload = {
        "type": "error",
        "error": {
            "code": "moderation_blocked",
            "message": "Rejected.",
            "moderation_details": {"moderation_stage": "output"},
        },
    }
    with pytest.raises(ContentPolicyError) as raised:
        feed_all([sse(payload)])
    assert raised.value.stage == "output"


def test_error_event_with_text_data() -> None:
    with pytest.raises(InternalServerError, match="reported an error in the stream: upstream died"):
        feed_all([sse("upstream died", "error")])


def test_error_event_with_string_error() -> None:
    with pytest.raises(InternalServerError, match="quota glitch"):
        feed_all([sse({"type": "error", "error": "quota glitch"})])


@pytest.mark.parametrize(
    "event", [None, "image_generation.partial_image", "image_generation.completed"]
)
def test_non_json_data_is_malformed_with_a_short_snippet(event: str | None) -> None:
    data = '{"type":"image_generation.completed","b64_json":"' + "A" * 5_000_000
    with pytest.raises(MalformedResponseError, match="is not JSON") as raised:
        feed_all([sse(data, event)])
    message = str(raised.value)
    assert len(message) < 400
    assert repr(event or "message") in message
    assert f"({len(data)} characters)" in message
    assert raised.value.request_id == "req_stream_1"


# --- a stream cut short ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previews", "said"), [(0, "0 previews"), (1, "1 preview "), (2, "2 previews")]
)
def test_stream_cut_before_completed(previews: int, said: str) -> None:
    body = b"".join(
        sse(
            {"type": "image_generation.partial_image", "b64_json": "QQ==", "partial_image_index": i}
        )
        for i in range(previews)
    )
    body += b'data: {"type":"image_generation.completed","b64_json":"iVBORw0KGgo'  # cut mid-line
    stream = ImageStream(200, HEADERS)
    assert len(stream.feed(body)) == previews
    assert stream.buffered > 0
    with pytest.raises(APIConnectionError) as raised:
        stream.finish()
    message = str(raised.value)
    assert "ended before the final image arrived" in message
    assert said in message
    assert "previews are not the final image" in message
    assert raised.value.request_id == "req_stream_1"
    assert is_retryable_error(raised.value, HEADERS)


def test_request_id_from_azure_header() -> None:
    _, response = run(
        [sse({"type": "image_generation.completed", "b64_json": "QQ=="})],
        headers={"apim-request-id": "azure-42"},
    )
    assert response.request_id == "azure-42"


# --- chunking -------------------------------------------------------------------------------

STREAM = (
    b": keep-alive\r\n\r\n"
    + sse(PARTIAL_EXAMPLE | {"b64_json": "cHJldmlldw=="}, "image_generation.partial_image")
    + sse(PARTIAL_EXAMPLE | {"b64_json": "cHJldmlldzI=", "partial_image_index": 1}).replace(
        b"\n", b"\r\n"
    )
    + sse(
        COMPLETED_EXAMPLE | {"b64_json": TINY_PNG_B64, "revised_prompt": "un loutre \u00e9"},
        "image_generation.completed",
    ).replace(b"\n", b"\r")
    + sse("[DONE]")
)


def _chunks(stream: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


EXPECTED = run([STREAM])


@given(st.lists(st.integers(0, 100_000), max_size=40))
def test_any_chunking_gives_the_same_previews_and_result(cuts: list[int]) -> None:
    assert run(_chunks(STREAM, cuts)) == EXPECTED


def test_byte_by_byte_gives_the_same_previews_and_result() -> None:
    assert run([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED
    assert [p.index for p in EXPECTED[0]] == [0, 1]
    assert EXPECTED[1].images[0].revised_prompt == "un loutre \u00e9"

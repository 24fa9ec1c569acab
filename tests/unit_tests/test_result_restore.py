"""Getting an ImageGenerationResult back after it was stored: JSON round trips,
``langchain_core.load`` (``dumpd``/``dumps``/``loads``) and ``from_artifact`` on everything a
user may hold after a checkpoint reload. The checkpointers themselves are exercised in
``tests/integration_tests/test_checkpoint.py``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from langchain_core.load import dumpd, dumps, load, loads
from langchain_core.messages import HumanMessage, ToolMessage, messages_to_dict

from langchain_imagegen.result import (
    AdjustmentRecord,
    GeneratedImage,
    ImageGenerationResult,
    RequestRecord,
)

# langchain_core.load's functions are marked beta; the warning says nothing about this package.
pytestmark = pytest.mark.filterwarnings("ignore:The function `load:Warning")

URL = "https://files.example/b.png?se=2026-11-22T01%3A00%3A00Z&sig=a%2Bb"


def full_result() -> ImageGenerationResult:
    """A result with every kind of field set: nested models, a datetime, Any-typed values."""
    return ImageGenerationResult(
        model="gpt-image-1",
        prompt="two cats",
        images=[
            GeneratedImage(
                path="/tmp/images/abc.png",
                mime_type="image/png",
                size="1536x1024",
                revised_prompt="two tabby cats",
                size_bytes=70,
                sha256="ab" * 32,
                quality="high",
                background="opaque",
                output_format="png",
            ),
            GeneratedImage(
                url=URL,
                size="1536x1024",
                expires_at=dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.timezone.utc),
                download_error="the image link answered 403 (expired?)",
                request_index=1,
            ),
        ],
        images_requested=3,
        requests=[
            RequestRecord(
                body={"model": "gpt-image-1", "prompt": "two cats", "n": 1, "lc": "user data"},
                images=1,
                attempts=2,
                elapsed_s=1.5,
                request_id="req_1",
                usage={"input_tokens": 10, "output_tokens": 4160, "total_tokens": 4170},
            ),
            RequestRecord(body={"model": "gpt-image-1", "prompt": "two cats"}, images=1),
            RequestRecord(body={"model": "gpt-image-1"}, error="rate limit reached"),
        ],
        adjustments=[
            AdjustmentRecord(field="n", proposed="three", applied=3, reason="a number"),
            AdjustmentRecord(field="size", proposed=[1, 2], applied=None, reason="not a size"),
        ],
        usage={"input_tokens": 10, "output_tokens": 4160, "total_tokens": 4170},
        elapsed_s=2.25,
    )


def message(artifact: Any, **extra: Any) -> ToolMessage:
    return ToolMessage(
        content="Generated 2 images with gpt-image-1.",
        artifact=artifact,
        tool_call_id="call_1",
        name="generate_image",
        **extra,
    )


def _not_implemented(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("type") == "not_implemented" or any(
            _not_implemented(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(_not_implemented(v) for v in value)
    return False


# --- JSON -----------------------------------------------------------------------------


def test_json_round_trip_is_equal() -> None:
    result = full_result()
    assert ImageGenerationResult.model_validate_json(result.model_dump_json()) == result


def test_round_trip_keeps_the_new_image_fields() -> None:
    restored = ImageGenerationResult.model_validate_json(full_result().model_dump_json())
    saved, remote = restored.images
    assert (saved.quality, saved.background, saved.output_format) == ("high", "opaque", "png")
    assert saved.size_bytes == 70
    assert remote.download_error == "the image link answered 403 (expired?)"
    assert remote.expires_at == dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.timezone.utc)


def test_the_size_field_is_not_the_builtin_name() -> None:
    assert "size_bytes" in GeneratedImage.model_fields
    assert "bytes" not in GeneratedImage.model_fields


# --- langchain_core.load --------------------------------------------------------------


def test_dumpd_writes_the_result_not_a_placeholder() -> None:
    serialized = dumpd(full_result())
    assert serialized["type"] == "constructor"
    assert serialized["id"] == ["langchain_imagegen", "result", "ImageGenerationResult"]
    assert not _not_implemented(serialized)
    json.dumps(serialized)  # plain JSON all the way down


def test_dumpd_of_the_tool_message_keeps_the_artifact() -> None:
    serialized = dumpd(message(full_result()))
    assert not _not_implemented(serialized)
    assert serialized["kwargs"]["artifact"]["id"][-1] == "ImageGenerationResult"


# What a user passes to loads/load, as docs/agents.md says.
LOAD_KWARGS: dict[str, Any] = {
    "allowed_objects": [ToolMessage, ImageGenerationResult],
    "valid_namespaces": ["langchain_imagegen"],
}


def test_loads_of_dumps_gives_the_same_tool_message() -> None:
    original = message(full_result())
    restored = loads(dumps(original), **LOAD_KWARGS)
    assert isinstance(restored, ToolMessage)
    assert isinstance(restored.artifact, ImageGenerationResult)
    assert restored.artifact == original.artifact
    assert restored == original


def test_load_of_dumpd_gives_the_same_result() -> None:
    result = full_result()
    assert load(dumpd(result), **LOAD_KWARGS) == result


def test_user_data_that_looks_like_a_langchain_object_stays_data() -> None:
    # A request body carrying an "lc" key is escaped by dumps and comes back as a dict.
    result = full_result()
    restored = loads(dumps(result), **LOAD_KWARGS)
    assert restored.requests[0].body["lc"] == "user data"


def test_loads_refuses_the_result_unless_allowed() -> None:
    text = dumps(message(full_result()))
    with pytest.raises(ValueError, match="is not allowed"):
        loads(text, allowed_objects="core")
    with pytest.raises(ValueError, match="Invalid namespace"):
        loads(text, allowed_objects=[ToolMessage, ImageGenerationResult])


# --- from_artifact: each input kind -----------------------------------------------------


def test_from_artifact_returns_a_result_as_is() -> None:
    result = full_result()
    assert ImageGenerationResult.from_artifact(result) is result


def test_from_artifact_of_a_live_tool_message() -> None:
    result = full_result()
    assert ImageGenerationResult.from_artifact(message(result)) is result


def test_from_artifact_of_a_reloaded_tool_message() -> None:
    # What a checkpointer gives back: the message is rebuilt, its artifact is a dict.
    stored = message(full_result().model_dump())
    assert ImageGenerationResult.from_artifact(stored) == full_result()


def test_from_artifact_of_the_artifact_dict() -> None:
    as_python = full_result().model_dump()
    as_json = json.loads(full_result().model_dump_json())
    assert ImageGenerationResult.from_artifact(as_python) == full_result()
    assert ImageGenerationResult.from_artifact(as_json) == full_result()


def test_from_artifact_of_a_message_dict() -> None:
    # The LangGraph API / SDK returns messages as plain dicts.
    api_message = {
        "type": "tool",
        "content": "Generated 2 images with gpt-image-1.",
        "tool_call_id": "call_1",
        "artifact": json.loads(full_result().model_dump_json()),
    }
    assert ImageGenerationResult.from_artifact(api_message) == full_result()
    (stored,) = messages_to_dict([message(full_result().model_dump())])
    assert ImageGenerationResult.from_artifact(stored) == full_result()


def test_from_artifact_of_the_dumpd_form() -> None:
    serialized = json.loads(dumps(full_result()))
    assert ImageGenerationResult.from_artifact(serialized) == full_result()
    assert ImageGenerationResult.from_artifact(message(serialized)) == full_result()
    # A LangSmith run's outputs hold the ToolMessage in this form.
    traced = json.loads(dumps(message(full_result())))
    assert ImageGenerationResult.from_artifact(traced) == full_result()


# --- from_artifact: what it refuses, clearly ---------------------------------------------


@pytest.mark.parametrize("garbage", [None, 42, "a cat", b"{}", ["model"], HumanMessage("hi")])
def test_from_artifact_refuses_other_types(garbage: object) -> None:
    with pytest.raises(TypeError, match=r"takes an ImageGenerationResult, the tool's ToolMessage"):
        ImageGenerationResult.from_artifact(garbage)


def test_from_artifact_names_what_is_missing_from_a_dict() -> None:
    with pytest.raises(ValueError, match="not an image generation result") as raised:
        ImageGenerationResult.from_artifact({"images": "many"})
    text = str(raised.value)
    assert "model: Field required" in text
    assert "prompt: Field required" in text
    assert "images: " in text


def test_from_artifact_of_an_error_tool_message() -> None:
    failed = message(None, status="error")
    with pytest.raises(
        ValueError, match=r"ToolMessage 'call_1' has no artifact \(status 'error'\)"
    ):
        ImageGenerationResult.from_artifact(failed)


def test_from_artifact_of_another_tools_message() -> None:
    with pytest.raises(ValueError, match="artifact of ToolMessage 'call_1' is a list"):
        ImageGenerationResult.from_artifact(message([1, 2]))
    with pytest.raises(ValueError, match="artifact of ToolMessage 'call_1' is not an image"):
        ImageGenerationResult.from_artifact(message({"rows": 3}))
    with pytest.raises(ValueError, match="has no artifact"):
        ImageGenerationResult.from_artifact({"type": "tool", "content": "x", "tool_call_id": "c"})


def test_from_artifact_of_another_serialised_object() -> None:
    with pytest.raises(ValueError, match=r"serialised .*HumanMessage.*not a result"):
        ImageGenerationResult.from_artifact(dumpd(HumanMessage("hi")))


def test_from_artifact_errors_do_not_echo_values() -> None:
    # Validation problems name fields, not what was in them.
    with pytest.raises(ValueError, match="usage: Input should be a valid dictionary") as raised:
        ImageGenerationResult.from_artifact({"model": "m", "prompt": "p", "usage": "sk-secret"})
    assert "sk-secret" not in str(raised.value)

"""The OpenAI tools path without the network: strict schema, argument parsing, and the
error messages for calls that cannot run."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.messages.content import create_image_block, create_text_block

from langchain_imagegen.openai_tools import (
    arun_tool_call,
    openai_tool_schema,
    run_tool_call,
    to_openai_tool_message,
    tool_call_from_openai,
)
from langchain_imagegen.tool import ImageGenerationTool

GATEWAY = "http://images.test/v1"  # not api.openai.com: no warning about retired models


@pytest.fixture
def tool() -> ImageGenerationTool:
    return ImageGenerationTool(base_url="http://images.test/v1", api_key="sk-unit")


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-1", "dall-e-3", "flux-dev"])
def test_strict_schema(model: str) -> None:
    tool = ImageGenerationTool(model=model, api_key="sk-unit", base_url=GATEWAY)
    schema = openai_tool_schema(tool)
    function = schema["function"]
    assert schema["type"] == "function"
    assert function["name"] == "generate_image"
    assert function["strict"] is True
    parameters = function["parameters"]
    assert parameters["additionalProperties"] is False
    assert sorted(parameters["required"]) == sorted(parameters["properties"])
    assert parameters["properties"]["prompt"]["type"] == "string"
    for name, prop in parameters["properties"].items():
        if name != "prompt":  # optional fields: nullable, no non-null default
            assert {"type": "null"} in prop["anyOf"], name
            assert prop.get("default") is None, name


def test_dall_e_3_schema_has_its_enums() -> None:
    props = openai_tool_schema(ImageGenerationTool(model="dall-e-3", base_url=GATEWAY))["function"][
        "parameters"
    ]["properties"]
    assert props["size"]["anyOf"][0]["enum"] == ["1024x1024", "1792x1024", "1024x1792"]
    assert props["style"]["anyOf"][0]["enum"] == ["vivid", "natural"]


def test_chat_call_parsed() -> None:
    tool_call, problem = tool_call_from_openai(
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "generate_image", "arguments": '{"prompt": "x", "n": null}'},
        }
    )
    assert problem is None
    assert tool_call == {
        "name": "generate_image",
        "args": {"prompt": "x", "n": None},
        "id": "call_1",
        "type": "tool_call",
    }


def test_responses_call_parsed() -> None:
    tool_call, problem = tool_call_from_openai(
        {"type": "function_call", "call_id": "fc_1", "name": "generate_image", "arguments": ""}
    )
    assert problem is None
    assert tool_call["id"] == "fc_1"
    assert tool_call["args"] == {}


def test_sdk_objects_accepted() -> None:
    class SdkToolCall:  # stands in for openai's pydantic ChatCompletionMessageToolCall
        def model_dump(self) -> dict[str, Any]:
            return {
                "id": "call_9",
                "type": "function",
                "function": {"name": "generate_image", "arguments": '{"prompt": "y"}'},
            }

    tool_call, problem = tool_call_from_openai(SdkToolCall())
    assert problem is None
    assert tool_call["args"] == {"prompt": "y"}


def test_not_a_call_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="expected an OpenAI tool call"):
        tool_call_from_openai(42)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ('{"prompt": "x"', "not valid JSON"),
        ('["a lighthouse"]', "must be a JSON object, got list"),
        ('"a lighthouse"', "must be a JSON object, got str"),
    ],
)
def test_bad_json_is_an_error_for_the_model(
    tool: ImageGenerationTool, arguments: str, problem: str
) -> None:
    call = {"id": "c", "type": "function", "function": {"name": tool.name, "arguments": arguments}}
    reply = run_tool_call(tool, call)
    assert reply["role"] == "tool"
    assert reply["tool_call_id"] == "c"
    assert problem in reply["content"]
    assert reply["content"].endswith("Fix them and call again.")


def test_wrong_name_is_an_error_for_the_model(tool: ImageGenerationTool) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "draw", "arguments": "{}"}}
    reply = run_tool_call(tool, call)
    assert "No tool named 'draw'; the tool is 'generate_image'" in reply["content"]


def test_blank_prompt_is_an_error_for_the_model(tool: ImageGenerationTool) -> None:
    arguments = json.dumps({"prompt": " "})
    call = {"type": "function_call", "call_id": "fc", "name": tool.name, "arguments": arguments}
    reply = run_tool_call(tool, call)
    assert reply == {
        "type": "function_call_output",
        "call_id": "fc",
        "output": "prompt is required: describe the image to generate. "
        "Fix the arguments and call the tool again.",
    }


def test_tool_message_conversions() -> None:
    message = ToolMessage(
        content=[
            create_text_block("Generated 1 image."),
            create_image_block(url="https://files.example/a.png"),
        ],
        tool_call_id="c1",
    )
    chat = to_openai_tool_message(message)
    assert chat == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": [
            {"type": "text", "text": "Generated 1 image."},
            {"type": "image_url", "image_url": {"url": "https://files.example/a.png"}},
        ],
    }
    responses = to_openai_tool_message(message, responses=True)
    assert responses == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": [
            {"type": "input_text", "text": "Generated 1 image."},
            {"type": "input_image", "image_url": "https://files.example/a.png"},
        ],
    }
    text_only = to_openai_tool_message(ToolMessage(content="done", tool_call_id="c2"))
    assert text_only == {"role": "tool", "tool_call_id": "c2", "content": "done"}


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_truncated_emoji_escape_does_not_crash_the_call(
    use_async: bool, tmp_path: Any
) -> None:
    """``json.loads`` turns ``"\\ud83e"`` into a lone surrogate, which UTF-8 cannot encode."""
    sent: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200, json={"created": 1, "data": [{"url": "https://f.example/a"}]})

    tool = ImageGenerationTool(
        model="dall-e-3", api_key="sk-unit", base_url=GATEWAY, output_dir=str(tmp_path),
        http_client=httpx.Client(transport=httpx.MockTransport(answer)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )  # fmt: skip
    arguments = '{"prompt": "a fox \\ud83e"}'
    call = {"id": "c", "type": "function", "function": {"name": tool.name, "arguments": arguments}}
    reply = await arun_tool_call(tool, call) if use_async else run_tool_call(tool, call)
    assert "Generated 1 image" in reply["content"]
    (body,) = sent
    assert json.loads(body)["prompt"].startswith("a fox")  # sent as valid UTF-8

"""Apps that speak the OpenAI tools format directly: the strict schema, and raw tool calls
(JSON arguments strings) run through :mod:`langchain_imagegen.openai_tools`, live against
the loopback emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_imagegen.openai_tools import (
    arun_tool_call,
    openai_tool_schema,
    run_tool_call,
    tool_call_from_openai,
)
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import ImageGenerationTool
from tests.integration_tests.conftest import LIVE, Target

pytestmark = LIVE


def _chat_call(arguments: str, call_id: str = "call_abc", name: str = "generate_image") -> dict:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _strict_args(tool: ImageGenerationTool, **given: Any) -> str:
    """What a model in strict mode sends: every property, null for the unused ones."""
    properties = openai_tool_schema(tool)["function"]["parameters"]["properties"]
    return json.dumps({name: given.get(name) for name in properties})


def test_fc_chat_completions_round_trip(target: Target, tmp_path: Path) -> None:
    tool = ImageGenerationTool(base_url=target.base_url, output_dir=str(tmp_path))
    arguments = _strict_args(tool, prompt="a snail on a leaf", size="1536x1024", quality="low")

    reply = run_tool_call(tool, _chat_call(arguments))

    assert set(reply) == {"role", "tool_call_id", "content"}
    assert reply["role"] == "tool"
    assert reply["tool_call_id"] == "call_abc"
    assert reply["content"].startswith("Generated 1 image with gpt-image-2.")
    saved = list(tmp_path.iterdir())
    assert len(saved) == 1
    assert str(saved[0]) in reply["content"]


async def test_fc_responses_round_trip_async(target: Target, tmp_path: Path) -> None:
    tool = ImageGenerationTool(base_url=target.base_url, output_dir=str(tmp_path))
    call = {
        "type": "function_call",
        "call_id": "fc_1",
        "name": "generate_image",
        "arguments": _strict_args(tool, prompt="a snail on a leaf", n=2),
    }

    reply = await arun_tool_call(tool, call)

    assert reply["type"] == "function_call_output"
    assert reply["call_id"] == "fc_1"
    assert reply["output"].startswith("Generated 2 images")


def test_fc_artifact_via_tool_call(target: Target, tmp_path: Path) -> None:
    tool = ImageGenerationTool(base_url=target.base_url, output_dir=str(tmp_path))
    tool_call, problem = tool_call_from_openai(
        _chat_call(json.dumps({"prompt": "a snail on a leaf", "size": "1536x1024"}))
    )
    assert problem is None

    message = tool.invoke(tool_call)

    assert isinstance(message.artifact, ImageGenerationResult)
    assert message.artifact.requests[0].body["size"] == "1536x1024"


def test_fc_api_error_becomes_tool_message(target: Target, tmp_path: Path) -> None:
    tool = ImageGenerationTool(base_url=target.base_url, output_dir=str(tmp_path), max_retries=0)
    arguments = json.dumps({"prompt": "a snail [[fault:server_error]]"})

    reply = run_tool_call(tool, _chat_call(arguments))

    assert reply["role"] == "tool"
    assert "HTTP 500" in reply["content"]
    assert "try again later" in reply["content"]

"""``content_images``: the images themselves in the ToolMessage content, as standard v1
image blocks a vision model can look at (langchain-core's v1 ``ImageContentBlock``), live
against the loopback emulator.

langchain-openai / langchain-anthropic are not dependencies, so the shape the provider
adapters receive is checked against langchain-core: the v1 block keys,
``is_data_content_block`` and ``convert_to_openai_messages`` (the Chat Completions form).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage, convert_to_openai_messages
from langchain_core.messages.content import is_data_content_block

from langchain_imagegen.openai_tools import to_openai_tool_message
from langchain_imagegen.tool import ImageGenerationTool
from tests.fakes import call, scripted
from tests.integration_tests.conftest import LIVE, Target

pytestmark = LIVE


def _invoke(tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    message = tool.invoke(call(args))
    assert isinstance(message, ToolMessage)
    assert message.status == "success", message.content
    return message


def test_multimodal_default_is_text_only(target: Target, tmp_path: Path) -> None:
    tool = ImageGenerationTool(base_url=target.base_url, output_dir=str(tmp_path))
    assert tool.content_images == "none"
    message = _invoke(tool, {"prompt": "a teacup on a windowsill"})
    assert isinstance(message.content, str)


def test_multimodal_base64_blocks(target: Target, tmp_path: Path) -> None:
    tool = ImageGenerationTool(
        base_url=target.base_url,
        output_dir=str(tmp_path),
        model="gpt-image-1",
        content_images="base64",
    )
    message = _invoke(tool, {"prompt": "a teacup on a windowsill", "n": 2})

    text, *images = message.content
    assert isinstance(text, dict)
    assert text["type"] == "text"
    assert text["text"] == message.artifact.to_text()
    assert not is_data_content_block(text)
    assert len(images) == 2
    for block, image in zip(images, message.artifact.images, strict=True):
        assert isinstance(block, dict)
        assert is_data_content_block(block)
        assert set(block) == {"type", "id", "base64", "mime_type"}
        assert block["type"] == "image"
        assert block["mime_type"] == "image/png"
        assert base64.b64decode(block["base64"]) == Path(image.path).read_bytes()

    # What ChatOpenAI (Chat Completions) and other adapters built on core's converter send.
    converted = convert_to_openai_messages(message)
    assert converted["role"] == "tool"
    assert converted["tool_call_id"] == "call_1"
    parts = converted["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
    assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{images[0]['base64']}"

    # The Responses API form built by to_openai_tool_message.
    item = to_openai_tool_message(message, responses=True)
    assert item["type"] == "function_call_output"
    assert [p["type"] for p in item["output"]] == ["input_text", "input_image", "input_image"]
    assert item["output"][1]["image_url"].startswith("data:image/png;base64,")


async def test_multimodal_url_blocks_async(target: Target, tmp_path: Path) -> None:
    tool = ImageGenerationTool(
        base_url=target.base_url,
        output_dir=str(tmp_path),
        model="dall-e-3",
        content_images="url",
    )
    message = await tool.ainvoke(call({"prompt": "a blue door in a white wall"}))
    assert isinstance(message, ToolMessage)

    text, block = message.content
    assert isinstance(text, dict)
    assert text["type"] == "text"
    assert isinstance(block, dict)
    assert set(block) == {"type", "id", "url"}
    assert block["url"] == message.artifact.images[0].url
    assert is_data_content_block(block)
    parts = convert_to_openai_messages(message)["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": block["url"]}}


def test_multimodal_url_mode_sends_saved_files_as_base64(target: Target, tmp_path: Path) -> None:
    # gpt-image models return base64 only: there is no URL, so the saved file is sent.
    tool = ImageGenerationTool(
        base_url=target.base_url,
        output_dir=str(tmp_path),
        model="gpt-image-1",
        content_images="url",
    )
    message = _invoke(tool, {"prompt": "a folded paper crane"})
    assert [b["type"] for b in message.content] == ["text", "image"]
    assert "base64" in message.content[1]


def test_multimodal_vision_model_sees_the_image(target: Target, tmp_path: Path) -> None:
    tool = ImageGenerationTool(
        base_url=target.base_url,
        output_dir=str(tmp_path),
        model="gpt-image-1",
        content_images="base64",
    )
    model = scripted([call({"prompt": "a red apple"})], "It looks crisp.")
    agent = create_agent(model, [tool])

    agent.invoke({"messages": [HumanMessage("draw an apple and look at it")]})

    tool_message = model.seen[1][-1]
    assert isinstance(tool_message, ToolMessage)
    assert [b["type"] for b in tool_message.content] == ["text", "image"]
    assert tool_message.content[1]["mime_type"] == "image/png"

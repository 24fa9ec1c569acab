"""The edit tools' configuration: refused for models that cannot edit, their schema and
description from the model's edit rules, ``image_tools`` offering the edit tool only where
it can work, and the hooks the generation tool keeps for itself."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from langchain_imagegen import (
    AzureImageEditTool,
    AzureImageGenerationTool,
    ImageEditTool,
    ImageGenerationTool,
    image_tools,
)
from langchain_imagegen.errors import ConfigurationError
from langchain_imagegen.registry import ImageModelProfile, get_profile

KEY = SecretStr("sk-test")
# A gateway: the shutdown warnings are for OpenAI's own host.
GATEWAY = "https://gateway.example/v1"


def test_an_edit_tool_for_a_model_that_cannot_edit_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError, match=r"dall-e-3 cannot edit images.*gpt-image-1"):
        ImageEditTool(model="dall-e-3", api_key=KEY, base_url=GATEWAY)


def test_a_model_change_to_one_that_cannot_edit_is_refused_and_undone() -> None:
    tool = ImageEditTool(model="gpt-image-1", api_key=KEY)
    with pytest.raises(ConfigurationError):
        tool.model = "dall-e-3"
    assert tool.model == "gpt-image-1"
    assert tool.profile.edits is not None


@pytest.mark.parametrize(
    ("model", "most", "fidelity"),
    [("gpt-image-1", 16, True), ("gpt-image-1-mini", 16, False), ("dall-e-2", 1, False)],
)
def test_the_schema_and_description_come_from_the_edit_rules(
    model: str, most: int, fidelity: bool
) -> None:
    tool = ImageEditTool(model=model, api_key=KEY, base_url=GATEWAY)
    schema = tool.tool_call_schema.model_json_schema()
    assert tool.name == "edit_image"
    assert {"prompt", "images"} <= set(schema["required"])
    assert ("input_fidelity" in schema["properties"]) is fidelity
    assert "style" not in schema["properties"]
    assert ("up to 16 earlier images" in tool.description) is (most == 16)
    assert ("an earlier image" in tool.description) is (most == 1)


def test_the_generation_tool_keeps_its_own_schema_and_description() -> None:
    tool = ImageGenerationTool(model="gpt-image-1", api_key=KEY)
    properties = tool.tool_call_schema.model_json_schema()["properties"]
    assert "images" not in properties
    assert tool.name == "generate_image"
    assert tool.description.startswith("Generate images from a text description")


def test_image_tools_gives_both_tools_configured_alike(tmp_path: object) -> None:
    generate, edit = image_tools(model="gpt-image-2", api_key=KEY, output_dir=str(tmp_path))
    assert isinstance(generate, ImageGenerationTool)
    assert isinstance(edit, ImageEditTool)
    assert generate.output_dir == edit.output_dir
    assert generate.store.describe() == edit.store.describe()
    assert generate.model == edit.model == "gpt-image-2"


def test_image_tools_gives_allowed_dirs_to_the_edit_tool_only(tmp_path: object) -> None:
    generate, edit = image_tools(model="gpt-image-2", api_key=KEY, allowed_dirs=[str(tmp_path)])
    assert isinstance(edit, ImageEditTool)
    assert edit.allowed_dirs == [str(tmp_path)]
    assert not hasattr(generate, "allowed_dirs")
    (only,) = image_tools(model="dall-e-3", api_key=KEY, base_url=GATEWAY, allowed_dirs=["x"])
    assert only.name == "generate_image"


def test_image_tools_offers_no_edit_tool_where_the_model_cannot_edit() -> None:
    (only,) = image_tools(model="dall-e-3", api_key=KEY, base_url=GATEWAY)
    assert only.name == "generate_image"


def test_a_gateway_profile_without_edits_gets_no_edit_tool() -> None:
    no_edits = ImageModelProfile(**{**vars(get_profile("gpt-image-1")), "edits": None})
    (only,) = image_tools(model="flux-pro", model_profile=no_edits, api_key=KEY)
    assert isinstance(only, ImageGenerationTool)
    with pytest.raises(ConfigurationError, match="cannot edit images"):
        ImageEditTool(model="flux-pro", model_profile=no_edits, api_key=KEY)


def test_azure_gets_the_azure_tools() -> None:
    generate, edit = image_tools(
        model="images",
        azure_endpoint="https://res.openai.azure.com",
        api_key=KEY,
        api_version="2025-04-01-preview",
    )
    assert isinstance(generate, AzureImageGenerationTool)
    assert isinstance(edit, AzureImageEditTool)
    url = edit.client.endpoint.edits_url
    assert url == "https://res.openai.azure.com/openai/deployments/images/images/edits"

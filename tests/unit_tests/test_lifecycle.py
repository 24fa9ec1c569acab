"""Model lifecycle: shutdown dates reach the developer (a warning) and the LLM (error text)."""

from __future__ import annotations

import datetime as dt
import warnings

import httpx
import pytest

from langchain_imagegen import ImageGenerationTool, get_profile


def test_lifecycle_notes_follow_the_registry() -> None:
    before, after = dt.date(2026, 5, 11), dt.date(2026, 11, 22)
    assert get_profile("gpt-image-2").lifecycle_note() is None
    assert get_profile("dall-e-3").lifecycle_note(before) == (
        "dall-e-3 shuts down at OpenAI on 2026-05-12; use gpt-image-2"
    )
    assert get_profile("dall-e-3").lifecycle_note(after) == (
        "dall-e-3 was shut down by OpenAI on 2026-05-12; use gpt-image-2 "
        "(gateways may still serve it)"
    )
    assert "2026-12-01" in (get_profile("gpt-image-1.5").lifecycle_note(after) or "")


def test_shut_down_model_on_openai_warns_the_developer() -> None:
    with pytest.warns(FutureWarning, match="dall-e-3 was shut down by OpenAI on 2026-05-12"):
        ImageGenerationTool(model="dall-e-3", api_key="sk-x")


def test_gateway_serving_an_old_model_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageGenerationTool(model="dall-e-3", api_key="sk-x", base_url="http://gateway.test/v1")
        ImageGenerationTool(model="gpt-image-2", api_key="sk-x")


def test_model_not_found_names_the_shutdown_and_successor(tmp_path: object) -> None:
    body = {
        "error": {
            "message": "The model `dall-e-3` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(404, json=body))
    with pytest.warns(FutureWarning):
        tool = ImageGenerationTool(
            model="dall-e-3",
            api_key="sk-x",
            output_dir=str(tmp_path),
            http_client=httpx.Client(transport=transport),
        )
    message = tool.invoke(
        {"name": tool.name, "args": {"prompt": "a fox"}, "id": "1", "type": "tool_call"}
    )
    assert message.status == "error"
    assert "model_not_found" in message.content
    assert "shut down by OpenAI on 2026-05-12; use gpt-image-2" in message.content


@pytest.mark.parametrize("model", ["gpt-image-1-mini", "gpt-image-1.5", "chatgpt-image-latest"])
def test_the_december_shutdowns_read_right_on_either_side_of_the_date(model: str) -> None:
    """These shut down on 2026-12-01: the wording turns over that day, whatever today is."""
    profile = get_profile(model)
    assert profile.lifecycle_note(dt.date(2026, 11, 30)) == (
        f"{model} shuts down at OpenAI on 2026-12-01; use gpt-image-2"
    )
    assert profile.lifecycle_note(dt.date(2026, 12, 1)) == (
        f"{model} was shut down by OpenAI on 2026-12-01; use gpt-image-2 "
        "(gateways may still serve it)"
    )
    with pytest.warns(FutureWarning, match=f"{model} (shuts down at|was shut down by) OpenAI"):
        ImageGenerationTool(model=model, api_key="sk-x")  # before and after the date alike

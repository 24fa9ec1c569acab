"""A tool without a key says so plainly, before any request is sent."""

from __future__ import annotations

import httpx
import pytest

from langchain_imagegen import ImageGenerationTool
from langchain_imagegen.errors import (
    AuthenticationError,
    ConfigurationError,
    MissingCredentialError,
)


def test_missing_key_is_a_configuration_problem_not_a_rejected_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    tool = ImageGenerationTool(
        output_dir=str(tmp_path), http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(MissingCredentialError) as info:
        tool.generate({"prompt": "a fox"})
    assert isinstance(info.value, AuthenticationError)
    assert isinstance(info.value, ConfigurationError)
    assert not sent

    message = tool.invoke(
        {"name": tool.name, "args": {"prompt": "a fox"}, "id": "1", "type": "tool_call"}
    )
    assert message.status == "error"
    assert "set OPENAI_API_KEY or pass api_key=" in message.content
    assert "No API key or token is configured" in message.content
    assert "rejected" not in message.content
    assert "HTTP" not in message.content

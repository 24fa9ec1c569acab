"""The per-call path of the tool (what ``benchmarks/run.py`` times): what it returns to
``BaseTool``, and that the shortcuts it takes keep its behaviour. Over ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolMessage

from langchain_imagegen.coercion import _Coercer, coerce_params
from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.registry import LLM_FIELDS, default_registry, get_profile
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import ImageGenerationTool, ToolOutput
from langchain_imagegen.watchdog import Watchdog

KEY = "sk-call-path-0123456789"
ANSWER = {"created": 1, "data": [{"url": "https://files.example/a.png"}]}
ARGS = {"prompt": "a lighthouse at dawn", "size": "256x256"}


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=ANSWER)


@pytest.fixture
def tool(tmp_path: Path) -> ImageGenerationTool:
    return ImageGenerationTool(
        model="dall-e-2",
        api_key=KEY,
        base_url="http://gateway.test/v1",
        output_dir=str(tmp_path),
        http_client=httpx.Client(transport=httpx.MockTransport(_answer)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(_answer)),
    )


def _check(output: Any) -> None:
    assert isinstance(output, ToolOutput)
    assert isinstance(output.artifact, ImageGenerationResult)
    assert output.artifact.images[0].url == "https://files.example/a.png"
    assert output.content == output.artifact.to_text()


def test_run_returns_content_and_artifact_by_name(tool: ImageGenerationTool) -> None:
    _check(tool._run(**ARGS))


def test_arun_returns_content_and_artifact_by_name(tool: ImageGenerationTool) -> None:
    _check(asyncio.run(tool._arun(**ARGS)))


@pytest.mark.parametrize("method", ["_run", "_arun"])
def test_return_hint_is_one_class(method: str) -> None:
    """BaseTool resolves these hints on every call: the return is one class, not a nested
    generic to walk."""
    hints = typing.get_type_hints(getattr(ImageGenerationTool, method), include_extras=True)
    assert hints["return"] is ToolOutput


def test_invoke_and_ainvoke_unpack_it_into_the_message(tool: ImageGenerationTool) -> None:
    call = {"name": tool.name, "args": ARGS, "id": "call_1", "type": "tool_call"}
    for message in (tool.invoke(call), asyncio.run(tool.ainvoke(call))):
        assert isinstance(message, ToolMessage)
        assert message.status == "success"
        assert isinstance(message.artifact, ImageGenerationResult)
        assert not isinstance(message.artifact, tuple)
        assert message.content == message.artifact.to_text()
        assert json.dumps(message.artifact.model_dump(mode="json"))


# --- coercion's per-call shortcuts keep their meaning -----------------------------------------

_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def _blank_by_definition(prompt: str) -> bool:
    """Blank: nothing left once whitespace (``str.isspace``) and invisible characters go."""
    return not "".join(c for c in prompt if c not in _INVISIBLE).strip()


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        " \t\n",
        "\u3000\u2028\u2029\x85\x1c\xa0",  # whitespace beyond ASCII, as str.isspace sees it
        "\u200b\u200c\u200d\u2060\ufeff",
        " \u200b \ufeff \u2060 ",
        "\u200b a \u200b",
        "a",
        "\u200e",  # a direction mark: not in the list, so the prompt is not blank
        " " * 3000 + "x",  # long, visible only at the end
    ],
)
def test_blank_prompt_means_whitespace_and_invisible_characters_only(prompt: str) -> None:
    if _blank_by_definition(prompt):
        with pytest.raises(InvalidArgumentError, match="prompt is required"):
            coerce_params("dall-e-3", {"prompt": prompt})
    else:
        assert coerce_params("dall-e-3", {"prompt": prompt}).requests[0]["prompt"] == prompt


@pytest.mark.parametrize("name", [*default_registry.known(), "some-gateway-model"])
def test_the_llm_sets_exactly_what_its_schema_offers(name: str) -> None:
    """Coercion decides per proposed key what ``llm_fields()`` lists for the whole model."""
    profile = get_profile(name)
    offered = set(profile.llm_fields())
    for field in LLM_FIELDS:
        refused = _Coercer(profile, 4).refusal(field, ()) is not None
        assert refused == (field not in offered), field


# --- the async exchange ---------------------------------------------------------------------


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is 3.11+")
def test_async_exchange_runs_in_the_calling_task(tmp_path: Path) -> None:
    """The call's deadline bounds each exchange without a task of its own per request."""
    seen: list[asyncio.Task[Any] | None] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(asyncio.current_task())
        return httpx.Response(200, json=ANSWER)

    async def main() -> asyncio.Task[Any] | None:
        tool = ImageGenerationTool(
            model="dall-e-2",
            api_key=KEY,
            base_url="http://gateway.test/v1",
            output_dir=str(tmp_path),
            http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
        )
        await tool.client.agenerate({"model": "dall-e-2", "prompt": "a fox"})
        return asyncio.current_task()

    caller = asyncio.run(main())
    assert seen == [caller]


def test_async_exchange_still_ends_at_the_deadline(tmp_path: Path) -> None:
    """A server that never answers: the exchange ends when the call's budget runs out."""

    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json=ANSWER)

    tool = ImageGenerationTool(
        model="dall-e-2",
        api_key=KEY,
        base_url="http://gateway.test/v1",
        output_dir=str(tmp_path),
        retry_budget=0.3,
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(stall)),
    )
    call = {"name": tool.name, "args": ARGS, "id": "call_1", "type": "tool_call"}
    started = time.monotonic()
    message = asyncio.run(tool.ainvoke(call))
    assert time.monotonic() - started < 5
    assert message.status == "error"
    assert "time budget" in str(message.content)


# --- the watchdog ----------------------------------------------------------------------------


class _CountingCondition(threading.Condition):
    def __init__(self) -> None:
        super().__init__()
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


def test_watching_and_releasing_does_not_wake_the_watchdog_thread() -> None:
    """Every sync request is watched then released: neither may cost a thread switch while
    the thread already waits for an earlier deadline."""
    watchdog = Watchdog()
    condition = _CountingCondition()
    watchdog._cond = condition
    reader, writer = socket.socketpair()
    with reader, writer:
        first = watchdog.watch(reader, 900.0)
        waited = time.monotonic() + 5
        while watchdog._next_due == float("inf") and time.monotonic() < waited:
            time.sleep(0.001)  # until the thread waits for the first deadline
        for _ in range(100):
            assert watchdog.release(watchdog.watch(reader, 900.0)) is False
        assert watchdog.release(first) is False
        assert condition.notified == 0

"""ImageGenerationTool over ``httpx.MockTransport``: no sockets, no cassettes.

Covers what cassettes cannot show: that fan-out requests are really in flight together,
that one HTTP client serves every call, which arguments the LLM may set, how errors and
bad arguments reach the LLM, that the key never leaks, storage failures and progress events.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import EVENT_NAME, ImageGenerationTool
from tests.emulator import encode_image

KEY = "sk-unit-SECRET-0123456789abcdef"
Handler = Callable[[httpx.Request], httpx.Response]
AsyncHandler = Callable[[httpx.Request], Awaitable[httpx.Response]]


# --- helpers ---------------------------------------------------------------------------------


def b64_image(tag: str, fmt: str = "png") -> str:
    return base64.b64encode(encode_image(fmt, 8, 8, tag=tag)).decode()


def images_body(
    n: int, *, tag: str = "img", urls: bool = False, revised: str | None = None
) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for i in range(n):
        item: dict[str, Any] = (
            {"url": f"https://files.example/{tag}-{i}.png"}
            if urls
            else {"b64_json": b64_image(f"{tag}-{i}")}
        )
        if revised:
            item["revised_prompt"] = revised
        items.append(item)
    body: dict[str, Any] = {"created": 1, "data": items}
    if not urls:
        body["usage"] = {"input_tokens": 5, "output_tokens": 10 * n, "total_tokens": 5 + 10 * n}
    return body


def error_body(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


class Server:
    """A thread-safe MockTransport handler: records bodies, answers with ``answer(body, k)``
    where ``k`` counts generation requests from 0."""

    def __init__(self, answer: Callable[[dict[str, Any], int], httpx.Response]) -> None:
        self.answer = answer
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.hosts: list[str] = []
        self.queries: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        with self._lock:
            k = len(self.bodies)
            self.bodies.append(body)
            self.headers.append(request.headers)
            self.hosts.append(request.url.host)
            self.queries.append(dict(request.url.params))
        return self.answer(body, k)


def ok(body: dict[str, Any], k: int) -> httpx.Response:
    return httpx.Response(200, json=images_body(int(body.get("n", 1)), tag=f"r{k}"))


@pytest.fixture
def make_tool(tmp_path: Path) -> Iterator[Callable[..., ImageGenerationTool]]:
    """Tools on MockTransport clients (sync and async), saving under ``tmp_path/images``."""
    made: list[ImageGenerationTool] = []

    def make(
        handler: Handler | None = None,
        *,
        async_handler: AsyncHandler | Handler | None = None,
        **kwargs: Any,
    ) -> ImageGenerationTool:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("output_dir", str(tmp_path / "images"))
        kwargs.setdefault("max_retries", 0)
        # A gateway URL: the mock answers for any host, and a dall-e model on OpenAI's own
        # URL would (rightly) warn that OpenAI shut it down.
        kwargs.setdefault("base_url", "http://gateway.test/v1")
        if handler is not None:
            kwargs["http_client"] = httpx.Client(transport=httpx.MockTransport(handler))
        if async_handler is not None or handler is not None:
            transport = httpx.MockTransport(async_handler or handler)  # type: ignore[arg-type]
            kwargs["http_async_client"] = httpx.AsyncClient(transport=transport)
        tool = ImageGenerationTool(**kwargs)
        made.append(tool)
        return tool

    yield make
    for tool in made:
        tool.close()
        if tool.http_client is not None:
            tool.http_client.close()


def tool_call(args: dict[str, Any]) -> ToolCall:
    return ToolCall(name="generate_image", args=args, id="call_1", type="tool_call")


def invoke(tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    message = tool.invoke(tool_call(args))
    assert isinstance(message, ToolMessage)
    return message


async def ainvoke(tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    message = await tool.ainvoke(tool_call(args))
    assert isinstance(message, ToolMessage)
    return message


def artifact(message: ToolMessage) -> ImageGenerationResult:
    assert message.status == "success", message.content
    assert isinstance(message.artifact, ImageGenerationResult)
    return message.artifact


def all_files(paths: list[str]) -> bool:
    return all(Path(path).is_file() for path in paths)


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# --- concurrency and client reuse -------------------------------------------------------------


def test_sync_fan_out_requests_are_in_flight_together(make_tool: Any) -> None:
    """dall-e-3 makes one image per request: n=4 is four requests, and all four must be
    waiting on the server at once (a Barrier of 4 would time out if they were sequential)."""
    barrier = threading.Barrier(4, timeout=10)
    peak = 0
    active = 0
    lock = threading.Lock()

    def answer(body: dict[str, Any], k: int) -> httpx.Response:
        nonlocal peak, active
        with lock:
            active += 1
            peak = max(peak, active)
        barrier.wait()  # raises BrokenBarrierError unless 4 requests arrive together
        with lock:
            active -= 1
        return httpx.Response(200, json=images_body(1, tag=f"r{k}", urls=True, revised="r"))

    server = Server(answer)
    tool = make_tool(server, model="dall-e-3")

    result = artifact(invoke(tool, {"prompt": "a fox", "n": 4}))

    assert peak == 4
    assert len(server.bodies) == 4
    assert all(body["n"] == 1 for body in server.bodies)
    assert len(result.images) == 4


async def test_async_fan_out_requests_are_in_flight_together(make_tool: Any) -> None:
    in_flight = 0
    peak = 0
    all_in = asyncio.Event()
    bodies: list[dict[str, Any]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        bodies.append(json.loads(request.content))
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 4:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), timeout=10)  # sequential requests would time out
        in_flight -= 1
        return httpx.Response(200, json=images_body(1, tag=f"a{len(bodies)}", urls=True))

    tool = make_tool(async_handler=handler, model="dall-e-3")

    result = artifact(await ainvoke(tool, {"prompt": "a fox", "n": 4}))

    assert peak == 4
    assert len(bodies) == 4
    assert len(result.images) == 4


def test_one_http_client_serves_every_call(make_tool: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[httpx.Client] = []
    server = Server(ok)

    class CountingClient(httpx.Client):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(transport=httpx.MockTransport(server), **kwargs)
            created.append(self)

    monkeypatch.setattr(httpx, "Client", CountingClient)
    tool = make_tool(model="gpt-image-1")  # no injected client: the tool makes its own

    for i in range(3):
        artifact(invoke(tool, {"prompt": f"fox {i}", "n": 2}))
    artifact(invoke(tool, {"prompt": "four foxes", "n": 4}))

    assert len(created) == 1
    assert tool.client is tool.client
    assert len(server.bodies) == 4
    tool.close()
    assert created[0].is_closed


async def test_one_async_client_serves_every_async_call(
    make_tool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[httpx.AsyncClient] = []
    server = Server(ok)

    class CountingAsyncClient(httpx.AsyncClient):
        def __init__(self, **kwargs: Any) -> None:
            # In place of the pooled transport the package would use (langchain_imagegen.
            # transport): the test's server.
            super().__init__(**{**kwargs, "transport": httpx.MockTransport(server)})
            created.append(self)

    monkeypatch.setattr(httpx, "AsyncClient", CountingAsyncClient)
    tool = make_tool(model="dall-e-3")

    for i in range(3):
        artifact(await ainvoke(tool, {"prompt": f"fox {i}", "n": 2}))

    assert len(created) == 1
    assert len(server.bodies) == 6
    await tool.aclose()
    assert created[0].is_closed


def test_injected_client_is_used_and_left_open(make_tool: Any) -> None:
    server = Server(ok)
    tool = make_tool(server, model="gpt-image-1")
    injected = tool.http_client
    assert injected is not None

    artifact(invoke(tool, {"prompt": "a fox"}))
    tool.close()

    assert len(server.bodies) == 1
    assert not injected.is_closed  # the caller's client is the caller's to close


# --- what the LLM may set ----------------------------------------------------------------------


def test_image_params_are_hidden_from_the_llm_and_win(make_tool: Any) -> None:
    server = Server(ok)
    tool = make_tool(
        server,
        model="gpt-image-1",
        image_params={"quality": "high", "output_format": "webp", "moderation": "low"},
    )

    schema = tool.tool_call_schema.model_json_schema()
    assert "quality" not in schema["properties"]
    assert "output_format" not in schema["properties"]
    assert "moderation" not in schema["properties"]
    assert {"prompt", "size", "n", "background"} <= set(schema["properties"])
    strict = convert_to_openai_tool(tool, strict=True)["function"]["parameters"]
    assert "quality" not in strict["properties"]

    # An LLM that sends the hidden fields anyway does not get its way.
    args = {"prompt": "a fox", "quality": "low", "output_format": "png", "moderation": "auto"}
    result = artifact(invoke(tool, args))

    (body,) = server.bodies
    assert body["quality"] == "high"
    assert body["output_format"] == "webp"
    assert body["moderation"] == "low"
    assert result.requests[0].body == body


def test_max_images_clamp_is_reported(make_tool: Any) -> None:
    server = Server(ok)
    tool = make_tool(server, model="gpt-image-1", max_images=2)

    message = invoke(tool, {"prompt": "many foxes", "n": 7})
    result = artifact(message)

    assert [body["n"] for body in server.bodies] == [2]
    assert len(result.images) == 2
    (adjustment,) = result.adjustments
    assert (adjustment.field, adjustment.proposed, adjustment.applied) == ("n", 7, 2)
    assert "n: 7 → 2 (at most 2 images per call)" in message.content
    assert "1 to 2" in tool.tool_call_schema.model_json_schema()["properties"]["n"]["description"]


# --- errors reach the LLM as messages, never as exceptions ------------------------------------


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (500, error_body("The server had an error", None), "The image service failed"),
        (400, error_body("Invalid size", "invalid_value"), "The server rejected the request"),
        (429, error_body("Rate limit exceeded", "rate_limit_exceeded"), "wait a minute"),
        (403, error_body("Your organization must be verified"), "may not use this model"),
    ],
)
def test_api_errors_never_raise_out_of_invoke(
    make_tool: Any, status: int, payload: dict[str, Any], expected: str
) -> None:
    server = Server(lambda body, k: httpx.Response(status, json=payload))
    tool = make_tool(server, model="gpt-image-1")

    plain = tool.invoke({"prompt": "a fox"})  # plain args: content only, still no raise
    message = invoke(tool, {"prompt": "a fox"})

    assert isinstance(plain, str)
    assert expected in plain
    assert message.status == "error"
    assert message.content == plain
    assert f"HTTP {status}" in message.content
    assert payload["error"]["message"] in message.content


async def test_transport_errors_never_raise_out_of_ainvoke(make_tool: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    tool = make_tool(refuse, model="gpt-image-1")

    message = await ainvoke(tool, {"prompt": "a fox"})

    assert message.status == "error"
    assert "could not reach" in message.content
    assert "could not be reached; try again later" in message.content


def test_missing_key_is_an_error_message_and_sends_nothing(
    make_tool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = Server(ok)
    tool = make_tool(server, model="gpt-image-1", api_key=None)

    message = invoke(tool, {"prompt": "a fox"})

    assert message.status == "error"
    assert "set OPENAI_API_KEY or pass api_key=" in message.content
    assert server.bodies == []


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_blank_prompt_is_an_error_message(make_tool: Any, prompt: str) -> None:
    server = Server(ok)
    tool = make_tool(server, model="gpt-image-2")

    message = invoke(tool, {"prompt": prompt})

    assert message.status == "error"
    assert message.content == (
        "prompt is required: describe the image to generate. "
        "Fix the arguments and call the tool again."
    )
    assert server.bodies == []  # nothing was sent


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, "Invalid arguments for the image tool: prompt: Field required."),
        ({"size": "1024x1024"}, "prompt: Field required"),
        ({"prompt": 42}, "prompt: Input should be a valid string"),
        ({"prompt": ["a", "fox"]}, "prompt: Input should be a valid string"),
    ],
)
def test_validation_errors_name_the_argument(
    make_tool: Any, args: dict[str, Any], expected: str
) -> None:
    server = Server(ok)
    tool = make_tool(server, model="gpt-image-2")

    message = invoke(tool, args)

    assert message.status == "error"
    assert isinstance(message.content, str)
    assert expected in message.content
    assert message.content.endswith("Fix them and call again.")
    assert server.bodies == []


# --- partial and total failure of a fan-out --------------------------------------------------


def _first_refused(body: dict[str, Any], k: int) -> httpx.Response:
    if k == 0:
        return httpx.Response(
            400,
            json=error_body(
                "Your request was rejected as a result of our safety system.",
                "content_policy_violation",
            ),
        )
    return httpx.Response(200, json=images_body(1, tag=f"r{k}", urls=True, revised="revised"))


def _check_partial(message: ToolMessage) -> None:
    result = artifact(message)
    assert len(result.images) == 2
    assert result.shortfall == 1
    assert len(result.errors) == 1
    assert "safety system" in result.errors[0]
    assert "Asked for 3 images but received 2; 1 missing." in message.content
    assert "Request failed: Your request was rejected" in message.content


def test_partial_failure_sync(make_tool: Any) -> None:
    tool = make_tool(Server(_first_refused), model="dall-e-3")
    _check_partial(invoke(tool, {"prompt": "three foxes", "n": 3}))


async def test_partial_failure_async(make_tool: Any) -> None:
    tool = make_tool(Server(_first_refused), model="dall-e-3")
    _check_partial(await ainvoke(tool, {"prompt": "three foxes", "n": 3}))


def test_total_failure_reports_the_actionable_error(make_tool: Any) -> None:
    """With every request failed, the refusal (final) is reported, not the 500 (transient)."""

    def answer(body: dict[str, Any], k: int) -> httpx.Response:
        if k == 0:
            return httpx.Response(500, json=error_body("boom"))
        return _first_refused(body, 0)

    tool = make_tool(Server(answer), model="dall-e-3")

    message = invoke(tool, {"prompt": "two foxes", "n": 2})

    assert message.status == "error"
    assert "safety system" in message.content
    assert "rephrase the prompt" in message.content


# --- secrets ---------------------------------------------------------------------------------


def test_the_key_never_leaks(
    make_tool: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def echo_key(body: dict[str, Any], k: int) -> httpx.Response:
        if body["prompt"] == "retry me" and k == 0:  # retry at once (OpenAI's header)
            return httpx.Response(
                500, json=error_body(f"upstream said {KEY}"), headers={"retry-after-ms": "1"}
            )
        if body["prompt"] == "wrong key":
            return httpx.Response(
                401, json=error_body(f"Incorrect API key provided: {KEY}.", "invalid_api_key")
            )
        return ok(body, k)

    server = Server(echo_key)
    tool = make_tool(server, model="gpt-image-1", max_retries=1)
    caplog.set_level(logging.DEBUG)

    success = invoke(tool, {"prompt": "retry me"})
    refused = invoke(tool, {"prompt": "wrong key"})

    assert server.headers[0]["authorization"] == f"Bearer {KEY}"  # it was sent...
    surfaces = {
        "repr": repr(tool),
        "str": str(tool),
        "model_dump": str(tool.model_dump()),
        "model_dump_json": tool.model_dump_json(),
        "client": repr(tool.client),
        "error": str(refused.content),
        "success": str(success.content),
        "artifact": artifact(success).model_dump_json(),
        "logs": caplog.text,
    }
    for name, text in surfaces.items():  # ...and appears nowhere else
        assert KEY not in text, name
    assert refused.status == "error"
    assert "Incorrect API key provided: ***" in refused.content
    assert "retrying" in caplog.text  # the retry was logged, without the key


# --- storage ---------------------------------------------------------------------------------


def test_unwritable_output_dir_is_an_error_message_and_leaves_nothing(
    make_tool: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file")
    tool = make_tool(Server(ok), model="gpt-image-1", output_dir=str(blocker / "images"))

    message = invoke(tool, {"prompt": "a fox", "n": 2})

    assert message.status == "error"
    assert f"could not save image to {blocker / 'images'}" in message.content
    assert "check output_dir" in message.content
    assert files_under(tmp_path) == ["not-a-dir"]
    assert blocker.read_text() == "a regular file"


@pytest.mark.parametrize("path", ["sync", "async"])
async def test_a_corrupt_image_is_reported_and_leaves_no_stray_files(
    make_tool: Any, tmp_path: Path, path: str
) -> None:
    """One good and one truncated image in the same answer: the good one is kept and
    reported, the corrupt one is reported missing, and no file exists that the artifact
    does not name (no orphan, no temporary ``.part`` file)."""
    truncated = base64.b64encode(encode_image("png", 8, 8, tag="bad")[:-12]).decode()

    def answer(body: dict[str, Any], k: int) -> httpx.Response:
        items = [{"b64_json": b64_image("good")}, {"b64_json": truncated}]
        return httpx.Response(200, json={"created": 1, "data": items})

    tool = make_tool(Server(answer), model="gpt-image-1")
    args = {"prompt": "two foxes", "n": 2}

    message = invoke(tool, args) if path == "sync" else await ainvoke(tool, args)

    result = artifact(message)
    (image,) = result.images
    assert image.path is not None
    assert files_under(tmp_path / "images") == [Path(image.path).name]
    assert result.shortfall == 1
    (error,) = result.errors
    assert "truncated or corrupt base64 image" in error
    assert "Asked for 2 images but received 1; 1 missing." in message.content
    assert f"Request failed: {error}" in message.content


@pytest.mark.parametrize("path", ["sync", "async"])
async def test_only_corrupt_images_is_an_error_message(
    make_tool: Any, tmp_path: Path, path: str
) -> None:
    truncated = base64.b64encode(encode_image("png", 8, 8, tag="bad")[:-12]).decode()
    answer = httpx.Response(200, json={"created": 1, "data": [{"b64_json": truncated}]})
    tool = make_tool(Server(lambda body, k: answer), model="gpt-image-1")

    message = (
        invoke(tool, {"prompt": "a fox"})
        if path == "sync"
        else await ainvoke(tool, {"prompt": "a fox"})
    )

    assert message.status == "error"
    assert "the server sent a truncated or corrupt base64 image" in message.content
    assert not (tmp_path / "images").exists() or files_under(tmp_path / "images") == []


def test_saved_files_have_sniffed_extensions(make_tool: Any, tmp_path: Path) -> None:
    def answer(body: dict[str, Any], k: int) -> httpx.Response:
        items = [{"b64_json": b64_image("j", "jpeg")}, {"b64_json": b64_image("w", "webp")}]
        return httpx.Response(200, json={"created": 1, "data": items})

    tool = make_tool(Server(answer), model="gpt-image-1")

    result = artifact(invoke(tool, {"prompt": "two foxes", "n": 2}))

    kinds = sorted((Path(i.path or "").suffix, i.mime_type) for i in result.images)
    assert kinds == [(".jpg", "image/jpeg"), (".webp", "image/webp")]
    assert all(Path(i.path or "").parent == tmp_path / "images" for i in result.images)
    assert not [name for name in os.listdir(tmp_path / "images") if name.endswith(".part")]


# --- progress events -------------------------------------------------------------------------


async def test_astream_events_show_progress(make_tool: Any) -> None:
    tool = make_tool(Server(ok), model="gpt-image-1")

    events = [
        event
        async for event in tool.astream_events(tool_call({"prompt": "foxes", "n": 2}), version="v2")
        if event["event"] == "on_custom_event"
    ]

    assert {event["name"] for event in events} == {EVENT_NAME}
    stages = [event["data"]["stage"] for event in events]
    assert stages == ["requested", "received", "saved", "saved"]
    assert events[0]["data"] == {"stage": "requested", "request_index": 0, "images": 2}
    assert events[1]["data"] == {"stage": "received", "request_index": 0, "images": 2}
    assert all_files([event["data"]["path"] for event in events[2:]])


async def test_astream_events_fan_out(make_tool: Any) -> None:
    def answer(body: dict[str, Any], k: int) -> httpx.Response:
        return httpx.Response(200, json=images_body(1, tag=f"r{k}", urls=True))

    tool = make_tool(Server(answer), model="dall-e-3")

    stages = [
        (event["data"]["stage"], event["data"]["request_index"])
        async for event in tool.astream_events(tool_call({"prompt": "foxes", "n": 3}), version="v2")
        if event["event"] == "on_custom_event" and event["name"] == EVENT_NAME
    ]

    assert stages[:3] == [("requested", 0), ("requested", 1), ("requested", 2)]
    assert sorted(stages[3:]) == [("received", 0), ("received", 1), ("received", 2)]


def test_sync_invoke_dispatches_the_same_events(make_tool: Any) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    class Collector(BaseCallbackHandler):
        def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
            seen.append((name, data))

    tool = make_tool(Server(ok), model="gpt-image-1")

    tool.invoke(tool_call({"prompt": "a fox"}), config={"callbacks": [Collector()]})

    assert [(name, data["stage"]) for name, data in seen] == [
        (EVENT_NAME, "requested"),
        (EVENT_NAME, "received"),
        (EVENT_NAME, "saved"),
    ]

"""ImageGenerationTool replayed against real exchanges with the OpenAI Images API.

The cassettes in ``cassettes/recorded/`` are made by ``tests/recorded_cassettes.py`` from the
recordings other projects made against api.openai.com (``tests/data/recorded/SOURCES.md``):
what the tool reports must be what the API answered. Requests are matched on method and
path; each test then compares the body the tool sent with the recorded one, allowing only
an explicit API default (``n: 1``, ``response_format: "url"``, per the OpenAI API reference
for ``POST /images/generations``) to be sent or left out. Each test runs through ``invoke``
and ``ainvoke``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import vcr
from langchain_core.messages import ToolCall, ToolMessage
from vcr.cassette import Cassette

from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import ImageGenerationTool
from tests import readable_yaml
from tests.recorded_cassettes import CASSETTES, loaded, path, render

REPLAY_BASE_URL = "http://images.test/v1"
API_DEFAULTS = {"n": 1, "response_format": "url"}
MODES = ["invoke", "ainvoke"]


class SerialCassette(Cassette):  # type: ignore[misc]
    """A cassette that hands each recorded answer to exactly one request, also when the
    threads of a sync fan-out ask at the same moment (vcrpy's play count has no lock)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._play_lock = threading.Lock()

    def play_response(self, request: Any) -> Any:
        with self._play_lock:
            return super().play_response(request)


_VCR = vcr.VCR(record_mode="none", serializer=readable_yaml.NAME, filter_headers=["authorization"])
_VCR.register_serializer(readable_yaml.NAME, readable_yaml.ReadableYamlSerializer)


def _replay(name: str, match_on: tuple[str, ...] = ("method", "path")) -> Any:
    config = _VCR.get_merged_config(
        path=str(path(name)), match_on=match_on, allow_playback_repeats=False
    )
    return SerialCassette.use(**config)


def _recorded(name: str) -> list[dict[str, Any]]:
    """The recorded interactions: request bodies and response bodies parsed as JSON."""
    out = []
    for interaction in loaded(name):
        request, response = interaction["request"], interaction["response"]
        body = response["body"]["string"]
        out.append(
            {
                "method": request["method"],
                "uri": request["uri"],
                "request": json.loads(request["body"]) if request["body"] else None,
                "status": response["status"]["code"],
                "response": json.loads(body) if request["method"] == "POST" else body,
            }
        )
    return out


def _without_defaults(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if API_DEFAULTS.get(k, ...) != v}


def assert_same_request(sent: dict[str, Any], recorded: dict[str, Any]) -> None:
    assert _without_defaults(sent) == _without_defaults(recorded)


@pytest.fixture
def tools(tmp_path: Path) -> Iterator[list[ImageGenerationTool]]:
    made: list[ImageGenerationTool] = []
    yield made
    for tool in made:
        tool.close()


@pytest.fixture
def make_tool(tools: list[ImageGenerationTool], tmp_path: Path) -> Any:
    def make(model: str, **kwargs: Any) -> ImageGenerationTool:
        kwargs.setdefault("api_key", "sk-replay-only")
        tool = ImageGenerationTool(
            model=model,
            base_url=REPLAY_BASE_URL,
            output_dir=str(tmp_path / "images"),
            max_retries=0,
            **kwargs,
        )
        tools.append(tool)
        return tool

    return make


async def run(mode: str, tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    call = ToolCall(name=tool.name, args=args, id="call_1", type="tool_call")
    message = tool.invoke(call) if mode == "invoke" else await tool.ainvoke(call)
    assert isinstance(message, ToolMessage)
    if mode == "ainvoke":
        await tool.aclose()
    return message


def _read(file: str) -> bytes:
    return Path(file).read_bytes()


def succeeded(message: ToolMessage) -> ImageGenerationResult:
    assert message.status == "success", message.content
    assert isinstance(message.artifact, ImageGenerationResult)
    assert isinstance(message.content, str)
    for image in message.artifact.images:
        assert image.location in message.content
    return message.artifact


# --- dall-e-2 and dall-e-3: URLs and revised prompts ------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_dall_e_2_two_urls(mode: str, make_tool: Any, tmp_path: Path) -> None:
    (recorded,) = _recorded("dall-e-2_two_urls")
    tool = make_tool("dall-e-2")

    with _replay("dall-e-2_two_urls") as cassette:
        result = succeeded(
            await run(mode, tool, {"prompt": "An isolated stop sign.", "n": 2, "size": "256x256"})
        )

    assert cassette.all_played
    (request,) = result.requests
    assert_same_request(request.body, recorded["request"])  # the recording sent the default
    assert [image.url for image in result.images] == [
        d["url"] for d in recorded["response"]["data"]
    ]
    for image in result.images:
        assert image.path is None  # download_urls is off
        assert image.expires_at is not None  # read from the SAS `se=` parameter
        assert image.revised_prompt is None
    assert result.usage is None
    assert not (tmp_path / "images").exists()


@pytest.mark.parametrize("mode", MODES)
async def test_dall_e_3_revised_prompt_and_url(mode: str, make_tool: Any) -> None:
    (recorded,) = _recorded("dall-e-3_revised_prompt")
    (answer,) = recorded["response"]["data"]
    tool = make_tool("dall-e-3")

    with _replay("dall-e-3_revised_prompt") as cassette:
        message = await run(mode, tool, recorded["request"])
    result = succeeded(message)

    assert cassette.all_played
    assert_same_request(result.requests[0].body, recorded["request"])
    (image,) = result.images
    assert (image.url, image.revised_prompt) == (answer["url"], answer["revised_prompt"])
    assert f"revised prompt: {answer['revised_prompt']}" in message.content


@pytest.mark.parametrize("mode", MODES)
async def test_dall_e_3_fan_out_gets_both_answers(mode: str, make_tool: Any) -> None:
    """n=2 on dall-e-3 is two requests of one image; each gets one of two recorded answers
    to the same prompt."""
    recorded = _recorded("dall-e-3_two_answers")
    tool = make_tool("dall-e-3")

    with _replay("dall-e-3_two_answers") as cassette:
        message = await run(mode, tool, {"prompt": "An isolated stop sign.", "n": 2})
    result = succeeded(message)

    assert cassette.all_played
    assert len(result.requests) == 2
    for request in result.requests:
        assert_same_request(request.body, {"model": "dall-e-3", "prompt": "An isolated stop sign."})
    answers = {
        (r["response"]["data"][0]["url"], r["response"]["data"][0]["revised_prompt"])
        for r in recorded
    }
    assert {(image.url, image.revised_prompt) for image in result.images} == answers
    assert sorted(image.request_index for image in result.images) == [0, 1]
    assert "requested in 2 parallel requests" in message.content


@pytest.mark.parametrize("mode", MODES)
async def test_dall_e_3_download_saves_the_served_file(
    mode: str, make_tool: Any, tmp_path: Path
) -> None:
    post, get = _recorded("dall-e-3_download")
    (answer,) = post["response"]["data"]
    tool = make_tool("dall-e-3", download_urls=True)

    with _replay("dall-e-3_download") as cassette:
        message = await run(mode, tool, post["request"])
    result = succeeded(message)

    assert cassette.all_played
    # The recorded client fetched the URL it was given (its query normalised by Faraday).
    assert urlsplit(get["uri"]).path == urlsplit(answer["url"]).path
    (image,) = result.images
    assert image.url == answer["url"]
    assert image.revised_prompt == answer["revised_prompt"]
    assert image.path is not None
    assert Path(image.path).parent == tmp_path / "images"
    assert _read(image.path) == get["response"]
    assert image.mime_type == "image/png"


# --- gpt-image-1: base64 images and usage ----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_gpt_image_1_defaults_b64_and_usage(
    mode: str, make_tool: Any, tmp_path: Path
) -> None:
    (recorded,) = _recorded("gpt-image-1_defaults")
    answer = recorded["response"]
    tool = make_tool("gpt-image-1")

    with _replay("gpt-image-1_defaults") as cassette:
        message = await run(mode, tool, {"prompt": "An isolated stop sign."})
    result = succeeded(message)

    assert cassette.all_played
    assert result.requests[0].body == recorded["request"]  # nothing added to the defaults
    (image,) = result.images
    assert image.path is not None
    assert _read(image.path) == base64.b64decode(answer["data"][0]["b64_json"])
    assert image.url is None
    assert image.size == answer["size"] == "1024x1536"  # the server's choice for "auto"
    assert result.usage is not None
    assert result.usage["input_tokens"] == answer["usage"]["input_tokens"]
    assert result.usage["output_tokens"] == answer["usage"]["output_tokens"]
    assert result.usage["total_tokens"] == answer["usage"]["total_tokens"]
    assert f"Tokens used: {answer['usage']['total_tokens']}" in message.content


@pytest.mark.parametrize("mode", MODES)
async def test_gpt_image_1_two_images_in_one_request(mode: str, make_tool: Any) -> None:
    (recorded,) = _recorded("gpt-image-1_two_images")
    tool = make_tool("gpt-image-1")

    with _replay("gpt-image-1_two_images") as cassette:
        result = succeeded(await run(mode, tool, recorded["request"]))

    assert cassette.all_played
    (request,) = result.requests
    assert request.body == recorded["request"]
    assert len(result.images) == result.images_requested == 2
    assert result.usage is not None
    assert result.usage["total_tokens"] == recorded["response"]["usage"]["total_tokens"]


@pytest.mark.parametrize("mode", MODES)
async def test_gpt_image_1_damaged_image_is_reported_not_saved(
    mode: str, make_tool: Any, tmp_path: Path
) -> None:
    (recorded,) = _recorded("gpt-image-1_truncated_image")
    assert "[TRUNCATED" in recorded["response"]["data"][0]["b64_json"]
    tool = make_tool("gpt-image-1")

    with _replay("gpt-image-1_truncated_image"):
        message = await run(mode, tool, recorded["request"])

    assert message.status == "error"
    assert "damaged image" in message.content
    assert "nothing was saved" in message.content
    images = tmp_path / "images"
    assert not images.exists() or not any(images.iterdir())


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("name", "model", "key"),
    [
        ("gpt-image-1_wrong_key", "gpt-image-1", "fake_key"),
        ("dall-e-3_wrong_key", "dall-e-3", "test"),
    ],
)
async def test_rejected_key_is_an_error_message(
    mode: str, name: str, model: str, key: str, make_tool: Any
) -> None:
    (recorded,) = _recorded(name)
    assert recorded["status"] == 401
    tool = make_tool(model, api_key=key)

    with _replay(name) as cassette:
        message = await run(mode, tool, recorded["request"])

    assert cassette.all_played  # a 401 is not retried
    assert message.status == "error"
    assert message.artifact is None
    assert "Incorrect API key provided" in message.content
    assert "HTTP 401, invalid_api_key" in message.content
    assert "a person must fix the key" in message.content
    assert f"provided: {key}." not in message.content  # the echoed key is masked


@pytest.mark.parametrize("mode", MODES)
async def test_dall_e_2_quality_dropped_sends_the_request_the_api_accepted(
    mode: str, make_tool: Any
) -> None:
    """In March 2026 the API refused ``quality`` on dall-e-2 (400 unknown_parameter) and
    accepted the same request without it. Proposed with ``quality``, the tool sends exactly
    the accepted body (matched on body here, not only on path)."""
    (recorded,) = _recorded("dall-e-2_without_quality")
    assert "quality" not in recorded["request"]
    tool = make_tool("dall-e-2")
    proposal = {k: v for k, v in recorded["request"].items() if k != "model"}

    with _replay("dall-e-2_without_quality", ("method", "path", "body")) as cassette:
        message = await run(mode, tool, {**proposal, "quality": "standard"})
    result = succeeded(message)

    assert cassette.all_played
    assert result.requests[0].body == recorded["request"]
    assert [a.field for a in result.adjustments] == ["quality"]
    assert "quality: 'standard'" in message.content


# --- the cassettes themselves ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASSETTES))
def test_cassette_is_generated_from_the_recordings(name: str) -> None:
    """A committed cassette is exactly what tests/recorded_cassettes.py makes from the data
    (run ``python -m tests.recorded_cassettes`` after changing either)."""
    assert path(name).read_text(encoding="utf-8") == render(name)


def test_no_stray_recorded_cassettes() -> None:
    assert {p.stem for p in path("x").parent.glob("*.yaml")} == set(CASSETTES)

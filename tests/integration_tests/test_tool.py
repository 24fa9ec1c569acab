"""ImageGenerationTool end to end over HTTP, live against the loopback emulator.

The emulator (``tests/emulator.py``, one per session, see ``conftest.py``) validates every
request against the per-model rules and answers with real image bytes; faults come from
``[[fault:NAME]]`` markers in the prompt, or from its FIFO fault queue
(:meth:`Target.push_fault`). Fan-outs really run concurrently. The same tool against real
recorded answers is ``test_recorded.py``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from langchain_core.messages import ToolCall, ToolMessage

from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import AzureImageGenerationTool, ImageGenerationTool
from tests.conftest import EMULATOR_KEY
from tests.emulator import Fault
from tests.integration_tests.conftest import LIVE, Target

pytestmark = LIVE

REVISED = "A detailed, vivid illustration of: "  # the emulator's dall-e-3 revised prompt
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{100,}={0,2}")  # paths and URLs break such runs


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def make_tool(made: list[ImageGenerationTool], tmp_path: Path) -> Any:
    def make(base_url: str, **kwargs: Any) -> ImageGenerationTool:
        kwargs.setdefault("output_dir", str(tmp_path / "images"))
        tool = ImageGenerationTool(base_url=base_url, **kwargs)
        made.append(tool)
        return tool

    return make


def _call(tool: ImageGenerationTool, args: dict[str, Any]) -> ToolCall:
    return ToolCall(name=tool.name, args=args, id="call_1", type="tool_call")


def invoke(tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    message = tool.invoke(_call(tool, args))
    assert isinstance(message, ToolMessage)
    return message


async def ainvoke(tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    message = await tool.ainvoke(_call(tool, args))
    assert isinstance(message, ToolMessage)
    return message


async def call(mode: str, tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    """One tool call as an agent makes it, by ``invoke`` or ``ainvoke`` (``mode``)."""
    return invoke(tool, args) if mode == "invoke" else await ainvoke(tool, args)


def succeeded(message: ToolMessage) -> tuple[str, ImageGenerationResult]:
    """The text and artifact of a successful call, with the invariants every success keeps."""
    assert message.status == "success", message.content
    assert isinstance(message.content, str)
    assert isinstance(message.artifact, ImageGenerationResult)
    text, result = message.content, message.artifact
    assert text == result.to_text()
    assert_no_base64(text)
    assert_no_base64(result.model_dump_json())
    for image in result.images:
        assert image.location in text  # every image's file path or URL is listed
    for adjustment in result.adjustments:
        assert adjustment.describe() in text  # and every change made
    assert result.elapsed_s >= max(r.elapsed_s for r in result.requests)
    return text, result


def failed(message: ToolMessage) -> str:
    assert message.status == "error"
    assert isinstance(message.content, str)
    assert "Traceback" not in message.content
    assert EMULATOR_KEY not in message.content
    return message.content


def assert_no_base64(text: str) -> None:
    assert "b64_json" not in text
    assert "base64," not in text
    assert not BASE64_RUN.search(text), "base64 payload leaked into text"


def assert_saved(image: Any, directory: Path, ext: str, mime: str, magic: bytes) -> bytes:
    """The image is a file in ``directory`` named by its hash, with the right type."""
    assert image.path is not None
    path = Path(image.path)
    assert path.parent == directory
    assert path.suffix == f".{ext}"
    assert image.mime_type == mime
    data = path.read_bytes()
    assert data.startswith(magic)
    assert image.size_bytes == len(data)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert path.stem == image.sha256[:16]
    return data


def assert_http_calls(target: Target, count: int) -> None:
    """The emulator received ``count`` HTTP requests in this test (retries included)."""
    assert target.http_calls() == count


def header(request: Any, name: str) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == name), None)


# --- models ----------------------------------------------------------------------------------


def test_tool_dall_e_2_urls(target: Target, make_tool: Any, tmp_path: Path) -> None:
    tool = make_tool(target.base_url, model="dall-e-2")

    text, result = succeeded(
        invoke(tool, {"prompt": "a lighthouse at dawn, watercolor", "size": "256x256", "n": 2})
    )

    assert text.startswith("Generated 2 images with dall-e-2.")
    assert [r.body for r in result.requests] == [
        {
            "model": "dall-e-2",
            "prompt": "a lighthouse at dawn, watercolor",
            "size": "256x256",
            "n": 2,
        }
    ]
    assert result.adjustments == []
    assert len({image.url for image in result.images}) == 2
    for image in result.images:
        assert image.url is not None
        assert urlsplit(image.url).path.startswith("/files/")
        assert image.path is None  # download_urls is off: nothing written
        assert image.expires_at is not None  # read from the SAS `se=` parameter
        assert image.size == "256x256"
        assert image.revised_prompt is None
    assert text.count("(URL expires ") == 2
    assert result.usage is None  # DALL-E reports no usage
    assert result.requests[0].attempts == 1
    assert not (tmp_path / "images").exists()
    assert_http_calls(target, 1)


DALL_E_3_ARGS = {
    "prompt": "a red fox in fresh snow",
    "n": 4,
    "quality": "high",
    "size": "1792x1024",
}


def _check_dall_e_3_fan_out(text: str, result: ImageGenerationResult) -> None:
    body = {
        "model": "dall-e-3",
        "prompt": "a red fox in fresh snow",
        "size": "1792x1024",
        "quality": "hd",
        "n": 1,
    }
    assert [r.body for r in result.requests] == [body] * 4  # dall-e-3 makes one per request
    assert [r.images for r in result.requests] == [1, 1, 1, 1]
    assert all(r.error is None and r.attempts == 1 for r in result.requests)
    assert text.startswith("Generated 4 images with dall-e-3.")
    assert len(result.images) == 4
    assert sorted(image.request_index for image in result.images) == [0, 1, 2, 3]
    assert len({image.url for image in result.images}) == 4  # four answers, not one replayed
    for image in result.images:
        assert image.revised_prompt == REVISED + "a red fox in fresh snow"
    assert text.count(f"revised prompt: {REVISED}a red fox in fresh snow") == 4
    adjustments = {(a.field, str(a.proposed), str(a.applied)) for a in result.adjustments}
    assert adjustments == {("quality", "high", "hd"), ("n", "4", "1")}
    assert "requested in 4 parallel requests" in text
    assert result.images_requested == 4
    assert result.shortfall == 0


def test_tool_dall_e_3_fan_out_sync(target: Target, make_tool: Any) -> None:
    tool = make_tool(target.base_url, model="dall-e-3")

    text, result = succeeded(invoke(tool, DALL_E_3_ARGS))

    _check_dall_e_3_fan_out(text, result)
    assert_http_calls(target, 4)


async def test_tool_dall_e_3_fan_out_async(target: Target, make_tool: Any) -> None:
    tool = make_tool(target.base_url, model="dall-e-3")

    text, result = succeeded(await ainvoke(tool, DALL_E_3_ARGS))

    _check_dall_e_3_fan_out(text, result)
    assert_http_calls(target, 4)
    await tool.aclose()


def test_tool_gpt_image_1_b64_saved_as_jpeg(target: Target, make_tool: Any, tmp_path: Path) -> None:
    tool = make_tool(target.base_url, model="gpt-image-1")

    _text, result = succeeded(
        invoke(
            tool,
            {"prompt": "a paper crane", "n": 2, "output_format": "jpg", "quality": "low"},
        )
    )

    assert result.requests[0].body == {
        "model": "gpt-image-1",
        "prompt": "a paper crane",
        "quality": "low",
        "output_format": "jpeg",
        "n": 2,
    }
    assert [(a.field, a.proposed, a.applied) for a in result.adjustments] == [
        ("output_format", "jpg", "jpeg")
    ]
    assert len(result.images) == 2
    for image in result.images:
        assert_saved(image, tmp_path / "images", "jpg", "image/jpeg", b"\xff\xd8\xff")
        assert image.url is None
        assert image.size == "1024x1024"  # the server reported size
    assert len({image.path for image in result.images}) == 2
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == sorted(
        Path(image.path or "").name for image in result.images
    )
    usage = result.usage
    assert usage is not None
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert result.requests[0].usage is not None
    assert_http_calls(target, 1)


async def test_tool_gpt_image_2_custom_size_adjusted(
    target: Target, make_tool: Any, tmp_path: Path
) -> None:
    tool = make_tool(target.base_url, model="gpt-image-2")

    text, result = succeeded(
        await ainvoke(tool, {"prompt": "a wide mountain panorama", "size": "1920x1080"})
    )

    assert result.requests[0].body == {
        "model": "gpt-image-2",
        "prompt": "a wide mountain panorama",
        "size": "1920x1088",
    }
    (adjustment,) = result.adjustments
    assert (adjustment.field, adjustment.proposed, adjustment.applied) == (
        "size",
        "1920x1080",
        "1920x1088",
    )
    assert "size: '1920x1080' → '1920x1088'" in text
    (image,) = result.images
    assert image.size == "1920x1088"
    assert_saved(image, tmp_path / "images", "png", "image/png", b"\x89PNG\r\n\x1a\n")
    assert result.usage is not None
    assert result.usage["output_tokens"] > 0
    assert_http_calls(target, 1)
    await tool.aclose()


# --- refusals and errors ---------------------------------------------------------------------


def test_tool_moderation_blocked_is_error_message(
    target: Target, make_tool: Any, tmp_path: Path
) -> None:
    tool = make_tool(target.base_url, model="gpt-image-1")

    message = invoke(tool, {"prompt": "[[fault:moderation_blocked:input]] something flagged"})

    text = failed(message)
    assert "rejected by the safety system" in text
    assert "moderation_blocked" in text
    assert "rephrase the prompt without the flagged content" in text
    assert "do not retry it unchanged" in text
    assert message.artifact is None
    assert not (tmp_path / "images").exists()
    assert_http_calls(target, 1)  # a refusal is not retried


async def test_tool_content_policy_violation_is_error_message(
    target: Target, make_tool: Any
) -> None:
    tool = make_tool(target.base_url, model="dall-e-3")

    message = await ainvoke(tool, {"prompt": "[[fault:content_policy_violation]] a scene"})

    text = failed(message)
    assert "Your request was rejected as a result of our safety system" in text
    assert "HTTP 400, content_policy_violation" in text
    assert "rephrase the prompt" in text
    assert_http_calls(target, 1)
    await tool.aclose()


def test_tool_wrong_key_is_error_message(target: Target, make_tool: Any) -> None:
    wrong = "sk-wrong-key-for-tests-0000"
    tool = make_tool(target.base_url, model="gpt-image-1", api_key=wrong)

    text = failed(invoke(tool, {"prompt": "a red fox"}))

    assert "Incorrect API key provided" in text
    assert "HTTP 401, invalid_api_key" in text
    assert "The API key was rejected; a person must fix the key" in text
    assert wrong not in text
    (request,) = target.requests()
    assert header(request, "authorization") == f"Bearer {wrong}"  # sent, then refused
    assert_http_calls(target, 1)  # a 401 is not retried


def test_tool_fewer_images_reports_missing(target: Target, make_tool: Any) -> None:
    tool = make_tool(target.base_url, model="gpt-image-1")

    text, result = succeeded(
        invoke(tool, {"prompt": "[[fault:fewer_images]] three owls", "n": 3, "quality": "low"})
    )

    assert result.images_requested == 3
    assert len(result.images) == 2
    assert result.shortfall == 1
    assert text.startswith("Generated 2 images with gpt-image-1.")
    assert "Asked for 3 images but received 2; 1 missing." in text
    assert_http_calls(target, 1)


def test_tool_gateway_returns_url_for_gpt_image(
    target: Target, make_tool: Any, tmp_path: Path
) -> None:
    """A gateway answering a GPT image model with ``url`` instead of ``b64_json``."""
    tool = make_tool(target.base_url, model="gpt-image-1")

    text, result = succeeded(invoke(tool, {"prompt": "[[fault:url_instead_of_b64]] a kite"}))

    (image,) = result.images
    assert image.url is not None
    assert image.path is None
    assert image.url in text
    assert image.expires_at is not None
    assert result.usage is not None
    assert not (tmp_path / "images").exists()
    assert_http_calls(target, 1)


# --- gateways and Azure ----------------------------------------------------------------------


def test_tool_gateway_model_unknown_name(target: Target, make_tool: Any) -> None:
    """An unknown model name gets the permissive gateway profile: values pass through."""
    tool = make_tool(target.gateway_base_url, model="flux-dev")
    assert tool.profile.permissive

    args = {"prompt": "a neon city at night", "size": "1024x1024", "quality": "hd"}
    text, result = succeeded(invoke(tool, args))

    assert [r.body for r in result.requests] == [{"model": "flux-dev", **args}]
    assert result.adjustments == []
    assert text.startswith("Generated 1 image with flux-dev.")
    (image,) = result.images
    assert image.revised_prompt == REVISED + "a neon city at night"
    assert target.requests()[0].path == "/openai/v1/images/generations"
    assert_http_calls(target, 1)


def test_tool_gateway_model_with_family(target: Target, make_tool: Any) -> None:
    """``model_family="dall-e-3"``: the gateway's model is coerced like DALL-E 3."""
    tool = make_tool(target.gateway_base_url, model="flux-dev", model_family="dall-e-3")
    assert not tool.profile.permissive
    assert tool.profile.name == "flux-dev"

    text, result = succeeded(
        invoke(tool, {"prompt": "a neon city at night", "n": 2, "quality": "best"})
    )

    body = {"model": "flux-dev", "prompt": "a neon city at night", "quality": "hd", "n": 1}
    assert [r.body for r in result.requests] == [body, body]
    assert {a.field for a in result.adjustments} == {"quality", "n"}
    assert len(result.images) == 2
    assert all(image.revised_prompt for image in result.images)
    assert text.startswith("Generated 2 images with flux-dev.")
    assert_http_calls(target, 2)


def _azure(target: Target, made: list[ImageGenerationTool], tmp_path: Path, **kwargs: Any) -> Any:
    tool = AzureImageGenerationTool(
        model="images",  # a deployment whose name says nothing of its model
        azure_endpoint=target.root,
        api_key=EMULATOR_KEY,
        output_dir=str(tmp_path / "images"),
        **kwargs,
    )
    made.append(tool)
    return tool


def test_tool_azure_deployment_route(
    target: Target, made: list[ImageGenerationTool], tmp_path: Path
) -> None:
    tool = _azure(target, made, tmp_path, api_version="2025-04-01-preview")

    _text, result = succeeded(
        invoke(tool, {"prompt": "a copper teapot", "size": "1536x1024", "quality": "medium"})
    )

    (image,) = result.images
    assert_saved(image, tmp_path / "images", "png", "image/png", b"\x89PNG")
    assert image.size == "1536x1024"
    (request,) = target.requests()
    # (the emulator answers 404 on this route without an api-version query)
    assert request.path == "/openai/deployments/images/images/generations"
    assert header(request, "api-key") == EMULATOR_KEY  # Azure's header, not a bearer token
    assert header(request, "authorization") is None
    assert_http_calls(target, 1)


async def test_tool_azure_v1_route(
    target: Target, made: list[ImageGenerationTool], tmp_path: Path
) -> None:
    tool = _azure(target, made, tmp_path, use_deployment_url=False)

    _text, result = succeeded(await ainvoke(tool, {"prompt": "a copper teapot", "n": 2}))

    assert result.requests[0].body == {"model": "images", "prompt": "a copper teapot", "n": 2}
    assert len(result.images) == 2
    for image in result.images:
        assert_saved(image, tmp_path / "images", "png", "image/png", b"\x89PNG")
    (request,) = target.requests()
    assert urlsplit(request.path).path == "/openai/v1/images/generations"
    assert header(request, "api-key") == EMULATOR_KEY
    assert_http_calls(target, 1)
    await tool.aclose()


# --- downloads -------------------------------------------------------------------------------


def test_tool_download_urls_saves_files(target: Target, make_tool: Any, tmp_path: Path) -> None:
    tool = make_tool(target.base_url, model="dall-e-2", download_urls=True)

    text, result = succeeded(invoke(tool, {"prompt": "a tiny cactus", "size": "256x256", "n": 2}))

    assert len(result.images) == 2
    for image in result.images:
        assert_saved(image, tmp_path / "images", "png", "image/png", b"\x89PNG")
        assert image.url is not None  # the source URL is kept in the artifact
        assert image.path is not None
        assert image.path in text
        assert image.url not in text  # the LLM reads the lasting file path
    assert len({image.path for image in result.images}) == 2
    assert len(target.requests()) == 1  # one generation; the other two calls are downloads
    assert_http_calls(target, 3)


async def test_tool_download_urls_saves_files_async(
    target: Target, make_tool: Any, tmp_path: Path
) -> None:
    tool = make_tool(target.base_url, model="dall-e-3", download_urls=True)

    _text, result = succeeded(await ainvoke(tool, {"prompt": "a tiny cactus"}))

    (image,) = result.images
    assert_saved(image, tmp_path / "images", "png", "image/png", b"\x89PNG")
    assert image.revised_prompt == REVISED + "a tiny cactus"
    assert len(target.requests()) == 1  # and one download
    assert_http_calls(target, 2)
    await tool.aclose()


# --- partial failure -------------------------------------------------------------------------


def _check_partial(text: str, result: ImageGenerationResult) -> None:
    assert len(result.images) == 1
    assert result.shortfall == 1
    failed_requests = [r for r in result.requests if r.error]
    ok_requests = [r for r in result.requests if not r.error]
    assert len(failed_requests) == len(ok_requests) == 1
    assert failed_requests[0].images == 0
    assert ok_requests[0].images == 1
    assert "safety system" in (failed_requests[0].error or "")
    assert text.startswith("Generated 1 image with dall-e-3.")
    assert "Asked for 2 images but received 1; 1 missing." in text
    assert "Request failed: Your request was rejected as a result of our safety system" in text
    (image,) = result.images
    assert image.request_index == result.requests.index(ok_requests[0])


def test_tool_partial_failure_sync(target: Target, make_tool: Any) -> None:
    """Two identical concurrent requests; the emulator refuses whichever arrives first."""
    target.push_fault(Fault.content_policy_violation())
    tool = make_tool(target.base_url, model="dall-e-3")

    text, result = succeeded(invoke(tool, {"prompt": "two foxes", "n": 2}))

    _check_partial(text, result)
    assert_http_calls(target, 2)


async def test_tool_partial_failure_async(target: Target, make_tool: Any) -> None:
    target.push_fault(Fault.content_policy_violation())
    tool = make_tool(target.base_url, model="dall-e-3")

    text, result = succeeded(await ainvoke(tool, {"prompt": "two foxes", "n": 2}))

    _check_partial(text, result)
    assert_http_calls(target, 2)
    await tool.aclose()

"""The tool against each provider, live over loopback (issue 14).

One ``Emulator(provider=NAME)`` per provider (``tests/provider_emulator.py``: that provider's
route, auth, request validation, answers and error bodies, written independently of the
package) serves the tool end to end: sloppy arguments become a request the provider accepts,
images come back decoded and saved with the size asked for (read back with Pillow), counts
above the provider's per-request limit fan out, every error body ends as an error ToolMessage
with the agent-facing message, a rate limit is retried, URL answers are downloaded, and the
provider's own parameters reach the wire only when the developer sets them.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from PIL import Image

from langchain_imagegen import ImageGenerationTool, providers
from langchain_imagegen.errors import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    ImageGenError,
    InternalServerError,
    MalformedResponseError,
    RateLimitError,
)
from langchain_imagegen.providers import PROVIDERS
from langchain_imagegen.result import ImageGenerationResult
from tests.emulator import Emulator, Fault
from tests.integration_tests.conftest import LIVE
from tests.integration_tests.test_tool import ainvoke, invoke
from tests.provider_emulator import PROVIDERS as BEHAVIOURS

pytestmark = LIVE

NAMES = list(BEHAVIOURS)
KEYS = {name: f"pk-{name}-0123456789" for name in NAMES}
# The base URL that puts the package's route on each provider's route.
BASE_PATHS = {"deepinfra": "/v1/openai", "gemini": "/v1beta/openai", "openrouter": "/api/v1"}
SELF_HOSTED = ("vllm-omni", "localai")
N_FIELD = {"siliconflow": "batch_size"}
ALL_KEY_VARIABLES = sorted({name for p in PROVIDERS for name in p.key_env})


@pytest.fixture(autouse=True)
def _no_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys are given explicitly; self-hosted servers get none (an OpenAI key in the
    environment would be sent to a base_url the caller chose)."""
    for name in ALL_KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def _servers() -> Iterator[dict[str, Emulator]]:
    started: dict[str, Emulator] = {}
    yield started
    for emulator in started.values():
        emulator.stop()


Connect = Callable[..., tuple[Emulator, ImageGenerationTool]]


@pytest.fixture
def connect(_servers: dict[str, Emulator], tmp_path: Path) -> Iterator[Connect]:
    """``connect(provider, **tool_kwargs)``: that provider's emulator (started once per
    module, reset) and a tool pointed at it."""
    tools: list[ImageGenerationTool] = []
    used: list[Emulator] = []

    def make(provider: str, **kwargs: Any) -> tuple[Emulator, ImageGenerationTool]:
        emulator = _servers.get(provider)
        if emulator is None:
            emulator = Emulator(provider=provider, api_key=KEYS[provider], max_lifetime_s=600)
            _servers[provider] = emulator.start()
        if emulator not in used:
            emulator.reset()
            used.append(emulator)
        if provider not in SELF_HOSTED:
            kwargs.setdefault("api_key", KEYS[provider])
        kwargs.setdefault("output_dir", str(tmp_path / "images"))
        kwargs.setdefault("max_retries", 0)
        tool = ImageGenerationTool(
            provider=provider, base_url=emulator.url + BASE_PATHS.get(provider, "/v1"), **kwargs
        )
        tools.append(tool)
        return emulator, tool

    yield make
    for tool in tools:
        tool.close()
    for emulator in used:
        assert not emulator.internal_errors, emulator.internal_errors
        assert not emulator.faults, f"faults left unused: {emulator.faults}"


def succeeded(message: ToolMessage) -> ImageGenerationResult:
    assert message.status == "success", message.content
    result = message.artifact
    assert isinstance(result, ImageGenerationResult)
    assert message.content == result.to_text()
    for adjustment in result.adjustments:
        assert adjustment.describe() in message.content
    return result


def failed(message: ToolMessage, provider: str) -> str:
    assert message.status == "error", message.content
    assert isinstance(message.content, str)
    assert "Traceback" not in message.content
    assert KEYS[provider] not in message.content
    return message.content


def saved_sizes(result: ImageGenerationResult) -> list[tuple[int, int]]:
    """Each image's pixel size, read back from the saved file."""
    sizes = []
    for image in result.images:
        assert image.path is not None, image
        data = Path(image.path).read_bytes()
        assert image.size_bytes == len(data)
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            sizes.append(opened.size)
    return sizes


def sent(emulator: Emulator) -> list[dict[str, Any]]:
    return [request.body for request in emulator.received_requests]


# ============================================================================================
# End to end, sync and async, with sloppy arguments
# ============================================================================================

# provider -> (sloppy args, pixel size the provider renders, what its body must hold)
END_TO_END: dict[str, tuple[dict[str, Any], tuple[int, int], dict[str, Any]]] = {
    # xAI renders 16:9 as 1360x768 at 1k (emulator convention: ~1024² pixels, edges / 16).
    "xai": ({"prompt": "a fox", "size": "1920x1080", "n": "2"}, (1360, 768),
            {"aspect_ratio": "16:9", "n": 2}),
    "together": ({"prompt": "a fox", "size": "1000x700", "n": 2.0}, (1000, 704),
                 {"width": 1000, "height": 704, "n": 2}),
    "deepinfra": ({"prompt": "a fox", "size": "1000 x 700", "n": 2}, (1000, 704),
                  {"size": "1000x704", "n": 2}),
    "gemini": ({"prompt": "a fox", "size": "portrait", "n": 2, "quality": "hd", "style": "vivid"},
               (896, 1280), {"size": "896x1280", "n": 2, "response_format": "b64_json"}),
    "openrouter": ({"prompt": "a fox", "size": "landscape", "n": 2, "quality": "high"},
                   (1248, 832), {"aspect_ratio": "3:2", "n": 2}),
    "vllm-omni": ({"prompt": "a fox", "size": "513x511", "n": 2, "response_format": "url"},
                  (512, 512), {"size": "512x512", "n": 2}),
    "localai": ({"prompt": "a fox", "size": "256x256", "n": 1}, (256, 256),
                {"size": "256x256"}),
    "siliconflow": ({"prompt": "a fox", "size": "9:16", "n": 2, "response_format": "b64_json"},
                    (720, 1280), {"image_size": "720x1280", "batch_size": 2}),
}  # fmt: skip


@pytest.mark.parametrize("provider", NAMES)
def test_sync_call_saves_images_of_the_size_asked(provider: str, connect: Connect) -> None:
    args, pixels, holds = END_TO_END[provider]
    emulator, tool = connect(provider, download_urls=True)
    result = succeeded(invoke(tool, args))
    count = holds.get(N_FIELD.get(provider, "n"), 1)
    assert len(result.images) == count
    assert saved_sizes(result) == [pixels] * count
    (body,) = sent(emulator)
    assert {key: body.get(key) for key in holds} == holds


@pytest.mark.parametrize("provider", NAMES)
async def test_async_call_saves_images_of_the_size_asked(provider: str, connect: Connect) -> None:
    args, pixels, holds = END_TO_END[provider]
    emulator, tool = connect(provider, download_urls=True)
    result = succeeded(await ainvoke(tool, args))
    count = holds.get(N_FIELD.get(provider, "n"), 1)
    assert saved_sizes(result) == [pixels] * count
    (body,) = sent(emulator)
    assert {key: body.get(key) for key in holds} == holds


def test_bearer_key_reaches_hosted_providers(connect: Connect) -> None:
    emulator, tool = connect("xai", api_key=KEYS["xai"])
    succeeded(invoke(tool, {"prompt": "a fox"}))
    (request,) = emulator.received_requests
    assert request.headers.get("authorization") == f"Bearer {KEYS['xai']}"


@pytest.mark.parametrize("provider", SELF_HOSTED)
def test_self_hosted_servers_get_no_key(
    provider: str, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    emulator, tool = connect(provider, download_urls=True)
    succeeded(invoke(tool, {"prompt": "a fox", "size": "256x256"}))
    (request,) = emulator.received_requests
    assert not any(name.lower() == "authorization" for name in request.headers)


# ============================================================================================
# Fan-out beyond the per-request limit
# ============================================================================================

# provider -> (n asked, counts per request as the provider received them)
FAN_OUT = {
    "xai": (12, [2, 10]),
    "together": (6, [2, 4]),
    "deepinfra": (11, [1, 10]),
    "gemini": (5, [1, 4]),
    "openrouter": (6, [2, 4]),
    "vllm-omni": (11, [1, 10]),
    "localai": (3, [1, 1, 1]),
    "siliconflow": (6, [2, 4]),
}


@pytest.mark.parametrize("provider", NAMES)
async def test_counts_above_the_limit_fan_out(provider: str, connect: Connect) -> None:
    asked, counts = FAN_OUT[provider]
    emulator, tool = connect(provider, max_images=12, download_urls=True)
    result = succeeded(await ainvoke(tool, {"prompt": "many foxes", "n": asked, "size": "1:1"}))
    assert len(result.images) == asked
    assert len({image.sha256 for image in result.images}) == asked  # distinct images
    n_field = N_FIELD.get(provider, "n")
    assert sorted(body.get(n_field, 1) for body in sent(emulator)) == counts
    assert len(result.requests) == len(counts)


# ============================================================================================
# Every error body ends as an error ToolMessage the agent can act on
# ============================================================================================


_MODERATION = [  # each provider's own words for a moderation block
    ("xai", "content_policy", "rejected by content moderation"),
    ("xai", "content_policy:block_reason", "Prompt rejected by input moderation"),
    ("xai", "content_policy:respect_moderation", "moderation blocked"),
    ("together", "content_policy", "NSFW content detected"),
    ("deepinfra", "content_policy", "safety checker"),
    ("openrouter", "content_policy", "flagged by moderation"),
    ("vllm-omni", "content_policy", "safety checker"),
    ("siliconflow", "content_policy", "sensitive content"),
]


def _error_rows() -> list[Any]:
    """Each provider's error shapes, a server error, a rate limit, an error inside a 200,
    and its moderation blocks (which tell the agent to rephrase)."""
    rows: list[Any] = []
    for name, behaviour in BEHAVIOURS.items():
        cases: list[tuple[str, type[ImageGenError], str]] = [
            (f"provider_error:{shape}", BadRequestError, f"Scripted {name} error ({shape}).")
            for shape in behaviour.error_shapes
        ]
        cases += [
            ("server_error", InternalServerError, "Internal server error."),
            ("rate_limit:0", RateLimitError, "Rate limit exceeded."),
            ("provider_error:in_200", MalformedResponseError, "The server had an error"),
        ]
        cases += [
            (marker, ContentPolicyError, words) for n, marker, words in _MODERATION if n == name
        ]
        for marker, kind, words in cases:
            rows.append(pytest.param(name, marker, kind, words, id=f"{name}-{marker}"))
    return rows


@pytest.mark.parametrize(("provider", "marker", "kind", "words"), _error_rows())
def test_each_error_shape_is_an_error_message_for_the_agent(
    provider: str, marker: str, kind: type[ImageGenError], words: str, connect: Connect
) -> None:
    _, tool = connect(provider)
    content = failed(invoke(tool, {"prompt": f"a fox [[fault:{marker}]]"}), provider)
    assert words in content
    assert kind.hint[1:] in content  # what to do about it
    assert "unrecognised body" not in content


@pytest.mark.parametrize(
    "provider", ["xai", "together", "openrouter", "vllm-omni", "localai", "gemini", "siliconflow"]
)
def test_a_wrong_key_is_an_authentication_error(provider: str, connect: Connect) -> None:
    _, tool = connect(provider, api_key="wrong-key-0123456789")
    content = failed(invoke(tool, {"prompt": "a fox"}), provider)
    assert AuthenticationError.hint[1:] in content
    assert "wrong-key-0123456789" not in content


# ============================================================================================
# Rate limits are retried
# ============================================================================================


@pytest.mark.parametrize("provider", NAMES)
def test_a_rate_limit_is_retried_and_the_retry_succeeds(provider: str, connect: Connect) -> None:
    emulator, tool = connect(provider, max_retries=2, download_urls=True)
    behaviour = BEHAVIOURS[provider]
    # One 429 in the provider's own error shape (queued: the next request answers normally).
    # It asks for a wait of 20 ms, which the client honours exactly (no 0.5 s backoff).
    body = behaviour.error(429, "Rate limit exceeded. Please retry later.", None)
    raw = json.dumps(body).encode()  # Gemini's is a JSON list
    emulator.push_fault(
        Fault.http(429, raw, headers={"retry-after": "0.02"}, content_type="application/json")
    )
    result = succeeded(invoke(tool, {"prompt": "a fox", "size": "256x256"}))
    assert len(result.images) == 1
    assert len(emulator.received_requests) == 2
    assert result.requests[0].attempts == 2


@pytest.mark.parametrize("provider", ["xai", "together", "openrouter"])
def test_a_rate_limit_that_persists_ends_as_rate_limit_error(
    provider: str, connect: Connect
) -> None:
    emulator, tool = connect(provider, max_retries=1)
    # retry-after: 0.02, honoured exactly: a 20 ms wait instead of the 0.5 s backoff.
    content = failed(invoke(tool, {"prompt": "a fox [[fault:rate_limit:0.02]]"}), provider)
    assert "Rate limit exceeded." in content
    assert RateLimitError.hint[1:] in content
    assert len(emulator.received_requests) == 2  # tried, then retried once


# ============================================================================================
# URL answers are downloaded
# ============================================================================================


@pytest.mark.parametrize(
    ("provider", "args", "pixels"),
    [
        ("xai", {"prompt": "a fox", "size": "1:1"}, (1024, 1024)),
        ("together", {"prompt": "a fox", "size": "512x768"}, (512, 768)),
        ("localai", {"prompt": "a fox", "size": "320x256"}, (320, 256)),
        ("siliconflow", {"prompt": "a fox", "size": "768x1024"}, (768, 1024)),
    ],
)
def test_url_answers_are_downloaded(
    provider: str, args: dict[str, Any], pixels: tuple[int, int], connect: Connect
) -> None:
    emulator, tool = connect(provider, download_urls=True)
    result = succeeded(invoke(tool, args))
    (image,) = result.images
    assert image.url is not None
    assert image.url.startswith(emulator.url)
    assert saved_sizes(result) == [pixels]
    assert "response_format" not in emulator.received_requests[0].body  # the URL default


@pytest.mark.parametrize("provider", ["xai", "together", "localai", "siliconflow"])
def test_url_answers_are_listed_without_download(provider: str, connect: Connect) -> None:
    emulator, tool = connect(provider)
    result = succeeded(invoke(tool, {"prompt": "a fox", "size": "1:1"}))
    (image,) = result.images
    assert image.url is not None
    assert image.url.startswith(emulator.url)
    assert image.url in str(result.to_text())


@pytest.mark.parametrize(
    ("provider", "answer_key"), [("together", "b64_json"), ("xai", "b64_json")]
)
def test_b64_json_set_by_the_developer_is_spelled_the_providers_way(
    provider: str, answer_key: str, connect: Connect
) -> None:
    emulator, tool = connect(provider, image_params={"response_format": "b64_json"})
    result = succeeded(invoke(tool, {"prompt": "a fox", "size": "1:1"}))
    assert result.images[0].path is not None
    expected = "base64" if provider == "together" else "b64_json"
    assert emulator.received_requests[0].body["response_format"] == expected


# ============================================================================================
# The provider's own parameters reach the wire only when the developer sets them
# ============================================================================================

# provider -> (developer's image_params, as the provider receives them)
OWN: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "xai": ({"resolution": "1k"}, {"resolution": "1k"}),
    "together": ({"seed": "42", "steps": 80, "negative_prompt": "text"},
                 {"seed": 42, "steps": 50, "negative_prompt": "text"}),
    "openrouter": ({"image_size": "2K", "seed": 7}, {"image_size": "2K", "seed": 7}),
    "vllm-omni": ({"num_inference_steps": "12", "guidance_scale": 30, "seed": 1},
                  {"num_inference_steps": 12, "guidance_scale": 20, "seed": 1}),
    "localai": ({"step": 20, "mode": 1}, {"step": 20, "mode": 1}),
    "siliconflow": ({"num_inference_steps": 8, "guidance_scale": 7.5, "seed": 3},
                    {"num_inference_steps": 8, "guidance_scale": 7.5, "seed": 3}),
}  # fmt: skip
# What an LLM might propose instead (never sent).
PROPOSED: dict[str, dict[str, Any]] = {
    "xai": {"resolution": "2k"},
    "together": {"seed": 1, "steps": 2, "negative_prompt": "no", "disable_safety_checker": True},
    "openrouter": {"image_size": "4K", "seed": 1},
    "vllm-omni": {"num_inference_steps": 200, "true_cfg_scale": 4},
    "localai": {"step": 100, "mode": 2},
    "siliconflow": {"num_inference_steps": 100, "seed": 1, "negative_prompt": "no"},
}


@pytest.mark.parametrize("provider", list(OWN))
def test_own_params_reach_the_wire_only_when_the_developer_sets_them(
    provider: str, connect: Connect
) -> None:
    params, expected = OWN[provider]
    proposal = {"prompt": "a fox", "size": "1:1", **PROPOSED[provider]}
    emulator, tool = connect(provider, image_params=params, download_urls=True)
    succeeded(invoke(tool, proposal))
    _, plain = connect(provider, download_urls=True)
    message = invoke(plain, proposal)
    result = succeeded(message)
    with_params, without = sent(emulator)
    assert {key: with_params.get(key) for key in expected} == expected
    own = {param.name for param in plain.profile.own_params}
    assert not own & set(without), own & set(without)
    for key in PROPOSED[provider]:
        assert f"only the developer sets {key}" in str(message.content)
    assert {a.field for a in result.adjustments} >= set(PROPOSED[provider])


async def test_a_provider_chosen_by_its_host_is_written_its_way(
    connect: Connect, tmp_path: Path
) -> None:
    # The emulator is on 127.0.0.1, so the host cannot name the provider; a registered
    # copy of xAI's profile with that host stands in for api.x.ai.

    emulator, _ = connect("xai")
    xai_here = dataclasses.replace(
        providers.get_provider("xai"), name="xai-loopback", hosts=("127.0.0.1",)
    )
    saved = dict(providers._providers)
    providers.register_provider(xai_here)
    try:
        tool = ImageGenerationTool(
            base_url=emulator.base_url,
            model="grok-imagine-image",
            api_key=KEYS["xai"],
            output_dir=str(tmp_path),
        )
        result = succeeded(await ainvoke(tool, {"prompt": "a fox", "size": "1024x1536"}))
        tool.close()
    finally:
        providers._providers.clear()
        providers._providers.update(saved)
    assert result.images
    assert emulator.received_requests[-1].body["aspect_ratio"] == "2:3"

"""The emulator's provider mode (``Emulator(provider=...)``, tests/provider_emulator.py).

For each provider: a request in that provider's own format is accepted and answered in its
shape with decodable images of the resolved size; what the provider rejects is rejected in its
error shape; served URLs are fetchable; the scripted markers produce the provider's bodies.
The expected values restate the public sources listed in tests/provider_emulator.py.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator import Emulator, Fault
from tests.provider_emulator import PROVIDERS

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.enable_socket,
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

ROUTES = {
    "xai": "/v1/images/generations",
    "together": "/v1/images/generations",
    "deepinfra": "/v1/openai/images/generations",
    "gemini": "/v1beta/openai/images/generations",
    "openrouter": "/api/v1/images",
    "vllm-omni": "/v1/images/generations",
    "localai": "/v1/images/generations",
    "siliconflow": "/v1/images/generations",
}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def image_info(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) read from the bytes' own header (PNG IHDR or JPEG SOF0)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith(b"\xff\xd8"):
        pos = 2
        while pos < len(data):
            marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
            if marker == 0xC0:
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return "jpeg", width, height
            pos += 2 + length
    raise AssertionError(f"not a PNG or JPEG: {data[:8]!r}")


class Client:
    """httpx against one provider-mode emulator, on that provider's route."""

    def __init__(self, emu: Emulator, provider: str) -> None:
        self.emu = emu
        self.route = ROUTES[provider]
        self.http = httpx.Client(base_url=emu.url, timeout=10)

    def post(
        self, body: object, *, key: str | None = "default", route: str | None = None
    ) -> httpx.Response:
        headers = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {self.emu.api_key if key == 'default' else key}"
        return self.http.post(route or self.route, json=body, headers=headers)

    def fetch(self, url: str) -> bytes:
        response = self.http.get(url)
        assert response.status_code == 200, response.text
        return response.content


@pytest.fixture
def connect() -> Iterator[Any]:
    started: list[tuple[Emulator, Client]] = []

    def make(provider: str) -> Client:
        emu = Emulator(provider=provider).start()
        client = Client(emu, provider)
        started.append((emu, client))
        return client

    yield make
    for emu, client in started:
        client.http.close()
        emu.stop()


def b64_image(text: str) -> tuple[str, int, int]:
    return image_info(base64.b64decode(text, validate=True))


# --------------------------------------------------------------------------------------------
# the table itself
# --------------------------------------------------------------------------------------------


def test_every_provider_has_a_route_and_error_shapes() -> None:
    assert set(PROVIDERS) == set(ROUTES)
    for name, behaviour in PROVIDERS.items():
        assert behaviour.serves(ROUTES[name])
        assert "default" in behaviour.error_shapes
        assert "default" in behaviour.content_policy


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown provider 'dall-e'"):
        Emulator(provider="dall-e")


# --------------------------------------------------------------------------------------------
# xAI
# --------------------------------------------------------------------------------------------


class TestXai:
    def test_aspect_ratio_url_jpeg_and_cost(self, connect: Any) -> None:
        c = connect("xai")
        response = c.post(
            {"model": "grok-imagine-image", "prompt": "a fox", "aspect_ratio": "16:9", "n": 2}
        )
        assert response.status_code == 200, response.text
        payload = response.json()
        assert set(payload) == {"block_reason", "data", "usage"}
        assert payload["block_reason"] is None
        assert payload["usage"] == {"cost_in_usd_ticks": 2 * 200_000_000}
        assert len(payload["data"]) == 2
        for item in payload["data"]:
            assert item["b64_json"] is None
            assert item["mime_type"] == "image/jpeg"
            assert image_info(c.fetch(item["url"])) == ("jpeg", 1360, 768)

    def test_b64_json_and_2k_on_pro(self, connect: Any) -> None:
        c = connect("xai")
        body = {
            "model": "grok-imagine-image-pro",
            "prompt": "x",
            "resolution": "2k",
            "response_format": "b64_json",
        }
        response = c.post(body)
        assert response.status_code == 200, response.text
        (item,) = response.json()["data"]
        assert item["url"] is None
        assert b64_image(item["b64_json"]) == ("jpeg", 2048, 2048)
        assert response.json()["usage"]["cost_in_usd_ticks"] == 700_000_000

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ({"size": "1024x1024"}, "Argument not supported: size"),
            ({"style": "vivid"}, "Argument not supported: style"),
            ({"aspect_ratio": "5:4"}, "aspect_ratio"),
            ({"resolution": "4k"}, "resolution"),
            ({"resolution": "2k"}, "Resolution 2k is not supported by grok-imagine-image"),
            ({"n": 11}, "n must be between 1 and 10"),
            ({"response_format": "base64"}, "response_format"),
        ],
    )
    def test_rejections_use_code_error_shape(
        self, connect: Any, extra: dict[str, Any], message: str
    ) -> None:
        c = connect("xai")
        response = c.post({"model": "grok-imagine-image", "prompt": "x", **extra})
        assert response.status_code == 400
        payload = response.json()
        assert set(payload) == {"code", "error"}
        assert payload["code"] == "Client specified an invalid argument"
        assert message in payload["error"]

    def test_missing_prompt_is_422_plain_text(self, connect: Any) -> None:
        response = connect("xai").post({"model": "grok-imagine-image"})
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("text/plain")
        assert "missing field `prompt`" in response.text

    def test_unknown_fields_are_ignored(self, connect: Any) -> None:
        response = connect("xai").post({"prompt": "x", "seed": 3, "whatever": True})
        assert response.status_code == 200, response.text

    def test_auth(self, connect: Any) -> None:
        c = connect("xai")
        assert c.post({"prompt": "x"}, key=None).status_code == 401
        wrong = c.post({"prompt": "x"}, key="xai-wrong")
        assert wrong.status_code == 401
        assert set(wrong.json()) == {"code", "error"}

    def test_content_policy_variants(self, connect: Any) -> None:
        c = connect("xai")
        blocked = c.post({"prompt": "x [[fault:content_policy]]"})
        assert blocked.status_code == 400
        assert "moderation" in blocked.json()["error"]
        flagged = c.post({"prompt": "x [[fault:content_policy:respect_moderation]]"})
        assert flagged.status_code == 200
        assert flagged.json()["data"][0]["respect_moderation"] is False
        refused = c.post({"prompt": "x [[fault:content_policy:block_reason]]"})
        assert refused.status_code == 200
        assert refused.json()["data"] == []
        assert refused.json()["block_reason"]
        assert refused.json()["usage"]["cost_in_usd_ticks"] == 0

    def test_three_error_shapes(self, connect: Any) -> None:
        c = connect("xai")
        code_string = c.post({"prompt": "[[fault:provider_error:code_string]]"}).json()
        assert set(code_string) == {"code", "error"}
        assert isinstance(code_string["error"], str)
        envelope = c.post({"prompt": "[[fault:provider_error:envelope]]"}).json()
        assert set(envelope["error"]) == {"message", "type", "param", "code"}
        string = c.post({"prompt": "[[fault:provider_error:string]]"}).json()
        assert set(string) == {"error"}
        assert isinstance(string["error"], str)


# --------------------------------------------------------------------------------------------
# Together
# --------------------------------------------------------------------------------------------


class TestTogether:
    def test_width_height_base64_defaults_to_jpeg(self, connect: Any) -> None:
        body = {
            "model": "black-forest-labs/FLUX.1-schnell",
            "prompt": "x",
            "width": 768,
            "height": 512,
            "n": 4,
            "response_format": "base64",
            "steps": 4,
            "seed": 1,
        }
        response = connect("together").post(body)
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["object"] == "list"
        assert payload["model"] == body["model"]
        assert [item["index"] for item in payload["data"]] == [0, 1, 2, 3]
        for item in payload["data"]:
            assert item["type"] == "b64_json"
            assert b64_image(item["b64_json"]) == ("jpeg", 768, 512)

    def test_url_by_default_and_png(self, connect: Any) -> None:
        c = connect("together")
        response = c.post({"model": "m", "prompt": "x", "output_format": "png"})
        (item,) = response.json()["data"]
        assert item["type"] == "url"
        assert image_info(c.fetch(item["url"])) == ("png", 1024, 1024)

    @pytest.mark.parametrize(
        "extra",
        [
            {"n": 5},
            {"response_format": "b64_json"},
            {"steps": 51},
            {"width": "1024"},
            {"output_format": "webp"},
        ],
    )
    def test_rejections(self, connect: Any, extra: dict[str, Any]) -> None:
        response = connect("together").post({"model": "m", "prompt": "x", **extra})
        assert response.status_code == 400
        assert isinstance(response.json()["error"]["message"], str)

    def test_model_is_required(self, connect: Any) -> None:
        response = connect("together").post({"prompt": "x"})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "model"


# --------------------------------------------------------------------------------------------
# DeepInfra
# --------------------------------------------------------------------------------------------


class TestDeepInfra:
    def test_openai_route_b64_and_revised_prompt(self, connect: Any) -> None:
        c = connect("deepinfra")
        response = c.post(
            {"model": "black-forest-labs/FLUX-1-dev", "prompt": "an owl", "size": "640x480", "n": 2}
        )
        assert response.status_code == 200, response.text
        for item in response.json()["data"]:
            assert item["revised_prompt"] == "an owl"
            assert b64_image(item["b64_json"]) == ("png", 640, 480)

    def test_plain_v1_route_is_not_served(self, connect: Any) -> None:
        response = connect("deepinfra").post(
            {"model": "m", "prompt": "x"}, route="/v1/images/generations"
        )
        assert response.status_code == 404

    def test_error_shapes(self, connect: Any) -> None:
        c = connect("deepinfra")
        bad = c.post({"model": "m", "prompt": "x", "size": "big"})
        assert bad.status_code == 400
        assert bad.json() == {"error": {"message": bad.json()["error"]["message"]}}
        assert c.post({"prompt": "[[fault:provider_error:detail]]"}).json()["detail"]["error"]


# --------------------------------------------------------------------------------------------
# Gemini OpenAI-compatibility layer
# --------------------------------------------------------------------------------------------


class TestGemini:
    def test_imagen_png_and_gemini_jpeg(self, connect: Any) -> None:
        c = connect("gemini")
        imagen = c.post(
            {
                "model": "imagen-4.0-generate-001",
                "prompt": "x",
                "n": 2,
                "size": "1024x768",
                "response_format": "b64_json",
            }
        )
        assert imagen.status_code == 200, imagen.text
        assert [b64_image(i["b64_json"]) for i in imagen.json()["data"]] == [("png", 1024, 768)] * 2
        flash = c.post({"model": "gemini-2.5-flash-image", "prompt": "x"})
        assert b64_image(flash.json()["data"][0]["b64_json"]) == ("jpeg", 1024, 1024)
        assert "output_format" not in flash.json()  # the client has to sniff the bytes

    def test_unknown_field_is_a_list_error(self, connect: Any) -> None:
        response = connect("gemini").post(
            {"model": "imagen-4.0-generate-001", "prompt": "x", "quality": "hd"}
        )
        assert response.status_code == 400
        (entry,) = response.json()
        error = entry["error"]
        assert error["status"] == "INVALID_ARGUMENT"
        assert (
            error["message"]
            == 'Invalid JSON payload received. Unknown name "quality": Cannot find field.'
        )
        assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"

    @pytest.mark.parametrize("extra", [{"response_format": "url"}, {"n": 5}, {"size": "square"}])
    def test_rejections(self, connect: Any, extra: dict[str, Any]) -> None:
        response = connect("gemini").post(
            {"model": "imagen-4.0-generate-001", "prompt": "x", **extra}
        )
        assert response.status_code == 400
        assert response.json()[0]["error"]["code"] == 400

    def test_auth_errors(self, connect: Any) -> None:
        c = connect("gemini")
        assert c.post({"model": "m", "prompt": "x"}, key=None).status_code == 401
        wrong = c.post({"model": "m", "prompt": "x"}, key="AIza-wrong")
        assert wrong.status_code == 400
        assert "API key not valid" in wrong.json()[0]["error"]["message"]

    def test_filtered_image_is_simply_missing(self, connect: Any) -> None:
        response = connect("gemini").post({"model": "m", "prompt": "[[fault:content_policy]]"})
        assert response.status_code == 200
        assert response.json()["data"] == []


# --------------------------------------------------------------------------------------------
# OpenRouter images route
# --------------------------------------------------------------------------------------------


class TestOpenRouter:
    def test_ratio_b64_media_type_and_cost(self, connect: Any) -> None:
        body = {
            "model": "google/gemini-2.5-flash-image",
            "prompt": "x",
            "aspect_ratio": "16:9",
            "n": 2,
        }
        response = connect("openrouter").post(body)
        assert response.status_code == 200, response.text
        payload = response.json()
        for item in payload["data"]:
            assert item["media_type"] == "image/png"
            assert b64_image(item["b64_json"]) == ("png", 1344, 768)
        assert payload["usage"]["cost"] == pytest.approx(0.078)
        assert (
            payload["usage"]["completion_tokens_details"]["image_tokens"]
            == payload["usage"]["completion_tokens"]
        )

    def test_image_size_scales(self, connect: Any) -> None:
        body = {
            "model": "m",
            "prompt": "x",
            "aspect_ratio": "2:3",
            "image_size": "2K",
            "output_format": "jpeg",
        }
        item = connect("openrouter").post(body).json()["data"][0]
        assert item["media_type"] == "image/jpeg"
        assert b64_image(item["b64_json"]) == ("jpeg", 1664, 2496)

    @pytest.mark.parametrize(
        "extra",
        [{"size": "1024x1024"}, {"response_format": "url"}, {"aspect_ratio": "9:21"}, {"n": 5}],
    )
    def test_rejections(self, connect: Any, extra: dict[str, Any]) -> None:
        response = connect("openrouter").post({"model": "m", "prompt": "x", **extra})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == 400

    def test_auth_and_moderation(self, connect: Any) -> None:
        c = connect("openrouter")
        missing = c.post({"model": "m", "prompt": "x"}, key=None)
        assert missing.status_code == 401
        assert missing.json() == {"error": {"code": 401, "message": "No auth credentials found"}}
        flagged = c.post({"model": "m", "prompt": "x [[fault:content_policy]]"})
        assert flagged.status_code == 403
        assert flagged.json()["error"]["metadata"]["reasons"]


# --------------------------------------------------------------------------------------------
# vLLM-Omni
# --------------------------------------------------------------------------------------------


class TestVllmOmni:
    def test_any_size_extensions_and_unknown_openai_params(self, connect: Any) -> None:
        body = {
            "prompt": "x",
            "size": "1000x600",
            "n": 3,
            "negative_prompt": "blur",
            "num_inference_steps": 30,
            "guidance_scale": 4.5,
            "seed": 42,
            "quality": "hd",
            "style": "vivid",
            "background": "auto",
        }
        response = connect("vllm-omni").post(body, key=None)  # no --api-key: no auth
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["size"] == "1000x600"
        assert payload["output_format"] == "png"
        for item in payload["data"]:
            assert item["url"] is None
            assert item["revised_prompt"] is None
            assert b64_image(item["b64_json"]) == ("png", 1000, 600)

    def test_url_fails_validation_with_fastapi_detail(self, connect: Any) -> None:
        response = connect("vllm-omni").post({"prompt": "x", "response_format": "url"})
        assert response.status_code == 422
        (item,) = response.json()["detail"]
        assert item["loc"] == ["body", "response_format"]
        assert item["type"] == "value_error"
        assert "Only 'b64_json' or 'file'" in item["msg"]

    @pytest.mark.parametrize(
        ("body", "loc", "kind"),
        [
            ({"prompt": "x", "n": 11}, ["body", "n"], "less_than_equal"),
            (
                {"prompt": "x", "num_inference_steps": 0},
                ["body", "num_inference_steps"],
                "greater_than_equal",
            ),
            ({"n": 1}, ["body", "prompt"], "missing"),
        ],
    )
    def test_pydantic_422(
        self, connect: Any, body: dict[str, Any], loc: list[str], kind: str
    ) -> None:
        response = connect("vllm-omni").post(body)
        assert response.status_code == 422
        (item,) = response.json()["detail"]
        assert (item["loc"], item["type"]) == (loc, kind)

    def test_bad_size_string_is_400_detail(self, connect: Any) -> None:
        response = connect("vllm-omni").post({"prompt": "x", "size": "1024x"})
        assert response.status_code == 400
        assert response.json() == {
            "detail": "Invalid size format: '1024x'. "
            "Expected format: 'WIDTHxHEIGHT' (e.g., '1024x1024')."
        }

    def test_file_response_and_api_key(self, connect: Any) -> None:
        c = connect("vllm-omni")
        raw = c.post({"prompt": "x", "size": "320x200", "response_format": "file"})
        assert raw.headers["content-type"] == "image/png"
        assert image_info(raw.content) == ("png", 320, 200)
        wrong = c.post({"prompt": "x"}, key="not-it")
        assert (wrong.status_code, wrong.json()) == (401, {"error": "Unauthorized"})
        assert c.post({"prompt": "[[fault:server_error]]"}).status_code == 503


# --------------------------------------------------------------------------------------------
# LocalAI
# --------------------------------------------------------------------------------------------


class TestLocalAI:
    def test_urls_under_generated_images(self, connect: Any) -> None:
        c = connect("localai")
        response = c.post(
            {"prompt": "a cat|blurry", "size": "256x256", "step": 10, "n": 2}, key=None
        )
        assert response.status_code == 200, response.text
        payload = response.json()
        assert set(payload) == {"created", "id", "data"}
        for item in payload["data"]:
            assert item["url"].startswith(c.emu.url + "/generated-images/")
            assert item["url"].endswith(".png")
            assert image_info(c.fetch(item["url"])) == ("png", 256, 256)

    def test_b64_and_size_fallback(self, connect: Any) -> None:
        c = connect("localai")
        item = c.post({"prompt": "x", "size": "big", "response_format": "b64_json"}).json()["data"][
            0
        ]
        assert b64_image(item["b64_json"]) == ("png", 512, 512)

    def test_unparseable_size_is_500_envelope(self, connect: Any) -> None:
        response = connect("localai").post({"prompt": "x", "size": "axb"})
        assert response.status_code == 500
        assert "invalid value for 'size'" in response.json()["error"]["message"]


# --------------------------------------------------------------------------------------------
# SiliconFlow
# --------------------------------------------------------------------------------------------


class TestSiliconFlow:
    def test_images_url_timings_seed_and_trace_header(self, connect: Any) -> None:
        c = connect("siliconflow")
        body = {
            "model": "Kwai-Kolors/Kolors",
            "prompt": "x",
            "image_size": "1024x576",
            "batch_size": 2,
            "seed": 7,
        }
        response = c.post(body)
        assert response.status_code == 200, response.text
        payload = response.json()
        assert set(payload) == {"images", "timings", "seed"}
        assert payload["seed"] == 7
        assert response.headers["x-siliconcloud-trace-id"]
        assert len(payload["images"]) == 2
        for image in payload["images"]:
            assert image_info(c.fetch(image["url"])) == ("png", 1024, 576)

    @pytest.mark.parametrize(
        "extra", [{"batch_size": 5}, {"image_size": "1024*1024"}, {"num_inference_steps": 101}]
    )
    def test_rejections(self, connect: Any, extra: dict[str, Any]) -> None:
        response = connect("siliconflow").post({"model": "m", "prompt": "x", **extra})
        assert response.status_code == 400
        assert set(response.json()) == {"code", "message", "data"}


# --------------------------------------------------------------------------------------------
# shared machinery
# --------------------------------------------------------------------------------------------


def _valid_body(provider: str) -> dict[str, Any]:
    return {"model": "some-model", "prompt": "x"}


@pytest.mark.parametrize("provider", sorted(ROUTES))
def test_rate_limit_in_provider_shape_with_retry_after(connect: Any, provider: str) -> None:
    c = connect(provider)
    response = c.post({**_valid_body(provider), "prompt": "x [[fault:rate_limit:3]]"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()  # a body in the provider's shape, never empty


@pytest.mark.parametrize("provider", sorted(ROUTES))
def test_error_inside_http_200(connect: Any, provider: str) -> None:
    response = connect(provider).post(
        {**_valid_body(provider), "prompt": "[[fault:provider_error:in_200]]"}
    )
    assert response.status_code == 200
    assert "b64_json" not in response.text
    assert "url" not in response.text


def test_requests_are_recorded_and_emulator_faults_still_apply(connect: Any) -> None:
    c = connect("openrouter")
    c.emu.push_fault(Fault.http(502, "bad gateway"))
    assert c.post({"model": "m", "prompt": "x"}).status_code == 502
    assert c.post({"model": "m", "prompt": "x [[fault:http:503]]"}).status_code == 503
    assert c.post({"model": "m", "prompt": "x", "aspect_ratio": "4:5"}).status_code == 200
    recorded = c.emu.received_requests
    assert [r.path for r in recorded] == ["/api/v1/images"] * 3
    assert recorded[-1].body["aspect_ratio"] == "4:5"
    assert c.emu.stats().images_produced == 1


def test_unknown_shape_or_variant_is_reported(connect: Any) -> None:
    c = connect("together")
    response = c.post({"model": "m", "prompt": "[[fault:provider_error:nope]]"})
    assert response.status_code == 500
    assert "no error shape 'nope'" in response.json()["error"]["message"]


# --------------------------------------------------------------------------------------------
# the emulator's bodies against the vendored public ones (tests/data/providers)
# --------------------------------------------------------------------------------------------

VENDORED = Path(__file__).parent / "data" / "providers"


def _vendored(name: str) -> Any:
    return json.loads((VENDORED / name).read_text())


def test_vendored_files_are_all_listed_in_sources() -> None:
    listed = (VENDORED / "SOURCES.md").read_text()
    files = sorted(p.name for p in VENDORED.glob("*.json"))
    assert files
    for name in files:
        assert f"`{name}`" in listed


def test_xai_success_has_the_reference_keys(connect: Any) -> None:
    reference = _vendored("xai-images-generations-reference-example.json")
    payload = connect("xai").post({"prompt": "x"}).json()
    assert set(payload) == set(reference)
    assert set(payload["data"][0]) == set(reference["data"][0])
    assert set(payload["usage"]) == set(reference["usage"])


def test_openrouter_success_has_the_documented_keys(connect: Any) -> None:
    reference = _vendored("openrouter-images-response-litellm-docstring.json")
    payload = connect("openrouter").post({"model": "m", "prompt": "x"}).json()
    assert set(payload) == set(reference)
    assert set(payload["data"][0]) == set(reference["data"][0])
    assert set(payload["usage"]) == set(reference["usage"])


def test_together_success_has_the_reference_keys(connect: Any) -> None:
    reference = _vendored("together-images-generations-reference-example.json")
    payload = connect("together").post({"model": "m", "prompt": "x", "response_format": "base64"})
    assert set(payload.json()) == set(reference)
    assert set(payload.json()["data"][0]) == set(reference["data"][0])


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("gemini-openai-compat-unknown-field-deer-flow-1515.json", "thinking"),
        ("gemini-openai-compat-unknown-field-comfyui-newbie-3.json", "reasoning"),
    ],
)
def test_gemini_unknown_field_matches_live_bodies(connect: Any, name: str, field: str) -> None:
    live = _vendored(name)
    response = connect("gemini").post({"model": "imagen-4.0-generate-001", "prompt": "x", field: 1})
    assert response.status_code == live[0]["error"]["code"]
    emulated = response.json()
    assert emulated[0]["error"]["message"] == live[0]["error"]["message"]
    assert emulated[0]["error"]["status"] == live[0]["error"]["status"]
    assert emulated[0]["error"]["details"][0]["@type"] == live[0]["error"]["details"][0]["@type"]


def test_vllm_errors_have_the_documented_forms(connect: Any) -> None:
    documented = _vendored("vllm-omni-image-generation-errors-docs.json")
    c = connect("vllm-omni")
    bad_size = c.post({"prompt": "x", "size": "1024x"})
    assert bad_size.json() == documented["400"]
    missing = c.post({"n": 1}).json()["detail"][0]
    assert missing["loc"] == documented["422"]["detail"][0]["loc"]
    assert {"loc", "msg", "type"} <= set(missing)

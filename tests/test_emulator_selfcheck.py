"""Self-checks for the test-support modules ``tests/emulator.py`` and ``tests/spec_validator.py``.

The validator tables restate the API's rules (the OpenAI API reference, docs/models.md, the
error bodies in tests/data/recorded) so a regression in either module is
caught before it silently skews the package's conformance suites.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.emulator import Emulator, Fault, encode_image
from tests.spec_validator import ApiError, is_valid, model_family, validate_request

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Parse a PNG, asserting the signature and every chunk CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: list[tuple[bytes, bytes]] = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload), kind
        chunks.append((kind, payload))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1][0] == b"IEND"
    return chunks


def _png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", _png_chunks(data)[0][1][:8])
    return width, height


def _generate(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/images/generations", json=body)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(deployments={"painter": "dall-e-3", "img2": "gpt-image-2"}) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    with httpx.Client(base_url=emu.base_url, headers=headers, timeout=10) as http:
        yield http


# --------------------------------------------------------------------------------------------
# emulator over real loopback HTTP
# --------------------------------------------------------------------------------------------


@pytest.mark.emulator
@pytest.mark.enable_socket
@pytest.mark.allow_hosts(["127.0.0.1"])
class TestEmulator:
    def test_dalle3_url_success_and_file_download(
        self, emu: Emulator, client: httpx.Client
    ) -> None:
        response = _generate(
            client, {"model": "dall-e-3", "prompt": "an otter", "size": "1792x1024"}
        )
        assert response.status_code == 200
        assert response.headers["x-request-id"].startswith("req_")
        payload = response.json()
        assert set(payload) == {"created", "data"}  # [API] nothing else for DALL·E
        (item,) = payload["data"]
        assert set(item) == {"revised_prompt", "url"}
        assert "se=" in item["url"]
        assert item["url"].startswith(emu.url + "/files/")
        image = httpx.get(item["url"], timeout=10)
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert _png_size(image.content) == (1792, 1024)

    def test_gpt_image_2_custom_size_b64_png(self, client: httpx.Client) -> None:
        response = _generate(
            client, {"model": "gpt-image-2", "prompt": "a fox", "size": "1920x1088"}
        )
        assert response.status_code == 200
        payload = response.json()
        assert list(payload) == [
            "created",
            "background",
            "data",
            "output_format",
            "quality",
            "size",
            "usage",
        ]
        assert payload["size"] == "1920x1088"
        assert payload["quality"] == "high"  # auto resolved, n=1 [API]
        assert set(payload["usage"]) == {
            "input_tokens",
            "input_tokens_details",
            "output_tokens",
            "output_tokens_details",
            "total_tokens",
        }
        png = base64.b64decode(payload["data"][0]["b64_json"], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert _png_size(png) == (1920, 1088)

    def test_gpt_image_formats_are_real_files(self, client: httpx.Client) -> None:
        for fmt, magic in (("jpeg", b"\xff\xd8\xff"), ("webp", b"RIFF")):
            body = {"model": "gpt-image-1", "prompt": "x", "output_format": fmt}
            response = _generate(client, body)
            assert response.status_code == 200, response.text
            data = base64.b64decode(response.json()["data"][0]["b64_json"])
            assert data.startswith(magic)

    def test_response_format_on_gpt_image_1_is_unknown_parameter(
        self, client: httpx.Client
    ) -> None:
        body = {"model": "gpt-image-1", "prompt": "x", "response_format": "b64_json"}
        response = _generate(client, body)
        assert response.status_code == 400
        assert response.json() == {  # [errors] verbatim
            "error": {
                "message": "Unknown parameter: 'response_format'.",
                "type": "invalid_request_error",
                "param": "response_format",
                "code": "unknown_parameter",
            }
        }
        assert response.headers["x-request-id"]

    def test_dalle3_n2_rejected(self, client: httpx.Client) -> None:
        response = _generate(client, {"model": "dall-e-3", "prompt": "x", "n": 2})
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"

    def test_queued_faults_fifo(self, emu: Emulator, client: httpx.Client) -> None:
        emu.push_fault(Fault.rate_limit(retry_after=2, retry_after_ms=1500), Fault.server_error())
        body = {"model": "gpt-image-1", "prompt": "x"}
        first = _generate(client, body)
        assert first.status_code == 429
        assert first.headers["retry-after"] == "2"
        assert first.headers["retry-after-ms"] == "1500"
        assert first.json()["error"]["code"] == "rate_limit_exceeded"
        assert _generate(client, body).status_code == 500
        assert _generate(client, body).status_code == 200
        assert emu.faults == []

    def test_connection_reset(self, emu: Emulator, client: httpx.Client) -> None:
        emu.faults.append(Fault.connection_reset())
        with pytest.raises(httpx.TransportError):
            _generate(client, {"model": "dall-e-2", "prompt": "x"})
        assert _generate(client, {"model": "dall-e-2", "prompt": "x"}).status_code == 200

    @pytest.mark.parametrize(
        ("marker", "check"),
        [
            ("empty_data", lambda r: r.json()["data"] == []),
            ("fewer_images:2", lambda r: len(r.json()["data"]) == 1),
            ("error_in_200", lambda r: r.status_code == 200 and "error" in r.json()),
            ("error_without_envelope", lambda r: set(r.json()) == {"message"}),
            ("cloudflare_1015", lambda r: r.text == "error code: 1015"),
            ("bad_gateway", lambda r: r.status_code == 502 and "<html>" in r.text),
            (
                "moderation_blocked:output",
                lambda r: r.json()["error"]["code"] == "moderation_blocked",
            ),
            ("billing_hard_limit", lambda r: r.status_code == 400),
        ],
    )
    def test_prompt_markers(self, client: httpx.Client, marker: str, check: Any) -> None:
        body = {"model": "gpt-image-1", "prompt": f"cat [[fault:{marker}]]", "n": 3}
        assert check(_generate(client, body))

    def test_invalid_json_and_truncated_base64(self, client: httpx.Client) -> None:
        broken = _generate(client, {"model": "gpt-image-1", "prompt": "[[fault:invalid_json]]"})
        assert broken.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(broken.content)
        cut = _generate(client, {"model": "gpt-image-1", "prompt": "[[fault:truncated_base64]]"})
        with pytest.raises(binascii.Error):
            base64.b64decode(cut.json()["data"][0]["b64_json"], validate=True)

    def test_url_instead_of_b64(self, client: httpx.Client) -> None:
        body = {"model": "gpt-image-1", "prompt": "[[fault:url_instead_of_b64]]"}
        (item,) = _generate(client, body).json()["data"]
        assert set(item) == {"url"}
        assert httpx.get(item["url"], timeout=10).content.startswith(b"\x89PNG")

    def test_wrong_and_missing_key(self, emu: Emulator) -> None:
        url = f"{emu.base_url}/images/generations"
        body = {"model": "gpt-image-1", "prompt": "x"}
        wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer fake_key"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == 'Bearer realm="OpenAI API"'
        assert wrong.json() == {  # [errors] recorded verbatim
            "error": {
                "message": "Incorrect API key provided: fake_key. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        assert len(wrong.content) == 237  # recorded Content-Length (indent-2 body)
        missing = httpx.post(url, json=body)
        assert missing.status_code == 401

    def test_azure_routes(self, emu: Emulator) -> None:
        key = {"api-key": emu.api_key}
        dep = f"{emu.url}/openai/deployments/painter/images/generations"
        ok = httpx.post(
            dep, params={"api-version": "2024-10-21"}, headers=key, json={"prompt": "x"}
        )
        assert ok.status_code == 200
        item = ok.json()["data"][0]
        assert {"url", "revised_prompt", "content_filter_results"} <= set(item)
        assert httpx.post(dep, headers=key, json={"prompt": "x"}).status_code == 404
        v1 = f"{emu.azure_v1_base_url}/images/generations"
        body = {"model": "img2", "prompt": "x", "size": "1536x864"}
        assert httpx.post(v1, headers=key, json=body).json()["size"] == "1536x864"
        bad = httpx.post(v1, headers={"api-key": "nope"}, json=body)
        assert bad.status_code == 401
        assert emu.received_bodies[-1]["model"] == "gpt-image-2"

    def test_streaming_events(self, client: httpx.Client) -> None:
        body = {"model": "gpt-image-1", "prompt": "x", "stream": True, "partial_images": 2}
        response = _generate(client, body)
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
        assert events == [
            "image_generation.partial_image",
            "image_generation.partial_image",
            "image_generation.completed",
        ]

    def test_many_concurrent_connections(self, emu: Emulator) -> None:
        emu.latency_s = 0.5
        clients = 120
        barrier = threading.Barrier(clients)
        statuses: list[int] = []
        lock = threading.Lock()
        pool = httpx.Client(
            base_url=emu.base_url,
            headers={"Authorization": f"Bearer {emu.api_key}"},
            limits=httpx.Limits(max_connections=clients),
            timeout=30,
        )

        def worker() -> None:
            barrier.wait()
            response = _generate(pool, {"model": "gpt-image-1", "prompt": "x"})
            with lock:
                statuses.append(response.status_code)

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        pool.close()
        assert statuses == [200] * clients
        stats = emu.stats()
        assert stats.peak_connections >= 100
        assert stats.images_produced == clients
        assert all(is_valid(body) for body in emu.received_bodies)
        deadline = time.monotonic() + 5
        while emu.open_connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert emu.open_connections == 0
        assert emu.internal_errors == []

    def test_stop_interrupts_sleeping_handler(self) -> None:
        emulator = Emulator(latency_s=60).start()
        outcome: list[str] = []

        def call() -> None:
            try:
                httpx.post(
                    f"{emulator.base_url}/images/generations",
                    json={"prompt": "x"},
                    headers={"Authorization": f"Bearer {emulator.api_key}"},
                    timeout=30,
                )
                outcome.append("answered")
            except httpx.TransportError:
                outcome.append("dropped")

        thread = threading.Thread(target=call)
        thread.start()
        deadline = time.monotonic() + 5
        while emulator.stats().generation_requests == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        emulator.stop()
        thread.join(timeout=10)
        assert time.monotonic() - started < 5
        assert outcome  # the client was released either way
        assert not emulator.running

    def test_server_survives_socket_guard(self, emu: Emulator) -> None:
        """A long-lived emulator keeps accepting while pytest-socket guards socket.socket."""
        import socket as socket_module

        import pytest_socket

        real_socket = socket_module.socket
        pytest_socket.disable_socket(allow_unix_socket=True)
        try:
            with real_socket(socket_module.AF_INET, socket_module.SOCK_STREAM) as raw:
                raw.settimeout(5)
                raw.connect(("127.0.0.1", emu.port))
                raw.sendall(b"GET /files/none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert raw.recv(12) == b"HTTP/1.1 404"
        finally:
            pytest_socket.enable_socket()


# --------------------------------------------------------------------------------------------
# image encoders (no sockets)
# --------------------------------------------------------------------------------------------


def test_png_encoder_valid_and_padded() -> None:
    png = encode_image("png", 300, 200, transparent=True, tag="t")
    assert _png_size(png) == (300, 200)
    padded = encode_image("png", 10, 10, pad_to_bytes=2_000_000)
    assert 1_900_000 < len(padded) < 2_100_000
    _png_chunks(padded)


def test_jpeg_and_webp_structure() -> None:
    jpeg = encode_image("jpeg", 640, 480)
    assert jpeg.startswith(b"\xff\xd8\xff\xe0")
    assert jpeg.endswith(b"\xff\xd9")
    sof = jpeg.index(b"\xff\xc0")
    assert struct.unpack(">HH", jpeg[sof + 5 : sof + 9]) == (480, 640)
    webp = encode_image("webp", 640, 480)
    assert webp[:4] == b"RIFF"
    assert webp[8:16] == b"WEBPVP8L"
    assert struct.unpack("<I", webp[4:8])[0] == len(webp) - 8
    bits = int.from_bytes(webp[21:25], "little")
    assert webp[20] == 0x2F
    assert ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1) == (640, 480)


# --------------------------------------------------------------------------------------------
# spec_validator tables
# --------------------------------------------------------------------------------------------

_VALID: list[dict[str, Any]] = [
    {"prompt": "x"},  # model defaults to dall-e-2 [API]
    {"model": None, "prompt": "x", "size": "256x256", "n": 10},
    {"model": "dall-e-2", "prompt": "x", "response_format": "b64_json", "user": "u1"},
    {"model": "dall-e-2", "prompt": "x", "quality": None, "style": None},  # null == not sent
    {"model": "dall-e-2", "prompt": "p" * 1000},
    {"model": "dall-e-3", "prompt": "x", "quality": "hd", "style": "natural", "n": 1},
    {"model": "dall-e-3", "prompt": "x", "size": "1024x1792", "response_format": "url"},
    {"model": "dall-e-3", "prompt": "p" * 4000},
    {"model": "gpt-image-1", "prompt": "x", "size": "auto", "quality": "auto", "n": 10},
    {"model": "gpt-image-1-mini", "prompt": "x", "output_format": "jpeg", "output_compression": 50},
    {"model": "gpt-image-1.5", "prompt": "x", "background": "transparent", "output_format": "webp"},
    {"model": "gpt-image-1.5-2025-12-16", "prompt": "x", "moderation": "low"},
    {"model": "chatgpt-image-latest", "prompt": "x", "background": "transparent"},
    {"model": "gpt-image-1", "prompt": "x", "output_compression": 100},  # png default ok at 100
    {"model": "gpt-image-1", "prompt": "x", "stream": True, "partial_images": 3},
    {"model": "gpt-image-1", "prompt": "x", "partial_images": 0},
    {"model": "gpt-image-1", "prompt": "p" * 32000},
    {"model": "gpt-image-2", "prompt": "x", "size": "1920x1088"},
    {"model": "gpt-image-2-2026-04-21", "prompt": "x", "size": "3840x2160"},
    {"model": "gpt-image-2", "prompt": "x", "size": "2160x3840"},
    {"model": "gpt-image-2", "prompt": "x", "size": "1280x3840"},  # exactly 1:3
    {"model": "gpt-image-2", "prompt": "x", "size": "816x816"},  # 665,856 px
    {"model": "gpt-image-2", "prompt": "x", "size": "1536x864"},
    {"model": "gpt-image-2", "prompt": "x", "size": "auto"},
    {"model": "gpt-image-2", "prompt": "x", "size": "1024x1536", "quality": "low"},
]


@pytest.mark.parametrize("body", _VALID)
def test_validator_accepts(body: dict[str, Any]) -> None:
    assert validate_request(body) is None


_Case = tuple[dict[str, Any], int, str | None, str | None]
_MISSING = object()


def _case(
    model: str | None, code: str | None, param: str | None, status: int = 400, **fields: Any
) -> _Case:
    """(body, status, code, param); ``prompt`` defaults to "x", ``prompt=_MISSING`` drops it."""
    body: dict[str, Any] = {} if model is None else {"model": model}
    body["prompt"] = "x"
    body.update(fields)
    if body["prompt"] is _MISSING:
        del body["prompt"]
    return body, status, code, param


D2, D3, G1, G2 = "dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-2"
UNKNOWN, BAD_VALUE, BAD_TYPE = "unknown_parameter", "invalid_value", "invalid_type"

_INVALID: list[_Case] = [
    # schema level [API]
    _case(D2, UNKNOWN, "seed", seed=1),
    _case(D2, UNKNOWN, "seed", seed=None),
    _case(D2, "missing_required_parameter", "prompt", prompt=_MISSING),
    _case(D2, "empty_string", "prompt", prompt="   "),
    _case(D2, BAD_TYPE, "prompt", prompt=None),
    _case(D2, BAD_TYPE, "prompt", prompt=5),
    _case(D2, BAD_TYPE, "user", user=None),
    _case(D2, BAD_TYPE, "n", n=True),
    _case(D2, BAD_TYPE, "n", n=1.0),
    _case(D2, "integer_below_min_value", "n", n=0),
    _case(G1, "integer_above_max_value", "n", n=11),
    _case(G1, BAD_TYPE, "stream", stream="yes"),
    # models [API, models]
    _case("dall-e-4", "model_not_found", None, 404),
    _case("gpt-image-2.5-sunburst", "model_not_found", None, 404),
    _case("gpt-image-2-2026-02-30", "model_not_found", None, 404),
    # dall-e-2 / dall-e-3 [models, errors]
    _case(D2, UNKNOWN, "quality", quality="standard"),
    _case(D2, UNKNOWN, "style", style="vivid"),
    _case(None, UNKNOWN, "output_format", output_format="png"),  # no model -> dall-e-2
    _case(D3, UNKNOWN, "stream", stream=False),
    _case(D3, UNKNOWN, "moderation", moderation="low"),
    _case(D3, None, "n", n=2),
    _case(D3, BAD_VALUE, "quality", quality="auto"),
    _case(D3, BAD_VALUE, "quality", quality="high"),
    _case(D3, BAD_VALUE, "style", style="cartoon"),
    _case(D2, BAD_VALUE, "response_format", response_format="base64"),
    _case(D2, "invalid_size", None, size="auto"),
    _case(D2, "invalid_size", None, size="1792x1024"),
    _case(D3, "invalid_size", None, size="512x512"),
    _case(D3, None, None, prompt="p" * 4001),
    # GPT image [models, errors]
    _case(G1, "string_above_max_length", "prompt", prompt="p" * 32001),
    _case(G1, UNKNOWN, "response_format", response_format="url"),
    _case(G2, UNKNOWN, "style", style="vivid"),
    _case(G1, BAD_VALUE, "quality", quality="hd"),
    _case(G1, BAD_VALUE, "size", size="1792x1024"),
    _case(G1, BAD_VALUE, "size", size="1920x1088"),
    _case(G1, BAD_VALUE, "output_format", output_format="gif"),
    _case(G1, BAD_VALUE, "output_compression", output_compression=50),
    _case(G1, BAD_VALUE, "output_compression", output_format="png", output_compression=0),
    _case(
        G1,
        "integer_above_max_value",
        "output_compression",
        output_format="jpeg",
        output_compression=101,
    ),
    _case(
        G1,
        "integer_below_min_value",
        "output_compression",
        output_format="webp",
        output_compression=-1,
    ),
    _case(G1, BAD_VALUE, "background", background="transparent", output_format="jpeg"),
    _case(G1, BAD_VALUE, "background", background="white"),
    _case(G1, BAD_VALUE, "moderation", moderation="high"),
    _case(G1, BAD_VALUE, "partial_images", partial_images=2),
    _case(G1, "integer_above_max_value", "partial_images", stream=True, partial_images=4),
    # gpt-image-2 custom sizes [models]
    _case(G2, BAD_VALUE, "size", size="1920x1080"),  # 1080 not a multiple of 16
    _case(G2, BAD_VALUE, "size", size="4096x2160"),  # edge > 3840
    _case(G2, BAD_VALUE, "size", size="3840x1264"),  # ratio > 3:1
    _case(G2, BAD_VALUE, "size", size="3840x2176"),  # > 8,294,400 px
    _case(G2, BAD_VALUE, "size", size="512x512"),  # < 655,360 px
    _case(G2, BAD_VALUE, "size", size="800x800"),  # 640,000 px
    _case(G2, BAD_VALUE, "size", size="1024X1024"),
    _case(G2, BAD_VALUE, "size", size="01024x1024"),
    _case(G2, BAD_VALUE, "size", size="1024x1024 "),
]


@pytest.mark.parametrize(("body", "status", "code", "param"), _INVALID)
def test_validator_rejects(
    body: dict[str, Any], status: int, code: str | None, param: str | None
) -> None:
    error = validate_request(body)
    assert isinstance(error, ApiError)
    assert (error.status, error.code, error.param) == (status, code, param)
    assert set(error.body) == {"error"}
    assert error.message
    assert not is_valid(body)


def test_validator_verbatim_bodies() -> None:
    """[errors] bodies recorded or reported verbatim."""
    quality_d2 = validate_request({"model": "dall-e-2", "prompt": "x", "quality": "standard"})
    assert quality_d2 == ApiError(
        400,
        {
            "error": {
                "message": "Unknown parameter: 'quality'.",
                "type": "invalid_request_error",
                "param": "quality",
                "code": "unknown_parameter",
            }
        },
    )
    quality_gpt = validate_request({"model": "gpt-image-1", "prompt": "x", "quality": "standard"})
    assert quality_gpt is not None
    assert quality_gpt.body == {
        "error": {
            "message": "Invalid value: 'standard'. Supported values are: 'low', 'medium', "
            "'high', and 'auto'.",
            "type": "invalid_request_error",
            "param": "quality",
            "code": "invalid_value",
        }
    }
    size_gpt = validate_request({"model": "gpt-image-1", "prompt": "x", "size": "1254x836"})
    assert size_gpt is not None
    assert size_gpt.message == (
        "Invalid value: '1254x836'. Supported values are: '1024x1024', '1024x1536', "
        "'1536x1024', and 'auto'."
    )
    size_d3 = validate_request({"model": "dall-e-3", "prompt": "x", "size": "256x256"})
    assert size_d3 is not None
    assert size_d3.body == {
        "error": {
            "code": "invalid_size",
            "message": "The size is not supported by this model.",
            "param": None,
            "type": "invalid_request_error",
        }
    }
    long_d2 = validate_request({"model": "dall-e-2", "prompt": "p" * 1192})
    assert long_d2 is not None
    assert long_d2.message == (
        "Prompt must be length 1000 or less. Your prompt length is 1192. "
        "Please reduce your prompt length."
    )


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("dall-e-2", "dall-e-2"),
        ("dall-e-3", "dall-e-3"),
        ("gpt-image-1", "gpt-image-1"),
        ("gpt-image-1-mini", "gpt-image-1"),
        ("gpt-image-1.5", "gpt-image-1"),
        ("gpt-image-1.5-2025-12-16", "gpt-image-1"),
        ("chatgpt-image-latest", "gpt-image-1"),
        ("gpt-image-2", "gpt-image-2"),
        ("gpt-image-2-2026-04-21", "gpt-image-2"),
        ("gpt-image-2-2027-01-31", "gpt-image-2"),
        ("gpt-image-2.6-flare", None),
        ("gpt-image-3", None),
        ("DALL-E-3", None),
    ],
)
def test_model_family(model: str, family: str | None) -> None:
    assert model_family(model) == family

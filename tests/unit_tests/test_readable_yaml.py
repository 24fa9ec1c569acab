"""The cassette format: recording with the suite's configuration writes plain YAML whose JSON
bodies are indented text, and the cassette replays the same answer."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import vcr
import yaml

from tests import readable_yaml
from tests.emulator import encode_image
from tests.readable_yaml import ReadableYamlSerializer, pretty_json

BIG_PNG = encode_image("png", 64, 64, pad_to_bytes=50_000)  # shrunk when recorded


def _api(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    data = [{"b64_json": base64.b64encode(BIG_PNG).decode(), "revised_prompt": body["prompt"]}]
    return httpx.Response(200, json={"created": 1, "data": data})


def _post(client: httpx.Client) -> httpx.Response:
    return client.post(
        "http://images.test/v1/images/generations",
        json={"model": "gpt-image-1", "prompt": "a kite"},
        headers={"authorization": "Bearer sk-live-secret-0123456789"},
    )


def _cassette(vcr_config: dict[str, Any], tmp_path: Path, mode: str) -> Any:
    settings = dict(vcr_config)
    settings.pop("allow_playback_repeats", None)
    recorder = vcr.VCR(**settings, cassette_library_dir=str(tmp_path))
    recorder.register_serializer(readable_yaml.NAME, ReadableYamlSerializer)
    return recorder.use_cassette("roundtrip", record_mode=mode)


def test_recorded_cassette_is_readable_and_replays(
    vcr_config: dict[str, Any], tmp_path: Path
) -> None:
    with (
        _cassette(vcr_config, tmp_path, "all"),
        httpx.Client(transport=httpx.MockTransport(_api)) as client,
    ):
        assert len(_post(client).json()["data"][0]["b64_json"]) > 50_000  # live: full size

    text = (tmp_path / "roundtrip.yaml").read_text(encoding="utf-8")
    assert '"prompt": "a kite"' in text  # the request, as indented JSON
    assert '"revised_prompt": "a kite"' in text  # the response too
    assert "!!binary" not in text
    assert "sk-live-secret" not in text
    (interaction,) = yaml.safe_load(text)["interactions"]
    assert interaction["request"]["headers"]["authorization"] == ["PLACEHOLDER"]
    stored = interaction["response"]["body"]["string"]
    assert stored.startswith("{\n  ")
    assert interaction["response"]["headers"]["content-length"] == [str(len(stored.encode()))]
    image = base64.b64decode(json.loads(stored)["data"][0]["b64_json"])
    assert image.startswith(b"\x89PNG")
    assert len(image) < 200  # shrunk to 1x1

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("replay must not reach the transport")

    with (
        _cassette(vcr_config, tmp_path, "none"),
        httpx.Client(transport=httpx.MockTransport(refuse)) as client,
    ):
        assert _post(client).json() == json.loads(stored)  # the stored, shrunk answer


def test_pretty_json_leaves_other_text_alone() -> None:
    assert pretty_json('{"a": [1, 2]}') == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert pretty_json("error code: 1015") == "error code: 1015"
    assert pretty_json('"just a string"') == '"just a string"'

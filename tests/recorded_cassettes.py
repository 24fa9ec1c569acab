"""vcrpy cassettes made from the real recordings in ``tests/data/recorded``.

Each cassette in ``cassettes/recorded/`` holds one or more exchanges that a real client had
with the OpenAI Images API (see ``tests/data/recorded/SOURCES.md``), converted to vcrpy's
format by this module: bodies decoded (gunzipped, Ruby ``!binary`` unwrapped), account and
transfer headers dropped, organization ids in image URLs replaced by ``org-REDACTED`` (the
same way in a response and in the download of its URL), and written by
``tests/readable_yaml.py``. The images in them are as recorded: the 1x1 PNG the openai-dotnet
proxy substitutes, a truncated value, or the 1x1 PNG that replaced a download when it was
vendored. The tool is replayed against them in ``tests/integration_tests/test_recorded.py``.

Regenerate after changing :data:`CASSETTES` or the data (``test_recorded.py`` fails while a
committed cassette differs from what this module makes)::

    .venv/bin/python -m tests.recorded_cassettes
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from vcr.request import Request
from vcr.serialize import serialize
from vcr.serializers import compat

from tests.conformance_data import RecordedExchange, exchange, ruby_vcr_interaction
from tests.readable_yaml import ReadableYamlSerializer

CASSETTE_DIR = Path(__file__).resolve().parents[1] / "cassettes" / "recorded"

CASSETTES: dict[str, tuple[str, ...]] = {
    # dall-e-2, n=2, response_format url, 256x256: one request, two URLs.
    "dall-e-2_two_urls": ("openai-dotnet-1e6e3ddc/GenerationOfMultipleImagesWorks.json#0",),
    # dall-e-3 default request: revised_prompt + url.
    "dall-e-3_revised_prompt": ("openai-dotnet-1e6e3ddc/BasicGenerationWorks.json#0",),
    # Two dall-e-3 answers to the same prompt: one per request of a fan-out of n=2.
    "dall-e-3_two_answers": (
        "openai-dotnet-1e6e3ddc/BasicGenerationWorks.json#0",
        "openai-dotnet-1e6e3ddc/GenerationWithOptionsWorks.json#0",
    ),
    # dall-e-3, then the client's GET of the returned image URL (the PNG is shrunk).
    "dall-e-3_download": (
        "ruby_llm/image_basic_functionality_openai_dall-e-3_can_paint_images.yml#0",
        "ruby_llm/image_basic_functionality_openai_dall-e-3_can_paint_images.yml#1",
    ),
    # gpt-image-1 with every default: b64_json, usage, resolved size/quality/background.
    "gpt-image-1_defaults": ("openai-dotnet-b3b4bbbc/BasicGenerationWorks.json#0",),
    # gpt-image-1, n=2, 1024x1024 in one request.
    "gpt-image-1_two_images": ("openai-dotnet-b3b4bbbc/GenerationOfMultipleImagesWorks.json#0",),
    # gpt-image-1 whose b64_json was cut short when vendored: a damaged image.
    "gpt-image-1_truncated_image": (
        "ruby_llm/image_basic_functionality_openai_gpt-image-1_can_paint_images.yml#0",
    ),
    # 401 invalid_api_key, from two clients.
    "gpt-image-1_wrong_key": ("openai-dotnet-b3b4bbbc/GenerateImageCanParseServiceError.json#0",),
    "dall-e-3_wrong_key": (
        "ruby_llm/instrumentation_image_instrumentation_emits_paint_image_ruby_llm_event.yml#0",
    ),
    # dall-e-2 without `quality`, accepted in March 2026 (the same request with
    # `quality: standard` was refused with 400 unknown_parameter minutes before).
    "dall-e-2_without_quality": ("openllmetry/test_image_gen_metrics.yaml#3",),
}
"""Cassette name -> the recorded exchanges it holds, in order (``file#interaction``)."""

_DROP_HEADERS = {
    "openai-organization",
    "openai-project",
    "set-cookie",
    "x-request-id",
    "www-authenticate",
    "content-length",
    "content-encoding",
    "transfer-encoding",
}


def _interaction(source: str) -> tuple[Request, dict[str, Any]]:
    """Any recorded interaction, including a non-image one (the ruby_llm blob GET), as a
    vcrpy request and response."""
    try:
        ex: RecordedExchange | None = exchange(source)
    except KeyError:
        ex = None
    if ex is not None:
        assert ex.uri is not None, source
        request = Request(
            "POST",
            ex.uri,
            json.dumps(ex.request_body),
            {"content-type": "application/json"},
        )
        return request, _response(ex.status, ex.response_headers, ex.response_body)
    # Only Ruby VCR files hold the other interactions these cassettes use.
    recorded = ruby_vcr_interaction(source)
    req, resp = recorded["request"], recorded["response"]
    request = Request(req["method"].upper(), req["uri"], req["body"].get("string") or None, {})
    headers = {str(k).lower(): str(v[0]) for k, v in (resp.get("headers") or {}).items() if v}
    return request, _response(resp["status"]["code"], headers, resp["body"]["string"])


def _response(status: int, headers: dict[str, str], body: bytes | str) -> dict[str, Any]:
    return {
        "status": {"code": status, "message": ""},
        "headers": {k: [v] for k, v in headers.items() if k not in _DROP_HEADERS},
        "body": {"string": body.encode("utf-8") if isinstance(body, str) else body},
    }


_ORGANIZATION = re.compile(r"\borg-[A-Za-z0-9]{20,}")


def render(name: str) -> str:
    """The text of cassette ``name``."""
    pairs = [_interaction(source) for source in CASSETTES[name]]
    cassette = {"requests": [r for r, _ in pairs], "responses": [r for _, r in pairs]}
    return _ORGANIZATION.sub("org-REDACTED", str(serialize(cassette, ReadableYamlSerializer)))


def path(name: str) -> Path:
    return CASSETTE_DIR / f"{name}.yaml"


def write_all() -> list[Path]:
    """(Re)write every cassette; delete the ones no longer listed."""
    CASSETTE_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CASSETTES:
        path(name).write_text(render(name), encoding="utf-8")
        written.append(path(name))
    for stale in set(CASSETTE_DIR.glob("*.yaml")) - set(written):
        stale.unlink()
    return written


def loaded(name: str) -> list[dict[str, Any]]:
    """The interactions of a committed cassette, bodies as vcrpy replays them."""
    data = ReadableYamlSerializer.deserialize(path(name).read_text(encoding="utf-8"))
    return [compat.convert_to_bytes(i) for i in data["interactions"]]


if __name__ == "__main__":
    for written in write_all():
        print(written.relative_to(CASSETTE_DIR.parents[1]))

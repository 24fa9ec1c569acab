"""ImagesClient.edit / aedit over httpx.MockTransport: the multipart body, the edits URL
beside the generations one (OpenAI and Azure), retries that resend the same bytes, and the
answers read as a generation's (JSON or an ``image_edit.*`` event stream)."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from langchain_imagegen.client import FileField
from langchain_imagegen.endpoint import Endpoint
from langchain_imagegen.errors import ConfigurationError, ContentPolicyError
from langchain_imagegen.retry import RetryPolicy
from langchain_imagegen.stream_events import PartialImage
from tests.conftest import TINY_PNG_B64
from tests.fake_time import FakeTime
from tests.unit_tests.test_client import KEY, OK, Script, _client, _json

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MASK = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32
FILES: list[FileField] = [
    ("image[]", ("a.png", PNG, "image/png")),
    ("image[]", ("b.png", PNG + b"b", "image/png")),
    ("mask", ("mask.png", MASK, "image/png")),
]
FIELDS: dict[str, Any] = {"model": "gpt-image-1", "prompt": "make it bluer", "n": 2}


def _parts(request: httpx.Request) -> list[tuple[str, str | None, bytes]]:
    """``(field name, filename, payload)`` of each part of a multipart request."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    parts = []
    for part in message.iter_parts():
        disposition = part.get("content-disposition")
        name = disposition.params["name"]
        payload = part.get_payload(decode=True)
        parts.append((name, disposition.params.get("filename"), payload))
    return parts


def test_an_edit_is_a_multipart_post_to_images_edits() -> None:
    script = Script(_json(200, OK))
    client = _client(script)

    response = client.edit(FIELDS, FILES)

    (request,) = script.requests
    assert request.url == "https://api.openai.com/v1/images/edits"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert _parts(request) == [
        ("model", None, b"gpt-image-1"),
        ("prompt", None, b"make it bluer"),
        ("n", None, b"2"),
        ("image[]", "a.png", PNG),
        ("image[]", "b.png", PNG + b"b"),
        ("mask", "mask.png", MASK),
    ]
    assert response.images[0].b64_json == OK["data"][0]["b64_json"]


async def test_aedit_sends_the_same_body() -> None:
    script = Script(_json(200, OK))
    client = _client(script)

    await client.aedit(FIELDS, FILES)

    (request,) = script.requests
    assert request.url.path == "/v1/images/edits"
    assert [name for name, _, _ in _parts(request)] == [
        "model",
        "prompt",
        "n",
        "image[]",
        "image[]",
        "mask",
    ]


def test_a_retried_edit_sends_the_same_bytes_again() -> None:
    script = Script(
        _json(503, {"error": {"message": "busy", "type": "server_error"}}), _json(200, OK)
    )
    time = FakeTime()
    client = _client(script, retry=RetryPolicy(max_retries=2), time=time)

    client.edit(FIELDS, FILES)

    first, second = script.requests
    assert _parts(first) == _parts(second)
    assert len(time.slept) == 1


def test_azure_edits_sit_beside_its_generations() -> None:
    endpoint = Endpoint.azure(
        "https://res.openai.azure.com",
        deployment="img",
        api_version="2025-04-01-preview",
        api_key=SecretStr(KEY),
    )
    assert endpoint.edits_url == "https://res.openai.azure.com/openai/deployments/img/images/edits"
    script = Script(_json(200, OK))

    _client(script, endpoint).edit(FIELDS, FILES)

    (request,) = script.requests
    assert request.url.path == "/openai/deployments/img/images/edits"
    assert request.url.params["api-version"] == "2025-04-01-preview"


def test_an_endpoint_without_a_generations_path_cannot_edit() -> None:
    endpoint = Endpoint(url="https://gateway.example/make-image", api_key=SecretStr(KEY))
    client = _client(Script(_json(200, OK)), endpoint)

    with pytest.raises(ConfigurationError, match="no /images/edits beside it"):
        client.edit(FIELDS, FILES)


def test_form_values_are_sent_as_the_api_spells_them() -> None:
    script = Script(_json(200, OK))
    fields = {"model": "gpt-image-1", "prompt": "p", "stream": False, "output_compression": 80}

    _client(script).edit(fields, FILES[:1])

    parts = {name: payload for name, _, payload in _parts(script.requests[0])}
    assert parts["stream"] == b"false"
    assert parts["output_compression"] == b"80"


@pytest.mark.parametrize("operation", ["generate", "edit"])
def test_previews_in_the_chunk_that_carries_the_error_are_handed_over(operation: str) -> None:
    # Networks (and aiohttp's reads) join events into one chunk: a preview read in the same
    # chunk as the error event that ends the stream still reaches the caller, then the error.
    kind = "image_generation" if operation == "generate" else "image_edit"
    events = [
        {"type": f"{kind}.partial_image", "b64_json": TINY_PNG_B64, "partial_image_index": 0},
        {"type": "error", "error": {"code": "moderation_blocked", "message": "Rejected."}},
    ]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    script = Script(
        httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})
    )
    seen: list[Any] = []
    fields = {**FIELDS, "stream": True, "partial_images": 1}
    client = _client(script)

    def call() -> object:
        if operation == "generate":
            return client.generate(fields, on_stream=seen.append)
        return client.edit(fields, FILES, on_stream=seen.append)

    with pytest.raises(ContentPolicyError, match="Rejected"):
        call()

    assert [type(event) for event in seen] == [PartialImage]
    assert seen[0].b64_json == TINY_PNG_B64


def test_a_streamed_edit_hands_over_its_previews() -> None:
    events = [
        {"type": "image_edit.partial_image", "b64_json": TINY_PNG_B64, "partial_image_index": 0},
        {"type": "image_edit.completed", "b64_json": TINY_PNG_B64, "usage": {"total_tokens": 9}},
    ]
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    script = Script(
        httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})
    )
    seen: list[Any] = []

    response = _client(script).edit(
        {**FIELDS, "stream": True, "partial_images": 1}, FILES, on_stream=seen.append
    )

    assert [type(event) for event in seen] == [PartialImage]
    assert response.usage == {"total_tokens": 9}
    parts = {name: payload for name, _, payload in _parts(script.requests[0])}
    assert parts["stream"] == b"true"

"""The parser, the error mapper and the client against every recorded real exchange.

Successes must parse to the number of images asked for, errors must map to the class a
caller would branch on. The client test replays each exchange through ``httpx.MockTransport``
with the recorded headers, so the whole path (headers, status, body) is exercised.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from langchain_imagegen.client import ImagesClient
from langchain_imagegen.endpoint import Endpoint
from langchain_imagegen.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    error_from_response,
)
from langchain_imagegen.response import ImagesResponse, parse_images_response
from langchain_imagegen.retry import RetryPolicy
from tests.conformance_data import RecordedExchange, load_exchanges

_EXCHANGES = load_exchanges()
_SUCCESSES = [e for e in _EXCHANGES if e.kind == "success"]
_ERRORS = [e for e in _EXCHANGES if e.kind == "error"]


def _ids(exchanges: list[RecordedExchange]) -> list[str]:
    return [e.source for e in exchanges]


def _expected_images(ex: RecordedExchange) -> int:
    n = (ex.request_body or {}).get("n")
    return n if isinstance(n, int) else 1


def _check_success(ex: RecordedExchange, result: ImagesResponse) -> None:
    body = ex.request_body or {}
    assert len(result.images) == _expected_images(ex)
    assert isinstance(result.created, int)
    wants_b64 = body.get("response_format") == "b64_json" or (ex.model or "").startswith("gpt-")
    for image in result.images:
        if wants_b64:
            assert image.b64_json
        else:
            assert image.url
            assert image.url.startswith("https://")
    if ex.model == "dall-e-3":
        assert all(image.revised_prompt for image in result.images)
    if ex.model == "gpt-image-1":
        assert result.usage is not None
        assert isinstance(result.usage.get("total_tokens"), int)
        assert None not in (result.size, result.quality, result.output_format, result.background)
    if ex.model in ("dall-e-2", "dall-e-3"):
        assert result.usage is None


def _check_error(ex: RecordedExchange, error: APIError) -> None:
    assert error.status_code == ex.status
    if ex.status == 401:
        assert type(error) is AuthenticationError
        assert error.code == "invalid_api_key"
    else:
        assert ex.status == 400
        assert type(error) is BadRequestError
        assert error.code == "unknown_parameter"
        assert error.param in ("quality", "response_format")
        assert error.param in error.message
    assert error.message
    assert error.message in str(error)


def test_the_recordings_cover_both_kinds() -> None:
    assert len(_SUCCESSES) >= 20
    assert {e.status for e in _ERRORS} == {400, 401}
    assert {e.model for e in _SUCCESSES} >= {"dall-e-2", "dall-e-3", "gpt-image-1"}


@pytest.mark.parametrize("ex", _SUCCESSES, ids=_ids(_SUCCESSES))
def test_success_parses(ex: RecordedExchange) -> None:
    result = parse_images_response(ex.status, ex.response_body, ex.replay_headers())
    _check_success(ex, result)
    request_id = ex.response_headers.get("x-request-id")
    assert result.request_id == (request_id or ex.response_headers.get("apim-request-id"))


@pytest.mark.parametrize("ex", _ERRORS, ids=_ids(_ERRORS))
def test_error_maps(ex: RecordedExchange) -> None:
    _check_error(ex, error_from_response(ex.status, ex.response_body, ex.replay_headers()))


def _replaying_client(ex: RecordedExchange) -> ImagesClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(ex.status, headers=ex.replay_headers(), content=ex.response_body)

    transport = httpx.MockTransport(handler)
    return ImagesClient(
        Endpoint.openai(api_key=SecretStr("sk-replay")),
        retry=RetryPolicy(max_retries=0),
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )


@pytest.mark.parametrize("ex", _EXCHANGES, ids=_ids(_EXCHANGES))
def test_client_replay(ex: RecordedExchange) -> None:
    client = _replaying_client(ex)
    body = ex.request_body or {"prompt": "replay"}
    if ex.kind == "success":
        _check_success(ex, client.generate(body))
        _check_success(ex, asyncio.run(client.agenerate(body)))
    else:
        with pytest.raises(APIError) as info:
            client.generate(body)
        _check_error(ex, info.value)
        with pytest.raises(APIError) as ainfo:
            asyncio.run(client.agenerate(body))
        _check_error(ex, ainfo.value)

"""ImagesClient over httpx.MockTransport: requests, retries, error mapping, downloads, hygiene.

No real sleeping: ``client._sleep`` / ``client._asleep`` are patched to record the delays.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from langchain_imagegen import client as client_module
from langchain_imagegen.client import DEFAULT_LIMITS, DEFAULT_TIMEOUT, ImagesClient
from langchain_imagegen.endpoint import Endpoint
from langchain_imagegen.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ContentPolicyError,
    ImageGenError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
    StorageError,
)
from langchain_imagegen.response import ImagesResponse
from langchain_imagegen.retry import RetryPolicy

KEY = "sk-test-SECRET-abcdef0123456789"
BODY = {"model": "gpt-image-1", "prompt": "a red fox", "n": 1}
OK = {"created": 1, "data": [{"b64_json": "iVBORw0KGgo="}], "usage": {"total_tokens": 5}}
POLICY = {
    "error": {
        "code": "content_policy_violation",
        "message": "Your request was rejected as a result of our safety system.",
        "param": None,
        "type": "invalid_request_error",
    }
}
BILLING = {
    "error": {
        "code": "billing_hard_limit_reached",
        "message": "Billing hard limit has been reached",
        "param": None,
        "type": "invalid_request_error",
    }
}
Handler = Callable[[httpx.Request], httpx.Response]


def _json(status: int, payload: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=payload, headers=headers)


class Script:
    """A MockTransport handler answering from a list of responses (or exceptions), in order."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        # A fresh Response each time: httpx binds a response's stream to the client that sent it.
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    @property
    def calls(self) -> int:
        return len(self.requests)


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request should be sent, got {request.method} {request.url}")


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def asleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(client_module, "_sleep", recorded.append)
    monkeypatch.setattr(client_module, "_asleep", asleep)
    return recorded


def _client(
    handler: Handler,
    endpoint: Endpoint | None = None,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> ImagesClient:
    transport = httpx.MockTransport(handler)
    return ImagesClient(
        endpoint or Endpoint.openai(api_key=SecretStr(KEY)),
        retry=retry,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **kwargs,
    )


def _both(
    client: ImagesClient, body: dict[str, Any] | None = None
) -> Iterator[Callable[[], ImagesResponse]]:
    yield lambda: client.generate(body or BODY)
    yield lambda: asyncio.run(client.agenerate(body or BODY))


# -- success -----------------------------------------------------------------------------------


def test_posts_json_with_headers(delays: list[float]) -> None:
    script = Script(_json(200, OK, **{"x-request-id": "req_1"}))
    result = _client(script).generate(BODY)
    assert result.attempts == 1
    assert result.elapsed_s >= 0
    assert result.request_id == "req_1"
    assert result.usage == {"total_tokens": 5}
    request = script.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.openai.com/v1/images/generations"
    assert json.loads(request.content) == BODY
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("langchain-imagegen/")
    assert request.extensions["timeout"] == DEFAULT_TIMEOUT.as_dict()
    assert delays == []


async def test_async_posts_json_with_headers(delays: list[float]) -> None:
    script = Script(_json(200, OK))
    result = await _client(script).agenerate(BODY)
    assert result.attempts == 1
    assert json.loads(script.requests[0].content) == BODY
    assert script.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_default_timeout_is_sized_for_slow_models() -> None:
    assert DEFAULT_TIMEOUT.read == 600.0
    assert DEFAULT_TIMEOUT.connect == 10.0
    assert DEFAULT_LIMITS.max_connections is not None
    assert DEFAULT_LIMITS.max_connections >= 100


# -- retries -----------------------------------------------------------------------------------


def test_429_then_200_takes_two_attempts(delays: list[float]) -> None:
    for call in ("sync", "async"):
        delays.clear()
        script = Script(_json(429, {"error": {"message": "slow"}}, **{"retry-after": "3"}),
                        _json(200, OK))  # fmt: skip
        client = _client(script)
        result = client.generate(BODY) if call == "sync" else asyncio.run(client.agenerate(BODY))
        assert result.attempts == 2
        assert script.calls == 2
        assert delays == [3.0]


def test_429_without_retry_after_backs_off(delays: list[float]) -> None:
    script = Script(_json(429, {"error": {"message": "slow"}}), _json(200, OK))
    assert _client(script).generate(BODY).attempts == 2
    assert len(delays) == 1
    assert 0.375 <= delays[0] <= 0.5


def test_5xx_retried_until_spent(delays: list[float]) -> None:
    for run in _both(_client(script := Script(_json(503, {"error": {"message": "busy"}}))), BODY):
        delays.clear()
        script.requests.clear()
        with pytest.raises(ServerError, match="busy"):
            run()
        assert script.calls == 3  # 1 + max_retries
        assert len(delays) == 2
        assert 0.375 <= delays[0] <= 0.5
        assert 0.75 <= delays[1] <= 1.0


def test_max_retries_zero(delays: list[float]) -> None:
    script = Script(_json(500, {"error": {"message": "x"}}))
    with pytest.raises(ServerError):
        _client(script, retry=RetryPolicy(max_retries=0)).generate(BODY)
    assert script.calls == 1


@pytest.mark.parametrize(
    ("status", "payload", "error_type"),
    [
        (400, POLICY, ContentPolicyError),
        (400, BILLING, BillingError),
        (429, {"error": {"code": "insufficient_quota", "message": "quota"}}, BillingError),
        (401, {"error": {"code": "invalid_api_key", "message": "bad key"}}, AuthenticationError),
        (400, {"error": {"code": "unknown_parameter", "message": "no", "param": "quality"}},
         BadRequestError),
    ],
)  # fmt: skip
def test_never_retried(
    delays: list[float], status: int, payload: Any, error_type: type[APIError]
) -> None:
    script = Script(_json(status, payload))
    for run in _both(_client(script)):
        script.requests.clear()
        with pytest.raises(error_type):
            run()
        assert script.calls == 1
    assert delays == []


def test_cloudflare_429_beyond_cap_is_not_retried(delays: list[float]) -> None:
    script = Script(httpx.Response(429, text="error code: 1015", headers={"retry-after": "54749"}))
    with pytest.raises(RateLimitError, match="error code: 1015"):
        _client(script).generate(BODY)
    assert script.calls == 1
    assert delays == []


def test_x_should_retry_false(delays: list[float]) -> None:
    script = Script(_json(503, {"error": {"message": "no"}}, **{"x-should-retry": "false"}))
    with pytest.raises(ServerError):
        _client(script).generate(BODY)
    assert script.calls == 1


def test_budget_stops_retries(delays: list[float]) -> None:
    script = Script(_json(429, {"error": {"message": "slow"}}, **{"retry-after": "6"}))
    with pytest.raises(RateLimitError):
        _client(script, retry=RetryPolicy(total_budget=5.0)).generate(BODY)
    assert script.calls == 1
    assert delays == []


def test_budget_accounts_for_elapsed_time(
    delays: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(client_module, "_clock", lambda: now[0])

    def slow_503(request: httpx.Request) -> httpx.Response:
        now[0] += 40.0  # each attempt takes 40 s
        return _json(503, {"error": {"message": "busy"}}, **{"retry-after": "5"})

    with pytest.raises(ServerError):
        _client(slow_503, retry=RetryPolicy(max_retries=5, total_budget=100.0)).generate(BODY)
    # after 40 s: wait 5 (fits); after 80 s: 5 + 80 = 85 < 100 fits; then 120 s elapsed > budget
    assert delays == [5.0, 5.0]


def test_attempt_timeout_shrinks_to_budget(delays: list[float]) -> None:
    script = Script(_json(200, OK))
    _client(script, retry=RetryPolicy(total_budget=30.0)).generate(BODY)
    timeout = script.requests[0].extensions["timeout"]
    assert timeout["read"] == pytest.approx(30.0, abs=0.5)
    assert timeout["connect"] == 10.0


# -- error mapping -----------------------------------------------------------------------------


def test_502_html_body(delays: list[float]) -> None:
    html = "<html><head><title>502 Bad Gateway</title></head><body>" + "nginx " * 300
    script = Script(httpx.Response(502, text=html, headers={"content-type": "text/html"}))
    with pytest.raises(ServerError) as info:
        _client(script).generate(BODY)
    message = str(info.value)
    assert "HTTP 502" in message
    assert "502 Bad Gateway" in message
    assert len(message) < 400
    assert script.calls == 3


def test_200_carrying_error(delays: list[float]) -> None:
    script = Script(_json(200, POLICY))
    for run in _both(_client(script)):
        script.requests.clear()
        with pytest.raises(ContentPolicyError) as info:
            run()
        assert info.value.status == 200
        assert script.calls == 1


def test_200_rate_limit_error_body_is_retried(delays: list[float]) -> None:
    script = Script(
        _json(200, {"error": {"code": "rate_limit_exceeded", "message": "slow"}}), _json(200, OK)
    )
    assert _client(script).generate(BODY).attempts == 2


def test_invalid_json_200(delays: list[float]) -> None:
    script = Script(httpx.Response(200, text="{not json"))
    with pytest.raises(MalformedResponseError, match=r"HTTP 200.*not JSON: \{not json"):
        _client(script).generate(BODY)
    assert script.calls == 1


def test_error_body_without_envelope(delays: list[float]) -> None:
    script = Script(_json(400, {"message": "Your request was rejected (request id: 7)"}))
    with pytest.raises(BadRequestError, match="request id: 7"):
        _client(script).generate(BODY)


def test_request_id_kept(delays: list[float]) -> None:
    script = Script(_json(400, {"error": {"message": "bad"}}, **{"x-request-id": "req_42"}))
    with pytest.raises(BadRequestError) as info:
        _client(script).generate(BODY)
    assert info.value.request_id == "req_42"


# -- transport failures ------------------------------------------------------------------------


def test_connect_error_retried_then_raised(delays: list[float]) -> None:
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    for run in _both(_client(script)):
        script.requests.clear()
        with pytest.raises(APIConnectionError) as info:
            run()
        assert not isinstance(info.value, APITimeoutError)
        assert isinstance(info.value.__cause__, httpx.ConnectError)
        assert "api.openai.com" in str(info.value)
        assert script.calls == 3


def test_read_timeout_becomes_api_timeout(delays: list[float]) -> None:
    script = Script(httpx.ReadTimeout("timed out"))
    with pytest.raises(APITimeoutError) as info:
        _client(script).generate(BODY)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert script.calls == 3


def test_reset_then_success(delays: list[float]) -> None:
    script = Script(httpx.RemoteProtocolError("peer closed connection"), _json(200, OK))
    result = _client(script).generate(BODY)
    assert result.attempts == 2
    assert script.calls == 2


def test_decoding_error_is_not_retried(delays: list[float]) -> None:
    script = Script(httpx.DecodingError("bad gzip"))
    with pytest.raises(MalformedResponseError):
        _client(script).generate(BODY)
    assert script.calls == 1


# -- endpoints and credentials -----------------------------------------------------------------


def test_azure_deployment(delays: list[float]) -> None:
    script = Script(_json(200, OK))
    endpoint = Endpoint.azure("https://res.openai.azure.com/", deployment="img",
                              api_version="2025-04-01-preview", api_key=SecretStr(KEY))  # fmt: skip
    _client(script, endpoint).generate(BODY)
    request = script.requests[0]
    assert request.url.path == "/openai/deployments/img/images/generations"
    assert request.url.params["api-version"] == "2025-04-01-preview"
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers


def test_azure_v1(delays: list[float]) -> None:
    script = Script(_json(200, OK))
    endpoint = Endpoint.azure("https://res.openai.azure.com/openai/v1/", api_version="preview",
                              api_key=KEY)  # fmt: skip
    _client(script, endpoint).generate({**BODY, "model": "my-deployment"})
    request = script.requests[0]
    assert str(request.url) == (
        "https://res.openai.azure.com/openai/v1/images/generations?api-version=preview"
    )
    assert json.loads(request.content)["model"] == "my-deployment"


def test_token_provider_called_per_request_and_retry(delays: list[float]) -> None:
    issued: list[str] = []

    def provider() -> str:
        issued.append(f"tok-{len(issued)}")
        return issued[-1]

    script = Script(_json(503, {"error": {"message": "x"}}), _json(200, OK), _json(200, OK))
    client = _client(script, Endpoint.azure("https://r.openai.azure.com", token_provider=provider))
    client.generate(BODY)
    client.generate(BODY)
    sent = [r.headers["Authorization"] for r in script.requests]
    assert sent == ["Bearer tok-0", "Bearer tok-1", "Bearer tok-2"]


async def test_async_token_provider(delays: list[float]) -> None:
    count = 0

    async def provider() -> str:
        nonlocal count
        count += 1
        return f"atok-{count}"

    script = Script(_json(200, OK))
    endpoint = Endpoint.azure("https://r.openai.azure.com", async_token_provider=provider)
    client = _client(script, endpoint)
    await client.agenerate(BODY)
    await client.agenerate(BODY)
    assert [r.headers["Authorization"] for r in script.requests] == [
        "Bearer atok-1",
        "Bearer atok-2",
    ]


def test_missing_key_fails_before_any_request() -> None:
    client = _client(_never, Endpoint.openai())
    with pytest.raises(AuthenticationError, match="set OPENAI_API_KEY or pass api_key="):
        client.generate(BODY)
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        asyncio.run(client.agenerate(BODY))


# -- secrets -----------------------------------------------------------------------------------


def test_repr_has_no_secret() -> None:
    client = _client(_never)
    assert KEY not in repr(client)
    assert KEY not in str(client)
    assert "ImagesClient(" in repr(client)
    azure = _client(_never, Endpoint.azure("https://r.openai.azure.com", api_key=KEY))
    assert KEY not in repr(azure)


def _every_error(delays: list[float]) -> list[ImageGenError]:
    echo = {"error": {"code": "invalid_api_key", "message": f"Incorrect API key provided: {KEY}."}}
    handlers: list[Handler] = [
        Script(_json(401, echo)),
        Script(_json(200, {"error": {"message": f"bad {KEY}"}})),
        Script(_json(400, POLICY)),
        Script(_json(503, {"error": {"message": "busy"}})),
        Script(httpx.Response(502, text="<html>bad gateway</html>")),
        Script(httpx.Response(200, text="nope")),
        Script(httpx.ConnectError("refused")),
        Script(httpx.ReadTimeout("slow")),
    ]
    errors: list[ImageGenError] = []
    for handler in handlers:
        for endpoint in (
            Endpoint.openai(api_key=KEY),
            Endpoint.azure("https://r.openai.azure.com", deployment="d", api_key=KEY),
        ):
            for run in _both(_client(handler, endpoint)):
                with pytest.raises(ImageGenError) as info:
                    run()
                errors.append(info.value)
    return errors


def test_no_secret_in_any_error(delays: list[float]) -> None:
    errors = _every_error(delays)
    assert len(errors) == 32
    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert KEY not in error.agent_message()
        if isinstance(error, APIError):
            assert KEY not in json.dumps(error.body)


def test_echoed_key_is_scrubbed(delays: list[float]) -> None:
    echo = {"error": {"code": "invalid_api_key", "message": f"Incorrect API key provided: {KEY}."}}
    with pytest.raises(AuthenticationError) as info:
        _client(Script(_json(401, echo))).generate(BODY)
    assert "Incorrect API key provided: ***." in str(info.value)


# -- client lifecycle --------------------------------------------------------------------------


def test_lazy_single_sync_client() -> None:
    client = ImagesClient(Endpoint.openai(api_key=KEY))
    first = client._sync_client()
    assert client._sync_client() is first
    assert first.timeout == DEFAULT_TIMEOUT
    client.close()
    assert first.is_closed
    assert client._sync_client() is not first
    client.close()


def test_async_client_is_per_event_loop() -> None:
    client = ImagesClient(Endpoint.openai(api_key=KEY))

    async def grab() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return client._async_client(), client._async_client()

    first_loop, second_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        a1, a2 = first_loop.run_until_complete(grab())
        first_loop.close()
        b1, _ = second_loop.run_until_complete(grab())
        assert a1 is a2
        assert b1 is not a1
        assert list(client._aclients.values()) == [b1]  # the closed loop's client was dropped
        second_loop.run_until_complete(client.aclose())
        assert b1.is_closed
        assert len(client._aclients) == 0
    finally:
        second_loop.close()


async def test_aclose_closes_own_clients() -> None:
    client = ImagesClient(Endpoint.openai(api_key=KEY))
    sync, aclient = client._sync_client(), client._async_client()
    async with client:
        pass
    assert sync.is_closed
    assert aclient.is_closed


async def test_injected_clients_are_not_closed() -> None:
    transport = httpx.MockTransport(Script(_json(200, OK)))
    sync, aclient = httpx.Client(transport=transport), httpx.AsyncClient(transport=transport)
    async with ImagesClient(Endpoint.openai(api_key=KEY), http_client=sync,
                            async_http_client=aclient) as client:  # fmt: skip
        assert client._async_client() is aclient
        await client.agenerate(BODY)
    assert not sync.is_closed
    assert not aclient.is_closed
    with ImagesClient(Endpoint.openai(api_key=KEY), http_client=sync) as client:
        client.generate(BODY)
    assert not sync.is_closed
    assert client._sync_client() is sync


async def test_hundred_concurrent_requests(delays: list[float]) -> None:
    script = Script(_json(200, OK))
    client = _client(script)
    results = await asyncio.gather(*(client.agenerate(BODY) for _ in range(100)))
    assert len(results) == 100
    assert script.calls == 100


# -- download ----------------------------------------------------------------------------------

IMAGE_URL = "https://blob.example/private/img.png?se=2026&sig=SAS-SIGNATURE-123"


def _chunks(total: int, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def _achunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    for chunk in _chunks(total, size):
        yield chunk


def test_download(delays: list[float]) -> None:
    script = Script(
        httpx.Response(200, content=b"\x89PNG....", headers={"content-type": "image/png"})
    )
    client = _client(script)
    assert client.download(IMAGE_URL, max_bytes=100) == (b"\x89PNG....", "image/png")
    assert asyncio.run(client.adownload(IMAGE_URL, max_bytes=100)) == (b"\x89PNG....", "image/png")
    request = script.requests[0]
    assert request.method == "GET"
    assert str(request.url) == IMAGE_URL
    assert "authorization" not in request.headers  # the key never leaves for storage hosts
    assert "api-key" not in request.headers


def test_download_rejects_declared_oversize(delays: list[float]) -> None:
    script = Script(httpx.Response(200, content=b"x" * 101))
    client = _client(script)
    with pytest.raises(StorageError, match="larger than the 100-byte limit") as info:
        client.download(IMAGE_URL, max_bytes=100)
    assert "SAS-SIGNATURE" not in str(info.value)
    with pytest.raises(StorageError, match="100-byte limit"):
        asyncio.run(client.adownload(IMAGE_URL, max_bytes=100))


def test_download_aborts_streamed_oversize(delays: list[float]) -> None:
    served: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        def stream() -> Iterator[bytes]:
            for chunk in _chunks(1_000_000):
                served.append(len(chunk))
                yield chunk

        return httpx.Response(200, content=stream())  # chunked: no content-length

    with pytest.raises(StorageError, match="5000-byte limit"):
        _client(handler).download(IMAGE_URL, max_bytes=5000)
    assert sum(served) < 100_000  # aborted early, not read to the end


async def test_adownload_aborts_streamed_oversize(delays: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_achunks(1_000_000))

    with pytest.raises(StorageError, match="5000-byte limit"):
        await _client(handler).adownload(IMAGE_URL, max_bytes=5000)


def test_download_exactly_at_limit(delays: list[float]) -> None:
    script = Script(httpx.Response(200, content=b"x" * 100))
    assert _client(script).download(IMAGE_URL, max_bytes=100)[0] == b"x" * 100


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "data:image/png;base64,iVBORw0KGgo=", "ftp://h/x.png", "/relative.png"],
)
def test_download_scheme_check(url: str) -> None:
    client = _client(_never)
    with pytest.raises(StorageError, match=r"http\(s\)"):
        client.download(url, max_bytes=100)
    with pytest.raises(StorageError, match=r"http\(s\)"):
        asyncio.run(client.adownload(url, max_bytes=100))


def test_download_bad_max_bytes() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        _client(_never).download(IMAGE_URL, max_bytes=0)


def test_download_error_status(delays: list[float]) -> None:
    script = Script(httpx.Response(403, text="<Error><Code>AuthenticationFailed</Code></Error>"))
    with pytest.raises(StorageError, match="AuthenticationFailed") as info:
        _client(script).download(IMAGE_URL, max_bytes=100)
    assert "blob.example/private/img.png" in str(info.value)
    assert "SAS-SIGNATURE" not in str(info.value)
    assert script.calls == 1
    with pytest.raises(StorageError, match="AuthenticationFailed"):
        asyncio.run(_client(script).adownload(IMAGE_URL, max_bytes=100))
    assert script.calls == 2


def test_download_retries_transient_failures(delays: list[float]) -> None:
    script = Script(httpx.Response(503, text="busy"), httpx.ConnectError("reset"),
                    httpx.Response(200, content=b"img"))  # fmt: skip
    assert _client(script).download(IMAGE_URL, max_bytes=100) == (b"img", None)
    assert script.calls == 3
    assert len(delays) == 2


async def test_adownload_unreachable(delays: list[float]) -> None:
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(StorageError, match="could not be downloaded") as info:
        await _client(script).adownload(IMAGE_URL, max_bytes=100)
    assert isinstance(info.value.__cause__, APIConnectionError)
    assert script.calls == 3


def test_download_error_body_is_not_read_to_the_end(delays: list[float]) -> None:
    served: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        def stream() -> Iterator[bytes]:
            for chunk in _chunks(10_000_000, 10_000):
                served.append(len(chunk))
                yield chunk

        return httpx.Response(404, content=stream())

    with pytest.raises(StorageError, match="HTTP 404"):
        _client(handler).download(IMAGE_URL, max_bytes=100)
    assert sum(served) < 1_000_000

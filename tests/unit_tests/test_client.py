"""ImagesClient over httpx.MockTransport: requests, retries, error mapping, downloads, hygiene.

No real sleeping: every client runs on a :class:`~tests.fake_time.FakeTime`, which records the
waits the client decides on (``fake.slept``) and moves its clock on by them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from langchain_imagegen.client import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    ImagesClient,
)
from langchain_imagegen.endpoint import Endpoint
from langchain_imagegen.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ContentPolicyError,
    ImageDownloadError,
    ImageGenError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
)
from langchain_imagegen.response import ImagesResponse
from langchain_imagegen.retry import RetryPolicy
from tests.fake_time import FakeTime

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


def _client(
    handler: Handler,
    endpoint: Endpoint | None = None,
    retry: RetryPolicy | None = None,
    *,
    time: FakeTime | None = None,
    **kwargs: Any,
) -> ImagesClient:
    transport = httpx.MockTransport(handler)
    return ImagesClient(
        endpoint or Endpoint.openai(api_key=SecretStr(KEY)),
        retry=retry,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        **(time or FakeTime()).injected(),
        **kwargs,
    )


MakeClient = Callable[..., ImagesClient]


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make(fake: FakeTime) -> MakeClient:
    """``_client`` on the test's ``fake`` clock, whose ``slept`` the test checks."""

    def make(*args: Any, **kwargs: Any) -> ImagesClient:
        return _client(*args, time=fake, **kwargs)

    return make


def _both(
    client: ImagesClient, body: dict[str, Any] | None = None
) -> Iterator[Callable[[], ImagesResponse]]:
    yield lambda: client.generate(body or BODY)
    yield lambda: asyncio.run(client.agenerate(body or BODY))


# -- success -----------------------------------------------------------------------------------


def test_posts_json_with_headers(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(200, OK, **{"x-request-id": "req_1"}))
    result = make(script).generate(BODY)
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
    assert fake.slept == []


async def test_async_posts_json_with_headers(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(200, OK))
    result = await make(script).agenerate(BODY)
    assert result.attempts == 1
    assert json.loads(script.requests[0].content) == BODY
    assert script.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_default_timeout_is_sized_for_slow_models() -> None:
    assert DEFAULT_TIMEOUT.read == 600.0
    assert DEFAULT_TIMEOUT.connect == 10.0
    assert DEFAULT_LIMITS.max_connections is not None
    assert DEFAULT_LIMITS.max_connections >= 100


# -- retries -----------------------------------------------------------------------------------


def test_429_then_200_takes_two_attempts(fake: FakeTime, make: MakeClient) -> None:
    for call in ("sync", "async"):
        fake.slept.clear()
        script = Script(_json(429, {"error": {"message": "slow"}}, **{"retry-after": "3"}),
                        _json(200, OK))  # fmt: skip
        client = make(script)
        result = client.generate(BODY) if call == "sync" else asyncio.run(client.agenerate(BODY))
        assert result.attempts == 2
        assert script.calls == 2
        assert fake.slept == [3.0]


def test_429_without_retry_after_backs_off(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(429, {"error": {"message": "slow"}}), _json(200, OK))
    assert make(script).generate(BODY).attempts == 2
    assert len(fake.slept) == 1
    assert 0.375 <= fake.slept[0] <= 0.5


def test_5xx_retried_until_spent(fake: FakeTime, make: MakeClient) -> None:
    for run in _both(make(script := Script(_json(503, {"error": {"message": "busy"}}))), BODY):
        fake.slept.clear()
        script.requests.clear()
        with pytest.raises(ServerError, match="busy"):
            run()
        assert script.calls == 3  # 1 + max_retries
        assert len(fake.slept) == 2
        assert 0.375 <= fake.slept[0] <= 0.5
        assert 0.75 <= fake.slept[1] <= 1.0


def test_max_retries_zero(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(500, {"error": {"message": "x"}}))
    with pytest.raises(ServerError):
        make(script, retry=RetryPolicy(max_retries=0)).generate(BODY)
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
    fake: FakeTime, make: MakeClient, status: int, payload: Any, error_type: type[APIError]
) -> None:
    script = Script(_json(status, payload))
    for run in _both(make(script)):
        script.requests.clear()
        with pytest.raises(error_type):
            run()
        assert script.calls == 1
    assert fake.slept == []


def test_cloudflare_429_beyond_cap_is_not_retried(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.Response(429, text="error code: 1015", headers={"retry-after": "54749"}))
    with pytest.raises(RateLimitError, match="error code: 1015"):
        make(script).generate(BODY)
    assert script.calls == 1
    assert fake.slept == []


def test_x_should_retry_false(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(503, {"error": {"message": "no"}}, **{"x-should-retry": "false"}))
    with pytest.raises(ServerError):
        make(script).generate(BODY)
    assert script.calls == 1


def test_budget_stops_retries(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(429, {"error": {"message": "slow"}}, **{"retry-after": "6"}))
    with pytest.raises(RateLimitError):
        make(script, retry=RetryPolicy(total_budget=5.0)).generate(BODY)
    assert script.calls == 1
    assert fake.slept == []


def test_budget_accounts_for_elapsed_time(fake: FakeTime, make: MakeClient) -> None:
    def slow_503(request: httpx.Request) -> httpx.Response:
        fake.advance(40.0)  # each attempt takes 40 s
        return _json(503, {"error": {"message": "busy"}}, **{"retry-after": "5"})

    with pytest.raises(ServerError):
        make(slow_503, retry=RetryPolicy(max_retries=5, total_budget=100.0)).generate(BODY)
    # after 40 s: wait 5 (fits); after 80 s: 5 + 80 = 85 < 100 fits; then 120 s elapsed > budget
    assert fake.slept == [5.0, 5.0]


def test_attempt_timeout_shrinks_to_budget(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(200, OK))
    make(script, retry=RetryPolicy(total_budget=30.0)).generate(BODY)
    timeout = script.requests[0].extensions["timeout"]
    assert timeout["read"] == pytest.approx(30.0, abs=0.5)
    assert timeout["connect"] == 10.0


# -- error mapping -----------------------------------------------------------------------------


def test_502_html_body(fake: FakeTime, make: MakeClient) -> None:
    html = "<html><head><title>502 Bad Gateway</title></head><body>" + "nginx " * 300
    script = Script(httpx.Response(502, text=html, headers={"content-type": "text/html"}))
    with pytest.raises(ServerError) as info:
        make(script).generate(BODY)
    message = str(info.value)
    assert "HTTP 502" in message
    assert "502 Bad Gateway" in message
    assert len(message) < 400
    assert script.calls == 3


def test_200_carrying_error(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(200, POLICY))
    for run in _both(make(script)):
        script.requests.clear()
        with pytest.raises(ContentPolicyError) as info:
            run()
        assert info.value.status_code == 200
        assert script.calls == 1


def test_200_rate_limit_error_body_is_retried(fake: FakeTime, make: MakeClient) -> None:
    script = Script(
        _json(200, {"error": {"code": "rate_limit_exceeded", "message": "slow"}}), _json(200, OK)
    )
    assert make(script).generate(BODY).attempts == 2


def test_invalid_json_200(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.Response(200, text="{not json"))
    with pytest.raises(MalformedResponseError, match=r"HTTP 200.*not JSON: \{not json"):
        make(script).generate(BODY)
    assert script.calls == 1


def test_error_body_without_envelope(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(400, {"message": "Your request was rejected (request id: 7)"}))
    with pytest.raises(BadRequestError, match="request id: 7"):
        make(script).generate(BODY)


def test_request_id_kept(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(400, {"error": {"message": "bad"}}, **{"x-request-id": "req_42"}))
    with pytest.raises(BadRequestError) as info:
        make(script).generate(BODY)
    assert info.value.request_id == "req_42"


# -- transport failures ------------------------------------------------------------------------


def test_connect_error_retried_then_raised(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    for run in _both(make(script)):
        script.requests.clear()
        with pytest.raises(APIConnectionError) as info:
            run()
        assert not isinstance(info.value, APITimeoutError)
        assert isinstance(info.value.__cause__, httpx.ConnectError)
        assert "api.openai.com" in str(info.value)
        assert script.calls == 3


def test_read_timeout_becomes_api_timeout(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.ReadTimeout("timed out"))
    with pytest.raises(APITimeoutError) as info:
        make(script).generate(BODY)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert script.calls == 3


def test_reset_then_success(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.RemoteProtocolError("peer closed connection"), _json(200, OK))
    result = make(script).generate(BODY)
    assert result.attempts == 2
    assert script.calls == 2


def test_decoding_error_is_not_retried(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.DecodingError("bad gzip"))
    with pytest.raises(MalformedResponseError):
        make(script).generate(BODY)
    assert script.calls == 1


# -- endpoints and credentials -----------------------------------------------------------------


def test_azure_deployment(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(200, OK))
    endpoint = Endpoint.azure("https://res.openai.azure.com/", deployment="img",
                              api_version="2025-04-01-preview", api_key=SecretStr(KEY))  # fmt: skip
    make(script, endpoint).generate(BODY)
    request = script.requests[0]
    assert request.url.path == "/openai/deployments/img/images/generations"
    assert request.url.params["api-version"] == "2025-04-01-preview"
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers


def test_azure_v1(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(200, OK))
    endpoint = Endpoint.azure("https://res.openai.azure.com/openai/v1/", api_version="preview",
                              api_key=KEY)  # fmt: skip
    make(script, endpoint).generate({**BODY, "model": "my-deployment"})
    request = script.requests[0]
    assert str(request.url) == (
        "https://res.openai.azure.com/openai/v1/images/generations?api-version=preview"
    )
    assert json.loads(request.content)["model"] == "my-deployment"


def test_token_provider_called_per_request_and_retry(fake: FakeTime, make: MakeClient) -> None:
    issued: list[str] = []

    def provider() -> str:
        issued.append(f"tok-{len(issued)}")
        return issued[-1]

    script = Script(_json(503, {"error": {"message": "x"}}), _json(200, OK), _json(200, OK))
    client = make(script, Endpoint.azure("https://r.openai.azure.com", token_provider=provider))
    client.generate(BODY)
    client.generate(BODY)
    sent = [r.headers["Authorization"] for r in script.requests]
    assert sent == ["Bearer tok-0", "Bearer tok-1", "Bearer tok-2"]


async def test_async_token_provider(fake: FakeTime, make: MakeClient) -> None:
    count = 0

    async def provider() -> str:
        nonlocal count
        count += 1
        return f"atok-{count}"

    script = Script(_json(200, OK))
    endpoint = Endpoint.azure("https://r.openai.azure.com", async_token_provider=provider)
    client = make(script, endpoint)
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


def _every_error() -> list[ImageGenError]:
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


def test_no_secret_in_any_error() -> None:
    errors = _every_error()
    assert len(errors) == 32
    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert KEY not in error.agent_message()
        if isinstance(error, APIError):
            assert KEY not in json.dumps(error.body)


def test_echoed_key_is_scrubbed(fake: FakeTime, make: MakeClient) -> None:
    echo = {"error": {"code": "invalid_api_key", "message": f"Incorrect API key provided: {KEY}."}}
    with pytest.raises(AuthenticationError) as info:
        make(Script(_json(401, echo))).generate(BODY)
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
        return await client._async_client(), await client._async_client()

    first_loop, second_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        a1, a2 = first_loop.run_until_complete(grab())
        first_loop.close()
        b1, _ = second_loop.run_until_complete(grab())
        assert a1 is a2
        assert b1 is not a1
        assert [entry[0] for entry in client._aclients.values()] == [
            b1
        ]  # the closed loop's client was dropped
        second_loop.run_until_complete(client.aclose())
        assert b1.is_closed
        assert len(client._aclients) == 0
    finally:
        second_loop.close()


async def test_aclose_closes_own_clients() -> None:
    client = ImagesClient(Endpoint.openai(api_key=KEY))
    sync, aclient = client._sync_client(), await client._async_client()
    async with client:
        pass
    assert sync.is_closed
    assert aclient.is_closed


async def test_injected_clients_are_not_closed() -> None:
    transport = httpx.MockTransport(Script(_json(200, OK)))
    sync, aclient = httpx.Client(transport=transport), httpx.AsyncClient(transport=transport)
    async with ImagesClient(Endpoint.openai(api_key=KEY), http_client=sync,
                            async_http_client=aclient) as client:  # fmt: skip
        assert await client._async_client() is aclient
        await client.agenerate(BODY)
    assert not sync.is_closed
    assert not aclient.is_closed
    with ImagesClient(Endpoint.openai(api_key=KEY), http_client=sync) as client:
        client.generate(BODY)
    assert not sync.is_closed
    assert client._sync_client() is sync


async def test_hundred_concurrent_requests(fake: FakeTime, make: MakeClient) -> None:
    script = Script(_json(200, OK))
    client = make(script)
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


def test_download(fake: FakeTime, make: MakeClient) -> None:
    script = Script(
        httpx.Response(200, content=b"\x89PNG....", headers={"content-type": "image/png"})
    )
    client = make(script)
    assert client.download(IMAGE_URL, max_bytes=100) == (b"\x89PNG....", "image/png")
    assert asyncio.run(client.adownload(IMAGE_URL, max_bytes=100)) == (b"\x89PNG....", "image/png")
    request = script.requests[0]
    assert request.method == "GET"
    assert str(request.url) == IMAGE_URL
    assert "authorization" not in request.headers  # the key never leaves for storage hosts
    assert "api-key" not in request.headers


def test_download_rejects_declared_oversize(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.Response(200, content=b"x" * 101))
    client = make(script)
    with pytest.raises(ImageDownloadError, match="larger than the 100-byte limit") as info:
        client.download(IMAGE_URL, max_bytes=100)
    assert "SAS-SIGNATURE" not in str(info.value)
    with pytest.raises(ImageDownloadError, match="100-byte limit"):
        asyncio.run(client.adownload(IMAGE_URL, max_bytes=100))


def test_download_aborts_streamed_oversize(fake: FakeTime, make: MakeClient) -> None:
    served: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        def stream() -> Iterator[bytes]:
            for chunk in _chunks(1_000_000):
                served.append(len(chunk))
                yield chunk

        return httpx.Response(200, content=stream())  # chunked: no content-length

    with pytest.raises(ImageDownloadError, match="5000-byte limit"):
        make(handler).download(IMAGE_URL, max_bytes=5000)
    assert sum(served) < 100_000  # aborted early, not read to the end


async def test_adownload_aborts_streamed_oversize(fake: FakeTime, make: MakeClient) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_achunks(1_000_000))

    with pytest.raises(ImageDownloadError, match="5000-byte limit"):
        await make(handler).adownload(IMAGE_URL, max_bytes=5000)


def test_download_exactly_at_limit(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.Response(200, content=b"x" * 100))
    assert make(script).download(IMAGE_URL, max_bytes=100)[0] == b"x" * 100


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "data:image/png;base64,iVBORw0KGgo=", "ftp://h/x.png", "/relative.png"],
)
def test_download_scheme_check(url: str) -> None:
    client = _client(_never)
    with pytest.raises(ImageDownloadError, match=r"http\(s\)"):
        client.download(url, max_bytes=100)
    with pytest.raises(ImageDownloadError, match=r"http\(s\)"):
        asyncio.run(client.adownload(url, max_bytes=100))


def test_download_bad_max_bytes() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        _client(_never).download(IMAGE_URL, max_bytes=0)


def test_download_error_status(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.Response(403, text="<Error><Code>AuthenticationFailed</Code></Error>"))
    with pytest.raises(ImageDownloadError, match="AuthenticationFailed") as info:
        make(script).download(IMAGE_URL, max_bytes=100)
    assert "blob.example/private/img.png" in str(info.value)
    assert "SAS-SIGNATURE" not in str(info.value)
    assert script.calls == 1
    with pytest.raises(ImageDownloadError, match="AuthenticationFailed"):
        asyncio.run(make(script).adownload(IMAGE_URL, max_bytes=100))
    assert script.calls == 2


def test_download_retries_transient_failures(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.Response(503, text="busy"), httpx.ConnectError("reset"),
                    httpx.Response(200, content=b"img"))  # fmt: skip
    assert make(script).download(IMAGE_URL, max_bytes=100) == (b"img", None)
    assert script.calls == 3
    assert len(fake.slept) == 2


async def test_adownload_unreachable(fake: FakeTime, make: MakeClient) -> None:
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(ImageDownloadError, match="could not be downloaded") as info:
        await make(script).adownload(IMAGE_URL, max_bytes=100)
    assert isinstance(info.value.__cause__, APIConnectionError)
    assert script.calls == 3


def test_download_error_body_is_not_read_to_the_end(fake: FakeTime, make: MakeClient) -> None:
    served: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        def stream() -> Iterator[bytes]:
            for chunk in _chunks(10_000_000, 10_000):
                served.append(len(chunk))
                yield chunk

        return httpx.Response(404, content=stream())

    with pytest.raises(ImageDownloadError, match="HTTP 404"):
        make(handler).download(IMAGE_URL, max_bytes=100)
    assert sum(served) < 1_000_000


# -- bounded generation answers ----------------------------------------------------------------


def test_default_response_cap_fits_ten_of_the_largest_images() -> None:
    largest_png = 3840 * 2160 * 4  # RGBA that does not compress at all
    assert 10 * largest_png * 4 / 3 < DEFAULT_MAX_RESPONSE_BYTES  # ten of them, in base64
    assert DEFAULT_MAX_RESPONSE_BYTES < 600_000_000  # the 600 MB answer that took 1.27 GB


def test_oversized_answer_with_declared_length_is_refused_unread() -> None:
    big = json.dumps({"data": [{"b64_json": "A" * 5000}]}).encode()
    script = Script(httpx.Response(200, content=big, headers={"content-type": "application/json"}))
    client = _client(script, max_response_bytes=1000)
    for run in _both(client):
        with pytest.raises(MalformedResponseError, match="too large") as info:
            run()
        assert f"{len(big)} bytes" in str(info.value)
        assert "max_response_bytes" in str(info.value)
    assert script.calls == 2  # not retried


@pytest.mark.parametrize("header", ["x-request-id", "apim-request-id"])
def test_oversized_answer_keeps_the_request_id(header: str) -> None:
    """OpenAI's id or Azure API Management's, as every other error of the client keeps it."""
    big = json.dumps({"data": [{"b64_json": "A" * 5000}]}).encode()
    script = Script(httpx.Response(200, content=big, headers={header: "req_123"}))
    for run in _both(_client(script, max_response_bytes=1000)):
        with pytest.raises(MalformedResponseError, match="too large") as info:
            run()
        assert info.value.request_id == "req_123"


def test_oversized_streamed_answer_is_abandoned_early() -> None:
    served: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        def stream() -> Iterator[bytes]:
            yield b'{"data": [{"b64_json": "'
            for chunk in _chunks(1_000_000):
                served.append(len(chunk))
                yield chunk

        return httpx.Response(200, content=stream())  # chunked: no content-length

    with pytest.raises(MalformedResponseError, match="too large"):
        _client(handler, max_response_bytes=5000).generate(BODY)
    assert sum(served) < 100_000  # aborted early, not read to the end


async def test_async_oversized_streamed_answer_is_abandoned_early() -> None:
    served: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        async for chunk in _achunks(1_000_000):
            served.append(len(chunk))
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stream())

    with pytest.raises(MalformedResponseError, match="too large"):
        await _client(handler, max_response_bytes=5000).agenerate(BODY)
    assert sum(served) < 100_000


def test_answer_exactly_at_the_cap_is_accepted() -> None:
    body = json.dumps(OK).encode()
    client = _client(Script(httpx.Response(200, content=body)), max_response_bytes=len(body))
    for run in _both(client):
        assert len(run().images) == 1


def test_response_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_response_bytes"):
        ImagesClient(Endpoint.openai(api_key=KEY), max_response_bytes=0)


# -- a short key is still scrubbed -------------------------------------------------------------


def test_echoed_short_key_is_scrubbed() -> None:
    short = "k3Y"
    echo = {
        "error": {"code": "invalid_api_key", "message": f"Incorrect API key provided: {short}."}
    }
    script = Script(_json(401, echo))
    client = _client(script, Endpoint.openai(api_key=SecretStr(short)))
    for run in _both(client):
        with pytest.raises(AuthenticationError) as info:
            run()
        assert short not in str(info.value)
        assert short not in json.dumps(info.value.body)
        assert "Incorrect API key provided: ***." in str(info.value)
    assert script.requests[0].headers["Authorization"] == f"Bearer {short}"  # it was the key

"""Endpoint: URLs for OpenAI, gateways and both Azure routes; headers; credential hygiene."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import SecretStr

from langchain_imagegen.endpoint import AZURE_DEFAULT_API_VERSION, Endpoint
from langchain_imagegen.errors import (
    AuthenticationError,
    InvalidArgumentError,
    MissingCredentialError,
)

KEY = "sk-test-SECRET-0123456789"
OPENAI_URL = "https://api.openai.com/v1/images/generations"


class TestOpenAI:
    @pytest.mark.parametrize(
        "base",
        [
            "https://api.openai.com/v1",
            "https://api.openai.com/v1/",
            "https://api.openai.com/v1/images/generations",
            "https://api.openai.com/v1/images/generations/",
            "  https://api.openai.com/v1  ",
        ],
    )
    def test_url_variants(self, base: str) -> None:
        endpoint = Endpoint.openai(base, api_key=SecretStr(KEY))
        assert endpoint.url == OPENAI_URL
        assert endpoint.query == {}

    def test_defaults(self) -> None:
        assert Endpoint.openai(api_key=SecretStr(KEY)).url == OPENAI_URL
        assert Endpoint.openai(None, api_key=SecretStr(KEY)).url == OPENAI_URL

    def test_gateway_query_is_kept(self) -> None:
        endpoint = Endpoint.openai("http://localhost:4000/v1/?tenant=a", api_key=KEY)
        assert endpoint.url == "http://localhost:4000/v1/images/generations"
        assert endpoint.query == {"tenant": "a"}

    def test_headers(self) -> None:
        endpoint = Endpoint.openai(
            api_key=SecretStr(KEY), organization="org-1", project="proj-2", headers={"X-A": "b"}
        )
        assert endpoint.headers() == {
            "OpenAI-Organization": "org-1",
            "OpenAI-Project": "proj-2",
            "X-A": "b",
            "Authorization": f"Bearer {KEY}",
        }

    def test_plain_str_key_is_wrapped(self) -> None:
        endpoint = Endpoint.openai(api_key=KEY)
        assert isinstance(endpoint.api_key, SecretStr)
        assert endpoint.headers()["Authorization"] == f"Bearer {KEY}"

    def test_headers_returns_a_fresh_dict(self) -> None:
        endpoint = Endpoint.openai(api_key=KEY)
        endpoint.headers()["Authorization"] = "tampered"
        assert endpoint.headers()["Authorization"] == f"Bearer {KEY}"

    @pytest.mark.parametrize("base", ["ftp://example.com/v1", "api.openai.com/v1", "https://"])
    def test_rejects_non_http_urls(self, base: str) -> None:
        with pytest.raises(InvalidArgumentError, match=r"http\(s\)"):
            Endpoint.openai(base, api_key=KEY)


class TestMissingCredential:
    @pytest.mark.parametrize("key", [None, SecretStr(""), ""])
    def test_openai(self, key: SecretStr | str | None) -> None:
        endpoint = Endpoint.openai(api_key=key)
        with pytest.raises(AuthenticationError, match=r"set OPENAI_API_KEY or pass api_key="):
            endpoint.headers()

    async def test_openai_async(self) -> None:
        with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
            await Endpoint.openai().aheaders()

    def test_azure(self) -> None:
        endpoint = Endpoint.azure("https://res.openai.azure.com", deployment="d")
        with pytest.raises(AuthenticationError, match="AZURE_OPENAI_API_KEY"):
            endpoint.headers()

    def test_only_async_provider_on_sync_path(self) -> None:
        async def token() -> str:
            return "t"

        endpoint = Endpoint.azure("https://res.openai.azure.com", async_token_provider=token)
        with pytest.raises(AuthenticationError, match="agenerate"):
            endpoint.headers()


class TestAzure:
    def test_deployment_url_and_api_key(self) -> None:
        endpoint = Endpoint.azure(
            "https://res.openai.azure.com/",
            deployment="gpt-image-1",
            api_version="2025-04-01-preview",
            api_key=SecretStr(KEY),
        )
        assert endpoint.url == (
            "https://res.openai.azure.com/openai/deployments/gpt-image-1/images/generations"
        )
        assert endpoint.query == {"api-version": "2025-04-01-preview"}
        headers = endpoint.headers()
        assert headers == {"api-key": KEY}
        assert "Authorization" not in headers

    def test_deployment_default_api_version(self) -> None:
        endpoint = Endpoint.azure("https://res.openai.azure.com", deployment="d", api_key=KEY)
        assert endpoint.query == {"api-version": AZURE_DEFAULT_API_VERSION}

    def test_deployment_name_is_escaped(self) -> None:
        endpoint = Endpoint.azure("https://r.openai.azure.com", deployment="a b/c", api_key=KEY)
        assert "/deployments/a%20b%2Fc/images/generations" in endpoint.url

    @pytest.mark.parametrize(
        "root",
        [
            "https://res.openai.azure.com",
            "https://res.openai.azure.com/openai",
            "https://res.openai.azure.com/openai/v1/",
        ],
    )
    def test_deployment_from_any_root(self, root: str) -> None:
        endpoint = Endpoint.azure(root, deployment="dep", api_key=KEY)
        assert (
            endpoint.url == "https://res.openai.azure.com/openai/deployments/dep/images/generations"
        )

    @pytest.mark.parametrize(
        "root",
        [
            "https://res.openai.azure.com",
            "https://res.openai.azure.com/",
            "https://res.openai.azure.com/openai",
            "https://res.openai.azure.com/openai/v1",
            "https://res.openai.azure.com/openai/v1/",
            "https://res.openai.azure.com/openai/v1/images/generations",
        ],
    )
    def test_v1_url(self, root: str) -> None:
        endpoint = Endpoint.azure(root, api_key=KEY)
        assert endpoint.url == "https://res.openai.azure.com/openai/v1/images/generations"
        assert endpoint.query == {}

    def test_v1_with_preview_api_version(self) -> None:
        endpoint = Endpoint.azure(
            "https://res.openai.azure.com", api_version="preview", api_key=KEY
        )
        assert endpoint.query == {"api-version": "preview"}

    def test_api_version_in_url_is_kept(self) -> None:
        endpoint = Endpoint.azure(
            "https://res.openai.azure.com/?api-version=2024-10-21", deployment="d", api_key=KEY
        )
        assert endpoint.query == {"api-version": "2024-10-21"}

    def test_token_provider_called_per_request(self) -> None:
        tokens = iter(["tok-1", "tok-2"])
        endpoint = Endpoint.azure(
            "https://res.openai.azure.com", deployment="d", token_provider=lambda: next(tokens)
        )
        assert endpoint.headers() == {"Authorization": "Bearer tok-1"}
        assert endpoint.headers() == {"Authorization": "Bearer tok-2"}

    def test_token_provider_wins_over_key(self) -> None:
        endpoint = Endpoint.azure(
            "https://res.openai.azure.com", api_key=KEY, token_provider=lambda: "tok"
        )
        assert endpoint.headers() == {"Authorization": "Bearer tok"}

    async def test_async_token_provider(self) -> None:
        calls = 0

        async def token() -> str:
            nonlocal calls
            calls += 1
            return f"atok-{calls}"

        endpoint = Endpoint.azure("https://res.openai.azure.com", async_token_provider=token)
        assert await endpoint.aheaders() == {"Authorization": "Bearer atok-1"}
        assert await endpoint.aheaders() == {"Authorization": "Bearer atok-2"}

    async def test_async_path_falls_back_to_sync_provider_and_key(self) -> None:
        with_provider = Endpoint.azure("https://r.openai.azure.com", token_provider=lambda: "s")
        assert await with_provider.aheaders() == {"Authorization": "Bearer s"}
        with_key = Endpoint.azure("https://r.openai.azure.com", api_key=KEY)
        assert await with_key.aheaders() == {"api-key": KEY}

    def test_empty_token_is_an_auth_error(self) -> None:
        endpoint = Endpoint.azure("https://r.openai.azure.com", token_provider=lambda: "")
        with pytest.raises(AuthenticationError, match="no key or token"):
            endpoint.headers()

    def test_failing_provider_is_an_auth_error_without_its_text(self) -> None:
        def provider() -> str:
            raise RuntimeError(f"cannot refresh {KEY}")

        endpoint = Endpoint.azure("https://r.openai.azure.com", token_provider=provider)
        with pytest.raises(AuthenticationError, match="RuntimeError") as info:
            endpoint.headers()
        assert KEY not in str(info.value)
        assert isinstance(info.value.__cause__, RuntimeError)


class TestApiKeyFunction:
    """``api_key`` may be a function returning the key, as in langchain-openai."""

    def test_sync_function_called_per_request_on_both_paths(self) -> None:
        keys = iter(["sk-1", "sk-2"])
        endpoint = Endpoint.openai(api_key=lambda: next(keys))
        assert endpoint.headers() == {"Authorization": "Bearer sk-1"}
        assert endpoint.auth_kind == "token provider"

    async def test_sync_function_runs_off_the_event_loop(self) -> None:
        import threading

        threads: list[threading.Thread] = []

        def key() -> str:
            threads.append(threading.current_thread())
            return "sk-sync"

        endpoint = Endpoint.openai(api_key=key)
        assert await endpoint.aheaders() == {"Authorization": "Bearer sk-sync"}
        assert threads
        assert threads[0] is not threading.main_thread()

    async def test_async_function_serves_only_the_async_path(self) -> None:
        async def key() -> str:
            return "sk-async"

        endpoint = Endpoint.openai(api_key=key)
        assert await endpoint.aheaders() == {"Authorization": "Bearer sk-async"}
        with pytest.raises(MissingCredentialError, match="use the async API"):
            endpoint.headers()


class TestDefaultHeadersAndQuery:
    def test_openai(self) -> None:
        endpoint = Endpoint.openai(
            "https://gw.example/v1?tenant=a", api_key=KEY,
            headers={"X-Team": "imaging"}, query={"tenant": "b", "trace": 1},
        )  # fmt: skip
        assert endpoint.query == {"tenant": "b", "trace": "1"}
        assert endpoint.headers()["X-Team"] == "imaging"

    def test_azure(self) -> None:
        endpoint = Endpoint.azure(
            "https://r.openai.azure.com", deployment="d", api_key=KEY,
            headers={"X-Team": "imaging"}, query={"trace": "1"},
        )  # fmt: skip
        assert endpoint.query == {"api-version": AZURE_DEFAULT_API_VERSION, "trace": "1"}
        assert endpoint.headers()["X-Team"] == "imaging"


class TestCustomGateway:
    def test_raw_key_header(self) -> None:
        endpoint = Endpoint("https://gw.example/v1/images/generations", api_key=SecretStr(KEY),
                            auth_header="x-api-key")  # fmt: skip
        assert endpoint.headers() == {"x-api-key": KEY}

    def test_str_key_is_wrapped(self) -> None:
        endpoint = Endpoint("https://gw.example/x", api_key=KEY)  # type: ignore[arg-type]
        assert isinstance(endpoint.api_key, SecretStr)


class TestNoLeaks:
    def _endpoints(self) -> list[Endpoint]:
        return [
            Endpoint.openai(api_key=SecretStr(KEY), organization="org-1"),
            Endpoint.azure("https://r.openai.azure.com", deployment="d", api_key=KEY),
            Endpoint.azure("https://r.openai.azure.com", token_provider=lambda: KEY),
            Endpoint.openai(f"https://gw.example/v1?key={KEY}", api_key=KEY,
                            headers={"X-Api-Key": KEY}),
        ]  # fmt: skip

    def test_repr_and_str(self) -> None:
        for endpoint in self._endpoints():
            assert KEY not in repr(endpoint)
            assert KEY not in str(endpoint)
            assert "Endpoint(" in repr(endpoint)

    def test_repr_says_what_auth_is_used(self) -> None:
        endpoints = self._endpoints()
        assert "api key (Authorization)" in repr(endpoints[0])
        assert "api key (api-key)" in repr(endpoints[1])
        assert "token provider" in repr(endpoints[2])
        assert "'none'" in repr(Endpoint.openai())

    @pytest.mark.parametrize("userinfo", [f"user:{KEY}", KEY])
    def test_credentials_in_the_url_are_refused_without_echoing_them(self, userinfo: str) -> None:
        # httpx would send them as Basic auth instead of the configured key.
        for build in (
            lambda: Endpoint.openai(f"https://{userinfo}@gw.example/v1", api_key=KEY),
            lambda: Endpoint.azure(f"https://{userinfo}@r.openai.azure.com", api_key=KEY),
            lambda: Endpoint(f"https://{userinfo}@gw.example/v1/images/generations"),
        ):
            with pytest.raises(InvalidArgumentError, match="must not carry credentials") as info:
                build()
            assert KEY not in str(info.value)
            assert "gw.example" not in str(info.value)

    def test_frozen(self) -> None:
        endpoint = Endpoint.openai(api_key=KEY)
        with pytest.raises(dataclasses.FrozenInstanceError):
            endpoint.url = "https://evil.example"  # type: ignore[misc]

    def test_no_plaintext_key_in_fields(self) -> None:
        endpoint = Endpoint.openai(api_key=KEY)
        for f in dataclasses.fields(endpoint):
            value = getattr(endpoint, f.name)
            assert KEY not in repr(value)

"""Where a generation request goes and how it authenticates: URL, query, headers, credential.

One frozen value per configured endpoint, built once, so that each request only has to copy
a small dict and add the credential. The credential is an OpenAI bearer key, an Azure
``api-key`` key, or a provider called on every request: a function returning the key (as
langchain-openai's ``api_key`` accepts) or an Entra ID token provider (tokens expire; see
"Microsoft Entra ID authentication" in the Azure OpenAI docs). A missing credential raises
:class:`MissingCredentialError` before anything is sent. Keys are :class:`pydantic.SecretStr`
and never appear in ``repr``/``str`` or messages; plain-text header values exist only in the
dict handed to the HTTP client. A URL carrying credentials (``https://key@host``) is refused:
httpx would send them as HTTP Basic auth instead of the key, and they would show wherever the
URL does.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit, urlunsplit

from pydantic import SecretStr

from langchain_imagegen.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidArgumentError,
    MissingCredentialError,
)
from langchain_imagegen.providers import OPENAI, ProviderProfile, WireFormat

__all__ = [
    "AZURE_DEFAULT_API_VERSION",
    "BASE_URL_ENV",
    "OPENAI_BASE_URL",
    "ApiKey",
    "AsyncTokenProvider",
    "Endpoint",
    "TokenProvider",
    "base_url_from_env",
    "check_url",
]

OPENAI_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = ("OPENAI_BASE_URL", "OPENAI_API_BASE")
"""Where the base URL comes from when it is not given, in order (as langchain-openai reads
it)."""


def base_url_from_env() -> str | None:
    """The base URL the environment sets (:data:`BASE_URL_ENV`), if any."""
    return next((value for name in BASE_URL_ENV if (value := os.environ.get(name))), None)


#: Used for Azure deployment-style URLs when no ``api_version`` is given: the first version
#: that serves the GPT image models on that route (Microsoft Learn, "How to use image
#: generation models"; docs/models.md#sources).
AZURE_DEFAULT_API_VERSION = "2025-04-01-preview"

TokenProvider = Callable[[], str]
#: May also return a plain ``str`` (azure-identity's sync providers are accepted here too).
AsyncTokenProvider = Callable[[], "Awaitable[str] | str"]
#: What ``api_key`` may be: the key, or a function (sync or async) returning it per request.
ApiKey = SecretStr | str | TokenProvider | Callable[[], Awaitable[str]]

_PATH = "/images/generations"
_EDITS_PATH = "/images/edits"
_OPENAI_HINT = "set OPENAI_API_KEY or pass api_key="
_AZURE_HINT = (
    "set AZURE_OPENAI_API_KEY or pass api_key=, or pass azure_ad_token_provider= / "
    "azure_ad_async_token_provider= for Entra ID"
)
_ASYNC_ONLY = (
    "only an async credential is configured (an async api_key function or "
    "azure_ad_async_token_provider); use the async API (ainvoke, agenerate) or configure a "
    "sync one too"
)
_SENSITIVE = ("authorization", "api-key", "apikey", "api_key", "key", "token", "secret", "sig")


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value
    return SecretStr(value)


def _key_and_providers(
    api_key: ApiKey | None,
) -> tuple[SecretStr | None, TokenProvider | None, AsyncTokenProvider | None]:
    """Split ``api_key`` as langchain-openai does: a coroutine function serves only the async
    path, a plain function both (run in a thread on the async path)."""
    if api_key is None or isinstance(api_key, SecretStr | str):
        return _secret(api_key), None, None
    if inspect.iscoroutinefunction(api_key):
        return None, None, api_key
    return None, api_key, None  # type: ignore[return-value]


def check_url(url: str, what: str) -> SplitResult:
    """``url`` split, if it is an http(s) URL with a host and no user-info; else
    :class:`InvalidArgumentError`.

    User-info (``https://key@host``) is refused: httpx would send it as HTTP Basic auth
    instead of the configured key, and a URL is shown in reprs, dumps and logs. The message
    names neither the user-info nor the URL.
    """
    parts = urlsplit(url.strip())
    if "@" in parts.netloc:
        raise InvalidArgumentError(
            f"{what} must not carry credentials before the host ('user:key@'): httpx would "
            "send them as HTTP Basic auth instead of the API key. Remove them from the URL "
            "and pass the key as api_key="
        )
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(
            f"{what} must be an http(s) URL with a host, got scheme {parts.scheme!r} "
            f"and host {parts.hostname!r}"
        )
    return parts


def _split(url: str, what: str) -> tuple[str, dict[str, str]]:
    """``url`` without trailing slash or query, and its query as a dict."""
    parts = check_url(url, what)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, dict(parse_qsl(parts.query, keep_blank_values=True))


def _query(base: dict[str, str], extra: Mapping[str, object] | None) -> dict[str, str]:
    """The URL's own query plus ``default_query`` (which wins), as strings."""
    return {**base, **{k: str(v) for k, v in (extra or {}).items()}}


def _redacted(items: Mapping[str, str]) -> dict[str, str]:
    return {k: ("***" if any(s in k.lower() for s in _SENSITIVE) else v) for k, v in items.items()}


@dataclass(frozen=True, repr=False)
class Endpoint:
    """The full POST URL, its query, fixed headers and the credential.

    Build it with :meth:`openai` or :meth:`azure`; construct it directly for other gateways
    (``auth_header="x-api-key"`` sends the raw key in that header, ``"Authorization"`` sends
    ``Bearer <key>``). A token provider, when given, wins over ``api_key``.
    """

    url: str
    query: dict[str, str] = field(default_factory=dict, hash=False)
    static_headers: dict[str, str] = field(default_factory=dict, hash=False, repr=False)
    api_key: SecretStr | None = field(default=None, repr=False)
    auth_header: str = "Authorization"
    token_provider: TokenProvider | None = field(default=None, repr=False)
    async_token_provider: AsyncTokenProvider | None = field(default=None, repr=False)
    #: Finishes the "no credential" message: what the user should do.
    credential_hint: str = _OPENAI_HINT
    #: ``False`` for servers that run without a key (self-hosted): nothing is then sent.
    credential_required: bool = True
    #: How the body is written for the provider behind the URL (OpenAI's format: as is).
    wire: WireFormat = field(default=WireFormat())

    def __post_init__(self) -> None:
        check_url(self.url, "the endpoint URL")
        if self.api_key is not None and not isinstance(self.api_key, SecretStr):
            object.__setattr__(self, "api_key", SecretStr(self.api_key))

    # -- constructors ----------------------------------------------------------------------

    @classmethod
    def openai(
        cls,
        base_url: str | None = OPENAI_BASE_URL,
        api_key: ApiKey | None = None,
        organization: str | None = None,
        project: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, object] | None = None,
        provider: ProviderProfile = OPENAI,
    ) -> Endpoint:
        """OpenAI, an OpenAI-compatible gateway, or another ``provider``:
        ``{base_url}{provider.generations_path}`` (``/images/generations`` but for a few).

        ``base_url`` may end in ``/``, already end in the route, or carry a query string
        (kept as :attr:`query`, ``query`` added to it). ``None`` means the provider's own
        (api.openai.com for OpenAI). ``api_key`` is the key or a function returning it,
        called on every request; an async function serves only the async path (as in
        langchain-openai).
        """
        base_url = base_url or provider.base_url
        if base_url is None:
            raise ConfigurationError(
                f"{provider.title} has no public address: pass base_url= (where your server "
                "answers, e.g. http://localhost:8000/v1)"
            )
        base, url_query = _split(base_url, "base_url")
        path = provider.generations_path
        url = base if base.endswith(path) else base + path
        static: dict[str, str] = {}
        if organization:
            static["OpenAI-Organization"] = organization
        if project:
            static["OpenAI-Project"] = project
        static.update(headers or {})
        key, key_function, async_key_function = _key_and_providers(api_key)
        hint = _OPENAI_HINT
        if provider is not OPENAI:
            names = " or ".join(provider.key_env) or "its key variable"
            hint = f"set {names} or pass api_key="
        return cls(
            url=url,
            query=_query(url_query, query),
            static_headers=static,
            api_key=key,
            token_provider=key_function,
            async_token_provider=async_key_function,
            credential_hint=hint,
            credential_required=provider.key_required,
            auth_header=provider.auth_header,
            wire=provider.wire,
        )

    @classmethod
    def azure(
        cls,
        endpoint: str,
        *,
        deployment: str | None = None,
        api_version: str | None = None,
        api_key: SecretStr | str | None = None,
        token_provider: TokenProvider | None = None,
        async_token_provider: AsyncTokenProvider | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, object] | None = None,
    ) -> Endpoint:
        """Azure OpenAI (Microsoft Learn, "How to use image generation models").

        With ``deployment``: ``{endpoint}/openai/deployments/{deployment}/images/generations
        ?api-version=...`` (default :data:`AZURE_DEFAULT_API_VERSION`). Without: the v1 route
        ``{endpoint}/openai/v1/images/generations`` (``api-version`` only if given, e.g.
        ``"preview"``), where the body's ``model`` must be the deployment name. ``endpoint``
        may be the resource root or already include ``/openai`` or ``/openai/v1``.
        """
        base, url_query = _split(endpoint, "azure_endpoint")
        query = _query(url_query, query)
        if base.endswith(_PATH):
            url = base
        elif deployment:
            root = base.removesuffix("/openai/v1").removesuffix("/openai")
            url = f"{root}/openai/deployments/{quote(deployment, safe='')}{_PATH}"
        elif base.endswith("/openai/v1"):
            url = base + _PATH
        elif base.endswith("/openai"):
            url = base + "/v1" + _PATH
        else:
            url = base + "/openai/v1" + _PATH
        if api_version:
            query["api-version"] = api_version
        elif deployment and "api-version" not in query:
            query["api-version"] = AZURE_DEFAULT_API_VERSION
        return cls(
            url=url,
            query=query,
            static_headers=dict(headers or {}),
            api_key=_secret(api_key),
            auth_header="api-key",
            token_provider=token_provider,
            async_token_provider=async_token_provider,
            credential_hint=_AZURE_HINT,
        )

    # -- headers ---------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        """Static headers plus the credential (token providers are called now)."""
        if self.token_provider is not None:
            return self._bearer(_call_provider(self.token_provider))
        if self.api_key is not None and self.api_key.get_secret_value():
            return self._keyed()
        if self.async_token_provider is not None:
            raise MissingCredentialError(_ASYNC_ONLY)
        if not self.credential_required:
            return dict(self.static_headers)
        raise self._missing()

    async def aheaders(self) -> dict[str, str]:
        """As :meth:`headers`, awaiting ``async_token_provider`` when there is one; a sync
        provider runs in a thread (it may do I/O, e.g. refresh a token)."""
        if self.async_token_provider is not None:
            try:
                result = self.async_token_provider()
                token = await result if inspect.isawaitable(result) else result
            except Exception as exc:
                raise _provider_failed(exc) from exc
            return self._bearer(token)
        if self.token_provider is not None:
            return self._bearer(await asyncio.to_thread(_call_provider, self.token_provider))
        return self.headers()

    def _keyed(self) -> dict[str, str]:
        assert self.api_key is not None
        key = self.api_key.get_secret_value()
        headers = dict(self.static_headers)
        if self.auth_header.lower() == "authorization":
            headers[self.auth_header] = f"Bearer {key}"
        else:
            headers[self.auth_header] = key
        return headers

    def _bearer(self, token: object) -> dict[str, str]:
        if not isinstance(token, str) or not token:
            raise MissingCredentialError(
                "the credential provider returned no key or token (expected a non-empty string)"
            )
        headers = dict(self.static_headers)
        headers["Authorization"] = f"Bearer {token}"
        return headers

    def _missing(self) -> MissingCredentialError:
        return MissingCredentialError(f"no API key for {self.display_url}: {self.credential_hint}")

    @property
    def edits_url(self) -> str | None:
        """The edits URL beside the generations one (``.../images/edits``, OpenAI's and
        Azure's layout); ``None`` when the URL does not end in ``/images/generations``."""
        if not self.url.endswith(_PATH):
            return None
        return self.url.removesuffix(_PATH) + _EDITS_PATH

    # -- display ---------------------------------------------------------------------------

    @property
    def display_url(self) -> str:
        """The URL, safe for messages and logs (credentials in it are refused)."""
        return self.url

    @property
    def auth_kind(self) -> str:
        """``"token provider"``, ``"api key (<header>)"`` or ``"none"``: for repr and logs."""
        if self.token_provider is not None or self.async_token_provider is not None:
            return "token provider"
        if self.api_key is not None and self.api_key.get_secret_value():
            return f"api key ({self.auth_header})"
        return "none"

    def __repr__(self) -> str:
        return (
            f"Endpoint(url={self.display_url!r}, query={_redacted(self.query)!r}, "
            f"static_headers={_redacted(self.static_headers)!r}, auth={self.auth_kind!r})"
        )

    __str__ = __repr__


def _call_provider(provider: TokenProvider) -> object:
    try:
        return provider()
    except Exception as exc:
        raise _provider_failed(exc) from exc


def _provider_failed(exc: Exception) -> AuthenticationError:
    return AuthenticationError(f"the credential provider failed: {type(exc).__name__}")

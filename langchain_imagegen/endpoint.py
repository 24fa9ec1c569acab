"""Where a generation request goes and how it authenticates: URL, query, headers, credential.

One frozen value per configured endpoint, built once, so that each request only has to copy
a small dict and add the credential. The credential is an OpenAI bearer key, an Azure
``api-key`` key, or a bearer-token provider called on every request (Entra ID tokens expire;
api-facts §6). A missing credential raises :class:`MissingCredentialError` before anything is
sent. Keys are :class:`pydantic.SecretStr` and never appear in ``repr``/``str`` or messages;
plain-text header values exist only in the dict handed to the HTTP client.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from pydantic import SecretStr

from langchain_imagegen.errors import (
    AuthenticationError,
    InvalidArgumentError,
    MissingCredentialError,
)

__all__ = [
    "AZURE_DEFAULT_API_VERSION",
    "OPENAI_BASE_URL",
    "AsyncTokenProvider",
    "Endpoint",
    "TokenProvider",
]

OPENAI_BASE_URL = "https://api.openai.com/v1"
#: Used for Azure deployment-style URLs when no ``api_version`` is given: the first version
#: that serves the GPT image models on that route (api-facts §6).
AZURE_DEFAULT_API_VERSION = "2025-04-01-preview"

TokenProvider = Callable[[], str]
#: May also return a plain ``str`` (azure-identity's sync providers are accepted here too).
AsyncTokenProvider = Callable[[], "Awaitable[str] | str"]

_PATH = "/images/generations"
_OPENAI_HINT = "set OPENAI_API_KEY or pass api_key="
_AZURE_HINT = (
    "set AZURE_OPENAI_API_KEY or pass api_key=, or pass token_provider= / "
    "async_token_provider= for Entra ID"
)
_SENSITIVE = ("authorization", "api-key", "apikey", "api_key", "key", "token", "secret", "sig")


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value
    return SecretStr(value)


def _split(url: str, what: str) -> tuple[str, dict[str, str]]:
    """``url`` without trailing slash or query, and its query as a dict; http(s) only."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(
            f"{what} must be an http(s) URL with a host, got scheme {parts.scheme!r} "
            f"and host {parts.hostname!r}"
        )
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, dict(parse_qsl(parts.query, keep_blank_values=True))


def _display_url(url: str) -> str:
    """``url`` without user-info (``user:pass@``), which httpx would send as basic auth."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, ""))


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

    def __post_init__(self) -> None:
        if self.api_key is not None and not isinstance(self.api_key, SecretStr):
            object.__setattr__(self, "api_key", SecretStr(self.api_key))

    # -- constructors ----------------------------------------------------------------------

    @classmethod
    def openai(
        cls,
        base_url: str | None = OPENAI_BASE_URL,
        api_key: SecretStr | str | None = None,
        organization: str | None = None,
        project: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Endpoint:
        """OpenAI or any OpenAI-compatible gateway: ``{base_url}/images/generations``.

        ``base_url`` may end in ``/``, already end in ``/images/generations``, or carry a
        query string (kept as :attr:`query`). ``None`` means api.openai.com.
        """
        base, query = _split(base_url or OPENAI_BASE_URL, "base_url")
        url = base if base.endswith(_PATH) else base + _PATH
        static: dict[str, str] = {}
        if organization:
            static["OpenAI-Organization"] = organization
        if project:
            static["OpenAI-Project"] = project
        static.update(headers or {})
        return cls(url=url, query=query, static_headers=static, api_key=_secret(api_key))

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
    ) -> Endpoint:
        """Azure OpenAI (api-facts §6).

        With ``deployment``: ``{endpoint}/openai/deployments/{deployment}/images/generations
        ?api-version=...`` (default :data:`AZURE_DEFAULT_API_VERSION`). Without: the v1 route
        ``{endpoint}/openai/v1/images/generations`` (``api-version`` only if given, e.g.
        ``"preview"``), where the body's ``model`` must be the deployment name. ``endpoint``
        may be the resource root or already include ``/openai`` or ``/openai/v1``.
        """
        base, query = _split(endpoint, "endpoint")
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
            raise MissingCredentialError(
                "only an async token provider is configured; use the async API (agenerate) "
                "or also pass token_provider="
            )
        raise self._missing()

    async def aheaders(self) -> dict[str, str]:
        """As :meth:`headers`, awaiting ``async_token_provider`` when there is one."""
        if self.async_token_provider is not None:
            try:
                result = self.async_token_provider()
                token = await result if inspect.isawaitable(result) else result
            except Exception as exc:
                raise _provider_failed(exc) from exc
            return self._bearer(token)
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
                "the token provider returned no token (expected a non-empty string)"
            )
        headers = dict(self.static_headers)
        headers["Authorization"] = f"Bearer {token}"
        return headers

    def _missing(self) -> MissingCredentialError:
        return MissingCredentialError(f"no API key for {self.display_url}: {self.credential_hint}")

    # -- display ---------------------------------------------------------------------------

    @property
    def display_url(self) -> str:
        """The URL without credentials, safe for messages and logs."""
        return _display_url(self.url)

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
    return AuthenticationError(f"the token provider failed: {type(exc).__name__}")

"""The LangChain surface: :class:`ImageGenerationTool` and :class:`AzureImageGenerationTool`.

A call coerces what the LLM proposed (pure), runs the resulting requests (generation, over
the shared HTTP clients), and answers with text the LLM can act on plus the full
:class:`~langchain_imagegen.result.ImageGenerationResult` as the ToolMessage artifact. API
errors become error ToolMessages (``handle_tool_error``), never a crashed agent run.

Configuration follows langchain-openai's ``BaseChatOpenAI``: fields (with its aliases and
environment variables) are validated, then one ``model_validator(mode="after")`` builds the
HTTP client, the generator and what the LLM sees. Assigning a field validates it and runs
that step again (``validate_assignment``), so a change always takes effect, or is refused
with the old configuration left in place.
"""

# No ``from __future__ import annotations`` here: BaseTool reads ``_run``'s type hints on
# every call, and postponed (string) annotations would be compiled again each time.

import asyncio
import contextvars
import copy
import dataclasses
import os
import sys
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal, NamedTuple, TypeVar
from urllib.parse import urlsplit

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.messages import ImageContentBlock, TextContentBlock
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.tools import ArgsSchema, BaseTool, ToolException
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
    SkipValidation,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.v1 import ValidationError as ValidationErrorV1
from typing_extensions import Self

from langchain_imagegen.accounting import Accounting
from langchain_imagegen.budget import Budget
from langchain_imagegen.cache import ImageCache
from langchain_imagegen.client import DEFAULT_TIMEOUT, ImagesClient
from langchain_imagegen.coercion import CoercionResult, EditPlan, coerce_params
from langchain_imagegen.endpoint import (
    BASE_URL_ENV,
    OPENAI_BASE_URL,
    ApiKey,
    Endpoint,
    base_url_from_env,
    check_url,
)
from langchain_imagegen.errors import ConfigurationError, ImageGenError, ModelNotFoundError
from langchain_imagegen.events import EVENT_NAME
from langchain_imagegen.generation import AsyncEventSink, Edit, EventSink, ImageGenerator, Plan
from langchain_imagegen.limits import ImagesPerMinute, RequestLimits
from langchain_imagegen.pricing import CostEstimate, PriceTable, default_price_table
from langchain_imagegen.providers import OPENAI, ProviderProfile, provider_for
from langchain_imagegen.registry import ImageModelProfile, get_profile
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.retry import RetryPolicy
from langchain_imagegen.schema import build_args_schema
from langchain_imagegen.storage import DEFAULT_LINK_EXPIRES_IN, ImageStoreBase, is_url, open_store

__all__ = [
    "EVENT_NAME",
    "AzureImageGenerationTool",
    "BaseImageGenerationTool",
    "ImageGenerationTool",
    "ToolContent",
    "ToolOutput",
]

ToolContent = str | list[TextContentBlock | ImageContentBlock]
"""What the LLM reads: the text alone, or the text plus image blocks (``content_images``)."""


class ToolOutput(NamedTuple):
    """What ``_run`` and ``_arun`` return (``response_format="content_and_artifact"``): the
    ToolMessage's content and its artifact.

    A named class rather than ``tuple[ToolContent, ImageGenerationResult]``: ``BaseTool``
    resolves ``_run``'s type hints on every call, and a class is one hint to resolve where
    the nested generic is a tree of them.
    """

    content: ToolContent
    artifact: ImageGenerationResult


Timeout = float | tuple[float, float] | httpx.Timeout | None
"""Seconds per response, a ``(connect, read)`` pair, an ``httpx.Timeout``, or None."""

_OPENAI_HOST = httpx.URL(OPENAI_BASE_URL).host
# Injected httpx clients and rate limiters belong to the caller: copies share them (a copy
# counts against the same limit), pickles refuse them.
_SHARED_ON_COPY = frozenset(
    {"http_client", "http_async_client", "rate_limiter", "image_rate_limiter", "budget", "cache"}
)
# Set while a copy or an unpickled tool is configured: it already warned as the original.
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("imagegen_quiet", default=False)
# A generation's CoercionResult or an edit's EditPlan (both frozen dataclasses with requests).
_PlanT = TypeVar("_PlanT", CoercionResult, EditPlan)


def _graph_stream_writer() -> Callable[[Any], None] | None:
    """LangGraph's stream writer when the tool runs inside a graph (``stream_mode="custom"``
    receives what it is given), else ``None``. LangGraph is not a dependency: a graph that is
    running has imported it, so it is looked for only in ``sys.modules``."""
    config = sys.modules.get("langgraph.config")
    if config is None:
        return None
    try:
        writer: Callable[[Any], None] = config.get_stream_writer()
    except (RuntimeError, LookupError):  # outside any runnable, or in one that is no graph
        return None
    return writer


def _validation_message(error: ValidationError | ValidationErrorV1) -> str:
    """Tell the LLM which argument was wrong and how, not just 'validation error'."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in error.errors()
    )
    return f"Invalid arguments for the image tool: {problems}. Fix them and call again."


def _schema_as_json(schema: Any) -> Any:
    """``model_dump_json``: a schema class has no JSON form; its JSON schema stands in."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    return schema if isinstance(schema, dict) else str(schema)


def _callable_as_json(value: Any) -> Any:
    """``model_dump_json``: a function is written as its name, a secret masked."""
    if isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, SecretStr):
        return str(value)  # '**********'
    return getattr(value, "__qualname__", None) or type(value).__name__


def _timeout_as_json(value: Any) -> Any:
    return value.as_dict() if isinstance(value, httpx.Timeout) else value


# BaseTool's callable and schema-class fields make ``model_dump_json`` raise; these keep it
# working (``model_dump`` is unchanged).
_SchemaJson = PlainSerializer(_schema_as_json, when_used="json-unless-none")
_CallableJson = PlainSerializer(_callable_as_json, when_used="json-unless-none")
_TimeoutJson = PlainSerializer(_timeout_as_json, when_used="json-unless-none")
# A provider dumps as its name (a registered profile is looked up by it again).
_ProviderJson = PlainSerializer(
    lambda value: value if isinstance(value, str) else value.name, when_used="json-unless-none"
)


def _http_timeout(timeout: Timeout, connect: float) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, tuple):
        connect_s, read_s = timeout
        return httpx.Timeout(read_s, connect=connect_s)
    return httpx.Timeout(timeout, connect=connect)  # None: no per-read limit


def _user_stacklevel() -> int:
    """The stack level of the first frame outside this package and pydantic, so a warning
    points at the user's ``ImageGenerationTool(...)`` or ``tool.model = ...`` line."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        ("langchain_imagegen.", "pydantic", "langchain_core.")
    ):
        frame, level = frame.f_back, level + 1
    return level


class BaseImageGenerationTool(BaseTool):
    """What every flavour shares: the model, limits, storage, the calls.

    Subclasses declare where requests go and how they authenticate (their own fields, read
    from their own environment variables) by implementing :meth:`_endpoint`.
    """

    name: str = "generate_image"
    description: str = ""
    """Default: derived from the model. A description you set is kept across changes."""
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    args_schema: Annotated[ArgsSchema | None, SkipValidation(), _SchemaJson] = Field(
        default=None, description="The tool schema."
    )
    """Default: derived from the model, ``max_images`` and the developer-fixed parameters.
    A schema you set is kept across changes."""
    handle_tool_error: Annotated[
        bool | str | Callable[[ToolException], str] | None, _CallableJson
    ] = True
    handle_validation_error: Annotated[
        bool | str | Callable[[ValidationError | ValidationErrorV1], str] | None, _CallableJson
    ] = _validation_message

    model: str = Field(default="gpt-image-2", validation_alias=AliasChoices("model", "model_name"))
    """Model name sent to the API (a gateway's model or an Azure deployment name works).
    Alias ``model_name`` (langchain-openai's field name)."""
    model_family: str | None = None
    """A known model this one behaves like, e.g. ``"dall-e-3"`` for a gateway's Flux or an
    Azure deployment named ``"images"``. Default: looked up from ``model``."""
    model_profile: ImageModelProfile | None = None
    """A complete custom capability profile; overrides ``model_family``."""
    timeout: Annotated[Timeout, _TimeoutJson] = Field(
        default=DEFAULT_TIMEOUT.read, validation_alias=AliasChoices("timeout", "request_timeout")
    )
    """Seconds to wait for one response (gpt-image-2 at high quality and 4K takes minutes),
    a ``(connect, read)`` pair, an ``httpx.Timeout``, or None for no per-response limit
    (``retry_budget`` still bounds the call). Alias ``request_timeout``."""
    connect_timeout: float = Field(default=DEFAULT_TIMEOUT.connect or 10.0, gt=0)
    """Seconds to connect, when ``timeout`` is a number or None."""
    max_retries: int = Field(default=2, ge=0)
    retry_budget: float = Field(default=900.0, gt=0)
    """The one number that bounds a whole tool call, in wall-clock seconds: every attempt,
    every wait between attempts, every parallel request of a fan-out and every download.
    When it runs out the call ends with a timeout error. ``timeout`` only bounds a single
    response; this bounds the call."""
    max_images: int = Field(default=4, ge=1)
    """Most images one call may produce; larger requests are clamped and reported. The
    schema the LLM sees says the same."""
    partial_images: int = Field(default=0, ge=0, le=3)
    """Streamed previews per image (0 to 3; 0: no streaming). For models that stream (the
    GPT image family) each request then streams, one image per request, and each preview is
    saved (``preview-<hash16>.<ext>``, never listed among the images) and announced as a
    ``partial`` event (``astream_events``, LangGraph's custom stream, the CLI). For other
    models the setting is reported as not applied. Not offered to the LLM."""
    image_params: dict[str, Any] = Field(default_factory=dict)
    """Parameters fixed by the developer rather than chosen by the LLM (hidden from it),
    coerced to fit the model like the LLM's, e.g. ``{"quality": "high", "moderation": "low"}``."""
    extra_body: dict[str, Any] = Field(default_factory=dict)
    """Extra JSON properties merged into every request body after coercion, sent exactly
    as given: never checked, never reported to the LLM (and hidden from its schema), and
    recorded in the artifact's request bodies. For what a gateway accepts beyond the
    Images API, e.g. ``{"seed": 42, "negative_prompt": "text", "steps": 28}``."""
    default_headers: dict[str, str] | None = None
    """Headers added to every generation request (not to image downloads)."""
    default_query: dict[str, Any] | None = None
    """Query parameters added to every generation request URL."""
    output_dir: str = "generated_images"
    """Where images are saved, named by content hash (``<hash16>.<ext>``): a local
    directory, or any fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``az://...``,
    ``memory://...``; install the extra: ``langchain-imagegen[s3]``, ``[gcs]``, ``[azure]``).
    A relative path is resolved against the working directory when the tool is configured
    (constructed, or a field assigned). With a URL, the LLM is given an http(s) link per
    image (see ``public_base_url`` and ``link_expires_in``), URL images from the server are
    copied into storage (so their link outlives the server's one-hour URL), and each
    object is written in one PUT with its content type. Credentials never go in the URL:
    put them in ``storage_options`` or where the filesystem looks (environment, profiles)."""
    storage_options: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)
    """Passed to fsspec with a URL ``output_dir`` (``fsspec.core.url_to_fs(output_dir,
    **storage_options)``, as pandas and dask do), e.g. ``{"endpoint_url": ..., "key": ...,
    "secret": ...}`` for s3fs. Treated as a secret: never in ``repr``, dumps, errors,
    events or the artifact."""
    link_expires_in: int = Field(default=DEFAULT_LINK_EXPIRES_IN, gt=0)
    """Seconds a signed link to a remotely stored image stays valid (default one hour).
    The artifact keeps each image's storage ``uri`` and ``link_expires_at``:
    ``result.resign_links(tool)`` gives fresh links later."""
    public_base_url: str | None = None
    """The public http(s) URL of the bucket (a public bucket, a CDN): links are this joined
    with the object key (``<prefix>/<hash16>.png``), unsigned and never expiring. Without
    it, links are signed by the filesystem (s3fs, gcsfs, adlfs can sign). A filesystem that
    cannot sign (``memory://``, ``file://``) and no ``public_base_url``: the LLM is given
    the storage URI and told it has no http link."""
    download_urls: bool = False
    """Download URL images at once: API URLs expire about an hour after creation."""
    max_download_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    content_images: Literal["none", "url", "base64"] = "none"
    """Whether the ToolMessage content also carries the images, as standard image content
    blocks after the text, so a vision model can look at what it made. ``"none"`` (text
    only), ``"url"`` (URLs where the server gave one, else base64 of the saved file) or
    ``"base64"`` (the saved file's bytes, else the URL); see
    :meth:`ImageGenerationResult.to_content_blocks`. Base64 images are sent again with every
    later model call of the conversation."""
    prices: PriceTable | None = Field(default=None, exclude=True)
    """The prices costs and estimates are computed with (default: OpenAI's published prices,
    :func:`~langchain_imagegen.pricing.default_price_table`; add a gateway's own with
    ``default_price_table().with_prices(ModelPrice(...))``). A model without a price has no
    cost in its results (docs/cost.md)."""
    max_cost_per_call: float | None = Field(default=None, ge=0)
    """Refuse, before sending anything, a call whose estimated cost is higher (USD)."""
    budget: Budget | None = Field(default=None, exclude=True)
    """A spending limit shared by every call (and every tool) given it, e.g.
    ``InMemoryBudget(5.00)``: each call reserves its estimate before its first request and
    is refused, sending nothing, when it does not fit; then the cost computed from the
    returned usage is recorded (docs/cost.md#budgets)."""
    cache: ImageCache | None = Field(default=None, exclude=True)
    """Answer identical requests from an earlier result's stored images, e.g.
    ``SqliteImageCache("~/.cache/langchain-imagegen/results.db")``; off by default. Pass
    ``regenerate=True`` to :meth:`generate` to bypass it (docs/cost.md#cache)."""
    cache_ttl: float | None = Field(default=None, gt=0)
    """Seconds a cached result is used (default: until its images are gone)."""
    rate_limiter: BaseRateLimiter | None = Field(default=None, exclude=True)
    """Acquired before every HTTP request a call makes (fan-out requests too), as chat
    models' ``rate_limiter``: e.g. ``InMemoryRateLimiter(requests_per_second=0.5)``, shared
    by several tools to limit them together. A 429's ``Retry-After`` still wins."""
    image_rate_limiter: BaseRateLimiter | None = Field(default=None, exclude=True)
    """Acquired once per image a request asks for: for providers that limit images rather
    than requests. ``images_per_minute`` builds one."""
    images_per_minute: float | None = Field(default=None, gt=0)
    """At most this many images a minute (OpenAI's image models are limited so, e.g. 5 a
    minute on a tier-1 account): builds an :class:`ImagesPerMinute` limiter unless
    ``image_rate_limiter`` is set. ``image_tools`` shares one between its tools."""
    http_client: httpx.Client | None = Field(default=None, exclude=True, repr=False)
    """An ``httpx.Client`` for the sync path (proxies, custom TLS); never closed by the tool."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True, repr=False)
    """An ``httpx.AsyncClient`` for the async path; never closed by the tool."""

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        validate_assignment=True,
        populate_by_name=True,
        # A field another flavour has (base_url on Azure) is an error, not silently ignored.
        extra="forbid",
        # A rejected value may be a secret (a key pasted into the wrong field).
        hide_input_in_errors=True,
    )

    _profile: ImageModelProfile | None = PrivateAttr(default=None)
    _client: ImagesClient | None = PrivateAttr(default=None)
    _client_inputs: tuple[Any, ...] | None = PrivateAttr(default=None)
    _generator: ImageGenerator | None = PrivateAttr(default=None)
    _store: ImageStoreBase | None = PrivateAttr(default=None)
    _derived_schema: Any = PrivateAttr(default=None)
    _derived_description: str | None = PrivateAttr(default=None)
    _warned: tuple[str, bool] | None = PrivateAttr(default=None)
    _applied: dict[str, Any] | None = PrivateAttr(default=None)
    _images_per_minute: ImagesPerMinute | None = PrivateAttr(default=None)
    _accounting: Accounting | None = PrivateAttr(default=None)

    # --- configuration (one place) --------------------------------------------------------

    @model_validator(mode="after")
    def _configure(self) -> Self:
        """Build the client, generator, schema and description from the fields.

        Runs after construction and after every assignment. If the new configuration is
        refused, the previous field values are restored before the error propagates.
        """
        try:
            self._apply()
        except BaseException:
            if self._applied is not None:  # an assignment: undo it
                self.__dict__.update(self._applied)
            raise
        self._applied = dict(self.__dict__)
        return self

    def _apply(self) -> None:
        # Everything that can refuse the configuration comes first; state changes after.
        profile = self._resolve_profile()
        endpoint = self._endpoint()
        if (self.budget is not None or self.max_cost_per_call is not None) and (
            self._price_table().get(profile.name) is None
        ):
            raise ConfigurationError(
                f"no price is known for {profile.name}, so a budget or max_cost_per_call "
                "cannot check its calls; add its price with prices=default_price_table()."
                "with_prices(ModelPrice(...)) (docs/cost.md)"
            )
        retry = RetryPolicy(max_retries=self.max_retries, total_budget=self.retry_budget)
        timeout = _http_timeout(self.timeout, self.connect_timeout)
        store = open_store(
            self.output_dir,
            storage_options=self.storage_options,
            link_expires_in=self.link_expires_in,
            public_base_url=self.public_base_url,
        )
        # Derived only while not set by the user: a value the user set is theirs to keep.
        derive_schema = self.args_schema is None or self.args_schema is self._derived_schema
        if derive_schema:
            schema = self._derive_schema(profile, hidden={*self.image_params, *self.extra_body})
        derive_description = not self.description or self.description == self._derived_description

        self._profile = profile
        self._warn_if_shut_down()
        inputs = (endpoint, timeout, retry, self.http_client, self.http_async_client)
        if self._client is None or inputs != self._client_inputs:
            old, self._client = (
                self._client,
                ImagesClient(
                    endpoint,
                    timeout=timeout,
                    retry=retry,
                    http_client=self.http_client,
                    async_http_client=self.http_async_client,
                ),
            )
            self._client_inputs = inputs
            if old is not None:
                old.close()
        self._store = store
        self._generator = ImageGenerator(
            self._client,
            store,
            download_urls=self.download_urls,
            max_download_bytes=self.max_download_bytes,
            limits=RequestLimits(self.rate_limiter, self._image_limiter()),
            prices=self._price_table(),
        )
        self._accounting = Accounting(
            prices=self._price_table(),
            store=store,
            budget=self.budget,
            max_cost_per_call=self.max_cost_per_call,
            cache=self.cache,
            cache_ttl=self.cache_ttl,
        )
        # object.__setattr__: a plain assignment would validate and run this again.
        if derive_schema:
            object.__setattr__(self, "args_schema", schema)
            self._derived_schema = schema
        if derive_description:
            description = self._derive_description(profile)
            object.__setattr__(self, "description", description)
            self._derived_description = description
        if "_tool_call_schema_memo" in self.__private_attributes__:
            # langchain-core >= 1.8 memoizes tool_call_schema, clearing it in __setattr__,
            # which the object.__setattr__ calls above do not go through.
            self._tool_call_schema_memo = None

    def _price_table(self) -> PriceTable:
        return self.prices if self.prices is not None else default_price_table()

    def _image_limiter(self) -> BaseRateLimiter | None:
        """The per-image limiter: the one given, else one for ``images_per_minute``, kept
        while that number stays (its bucket is the tool's state)."""
        if self.image_rate_limiter is not None or self.images_per_minute is None:
            return self.image_rate_limiter
        kept = self._images_per_minute
        if kept is None or kept.images_per_minute != self.images_per_minute:
            kept = self._images_per_minute = ImagesPerMinute(self.images_per_minute)
        return kept

    def _derive_schema(self, profile: ImageModelProfile, hidden: set[str]) -> Any:
        """The args schema the LLM sees, when the user set none."""
        return build_args_schema(profile, max_images=self.max_images, hidden=hidden)

    def _derive_description(self, profile: ImageModelProfile) -> str:
        """The description the LLM sees, when the user set none."""
        return (
            f"Generate images from a text description with {profile.name}. Returns where "
            "each image is (a file path or URL), its handle and the prompt the model actually "
            "used. Arguments that don't fit the model are adjusted and the changes reported."
        )

    def _resolve_profile(self) -> ImageModelProfile:
        if self.model_profile is not None:
            return self.model_profile.renamed(self.model)
        return self._provider().profile(self.model_family or self.model).renamed(self.model)

    def _provider(self) -> ProviderProfile:
        """The image API the requests go to; each flavour says (OpenAI's format here)."""
        return OPENAI

    @property
    def provider_profile(self) -> ProviderProfile:
        """The image API the requests go to (:mod:`langchain_imagegen.providers`)."""
        return self._provider()

    def _endpoint(self) -> Endpoint:
        """Where requests go and how they authenticate; each flavour says."""
        msg = (
            f"{type(self).__name__} does not say where requests go: use ImageGenerationTool "
            "or AzureImageGenerationTool, or implement _endpoint()"
        )
        raise NotImplementedError(msg)

    def _serves_openai_lifecycle(self) -> bool:
        """Whether OpenAI's own shutdown dates apply to this tool's models."""
        return False

    def _warn_if_shut_down(self) -> None:
        """Warn the developer (once per model and endpoint) about a model OpenAI shut down."""
        key = (self.model, self._serves_openai_lifecycle())
        if key == self._warned:
            return
        self._warned = key
        note = get_profile(self.model).lifecycle_note()  # the name itself, not a family
        if note and key[1] and not _QUIET.get():
            warnings.warn(note, FutureWarning, stacklevel=_user_stacklevel())

    @field_validator("output_dir")
    @classmethod
    def _output_dir_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("output_dir must name a directory")
        return value

    @field_validator("output_dir")
    @classmethod
    def _no_credentials_in_output_dir(cls, value: str) -> str:
        if is_url(value) and any(urlsplit(part).password for part in value.split("::")):
            raise ValueError(
                "output_dir must not carry credentials ('user:secret@'): it is shown in repr "
                "and dumps. Pass them in storage_options"
            )
        return value

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url_is_http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("public_base_url must be an http(s) URL with a host")
        if "@" in parts.netloc:
            raise ValueError("public_base_url must not carry credentials ('user:secret@')")
        return value.strip()

    @property
    def store(self) -> ImageStoreBase:
        """Where images are saved (a local directory or an fsspec URL), built with the
        configuration; ``result.resign_links(tool)`` signs links through it."""
        assert self._store is not None
        return self._store

    @property
    def profile(self) -> ImageModelProfile:
        """The capability profile used for coercion and the schema."""
        # Read once: pydantic looks a private attribute up through __getattr__ on every read.
        profile = self._profile
        assert profile is not None
        return profile

    @property
    def client(self) -> ImagesClient:
        """The HTTP client, built with the configuration and rebuilt when it changes."""
        assert self._client is not None
        return self._client

    def close(self) -> None:
        """Close the HTTP connections (they reopen on the next call)."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the HTTP connections (they reopen on the next call)."""
        if self._client is not None:
            await self._client.aclose()

    # --- copies and pickles ---------------------------------------------------------------

    def _configured_fields(
        self, *, deep: bool, memo: dict[int, Any] | None = None
    ) -> dict[str, Any]:
        """Field values to rebuild this tool from: derived ones are left to be derived again,
        injected HTTP clients are shared."""
        data: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = self.__dict__[name]
            if (name == "args_schema" and value is self._derived_schema) or (
                name == "description" and value == self._derived_description
            ):
                continue
            if deep and name not in _SHARED_ON_COPY:
                value = copy.deepcopy(value, memo)
            data[name] = value
        return data

    def _rebuilt(self, data: dict[str, Any]) -> Self:
        token = _QUIET.set(True)
        try:
            return type(self)(**data)
        finally:
            _QUIET.reset(token)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy, validated and configured like a new tool: ``update`` takes effect (a new
        model gets its own schema and description) and the copy has its own HTTP client."""
        return self._rebuilt({**self._configured_fields(deep=deep), **(update or {})})

    def __copy__(self) -> Self:
        return self.model_copy()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        copied = self._rebuilt(self._configured_fields(deep=True, memo=memo))
        if memo is not None:
            memo[id(self)] = copied
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        injected = [name for name in sorted(_SHARED_ON_COPY) if self.__dict__.get(name)]
        if injected:
            msg = (
                f"cannot pickle {type(self).__name__} with an injected {' and '.join(injected)}:"
                " httpx clients and rate limiters hold connections and locks. Pickle the tool "
                "without them and "
                "set them again after loading."
            )
            raise TypeError(msg)
        return {"fields": self._configured_fields(deep=False)}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        rebuilt = self._rebuilt(state["fields"])
        for attribute in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__"):
            object.__setattr__(self, attribute, copy.copy(getattr(rebuilt, attribute)))
        object.__setattr__(self, "__pydantic_private__", rebuilt.__pydantic_private__)

    # --- calls ---------------------------------------------------------------------------

    def coerce(self, args: Mapping[str, Any]) -> CoercionResult:
        """The requests these LLM arguments become: developer-fixed values win, and
        ``extra_body`` is merged into each body as given."""
        return self._coerced(coerce_params, args)

    def _coerced(self, coerce: Callable[..., _PlanT], args: Mapping[str, Any]) -> _PlanT:
        """``args`` coerced by ``coerce`` (generation's or the edits') with this tool's
        settings, then ``extra_body`` merged into each request as given (never checked)."""
        plan = coerce(
            self.profile,
            args,
            max_images=self.max_images,
            fixed=self.image_params,
            partial_images=self.partial_images,
        )
        if not self.extra_body:
            return plan
        bodies = tuple({**body, **self.extra_body} for body in plan.requests)
        return dataclasses.replace(plan, requests=bodies)

    def generate(
        self,
        args: Mapping[str, Any],
        *,
        on_event: EventSink | None = None,
        regenerate: bool = False,
    ) -> ImageGenerationResult:
        """Generate images outside LangChain; raises :class:`ImageGenError` subclasses.
        ``regenerate`` bypasses the cache (the new result replaces the cached one)."""
        return self._carry_out(self.coerce(args), None, on_event, regenerate)

    async def agenerate(
        self,
        args: Mapping[str, Any],
        *,
        on_event: AsyncEventSink | None = None,
        regenerate: bool = False,
    ) -> ImageGenerationResult:
        """Async :meth:`generate`, on the shared ``httpx.AsyncClient``."""
        return await self._acarry_out(self.coerce(args), None, on_event, regenerate)

    def estimate_cost(self, args: Mapping[str, Any]) -> CostEstimate | None:
        """What these LLM arguments would cost, estimated from the published prices, without
        sending anything (``None``: no price for the model or its settings)."""
        accounting = self._accounting
        assert accounting is not None
        return accounting.estimate(self.coerce(args))

    def _carry_out(
        self, plan: Plan, edit: Edit | None, on_event: EventSink | None, regenerate: bool
    ) -> ImageGenerationResult:
        """Send ``plan`` (as an edit of ``edit``'s files if given) through the cache and the
        budget (:class:`~langchain_imagegen.accounting.Accounting`)."""
        generator, accounting = self._generator, self._accounting
        assert generator is not None
        assert accounting is not None
        if accounting.cache is None and not accounting.prices_calls:
            return generator.run(plan, on_event, edit)
        return accounting.run(
            plan,
            edit,
            self._endpoint_url(edit),
            lambda: generator.run(plan, on_event, edit),
            regenerate=regenerate,
        )

    async def _acarry_out(
        self, plan: Plan, edit: Edit | None, on_event: AsyncEventSink | None, regenerate: bool
    ) -> ImageGenerationResult:
        generator, accounting = self._generator, self._accounting
        assert generator is not None
        assert accounting is not None
        if accounting.cache is None and not accounting.prices_calls:
            return await generator.arun(plan, on_event, edit)
        return await accounting.arun(
            plan,
            edit,
            self._endpoint_url(edit),
            lambda: generator.arun(plan, on_event, edit),
            regenerate=regenerate,
        )

    def _endpoint_url(self, edit: Edit | None) -> str:
        """The URL a plan goes to, for its cache key."""
        return self.client.request_url(edit=edit is not None)

    def _content(self, result: ImageGenerationResult) -> ToolContent:
        if self.content_images == "none":
            return result.to_text()
        return result.to_content_blocks(self.content_images)

    def _agent_message(self, error: ImageGenError) -> str:
        """The error as the LLM reads it; a missing model names its shutdown and successor."""
        note = get_profile(self.model).lifecycle_note()
        if isinstance(error, ModelNotFoundError) and note:
            return f"{error}. Note: {note}; a person must configure another model."
        return error.agent_message()

    def _run(self, run_manager: CallbackManagerForToolRun | None = None, **args: Any) -> ToolOutput:
        sink: EventSink | None = None
        # Progress events only when someone can receive them (astream_events, a tracer,
        # callbacks=..., a LangGraph stream): dispatching configures a callback manager
        # each time.
        dispatch = run_manager is not None and bool(run_manager.inheritable_handlers)
        writer = _graph_stream_writer()
        if dispatch or writer is not None:

            def sink(stage: str, data: dict[str, Any]) -> None:
                event = {"stage": stage, **data}
                if dispatch:
                    dispatch_custom_event(EVENT_NAME, event)
                if writer is not None:
                    writer({"event": EVENT_NAME, **event})

        try:
            result = self._call(args, sink)
        except ImageGenError as error:
            raise ToolException(self._agent_message(error)) from error
        return ToolOutput(self._content(result), result)

    def _call(self, args: Mapping[str, Any], on_event: EventSink | None) -> ImageGenerationResult:
        """What one tool call does (the edit tools edit instead)."""
        return self.generate(args, on_event=on_event)

    async def _acall(
        self, args: Mapping[str, Any], on_event: AsyncEventSink | None
    ) -> ImageGenerationResult:
        return await self.agenerate(args, on_event=on_event)

    async def _arun(
        self, run_manager: AsyncCallbackManagerForToolRun | None = None, **args: Any
    ) -> ToolOutput:
        sink: AsyncEventSink | None = None
        dispatch = run_manager is not None and bool(run_manager.inheritable_handlers)
        writer = _graph_stream_writer()
        if dispatch or writer is not None:

            async def sink(stage: str, data: dict[str, Any]) -> None:
                event = {"stage": stage, **data}
                if dispatch:
                    await adispatch_custom_event(EVENT_NAME, event)
                if writer is not None:
                    writer({"event": EVENT_NAME, **event})

        try:
            result = await self._acall(args, sink)
        except ImageGenError as error:
            raise ToolException(self._agent_message(error)) from error
        if self.content_images == "none":
            return ToolOutput(result.to_text(), result)
        return ToolOutput(await asyncio.to_thread(self._content, result), result)  # reads files


def _configured_provider(named: object, base_url: object) -> ProviderProfile:
    """:func:`~langchain_imagegen.providers.provider_for` of the fields as given;
    ``ValueError`` (a field error) for a ``provider=`` that names none."""
    if named is not None and not isinstance(named, str | ProviderProfile):
        kind = type(named).__name__
        msg = f"provider must be a provider's name or a ProviderProfile, not {kind}"
        raise ValueError(msg)
    try:
        return provider_for(named, base_url if isinstance(base_url, str) else None)
    except KeyError as error:
        raise ValueError(str(error.args[0])) from None


ApiKeyField = Annotated[
    SecretStr | Callable[[], str] | Callable[[], Awaitable[str]] | None, _CallableJson
]


class ImageGenerationTool(BaseImageGenerationTool):
    """Generate images from a text prompt through OpenAI or any OpenAI-compatible Images API.

    Setup:
        ``pip install langchain-imagegen`` and ``export OPENAI_API_KEY=...``
        (``OPENAI_BASE_URL`` or ``OPENAI_API_BASE``, ``OPENAI_ORG_ID`` or
        ``OPENAI_ORGANIZATION``, and ``OPENAI_PROJECT_ID`` are read too, as langchain-openai
        and openai-python read them).

    Instantiation:
        ```python
        from langchain_imagegen import ImageGenerationTool

        tool = ImageGenerationTool(model="gpt-image-2", output_dir="images")
        ```

    Invocation with a ToolCall (the artifact is the full structured result):
        ```python
        message = tool.invoke(
            {"name": "generate_image", "args": {"prompt": "a red fox"}, "id": "1",
             "type": "tool_call"}
        )
        message.artifact.images[0].path
        ```

    Storage outside the process (``pip install 'langchain-imagegen[s3]'``): the LLM gets an
    http(s) link per image, the artifact the object's URI, its link and the link's expiry.
        ```python
        tool = ImageGenerationTool(
            output_dir="s3://my-bucket/images",
            storage_options={"profile": "images-writer"},  # passed to s3fs; never shown
            link_expires_in=3600,  # signed links; or public_base_url="https://cdn.example"
        )
        result = ImageGenerationResult.from_artifact(message)  # e.g. after a reload
        result.resign_links(tool).images[0].link  # a fresh signed link
        ```
    """

    api_key: ApiKeyField = Field(
        default_factory=secret_from_env("OPENAI_API_KEY", default=None),
        validation_alias=AliasChoices("api_key", "openai_api_key"),
    )
    """The key, or a function returning it, called on every request (an ``async def`` one
    only on the async path), as langchain-openai accepts. Alias ``openai_api_key``."""
    base_url: str = Field(
        default_factory=from_env(list(BASE_URL_ENV), default=OPENAI_BASE_URL),
        validation_alias=AliasChoices("base_url", "openai_api_base"),
    )
    """The API root, e.g. a gateway's ``https://gateway.example/v1``. Credentials in it
    (``https://key@host``) are refused. Alias ``openai_api_base``."""
    organization: str | None = Field(
        default_factory=from_env(["OPENAI_ORG_ID", "OPENAI_ORGANIZATION"], default=None),
        validation_alias=AliasChoices("organization", "openai_organization"),
    )
    """Sent as ``OpenAI-Organization``. Alias ``openai_organization``."""
    project: str | None = Field(default_factory=from_env("OPENAI_PROJECT_ID", default=None))
    """Sent as ``OpenAI-Project``."""
    provider: Annotated[str | ProviderProfile | None, SkipValidation(), _ProviderJson] = None
    """The image API behind ``base_url`` when it is not OpenAI's format: ``"xai"``,
    ``"together"``, ``"deepinfra"``, ``"gemini"``, ``"openrouter"``, ``"vllm-omni"``,
    ``"localai"`` or a registered :class:`~langchain_imagegen.providers.ProviderProfile`.
    Given, it sets the defaults of ``base_url`` (its public API), ``model`` (its default
    model) and the key (its environment variable, e.g. ``XAI_API_KEY``; never
    ``OPENAI_API_KEY`` unless ``base_url`` was set too). ``None``: known from ``base_url``'s
    host (``https://api.x.ai/v1`` is xAI), else OpenAI's format (docs/providers.md)."""

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any) -> Any:
        """The provider's default model where the caller gave none, and a named provider's
        base URL where the caller gave none (in the fields or ``OPENAI_BASE_URL``). The
        provider is the named one, else the one ``base_url``'s host names."""
        if not isinstance(data, dict):
            return data
        url_key = next((key for key in ("base_url", "openai_api_base") if key in data), None)
        url = data[url_key] if url_key else base_url_from_env()
        named = data.get("provider")
        provider = _configured_provider(named, url)
        data = dict(data)
        if provider is not OPENAI and not {"model", "model_name"} & data.keys():
            data["model"] = provider.default_model
        if named is not None and url_key is None and not url and provider.base_url:
            data["base_url"] = provider.base_url
        return data

    @field_validator("base_url")
    @classmethod
    def _no_credentials_in_base_url(cls, value: str) -> str:
        check_url(value, "base_url")
        return value

    def _provider(self) -> ProviderProfile:
        return provider_for(self.provider, self.base_url)

    def _endpoint(self) -> Endpoint:
        provider = self._provider()
        if provider is OPENAI:
            return Endpoint.openai(
                base_url=self.base_url,
                api_key=self.api_key,
                organization=self.organization,
                project=self.project,
                headers=self.default_headers,
                query=self.default_query,
            )
        # Never another provider's format to OpenAI's API: the provider's own address instead
        # (provider= may be assigned after construction); Endpoint.openai refuses a provider
        # that has none.
        base_url = None if self.base_url == OPENAI_BASE_URL else self.base_url
        # OpenAI's organization and project headers are not sent to another provider.
        return Endpoint.openai(
            base_url=base_url,
            api_key=self._provider_key(provider),
            headers=self.default_headers,
            query=self.default_query,
            provider=provider,
        )

    def _provider_key(self, provider: ProviderProfile) -> ApiKey | None:
        """The key for another provider: the one given, else its environment variable; the
        ``OPENAI_API_KEY`` default only when ``base_url`` was pointed there by the caller
        (inferred from it, or another address than the provider's own): an OpenAI key is
        never sent to a provider merely named."""
        if "api_key" in self.model_fields_set:
            return self.api_key
        for name in provider.key_env:
            if value := os.environ.get(name):
                return SecretStr(value)
        pointed_elsewhere = self.provider is None or self.base_url != provider.base_url
        return self.api_key if pointed_elsewhere else None

    def _serves_openai_lifecycle(self) -> bool:
        return httpx.URL(self.base_url).host == _OPENAI_HOST


class AzureImageGenerationTool(BaseImageGenerationTool):
    """Azure OpenAI: deployment URLs or the v1 route, ``api-key`` or Microsoft Entra ID.

    ``model`` is the deployment name (aliases ``azure_deployment`` and ``deployment_name``,
    as in langchain-openai's ``AzureChatOpenAI``); set ``model_family`` to the model it
    hides (``"gpt-image-2"`` by default) so coercion and the schema fit it. Reads
    ``AZURE_OPENAI_API_KEY``, ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_AD_TOKEN`` and
    ``OPENAI_API_VERSION``; never ``OPENAI_API_KEY`` (an OpenAI key is not an Azure key).
    """

    # Validators are built on first use, not at import, so non-Azure users skip building them.
    model_config = ConfigDict(defer_build=True)

    model: str = Field(
        default="gpt-image-2",
        validation_alias=AliasChoices("model", "azure_deployment", "deployment_name"),
    )
    """The deployment name. Aliases ``azure_deployment`` and ``deployment_name``."""
    api_key: Annotated[SecretStr | None, _CallableJson] = Field(
        default_factory=secret_from_env("AZURE_OPENAI_API_KEY", default=None),
        validation_alias=AliasChoices("api_key", "openai_api_key"),
    )
    """The resource's key, sent as ``api-key``. Alias ``openai_api_key``."""
    azure_endpoint: str | None = Field(
        default_factory=from_env("AZURE_OPENAI_ENDPOINT", default=None)
    )
    """The resource root, e.g. ``https://my-resource.openai.azure.com``."""
    api_version: str | None = Field(
        default_factory=from_env("OPENAI_API_VERSION", default=None),
        validation_alias=AliasChoices("api_version", "openai_api_version"),
    )
    """Alias ``openai_api_version``. Default on deployment URLs: the first version serving
    the GPT image models there."""
    use_deployment_url: bool = True
    """``/openai/deployments/{model}/…?api-version=`` (True) or the v1 route (False)."""
    azure_ad_token: SecretStr | None = Field(
        default_factory=secret_from_env("AZURE_OPENAI_AD_TOKEN", default=None)
    )
    """A Microsoft Entra ID token (it expires: prefer a token provider)."""
    azure_ad_token_provider: Annotated[Callable[[], str] | None, _CallableJson] = Field(
        default=None, exclude=True
    )
    """Returns an Entra ID token, called on every request (in a thread on the async path)."""
    azure_ad_async_token_provider: Annotated[Callable[[], Awaitable[str]] | None, _CallableJson] = (
        Field(default=None, exclude=True)
    )
    """Async Entra ID token provider, used on the async path."""

    @field_validator("azure_endpoint")
    @classmethod
    def _no_credentials_in_endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            check_url(value, "azure_endpoint")
        return value

    def _resolve_profile(self) -> ImageModelProfile:
        """A deployment name may say nothing of its model: unknown names are taken to be
        the current model, gpt-image-2, unless ``model_family`` says otherwise."""
        profile = super()._resolve_profile()
        if profile.permissive and self.model_profile is None and self.model_family is None:
            return get_profile("gpt-image-2").renamed(self.model)
        return profile

    def _endpoint(self) -> Endpoint:
        if not self.azure_endpoint:
            msg = "no Azure endpoint: set AZURE_OPENAI_ENDPOINT or pass azure_endpoint="
            raise ConfigurationError(msg)
        token_provider = self.azure_ad_token_provider
        if token_provider is None and self.azure_ad_token is not None:
            token_provider = self.azure_ad_token.get_secret_value
        return Endpoint.azure(
            self.azure_endpoint,
            deployment=self.model if self.use_deployment_url else None,
            api_version=self.api_version,
            api_key=self.api_key,
            token_provider=token_provider,
            async_token_provider=self.azure_ad_async_token_provider,
            headers=self.default_headers,
            query=self.default_query,
        )

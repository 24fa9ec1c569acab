"""The LangChain surface: :class:`ImageGenerationTool` and :class:`AzureImageGenerationTool`.

A call coerces what the LLM proposed (pure), runs the resulting requests (generation, over
the shared HTTP clients), and answers with text the LLM can act on plus the full
:class:`~langchain_imagegen.result.ImageGenerationResult` as the ToolMessage artifact. API
errors become error ToolMessages (``handle_tool_error``), never a crashed agent run.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.messages import ImageContentBlock, TextContentBlock
from langchain_core.tools import ArgsSchema, BaseTool, ToolException
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
    SkipValidation,
    ValidationError,
)
from pydantic.v1 import ValidationError as ValidationErrorV1

from langchain_imagegen.client import DEFAULT_TIMEOUT, ImagesClient
from langchain_imagegen.coercion import CoercionResult, coerce_params
from langchain_imagegen.endpoint import Endpoint
from langchain_imagegen.errors import ConfigurationError, ImageGenError, ModelNotFoundError
from langchain_imagegen.generation import AsyncEventSink, EventSink, ImageGenerator
from langchain_imagegen.registry import ImageModelProfile, get_profile
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.retry import RetryPolicy
from langchain_imagegen.schema import build_args_schema
from langchain_imagegen.storage import ImageStore

__all__ = ["EVENT_NAME", "AzureImageGenerationTool", "ImageGenerationTool", "ToolContent"]

ToolContent = str | list[TextContentBlock | ImageContentBlock]
"""What the LLM reads: the text alone, or the text plus image blocks (``content_images``)."""

EVENT_NAME = "image_generation"
"""Name of the custom events in ``astream_events``; ``data["stage"]`` is ``requested``,
``received`` or ``saved``."""


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


def _handler_as_json(handler: Any) -> Any:
    """``model_dump_json``: an error-handler function is written as its name."""
    if isinstance(handler, bool | str):
        return handler
    return getattr(handler, "__qualname__", None) or repr(handler)


# BaseTool's callable and schema-class fields make ``model_dump_json`` raise; these keep it
# working (``model_dump`` is unchanged).
_SchemaJson = PlainSerializer(_schema_as_json, when_used="json-unless-none")
_HandlerJson = PlainSerializer(_handler_as_json, when_used="json-unless-none")


class ImageGenerationTool(BaseTool):
    """Generate images from a text prompt through any OpenAI-compatible Images API.

    Setup:
        ``pip install langchain-imagegen`` and ``export OPENAI_API_KEY=...``
        (``OPENAI_BASE_URL``, ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` are read too).

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
    """

    name: str = "generate_image"
    description: str = ""
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    args_schema: Annotated[ArgsSchema | None, SkipValidation(), _SchemaJson] = Field(
        default=None, description="The tool schema."
    )
    handle_tool_error: Annotated[
        bool | str | Callable[[ToolException], str] | None, _HandlerJson
    ] = True
    handle_validation_error: Annotated[
        bool | str | Callable[[ValidationError | ValidationErrorV1], str] | None, _HandlerJson
    ] = _validation_message

    model: str = "gpt-image-2"
    """Model name sent to the API (a gateway's model or an Azure deployment name works)."""
    model_family: str | None = None
    """A known model this one behaves like, e.g. ``"dall-e-3"`` for a gateway's Flux or an
    Azure deployment named ``"images"``. Default: looked up from ``model``."""
    model_profile: ImageModelProfile | None = None
    """A complete custom capability profile; overrides ``model_family``."""
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("OPENAI_API_KEY", default=None)
    )
    base_url: str = Field(
        default_factory=from_env("OPENAI_BASE_URL", default="https://api.openai.com/v1")
    )
    organization: str | None = Field(default_factory=from_env("OPENAI_ORG_ID", default=None))
    project: str | None = Field(default_factory=from_env("OPENAI_PROJECT_ID", default=None))
    timeout: float = DEFAULT_TIMEOUT.read or 600.0
    """Seconds to wait for one response: gpt-image-2 at high quality and 4K takes minutes."""
    connect_timeout: float = DEFAULT_TIMEOUT.connect or 10.0
    max_retries: int = 2
    retry_budget: float = 900.0
    """Most seconds one request may spend on attempts and waits between them."""
    max_images: int = 4
    """Most images one call may produce; larger requests are clamped and reported."""
    image_params: dict[str, Any] = Field(default_factory=dict)
    """Parameters fixed by the developer rather than chosen by the LLM (hidden from it),
    e.g. ``{"quality": "high", "moderation": "low"}``."""
    output_dir: str = "generated_images"
    """Where base64 images (and downloaded URL images) are saved, named by content hash."""
    download_urls: bool = False
    """Download URL images at once: API URLs expire about an hour after creation."""
    max_download_bytes: int = 50 * 1024 * 1024
    content_images: Literal["none", "url", "base64"] = "none"
    """Whether the ToolMessage content also carries the images, as standard image content
    blocks after the text, so a vision model can look at what it made. ``"none"`` (text
    only), ``"url"`` (URLs where the server gave one, else base64 of the saved file) or
    ``"base64"`` (the saved file's bytes, else the URL); see
    :meth:`ImageGenerationResult.to_content_blocks`. Base64 images are sent again with every
    later model call of the conversation."""
    http_client: httpx.Client | None = Field(default=None, exclude=True, repr=False)
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True, repr=False)

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _client: ImagesClient | None = PrivateAttr(default=None)
    _generator_cache: tuple[tuple[Any, ...], ImageGenerator] | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        """Derive what the LLM sees (schema, description) from the model's profile."""
        profile = self.profile
        note = get_profile(self.model).lifecycle_note()  # the name itself, not a family
        if (
            note
            and "api.openai.com" in self.base_url
            and not isinstance(self, AzureImageGenerationTool)
        ):
            warnings.warn(
                note, FutureWarning, stacklevel=6
            )  # the caller of ImageGenerationTool(...)
        if self.args_schema is None:
            self.args_schema = build_args_schema(
                profile, max_images=self.max_images, hidden=self.image_params.keys()
            )
        if not self.description:
            self.description = (
                f"Generate images from a text description with {profile.name}. Returns where "
                "each image is (a file path or URL) and the prompt the model actually used. "
                "Arguments that don't fit the model are adjusted and the changes reported."
            )

    # --- configuration -------------------------------------------------------------------

    @property
    def profile(self) -> ImageModelProfile:
        """The capability profile used for coercion and the schema."""
        if self.model_profile is not None:
            return self.model_profile.renamed(self.model)
        return get_profile(self.model_family or self.model).renamed(self.model)

    def _endpoint(self) -> Endpoint:
        return Endpoint.openai(
            base_url=self.base_url,
            api_key=self.api_key,
            organization=self.organization,
            project=self.project,
        )

    @property
    def client(self) -> ImagesClient:
        """The HTTP client, created on first use and reused across calls."""
        if self._client is None:
            self._client = ImagesClient(
                endpoint=self._endpoint(),
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                retry=RetryPolicy(max_retries=self.max_retries, total_budget=self.retry_budget),
                http_client=self.http_client,
                async_http_client=self.http_async_client,
            )
            self._generator_cache = None
        return self._client

    def _generator(self) -> ImageGenerator:
        # Reused while the settings (and, for a relative output_dir, the working directory)
        # stay the same: resolving output_dir costs a syscall per path component. (Creating
        # the client clears it.)
        key = (self.output_dir, os.getcwd(), self.download_urls, self.max_download_bytes)
        cached = self._generator_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        generator = ImageGenerator(
            self.client,
            ImageStore(self.output_dir),
            download_urls=self.download_urls,
            max_download_bytes=self.max_download_bytes,
        )
        self._generator_cache = (key, generator)
        return generator

    def close(self) -> None:
        """Close the HTTP connections (they reopen on the next call)."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the HTTP connections (they reopen on the next call)."""
        if self._client is not None:
            await self._client.aclose()

    # --- calls ---------------------------------------------------------------------------

    def coerce(self, args: Mapping[str, Any]) -> CoercionResult:
        """The requests these LLM arguments become (developer-fixed values win)."""
        return coerce_params(
            self.profile, {**args, **self.image_params}, max_images=self.max_images
        )

    def generate(
        self, args: Mapping[str, Any], *, on_event: EventSink | None = None
    ) -> ImageGenerationResult:
        """Generate images outside LangChain; raises :class:`ImageGenError` subclasses."""
        return self._generator().run(self.coerce(args), on_event)

    async def agenerate(
        self, args: Mapping[str, Any], *, on_event: AsyncEventSink | None = None
    ) -> ImageGenerationResult:
        """Async :meth:`generate`, on the shared ``httpx.AsyncClient``."""
        return await self._generator().arun(self.coerce(args), on_event)

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

    def _run(
        self, run_manager: CallbackManagerForToolRun | None = None, **args: Any
    ) -> tuple[ToolContent, ImageGenerationResult]:
        sink: EventSink | None = None
        # Only when a handler can receive them (astream_events, a tracer, callbacks=...):
        # each dispatch configures a callback manager (~15 us, two or three per call).
        if run_manager is not None and run_manager.inheritable_handlers:

            def sink(stage: str, data: dict[str, Any]) -> None:
                dispatch_custom_event(EVENT_NAME, {"stage": stage, **data})

        try:
            result = self.generate(args, on_event=sink)
        except ImageGenError as error:
            raise ToolException(self._agent_message(error)) from error
        return self._content(result), result

    async def _arun(
        self, run_manager: AsyncCallbackManagerForToolRun | None = None, **args: Any
    ) -> tuple[ToolContent, ImageGenerationResult]:
        sink: AsyncEventSink | None = None
        if run_manager is not None and run_manager.inheritable_handlers:

            async def sink(stage: str, data: dict[str, Any]) -> None:
                await adispatch_custom_event(EVENT_NAME, {"stage": stage, **data})

        try:
            result = await self.agenerate(args, on_event=sink)
        except ImageGenError as error:
            raise ToolException(self._agent_message(error)) from error
        if self.content_images == "none":
            return result.to_text(), result
        return await asyncio.to_thread(self._content, result), result  # reads files


class AzureImageGenerationTool(ImageGenerationTool):
    """Azure OpenAI (api-facts §6): deployment URLs or the v1 style, ``api-key`` or Entra ID.

    ``model`` is the deployment name; set ``model_family`` to the model it hides
    (``"gpt-image-2"`` by default) so coercion and the schema fit it.
    """

    # Validators are built on first use, not at import: ~5 ms that non-Azure users skip.
    model_config = ConfigDict(defer_build=True)

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("AZURE_OPENAI_API_KEY", default=None)
    )
    azure_endpoint: str | None = Field(
        default_factory=from_env("AZURE_OPENAI_ENDPOINT", default=None)
    )
    api_version: str | None = Field(default_factory=from_env("OPENAI_API_VERSION", default=None))
    use_deployment_url: bool = True
    """``/openai/deployments/{model}/…?api-version=`` (True) or the v1 route (False)."""
    azure_ad_token_provider: Callable[[], str] | None = Field(default=None, exclude=True)
    azure_ad_async_token_provider: Callable[[], Awaitable[str]] | None = Field(
        default=None, exclude=True
    )

    @property
    def profile(self) -> ImageModelProfile:
        """A deployment name may say nothing of its model: unknown names are taken to be
        the current model, gpt-image-2, unless ``model_family`` says otherwise."""
        profile = super().profile
        if profile.permissive and self.model_profile is None and self.model_family is None:
            return get_profile("gpt-image-2").renamed(self.model)
        return profile

    def _endpoint(self) -> Endpoint:
        if not self.azure_endpoint:
            msg = "no Azure endpoint: set AZURE_OPENAI_ENDPOINT or pass azure_endpoint="
            raise ConfigurationError(msg)
        return Endpoint.azure(
            self.azure_endpoint,
            deployment=self.model if self.use_deployment_url else None,
            api_version=self.api_version,
            api_key=self.api_key,
            token_provider=self.azure_ad_token_provider,
            async_token_provider=self.azure_ad_async_token_provider,
        )


# BaseTool.run/arun inspect ``_run``/``_arun`` on every call: their signature (for a
# ``run_manager`` parameter) and their type hints (for a RunnableConfig-typed parameter, which
# they do not have). Evaluating the postponed annotations again each time cost ~55 us a call;
# a precomputed ``__signature__`` and empty runtime annotations answer both in ~6 us. (The
# annotations in the source still serve type checkers; no parameter is injected by type.)
for _method in ("_run", "_arun"):
    _function = vars(ImageGenerationTool)[_method]
    _function.__signature__ = inspect.signature(_function, eval_str=True)
    _function.__annotations__ = {}
del _method, _function

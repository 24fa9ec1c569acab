"""Configuring the tool: one rule for every field, langchain-openai's names, copies and pickles.

The rule: the fields are validated, then one after-validator builds the HTTP client, the
generator and what the LLM sees. Assigning a field runs that again (``validate_assignment``):
a change always takes effect, or is refused and the previous configuration stays.
"""

from __future__ import annotations

import copy
import json
import pickle
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolCall, ToolMessage
from pydantic import SecretStr, ValidationError

from langchain_imagegen.errors import ConfigurationError
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import (
    AzureImageGenerationTool,
    BaseImageGenerationTool,
    ImageGenerationTool,
)
from tests.unit_tests.test_tool_unit import Server, ok

GATEWAY = "http://gateway.test/v1"
AZURE = "https://example-resource.openai.azure.com"


def call(args: dict[str, Any] | None = None) -> ToolCall:
    return ToolCall(
        name="generate_image", args=args or {"prompt": "a fox"}, id="call_1", type="tool_call"
    )


def succeeded(message: Any) -> ImageGenerationResult:
    assert isinstance(message, ToolMessage)
    assert message.status == "success", message.content
    assert isinstance(message.artifact, ImageGenerationResult)
    return message.artifact


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_API_BASE",
        "OPENAI_ORG_ID",
        "OPENAI_ORGANIZATION",
        "OPENAI_PROJECT_ID",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_AD_TOKEN",
        "OPENAI_API_VERSION",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Server:
    return Server(ok)


@pytest.fixture
def mock_clients(server: Server) -> Iterator[dict[str, Any]]:
    clients = {
        "http_client": httpx.Client(transport=httpx.MockTransport(server)),
        "http_async_client": httpx.AsyncClient(transport=httpx.MockTransport(server)),
    }
    yield clients
    clients["http_client"].close()


@pytest.fixture
def make(tmp_path: Path, mock_clients: dict[str, Any]) -> Callable[..., ImageGenerationTool]:
    def build(**kwargs: Any) -> ImageGenerationTool:
        options: dict[str, Any] = {
            "api_key": "sk-first",
            "base_url": GATEWAY,
            "model": "gpt-image-1",
            "output_dir": str(tmp_path / "images"),
            "max_retries": 0,
            **mock_clients,
        }
        options.update(kwargs)
        return ImageGenerationTool(**options)

    return build


# --- no runtime patching ---------------------------------------------------------------------


def test_run_methods_are_not_patched() -> None:
    """langchain-core reads ``_run``'s annotations (injected arguments): they must be real."""
    for method in (BaseImageGenerationTool._run, BaseImageGenerationTool._arun):
        assert "__signature__" not in vars(method)
        assert "run_manager" in method.__annotations__


# --- a change takes effect --------------------------------------------------------------------


def test_api_key_base_url_and_max_retries_changed_after_a_call_take_effect(
    make: Callable[..., ImageGenerationTool], server: Server
) -> None:
    tool = make()
    succeeded(tool.invoke(call()))
    tool.api_key = SecretStr("sk-second")
    tool.base_url = "http://other-gateway.test/v1"
    succeeded(tool.invoke(call()))
    assert server.headers[0]["authorization"] == "Bearer sk-first"
    assert server.headers[1]["authorization"] == "Bearer sk-second"
    assert server.hosts == ["gateway.test", "other-gateway.test"]

    failures = Server(lambda body, k: httpx.Response(500, headers={"retry-after-ms": "1"}))
    tool.http_client = httpx.Client(transport=httpx.MockTransport(failures))
    tool.invoke(call())
    tool.max_retries = 2
    tool.invoke(call())
    assert len(failures.bodies) == 1 + 3


async def test_changes_take_effect_on_the_async_path(
    make: Callable[..., ImageGenerationTool], server: Server
) -> None:
    tool = make()
    succeeded(await tool.ainvoke(call()))
    tool.api_key = "sk-second"  # type: ignore[assignment]  # validated into a SecretStr
    tool.base_url = "http://other-gateway.test/v1"
    succeeded(await tool.ainvoke(call()))
    assert [h["authorization"] for h in server.headers] == ["Bearer sk-first", "Bearer sk-second"]
    assert server.hosts == ["gateway.test", "other-gateway.test"]


def test_unrelated_changes_keep_the_client_and_its_connections(
    make: Callable[..., ImageGenerationTool],
) -> None:
    tool = make()
    client = tool.client
    tool.content_images = "url"
    tool.tags = ["images"]
    assert tool.client is client
    tool.timeout = 30.0
    assert tool.client is not client


def test_max_images_and_model_change_what_the_llm_sees(
    make: Callable[..., ImageGenerationTool],
) -> None:
    tool = make(model="dall-e-3")
    n_before = tool.tool_call_schema.model_json_schema()["properties"]["n"]["description"]
    assert "1 to 4" in n_before
    tool.max_images = 1
    n_after = tool.tool_call_schema.model_json_schema()["properties"]["n"]["description"]
    assert "4" not in n_after
    tool.model = "gpt-image-1"
    properties = tool.tool_call_schema.model_json_schema()["properties"]
    assert "style" not in properties  # a dall-e-3 field
    assert "output_format" in properties
    assert "gpt-image-1" in tool.description


def test_what_the_user_set_is_kept_across_changes(make: Callable[..., ImageGenerationTool]) -> None:
    tool = make(description="Draws pictures for the support team.")
    tool.model = "dall-e-3"
    assert tool.description == "Draws pictures for the support team."
    derived = tool.args_schema
    tool.args_schema = None  # back to derived
    assert tool.args_schema is not None
    assert tool.args_schema is not derived or tool.model == "dall-e-3"


def test_a_refused_change_leaves_the_previous_configuration(
    make: Callable[..., ImageGenerationTool], server: Server
) -> None:
    tool = make()
    client, schema = tool.client, tool.args_schema
    for field, value in [
        ("max_images", 0),
        ("max_retries", -1),
        ("base_url", "ftp://files.example"),
        ("retry_budget", 0),
        ("timeout", "soon"),
    ]:
        before = getattr(tool, field)
        with pytest.raises(ValidationError):
            setattr(tool, field, value)
        assert getattr(tool, field) == before
    assert tool.client is client
    assert tool.args_schema is schema
    succeeded(tool.invoke(call()))


def test_a_refused_rebuild_is_rolled_back(clean_env: None) -> None:
    with pytest.raises(ConfigurationError, match="no Azure endpoint"):
        AzureImageGenerationTool(model="images", api_key="k")  # as AzureChatOpenAI: at once
    tool = AzureImageGenerationTool(model="images", api_key="k", azure_endpoint=AZURE)
    with pytest.raises(ConfigurationError, match="no Azure endpoint"):
        tool.azure_endpoint = None
    assert tool.azure_endpoint == AZURE
    assert tool.client.endpoint.url.startswith(AZURE)


def test_relative_output_dir_is_resolved_when_configured(
    make: Callable[..., ImageGenerationTool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hidden cache keyed on the working directory: the path is fixed when set."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    tool = make(output_dir="images")
    monkeypatch.chdir(second)
    (path,) = [image.path for image in succeeded(tool.invoke(call())).images]
    assert path is not None
    assert Path(path).parent == first / "images"
    tool.output_dir = "images"  # assigning resolves again, against the directory of now
    (path,) = [image.path for image in succeeded(tool.invoke(call())).images]
    assert path is not None
    assert Path(path).parent == second / "images"


# --- copies and pickles -----------------------------------------------------------------------


def test_model_copy_update_is_validated_and_rebuilt(
    make: Callable[..., ImageGenerationTool],
) -> None:
    tool = make(model="dall-e-3")
    copied = tool.model_copy(update={"model": "gpt-image-1", "api_key": "sk-copy"})
    assert "gpt-image-1" in copied.description
    assert "dall-e-3" in tool.description
    assert "style" not in copied.tool_call_schema.model_json_schema()["properties"]
    assert isinstance(copied.api_key, SecretStr)
    assert copied.client is not tool.client
    assert copied.client.endpoint.headers()["Authorization"] == "Bearer sk-copy"
    assert tool.client.endpoint.headers()["Authorization"] == "Bearer sk-first"


async def test_deepcopy_of_a_used_tool_works(
    make: Callable[..., ImageGenerationTool], server: Server
) -> None:
    tool = make(image_params={"quality": "high"})
    succeeded(tool.invoke(call()))
    succeeded(await tool.ainvoke(call()))
    copied = copy.deepcopy(tool)
    assert copied.image_params == {"quality": "high"}
    assert copied.image_params is not tool.image_params
    assert copied.http_client is tool.http_client  # the caller's client is shared, not copied
    assert copied.client is not tool.client
    succeeded(copied.invoke(call()))
    succeeded(await copied.ainvoke(call()))
    assert len(server.bodies) == 4


def test_pickle_round_trip(clean_env: None, tmp_path: Path) -> None:
    tool = ImageGenerationTool(
        model="dall-e-3",
        api_key="sk-pickled",
        base_url=GATEWAY,
        max_images=2,
        output_dir=str(tmp_path),
        extra_body={"seed": 7},
    )
    tool.client  # noqa: B018 - a used tool
    loaded = pickle.loads(pickle.dumps(tool))
    assert loaded.model_dump() == tool.model_dump() | {"args_schema": loaded.args_schema}
    assert loaded.tool_call_schema.model_json_schema() == tool.tool_call_schema.model_json_schema()
    assert loaded.client.endpoint.headers()["Authorization"] == "Bearer sk-pickled"
    azure = AzureImageGenerationTool(model="images", api_key="k", azure_endpoint=AZURE)
    assert pickle.loads(pickle.dumps(azure)).client.endpoint.url == azure.client.endpoint.url


def test_pickling_a_tool_with_an_injected_client_says_why_it_cannot(
    make: Callable[..., ImageGenerationTool],
) -> None:
    with pytest.raises(TypeError, match="injected http_async_client and http_client"):
        pickle.dumps(make())


# --- langchain-openai's names, environment variables and types -------------------------------


def test_langchain_openai_aliases(clean_env: None) -> None:
    tool = ImageGenerationTool(
        model_name="gpt-image-1",
        openai_api_key="sk-alias",
        openai_api_base=GATEWAY,
        openai_organization="org-alias",
        request_timeout=(3.0, 30.0),
    )
    assert tool.model == "gpt-image-1"
    assert isinstance(tool.api_key, SecretStr)
    assert tool.api_key.get_secret_value() == "sk-alias"
    assert tool.base_url == GATEWAY
    assert tool.organization == "org-alias"
    assert tool.client.timeout == httpx.Timeout(30.0, connect=3.0)

    azure = AzureImageGenerationTool(
        azure_deployment="images-prod", api_key="k", azure_endpoint=AZURE,
        openai_api_version="2024-10-21",
    )  # fmt: skip
    assert azure.model == "images-prod"
    assert azure.api_version == "2024-10-21"
    assert AzureImageGenerationTool(deployment_name="d", azure_endpoint=AZURE).model == "d"


def test_environment_variables(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_BASE", "http://api-base.test/v1")
    monkeypatch.setenv("OPENAI_ORGANIZATION", "org-legacy")
    tool = ImageGenerationTool()
    assert tool.base_url == "http://api-base.test/v1"
    assert tool.organization == "org-legacy"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://base-url.test/v1")  # the SDK's name wins
    monkeypatch.setenv("OPENAI_ORG_ID", "org-id")
    tool = ImageGenerationTool()
    assert tool.base_url == "http://base-url.test/v1"
    assert tool.organization == "org-id"


def test_azure_reads_an_entra_token_from_the_environment(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "entra-token")
    tool = AzureImageGenerationTool(model="images", azure_endpoint=AZURE)
    assert tool.client.endpoint.headers() == {"Authorization": "Bearer entra-token"}


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (45.0, httpx.Timeout(45.0, connect=10.0)),
        ((2.0, 50.0), httpx.Timeout(50.0, connect=2.0)),
        (httpx.Timeout(5.0, read=70.0), httpx.Timeout(5.0, read=70.0)),
        (None, httpx.Timeout(None, connect=10.0)),
    ],
)
def test_timeout_forms(
    make: Callable[..., ImageGenerationTool], timeout: Any, expected: httpx.Timeout
) -> None:
    tool = make(timeout=timeout)
    assert tool.client.timeout == expected
    json.loads(tool.model_dump_json())  # every form has a JSON form


def test_each_flavour_offers_only_its_own_fields(clean_env: None) -> None:
    openai_fields, azure_fields = (
        set(ImageGenerationTool.model_fields),
        set(AzureImageGenerationTool.model_fields),
    )
    assert {"base_url", "organization", "project"} <= openai_fields - azure_fields
    assert {
        "azure_endpoint", "api_version", "use_deployment_url", "azure_ad_token",
        "azure_ad_token_provider", "azure_ad_async_token_provider",
    } <= azure_fields - openai_fields  # fmt: skip
    assert not issubclass(AzureImageGenerationTool, ImageGenerationTool)
    with pytest.raises(ValidationError, match="base_url"):
        AzureImageGenerationTool(model="images", azure_endpoint=AZURE, base_url=GATEWAY)
    with pytest.raises(ValidationError, match="azure_endpoint"):
        ImageGenerationTool(azure_endpoint=AZURE)


# --- the credential as a function ------------------------------------------------------------


def test_api_key_function_is_called_per_request(
    make: Callable[..., ImageGenerationTool], server: Server
) -> None:
    keys = iter(["sk-one", "sk-two"])
    tool = make(api_key=lambda: next(keys))
    succeeded(tool.invoke(call()))
    succeeded(tool.invoke(call()))
    assert [h["authorization"] for h in server.headers] == ["Bearer sk-one", "Bearer sk-two"]
    assert "sk-one" not in tool.model_dump_json()


async def test_async_api_key_function_serves_the_async_path(
    make: Callable[..., ImageGenerationTool], server: Server
) -> None:
    async def key() -> str:
        return "sk-async"

    tool = make(api_key=key)
    succeeded(await tool.ainvoke(call()))
    assert server.headers[0]["authorization"] == "Bearer sk-async"
    refused = tool.invoke(call())  # as in langchain-openai: async credentials are async-only
    assert refused.status == "error"
    assert "use the async API" in refused.content
    assert len(server.bodies) == 1


async def test_sync_api_key_function_also_serves_the_async_path(
    make: Callable[..., ImageGenerationTool], server: Server
) -> None:
    tool = make(api_key=lambda: "sk-sync")
    succeeded(await tool.ainvoke(call()))
    assert server.headers[0]["authorization"] == "Bearer sk-sync"


# --- what is sent --------------------------------------------------------------------------------


def test_default_headers_and_query_are_sent(
    make: Callable[..., ImageGenerationTool], server: Server
) -> None:
    tool = make(default_headers={"X-Team": "imaging"}, default_query={"tenant": "blue"})
    succeeded(tool.invoke(call()))
    assert server.headers[0]["x-team"] == "imaging"
    assert server.queries[0] == {"tenant": "blue"}


@pytest.mark.parametrize("use_async", [False, True])
async def test_extra_body_is_sent_as_given_and_never_shown_to_the_llm(
    make: Callable[..., ImageGenerationTool], server: Server, use_async: bool
) -> None:
    """How a Flux gateway gets ``seed``, ``negative_prompt`` and ``steps``."""
    extra = {"seed": 42, "negative_prompt": "text, watermark", "steps": 28}
    tool = make(model="flux-dev", model_family="dall-e-3", max_images=2, extra_body=extra)
    properties = tool.tool_call_schema.model_json_schema()["properties"]
    assert not set(extra) & set(properties)
    args = {"prompt": "a fox", "n": 2, "seed": 1}  # the LLM cannot set them
    message = await tool.ainvoke(call(args)) if use_async else tool.invoke(call(args))
    result = succeeded(message)
    assert len(server.bodies) == 2  # dall-e-3 rules: one image per request
    for body, record in zip(server.bodies, result.requests, strict=True):
        assert {k: body[k] for k in extra} == extra
        assert record.body == body  # recorded as sent
    reported = " ".join(str(a) for a in result.adjustments)
    assert "negative_prompt" not in reported
    assert "steps" not in reported
    assert "text, watermark" not in str(message.content)


# --- OpenAI's own URL is told by its host -------------------------------------------------------


class _MyTool(ImageGenerationTool):
    """A subclass: still OpenAI's rules, with no isinstance check against Azure."""


@pytest.mark.parametrize(
    ("base_url", "warns"),
    [
        ("https://api.openai.com/v1", True),
        ("https://API.OPENAI.COM/v1/", True),
        ("https://api.openai.com.proxy.test/v1", False),
        ("https://proxy.test/api.openai.com/v1", False),
    ],
)
def test_shutdown_warning_is_for_openai_host_only(
    clean_env: None, base_url: str, warns: bool
) -> None:
    for cls in (ImageGenerationTool, _MyTool):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cls(model="dall-e-3", api_key="k", base_url=base_url)  # shut down since 2026-05-12
        future = [w for w in caught if w.category is FutureWarning]
        assert bool(future) is warns
        if warns:
            assert future[0].filename == __file__  # points at the caller


def test_copies_do_not_warn_again(clean_env: None) -> None:
    with pytest.warns(FutureWarning):
        tool = ImageGenerationTool(model="dall-e-3", api_key="k")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tool.model_copy(update={"max_images": 2})
        copy.deepcopy(tool)
        tool.max_images = 3


# --- retry_budget bounds the whole call -------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True])
async def test_retry_budget_bounds_the_whole_call_and_follows_assignment(
    make: Callable[..., ImageGenerationTool], use_async: bool
) -> None:
    busy = Server(lambda body, k: httpx.Response(503, headers={"retry-after-ms": "50"}))
    tool = make(
        max_retries=1000,
        retry_budget=30.0,
        http_client=httpx.Client(transport=httpx.MockTransport(busy)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(busy)),
    )
    tool.retry_budget = 0.3  # set on a built tool: the call must honour the new bound
    started = time.monotonic()
    message = await tool.ainvoke(call()) if use_async else tool.invoke(call())
    elapsed = time.monotonic() - started
    assert message.status == "error"
    assert elapsed < 3.0  # generous: the point is 0.3 s, not 30 s or 1000 retries
    assert 2 <= len(busy.bodies) < 100


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_key_from_a_function_is_scrubbed_from_an_echoing_401(
    make: Callable[..., ImageGenerationTool], use_async: bool
) -> None:
    secret = "sk-fn-7"  # short: OpenAI's 401 repeats such keys verbatim

    def echo(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        error = {"message": f"Incorrect API key provided: {key}.", "code": "invalid_api_key"}
        return httpx.Response(401, json={"error": error})

    tool = make(
        api_key=lambda: secret,
        http_client=httpx.Client(transport=httpx.MockTransport(echo)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(echo)),
    )
    message = await tool.ainvoke(call()) if use_async else tool.invoke(call())
    assert message.status == "error"
    assert "Incorrect API key provided: ***" in message.content
    assert secret not in message.content


def test_a_refused_value_is_not_echoed(clean_env: None) -> None:
    """A key pasted into the wrong field must not reappear in the validation error."""
    secret = "sk-pasted-in-the-wrong-place-0123"
    with pytest.raises(ValidationError) as raised:
        ImageGenerationTool(max_retries=secret)
    assert secret not in str(raised.value)
    tool = ImageGenerationTool(api_key="k")
    with pytest.raises(ValidationError) as raised:
        tool.timeout = secret  # type: ignore[assignment]
    assert secret not in str(raised.value)

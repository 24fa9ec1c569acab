"""The API key never shows: not in reprs, logs, error messages, artifacts or cassettes.

The key is a distinctive long string the emulator is configured to accept, so a leak cannot
hide behind a common substring. Logs are captured at DEBUG for every logger (httpx and httpcore
included). Error paths cover what a server may echo back: OpenAI's 401 repeats short keys
verbatim ("Incorrect API key provided: fake_key"), and a misbehaving gateway may put the key
in any error body.
"""

from __future__ import annotations

import gzip
import logging
import re
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from langchain_imagegen.errors import (
    APIConnectionError,
    AuthenticationError,
    ImageGenError,
    PermissionDeniedError,
    ServerError,
)
from langchain_imagegen.tool import AzureImageGenerationTool, ImageGenerationTool
from tests.conftest import CASSETTE_DIR, SECRET_PATTERN
from tests.emulator import Emulator, Fault
from tests.reliability.conftest import EMULATOR_MARKS, tool_call

pytestmark = EMULATOR_MARKS

SECRET = "sk-proj-Rel1abilitySecretKey-0123456789abcdefXYZ"
SHORT_SECRET = "sk-short9"  # <= 12 characters: OpenAI echoes such keys verbatim in its 401
PROMPT = "a lighthouse at dawn"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(api_key=SECRET, max_lifetime_s=300) as emu:
        yield emu


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "langchain_imagegen", "langchain_core"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _tool(emulator: Emulator, tmp_path: Path, **kwargs: object) -> ImageGenerationTool:
    options: dict[str, object] = {
        "model": "gpt-image-1",
        "api_key": SECRET,
        "base_url": emulator.base_url,
        "output_dir": str(tmp_path / "images"),
        "max_retries": 1,
        "retry_budget": 10.0,
    }
    options.update(kwargs)
    return ImageGenerationTool(**options)  # type: ignore[arg-type]


def _everything_about(error: BaseException) -> str:
    """Message, repr, attributes and the whole chained traceback of an error."""
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, ImageGenError):
        parts.append(error.agent_message())
        parts.extend(repr(value) for value in vars(error).values())
    return "\n".join(parts)


def _assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets or (SECRET,):
        assert secret not in text


# --- reprs and dumps ------------------------------------------------------------------------


def test_reprs_and_dumps_of_tool_client_and_endpoint(emulator: Emulator, tmp_path: Path) -> None:
    tool = _tool(emulator, tmp_path)
    client = tool.client
    for obj in (tool, client, client.endpoint, client.retry, tool.api_key):
        _assert_clean(repr(obj))
        _assert_clean(str(obj))
    _assert_clean(tool.model_dump_json())
    _assert_clean(str(tool.model_dump()))
    _assert_clean(repr(tool.args_schema.model_json_schema()))  # type: ignore[union-attr]


def test_azure_reprs_hide_the_key_and_the_token(tmp_path: Path) -> None:
    tool = AzureImageGenerationTool(
        model="images",
        azure_endpoint="https://example-resource.openai.azure.com",
        api_key=SECRET,
        output_dir=str(tmp_path),
    )
    for obj in (tool, tool.client, tool.client.endpoint):
        _assert_clean(repr(obj))
        _assert_clean(str(obj))
    _assert_clean(tool.model_dump_json())
    token_tool = AzureImageGenerationTool(
        model="images",
        azure_endpoint="https://example-resource.openai.azure.com",
        azure_ad_token_provider=lambda: SECRET,
        output_dir=str(tmp_path),
    )
    _assert_clean(repr(token_tool.client.endpoint))
    _assert_clean(repr(token_tool))


# --- logs -------------------------------------------------------------------------------------


def test_logs_at_debug_never_carry_the_key(
    emulator: Emulator, tmp_path: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    tool = _tool(emulator, tmp_path)
    assert tool.invoke(tool_call({"prompt": PROMPT})).status == "success"
    emulator.push_fault(Fault.rate_limit(retry_after=0.1))  # logs a retry at INFO
    assert tool.invoke(tool_call({"prompt": PROMPT})).status == "success"
    emulator.push_fault(Fault.server_error(), Fault.server_error())
    assert tool.invoke(tool_call({"prompt": PROMPT})).status == "error"
    tool.close()

    assert any(r.name.startswith("httpx") for r in debug_logs.records)  # request lines
    assert any(r.name.startswith("httpcore") for r in debug_logs.records)  # DEBUG internals
    assert any("retrying in" in r.getMessage() for r in debug_logs.records)
    _assert_clean(debug_logs.text)
    for record in debug_logs.records:
        _assert_clean(record.getMessage())
        _assert_clean(repr(record.args))


async def test_async_logs_never_carry_the_key(
    emulator: Emulator, tmp_path: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    tool = _tool(emulator, tmp_path)
    emulator.push_fault(Fault.service_unavailable(retry_after=0.1))
    try:
        assert (await tool.ainvoke(tool_call({"prompt": PROMPT}))).status == "success"
    finally:
        await tool.aclose()
    assert debug_logs.records
    _assert_clean(debug_logs.text)


# --- error messages ---------------------------------------------------------------------------


def test_401_echoing_a_short_key_is_scrubbed(
    emulator: Emulator, tmp_path: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    tool = _tool(emulator, tmp_path, api_key=SHORT_SECRET)
    with pytest.raises(AuthenticationError) as raised:
        tool.generate({"prompt": PROMPT})
    assert "Incorrect API key provided" in str(raised.value)  # the emulator did echo it...
    _assert_clean(_everything_about(raised.value), SHORT_SECRET)  # ...and we blanked it
    message = tool.invoke(tool_call({"prompt": PROMPT}))
    assert message.status == "error"
    _assert_clean(str(message.content), SHORT_SECRET)
    _assert_clean(message.model_dump_json(), SHORT_SECRET)
    _assert_clean(debug_logs.text, SHORT_SECRET)


def test_401_with_a_long_wrong_key(emulator: Emulator, tmp_path: Path) -> None:
    wrong = "sk-proj-WrongButLongKey-abcdefghijklmnop0123456789"
    tool = _tool(emulator, tmp_path, api_key=wrong)
    with pytest.raises(AuthenticationError) as raised:
        tool.generate({"prompt": PROMPT})
    _assert_clean(_everything_about(raised.value), wrong, SECRET)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(403, PermissionDeniedError), (500, ServerError)],
)
def test_error_bodies_echoing_the_key_are_scrubbed(
    emulator: Emulator, tmp_path: Path, status: int, error_class: type[ImageGenError]
) -> None:
    body = {
        "error": {
            "message": f"Key {SECRET} is not allowed here (Bearer {SECRET})",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
            "echo": {"authorization": f"Bearer {SECRET}"},
        }
    }
    tool = _tool(emulator, tmp_path, max_retries=0)
    emulator.push_fault(Fault.http(status, body))
    with pytest.raises(error_class) as raised:
        tool.generate({"prompt": PROMPT})
    _assert_clean(_everything_about(raised.value))
    assert "***" in str(raised.value)
    emulator.push_fault(Fault.http(status, body))
    message = tool.invoke(tool_call({"prompt": PROMPT}))
    assert message.status == "error"
    _assert_clean(str(message.content))


def test_403_org_not_verified_message(emulator: Emulator, tmp_path: Path) -> None:
    tool = _tool(emulator, tmp_path)
    emulator.push_fault(Fault.org_not_verified())
    with pytest.raises(PermissionDeniedError) as raised:
        tool.generate({"prompt": PROMPT})
    _assert_clean(_everything_about(raised.value))


def test_connection_errors_never_carry_the_key(
    tmp_path: Path, debug_logs: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tool = ImageGenerationTool(
        model="gpt-image-1",
        api_key=SECRET,
        base_url=f"http://127.0.0.1:{port}/v1",
        output_dir=str(tmp_path),
        max_retries=1,
    )
    with pytest.raises(APIConnectionError) as raised:
        tool.generate({"prompt": PROMPT})
    _assert_clean(_everything_about(raised.value))
    message = tool.invoke(tool_call({"prompt": PROMPT}))
    assert message.status == "error"
    _assert_clean(str(message.content))
    _assert_clean(debug_logs.text)


@pytest.mark.parametrize("userinfo", [f"user:{SECRET}", SECRET, f":{SECRET}"])
def test_a_key_in_the_base_url_userinfo_is_refused_without_echoing_it(
    tmp_path: Path, userinfo: str
) -> None:
    """httpx would send the userinfo as Basic auth instead of the Bearer key, and repr and
    model_dump_json would show it: the tool refuses the URL, and the error names no secret."""
    url = f"http://{userinfo}@127.0.0.1:9/v1"
    with pytest.raises(ValidationError, match="must not carry credentials") as raised:
        ImageGenerationTool(
            model="gpt-image-1", api_key="sk-irrelevant-0000", base_url=url,
            output_dir=str(tmp_path),
        )  # fmt: skip
    _assert_clean(_everything_about(raised.value))
    with pytest.raises(ValidationError) as raised:
        AzureImageGenerationTool(model="images", api_key="k", azure_endpoint=url)
    _assert_clean(_everything_about(raised.value))

    tool = ImageGenerationTool(
        model="gpt-image-1", api_key="sk-irrelevant-0000", output_dir=str(tmp_path)
    )
    with pytest.raises(ValidationError) as raised:
        tool.base_url = url  # an assignment is refused the same way
    _assert_clean(_everything_about(raised.value))
    assert tool.base_url == "https://api.openai.com/v1"
    for text in (repr(tool), tool.model_dump_json(), repr(tool.client)):
        _assert_clean(text)


# --- artifacts and cassettes ------------------------------------------------------------------


def test_artifact_and_message_json_never_carry_the_key(emulator: Emulator, tmp_path: Path) -> None:
    tool = _tool(emulator, tmp_path, model="dall-e-3", max_images=2)
    message = tool.invoke(tool_call({"prompt": PROMPT, "n": 2, "size": "1920x1080"}))
    assert message.status == "success"
    _assert_clean(message.artifact.model_dump_json())
    _assert_clean(message.model_dump_json())
    _assert_clean(repr(message.artifact))
    for request in emulator.received_requests:  # the key did travel, in the header only
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        _assert_clean(repr(request.body))


_CASSETTE_KEYS = re.compile(
    rb"(?i)(authorization|api-key|x-api-key)\W{1,6}(bearer\s+)?(sk-|ey)[A-Za-z0-9._-]{6,}"
)


def test_cassettes_hold_no_key() -> None:
    cassettes = sorted(p for p in CASSETTE_DIR.glob("*") if p.is_file())
    if not cassettes:
        pytest.skip("no cassettes recorded")
    for path in cassettes:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        assert SECRET.encode() not in data, path.name
        assert b"sk-test-emulator" not in data, path.name  # the recording key
        assert SECRET_PATTERN.search(data) is None, (path.name, SECRET_PATTERN.search(data))
        assert _CASSETTE_KEYS.search(data) is None, path.name

"""Fuzz, per provider: whatever an LLM sends, the tool answers and the provider accepts it.

The arguments are ``test_fuzz``'s (wrong types, huge numbers, unicode, other providers'
names for things). Each provider's tool calls ``Emulator(provider=NAME)``, whose model of
the provider (``tests/provider_emulator.py``) is written from the providers' public docs
independently of the package. For every call:

* ``tool.invoke(ToolCall)`` returns a ``ToolMessage``, never raises;
* the provider answers 200 to every request the tool sends: the package's profile of the
  provider (sizes, limits, field names, what it may not send) never makes a request the
  provider refuses;
* no body carries what only the developer sets (OpenAI's developer fields, the provider's own
  parameters such as ``seed`` or ``resolution``) unless the provider's format always sends
  it (Gemini's ``response_format``);
* a successful call returns every image the provider made.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from langchain_core.messages import ToolMessage

from langchain_imagegen.providers import PROVIDERS, get_provider
from langchain_imagegen.registry import DEVELOPER_FIELDS
from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import Emulator
from tests.reliability.conftest import EMULATOR_MARKS, tool_call
from tests.reliability.test_fuzz import SETTINGS, llm_arguments

pytestmark = EMULATOR_MARKS

NAMES = [provider.name for provider in PROVIDERS if provider.name != "openai"]
EXAMPLES = 25
# Where the emulator serves each provider's route, as a base URL the package's route joins.
BASE_PATHS = {"deepinfra": "/v1/openai", "gemini": "/v1beta/openai", "openrouter": "/api/v1"}


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[Emulator, ImageGenerationTool]]]:
    out = tmp_path_factory.mktemp("fuzz-providers")
    emulators = {name: Emulator(provider=name, max_lifetime_s=600).start() for name in NAMES}
    made = {}
    for name, emulator in emulators.items():
        base_url = emulator.url + BASE_PATHS[name] if name in BASE_PATHS else emulator.base_url
        made[name] = (
            emulator,
            ImageGenerationTool(
                provider=name,
                api_key=emulator.api_key,
                base_url=base_url,
                output_dir=str(out / name),
                max_retries=0,  # nothing here should fail; a failure must show
                timeout=30.0,
                download_urls=True,  # URL answers are fetched: their images are checked too
            ),
        )
    yield made
    for emulator, tool in made.values():
        tool.close()
        emulator.stop()


def _developer_only(name: str, model: str) -> set[str]:
    """What only the developer may set for ``model`` on provider ``name``, less what its
    format always sends."""
    provider = get_provider(name)
    own = {param.name for param in provider.profile(model).own_params}
    always = {key for key, _ in provider.wire.sends}
    return (set(DEVELOPER_FIELDS) | own) - always


@pytest.mark.parametrize("name", NAMES)
@settings(SETTINGS, max_examples=EXAMPLES)
@given(args=llm_arguments())
def test_whatever_the_llm_sends_the_provider_accepts(
    name: str, args: dict[str, Any], served: dict[str, tuple[Emulator, ImageGenerationTool]]
) -> None:
    emulator, tool = served[name]
    emulator.reset_stats()
    try:
        message = tool.invoke(tool_call(args))
    except Exception as exc:  # noqa: BLE001 - the property under test
        pytest.fail(f"{type(exc).__name__} raised out of invoke for {name} {args!r}: {exc}")
    assert isinstance(message, ToolMessage), (type(message), args)
    assert message.status in ("success", "error"), args
    assert message.content, args
    forbidden = _developer_only(name, tool.model)
    for request in emulator.received_requests:
        body = request.effective_body
        assert not set(body) & forbidden, (name, args, body)
    stats = emulator.stats()
    assert set(stats.responses_by_status) <= {200}, (name, stats.responses_by_status, args)
    if message.status == "success":
        assert len(message.artifact.images) == stats.images_produced, (name, args)
        assert all(image.path for image in message.artifact.images), (name, args)
    else:
        assert stats.generation_requests == 0, (name, message.content, args)

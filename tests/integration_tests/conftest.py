"""Fixtures for the integration tests that run live against the loopback emulator.

``target`` is one emulator (``tests/emulator.py``) on 127.0.0.1, started once per session
with the Azure deployment and gateway model names below; each test gets it with an empty
fault queue and zeroed counters, so it can count what reached the server
(:meth:`Target.http_calls`, :meth:`Target.requests`) and queue faults
(:meth:`Target.push_fault`). Tests using it carry :data:`LIVE` (sockets allowed to
127.0.0.1 only).

The langchain-tests standard tests (``test_standard.py``) replay cassettes instead, so they
can be re-recorded against a real endpoint (docs/testing.md); ``test_recorded.py`` replays
real recordings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from langchain_imagegen import ImageGenerationTool
from tests.conftest import EMULATOR_KEY
from tests.emulator import Emulator, Fault, ReceivedRequest

DEPLOYMENTS = {
    # Azure deployment names (``AzureImageGenerationTool(model=...)``) -> the model behind.
    "images": "gpt-image-2",
    # A gateway's own model name, served on the emulator's model-mapping route
    # (``/openai/v1/images/generations``, bearer auth accepted): stands in for a relay
    # that serves "flux-dev" with the DALL-E 3 request format.
    "flux-dev": "dall-e-3",
}

LIVE = [
    pytest.mark.emulator,
    pytest.mark.enable_socket,
    pytest.mark.allow_hosts(["127.0.0.1"]),
]
"""Marks of a module whose tests talk to the emulator."""


@dataclass(frozen=True)
class Target:
    """The emulator as a test sees it."""

    emulator: Emulator

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT``: the emulator root, also the Azure endpoint."""
        return self.emulator.url

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (``{root}/v1``)."""
        return self.emulator.base_url

    @property
    def gateway_base_url(self) -> str:
        """Base URL of the model-mapping route standing in for a gateway."""
        return f"{self.root}/openai/v1"

    def push_fault(self, *faults: Fault) -> None:
        """Queue faults for the next generation requests (first come, first served)."""
        self.emulator.push_fault(*faults)

    def http_calls(self) -> int:
        """HTTP requests received in this test (generations and image downloads)."""
        return self.emulator.stats().requests_received

    def requests(self) -> list[ReceivedRequest]:
        """The generation requests received in this test, in arrival order."""
        return self.emulator.received_requests


@pytest.fixture(scope="session")
def _session_emulator() -> Iterator[Emulator]:
    with Emulator(api_key=EMULATOR_KEY, deployments=DEPLOYMENTS, max_lifetime_s=3600) as emu:
        yield emu


@pytest.fixture
def target(_session_emulator: Emulator) -> Iterator[Target]:
    emulator = _session_emulator
    emulator.reset()
    yield Target(emulator)
    assert not emulator.internal_errors, emulator.internal_errors
    assert not emulator.faults, f"faults left unused: {emulator.faults}"


@pytest.fixture
def made() -> Iterator[list[ImageGenerationTool]]:
    """Tools built by a test; their HTTP clients are closed afterwards."""
    tools: list[ImageGenerationTool] = []
    yield tools
    for tool in tools:
        tool.close()

"""Fixtures for the cassette-backed integration tests.

``target`` is where a test sends its requests: on replay (the default) a placeholder host
that only the cassette ever answers; while recording (``--record-mode=once|rewrite``) a fresh
loopback emulator with the Azure deployments / gateway model names below, whose FIFO fault
queue a test may fill through :meth:`Target.push_fault` (a no-op on replay, where the
cassette already holds the faulty answer).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import EMULATOR_KEY, REPLAY_BASE_URL
from tests.emulator import Emulator, Fault

REPLAY_ROOT = REPLAY_BASE_URL.removesuffix("/v1")
DEPLOYMENTS = {
    # Azure deployment names (``AzureImageGenerationTool(model=...)``) -> the model behind.
    "images": "gpt-image-2",
    # A gateway's own model name, served on the emulator's model-mapping route
    # (``/openai/v1/images/generations``, bearer auth accepted): stands in for a relay
    # that serves "flux-dev" with the DALL-E 3 request format.
    "flux-dev": "dall-e-3",
}


def recording(config: pytest.Config) -> bool:
    """Whether this run records cassettes (``--record-mode`` other than ``none``)."""
    return config.getoption("--record-mode") not in (None, "none")


@dataclass(frozen=True)
class Target:
    """Where requests go: ``root`` is the emulator root (also the Azure endpoint) or the
    replay placeholder; ``emulator`` is ``None`` on replay."""

    root: str
    emulator: Emulator | None

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (``{root}/v1``)."""
        return f"{self.root}/v1"

    @property
    def gateway_base_url(self) -> str:
        """Base URL of the model-mapping route standing in for a gateway."""
        return f"{self.root}/openai/v1"

    def push_fault(self, *faults: Fault) -> None:
        """Queue faults for the next requests while recording; nothing on replay."""
        if self.emulator is not None:
            self.emulator.push_fault(*faults)


@pytest.fixture
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """The emulator while recording (always: these scenarios are emulator-defined), the
    placeholder host on replay."""
    if not recording(request.config):
        yield Target(REPLAY_ROOT, None)
        return
    import pytest_socket

    pytest_socket.enable_socket()
    monkeypatch.setenv("OPENAI_API_KEY", EMULATOR_KEY)  # even with IMAGEGEN_RECORD_BASE_URL
    with Emulator(api_key=EMULATOR_KEY, deployments=DEPLOYMENTS) as emulator:
        yield Target(emulator.url, emulator)
        assert not emulator.internal_errors, emulator.internal_errors


@pytest.fixture(autouse=True)
def _serial_playback(vcr: Any) -> None:
    """Make replay of concurrent identical requests deterministic.

    vcrpy's ``Cassette.play_response`` checks and bumps a play count without a lock, so two
    threads of a sync fan-out could both be handed the same recorded answer. Serialising it
    makes each recorded interaction play exactly once (with ``allow_playback_repeats=False``).
    """
    if vcr is None:
        return
    lock = threading.Lock()
    play = vcr.play_response

    def locked_play(request: Any) -> Any:
        with lock:
            return play(request)

    vcr.play_response = locked_play

"""What the CLI test modules share: running the CLI in-process, and an emulator it talks to
(one per test module, reset for each test)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from langchain_imagegen.cli import main
from tests.emulator import Emulator


def run(argv: list[str]) -> tuple[int, str]:
    """The CLI's exit code and what it printed on stdout."""
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def cli_emulator() -> Iterator[Emulator]:
    # Streamed answers a few milliseconds apart: previews arrive as separate events.
    with Emulator(stream_interval_s=0.005) as emu:
        yield emu


@pytest.fixture
def served(cli_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator, reset, with the CLI's environment pointing at it."""
    cli_emulator.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", cli_emulator.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", cli_emulator.api_key)
    return cli_emulator

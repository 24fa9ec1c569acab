"""Shared pieces of the reliability suites: the loopback emulator and a tool aimed at it.

Every test here talks only to ``tests/emulator.py`` on 127.0.0.1 (the modules carry the
``emulator``, ``enable_socket`` and ``allow_hosts(["127.0.0.1"])`` marks) and checks
behaviour, not timing: what was retried (the emulator counts the requests it received), which
error the caller and the LLM get, and what is left on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import Emulator

EMULATOR_MARKS = [
    pytest.mark.emulator,
    pytest.mark.enable_socket,
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

MakeTool = Callable[..., ImageGenerationTool]


def tool_call(args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    """A ToolCall as a chat model emits it."""
    return {"name": "generate_image", "args": args, "id": call_id, "type": "tool_call"}


def files_under(directory: Path) -> list[Path]:
    """Every file below ``directory``, hidden ones (``.*.part``) included."""
    if not directory.exists():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(max_lifetime_s=300) as emu:
        yield emu


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "images"


@pytest.fixture
def make_tool(emulator: Emulator, out_dir: Path) -> Iterator[MakeTool]:
    """A tool pointed at the emulator; small retry budget so that every test is bounded."""
    made: list[ImageGenerationTool] = []

    def make(**kwargs: Any) -> ImageGenerationTool:
        options: dict[str, Any] = {
            "model": "gpt-image-1",
            "api_key": emulator.api_key,
            "base_url": emulator.base_url,
            "output_dir": str(out_dir),
            "max_retries": 2,
            "retry_budget": 20.0,
            "timeout": 10.0,
            "connect_timeout": 2.0,
        }
        options.update(kwargs)
        tool = ImageGenerationTool(**options)
        made.append(tool)
        return tool

    yield make
    for tool in made:
        tool.close()

"""``docs/models.md`` and the registry say the same thing, and lifecycle answers depend only on
the date they are given (never on the day the tests run: three models shut down 2026-12-01)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from langchain_imagegen.registry import GATEWAY_PROFILE, EditRule, ModelRegistry, SizeRule

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _lifecycle_rows() -> dict[str, tuple[str, str]]:
    """model name -> (shutdown cell, replacement cell) from the lifecycle table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in _section("Lifecycle").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([^`]+)`", cells[0]):
            rows[name] = (cells[1], cells[2])
    return rows


def test_the_lifecycle_table_is_the_registry() -> None:
    rows = _lifecycle_rows()
    models = ModelRegistry()
    assert set(models.known()) <= set(rows), "every built-in model has a lifecycle row"
    for name, (shutdown, replacement) in rows.items():
        profile = models.get(name)
        if profile.shutdown is None:
            assert shutdown == "none announced", name
        else:
            assert shutdown == profile.shutdown.isoformat(), name
            assert replacement == f"`{profile.replacement}`", name


SHUTDOWNS = [
    ("dall-e-2", dt.date(2026, 5, 12)),
    ("dall-e-3", dt.date(2026, 5, 12)),
    ("gpt-image-1-mini", dt.date(2026, 12, 1)),
    ("gpt-image-1.5", dt.date(2026, 12, 1)),
    ("gpt-image-1.5-2025-12-16", dt.date(2026, 12, 1)),
    ("chatgpt-image-latest", dt.date(2026, 12, 1)),
]


@pytest.mark.parametrize(("name", "shutdown"), SHUTDOWNS)
def test_shutdown_is_decided_by_the_injected_day(name: str, shutdown: dt.date) -> None:
    profile = ModelRegistry().get(name)
    day_before = shutdown - dt.timedelta(days=1)
    assert not profile.is_shut_down(day_before)
    assert profile.is_shut_down(shutdown)
    assert profile.lifecycle_note(day_before) == (
        f"{name} shuts down at OpenAI on {shutdown:%Y-%m-%d}; use gpt-image-2"
    )
    assert profile.lifecycle_note(shutdown) == (
        f"{name} was shut down by OpenAI on {shutdown:%Y-%m-%d}; use gpt-image-2 "
        "(gateways may still serve it)"
    )


@pytest.mark.parametrize("name", ["gpt-image-1", "gpt-image-2", "gpt-image-2-2026-04-21"])
def test_models_without_a_shutdown(name: str) -> None:
    profile = ModelRegistry().get(name)
    assert not profile.is_shut_down(dt.date(2099, 1, 1))
    assert profile.lifecycle_note(dt.date(2099, 1, 1)) is None


def test_the_gpt_image_2_table_is_the_size_rule() -> None:
    rule = ModelRegistry().get("gpt-image-2").size_rule
    assert isinstance(rule, SizeRule)
    section = _section("gpt-image-2")
    numbers = {
        row: re.sub(r"[^\d x:]", "", value).split()
        for row, value in re.findall(r"^\| ([a-z ]+) \| ([^|]+) \|$", section, re.MULTILINE)
    }
    assert numbers["edges"] == [str(rule.multiple_of)]
    assert numbers["aspect ratio"] == ["1:3", f"{rule.max_aspect:g}:1"]
    assert numbers["long edge"] == [str(rule.max_edge)]
    assert numbers["short edge"][0] == str(rule.max_short_edge)
    assert numbers["pixels"] == [f"{rule.min_pixels}", f"{rule.max_pixels}"]
    assert rule.experimental_above is not None
    assert "more pixels than {}x{}:".format(*rule.experimental_above) in section


_MIB = 1024 * 1024


def _edit_row(edits: EditRule | None) -> list[str]:
    """The cells docs/models.md#edits writes for an edit rule (after the model names)."""
    if edits is None:
        return ["cannot edit", "—", "—", "—", "—"]
    images = "1" if edits.max_images == 1 else f"up to {edits.max_images}"
    return [
        f"{images}, square" if edits.square else images,
        ", ".join(edits.image_formats),
        f"under {edits.max_image_bytes / _MIB:g} MiB",
        f"png under {edits.max_mask_bytes / _MIB:g} MiB",
        ", ".join(edits.input_fidelities) or "—",
    ]


def test_the_edits_table_is_the_registry() -> None:
    """Every built-in model and the gateway profile has one row, and the row is its EditRule."""
    models = ModelRegistry()
    rows = 0
    named: list[str] = []
    for line in _section("Edits").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("model", "---"):
            continue
        rows += 1
        if cells[0] == "any other name (gateway)":
            assert cells[1:] == _edit_row(GATEWAY_PROFILE.edits), line
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        assert names, line
        named += names
        for name in names:
            assert cells[1:] == _edit_row(models.get(name).edits), name
    assert rows == 5
    assert sorted(named) == models.known(), "every built-in model has exactly one edits row"

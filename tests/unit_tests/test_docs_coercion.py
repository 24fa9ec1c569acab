"""``docs/coercion.md`` cannot drift from the code: its capability table must equal the one the
registry generates, and its ``>>>`` examples must still produce the output shown."""

from __future__ import annotations

import datetime as dt
import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_imagegen import registry
from langchain_imagegen.coercion import coerce_params
from langchain_imagegen.model_table import (
    COLUMNS,
    capability_rows,
    capability_table_markdown,
    default_profiles,
)
from langchain_imagegen.registry import GATEWAY_PROFILE, PROFILES, ImageModelProfile, ModelRegistry
from scripts.capabilities import TABLE_END, TABLE_START, main, replace_table

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "coercion.md"
REGENERATE = "python scripts/capabilities.py --write docs/coercion.md"
_CODE_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _doc_table(text: str) -> str:
    assert text.count(TABLE_START) == 1, f"{DOC} needs exactly one {TABLE_START}"
    assert text.count(TABLE_END) == 1, f"{DOC} needs exactly one {TABLE_END}"
    start = text.index(TABLE_START) + len(TABLE_START)
    return text[start : text.index(TABLE_END)].strip()


def test_doc_table_matches_the_registry() -> None:
    in_doc = _doc_table(DOC.read_text(encoding="utf-8"))
    generated = capability_table_markdown()
    assert in_doc == generated, (
        f"The capability table in {DOC.name} is out of date with the registry. "
        f"Regenerate it from the repository root with:\n    {REGENERATE}"
    )


def _examples() -> list[tuple[int, str]]:
    text = DOC.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 1, m.group(1))
        for m in _CODE_BLOCK.finditer(text)
        if ">>>" in m.group(1)
    ]


@pytest.mark.parametrize(
    ("line", "source"), [pytest.param(*e, id=f"line{e[0]}") for e in _examples()]
)
def test_doc_examples_still_hold(line: int, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples were produced by real runs; they must keep producing the same output."""
    monkeypatch.setattr(registry, "default_registry", ModelRegistry())  # register_* stays local
    parser = doctest.DocTestParser()
    globs = {"coerce_params": coerce_params}  # imported once, in the doc's first example
    test = parser.get_doctest(source, globs, f"{DOC.name}:{line}", str(DOC), line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    assert test.examples


def test_doc_has_examples_for_every_rule() -> None:
    text = "\n".join(source for _, source in _examples())
    for needle in ("size", "quality", "style", '"n"', "prompt", "background", "register_model"):
        assert needle in text


# --- the table itself -----------------------------------------------------------------------


def test_rows_have_every_column_and_one_row_per_profile() -> None:
    rows = capability_rows(default_profiles())
    assert len(rows) == len(PROFILES) + 1
    assert all(tuple(row) == COLUMNS for row in rows)
    assert all(isinstance(cell, str) and cell for row in rows for cell in row.values())
    assert [row["model"] for row in rows][:-1] == [p.name for p in PROFILES]
    assert rows[-1]["model"] == "any other name (gateway)"


def test_rows_render_the_profiles() -> None:
    by_model = {row["model"]: row for row in capability_rows(default_profiles())}
    dalle3 = by_model["dall-e-3"]
    assert dalle3["sizes"] == "1024x1024, 1792x1024, 1024x1792"
    assert dalle3["qualities"] == "standard, hd (default standard)"
    assert dalle3["styles"] == "vivid, natural (default vivid)"
    assert dalle3["images per request"] == "1 (up to 10 per call, in parallel requests)"
    assert dalle3["prompt limit"] == "4,000"
    assert dalle3["revised prompt"] == "yes"
    assert dalle3["shutdown / replacement"] == "2026-05-12 → gpt-image-2"
    dalle2 = by_model["dall-e-2"]
    assert dalle2["qualities"] == "—"
    assert dalle2["response_format"] == "url, b64_json"
    gpt2 = by_model["gpt-image-2"]
    assert gpt2["sizes"].startswith("any WIDTHxHEIGHT with both edges multiples of 16")
    assert gpt2["sizes"].endswith("; or 1024x1024, 1536x1024, 1024x1536, auto")
    assert gpt2["response_format"] == "— (always b64_json)"
    assert gpt2["background"] == "transparent, opaque, auto"
    assert gpt2["shutdown / replacement"] == "—"
    gateway = by_model["any other name (gateway)"]
    assert gateway["default size"] == "—"
    assert gateway["sizes"].endswith("other WIDTHxHEIGHT sent as given")


def test_custom_profiles_render_and_pipes_are_escaped() -> None:
    custom = ImageModelProfile(
        name="odd|name",
        family="x",
        sizes=("512x512",),
        default_size="512x512",
        max_images_per_request=2,
        max_images=2,
        max_prompt_chars=77,
        shutdown=dt.date(2030, 1, 2),
    )
    (row,) = capability_rows([custom])
    assert row["images per request"] == "2"
    assert row["shutdown / replacement"] == "2030-01-02"
    table = capability_table_markdown([custom, GATEWAY_PROFILE.renamed("flux-dev")])
    lines = table.splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| odd\\|name | 512x512 | 512x512 |")
    assert lines[3].startswith("| flux-dev (gateway) |")
    assert all(line.count(" | ") == len(COLUMNS) - 1 for line in lines[2:])


def test_default_table_uses_the_registry() -> None:
    assert capability_table_markdown() == capability_table_markdown(default_profiles())
    assert default_profiles()[-1] is GATEWAY_PROFILE


def test_the_doc_tool_is_not_part_of_the_installed_package() -> None:
    """Runtime and tooling apart: the doc refresher lives in scripts/, not in the wheel."""
    package = ROOT / "langchain_imagegen"
    assert not (package / "capabilities.py").exists()
    assert "TABLE_START" not in "".join(p.read_text("utf-8") for p in package.glob("*.py"))


# --- regeneration -----------------------------------------------------------------------------


def test_write_refreshes_the_table_between_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{TABLE_START}\n| stale |\n{TABLE_END}\noutro\n", encoding="utf-8")
    assert main(["--write", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text == f"intro\n{TABLE_START}\n{capability_table_markdown()}\n{TABLE_END}\noutro\n"
    assert "updated" in capsys.readouterr().out
    assert main(["--write", str(doc)]) == 0
    assert "up to date" in capsys.readouterr().out
    assert doc.read_text(encoding="utf-8") == text


def test_write_refuses_a_document_without_markers(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("no markers here\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["--write", str(doc)])
    assert exit_info.value.code == 2
    assert doc.read_text(encoding="utf-8") == "no markers here\n"
    with pytest.raises(ValueError, match="capability-table"):
        replace_table(f"{TABLE_END}\n{TABLE_START}", "x")


def test_main_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == capability_table_markdown() + "\n"


def test_the_script_runs_from_the_repository_root(tmp_path: Path) -> None:
    """The command the docs give, run as a maintainer runs it (a subprocess, no sockets)."""
    doc = tmp_path / "doc.md"
    doc.write_text(f"{TABLE_START}\n{TABLE_END}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "scripts/capabilities.py", "--write", str(doc)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert capability_table_markdown() in doc.read_text(encoding="utf-8")

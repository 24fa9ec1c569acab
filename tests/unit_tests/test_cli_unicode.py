"""The CLI and text no encoder takes: invalid UTF-8 on a command line reaches Python as lone
surrogates (``surrogateescape``), which once made ``generate`` exit 1 ("unexpected error")
while ``--dry-run`` of the same words worked. Both now send or show the same cleaned prompt."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.unit_tests.test_cli import b64_images, run, serve

__all__ = ["serve"]  # a fixture: pytest finds it by the name the tests ask for

Handler = Callable[[httpx.Request], httpx.Response]
CUT = "a fox at dawn \udcff"  # what the byte 0xFF on a command line becomes


def test_generate_with_an_unencodable_argument_succeeds(
    serve: Callable[[Handler], list[dict[str, Any]]], tmp_path: Path
) -> None:
    bodies = serve(b64_images)
    code, out = run(["generate", CUT, "--output-dir", str(tmp_path)])
    assert code == 0, out
    assert bodies == [{"model": "gpt-image-2", "prompt": "a fox at dawn "}]
    assert "prompt:" in out  # the removal is reported
    assert len(list(tmp_path.iterdir())) == 1


def test_dry_run_and_real_run_send_the_same_body(
    serve: Callable[[Handler], list[dict[str, Any]]], tmp_path: Path
) -> None:
    code, out = run(["generate", CUT, "--dry-run", "--json"])
    assert code == 0, out
    planned = json.loads(out)
    bodies = serve(b64_images)
    assert run(["generate", CUT, "--output-dir", str(tmp_path)])[0] == 0
    assert planned["requests"] == bodies

"""Storage faults: an output_dir that cannot be written gives a clear error and no partial file.

Three ways to fail, each through the real emulator and a base64 model (whose images must be
saved): ``output_dir`` below a regular file (the directory cannot be created), a full disk
while flushing (``os.fsync`` raises ENOSPC) and a full disk while renaming into place
(``os.replace`` raises ENOSPC). Permissions are not used: tests may run as root.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from langchain_imagegen.errors import CorruptImageError, StorageError
from langchain_imagegen.storage import local as storage
from tests.emulator import Emulator
from tests.reliability.conftest import EMULATOR_MARKS, MakeTool, files_under, tool_call

pytestmark = EMULATOR_MARKS

PROMPT = "a lighthouse at dawn"


def _enospc(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


Breaker = Callable[[pytest.MonkeyPatch, Path], Path]


def _below_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file where a directory should be")
    return blocker / "images"


def _fsync_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(storage.os, "fsync", _enospc)
    return tmp_path / "images"


def _replace_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(storage.os, "replace", _enospc)
    return tmp_path / "images"


BREAKERS: dict[str, tuple[Breaker, int, str]] = {
    "output_dir below a regular file": (_below_a_file, errno.ENOTDIR, "Not a directory"),
    "disk full at fsync": (_fsync_fails, errno.ENOSPC, "No space left on device"),
    "disk full at rename": (_replace_fails, errno.ENOSPC, "No space left on device"),
}


def _assert_nothing_written(tmp_path: Path) -> None:
    left = [p for p in files_under(tmp_path) if p.name != "not-a-directory"]
    assert left == [], left  # neither a .part file nor an image


@pytest.mark.parametrize("name", list(BREAKERS))
def test_unwritable_output_dir_sync(
    name: str,
    emulator: Emulator,
    make_tool: MakeTool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    breaker, code, reason = BREAKERS[name]
    out = breaker(monkeypatch, tmp_path)
    tool = make_tool(output_dir=str(out))

    with pytest.raises(StorageError) as raised:
        tool.generate({"prompt": PROMPT, "n": 2})
    error = raised.value
    assert not isinstance(error, CorruptImageError)  # the server is not to blame
    assert error.errno == code
    assert str(out) in str(error)  # names the directory...
    assert reason in str(error)  # ...and the OS reason
    assert emulator.stats().generation_requests == 1  # a disk problem is not retried
    _assert_nothing_written(tmp_path)

    message = tool.invoke(tool_call({"prompt": PROMPT}))
    assert message.status == "error"
    assert reason in message.content
    assert "check output_dir" in message.content
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("name", list(BREAKERS))
async def test_unwritable_output_dir_async(
    name: str,
    emulator: Emulator,
    make_tool: MakeTool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    breaker, code, reason = BREAKERS[name]
    out = breaker(monkeypatch, tmp_path)
    tool = make_tool(output_dir=str(out))
    try:
        with pytest.raises(StorageError) as raised:
            await tool.agenerate({"prompt": PROMPT, "n": 2})
        assert raised.value.errno == code
        message = await tool.ainvoke(tool_call({"prompt": PROMPT}))
    finally:
        await tool.aclose()
    assert message.status == "error"
    assert reason in message.content
    _assert_nothing_written(tmp_path)


def test_downloaded_url_images_into_an_unwritable_dir(
    emulator: Emulator, make_tool: MakeTool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _below_a_file(monkeypatch, tmp_path)
    tool = make_tool(model="dall-e-2", download_urls=True, output_dir=str(out))
    with pytest.raises(StorageError) as raised:
        tool.generate({"prompt": PROMPT})
    assert raised.value.errno == errno.ENOTDIR
    _assert_nothing_written(tmp_path)


def test_disk_full_on_the_second_image_keeps_the_first(
    emulator: Emulator,
    make_tool: MakeTool,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure part-way costs only the images not yet saved; the saved one is whole."""
    real_replace = os.replace
    calls = {"n": 0}

    def replace_once(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            _enospc()
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", replace_once)
    tool = make_tool()
    result = tool.generate({"prompt": PROMPT, "n": 2})
    assert len(result.images) == 1
    assert len(result.errors) == 1
    assert "No space left on device" in result.errors[0]
    saved = Path(result.images[0].path or "")
    assert files_under(out_dir) == [saved]  # the whole first image, no .part of the second
    assert saved.read_bytes().startswith(b"\x89PNG")

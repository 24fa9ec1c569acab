"""What an LLM may name as an image to edit: only the tool's own images, by handle (and the
developer's ``allowed_dirs``). Everything else an LLM could make up, or be talked into by a
prompt injection, is refused through the tool exactly as an agent calls it, and the refusal
lists the handles it may use instead.

"Nothing read" is proved, not assumed: while a call runs, an audit hook (``sys.addaudithook``:
the ``open`` event that ``open()``, ``io.open``, ``pathlib`` and ``os.open`` raise, and the
``os.listdir``/``os.scandir`` events) records every file or directory the process opens or
lists whose real path (symlinks resolved) is one of the secrets: a directory outside the
storage holding a valid PNG (which would be sent if read) and a FIFO, ``/etc/passwd``, a fake
``~/.ssh/id_rsa``, a streamed preview. And the emulator must have received no request at all.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from langchain_imagegen.edit_tool import ImageEditTool
from langchain_imagegen.handles import image_handle
from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import encode_image
from tests.integration_tests.conftest import LIVE, Target
from tests.integration_tests.test_edits import MODES, edits, run, seed, sha
from tests.integration_tests.test_tool import failed, succeeded

pytestmark = LIVE

SECRET_TAG = "secret-outside-the-storage"
FAKE_HASH = "0123456789abcdef"
"""The 16 hex a planted symlink is named by, as if it were a stored image."""


# --- the audit ---------------------------------------------------------------------------------


@dataclass
class Touches:
    """Files and directories under ``roots`` that were opened or listed while watching."""

    roots: tuple[str, ...]
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, event: str, real: str) -> None:
        if any(real == root or real.startswith(root.rstrip("/") + "/") for root in self.roots):
            with self.lock:
                self.seen.append((event, real))


_WATCHING: list[Touches] = []
_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCHING or event not in _EVENTS or not args:
        return
    path = args[0]
    if not isinstance(path, str | bytes | os.PathLike):
        return  # a file descriptor
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (OSError, ValueError):
        return
    for touches in list(_WATCHING):
        touches.note(event, real)


@functools.cache
def _install_hook() -> None:
    sys.addaudithook(_audit)


@pytest.fixture
def watch() -> Iterator[Any]:
    """``with watch(*paths) as touches:`` records what is opened or listed under ``paths``
    (real paths) in any thread while the block runs. The hook is installed once per process
    (audit hooks cannot be removed) and does nothing outside a block."""
    _install_hook()

    class _Watch:
        def __init__(self, *paths: str | Path) -> None:
            self.touches = Touches(tuple(os.path.realpath(p) for p in paths))

        def __enter__(self) -> Touches:
            _WATCHING.append(self.touches)
            return self.touches

        def __exit__(self, *exc: object) -> None:
            _WATCHING.remove(self.touches)

    yield _Watch
    _WATCHING.clear()


def test_the_audit_sees_reads_through_symlinks(watch: Any, tmp_path: Path) -> None:
    """The proof works: a read through a symlink, in a thread, is recorded."""
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    link = tmp_path / "link.txt"
    link.symlink_to(secret)
    with watch(secret) as touches:
        reader = threading.Thread(target=link.read_bytes)
        reader.start()
        reader.join()
        os.close(os.open(link, os.O_RDONLY))
    assert touches.seen == [("open", str(secret.resolve()))] * 2


# --- the scene ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    tool: ImageEditTool
    out: Path
    outside: Path
    """Outside the storage and every allowed directory: a valid PNG and a FIFO."""
    other: Path
    """Another directory with a valid PNG, not in ``allowed_dirs``."""
    allowed: Path
    home: Path
    known: str
    """The handle of the one image in the storage: what the refusal must offer."""
    preview: Path

    @property
    def secrets(self) -> tuple[Path, ...]:
        return (self.outside, self.other, self.home / ".ssh", Path("/etc/passwd"), self.preview)


@pytest.fixture
def scene(
    made: list[ImageGenerationTool],
    target: Target,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Scene:
    out, outside, other, allowed, home = (
        tmp_path / name for name in ("images", "outside", "other", "allowed", "home")
    )
    for directory in (out, outside, other, allowed, home / ".ssh"):
        directory.mkdir(parents=True)
    (outside / "secret.png").write_bytes(encode_image("png", 32, 32, tag=SECRET_TAG))
    os.mkfifo(outside / "pipe.png")
    (other / "other.png").write_bytes(encode_image("png", 32, 32, tag="in another directory"))
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    monkeypatch.setenv("HOME", str(home))
    # Planted in the storage: symlinks out of it, named like stored images.
    (out / f"{FAKE_HASH}.png").symlink_to(outside / "secret.png")
    (out / "fedcba9876543210.png").symlink_to(outside / "pipe.png")
    (out / "escape").symlink_to(outside, target_is_directory=True)
    (allowed / "link.png").symlink_to(outside / "secret.png")
    tool = ImageEditTool(
        model="gpt-image-1",
        base_url=target.base_url,
        output_dir=str(out),
        allowed_dirs=[str(allowed)],
    )
    made.append(tool)
    known, _ = seed(tool, "the one stored image")
    saved = tool.store.save(encode_image("png", 32, 32, tag="a preview"), preview=True)
    assert saved.path is not None
    return Scene(tool, out, outside, other, allowed, home, known, Path(saved.path))


# References an LLM might make up (or be injected with), by what they try.
REFUSED: dict[str, str] = {
    "dot-dot": "../outside/secret.png",
    "dot-dot-deep": "../../../../../../etc/passwd",
    "handle-then-dot-dot": f"img_{FAKE_HASH}/../../outside/secret.png",
    "backslash-dot-dot": "..\\outside\\secret.png",
    "absolute-outside": "{outside}/secret.png",
    "absolute-through-the-storage": "{out}/../outside/secret.png",
    "absolute-fifo": "{outside}/pipe.png",
    "etc-passwd": "/etc/passwd",
    "file-url": "file:///etc/passwd",
    "file-url-outside": "file://{outside}/secret.png",
    "file-url-localhost": "file://localhost/etc/passwd",
    "tilde": "~/.ssh/id_rsa",
    "other-directory": "{other}/other.png",
    "symlink-handle": f"img_{FAKE_HASH}",
    "symlink-name": f"{FAKE_HASH}.png",
    "symlink-absolute": "{out}/" + FAKE_HASH + ".png",
    "symlink-to-fifo": "img_fedcba9876543210",
    "symlinked-directory": "{out}/escape/secret.png",
    "symlink-in-allowed-dir": "{allowed}/link.png",
    "other-bucket": "s3://other-bucket/images/" + FAKE_HASH + ".png",
    "other-scheme": "gs://bucket/" + FAKE_HASH + ".png",
    "preview-name": "{preview_name}",
    "preview-path": "{preview}",
    "relative": "outside/secret.png",
    "nul": "img_" + FAKE_HASH + "\x00.png",
}


def _ref(template: str, scene: Scene) -> str:
    return template.format(
        out=scene.out,
        outside=scene.outside,
        other=scene.other,
        allowed=scene.allowed,
        preview=scene.preview,
        preview_name=scene.preview.name,
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("as_mask", [False, True], ids=["image", "mask"])
@pytest.mark.parametrize("template", list(REFUSED.values()), ids=list(REFUSED))
async def test_a_reference_outside_the_tools_images_is_refused_and_nothing_is_read(
    scene: Scene, target: Target, watch: Any, template: str, as_mask: bool, mode: str
) -> None:
    ref = _ref(template, scene)
    args = {"prompt": "a hat", "images": [scene.known], "mask": ref} if as_mask else None
    args = args or {"prompt": "a hat", "images": [ref]}

    started = time.monotonic()
    with watch(*scene.secrets) as touches:
        text = failed(await run(scene.tool, args, mode))
    elapsed = time.monotonic() - started

    assert touches.seen == []  # nothing outside the tool's images was opened or listed
    assert target.emulator.stats().edit_requests == 0
    assert target.http_calls() == 0
    assert elapsed < 10  # a FIFO opened for reading would have hung
    assert f"refer to an earlier image by its handle: {scene.known}" in text
    assert SECRET_TAG not in text
    assert "root:" not in text
    assert "PRIVATE KEY" not in text
    preview_hash = scene.preview.name.removeprefix("preview-").split(".")[0]
    assert f"img_{preview_hash}" not in text  # a preview is never offered as a handle


@pytest.mark.parametrize("mode", MODES)
async def test_a_tampered_file_is_refused_and_not_sent(
    scene: Scene, target: Target, mode: str
) -> None:
    handle, _ = seed(scene.tool, "to be tampered with")
    stored = scene.out / f"{handle[4:]}.png"
    stored.write_bytes(encode_image("png", 64, 64, tag="swapped in later"))

    text = failed(await run(scene.tool, {"prompt": "a hat", "images": [handle]}, mode))

    assert f"the file of {handle} was changed after it was saved" in text
    assert "refer to an earlier image by its handle:" in text
    assert target.http_calls() == 0


@pytest.mark.parametrize("mode", MODES)
async def test_an_allowed_directory_is_read_and_nothing_else(
    scene: Scene, target: Target, watch: Any, mode: str
) -> None:
    data = encode_image("png", 48, 48, tag="a file the developer allowed")
    (scene.allowed / "photo.png").write_bytes(data)
    (scene.allowed / "sub").mkdir()
    (scene.allowed / "sub" / "inner.png").symlink_to(scene.allowed / "photo.png")

    with watch(*scene.secrets) as touches:
        _, result = succeeded(
            await run(
                scene.tool,
                {
                    "prompt": "a hat",
                    "images": [str(scene.allowed / "photo.png"), scene.known],
                },
                mode,
            )
        )
    assert touches.seen == []
    assert result.inputs == [image_handle(sha(data)), scene.known]
    (request,) = edits(target)
    assert request.edit is not None
    assert request.edit.images[0].sha256 == sha(data)

    # A symlink that stays inside the allowed directory is followed.
    _, again = succeeded(
        await run(
            scene.tool, {"prompt": "a hat", "images": [str(scene.allowed / "sub/inner.png")]}, mode
        )
    )
    assert again.inputs == [image_handle(sha(data))]


async def test_the_audit_sees_what_the_tool_reads(
    made: list[ImageGenerationTool], target: Target, scene: Scene, watch: Any
) -> None:
    """The control: with the outside directory allowed, the same reference is read (and the
    audit records it, from the worker thread of the async path too)."""
    for mode in MODES:
        tool = ImageEditTool(
            model="gpt-image-1",
            base_url=target.base_url,
            output_dir=str(scene.out),
            allowed_dirs=[str(scene.outside)],
        )
        made.append(tool)
        with watch(*scene.secrets) as touches:
            succeeded(
                await run(
                    tool, {"prompt": "a hat", "images": [f"{scene.outside}/secret.png"]}, mode
                )
            )
        assert ("open", str((scene.outside / "secret.png").resolve())) in touches.seen


def test_without_allowed_dirs_no_local_path_is_read(
    made: list[ImageGenerationTool], target: Target, tmp_path: Path, watch: Any
) -> None:
    """The default: an LLM never reads a file it was not given, even one beside the storage."""
    beside = tmp_path / "photo.png"
    beside.write_bytes(encode_image("png", 32, 32, tag="beside"))
    tool = ImageEditTool(
        model="gpt-image-1", base_url=target.base_url, output_dir=str(tmp_path / "out")
    )
    made.append(tool)
    assert tool.allowed_dirs == []

    with watch(beside) as touches:
        message = tool.invoke(
            {
                "type": "tool_call",
                "name": "edit_image",
                "id": "c",
                "args": {"prompt": "x", "images": [str(beside)]},
            }
        )
    text = failed(message)
    assert "is outside the places this tool may read" in text
    assert "there are no earlier images to refer to yet" in text
    assert touches.seen == []
    assert target.http_calls() == 0

"""``NotebookPreviews`` / ``AsyncNotebookPreviews``: one display per streamed image, updated
in place from preview to saved image, through IPython's real display machinery (an
``InteractiveShell`` whose display publisher records what a kernel would send), with the
tool streaming for real from the loopback emulator (``tests/emulator.py``)."""

from __future__ import annotations

import asyncio
import base64
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from traitlets.config import Config

from langchain_imagegen import (
    AsyncNotebookPreviews,
    ImageGenerationResult,
    ImageGenerationTool,
    NotebookPreviews,
)
from langchain_imagegen import notebook as notebook_module
from langchain_imagegen.tool import EVENT_NAME
from tests.emulator import Emulator, Fault, encode_image

pytestmark = [pytest.mark.emulator, pytest.mark.enable_socket,
              pytest.mark.allow_hosts(["127.0.0.1"])]  # fmt: skip

Output = dict[str, Any]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(stream_interval_s=0.005) as emu:
        yield emu


@pytest.fixture
def served(emulator: Emulator) -> Emulator:
    emulator.reset()
    return emulator


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[Output]]:
    """An IPython session whose display publisher keeps every output it is given."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # no user profile
    config = Config()
    config.HistoryManager.enabled = False  # no history database
    shell = InteractiveShell.instance(config=config)
    publisher = CapturingDisplayPublisher()
    shell.display_pub = publisher
    try:
        yield publisher.outputs
    finally:
        InteractiveShell.clear_instance()


def _tool(emulator: Emulator, output_dir: str | Path, **settings: Any) -> ImageGenerationTool:
    return ImageGenerationTool(
        base_url=emulator.base_url,
        api_key=emulator.api_key,
        output_dir=str(output_dir),
        partial_images=settings.pop("partial_images", 2),
        **settings,
    )


def _call(tool: ImageGenerationTool, handler: Any, **args: Any) -> ImageGenerationResult:
    """Invoke the tool as an agent does (a tool call) with ``handler``; the artifact."""
    call = {"name": "generate_image", "args": args, "id": "1", "type": "tool_call"}
    message = tool.invoke(call, config={"callbacks": [handler]})
    assert isinstance(message.artifact, ImageGenerationResult), message.content
    return message.artifact


def _display_id(output: Output) -> str:
    return str((output["transient"] or {})["display_id"])


def _by_display(outputs: list[Output]) -> dict[str, list[Output]]:
    grouped: dict[str, list[Output]] = {}
    for output in outputs:
        grouped.setdefault(_display_id(output), []).append(output)
    return grouped


def _embedded(output: Output) -> bytes:
    (source,) = re.findall(
        r'<img src="data:image/[a-z]+;base64,([^"]+)"', output["data"]["text/html"]
    )
    return base64.b64decode(source)


def _thumbnail_of(path: str) -> bytes:
    made = notebook_module._thumbnail(Path(path))
    assert made is not None
    data, _ = made
    return data if data is not None else Path(path).read_bytes()


def _assert_one_image_shown(outputs: list[Output], previews: int, final_path: str) -> None:
    """One display created at the first preview, updated for each next one, then for the
    saved image (its thumbnail, its file name)."""
    first, *updates = outputs
    assert first["update"] is False
    assert [u["update"] for u in updates] == [True] * previews
    captions = [o["data"]["text/plain"] for o in outputs]
    for number, caption in enumerate(captions[:-1], start=1):
        assert re.fullmatch(rf"image 1, preview {number}: preview-[0-9a-f]{{16}}\.png", caption)
    assert captions[-1] == f"image 1: {Path(final_path).name}"
    assert _embedded(outputs[-1]) == _thumbnail_of(final_path)
    assert str(Path(final_path).parent) not in outputs[-1]["data"]["text/html"]  # names only


def test_one_display_updated_from_preview_to_final_image(
    served: Emulator, published: list[Output], tmp_path: Path
) -> None:
    tool = _tool(served, tmp_path, partial_images=3)
    message = tool.invoke(
        {"name": "generate_image", "args": {"prompt": "a fox"}, "id": "1", "type": "tool_call"},
        config={"callbacks": [NotebookPreviews()]},
    )

    (path,) = [image.path for image in message.artifact.images]
    assert len(_by_display(published)) == 1
    _assert_one_image_shown(published, previews=3, final_path=path)
    previews = sorted(tmp_path.glob("preview-*"))
    assert len(previews) == 3
    shown = {o["data"]["text/plain"].split(": ")[1] for o in published[:-1]}
    assert shown == {p.name for p in previews}
    assert _embedded(published[0]) == _thumbnail_of(
        str(tmp_path / published[0]["data"]["text/plain"].split(": ")[1])
    )


@pytest.mark.parametrize("handler", [NotebookPreviews, AsyncNotebookPreviews])
async def test_async_runs_show_each_image_in_its_own_display(
    served: Emulator, published: list[Output], tmp_path: Path, handler: type
) -> None:
    tool = _tool(served, tmp_path, partial_images=2)
    message = await tool.ainvoke(
        {
            "name": "generate_image",
            "args": {"prompt": "a fox", "n": 2},
            "id": "1",
            "type": "tool_call",
        },
        config={"callbacks": [handler()]},
    )

    grouped = _by_display(published)
    assert len(grouped) == 2
    finals = {o[-1]["data"]["text/plain"] for o in grouped.values()}
    numbers = {caption.split(":")[0] for caption in finals}
    assert numbers == {"image 1", "image 2"}
    for outputs in grouped.values():
        first, *updates = outputs
        assert first["update"] is False
        assert [u["update"] for u in updates] == [True, True]  # preview 2, then the image
        index = int(outputs[-1]["data"]["text/plain"].split(":")[0].split()[-1]) - 1
        (image,) = [i for i in message.artifact.images if i.request_index == index]
        assert image.path is not None
        assert outputs[-1]["data"]["text/plain"] == f"image {index + 1}: {Path(image.path).name}"
        assert _embedded(outputs[-1]) == _thumbnail_of(image.path)


def test_a_restart_changes_the_caption_then_the_previews_go_on(
    served: Emulator, published: list[Output], tmp_path: Path
) -> None:
    served.push_fault(Fault.stream_cut(1))
    tool = _tool(served, tmp_path, partial_images=2)
    result = _call(tool, NotebookPreviews(), prompt="a fox")

    assert len(_by_display(published)) == 1
    captions = [o["data"]["text/plain"] for o in published]
    assert len(captions) == 5
    assert captions[0].startswith("image 1, preview 1: preview-")
    assert captions[1].startswith("image 1 starts over (attempt 2): ")
    assert "peer closed connection" in captions[1]
    assert published[1]["data"]["text/html"].count("<img ") == 1  # the last preview stays
    assert captions[2].startswith("image 1, preview 1: preview-")
    assert captions[3].startswith("image 1, preview 2: preview-")
    assert captions[4] == f"image 1: {Path(str(result.images[0].path)).name}"
    assert [o["update"] for o in published] == [False, True, True, True, True]


def test_in_an_agent(served: Emulator, published: list[Output], tmp_path: Path) -> None:
    from langchain.agents import create_agent

    class ScriptedModel(FakeMessagesListChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
            return self

    call = {"name": "generate_image", "args": {"prompt": "a fox"}, "id": "c1", "type": "tool_call"}
    model = ScriptedModel(responses=[AIMessage("", tool_calls=[call]), AIMessage("Done.")])
    agent = create_agent(model, tools=[_tool(served, tmp_path, partial_images=1)])
    state = agent.invoke(
        {"messages": [{"role": "user", "content": "Draw a fox."}]},
        config={"callbacks": [NotebookPreviews()]},
    )

    (path,) = [image.path for image in state["messages"][2].artifact.images]
    assert len(_by_display(published)) == 1
    _assert_one_image_shown(published, previews=1, final_path=path)


def test_remote_storage_shows_the_uri_instead_of_an_image(
    served: Emulator, published: list[Output]
) -> None:
    root = f"memory://nb-{uuid.uuid4().hex[:8]}/images"
    try:
        tool = _tool(served, root, partial_images=1)
        result = _call(tool, NotebookPreviews(), prompt="a fox")
    finally:
        fs = fsspec.filesystem("memory")
        if fs.exists(root):
            fs.rm(root, recursive=True)

    assert len(published) == 2
    preview, final = (o["data"] for o in published)
    assert re.fullmatch(r"image 1, preview 1: stored at memory://.+/preview-[0-9a-f]{16}\.png",
                        preview["text/plain"])  # fmt: skip
    assert final["text/plain"] == f"image 1: stored at {result.images[0].uri}"
    assert "<img" not in preview["text/html"] + final["text/html"]
    assert result.images[0].uri in final["text/html"]


def test_an_unsaved_preview_is_a_placeholder_with_the_reason(published: list[Output]) -> None:
    handler = NotebookPreviews()
    run = uuid.uuid4()
    event = {"stage": "partial", "request_index": 0, "partial_index": 0, "error": "disk <full>"}
    handler.on_custom_event(EVENT_NAME, event, run_id=run)

    (output,) = published
    assert output["data"]["text/plain"] == "image 1, preview 1 could not be saved: disk <full>"
    assert "disk &lt;full&gt;" in output["data"]["text/html"]
    assert "<img" not in output["data"]["text/html"]


def test_images_that_were_not_streamed_get_no_display(
    served: Emulator, published: list[Output], tmp_path: Path
) -> None:
    tool = _tool(served, tmp_path, partial_images=0)
    tool.invoke({"prompt": "a fox"}, config={"callbacks": [NotebookPreviews()]})
    assert published == []


def test_outside_ipython_it_does_nothing(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert InteractiveShell.initialized() is False
    tool = _tool(served, tmp_path, partial_images=2)
    result = _call(tool, NotebookPreviews(), prompt="a fox")
    assert result.images[0].path is not None
    assert capsys.readouterr() == ("", "")


def test_without_ipython_installed_it_does_nothing(
    served: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n == "IPython" or n.startswith("IPython.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "IPython", None)  # import IPython raises ImportError
    tool = _tool(served, tmp_path, partial_images=1)

    async def both() -> None:
        await tool.ainvoke({"prompt": "a fox"}, config={"callbacks": [AsyncNotebookPreviews()]})

    tool.invoke({"prompt": "a fox"}, config={"callbacks": [NotebookPreviews()]})
    asyncio.run(both())
    assert len(list(tmp_path.glob("preview-*"))) == 2


def test_an_image_past_the_budget_is_a_placeholder(
    published: list[Output], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notebook_module, "HTML_BUDGET", 1_000)  # smaller than any thumbnail
    preview = tmp_path / "preview-0123456789abcdef.png"
    preview.write_bytes(encode_image("png", 300, 300, tag="p"))
    handler = NotebookPreviews()
    event = {"stage": "partial", "request_index": 0, "partial_index": 0, "path": str(preview)}
    handler.on_custom_event(EVENT_NAME, event, run_id=uuid.uuid4())

    (output,) = published
    assert "<img" not in output["data"]["text/html"]
    assert "is not shown inline" in output["data"]["text/html"]
    assert output["data"]["text/plain"] == f"image 1, preview 1: {preview.name}"

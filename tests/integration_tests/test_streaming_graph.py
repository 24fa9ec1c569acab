"""Streamed previews inside LangGraph: a graph streamed with ``stream_mode="custom"`` receives
the tool's ``{"event": "image_generation", "stage": ...}`` items as they happen, the previews
(``partial``) before the final image is saved, live against the loopback emulator.

Two real graphs: a ``StateGraph`` whose node is ``langgraph.prebuilt.ToolNode`` fed a scripted
tool call, and ``langchain.agents.create_agent`` driven by a scripted tool-calling model
(``tests/fakes.py``). "Live" is checked against the emulator's write log
(``Emulator.stream_log``): the first preview reached the graph's caller before the emulator wrote
the final image.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode

from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import EVENT_NAME, ImageGenerationTool
from tests.emulator import Fault
from tests.fakes import call, scripted
from tests.integration_tests.conftest import LIVE, Target

pytestmark = LIVE

PROMPT = "a paper boat on a pond"
COMPLETED = "image_generation.completed"
Chunks = list[tuple[float, dict[str, Any]]]


def _tool(target: Target, tmp_path: Path, **kwargs: Any) -> ImageGenerationTool:
    return ImageGenerationTool(
        model=kwargs.pop("model", "gpt-image-1"),
        base_url=target.base_url,
        output_dir=str(tmp_path / "images"),
        **kwargs,
    )


def _tool_node_graph(tool: ImageGenerationTool) -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    return graph.compile()


def _request(args: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [AIMessage("", tool_calls=[call(args)])]}


def _ours(items: Iterable[Any]) -> Chunks:
    """The tool's items among a custom stream's, each with when the caller got it."""
    chunks: Chunks = []
    for item in items:
        assert isinstance(item, dict), item
        if item.get("event") == EVENT_NAME:
            chunks.append((time.monotonic(), item))
    return chunks


def _check_chunks(chunks: Chunks, *, partial_images: int, images: int, directory: Path) -> None:
    """Per request: the previews 0..N-1, then received and saved; every preview on disk."""
    stages = [item["stage"] for _, item in chunks]
    assert stages.count("requested") == images
    assert stages.count("partial") == images * partial_images  # each once, not twice
    for index in range(images):
        mine = [item for _, item in chunks if item.get("request_index") == index]
        assert [item["stage"] for item in mine] == [
            "requested",
            *["partial"] * partial_images,
            "received",
            "saved",
        ]
        partials = [item for item in mine if item["stage"] == "partial"]
        assert [item["partial_index"] for item in partials] == list(range(partial_images))
        for item in partials:
            assert set(item) == {"event", "stage", "request_index", "partial_index", "path", "uri"}
            path = Path(item["path"])
            assert path.parent == directory
            assert path.name.startswith("preview-")
            assert path.is_file()
        (saved,) = [item for item in mine if item["stage"] == "saved"]
        assert not Path(saved["path"]).name.startswith("preview-")


def _check_live(target: Target, chunks: Chunks) -> None:
    """The first preview reached the caller before the emulator wrote the final image."""
    completed = [r.at for r in target.emulator.stream_log if r.what == COMPLETED]
    assert completed, "the emulator streamed no final image"
    first_partial = next(at for at, item in chunks if item["stage"] == "partial")
    first_saved = next(at for at, item in chunks if item["stage"] == "saved")
    assert first_partial < min(completed) < first_saved


def _streamed_bodies(target: Target, partial_images: int) -> None:
    for request in target.requests():
        assert request.body["stream"] is True
        assert request.body["partial_images"] == partial_images
        assert request.body.get("n", 1) == 1


# --- ToolNode in a StateGraph ------------------------------------------------------------------


def test_tool_node_graph_streams_previews_before_the_final_image_sync(
    target: Target, tmp_path: Path
) -> None:
    target.push_fault(Fault.stream_interval(0.3))
    tool = _tool(target, tmp_path, partial_images=2)
    graph = _tool_node_graph(tool)

    chunks = _ours(graph.stream(_request({"prompt": PROMPT}), stream_mode="custom"))

    _check_chunks(chunks, partial_images=2, images=1, directory=tmp_path / "images")
    _check_live(target, chunks)
    _streamed_bodies(target, 2)
    tool.close()


async def test_tool_node_graph_streams_previews_before_the_final_image_async(
    target: Target, tmp_path: Path
) -> None:
    tool = _tool(target, tmp_path, model="gpt-image-2", partial_images=3)
    graph = _tool_node_graph(tool)

    chunks: Chunks = []
    async for item in graph.astream(_request({"prompt": PROMPT}), stream_mode="custom"):
        chunks.extend(_ours([item]))

    _check_chunks(chunks, partial_images=3, images=1, directory=tmp_path / "images")
    _streamed_bodies(target, 3)
    await tool.aclose()


async def test_tool_node_graph_async_preview_is_live(target: Target, tmp_path: Path) -> None:
    target.push_fault(Fault.stream_interval(0.3))
    tool = _tool(target, tmp_path, partial_images=2)
    graph = _tool_node_graph(tool)

    chunks: Chunks = []
    async for item in graph.astream(_request({"prompt": PROMPT}), stream_mode="custom"):
        chunks.extend(_ours([item]))

    _check_chunks(chunks, partial_images=2, images=1, directory=tmp_path / "images")
    _check_live(target, chunks)
    await tool.aclose()


def test_fan_out_previews_reach_the_graph_stream_from_every_request(
    target: Target, tmp_path: Path
) -> None:
    """A sync fan-out sends from worker threads: the graph's writer still gets every item."""
    tool = _tool(target, tmp_path, partial_images=2)
    graph = _tool_node_graph(tool)

    chunks = _ours(graph.stream(_request({"prompt": PROMPT, "n": 3}), stream_mode="custom"))

    _check_chunks(chunks, partial_images=2, images=3, directory=tmp_path / "images")
    _streamed_bodies(target, 2)
    assert len(target.requests()) == 3
    tool.close()


def test_graph_stream_with_updates_keeps_the_artifact(target: Target, tmp_path: Path) -> None:
    """Streaming custom items and state updates together: the previews come as custom
    items, the ToolMessage's artifact lists the final image only."""
    tool = _tool(target, tmp_path, partial_images=1)
    graph = _tool_node_graph(tool)

    custom: list[Any] = []
    messages: list[ToolMessage] = []
    for mode, item in graph.stream(_request({"prompt": PROMPT}), stream_mode=["custom", "updates"]):
        if mode == "custom":
            custom.append(item)
        else:
            assert isinstance(item, dict)
            messages.extend(m for m in item["tools"]["messages"] if isinstance(m, ToolMessage))

    chunks = _ours(custom)
    _check_chunks(chunks, partial_images=1, images=1, directory=tmp_path / "images")
    (message,) = messages
    assert message.status == "success", message.content
    assert isinstance(message.artifact, ImageGenerationResult)
    (image,) = message.artifact.images
    (saved,) = [item for _, item in chunks if item["stage"] == "saved"]
    assert image.path == saved["path"]
    assert isinstance(message.content, str)
    assert "preview-" not in message.content
    tool.close()


# --- create_agent ------------------------------------------------------------------------------


def test_agent_streams_previews_sync(target: Target, tmp_path: Path) -> None:
    target.push_fault(Fault.stream_interval(0.3))
    tool = _tool(target, tmp_path, partial_images=2)
    agent = create_agent(scripted([call({"prompt": PROMPT})], "Here it is."), [tool])

    chunks = _ours(agent.stream({"messages": [HumanMessage("draw a boat")]}, stream_mode="custom"))

    _check_chunks(chunks, partial_images=2, images=1, directory=tmp_path / "images")
    _check_live(target, chunks)
    tool.close()


async def test_agent_streams_previews_async(target: Target, tmp_path: Path) -> None:
    tool = _tool(target, tmp_path, model="gpt-image-2", partial_images=2)
    model = scripted([call({"prompt": PROMPT, "n": 2})], "Here they are.")
    agent = create_agent(model, [tool])

    chunks: Chunks = []
    final: dict[str, Any] | None = None
    async for mode, item in agent.astream(
        {"messages": [HumanMessage("two boats")]}, stream_mode=["custom", "values"]
    ):
        if mode == "custom":
            chunks.extend(_ours([item]))
        else:
            assert isinstance(item, dict)
            final = item

    _check_chunks(chunks, partial_images=2, images=2, directory=tmp_path / "images")
    assert final is not None
    assert final["messages"][-1].content == "Here they are."
    (message,) = [m for m in final["messages"] if isinstance(m, ToolMessage)]
    assert isinstance(message.artifact, ImageGenerationResult)
    saved = sorted(item["path"] for _, item in chunks if item["stage"] == "saved")
    assert sorted(image.path or "" for image in message.artifact.images) == saved
    # The model's second turn read the tool's text: no preview in it.
    assert "preview-" not in model.seen[1][-1].content
    await tool.aclose()


def test_agent_stream_restarted_item_after_a_cut(target: Target, tmp_path: Path) -> None:
    target.push_fault(Fault.stream_cut(1))
    tool = _tool(target, tmp_path, partial_images=2)
    agent = create_agent(scripted([call({"prompt": PROMPT})], "Done."), [tool])

    chunks = _ours(agent.stream({"messages": [HumanMessage("a boat")]}, stream_mode="custom"))

    stages = [item["stage"] for _, item in chunks]
    assert stages == [
        "requested",
        "partial",
        "restarted",
        "partial",
        "partial",
        "received",
        "saved",
    ]
    (restarted,) = [item for _, item in chunks if item["stage"] == "restarted"]
    assert restarted["attempt"] == 2
    assert restarted["previews_discarded"] == 1
    tool.close()

"""The ToolMessage artifact after a LangGraph checkpoint.

A checkpointer stores a ToolMessage through ``model_dump()``, so its artifact comes back
as a plain dict; ``ImageGenerationResult.from_artifact`` turns it back into the result.
Run where users run it: a ``ToolNode`` graph over a MockTransport (no network), with an
``InMemorySaver`` (sync and async) and with a ``SqliteSaver`` written by one process and
read by another.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode

from langchain_imagegen import ImageGenerationResult, ImageGenerationTool

ROOT = Path(__file__).resolve().parents[2]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
    "rkJggg=="
)
# A gpt-image answer with every field the Images API reference lists for the response.
ANSWER: dict[str, Any] = {
    "created": 1764460800,
    "size": "1536x1024",
    "quality": "high",
    "background": "opaque",
    "output_format": "png",
    "usage": {"input_tokens": 12, "output_tokens": 6240, "total_tokens": 6252},
    "data": [{"b64_json": base64.b64encode(PNG).decode(), "revised_prompt": "a red kite"}],
}
CONFIG: Any = {"configurable": {"thread_id": "thread-1"}}
CALL = AIMessage(
    "",
    tool_calls=[
        {
            "name": "generate_image",
            "args": {"prompt": "a kite", "size": "1536x1024"},
            "id": "call_1",
            "type": "tool_call",
        }
    ],
)


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=ANSWER)


def make_tool(output_dir: str | Path) -> ImageGenerationTool:
    return ImageGenerationTool(
        model="gpt-image-1",
        api_key="sk-test",
        base_url="https://gateway.example/v1",
        output_dir=str(output_dir),
        http_client=httpx.Client(transport=httpx.MockTransport(_answer)),
        http_async_client=httpx.AsyncClient(transport=httpx.MockTransport(_answer)),
    )


def build_graph(tool: ImageGenerationTool, checkpointer: BaseCheckpointSaver[Any]) -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    compiled: CompiledStateGraph[Any] = graph.compile(checkpointer=checkpointer)
    return compiled


def write_checkpoint(database: str, output_dir: str, expected: str) -> None:
    """Run one tool call into a SqliteSaver at ``database`` (in a process of its own), and
    write the live artifact as JSON to ``expected`` for the reading process to compare."""
    with SqliteSaver.from_conn_string(database) as saver:
        state = build_graph(make_tool(output_dir), saver).invoke({"messages": [CALL]}, CONFIG)
    artifact = state["messages"][-1].artifact
    assert isinstance(artifact, ImageGenerationResult)
    Path(expected).write_text(artifact.model_dump_json())


def _stored_message(graph: Any) -> ToolMessage:
    message = graph.get_state(CONFIG).values["messages"][-1]
    assert isinstance(message, ToolMessage)
    return message


def test_sqlite_checkpoint_read_in_another_process(tmp_path: Path) -> None:
    database, expected = tmp_path / "checkpoints.sqlite", tmp_path / "expected.json"
    writer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from tests.integration_tests.test_checkpoint import write_checkpoint\n"
            "write_checkpoint(*sys.argv[1:])",
            str(database),
            str(tmp_path / "images"),
            str(expected),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert writer.returncode == 0, writer.stderr

    with SqliteSaver.from_conn_string(str(database)) as saver:
        message = _stored_message(build_graph(make_tool(tmp_path / "unused"), saver))

    assert isinstance(message.artifact, dict)  # what every checkpointer gives back
    restored = ImageGenerationResult.from_artifact(message)
    assert restored == ImageGenerationResult.model_validate_json(expected.read_text())
    assert restored.to_text() == message.content
    (image,) = restored.images
    assert image.path is not None
    assert Path(image.path).read_bytes() == PNG
    # What the response reported survives too.
    assert (image.size, image.quality, image.background, image.output_format) == (
        "1536x1024",
        "high",
        "opaque",
        "png",
    )
    assert restored.usage == {"input_tokens": 12, "output_tokens": 6240, "total_tokens": 6252}
    assert ImageGenerationResult.from_artifact(message.artifact) == restored


def test_in_memory_checkpoint(tmp_path: Path) -> None:
    graph = build_graph(make_tool(tmp_path), InMemorySaver())
    live = graph.invoke({"messages": [CALL]}, CONFIG)["messages"][-1]
    assert isinstance(live.artifact, ImageGenerationResult)

    stored = _stored_message(graph)
    assert isinstance(stored.artifact, dict)
    assert ImageGenerationResult.from_artifact(stored) == live.artifact
    assert ImageGenerationResult.from_artifact(live) is live.artifact


async def test_in_memory_checkpoint_async(tmp_path: Path) -> None:
    graph = build_graph(make_tool(tmp_path), InMemorySaver())
    state = await graph.ainvoke({"messages": [CALL]}, CONFIG)
    live = state["messages"][-1]
    assert isinstance(live.artifact, ImageGenerationResult)

    snapshot = await graph.aget_state(CONFIG)
    stored = snapshot.values["messages"][-1]
    assert isinstance(stored.artifact, dict)
    assert ImageGenerationResult.from_artifact(stored) == live.artifact

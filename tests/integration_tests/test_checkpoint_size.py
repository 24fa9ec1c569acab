"""A LangGraph thread stays small: the artifact is a reference, never image bytes.

A ``ToolNode`` graph runs one call that makes four ~300 KB images, checkpointed by a real
``SqliteSaver``, once with local storage and once with S3 (moto on loopback,
``tests/s3_server.py``). The database must hold no base64 image data, its checkpoints must
weigh a few kilobytes, and a NEW process must get the images back from the checkpoint
alone: the file for local storage, the link fetched over HTTP for S3, and a link signed
anew there. A counter-example (a tool keeping base64 in its artifact) shows the measure sees
image data when it is there.

Run with ``-s`` to see the measured sizes (docs/storage.md quotes them).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from langchain_imagegen import ImageGenerationTool
from tests.emulator import encode_image
from tests.s3_server import S3_LIVE

pytestmark = S3_LIVE

ROOT = Path(__file__).resolve().parents[2]
IMAGES = [encode_image("png", 1, 1, tag=f"checkpoint-{i}", pad_to_bytes=300_000) for i in range(4)]
PNG_SIGNATURE_B64 = b"iVBORw0KGgo"  # base64 of the PNG signature: the start of any b64 PNG
CONFIG: Any = {"configurable": {"thread_id": "size-thread"}}
CALL = AIMessage(
    "",
    tool_calls=[
        {
            "name": "generate_image",
            "args": {"prompt": "four kites", "n": 4},
            "id": "call_1",
            "type": "tool_call",
        }
    ],
)
MAX_CHECKPOINT_BYTES = 16_000
"""Far below one image in base64 (~400 KB): the thread holds references only."""


def _answer(request: httpx.Request) -> httpx.Response:
    data = [{"b64_json": base64.b64encode(image).decode()} for image in IMAGES]
    return httpx.Response(200, json={"created": 1764460800, "data": data})


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_graph(database: Path, tool: BaseTool) -> None:
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    with SqliteSaver.from_conn_string(str(database)) as saver:
        graph.compile(checkpointer=saver).invoke({"messages": [CALL]}, CONFIG)


def run_thread(database: Path, output_dir: str, storage_options: dict[str, Any]) -> None:
    image_tool = ImageGenerationTool(
        model="gpt-image-1",
        api_key="sk-test",
        base_url="https://gateway.example/v1",
        output_dir=output_dir,
        storage_options=storage_options,
        http_client=httpx.Client(transport=httpx.MockTransport(_answer)),
    )
    run_graph(database, image_tool)
    image_tool.close()


def measure(database: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        count, checkpoint_bytes, largest = conn.execute(
            "SELECT count(*), sum(length(checkpoint) + length(metadata)),"
            " max(length(checkpoint) + length(metadata)) FROM checkpoints"
        ).fetchone()
        (write_bytes,) = conn.execute(
            "SELECT coalesce(sum(length(value)), 0) FROM writes"
        ).fetchone()
    return {
        "checkpoints": count,
        "checkpoint_bytes": checkpoint_bytes,
        "largest_checkpoint": largest,
        "pending_write_bytes": write_bytes,
        "file_bytes": database.stat().st_size,
    }


RESTORE = """
import hashlib, json, sys
from pathlib import Path

import httpx
from langgraph.checkpoint.sqlite import SqliteSaver

from langchain_imagegen import ImageGenerationResult
from langchain_imagegen.storage import open_store

database, thread_id = sys.argv[1:]
storage = json.load(sys.stdin)  # output_dir and storage_options: never on a command line
with SqliteSaver.from_conn_string(database) as saver:
    message = saver.get_tuple({"configurable": {"thread_id": thread_id}}).checkpoint[
        "channel_values"
    ]["messages"][-1]
result = ImageGenerationResult.from_artifact(message)
resigned = result.resign_links(
    open_store(storage["output_dir"], storage_options=storage["storage_options"],
               link_expires_in=120)
)


def fetch(image):
    if image.link:
        response = httpx.get(image.link)
        response.raise_for_status()
        return hashlib.sha256(response.content).hexdigest()
    return hashlib.sha256(Path(image.path).read_bytes()).hexdigest()


print(json.dumps({
    "text": result.to_text(),
    "images": [{"sha256": fetch(i), "link": i.link} for i in result.images],
    "resigned": [
        {"sha256": fetch(i), "link": i.link, "expires_at": str(i.link_expires_at)}
        for i in resigned.images
    ],
}))
"""


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_checkpoint_holds_references_and_restores_in_a_new_process(
    storage: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if storage == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        output_dir, options = f"{bucket.url}/threads", bucket.storage_options
    else:
        output_dir, options = str(tmp_path / "images"), {}
    database = tmp_path / "checkpoints.sqlite"

    run_thread(database, output_dir, options)
    sizes = measure(database)
    print(f"\n{storage} storage, 4 images of ~300 KB: {json.dumps(sizes)}")

    raw = b"".join(path.read_bytes() for path in tmp_path.glob(f"{database.name}*"))
    assert PNG_SIGNATURE_B64 not in raw
    assert sizes["largest_checkpoint"] < MAX_CHECKPOINT_BYTES, sizes
    if storage == "s3":
        assert options["secret"].encode() not in raw

    restore = subprocess.run(
        [sys.executable, "-c", RESTORE, str(database), CONFIG["configurable"]["thread_id"]],
        input=json.dumps({"output_dir": output_dir, "storage_options": options}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert restore.returncode == 0, restore.stderr
    restored = json.loads(restore.stdout)
    made = sorted(_sha(image) for image in IMAGES)
    assert sorted(i["sha256"] for i in restored["images"]) == made
    assert sorted(i["sha256"] for i in restored["resigned"]) == made
    if storage == "s3":
        endpoint = bucket.server.endpoint_url
        for image, fresh in zip(restored["images"], restored["resigned"], strict=True):
            assert image["link"].startswith(endpoint)
            assert image["link"] in restored["text"]
            assert fresh["link"].startswith(endpoint)
            assert fresh["link"] != image["link"]  # signed anew, for 120 s
    else:
        assert all(i["link"] is None for i in restored["images"] + restored["resigned"])


@tool(response_format="content_and_artifact")
def generate_image(prompt: str, n: int = 1) -> tuple[str, dict[str, Any]]:
    """The counter-example: a tool that puts its images in the artifact as base64."""
    return "Generated 4 images.", {"b64_json": [base64.b64encode(i).decode() for i in IMAGES]}


def test_the_measure_sees_base64_in_a_checkpoint(tmp_path: Path) -> None:
    """The same graph with a tool that keeps base64 in its artifact: the search for the PNG
    signature finds it and the checkpoint weighs what the images weigh, so the assertions
    above can fail."""
    database = tmp_path / "checkpoints.sqlite"

    run_graph(database, generate_image)
    sizes = measure(database)
    print(f"\nbase64 in the artifact, 4 images of ~300 KB: {json.dumps(sizes)}")

    assert PNG_SIGNATURE_B64 in database.read_bytes()
    assert sizes["largest_checkpoint"] > sum(len(image) for image in IMAGES)

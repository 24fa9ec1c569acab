"""``langchain-imagegen mcp``: the tools served over MCP, driven by the SDK's own client.

The server answers from the loopback emulator; what it answers is compared with what the
LangChain tool itself gives for the same arguments. Where the transport is the point, the
command runs as a subprocess: the sloppy call over stdio (the real command line, its pipes
carrying whole images as base64) and streamable HTTP on 127.0.0.1. The other tests run the
same command in-process (:func:`serve_in_process`: ``main(["mcp", ...])``, which parses the
options, builds the tools and the server and serves stdio, with only stdin and stdout
swapped for in-memory streams to the SDK's ``ClientSession``): a subprocess costs about 1.4 s
of interpreter start and imports, and these tests are about what is served, not the pipe.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import mcp.server.stdio
import mcp_types as types
import pytest
from langchain_core.messages import ToolCall, ToolMessage
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.memory import MessageStream, create_client_server_memory_streams
from PIL import Image

import langchain_imagegen
from langchain_imagegen.cli import main
from langchain_imagegen.edit_tool import ImageEditTool
from langchain_imagegen.mcp_server import DEFAULT_PREVIEW_BYTES, PREVIEW_EDGE, is_loopback
from langchain_imagegen.storage import sniff_image_type
from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import Emulator

pytestmark = [pytest.mark.emulator, pytest.mark.enable_socket,
              pytest.mark.allow_hosts(["127.0.0.1"])]  # fmt: skip

ROOT = Path(__file__).resolve().parents[2]
SLOPPY = {"prompt": "a lighthouse at dawn", "size": "1920x1080", "quality": "hd", "n": "2"}
_HANDLE = re.compile(r"img_[0-9a-f]{16}")
_REQUEST_ID = re.compile(r"req_[0-9a-f]+")
T = TypeVar("T")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(stream_interval_s=0.005) as emu:
        yield emu


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    emulator.reset()
    return emulator


def _arguments(emu: Emulator, output_dir: Path, *options: str) -> list[str]:
    """``langchain-imagegen``'s arguments for an ``mcp`` server answering from ``emu``."""
    return ["mcp", "--base-url", emu.base_url, "--output-dir", str(output_dir), *options]


def _command(emu: Emulator, output_dir: Path, *options: str) -> list[str]:
    return ["-m", "langchain_imagegen", *_arguments(emu, output_dir, *options)]


def _env(emu: Emulator) -> dict[str, str]:
    return {"OPENAI_API_KEY": emu.api_key, "PYTHONPATH": str(ROOT)}


@asynccontextmanager
async def stdio_session(
    emu: Emulator, output_dir: Path, *options: str
) -> AsyncIterator[ClientSession]:
    """A client session with ``langchain-imagegen mcp OPTIONS`` started over stdio."""
    params = StdioServerParameters(
        command=sys.executable, args=_command(emu, output_dir, *options), env=_env(emu), cwd=ROOT
    )
    with (output_dir.parent / "server-stderr.txt").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def serve_in_process(
    emu: Emulator,
    output_dir: Path,
    calls: Callable[[ClientSession], Awaitable[T]],
    *options: str,
) -> T:
    """What ``calls`` returns, having driven ``langchain-imagegen mcp OPTIONS`` through a
    client session: the command runs in this process (``main``: its options, the tools and
    the server it builds, ``serve_stdio``, closing the tools), its stdin and stdout swapped
    for in-memory streams to the SDK's ``ClientSession``. The session ends (EOF on the
    server's stdin, as when a client leaves) once ``calls`` returns or raises; what it
    raised is raised here, after the command returned."""
    answers: list[T] = []
    failures: list[Exception] = []

    async def client(streams: MessageStream) -> None:
        read, write = streams
        # What fails is raised once the command has returned (main would print one line).
        try:
            async with ClientSession(read, write) as session:
                await session.initialize()
                try:  # caught here, not wrapped in the session's exception group
                    answers.append(await calls(session))
                except Exception as error:  # noqa: BLE001 - raised below, as it was
                    failures.append(error)
        except Exception as error:  # noqa: BLE001 - raised below, as it was
            failures.append(error)
        finally:
            await write.aclose()

    @asynccontextmanager
    async def in_memory_stdio() -> AsyncIterator[MessageStream]:
        async with (
            create_client_server_memory_streams() as (client_streams, server_streams),
            anyio.create_task_group() as clients,
        ):
            clients.start_soon(client, client_streams)
            yield server_streams

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", emu.api_key)
        patch.setattr(mcp.server.stdio, "stdio_server", in_memory_stdio)
        code = main(_arguments(emu, output_dir, *options))
    if failures:
        raise failures[0]
    assert code == 0, "the command failed: its stderr is in the captured output"
    (answer,) = answers
    return answer


def _langchain_answer(tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    """What the LangChain tool answers an agent's call with these arguments."""
    message = tool.invoke(ToolCall(name=tool.name, args=args, id="call_1", type="tool_call"))
    assert isinstance(message, ToolMessage)
    return message


def _same_text(text: str) -> str:
    """The text with what differs between two runs of the same call (the images' hashes,
    their directory, the server's request ids) masked."""
    text = _HANDLE.sub("img_<hash>", _REQUEST_ID.sub("req_<id>", text))
    return re.sub(r"(?m): /\S+\.(png|jpeg|jpg|webp)$", r": <file>.\1", text)


def _previews(result: types.CallToolResult) -> list[types.ImageContent]:
    return [block for block in result.content if isinstance(block, types.ImageContent)]


def _links(result: types.CallToolResult) -> list[types.ResourceLink]:
    return [block for block in result.content if isinstance(block, types.ResourceLink)]


def _check_previews(result: types.CallToolResult, bound: int) -> None:
    previews = _previews(result)
    assert previews, "at least one preview fits"
    assert sum(len(p.data) for p in previews) <= bound
    for preview in previews:
        image = Image.open(io.BytesIO(base64.b64decode(preview.data)))
        assert max(image.size) <= PREVIEW_EDGE
        assert preview.mime_type == Image.MIME[image.format or ""]


# --- tools and their schemas -----------------------------------------------------------------


async def _listed_tools(session: ClientSession) -> dict[str, types.Tool]:
    return {tool.name: tool for tool in (await session.list_tools()).tools}


def test_tools_are_listed_with_the_langchain_tools_schema_per_model(
    emu: Emulator, tmp_path: Path
) -> None:
    gpt = serve_in_process(emu, tmp_path / "a", _listed_tools, "--model", "gpt-image-2")
    dalle = serve_in_process(
        emu, tmp_path / "b", _listed_tools, "--model", "dall-e-3", "--quality", "hd"
    )

    # Configured as the command configures them: --max-images defaults to 10 there.
    generate = ImageGenerationTool(model="gpt-image-2", api_key="sk-unused", max_images=10)
    edit = ImageEditTool(model="gpt-image-2", api_key="sk-unused", max_images=10)
    # --quality is the operator's: hidden from the LLM, as image_params hides it.
    with pytest.warns(FutureWarning, match="dall-e-3 was shut down"):
        fixed = ImageGenerationTool(
            model="dall-e-3", api_key="sk-unused", max_images=10, image_params={"quality": "hd"}
        )
    assert sorted(gpt) == ["edit_image", "generate_image"]
    assert sorted(dalle) == ["generate_image"]  # dall-e-3 cannot edit
    for served, tool in ((gpt["generate_image"], generate), (gpt["edit_image"], edit),
                         (dalle["generate_image"], fixed)):  # fmt: skip
        assert served.input_schema == tool.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
        assert served.description == tool.description
    gpt_fields = set(gpt["generate_image"].input_schema["properties"])
    dalle_fields = set(dalle["generate_image"].input_schema["properties"])
    assert "style" in dalle_fields - gpt_fields
    assert "quality" not in dalle_fields
    assert "background" in gpt_fields - dalle_fields


def test_a_provider_s_schema_and_format_reach_the_client(tmp_path: Path) -> None:
    async def list_call_and_read(
        session: ClientSession,
    ) -> tuple[types.Tool, types.CallToolResult, types.ResourceLink, types.ReadResourceResult]:
        (tool,) = (await session.list_tools()).tools
        result = await session.call_tool(
            "generate_image", {"prompt": "a lighthouse", "size": "1920x1080"}
        )
        (link,) = _links(result)
        return tool, result, link, await session.read_resource(link.uri)

    with Emulator(provider="xai") as xai:
        # xAI answers URLs; --download keeps the images, served as image:// resources.
        options = ("--provider", "xai", "--download")
        tool, result, link, read = serve_in_process(
            xai, tmp_path / "xai", list_call_and_read, *options
        )
        (body,) = [request.body for request in xai.received_requests]

    assert tool.name == "generate_image"  # xAI's models do not edit through the tool
    assert "16:9" in json.dumps(tool.input_schema["properties"]["size"])
    assert not result.is_error
    assert "size: '1920x1080' → '16:9'" in result.content[0].text  # type: ignore[union-attr]
    assert body["aspect_ratio"] == "16:9"
    assert "size" not in body
    assert str(link.uri).startswith("image://img_")
    assert read.contents[0].blob  # type: ignore[union-attr]


# --- a call ------------------------------------------------------------------------------------


async def test_a_sloppy_call_reads_as_in_langchain_with_links_and_bounded_previews(
    emu: Emulator, tmp_path: Path
) -> None:
    async with stdio_session(emu, tmp_path / "served") as session:
        result = await session.call_tool("generate_image", SLOPPY)
        links = _links(result)
        read = [await session.read_resource(link.uri) for link in links]
        # A client passes the resource back to edit it: image://img_... means the handle.
        edited = await session.call_tool(
            "edit_image", {"prompt": "add a red boat", "images": [str(links[0].uri)]}
        )

    tool = ImageGenerationTool(
        model="gpt-image-2",
        base_url=emu.base_url,
        api_key=emu.api_key,
        output_dir=str(tmp_path / "lc"),
    )
    expected = _langchain_answer(tool, SLOPPY)
    assert not result.is_error
    assert isinstance(result.content[0], types.TextContent)
    assert _same_text(result.content[0].text) == _same_text(expected.text)
    assert "- size: '1920x1080' → '1920x1088'" in result.content[0].text
    assert "- quality: 'hd' → 'high'" in result.content[0].text

    handles = _HANDLE.findall(result.content[0].text)
    assert [str(link.uri) for link in links] == [f"image://{h}" for h in handles]
    assert len(links) == 2
    for link, contents in zip(links, read, strict=True):
        (blob,) = contents.contents
        assert isinstance(blob, types.BlobResourceContents)
        data = base64.b64decode(blob.blob)
        assert sniff_image_type(data) == ("image/png", "png") == (blob.mime_type, "png")
        assert f"img_{hashlib.sha256(data).hexdigest()[:16]}" == link.name
        assert link.size == len(data)
        assert Image.open(io.BytesIO(data)).size == (1920, 1088)
    _check_previews(result, DEFAULT_PREVIEW_BYTES)

    assert not edited.is_error, edited.content
    assert isinstance(edited.content[0], types.TextContent)
    assert edited.content[0].text.startswith(f"Edited {handles[0]} into 1 image with gpt-image-2.")


def test_refusals_rate_limits_and_bad_arguments_are_error_results(
    emu: Emulator, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = [
        {"prompt": "a fox [[fault:content_policy_violation]]"},
        # Retry-After beyond what the tool waits: it gives up at once, as it would in LangChain.
        {"prompt": "a fox [[fault:rate_limit:200]]"},
        {"prompt": 5, "n": "lots"},
    ]

    async def call_each(session: ClientSession) -> list[types.CallToolResult]:
        return [await session.call_tool("generate_image", args) for args in calls]

    results = serve_in_process(emu, tmp_path / "served", call_each)

    tool = ImageGenerationTool(
        model="gpt-image-2",
        base_url=emu.base_url,
        api_key=emu.api_key,
        output_dir=str(tmp_path / "lc"),
    )
    for args, result in zip(calls, results, strict=True):
        expected = _langchain_answer(tool, args)
        assert expected.status == "error"
        assert result.is_error
        assert [block.type for block in result.content] == ["text"]
        assert isinstance(result.content[0], types.TextContent)
        assert _same_text(result.content[0].text) == _same_text(expected.text)
    texts = [result.content[0].text for result in results]  # type: ignore[union-attr]
    assert "content_policy_violation" in texts[0]
    assert "rephrase the prompt" in texts[0]
    assert "rate_limit_exceeded" in texts[1]
    assert texts[2].startswith("Invalid arguments for the image tool: prompt:")


# --- progress ----------------------------------------------------------------------------------


def test_progress_notifications_announce_requests_previews_and_saved_images(
    emu: Emulator, tmp_path: Path
) -> None:
    notes: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append((progress, total, message))

    async def call_and_read_a_preview(
        session: ClientSession,
    ) -> tuple[types.CallToolResult, list[str], types.ReadResourceResult]:
        result = await session.call_tool(
            "generate_image", {"prompt": "a red fox"}, progress_callback=on_progress
        )
        messages = [message or "" for _, _, message in notes]
        preview_uri = next(m for m in messages if m.startswith("preview")).rsplit(" ", 1)[-1]
        return result, messages, await session.read_resource(preview_uri)

    result, messages, preview = serve_in_process(
        emu, tmp_path / "served", call_and_read_a_preview, "--partial-images", "2"
    )

    assert not result.is_error
    assert [p for p, _, _ in notes] == list(range(1, len(notes) + 1))  # strictly increasing
    (link,) = _links(result)
    assert messages[0] == "requested 1 image (request 1)"
    assert re.fullmatch(r"preview 1 of request 1: image://preview-[0-9a-f]{16}\.png", messages[1])
    assert re.fullmatch(r"preview 2 of request 1: image://preview-[0-9a-f]{16}\.png", messages[2])
    assert messages[3:] == ["received 1 image (request 1)", f"saved image 1: {link.uri}"]
    (blob,) = preview.contents
    assert isinstance(blob, types.BlobResourceContents)
    assert sniff_image_type(base64.b64decode(blob.blob)) == ("image/png", "png")


# --- streamable HTTP ---------------------------------------------------------------------------


async def test_streamable_http_on_loopback_with_a_preview_bound(
    emu: Emulator, tmp_path: Path
) -> None:
    bound = 6000  # room for small previews of two 1920x1088 images, not for big ones
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *_command(emu, tmp_path / "served", "--http", "127.0.0.1:0", "--preview-bytes", str(bound)),
        env={**os.environ, **_env(emu)},
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        found = re.search(r"at (http://127\.0\.0\.1:(\d+)/mcp)$", line.strip())
        assert found, line
        url = found.group(1)
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            names = [tool.name for tool in (await s.list_tools()).tools]
            result = await s.call_tool("generate_image", SLOPPY)
            (first, _) = _links(result)
            data = base64.b64decode((await s.read_resource(first.uri)).contents[0].blob)  # type: ignore[union-attr]
        # A browser page elsewhere cannot drive it: a foreign Host is refused (DNS rebinding).
        async with httpx.AsyncClient() as client:
            foreign = await client.post(url, headers={"Host": "attacker.example"}, json={})
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)

    assert names == ["generate_image", "edit_image"]
    assert not result.is_error
    assert len(_links(result)) == 2
    _check_previews(result, bound)
    assert sniff_image_type(data) == ("image/png", "png")
    assert foreign.status_code in (400, 403, 421)


def test_http_refuses_an_address_other_machines_reach(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused")
    assert main(["mcp", "--http", "0.0.0.0:8765"]) == 2
    error = capsys.readouterr().err
    assert "--http 0.0.0.0:8765 would let other machines use this server" in error
    assert "--allow-remote" in error
    with pytest.raises(SystemExit) as usage:  # no port: argparse's usage error
        main(["mcp", "--http", "localhost"])
    assert usage.value.code == 2
    assert "expected HOST:PORT such as 127.0.0.1:8000, got 'localhost'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True),
     ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.168.1.10", False),
     ("example.com", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# --- the extra ---------------------------------------------------------------------------------


def test_without_the_extra_the_command_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("mcp", "mcp_types"):
        monkeypatch.setitem(sys.modules, name, None)  # an import of it fails, as if absent
    # The server module is imported anew (this test module imported it), and fails.
    monkeypatch.delitem(sys.modules, "langchain_imagegen.mcp_server")
    monkeypatch.delattr(langchain_imagegen, "mcp_server")
    assert main(["mcp"]) == 2
    assert capsys.readouterr().err == (
        "langchain-imagegen: the mcp command needs the MCP SDK: "
        "pip install 'langchain-imagegen[mcp]'\n"
    )


def test_importing_the_package_and_its_cli_never_imports_the_sdk() -> None:
    code = (
        "import sys, langchain_imagegen, langchain_imagegen.cli;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_types')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert run.stdout.strip() == "[]"

"""The tools as a Model Context Protocol server (``langchain-imagegen mcp``, docs/mcp.md).

Any MCP client (a desktop assistant, an IDE's agent, another framework) gets the same tools
a LangChain agent gets, with the same brains:

* each tool's input schema is the JSON schema the LangChain tool advertises for its model
  (``tool.tool_call_schema``), and a call runs the LangChain tool itself
  (``tool.ainvoke(ToolCall)``): coercion, fan-out, retries, storage, cost and errors are
  the tool's. The result's text is the ToolMessage's, exactly what an LLM reads in
  LangChain (adjustments, shortfalls, cost); an error ToolMessage (a refusal, a rate limit,
  bad arguments) is a result with ``isError`` and the same message;
* no full-size base64 in a result (clients cap results: 1 MiB, 25k tokens): each image is a
  link, its storage's http(s) link when it has one, else a ``resource_link`` to
  ``image://<handle>``, which this server serves (``resources/read``) from the tools'
  storage; optionally followed by small previews (``ImageContent``) whose base64 stays
  within ``preview_bytes`` for the whole call, downscaled with Pillow when it is installed
  (else only the images that fit are previewed);
* the tool's progress events (the stream LangChain callbacks receive: ``requested``,
  ``partial``, ``restarted``, ``received``, ``saved``) become MCP progress notifications
  when the client asks for them; a streamed preview is announced as an ``image://``
  resource it can read.

The SDK (``mcp``) is an optional extra, ``pip install 'langchain-imagegen[mcp]'``: importing
:mod:`langchain_imagegen` never imports this module.
"""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import re
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any
from uuid import UUID

import mcp_types as types
from langchain_core.callbacks.base import AsyncCallbackHandler
from langchain_core.messages import ToolCall, ToolMessage
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from langchain_imagegen.errors import ImageGenError
from langchain_imagegen.events import EVENT_NAME
from langchain_imagegen.handles import DEFAULT_MAX_INPUT_BYTES, ImageResolver, handle_of_name
from langchain_imagegen.result import GeneratedImage, ImageGenerationResult
from langchain_imagegen.storage.base import ImageStoreBase, scrub, secret_strings
from langchain_imagegen.storage.images import is_preview_name, sniff_image_type
from langchain_imagegen.tool import BaseImageGenerationTool

__all__ = [
    "DEFAULT_PREVIEW_BYTES",
    "PREVIEW_EDGE",
    "RESOURCE_SCHEME",
    "ImageToolServer",
    "input_schema",
    "is_loopback",
]

DEFAULT_PREVIEW_BYTES = 256 * 1024
"""Most base64 characters of previews in one call's result (0: no previews). Well under what
clients accept in a tool result (1 MiB, or 25k tokens)."""
PREVIEW_EDGE = 512
"""Longest edge, in pixels, of a preview made with Pillow; smaller when the budget is tight."""
RESOURCE_SCHEME = "image"
"""Images this server serves are ``image://<handle>`` (and ``image://preview-<hash16>.<ext>``
for streamed previews)."""

_PREVIEW_EDGES = (PREVIEW_EDGE, 256, 128)
_JPEG_QUALITY = 80
_LISTED_RESOURCES = 100
_RESOURCE_URI = re.compile(r"\Aimage://([A-Za-z0-9_.\-]{1,80})\Z")
_HANDLE_URI = re.compile(r"\Aimage://(img_[0-9a-fA-F]{16})\Z")
_RESOURCE_NOT_FOUND = -32002  # the MCP specification's code for resources/read
_INVALID_PARAMS = -32602  # JSON-RPC's


class ImageToolServer:
    """An MCP server exposing image tools (a generation tool and, optionally, its edit
    tool, built alike: they share one storage, whose images it serves as resources).

    ```python
    tools = image_tools(model="gpt-image-2", output_dir="images")
    asyncio.run(ImageToolServer(tools).serve_stdio())
    ```

    The tools are the caller's; :meth:`aclose` closes them.
    """

    def __init__(
        self,
        tools: Sequence[BaseImageGenerationTool],
        *,
        preview_bytes: int = DEFAULT_PREVIEW_BYTES,
        name: str = "langchain-imagegen",
    ) -> None:
        if not tools:
            raise ValueError("an MCP server needs at least one tool")
        if preview_bytes < 0:
            raise ValueError(f"preview_bytes must be 0 or more, got {preview_bytes}")
        self.tools: dict[str, BaseImageGenerationTool] = {}
        for tool in tools:
            if tool.name in self.tools:
                raise ValueError(f"two tools are named {tool.name!r}; give one another name")
            self.tools[tool.name] = tool
        self.preview_bytes = preview_bytes
        self.store: ImageStoreBase = tools[0].store
        self._secrets = secret_strings(tools[0].storage_options)
        self.server: Server[Any] = Server(
            name,
            version=_version(),
            instructions=(
                "Image tools. Each image in a result has a handle (img_...) to pass back to "
                "edit it, and a link: an http(s) URL, or an image:// resource this server "
                "serves. Arguments that don't fit the model are adjusted, and the result "
                "says what changed."
            ),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
        )

    # --- running ---------------------------------------------------------------------------

    async def serve_stdio(self) -> None:
        """Serve one client over this process's stdin and stdout, until stdin closes."""
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read_stream, write_stream):
            await self.server.run(
                read_stream, write_stream, self.server.create_initialization_options()
            )

    async def serve_http(
        self, host: str, port: int, *, announce: Callable[[str], None] | None = None
    ) -> None:
        """Serve streamable HTTP at ``http://HOST:PORT/mcp`` until interrupted (Ctrl-C,
        SIGTERM). ``announce`` is given the endpoint's URL once the socket listens (port 0
        picks a free port). On a loopback host the SDK's DNS-rebinding protection is on;
        this server has no authentication of its own (docs/mcp.md: put one in front)."""
        import uvicorn

        listener = _listen(host, port)
        app = self.server.streamable_http_app(host=host.strip("[]"))
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        bound = listener.getsockname()
        shown = f"[{bound[0]}]" if listener.family == socket.AF_INET6 else bound[0]
        if announce is not None:
            announce(f"http://{shown}:{bound[1]}/mcp")
        try:
            await uvicorn.Server(config).serve(sockets=[listener])
        finally:
            listener.close()

    async def aclose(self) -> None:
        for tool in self.tools.values():
            await tool.aclose()

    # --- tools -----------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=name, description=tool.description, input_schema=input_schema(tool))
                for name, tool in self.tools.items()
            ]
        )

    async def _call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = self.tools.get(params.name)
        if tool is None:
            known = ", ".join(self.tools)
            raise MCPError(
                _INVALID_PARAMS, f"unknown tool {params.name!r}; this server has {known}"
            )
        args = _handles_for_resource_uris(params.arguments or {})
        call = ToolCall(name=tool.name, args=args, id=f"mcp_{uuid.uuid4().hex}", type="tool_call")
        progress = _ProgressNotifier(ctx.session)
        try:
            message = await tool.ainvoke(call, config={"callbacks": [progress]})
        except ImageGenError as error:  # raised outside the tool's own handling
            return _error(error.agent_message())
        except Exception as error:  # noqa: BLE001 - a tool result, never a dropped connection
            text = scrub(f"{type(error).__name__}: {error}", self._secrets)
            return _error(f"The image tool failed unexpectedly ({text}). This is not a problem "
                          "with the arguments; report it to the server's operator.")  # fmt: skip
        if not isinstance(message, ToolMessage):  # the tool's contract: a ToolMessage for a call
            return _error(f"The image tool answered {type(message).__name__}, not a result.")
        text = message.text
        if message.status == "error" or not isinstance(message.artifact, ImageGenerationResult):
            return _error(text)
        content: list[types.ContentBlock] = [types.TextContent(text=text)]
        content += [_link(image) for image in message.artifact.images]
        content += await self._previews(message.artifact.images)
        return types.CallToolResult(content=content)

    async def _previews(self, images: Sequence[GeneratedImage]) -> list[types.ContentBlock]:
        """Small previews of the saved images, their base64 within ``preview_bytes`` in all:
        each image gets an equal share of what is left."""
        saved = [(image, name) for image in images if (name := self._name_of(image)) is not None]
        previews: list[types.ContentBlock] = []
        left = self.preview_bytes
        for number, (_, name) in enumerate(saved):
            share = left // (len(saved) - number)
            if share <= 0:
                break
            try:
                data = await self.store.aread(name, max_bytes=DEFAULT_MAX_INPUT_BYTES)
            except (OSError, ValueError, ImageGenError):
                continue  # the link still names it; a preview is optional
            preview = await asyncio.to_thread(_preview, data, share)
            if preview is not None:
                previews.append(preview)
                left -= len(preview.data)
        return previews

    def _name_of(self, image: GeneratedImage) -> str | None:
        where = image.uri or image.path
        return self.store.name_of(where) if where and image.sha256 else None

    # --- resources -------------------------------------------------------------------------

    async def _list_resources(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        try:
            names = await asyncio.to_thread(self.store.names)
        except ImageGenError:
            names = []
        resources = []
        for name in names[:_LISTED_RESOURCES]:  # newest first
            handle = handle_of_name(name)
            if handle is not None:
                resources.append(
                    types.Resource(
                        uri=f"{RESOURCE_SCHEME}://{handle}",
                        name=handle,
                        mime_type=_mime_of_name(name),
                    )
                )
        return types.ListResourcesResult(resources=resources)

    async def _list_resource_templates(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=f"{RESOURCE_SCHEME}://{{handle}}",
                    name="image",
                    description="An image the tools saved, by its handle (img_...), or a "
                    "streamed preview by its file name (preview-<hash16>.<ext>)",
                )
            ]
        )

    async def _read_resource(
        self, ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        found = _RESOURCE_URI.match(uri)
        if found is None:
            raise MCPError(_RESOURCE_NOT_FOUND, f"not an image of this server: {uri[:160]!r}")
        name = found.group(1)
        try:
            if is_preview_name(name):
                data = await self.store.aread(name, max_bytes=DEFAULT_MAX_INPUT_BYTES)
                kind = sniff_image_type(data)
                mime_type = kind[0] if kind else "application/octet-stream"
            else:  # a handle: its bytes must still hash to it
                resolver = ImageResolver(self.store, max_bytes=DEFAULT_MAX_INPUT_BYTES)
                image = await resolver.aresolve(name)
                data, mime_type = image.data, image.mime_type
        except (FileNotFoundError, ValueError, ImageGenError) as error:
            message = scrub(str(error), self._secrets)
            raise MCPError(_RESOURCE_NOT_FOUND, f"cannot read {uri}: {message}") from None
        blob = base64.b64encode(data).decode("ascii")
        return types.ReadResourceResult(
            contents=[types.BlobResourceContents(uri=uri, mime_type=mime_type, blob=blob)]
        )


def input_schema(tool: BaseImageGenerationTool) -> dict[str, Any]:
    """The JSON schema of a tool's arguments, as the LangChain tool advertises it to an LLM
    (per model: its sizes, qualities, limits; developer-fixed fields hidden)."""
    schema = tool.tool_call_schema
    if isinstance(schema, dict):
        return dict(schema)
    if issubclass(schema, BaseModel):
        return schema.model_json_schema()
    return dict(schema.schema())  # a pydantic.v1 model


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 in brackets or not) is this machine
    only: ``localhost`` or a loopback address."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one)."""
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


def _version() -> str:
    try:
        return metadata.version("langchain-imagegen")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return ""


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _link(image: GeneratedImage) -> types.ContentBlock:
    """Where a client fetches the image: its storage's http(s) link, else this server's
    ``image://<handle>`` resource, else (an image that was not saved) the server's URL."""
    handle = image.handle
    name = handle or "image"
    size = image.size_bytes
    description = image.revised_prompt
    if image.link and image.link.startswith(("https://", "http://")):
        uri = image.link
    elif handle is not None:
        uri = f"{RESOURCE_SCHEME}://{handle}"
    else:
        uri, size = image.url or image.location, None
    return types.ResourceLink(
        uri=uri, name=name, mime_type=image.mime_type, size=size, description=description
    )


def _handles_for_resource_uris(args: Mapping[str, Any]) -> dict[str, Any]:
    """The edit tool's ``images`` and ``mask`` take handles: a client that passes back this
    server's ``image://img_...`` link means that handle."""

    def handle(value: Any) -> Any:
        found = _HANDLE_URI.match(value) if isinstance(value, str) else None
        return found.group(1) if found else value

    fixed = dict(args)
    if isinstance(fixed.get("images"), list):
        fixed["images"] = [handle(item) for item in fixed["images"]]
    if "mask" in fixed:
        fixed["mask"] = handle(fixed["mask"])
    return fixed


def _mime_of_name(name: str) -> str | None:
    ext = name.rsplit(".", 1)[-1].lower()
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "webp": "image/webp",
    }.get(ext)


def _preview(data: bytes, budget: int) -> types.ImageContent | None:
    """A preview whose base64 is at most ``budget`` characters: the image downscaled with
    Pillow (JPEG, or PNG when it has transparency), at the largest of the preview edges that
    fits; without Pillow (or for what Pillow cannot read), the image itself if it fits."""
    for encoded, mime_type in _downscaled(data):
        b64 = base64.b64encode(encoded).decode("ascii")
        if len(b64) <= budget:
            return types.ImageContent(data=b64, mime_type=mime_type)
    return None


def _downscaled(data: bytes) -> list[tuple[bytes, str]]:
    """``(bytes, MIME type)`` candidates for a preview, largest first: the image itself when
    it is no larger than a preview, then its thumbnails at each smaller preview edge."""
    kind = sniff_image_type(data)
    original = [(data, kind[0])] if kind else []
    try:
        from PIL import Image
    except ImportError:
        return original
    try:
        with Image.open(io.BytesIO(data)) as image:
            longest = max(image.size)
            candidates = list(original) if longest <= PREVIEW_EDGE else []
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            image.draft("RGB", (PREVIEW_EDGE, PREVIEW_EDGE))  # JPEG: decode at a fraction
            for edge in _PREVIEW_EDGES:
                if edge >= longest:
                    continue
                small = image.copy()
                small.thumbnail((edge, edge))
                buffer = io.BytesIO()
                if transparent:
                    small.convert("RGBA").save(buffer, format="PNG", optimize=True)
                    candidates.append((buffer.getvalue(), "image/png"))
                else:
                    small.convert("RGB").save(buffer, format="JPEG", quality=_JPEG_QUALITY)
                    candidates.append((buffer.getvalue(), "image/jpeg"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return original
    return candidates


class _ProgressNotifier(AsyncCallbackHandler):
    """The tool's progress events, as MCP progress notifications for the call's request (a
    no-op when the client sent no ``progressToken``). ``progress`` counts the events, so it
    grows with each notification as the specification requires; the total is unknown (a
    streamed image's previews and restarts are not known in advance), and ``message`` says
    where the call is: ``requested 2 images (request 1)``, ``saved image 1: image://img_...``."""

    def __init__(self, session: ServerSession) -> None:
        self._session = session
        self._lock = asyncio.Lock()
        self._sent = 0
        self._saved = 0

    async def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if name != EVENT_NAME or not isinstance(data, Mapping):
            return
        async with self._lock:
            message = self._describe(data)
            self._sent += 1
            await self._session.report_progress(self._sent, None, message)

    def _describe(self, data: Mapping[str, Any]) -> str:
        stage = data.get("stage")
        request = _whole(data.get("request_index")) + 1
        images = _whole(data.get("images"))
        plural = "s" if images != 1 else ""
        if stage == "requested":
            return f"requested {images} image{plural} (request {request})"
        if stage == "received":
            return f"received {images} image{plural} (request {request})"
        if stage == "saved":
            self._saved += 1
            return f"saved image {self._saved}: {_event_link(data)}"
        if stage == "partial":
            number = _whole(data.get("partial_index")) + 1
            if "error" in data:
                return f"preview {number} of request {request} not saved: {data['error']}"
            return f"preview {number} of request {request}: {_event_link(data)}"
        if stage == "restarted":
            reason = " ".join(str(data.get("reason", "the stream failed")).split())
            return f"request {request} starts over (attempt {data.get('attempt')}): {reason}"
        return str(stage)


def _event_link(data: Mapping[str, Any]) -> str:
    """An event's image as this server's resource (events carry no signed links)."""
    where = str(data.get("uri") or data.get("path") or "")
    name = where.replace("\\", "/").rsplit("/", 1)[-1]
    if is_preview_name(name):
        return f"{RESOURCE_SCHEME}://{name}"
    handle = handle_of_name(name)
    return f"{RESOURCE_SCHEME}://{handle}" if handle else name


def _whole(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0

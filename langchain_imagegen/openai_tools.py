"""Use the tool from an app that speaks the OpenAI tools format itself, without an agent.

Send :func:`openai_tool_schema` (``convert_to_openai_tool(tool, strict=True)``) as one of
the ``tools`` of a Chat Completions or Responses request; hand each tool call the model
makes to :func:`run_tool_call`, and append what it returns to the conversation::

    schema = openai_tool_schema(tool)
    # ... the model answers with message.tool_calls ...
    for call in message["tool_calls"]:
        messages.append(run_tool_call(tool, call))

A call's arguments arrive as a JSON string; invalid JSON, a wrong tool name, bad arguments
and API failures all come back as a tool message the model can act on, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import ToolCall, ToolMessage, convert_to_openai_messages
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

__all__ = [
    "arun_tool_call",
    "openai_tool_schema",
    "run_tool_call",
    "to_openai_tool_message",
    "tool_call_from_openai",
]


def openai_tool_schema(tool: BaseTool, *, strict: bool = True) -> dict[str, Any]:
    """The tool's definition for ``tools=[...]`` (Chat Completions format).

    With ``strict=True`` every property is listed in ``required`` (optional ones are
    nullable) and ``additionalProperties`` is false, as OpenAI's strict mode demands.
    """
    return convert_to_openai_tool(tool, strict=strict)


def _as_dict(call: Any) -> Mapping[str, Any]:
    if isinstance(call, Mapping):
        return call
    dump = getattr(call, "model_dump", None)  # openai SDK objects are pydantic models
    if callable(dump):
        dumped = dump()
        if isinstance(dumped, Mapping):
            return dumped
    msg = f"expected an OpenAI tool call (a dict), got {type(call).__name__}"
    raise TypeError(msg)


def _is_responses(call: Mapping[str, Any]) -> bool:
    return call.get("type") == "function_call"


def tool_call_from_openai(call: Any) -> tuple[ToolCall, str | None]:
    """A LangChain ``ToolCall`` from an OpenAI tool call, and an error for the model if its
    arguments are not a JSON object (the ToolCall's ``args`` are then empty).

    Accepts Chat Completions (``{"id", "type": "function", "function": {"name",
    "arguments"}}``) and Responses (``{"type": "function_call", "call_id", "name",
    "arguments"}``) tool calls, as dicts or openai SDK objects.
    """
    data = _as_dict(call)
    function = data if _is_responses(data) else data.get("function") or {}
    call_id = data.get("call_id") if _is_responses(data) else data.get("id")
    raw = function.get("arguments")
    problem: str | None = None
    args: Any = {}
    if isinstance(raw, Mapping):
        args = dict(raw)
    elif raw is None or (isinstance(raw, str) and not raw.strip()):
        args = {}
    else:
        try:
            args = json.loads(raw)
        except (TypeError, ValueError) as error:
            problem = f"the arguments are not valid JSON ({error})"
        if problem is None and not isinstance(args, dict):
            problem = f"the arguments must be a JSON object, got {type(args).__name__}"
        if problem is not None:
            args = {}
    tool_call = ToolCall(
        name=str(function.get("name") or ""), args=args, id=str(call_id or ""), type="tool_call"
    )
    return tool_call, problem


def to_openai_tool_message(message: ToolMessage, *, responses: bool = False) -> dict[str, Any]:
    """The ToolMessage as the next input item of an OpenAI request.

    Chat Completions (default): ``{"role": "tool", "tool_call_id", "content"}``, content a
    string, or a list of ``text`` and ``image_url`` parts when the tool returned images
    (``content_images``). Responses (``responses=True``): ``{"type":
    "function_call_output", "call_id", "output"}``, output a string or a list of
    ``input_text`` and ``input_image`` items.
    """
    converted = convert_to_openai_messages(message)
    content = converted.get("content", "")
    if not responses:
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": content}
    output: Any = content
    if isinstance(content, list):
        output = []
        for part in content:
            if part.get("type") == "text":
                output.append({"type": "input_text", "text": part["text"]})
            elif part.get("type") == "image_url":
                output.append({"type": "input_image", "image_url": part["image_url"]["url"]})
    return {"type": "function_call_output", "call_id": message.tool_call_id, "output": output}


def _error(tool_call: ToolCall, text: str) -> ToolMessage:
    return ToolMessage(
        content=f"{text}. Fix them and call again.",
        tool_call_id=tool_call["id"] or "",
        name=tool_call["name"],
        status="error",
    )


def _rejected(tool: BaseTool, tool_call: ToolCall, problem: str | None) -> ToolMessage | None:
    if tool_call["name"] != tool.name:
        return _error(tool_call, f"No tool named {tool_call['name']!r}; the tool is {tool.name!r}")
    if problem is not None:
        return _error(tool_call, f"Invalid arguments for the image tool: {problem}")
    return None


def _message(result: Any) -> ToolMessage:
    if not isinstance(result, ToolMessage):  # pragma: no cover - BaseTool always wraps
        msg = f"the tool returned {type(result).__name__}, not a ToolMessage"
        raise TypeError(msg)
    return result


def run_tool_call(tool: BaseTool, call: Any) -> dict[str, Any]:
    """Run one OpenAI tool call and return the message to append to the conversation.

    The answer has the shape of the call: a Chat Completions tool message for a Chat
    Completions call, a ``function_call_output`` item for a Responses call. For the full
    result (the artifact), convert with :func:`tool_call_from_openai`, ``tool.invoke`` the
    ToolCall, and keep the returned ToolMessage's ``artifact``.
    """
    responses = _is_responses(_as_dict(call))
    tool_call, problem = tool_call_from_openai(call)
    message = _rejected(tool, tool_call, problem) or _message(tool.invoke(tool_call))
    return to_openai_tool_message(message, responses=responses)


async def arun_tool_call(tool: BaseTool, call: Any) -> dict[str, Any]:
    """Async :func:`run_tool_call`."""
    responses = _is_responses(_as_dict(call))
    tool_call, problem = tool_call_from_openai(call)
    message = _rejected(tool, tool_call, problem) or _message(await tool.ainvoke(tool_call))
    return to_openai_tool_message(message, responses=responses)

"""The tool inside agents: ``create_agent`` and LangGraph's ``ToolNode`` with a scripted
tool-calling model, live against the loopback emulator (faults come from ``[[fault:...]]``
markers in the prompts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.tool import EVENT_NAME, ImageGenerationTool
from tests.fakes import call, scripted
from tests.integration_tests.conftest import LIVE, Target

pytestmark = LIVE


def _tool(base_url: str, tmp_path: Path, **kwargs: Any) -> ImageGenerationTool:
    return ImageGenerationTool(base_url=base_url, output_dir=str(tmp_path), **kwargs)


def _tool_messages(state: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in state["messages"] if isinstance(m, ToolMessage)]


def _ask(text: str) -> dict[str, list[BaseMessage]]:
    return {"messages": [HumanMessage(text)]}


def test_agent_create_agent_keeps_artifact(target: Target, tmp_path: Path) -> None:
    tool = _tool(target.base_url, tmp_path, model="gpt-image-1")
    model = scripted([call({"prompt": "a lighthouse at dawn", "n": 2})], "Here they are.")
    agent = create_agent(model, [tool])

    state = agent.invoke(_ask("draw a lighthouse, two versions"))

    (message,) = _tool_messages(state)
    assert message.status == "success"
    assert message.tool_call_id == "call_1"
    assert message.name == "generate_image"
    assert isinstance(message.content, str)
    assert message.content.startswith("Generated 2 images with gpt-image-1.")
    result = message.artifact
    assert isinstance(result, ImageGenerationResult)
    assert len(result.images) == 2
    for image in result.images:
        assert image.path is not None
        assert Path(image.path).parent == tmp_path
        assert Path(image.path).read_bytes().startswith(b"\x89PNG")
        assert image.path in message.content
    assert state["messages"][-1].content == "Here they are."
    # The model's second turn saw the text, not the artifact.
    assert model.seen[1][-1].content == message.content


async def test_agent_create_agent_async(target: Target, tmp_path: Path) -> None:
    tool = _tool(target.base_url, tmp_path, model="dall-e-3")
    model = scripted([call({"prompt": "a red kite over dunes", "n": 2})], "Done.")
    agent = create_agent(model, [tool])

    state = await agent.ainvoke(_ask("two kites please"))

    (message,) = _tool_messages(state)
    assert message.status == "success"
    result = message.artifact
    assert isinstance(result, ImageGenerationResult)
    # dall-e-3 makes one image per request: two requests, both reported to the model.
    assert len(result.requests) == 2
    assert [image.request_index for image in result.images] == [0, 1]
    assert all(image.url and image.revised_prompt for image in result.images)
    assert "requested in 2 parallel requests" in message.content


def test_agent_tool_node_keeps_artifact(target: Target, tmp_path: Path) -> None:
    tool = _tool(target.base_url, tmp_path, model="gpt-image-1")
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([tool]))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    request = AIMessage("", tool_calls=[call({"prompt": "a paper boat", "size": "1024x1024"})])

    output = graph.compile().invoke({"messages": [request]})

    message = output["messages"][-1]
    assert isinstance(message, ToolMessage)
    assert message.status == "success"
    assert isinstance(message.artifact, ImageGenerationResult)
    assert message.artifact.images[0].size == "1024x1024"


def test_agent_refused_prompt_then_rephrased(target: Target, tmp_path: Path) -> None:
    tool = _tool(target.base_url, tmp_path, model="gpt-image-1")
    model = scripted(
        [call({"prompt": "a duel at noon [[fault:moderation_blocked:input]]"}, "call_1")],
        [call({"prompt": "two cowboys at noon, facing each other"}, "call_2")],
        "I rephrased the request; here is the picture.",
    )
    agent = create_agent(model, [tool])

    state = agent.invoke(_ask("draw a duel"))

    refused, accepted = _tool_messages(state)
    assert refused.status == "error"
    assert refused.artifact is None
    assert "safety system" in refused.content
    assert "rephrase the prompt" in refused.content
    assert "moderation_blocked" in refused.content
    assert accepted.status == "success"
    assert isinstance(accepted.artifact, ImageGenerationResult)
    # The model read the refusal before its second tool call.
    assert model.seen[1][-1] == refused
    assert state["messages"][-1].content.startswith("I rephrased")


def test_agent_rate_limit_is_an_error_message(target: Target, tmp_path: Path) -> None:
    tool = _tool(target.base_url, tmp_path, model="gpt-image-1", max_retries=0)
    model = scripted([call({"prompt": "a busy harbour [[fault:rate_limit]]"})], "Try later.")
    agent = create_agent(model, [tool])

    state = agent.invoke(_ask("draw a harbour"))

    (message,) = _tool_messages(state)
    assert message.status == "error"
    assert "HTTP 429" in message.content
    assert "wait a minute" in message.content
    assert state["messages"][-1].content == "Try later."


def test_agent_bad_arguments_are_error_messages(tmp_path: Path) -> None:
    # Neither call reaches the network: both fail before a request is built.
    tool = _tool("http://images.test/v1", tmp_path)
    model = scripted(
        [call({"prompt": "   "}, "call_blank"), call({"size": "1024x1024"}, "call_missing")],
        "I need a description.",
    )
    agent = create_agent(model, [tool])

    state = agent.invoke(_ask("draw"))

    by_id = {m.tool_call_id: m for m in _tool_messages(state)}
    assert by_id["call_blank"].status == "error"
    assert by_id["call_blank"].content == (
        "prompt is required: describe the image to generate. "
        "Fix the arguments and call the tool again."
    )
    assert by_id["call_missing"].status == "error"
    assert "prompt" in by_id["call_missing"].content
    assert "Field required" in by_id["call_missing"].content
    assert state["messages"][-1].content == "I need a description."


async def test_agent_progress_events(target: Target, tmp_path: Path) -> None:
    tool = _tool(target.base_url, tmp_path, model="gpt-image-1")
    model = scripted([call({"prompt": "a lantern in fog", "n": 2})], "Done.")
    agent = create_agent(model, [tool])

    events: list[dict[str, Any]] = []
    final: dict[str, Any] | None = None
    async for event in agent.astream_events(_ask("a lantern"), version="v2"):
        if event["event"] == "on_custom_event" and event["name"] == EVENT_NAME:
            events.append(event["data"])
        if event["event"] == "on_chain_end" and event["name"] == "LangGraph":
            final = event["data"]["output"]

    assert [e["stage"] for e in events] == ["requested", "received", "saved", "saved"]
    assert events[0]["images"] == 2
    assert events[1]["images"] == 2
    assert final is not None
    (message,) = _tool_messages(final)
    saved = [e["path"] for e in events if e["stage"] == "saved"]
    assert saved == [image.path for image in message.artifact.images]


async def test_agent_survives_a_cut_emoji_in_the_arguments(target: Target, tmp_path: Path) -> None:
    """A lone surrogate (what ``json.loads`` makes of a truncated ``"\\ud83e"``) once raised
    UnicodeEncodeError out of the agent run; now it is removed and reported, sync and async."""
    for run in ("sync", "async"):
        tool = _tool(target.base_url, tmp_path, model="gpt-image-1")
        model = scripted([call({"prompt": "a fox at dawn \ud83e"})], "Done.")
        agent = create_agent(model, [tool])
        ask = _ask("a fox, with an emoji")
        state = agent.invoke(ask) if run == "sync" else await agent.ainvoke(ask)

        (message,) = _tool_messages(state)
        assert message.status == "success", message.content
        assert isinstance(message.content, str)
        assert "prompt:" in message.content  # the removal is reported to the model
        sent = target.requests()[-1].body
        assert sent["prompt"] == "a fox at dawn "
        assert "\ud83e" not in message.content

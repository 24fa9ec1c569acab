"""Generate, edit, and edit the edit, inside an agent, live against the loopback emulator.

The chat model is a fake that really follows the conversation: it reads the handle of the
image to edit from the text of the last ToolMessage (the numbered ``N. img_<16 hex>: where``
lines of the result, or the handles a refusal offers), the only place the tool said it. So
the lineage checked in the artifacts is the one an LLM builds by using what the tool told it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import Field

from langchain_imagegen import ImageGenerationResult, image_tools
from langchain_imagegen.tool import ImageGenerationTool
from tests.integration_tests.conftest import LIVE, Target
from tests.integration_tests.test_edits import edits, sha

pytestmark = LIVE

RESULT_HANDLE = re.compile(r"^\d+\. (img_[0-9a-f]{16}):", re.MULTILINE)
"""A result's image line, as ``ImageGenerationResult.to_text`` writes it."""
OFFERED_HANDLE = re.compile(r"refer to an earlier image by its handle: (img_[0-9a-f]{16})")
"""The first (newest) handle a refusal offers."""


class HandleFollowingModel(BaseChatModel):
    """Plays ``steps`` in turn, one per model call (the step is chosen by how many AI
    messages the conversation already holds, so a conversation restored from a checkpoint
    goes on where it was):

    * ``"generate"``: calls ``generate_image``;
    * ``"edit"``: calls ``edit_image`` on the image the last ToolMessage's text named (the
      first result line, or the first handle a refusal offered);
    * ``"edit:REF"``: calls ``edit_image`` on ``REF`` as given (a made-up reference);
    * anything else: answers with that text.

    ``used`` keeps the references it passed to ``edit_image``.
    """

    steps: list[str]
    used: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "handle-following-fake"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> HandleFollowingModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turn = sum(isinstance(m, AIMessage) for m in messages)
        step = self.steps[turn]
        call_id = f"call_{turn}"
        if step == "generate":
            call = ToolCall(
                name="generate_image",
                args={"prompt": "a lighthouse at dawn", "size": "1024x1024"},
                id=call_id,
                type="tool_call",
            )
            message = AIMessage("", tool_calls=[call])
        elif step.startswith("edit"):
            ref = step.partition(":")[2] or self._handle_from(messages)
            self.used.append(ref)
            prompt = f"edit {len(self.used)}: add a red boat"
            args = {"prompt": prompt, "images": [ref]}
            message = AIMessage(
                "",
                tool_calls=[ToolCall(name="edit_image", args=args, id=call_id, type="tool_call")],
            )
        else:
            message = AIMessage(step)
        return ChatResult(generations=[ChatGeneration(message=message)])

    @staticmethod
    def _handle_from(messages: list[BaseMessage]) -> str:
        last = next(m for m in reversed(messages) if isinstance(m, ToolMessage))
        text = str(last.content)
        found = RESULT_HANDLE.search(text) or OFFERED_HANDLE.search(text)
        assert found is not None, f"no handle in the tool's text: {text!r}"
        return found[1]


def _tools(target: Target, out: Path, made: list[ImageGenerationTool]) -> list[Any]:
    tools = image_tools(model="gpt-image-1", base_url=target.base_url, output_dir=str(out))
    made.extend(tools)
    assert [tool.name for tool in tools] == ["generate_image", "edit_image"]
    return tools


def _tool_messages(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def _results(messages: Sequence[ToolMessage]) -> list[ImageGenerationResult]:
    """The artifacts, live or restored from a checkpoint (a plain dict)."""
    for message in messages:
        assert message.status == "success", message.content
    return [ImageGenerationResult.from_artifact(m) for m in messages]


def _check_lineage(results: list[ImageGenerationResult], out: Path, target: Target) -> None:
    """A generation, its edit, and the edit of the edit: each input is the image before."""
    generated, first_edit, second_edit = results
    assert generated.inputs == []
    chain = [r.images[0] for r in results]
    handles = [image.handle for image in chain]
    assert None not in handles
    assert len(set(handles)) == 3
    assert first_edit.inputs == [handles[0]]
    assert second_edit.inputs == [handles[1]]
    for image in chain:
        assert image.path is not None
        path = Path(image.path)
        assert path.parent == out
        assert sha(path.read_bytes()) == image.sha256
    # What was uploaded is the image before, byte for byte.
    first, second = edits(target)
    assert first.edit is not None
    assert second.edit is not None
    assert [p.sha256 for p in first.edit.images] == [chain[0].sha256]
    assert [p.sha256 for p in second.edit.images] == [chain[1].sha256]


def test_agent_generates_edits_and_edits_the_edit(
    target: Target, tmp_path: Path, made: list[ImageGenerationTool]
) -> None:
    out = tmp_path / "images"
    model = HandleFollowingModel(steps=["generate", "edit", "edit", "Here is the final picture."])
    agent = create_agent(model, _tools(target, out, made))

    state = agent.invoke({"messages": [HumanMessage("a lighthouse, then add a boat, twice")]})

    messages = _tool_messages(state["messages"])
    assert [m.name for m in messages] == ["generate_image", "edit_image", "edit_image"]
    results = _results(messages)
    assert all(isinstance(m.artifact, ImageGenerationResult) for m in messages)
    # The model edited exactly the handles the tool's texts named.
    assert model.used == [results[0].images[0].handle, results[1].images[0].handle]
    assert str(messages[1].content).startswith(f"Edited {model.used[0]} into 1 image")
    assert str(messages[2].content).startswith(f"Edited {model.used[1]} into 1 image")
    _check_lineage(results, out, target)
    assert state["messages"][-1].content == "Here is the final picture."


async def test_agent_generates_edits_and_edits_the_edit_async(
    target: Target, tmp_path: Path, made: list[ImageGenerationTool]
) -> None:
    out = tmp_path / "images"
    model = HandleFollowingModel(steps=["generate", "edit", "edit", "Done."])
    agent = create_agent(model, _tools(target, out, made))

    state = await agent.ainvoke({"messages": [HumanMessage("a lighthouse, edited twice")]})

    results = _results(_tool_messages(state["messages"]))
    assert model.used == [results[0].images[0].handle, results[1].images[0].handle]
    _check_lineage(results, out, target)


def test_agent_recovers_from_a_refused_reference_with_an_offered_handle(
    target: Target, tmp_path: Path, made: list[ImageGenerationTool]
) -> None:
    out = tmp_path / "images"
    model = HandleFollowingModel(
        steps=["generate", "edit:/etc/passwd", "edit", "edit", "Done after one refusal."]
    )
    agent = create_agent(model, _tools(target, out, made))

    state = agent.invoke({"messages": [HumanMessage("edit my lighthouse")]})

    generated, refused, *edited = _tool_messages(state["messages"])
    assert refused.status == "error"
    assert "'/etc/passwd' is outside the places this tool may read" in str(refused.content)
    results = _results([generated, *edited])
    # The second reference came from the refusal's list of handles.
    assert model.used == [
        "/etc/passwd",
        results[0].images[0].handle,
        results[1].images[0].handle,
    ]
    _check_lineage(results, out, target)


def test_agent_edits_across_a_sqlite_checkpoint_and_a_restart(
    target: Target, tmp_path: Path, made: list[ImageGenerationTool]
) -> None:
    """One process generates, a later one (new tools, new agent, the same SQLite checkpoint
    and output_dir) edits twice by the handles in the restored conversation."""
    out, database = tmp_path / "images", str(tmp_path / "checkpoints.sqlite")
    config: Any = {"configurable": {"thread_id": "lighthouse"}}
    steps = ["generate", "A lighthouse.", "edit", "edit", "Edited twice."]

    with SqliteSaver.from_conn_string(database) as saver:
        first_agent = create_agent(
            HandleFollowingModel(steps=steps), _tools(target, out, made), checkpointer=saver
        )
        first_agent.invoke({"messages": [HumanMessage("draw a lighthouse")]}, config)

    with SqliteSaver.from_conn_string(database) as saver:
        model = HandleFollowingModel(steps=steps)
        agent = create_agent(model, _tools(target, out, made), checkpointer=saver)
        state = agent.invoke({"messages": [HumanMessage("now add a boat, twice")]}, config)
        stored = agent.get_state(config).values["messages"]

    messages = _tool_messages(state["messages"])
    assert isinstance(messages[0].artifact, dict)  # restored from the checkpoint
    results = _results(messages)
    assert model.used == [results[0].images[0].handle, results[1].images[0].handle]
    _check_lineage(results, out, target)
    assert _results(_tool_messages(stored)) == results
    assert state["messages"][-1].content == "Edited twice."

"""Offline stand-ins for chat models (langchain-core's fake chat models have no ``bind_tools``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolCall
from langchain_core.outputs import ChatResult
from pydantic import Field


class ScriptedToolCallingModel(FakeMessagesListChatModel):
    """Answers with the scripted ``responses`` in turn and remembers what it was sent.

    ``bind_tools`` returns the model itself (the fake models of langchain-core raise
    ``NotImplementedError``), so ``create_agent`` accepts it.
    """

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedToolCallingModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen = [*self.seen, list(messages)]
        return super()._generate(messages, stop, run_manager, **kwargs)


def call(args: dict[str, Any], call_id: str = "call_1", name: str = "generate_image") -> ToolCall:
    return ToolCall(name=name, args=args, id=call_id, type="tool_call")


def scripted(*turns: Sequence[ToolCall] | str) -> ScriptedToolCallingModel:
    """A model whose turns are tool calls (a sequence) or a final answer (a string)."""
    responses: list[BaseMessage] = [
        AIMessage(turn) if isinstance(turn, str) else AIMessage("", tool_calls=list(turn))
        for turn in turns
    ]
    return ScriptedToolCallingModel(responses=responses)

"""The name a call's progress events are published under.

The stages and their data are listed in docs/agents.md (``requested``, ``partial``,
``restarted``, ``received``, ``saved``); :mod:`~langchain_imagegen.generation` emits them,
the tool publishes them under this name (LangChain custom events, LangGraph's custom
stream) and the notebook's preview handlers listen for it.
"""

from __future__ import annotations

__all__ = ["EVENT_NAME"]

EVENT_NAME = "image_generation"
"""Name of the custom events in ``astream_events``; ``data["stage"]`` is ``requested``,
``partial`` (a streamed preview was saved), ``restarted`` (a streamed image starts over),
``received`` or ``saved``. Inside a LangGraph graph the same events also go to its stream
writer (``stream_mode="custom"``) as ``{"event": EVENT_NAME, "stage": ..., ...}``."""

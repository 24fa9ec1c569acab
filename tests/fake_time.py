"""A fake clock for :class:`~langchain_imagegen.client.ImagesClient`: time moves only when slept.

``ImagesClient(..., **FakeTime().injected())`` retries without waiting: every wait the
client decides on is recorded in ``slept`` and moves the clock on by that much, so budgets
and deadlines are checked exactly as in real time. Real I/O still takes real time; tests that
need a request itself to be slow use :meth:`advance` from the server side.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from langchain_imagegen.client import ImagesClient

if TYPE_CHECKING:
    from langchain_imagegen.tool import ImageGenerationTool


class FakeTime:
    """A monotonic clock (call it) plus the ``sleep`` and ``asleep`` that move it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still a suspension point, as a real wait is

    def injected(self) -> dict[str, Any]:
        """The keyword arguments that put an ImagesClient on this clock."""
        return {"clock": self, "sleep": self.sleep, "asleep": self.asleep}

    def client_for(self, tool: ImageGenerationTool) -> ImagesClient:
        """A client with ``tool``'s endpoint, timeouts and retry policy, on this clock: what
        the tool would send, with every backoff recorded instead of slept."""
        configured = tool.client
        return ImagesClient(
            configured.endpoint,
            timeout=configured.timeout,
            retry=configured.retry,
            **self.injected(),
        )

"""Twenty calls at once against one budget never overspend, through the tool.

Each round starts 20 identical calls together (20 ``ainvoke`` tasks, or 20 threads calling
``invoke``) on tools sharing one :class:`InMemoryBudget` whose limit fits only some of them,
against the loopback emulator slowed down (``latency_s``) so that the calls really hold
their reservations at the same time. After each round:

* the calls that ran, times their estimate, fit the limit;
* the refused ones sent nothing (the emulator counts exactly one request per call that ran);
* the budget spent exactly what the results say they cost, and holds nothing any more;
* at no moment did the holds together exceed what the limit left (:class:`WatchedBudget`
  notes each hold as the budget took it).

The estimate is checked by hand from the published prices (gpt-image-1: 272 output tokens
for low 1024x1024 at $40/1M, the prompt's 12 characters as 3 tokens at $5/1M;
dall-e-3: $0.04 per standard 1024x1024 image; docs/cost.md#prices).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolCall, ToolMessage

from langchain_imagegen import ImageGenerationResult, ImageGenerationTool
from langchain_imagegen.budget import BudgetTotals, InMemoryBudget
from tests.integration_tests.conftest import LIVE, Target

pytestmark = LIVE

CALLS = 20
LATENCY_S = 0.15
"""How long the emulator takes per generation: long enough that every call of a round has
reserved before the first one settles, short enough for a fast test."""

ARGS = {"prompt": "a paper boat", "quality": "low", "size": "1024x1024"}
ESTIMATE = (272 * 40 + 3 * 5) / 1_000_000  # $0.010895
FAN_OUT_ARGS = {"prompt": "a paper boat", "n": 4, "size": "1024x1024", "quality": "standard"}
FAN_OUT_ESTIMATE = 4 * 0.04  # dall-e-3 makes one image per request: 4 requests

# Limits as multiples of the estimate (plus half an estimate, so float rounding of the
# product cannot decide whether the last call fits): how many calls each round lets run.
ROUNDS = [7, 1, 13, 0]


class WatchedBudget(InMemoryBudget):
    """An in-memory budget that notes, for every hold it takes, what was spent and held
    just before and how much it added, and how many holds were open at once."""

    def __init__(self, limit_usd: float) -> None:
        super().__init__(limit_usd)
        self._watch = threading.Lock()
        self.taken: list[tuple[BudgetTotals, float]] = []
        self.open = 0
        self.most_open = 0

    def take_hold(
        self, hold_id: str, amount: float, *, limit: float | None
    ) -> tuple[bool, BudgetTotals]:
        held, before = super().take_hold(hold_id, amount, limit=limit)
        if held:
            with self._watch:
                self.taken.append((before, amount))
                self.open += 1
                self.most_open = max(self.most_open, self.open)
        return held, before

    def end_hold(self, hold_id: str, actual: float | None) -> bool:
        ended = super().end_hold(hold_id, actual)
        if ended:
            with self._watch:
                self.open -= 1
        return ended


@pytest.fixture
def slow_target(target: Target) -> Iterator[Target]:
    emulator = target.emulator
    emulator.latency_s = LATENCY_S
    try:
        yield target
    finally:
        emulator.latency_s = 0.0


@pytest.fixture
def make_tool(tmp_path: Path, slow_target: Target) -> Iterator[Any]:
    made: list[ImageGenerationTool] = []

    def make(model: str, budget: InMemoryBudget) -> ImageGenerationTool:
        tool = ImageGenerationTool(
            model=model,
            base_url=slow_target.base_url,
            output_dir=str(tmp_path / "images"),
            budget=budget,
            max_retries=0,
        )
        made.append(tool)
        return tool

    yield make
    for tool in made:
        tool.close()


def _tool_call(tool: ImageGenerationTool, args: dict[str, Any], index: int) -> ToolCall:
    return ToolCall(name=tool.name, args=args, id=f"call_{index}", type="tool_call")


def invoke_in_threads(tool: ImageGenerationTool, calls: list[ToolCall]) -> list[ToolMessage]:
    """``tool.invoke`` each call in a thread of its own, all released at once."""
    start = threading.Barrier(len(calls))

    def one(tool_call: ToolCall) -> ToolMessage:
        start.wait(timeout=10)
        message = tool.invoke(tool_call)
        assert isinstance(message, ToolMessage)
        return message

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


@dataclass
class Round:
    ran: list[ImageGenerationResult]
    refused: list[str]


def _outcome(messages: list[ToolMessage]) -> Round:
    ran: list[ImageGenerationResult] = []
    refused: list[str] = []
    for message in messages:
        assert isinstance(message, ToolMessage)
        if message.status == "success":
            assert isinstance(message.artifact, ImageGenerationResult)
            ran.append(message.artifact)
        else:
            assert isinstance(message.content, str)
            refused.append(message.content)
    return Round(ran, refused)


def _check_round(
    outcome: Round,
    budget: WatchedBudget,
    target: Target,
    *,
    estimate: float,
    requests_per_call: int,
    fits: int,
) -> None:
    assert len(outcome.ran) + len(outcome.refused) == CALLS
    # The calls that ran, times their estimate, fit the limit.
    assert len(outcome.ran) * estimate <= budget.limit_usd
    assert len(outcome.ran) <= fits
    for result in outcome.ran:
        assert result.estimated_cost_usd == pytest.approx(estimate)
        assert len(result.images) == requests_per_call  # every call ran in full
    # The refused ones sent nothing: one request per image of the calls that ran.
    sent = target.requests()
    assert len(sent) == requests_per_call * len(outcome.ran)
    assert target.emulator.stats().generation_requests == len(sent)
    for text in outcome.refused:
        assert text.startswith("refused before sending: the estimate for ")
        assert "nothing was sent or charged" in text.lower()
    # What the budget spent is what the results cost; nothing is held any more.
    costs = [result.cost_usd for result in outcome.ran]
    assert None not in costs
    assert budget.spent == pytest.approx(sum(c for c in costs if c is not None), rel=1e-12)
    assert budget.reserved == 0
    # Every hold fitted what the limit left at the moment it was taken.
    assert len(budget.taken) == len(outcome.ran)
    for before, amount in budget.taken:
        assert before.spent + before.reserved + amount <= budget.limit_usd + 1e-12


def _limit(calls: int, estimate: float) -> float:
    return calls * estimate + estimate / 2


def _fresh_round(target: Target) -> None:
    target.emulator.reset_stats()


async def test_twenty_concurrent_ainvokes_never_overspend(
    make_tool: Any, slow_target: Target
) -> None:
    for fits in ROUNDS:
        _fresh_round(slow_target)
        budget = WatchedBudget(_limit(fits, ESTIMATE))
        tools = [make_tool("gpt-image-1", budget) for _ in range(2)]  # two tools, one budget

        messages = await asyncio.gather(
            *(tools[i % 2].ainvoke(_tool_call(tools[i % 2], ARGS, i)) for i in range(CALLS))
        )

        outcome = _outcome(list(messages))
        _check_round(
            outcome, budget, slow_target, estimate=ESTIMATE, requests_per_call=1, fits=fits
        )
        # Reserving does not wait on anything in the loop: every task reserves before the
        # first one settles, so exactly the calls that fit ran, all at once.
        assert len(outcome.ran) == fits
        assert budget.most_open == fits
        for tool in tools:
            await tool.aclose()


def test_twenty_threads_invoking_never_overspend(make_tool: Any, slow_target: Target) -> None:
    for fits in ROUNDS:
        _fresh_round(slow_target)
        budget = WatchedBudget(_limit(fits, ESTIMATE))
        tool = make_tool("gpt-image-1", budget)

        messages = invoke_in_threads(tool, [_tool_call(tool, ARGS, i) for i in range(CALLS)])

        outcome = _outcome(messages)
        _check_round(
            outcome, budget, slow_target, estimate=ESTIMATE, requests_per_call=1, fits=fits
        )
        if fits > 1:
            assert budget.most_open > 1  # the calls did hold the budget together


@pytest.mark.parametrize("mode", ["ainvoke", "threads"])
async def test_a_fan_out_reserves_all_its_requests_before_the_first(
    mode: str, make_tool: Any, slow_target: Target
) -> None:
    """dall-e-3 with n=4 is four requests: a call reserves all four at once, so a call that
    does not fit sends none of them (never some of a fan-out)."""
    fits = 3
    budget = WatchedBudget(_limit(fits, FAN_OUT_ESTIMATE))
    tool = make_tool("dall-e-3", budget)
    calls = [_tool_call(tool, FAN_OUT_ARGS, i) for i in range(CALLS)]

    if mode == "ainvoke":
        messages = list(await asyncio.gather(*(tool.ainvoke(c) for c in calls)))
        await tool.aclose()
    else:
        messages = await asyncio.to_thread(invoke_in_threads, tool, calls)

    outcome = _outcome(list(messages))
    _check_round(
        outcome,
        budget,
        slow_target,
        estimate=FAN_OUT_ESTIMATE,
        requests_per_call=4,
        fits=fits,
    )
    assert len(outcome.ran) >= 1
    for result in outcome.ran:
        assert [request.cost_usd for request in result.requests] == [0.04] * 4
    for amount in (amount for _, amount in budget.taken):
        assert amount == pytest.approx(FAN_OUT_ESTIMATE)  # one hold for the four requests

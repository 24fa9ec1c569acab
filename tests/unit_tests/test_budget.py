"""Budgets: the per-call cap, reservations that refuse before spending, settling from actual
usage, and shared budgets that concurrent calls cannot overspend together."""

from __future__ import annotations

import asyncio
import doctest
import logging
import random
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_imagegen import budget as budget_module
from langchain_imagegen.budget import (
    Budget,
    BudgetBase,
    BudgetTotals,
    InMemoryBudget,
    Reservation,
    check_call_cap,
)
from langchain_imagegen.errors import (
    APIError,
    BudgetExceededError,
    ImageGenError,
    InvalidArgumentError,
)
from langchain_imagegen.retry import is_retryable_error

WORKERS = 20
ROUNDS = 200


def _exact(amounts: list[float]) -> Decimal:
    """The sum of amounts as written (the budget's own arithmetic is not trusted here)."""
    return sum((Decimal(repr(a)) for a in amounts), Decimal(0))


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads far more often than the default 5 ms, so races have a chance to show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


# --- reserving ------------------------------------------------------------------------------


def test_a_reservation_that_fits_is_held() -> None:
    budget = InMemoryBudget(1.00)
    hold = budget.reserve(0.25, what="1 image")
    assert hold.amount == 0.25
    assert (budget.spent, budget.reserved, budget.remaining) == (0.0, 0.25, 0.75)


def test_ten_dimes_fit_a_dollar() -> None:
    """Amounts count as written: 0.1 is a tenth, not the binary float just above it."""
    budget = InMemoryBudget(1.00)
    for _ in range(10):
        budget.reserve(0.10)
    assert budget.remaining == 0.0
    with pytest.raises(BudgetExceededError):
        budget.reserve(0.01)


def test_a_refusal_names_the_estimate_and_what_is_left_and_holds_nothing() -> None:
    budget = InMemoryBudget(5.00)
    budget.settle(budget.reserve(4.90), 4.90)
    with pytest.raises(BudgetExceededError) as caught:
        budget.reserve(0.67, what="4 images with gpt-image-1 at high quality")
    error = caught.value
    assert (error.estimated_usd, error.limit_usd) == (0.67, 5.00)
    assert error.remaining_usd == pytest.approx(0.10)
    assert str(error) == (
        "refused before sending: the estimate for 4 images with gpt-image-1 at high quality "
        "is $0.67, but the budget has $0.10 left of $5.00"
    )
    assert budget.reserved == 0.0  # a refused call holds nothing


def test_a_refusal_mentions_what_running_calls_hold() -> None:
    budget = InMemoryBudget(1.00)
    budget.reserve(0.96)
    with pytest.raises(BudgetExceededError) as caught:
        budget.reserve(0.08)
    assert caught.value.reserved_usd == 0.96
    assert "$0.04 left of $1.00 (calls still running hold another $0.96)" in str(caught.value)


def test_an_amount_exactly_equal_to_what_is_left_fits() -> None:
    budget = InMemoryBudget(0.12)
    budget.reserve(0.04)
    budget.reserve(0.08)
    assert budget.remaining == 0.0


def test_a_used_up_budget_tells_the_agent_to_stop() -> None:
    budget = InMemoryBudget(0.50)
    budget.settle(budget.reserve(0.50), 0.55)  # usage said more than the estimate
    assert budget.remaining == pytest.approx(-0.05)
    with pytest.raises(BudgetExceededError) as caught:
        budget.reserve(0.0)  # nothing fits a budget already over its limit
    message = caught.value.agent_message()
    assert "the budget of $0.50 is used up" in message
    assert "Stop generating images" in message
    assert "fewer images" not in message  # a smaller call cannot fit either


def test_warn_mode_logs_and_reserves(caplog: pytest.LogCaptureFixture) -> None:
    budget = InMemoryBudget(0.10, mode="warn")
    with caplog.at_level(logging.WARNING, logger="langchain_imagegen.budget"):
        hold = budget.reserve(0.16, what="4 images with dall-e-2")
    assert hold.amount == 0.16
    assert budget.reserved == 0.16
    assert budget.remaining == pytest.approx(-0.06)  # warn mode may go negative
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.name == "langchain_imagegen.budget"
    assert record.getMessage() == (
        "over budget, reserved anyway (mode 'warn'): the estimate for 4 images with dall-e-2 "
        "is $0.16, but the budget has $0.10 left of $0.10"
    )


def test_warn_mode_is_silent_while_within_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    budget = InMemoryBudget(1.00, mode="warn")
    with caplog.at_level(logging.DEBUG, logger="langchain_imagegen.budget"):
        budget.reserve(0.40)
        budget.reserve(0.60)
    assert caplog.records == []


# --- settling and releasing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "spent"),
    [
        pytest.param(0.17, 0.17, id="lower: the difference goes back"),
        pytest.param(0.31, 0.31, id="higher: the usage counts, not the estimate"),
        pytest.param(None, 0.25, id="unknown: the estimate counts as spent"),
        pytest.param(0.0, 0.0, id="free"),
    ],
)
def test_settle_records_the_actual_cost(actual: float | None, spent: float) -> None:
    budget = InMemoryBudget(1.00)
    budget.settle(budget.reserve(0.25), actual)
    assert budget.spent == spent
    assert budget.reserved == 0.0
    assert budget.remaining == pytest.approx(1.00 - spent)


def test_release_frees_the_reservation_without_spending() -> None:
    budget = InMemoryBudget(0.30)
    hold = budget.reserve(0.30)
    with pytest.raises(BudgetExceededError):
        budget.reserve(0.01)
    budget.release(hold)
    assert (budget.spent, budget.reserved, budget.remaining) == (0.0, 0.0, 0.30)
    budget.reserve(0.30)  # the whole limit is available again


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(lambda b, h: b.settle(h, 0.5), id="settle twice"),
        pytest.param(lambda b, h: b.settle(h, None), id="settle then settle unknown"),
        pytest.param(lambda b, h: b.release(h), id="settle then release"),
    ],
)
def test_a_second_settle_or_release_is_ignored(second: object) -> None:
    budget = InMemoryBudget(1.00)
    hold = budget.reserve(0.25)
    budget.settle(hold, 0.20)
    assert callable(second)
    second(budget, hold)
    assert (budget.spent, budget.reserved) == (0.20, 0.0)


def test_a_release_then_settle_is_ignored() -> None:
    budget = InMemoryBudget(1.00)
    hold = budget.reserve(0.25)
    budget.release(hold)
    budget.release(hold)
    budget.settle(hold, 0.25)
    assert (budget.spent, budget.reserved) == (0.0, 0.0)


def test_a_reservation_of_another_budget_changes_nothing() -> None:
    mine, theirs = InMemoryBudget(1.00), InMemoryBudget(1.00)
    mine_hold = mine.reserve(0.25)
    mine.settle(theirs.reserve(0.5), 0.5)
    assert (mine.spent, mine.reserved) == (0.0, 0.25)
    assert (theirs.spent, theirs.reserved) == (0.0, 0.5)
    mine.settle(mine_hold, 0.25)
    assert mine.spent == 0.25


# --- bad input ------------------------------------------------------------------------------

BAD_AMOUNTS = [-0.01, float("nan"), float("inf"), float("-inf"), True, "0.10", None]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_a_bad_amount_to_reserve_is_refused(amount: object) -> None:
    budget = InMemoryBudget(1.00)
    with pytest.raises(InvalidArgumentError, match="the amount to reserve"):
        budget.reserve(amount)  # type: ignore[arg-type]
    assert budget.reserved == 0.0


@pytest.mark.parametrize("actual", [a for a in BAD_AMOUNTS if a is not None], ids=repr)
def test_a_bad_actual_cost_is_refused_and_the_reservation_stays(actual: object) -> None:
    budget = InMemoryBudget(1.00)
    hold = budget.reserve(0.25)
    with pytest.raises(InvalidArgumentError, match="the actual cost"):
        budget.settle(hold, actual)  # type: ignore[arg-type]
    assert budget.reserved == 0.25
    budget.settle(hold, 0.2)  # the reservation was not consumed by the bad call
    assert budget.spent == 0.2


@pytest.mark.parametrize("limit", BAD_AMOUNTS, ids=repr)
def test_a_bad_limit_is_refused(limit: object) -> None:
    with pytest.raises(InvalidArgumentError, match="limit_usd"):
        InMemoryBudget(limit)  # type: ignore[arg-type]


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="'refuse' or 'warn'"):
        InMemoryBudget(1.00, mode="block")  # type: ignore[arg-type]


def test_a_zero_limit_allows_only_free_calls() -> None:
    budget = InMemoryBudget(0)
    budget.settle(budget.reserve(0.0), 0.0)
    with pytest.raises(BudgetExceededError, match="is used up"):
        budget.reserve(0.001)


# --- the per-call cap -----------------------------------------------------------------------


def test_no_cap_allows_any_estimate() -> None:
    check_call_cap(1_000.0, None, what="n=10 at 4K")


def test_an_estimate_equal_to_the_cap_passes() -> None:
    check_call_cap(0.5, 0.5, what="1 image")


def test_an_estimate_over_the_cap_is_refused() -> None:
    with pytest.raises(BudgetExceededError) as caught:
        check_call_cap(0.668, 0.5, what="4 images with gpt-image-1 at high quality")
    error = caught.value
    assert error.per_call
    assert (error.estimated_usd, error.remaining_usd, error.limit_usd) == (0.668, 0.5, 0.5)
    assert str(error) == (
        "refused before sending: the estimate for 4 images with gpt-image-1 at high quality "
        "is $0.668, over the per-call limit of $0.50"
    )
    assert not error.used_up  # a smaller call may pass


@pytest.mark.parametrize(("estimate", "cap"), [(-1.0, 1.0), (float("nan"), 1.0), (0.1, -1.0)])
def test_the_cap_refuses_bad_numbers(estimate: float, cap: float) -> None:
    with pytest.raises(InvalidArgumentError):
        check_call_cap(estimate, cap, what="1 image")


# --- what the agent reads -------------------------------------------------------------------


def test_the_agent_message_says_what_to_do() -> None:
    budget = InMemoryBudget(1.00)
    budget.settle(budget.reserve(0.8), 0.8)
    with pytest.raises(BudgetExceededError) as caught:
        budget.reserve(0.32, what="2 images")
    message = caught.value.agent_message()
    assert message.startswith(
        "refused before sending: the estimate for 2 images is $0.32, "
        "but the budget has $0.20 left of $1.00. Nothing was sent or charged; "
    )
    for advice in ("fewer images", "lower quality", "smaller size", "or stop"):
        assert advice in message, advice


def test_budget_exceeded_is_not_retryable_and_not_a_server_error() -> None:
    error = BudgetExceededError(estimated_usd=0.1, remaining_usd=0.0, limit_usd=1.0)
    assert isinstance(error, ImageGenError)
    assert not isinstance(error, APIError)
    assert error.retryable is False
    assert not is_retryable_error(error)
    assert "this call" in str(error)  # without a description


def test_amounts_show_cents_and_finer_digits_only_when_there_are_any() -> None:
    shown = [
        str(BudgetExceededError(estimated_usd=e, remaining_usd=0.5, limit_usd=1234.5))
        for e in (0.04, 0.0401, 5.0)
    ]
    assert [s.split(" is ")[1].split(",")[0] for s in shown] == ["$0.04", "$0.0401", "$5.00"]
    assert "left of $1,234.50" in shown[0]


def test_repr_shows_limit_spent_and_reserved() -> None:
    budget = InMemoryBudget(2.5, mode="warn")
    budget.settle(budget.reserve(0.5), 0.25)
    budget.reserve(0.75)
    assert repr(budget) == "InMemoryBudget(limit_usd=2.5, spent=0.25, reserved=0.75, mode='warn')"


def test_the_module_examples_run() -> None:
    assert doctest.testmod(budget_module).failed == 0


# --- the protocol and a store of one's own --------------------------------------------------


def test_in_memory_budget_is_a_budget() -> None:
    assert isinstance(InMemoryBudget(1.0), Budget)


class _FixedBudget(Budget):
    """A Budget written against the protocol alone: it gets the async variants for free."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def reserve(self, amount: float, *, what: str = "") -> Reservation:
        self.calls.append(f"reserve {amount} {what}")
        return Reservation(amount, what)

    def settle(self, reservation: Reservation, actual: float | None) -> None:
        self.calls.append(f"settle {reservation.amount} {actual}")

    def release(self, reservation: Reservation) -> None:
        self.calls.append(f"release {reservation.amount}")

    @property
    def spent(self) -> float:
        return 0.0

    @property
    def reserved(self) -> float:
        return 0.0

    @property
    def remaining(self) -> float:
        return 1.0


async def test_the_protocol_async_variants_call_the_sync_ones() -> None:
    budget = _FixedBudget()
    hold = await budget.areserve(0.5, what="x")
    await budget.asettle(hold, 0.25)
    await budget.arelease(hold)
    assert budget.calls == ["reserve 0.5 x", "settle 0.5 0.25", "release 0.5"]


class _AsyncStoreBudget(BudgetBase):
    """A budget over an async store that takes a round trip per primitive (as a Redis script
    would): each primitive is atomic under the store's lock, and awaits while holding it."""

    def __init__(self, limit_usd: float, *, mode: budget_module.BudgetMode = "refuse") -> None:
        super().__init__(limit_usd, mode=mode)
        self._store_lock = asyncio.Lock()
        self._holds: dict[str, Decimal] = {}
        self._spent = Decimal(0)
        self._reserved = Decimal(0)
        self.round_trips = 0

    def take_hold(
        self, hold_id: str, amount: float, *, limit: float | None
    ) -> tuple[bool, BudgetTotals]:
        raise AssertionError("an async store is used through its async primitives")

    def end_hold(self, hold_id: str, actual: float | None) -> bool:
        raise AssertionError("an async store is used through its async primitives")

    def read_totals(self) -> BudgetTotals:
        return BudgetTotals(float(self._spent), float(self._reserved))

    async def atake_hold(
        self, hold_id: str, amount: float, *, limit: float | None
    ) -> tuple[bool, BudgetTotals]:
        async with self._store_lock:
            self.round_trips += 1
            before = self.read_totals()
            await asyncio.sleep(0)  # the network round trip: other tasks run meanwhile
            exact = Decimal(repr(amount))
            if limit is not None and exact > Decimal(repr(limit)) - self._spent - self._reserved:
                return False, before
            self._holds[hold_id] = exact
            self._reserved += exact
            return True, before

    async def aend_hold(self, hold_id: str, actual: float | None) -> bool:
        async with self._store_lock:
            self.round_trips += 1
            await asyncio.sleep(0)
            held = self._holds.pop(hold_id, None)
            if held is None:
                return False
            self._reserved -= held
            self._spent += held if actual is None else Decimal(repr(actual))
            return True


async def test_a_store_of_ones_own_gets_checks_errors_and_idempotence() -> None:
    budget = _AsyncStoreBudget(1.00)
    hold = await budget.areserve(0.75, what="3 images")
    with pytest.raises(BudgetExceededError, match=r"\$0.25 left of \$1.00"):
        await budget.areserve(0.5)
    with pytest.raises(InvalidArgumentError):
        await budget.areserve(-1.0)
    await budget.asettle(hold, 0.5)
    await budget.asettle(hold, 0.5)
    await budget.arelease(hold)
    assert (budget.spent, budget.reserved, budget.remaining) == (0.5, 0.0, 0.5)
    assert repr(budget) == (
        "_AsyncStoreBudget(limit_usd=1.0, spent=0.5, reserved=0.0, mode='refuse')"
    )


def test_base_budget_needs_the_primitives() -> None:
    with pytest.raises(TypeError, match="abstract"):
        BudgetBase(1.0)  # type: ignore[abstract]


# --- concurrency: calls together never overspend --------------------------------------------


def _round_amounts(rng: random.Random) -> tuple[float, list[float]]:
    """A limit and WORKERS amounts that together ask for about twice as much, some of them
    round amounts that fill the limit exactly."""
    limit = round(rng.uniform(0.2, 4.0), rng.choice([1, 2, 6]))
    amounts = [
        rng.choice([round(limit / WORKERS * 2, 3), 0.1, 0.04, rng.uniform(0, limit / 5)])
        for _ in range(WORKERS)
    ]
    return limit, amounts


def _check_round(limit: float, held: list[float], refused: list[BudgetExceededError]) -> None:
    assert _exact(held) <= Decimal(repr(limit)), (limit, held)
    room = Decimal(repr(limit)) - _exact(held)
    for error in refused:  # refused only when it really did not fit
        assert Decimal(repr(error.estimated_usd)) > room


def test_twenty_threads_never_overspend(busy_switching: None) -> None:
    rng = random.Random(13)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for _ in range(ROUNDS):
            limit, amounts = _round_amounts(rng)
            budget = InMemoryBudget(limit)
            start = threading.Barrier(WORKERS)

            def reserve(
                amount: float, budget: InMemoryBudget = budget, start: threading.Barrier = start
            ) -> Reservation | BudgetExceededError:
                start.wait()
                try:
                    return budget.reserve(amount, what="a race")
                except BudgetExceededError as error:
                    return error

            outcomes = list(pool.map(reserve, amounts))
            held = [o.amount for o in outcomes if isinstance(o, Reservation)]
            refused = [o for o in outcomes if isinstance(o, BudgetExceededError)]
            assert len(held) + len(refused) == WORKERS
            _check_round(limit, held, refused)
            assert budget.reserved == pytest.approx(float(_exact(held)))


def test_twenty_threads_reserving_and_settling_never_overspend(busy_switching: None) -> None:
    """Calls reserve, then settle at or below the estimate or release, while others reserve:
    at every moment spent + reserved stays within the limit, and nothing is lost."""
    rng = random.Random(1313)
    with ThreadPoolExecutor(max_workers=WORKERS + 1) as pool:
        for _ in range(ROUNDS // 4):
            limit, amounts = _round_amounts(rng)
            budget = InMemoryBudget(limit)
            plans = [(a, rng.choice([None, 0.0, a / 2, a, "release"])) for a in amounts]
            done = threading.Event()

            def watch(budget: InMemoryBudget = budget, done: threading.Event = done) -> int:
                # Reads until the calls are done, at least once (the calls may all finish
                # before this thread first runs: then the last reading is the one checked).
                readings = 0
                while True:
                    finished = done.is_set()
                    spent, reserved = budget.read_totals()
                    assert spent + reserved <= budget.limit_usd * (1 + 1e-12), (spent, reserved)
                    readings += 1
                    if finished:
                        return readings

            def call(
                plan: tuple[float, float | str | None], budget: InMemoryBudget = budget
            ) -> float:
                amount, outcome = plan
                try:
                    hold = budget.reserve(amount)
                except BudgetExceededError:
                    return 0.0
                if outcome == "release":
                    budget.release(hold)
                    return 0.0
                assert not isinstance(outcome, str)
                budget.settle(hold, outcome)
                budget.settle(hold, outcome)  # a repeated settle counts once
                return amount if outcome is None else outcome

            watcher = pool.submit(watch)
            spent = list(pool.map(call, plans))
            done.set()
            watcher.result()  # re-raises what the watcher found
            assert budget.reserved == 0.0
            assert budget.spent == pytest.approx(float(_exact(spent)))
            assert _exact(spent) <= Decimal(repr(limit))


async def test_twenty_tasks_never_overspend() -> None:
    rng = random.Random(2013)
    for _ in range(ROUNDS):
        limit, amounts = _round_amounts(rng)
        for budget in (InMemoryBudget(limit), _AsyncStoreBudget(limit)):
            outcomes = await asyncio.gather(
                *(budget.areserve(a, what="a race") for a in amounts), return_exceptions=True
            )
            held = [o.amount for o in outcomes if isinstance(o, Reservation)]
            refused = [o for o in outcomes if isinstance(o, BudgetExceededError)]
            assert len(held) + len(refused) == WORKERS, outcomes
            _check_round(limit, held, refused)


async def test_tasks_and_threads_together_never_overspend(busy_switching: None) -> None:
    """Half the calls reserve from asyncio tasks, half from worker threads, on one budget."""
    rng = random.Random(4242)
    for _ in range(ROUNDS // 4):
        limit, amounts = _round_amounts(rng)
        budget = InMemoryBudget(limit)

        async def one(index: int, amount: float, budget: InMemoryBudget = budget) -> Reservation:
            if index % 2:
                return await asyncio.to_thread(budget.reserve, amount)
            return await budget.areserve(amount)

        outcomes = await asyncio.gather(
            *(one(i, a) for i, a in enumerate(amounts)), return_exceptions=True
        )
        held = [o.amount for o in outcomes if isinstance(o, Reservation)]
        refused = [o for o in outcomes if isinstance(o, BudgetExceededError)]
        assert len(held) + len(refused) == WORKERS, outcomes
        _check_round(limit, held, refused)


# --- bookkeeping against a model ------------------------------------------------------------

_money = st.decimals(min_value=0, max_value=2, places=3).map(float)
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), _money),
        st.tuples(st.just("settle"), st.integers(0, 9), st.one_of(st.none(), _money)),
        st.tuples(st.just("release"), st.integers(0, 9)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(limit=_money, mode=st.sampled_from(["refuse", "warn"]), steps=_steps)
def test_the_totals_follow_every_reserve_settle_and_release(
    limit: float, mode: budget_module.BudgetMode, steps: list[tuple[object, ...]]
) -> None:
    """Any sequence of calls, including repeated and stale settles, keeps the totals a
    model computes in decimal; refuse mode refuses exactly what does not fit."""
    budget = InMemoryBudget(limit, mode=mode)
    holds: list[Reservation] = []
    open_ids: set[str] = set()
    spent = reserved = Decimal(0)
    for step in steps:
        if step[0] == "reserve":
            amount = step[1]
            assert isinstance(amount, float)
            fits = Decimal(repr(amount)) <= Decimal(repr(limit)) - spent - reserved
            if mode == "refuse" and not fits:
                with pytest.raises(BudgetExceededError):
                    budget.reserve(amount)
                continue
            hold = budget.reserve(amount)
            holds.append(hold)
            open_ids.add(hold.id)
            reserved += Decimal(repr(amount))
        elif holds:
            hold = holds[step[1] % len(holds)]  # type: ignore[operator]
            actual = step[2] if step[0] == "settle" else 0.0
            if step[0] == "settle":
                budget.settle(hold, actual)  # type: ignore[arg-type]
            else:
                budget.release(hold)
            if hold.id in open_ids:
                open_ids.discard(hold.id)
                reserved -= Decimal(repr(hold.amount))
                spent += Decimal(repr(hold.amount if actual is None else actual))
        assert budget.reserved == float(reserved)
        assert budget.spent == float(spent)

"""Spending limits in USD that refuse a call before it sends anything.

Two limits, checked with a call's estimated cost before any request goes out:

* the per-call cap (``max_cost_per_call``): :func:`check_call_cap`;
* a :class:`Budget` that several calls and tools share. A call *reserves* its estimate
  before its requests start (all of a fan-out's at once), then *settles* with what the
  server says it cost (usage), or *releases* the reservation when nothing was spent. The
  check and the reservation are one atomic step, so concurrent calls cannot overspend
  together: the sum of what they hold never exceeds the limit.

:class:`InMemoryBudget` is the in-process default (threads and asyncio tasks). Workers in
several processes share a budget through a store of their own: subclass :class:`BudgetBase`
and write its three atomic primitives (docs/cost.md sketches a Redis one).

A refused call raises :class:`~langchain_imagegen.errors.BudgetExceededError`, whose
``agent_message()`` tells the LLM what was estimated, what is left, and what to do.
In mode ``"warn"`` a budget logs the overrun (this module's logger) and reserves anyway.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from langchain_imagegen.errors import BudgetExceededError, InvalidArgumentError

__all__ = [
    "Budget",
    "BudgetBase",
    "BudgetMode",
    "BudgetTotals",
    "InMemoryBudget",
    "Reservation",
    "check_call_cap",
]

logger = logging.getLogger(__name__)

BudgetMode = Literal["refuse", "warn"]
_MODES: tuple[BudgetMode, ...] = ("refuse", "warn")


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Reservation:
    """Money a call holds against a budget until it settles or releases it.

    Made by :meth:`Budget.reserve`; callers only read ``amount`` (USD) and hand it back.
    ``id`` is the key a store keeps it under.
    """

    amount: float
    what: str = ""
    id: str = field(default_factory=_new_id)


def _money(value: object, name: str) -> float:
    """``value`` as a finite, non-negative amount of USD, or :class:`InvalidArgumentError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"{name} must be a number of USD, got {value!r}")
    amount = float(value)
    if not math.isfinite(amount) or amount < 0:
        raise InvalidArgumentError(
            f"{name} must be a finite, non-negative USD amount, got {value!r}"
        )
    return amount


def check_call_cap(estimate_usd: float, max_cost_per_call: float | None, *, what: str) -> None:
    """Raise :class:`BudgetExceededError` if ``estimate_usd`` is over ``max_cost_per_call``.

    ``None`` means no cap. ``what`` describes the call for the message (e.g. ``"4 images
    with gpt-image-1 at high quality"``).
    """
    estimate = _money(estimate_usd, "the estimated cost")
    if max_cost_per_call is None:
        return
    cap = _money(max_cost_per_call, "max_cost_per_call")
    if estimate > cap:
        raise BudgetExceededError(
            estimated_usd=estimate, remaining_usd=cap, limit_usd=cap, what=what, per_call=True
        )


@runtime_checkable
class Budget(Protocol):
    """Shared spending limit in USD. Implementations must be safe across threads and tasks.

    A call reserves its estimate before sending, then settles with the actual cost or
    releases the reservation. Settling or releasing a reservation twice counts once.
    Subclass :class:`BudgetBase` to write only a store's atomic primitives.
    """

    def reserve(self, amount: float, *, what: str = "") -> Reservation:
        """Hold ``amount`` USD. If it is more than :attr:`remaining`, mode ``"refuse"`` raises
        :class:`BudgetExceededError` (nothing is held) and mode ``"warn"`` logs a warning and
        holds it anyway. ``what`` describes the call for messages."""
        ...

    def settle(self, reservation: Reservation, actual: float | None) -> None:
        """Record ``actual`` USD as spent and free the reservation (the difference goes back).
        ``None``: the cost is unknown, so the reserved amount counts as spent."""
        ...

    def release(self, reservation: Reservation) -> None:
        """Free the reservation without spending: the request failed before the server did
        any work (refused before sending, connection failure)."""
        ...

    @property
    def spent(self) -> float:
        """USD recorded as spent by settled calls."""
        ...

    @property
    def reserved(self) -> float:
        """USD held by calls that have not settled yet."""
        ...

    @property
    def remaining(self) -> float:
        """``limit - spent - reserved``; negative when actual costs or mode ``"warn"``
        went over the limit."""
        ...

    async def areserve(self, amount: float, *, what: str = "") -> Reservation:
        """:meth:`reserve` for asyncio callers (a store with an async client awaits it)."""
        return self.reserve(amount, what=what)

    async def asettle(self, reservation: Reservation, actual: float | None) -> None:
        """:meth:`settle` for asyncio callers."""
        self.settle(reservation, actual)

    async def arelease(self, reservation: Reservation) -> None:
        """:meth:`release` for asyncio callers."""
        self.release(reservation)


class BudgetTotals(NamedTuple):
    """A budget's two running totals, in USD."""

    spent: float
    reserved: float


class BudgetBase(Budget, ABC):
    """A :class:`Budget` over three atomic primitives of a store, which a subclass writes.

    This class validates amounts, raises or warns by ``mode``, and builds the error; the
    store only keeps totals and open holds, each primitive as one atomic step (a lock, a
    transaction, a Redis Lua script):

    * :meth:`take_hold`: check that the amount fits under the limit, and hold it;
    * :meth:`end_hold`: close an open hold, moving the actual cost (or the held amount) to
      spent; a hold already closed is left alone, which makes settling twice harmless;
    * :meth:`read_totals`: spent and reserved.

    A store with an async client also overrides :meth:`atake_hold`, :meth:`aend_hold` and
    :meth:`aread_totals` (by default they call the sync ones).
    """

    def __init__(self, limit_usd: float, *, mode: BudgetMode = "refuse") -> None:
        if mode not in _MODES:
            raise InvalidArgumentError(f"mode must be 'refuse' or 'warn', got {mode!r}")
        self.limit_usd = _money(limit_usd, "limit_usd")
        self.mode: BudgetMode = mode

    # --- the store: what a subclass writes --------------------------------------------------

    @abstractmethod
    def take_hold(
        self, hold_id: str, amount: float, *, limit: float | None
    ) -> tuple[bool, BudgetTotals]:
        """Atomically: if ``limit`` is ``None`` or ``amount <= limit - spent - reserved``,
        hold ``amount`` under ``hold_id`` (reserved grows by it). Return whether it was held,
        and the totals just before."""

    @abstractmethod
    def end_hold(self, hold_id: str, actual: float | None) -> bool:
        """Atomically: if ``hold_id`` is held, drop the hold (reserved shrinks by its amount)
        and add ``actual`` to spent (the held amount when ``None``). Return whether it was
        held; a hold already ended changes nothing."""

    @abstractmethod
    def read_totals(self) -> BudgetTotals:
        """Spent and reserved, as one consistent reading."""

    async def atake_hold(
        self, hold_id: str, amount: float, *, limit: float | None
    ) -> tuple[bool, BudgetTotals]:
        """:meth:`take_hold` for an async store."""
        return self.take_hold(hold_id, amount, limit=limit)

    async def aend_hold(self, hold_id: str, actual: float | None) -> bool:
        """:meth:`end_hold` for an async store."""
        return self.end_hold(hold_id, actual)

    async def aread_totals(self) -> BudgetTotals:
        """:meth:`read_totals` for an async store."""
        return self.read_totals()

    # --- the Budget protocol ----------------------------------------------------------------

    def reserve(self, amount: float, *, what: str = "") -> Reservation:
        reservation = Reservation(_money(amount, "the amount to reserve"), what)
        held, before = self.take_hold(reservation.id, reservation.amount, limit=self._limit())
        return self._outcome(reservation, held, before)

    async def areserve(self, amount: float, *, what: str = "") -> Reservation:
        reservation = Reservation(_money(amount, "the amount to reserve"), what)
        held, before = await self.atake_hold(
            reservation.id, reservation.amount, limit=self._limit()
        )
        return self._outcome(reservation, held, before)

    def settle(self, reservation: Reservation, actual: float | None) -> None:
        cost = None if actual is None else _money(actual, "the actual cost")
        self._ended(reservation, self.end_hold(reservation.id, cost))

    async def asettle(self, reservation: Reservation, actual: float | None) -> None:
        cost = None if actual is None else _money(actual, "the actual cost")
        self._ended(reservation, await self.aend_hold(reservation.id, cost))

    def release(self, reservation: Reservation) -> None:
        self._ended(reservation, self.end_hold(reservation.id, 0.0))

    async def arelease(self, reservation: Reservation) -> None:
        self._ended(reservation, await self.aend_hold(reservation.id, 0.0))

    @property
    def spent(self) -> float:
        return self.read_totals().spent

    @property
    def reserved(self) -> float:
        return self.read_totals().reserved

    @property
    def remaining(self) -> float:
        totals = self.read_totals()
        return self.limit_usd - totals.spent - totals.reserved

    def __repr__(self) -> str:
        spent, reserved = self.read_totals()
        return (
            f"{type(self).__name__}(limit_usd={self.limit_usd!r}, spent={spent!r}, "
            f"reserved={reserved!r}, mode={self.mode!r})"
        )

    # --- shared bookkeeping -----------------------------------------------------------------

    def _limit(self) -> float | None:
        return self.limit_usd if self.mode == "refuse" else None

    def _outcome(self, reservation: Reservation, held: bool, before: BudgetTotals) -> Reservation:
        """The reservation if the store held it (with a warning if it did not fit: mode
        ``"warn"``); the error if the store refused it."""
        remaining = self.limit_usd - before.spent - before.reserved
        over = not held or (self.mode == "warn" and reservation.amount > remaining)
        if not over:
            return reservation
        error = BudgetExceededError(
            estimated_usd=reservation.amount,
            remaining_usd=remaining,
            limit_usd=self.limit_usd,
            reserved_usd=before.reserved,
            what=reservation.what,
        )
        if not held:
            raise error
        logger.warning("over budget, reserved anyway (mode 'warn'): %s", error.reason)
        return reservation

    @staticmethod
    def _ended(reservation: Reservation, was_held: bool) -> None:
        if not was_held:
            logger.debug("reservation %s was already settled or released", reservation.id)


_EXACT = Context(prec=60)
"""Enough digits that sums of USD amounts (at most 17 significant digits each, as floats
print) are exact unless they differ by more than 40 orders of magnitude."""


def _decimal(amount: float) -> Decimal:
    return Decimal(repr(amount))  # the shortest decimal that reads back as this float


class InMemoryBudget(BudgetBase):
    """A budget in this process, shared by every tool and call given it; safe across threads
    and asyncio tasks (one lock, held only for the arithmetic, never while awaiting).

    Totals are kept in decimal, on the amounts as written (``0.1`` is one tenth, not the
    binary float just above it), so ten $0.10 calls fit a $1.00 budget exactly, and float
    rounding can never let the sum of reservations creep over the limit.

    >>> budget = InMemoryBudget(1.00)
    >>> hold = budget.reserve(0.25, what="1 image")
    >>> budget.settle(hold, 0.17)
    >>> budget
    InMemoryBudget(limit_usd=1.0, spent=0.17, reserved=0.0, mode='refuse')
    """

    def __init__(self, limit_usd: float, *, mode: BudgetMode = "refuse") -> None:
        super().__init__(limit_usd, mode=mode)
        self._lock = threading.Lock()
        self._holds: dict[str, Decimal] = {}
        self._spent = Decimal(0)
        self._reserved = Decimal(0)

    def _totals(self) -> BudgetTotals:
        return BudgetTotals(float(self._spent), float(self._reserved))

    def take_hold(
        self, hold_id: str, amount: float, *, limit: float | None
    ) -> tuple[bool, BudgetTotals]:
        exact = _decimal(amount)
        with self._lock:
            before = self._totals()
            if limit is not None:
                left = _EXACT.subtract(
                    _EXACT.subtract(_decimal(limit), self._spent), self._reserved
                )
                if exact > left:
                    return False, before
            self._holds[hold_id] = exact
            self._reserved = _EXACT.add(self._reserved, exact)
            return True, before

    def end_hold(self, hold_id: str, actual: float | None) -> bool:
        with self._lock:
            held = self._holds.pop(hold_id, None)
            if held is None:
                return False
            self._reserved = _EXACT.subtract(self._reserved, held)
            self._spent = _EXACT.add(self._spent, held if actual is None else _decimal(actual))
            return True

    def read_totals(self) -> BudgetTotals:
        with self._lock:
            return self._totals()

"""What happens around a call's requests: the cache before, the budget around them.

:class:`Accounting` wraps carrying out a plan (a generation or an edit) with the tool's
money and memory settings, in this order:

1. **Cache** (opt-in): an identical earlier request (same endpoint, model, coerced bodies and
   input images, :func:`~langchain_imagegen.cache.cache_key`) answers from its stored
   references, marked as cached and costing 0; its signed links are signed again. A stored
   image that is gone, or a server URL that has expired, makes it a miss.
2. **Estimate, cap and budget**: with ``max_cost_per_call`` or a budget, the plan is priced
   (:func:`~langchain_imagegen.pricing.estimate_cost`) and refused before anything is sent
   when it does not fit; the whole call, fan-out included, is reserved before its first
   request, so calls sharing a budget cannot overspend together.
3. **Settle**: the reservation is settled with the cost computed from the returned usage
   (the estimate when there is none) or released when the call failed.
4. **Store** the result's references in the cache (never failures, never image bytes).

Nothing here is asked for by default: without a cache, budget or cap a call costs one
attribute check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from langchain_imagegen.budget import Budget, Reservation, check_call_cap
from langchain_imagegen.cache import ImageCache, cache_key
from langchain_imagegen.errors import ConfigurationError
from langchain_imagegen.generation import Edit, Plan
from langchain_imagegen.pricing import CostEstimate, PriceTable, estimate_cost
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.storage import ImageStoreBase

__all__ = ["Accounting"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accounting:
    """A tool's cache, budget and per-call cap, applied around each call."""

    prices: PriceTable
    store: ImageStoreBase
    budget: Budget | None = None
    max_cost_per_call: float | None = None
    cache: ImageCache | None = None
    cache_ttl: float | None = None

    @property
    def prices_calls(self) -> bool:
        """Whether calls must be estimated before they are sent."""
        return self.budget is not None or self.max_cost_per_call is not None

    def estimate(self, plan: Plan, *, input_images: int = 0) -> CostEstimate | None:
        """The plan's estimated cost, an edit's ``input_images`` counted (``None``: the model
        or one of its settings has no published price)."""
        try:
            return estimate_cost(
                plan.profile.name, plan.requests, self.prices, input_images=input_images
            )
        except (ValueError, TypeError):  # a body extra_body made unpriceable (n="abc")
            return None

    # --- sync ----------------------------------------------------------------------------

    def run(
        self,
        plan: Plan,
        edit: Edit | None,
        endpoint: str,
        carry_out: Callable[[], ImageGenerationResult],
        *,
        regenerate: bool = False,
    ) -> ImageGenerationResult:
        """``carry_out()`` the plan, unless the cache answers it or the budget refuses it."""
        key = self._key(plan, edit, endpoint)
        if key is not None and not regenerate:
            cached = self._hit(key, self._lookup(key))
            if cached is not None:
                return cached
        estimate, reservation = self._reserve(plan, edit)
        try:
            result = carry_out()
        except BaseException:
            if reservation is not None:
                self.budget.release(reservation)  # type: ignore[union-attr]
            raise
        if reservation is not None:
            self.budget.settle(reservation, result.cost_usd)  # type: ignore[union-attr]
        result = _with_estimate(result, estimate)
        if key is not None and _complete(result):
            self._store(key, result)
        return result

    def _lookup(self, key: str) -> dict[str, Any] | None:
        assert self.cache is not None
        try:
            return self.cache.get(key)
        except Exception:  # noqa: BLE001 - a user's backend: any failure is a miss
            _log.warning("the image cache failed to answer; generating", exc_info=True)
            return None

    def _store(self, key: str, result: ImageGenerationResult) -> None:
        assert self.cache is not None
        try:
            self.cache.put(key, result.model_dump(mode="json"), ttl_s=self.cache_ttl)
        except Exception:  # noqa: BLE001 - never lose the images over the cache
            _log.warning("the image cache failed to keep a result", exc_info=True)

    # --- async ---------------------------------------------------------------------------

    async def arun(
        self,
        plan: Plan,
        edit: Edit | None,
        endpoint: str,
        carry_out: Callable[[], Awaitable[ImageGenerationResult]],
        *,
        regenerate: bool = False,
    ) -> ImageGenerationResult:
        """Async :meth:`run`."""
        key = self._key(plan, edit, endpoint)
        if key is not None and not regenerate:
            stored = await self._alookup(key)
            # Checking the images lists the store, and re-signing may call it: off the loop.
            cached = await asyncio.to_thread(self._hit, key, stored) if stored else None
            if cached is not None:
                return cached
        estimate, reservation = await self._areserve(plan, edit)
        try:
            result = await carry_out()
        except BaseException:
            if reservation is not None:
                await self.budget.arelease(reservation)  # type: ignore[union-attr]
            raise
        if reservation is not None:
            await self.budget.asettle(reservation, result.cost_usd)  # type: ignore[union-attr]
        result = _with_estimate(result, estimate)
        if key is not None and _complete(result):
            await self._astore(key, result)
        return result

    async def _alookup(self, key: str) -> dict[str, Any] | None:
        assert self.cache is not None
        try:
            return await self.cache.aget(key)
        except Exception:  # noqa: BLE001 - as in _lookup
            _log.warning("the image cache failed to answer; generating", exc_info=True)
            return None

    async def _astore(self, key: str, result: ImageGenerationResult) -> None:
        assert self.cache is not None
        try:
            await self.cache.aput(key, result.model_dump(mode="json"), ttl_s=self.cache_ttl)
        except Exception:  # noqa: BLE001 - as in _store
            _log.warning("the image cache failed to keep a result", exc_info=True)

    # --- shared --------------------------------------------------------------------------

    def _key(self, plan: Plan, edit: Edit | None, endpoint: str) -> str | None:
        if self.cache is None:
            return None
        inputs = edit.digests if edit is not None else ()
        return cache_key(
            endpoint=endpoint,
            model=plan.profile.name,
            requests=plan.requests,
            inputs=inputs,
            storage=self.store.describe(),
        )

    def _estimate_for_budget(
        self, plan: Plan, edit: Edit | None
    ) -> tuple[CostEstimate | None, bool]:
        """The estimate, checked against the per-call cap; and whether a budget needs it."""
        if not self.prices_calls:
            return None, False
        estimate = self.estimate(plan, input_images=len(edit.inputs) if edit is not None else 0)
        if estimate is None:
            raise ConfigurationError(
                f"no published price covers this request to {plan.profile.name} (its "
                "quality or size), so the budget cannot check it; add the price with "
                "prices=default_price_table().with_prices(...) (docs/cost.md)"
            )
        check_call_cap(estimate.usd, self.max_cost_per_call, what=_what(plan))
        return estimate, self.budget is not None

    def _reserve(
        self, plan: Plan, edit: Edit | None
    ) -> tuple[CostEstimate | None, Reservation | None]:
        estimate, needed = self._estimate_for_budget(plan, edit)
        if self.budget is None or estimate is None or not needed:
            return estimate, None
        return estimate, self.budget.reserve(estimate.usd, what=_what(plan))

    async def _areserve(
        self, plan: Plan, edit: Edit | None
    ) -> tuple[CostEstimate | None, Reservation | None]:
        estimate, needed = self._estimate_for_budget(plan, edit)
        if self.budget is None or estimate is None or not needed:
            return estimate, None
        return estimate, await self.budget.areserve(estimate.usd, what=_what(plan))

    def _hit(self, key: str, stored: dict[str, Any] | None) -> ImageGenerationResult | None:
        """The cached result, marked and with fresh links; ``None`` (a miss, and the entry
        forgotten) when it cannot be read or one of its images is gone."""
        if stored is None:
            return None
        try:
            result = ImageGenerationResult.model_validate(stored)
            if not self._still_there(result):
                raise LookupError("an image of the cached result is gone")
            if any(image.link_expires_at is not None for image in result.images):
                result = result.resign_links(self.store)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with it, generate again
            _log.info("cached result not used (%s); generating", exc)
            if self.cache is not None:
                self.cache.delete(key)
            return None
        update = {"cached": True, "cost_usd": 0.0, "cost_basis": "cache"}
        return result.model_copy(update=update)

    def _still_there(self, result: ImageGenerationResult) -> bool:
        stored = [image.uri or image.path for image in result.images if image.uri or image.path]
        now = dt.datetime.now(dt.timezone.utc)
        for image in result.images:
            if image.uri is None and image.path is None and image.expires_at is not None:
                expires = image.expires_at
                if expires.tzinfo is None:
                    expires = expires.replace(tzinfo=dt.timezone.utc)
                if expires <= now:
                    return False  # a server URL that has expired
        if not stored:
            return True
        present = set(self.store.names())
        return all(self.store.name_of(str(ref)) in present for ref in stored)


def _complete(result: ImageGenerationResult) -> bool:
    """Whether a result may be cached: every request answered with every image (a partly
    failed call is asked again next time, not answered with its gaps)."""
    return not result.errors and not result.shortfall


def _what(plan: Plan) -> str:
    count = plan.images_requested
    return f"{count} image{'s' if count != 1 else ''} with {plan.profile.name}"


def _with_estimate(
    result: ImageGenerationResult, estimate: CostEstimate | None
) -> ImageGenerationResult:
    if estimate is None:
        return result
    return result.model_copy(update={"estimated_cost_usd": estimate.usd})

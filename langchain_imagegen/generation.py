"""Carry out a coerced plan: send its requests concurrently, persist images, build the result.

Sits between the LangChain tool (above) and the client and storage (below). The sync path
fans out over threads sharing one ``httpx.Client``; the async path over tasks sharing one
``httpx.AsyncClient`` (no thread fallback). Each response is materialised as soon as it
arrives, so no image's bytes outlive their own save.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from langchain_imagegen.client import ImagesClient
from langchain_imagegen.coercion import CoercionResult
from langchain_imagegen.errors import (
    APIError,
    ImageGenError,
    MalformedResponseError,
    StorageError,
)
from langchain_imagegen.response import ImagesResponse
from langchain_imagegen.result import (
    AdjustmentRecord,
    GeneratedImage,
    ImageGenerationResult,
    RequestRecord,
)
from langchain_imagegen.storage import ImageStore, SavedImage, decode_b64_image

__all__ = ["AsyncEventSink", "EventSink", "ImageGenerator"]

EventSink = Callable[[str, dict[str, Any]], None]
"""Receives progress: ``(stage, data)`` with stage ``requested``, ``received`` or ``saved``."""
AsyncEventSink = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class _Sent:
    """How one request went."""

    index: int
    response: ImagesResponse | None
    error: ImageGenError | None
    elapsed: float


_SAS_EXPIRY = re.compile(r"(?:^|&)se=([^&]+)")


def _url_expiry(url: str | None) -> dt.datetime | None:
    """Signed blob URLs carry their expiry (``se=``, api-facts §4.2: about 60 minutes)."""
    if not url:
        return None
    # The first non-blank ``se`` of the query, as parse_qs would find it, at a tenth of the cost.
    match = _SAS_EXPIRY.search(url.partition("?")[2].partition("#")[0])
    if match is None:
        return None
    try:
        return dt.datetime.fromisoformat(unquote_plus(match.group(1)).replace("Z", "+00:00"))
    except ValueError:
        return None


def _returned(
    response: ImagesResponse, body: dict[str, Any], index: int
) -> Iterator[tuple[GeneratedImage, str | None]]:
    """Each returned image with its base64 payload (if any) still to be saved."""
    size = response.size or body.get("size")
    for item in response.images:
        image = GeneratedImage(
            url=None if item.b64_json else item.url,
            revised_prompt=item.revised_prompt,
            size=size if size != "auto" else None,
            expires_at=None if item.b64_json else _url_expiry(item.url),
            request_index=index,
        )
        yield image, item.b64_json


def _with_file(image: GeneratedImage, saved: SavedImage) -> GeneratedImage:
    return image.model_copy(
        update={
            "path": str(saved.path),
            "mime_type": saved.mime_type,
            "size_bytes": saved.size_bytes,
            "sha256": saved.sha256,
        }
    )


def _add_usage(total: dict[str, int] | None, usage: dict[str, Any] | None) -> dict[str, int] | None:
    if not usage:
        return total
    total = dict(total or {})
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value
    return total


def _most_telling(errors: list[ImageGenError]) -> ImageGenError:
    """With every request failed, report the error a caller can act on: a refusal or a bad
    request before a transient failure."""
    final = [e for e in errors if not (isinstance(e, APIError) and e.retryable)]
    return (final or errors)[0]


class ImageGenerator:
    """Runs :class:`CoercionResult` plans against one client and one image store."""

    def __init__(
        self,
        client: ImagesClient,
        store: ImageStore,
        *,
        download_urls: bool = False,
        max_download_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self.client = client
        self.store = store
        self.download_urls = download_urls
        self.max_download_bytes = max_download_bytes

    # --- sync ----------------------------------------------------------------------------

    def run(self, plan: CoercionResult, on_event: EventSink | None = None) -> ImageGenerationResult:
        """Send every request of ``plan`` (concurrently when there are several)."""
        emit = on_event or (lambda stage, data: None)
        result, started = _start(plan), time.perf_counter()
        errors: list[ImageGenError] = []
        for index, body in enumerate(plan.requests):
            emit("requested", {"request_index": index, "images": body.get("n", 1)})
        if len(plan.requests) == 1:
            outcomes: Iterator[_Sent] = iter([self._send(0, plan.requests[0])])
            self._collect_all(plan, result, outcomes, errors, emit)
        else:
            with ThreadPoolExecutor(max_workers=len(plan.requests)) as pool:
                futures = [pool.submit(self._send, i, b) for i, b in enumerate(plan.requests)]
                outcomes = (future.result() for future in as_completed(futures))
                self._collect_all(plan, result, outcomes, errors, emit)
        return _finish(result, errors, started)

    def _send(self, index: int, body: dict[str, Any]) -> _Sent:
        started = time.perf_counter()
        try:
            return _Sent(index, self.client.generate(body), None, time.perf_counter() - started)
        except ImageGenError as error:
            return _Sent(index, None, error, time.perf_counter() - started)

    def _collect_all(
        self,
        plan: CoercionResult,
        result: ImageGenerationResult,
        outcomes: Iterator[_Sent],
        errors: list[ImageGenError],
        emit: EventSink,
    ) -> None:
        for sent in outcomes:
            if _record(result, sent, errors) is None or sent.response is None:
                continue
            emit("received", {"request_index": sent.index, "images": len(sent.response.images)})
            for returned, b64 in _returned(sent.response, plan.requests[sent.index], sent.index):
                try:
                    image = self._materialise(returned, b64)
                except StorageError as error:
                    _record_failure(result, sent.index, error, errors)
                    continue
                result.images.append(image)
                if image.path:
                    emit("saved", {"request_index": sent.index, "path": image.path})

    def _materialise(self, image: GeneratedImage, b64: str | None) -> GeneratedImage:
        if b64 is not None:
            return _with_file(image, self.store.save(decode_b64_image(b64)))
        if image.url and self.download_urls:
            data, content_type = self.client.download(image.url, max_bytes=self.max_download_bytes)
            return _with_file(image, self.store.save(data, mime_type_hint=content_type))
        return image

    # --- async ---------------------------------------------------------------------------

    async def arun(
        self, plan: CoercionResult, on_event: AsyncEventSink | None = None
    ) -> ImageGenerationResult:
        """Send every request of ``plan`` as concurrent tasks on the shared AsyncClient."""
        result, started = _start(plan), time.perf_counter()
        errors: list[ImageGenError] = []
        for index, body in enumerate(plan.requests):
            if on_event:
                await on_event("requested", {"request_index": index, "images": body.get("n", 1)})
        if len(plan.requests) == 1:  # no task, no as_completed: ~40 us less per call
            sent = await self._asend(0, plan.requests[0])
            await self._acollect(plan, result, sent, errors, on_event)
            return _finish(result, errors, started)
        tasks = [asyncio.ensure_future(self._asend(i, b)) for i, b in enumerate(plan.requests)]
        try:
            for next_done in asyncio.as_completed(tasks):
                await self._acollect(plan, result, await next_done, errors, on_event)
        finally:
            for task in tasks:
                task.cancel()
        return _finish(result, errors, started)

    async def _acollect(
        self,
        plan: CoercionResult,
        result: ImageGenerationResult,
        sent: _Sent,
        errors: list[ImageGenError],
        on_event: AsyncEventSink | None,
    ) -> None:
        if _record(result, sent, errors) is None or sent.response is None:
            return
        if on_event:
            data = {"request_index": sent.index, "images": len(sent.response.images)}
            await on_event("received", data)
        body = plan.requests[sent.index]
        for returned, b64 in _returned(sent.response, body, sent.index):
            try:
                image = await self._amaterialise(returned, b64)
            except StorageError as error:
                _record_failure(result, sent.index, error, errors)
                continue
            result.images.append(image)
            if image.path and on_event:
                await on_event("saved", {"request_index": sent.index, "path": image.path})

    async def _asend(self, index: int, body: dict[str, Any]) -> _Sent:
        started = time.perf_counter()
        try:
            response = await self.client.agenerate(body)
            return _Sent(index, response, None, time.perf_counter() - started)
        except ImageGenError as error:
            return _Sent(index, None, error, time.perf_counter() - started)

    async def _amaterialise(self, image: GeneratedImage, b64: str | None) -> GeneratedImage:
        # Decoding and writing megabytes would stall the event loop: both go to a thread.
        if b64 is not None:
            data = await asyncio.to_thread(decode_b64_image, b64)
            return _with_file(image, await self.store.asave(data))
        if image.url and self.download_urls:
            data, content_type = await self.client.adownload(
                image.url, max_bytes=self.max_download_bytes
            )
            return _with_file(image, await self.store.asave(data, mime_type_hint=content_type))
        return image


def _start(plan: CoercionResult) -> ImageGenerationResult:
    return ImageGenerationResult(
        model=plan.profile.name,
        prompt=str(plan.requests[0]["prompt"]),
        images_requested=plan.images_requested,
        requests=[RequestRecord(body=body) for body in plan.requests],
        adjustments=[AdjustmentRecord.of(a) for a in plan.adjustments],
    )


def _record(
    result: ImageGenerationResult, sent: _Sent, errors: list[ImageGenError]
) -> ImagesResponse | None:
    """Note how a request went on its record; return its response if it succeeded."""
    record = result.requests[sent.index]
    record.elapsed_s = round(sent.elapsed, 3)
    if sent.error is not None:
        _record_failure(result, sent.index, sent.error, errors)
        return None
    response = sent.response
    if response is not None:
        record.images = len(response.images)
        record.request_id = response.request_id
        record.usage = response.usage
        record.attempts = response.attempts
        result.usage = _add_usage(result.usage, response.usage)
    return response


def _record_failure(
    result: ImageGenerationResult, index: int, error: ImageGenError, errors: list[ImageGenError]
) -> None:
    """One image could not be kept (corrupt payload, failed save or download): the others
    still count, and the result says what is missing and why."""
    record = result.requests[index]
    record.error = f"{record.error}; {error}" if record.error else str(error)
    errors.append(error)


def _finish(
    result: ImageGenerationResult, errors: list[ImageGenError], started: float
) -> ImageGenerationResult:
    """Fail only when nothing came back; otherwise the result reports what is missing."""
    result.elapsed_s = round(time.perf_counter() - started, 3)
    result.images.sort(key=lambda image: image.request_index)
    if result.images:
        return result
    if errors:
        raise _most_telling(errors)
    msg = (
        f"the server answered but returned no images (asked for {result.images_requested}); "
        "a gateway's safety filter may have removed them"
    )
    raise MalformedResponseError(msg)

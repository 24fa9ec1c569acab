"""Carry out a coerced plan: send its requests concurrently, persist images, build the result.

Sits between the LangChain tool (above) and the client and storage (below). One deadline,
taken when the call starts (the client's retry budget), bounds every request and download of
the call. The sync path fans out over daemon threads sharing one ``httpx.Client``, the async
path over tasks sharing one ``httpx.AsyncClient`` (no thread fallback); both stop at once on
Ctrl-C or cancellation. Each response is materialised as soon as it arrives, so no image's
bytes outlive their own save.

What a response yields, what a failure costs and when the call fails is decided once, in
:class:`_Call`; the sync and async methods of :class:`ImageGenerator` only do the I/O.

A streamed request (``stream: true``) hands over previews as they arrive: each is saved
(named ``preview-<hash>``, never listed among the images) and announced as a ``partial``
event with where it was saved; a stream that is retried after previews is announced as
``restarted``. A preview that cannot be saved is announced with its error and costs nothing
else. Events from fan-out threads run in a copy of the caller's context, so LangChain's and
LangGraph's context-bound event dispatch works there too.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import hashlib
import queue
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeAlias, TypeVar
from urllib.parse import unquote_plus

from langchain_imagegen.client import (
    Cancellation,
    FileField,
    ImagesClient,
    StreamEvent,
    StreamRestarted,
)
from langchain_imagegen.coercion import Adjustment
from langchain_imagegen.errors import (
    APIError,
    CorruptImageError,
    ImageDownloadError,
    ImageGenError,
    MalformedResponseError,
    StorageError,
)
from langchain_imagegen.limits import RequestLimits
from langchain_imagegen.pricing import Cost, PriceTable, cost_from_usage
from langchain_imagegen.registry import ImageModelProfile
from langchain_imagegen.response import ImagesResponse
from langchain_imagegen.result import AdjustmentRecord, GeneratedImage, ImageGenerationResult
from langchain_imagegen.storage import ImageStoreBase, SavedImage, decode_b64_image
from langchain_imagegen.stream_events import PartialImage

__all__ = ["AsyncEventSink", "Edit", "EventSink", "ImageGenerator", "Plan"]

EventSink = Callable[[str, dict[str, Any]], None]
"""Receives progress: ``(stage, data)`` with stage ``requested``, ``partial`` (a streamed
preview), ``restarted`` (a streamed image starting over), ``received`` or ``saved``."""
AsyncEventSink = Callable[[str, dict[str, Any]], Awaitable[None]]


class Plan(Protocol):
    """What a call carries out: a generation's ``CoercionResult`` or an edit's ``EditPlan``."""

    @property
    def profile(self) -> ImageModelProfile: ...

    @property
    def requests(self) -> tuple[dict[str, Any], ...]: ...

    @property
    def adjustments(self) -> tuple[Adjustment, ...]: ...

    @property
    def images_requested(self) -> int: ...


@dataclass(frozen=True)
class Edit:
    """What makes a call an edit: the files every request sends (the same bytes for each
    request of a fan-out, never copied) and the handles of the images edited, the result's
    lineage."""

    files: Sequence[FileField]
    inputs: tuple[str, ...]
    mask: str | None = None
    digests: tuple[str, ...] = ()
    """The SHA-256 of each file sent, in order (what a cache key needs of the inputs)."""


_UNSAVED = (StorageError, CorruptImageError)
"""What costs one image only: a damaged payload, or a save that failed."""
_POLL_S = 0.2
"""How often the sync fan-out's waiting thread wakes: a signal (Ctrl-C) is handled at once on
POSIX, but Windows delivers it only when a wait returns."""

_Payload: TypeAlias = tuple[bytes, str | None] | ImageDownloadError | CorruptImageError | None
"""What there is to save of one image: its bytes and their declared type (``None`` for a
decoded payload: the store sniffs it), why there are none (a failed download, a damaged
base64 payload), or nothing (a URL image that is not downloaded)."""

_T = TypeVar("_T")

_SAS_EXPIRY = re.compile(r"(?:^|&)se=([^&]+)")


@dataclass
class _Sent:
    """How one request went, and when it ended."""

    index: int
    outcome: ImagesResponse | ImageGenError
    ended: float = field(default_factory=time.perf_counter)


def _url_expiry(url: str | None) -> dt.datetime | None:
    """Signed blob URLs carry their expiry (``se=``). OpenAI's API reference says image URLs
    are valid for 60 minutes after generation."""
    if not url:
        return None
    # The first non-blank ``se`` of the query, as parse_qs would find it, without parsing the
    # rest of the query.
    match = _SAS_EXPIRY.search(url.partition("?")[2].partition("#")[0])
    if match is None:
        return None
    try:
        return dt.datetime.fromisoformat(unquote_plus(match.group(1)).replace("Z", "+00:00"))
    except ValueError:
        return None


def _returned(
    response: ImagesResponse, body: dict[str, Any], index: int
) -> list[tuple[GeneratedImage, str | None]]:
    """Each returned image with its base64 payload (if any) still to be saved.

    The size is the one the server says it produced, else the one asked for ("auto" says
    nothing); quality, background and output format are the server's (gpt-image models).
    """
    size = response.size or body.get("size")
    described = {
        "size": size if size != "auto" else None,
        "quality": response.quality,
        "background": response.background,
        "output_format": response.output_format,
        "request_index": index,
    }
    return [
        (
            GeneratedImage(
                url=None if item.b64_json else item.url,
                revised_prompt=item.revised_prompt,
                expires_at=None if item.b64_json else _url_expiry(item.url),
                **described,
            ),
            item.b64_json,
        )
        for item in response.images
    ]


def _decoded(b64: str) -> tuple[bytes, None] | CorruptImageError:
    try:
        return decode_b64_image(b64), None
    except CorruptImageError as error:
        return error


def _with_file(image: GeneratedImage, saved: SavedImage) -> GeneratedImage:
    return image.model_copy(
        update={
            "path": None if saved.path is None else str(saved.path),
            "uri": saved.uri or None,
            "link": saved.link,
            "link_expires_at": saved.link_expires_at,
            "link_error": saved.link_error,
            "mime_type": saved.mime_type,
            "size_bytes": saved.size_bytes,
            "sha256": saved.sha256,
        }
    )


def _not_downloaded(image: GeneratedImage, error: ImageDownloadError) -> GeneratedImage:
    """A URL image whose download failed: still an image (generated and billed), at its URL."""
    return image.model_copy(update={"download_error": str(error)})


def _dropped(response: ImagesResponse) -> MalformedResponseError:
    """Why some items of a response carried no usable image (the others are kept)."""
    count = len(response.dropped)
    left_out = "it was" if count == 1 else "they were"
    return MalformedResponseError(
        f"{count} of the {count + len(response.images)} items the server returned carried no "
        f"usable image, so {left_out} left out ({'; '.join(response.dropped)})",
        request_id=response.request_id,
    )


def _add_usage(total: dict[str, int] | None, usage: dict[str, Any] | None) -> dict[str, int] | None:
    if not usage:
        return total
    total = dict(total or {})
    for key in ("input_tokens", "output_tokens", "total_tokens", "cost_in_usd_ticks"):
        value = usage.get(key)
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value
    return total


def _most_telling(errors: list[ImageGenError]) -> ImageGenError:
    """With every request failed, report the error a caller can act on: a refusal or a bad
    request before a transient failure."""
    final = [e for e in errors if not (isinstance(e, APIError) and e.retryable)]
    return (final or errors)[0]


class _Call:
    """One call in progress: its plan, its one deadline, what came back, what went wrong.

    The outcome is gathered as plain data and validated into an
    :class:`ImageGenerationResult` once, in :meth:`finish`: a pydantic record per request,
    assigned field by field as answers arrive, costs more than the requests' bookkeeping
    is worth.
    """

    def __init__(
        self,
        plan: Plan,
        deadline: float,
        edit: Edit | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.plan = plan
        self.edit = edit
        self.prices = prices
        self.costs: list[Cost | None] = []
        """Each successful request's cost (``None``: it could not be priced)."""
        self.deadline = deadline
        self.started = time.perf_counter()
        self.errors: list[ImageGenError] = []
        self.prompt = str(plan.requests[0]["prompt"])
        self.records: list[dict[str, Any]] = [{"body": body} for body in plan.requests]
        """Each request's :class:`RequestRecord` fields, as they become known."""
        self.images: list[GeneratedImage] = []
        self.usage: dict[str, int] | None = None
        self.cancellation = Cancellation()
        """Set when the caller leaves early (Ctrl-C): fan-out threads stop reading at once."""

    def requested(self) -> list[dict[str, Any]]:
        """The ``requested`` events, one per request."""
        return [
            {"request_index": index, "images": body.get("n", 1)}
            for index, body in enumerate(self.plan.requests)
        ]

    def received(self, sent: _Sent) -> list[tuple[GeneratedImage, str | None]] | None:
        """Note how a request went on its record; the images it returned, still to be saved
        (``None`` if it failed)."""
        record = self.records[sent.index]
        record["elapsed_s"] = round(sent.ended - self.started, 3)
        response = sent.outcome
        if isinstance(response, ImageGenError):
            self.fail(sent.index, response)
            return None
        record["images"] = len(response.images)
        record["request_id"] = response.request_id
        record["usage"] = response.usage
        record["attempts"] = response.attempts
        self.usage = _add_usage(self.usage, response.usage)
        if self.prices is not None:
            cost = self._cost(response, sent.index)
            record["cost_usd"] = None if cost is None else cost.usd
            self.costs.append(cost)
        if response.dropped:
            self.fail(sent.index, _dropped(response))
        return _returned(response, self.plan.requests[sent.index], sent.index)

    def _cost(self, response: ImagesResponse, index: int) -> Cost | None:
        body = self.plan.requests[index]
        quality, size = body.get("quality"), body.get("size")
        return cost_from_usage(
            self.plan.profile.name,
            response.usage,
            images=len(response.images),
            quality=response.quality or (quality if isinstance(quality, str) else None),
            size=response.size or (size if isinstance(size, str) else None),
            table=self.prices,
        )

    def metadata(self, index: int) -> dict[str, str]:
        """User metadata for an object store: what made the image, without the prompt itself
        (a hash of it: metadata is readable by whoever can list the bucket)."""
        prompt = self.prompt.encode("utf-8", "surrogatepass")
        metadata = {
            "model": self.plan.profile.name,
            "prompt-sha256": hashlib.sha256(prompt).hexdigest(),
        }
        request_id = self.records[index].get("request_id")
        if request_id:
            metadata["request-id"] = request_id
        return metadata

    def settle(self, index: int, outcome: GeneratedImage | ImageGenError) -> GeneratedImage | None:
        """Keep an image of request ``index``, or note why it could not be kept."""
        if isinstance(outcome, ImageGenError):
            self.fail(index, outcome)
            return None
        self.images.append(outcome)
        return outcome

    def fail(self, index: int, error: ImageGenError) -> None:
        """Something of request ``index`` could not be kept (the request itself, a corrupt
        payload, a failed save): the rest still counts, and the record says what is missing."""
        record = self.records[index]
        earlier = record.get("error")
        record["error"] = f"{earlier}; {error}" if earlier else str(error)
        self.errors.append(error)

    def finish(self) -> ImageGenerationResult:
        """The result; raise only when nothing came back (else the result reports what is
        missing)."""
        elapsed_s = round(time.perf_counter() - self.started, 3)
        if not self.images:
            if self.errors:
                raise _most_telling(self.errors)
            msg = (
                "the server answered but returned no images (asked for "
                f"{self.plan.images_requested}); a gateway's safety filter may have removed them"
            )
            raise MalformedResponseError(msg)
        return ImageGenerationResult(
            model=self.plan.profile.name,
            prompt=self.prompt,
            images=sorted(self.images, key=lambda image: image.request_index),
            images_requested=self.plan.images_requested,
            requests=self.records,
            adjustments=[AdjustmentRecord.of(a) for a in self.plan.adjustments],
            usage=self.usage,
            elapsed_s=elapsed_s,
            inputs=list(self.edit.inputs) if self.edit else [],
            mask=self.edit.mask if self.edit else None,
            **_total_cost(self.costs),
        )


def _total_cost(costs: list[Cost | None]) -> dict[str, Any]:
    """The call's cost: the sum over its successful requests, when every one was priced."""
    if not costs or any(cost is None for cost in costs):
        return {}
    priced = [cost for cost in costs if cost is not None]
    bases = sorted({cost.basis for cost in priced})
    return {"cost_usd": sum(cost.usd for cost in priced), "cost_basis": " and ".join(bases)}


def _images_in(body: dict[str, Any]) -> int:
    """Images a request asks for (no ``n``: one)."""
    n = body.get("n", 1)
    return n if isinstance(n, int) and not isinstance(n, bool) else 1


def _streams(body: dict[str, Any]) -> bool:
    return body.get("stream") is True


def _location(saved: SavedImage) -> dict[str, Any]:
    """Where a preview is: its local ``path`` or its storage ``uri`` (never a signed link:
    events go to tracers)."""
    if saved.path is not None:
        return {"path": str(saved.path), "uri": saved.uri}
    return {"uri": saved.uri}


def _preview_metadata(call: _Call, index: int) -> dict[str, str]:
    return {**call.metadata(index), "preview": "true"}


def _restarted_event(index: int, event: StreamRestarted) -> dict[str, Any]:
    return {
        "request_index": index,
        "attempt": event.attempt,
        "previews_discarded": event.previews,
        "reason": event.reason,
    }


def _saved_event(index: int, image: GeneratedImage | None) -> dict[str, Any] | None:
    """Where an image was stored: its local ``path`` or its storage ``uri`` (never a signed
    link: events go to tracers)."""
    if image is None or image.uri is None:
        return None
    if image.path is not None:
        return {"request_index": index, "path": image.path, "uri": image.uri}
    return {"request_index": index, "uri": image.uri}


def _ignore(stage: str, data: dict[str, Any]) -> None:
    return None


async def _aignore(stage: str, data: dict[str, Any]) -> None:
    return None


class _DaemonThreads(Generic[_T]):
    """Work started in daemon threads, one each; the outcomes in the order they end.

    Daemon threads rather than a ``ThreadPoolExecutor``: the executor joins its workers when
    its block exits and again when the interpreter exits, so Ctrl-C waited for every request
    in flight. Here the waiting thread wakes at least every ``_POLL_S`` and an interrupt
    leaves at once; an abandoned request ends with its deadline, or with the process.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._outcomes: queue.SimpleQueue[_T | BaseException] = queue.SimpleQueue()
        self._started = 0

    def start(self, work: Callable[[], _T]) -> None:
        def run() -> None:
            try:
                self._outcomes.put(work())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the waiting thread
                self._outcomes.put(exc)

        name = f"{self._name}-{self._started}"
        # The caller's context (LangChain's run config, LangGraph's stream writer) goes with
        # the work: events sent from the thread reach the same listeners. A copy each: one
        # context cannot be entered by two threads at once.
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(run,), name=name, daemon=True).start()
        self._started += 1

    def outcomes(self) -> Iterator[_T]:
        """Each outcome as its work ends; what a work raised is raised here."""
        for _ in range(self._started):
            outcome = self._next()
            if isinstance(outcome, BaseException):
                raise outcome
            yield outcome

    def _next(self) -> _T | BaseException:
        while True:
            try:
                return self._outcomes.get(timeout=_POLL_S)
            except queue.Empty:
                continue


def _in_daemon_threads(send: Callable[[int], _T], count: int) -> Iterator[_T]:
    """``send(0) ... send(count - 1)`` at once, each in its own daemon thread; the outcomes
    in the order they end."""
    threads: _DaemonThreads[_T] = _DaemonThreads("langchain-imagegen-request")
    for index in range(count):
        threads.start(functools.partial(send, index))
    return threads.outcomes()


async def _cancel_and_wait(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks still running and wait until every one has ended, so that no request
    outlives the call (httpx closes a stream whose task is cancelled)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class ImageGenerator:
    """Runs plans (generations, and edits with their files) against one client and one image
    store."""

    def __init__(
        self,
        client: ImagesClient,
        store: ImageStoreBase,
        *,
        download_urls: bool = False,
        max_download_bytes: int = 50 * 1024 * 1024,
        limits: RequestLimits | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.download_urls = download_urls
        self.max_download_bytes = max_download_bytes
        self.limits = limits or RequestLimits()
        self.prices = prices
        """Prices each request's cost from its usage (``None``: costs are not computed)."""

    def _downloads(self, image: GeneratedImage) -> bool:
        """Whether to fetch a URL image now: when asked to, and always with remote storage
        (the copy's link outlives the server's URL, which expires after an hour)."""
        return (self.download_urls or self.store.is_remote) and image.url is not None

    # --- sync ----------------------------------------------------------------------------

    def run(
        self, plan: Plan, on_event: EventSink | None = None, edit: Edit | None = None
    ) -> ImageGenerationResult:
        """Send every request of ``plan`` (concurrently when there are several), as edits of
        ``edit``'s files if given; the client's retry budget bounds the whole call."""
        emit = on_event or _ignore
        call = _Call(plan, self.client.deadline(), edit, self.prices)
        if on_event is not None:  # the events are built only for someone who listens
            for data in call.requested():
                on_event("requested", data)
        count = len(plan.requests)
        send = functools.partial(self._send, call, emit)
        outcomes = iter([send(0)]) if count == 1 else _in_daemon_threads(send, count)
        uploading: list[tuple[int, Callable[[], list[GeneratedImage | ImageGenError]]]] = []
        try:
            self._collect(call, outcomes, emit, uploading)
        except BaseException:
            call.cancellation.cancel()  # Ctrl-C: streams still read in threads close now
            raise
        for index, outcome_of in uploading:
            for outcome in outcome_of():
                if saved := _saved_event(index, call.settle(index, outcome)):
                    emit("saved", saved)
        return call.finish()

    def _collect(
        self,
        call: _Call,
        outcomes: Iterator[_Sent],
        emit: EventSink,
        uploading: list[tuple[int, Callable[[], list[GeneratedImage | ImageGenError]]]],
    ) -> None:
        """Keep each response's images as it arrives; fan-out uploads are started and left
        in ``uploading`` (the next response need not wait for them)."""
        count = len(call.plan.requests)
        for sent in outcomes:
            if (returned := call.received(sent)) is None:
                continue
            emit("received", {"request_index": sent.index, "images": len(returned)})
            if count > 1 and self._goes_online(returned):
                # Fan-out: the next response need not wait for this one's uploads.
                uploading.append((sent.index, self._start_keeping(call, returned)))
                continue
            for image in self._materialise_all(call, sent.index, returned):
                if saved := _saved_event(sent.index, image):
                    emit("saved", saved)

    def _send(self, call: _Call, emit: EventSink, index: int) -> _Sent:
        body = call.plan.requests[index]

        def on_stream(event: StreamEvent) -> None:
            if call.cancellation.cancelled:  # the caller has left: nobody to tell
                return
            if isinstance(event, StreamRestarted):
                emit("restarted", _restarted_event(index, event))
                return
            emit("partial", self._keep_preview(call, index, event))

        sink = on_stream if _streams(body) else None
        try:
            if self.limits:
                self.limits.wait(_images_in(body), call.deadline, self.client.clock)
            if call.edit is None:
                answer = self.client.generate(
                    body, deadline=call.deadline, on_stream=sink, cancellation=call.cancellation
                )
            else:
                answer = self.client.edit(
                    body,
                    call.edit.files,
                    deadline=call.deadline,
                    on_stream=sink,
                    cancellation=call.cancellation,
                )
            return _Sent(index, answer)
        except ImageGenError as error:
            return _Sent(index, error)

    def _keep_preview(self, call: _Call, index: int, preview: PartialImage) -> dict[str, Any]:
        """Save one preview; the ``partial`` event saying where (or why it is not saved)."""
        event: dict[str, Any] = {"request_index": index, "partial_index": preview.index}
        try:
            data = decode_b64_image(preview.b64_json)
            metadata = _preview_metadata(call, index) if self.store.is_remote else None
            saved = self.store.save(data, metadata=metadata, preview=True)
        except _UNSAVED as error:
            return {**event, "error": str(error)}
        return {**event, **_location(saved)}

    def _goes_online(self, returned: list[tuple[GeneratedImage, str | None]]) -> bool:
        """Whether keeping these images waits on the network (an upload or a download)."""
        return self.store.is_remote or any(
            b64 is None and self._downloads(image) for image, b64 in returned
        )

    def _materialise_all(
        self, call: _Call, index: int, returned: list[tuple[GeneratedImage, str | None]]
    ) -> Iterator[GeneratedImage | None]:
        """Keep each image of one response, in order. Several that wait on the network are
        downloaded and stored at once, a thread each; disk-only ones one after the other."""
        if len(returned) == 1 or not self._goes_online(returned):
            for image, b64 in returned:
                yield call.settle(index, self._materialise(call, image, b64))
            return
        for outcome in self._start_keeping(call, returned)():
            yield call.settle(index, outcome)

    def _start_keeping(
        self, call: _Call, returned: list[tuple[GeneratedImage, str | None]]
    ) -> Callable[[], list[GeneratedImage | ImageGenError]]:
        """Start downloading and storing images at once, a daemon thread each; the function
        returned waits for their outcomes, in the server's order. Touches nothing of
        ``call``: the caller settles them.

        Base64 payloads are decoded here, on the calling thread, and only their bytes go to
        the threads: glibc gives each thread that allocates its own malloc arena, and images
        decoded in four threads were held in four arenas (peak RSS about 1.5 times that of
        decoding them on one thread).
        """
        threads: _DaemonThreads[tuple[int, GeneratedImage | ImageGenError]] = _DaemonThreads(
            "langchain-imagegen-store"
        )

        def keep(
            position: int, image: GeneratedImage, payload: _Payload
        ) -> tuple[int, GeneratedImage | ImageGenError]:
            return position, self._keep(call, image, payload)

        for position, (image, b64) in enumerate(returned):
            payload = None if b64 is None else _decoded(b64)
            threads.start(functools.partial(keep, position, image, payload))

        def outcomes() -> list[GeneratedImage | ImageGenError]:
            by_position = dict(threads.outcomes())
            return [by_position[position] for position in range(len(returned))]

        return outcomes

    def _materialise(
        self, call: _Call, image: GeneratedImage, b64: str | None
    ) -> GeneratedImage | ImageGenError:
        return self._keep(call, image, None if b64 is None else _decoded(b64))

    def _keep(
        self, call: _Call, image: GeneratedImage, payload: _Payload
    ) -> GeneratedImage | ImageGenError:
        """Store ``payload``; a URL image without one is downloaded first when it is to be
        kept."""
        if payload is None and self._downloads(image):
            payload = self._download(call, image)
        return self._store(call, image, payload)

    def _download(self, call: _Call, image: GeneratedImage) -> _Payload:
        try:
            return self.client.download(
                str(image.url), max_bytes=self.max_download_bytes, deadline=call.deadline
            )
        except ImageDownloadError as error:
            return error

    def _store(
        self, call: _Call, image: GeneratedImage, payload: _Payload
    ) -> GeneratedImage | ImageGenError:
        """One image as it will be kept: its bytes saved (storage and CPU only, and no change
        to ``call``: this runs in threads). A failed download keeps the image at its URL; a
        damaged payload or a failed save is returned, to cost this image only."""
        if isinstance(payload, ImageDownloadError):
            return _not_downloaded(image, payload)
        if payload is None:
            return image
        if isinstance(payload, CorruptImageError):
            return payload
        data, hint = payload
        metadata = call.metadata(image.request_index) if self.store.is_remote else None
        try:
            saved = self.store.save(data, mime_type_hint=hint, metadata=metadata)
        except _UNSAVED as error:
            return error
        return _with_file(image, saved)

    # --- async ---------------------------------------------------------------------------

    async def arun(
        self, plan: Plan, on_event: AsyncEventSink | None = None, edit: Edit | None = None
    ) -> ImageGenerationResult:
        """Send every request of ``plan`` as concurrent tasks on the shared AsyncClient; the
        client's retry budget bounds the whole call. Cancelling it cancels every request."""
        emit = on_event or _aignore
        call = _Call(plan, self.client.deadline(), edit, self.prices)
        if on_event is not None:  # the events are built only for someone who listens
            for data in call.requested():
                await on_event("requested", data)
        if len(plan.requests) == 1:  # nothing to run concurrently: no task, no as_completed
            await self._acollect(call, await self._asend(call, 0, emit), emit)
            return call.finish()
        # Each request's task also keeps its images, so one response's uploads do not wait for
        # another's (the event loop's single thread keeps ``call`` consistent).
        tasks = [
            asyncio.ensure_future(self._asend_and_collect(call, i, emit))
            for i in range(len(plan.requests))
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            await _cancel_and_wait(tasks)
        return call.finish()

    async def _asend_and_collect(self, call: _Call, index: int, emit: AsyncEventSink) -> None:
        await self._acollect(call, await self._asend(call, index, emit), emit)

    async def _asend(self, call: _Call, index: int, emit: AsyncEventSink) -> _Sent:
        body = call.plan.requests[index]

        async def on_stream(event: StreamEvent) -> None:
            if isinstance(event, StreamRestarted):
                await emit("restarted", _restarted_event(index, event))
                return
            await emit("partial", await self._akeep_preview(call, index, event))

        sink = on_stream if _streams(body) else None
        try:
            if self.limits:
                await self.limits.await_turn(_images_in(body), call.deadline, self.client.clock)
            if call.edit is None:
                answer = await self.client.agenerate(body, deadline=call.deadline, on_stream=sink)
            else:
                answer = await self.client.aedit(
                    body, call.edit.files, deadline=call.deadline, on_stream=sink
                )
            return _Sent(index, answer)
        except ImageGenError as error:
            return _Sent(index, error)

    async def _akeep_preview(
        self, call: _Call, index: int, preview: PartialImage
    ) -> dict[str, Any]:
        if not self.store.is_remote:  # decoding and the disk write off the event loop
            return await asyncio.to_thread(self._keep_preview, call, index, preview)
        event: dict[str, Any] = {"request_index": index, "partial_index": preview.index}
        try:
            data = await asyncio.to_thread(decode_b64_image, preview.b64_json)
            saved = await self.store.asave(
                data, metadata=_preview_metadata(call, index), preview=True
            )
        except _UNSAVED as error:
            return {**event, "error": str(error)}
        return {**event, **_location(saved)}

    async def _acollect(self, call: _Call, sent: _Sent, emit: AsyncEventSink) -> None:
        if (returned := call.received(sent)) is None:
            return
        await emit("received", {"request_index": sent.index, "images": len(returned)})
        if len(returned) == 1 or not self._goes_online(returned):
            for image, b64 in returned:
                kept = call.settle(sent.index, await self._amaterialise(call, image, b64))
                if saved := _saved_event(sent.index, kept):
                    await emit("saved", saved)
            return
        # Uploads and downloads at once; kept in the server's order.
        outcomes = await asyncio.gather(*(self._amaterialise(call, *item) for item in returned))
        for outcome in outcomes:
            if saved := _saved_event(sent.index, call.settle(sent.index, outcome)):
                await emit("saved", saved)

    async def _amaterialise(
        self, call: _Call, image: GeneratedImage, b64: str | None
    ) -> GeneratedImage | ImageGenError:
        """Keep one image without stalling the event loop: decoding and disk writes run in a
        worker thread, uploads through the store's async API (an async filesystem such as
        s3fs uploads on its own event loop, not in a thread)."""
        if b64 is not None and not self.store.is_remote:
            return await asyncio.to_thread(self._materialise, call, image, b64)
        if b64 is not None:
            payload: _Payload = await asyncio.to_thread(_decoded, b64)
        elif self._downloads(image):
            payload = await self._adownload(call, image)
        else:
            return image
        if not isinstance(payload, tuple):
            return self._store(call, image, payload)  # nothing to write: no thread
        if not self.store.is_remote:
            return await asyncio.to_thread(self._store, call, image, payload)
        data, hint = payload
        try:
            saved = await self.store.asave(
                data, mime_type_hint=hint, metadata=call.metadata(image.request_index)
            )
        except _UNSAVED as error:
            return error
        return _with_file(image, saved)

    async def _adownload(self, call: _Call, image: GeneratedImage) -> _Payload:
        try:
            return await self.client.adownload(
                str(image.url), max_bytes=self.max_download_bytes, deadline=call.deadline
            )
        except ImageDownloadError as error:
            return error

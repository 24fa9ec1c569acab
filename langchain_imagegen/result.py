"""The structured result of one tool call: the ToolMessage artifact.

Plain pydantic models, so the artifact serialises to JSON (agent state, checkpoints,
LangSmith) and renders itself in a notebook. No base64 is ever kept here: images are
files on disk or URLs. :class:`ImageGenerationResult` is also a langchain-core
``Serializable``, so ``langchain_core.load.dumps``/``loads`` of a ToolMessage keep it, and
:meth:`ImageGenerationResult.from_artifact` restores it from what a LangGraph checkpointer
gives back (a plain dict).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, cast, runtime_checkable

from langchain_core.load.serializable import (
    Serializable,
    SerializedConstructor,
    SerializedNotImplemented,
)
from langchain_core.messages import ImageContentBlock, TextContentBlock, ToolMessage
from langchain_core.messages.content import create_image_block, create_text_block
from pydantic import BaseModel, Field, ValidationError

from langchain_imagegen.coercion import Adjustment
from langchain_imagegen.handles import image_handle
from langchain_imagegen.notebook import render_html, short_note
from langchain_imagegen.pricing import Cost

__all__ = [
    "AdjustmentRecord",
    "GeneratedImage",
    "HasStore",
    "ImageGenerationResult",
    "LinkSigner",
    "RequestRecord",
]


@runtime_checkable
class LinkSigner(Protocol):
    """What can re-sign a stored image's link: an image store."""

    def link(
        self, uri: str, *, expires_in: int | None = None
    ) -> tuple[str | None, dt.datetime | None]: ...


@runtime_checkable
class HasStore(Protocol):
    """What holds an image store: the tool."""

    @property
    def store(self) -> LinkSigner: ...


class GeneratedImage(BaseModel):
    """One image: where it is, what it is, and the prompt the model actually used."""

    url: str | None = None
    """Remote location, as returned by the server (may expire, see ``expires_at``)."""
    path: str | None = None
    """Absolute path of the saved file, when the image was saved on local disk."""
    uri: str | None = None
    """Where the storage keeps the image: the absolute path on local disk,
    ``s3://bucket/prefix/<hash16>.png`` (or ``gs://``, ``memory://``...) for a remote
    ``output_dir``."""
    link: str | None = None
    """An http(s) link to the stored image when the storage is remote: signed (until
    ``link_expires_at``) or under ``public_base_url``. ``None`` for local files, and when the
    filesystem cannot sign and no ``public_base_url`` is set (see ``link_error``)."""
    link_expires_at: dt.datetime | None = None
    """When a signed ``link`` stops working (UTC); ``None`` for public links. Re-sign with
    :meth:`ImageGenerationResult.resign_links`."""
    link_error: str | None = None
    """Why a remote image has no link although its storage signs links."""
    mime_type: str | None = None
    size: str | None = None
    """``WxH`` as the server reported it, else as requested (None for ``auto``)."""
    revised_prompt: str | None = None
    size_bytes: int | None = None
    """Size of the saved file in bytes."""
    sha256: str | None = None
    quality: str | None = None
    """``quality`` as the response reported it, else None (the OpenAI API reference
    lists it in the gpt-image models' response)."""
    background: str | None = None
    """``background`` as the response reported it, else None (the OpenAI API reference
    lists it in the gpt-image models' response)."""
    output_format: str | None = None
    """``output_format`` as the response reported it, else None (the OpenAI API reference
    lists it in the gpt-image models' response)."""
    expires_at: dt.datetime | None = None
    download_error: str | None = None
    """Why the URL image could not be downloaded with ``download_urls=True``; the URL is kept."""
    request_index: int = 0
    """Which of the requests sent produced it (fan-out)."""

    @property
    def handle(self) -> str | None:
        """The id the LLM names this image by (``img_<hash16>``, from its content hash), e.g.
        to edit it; ``None`` for an image that was not saved (its URL stands for it)."""
        return image_handle(self.sha256) if self.sha256 else None

    @property
    def location(self) -> str:
        """Where to fetch the image: its link (remote storage), else its local file, else its
        storage URI, else the server's URL."""
        return self.link or self.path or self.uri or self.url or ""


class AdjustmentRecord(BaseModel):
    """A change coercion made to what was proposed (see :class:`Adjustment`)."""

    field: str
    proposed: Any
    applied: Any
    reason: str

    @classmethod
    def of(cls, adjustment: Adjustment) -> AdjustmentRecord:
        # Copies of the values, as dataclasses.asdict would make, without its generic walk
        # over the dataclass (a proposed list or dict stays the caller's own).
        return cls(
            field=adjustment.field,
            proposed=copy.deepcopy(adjustment.proposed),
            applied=copy.deepcopy(adjustment.applied),
            reason=adjustment.reason,
        )

    def describe(self) -> str:
        """The same line :meth:`Adjustment.describe` writes."""
        return Adjustment(self.field, self.proposed, self.applied, self.reason).describe()


class RequestRecord(BaseModel):
    """One HTTP request sent, and how it went."""

    body: dict[str, Any]
    images: int = 0
    attempts: int = 0
    elapsed_s: float = 0.0
    request_id: str | None = None
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    """What the request cost (an estimate: from ``usage``, else the published price)."""
    error: str | None = None
    """Set when this request failed while others of the same call succeeded."""


class ImageGenerationResult(Serializable):
    """Everything one call produced.

    A langchain-core ``Serializable`` (namespace ``langchain_imagegen``), so
    ``langchain_core.load.dumps`` writes it in full and ``loads`` rebuilds it when allowed
    to (see ``docs/agents.md``). After a LangGraph checkpoint the ToolMessage artifact is a
    plain dict: :meth:`from_artifact` turns it back into this class.
    """

    model: str
    prompt: str
    images: list[GeneratedImage] = Field(default_factory=list)
    images_requested: int = 0
    requests: list[RequestRecord] = Field(default_factory=list)
    adjustments: list[AdjustmentRecord] = Field(default_factory=list)
    usage: dict[str, int] | None = None
    """Tokens, summed over the requests, when the server reports them (gpt-image models)."""
    elapsed_s: float = 0.0
    inputs: list[str] = Field(default_factory=list)
    """An edit's input images, by handle (``img_...``), in the order sent: the images'
    lineage. Empty for a generation."""
    mask: str | None = None
    """An edit's mask, by handle."""
    cost_usd: float | None = None
    """What the call cost in USD, an estimate (OpenAI's invoice is exact): from the returned
    token ``usage``, else the published per-image price (``cost_basis`` says which). ``None``
    when the model has no price (docs/cost.md). 0 for a result from the cache."""
    cost_basis: str | None = None
    estimated_cost_usd: float | None = None
    """The estimate made before sending, when a budget or ``max_cost_per_call`` needed one."""
    cached: bool = False
    """Answered from the tool's cache: an identical earlier request's images, nothing sent."""

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        # The default passes nested models and datetimes on as objects, which dumpd can only
        # write as "not_implemented"; the JSON form of the fields validates back exactly.
        # cast: mypy checks as Python 3.10, where langchain-core's typing.NotRequired keys
        # ("name", "graph") read as required.
        return cast(
            "SerializedConstructor",
            {
                "lc": 1,
                "type": "constructor",
                "id": self.lc_id(),
                "kwargs": self.model_dump(mode="json"),
            },
        )

    @classmethod
    def from_artifact(cls, value: object) -> ImageGenerationResult:
        """The result back from what you hold after a checkpoint, a JSON store or a reload.

        Accepts a result (returned as is); the tool's ``ToolMessage`` (its ``artifact``); the
        artifact as a dict, which is what a LangGraph checkpointer restores; a ToolMessage
        as a dict (``{"type": "tool", "artifact": ...}`` from the LangGraph API, or
        ``messages_to_dict``'s ``{"type": "tool", "data": {...}}``); and the result or its
        ToolMessage as ``langchain_core.load.dumpd`` writes them (LangSmith run outputs).

        Raises:
            TypeError: ``value`` is none of these.
            ValueError: it is one of these but holds no valid result (an error ToolMessage,
                another tool's artifact).
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, ToolMessage):
            return cls._from_message(value.artifact, value.status, value.tool_call_id)
        if isinstance(value, Mapping):
            return cls._from_mapping(value, "the artifact dict")
        raise TypeError(
            f"ImageGenerationResult.from_artifact takes an ImageGenerationResult, the tool's "
            f"ToolMessage or its artifact dict, not {type(value).__name__}."
        )

    @classmethod
    def _from_message(
        cls, artifact: object, status: object, tool_call_id: object
    ) -> ImageGenerationResult:
        where = f"ToolMessage {tool_call_id!r}"
        if artifact is None:
            raise ValueError(
                f"{where} has no artifact (status {status!r}): it is not a successful "
                "image generation, so there is no result to restore."
            )
        if isinstance(artifact, cls):
            return artifact
        if not isinstance(artifact, Mapping):
            raise ValueError(
                f"The artifact of {where} is a {type(artifact).__name__}, not an "
                "image generation result."
            )
        return cls._from_mapping(artifact, f"the artifact of {where}")

    @classmethod
    def _from_mapping(cls, data: Mapping[str, Any], what: str) -> ImageGenerationResult:
        if data.get("type") == "tool":  # a message dict
            fields = data.get("data", data)
            if isinstance(fields, Mapping):
                return cls._from_message(
                    fields.get("artifact"), fields.get("status"), fields.get("tool_call_id")
                )
        if data.get("lc") == 1 and data.get("type") == "constructor":  # dumpd's form
            kind, kwargs = data.get("id"), data.get("kwargs")
            if isinstance(kwargs, Mapping) and kind == cls.lc_id():
                data = _unescaped(kwargs)
            elif (
                isinstance(kwargs, Mapping)
                and isinstance(kind, list)
                and kind[-1:] == ["ToolMessage"]
            ):
                return cls._from_message(
                    kwargs.get("artifact"), kwargs.get("status"), kwargs.get("tool_call_id")
                )
            else:
                raise ValueError(f"{what} is a serialised {kind!r}, not a result.")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
                for error in exc.errors()[:3]
            )
            raise ValueError(f"{what} is not an image generation result ({problems}).") from exc

    @property
    def shortfall(self) -> int:
        """How many fewer images came back than were requested."""
        return max(0, self.images_requested - len(self.images))

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.requests if r.error]

    def to_text(self) -> str:
        """What the LLM reads: every image's location, the size produced, the tokens used,
        revised prompts and every change made. No base64; the same result gives the same
        text."""
        count = len(self.images)
        made = f"{count} image{'s' if count != 1 else ''} with {self.model}"
        if self.inputs:
            masked = f" (mask {self.mask})" if self.mask else ""
            lines = [f"Edited {', '.join(self.inputs)}{masked} into {made}."]
        else:
            lines = [f"Generated {made}."]
        sizes = {image.size for image in self.images}
        one_size = sizes.pop() if len(sizes) == 1 else None
        for number, image in enumerate(self.images, start=1):
            lines.append(_describe(number, image, with_size=one_size is None))
        if one_size:
            lines.append(f"Size: {one_size}.")
        if self.usage:
            lines.append(_tokens_used(self.usage))
        if self.cached:
            lines.append(
                "From the cache: this exact request was answered before; nothing was generated "
                "or charged."
            )
        elif self.cost_usd is not None:
            lines.append(Cost(self.cost_usd, self.cost_basis or "usage").describe())
        if self.shortfall:
            lines.append(
                f"Asked for {self.images_requested} images but received {count}; "
                f"{self.shortfall} missing."
            )
        lines.extend(f"Request failed: {error}" for error in self.errors)
        if self.adjustments:
            lines.append("Adjusted to fit the model:")
            lines.extend(f"- {a.describe()}" for a in self.adjustments)
        return "\n".join(line for line in lines if line)

    def resign_links(
        self, store: LinkSigner | HasStore, *, expires_in: int | None = None
    ) -> ImageGenerationResult:
        """A copy whose remotely stored images carry fresh links.

        ``store`` is the tool that made the result (or one configured with the same
        ``output_dir`` and ``storage_options``, e.g. in another process after a checkpoint
        reload) or its ``store``. ``expires_in`` defaults to the store's
        ``link_expires_in``. Local images and images that were never stored are unchanged.
        After a reload: ``ImageGenerationResult.from_artifact(message).resign_links(tool)``.

        Raises:
            ValueError: an image's ``uri`` is not in that store.
            StorageError: signing failed (the message names the store and the reason).
        """
        signer: LinkSigner = store.store if isinstance(store, HasStore) else store
        images = []
        for image in self.images:
            if image.uri is None or image.path is not None:
                images.append(image)
                continue
            link, expires_at = signer.link(image.uri, expires_in=expires_in)
            update = {"link": link, "link_expires_at": expires_at, "link_error": None}
            images.append(image.model_copy(update=update))
        return self.model_copy(update={"images": images})

    def to_content_blocks(
        self, images: Literal["url", "base64"] = "url"
    ) -> list[TextContentBlock | ImageContentBlock]:
        """:meth:`to_text` as a text block, then one standard image block per image, so a
        vision model can look at what was made.

        ``"url"``: an image the server returned as a URL is sent as that URL (the model's
        provider fetches it; API URLs expire about an hour after creation); a saved image
        without a URL is sent as base64 read from its file. ``"base64"``: every saved image
        is sent as base64 read from its file; an image that was not saved (a URL image
        without ``download_urls``) is sent as its URL. Left out (the text still lists
        them): an image with neither a readable file nor a URL, and a URL image whose
        download failed, since the model's provider would fail to fetch it too and the
        whole model call with it. An image in remote storage with a link is sent as its link
        in both modes (its bytes are not on this machine).
        """
        blocks: list[TextContentBlock | ImageContentBlock] = [create_text_block(self.to_text())]
        for image in self.images:
            block = _image_block(image, images)
            if block is not None:
                blocks.append(block)
        return blocks

    def _repr_html_(self) -> str:
        """Jupyter: the images with their revised prompts and the adjustments, in bounded
        HTML (links for stored images, thumbnails for local files; see
        :mod:`langchain_imagegen.notebook`)."""
        return render_html(self)


def _describe(number: int, image: GeneratedImage, *, with_size: bool) -> str:
    """One numbered entry: where the image is, then what the LLM should know about it."""
    notes = []
    if with_size and image.size:
        notes.append(image.size)
    if image.link_expires_at is not None:
        notes.append(f"link expires {_utc(image.link_expires_at):%Y-%m-%d %H:%M} UTC")
    elif image.uri and image.path is None and image.link is None:
        why = short_note(image.link_error) if image.link_error else _NO_LINK
        notes.append(f"storage URI, no http link: {why}")
    if image.path is None and image.uri is None and image.url:
        if image.download_error:
            notes.append(f"download failed: {short_note(image.download_error)}")
        if image.expires_at is not None:
            notes.append(f"URL expires {_utc(image.expires_at):%Y-%m-%d %H:%M} UTC")
    handle = image.handle
    line = f"{number}. {handle}: {image.location}" if handle else f"{number}. {image.location}"
    if notes:
        line += f" ({'; '.join(notes)})"
    if image.revised_prompt:
        line += f"\n   revised prompt: {image.revised_prompt}"
    return line


_NO_LINK = "the storage cannot sign links and no public_base_url is set"


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc) if moment.tzinfo is not None else moment


def _tokens_used(usage: Mapping[str, int]) -> str:
    parts = [
        f"{usage[key]} {label}"
        for key, label in (("input_tokens", "input"), ("output_tokens", "output"))
        if key in usage
    ]
    total = usage.get("total_tokens")
    if total is None:
        return f"Tokens used: {', '.join(parts)}." if parts else ""
    return f"Tokens used: {total}" + (f" ({', '.join(parts)})" if parts else "") + "."


_ESCAPED = "__lc_escaped__"
"""langchain_core.load.dumpd wraps user dicts that hold an ``"lc"`` key as
``{"__lc_escaped__": {...}}`` (see the ``langchain_core.load`` module docs)."""


def _unescaped(value: Any) -> Any:
    if isinstance(value, Mapping):
        if len(value) == 1 and _ESCAPED in value:
            return value[_ESCAPED]
        return {key: _unescaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unescaped(item) for item in value]
    return value


def _image_block(
    image: GeneratedImage, prefer: Literal["url", "base64"]
) -> ImageContentBlock | None:
    if image.link:  # remote storage: the link outlives the server's URL, bytes are not here
        return create_image_block(url=image.link)
    if image.download_error and not image.path:
        return None
    if image.url and (prefer == "url" or not image.path):
        return create_image_block(url=image.url)
    if image.path:
        try:
            data = Path(image.path).read_bytes()
        except OSError:
            data = None
        if data is not None:
            return create_image_block(
                base64=base64.b64encode(data).decode(), mime_type=image.mime_type or "image/png"
            )
    return create_image_block(url=image.url) if image.url else None

"""The structured result of one tool call: the ToolMessage artifact.

Plain pydantic models, so the artifact serialises to JSON (agent state, checkpoints,
LangSmith) and renders itself in a notebook. No base64 is ever kept here: images are
files on disk or URLs.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import ImageContentBlock, TextContentBlock
from langchain_core.messages.content import create_image_block, create_text_block
from pydantic import BaseModel, Field

from langchain_imagegen.coercion import Adjustment

__all__ = ["AdjustmentRecord", "GeneratedImage", "ImageGenerationResult", "RequestRecord"]


class GeneratedImage(BaseModel):
    """One image: where it is, what it is, and the prompt the model actually used."""

    url: str | None = None
    """Remote location, as returned by the server (may expire, see ``expires_at``)."""
    path: str | None = None
    """Absolute path of the saved file, when the image was saved."""
    mime_type: str | None = None
    size: str | None = None
    """``WxH`` as requested or as reported by the server."""
    revised_prompt: str | None = None
    size_bytes: int | None = None
    """Size of the saved file in bytes."""
    sha256: str | None = None
    quality: str | None = None
    """``quality`` as the response reported it (gpt-image models), else None."""
    background: str | None = None
    """``background`` as the response reported it (gpt-image models), else None."""
    output_format: str | None = None
    """``output_format`` as the response reported it (gpt-image models), else None."""
    expires_at: dt.datetime | None = None
    download_error: str | None = None
    """Why the URL image could not be downloaded with ``download_urls=True``; the URL is kept."""
    request_index: int = 0
    """Which of the requests sent produced it (fan-out)."""

    @property
    def location(self) -> str:
        """The file path when saved, else the URL."""
        return self.path or self.url or ""


class AdjustmentRecord(BaseModel):
    """A change coercion made to what was proposed (see :class:`Adjustment`)."""

    field: str
    proposed: Any
    applied: Any
    reason: str

    @classmethod
    def of(cls, adjustment: Adjustment) -> AdjustmentRecord:
        return cls(**dataclasses.asdict(adjustment))

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
    error: str | None = None
    """Set when this request failed while others of the same call succeeded."""


class ImageGenerationResult(BaseModel):
    """Everything one call produced."""

    model: str
    prompt: str
    images: list[GeneratedImage] = Field(default_factory=list)
    images_requested: int = 0
    requests: list[RequestRecord] = Field(default_factory=list)
    adjustments: list[AdjustmentRecord] = Field(default_factory=list)
    usage: dict[str, int] | None = None
    elapsed_s: float = 0.0

    @property
    def shortfall(self) -> int:
        """How many fewer images came back than were requested."""
        return max(0, self.images_requested - len(self.images))

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.requests if r.error]

    def to_text(self) -> str:
        """What the LLM reads: every image's location, revised prompts, every change made."""
        count = len(self.images)
        lines = [f"Generated {count} image{'s' if count != 1 else ''} with {self.model}."]
        for number, image in enumerate(self.images, start=1):
            line = f"{number}. {image.location}"
            if image.path is None and image.expires_at is not None:
                line += f" (URL expires {image.expires_at:%Y-%m-%d %H:%M} UTC)"
            if image.revised_prompt:
                line += f"\n   revised prompt: {image.revised_prompt}"
            lines.append(line)
        if self.shortfall:
            lines.append(
                f"Asked for {self.images_requested} images but received {count}; "
                f"{self.shortfall} missing."
            )
        lines.extend(f"Request failed: {error}" for error in self.errors)
        if self.adjustments:
            lines.append("Adjusted to fit the model:")
            lines.extend(f"- {a.describe()}" for a in self.adjustments)
        return "\n".join(lines)

    def to_content_blocks(
        self, images: Literal["url", "base64"] = "url"
    ) -> list[TextContentBlock | ImageContentBlock]:
        """:meth:`to_text` as a text block, then one standard image block per image, so a
        vision model can look at what was made.

        ``"url"``: an image the server returned as a URL is sent as that URL (the model's
        provider fetches it; API URLs expire about an hour after creation); a saved image
        without a URL is sent as base64 read from its file. ``"base64"``: every saved image
        is sent as base64 read from its file; an image that was not saved (a URL image
        without ``download_urls``) is sent as its URL. An image with neither a readable file
        nor a URL is left out (the text still lists it).
        """
        blocks: list[TextContentBlock | ImageContentBlock] = [create_text_block(self.to_text())]
        for image in self.images:
            block = _image_block(image, images)
            if block is not None:
                blocks.append(block)
        return blocks

    def _repr_html_(self) -> str:
        """Jupyter: the images inline with their revised prompts and the adjustments.

        Saved files are embedded as data URIs (read only when displayed): a notebook's
        browser cannot load ``file://`` paths, and the file may lie outside its root.
        """
        figures = []
        for image in self.images:
            source = _data_uri(image) if image.path else image.url
            if not source:
                continue
            caption = html.escape(image.revised_prompt or image.location)
            figures.append(
                f'<figure style="display:inline-block;margin:4px;max-width:45%">'
                f'<img src="{html.escape(source)}" style="max-width:100%" alt="{caption}"/>'
                f"<figcaption><small>{caption}</small></figcaption></figure>"
            )
        notes = "".join(f"<li>{html.escape(a.describe())}</li>" for a in self.adjustments)
        return (
            f"<div><p><b>{html.escape(self.model)}</b>: {html.escape(self.prompt)}</p>"
            f"{''.join(figures)}{f'<ul>{notes}</ul>' if notes else ''}</div>"
        )


def _image_block(
    image: GeneratedImage, prefer: Literal["url", "base64"]
) -> ImageContentBlock | None:
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


def _data_uri(image: GeneratedImage) -> str | None:
    try:
        data = Path(image.path or "").read_bytes()
    except OSError:
        return None
    return f"data:{image.mime_type or 'image/png'};base64,{base64.b64encode(data).decode()}"

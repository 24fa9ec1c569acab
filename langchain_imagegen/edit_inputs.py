"""Input images and mask made acceptable to one model's ``POST /v1/images/edits``.

:func:`prepare_edit_inputs` checks the resolved images (:class:`~langchain_imagegen.handles.
InputImage`) and the optional mask against the model's edit rule (``max_images``,
``image_formats``, ``max_image_bytes``, ``square``, ``max_mask_bytes``: docs/models.md#edits)
and says what it did in ``notes`` for the LLM. A format the model does not take is converted
with Pillow when it is installed (the optional ``pillow`` extra, imported only then);
everything else that does not fit is refused with an
:class:`~langchain_imagegen.errors.InvalidArgumentError` saying what to change. Nothing is
resized or cropped silently: that would change what the edit means. Dimensions and
transparency are read from the headers, so inputs that need nothing never import Pillow.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.handles import InputImage
from langchain_imagegen.storage.images import format_name, image_size, png_has_alpha

__all__ = ["EditRuleLike", "PreparedInputs", "prepare_edit_inputs"]

_PILLOW_HINT = "pip install 'langchain-imagegen[pillow]'"

# The formats edit rules name, by MIME type (the rules say "jpeg", the stores "jpg").
_RULE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/svg+xml": "svg",
}
_MIME_TYPES = {name: mime for mime, name in _RULE_FORMATS.items()}
_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
"""Formats this module converts to (Pillow's names): the Images API's input formats."""


class EditRuleLike(Protocol):
    """What :func:`prepare_edit_inputs` reads of a model's edit rule
    (:class:`~langchain_imagegen.registry.EditRule` has it)."""

    @property
    def max_images(self) -> int: ...

    @property
    def image_formats(self) -> tuple[str, ...]: ...

    @property
    def max_image_bytes(self) -> int: ...

    @property
    def square(self) -> bool: ...

    @property
    def max_mask_bytes(self) -> int: ...


@dataclass(frozen=True)
class PreparedInputs:
    """The images and mask to send, and what was done to them (for the LLM), e.g.
    ``"image 1 (img_...) converted from JPEG to PNG: the model takes PNG"``."""

    images: tuple[InputImage, ...]
    mask: InputImage | None
    notes: tuple[str, ...]


class _PillowMissingError(Exception):
    """Pillow is not installed."""


def _format_of(image: InputImage) -> str:
    return _RULE_FORMATS.get(image.mime_type) or image.filename.rsplit(".", 1)[-1]


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _formats(names: Sequence[str]) -> str:
    shown = [format_name(_MIME_TYPES.get(name, f"image/{name}")) for name in names]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _convert(image: InputImage, target: str) -> InputImage:
    """``image`` re-encoded as ``target`` (``png``/``jpeg``/``webp``) with Pillow: losslessly
    where the format allows, transparency kept except in JPEG (which has none).

    Raises:
        _PillowMissingError: Pillow is not installed.
        ValueError: Pillow could not read or write the image (the message says why).
    """
    try:
        from PIL import Image
    except ImportError:
        raise _PillowMissingError from None
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            opened.load()
            picture: Image.Image = opened
            transparent = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
            if target == "jpeg":
                picture = picture.convert("RGB")
            elif picture.mode not in ("RGB", "RGBA", "L", "LA"):
                picture = picture.convert("RGBA" if transparent else "RGB")
            out = io.BytesIO()
            if target == "png":
                picture.save(out, format="PNG", optimize=True)
            elif target == "webp":
                picture.save(out, format="WEBP", lossless=True)
            else:
                picture.save(out, format="JPEG", quality=95)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for unreadable input
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return InputImage.from_bytes(out.getvalue(), image.ref)


def _label(index: int | None, image: InputImage) -> str:
    what = "the mask" if index is None else f"image {index}"
    return f"{what} ({image.handle})"


def _converted(
    image: InputImage, label: str, target: str, notes: list[str], *, why: str
) -> InputImage:
    """``image`` converted to ``target``, noted; refused when Pillow is missing or fails."""
    try:
        converted = _convert(image, target)
    except _PillowMissingError:
        raise InvalidArgumentError(
            f"{label} is {image.format}, but {why}; give a {_formats([target])} image instead "
            f"(this tool converts images only with Pillow installed: {_PILLOW_HINT})"
        ) from None
    except ValueError as exc:
        raise InvalidArgumentError(
            f"{label} is {image.format}, but {why}, and it could not be converted ({exc}); "
            f"give a {_formats([target])} image instead"
        ) from None
    notes.append(
        f"{label} converted from {image.format} to {converted.format}: {why} "
        f"(the converted image is {converted.handle})"
    )
    return converted


def _prepared_image(
    rule: EditRuleLike, index: int, image: InputImage, notes: list[str]
) -> InputImage:
    label = _label(index, image)
    if _format_of(image) not in rule.image_formats:
        target = "png" if "png" in rule.image_formats else rule.image_formats[0]
        if target not in _PILLOW_FORMATS:
            raise InvalidArgumentError(
                f"{label} is {image.format}; the model takes {_formats(rule.image_formats)}"
            )
        why = f"the model takes {_formats(rule.image_formats)}"
        image = _converted(image, label, target, notes, why=why)
    if len(image.data) > rule.max_image_bytes:
        raise InvalidArgumentError(
            f"{label} is {_mb(len(image.data))}, over the model's {_mb(rule.max_image_bytes)} "
            "limit for an input image; use a smaller or more compressed image"
        )
    if rule.square:
        size = image_size(image.data)
        if size is None:
            raise InvalidArgumentError(
                f"{label}: its dimensions could not be read, and the model needs a square image"
            )
        if size[0] != size[1]:
            raise InvalidArgumentError(
                f"{label} is {size[0]}x{size[1]}, but the model edits only square images; "
                "use a GPT image model, or crop the image to a square"
            )
    return image


def _prepared_mask(
    rule: EditRuleLike, mask: InputImage, first: InputImage, notes: list[str]
) -> InputImage:
    label = _label(None, mask)
    if mask.mime_type != "image/png":
        mask = _converted(mask, label, "png", notes, why="a mask must be a PNG")
    if len(mask.data) > rule.max_mask_bytes:
        raise InvalidArgumentError(
            f"{label} is {_mb(len(mask.data))}, over the {_mb(rule.max_mask_bytes)} limit for "
            "a mask; use a smaller PNG"
        )
    mask_size, image_size_ = image_size(mask.data), image_size(first.data)
    if mask_size is None or image_size_ is None or mask_size != image_size_:
        said_mask = f"{mask_size[0]}x{mask_size[1]}" if mask_size else "of unreadable size"
        said_image = f"{image_size_[0]}x{image_size_[1]}" if image_size_ else "of unreadable size"
        raise InvalidArgumentError(
            f"{label} is {said_mask} but the first image is {said_image}; the mask must have "
            "the first image's dimensions (it is never resized: that would move the edit)"
        )
    if not png_has_alpha(mask.data):
        raise InvalidArgumentError(
            f"{label} has no transparency (no alpha channel); a mask must be a PNG with an "
            "alpha channel, its fully transparent areas marking where to edit"
        )
    return mask


def prepare_edit_inputs(
    rule: EditRuleLike, images: Sequence[InputImage], mask: InputImage | None
) -> PreparedInputs:
    """``images`` and ``mask`` as ``rule``'s model takes them, or a refusal saying why.

    Images in a format the model does not take are converted (PNG when the model takes it,
    else its first format) with Pillow when installed; the mask is converted to PNG likewise.
    Images that fit are returned as they are (the same objects), and Pillow is not imported.

    Raises:
        InvalidArgumentError: no image or too many; an image too large, in a format that
            cannot be converted (no Pillow, or Pillow cannot read it) or not square when the
            model needs a square; a mask too large, of other dimensions than the first image
            or without transparency.
    """
    if not images:
        raise InvalidArgumentError("give at least one image to edit")
    if len(images) > rule.max_images:
        raise InvalidArgumentError(
            f"{len(images)} images were given, but the model edits at most {rule.max_images} "
            f"at once"
        )
    notes: list[str] = []
    prepared = tuple(
        _prepared_image(rule, index, image, notes) for index, image in enumerate(images, 1)
    )
    prepared_mask = _prepared_mask(rule, mask, prepared[0], notes) if mask is not None else None
    return PreparedInputs(prepared, prepared_mask, tuple(notes))

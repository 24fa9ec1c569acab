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

from langchain_imagegen.coercion import Adjustment
from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.handles import InputImage
from langchain_imagegen.registry import EditRule
from langchain_imagegen.storage.images import format_name, image_size, png_has_alpha

__all__ = ["PreparedInputs", "prepare_edit_inputs"]

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


@dataclass(frozen=True)
class PreparedInputs:
    """The images and mask to send, and what was done to them (for the LLM): one
    :class:`Adjustment` per converted input, from its handle to the converted image's, e.g.
    ``images: 'img_a…' → 'img_b…' (image 1 converted from JPEG to PNG: the model takes PNG)``.
    ``converted`` are those new images (the caller stores them, so their handles resolve)."""

    images: tuple[InputImage, ...]
    mask: InputImage | None
    changes: tuple[Adjustment, ...]

    @property
    def converted(self) -> tuple[InputImage, ...]:
        made = {change.applied for change in self.changes if isinstance(change.applied, str)}
        inputs = (*self.images, *(() if self.mask is None else (self.mask,)))
        return tuple(image for image in inputs if image.handle in made)


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
    image: InputImage, label: str, target: str, changes: list[Adjustment], *, why: str
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
    field, what = ("mask", "the mask") if label.startswith("the mask") else ("images", label)
    what = what.split(" (", 1)[0]
    reason = f"{what} converted from {image.format} to {converted.format}: {why}"
    changes.append(Adjustment(field, image.handle, converted.handle, reason))
    return converted


def _prepared_image(
    rule: EditRule, index: int, image: InputImage, changes: list[Adjustment]
) -> InputImage:
    label = _label(index, image)
    if _format_of(image) not in rule.image_formats:
        target = "png" if "png" in rule.image_formats else rule.image_formats[0]
        if target not in _PILLOW_FORMATS:
            raise InvalidArgumentError(
                f"{label} is {image.format}; the model takes {_formats(rule.image_formats)}"
            )
        why = f"the model takes {_formats(rule.image_formats)}"
        image = _converted(image, label, target, changes, why=why)
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
    rule: EditRule, mask: InputImage, first: InputImage, changes: list[Adjustment]
) -> InputImage:
    label = _label(None, mask)
    if mask.mime_type != "image/png":
        mask = _converted(mask, label, "png", changes, why="a mask must be a PNG")
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
    rule: EditRule, images: Sequence[InputImage], mask: InputImage | None
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
    changes: list[Adjustment] = []
    distinct = list({image.sha256: image for image in reversed(images)}.values())[::-1]
    if len(distinct) < len(images):
        # Different references (a handle, a path, a link) to the same bytes: sent once.
        given, sent = [image.ref for image in images], [image.handle for image in distinct]
        reason = "the same image was given more than once; it is sent once"
        changes.append(Adjustment("images", given, sent, reason))
        images = distinct
    if len(images) > rule.max_images:
        raise InvalidArgumentError(
            f"{len(images)} images were given, but the model edits at most {rule.max_images} "
            f"at once"
        )
    prepared = tuple(
        _prepared_image(rule, index, image, changes) for index, image in enumerate(images, 1)
    )
    if mask is None and rule.transparent_without_mask:
        for index, image in enumerate(prepared, 1):
            if not png_has_alpha(image.data):
                raise InvalidArgumentError(
                    f"{_label(index, image)} has no transparency, and without a mask the "
                    "model edits only an image's transparent areas; give a mask (a PNG whose "
                    "transparent areas mark where to edit) or an image with transparent areas"
                )
    prepared_mask = _prepared_mask(rule, mask, prepared[0], changes) if mask is not None else None
    return PreparedInputs(prepared, prepared_mask, tuple(changes))

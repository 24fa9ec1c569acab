"""The args schema an LLM sees, derived per model from its registry profile.

Exact in what it advertises (enums for fixed sets, a pattern and the rules for gpt-image-2
sizes, only the fields the model has), lenient in what it accepts: every optional field
validates any value so that synonyms ("1920x1080", "high", "photographic") reach coercion,
which fixes them and reports the change. Only null defaults, so the schema passes OpenAI
strict mode (https://platform.openai.com/docs/guides/function-calling, "Strict mode": every
property required, optional ones nullable).

The fields offered are exactly :meth:`ImageModelProfile.llm_fields`, the list coercion also
reads to drop whatever else an LLM proposes; for edits (:func:`build_edit_args_schema`),
:meth:`ImageModelProfile.edit_llm_fields`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import lru_cache, partial
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.registry import LLM_FIELDS, ImageModelProfile

__all__ = ["LLM_FIELDS", "build_args_schema", "build_edit_args_schema"]


def _nullable(schema: dict[str, Any]) -> Any:
    """An optional field that accepts anything and advertises ``schema`` or null."""
    return Annotated[Any, WithJsonSchema({"anyOf": [schema, {"type": "null"}]})]


def _enum(values: tuple[str, ...]) -> Any:
    return _nullable({"type": "string", "enum": list(values)})


_FieldDefinition = tuple[Any, Any]  # (annotation, pydantic FieldInfo)


def _prompt(
    profile: ImageModelProfile,
    max_images: int,
    asks: str = "What the image should show, in detail (subject, setting, style, composition).",
) -> _FieldDefinition:
    return str, Field(description=f"{asks} At most {profile.max_prompt_chars} characters.")


def _images(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    edits = profile.edits
    assert edits is not None  # edit_llm_fields() is empty without edits
    formats = edits.image_formats
    listed = f"{', '.join(formats[:-1])} or {formats[-1]}" if len(formats) > 1 else formats[0]
    kind = f"{'square ' if edits.square else ''}{listed}"
    if edits.max_images == 1:
        description = (
            "The image to edit, as a one-item list: the handle of an earlier image (img_...) "
            f"or its link. {profile.name} edits one {kind} image."
        )
    else:
        description = (
            "The images to edit or combine: handles of earlier images (img_...) or their "
            f"links; up to {edits.max_images} ({kind}). A mask applies to the first."
        )
    annotation = Annotated[Any, WithJsonSchema({"type": "array", "items": {"type": "string"}})]
    return annotation, Field(description=description)


def _mask(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    return (
        _nullable({"type": "string"}),
        Field(
            default=None,
            description=(
                "Handle or link of a PNG whose transparent areas mark where to edit; same size "
                "as the first image. Without one, the prompt says what to change."
            ),
        ),
    )


def _input_fidelity(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    fidelities = profile.edits.input_fidelities if profile.edits else ()
    return (
        _enum(fidelities),
        Field(
            default=None,
            description=(
                "How closely the result keeps the input images' features, faces especially. "
                "Default low."
            ),
        ),
    )


def _size(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    if profile.size_rule is not None:
        extra = ", or one of " + ", ".join(profile.sizes) if profile.sizes else ""
        description = (
            f"Image size as WIDTHxHEIGHT: {profile.size_rule.describe()}{extra}. "
            "Other sizes are snapped to the nearest valid one."
        )
        annotation = _nullable({"type": "string", "pattern": r"^(auto|\d+x\d+)$"})
    else:
        description = f"Image size, one of: {', '.join(profile.sizes)}."
        if profile.default_size:
            description += f" Default {profile.default_size}."
        if profile.permissive:
            annotation = _nullable({"type": "string"})
            description += " Other WIDTHxHEIGHT may work."
        else:
            annotation = _enum(profile.sizes)
    return annotation, Field(default=None, description=description)


def _n(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    per_request = profile.max_images_per_request
    split = (
        f" {profile.name} makes {per_request} per request; more are requested in parallel."
        if per_request < max_images
        else ""
    )
    return (
        _nullable({"type": "integer"}),
        Field(default=None, description=f"How many images, 1 to {max_images} (default 1).{split}"),
    )


def _quality(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    default = f" Default {profile.default_quality}." if profile.default_quality else ""
    return (
        _enum(profile.qualities),
        Field(default=None, description=f"Rendering quality.{default}"),
    )


def _style(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    return (
        _enum(profile.styles),
        Field(
            default=None,
            description="vivid: hyper-real and dramatic; natural: more natural, less hyper-real.",
        ),
    )


def _background(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    return (
        _enum(profile.backgrounds),
        Field(default=None, description="transparent needs png or webp output."),
    )


def _output_format(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    return (
        _enum(profile.output_formats),
        # The first format a profile lists is the one the model makes by default.
        Field(default=None, description=f"Image file format. Default {profile.output_formats[0]}."),
    )


# One builder per name in LLM_FIELDS; the profile decides which of them it offers.
_BUILDERS: dict[str, Callable[[ImageModelProfile, int], _FieldDefinition]] = {
    "prompt": _prompt,
    "size": _size,
    "n": _n,
    "quality": _quality,
    "style": _style,
    "background": _background,
    "output_format": _output_format,
}


# Edits: the same builders, with the images, the mask and input_fidelity (EDIT_LLM_FIELDS).
_EDIT_BUILDERS: dict[str, Callable[[ImageModelProfile, int], _FieldDefinition]] = {
    **_BUILDERS,
    "prompt": partial(
        _prompt,
        asks="The image you want, in detail: what to change, add or combine, and what to keep.",
    ),
    "images": _images,
    "mask": _mask,
    "input_fidelity": _input_fidelity,
}


@lru_cache(maxsize=256)
def _cached_schema(
    profile: ImageModelProfile, max_images: int, hidden: frozenset[str], *, edits: bool = False
) -> type[BaseModel]:
    """The args schema: the fields in the order the LLM should read them, but ``hidden``."""
    builders, names = (
        (_EDIT_BUILDERS, profile.edit_llm_fields()) if edits else (_BUILDERS, profile.llm_fields())
    )
    fields: dict[str, Any] = {
        name: builders[name](profile, max_images) for name in names if name not in hidden
    }
    return create_model(
        "ImageEditInput" if edits else "ImageGenerationInput",
        __config__=ConfigDict(
            # Unknown keys reach coercion, which drops and reports them instead of failing.
            extra="allow",
            json_schema_extra=_no_additional_properties,
        ),
        __doc__=f"Arguments for {'editing' if edits else 'generating'} images with {profile.name}.",
        **fields,
    )


def _no_additional_properties(schema: dict[str, Any]) -> None:
    """Advertise only the real fields even though extra keys are tolerated."""
    schema["additionalProperties"] = False


def build_args_schema(
    profile: ImageModelProfile, *, max_images: int | None = None, hidden: Collection[str] = ()
) -> type[BaseModel]:
    """The pydantic args schema for ``profile``.

    ``max_images`` is the most images one call may produce (default: the profile's);
    ``hidden`` names fields the developer fixed, which the LLM then does not see.
    """
    limit = profile.max_images if max_images is None else max_images
    return _cached_schema(profile, limit, frozenset(hidden) - {"prompt"})


def build_edit_args_schema(
    profile: ImageModelProfile, *, max_images: int | None = None, hidden: Collection[str] = ()
) -> type[BaseModel]:
    """The pydantic args schema for editing with ``profile`` (``POST /v1/images/edits``):
    :meth:`ImageModelProfile.edit_llm_fields`, ``prompt`` and ``images`` required; options as
    in :func:`build_args_schema` (``prompt`` and ``images`` cannot be hidden).

    Raises:
        InvalidArgumentError: the model cannot edit (the message names those that can).
    """
    if (why := profile.cannot_edit()) is not None:
        raise InvalidArgumentError(why)
    limit = profile.max_images if max_images is None else max_images
    return _cached_schema(profile, limit, frozenset(hidden) - {"prompt", "images"}, edits=True)

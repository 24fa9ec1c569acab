"""The args schema an LLM sees, derived per model from its registry profile.

Exact in what it advertises (enums for fixed sets, a pattern and the rules for gpt-image-2
sizes, only the fields the model has), lenient in what it accepts: every optional field
validates any value so that synonyms ("1920x1080", "high", "photographic") reach coercion,
which fixes them and reports the change. Only null defaults, so the schema passes OpenAI
strict mode (https://platform.openai.com/docs/guides/function-calling, "Strict mode": every
property required, optional ones nullable).

The fields offered are exactly :meth:`ImageModelProfile.llm_fields`, the list coercion also
reads to drop whatever else an LLM proposes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from langchain_imagegen.registry import LLM_FIELDS, ImageModelProfile

__all__ = ["LLM_FIELDS", "build_args_schema"]


def _nullable(schema: dict[str, Any]) -> Any:
    """An optional field that accepts anything and advertises ``schema`` or null."""
    return Annotated[Any, WithJsonSchema({"anyOf": [schema, {"type": "null"}]})]


def _enum(values: tuple[str, ...]) -> Any:
    return _nullable({"type": "string", "enum": list(values)})


_FieldDefinition = tuple[Any, Any]  # (annotation, pydantic FieldInfo)


def _prompt(profile: ImageModelProfile, max_images: int) -> _FieldDefinition:
    return (
        str,
        Field(
            description=(
                "What the image should show, in detail (subject, setting, style, "
                f"composition). At most {profile.max_prompt_chars} characters."
            )
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
        Field(default=None, description="Image file format. Default png."),
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


def _fields(profile: ImageModelProfile, max_images: int) -> dict[str, Any]:
    """Field definitions in the order the LLM should read them."""
    return {name: _BUILDERS[name](profile, max_images) for name in profile.llm_fields()}


@lru_cache(maxsize=256)
def _cached_schema(
    profile: ImageModelProfile, max_images: int, hidden: frozenset[str]
) -> type[BaseModel]:
    fields = {k: v for k, v in _fields(profile, max_images).items() if k not in hidden}
    return create_model(
        "ImageGenerationInput",
        __config__=ConfigDict(
            # Unknown keys reach coercion, which drops and reports them instead of failing.
            extra="allow",
            json_schema_extra=_no_additional_properties,
        ),
        __doc__=f"Arguments for generating images with {profile.name}.",
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

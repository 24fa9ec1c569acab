"""The args schema an LLM sees, derived per model from its registry profile.

Exact in what it advertises (enums for fixed sets, a pattern and the rules for gpt-image-2
sizes, only the fields the model has), lenient in what it accepts: every optional field
validates any value so that synonyms ("1920x1080", "high", "photographic") reach coercion,
which fixes them and reports the change. Only null defaults, so the schema passes OpenAI
strict mode (langchain-conventions §2.6).
"""

from __future__ import annotations

import inspect
from collections.abc import Collection
from functools import lru_cache
from typing import Annotated, Any, get_origin

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model

from langchain_imagegen.registry import ImageModelProfile

__all__ = ["LLM_FIELDS", "build_args_schema"]

# What the LLM may choose. Everything else (response_format, output_compression,
# moderation, user) is the developer's business: fixed on the tool, not asked of the LLM.
LLM_FIELDS = ("prompt", "size", "n", "quality", "style", "background", "output_format")


def _nullable(schema: dict[str, Any]) -> Any:
    """An optional field that accepts anything and advertises ``schema`` or null."""
    return Annotated[Any, WithJsonSchema({"anyOf": [schema, {"type": "null"}]})]


def _enum(values: tuple[str, ...]) -> Any:
    return _nullable({"type": "string", "enum": list(values)})


def _size_field(profile: ImageModelProfile) -> tuple[Any, str] | None:
    if profile.size_rule is not None:
        extra = ", or one of " + ", ".join(profile.sizes) if profile.sizes else ""
        description = (
            f"Image size as WIDTHxHEIGHT: {profile.size_rule.describe()}{extra}. "
            "Other sizes are snapped to the nearest valid one."
        )
        return _nullable({"type": "string", "pattern": r"^(auto|\d+x\d+)$"}), description
    if not profile.sizes:
        return None
    description = f"Image size, one of: {', '.join(profile.sizes)}."
    if profile.default_size:
        description += f" Default {profile.default_size}."
    if profile.permissive:
        return _nullable({"type": "string"}), description + " Other WIDTHxHEIGHT may work."
    return _enum(profile.sizes), description


def _fields(profile: ImageModelProfile, max_images: int) -> dict[str, Any]:
    """Field definitions in the order the LLM should read them."""
    fields: dict[str, Any] = {
        "prompt": (
            str,
            Field(
                description=(
                    "What the image should show, in detail (subject, setting, style, "
                    f"composition). At most {profile.max_prompt_chars} characters."
                )
            ),
        )
    }
    size = _size_field(profile)
    if size is not None:
        fields["size"] = (size[0], Field(default=None, description=size[1]))
    per_request = profile.max_images_per_request
    split = (
        f" {profile.name} makes {per_request} per request; more are requested in parallel."
        if per_request < max_images
        else ""
    )
    fields["n"] = (
        _nullable({"type": "integer"}),
        Field(default=None, description=f"How many images, 1 to {max_images} (default 1).{split}"),
    )
    if profile.qualities:
        default = f" Default {profile.default_quality}." if profile.default_quality else ""
        fields["quality"] = (
            _enum(profile.qualities),
            Field(default=None, description=f"Rendering quality.{default}"),
        )
    if profile.styles:
        fields["style"] = (
            _enum(profile.styles),
            Field(
                default=None,
                description="vivid: hyper-real and dramatic; natural: more natural, less "
                "hyper-real.",
            ),
        )
    if profile.backgrounds:
        fields["background"] = (
            _enum(profile.backgrounds),
            Field(default=None, description="transparent needs png or webp output."),
        )
    if profile.output_formats:
        fields["output_format"] = (
            _enum(profile.output_formats),
            Field(default=None, description="Image file format. Default png."),
        )
    return fields


@lru_cache(maxsize=256)
def _cached_schema(
    profile: ImageModelProfile, max_images: int, hidden: frozenset[str]
) -> type[BaseModel]:
    fields = {k: v for k, v in _fields(profile, max_images).items() if k not in hidden}
    model = create_model(
        "ImageGenerationInput",
        __config__=ConfigDict(
            # Unknown keys reach coercion, which drops and reports them instead of failing.
            extra="allow",
            json_schema_extra=_no_additional_properties,
        ),
        __doc__=f"Arguments for generating images with {profile.name}.",
        **fields,
    )
    # BaseTool reads the args schema's signature twice per call (looking for injected
    # arguments) and takes every Annotated[Any, WithJsonSchema(...)] apart again, ~7 us a
    # field. The advertised schema lives in the fields' metadata (kept, and copied into
    # tool_call_schema); the signature only has to say what is accepted: Any.
    signature = inspect.signature(model)
    model.__signature__ = signature.replace(
        parameters=[
            p.replace(annotation=Any) if get_origin(p.annotation) is Annotated else p
            for p in signature.parameters.values()
        ]
    )
    return model


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

"""Independent per-model validator for ``POST /v1/images/generations`` request bodies.

Written from OpenAI's API reference (the OpenAPI request schema at openai-openapi commit
f85dbe22, vendored in ``tests/data/openapi``), the recorded exchanges in ``tests/data/recorded``
and the per-model facts listed with their public sources in ``docs/models.md``, never from
package code, so that the package's own coercion tables can be checked against it. It imports
nothing from the package, and ``tests/unit_tests/test_spec_validator_openapi.py`` checks its
rules against the OpenAPI excerpt itself. Every rule cites where it comes from:

* ``[spec]``: the OpenAPI ``CreateImageRequest`` schema (types, enums, limits, descriptions);
* ``[models]``: a per-model rule in ``docs/models.md`` (the reference's prose, OpenAI's
  deprecations page, Azure's docs);
* ``[recorded]``: a real exchange in ``tests/data/recorded`` (verbatim error bodies);
* ``[open]``: a question no public source settles (``docs/models.md#open-questions``).

Where a verbatim error body is on record it is reproduced exactly; where none is, the body
follows OpenAI's usual ``invalid_request_error`` pattern and is marked ``UNVERIFIED`` in a
comment.

When the sources leave a behaviour open, the validator is deliberately *stricter* than the
real API is known to be: a false rejection only makes the package drop a parameter that might
have worked, a false acceptance lets a request through that the real service may refuse.

Decisions on open points (also listed in ``DECISIONS``):

* A missing or ``null`` ``model`` resolves to ``dall-e-2`` (spec default), even when a
  GPT-image-only parameter is present (the spec's "unless ..." clause is not modelled).
* An explicit ``null`` for a nullable optional field counts as "not sent" [spec]. ``user`` is the
  one optional field the spec does not mark nullable, so ``user: null`` is an ``invalid_type``;
  ``prompt: null`` likewise (required, not nullable).
* Integers must be JSON integers: ``true``/``false`` and decimals such as ``1.0`` are
  ``invalid_type``.
* A parameter valid only for another model family is answered with ``unknown_parameter``, the
  code the live API uses for ``quality`` on dall-e-2 and ``response_format`` on GPT image
  [recorded].
* ``output_compression`` with ``png`` output (explicit or default) is accepted only at its
  default value 100; anything lower is ``invalid_value`` ([spec]: "with the webp or jpeg
  output formats").
* ``partial_images`` above 0 without ``stream: true`` is ``invalid_value`` ([spec]: "used for
  streaming responses").
* ``size: "auto"`` is rejected for dall-e-2/3: [spec] lists only concrete sizes for them.
* ``quality: "auto"`` is rejected for dall-e-3: [spec] lists ``standard``/``hd`` only.
* gpt-image-2's "maximum supported resolution is 3840x2160" bounds both edges: long edge at
  most 3840 and short edge at most 2160 (2880x2880 is rejected).
* Snapshots: ``gpt-image-2-YYYY-MM-DD`` and ``gpt-image-1[.5|-mini]-YYYY-MM-DD`` with a real
  calendar date are accepted as their family; post-spec models (gpt-image-2.5/2.6, [models]) are
  unknown (404).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "DECISIONS",
    "GPT_IMAGE_2_MAX_EDGE",
    "GPT_IMAGE_2_MAX_PIXELS",
    "GPT_IMAGE_2_MAX_SHORT_EDGE",
    "GPT_IMAGE_2_MIN_PIXELS",
    "PROMPT_LIMITS",
    "SCHEMA_FIELDS",
    "ApiError",
    "Family",
    "gpt_image_2_size_problem",
    "is_valid",
    "model_family",
    "parse_size",
    "resolve_model",
    "validate_request",
]

Family = Literal["dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-2"]
"""Model families with identical rules. ``gpt-image-1`` covers gpt-image-1, -1-mini, -1.5 and
chatgpt-image-latest [models]; ``gpt-image-2`` covers gpt-image-2 and its snapshots."""

DECISIONS: Final[tuple[str, ...]] = (
    "missing/null model -> dall-e-2 even with GPT-only params",
    "null == not sent for nullable fields; user:null and prompt:null -> invalid_type",
    "integers must be JSON integers (no bool, no 1.0)",
    "param of another family -> unknown_parameter",
    "output_compression with png: only 100 accepted",
    "partial_images > 0 requires stream: true",
    "size auto rejected for dall-e-2/3; quality auto rejected for dall-e-3",
    "dated snapshots accepted for gpt-image-1/-1-mini/-1.5/-2 families; 2.5/2.6 unknown",
    "gpt-image-2 max 3840x2160: long edge <= 3840 and short edge <= 2160",
)

# [spec] Every property of CreateImageRequest at the 2026-08-21 spec, in schema order.
SCHEMA_FIELDS: Final[tuple[str, ...]] = (
    "prompt",
    "model",
    "n",
    "quality",
    "response_format",
    "output_format",
    "output_compression",
    "stream",
    "partial_images",
    "size",
    "moderation",
    "background",
    "style",
    "user",
)

# [spec] JSON type of each field; [spec] all optional fields nullable except ``user``.
_FIELD_TYPES: Final[Mapping[str, str]] = {
    "prompt": "string",
    "model": "string",
    "n": "integer",
    "quality": "string",
    "response_format": "string",
    "output_format": "string",
    "output_compression": "integer",
    "stream": "boolean",
    "partial_images": "integer",
    "size": "string",
    "moderation": "string",
    "background": "string",
    "style": "string",
    "user": "string",
}
_NOT_NULLABLE: Final[frozenset[str]] = frozenset({"prompt", "user"})

# [spec, models] prompt maximum length in characters.
PROMPT_LIMITS: Final[Mapping[Family, int]] = {
    "dall-e-2": 1000,
    "dall-e-3": 4000,
    "gpt-image-1": 32000,
    "gpt-image-2": 32000,
}

# [models] parameters each family does NOT accept (answered with unknown_parameter [recorded]).
_GPT_ONLY: Final[tuple[str, ...]] = (
    "output_format",
    "output_compression",
    "background",
    "moderation",
    "stream",
    "partial_images",
)
_FORBIDDEN: Final[Mapping[Family, tuple[str, ...]]] = {
    # [models, recorded] dall-e-2 rejects any quality in 2026 (openllmetry #1, #2); style is
    # dall-e-3 only.
    "dall-e-2": ("quality", "style", *_GPT_ONLY),
    "dall-e-3": _GPT_ONLY,
    # [models, recorded] response_format -> unknown_parameter; style treated the same [open].
    "gpt-image-1": ("response_format", "style"),
    "gpt-image-2": ("response_format", "style"),
}

# [spec, models] enumerated values per family, in the order OpenAI lists them in messages.
_GPT_QUALITY: Final[tuple[str, ...]] = ("low", "medium", "high", "auto")
_ENUMS: Final[Mapping[Family, Mapping[str, tuple[str, ...]]]] = {
    "dall-e-2": {"response_format": ("url", "b64_json")},
    "dall-e-3": {
        "quality": ("standard", "hd"),
        "response_format": ("url", "b64_json"),
        "style": ("vivid", "natural"),
    },
    "gpt-image-1": {
        "quality": _GPT_QUALITY,
        "output_format": ("png", "jpeg", "webp"),
        "moderation": ("low", "auto"),
        "background": ("transparent", "opaque", "auto"),
    },
    "gpt-image-2": {
        "quality": _GPT_QUALITY,
        "output_format": ("png", "jpeg", "webp"),
        "moderation": ("low", "auto"),
        "background": ("transparent", "opaque", "auto"),
    },
}

# [models] fixed size lists.
_DALLE_SIZES: Final[Mapping[Family, tuple[str, ...]]] = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
}
# [recorded] order as in the reported message: 1024x1024, 1024x1536, 1536x1024, auto.
_GPT1_SIZES: Final[tuple[str, ...]] = ("1024x1024", "1024x1536", "1536x1024", "auto")

# [spec, models] gpt-image-2 custom-size bounds: edges divisible by 16, 1:3..3:1, "maximum
# supported resolution is 3840x2160" read strictly (long edge <= 3840 AND short edge <= 2160,
# [open] which of the two the API enforces), Azure's stated pixel bounds.
GPT_IMAGE_2_MIN_PIXELS: Final = 655_360
GPT_IMAGE_2_MAX_PIXELS: Final = 8_294_400
GPT_IMAGE_2_MAX_EDGE: Final = 3840
GPT_IMAGE_2_MAX_SHORT_EDGE: Final = 2160
_SIZE_RE: Final = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")

# [spec, models] model ids. chatgpt-image-latest comes from the SDK's ImageModel [spec].
_EXACT_MODELS: Final[Mapping[str, Family]] = {
    "dall-e-2": "dall-e-2",
    "dall-e-3": "dall-e-3",
    "gpt-image-1": "gpt-image-1",
    "gpt-image-1-mini": "gpt-image-1",
    "gpt-image-1.5": "gpt-image-1",
    "chatgpt-image-latest": "gpt-image-1",
    "gpt-image-2": "gpt-image-2",
}
_SNAPSHOT_RE: Final = re.compile(
    r"(gpt-image-1|gpt-image-1-mini|gpt-image-1\.5|gpt-image-2)-(\d{4}-\d{2}-\d{2})"
)


@dataclass(frozen=True)
class ApiError:
    """An error the real API would answer with: HTTP status plus the exact JSON body."""

    status: int
    body: dict[str, Any]

    @property
    def error(self) -> dict[str, Any]:
        """The ``error`` object of the envelope [recorded]."""
        inner = self.body.get("error")
        return inner if isinstance(inner, dict) else {}

    @property
    def code(self) -> str | None:
        """``error.code`` (None when the real body has ``null``)."""
        value = self.error.get("code")
        return value if isinstance(value, str) else None

    @property
    def param(self) -> str | None:
        """``error.param``."""
        value = self.error.get("param")
        return value if isinstance(value, str) else None

    @property
    def message(self) -> str:
        """``error.message``."""
        return str(self.error.get("message", ""))


# --------------------------------------------------------------------------------------------
# Error-body builders
# --------------------------------------------------------------------------------------------


def _error(
    message: str,
    *,
    param: str | None,
    code: str | None,
    status: int = 400,
    type_: str = "invalid_request_error",
) -> ApiError:
    """Build the standard envelope [recorded], keys in OpenAI's order (message, type, param,
    code)."""
    return ApiError(
        status,
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
    )


def _quote_list(values: Sequence[str]) -> str:
    """Render values the way OpenAI does: ``'a'``, ``'a' and 'b'``, ``'a', 'b', and 'c'``."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _invalid_value(param: str, value: object, supported: Sequence[str]) -> ApiError:
    """[recorded] 'Invalid value: ... Supported values are: ...' (verbatim for GPT quality)."""
    return _error(
        f"Invalid value: '{value}'. Supported values are: {_quote_list(supported)}.",
        param=param,
        code="invalid_value",
    )


def _unknown_parameter(param: str) -> ApiError:
    """[recorded] verbatim shape of the dall-e-2 quality / GPT response_format rejection."""
    return _error(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


def _json_type(value: object) -> str:
    """Name of a JSON value's type as OpenAI's messages spell it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    return "array"


def _with_article(type_name: str) -> str:
    """'an integer', 'a string', 'null'."""
    if type_name == "null":
        return "null"
    return ("an " if type_name[0] in "aeiou" else "a ") + type_name


def _invalid_type(param: str, expected: str, value: object) -> ApiError:
    """UNVERIFIED for images: OpenAI's generic type error (other endpoints)."""
    return _error(
        f"Invalid type for '{param}': expected {_with_article(expected)}, "
        f"but got {_with_article(_json_type(value))} instead.",
        param=param,
        code="invalid_type",
    )


def _below_min(param: str, minimum: int, value: int) -> ApiError:
    """UNVERIFIED for images: OpenAI's generic integer bound error."""
    return _error(
        f"Invalid '{param}': integer below minimum value. "
        f"Expected a value >= {minimum}, but got {value} instead.",
        param=param,
        code="integer_below_min_value",
    )


def _above_max(param: str, maximum: int, value: int) -> ApiError:
    """UNVERIFIED for images: OpenAI's generic integer bound error."""
    return _error(
        f"Invalid '{param}': integer above maximum value. "
        f"Expected a value <= {maximum}, but got {value} instead.",
        param=param,
        code="integer_above_max_value",
    )


def _model_not_found(model: str) -> ApiError:
    """[recorded] 404 ``model_not_found`` (shape predicted, not observed)."""
    return _error(
        f"The model `{model}` does not exist or you do not have access to it.",
        param=None,
        code="model_not_found",
        status=404,
    )


# --------------------------------------------------------------------------------------------
# Model resolution
# --------------------------------------------------------------------------------------------


def _is_calendar_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def model_family(model: str) -> Family | None:
    """Family of a model id [spec, models], or None when the API would answer 404."""
    exact = _EXACT_MODELS.get(model)
    if exact is not None:
        return exact
    match = _SNAPSHOT_RE.fullmatch(model)
    if match is None or not _is_calendar_date(match.group(2)):
        return None
    return _EXACT_MODELS[match.group(1)]


def resolve_model(body: Mapping[str, Any]) -> str:
    """Model id a body addresses: missing or null means ``dall-e-2`` [spec]."""
    model = body.get("model")
    return model if isinstance(model, str) else "dall-e-2"


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------


def parse_size(size: str) -> tuple[int, int] | None:
    """``'1920x1088'`` -> ``(1920, 1088)``; None for anything not plain ``WxH`` digits."""
    match = _SIZE_RE.fullmatch(size)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def gpt_image_2_size_problem(size: str) -> str | None:
    """Why a gpt-image-2 ``size`` is invalid, or None if it is acceptable [models]."""
    if size == "auto":
        return None
    dims = parse_size(size)
    if dims is None:
        return "Size must be 'auto' or WIDTHxHEIGHT."
    width, height = dims
    if width % 16 or height % 16:
        return "Width and height must both be divisible by 16."
    if max(width, height) > 3 * min(width, height):
        return "The aspect ratio must be between 1:3 and 3:1."
    if max(width, height) > GPT_IMAGE_2_MAX_EDGE:
        return f"The longest edge must be at most {GPT_IMAGE_2_MAX_EDGE} pixels."
    if min(width, height) > GPT_IMAGE_2_MAX_SHORT_EDGE:
        return f"The shortest edge must be at most {GPT_IMAGE_2_MAX_SHORT_EDGE} pixels."
    if not GPT_IMAGE_2_MIN_PIXELS <= width * height <= GPT_IMAGE_2_MAX_PIXELS:
        return (
            f"The total number of pixels must be between {GPT_IMAGE_2_MIN_PIXELS} "
            f"and {GPT_IMAGE_2_MAX_PIXELS}."
        )
    return None


def _check_size(family: Family, size: str) -> ApiError | None:
    """[models, recorded]."""
    if family in _DALLE_SIZES:
        if size in _DALLE_SIZES[family]:
            return None
        # [recorded] verbatim dall-e-3 body; reused for dall-e-2 (no dall-e-2 body on record).
        return ApiError(
            400,
            {
                "error": {
                    "code": "invalid_size",
                    "message": "The size is not supported by this model.",
                    "param": None,
                    "type": "invalid_request_error",
                }
            },
        )
    if family == "gpt-image-1":
        return None if size in _GPT1_SIZES else _invalid_value("size", size, _GPT1_SIZES)
    problem = gpt_image_2_size_problem(size)
    if problem is None:
        return None
    # UNVERIFIED: exact gpt-image-2 custom-size error body is an open question [open].
    return _error(f"Invalid value: '{size}'. {problem}", param="size", code="invalid_value")


# --------------------------------------------------------------------------------------------
# Individual checks (each returns the first error it finds, or None)
# --------------------------------------------------------------------------------------------


def _sent(body: Mapping[str, Any], key: str) -> bool:
    """[spec] a key counts as sent when present with a non-null value."""
    return body.get(key) is not None


def _has_type(value: object, expected: str) -> bool:
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    return isinstance(value, int) and not isinstance(value, bool)


def _check_unknown_keys(body: Mapping[str, Any]) -> ApiError | None:
    """[spec] only CreateImageRequest properties are accepted (even with a null value)."""
    for key in body:
        if key not in _FIELD_TYPES:
            return _unknown_parameter(str(key))
    return None


def _check_types(body: Mapping[str, Any]) -> ApiError | None:
    """[spec] JSON types; null allowed except for ``prompt`` and ``user``."""
    for key, expected in _FIELD_TYPES.items():
        if key not in body:
            continue
        value = body[key]
        if value is None and key not in _NOT_NULLABLE:
            continue
        if not _has_type(value, expected):
            return _invalid_type(key, expected, value)
    return None


def _check_prompt_present(body: Mapping[str, Any]) -> ApiError | None:
    """[spec] prompt is the only required field and must not be empty or blank."""
    if "prompt" not in body:
        # UNVERIFIED: OpenAI's generic missing-parameter body.
        return _error(
            "Missing required parameter: 'prompt'.",
            param="prompt",
            code="missing_required_parameter",
        )
    if not str(body["prompt"]).strip():
        # UNVERIFIED: OpenAI's generic empty-string body (also used for whitespace-only).
        return _error(
            "Invalid 'prompt': empty string. Expected a string with minimum length 1, "
            "but got an empty string instead.",
            param="prompt",
            code="empty_string",
        )
    return None


def _check_forbidden(family: Family, body: Mapping[str, Any]) -> ApiError | None:
    """[models, recorded] parameters of another family -> unknown_parameter."""
    for key in _FORBIDDEN[family]:
        if _sent(body, key):
            return _unknown_parameter(key)
    return None


def _check_prompt_length(family: Family, body: Mapping[str, Any]) -> ApiError | None:
    """[spec, models, recorded]."""
    prompt = str(body["prompt"])
    limit = PROMPT_LIMITS[family]
    if len(prompt) <= limit:
        return None
    if family in ("dall-e-2", "dall-e-3"):
        # [recorded] verbatim dall-e-2 message (code and param null); same template for dall-e-3.
        return _error(
            f"Prompt must be length {limit} or less. Your prompt length is {len(prompt)}. "
            "Please reduce your prompt length.",
            param=None,
            code=None,
        )
    # UNVERIFIED: OpenAI's generic string-length body for the GPT image models.
    return _error(
        f"Invalid 'prompt': string too long. Expected a string with maximum length {limit}, "
        f"but got a string with length {len(prompt)} instead.",
        param="prompt",
        code="string_above_max_length",
    )


def _check_n(family: Family, body: Mapping[str, Any]) -> ApiError | None:
    """[spec] n in 1..10; [models] dall-e-3 only n=1."""
    if not _sent(body, "n"):
        return None
    n: int = body["n"]
    if n < 1:
        return _below_min("n", 1, n)
    if n > 10:
        return _above_max("n", 10, n)
    if family == "dall-e-3" and n != 1:
        # UNVERIFIED: exact body not on record [recorded, open].
        return _error("You must provide n=1 for this model.", param="n", code=None)
    return None


def _check_enums(family: Family, body: Mapping[str, Any]) -> ApiError | None:
    """[spec, models] enumerated string values allowed for this family."""
    for key, allowed in _ENUMS[family].items():
        if _sent(body, key) and body[key] not in allowed:
            return _invalid_value(key, body[key], allowed)
    return None


def _check_size_field(family: Family, body: Mapping[str, Any]) -> ApiError | None:
    if not _sent(body, "size"):
        return None
    return _check_size(family, str(body["size"]))


def _check_output_compression(family: Family, body: Mapping[str, Any]) -> ApiError | None:
    """[spec] 0..100, meaningful only with jpeg/webp (png accepts only the default 100)."""
    if family not in ("gpt-image-1", "gpt-image-2") or not _sent(body, "output_compression"):
        return None
    value: int = body["output_compression"]
    if value < 0:
        return _below_min("output_compression", 0, value)
    if value > 100:
        return _above_max("output_compression", 100, value)
    output_format = body.get("output_format") or "png"
    if output_format == "png" and value != 100:
        # UNVERIFIED wording; decision documented in the module docstring.
        return _error(
            "Compression less than 100 is not supported for PNG output format.",
            param="output_compression",
            code="invalid_value",
        )
    return None


def _check_background(family: Family, body: Mapping[str, Any]) -> ApiError | None:
    """[spec, models] transparent background needs png or webp output."""
    if family not in ("gpt-image-1", "gpt-image-2") or body.get("background") != "transparent":
        return None
    output_format = body.get("output_format") or "png"
    if output_format in ("png", "webp"):
        return None
    # UNVERIFIED wording.
    return _error(
        f"Transparent background is not supported for {output_format} output format. "
        "Use png or webp.",
        param="background",
        code="invalid_value",
    )


def _check_partial_images(family: Family, body: Mapping[str, Any]) -> ApiError | None:
    """[spec] 0..3, only meaningful with ``stream: true``."""
    if family not in ("gpt-image-1", "gpt-image-2") or not _sent(body, "partial_images"):
        return None
    value: int = body["partial_images"]
    if value < 0:
        return _below_min("partial_images", 0, value)
    if value > 3:
        return _above_max("partial_images", 3, value)
    if value > 0 and body.get("stream") is not True:
        # UNVERIFIED: decision documented in the module docstring.
        return _error(
            "partial_images is only supported when stream is true.",
            param="partial_images",
            code="invalid_value",
        )
    return None


_FamilyCheck = Callable[[Family, Mapping[str, Any]], ApiError | None]

# Order matters only when a body has several problems: schema-level first, then per model.
_FAMILY_CHECKS: Final[tuple[_FamilyCheck, ...]] = (
    _check_forbidden,
    _check_prompt_length,
    _check_n,
    _check_enums,
    _check_size_field,
    _check_output_compression,
    _check_background,
    _check_partial_images,
)


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def validate_request(body: Mapping[str, Any]) -> ApiError | None:
    """Return the error the real API would answer ``body`` with, or None if it is accepted."""
    if not isinstance(body, Mapping):
        # UNVERIFIED: a JSON body that is not an object.
        return _invalid_type("body", "object", body)
    for schema_check in (_check_unknown_keys, _check_types, _check_prompt_present):
        error = schema_check(body)
        if error is not None:
            return error
    model = resolve_model(body)
    family = model_family(model)
    if family is None:
        return _model_not_found(model)
    for family_check in _FAMILY_CHECKS:
        error = family_check(family, body)
        if error is not None:
            return error
    return None


def is_valid(body: Mapping[str, Any]) -> bool:
    """True when ``validate_request`` accepts ``body``."""
    return validate_request(body) is None

"""Independent per-model validator for ``POST /v1/images/generations`` request bodies, and for
multipart ``POST /v1/images/edits`` requests (:func:`validate_edit_request`, at the end of the
module, with its own sources and ``EDIT_DECISIONS``; :func:`probe_image` reads an upload's real
format, size and mode from its header with the stdlib).

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
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "DALLE2_EDIT_MAX_IMAGE_BYTES",
    "DECISIONS",
    "EDIT_DECISIONS",
    "EDIT_DEFAULT_MODEL",
    "EDIT_FILE_FIELDS",
    "EDIT_IMAGE_FIELDS",
    "EDIT_MASK_MAX_BYTES",
    "EDIT_MAX_IMAGES",
    "EDIT_SCHEMA_FIELDS",
    "GPT_EDIT_MAX_IMAGE_BYTES",
    "GPT_IMAGE_2_MAX_EDGE",
    "GPT_IMAGE_2_MAX_PIXELS",
    "GPT_IMAGE_2_MAX_SHORT_EDGE",
    "GPT_IMAGE_2_MIN_PIXELS",
    "PROMPT_LIMITS",
    "SCHEMA_FIELDS",
    "ApiError",
    "Family",
    "ImageInfo",
    "UploadedFile",
    "gpt_image_2_size_problem",
    "is_valid",
    "model_family",
    "parse_size",
    "probe_image",
    "resolve_model",
    "validate_edit_request",
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


# ============================================================================================
# Edits: ``POST /v1/images/edits`` (multipart/form-data)
# ============================================================================================
#
# Sources, besides those above:
# * ``[edit-spec]``: the OpenAPI ``CreateImageEditRequest`` schema and ``InputFidelity`` at commit
#   f85dbe22 (vendored as ``tests/data/openapi/openapi-images-edits-2026-08-21-f85dbe22.json``);
# * ``[sdk]``: openai-python ``resources/images.py`` ``edit`` and ``_utils._extract_items``: a
#   single file goes out as the part ``image``, a list as one ``image[]`` part per entry;
# * ``[reported]``: an error body quoted verbatim in a public issue or code comment (named).

EDIT_SCHEMA_FIELDS: Final[tuple[str, ...]] = (
    "image",
    "prompt",
    "mask",
    "background",
    "model",
    "n",
    "size",
    "response_format",
    "output_format",
    "output_compression",
    "user",
    "input_fidelity",
    "stream",
    "partial_images",
    "quality",
)
"""[edit-spec] every property of CreateImageEditRequest, in schema order (no ``moderation`` or
``style``: those are answered ``unknown_parameter``)."""
EDIT_IMAGE_FIELDS: Final[frozenset[str]] = frozenset({"image", "image[]"})
"""[sdk, edit-spec] part names that carry input images; both are accepted, repeated or not."""
EDIT_FILE_FIELDS: Final[frozenset[str]] = EDIT_IMAGE_FIELDS | {"mask"}
EDIT_DEFAULT_MODEL: Final = "gpt-image-1.5"
"""[edit-spec] ``model`` default of the edits endpoint (generations default to dall-e-2)."""
EDIT_MAX_IMAGES: Final = 16
"""[edit-spec] ``maxItems`` of the image array (GPT image models); dall-e-2 takes one."""
GPT_EDIT_MAX_IMAGE_BYTES: Final = 50 * 1024 * 1024
"""[edit-spec] "each image should be a png, webp, or jpg file less than 50MB"."""
DALLE2_EDIT_MAX_IMAGE_BYTES: Final = 4 * 1024 * 1024
"""[edit-spec] dall-e-2: "a square png file less than 4MB"."""
EDIT_MASK_MAX_BYTES: Final = 4 * 1024 * 1024
"""[edit-spec] mask: "a valid PNG file, less than 4MB, and the same dimensions as image"."""

EDIT_DECISIONS: Final[tuple[str, ...]] = (
    "missing model -> gpt-image-1.5 (the edit schema's default)",
    "dall-e-3 -> 400 invalid_value 'Value must be 'dall-e-2''",
    "moderation and style are not edit fields -> unknown_parameter",
    "generation per-family field rules reused (dall-e-2 quality, GPT response_format, ...)",
    "input_fidelity on dall-e-2 or gpt-image-1-mini -> unknown_parameter",
    "declared part Content-Type checked first, then the bytes' real format",
    "dall-e-2 without a mask: the image needs an alpha channel (RGBA, LA) or be L",
    "mask: PNG by its bytes, < 4 MB, first image's dimensions, alpha channel or tRNS",
    "form integers are plain decimal digits; stream is 'true' or 'false'",
    "image and image[] parts may be mixed; images count in the order sent",
)

_EDIT_INTEGER_FIELDS: Final[frozenset[str]] = frozenset(
    {"n", "output_compression", "partial_images"}
)
_EDIT_BOOLEAN_FIELDS: Final[frozenset[str]] = frozenset({"stream"})
_FORM_INTEGER_RE: Final = re.compile(r"-?[0-9]{1,9}")
# [reported] the order the API lists them in (openai/openai-ruby#147, Comfy-Org/ComfyUI#9329;
# dall-e-2: openai/openai-node#1468).
_GPT_EDIT_MIMETYPES: Final[tuple[str, ...]] = ("image/jpeg", "image/png", "image/webp")
_DALLE2_EDIT_MIMETYPES: Final[tuple[str, ...]] = ("image/png",)
_MIMETYPE_FORMATS: Final[Mapping[str, str]] = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
}
_INPUT_FIDELITY: Final[tuple[str, ...]] = ("high", "low")
# [edit-spec] InputFidelity: "unsupported for gpt-image-1-mini" (and its dated snapshots).
_NO_INPUT_FIDELITY_RE: Final = re.compile(r"gpt-image-1-mini(-\d{4}-\d{2}-\d{2})?")
# [reported] dall-e-2 accepts these PIL modes for an image sent without a mask.
_DALLE2_UNMASKED_MODES: Final[tuple[str, ...]] = ("RGBA", "LA", "L")


# --------------------------------------------------------------------------------------------
# Image probing (stdlib): format by magic bytes, dimensions, PIL-style mode
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageInfo:
    """What an uploaded file's bytes are, read from its header (no pixel decoding)."""

    format: Literal["png", "jpeg", "webp"]
    width: int
    height: int
    mode: str
    """PIL-style mode: ``L``, ``LA``, ``P``, ``RGB``, ``RGBA`` (``CMYK`` for JPEG)."""
    transparency: bool = False
    """PNG ``tRNS`` chunk (a transparent colour or palette alpha)."""

    @property
    def has_alpha(self) -> bool:
        """An alpha channel, or transparency through ``tRNS``."""
        return self.mode in ("LA", "RGBA") or self.transparency


_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_PNG_MODES: Final[Mapping[int, str]] = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT/JPG/DAC.
_JPEG_SOF: Final[frozenset[int]] = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_MODES: Final[Mapping[int, str]] = {1: "L", 3: "RGB", 4: "CMYK"}


def _probe_png(data: bytes) -> ImageInfo | None:
    """Walk the chunks (lengths and CRCs checked) from IHDR to IEND; needs an IDAT."""
    pos, header, transparency, has_idat = len(_PNG_MAGIC), None, False, False
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return None
        chunk = data[pos + 8 : end - 4]
        if zlib.crc32(kind + chunk) != struct.unpack(">I", data[end - 4 : end])[0]:
            return None
        if header is None:
            if kind != b"IHDR" or length != 13:
                return None
            width, height, _depth, colour = struct.unpack(">IIBB", chunk[:10])
            if not width or not height or colour not in _PNG_MODES:
                return None
            header = (width, height, _PNG_MODES[colour])
        elif kind == b"tRNS":
            transparency = True
        elif kind == b"IDAT":
            has_idat = True
        elif kind == b"IEND":
            if not has_idat:
                return None
            return ImageInfo("png", header[0], header[1], header[2], transparency)
        pos = end
    return None


def _probe_jpeg(data: bytes) -> ImageInfo | None:
    """Walk the marker segments to the frame header; the file must end with EOI (a JPEG cut
    short does not decode)."""
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # RSTn, SOI, TEM: no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            return None
        if marker in _JPEG_SOF:
            if length < 8:
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            mode = _JPEG_MODES.get(data[pos + 9])
            if not width or not height or mode is None:
                return None
            return ImageInfo("jpeg", width, height, mode)
        if marker == 0xDA:  # a scan before any frame header
            return None
        pos += 2 + length
    return None


def _probe_webp(data: bytes) -> ImageInfo | None:
    """RIFF container whose declared size fits, then the VP8 / VP8L / VP8X header."""
    if len(data) < 20 or data[8:12] != b"WEBP":
        return None
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 > len(data):
        return None
    kind, payload = data[12:16], data[20:]
    if kind == b"VP8 " and len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", payload[6:10])
        width, height = width & 0x3FFF, height & 0x3FFF
        return ImageInfo("webp", width, height, "RGB") if width and height else None
    if kind == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        bits = int.from_bytes(payload[1:5], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return ImageInfo("webp", width, height, "RGBA" if bits >> 28 & 1 else "RGB")
    if kind == b"VP8X" and len(payload) >= 10:
        width = int.from_bytes(payload[4:7], "little") + 1
        height = int.from_bytes(payload[7:10], "little") + 1
        return ImageInfo("webp", width, height, "RGBA" if payload[0] & 0x10 else "RGB")
    return None


def probe_image(data: bytes) -> ImageInfo | None:
    """Format, dimensions and mode of PNG, JPEG or WebP bytes; None for anything else (other
    formats, truncated or corrupt headers)."""
    if data.startswith(_PNG_MAGIC):
        return _probe_png(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _probe_jpeg(data)
    if data.startswith(b"RIFF"):
        return _probe_webp(data)
    return None


# --------------------------------------------------------------------------------------------
# Edit request model and error bodies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart edit request, as received."""

    field: str
    """The part's form name as sent: ``image``, ``image[]``, ``mask`` (or any other)."""
    filename: str | None
    content_type: str
    """The part's declared Content-Type (``application/octet-stream`` when it had none)."""
    data: bytes


def _file_key(field: str, index: int, as_array: bool) -> str:
    """How the API names a file in its messages: ``image``, or ``image[0]`` for an entry of
    an array ([reported] ``Invalid file 'image[0]'`` in raushankrgupta/web-product-scraper)."""
    return f"image[{index}]" if field in EDIT_IMAGE_FIELDS and as_array else field


def _unsupported_mimetype(key: str, content_type: str, supported: Sequence[str]) -> ApiError:
    """[reported] message verbatim (openai/openai-ruby#147, Comfy-Org/ComfyUI#9329,
    openai/openai-node#1468); code ``unsupported_file_mimetype`` from a client's regression test
    (raushankrgupta/web-product-scraper). UNVERIFIED: ``param`` (set to the file's key)."""
    return _error(
        f"Invalid file '{key}': unsupported mimetype ('{content_type}'). "
        f"Supported file formats are {_quote_list(supported)}.",
        param=key,
        code="unsupported_file_mimetype",
    )


def _invalid_image_file(position: int) -> ApiError:
    """[reported] verbatim GPT-image edit body (lofcz/LLMTornado#105): the bytes do not decode.
    ``position`` counts from 1; ``{request_id}`` is filled in by the emulator."""
    return _error(
        f"Invalid image file or mode for image {position}, please check your image file. If "
        "you believe this is an error, contact us at help.openai.com and include the request "
        "ID {request_id}.",
        param=None,
        code="invalid_image_file",
        type_="image_generation_user_error",
    )


def _dalle2_png_required() -> ApiError:
    """[reported] legacy DALL·E upload message ("Uploaded image must be a PNG and less than
    4 MB.", quoted from openai-python 0.x ``InvalidRequestError`` in public code).
    UNVERIFIED: ``code``/``param`` (null, as in the legacy dall-e-2 prompt-length body)."""
    return _error("Uploaded image must be a PNG and less than 4 MB.", param=None, code=None)


def _expected_file(param: str, value: str) -> ApiError:
    """[reported] text where a file belongs (openai/openai-ruby#147, message verbatim for
    ``image``; ``param``/``code`` as in AIProxyTeam/AIProxySwift#211). UNVERIFIED for ``mask``."""
    expected = "one of an array of files or file" if param == "image" else "a file"
    got = _with_article(_json_type(value))
    return _error(
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def _array_where_file(param: str) -> ApiError:
    """[reported] verbatim dall-e-2 body for several images (AIProxyTeam/AIProxySwift#211);
    UNVERIFIED for ``mask``."""
    return _error(
        f"Invalid type for '{param}': expected a file, but got an array instead.",
        param=param,
        code="invalid_type",
    )


def _file_where_string(param: str) -> ApiError:
    """UNVERIFIED: a file part for a text field, in the ``invalid_type`` pattern."""
    return _error(
        f"Invalid type for '{param}': expected a string, but got a file instead.",
        param=param,
        code="invalid_type",
    )


def _edit_model_refused(model: str) -> ApiError:
    """[reported] the edits endpoint's model refusal, quoted for gpt-image-1 and gpt-image-2
    when it refused them ("Invalid value: 'gpt-image-1'. Value must be 'dall-e-2'.", param
    ``model``, code ``invalid_value``); the same body is assumed for dall-e-3, which cannot
    edit [edit-spec]."""
    return _error(
        f"Invalid value: '{model}'. Value must be 'dall-e-2'.",
        param="model",
        code="invalid_value",
    )


def _mask_error(message: str) -> ApiError:
    """UNVERIFIED: no mask rejection body is on record; ``param`` ``mask``, ``invalid_value``."""
    return _error(f"Invalid mask image - {message}", param="mask", code="invalid_value")


# --------------------------------------------------------------------------------------------
# Edit checks
# --------------------------------------------------------------------------------------------


def _typed_edit_fields(fields: Mapping[str, str]) -> tuple[dict[str, Any], ApiError | None]:
    """Form strings -> the JSON-typed body the generation checks expect."""
    body: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _EDIT_INTEGER_FIELDS:
            if not _FORM_INTEGER_RE.fullmatch(value):
                return body, _invalid_type(key, "integer", value)
            body[key] = int(value)
        elif key in _EDIT_BOOLEAN_FIELDS:
            if value not in ("true", "false"):  # [sdk] booleans are sent as true/false
                return body, _invalid_type(key, "boolean", value)
            body[key] = value == "true"
        else:
            body[key] = value
    return body, None


def _check_edit_shape(fields: Mapping[str, str], files: Sequence[UploadedFile]) -> ApiError | None:
    """[edit-spec] known fields only; files where files belong, text elsewhere."""
    for key in [*fields, *(upload.field for upload in files)]:
        if key not in EDIT_SCHEMA_FIELDS and key != "image[]":
            return _unknown_parameter(key)
    for key in ("image", "image[]", "mask"):
        if key in fields:
            return _expected_file("mask" if key == "mask" else "image", fields[key])
    for upload in files:
        if upload.field not in EDIT_FILE_FIELDS:
            return _file_where_string(upload.field)
    if sum(upload.field == "mask" for upload in files) > 1:
        return _array_where_file("mask")
    return None


def _check_input_fidelity(family: Family, model: str, body: Mapping[str, Any]) -> ApiError | None:
    """[edit-spec] InputFidelity: high/low; not for gpt-image-1-mini (nor dall-e-2).
    UNVERIFIED: ``unknown_parameter`` for the models without it, as for other-family fields."""
    if "input_fidelity" not in body:
        return None
    if family == "dall-e-2" or _NO_INPUT_FIDELITY_RE.fullmatch(model):
        return _unknown_parameter("input_fidelity")
    value = body["input_fidelity"]
    return (
        None
        if value in _INPUT_FIDELITY
        else _invalid_value("input_fidelity", value, _INPUT_FIDELITY)
    )


def _check_image_files(
    family: Family, images: Sequence[UploadedFile], has_mask: bool
) -> ApiError | None:
    """[edit-spec, reported] count, declared type, size and real format of each input image."""
    as_array = len(images) > 1 or any(upload.field == "image[]" for upload in images)
    if family == "dall-e-2" and as_array:
        return _array_where_file("image")
    if len(images) > EDIT_MAX_IMAGES:
        # UNVERIFIED for images: OpenAI's generic array-length body (other endpoints).
        return _error(
            f"Invalid 'image': array too long. Expected an array with maximum length "
            f"{EDIT_MAX_IMAGES}, but got an array with length {len(images)} instead.",
            param="image",
            code="array_above_max_length",
        )
    supported = _DALLE2_EDIT_MIMETYPES if family == "dall-e-2" else _GPT_EDIT_MIMETYPES
    for index, upload in enumerate(images):
        key = _file_key(upload.field, index, as_array)
        declared = upload.content_type.partition(";")[0].strip().lower()
        if declared not in supported:
            return _unsupported_mimetype(key, declared, supported)
        info = probe_image(upload.data)
        if family == "dall-e-2":
            too_big = len(upload.data) >= DALLE2_EDIT_MAX_IMAGE_BYTES
            if info is None or info.format != "png" or too_big:
                return _dalle2_png_required()
            if info.width != info.height:
                # UNVERIFIED: no body on record for a non-square dall-e-2 image.
                return _error(
                    f"Invalid input image - image must be square, got {info.width}x{info.height}.",
                    param=None,
                    code=None,
                )
            if not has_mask and info.mode not in _DALLE2_UNMASKED_MODES:
                # [reported] message verbatim (sashabaranov/go-openai#188); UNVERIFIED
                # code/param (null, as the legacy dall-e-2 bodies).
                return _error(
                    f"Invalid input image - format must be in "
                    f"{list(_DALLE2_UNMASKED_MODES)}, got {info.mode}.",
                    param=None,
                    code=None,
                )
            continue
        if len(upload.data) >= GPT_EDIT_MAX_IMAGE_BYTES:
            # UNVERIFIED: no body on record for an image of 50 MB or more.
            return _error(
                f"Invalid file '{key}': file too large ({len(upload.data)} bytes). Each image "
                "must be less than 50 MB.",
                param=key,
                code="file_too_large",
            )
        if info is None:
            return _invalid_image_file(index + 1)
    return None


def _check_mask(mask: UploadedFile, first: UploadedFile) -> ApiError | None:
    """[edit-spec] "a valid PNG file, less than 4MB, and have the same dimensions as image",
    whose "fully transparent areas" mark the edit: so it needs alpha (or ``tRNS``)."""
    declared = mask.content_type.partition(";")[0].strip().lower()
    if declared != "image/png":
        # UNVERIFIED for the mask: the image's verbatim mimetype body, PNG only.
        return _unsupported_mimetype("mask", declared, ("image/png",))
    info = probe_image(mask.data)
    if info is None or info.format != "png":
        return _mask_error("must be a valid PNG file.")
    if len(mask.data) >= EDIT_MASK_MAX_BYTES:
        return _mask_error(f"must be less than 4 MB, got {len(mask.data)} bytes.")
    image = probe_image(first.data)
    if image is not None and (image.width, image.height) != (info.width, info.height):
        return _mask_error(
            f"mask size ({info.width}x{info.height}) does not match image size "
            f"({image.width}x{image.height})."
        )
    if not info.has_alpha:
        return _mask_error(f"format must be in ['RGBA', 'LA'], got {info.mode}.")
    return None


def validate_edit_request(
    fields: Mapping[str, str], files: Sequence[UploadedFile]
) -> ApiError | None:
    """The error the real API would answer a multipart edit with, or None if accepted.

    ``fields`` are the text parts (name -> value; the emulator keeps the last of repeated
    names), ``files`` every file part in the order sent. Checks run schema first, then per
    model (the generation rules where the edit schema has the same field), then the files.
    """
    error = _check_edit_shape(fields, files)
    if error is not None:
        return error
    body, error = _typed_edit_fields(fields)
    if error is not None:
        return error
    error = _check_prompt_present(body)
    if error is not None:
        return error
    images = [upload for upload in files if upload.field in EDIT_IMAGE_FIELDS]
    if not images:
        # UNVERIFIED: OpenAI's generic missing-parameter body.
        return _error(
            "Missing required parameter: 'image'.",
            param="image",
            code="missing_required_parameter",
        )
    model = body.get("model", EDIT_DEFAULT_MODEL)
    family = model_family(model)
    if family is None:
        return _model_not_found(model)
    if family == "dall-e-3":
        return _edit_model_refused(model)
    for family_check in _FAMILY_CHECKS:
        error = family_check(family, body)
        if error is not None:
            return error
    error = _check_input_fidelity(family, model, body)
    if error is not None:
        return error
    mask = next((upload for upload in files if upload.field == "mask"), None)
    error = _check_image_files(family, images, mask is not None)
    if error is not None or mask is None:
        return error
    return _check_mask(mask, images[0])

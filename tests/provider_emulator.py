"""Per-provider behaviour of "OpenAI-compatible" image APIs that differ from OpenAI's format.

An independent model of each provider, written from the providers' public documentation and
client code (it imports nothing from ``langchain_imagegen``, like ``tests/spec_validator.py``,
so a misreading shared with the package cannot pass both). ``tests/emulator.py`` serves it
when built with ``Emulator(provider="xai")`` (or ``--provider xai``); this module owns the
routes, authentication, request validation, success bodies and error bodies, and the emulator
keeps the transport (HTTP, latency, queued faults, file serving, request recording).

Sources per provider (what each behaviour rests on; "emulator convention" marks what no public
source fixes, such as pixel sizes a provider does not publish, and the wording of errors whose
text is not published):

* ``xai``: xAI REST API reference for ``POST /v1/images/generations`` (docs.x.ai; mirrored at
  withone.ai "X AI / Generate an Image"): ``aspect_ratio`` from 13 ratios plus ``auto``,
  ``resolution`` 1k|2k, ``quality`` low|medium|high, ``n`` 1-10, ``response_format``
  url|b64_json (default url), ``size`` and ``style`` "(Not supported)", response
  ``{block_reason, data[{b64_json|url, mime_type, revised_prompt}], usage{cost_in_usd_ticks}}``,
  400 invalid request, 422 missing fields; images are JPEG (xAI image-generation guide).
  ``2k`` only on ``grok-imagine-image-pro`` (vercel/ai ``content/providers/01-ai-sdk-providers/
  01-xai.mdx``; not re-verified). Error bodies: the three shapes vercel/ai has parsed over time
  (``packages/xai/src/xai-error.ts``: ``{code, error}`` then ``{error:{message,type,param,
  code}}``) and a bare ``{error}``; 400 for a content-policy block (docs.gptproto.com mirror),
  and ``respect_moderation: false`` on an item / a ``block_reason`` as the 200 variants.
  Cost: 1 USD = 1e10 ticks; per-image prices are an emulator convention.
* ``together``: Together API reference ``POST /images/generations`` (docs.together.ai/reference/
  post-images-generations; togethercomputer/openapi): ``width``/``height`` (default 1024),
  ``steps``, ``seed``, ``n``, ``negative_prompt``, ``image_url``, ``reference_images``,
  ``guidance_scale``, ``output_format`` jpeg|png (default jpeg), ``image_loras``,
  ``disable_safety_checker``, ``response_format`` base64|url; response ``{id, model,
  object:"list", data[{index, b64_json|url, type}]}``. ``n`` 1-4, ``steps`` 1-50 and
  ``aspect_ratio`` for FLUX Schnell/Kontext: docs.together.ai/docs/images-overview and
  .../inference/images/parameters. Errors ``{error:{message}}`` (vercel/ai
  ``packages/togetherai/src/togetherai-image-model.ts``); the type/param/code fields, and
  silently ignoring unknown fields, are emulator conventions.
* ``deepinfra``: OpenAI-compatible route ``/v1/openai/images/generations`` with
  ``model, prompt, size, n``; answers ``data[].b64_json`` and a ``revised_prompt`` echoing the
  prompt (deepinfra.com model API pages); errors ``{error:{message}}`` (vercel/ai
  ``packages/deepinfra/src/deepinfra-image-model.ts``, edit route) and the native route's
  ``{detail:{error}}`` shape offered as a fault. ``n`` up to 10 as OpenAI's (unverified).
* ``gemini``: Google's OpenAI-compatibility layer ``/v1beta/openai/images/generations``
  (public clients send only ``model, prompt, n, size, response_format=b64_json``); Google picks
  the image format (PNG here for ``imagen-*``, JPEG otherwise, so clients must sniff bytes).
  Unknown fields are rejected the way the compatibility layer rejects them on chat: HTTP 400
  with a JSON *list* ``[{"error": {code, message: 'Invalid JSON payload received. Unknown name
  "X": Cannot find field.', status: "INVALID_ARGUMENT", details}}]`` (live bodies quoted in
  bytedance/deer-flow#1515 and SuzumiyaAkizuki/ComfyUI-NewBie-LLM-Formatter#3, vendored in
  ``tests/data/providers``). ``n`` 1-4 (Imagen's limit), sizes any ``WxH``, a
  safety-filtered image simply missing from ``data``: emulator conventions.
* ``openrouter``: the unified images route ``POST /api/v1/images`` (BerriAI/litellm
  ``litellm/llms/openrouter/image_api.py``): aspect ratios only (the 10 ratios listed there),
  base64 only, response ``{created, data[{b64_json, media_type}], usage{prompt_tokens,
  completion_tokens, total_tokens, cost, completion_tokens_details, cost_details}}``;
  ``image_size`` 1K|2K|4K and pixel sizes per ratio as Google documents for
  gemini-2.5-flash-image (openrouter.ai image-generation guide). Errors ``{error:{code,
  message, metadata?}}`` and 403 moderation with ``metadata.reasons/flagged_input``
  (openrouter.ai/docs/api-reference/errors). Rejecting ``size`` and ``response_format=url``
  (LiteLLM refuses them client-side) is an emulator choice.
* ``vllm-omni``: vllm-project/vllm-omni ``vllm_omni/entrypoints/openai/protocol/images.py`` and
  ``docs/serving/image_generation_api.md``: one model per server, ``n`` 1-10, ``size`` any
  ``WxH``, ``response_format`` b64_json|file (``url`` fails validation), extensions
  ``negative_prompt``, ``num_inference_steps`` 1-200, ``guidance_scale`` 0-20,
  ``true_cfg_scale`` 0-20, ``seed``; unknown fields ignored (pydantic defaults); response
  ``{created, data[{b64_json, url:null, revised_prompt:null}], output_format, size}``; FastAPI
  errors ``{"detail": [...]}`` (422, pydantic v2 items) or ``{"detail": "..."}`` (400, 503).
  ``--api-key`` servers answer 401 ``{"error": "Unauthorized"}`` (vLLM's auth middleware).
* ``localai``: mudler/LocalAI ``core/http/endpoints/openai/image.go`` and
  ``docs/content/features/image-generation.md``: ``size`` (no ``x`` -> 512x512 silently),
  ``n``, ``step`` (default 15), ``mode``, a negative prompt after ``|`` in the prompt,
  ``response_format`` b64_json else URL ``{base}/generated-images/<file>.png``; response
  ``{id, created, data}``; Go's JSON decoding ignores unknown fields; errors go through fiber's
  handler as ``{error:{code, message, type}}`` (500 for a bad size).
* ``siliconflow``: api-docs.siliconflow.cn ``images-generations-post`` (not re-verified):
  ``model`` and ``prompt`` required, ``image_size`` ``WxH``, ``batch_size`` 1-4,
  ``num_inference_steps`` 1-100, ``guidance_scale``, ``seed``, ``negative_prompt``, ``image``;
  response ``{images[{url}], timings{inference}, seed}`` with ``x-siliconcloud-trace-id``;
  errors ``{code, message, data}``.

API (see :class:`ProviderBehaviour`): ``PROVIDERS[name].handle(path, headers, raw, ctx)``
returns a :class:`ProviderReply`. Prompt markers handled here (the emulator's own markers, such
as ``[[fault:connection_reset]]`` or ``[[fault:read_timeout:2]]``, still work around them):

* ``[[fault:provider_error:SHAPE]]``: a 400 in one of the provider's error shapes
  (:attr:`ProviderBehaviour.error_shapes`; every provider also has ``in_200``, its error
  envelope with HTTP 200);
* ``[[fault:content_policy]]`` / ``[[fault:content_policy:VARIANT]]``: a block as the provider
  reports it (xAI variants ``respect_moderation`` and ``block_reason`` answer 200);
* ``[[fault:rate_limit]]`` / ``[[fault:rate_limit:SECONDS]]``: 429 in the provider's shape with
  ``retry-after``;
* ``[[fault:server_error]]``: 500 (vLLM-Omni: 503) in the provider's shape.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "PROVIDERS",
    "PROVIDER_MARKERS",
    "ProviderBehaviour",
    "ProviderContext",
    "ProviderReply",
    "has_provider_marker",
]

Json = Any
Problem = tuple[str, str]
"""(kind, message): ``kind`` is a pydantic-style error type (``value_error``, ``missing``,
``less_than_equal`` ...), used by the providers whose errors carry one (vLLM-Omni)."""
Check = Callable[[object], Problem | None]


# ============================================================================================
# What the emulator hands in and gets back
# ============================================================================================


@dataclass(frozen=True)
class ProviderContext:
    """What a behaviour needs from the server around it."""

    api_key: str
    root_url: str
    """``http://127.0.0.1:PORT``."""
    request_id: str
    encode: Callable[[str, int, int, str], bytes]
    """``(format png|jpeg|webp, width, height, tag) -> image bytes`` (the emulator's
    ``encode_image``)."""
    store: Callable[[bytes, str], str]
    """``(bytes, format) -> URL`` under which the emulator serves the bytes (``/files/...``)."""


@dataclass(frozen=True)
class ProviderReply:
    status: int
    payload: Json
    """A JSON value, or ``bytes`` (a raw image) or ``str`` (a text/plain body)."""
    headers: tuple[tuple[str, str], ...] = ()
    images: int = 0
    """Images produced (for the emulator's counters)."""
    content_type: str | None = None
    """Set for raw bodies; JSON otherwise."""

    @property
    def body(self) -> bytes:
        if isinstance(self.payload, bytes):
            return self.payload
        if isinstance(self.payload, str):
            return self.payload.encode()
        return json.dumps(self.payload, separators=(",", ":")).encode()

    @property
    def media_type(self) -> str:
        if self.content_type is not None:
            return self.content_type
        return "text/plain; charset=utf-8" if isinstance(self.payload, str) else "application/json"


# ============================================================================================
# Field checks (data over code: each provider lists its fields with one of these)
# ============================================================================================


def _one_of(*allowed: str) -> Check:
    def check(value: object) -> Problem | None:
        if value in allowed:
            return None
        return "enum", f"Input should be {', '.join(repr(v) for v in allowed)}"

    return check


def _integer(low: int | None = None, high: int | None = None) -> Check:
    def check(value: object) -> Problem | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "int_type", "Input should be a valid integer"
        if low is not None and value < low:
            return "greater_than_equal", f"Input should be greater than or equal to {low}"
        if high is not None and value > high:
            return "less_than_equal", f"Input should be less than or equal to {high}"
        return None

    return check


def _number(low: float | None = None, high: float | None = None) -> Check:
    def check(value: object) -> Problem | None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "float_type", "Input should be a valid number"
        if low is not None and value < low:
            return "greater_than_equal", f"Input should be greater than or equal to {low:g}"
        if high is not None and value > high:
            return "less_than_equal", f"Input should be less than or equal to {high:g}"
        return None

    return check


def _string(value: object) -> Problem | None:
    return None if isinstance(value, str) else ("string_type", "Input should be a valid string")


def _boolean(value: object) -> Problem | None:
    return None if isinstance(value, bool) else ("bool_type", "Input should be a valid boolean")


def _array(value: object) -> Problem | None:
    return None if isinstance(value, list) else ("list_type", "Input should be a valid list")


def _anything(value: object) -> Problem | None:
    return None


_WXH: Final = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")


def _wxh(value: object) -> Problem | None:
    if isinstance(value, str) and _WXH.fullmatch(value):
        return None
    return "value_error", f"Invalid size format: {value!r}. Expected format: 'WIDTHxHEIGHT'."


def _dims(value: str) -> tuple[int, int]:
    match = _WXH.fullmatch(value)
    assert match is not None
    return int(match.group(1)), int(match.group(2))


# ============================================================================================
# Sizes
# ============================================================================================

_XAI_RATIOS: Final = (
    "1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2",
    "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1", "auto",
)  # fmt: skip
_OPENROUTER_RATIOS: Final = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
)  # fmt: skip
# Pixel sizes per ratio at 1K, as Google documents them for gemini-2.5-flash-image (the model
# most OpenRouter image traffic goes to); 2K and 4K double and quadruple the edges.
_GEMINI_1K: Final[Mapping[str, tuple[int, int]]] = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184),
    "4:3": (1184, 864), "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344),
    "16:9": (1344, 768), "21:9": (1536, 672),
}  # fmt: skip
_TOGETHER_RATIOS: Final = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21")


def _ratio_dims(ratio: str, base: int, multiple: int = 16) -> tuple[int, int]:
    """Emulator convention: about ``base``² pixels at that ratio, edges rounded to
    ``multiple``."""
    if ratio == "auto":
        return base, base
    left, _, right = ratio.partition(":")
    aspect = float(left) / float(right)
    width = round(base * math.sqrt(aspect) / multiple) * multiple
    height = round(base / math.sqrt(aspect) / multiple) * multiple
    return width, height


# ============================================================================================
# The table entry
# ============================================================================================

ErrorBuilder = Callable[[int, str, str | None], Json]
"""``(status, message, param) -> body`` in the provider's main error shape."""


@dataclass(frozen=True)
class ProviderBehaviour:
    """One provider: data, plus the few functions where providers truly differ."""

    name: str
    routes: tuple[str, ...]
    fields: Mapping[str, Check]
    """Every request field the provider reads, with its check."""
    required: tuple[str, ...]
    unknown_fields: Literal["reject", "ignore"]
    unsupported: Mapping[str, str]
    """Fields the provider names but refuses (xAI ``size``), with the message."""
    n_field: str
    n_max: int
    error: ErrorBuilder
    error_shapes: Mapping[str, Callable[[str], Json]]
    """Named alternative error bodies for ``[[fault:provider_error:SHAPE]]``."""
    resolve: Callable[[Mapping[str, Any]], tuple[int, int] | Problem]
    """Image size for a request whose fields passed their checks (or a problem)."""
    render: Callable[[RenderInput], ProviderReply]
    auth: Literal["bearer", "bearer_optional"] = "bearer"
    """``bearer_optional``: self-hosted servers, which only check a key when started with one;
    the emulator checks it only if an Authorization header is sent."""
    unauthorized: Callable[[bool], tuple[int, Json]] | None = None
    """``(key_sent) -> (status, body)``; default: 401 in :attr:`error`'s shape."""
    validation_status: int = 400
    missing_status: int = 400
    content_policy: Mapping[str, Callable[[RenderInput], ProviderReply]] = field(
        default_factory=dict
    )
    rate_limit_status: int = 429
    server_error_status: int = 500
    validate_extra: Callable[[Mapping[str, Any]], tuple[int, str, str, str] | None] | None = None
    """Rules checked after the field checks: ``(status, param, kind, message)`` of the first
    broken one (vLLM-Omni's handler rejects a bad size with 400 after pydantic passed it)."""
    problem_body: Callable[[int, str, str, str, object], Json] | None = None
    """``(status, param, kind, message, input) -> body`` for validation errors when the
    provider's body is not :attr:`error`'s (vLLM-Omni's FastAPI ``detail`` list)."""

    def serves(self, path: str) -> bool:
        return path.rstrip("/") in self.routes

    # ---- the pipeline -------------------------------------------------------------------
    def handle(
        self, path: str, headers: Mapping[str, str], raw: bytes, ctx: ProviderContext
    ) -> ProviderReply:
        """Answer one generation request as this provider would."""
        if not self.serves(path):
            return ProviderReply(404, self.error(404, f"Not found: {path}", None))
        denied = self._check_auth(headers, ctx.api_key)
        if denied is not None:
            return denied
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return self._problem(
                self.validation_status,
                "body",
                "json_invalid",
                "Invalid JSON body",
                raw[:100].decode("utf-8", "replace"),
            )
        marker = _provider_marker(body.get("prompt"))
        asked = body.get(self.n_field)
        count = asked if isinstance(asked, int) and 1 <= asked <= self.n_max else 1
        request = RenderInput(self, body, (1024, 1024), ctx, count)
        if marker is not None:
            scripted = self._scripted(marker, request)
            if scripted is not None:
                return scripted
        invalid = self._validate(body)
        if invalid is not None:
            return invalid
        resolved = self.resolve(body)
        if isinstance(resolved[0], str):
            kind, message = str(resolved[0]), str(resolved[1])
            param = next((f for f in ("size", "image_size", "aspect_ratio") if f in body), "size")
            return self._problem(self.validation_status, param, kind, message, body.get(param))
        dims = (int(resolved[0]), int(resolved[1]))
        count = int(body.get(self.n_field) or 1)
        return self.render(RenderInput(self, body, dims, ctx, count))

    def _check_auth(self, headers: Mapping[str, str], api_key: str) -> ProviderReply | None:
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else ""
        if self.auth == "bearer_optional" and not value:
            return None
        if bearer == api_key:
            return None
        if self.unauthorized is not None:
            status, payload = self.unauthorized(bool(bearer))
            return ProviderReply(status, payload)
        message = "Incorrect API key provided." if bearer else "No API key provided."
        return ProviderReply(401, self.error(401, message, None))

    def _problem(
        self, status: int, param: str, kind: str, message: str, value: object
    ) -> ProviderReply:
        if self.problem_body is not None:
            return ProviderReply(status, self.problem_body(status, param, kind, message, value))
        text = message if param in ("body", "") else f"{param}: {message}"
        return ProviderReply(status, self.error(status, text, param))

    def _validate(self, body: Mapping[str, Any]) -> ProviderReply | None:
        for name in self.required:
            if body.get(name) in (None, ""):
                return self._problem(self.missing_status, name, "missing", "Field required", body)
        for name, message in self.unsupported.items():
            if body.get(name) is not None:
                return self._problem(
                    self.validation_status, name, "value_error", message, body[name]
                )
        for name, value in body.items():
            check = self.fields.get(name)
            if check is None:
                if self.unknown_fields == "reject" and name not in self.unsupported:
                    return self._unknown(name)
                continue
            if value is None:
                continue
            problem = check(value)
            if problem is not None:
                return self._problem(self.validation_status, name, problem[0], problem[1], value)
        count = body.get(self.n_field)
        if count is not None and isinstance(count, int) and not 1 <= count <= self.n_max:
            kind = "less_than_equal" if count > self.n_max else "greater_than_equal"
            message = f"{self.n_field} must be between 1 and {self.n_max}, got {count}"
            return self._problem(self.validation_status, self.n_field, kind, message, count)
        if self.validate_extra is not None:
            broken = self.validate_extra(body)
            if broken is not None:
                status, param, kind, message = broken
                return self._problem(status, param, kind, message, body.get(param))
        return None

    def _unknown(self, name: str) -> ProviderReply:
        message = f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
        return ProviderReply(400, self.error(400, message, name))

    def _scripted(
        self, marker: tuple[str, str | None], request: RenderInput
    ) -> ProviderReply | None:
        name, arg = marker
        if name == "provider_error":
            shape = arg or "default"
            if shape == "in_200":
                return ProviderReply(
                    200,
                    self.error(500, "The server had an error while processing your request.", None),
                )
            build = self.error_shapes.get(shape)
            if build is None:
                known = ", ".join(["in_200", *self.error_shapes])
                return ProviderReply(
                    500,
                    self.error(
                        500,
                        f"emulator: {self.name} has no error shape {shape!r} (known: {known})",
                        None,
                    ),
                )
            return ProviderReply(400, build(f"Scripted {self.name} error ({shape})."))
        if name == "content_policy":
            variant = arg or "default"
            block = self.content_policy.get(variant)
            if block is None:
                known = ", ".join(self.content_policy)
                return ProviderReply(
                    500,
                    self.error(
                        500,
                        f"emulator: {self.name} has no content_policy variant {variant!r}"
                        f" (known: {known})",
                        None,
                    ),
                )
            return block(request)
        if name == "rate_limit":
            seconds = arg or "1"
            return ProviderReply(
                self.rate_limit_status,
                self.error(
                    self.rate_limit_status, "Rate limit exceeded. Please retry later.", None
                ),
                headers=(("retry-after", seconds),),
            )
        if name == "server_error":
            status = self.server_error_status
            return ProviderReply(status, self.error(status, "Internal server error.", None))
        return None


@dataclass(frozen=True)
class RenderInput:
    """A validated request on its way to a success body."""

    provider: ProviderBehaviour
    body: Mapping[str, Any]
    dims: tuple[int, int]
    ctx: ProviderContext
    count: int

    def images(self, output_format: str) -> list[bytes]:
        width, height = self.dims
        return [
            self.ctx.encode(
                output_format, width, height, f"{self.provider.name}-{self.ctx.request_id}-{i}"
            )
            for i in range(self.count)
        ]


PROVIDER_MARKERS: Final = frozenset(
    {"provider_error", "content_policy", "rate_limit", "server_error"}
)
"""Marker names this module answers in provider mode (before the emulator's own)."""
_MARKER: Final = re.compile(r"\[\[fault:([a-z0-9_]+)(?::([^\]]*))?\]\]")


def _provider_marker(prompt: object) -> tuple[str, str | None] | None:
    if not isinstance(prompt, str):
        return None
    match = _MARKER.search(prompt)
    if match is None or match.group(1) not in PROVIDER_MARKERS:
        return None
    return match.group(1), match.group(2)


def has_provider_marker(body: Mapping[str, Any] | None) -> bool:
    """True when the request's prompt holds a marker this module answers."""
    return body is not None and _provider_marker(body.get("prompt")) is not None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_MIME: Final = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


# ============================================================================================
# xAI
# ============================================================================================

_XAI_INVALID: Final = "Client specified an invalid argument"
# Emulator convention for the cost (1 USD = 1e10 ticks): USD per image by model.
_XAI_USD_PER_IMAGE: Final = {"grok-imagine-image-pro": 0.07, "grok-2-image": 0.07}
_XAI_DEFAULT_USD: Final = 0.02
_XAI_2K_MODELS: Final = frozenset({"grok-imagine-image-pro"})


def _xai_error(status: int, message: str, param: str | None) -> Json:
    """The ``{code, error}`` shape xAI's REST API answers (vercel/ai xai-error.ts, first schema)."""
    codes = {401: "Unauthenticated", 404: "Not found", 429: "Some resource has been exhausted",
             500: "Internal error"}  # fmt: skip
    return {"code": codes.get(status, _XAI_INVALID), "error": message}


def _xai_resolve(body: Mapping[str, Any]) -> tuple[int, int] | Problem:
    base = 2048 if body.get("resolution") == "2k" else 1024
    return _ratio_dims(str(body.get("aspect_ratio") or "auto"), base)


def _xai_extra(body: Mapping[str, Any]) -> tuple[int, str, str, str] | None:
    model = str(body.get("model") or "grok-imagine-image")
    if body.get("resolution") == "2k" and model not in _XAI_2K_MODELS:
        return 400, "resolution", "value_error", f"Resolution 2k is not supported by {model}."
    return None


def _xai_problem(status: int, param: str, kind: str, message: str, value: object) -> Json:
    """422 for a missing field is a plain-text deserialisation error (Rust/axum style;
    UNVERIFIED wording); every other problem is the ``{code, error}`` body."""
    if kind == "missing":
        return f"Failed to deserialize the JSON body into the target type: missing field `{param}`"
    return _xai_error(status, message if param in message else f"Invalid {param}: {message}", param)


def _xai_render(
    req: RenderInput, *, respect_moderation: bool = True, block_reason: str | None = None
) -> ProviderReply:
    as_url = req.body.get("response_format", "url") != "b64_json"
    items: list[dict[str, Any]] = []
    for image in [] if block_reason else req.images("jpeg"):
        item: dict[str, Any] = {
            "b64_json": None if as_url else _b64(image),
            "mime_type": "image/jpeg",
            "revised_prompt": "",
            "url": req.ctx.store(image, "jpeg") if as_url else None,
        }
        if not respect_moderation:
            item["respect_moderation"] = False
        items.append(item)
    model = str(req.body.get("model") or "grok-imagine-image")
    usd = _XAI_USD_PER_IMAGE.get(model, _XAI_DEFAULT_USD) * len(items)
    payload = {
        "block_reason": block_reason,
        "data": items,
        "usage": {"cost_in_usd_ticks": round(usd * 10_000_000_000)},
    }
    return ProviderReply(200, payload, images=len(items))


_XAI: Final = ProviderBehaviour(
    name="xai",
    routes=("/v1/images/generations",),
    fields={
        "model": _string,
        "prompt": _string,
        "n": _integer(),
        "aspect_ratio": _one_of(*_XAI_RATIOS),
        "resolution": _one_of("1k", "2k"),
        "quality": _one_of("low", "medium", "high"),
        "response_format": _one_of("url", "b64_json"),
        "user": _string,
        "output_format": _string,
        "sync_mode": _boolean,
    },
    required=("prompt",),
    unknown_fields="ignore",
    unsupported={
        "size": "Argument not supported: size. Use aspect_ratio and resolution instead.",
        "style": "Argument not supported: style.",
    },
    n_field="n",
    n_max=10,
    error=_xai_error,
    error_shapes={
        "default": lambda m: _xai_error(400, m, None),
        "code_string": lambda m: _xai_error(400, m, None),
        "envelope": lambda m: {
            "error": {
                "message": m,
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_argument",
            }
        },
        "string": lambda m: {"error": m},
    },
    resolve=_xai_resolve,
    render=_xai_render,
    missing_status=422,
    validate_extra=_xai_extra,
    problem_body=_xai_problem,
    content_policy={
        "default": lambda r: ProviderReply(
            400, _xai_error(400, "Generated image rejected by content moderation.", None)
        ),
        "respect_moderation": lambda r: _xai_render(r, respect_moderation=False),
        "block_reason": lambda r: _xai_render(
            r, block_reason="Prompt rejected by input moderation."
        ),
    },
)


# ============================================================================================
# Together AI
# ============================================================================================


def _together_error(status: int, message: str, param: str | None) -> Json:
    kinds = {401: "authentication_error", 429: "rate_limit_exceeded", 500: "server_error"}
    return {
        "error": {
            "message": message,
            "type": kinds.get(status, "invalid_request_error"),
            "param": param,
            "code": None,
        }
    }


def _together_resolve(body: Mapping[str, Any]) -> tuple[int, int] | Problem:
    if "width" not in body and "height" not in body and body.get("aspect_ratio"):
        return _ratio_dims(str(body["aspect_ratio"]), 1024, 8)
    return int(body.get("width") or 1024), int(body.get("height") or 1024)


def _together_render(req: RenderInput) -> ProviderReply:
    output_format = str(req.body.get("output_format") or "jpeg")
    as_url = req.body.get("response_format", "url") != "base64"
    data: list[dict[str, Any]] = []
    for index, image in enumerate(req.images(output_format)):
        if as_url:
            data.append({"index": index, "url": req.ctx.store(image, output_format), "type": "url"})
        else:
            data.append({"index": index, "b64_json": _b64(image), "type": "b64_json"})
    payload = {
        "id": f"{uuid.uuid4().hex[:16]}-{req.ctx.request_id[-6:]}",
        "model": req.body["model"],
        "object": "list",
        "data": data,
    }
    return ProviderReply(200, payload, images=len(data))


_TOGETHER: Final = ProviderBehaviour(
    name="together",
    routes=("/v1/images/generations",),
    fields={
        "model": _string,
        "prompt": _string,
        "width": _integer(64, 2048),
        "height": _integer(64, 2048),
        "aspect_ratio": _one_of(*_TOGETHER_RATIOS),
        "n": _integer(),
        "steps": _integer(1, 50),
        "seed": _integer(),
        "negative_prompt": _string,
        "image_url": _string,
        "reference_images": _array,
        "guidance_scale": _number(),
        "output_format": _one_of("jpeg", "png"),
        "response_format": _one_of("base64", "url"),
        "image_loras": _array,
        "disable_safety_checker": _boolean,
    },
    required=("model", "prompt"),
    unknown_fields="ignore",
    unsupported={},
    n_field="n",
    n_max=4,
    error=_together_error,
    error_shapes={
        "default": lambda m: _together_error(400, m, None),
        "envelope": lambda m: {"error": {"message": m}},
    },
    resolve=_together_resolve,
    render=_together_render,
    content_policy={
        "default": lambda r: ProviderReply(
            400, _together_error(400, "Image generation blocked: NSFW content detected.", None)
        ),
    },
)


# ============================================================================================
# DeepInfra (OpenAI-compatible route)
# ============================================================================================


def _deepinfra_error(status: int, message: str, param: str | None) -> Json:
    return {"error": {"message": message}}


def _deepinfra_resolve(body: Mapping[str, Any]) -> tuple[int, int] | Problem:
    return _dims(str(body.get("size") or "1024x1024"))


def _deepinfra_render(req: RenderInput) -> ProviderReply:
    prompt = str(req.body["prompt"])
    data = [{"b64_json": _b64(image), "revised_prompt": prompt} for image in req.images("png")]
    return ProviderReply(200, {"created": int(time.time()), "data": data}, images=len(data))


_DEEPINFRA: Final = ProviderBehaviour(
    name="deepinfra",
    routes=("/v1/openai/images/generations",),
    fields={
        "model": _string,
        "prompt": _string,
        "size": _wxh,
        "n": _integer(),
        "response_format": _one_of("b64_json"),
        "user": _string,
    },
    required=("model", "prompt"),
    unknown_fields="ignore",
    unsupported={},
    n_field="n",
    n_max=10,
    error=_deepinfra_error,
    error_shapes={
        "default": lambda m: _deepinfra_error(400, m, None),
        "detail": lambda m: {"detail": {"error": m}},
    },
    resolve=_deepinfra_resolve,
    render=_deepinfra_render,
    content_policy={
        "default": lambda r: ProviderReply(
            400, _deepinfra_error(400, "Prompt rejected by the safety checker.", None)
        )
    },
)


# ============================================================================================
# Gemini OpenAI-compatibility layer
# ============================================================================================

_GOOGLE_STATUS: Final = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                         404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}  # fmt: skip


def _gemini_error(status: int, message: str, param: str | None) -> Json:
    """A JSON list around Google's error object, as the compatibility layer answers."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    if status == 400:
        violation = (
            {"description": message} if param is None else {"field": param, "description": message}
        )
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
        ]
    return [{"error": error}]


def _gemini_unauthorized(key_sent: bool) -> tuple[int, Json]:
    """Google answers a wrong key with 400 ``API_KEY_INVALID`` and no key with 401 (wording as
    Google's APIs send it; not seen on this route)."""
    if key_sent:
        # Google's body for a wrong key, as widely reported from its live APIs: 400
        # INVALID_ARGUMENT with an ErrorInfo whose reason is API_KEY_INVALID.
        body = _gemini_error(400, "API key not valid. Please pass a valid API key.", None)
        body[0]["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
        return 400, body
    message = (
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API."
    )
    return 401, _gemini_error(401, message, None)


def _gemini_render(req: RenderInput) -> ProviderReply:
    model = str(req.body.get("model") or "")
    output_format = "png" if model.startswith("imagen") else "jpeg"  # Google picks the format
    data = [{"b64_json": _b64(image)} for image in req.images(output_format)]
    return ProviderReply(200, {"created": int(time.time()), "data": data}, images=len(data))


_GEMINI: Final = ProviderBehaviour(
    name="gemini",
    routes=("/v1beta/openai/images/generations",),
    fields={
        "model": _string,
        "prompt": _string,
        "n": _integer(),
        "size": _wxh,
        "response_format": _one_of("b64_json"),
    },
    required=("model", "prompt"),
    unknown_fields="reject",
    unsupported={},
    n_field="n",
    n_max=4,
    error=_gemini_error,
    error_shapes={
        "default": lambda m: _gemini_error(400, m, None),
        "list": lambda m: _gemini_error(400, m, None),
        "object": lambda m: _gemini_error(400, m, None)[0],
    },
    resolve=lambda body: _dims(str(body.get("size") or "1024x1024")),
    render=_gemini_render,
    unauthorized=_gemini_unauthorized,
    content_policy={
        "default": lambda r: _gemini_render(RenderInput(r.provider, r.body, r.dims, r.ctx, 0))
    },
)


# ============================================================================================
# OpenRouter unified images route
# ============================================================================================


def _openrouter_error(status: int, message: str, param: str | None) -> Json:
    return {"error": {"code": status, "message": message}}


def _openrouter_resolve(body: Mapping[str, Any]) -> tuple[int, int] | Problem:
    ratio = str(body.get("aspect_ratio") or "1:1")
    scale = {"1K": 1, "2K": 2, "4K": 4}[str(body.get("image_size") or "1K")]
    width, height = _GEMINI_1K[ratio]
    return width * scale, height * scale


def _openrouter_render(req: RenderInput) -> ProviderReply:
    output_format = str(req.body.get("output_format") or "png")
    data = [
        {"b64_json": _b64(image), "media_type": _MIME[output_format]}
        for image in req.images(output_format)
    ]
    tokens = 1290 * len(data)  # emulator convention: tokens per image as Gemini reports 1K images
    cost = round(0.039 * len(data), 6)
    usage = {
        "prompt_tokens": 0,
        "completion_tokens": tokens,
        "total_tokens": tokens,
        "cost": cost,
        "completion_tokens_details": {"image_tokens": tokens},
        "cost_details": {"upstream_inference_cost": cost},
    }
    return ProviderReply(
        200, {"created": int(time.time()), "data": data, "usage": usage}, images=len(data)
    )


_OPENROUTER: Final = ProviderBehaviour(
    name="openrouter",
    routes=("/api/v1/images",),
    fields={
        "model": _string,
        "prompt": _string,
        "n": _integer(),
        "aspect_ratio": _one_of(*_OPENROUTER_RATIOS),
        "image_size": _one_of("1K", "2K", "4K"),
        "seed": _integer(),
        "output_format": _one_of("png", "jpeg", "webp"),
        "quality": _string,
        "background": _string,
        "output_compression": _integer(0, 100),
        "input_references": _array,
        "response_format": _one_of("b64_json"),
    },
    required=("model", "prompt"),
    unknown_fields="ignore",
    unsupported={
        "size": "size is not supported by the images API; use aspect_ratio (and image_size)."
    },
    n_field="n",
    n_max=4,
    error=_openrouter_error,
    error_shapes={
        "default": lambda m: _openrouter_error(400, m, None),
        "metadata": lambda m: {
            "error": {"code": 400, "message": m, "metadata": {"provider_name": "Google", "raw": m}}
        },
    },
    resolve=_openrouter_resolve,
    render=_openrouter_render,
    unauthorized=lambda sent: (
        401,
        _openrouter_error(401, "User not found." if sent else "No auth credentials found", None),
    ),
    content_policy={
        "default": lambda r: ProviderReply(
            403,
            {
                "error": {
                    "code": 403,
                    "message": "Input was flagged by moderation.",
                    "metadata": {
                        "reasons": ["violence"],
                        "flagged_input": str(r.body.get("prompt", ""))[:100],
                        "provider_name": "Google",
                        "model_slug": str(r.body.get("model", "")),
                    },
                }
            },
        ),
    },
)


# ============================================================================================
# vLLM-Omni
# ============================================================================================


def _detail_error(status: int, message: str, param: str | None) -> Json:
    return {"detail": message}


def _vllm_problem(status: int, param: str, kind: str, message: str, value: object) -> Json:
    """pydantic v2 items under FastAPI's ``detail`` (422); a handler's HTTPException is a
    string ``detail`` (400)."""
    if status != 422:
        return {"detail": message}
    item: dict[str, Any] = {"type": kind, "loc": ["body", param], "msg": message, "input": value}
    if kind == "value_error":
        item["msg"] = f"Value error, {message}"
        item["ctx"] = {"error": {}}
    return {"detail": [item]}


def _vllm_render(req: RenderInput) -> ProviderReply:
    output_format = str(req.body.get("output_format") or "png")
    images = req.images(output_format)
    if req.body.get("response_format") == "file" and len(images) == 1:
        filename = f"image_{req.ctx.request_id[-8:]}.png"
        disposition = ("content-disposition", f'attachment; filename="{filename}"')
        return ProviderReply(200, images[0], (disposition,), images=1, content_type="image/png")
    width, height = req.dims
    data = [{"b64_json": _b64(image), "url": None, "revised_prompt": None} for image in images]
    payload = {
        "created": int(time.time()),
        "data": data,
        "output_format": output_format,
        "size": f"{width}x{height}",
    }
    return ProviderReply(200, payload, images=len(data))


_VLLM_FORMATS: Final = ("b64_json", "file")


def _vllm_response_format(value: object) -> Problem | None:
    if value in _VLLM_FORMATS:
        return None
    if value == "url":
        return (
            "value_error",
            "Only 'b64_json' or 'file' response format is supported, got: ResponseFormat.URL",
        )
    return "enum", "Input should be 'b64_json', 'url' or 'file'"


def _vllm_size_late(body: Mapping[str, Any]) -> tuple[int, str, str, str] | None:
    """The handler's ``parse_size`` after pydantic: 400 with a string ``detail`` (message as
    docs/serving/image_generation_api.md quotes it)."""
    size = body.get("size")
    if isinstance(size, str) and _WXH.fullmatch(size) is None:
        message = (
            f"Invalid size format: '{size}'. Expected format: 'WIDTHxHEIGHT' (e.g., '1024x1024')."
        )
        return 400, "size", "value_error", message
    return None


def _vllm_size(value: object) -> Problem | None:
    # pydantic only checks "a string containing x"; parse_size rejects the rest later with 400.
    if isinstance(value, str) and "x" in value:
        return None
    return "value_error", "size must be in format 'WIDTHxHEIGHT' (e.g., '1024x1024')"


_VLLM: Final = ProviderBehaviour(
    name="vllm-omni",
    routes=("/v1/images/generations",),
    fields={
        "prompt": _string,
        "model": _string,
        "n": _integer(1, 10),
        "size": _vllm_size,
        "response_format": _vllm_response_format,
        "user": _string,
        "negative_prompt": _string,
        "num_inference_steps": _integer(1, 200),
        "guidance_scale": _number(0.0, 20.0),
        "true_cfg_scale": _number(0.0, 20.0),
        "seed": _integer(),
        "output_format": _one_of("png", "jpeg", "webp"),
        "layers": _integer(2, 10),
        "lora": _anything,
        "extra_params": _anything,
    },
    required=("prompt",),
    unknown_fields="ignore",
    unsupported={},
    n_field="n",
    n_max=10,
    error=_detail_error,
    error_shapes={
        "default": lambda m: {"detail": m},
        "detail_string": lambda m: {"detail": m},
        "detail_list": lambda m: {
            "detail": [{"type": "value_error", "loc": ["body"], "msg": m, "input": None}]
        },
    },
    resolve=lambda body: _dims(str(body.get("size") or "1024x1024")),
    render=_vllm_render,
    auth="bearer_optional",
    unauthorized=lambda sent: (401, {"error": "Unauthorized"}),
    validation_status=422,
    missing_status=422,
    server_error_status=503,
    validate_extra=_vllm_size_late,
    problem_body=_vllm_problem,
    content_policy={
        "default": lambda r: ProviderReply(
            400, {"detail": "Request blocked by the safety checker."}
        )
    },
)


# ============================================================================================
# LocalAI
# ============================================================================================


def _localai_error(status: int, message: str, param: str | None) -> Json:
    return {"error": {"code": status, "message": message, "type": ""}}


def _localai_resolve(body: Mapping[str, Any]) -> tuple[int, int] | Problem:
    size = str(body.get("size") or "")
    if "x" not in size:
        return 512, 512  # LocalAI: "Invalid size, using default 512x512"
    left, _, right = size.partition("x")
    if not (left.isdigit() and right.isdigit()) or "x" in right:
        return "value_error", "failed processing request: invalid value for 'size'"
    return int(left), int(right)


def _localai_render(req: RenderInput) -> ProviderReply:
    as_b64 = req.body.get("response_format") == "b64_json"
    data: list[dict[str, Any]] = []
    for image in req.images("png"):
        if as_b64:
            data.append({"b64_json": _b64(image)})
        else:
            served = req.ctx.store(image, "png")
            name = served.split("?", 1)[0].rsplit("/", 1)[-1]
            data.append({"url": f"{req.ctx.root_url}/generated-images/{name}"})
    payload = {"created": int(time.time()), "id": str(uuid.uuid4()), "data": data}
    return ProviderReply(200, payload, images=len(data))


def _localai_problem(status: int, param: str, kind: str, message: str, value: object) -> Json:
    return _localai_error(status, message, param)


def _response_format_object_or_string(value: object) -> Problem | None:
    return (
        None
        if isinstance(value, (str, dict))
        else ("string_type", "response_format must be a string")
    )


_LOCALAI: Final = ProviderBehaviour(
    name="localai",
    routes=("/v1/images/generations",),
    fields={
        "model": _string,
        "prompt": _string,
        "n": _integer(1),
        "size": _string,
        "step": _integer(0),
        "mode": _integer(0),
        "response_format": _response_format_object_or_string,
        "file": _string,
        "seed": _integer(),
    },
    required=(),
    unknown_fields="ignore",
    unsupported={},
    n_field="n",
    n_max=1_000,
    error=_localai_error,
    error_shapes={"default": lambda m: _localai_error(500, m, None)},
    resolve=_localai_resolve,
    render=_localai_render,
    auth="bearer_optional",
    unauthorized=lambda sent: (
        401,
        {
            "error": {
                "code": 401,
                "message": "An authentication key is required",
                "type": "invalid_request_error",
            }
        },
    ),
    validation_status=500,
    problem_body=_localai_problem,
    content_policy={
        "default": lambda r: ProviderReply(
            500, _localai_error(500, "backend refused the prompt", None)
        )
    },
)


# ============================================================================================
# SiliconFlow
# ============================================================================================


def _siliconflow_error(status: int, message: str, param: str | None) -> Json:
    codes = {401: 20008, 429: 50603, 500: 50500}
    return {"code": codes.get(status, 20015), "message": message, "data": None}


def _siliconflow_render(req: RenderInput) -> ProviderReply:
    images = [{"url": req.ctx.store(image, "png")} for image in req.images("png")]
    seed = req.body.get("seed")
    payload = {
        "images": images,
        "timings": {"inference": 1.25},
        "seed": seed if isinstance(seed, int) else 1234567890,
    }
    return ProviderReply(
        200, payload, headers=(("x-siliconcloud-trace-id", req.ctx.request_id),), images=len(images)
    )


_SILICONFLOW: Final = ProviderBehaviour(
    name="siliconflow",
    routes=("/v1/images/generations",),
    fields={
        "model": _string,
        "prompt": _string,
        "image_size": _wxh,
        "batch_size": _integer(1, 4),
        "num_inference_steps": _integer(1, 100),
        "guidance_scale": _number(0.0, 20.0),
        "seed": _integer(0, 9_999_999_999),
        "negative_prompt": _string,
        "image": _string,
    },
    required=("model", "prompt"),
    unknown_fields="ignore",
    unsupported={},
    n_field="batch_size",
    n_max=4,
    error=_siliconflow_error,
    error_shapes={"default": lambda m: _siliconflow_error(400, m, None)},
    resolve=lambda body: _dims(str(body.get("image_size") or "1024x1024")),
    render=_siliconflow_render,
    unauthorized=lambda sent: (401, _siliconflow_error(401, "Invalid token", None)),
    content_policy={
        "default": lambda r: ProviderReply(
            400, _siliconflow_error(400, "The prompt contains sensitive content.", None)
        )
    },
)


PROVIDERS: Final[Mapping[str, ProviderBehaviour]] = {
    behaviour.name: behaviour
    for behaviour in (
        _XAI,
        _TOGETHER,
        _DEEPINFRA,
        _GEMINI,
        _OPENROUTER,
        _VLLM,
        _LOCALAI,
        _SILICONFLOW,
    )
}
"""Provider name -> behaviour (``Emulator(provider=NAME)``)."""

"""Prices as data, and the arithmetic that turns them into estimates.

Every entry of :data:`DEFAULT_PRICES` names the public page it was read from and the day
it was read; ``docs/cost.md#prices`` lists them with the caveats. Where OpenAI's own page
was not among the stored copies, the entry says it comes from a secondary source. A model
without a price found has no entry, so it gets no estimate rather than a wrong one; users
add or override entries (a gateway's own prices) with :meth:`PriceTable.with_prices`.

Two calculations read the table:

* :func:`estimate_cost` before a call: the planned request bodies (what coercion sends, or
  a dry run shows) priced by OpenAI's published output tokens per quality and size, or by
  the per-image price, plus the prompt's text tokens (estimated from its length);
* :func:`cost_from_usage` after a call: the token counts the API returned (``usage``), or
  the per-image price when there are none.

Both are estimates and say so: OpenAI's invoice is the only exact figure.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_imagegen.registry import ImageModelProfile, ModelRegistry, default_registry

__all__ = [
    "DEFAULT_PRICES",
    "PARTIAL_IMAGE_OUTPUT_TOKENS",
    "Cost",
    "CostEstimate",
    "ModelPrice",
    "OutputTokenRule",
    "PriceTable",
    "TokenPrices",
    "cost_from_usage",
    "default_price_table",
    "estimate_cost",
    "format_usd",
]

_MILLION = 1_000_000
# The prompt's tokens are not counted before the call (that needs the model's tokenizer);
# about 4 characters per token is OpenAI's rule of thumb for English text.
_CHARS_PER_TOKEN = 4
# OpenAI's image generation guide, "Partial images cost": "each partial image will incur an
# additional 100 image output tokens" (docs/models.md#streaming).
PARTIAL_IMAGE_OUTPUT_TOKENS = 100
_READ_ON = dt.date(2026, 11, 30)
_KEY = re.compile(r"[^:\s]+:\d{1,5}x\d{1,5}")
_WXH = re.compile(r"(\d{1,5})x(\d{1,5})")


@dataclass(frozen=True)
class TokenPrices:
    """USD per 1M tokens, as OpenAI publishes them for the GPT image models."""

    text_input: float
    image_input: float | None
    image_output: float
    cached_text_input: float | None = None
    cached_image_input: float | None = None

    def __post_init__(self) -> None:
        for name in ("text_input", "image_input", "image_output"):
            _check_price(name, getattr(self, name))
        _check_price("cached_text_input", self.cached_text_input)
        _check_price("cached_image_input", self.cached_image_input)


@dataclass(frozen=True)
class OutputTokenRule:
    """Image output tokens for any ``WxH`` (gpt-image-2 takes sizes by rule, so no table
    can list them all).

    ``tokens = ceil(f * s * (area_offset + w * h) / area_denominator)`` where ``f`` is the
    quality's factor and ``s = floor((2 * f * short_edge + long_edge) / (2 * long_edge))``.
    This is a reconstruction of OpenAI's cost calculator published on OpenAI's developer
    forum (a secondary source, see ``docs/cost.md#prices``); it reproduces every output the
    calculator was quoted for.
    """

    quality_factors: Mapping[str, int] = field(hash=False)
    area_offset: int = 2_000_000
    area_denominator: int = 4_000_000

    def tokens(self, quality: str, width: int, height: int) -> int | None:
        """Output tokens of one image, or ``None`` for a quality the rule does not know."""
        factor = self.quality_factors.get(quality)
        if factor is None or width <= 0 or height <= 0:
            return None
        long_edge, short_edge = max(width, height), min(width, height)
        short_factor = (2 * factor * short_edge + long_edge) // (2 * long_edge)
        numerator = factor * short_factor * (self.area_offset + width * height)
        return -(-numerator // self.area_denominator)  # integer ceiling


@dataclass(frozen=True)
class ModelPrice:
    """What one model costs, with where and when that was read.

    ``per_image`` and ``output_tokens`` are keyed ``f"{quality}:{size}"``
    (``"standard:1024x1024"``, ``"hd:1792x1024"``, ``"low:1024x1536"``); models without a
    quality (dall-e-2) use ``"standard"``. ``output_tokens`` are the image output tokens per
    image OpenAI publishes for estimates; ``output_token_rule`` computes them for sizes given
    by rule.
    """

    model: str
    tokens: TokenPrices | None = None
    per_image: Mapping[str, float] = field(default_factory=dict, hash=False)
    output_tokens: Mapping[str, int] = field(default_factory=dict, hash=False)
    source: str = ""
    read_on: dt.date | None = None
    note: str = ""
    output_token_rule: OutputTokenRule | None = None

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise ValueError("ModelPrice.model must name a model, e.g. 'gpt-image-1'")
        for table_name, table in (
            ("per_image", self.per_image),
            ("output_tokens", self.output_tokens),
        ):
            for key, value in table.items():
                if not _KEY.fullmatch(key):
                    msg = (
                        f"{self.model}: {table_name} key {key!r} is not 'quality:WIDTHxHEIGHT' "
                        "(e.g. 'standard:1024x1024', 'high:1536x1024')"
                    )
                    raise ValueError(msg)
                _check_price(f"{self.model} {table_name}[{key!r}]", value)
        # Frozen copies: a caller mutating its dict later must not change the table.
        object.__setattr__(self, "per_image", dict(self.per_image))
        object.__setattr__(self, "output_tokens", dict(self.output_tokens))

    def output_tokens_for(self, quality: str, size: str) -> int | None:
        """Published (or rule-computed) output tokens of one image, if known."""
        listed = self.output_tokens.get(f"{quality}:{size}")
        if listed is not None:
            return listed
        wxh = _WXH.fullmatch(size)
        if self.output_token_rule is None or wxh is None:
            return None
        return self.output_token_rule.tokens(quality, int(wxh[1]), int(wxh[2]))

    def qualities(self) -> tuple[str, ...]:
        """The qualities this entry prices."""
        keys = [*self.output_tokens, *self.per_image]
        rule = tuple(self.output_token_rule.quality_factors) if self.output_token_rule else ()
        return tuple(dict.fromkeys([*(k.split(":")[0] for k in keys), *rule]))

    def sizes(self, quality: str) -> tuple[str, ...]:
        """The sizes this entry lists for ``quality``."""
        keys = [*self.output_tokens, *self.per_image]
        return tuple(dict.fromkeys(k.split(":")[1] for k in keys if k.split(":")[0] == quality))


def _check_price(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")


# --- The prices -----------------------------------------------------------------------------
# Read on 2026-11-30 from the stored copies of the pages named in each entry; docs/cost.md
# lists them. Keys follow the registry's sizes and qualities (registry.py).

_GPT_IMAGE_SIZES = ("1024x1024", "1024x1536", "1536x1024")


def _by_quality(rows: Mapping[str, tuple[float, float, float]]) -> dict[str, float]:
    return {
        f"{quality}:{size}": value
        for quality, values in rows.items()
        for size, value in zip(_GPT_IMAGE_SIZES, values, strict=True)
    }


def _tokens_by_quality(rows: Mapping[str, tuple[int, int, int]]) -> dict[str, int]:
    return {
        f"{quality}:{size}": value
        for quality, values in rows.items()
        for size, value in zip(_GPT_IMAGE_SIZES, values, strict=True)
    }


# OpenAI's image generation guide, "Cost and latency": image output tokens per image for the
# GPT image 1 models (1024x1024, 1024x1536, 1536x1024). Read from its quotation on OpenAI's
# developer forum; every gpt-image-1 usage in tests/data/recorded matches it.
_GPT_IMAGE_1_OUTPUT_TOKENS = _tokens_by_quality(
    {"low": (272, 408, 400), "medium": (1056, 1584, 1568), "high": (4160, 6240, 6208)}
)
_FORUM_OUTPUT_TABLE_PAGE = (
    "https://community.openai.com/t/what-is-the-difference-between-image-generation-and-"
    "output-of-image-tokens/1371851"
)

DEFAULT_PRICES: tuple[ModelPrice, ...] = (
    ModelPrice(
        model="gpt-image-1",
        tokens=TokenPrices(
            text_input=5.00,
            image_input=10.00,
            image_output=40.00,
            cached_text_input=1.25,
            cached_image_input=2.50,
        ),
        per_image=_by_quality(
            {
                "low": (0.011, 0.016, 0.016),
                "medium": (0.042, 0.063, 0.063),
                "high": (0.167, 0.25, 0.25),
            }
        ),
        output_tokens=_GPT_IMAGE_1_OUTPUT_TOKENS,
        source=(
            "https://developers.openai.com/ja-JP/api/docs/models/gpt-image-1 (OpenAI's model "
            f"page: token and per-image prices); {_FORUM_OUTPUT_TABLE_PAGE} (output tokens)"
        ),
        read_on=_READ_ON,
        note=(
            "output tokens per quality and size: secondary source (OpenAI's guide quoted on "
            "its forum), matching the recorded usage; OpenAI's page says gpt-image-1 was "
            "retired on 2026-10-23"
        ),
    ),
    ModelPrice(
        model="gpt-image-1-mini",
        tokens=TokenPrices(
            text_input=2.00,
            image_input=2.50,
            image_output=8.00,
            cached_text_input=0.20,
            cached_image_input=0.25,
        ),
        per_image=_by_quality(
            {
                "low": (0.005, 0.006, 0.006),
                "medium": (0.011, 0.015, 0.015),
                "high": (0.036, 0.052, 0.052),
            }
        ),
        source="https://developers.openai.com/de-DE/api/docs/models/gpt-image-1-mini",
        read_on=_READ_ON,
        note=(
            "no output-token table: gpt-image-1's table at $8/1M does not give OpenAI's "
            "per-image prices, so estimates use the per-image price"
        ),
    ),
    ModelPrice(
        model="gpt-image-1.5",
        tokens=TokenPrices(text_input=5.00, image_input=8.00, image_output=32.00),
        output_tokens=_GPT_IMAGE_1_OUTPUT_TOKENS,
        source=(
            "https://www.llmreference.com/model/gpt-image-1.5/openai-api (image input $8, "
            "output $32 per 1M, refreshed 2026-05-10); "
            "https://docs.apiyi.com/en/api-capabilities/gpt-image-1-5 (text input $5 per 1M); "
            f"{_FORUM_OUTPUT_TABLE_PAGE} (output tokens billed at $32/1M)"
        ),
        read_on=_READ_ON,
        note=(
            "secondary sources only (OpenAI's page was not among the stored copies); cached "
            "input prices not found"
        ),
    ),
    ModelPrice(
        model="gpt-image-2",
        tokens=TokenPrices(
            text_input=5.00,
            image_input=8.00,
            image_output=30.00,
            cached_text_input=1.25,
            cached_image_input=2.00,
        ),
        output_token_rule=OutputTokenRule(quality_factors={"low": 16, "medium": 48, "high": 96}),
        source=(
            "https://www.ai-primer.com/engineer/stories/openai-gpt-image-2-api-pricing and "
            "https://xairouter.com/en/models/gpt-image-2/ (both quoting OpenAI's pricing "
            "page); https://community.openai.com/t/gpt-image-2-output-pricing-calculator-"
            "online-and-in-your-code/1382699 (output tokens for any size)"
        ),
        read_on=_READ_ON,
        note=(
            "secondary sources only; the output-token rule reconstructs OpenAI's calculator "
            "and gives its quoted 7024 (high 1024x1024) and 5488 (high 1536x1024) tokens"
        ),
    ),
    ModelPrice(
        model="dall-e-3",
        per_image={
            "standard:1024x1024": 0.04,
            "standard:1024x1792": 0.08,
            "standard:1792x1024": 0.08,
            "hd:1024x1024": 0.08,
            "hd:1024x1792": 0.12,
            "hd:1792x1024": 0.12,
        },
        source=(
            "https://github.com/kevinhermawan/Canvas/blob/main/model-info.json (from "
            "openai.com/pricing, updated 2023-12-25); "
            "https://docs.dev.xavier.icvr.xyz/models/openai/dall-e-3.html"
        ),
        read_on=_READ_ON,
        note=(
            "secondary sources: OpenAI's dall-e-3 page no longer lists prices (shut down "
            "at OpenAI on 2026-05-12; gateways may charge otherwise)"
        ),
    ),
    ModelPrice(
        model="dall-e-2",
        per_image={
            "standard:256x256": 0.016,
            "standard:512x512": 0.018,
            "standard:1024x1024": 0.02,
        },
        source=(
            "https://github.com/kevinhermawan/Canvas/blob/main/model-info.json (from "
            "openai.com/pricing, updated 2023-12-25); "
            "https://docs.dev.xavier.icvr.xyz/models/openai/dall-e-2.html"
        ),
        read_on=_READ_ON,
        note=(
            "secondary sources: OpenAI's dall-e-2 page no longer lists prices (shut down "
            "at OpenAI on 2026-05-12; gateways may charge otherwise)"
        ),
    ),
)


class PriceTable:
    """Model name → :class:`ModelPrice`, resolving dated snapshots like the registry.

    A name the table lacks is looked up in the registry: a dated snapshot
    (``gpt-image-1-2025-04-15``) gets its family's price. A name declared ``like=`` another
    model (``register_model("flux-dev", like="dall-e-3")``) or a gateway model gets none:
    its price is its provider's, so add it with :meth:`with_prices`.
    """

    def __init__(
        self,
        prices: Iterable[ModelPrice] = DEFAULT_PRICES,
        *,
        registry: ModelRegistry | None = None,
    ) -> None:
        self._prices: dict[str, ModelPrice] = {_key(p.model): p for p in prices}
        self._registry = registry

    def get(self, model: str) -> ModelPrice | None:
        """The price of ``model``; ``None`` means no estimate."""
        own = self._prices.get(_key(model))
        if own is not None:
            return own
        registry = self._registry or default_registry
        profile = registry.get(model)
        if profile.permissive or _key(model) in {_key(name) for name in registry.known()}:
            return None  # a gateway model, or one registered under its own name
        return self._prices.get(_key(profile.family))

    def with_prices(self, *prices: ModelPrice) -> PriceTable:
        """A copy with ``prices`` added, replacing entries of the same model."""
        return PriceTable([*self._prices.values(), *prices], registry=self._registry)

    def models(self) -> tuple[str, ...]:
        """The models with an entry of their own."""
        return tuple(price.model for price in self._prices.values())


def _key(model: str) -> str:
    return model.strip().lower()


_DEFAULT_TABLE = PriceTable()


def default_price_table() -> PriceTable:
    """The table of :data:`DEFAULT_PRICES`."""
    return _DEFAULT_TABLE


# --- Estimates and costs ----------------------------------------------------------------------


def format_usd(usd: float) -> str:
    """Dollars for people: cents from $1 up (``$1.25``), two significant digits below
    (``$0.17``, ``$0.042``, ``$0.0059``), and ``less than $0.0001`` for crumbs."""
    if usd <= 0:
        return "$0.00"
    if usd < 0.0001:
        return "less than $0.0001"
    short = f"{usd:#.2g}"
    if float(short) >= 1:
        return f"${usd:,.2f}"
    return f"${short}"


@dataclass(frozen=True)
class CostEstimate:
    """What the planned requests should cost, before they are sent (an estimate)."""

    usd: float
    per_request: tuple[float, ...]
    assumption: str

    def describe(self) -> str:
        """``about $0.17 (estimate: ...)``."""
        return f"about {format_usd(self.usd)} (estimate: {self.assumption})"


@dataclass(frozen=True)
class Cost:
    """What a finished call cost, from the returned usage or the per-image price."""

    usd: float
    basis: str
    """``"reported cost"`` (the provider's own figure in its usage: xAI, OpenRouter),
    ``"usage"`` (the returned token counts), ``"per-image price"`` (no usage returned), or
    ``"published output tokens"`` (no usage and no per-image price: the model's output
    tokens per quality and size at its output price)."""

    def describe(self) -> str:
        """One short line for the LLM."""
        if self.basis == "reported cost":
            return f"Cost: {format_usd(self.usd)} (as the provider reported it)."
        source = {
            "usage": "the reported token usage",
            "per-image price": "the published per-image price",
        }.get(self.basis, f"the {self.basis}")
        return f"Cost: about {format_usd(self.usd)} (estimate from {source})."


@dataclass(frozen=True)
class _Priced:
    """One image's output priced: ``label`` names its quality and size, ``detail`` how."""

    usd: float
    quality: str
    size: str
    label: str
    detail: str


def estimate_cost(
    model: str,
    requests: Sequence[Mapping[str, Any]],
    table: PriceTable | None = None,
    *,
    input_images: int = 0,
) -> CostEstimate | None:
    """Estimate the cost of ``requests`` (the coerced bodies, or an edit's form fields).

    Each image is priced by OpenAI's published output tokens for its quality and size at the
    model's output price (per-image price when no token table is published), plus the
    prompt's text tokens, estimated at one per 4 characters and counted once per image (the
    API bills the prompt per image: 22 input tokens for an 11-token prompt with ``n: 2`` in
    tests/data/recorded). Streamed previews add 100 output tokens each. A missing or
    ``auto`` quality or size is priced at the most expensive published one ("at most").
    ``input_images`` (edits) are not priced: OpenAI publishes no rule for their tokens, and
    the assumption says the estimate excludes them. ``None``: no price for the model, or a
    quality or size its price does not cover.
    """
    price = (table or default_price_table()).get(model)
    if price is None:
        return None
    profile = default_registry.get(model)
    per_request: list[float] = []
    assumptions: list[str] = []
    for body in requests:
        priced = _estimate_request(price, profile, body)
        if priced is None:
            return None
        usd, assumption = priced
        per_request.append(usd)
        if assumption not in assumptions:
            assumptions.append(assumption)
    if input_images > 0 and price.tokens is not None:
        whose = "input image's" if input_images == 1 else f"{input_images} input images'"
        assumptions.append(
            f"excludes the {whose} tokens (billed as image input at "
            f"${price.tokens.image_input or 0:g}/1M; OpenAI publishes no rule to count them)"
        )
    if price.note.startswith("secondary"):
        assumptions.append(f"prices from secondary sources, read on {price.read_on}")
    return CostEstimate(
        usd=sum(per_request), per_request=tuple(per_request), assumption="; ".join(assumptions)
    )


def _estimate_request(
    price: ModelPrice, profile: ImageModelProfile, body: Mapping[str, Any]
) -> tuple[float, str] | None:
    images = _count(body.get("n"), default=1)
    previews = _count(body.get("partial_images"), default=0) if _truthy(body.get("stream")) else 0
    qualities, quality_note = _resolve_quality(price, profile, body.get("quality"))
    sizes, size_note = _resolve_size(price, profile, qualities, body.get("size"))
    show_quality = bool(profile.qualities)
    candidates = [(q, s) for q in qualities for s in sizes]
    priced = [_price_image(price, q, s, previews, show_quality) for q, s in candidates]
    options = [option for option in priced if option is not None]
    if not options or len(options) < len(candidates):
        return None  # a quality or size this price does not cover: no estimate
    image = max(options, key=lambda option: option.usd)
    notes = [_note("quality", quality_note, image.quality), _note("size", size_note, image.size)]
    hedges = [note for note in notes if note]
    label = f"{price.model} {image.label}" + (f" ({'; '.join(hedges)})" if hedges else "")
    how = f"{label}: {image.detail}"
    usd = images * image.usd
    if price.tokens is not None:
        prompt = body.get("prompt")
        text_tokens = math.ceil((len(prompt) if isinstance(prompt, str) else 0) / _CHARS_PER_TOKEN)
        usd += images * text_tokens * price.tokens.text_input / _MILLION
        how += (
            f", plus the prompt's text tokens at ${price.tokens.text_input:g}/1M (estimated as "
            f"1 token per {_CHARS_PER_TOKEN} characters, once per image)"
        )
    return usd, how


def _note(name: str, reason: tuple[str, bool] | None, chosen: str) -> str:
    """``quality auto: at most, as high`` or ``size not set: the default 1024x1024``."""
    if reason is None:
        return ""
    why, is_default = reason
    if is_default:
        return f"{name} {why}: the default {chosen}"
    return f"{name} {why}: at most, as {chosen}"


def _resolve_quality(
    price: ModelPrice, profile: ImageModelProfile, quality: object
) -> tuple[tuple[str, ...], tuple[str, bool] | None]:
    """The qualities to price (several: take the dearest) and why, if not as sent."""
    if not profile.qualities:
        return ("standard",), None  # dall-e-2 takes no quality: priced under "standard"
    if isinstance(quality, str) and quality and quality != "auto":
        return (quality,), None
    reason = "auto" if quality == "auto" else "not set"
    default = profile.default_quality
    if reason == "not set" and default and default != "auto":
        return (default,), (reason, True)
    if reason == "not set" and default == "auto":
        reason = "not set (the model's default is auto)"
    return price.qualities(), (reason, False)


def _resolve_size(
    price: ModelPrice, profile: ImageModelProfile, qualities: Sequence[str], size: object
) -> tuple[tuple[str, ...], tuple[str, bool] | None]:
    """The sizes to price (several: take the dearest) and why, if not as sent."""
    if isinstance(size, str) and size and size != "auto":
        return (size,), None
    reason = "auto" if size == "auto" else "not set"
    default = profile.default_size
    if reason == "not set" and default and default != "auto":
        return (default,), (reason, True)
    if reason == "not set" and default == "auto":
        reason = "not set (the model's default is auto)"
    listed = [s for q in qualities for s in price.sizes(q)]
    if not listed:  # priced by rule (gpt-image-2): the sizes the model lists
        listed = [s for s in profile.sizes if s != "auto"]
    return tuple(dict.fromkeys(listed)), (reason, False)


def _price_image(
    price: ModelPrice, quality: str, size: str, previews: int, show_quality: bool
) -> _Priced | None:
    label = f"{quality} {size}" if show_quality else size
    tokens = price.output_tokens_for(quality, size) if price.tokens else None
    preview_note = f" plus {previews} streamed previews at 100 tokens each" if previews else ""
    if price.tokens is not None and tokens is not None:
        output = tokens + previews * PARTIAL_IMAGE_OUTPUT_TOKENS
        rate = price.tokens.image_output
        detail = f"{tokens} output tokens per image{preview_note} at ${rate:g}/1M"
        return _Priced(output * rate / _MILLION, quality, size, label, detail)
    per_image = price.per_image.get(f"{quality}:{size}")
    if per_image is None:
        return None
    usd = per_image
    if previews and price.tokens is not None:
        usd += previews * PARTIAL_IMAGE_OUTPUT_TOKENS * price.tokens.image_output / _MILLION
    return _Priced(usd, quality, size, label, f"${per_image:g} per image{preview_note}")


def cost_from_usage(
    model: str,
    usage: Mapping[str, Any] | None,
    *,
    images: int,
    quality: str | None,
    size: str | None,
    table: PriceTable | None = None,
) -> Cost | None:
    """The cost of a finished call (an estimate: OpenAI's invoice is exact).

    With a usable ``usage`` (``input_tokens``, ``output_tokens``,
    ``input_tokens_details.text_tokens``/``image_tokens``) and token prices: text and image
    input at their prices (input tokens without details count as text), every output token
    at the image output price. Otherwise ``images`` times the per-image price for
    ``quality`` and ``size`` (``None`` quality: the model's default, ``"standard"`` for
    dall-e-2), or the published output tokens at the output price. ``None``: no price.
    """
    reported = reported_cost(usage)
    if reported is not None:
        return Cost(usd=reported, basis="reported cost")
    price = (table or default_price_table()).get(model)
    if price is None:
        return None
    if price.tokens is not None and usage is not None:
        usd = _usage_usd(price.tokens, usage)
        if usd is not None:
            return Cost(usd=usd, basis="usage")
    count = images if isinstance(images, int) and not isinstance(images, bool) else 0
    profile = default_registry.get(model)
    if not size and profile.default_size != "auto":
        size = profile.default_size  # not sent: the API made its default (dall-e-3 1024x1024)
    if count <= 0 or not size:
        return None
    chosen = quality or profile.default_quality or "standard"
    if not profile.qualities:
        chosen = "standard"
    per_image = price.per_image.get(f"{chosen}:{size}")
    if per_image is not None:
        return Cost(usd=count * per_image, basis="per-image price")
    tokens = price.output_tokens_for(chosen, size)
    if price.tokens is not None and tokens is not None:
        usd = count * tokens * price.tokens.image_output / _MILLION
        return Cost(usd=usd, basis="published output tokens")
    return None


# xAI reports ``usage.cost_in_usd_ticks``, 10^10 ticks to the dollar; OpenRouter reports
# ``usage.cost`` in dollars (docs/providers.md).
_TICKS_PER_USD = 10**10


def reported_cost(usage: Mapping[str, Any] | None) -> float | None:
    """Dollars the provider itself says a request cost, if its usage says so."""
    if not usage:
        return None
    ticks = usage.get("cost_in_usd_ticks")
    if isinstance(ticks, int) and not isinstance(ticks, bool) and ticks >= 0:
        return ticks / _TICKS_PER_USD
    usd = usage.get("cost")
    if isinstance(usd, int | float) and not isinstance(usd, bool) and 0 <= usd < math.inf:
        return float(usd)
    return None


def _usage_usd(prices: TokenPrices, usage: Mapping[str, Any]) -> float | None:
    """Dollars for a usage body, or ``None`` when its counts are unusable."""
    input_tokens = _tokens(usage.get("input_tokens"))
    output_tokens = _tokens(usage.get("output_tokens"))
    if input_tokens is None or output_tokens is None:
        return None
    raw_details = usage.get("input_tokens_details")
    details: Mapping[str, Any] = raw_details if isinstance(raw_details, Mapping) else {}
    image_tokens = _tokens(details.get("image_tokens")) or 0
    text_tokens = _tokens(details.get("text_tokens"))
    if text_tokens is None or text_tokens + image_tokens != input_tokens:
        text_tokens = max(input_tokens - image_tokens, 0)
    if image_tokens and prices.image_input is None:
        return None
    usd = text_tokens * prices.text_input + output_tokens * prices.image_output
    usd += image_tokens * (prices.image_input or 0.0)
    return usd / _MILLION


def _tokens(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _count(value: object, *, default: int) -> int:
    """A count from a JSON body or a form field (``2`` or ``"2"``)."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"expected a count, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise ValueError(f"expected a count such as 1 or '2', got {value!r}")
    if number < 0:
        raise ValueError(f"expected a count of 0 or more, got {value!r}")
    return number


def _truthy(value: object) -> bool:
    """``stream`` as JSON (``true``) or as a form field (``"true"``)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True

"""Prices as data and the cost arithmetic (langchain_imagegen.pricing).

Every expected figure below is computed by hand from the published prices listed in
docs/cost.md#prices, written out next to it; the recorded usage bodies come from
tests/data/recorded (real exchanges with the OpenAI Images API, see its SOURCES.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from langchain_imagegen.pricing import (
    DEFAULT_PRICES,
    Cost,
    CostEstimate,
    ModelPrice,
    OutputTokenRule,
    PriceTable,
    TokenPrices,
    cost_from_usage,
    default_price_table,
    estimate_cost,
    format_usd,
)
from langchain_imagegen.registry import ModelRegistry
from tests.conformance_data import exchange

M = 1_000_000


def _assert_cost(cost: Cost | None, usd: float, basis: str, rel: float = 1e-12) -> None:
    assert cost is not None
    assert cost.usd == pytest.approx(usd, rel=rel)
    assert cost.basis == basis


def _body(model: str, prompt: str = "a red fox", **fields: Any) -> dict[str, Any]:
    return {"model": model, "prompt": prompt, **fields}


# --- Estimates against hand computations ------------------------------------------------------

# (model, request fields, prompt, expected USD, hand computation)
ESTIMATES = [
    # gpt-image-1: output $40/1M, text input $5/1M; 40 characters = 10 tokens.
    ("gpt-image-1", {"quality": "high", "size": "1024x1024"}, "x" * 40, 4160 * 40 / M + 10 * 5 / M),
    (
        "gpt-image-1",
        {"quality": "low", "size": "1024x1536", "n": 3},
        "x" * 8,
        3 * (408 * 40 + 2 * 5) / M,
    ),
    # 9 characters round up to 3 tokens
    ("gpt-image-1", {"quality": "medium", "size": "1536x1024"}, "x" * 9, (1568 * 40 + 3 * 5) / M),
    # gpt-image-1.5: the same output tokens at $32/1M, text $5/1M
    ("gpt-image-1.5", {"quality": "high", "size": "1024x1024"}, "x" * 4, (4160 * 32 + 5) / M),
    ("gpt-image-1.5", {"quality": "low", "size": "1536x1024"}, "x" * 4, (400 * 32 + 5) / M),
    # gpt-image-2: output $30/1M; tokens from OpenAI's calculator (7024, 5488) and the rule
    # (low 1024x1024: ceil(16*16*3_048_576/4e6) = 196; medium: ceil(48*48*3_048_576/4e6) = 1756)
    ("gpt-image-2", {"quality": "high", "size": "1024x1024"}, "x" * 4, (7024 * 30 + 5) / M),
    ("gpt-image-2", {"quality": "high", "size": "1536x1024"}, "x" * 4, (5488 * 30 + 5) / M),
    ("gpt-image-2", {"quality": "low", "size": "1024x1024"}, "x" * 4, (196 * 30 + 5) / M),
    ("gpt-image-2", {"quality": "medium", "size": "1024x1024"}, "x" * 4, (1756 * 30 + 5) / M),
    # gpt-image-2 at 1920x1088 medium: s = (2*48*1088 + 1920) // 3840 = 27,
    # ceil(48*27*(2_000_000 + 2_088_960) / 4e6) = ceil(1324.8) = 1325 tokens
    ("gpt-image-2", {"quality": "medium", "size": "1920x1088"}, "x" * 4, (1325 * 30 + 5) / M),
    # gpt-image-1-mini: OpenAI's per-image price plus text at $2/1M
    ("gpt-image-1-mini", {"quality": "medium", "size": "1024x1536"}, "x" * 4, 0.015 + 2 / M),
    (
        "gpt-image-1-mini",
        {"quality": "high", "size": "1024x1024", "n": 2},
        "x" * 4,
        2 * (0.036 + 2 / M),
    ),
    # DALL·E: per image only, the prompt is not billed
    ("dall-e-3", {"quality": "hd", "size": "1024x1792"}, "x" * 400, 0.12),
    ("dall-e-3", {"quality": "standard", "size": "1792x1024"}, "x" * 400, 0.08),
    ("dall-e-3", {"quality": "standard", "size": "1024x1024"}, "x", 0.04),
    ("dall-e-2", {"size": "512x512", "n": 4}, "x", 4 * 0.018),
    ("dall-e-2", {"size": "256x256"}, "x", 0.016),
]


@pytest.mark.parametrize(("model", "fields", "prompt", "expected"), ESTIMATES)
def test_estimate_matches_the_hand_computation(
    model: str, fields: dict[str, Any], prompt: str, expected: float
) -> None:
    estimate = estimate_cost(model, [_body(model, prompt, **fields)])
    assert estimate is not None
    assert estimate.usd == pytest.approx(expected, rel=1e-12)
    assert estimate.per_request == pytest.approx((expected,), rel=1e-12)


def test_estimate_sums_requests_and_names_each_assumption() -> None:
    requests = [
        _body("gpt-image-1", "x" * 40, quality="high", size="1024x1024"),
        _body("gpt-image-1", "x" * 40, quality="low", size="1024x1024", n=2),
    ]
    estimate = estimate_cost("gpt-image-1", requests)
    assert estimate is not None
    high, low = (4160 * 40 + 10 * 5) / M, 2 * (272 * 40 + 10 * 5) / M
    assert estimate.per_request == pytest.approx((high, low))
    assert estimate.usd == pytest.approx(high + low)
    assert "high 1024x1024: 4160 output tokens per image at $40/1M" in estimate.assumption
    assert "low 1024x1024: 272 output tokens per image" in estimate.assumption
    assert "text tokens at $5/1M (estimated as 1 token per 4 characters" in estimate.assumption


def test_auto_and_missing_quality_and_size_are_priced_at_most() -> None:
    # gpt-image-1 defaults to auto/auto: the dearest published pair is high 1024x1536.
    estimate = estimate_cost("gpt-image-1", [_body("gpt-image-1", "x" * 4)])
    assert estimate is not None
    assert estimate.usd == pytest.approx((6240 * 40 + 5) / M)
    assert "quality not set (the model's default is auto): at most, as high" in estimate.assumption
    assert (
        "size not set (the model's default is auto): at most, as 1024x1536" in estimate.assumption
    )

    explicit = estimate_cost("gpt-image-1", [_body("gpt-image-1", "x" * 4, quality="auto")])
    assert explicit is not None
    assert "quality auto: at most, as high" in explicit.assumption

    # gpt-image-2 (sizes by rule): auto is priced over the model's listed sizes; at high
    # quality 1024x1024 (7024 tokens) costs more than 1536x1024 (5488).
    rule = estimate_cost("gpt-image-2", [_body("gpt-image-2", "x" * 4, size="auto")])
    assert rule is not None
    assert rule.usd == pytest.approx((7024 * 30 + 5) / M)
    assert "size auto: at most, as 1024x1024" in rule.assumption


def test_missing_dalle_fields_use_the_model_defaults() -> None:
    estimate = estimate_cost("dall-e-3", [_body("dall-e-3")])
    assert estimate is not None
    assert estimate.usd == pytest.approx(0.04)
    assert "quality not set: the default standard" in estimate.assumption
    assert "size not set: the default 1024x1024" in estimate.assumption


def test_streamed_previews_add_100_output_tokens_each() -> None:
    body = _body("gpt-image-1", "x" * 4, quality="high", size="1024x1024")
    body |= {"stream": True, "partial_images": 2, "n": 1}
    estimate = estimate_cost("gpt-image-1", [body])
    assert estimate is not None
    assert estimate.usd == pytest.approx(((4160 + 2 * 100) * 40 + 5) / M)
    assert "plus 2 streamed previews at 100 tokens each" in estimate.assumption


def test_edit_form_fields_and_input_images() -> None:
    # Edits send multipart form fields: strings.
    fields = {"prompt": "x" * 4, "n": "2", "quality": "low", "size": "1024x1024"}
    fields |= {"stream": "true", "partial_images": "1"}
    estimate = estimate_cost("gpt-image-1", [fields], input_images=3)
    assert estimate is not None
    assert estimate.usd == pytest.approx(2 * ((272 + 100) * 40 + 5) / M)
    assert "excludes the 3 input images' tokens" in estimate.assumption


def test_a_bad_count_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="expected a count"):
        estimate_cost("gpt-image-1", [_body("gpt-image-1", n="two")])


def test_secondary_sources_are_said_in_the_assumption() -> None:
    estimate = estimate_cost("dall-e-3", [_body("dall-e-3", quality="hd", size="1024x1024")])
    assert estimate is not None
    assert "prices from secondary sources, read on 2026-11-30" in estimate.assumption
    primary = estimate_cost("gpt-image-1-mini", [_body("gpt-image-1-mini", quality="low")])
    assert primary is not None
    assert "secondary" not in primary.assumption


# --- No estimate rather than a wrong one --------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "flux-dev",  # a gateway model: unknown to the registry and the table
        "chatgpt-image-latest",  # in the registry, but no price was found
        "dall-e-4",
    ],
)
def test_models_without_a_price_get_no_estimate(model: str) -> None:
    assert default_price_table().get(model) is None
    assert estimate_cost(model, [_body(model, quality="high", size="1024x1024")]) is None
    assert cost_from_usage(model, None, images=1, quality="high", size="1024x1024") is None


def test_a_quality_or_size_the_price_does_not_cover_gets_no_estimate() -> None:
    assert estimate_cost("gpt-image-1", [_body("gpt-image-1", size="1792x1024")]) is None
    assert estimate_cost("dall-e-3", [_body("dall-e-3", quality="ultra")]) is None
    # one unpriceable request spoils the whole estimate
    good = _body("dall-e-2", size="256x256")
    assert estimate_cost("dall-e-2", [good, _body("dall-e-2", size="2048x2048")]) is None


def test_a_model_declared_like_another_is_not_priced_as_it() -> None:
    registry = ModelRegistry()
    registry.register_model("flux-dev", like="dall-e-3")
    table = PriceTable(registry=registry)
    assert table.get("flux-dev") is None
    assert table.get("dall-e-3") is not None


# --- The table -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-image-1-2025-04-15", "gpt-image-1"),
        ("GPT-IMAGE-2-2026-04-21", "gpt-image-2"),
        ("gpt-image-1.5-2025-12-16", "gpt-image-1.5"),
        ("  dall-e-3 ", "dall-e-3"),
        ("Gpt-Image-1-Mini", "gpt-image-1-mini"),
    ],
)
def test_snapshots_and_spellings_resolve_to_the_family(name: str, family: str) -> None:
    price = default_price_table().get(name)
    assert price is not None
    assert price.model == family
    quality = "hd" if family == "dall-e-3" else "high"
    snapshot = estimate_cost(name, [_body(name, quality=quality, size="1024x1024")])
    family_estimate = estimate_cost(family, [_body(family, quality=quality, size="1024x1024")])
    assert snapshot is not None
    assert family_estimate is not None
    assert snapshot.usd == family_estimate.usd


def test_with_prices_overrides_and_adds_without_touching_the_original() -> None:
    gateway = ModelPrice(
        model="gpt-image-1",
        tokens=TokenPrices(text_input=4.0, image_input=8.0, image_output=32.0),
        output_tokens={"high:1024x1024": 4160},
        source="https://gateway.example/prices",
        read_on=dt.date(2026, 11, 30),
    )
    flux = ModelPrice(model="flux-dev", per_image={"standard:1024x1024": 0.025})
    table = default_price_table().with_prices(gateway, flux)

    body = _body("gpt-image-1", "x" * 4, quality="high", size="1024x1024")
    estimate = estimate_cost("gpt-image-1", [body], table)
    assert estimate is not None
    assert estimate.usd == pytest.approx((4160 * 32 + 4) / M)
    # the snapshot follows the override
    snapshot = table.get("gpt-image-1-2025-04-15")
    assert snapshot is gateway
    # a gateway model with its own price: the profile's qualities are many, so the price's
    # only quality is the one used ("at most" over what is priced)
    flux_estimate = estimate_cost("flux-dev", [_body("flux-dev", size="1024x1024")], table)
    assert flux_estimate is not None
    assert flux_estimate.usd == pytest.approx(0.025)
    # the default table is unchanged
    original = estimate_cost("gpt-image-1", [body])
    assert original is not None
    assert original.usd == pytest.approx((4160 * 40 + 5) / M)
    assert default_price_table().get("flux-dev") is None


def test_model_price_refuses_bad_data() -> None:
    with pytest.raises(ValueError, match="quality:WIDTHxHEIGHT"):
        ModelPrice(model="x", per_image={"1024x1024": 0.04})
    with pytest.raises(ValueError, match="must not be negative"):
        ModelPrice(model="x", per_image={"standard:1024x1024": -1.0})
    with pytest.raises(ValueError, match="finite"):
        TokenPrices(text_input=float("nan"), image_input=None, image_output=1.0)
    with pytest.raises(ValueError, match="must name a model"):
        ModelPrice(model=" ")


def test_model_price_keeps_its_own_copy_of_the_tables() -> None:
    prices = {"standard:1024x1024": 0.04}
    entry = ModelPrice(model="x", per_image=prices)
    prices["standard:1024x1024"] = 99.0
    assert entry.per_image["standard:1024x1024"] == 0.04


def test_every_default_entry_has_a_source_and_a_date() -> None:
    models = [price.model for price in DEFAULT_PRICES]
    assert models == sorted(set(models), key=models.index)  # no duplicates
    assert set(models) == {
        "gpt-image-1",
        "gpt-image-1-mini",
        "gpt-image-1.5",
        "gpt-image-2",
        "dall-e-3",
        "dall-e-2",
    }
    for price in DEFAULT_PRICES:
        assert price.source.startswith("https://"), price.model
        assert price.read_on == dt.date(2026, 11, 30), price.model
        assert price.tokens is not None or price.per_image, price.model


def test_openai_per_image_prices_agree_with_the_output_token_table() -> None:
    # OpenAI's model page (per-image prices) and the guide's token table (at $40/1M) are
    # separate sources; they agree to OpenAI's rounding (0.1664 is listed as $0.167).
    price = default_price_table().get("gpt-image-1")
    assert price is not None
    assert price.tokens is not None
    for key, per_image in price.per_image.items():
        from_tokens = price.output_tokens[key] * price.tokens.image_output / M
        assert abs(from_tokens - per_image) <= 0.002, key


@pytest.mark.parametrize(
    ("quality", "size", "tokens"),
    [
        # outputs of OpenAI's calculator quoted on its developer forum
        ("high", (1024, 1024), 7024),
        ("high", (1536, 1024), 5488),
        ("high", (1792, 1024), 5063),
        ("high", (3584, 2048), 12329),
    ],
)
def test_gpt_image_2_rule_reproduces_the_calculator(
    quality: str, size: tuple[int, int], tokens: int
) -> None:
    price = default_price_table().get("gpt-image-2")
    assert price is not None
    assert price.output_token_rule is not None
    assert price.output_token_rule.tokens(quality, *size) == tokens
    assert price.output_tokens_for(quality, f"{size[0]}x{size[1]}") == tokens


def test_output_token_rule_knows_only_its_qualities() -> None:
    rule = OutputTokenRule(quality_factors={"high": 96})
    assert rule.tokens("ultra", 1024, 1024) is None
    assert rule.tokens("high", 0, 1024) is None


# --- Costs after the call, from the recorded usage -------------------------------------------

# (recording, images returned, hand computation at gpt-image-1's $5/1M text input and
# $40/1M output)
RECORDED_USAGE = [
    ("openai-dotnet-1e6e3ddc/GptImage1Works.json#0", 2, (22 * 5 + 3168 * 40) / M),
    ("openai-dotnet-b3b4bbbc/BasicGenerationWorks.json#0", 1, (11 * 5 + 6240 * 40) / M),
    ("openai-dotnet-b3b4bbbc/GenerationOfMultipleImagesWorks.json#0", 2, (22 * 5 + 2112 * 40) / M),
    ("openai-dotnet-b3b4bbbc/GenerationWithOptionsWorks.json#0", 2, (22 * 5 + 12480 * 40) / M),
    (
        "ruby_llm/image_basic_functionality_openai_gpt-image-1_can_paint_images.yml#0",
        1,
        (10 * 5 + 4160 * 40) / M,
    ),
]


@pytest.mark.parametrize(("source", "images", "expected"), RECORDED_USAGE)
def test_cost_from_recorded_usage(source: str, images: int, expected: float) -> None:
    body = exchange(source).response_json()
    assert body["usage"]["input_tokens_details"]["image_tokens"] == 0
    cost = cost_from_usage(
        "gpt-image-1", body["usage"], images=images, quality=body["quality"], size=body["size"]
    )
    _assert_cost(cost, expected, "usage")
    assert len(body["data"]) == images


@pytest.mark.parametrize(("source", "images", "expected"), RECORDED_USAGE)
def test_recorded_output_tokens_match_the_published_table(
    source: str, images: int, expected: float
) -> None:
    body = exchange(source).response_json()
    price = default_price_table().get("gpt-image-1")
    assert price is not None
    published = price.output_tokens[f"{body['quality']}:{body['size']}"]
    assert body["usage"]["output_tokens"] == images * published


@pytest.mark.parametrize(
    ("source", "model", "images", "quality", "expected"),
    [
        # DALL·E returns no usage: the per-image price
        (
            "openai-dotnet-1e6e3ddc/GenerationOfMultipleImagesWorks.json#0",
            "dall-e-2",
            2,
            None,
            2 * 0.016,
        ),
        (
            "ruby-openai/images_generate_A_springer_spaniel_cooking_pasta_wearing_a_hat_of_some_sort.yml#0",
            "dall-e-3",
            1,
            "hd",
            0.12,
        ),
        (
            "ruby-openai/images_generate_A_lion_cooking_pasta_wearing_a_hat_of_some_sort.yml#0",
            "dall-e-3",
            1,
            None,
            0.08,
        ),
    ],
)
def test_cost_without_usage_uses_the_per_image_price(
    source: str, model: str, images: int, quality: str | None, expected: float
) -> None:
    recorded = exchange(source)
    request, body = recorded.request_body, recorded.response_json()
    assert request is not None
    assert "usage" not in body
    assert len(body["data"]) == images
    cost = cost_from_usage(
        model, body.get("usage"), images=images, quality=quality, size=request["size"]
    )
    _assert_cost(cost, expected, "per-image price")


def test_image_input_tokens_are_priced_from_usage() -> None:
    usage = {
        "input_tokens": 1_250,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 1_200},
        "output_tokens": 4_160,
    }
    cost = cost_from_usage("gpt-image-1", usage, images=1, quality="high", size="1024x1024")
    assert cost is not None
    assert cost.usd == pytest.approx((50 * 5 + 1_200 * 10 + 4_160 * 40) / M)


def test_usage_without_details_counts_input_as_text() -> None:
    usage = {"input_tokens": 20, "output_tokens": 7_024}
    cost = cost_from_usage("gpt-image-2", usage, images=1, quality="high", size="1024x1024")
    assert cost is not None
    assert cost.usd == pytest.approx((20 * 5 + 7_024 * 30) / M)


@pytest.mark.parametrize(
    "usage",
    [
        {},
        {"input_tokens": "12", "output_tokens": 4160},
        {"input_tokens": -1, "output_tokens": 4160},
        {"input_tokens": 10, "output_tokens": True},
        {"input_tokens": 10},
    ],
)
def test_unusable_usage_falls_back_to_the_per_image_price(usage: dict[str, Any]) -> None:
    cost = cost_from_usage("gpt-image-1", usage, images=2, quality="high", size="1024x1024")
    _assert_cost(cost, 2 * 0.167, "per-image price")


def test_no_usage_and_no_per_image_price_uses_the_published_output_tokens() -> None:
    cost = cost_from_usage("gpt-image-1.5", None, images=2, quality="high", size="1024x1024")
    _assert_cost(cost, 2 * 4160 * 32 / M, "published output tokens")
    assert cost_from_usage("gpt-image-1.5", None, images=1, quality="auto", size="auto") is None
    assert cost_from_usage("dall-e-3", None, images=0, quality="hd", size="1024x1024") is None


# --- Wording ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (0.0, "$0.00"),
        (0.16645, "$0.17"),
        (0.1, "$0.10"),
        (0.042, "$0.042"),
        (0.00588, "$0.0059"),
        (0.999, "$1.00"),
        (1234.5, "$1,234.50"),
        (0.00001, "less than $0.0001"),
    ],
)
def test_format_usd(usd: float, text: str) -> None:
    assert format_usd(usd) == text


def test_describe_lines_say_they_are_estimates() -> None:
    estimate = CostEstimate(usd=0.16645, per_request=(0.16645,), assumption="gpt-image-1 high")
    assert estimate.describe() == "about $0.17 (estimate: gpt-image-1 high)"
    assert (
        Cost(usd=0.16645, basis="usage").describe()
        == "Cost: about $0.17 (estimate from the reported token usage)."
    )
    assert (
        Cost(usd=0.04, basis="per-image price").describe()
        == "Cost: about $0.040 (estimate from the published per-image price)."
    )
    assert "published output tokens" in Cost(0.1, "published output tokens").describe()


def test_price_entries_are_frozen() -> None:
    price = default_price_table().get("gpt-image-1")
    assert price is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        price.model = "other"  # type: ignore[misc]

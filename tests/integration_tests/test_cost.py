"""What calls cost, through the tool: estimates before, costs after, the per-call cap and a
budget's warn mode.

Every expected figure is computed here by hand from the published prices that
``docs/cost.md#prices`` lists (USD per 1M tokens for the GPT image models, per image for
DALL·E): gpt-image-1 text input $5, image output $40, output tokens per image low 272 / 408 /
400, medium 1056 / 1584 / 1568, high 4160 / 6240 / 6208 (1024x1024 / 1024x1536 / 1536x1024);
gpt-image-1-mini per image medium $0.011 (1024x1024), text input $2; gpt-image-2 text input
$5, image output $30, 7024 output tokens at high 1024x1024 (OpenAI's calculator); dall-e-3
standard $0.04 / $0.08 / $0.08 and hd $0.08 / $0.12 / $0.12 (1024x1024 / 1024x1792 /
1792x1024); dall-e-2 $0.016 / $0.018 / $0.02 (256 / 512 / 1024). A streamed preview adds 100
image output tokens (OpenAI's image generation guide, "Partial images cost").

The costs after a call come first from the REAL recorded answers of the OpenAI API
(``cassettes/recorded/``, replayed as in ``test_recorded.py``), whose ``usage`` bodies are
written out below as the recording has them, then from the loopback emulator.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from langchain_imagegen import ImageGenerationTool
from langchain_imagegen.budget import InMemoryBudget
from langchain_imagegen.edit_tool import ImageEditTool
from langchain_imagegen.errors import BudgetExceededError, ConfigurationError
from langchain_imagegen.handles import image_handle
from langchain_imagegen.pricing import ModelPrice, default_price_table
from tests.emulator import Fault, encode_image
from tests.integration_tests.conftest import LIVE, Target
from tests.integration_tests.test_recorded import REPLAY_BASE_URL, _recorded, _replay
from tests.integration_tests.test_tool import call, failed, succeeded

MILLION = 1_000_000
MODES = ["invoke", "ainvoke"]


def live(test: Any) -> Any:
    """Mark a test that talks to the loopback emulator (the module also replays cassettes,
    which need no socket)."""
    for mark in reversed(LIVE):
        test = mark(test)
    return test


@pytest.fixture
def tools() -> Any:
    made: list[ImageGenerationTool] = []
    yield made
    for tool in made:
        tool.close()


# --- costs from the real recorded answers ------------------------------------------------------


@pytest.fixture
def replay_tool(tools: list[ImageGenerationTool], tmp_path: Path) -> Any:
    def make(model: str, **kwargs: Any) -> ImageGenerationTool:
        tool = ImageGenerationTool(
            model=model,
            base_url=REPLAY_BASE_URL,
            api_key="sk-replay-only",
            output_dir=str(tmp_path / "images"),
            max_retries=0,
            **kwargs,
        )
        tools.append(tool)
        return tool

    return make


RECORDED_USAGE_COSTS = [
    pytest.param(
        "gpt-image-1_defaults",
        # The recording's usage: 11 input tokens (all text), 6240 output tokens (one high
        # 1024x1536 image, the server's choice for quality and size "auto").
        {"input_text": 11, "input_image": 0, "output": 6240},
        11 * 5.00 / MILLION + 6240 * 40.00 / MILLION,  # $0.249655
        "$0.25",
        id="gpt-image-1 one image, defaults",
    ),
    pytest.param(
        "gpt-image-1_two_images",
        # 22 input tokens (the 11-token prompt billed once per image), 2112 output tokens
        # (two medium 1024x1024 images of 1056).
        {"input_text": 22, "input_image": 0, "output": 2112},
        22 * 5.00 / MILLION + 2112 * 40.00 / MILLION,  # $0.08459
        "$0.085",
        id="gpt-image-1 n=2",
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "tokens", "usd", "shown"), RECORDED_USAGE_COSTS)
async def test_cost_from_recorded_usage(
    mode: str, name: str, tokens: dict[str, int], usd: float, shown: str, replay_tool: Any
) -> None:
    (recorded,) = _recorded(name)
    usage = recorded["response"]["usage"]
    # The hand computation reads the tokens written above: check they are the recording's.
    assert usage["input_tokens_details"] == {
        "text_tokens": tokens["input_text"],
        "image_tokens": tokens["input_image"],
    }
    assert usage["output_tokens"] == tokens["output"]
    tool = replay_tool("gpt-image-1")

    with _replay(name) as cassette:
        message = await call(mode, tool, recorded["request"])
    text, result = succeeded(message)

    assert cassette.all_played
    assert result.cost_usd == pytest.approx(usd, rel=1e-12)
    assert result.cost_basis == "usage"
    (request,) = result.requests
    assert request.usage == usage
    assert request.cost_usd == pytest.approx(usd, rel=1e-12)
    assert result.estimated_cost_usd is None  # no budget or cap: nothing estimated before
    assert f"Cost: about {shown} (estimate from the reported token usage)." in text.splitlines()


RECORDED_PRICE_COSTS = [
    pytest.param(
        "dall-e-2_two_urls",
        "dall-e-2",
        {"prompt": "An isolated stop sign.", "n": 2, "size": "256x256"},
        [2 * 0.016],
        "$0.032",
        id="dall-e-2 n=2 256x256",
    ),
    pytest.param(
        "dall-e-2_without_quality",
        "dall-e-2",
        {"prompt": "a white siamese cat", "n": 1, "size": "256x256"},
        [0.016],
        "$0.016",
        id="dall-e-2 256x256",
    ),
    pytest.param(
        "dall-e-3_download",
        "dall-e-3",
        {"prompt": "a siamese cat", "n": 1, "size": "1024x1024"},
        [0.04],
        "$0.040",
        id="dall-e-3 standard 1024x1024",
    ),
    # dall-e-3 without a size: 1024x1024, its default (docs/models.md), at standard quality.
    pytest.param(
        "dall-e-3_revised_prompt",
        "dall-e-3",
        {"prompt": "An isolated stop sign."},
        [0.04],
        "$0.040",
        id="dall-e-3 no size",
    ),
    pytest.param(
        "dall-e-3_two_answers",
        "dall-e-3",
        {"prompt": "An isolated stop sign.", "n": 2},
        [0.04, 0.04],
        "$0.080",
        id="dall-e-3 n=2 no size",
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "model", "args", "per_request", "shown"), RECORDED_PRICE_COSTS)
async def test_cost_of_recorded_dall_e_answers_from_the_per_image_price(
    mode: str,
    name: str,
    model: str,
    args: dict[str, Any],
    per_request: list[float],
    shown: str,
    replay_tool: Any,
) -> None:
    for recorded in _recorded(name):
        if recorded["method"] == "POST":
            assert "usage" not in recorded["response"]  # DALL·E answers carry no usage
    # The dall-e-3_download recording goes on with the client's GET of the image URL.
    tool = replay_tool(model, download_urls=name == "dall-e-3_download")

    with _replay(name) as cassette:
        message = await call(mode, tool, args)
    text, result = succeeded(message)

    assert cassette.all_played
    assert [request.cost_usd for request in result.requests] == pytest.approx(per_request)
    assert result.cost_usd == pytest.approx(sum(per_request))
    assert result.cost_basis == "per-image price"
    line = f"Cost: about {shown} (estimate from the published per-image price)."
    assert line in text.splitlines()


async def test_estimate_of_the_recorded_defaults_call_is_at_most_its_cost(
    replay_tool: Any,
) -> None:
    """quality and size "auto" are estimated at the dearest published pair (high 1024x1536,
    6240 tokens); the server chose exactly that, so the estimate is the cost but for the
    prompt's tokens (estimated 22 chars / 4 -> 6, billed 11)."""
    (recorded,) = _recorded("gpt-image-1_defaults")
    tool = replay_tool("gpt-image-1", max_cost_per_call=1.0)

    estimate = tool.estimate_cost(recorded["request"])
    with _replay("gpt-image-1_defaults"):
        result = tool.generate(recorded["request"])

    assert estimate is not None
    assert estimate.usd == pytest.approx(6240 * 40 / MILLION + 6 * 5 / MILLION)
    assert "at most" in estimate.assumption
    assert result.estimated_cost_usd == estimate.usd
    assert result.cost_usd == pytest.approx(6240 * 40 / MILLION + 11 * 5 / MILLION)
    assert result.cost_usd - estimate.usd == pytest.approx((11 - 6) * 5 / MILLION)


# --- estimates before the call, through the tool ---------------------------------------------

PROMPT_32 = "a lighthouse at dawn, watercolor"  # 32 characters: 8 estimated tokens
assert len(PROMPT_32) == 32

ESTIMATES = [
    pytest.param(
        "gpt-image-1",
        {},
        {"prompt": PROMPT_32, "quality": "high", "size": "1024x1024", "n": 2},
        [2 * (4160 * 40 + 8 * 5) / MILLION],  # docs/cost.md: $0.33288
        id="gpt-image-1 high n=2",
    ),
    pytest.param(
        "gpt-image-1",
        {},
        {"prompt": "abcd", "quality": "low", "size": "1024x1536"},
        [(408 * 40 + 1 * 5) / MILLION],
        id="gpt-image-1 low portrait",
    ),
    pytest.param(
        "gpt-image-1",
        {"partial_images": 2},
        {"prompt": "abcd", "quality": "medium", "size": "1536x1024", "n": 2},
        # Streaming sends one image per request, each with 2 previews of 100 tokens.
        [((1568 + 2 * 100) * 40 + 1 * 5) / MILLION] * 2,
        id="gpt-image-1 medium streamed",
    ),
    pytest.param(
        "gpt-image-1-mini",
        {},
        {"prompt": "abcdefgh", "quality": "medium", "size": "1024x1024"},
        [0.011 + 2 * 2.00 / MILLION],  # per-image price, plus 2 prompt tokens at $2/1M
        id="gpt-image-1-mini medium",
    ),
    pytest.param(
        "gpt-image-2",
        {},
        {"prompt": "abcd", "quality": "high", "size": "1024x1024"},
        [(7024 * 30 + 1 * 5) / MILLION],
        id="gpt-image-2 high square",
    ),
    pytest.param(
        "dall-e-3",
        {},
        {"prompt": "a fox", "quality": "hd", "size": "1792x1024", "n": 4},
        [0.12] * 4,  # dall-e-3 makes one image per request: a fan-out of 4
        id="dall-e-3 hd wide n=4",
    ),
    pytest.param(
        "dall-e-3",
        {},
        {"prompt": "a fox"},
        [0.04],  # the defaults: standard 1024x1024
        id="dall-e-3 defaults",
    ),
    pytest.param(
        "dall-e-2",
        {},
        {"prompt": "a fox", "size": "512x512", "n": 3},
        [3 * 0.018],
        id="dall-e-2 512 n=3",
    ),
]


@pytest.mark.parametrize(("model", "config", "args", "per_request"), ESTIMATES)
def test_estimate_cost_matches_the_hand_computation(
    model: str,
    config: dict[str, Any],
    args: dict[str, Any],
    per_request: list[float],
    tools: list[ImageGenerationTool],
    tmp_path: Path,
) -> None:
    tool = ImageGenerationTool(
        model=model, base_url=REPLAY_BASE_URL, output_dir=str(tmp_path), **config
    )
    tools.append(tool)

    estimate = tool.estimate_cost(args)

    assert estimate is not None
    assert list(estimate.per_request) == pytest.approx(per_request, rel=1e-12)
    assert estimate.usd == pytest.approx(sum(per_request), rel=1e-12)
    assert len(estimate.per_request) == len(tool.coerce(args).requests)


@live
def test_a_model_without_a_price_has_no_estimate_and_no_cost_line(
    target: Target, tools: list[ImageGenerationTool], tmp_path: Path
) -> None:
    tool = ImageGenerationTool(
        model="flux-dev", base_url=target.gateway_base_url, output_dir=str(tmp_path)
    )
    tools.append(tool)
    args = {"prompt": "a fox", "size": "1024x1024"}

    estimate = tool.estimate_cost(args)
    result = tool.generate(args)

    assert estimate is None
    assert len(target.requests()) == 1
    assert result.cost_usd is None
    assert result.cost_basis is None
    assert [request.cost_usd for request in result.requests] == [None]
    assert "Cost:" not in result.to_text()


# --- costs after the call, against the emulator ---------------------------------------------


@pytest.fixture
def live_tool(target: Target, tools: list[ImageGenerationTool], tmp_path: Path) -> Any:
    def make(model: str, **kwargs: Any) -> ImageGenerationTool:
        kwargs.setdefault("output_dir", str(tmp_path / "images"))
        kwargs.setdefault("max_retries", 0)
        tool = ImageGenerationTool(model=model, base_url=target.base_url, **kwargs)
        tools.append(tool)
        return tool

    return make


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("quality", "size", "price"),
    [("hd", "1792x1024", 0.12), ("standard", "1024x1792", 0.08), ("hd", "1024x1024", 0.08)],
)
@live
async def test_fan_out_costs_each_request_at_the_per_image_price(
    mode: str, quality: str, size: str, price: float, target: Target, live_tool: Any
) -> None:
    tool = live_tool("dall-e-3")

    text, result = succeeded(
        await call(mode, tool, {"prompt": "a fox", "n": 4, "quality": quality, "size": size})
    )

    assert len(target.requests()) == 4
    assert len(result.requests) == 4
    assert [request.cost_usd for request in result.requests] == [price] * 4
    assert result.cost_usd == pytest.approx(4 * price)
    assert result.cost_basis == "per-image price"
    shown = f"${4 * price:.2f}"
    assert f"Cost: about {shown} (estimate from the published per-image price)." in text


@pytest.mark.parametrize("mode", MODES)
@live
async def test_fan_out_with_a_failed_request_costs_only_what_came_back(
    mode: str, target: Target, live_tool: Any
) -> None:
    tool = live_tool("dall-e-3", budget=InMemoryBudget(1.00))
    target.push_fault(Fault.server_error())

    _text, result = succeeded(
        await call(mode, tool, {"prompt": "a fox", "n": 3, "size": "1024x1024"})
    )

    assert len(target.requests()) == 3
    assert len(result.images) == 2
    costs = sorted((r.cost_usd is None, r.cost_usd) for r in result.requests)
    assert costs == [(False, 0.04), (False, 0.04), (True, None)]  # the failed one: no cost
    assert result.cost_usd == pytest.approx(0.08)
    assert result.estimated_cost_usd == pytest.approx(0.12)
    assert tool.budget is not None
    assert tool.budget.spent == pytest.approx(0.08)  # settled with what came back
    assert tool.budget.reserved == 0


@pytest.mark.parametrize("mode", MODES)
@live
async def test_streamed_call_estimate_counts_previews_and_cost_reads_the_usage(
    mode: str, target: Target, live_tool: Any
) -> None:
    args = {"prompt": "abcd", "quality": "high", "size": "1024x1024"}
    plain = live_tool("gpt-image-1")
    streamed = live_tool("gpt-image-1", partial_images=2, max_cost_per_call=1.0)

    before_plain = plain.estimate_cost(args)
    before = streamed.estimate_cost(args)
    text, result = succeeded(await call(mode, streamed, args))

    assert before_plain is not None
    assert before is not None
    assert before_plain.usd == pytest.approx((4160 * 40 + 1 * 5) / MILLION)
    assert before.usd == pytest.approx(((4160 + 2 * 100) * 40 + 1 * 5) / MILLION)
    assert before.usd - before_plain.usd == pytest.approx(2 * 100 * 40 / MILLION)
    assert "2 streamed previews at 100 tokens each" in before.assumption
    (sent,) = target.requests()
    assert sent.body["stream"] is True
    assert sent.body["partial_images"] == 2
    assert result.estimated_cost_usd == before.usd
    # After: whatever usage the stream's completed event reported, priced by hand.
    (request,) = result.requests
    assert request.usage is not None
    usage = request.usage
    text_in = usage["input_tokens_details"]["text_tokens"]
    image_in = usage["input_tokens_details"]["image_tokens"]
    assert text_in + image_in == usage["input_tokens"]
    by_hand = (text_in * 5 + image_in * 10 + usage["output_tokens"] * 40) / MILLION
    assert result.cost_usd == pytest.approx(by_hand)
    assert result.cost_basis == "usage"
    assert "Cost: about $0.17 (estimate from the reported token usage)." in text


# --- the per-call cap ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@live
async def test_max_cost_per_call_refuses_before_sending(
    mode: str, target: Target, live_tool: Any, tmp_path: Path
) -> None:
    tool = live_tool("dall-e-3", max_cost_per_call=0.10, max_retries=3)

    message = await call(
        mode, tool, {"prompt": "a fox", "n": 4, "quality": "hd", "size": "1792x1024"}
    )
    text = failed(message)

    assert message.artifact is None
    assert "refused before sending" in text
    assert "$0.48" in text  # the estimate: 4 x $0.12
    assert "per-call limit of $0.10" in text
    assert "fewer images" in text  # what the agent can do
    assert target.requests() == []
    assert target.http_calls() == 0  # not sent, so not retried either
    assert not (tmp_path / "images").exists() or not any((tmp_path / "images").iterdir())


@live
def test_max_cost_per_call_error_is_not_retryable(target: Target, live_tool: Any) -> None:
    tool = live_tool("gpt-image-1", max_cost_per_call=0.01, max_retries=3)

    with pytest.raises(BudgetExceededError) as refused:
        tool.generate({"prompt": "abcd", "quality": "high", "size": "1024x1024"})

    assert refused.value.per_call
    assert refused.value.retryable is False
    assert refused.value.estimated_usd == pytest.approx((4160 * 40 + 1 * 5) / MILLION)
    assert refused.value.limit_usd == 0.01
    assert target.http_calls() == 0


@pytest.mark.parametrize("mode", MODES)
@live
async def test_a_call_within_the_cap_is_sent(mode: str, target: Target, live_tool: Any) -> None:
    estimate = (272 * 40 + 1 * 5) / MILLION
    tool = live_tool("gpt-image-1", max_cost_per_call=estimate)  # exactly the estimate fits

    _text, result = succeeded(
        await call(mode, tool, {"prompt": "abcd", "quality": "low", "size": "1024x1024"})
    )

    assert len(target.requests()) == 1
    assert result.estimated_cost_usd == pytest.approx(estimate)


# --- budget configuration and warn mode ------------------------------------------------------


@pytest.mark.parametrize(
    "limits", [{"budget": InMemoryBudget(5.0)}, {"max_cost_per_call": 1.0}], ids=["budget", "cap"]
)
def test_a_model_without_a_price_refuses_a_budget_at_construction(
    limits: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        ImageGenerationTool(
            model="flux-dev",
            model_family="dall-e-3",
            base_url=REPLAY_BASE_URL,
            output_dir=str(tmp_path),
            **limits,
        )

    assert "no price is known for flux-dev" in str(refused.value)
    assert "with_prices" in str(refused.value)


@live
def test_a_gateway_model_with_its_own_price_is_budgeted(target: Target, tmp_path: Path) -> None:
    prices = default_price_table().with_prices(
        ModelPrice(model="flux-dev", per_image={"standard:1024x1024": 0.025}, source="test")
    )
    budget = InMemoryBudget(0.06)
    tool = ImageGenerationTool(
        model="flux-dev",
        base_url=target.gateway_base_url,
        output_dir=str(tmp_path),
        prices=prices,
        budget=budget,
        max_retries=0,
    )
    try:
        first = tool.generate({"prompt": "a fox", "size": "1024x1024", "quality": "standard"})
        second = tool.generate({"prompt": "a fox", "size": "1024x1024", "quality": "standard"})
        with pytest.raises(BudgetExceededError) as refused:
            tool.generate({"prompt": "a fox", "size": "1024x1024", "quality": "standard"})
    finally:
        tool.close()

    assert first.cost_usd == second.cost_usd == 0.025
    assert budget.spent == pytest.approx(0.05)
    assert refused.value.remaining_usd == pytest.approx(0.01)
    assert len(target.requests()) == 2


@pytest.mark.parametrize("mode", MODES)
@live
async def test_budget_warn_mode_logs_and_sends(
    mode: str, target: Target, live_tool: Any, caplog: pytest.LogCaptureFixture
) -> None:
    budget = InMemoryBudget(0.05, mode="warn")
    tool = live_tool("dall-e-3", budget=budget)

    with caplog.at_level(logging.WARNING, logger="langchain_imagegen.budget"):
        _text, result = succeeded(
            await call(
                mode, tool, {"prompt": "a fox", "n": 2, "quality": "hd", "size": "1024x1024"}
            )
        )

    assert len(target.requests()) == 2  # sent although over the limit
    (record,) = [r for r in caplog.records if r.name == "langchain_imagegen.budget"]
    assert record.levelno == logging.WARNING
    assert "over budget, reserved anyway (mode 'warn')" in record.getMessage()
    assert "$0.16" in record.getMessage()  # the estimate: 2 x hd 1024x1024 $0.08
    assert "$0.05" in record.getMessage()
    assert result.cost_usd == pytest.approx(0.16)
    assert budget.spent == pytest.approx(0.16)
    assert budget.remaining == pytest.approx(0.05 - 0.16)


@pytest.mark.parametrize("mode", MODES)
@live
async def test_a_failed_call_releases_its_reservation(
    mode: str, target: Target, live_tool: Any
) -> None:
    budget = InMemoryBudget(1.00)
    tool = live_tool("gpt-image-1", budget=budget)
    target.push_fault(Fault.server_error())

    error = failed(await call(mode, tool, {"prompt": "abcd", "quality": "low"}))

    assert "HTTP 500" in error
    assert len(target.requests()) == 1
    assert budget.spent == 0
    assert budget.reserved == 0
    assert budget.remaining == 1.00


@live
def test_a_budget_settles_with_the_usage_cost_not_the_estimate(
    target: Target, live_tool: Any
) -> None:
    budget = InMemoryBudget(1.00)
    tool = live_tool("gpt-image-1", budget=budget)

    results = [
        tool.generate({"prompt": prompt, "quality": "medium", "size": "1024x1536"})
        for prompt in ("abcd", "a longer prompt for the second call")
    ]

    assert len(target.requests()) == 2
    for result in results:
        assert result.estimated_cost_usd is not None
        assert result.cost_usd is not None
        assert result.cost_basis == "usage"
    assert budget.spent == pytest.approx(sum(r.cost_usd or 0 for r in results))
    assert budget.reserved == 0
    assert budget.remaining == pytest.approx(1.00 - budget.spent)


# --- edits ------------------------------------------------------------------------------------


@pytest.fixture
def live_edit(target: Target, tools: list[ImageGenerationTool], tmp_path: Path) -> Any:
    def make(model: str, **kwargs: Any) -> tuple[ImageEditTool, str]:
        tool = ImageEditTool(
            model=model,
            base_url=target.base_url,
            output_dir=str(tmp_path / "images"),
            max_retries=0,
            **kwargs,
        )
        tools.append(tool)
        saved = tool.store.save(encode_image("png", 512, 512, tag="to-edit"))
        return tool, image_handle(saved.sha256)

    return make


@pytest.mark.parametrize("mode", MODES)
@live
async def test_an_edit_costs_its_input_images_at_the_image_input_price(
    mode: str, target: Target, live_edit: Any
) -> None:
    budget = InMemoryBudget(1.00)
    tool, handle = live_edit("gpt-image-1", budget=budget)
    args = {"prompt": "abcd", "images": [handle], "quality": "low", "size": "1024x1024"}

    text, result = succeeded(await call(mode, tool, args))

    (sent,) = target.requests()
    assert sent.is_edit
    (request,) = result.requests
    assert request.usage is not None
    details = request.usage["input_tokens_details"]
    assert details["image_tokens"] > 0  # the input image, billed as image input
    by_hand = (
        details["text_tokens"] * 5.00
        + details["image_tokens"] * 10.00
        + request.usage["output_tokens"] * 40.00
    ) / MILLION
    assert result.cost_usd == pytest.approx(by_hand)
    assert request.cost_usd == pytest.approx(by_hand)
    assert result.cost_basis == "usage"
    # The estimate prices the output and the prompt; the input image is left out (and said so).
    assert result.estimated_cost_usd == pytest.approx((272 * 40 + 1 * 5) / MILLION)
    assert budget.spent == pytest.approx(by_hand)
    assert budget.reserved == 0
    assert "Cost: about $0.01" in text


@live
def test_the_edit_tools_estimate_is_the_estimate_of_the_edit(
    target: Target, live_edit: Any
) -> None:
    tool, handle = live_edit("gpt-image-1")
    args = {"prompt": "abcd", "images": [handle], "quality": "low", "size": "1024x1024"}

    estimate = tool.estimate_cost(args)

    assert estimate is not None
    assert estimate.usd == pytest.approx((272 * 40 + 1 * 5) / MILLION)
    assert "excludes the input image's tokens" in estimate.assumption
    assert target.http_calls() == 0

"""Provider profiles (issue 14), without sockets: how each provider's conventions are written.

For every built-in provider (xAI, Together, DeepInfra, Gemini's OpenAI compatibility,
OpenRouter's images route, vLLM-Omni, LocalAI, SiliconFlow): sizes the LLM proposes solved to
what the provider allows and written in its vocabulary (``aspect_ratio``, ``width``/``height``,
``image_size``/``batch_size``), with the change reported; its own parameters sent only when
the developer sets them; how the provider is chosen and which key goes to it; every error body
of the independent provider model (``tests/provider_emulator.py``) mapped to the right error
class with a readable message; the cost a provider reports.

Bodies are checked as the provider receives them: ``tool.coerce(args)`` written by
``tool._provider().wire.write(body)``, or (for whole calls) the body the provider model got
through an ``httpx.MockTransport``.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolCall, ToolMessage
from pydantic import BaseModel, ValidationError

from langchain_imagegen import ImageGenerationTool
from langchain_imagegen.coercion import Adjustment
from langchain_imagegen.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentPolicyError,
    InternalServerError,
    MalformedResponseError,
    RateLimitError,
    error_from_response,
)
from langchain_imagegen.pricing import cost_from_usage, format_usd, reported_cost
from langchain_imagegen.providers import (
    PROVIDERS,
    ProviderProfile,
    WireFormat,
    get_provider,
    known_providers,
    provider_for_url,
    register_provider,
)
from langchain_imagegen.registry import ImageModelProfile, OwnParam
from langchain_imagegen.response import parse_images_response
from langchain_imagegen.result import ImageGenerationResult
from tests.emulator import encode_image
from tests.provider_emulator import PROVIDERS as BEHAVIOURS
from tests.provider_emulator import ProviderContext
from tests.unit_tests.conftest import run

SELF_HOSTED = {"vllm-omni": "http://gpu-box.test:8000/v1", "localai": "http://nas.test:8080/v1"}
# The base URL that puts the package's route on the provider model's route.
BASE_PATHS = {"deepinfra": "/v1/openai", "gemini": "/v1beta/openai", "openrouter": "/api/v1"}


def make_tool(provider: str, tmp_path: Path, **kwargs: Any) -> ImageGenerationTool:
    kwargs.setdefault("api_key", "k")
    if provider in SELF_HOSTED:
        kwargs.setdefault("base_url", SELF_HOSTED[provider])
    return ImageGenerationTool(provider=provider, output_dir=str(tmp_path), **kwargs)


@dataclass(frozen=True)
class Written:
    """What one tool call becomes: the bodies as the provider receives them, and the
    adjustments the LLM is told about."""

    bodies: list[dict[str, Any]]
    adjustments: tuple[Adjustment, ...]

    @property
    def body(self) -> dict[str, Any]:
        assert len(self.bodies) == 1, self.bodies
        return self.bodies[0]

    def change(self, field_name: str) -> Adjustment | None:
        found = [a for a in self.adjustments if a.field == field_name]
        assert len(found) <= 1, found
        return found[0] if found else None


def schema_of(tool: ImageGenerationTool) -> dict[str, Any]:
    """The JSON schema of the arguments the LLM is offered."""
    schema = tool.tool_call_schema
    assert isinstance(schema, type)
    assert issubclass(schema, BaseModel)
    return schema.model_json_schema()


def written(tool: ImageGenerationTool, args: Mapping[str, Any]) -> Written:
    plan = tool.coerce(args)
    wire = tool._provider().wire
    return Written([wire.write(body) for body in plan.requests], plan.adjustments)


# ============================================================================================
# Sizes: one solver, written in each provider's convention
# ============================================================================================

# (proposed size, the ratio written; "=" in the id: taken as it is, no adjustment)
RATIO_ROWS_XAI = [
    ("1920x1080", "16:9"),
    ("16:9", "16:9"),
    ("landscape", "3:2"),
    ("4k", "16:9"),
    ("portrait 2:3", "2:3"),
    ("1:1", "1:1"),
    ("square", "1:1"),
    ("1024x1536", "2:3"),
    ("1080x2340", "9:19.5"),
    ("auto", "auto"),
]
RATIO_ROWS_OPENROUTER = [
    ("1920x1080", "16:9"),
    ("16:9", "16:9"),
    ("landscape", "3:2"),
    ("4k", "16:9"),
    ("portrait 2:3", "2:3"),
    ("1:1", "1:1"),
    ("2560x1080", "21:9"),
    ("1080x1350", "4:5"),
    ("19.5:9", "21:9"),  # xAI's ratio, not OpenRouter's: the nearest one it has
]


@pytest.mark.parametrize(
    ("provider", "proposed", "ratio"),
    [("xai", *row) for row in RATIO_ROWS_XAI]
    + [("openrouter", *row) for row in RATIO_ROWS_OPENROUTER],
)
def test_ratio_providers_get_the_nearest_ratio_as_aspect_ratio(
    provider: str, proposed: str, ratio: str, tmp_path: Path
) -> None:
    out = written(make_tool(provider, tmp_path), {"prompt": "a cat", "size": proposed})
    assert out.body["aspect_ratio"] == ratio
    assert "size" not in out.body
    change = out.change("size")
    if proposed == ratio:
        assert change is None
    else:
        assert change is not None
        assert (change.proposed, change.applied) == (proposed, ratio)
        assert f"'{proposed}' → '{ratio}'" in change.describe()
        assert "16:9" in change.describe()  # the LLM is told the choices


@pytest.mark.parametrize("provider", ["xai", "openrouter"])
def test_ratio_provider_takes_an_aspect_ratio_hint(provider: str, tmp_path: Path) -> None:
    out = written(make_tool(provider, tmp_path), {"prompt": "a cat", "aspect_ratio": "16:9"})
    assert out.body["aspect_ratio"] == "16:9"
    assert "size" not in out.body


def test_an_unreadable_size_is_not_sent_and_says_why(tmp_path: Path) -> None:
    out = written(make_tool("xai", tmp_path), {"prompt": "a cat", "size": "banana"})
    assert "aspect_ratio" not in out.body
    assert "size" not in out.body
    change = out.change("size")
    assert change is not None
    assert change.applied is None
    assert "16:9" in change.reason


def test_xai_legacy_model_takes_no_size(tmp_path: Path) -> None:
    tool = make_tool("xai", tmp_path, model="grok-2-image")
    out = written(tool, {"prompt": "a cat", "size": "1:1"})
    assert "aspect_ratio" not in out.body
    change = out.change("size")
    assert change is not None
    assert change.applied is None
    assert "grok-2-image takes no size" in change.reason


# (proposed, width, height) on Together's grid: multiples of 8, edges 64..2048
TOGETHER_ROWS = [
    ("1920x1080", 1920, 1080),
    ("1024x1024", 1024, 1024),
    ("2048x2048", 2048, 2048),
    ("64x64", 64, 64),
    ("2049x2049", 2048, 2048),
    ("63x63", 64, 64),
    ("1000x700", 1000, 704),
    ("4000x100", 2048, 64),
]


@pytest.mark.parametrize(("proposed", "width", "height"), TOGETHER_ROWS)
def test_together_writes_width_and_height_on_its_grid(
    proposed: str, width: int, height: int, tmp_path: Path
) -> None:
    out = written(make_tool("together", tmp_path), {"prompt": "a cat", "size": proposed})
    assert (out.body["width"], out.body["height"]) == (width, height)
    assert "size" not in out.body
    change = out.change("size")
    if proposed == f"{width}x{height}":
        assert change is None
    else:
        assert change is not None
        assert (change.proposed, change.applied) == (proposed, f"{width}x{height}")
        assert "multiples of 8" in change.reason


@pytest.mark.parametrize(("proposed", "aspect"), [("16:9", 16 / 9), ("landscape", 3 / 2)])
def test_together_turns_a_shape_into_grid_edges(
    proposed: str, aspect: float, tmp_path: Path
) -> None:
    out = written(make_tool("together", tmp_path), {"prompt": "a cat", "size": proposed})
    width, height = out.body["width"], out.body["height"]
    assert width % 8 == 0
    assert height % 8 == 0
    assert min(width, height) >= 64
    assert max(width, height) <= 2048
    assert abs(math.log(width / height / aspect)) < 0.02
    assert out.change("size") is not None


def test_together_width_and_height_hints_choose_the_size(tmp_path: Path) -> None:
    out = written(
        make_tool("together", tmp_path), {"prompt": "a cat", "width": 2049, "height": "1000"}
    )
    assert (out.body["width"], out.body["height"]) == (2048, 1000)
    width_note = out.change("width")
    assert width_note is not None
    assert "2048x1000" in width_note.reason


@pytest.mark.parametrize(
    ("provider", "proposed", "sent"),
    [
        ("deepinfra", "2049x2049", "2048x2048"),
        ("deepinfra", "1000x700", "1000x704"),
        ("vllm-omni", "513x511", "512x512"),
        ("vllm-omni", "8192x512", "4096x1024"),  # its 4:1 limit and 4096 edge
        ("localai", "256x256", "256x256"),
        ("gemini", "1920x1080", "1408x768"),
        ("gemini", "portrait", "896x1280"),
        ("gemini", "16:9", "1408x768"),
        ("gemini", "1024x1024", "1024x1024"),
    ],
)
def test_size_providers_get_a_size_they_allow(
    provider: str, proposed: str, sent: str, tmp_path: Path
) -> None:
    out = written(make_tool(provider, tmp_path), {"prompt": "a cat", "size": proposed})
    assert out.body["size"] == sent
    change = out.change("size")
    assert (change is None) == (proposed == sent)


@pytest.mark.parametrize(
    ("proposed", "image_size"),
    [
        ("1024x1024", "1024x1024"),
        ("720x1280", "720x1280"),
        ("portrait", "960x1280"),
        ("9:16", "720x1280"),
        ("1:2", "720x1440"),
        ("1920x1080", "1024x1024"),  # Kolors has no landscape size: the squarest wins
    ],
)
def test_siliconflow_writes_image_size_and_batch_size(
    proposed: str, image_size: str, tmp_path: Path
) -> None:
    out = written(make_tool("siliconflow", tmp_path), {"prompt": "a cat", "size": proposed, "n": 2})
    assert out.body == {
        "model": "Kwai-Kolors/Kolors",
        "prompt": "a cat",
        "image_size": image_size,
        "batch_size": 2,
    }
    assert (out.change("size") is None) == (proposed == image_size)


def test_siliconflow_never_gets_response_format(tmp_path: Path) -> None:
    out = written(
        make_tool("siliconflow", tmp_path), {"prompt": "a cat", "response_format": "b64_json"}
    )
    assert "response_format" not in out.body
    assert out.change("response_format") is not None


def test_gemini_always_gets_b64_json_and_only_the_fields_it_knows(tmp_path: Path) -> None:
    sloppy = {
        "prompt": "a cat",
        "size": "wide",
        "n": "2",
        "quality": "high",
        "style": "vivid",
        "user": "u-1",
        "background": "transparent",
        "response_format": "url",
    }
    out = written(make_tool("gemini", tmp_path), sloppy)
    # The compatibility layer refuses any other field with a 400.
    assert set(out.body) <= {"model", "prompt", "n", "size", "response_format"}
    assert out.body["response_format"] == "b64_json"
    assert out.body["n"] == 2
    for dropped in ("quality", "style", "user", "background", "response_format"):
        change = out.change(dropped)
        assert change is not None
        assert change.applied is None, dropped
    plain = written(make_tool("gemini", tmp_path), {"prompt": "a cat"})
    assert plain.body["response_format"] == "b64_json"


@pytest.mark.parametrize("provider", ["deepinfra", "vllm-omni"])
def test_base64_only_providers_never_get_response_format_url(provider: str, tmp_path: Path) -> None:
    out = written(make_tool(provider, tmp_path), {"prompt": "a cat", "response_format": "url"})
    assert "response_format" not in out.body
    change = out.change("response_format")
    assert change is not None
    assert "always returns base64" in change.reason


def test_together_spells_b64_json_as_base64(tmp_path: Path) -> None:
    tool = make_tool("together", tmp_path, image_params={"response_format": "b64_json"})
    assert written(tool, {"prompt": "a cat"}).body["response_format"] == "base64"


# --- n above the per-request limit fans out ---------------------------------------------------

# (provider, n asked, n field as the provider names it, counts per request)
FAN_OUT_ROWS = [
    ("xai", 12, "n", [10, 2]),
    ("together", 6, "n", [4, 2]),
    ("together", 4, "n", [4]),
    ("deepinfra", 11, "n", [10, 1]),
    ("gemini", 5, "n", [4, 1]),
    ("openrouter", 5, "n", [4, 1]),
    ("vllm-omni", 11, "n", [10, 1]),
    ("localai", 3, "n", [1, 1, 1]),
    ("siliconflow", 6, "batch_size", [4, 2]),
]


@pytest.mark.parametrize(("provider", "asked", "n_field", "counts"), FAN_OUT_ROWS)
def test_n_above_the_per_request_limit_fans_out(
    provider: str, asked: int, n_field: str, counts: list[int], tmp_path: Path
) -> None:
    tool = make_tool(provider, tmp_path, max_images=12)
    out = written(tool, {"prompt": "a cat", "n": asked})
    assert [body[n_field] for body in out.bodies] == counts
    if n_field != "n":
        assert all("n" not in body for body in out.bodies)
    change = out.change("n")
    if len(counts) == 1:
        assert change is None
    else:
        assert change is not None
        assert change.applied == (1 if set(counts) == {1} else counts)
        assert f"at most {counts[0]} image" in change.reason


def test_n_is_still_capped_by_the_tools_max_images(tmp_path: Path) -> None:
    out = written(make_tool("together", tmp_path), {"prompt": "a cat", "n": 6})
    assert [body["n"] for body in out.bodies] == [4]
    change = out.change("n")
    assert change is not None
    assert (change.proposed, change.applied) == (6, 4)


# ============================================================================================
# The provider's own parameters: developer only, typed, reported
# ============================================================================================

# (provider, model or None, image_params, sent, adjustments as (field, proposed, applied))
OWN_PARAM_ROWS: list[
    tuple[str, str | None, dict[str, Any], dict[str, Any], list[tuple[str, Any, Any]]]
] = [
    (
        "together",
        None,
        {"seed": 42, "steps": 4, "negative_prompt": "text", "guidance_scale": 3.5},
        {"seed": 42, "steps": 4, "negative_prompt": "text", "guidance_scale": 3.5},
        [],
    ),
    (
        "together",
        None,
        {"seed": "7", "steps": 99, "guidance_scale": "3.5", "disable_safety_checker": "yes"},
        {"seed": 7, "steps": 50, "guidance_scale": 3.5, "disable_safety_checker": True},
        [
            ("seed", "7", 7),
            ("steps", 99, 50),
            ("guidance_scale", "3.5", 3.5),
            ("disable_safety_checker", "yes", True),
        ],
    ),
    (
        "together",
        None,
        {"steps": 0, "seed": -4, "steps_extra": 1},
        {"steps": 1, "seed": 0},
        [("steps", 0, 1), ("seed", -4, 0), ("steps_extra", 1, None)],
    ),
    (
        "together",
        None,
        {"negative_prompt": 5, "guidance_scale": "abc", "disable_safety_checker": "maybe"},
        {},
        [
            ("negative_prompt", 5, None),
            ("guidance_scale", "abc", None),
            ("disable_safety_checker", "maybe", None),
        ],
    ),
    (
        "together",
        None,
        {"steps": 4.6, "guidance_scale": 3},
        {"steps": 5, "guidance_scale": 3},
        [("steps", 4.6, 5)],
    ),
    ("xai", None, {"resolution": "1k"}, {"resolution": "1k"}, []),
    ("xai", None, {"resolution": "2k"}, {}, [("resolution", "2k", None)]),
    ("xai", "grok-imagine-image-pro", {"resolution": "2k"}, {"resolution": "2k"}, []),
    (
        "openrouter",
        None,
        {"image_size": "2K", "seed": "1"},
        {"image_size": "2K", "seed": 1},
        [("seed", "1", 1)],
    ),
    ("openrouter", None, {"image_size": "8K"}, {}, [("image_size", "8K", None)]),
    (
        "vllm-omni",
        None,
        {"num_inference_steps": "300", "true_cfg_scale": 21, "guidance_scale": -1, "seed": 3},
        {"num_inference_steps": 200, "true_cfg_scale": 20, "guidance_scale": 0, "seed": 3},
        [
            ("num_inference_steps", "300", 200),
            ("true_cfg_scale", 21, 20),
            ("guidance_scale", -1, 0),
        ],
    ),
    ("vllm-omni", None, {"negative_prompt": "blur"}, {"negative_prompt": "blur"}, []),
    (
        "localai",
        None,
        {"step": "20", "mode": -1},
        {"step": 20, "mode": 0},
        [("step", "20", 20), ("mode", -1, 0)],
    ),
    (
        "siliconflow",
        None,
        {"num_inference_steps": 150, "seed": 5, "negative_prompt": "x", "guidance_scale": 7.5},
        {"num_inference_steps": 100, "seed": 5, "negative_prompt": "x", "guidance_scale": 7.5},
        [("num_inference_steps", 150, 100)],
    ),
]


@pytest.mark.parametrize(("provider", "model", "params", "sent", "changes"), OWN_PARAM_ROWS)
def test_own_params_set_by_the_developer_are_typed_and_sent(
    provider: str,
    model: str | None,
    params: dict[str, Any],
    sent: dict[str, Any],
    changes: list[tuple[str, Any, Any]],
    tmp_path: Path,
) -> None:
    extra = {"model": model} if model else {}
    tool = make_tool(provider, tmp_path, image_params=params, **extra)
    out = written(tool, {"prompt": "a cat"})
    own = {k: v for k, v in out.body.items() if k in params}
    assert own == sent
    for key, value in sent.items():
        assert type(out.body[key]) is type(value), key  # "7" goes out as 7, True as true
    reported = [(a.field, a.proposed, a.applied) for a in out.adjustments]
    assert reported == changes
    for adjustment in out.adjustments:
        assert adjustment.reason  # each change says why


def test_own_param_reasons_name_the_rule(tmp_path: Path) -> None:
    tool = make_tool(
        "together",
        tmp_path,
        image_params={"steps": 99, "negative_prompt": 5, "seed": "7", "disable_safety_checker": 2},
    )
    reasons = {a.field: a.reason for a in written(tool, {"prompt": "a cat"}).adjustments}
    assert reasons == {
        "steps": "steps runs from 1 to 50",
        "negative_prompt": "negative_prompt must be a string",
        "seed": "seed is a whole number",
        "disable_safety_checker": "disable_safety_checker must be true or false",
    }


# (provider, model or None, own parameters the LLM proposes)
LLM_OWN_PARAM_ROWS = [
    ("together", None, {"seed": 3, "steps": 4, "negative_prompt": "dogs", "guidance_scale": 2}),
    ("together", None, {"disable_safety_checker": True}),
    ("openrouter", None, {"image_size": "4K", "seed": 1}),
    ("vllm-omni", None, {"num_inference_steps": 3, "true_cfg_scale": 4, "negative_prompt": "x"}),
    ("localai", None, {"step": 50, "mode": 2}),
    ("siliconflow", None, {"num_inference_steps": 3, "seed": 9, "guidance_scale": 1}),
]


@pytest.mark.parametrize(("provider", "model", "proposed"), LLM_OWN_PARAM_ROWS)
def test_own_params_proposed_by_the_llm_are_refused(
    provider: str, model: str | None, proposed: dict[str, Any], tmp_path: Path
) -> None:
    extra = {"model": model} if model else {}
    out = written(make_tool(provider, tmp_path, **extra), {"prompt": "a cat", **proposed})
    for key in proposed:
        assert key not in out.body, key
        change = out.change(key)
        assert change is not None
        assert change.applied is None
        assert change.reason == f"only the developer sets {key}"


@pytest.mark.parametrize("model", ["grok-imagine-image", "grok-imagine-image-pro"])
def test_xai_resolution_proposed_by_the_llm_is_refused(model: str, tmp_path: Path) -> None:
    proposed = "2k" if model.endswith("pro") else "1k"
    out = written(
        make_tool("xai", tmp_path, model=model), {"prompt": "a cat", "resolution": proposed}
    )
    assert "resolution" not in out.body
    change = out.change("resolution")
    assert change is not None
    assert change.reason == "only the developer sets resolution"


def test_developer_value_wins_over_the_llms_own_param(tmp_path: Path) -> None:
    tool = make_tool("vllm-omni", tmp_path, image_params={"num_inference_steps": 30})
    out = written(tool, {"prompt": "a cat", "num_inference_steps": 3})
    assert out.body["num_inference_steps"] == 30
    change = out.change("num_inference_steps")
    assert change is not None
    assert (change.proposed, change.applied) == (3, None)
    assert "developer" in change.reason


@pytest.mark.parametrize("provider", ["gemini", "deepinfra"])
def test_providers_without_own_params_never_send_them(provider: str, tmp_path: Path) -> None:
    out = written(make_tool(provider, tmp_path), {"prompt": "a cat", "seed": 5})
    assert "seed" not in out.body
    change = out.change("seed")
    assert change is not None
    assert change.applied is None


def test_extra_body_is_still_sent_as_given(tmp_path: Path) -> None:
    tool = make_tool("together", tmp_path, extra_body={"image_loras": [], "steps": 999})
    body = written(tool, {"prompt": "a cat"}).body
    assert body["image_loras"] == []
    assert body["steps"] == 999


@pytest.mark.parametrize("provider", [p.name for p in PROVIDERS if p.name != "openai"])
def test_own_params_are_not_in_the_llms_schema(provider: str, tmp_path: Path) -> None:
    tool = make_tool(provider, tmp_path)
    schema = schema_of(tool)
    properties = set(schema["properties"])
    own = {param.name for param in tool.profile.own_params}
    assert not own & properties, own & properties
    assert {"prompt", "size", "n"} <= properties
    for never in tool.profile.never_sends:
        assert never not in properties, never


@pytest.mark.parametrize("provider", ["xai", "openrouter"])
def test_a_ratio_only_providers_schema_offers_ratios(provider: str, tmp_path: Path) -> None:
    tool = make_tool(provider, tmp_path)
    size = schema_of(tool)["properties"]["size"]
    (choice,) = [option for option in size["anyOf"] if option.get("type") == "string"]
    assert choice["enum"] == list(tool.profile.sizes)
    assert "16:9" in choice["enum"]
    assert not any("x" in ratio for ratio in choice["enum"])
    assert "16:9" in size["description"]


def test_a_grid_providers_schema_offers_widthxheight(tmp_path: Path) -> None:
    size = schema_of(make_tool("together", tmp_path))["properties"]["size"]
    (choice,) = [option for option in size["anyOf"] if option.get("type") == "string"]
    assert "pattern" in choice
    assert "multiples of 8" in size["description"]


# ============================================================================================
# Choosing the provider, its model, base URL and key
# ============================================================================================

HOSTS = [
    ("https://api.x.ai/v1", "xai"),
    ("https://API.X.AI/v1/", "xai"),
    ("https://api.together.xyz/v1", "together"),
    ("https://api.together.ai/v1", "together"),
    ("https://api.deepinfra.com/v1/openai", "deepinfra"),
    ("https://generativelanguage.googleapis.com/v1beta/openai", "gemini"),
    ("https://openrouter.ai/api/v1", "openrouter"),
    ("https://api.siliconflow.cn/v1", "siliconflow"),
    ("https://api.siliconflow.com/v1", "siliconflow"),
    ("https://api.openai.com/v1", "openai"),
    ("https://my-gateway.example.com/v1", "openai"),
    ("http://localhost:8000/v1", "openai"),
    ("not a url at all", "openai"),
]


@pytest.mark.parametrize(("base_url", "name"), HOSTS)
def test_provider_for_url_reads_the_host(base_url: str, name: str) -> None:
    assert provider_for_url(base_url).name == name


@pytest.mark.parametrize(("base_url", "name"), HOSTS[:-1])
def test_the_tool_infers_the_provider_from_base_url(
    base_url: str, name: str, tmp_path: Path
) -> None:
    tool = ImageGenerationTool(base_url=base_url, api_key="k", output_dir=str(tmp_path))
    assert tool._provider().name == name
    assert tool._endpoint().wire == get_provider(name).wire


@pytest.mark.parametrize("given", ["--base-url", "OPENAI_BASE_URL"])
def test_the_cli_infers_the_provider_and_its_model_as_the_tool_does(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --provider and no --model: the host of the base URL (the option or the
    environment) names xAI, whose default model the dry run then sends, as the tool would."""
    argv = ["generate", "a fox", "--size", "1920x1080", "--dry-run", "--json"]
    argv += ["--output-dir", str(tmp_path)]
    if given == "--base-url":
        argv += ["--base-url", "https://api.x.ai/v1"]
    else:
        monkeypatch.setenv("OPENAI_BASE_URL", "https://api.x.ai/v1")
    code, out = run(argv)
    assert code == 0, out
    report = json.loads(out)
    tool = ImageGenerationTool(
        base_url="https://api.x.ai/v1", api_key="k", output_dir=str(tmp_path)
    )
    assert report["model"] == tool.model == "grok-imagine-image"
    assert report["requests"] == [
        {"model": "grok-imagine-image", "prompt": "a fox", "aspect_ratio": "16:9"}
    ]


@pytest.mark.parametrize(
    ("name", "model", "url"),
    [
        ("xai", "grok-imagine-image", "https://api.x.ai/v1/images/generations"),
        (
            "together",
            "black-forest-labs/FLUX.1-schnell",
            "https://api.together.xyz/v1/images/generations",
        ),
        (
            "deepinfra",
            "black-forest-labs/FLUX-1-schnell",
            "https://api.deepinfra.com/v1/openai/images/generations",
        ),
        (
            "gemini",
            "imagen-4.0-generate-001",
            "https://generativelanguage.googleapis.com/v1beta/openai/images/generations",
        ),
        ("openrouter", "google/gemini-2.5-flash-image", "https://openrouter.ai/api/v1/images"),
        ("siliconflow", "Kwai-Kolors/Kolors", "https://api.siliconflow.cn/v1/images/generations"),
        ("XAI", "grok-imagine-image", "https://api.x.ai/v1/images/generations"),
        (" xai ", "grok-imagine-image", "https://api.x.ai/v1/images/generations"),
    ],
)
def test_a_named_provider_sets_its_default_model_and_url(
    name: str, model: str, url: str, tmp_path: Path
) -> None:
    tool = ImageGenerationTool(provider=name, api_key="k", output_dir=str(tmp_path))
    assert tool.model == model
    assert tool._endpoint().url == url
    assert written(tool, {"prompt": "a cat"}).body["model"] == model


def test_a_named_provider_keeps_the_callers_model_and_url(tmp_path: Path) -> None:
    tool = ImageGenerationTool(
        provider="xai",
        model="grok-imagine-image-pro",
        base_url="https://xai-proxy.example.com/v1",
        api_key="k",
        output_dir=str(tmp_path),
    )
    assert tool.model == "grok-imagine-image-pro"
    assert tool._endpoint().url == "https://xai-proxy.example.com/v1/images/generations"
    assert tool._provider().name == "xai"


@pytest.mark.parametrize(("base_url", "name"), HOSTS[:9])
def test_a_provider_inferred_from_base_url_gets_its_default_model(
    base_url: str, name: str, tmp_path: Path
) -> None:
    tool = ImageGenerationTool(base_url=base_url, api_key="k", output_dir=str(tmp_path))
    assert tool.model == get_provider(name).default_model


def test_an_unknown_provider_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        ImageGenerationTool(provider="dall-e", api_key="k", output_dir=str(tmp_path))
    message = str(caught.value)
    assert "unknown provider 'dall-e'" in message
    for name in ("xai", "together", "deepinfra", "gemini", "openrouter", "vllm-omni"):
        assert name in message
    with pytest.raises(KeyError, match="known providers: openai, xai"):
        get_provider("dall-e")


def test_a_provider_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="provider's name or a ProviderProfile, not int"):
        ImageGenerationTool(provider=5, api_key="k", output_dir=str(tmp_path))


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("xai", "XAI_API_KEY"),
        ("together", "TOGETHER_API_KEY"),
        ("deepinfra", "DEEPINFRA_API_KEY"),
        ("deepinfra", "DEEPINFRA_TOKEN"),
        ("gemini", "GEMINI_API_KEY"),
        ("gemini", "GOOGLE_API_KEY"),
        ("openrouter", "OPENROUTER_API_KEY"),
        ("siliconflow", "SILICONFLOW_API_KEY"),
        ("vllm-omni", "VLLM_API_KEY"),
        ("localai", "LOCALAI_API_KEY"),
    ],
)
def test_the_key_comes_from_the_providers_variable(
    name: str, variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, f"{variable}-value")
    extra = {"base_url": SELF_HOSTED[name]} if name in SELF_HOSTED else {}
    tool = ImageGenerationTool(provider=name, output_dir=str(tmp_path), **extra)
    headers = tool._endpoint().headers()
    assert headers["Authorization"] == f"Bearer {variable}-value"


def test_the_first_key_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPINFRA_API_KEY", "first")
    monkeypatch.setenv("DEEPINFRA_TOKEN", "second")
    tool = ImageGenerationTool(provider="deepinfra", output_dir=str(tmp_path))
    assert tool._endpoint().headers()["Authorization"] == "Bearer first"


def test_an_explicit_key_wins_over_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XAI_API_KEY", "from-env")
    tool = ImageGenerationTool(provider="xai", api_key="given", output_dir=str(tmp_path))
    assert tool._endpoint().headers()["Authorization"] == "Bearer given"


@pytest.mark.parametrize("name", ["xai", "together", "deepinfra", "gemini", "openrouter"])
def test_openai_key_is_not_sent_to_a_provider_merely_named(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    tool = ImageGenerationTool(provider=name, output_dir=str(tmp_path))
    with pytest.raises(AuthenticationError) as caught:
        tool._endpoint().headers()
    message = str(caught.value)
    assert "sk-openai-secret" not in message
    assert get_provider(name).key_env[0] in message  # says which variable to set


def test_openai_key_is_used_when_base_url_points_at_the_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    tool = ImageGenerationTool(base_url="https://api.x.ai/v1", output_dir=str(tmp_path))
    assert tool._provider().name == "xai"
    assert tool._endpoint().headers()["Authorization"] == "Bearer sk-openai-secret"


@pytest.mark.parametrize("name", ["vllm-omni", "localai"])
def test_self_hosted_providers_need_a_base_url(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="pass base_url="):
        ImageGenerationTool(provider=name, output_dir=str(tmp_path))


@pytest.mark.parametrize("name", ["vllm-omni", "localai"])
def test_self_hosted_providers_need_no_key(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tool = ImageGenerationTool(provider=name, base_url=SELF_HOSTED[name], output_dir=str(tmp_path))
    headers = tool._endpoint().headers()
    assert not any(key.lower() == "authorization" for key in headers)


@pytest.mark.parametrize(
    ("name", "model", "family"),
    [
        ("together", "some-org/brand-new-model", "together"),
        ("xai", "grok-imagine-image-2099-01-01", "grok-imagine-image"),
        ("openrouter", "black-forest-labs/flux-2", "openrouter"),
        ("vllm-omni", "Qwen/Qwen-Image", "vllm-omni"),
    ],
)
def test_an_unknown_model_on_a_known_provider_gets_its_defaults(
    name: str, model: str, family: str, tmp_path: Path
) -> None:
    tool = make_tool(name, tmp_path, model=model)
    profile = tool.profile
    assert profile.name == model
    assert profile.family == family
    default = get_provider(name).fallback
    assert profile.own_params == default.own_params
    assert profile.max_images_per_request == default.max_images_per_request
    assert written(tool, {"prompt": "a cat"}).body["model"] == model


def test_a_registered_provider_is_chosen_by_name_and_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_imagegen import providers

    monkeypatch.setattr(providers, "_providers", dict(providers._providers))
    model = ImageModelProfile(
        name="pixel-1",
        family="pixel",
        sizes=("1:1", "16:9"),
        default_size=None,
        max_images_per_request=2,
        own_params=(OwnParam("seed", int, minimum=0),),
    )
    pixel = ProviderProfile(
        name="pixelhouse",
        title="Pixel House",
        base_url="https://api.pixelhouse.test/v2",
        fallback=model,
        default_model="pixel-1",
        models=(model,),
        hosts=("api.pixelhouse.test",),
        key_env=("PIXELHOUSE_KEY",),
        wire=WireFormat(renames=(("size", "ratio"),)),
    )
    register_provider(pixel)
    assert "pixelhouse" in known_providers()
    assert provider_for_url("https://api.pixelhouse.test/v2").name == "pixelhouse"
    monkeypatch.setenv("PIXELHOUSE_KEY", "pk")
    tool = ImageGenerationTool(
        provider="pixelhouse", output_dir=str(tmp_path), image_params={"seed": "3"}
    )
    out = written(tool, {"prompt": "a cat", "size": "1920x1080", "n": 3})
    assert [b["ratio"] for b in out.bodies] == ["16:9", "16:9"]
    assert [b["n"] for b in out.bodies] == [2, 1]
    assert all(b["seed"] == 3 and b["model"] == "pixel-1" for b in out.bodies)
    assert tool._endpoint().headers()["Authorization"] == "Bearer pk"
    assert tool.model_dump(mode="json")["provider"] == "pixelhouse"


def test_a_provider_with_its_own_key_header_gets_the_key_as_is(tmp_path: Path) -> None:
    model = ImageModelProfile(name="k-1", family="k", sizes=("1024x1024",), default_size=None)
    keyed = ProviderProfile(
        name="keyed",
        title="Keyed",
        base_url="https://api.keyed.test/v1",
        fallback=model,
        default_model="k-1",
        auth_header="x-api-key",
    )
    tool = ImageGenerationTool(provider=keyed, api_key="kk-1", output_dir=str(tmp_path))
    headers = tool._endpoint().headers()
    assert headers["x-api-key"] == "kk-1"
    assert "Authorization" not in headers
    assert "kk-1" not in repr(tool.client.endpoint)


def test_a_tool_with_a_provider_profile_copies_and_pickles(tmp_path: Path) -> None:
    tool = ImageGenerationTool(provider=get_provider("xai"), api_key="k", output_dir=str(tmp_path))
    for copied in (
        copy.copy(tool),
        copy.deepcopy(tool),
        tool.model_copy(deep=True),
        pickle.loads(pickle.dumps(tool)),
    ):
        assert copied.provider_profile.name == "xai"
        assert copied.model == "grok-imagine-image"
        assert copied.profile.sizes == tool.profile.sizes
    assert pickle.loads(pickle.dumps(get_provider("together"))) == get_provider("together")


def test_a_provider_assigned_later_never_sends_its_format_to_openai(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-key")
    tool = ImageGenerationTool(api_key="sk-openai", output_dir=str(tmp_path))
    tool.provider = "xai"
    assert tool.client.endpoint.url == "https://api.x.ai/v1/images/generations"
    # The key given at construction was given for OpenAI; it is still the one given.
    assert tool._endpoint().headers()["Authorization"] == "Bearer sk-openai"


def test_wire_format_never_changes_the_body_it_writes() -> None:
    body = {"model": "m", "size": "1024x768", "response_format": "b64_json", "n": 2}
    before = dict(body)
    together = get_provider("together").wire.write(body)
    siliconflow = get_provider("siliconflow").wire.write(body)
    assert body == before
    assert together == {"model": "m", "width": 1024, "height": 768,
                        "response_format": "base64", "n": 2}  # fmt: skip
    assert siliconflow == {"model": "m", "image_size": "1024x768",
                           "response_format": "b64_json", "batch_size": 2}  # fmt: skip
    assert get_provider("openai").wire.write(body) is body


# ============================================================================================
# Error bodies of every provider end in the right class, readably
# ============================================================================================


def _context(api_key: str = "k") -> ProviderContext:
    return ProviderContext(
        api_key=api_key,
        root_url="http://provider.test",
        request_id="req_unit",
        encode=lambda fmt, width, height, tag: encode_image(fmt, width, height, tag=tag),
        store=lambda data, fmt: f"http://provider.test/files/one.{fmt}",
    )


def provider_error(provider: str, prompt: str, *, key: str = "k") -> APIError:
    """The provider model's answer to ``prompt``, read the way the package reads answers."""
    behaviour = BEHAVIOURS[provider]
    raw = json.dumps({"model": "m", "prompt": prompt}).encode()
    reply = behaviour.handle(
        behaviour.routes[0], {"authorization": f"Bearer {key}"}, raw, _context()
    )
    headers = dict(reply.headers)
    if 200 <= reply.status < 300:
        with pytest.raises(APIError) as caught:
            parse_images_response(reply.status, reply.body, headers)
        return caught.value
    return error_from_response(reply.status, reply.body, headers)


# (provider, marker, expected class, words of the provider's message)
ERROR_ROWS: list[tuple[str, str, type[APIError], str]] = []
for _name, _behaviour in BEHAVIOURS.items():
    for _shape in _behaviour.error_shapes:
        _words = f"Scripted {_name} error ({_shape})."
        ERROR_ROWS.append((_name, f"provider_error:{_shape}", BadRequestError, _words))
    ERROR_ROWS.append((_name, "rate_limit:3", RateLimitError, "Rate limit exceeded"))
    ERROR_ROWS.append((_name, "server_error", InternalServerError, "Internal server error"))
    ERROR_ROWS.append(
        (_name, "provider_error:in_200", MalformedResponseError, "The server had an error")
    )
ERROR_ROWS += [
    ("xai", "content_policy:respect_moderation", ContentPolicyError, "moderation blocked"),
    ("localai", "content_policy", InternalServerError, "backend refused the prompt"),
]


def _error_params() -> list[Any]:
    return [pytest.param(*row, id=f"{row[0]}-{row[1]}") for row in ERROR_ROWS]


@pytest.mark.parametrize(("provider", "marker", "kind", "words"), _error_params())
def test_each_error_shape_maps_to_its_class_with_the_providers_message(
    provider: str, marker: str, kind: type[APIError], words: str
) -> None:
    error = provider_error(provider, f"a cat [[fault:{marker}]]")
    assert type(error) is kind, (type(error).__name__, str(error))
    assert words in str(error)
    assert "unrecognised body" not in str(error)
    assert error.agent_message().endswith(kind.hint[1:] + ".")


# Content-policy answers the package reads as something else (each a 400 or 403 whose text or
# metadata says a moderation/safety check refused it): the agent is then told to change the
# arguments instead of rephrasing the prompt.
POLICY_ROWS = [
    ("xai", "content_policy", "rejected by content moderation"),
    ("xai", "content_policy:block_reason", "input moderation"),
    ("together", "content_policy", "NSFW content detected"),
    ("deepinfra", "content_policy", "safety checker"),
    ("openrouter", "content_policy", "flagged by moderation"),
    ("vllm-omni", "content_policy", "safety checker"),
    ("siliconflow", "content_policy", "sensitive content"),
]


@pytest.mark.parametrize(("provider", "marker", "words"), POLICY_ROWS)
def test_provider_moderation_blocks_are_content_policy_errors(
    provider: str, marker: str, words: str
) -> None:
    error = provider_error(provider, f"a cat [[fault:{marker}]]")
    assert isinstance(error, ContentPolicyError), (type(error).__name__, str(error))
    assert words in str(error)


@pytest.mark.parametrize(("provider", "marker", "words"), POLICY_ROWS)
def test_provider_moderation_blocks_are_at_least_readable(
    provider: str, marker: str, words: str
) -> None:
    error = provider_error(provider, f"a cat [[fault:{marker}]]")
    assert words in str(error)


@pytest.mark.parametrize(
    ("provider", "status", "words"),
    [
        ("xai", 401, "Incorrect API key provided"),
        ("together", 401, "Incorrect API key provided"),
        ("deepinfra", 401, "Incorrect API key provided"),
        ("openrouter", 401, "User not found"),
        ("vllm-omni", 401, "Unauthorized"),
        ("localai", 401, "An authentication key is required"),
        ("siliconflow", 401, "Invalid token"),
        ("gemini", 400, "API key not valid"),
    ],
)
def test_a_wrong_key_is_an_authentication_error(provider: str, status: int, words: str) -> None:
    behaviour = BEHAVIOURS[provider]
    raw = json.dumps({"model": "m", "prompt": "a cat"}).encode()
    reply = behaviour.handle(
        behaviour.routes[0], {"authorization": "Bearer wrong"}, raw, _context()
    )
    assert reply.status == status
    error = error_from_response(reply.status, reply.body, dict(reply.headers))
    assert isinstance(error, AuthenticationError), (type(error).__name__, str(error))
    assert words in str(error)
    assert "unrecognised body" not in str(error)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"detail": "Invalid size format: 'axb'."}, "Invalid size format: 'axb'."),
        ({"detail": {"error": "model busy"}}, "model busy"),
        ({"detail": {"message": "no such lora"}}, "no such lora"),
        (
            {"detail": [{"type": "missing", "loc": ["body", "prompt"], "msg": "Field required"}]},
            "prompt: Field required",
        ),
        (
            {
                "detail": [
                    {"loc": ["body", "n"], "msg": "Input should be less than or equal to 10"},
                    {"loc": ["body", "size"], "msg": "Value error, bad size"},
                ]
            },
            "n: Input should be less than or equal to 10; size: Value error, bad size",
        ),
        ({"code": "Client specified an invalid argument", "error": "bad ratio"}, "bad ratio"),
    ],
)
def test_fastapi_and_xai_error_shapes_are_read(body: dict[str, Any], message: str) -> None:
    error = error_from_response(422, json.dumps(body).encode(), {})
    assert isinstance(error, BadRequestError)
    assert error.message == message


def test_xai_code_is_kept_as_the_error_code() -> None:
    body = {"code": "Some resource has been exhausted", "error": "slow down"}
    error = error_from_response(429, json.dumps(body).encode(), {})
    assert isinstance(error, RateLimitError)
    assert error.code == "Some resource has been exhausted"


# ============================================================================================
# Responses of every shape, and the cost a provider reports
# ============================================================================================


def test_images_list_data_uris_and_media_type_are_read() -> None:
    png = encode_image("png", 8, 8, tag="x")
    import base64

    b64 = base64.b64encode(png).decode()
    body = {
        "images": [
            {"url": "https://cdn.provider.test/a.png"},
            {"url": f"data:image/png;base64,{b64}"},
            {"b64_json": f"data:image/png;base64,{b64}", "media_type": "image/png"},
        ]
    }
    parsed = parse_images_response(200, json.dumps(body).encode(), {})
    assert parsed.images[0].url == "https://cdn.provider.test/a.png"
    assert parsed.images[1].b64_json == b64
    assert parsed.images[1].url is None
    assert parsed.images[2].b64_json == b64


def test_xai_respect_moderation_drops_only_the_blocked_image() -> None:
    body = {
        "data": [
            {"url": "https://x.test/1.jpeg", "respect_moderation": False},
            {"url": "https://x.test/2.jpeg", "respect_moderation": True},
        ]
    }
    parsed = parse_images_response(200, json.dumps(body).encode(), {})
    assert [image.url for image in parsed.images] == ["https://x.test/2.jpeg"]
    assert len(parsed.dropped) == 1
    assert "moderation" in parsed.dropped[0]


@pytest.mark.parametrize(
    ("usage", "usd"),
    [
        ({"cost_in_usd_ticks": 200_000_000}, 0.02),
        ({"cost_in_usd_ticks": 10**10}, 1.0),
        ({"cost_in_usd_ticks": 0}, 0.0),
        ({"cost": 0.039}, 0.039),
        ({"cost": 1}, 1.0),
        ({"cost": 0.117, "total_tokens": 3870}, 0.117),
        ({"cost_in_usd_ticks": -5}, None),
        ({"cost_in_usd_ticks": True}, None),
        ({"cost_in_usd_ticks": "200"}, None),
        ({"cost": float("inf")}, None),
        ({"cost": -0.1}, None),
        ({"cost": None}, None),
        ({"total_tokens": 10}, None),
        ({}, None),
        (None, None),
    ],
)
def test_reported_cost(usage: dict[str, Any] | None, usd: float | None) -> None:
    found = reported_cost(usage)
    assert found == pytest.approx(usd) if usd is not None else found is None


@pytest.mark.parametrize(
    ("usage", "usd", "text"),
    [
        ({"cost_in_usd_ticks": 700_000_000}, 0.07, "Cost: $0.070 (as the provider reported it)."),
        ({"cost": 0.039}, 0.039, "Cost: $0.039 (as the provider reported it)."),
    ],
)
def test_a_reported_cost_is_the_cost(usage: dict[str, Any], usd: float, text: str) -> None:
    cost = cost_from_usage("unpriced-model", usage, images=1, quality=None, size=None)
    assert cost is not None
    assert cost.basis == "reported cost"
    assert cost.usd == pytest.approx(usd)
    assert cost.describe() == text


class ProviderModel:
    """The provider model behind an ``httpx.MockTransport``: what it received, and its
    answers (images it returns as URLs are served too)."""

    def __init__(self, provider: str, api_key: str = "k") -> None:
        self.provider = provider
        self.behaviour = BEHAVIOURS[provider]
        self.requests: list[httpx.Request] = []
        self.files: dict[str, bytes] = {}
        self.context = ProviderContext(
            api_key=api_key,
            root_url="http://provider.test",
            request_id="req_unit",
            encode=lambda fmt, width, height, tag: encode_image(fmt, width, height, tag=tag),
            store=self._store,
        )

    def _store(self, data: bytes, fmt: str) -> str:
        name = f"{len(self.files)}.{fmt}"
        self.files[f"/files/{name}"] = data
        return f"http://provider.test/files/{name}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, content=self.files[request.url.path])
        self.requests.append(request)
        reply = self.behaviour.handle(
            request.url.path, dict(request.headers), request.content, self.context
        )
        headers = [("content-type", reply.media_type), *reply.headers]
        return httpx.Response(reply.status, content=reply.body, headers=headers)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    def tool(self, tmp_path: Path, **kwargs: Any) -> ImageGenerationTool:
        base = "http://provider.test" + BASE_PATHS.get(self.provider, "/v1")
        client = httpx.Client(transport=httpx.MockTransport(self))
        kwargs.setdefault("api_key", "k")
        return ImageGenerationTool(
            provider=self.provider,
            base_url=base,
            output_dir=str(tmp_path),
            http_client=client,
            **kwargs,
        )


def call(tool: ImageGenerationTool, args: dict[str, Any]) -> ToolMessage:
    message = tool.invoke(ToolCall(name=tool.name, args=args, id="call_1", type="tool_call"))
    assert isinstance(message, ToolMessage)
    return message


@pytest.mark.parametrize(
    ("provider", "model", "n", "usd"),
    [
        ("xai", "grok-imagine-image", 2, 0.04),
        ("xai", "grok-imagine-image-pro", 1, 0.07),
        ("xai", "grok-imagine-image", 12, 0.24),  # 10 + 2: both requests' ticks
        ("openrouter", "google/gemini-2.5-flash-image", 1, 0.039),
        ("openrouter", "google/gemini-2.5-flash-image", 5, 0.195),  # 4 + 1
    ],
)
def test_the_providers_reported_cost_is_the_results_cost(
    provider: str, model: str, n: int, usd: float, tmp_path: Path
) -> None:
    server = ProviderModel(provider)
    tool = server.tool(tmp_path, model=model, max_images=12)
    message = call(tool, {"prompt": "a cat", "n": n})
    assert message.status == "success", message.content
    result = message.artifact
    assert isinstance(result, ImageGenerationResult)
    assert len(result.images) == n
    assert result.cost_usd == pytest.approx(usd)
    assert result.cost_basis == "reported cost"
    assert "(as the provider reported it)" in str(message.content)
    assert f"Cost: {format_usd(usd)} (as the provider reported it)." in str(message.content)


@pytest.mark.parametrize("provider", ["vllm-omni", "localai"])
def test_self_hosted_requests_carry_no_authorization(
    provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = ProviderModel(provider)
    base = "http://provider.test/v1"
    tool = ImageGenerationTool(
        provider=provider,
        base_url=base,
        output_dir=str(tmp_path),
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
        image_params={"response_format": "b64_json"} if provider == "localai" else {},
    )
    message = call(tool, {"prompt": "a cat", "size": "256x256"})
    assert message.status == "success", message.content
    assert all("authorization" not in request.headers for request in server.requests)


@pytest.mark.parametrize(
    ("provider", "params", "expected"),
    [
        ("together", {"seed": "42", "steps": 80}, {"seed": 42, "steps": 50}),
        ("vllm-omni", {"num_inference_steps": 12}, {"num_inference_steps": 12}),
        ("siliconflow", {"seed": 5, "negative_prompt": "x"}, {"seed": 5, "negative_prompt": "x"}),
        ("openrouter", {"image_size": "2K"}, {"image_size": "2K"}),
        ("xai", {"resolution": "1k"}, {"resolution": "1k"}),
    ],
)
def test_the_provider_accepts_the_own_params_as_written(
    provider: str,
    params: dict[str, Any],
    expected: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = ProviderModel(provider)
    tool = server.tool(tmp_path, image_params=params)
    message = call(tool, {"prompt": "a cat", "seed": 1, "size": "square"})
    assert message.status == "success", message.content
    (body,) = server.bodies()
    assert {k: body[k] for k in expected} == expected

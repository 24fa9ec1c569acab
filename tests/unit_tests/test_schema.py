"""The args schema an LLM sees, per model: exact in what it advertises, lenient in what it
accepts, and valid for OpenAI strict mode after ``convert_to_openai_tool(strict=True)``.

Checked once per distinct profile: names that only alias one (the gpt-image-1 siblings,
dated snapshots) get the same schema, ``test_every_known_model_gets_its_family_schema``.
What the schema offers is what coercion lets the LLM set: both read ``llm_fields()``."""

from __future__ import annotations

import inspect
import re
from typing import Any, get_origin

import pytest
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from langchain_imagegen.coercion import coerce_params
from langchain_imagegen.registry import DEVELOPER_FIELDS, ImageModelProfile, ModelRegistry
from langchain_imagegen.schema import LLM_FIELDS, build_args_schema
from tests.models import KNOWN_MODELS
from tests.spec_validator import SCHEMA_FIELDS

MODELS = ("dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-2", "flux-dev")
FAMILY = {
    "gpt-image-1-mini": "gpt-image-1",
    "gpt-image-1.5": "gpt-image-1",
    "chatgpt-image-latest": "gpt-image-1",
    "gpt-image-2-2026-04-21": "gpt-image-2",
    "my-flux": "dall-e-3",
}
_GPT = ("prompt", "size", "n", "quality", "background", "output_format")
PROPERTIES: dict[str, tuple[str, ...]] = {
    "dall-e-2": ("prompt", "size", "n"),
    "dall-e-3": ("prompt", "size", "n", "quality", "style"),
    "gpt-image-1": _GPT,
    "gpt-image-2": _GPT,
    "flux-dev": ("prompt", "size", "n", "quality", "style", "background", "output_format"),
}
# One valid value per Images API parameter, to propose where the schema does not offer it.
SAMPLE = {
    "size": "1024x1024",
    "n": 2,
    "quality": "auto",
    "style": "vivid",
    "background": "opaque",
    "output_format": "png",
    "moderation": "low",
    "user": "spoofed",
    "output_compression": 5,
    "response_format": "url",
    "stream": True,
    "partial_images": 2,
}
SIZE_ENUMS: dict[str, list[str] | None] = {
    "dall-e-2": ["256x256", "512x512", "1024x1024"],
    "dall-e-3": ["1024x1024", "1792x1024", "1024x1792"],
    "gpt-image-1": ["1024x1024", "1536x1024", "1024x1536", "auto"],
    "gpt-image-2": None,  # rule-based: a pattern and the rules in the description
    "flux-dev": None,  # gateway: any string, the usual sizes in the description
}


def profile_of(name: str) -> ImageModelProfile:
    models = ModelRegistry()
    if name == "my-flux":
        return models.register_model("my-flux", like="dall-e-3")
    return models.get(name)


def json_schema(name: str, **kwargs: Any) -> dict[str, Any]:
    return build_args_schema(profile_of(name), **kwargs).model_json_schema()


def tool_for(schema: type[BaseModel]) -> BaseTool:
    class _ImageTool(BaseTool):
        name: str = "generate_image"
        description: str = "Generate images from a text prompt."
        args_schema: type[BaseModel] = schema

        def _run(self, **kwargs: Any) -> str:
            return "ok"

    return _ImageTool()


def _option(prop: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of a nullable ``anyOf``."""
    (option,) = [o for o in prop["anyOf"] if o != {"type": "null"}]
    assert {"type": "null"} in prop["anyOf"]
    assert isinstance(option, dict)
    return option


# --- what is advertised ---------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_only_supported_fields_are_advertised(model: str) -> None:
    schema = json_schema(model)
    assert tuple(schema["properties"]) == PROPERTIES[model]
    assert set(schema["properties"]) <= set(LLM_FIELDS)
    assert schema["required"] == ["prompt"]
    assert schema["additionalProperties"] is False
    assert model in schema["description"]


@pytest.mark.parametrize("model", MODELS)
def test_size_is_an_enum_or_a_rule(model: str) -> None:
    profile = profile_of(model)
    option = _option(json_schema(model)["properties"]["size"])
    description = json_schema(model)["properties"]["size"]["description"]
    family = profile.family if profile.family in SIZE_ENUMS else model
    expected_enum = SIZE_ENUMS.get(family, SIZE_ENUMS["gpt-image-1"])
    if profile.permissive:
        expected_enum = None
    if expected_enum is not None:
        assert option == {"type": "string", "enum": expected_enum}
        assert all(size in description for size in expected_enum)
    elif profile.size_rule is not None:
        assert "enum" not in option
        assert option["type"] == "string"
        pattern = re.compile(option["pattern"])
        assert all(pattern.match(s) for s in ("1920x1088", "auto", "3840x2160"))
        assert not pattern.match("16:9")
        assert "multiples of 16" in description
        assert "1:3" in description
        assert "3840" in description
        assert "short edge at most 2160" in description
        assert "655,360" in description
        assert "8,294,400" in description
        assert "snapped" in description
    else:  # gateway
        assert option == {"type": "string"}
        assert "1024x1024" in description
        assert "Other WIDTHxHEIGHT may work" in description


@pytest.mark.parametrize("model", MODELS)
def test_enums_list_exactly_the_values_sent_unchanged(model: str) -> None:
    """Every advertised value is one coercion passes through without a change."""
    profile = profile_of(model)
    properties = json_schema(model)["properties"]
    for field, prop in properties.items():
        option = _option(prop) if "anyOf" in prop else prop
        for value in option.get("enum", []):
            result = coerce_params(profile, {"prompt": "x", field: value})
            assert result.adjustments == (), (field, value, result.adjustments)
    expected = {
        "quality": list(profile.qualities),
        "style": list(profile.styles),
        "background": list(profile.backgrounds),
        "output_format": list(profile.output_formats),
    }
    for field, values in expected.items():
        if values:
            assert _option(properties[field])["enum"] == values
        else:
            assert field not in properties


@pytest.mark.parametrize("model", MODELS)
def test_style_only_where_the_model_has_one(model: str) -> None:
    properties = json_schema(model)["properties"]
    has_style = model in ("dall-e-3", "flux-dev")
    assert ("style" in properties) is has_style
    if has_style:
        assert "vivid" in properties["style"]["description"]
        assert "natural" in properties["style"]["description"]


@pytest.mark.parametrize("model", MODELS)
def test_gpt_image_fields_only_for_gpt_image(model: str) -> None:
    properties = json_schema(model)["properties"]
    gpt_like = model.startswith(("gpt-image", "chatgpt-image")) or model == "flux-dev"
    assert ("background" in properties) is gpt_like
    assert ("output_format" in properties) is gpt_like
    if gpt_like:
        assert "png or webp" in properties["background"]["description"]


@pytest.mark.parametrize("model", MODELS)
def test_quality_never_offered_to_dall_e_2(model: str) -> None:
    assert ("quality" in json_schema(model)["properties"]) is (model != "dall-e-2")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("max_images", [None, 1, 4, 10])
def test_n_description_carries_the_bound(model: str, max_images: int | None) -> None:
    profile = profile_of(model)
    n = json_schema(model, max_images=max_images)["properties"]["n"]
    bound = profile.max_images if max_images is None else max_images
    assert _option(n) == {"type": "integer"}
    assert f"1 to {bound}" in n["description"]
    one_per_request = profile.max_images_per_request == 1
    assert ("more are requested in parallel" in n["description"]) is (one_per_request and bound > 1)
    if one_per_request and bound > 1:
        assert f"{model} makes 1 per request" in n["description"]


@pytest.mark.parametrize("model", MODELS)
def test_prompt_description_carries_the_limit(model: str) -> None:
    prompt = json_schema(model)["properties"]["prompt"]
    assert prompt["type"] == "string"
    assert f"At most {profile_of(model).max_prompt_chars} characters" in prompt["description"]


@pytest.mark.parametrize("model", [*KNOWN_MODELS, "my-flux"])
def test_every_known_model_gets_its_family_schema(model: str) -> None:
    family = FAMILY.get(model, model)
    mine, theirs = json_schema(model), json_schema(family)
    assert mine["properties"] == theirs["properties"] or family == "dall-e-3"  # n names it
    assert tuple(mine["properties"]) == PROPERTIES[family]
    assert model in mine["description"]


# --- what is offered is what the LLM may set ------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_schema_fields_are_the_profile_llm_fields(model: str) -> None:
    profile = profile_of(model)
    assert tuple(json_schema(model)["properties"]) == profile.llm_fields()
    assert set(LLM_FIELDS).isdisjoint(DEVELOPER_FIELDS)
    assert set(LLM_FIELDS) | set(DEVELOPER_FIELDS) <= set(SCHEMA_FIELDS)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("field", sorted(SAMPLE))
def test_what_the_schema_does_not_offer_the_llm_cannot_set(model: str, field: str) -> None:
    """A proposal reaches a body only for a field the schema offers; the developer's value
    (``fixed``, which the schema then hides) reaches it instead."""
    profile = profile_of(model)
    offered = json_schema(model)["properties"]
    result = coerce_params(profile, {"prompt": "x", field: SAMPLE[field]})
    reached = any(field in body for body in result.requests)
    assert reached is (field in offered), result
    if field in offered and field != "n":
        hidden = build_args_schema(profile, hidden={field}).model_json_schema()
        assert field not in hidden["properties"]
        fixed = coerce_params(profile, {"prompt": "x", field: SAMPLE[field]}, fixed={field: None})
        assert field not in fixed.requests[0]
        assert fixed.adjustments[0].reason == f"{field} is set by the developer"


def test_the_schema_has_no_patched_signature() -> None:
    """No runtime patching: the generated model's signature is pydantic's own, annotations
    included (a patched one had every optional field as a bare ``Any``)."""
    schema = build_args_schema(profile_of("dall-e-3"))
    annotations = [p.annotation for p in inspect.signature(schema).parameters.values()]
    assert any(get_origin(a) is not None for a in annotations)


# --- OpenAI strict mode ---------------------------------------------------------------------


def _walk(node: Any) -> Any:
    """Every dict inside a JSON schema (depth first)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("hidden", [(), ("quality", "n")], ids=["all", "hidden"])
def test_strict_openai_tool(model: str, hidden: tuple[str, ...]) -> None:
    schema = build_args_schema(profile_of(model), hidden=hidden)
    tool = convert_to_openai_tool(tool_for(schema), strict=True)
    assert tool["function"]["strict"] is True
    parameters = tool["function"]["parameters"]
    assert sorted(parameters["required"]) == sorted(parameters["properties"])
    assert parameters["additionalProperties"] is False
    assert parameters["type"] == "object"
    for name, prop in parameters["properties"].items():
        if name == "prompt":
            assert "default" not in prop
            assert prop["type"] == "string"
        else:  # optional: nullable, null default
            assert prop.get("default", None) is None
            assert {"type": "null"} in prop["anyOf"]
    for node in _walk(parameters):
        assert node.get("default", None) is None, node
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False
            assert sorted(node.get("required", [])) == sorted(node.get("properties", {}))
        assert "$ref" not in node


# --- lenient acceptance ---------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_lenient_acceptance_of_any_optional_value(model: str) -> None:
    """Synonyms and extra keys validate, so coercion can fix and report them."""
    schema = build_args_schema(profile_of(model))
    proposed = {"prompt": "x", "size": "1920x1080", "quality": "best", "seed": 1}
    args = schema(**proposed)
    assert args.model_dump(exclude_none=True) == proposed  # nothing rejected or changed
    extra = {k: v for k, v in proposed.items() if k not in PROPERTIES[model]}
    assert args.model_extra == extra  # {"seed": 1}, plus quality for dall-e-2
    weird = schema(
        prompt="x",
        size={"width": 1920, "height": 1080},
        n="three",
        quality=3,
        style="photographic",
        background="clear",
        output_format="jpg",
        guidance=[1, 2],
    )
    dumped = weird.model_dump()
    assert dumped["n"] == "three"
    assert dumped["guidance"] == [1, 2]


@pytest.mark.parametrize("model", MODELS)
def test_validated_args_coerce_to_a_request(model: str) -> None:
    profile = profile_of(model)
    schema = build_args_schema(profile)
    args = schema(prompt="a fox", size="landscape", n="2", quality="best", seed=7)
    result = coerce_params(profile, args.model_dump())
    assert all(body["prompt"] == "a fox" for body in result.requests)
    assert sum(body["n"] for body in result.requests) == 2
    assert "seed" in {a.field for a in result.adjustments}


@pytest.mark.parametrize("model", MODELS)
def test_prompt_stays_required(model: str) -> None:
    schema = build_args_schema(profile_of(model))
    with pytest.raises(ValueError, match="prompt"):
        schema(size="1024x1024")


# --- hidden fields and caching --------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_hidden_fields_are_not_advertised(model: str) -> None:
    profile = profile_of(model)
    schema = build_args_schema(profile, hidden={"quality", "size"}).model_json_schema()
    assert "quality" not in schema["properties"]
    assert "size" not in schema["properties"]
    assert tuple(schema["properties"]) == tuple(
        f for f in PROPERTIES[model] if f not in ("quality", "size")
    )


def test_prompt_cannot_be_hidden() -> None:
    schema = build_args_schema(profile_of("gpt-image-1"), hidden={"prompt", "quality"})
    assert "prompt" in schema.model_json_schema()["properties"]
    assert schema.model_json_schema()["required"] == ["prompt"]


def test_schemas_are_cached_per_profile_and_options() -> None:
    profile = profile_of("dall-e-3")
    assert build_args_schema(profile) is build_args_schema(profile)
    assert build_args_schema(profile, hidden=["style"]) is build_args_schema(
        profile, hidden=("style",)
    )
    assert build_args_schema(profile, max_images=3) is not build_args_schema(profile)
    assert build_args_schema(profile_of("my-flux")) is not build_args_schema(profile)

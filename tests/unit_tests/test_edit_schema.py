"""The args schema an LLM sees for edits, per model: the fields of ``edit_llm_fields()``,
``prompt`` and ``images`` required, lenient in what it accepts, valid for OpenAI strict mode.

Checked once per distinct edit profile (docs/models.md#edits): dall-e-2, gpt-image-1,
gpt-image-1-mini (no input_fidelity), gpt-image-2 and a gateway model; the names that only
alias one get the same schema. dall-e-3 cannot edit and gets none."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_imagegen.coercion import coerce_edit_params
from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.registry import EDIT_LLM_FIELDS, ImageModelProfile, ModelRegistry
from langchain_imagegen.schema import build_args_schema, build_edit_args_schema
from tests.models import KNOWN_MODELS
from tests.spec_validator import SCHEMA_FIELDS
from tests.unit_tests.test_schema import SAMPLE as GENERATION_SAMPLE
from tests.unit_tests.test_schema import _option, tool_for

MODELS = ("dall-e-2", "gpt-image-1", "gpt-image-1-mini", "gpt-image-2", "flux-dev")
_GPT = ("prompt", "images", "mask", "size", "n", "quality", "background", "output_format")
PROPERTIES: dict[str, tuple[str, ...]] = {
    "dall-e-2": ("prompt", "images", "mask", "size", "n"),
    "gpt-image-1": (*_GPT, "input_fidelity"),
    "gpt-image-1-mini": _GPT,
    "gpt-image-2": (*_GPT, "input_fidelity"),
    "flux-dev": (*_GPT, "input_fidelity"),
}
FAMILY = {
    "gpt-image-1.5": "gpt-image-1",
    "chatgpt-image-latest": "gpt-image-1",
    "gpt-image-2-2026-04-21": "gpt-image-2",
}
HANDLE = "img_0123456789abcdef"
# One valid value per parameter, to propose where the schema does not offer it.
SAMPLE: dict[str, Any] = {
    **GENERATION_SAMPLE,
    "mask": "img_fedcba9876543210",
    "input_fidelity": "high",
}


def profile_of(name: str) -> ImageModelProfile:
    return ModelRegistry().get(name)


def json_schema(name: str, **kwargs: Any) -> dict[str, Any]:
    return build_edit_args_schema(profile_of(name), **kwargs).model_json_schema()


def _reached(plan: Any, field: str) -> bool:
    if field == "mask":
        return plan.mask is not None
    return any(field in body for body in plan.requests)


# --- what is advertised ---------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_the_fields_are_the_profile_edit_fields(model: str) -> None:
    schema = json_schema(model)
    assert tuple(schema["properties"]) == PROPERTIES[model] == profile_of(model).edit_llm_fields()
    assert set(schema["properties"]) <= set(EDIT_LLM_FIELDS)
    assert schema["required"] == ["prompt", "images"]
    assert schema["additionalProperties"] is False
    assert schema["title"] == "ImageEditInput"
    assert f"editing images with {model}" in schema["description"]


def test_edit_fields_are_api_parameters() -> None:
    """Every edit field but the files is a parameter the validator knows (the multipart
    ``image`` is sent as ``images`` references here)."""
    assert set(EDIT_LLM_FIELDS) - {"images", "mask", "input_fidelity"} <= set(SCHEMA_FIELDS)


@pytest.mark.parametrize(("model", "expected"), [*FAMILY.items(), *((m, m) for m in MODELS)])
def test_every_known_model_gets_its_family_schema(model: str, expected: str) -> None:
    mine, theirs = json_schema(model), json_schema(expected)
    assert mine["properties"] == theirs["properties"]
    assert model in mine["description"]


def test_every_known_model_but_dall_e_3_edits() -> None:
    editing = {model for model in KNOWN_MODELS if profile_of(model).edits is not None}
    assert set(KNOWN_MODELS) - editing == {"dall-e-3"}


@pytest.mark.parametrize("model", ["dall-e-3", "DALL-E-3"])
def test_a_model_that_cannot_edit_gets_no_schema(model: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^{model} cannot edit images; the models"):
        build_edit_args_schema(profile_of(model))


@pytest.mark.parametrize(
    ("model", "phrase"),
    [
        ("dall-e-2", "as a one-item list: the handle of an earlier image (img_...) or its link. "
         "dall-e-2 edits one square png image."),
        ("gpt-image-1", "handles of earlier images (img_...) or their links; up to 16 (png, "
         "webp or jpeg). A mask applies to the first."),
        ("flux-dev", "up to 16"),
    ],
)  # fmt: skip
def test_images_say_what_to_pass_and_how_many(model: str, phrase: str) -> None:
    images = json_schema(model)["properties"]["images"]
    assert images["type"] == "array"
    assert images["items"] == {"type": "string"}
    assert "default" not in images
    assert phrase in images["description"]


@pytest.mark.parametrize("model", MODELS)
def test_mask_prompt_and_fidelity_descriptions(model: str) -> None:
    properties = json_schema(model)["properties"]
    mask = properties["mask"]
    assert _option(mask) == {"type": "string"}
    assert "PNG whose transparent areas mark where to edit" in mask["description"]
    assert "same size as the first image" in mask["description"]
    limit = profile_of(model).max_prompt_chars
    assert f"At most {limit} characters" in properties["prompt"]["description"]
    assert "what to change" in properties["prompt"]["description"]
    if "input_fidelity" in properties:
        assert _option(properties["input_fidelity"]) == {"type": "string", "enum": ["high", "low"]}
        assert "Default low" in properties["input_fidelity"]["description"]


@pytest.mark.parametrize("model", MODELS)
def test_enums_list_exactly_the_values_sent_unchanged(model: str) -> None:
    profile = profile_of(model)
    for field, prop in json_schema(model)["properties"].items():
        option = _option(prop) if "anyOf" in prop else prop
        for value in option.get("enum", []):
            plan = coerce_edit_params(profile, {"prompt": "x", "images": [HANDLE], field: value})
            assert plan.adjustments == (), (field, value, plan.adjustments)


@pytest.mark.parametrize("model", MODELS)
def test_the_generation_schema_is_another(model: str) -> None:
    profile = profile_of(model)
    generation = build_args_schema(profile).model_json_schema()
    assert "images" not in generation["properties"]


# --- what is offered is what the LLM may set ------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("field", sorted(SAMPLE))
def test_what_the_schema_does_not_offer_the_llm_cannot_set(model: str, field: str) -> None:
    profile = profile_of(model)
    offered = json_schema(model)["properties"]
    plan = coerce_edit_params(profile, {"prompt": "x", "images": [HANDLE], field: SAMPLE[field]})
    assert _reached(plan, field) is (field in offered), plan
    if field in offered and field != "n":
        hidden = build_edit_args_schema(profile, hidden={field}).model_json_schema()
        assert field not in hidden["properties"]
        fixed = coerce_edit_params(
            profile, {"prompt": "x", "images": [HANDLE], field: SAMPLE[field]}, fixed={field: None}
        )
        assert not _reached(fixed, field)
        assert fixed.adjustments[0].reason == f"{field} is set by the developer"


# --- OpenAI strict mode and lenient acceptance -----------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("hidden", [(), ("mask", "n")], ids=["all", "hidden"])
def test_strict_openai_tool(model: str, hidden: tuple[str, ...]) -> None:
    schema = build_edit_args_schema(profile_of(model), hidden=hidden)
    tool = convert_to_openai_tool(tool_for(schema), strict=True)
    parameters = tool["function"]["parameters"]
    assert tool["function"]["strict"] is True
    assert sorted(parameters["required"]) == sorted(parameters["properties"])
    assert parameters["additionalProperties"] is False
    for name, prop in parameters["properties"].items():
        if name in ("prompt", "images"):
            assert "default" not in prop
            assert prop["type"] == ("string" if name == "prompt" else "array")
        else:
            assert prop.get("default", None) is None
            assert {"type": "null"} in prop["anyOf"]
    assert "$ref" not in str(parameters)


@pytest.mark.parametrize("model", MODELS)
def test_lenient_acceptance_reaches_coercion(model: str) -> None:
    """A run-together string of handles, synonyms and extra keys validate; coercion fixes them
    and reports each change."""
    profile = profile_of(model)
    args = build_edit_args_schema(profile)(
        prompt="add a hat", images=f"{HANDLE}, img_0000000000000001", size="wide", seed=3
    )
    plan = coerce_edit_params(profile, args.model_dump())
    assert plan.images[0] == HANDLE
    assert {"images", "size", "seed"} <= {a.field for a in plan.adjustments}


@pytest.mark.parametrize("missing", ["prompt", "images"])
def test_prompt_and_images_stay_required(missing: str) -> None:
    schema = build_edit_args_schema(profile_of("gpt-image-1"))
    given = {"prompt": "add a hat", "images": [HANDLE]}
    del given[missing]
    with pytest.raises(ValueError, match=missing):
        schema(**given)


# --- hidden fields and caching --------------------------------------------------------------


def test_prompt_and_images_cannot_be_hidden() -> None:
    schema = build_edit_args_schema(
        profile_of("gpt-image-1"), hidden={"prompt", "images", "quality"}
    ).model_json_schema()
    assert schema["required"] == ["prompt", "images"]
    assert "quality" not in schema["properties"]


def test_schemas_are_cached_per_profile_and_options() -> None:
    """One class per distinct (profile, limit, hidden fields); prompt and images never count as
    hidden, and the generation schema is another class."""
    profile = profile_of("gpt-image-2")
    build = partial(build_edit_args_schema, profile)
    assert build() is build() is build(hidden=["images", "prompt"])
    assert build(hidden=["mask"]) is build(hidden=("mask", "prompt"))
    distinct = {
        build(),
        build(max_images=3),
        build(hidden=["mask"]),
        build_edit_args_schema(profile_of("gpt-image-1")),
        build_args_schema(profile),
    }
    assert len(distinct) == 5


@pytest.mark.parametrize("max_images", [None, 1, 4])
def test_n_description_carries_the_bound(max_images: int | None) -> None:
    n = json_schema("gpt-image-1", max_images=max_images)["properties"]["n"]
    assert f"1 to {10 if max_images is None else max_images}" in n["description"]

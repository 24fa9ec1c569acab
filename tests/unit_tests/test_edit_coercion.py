"""Table tests of the edit rules (``coerce_edit_params``), once per DISTINCT edit profile.

What a model takes on ``POST /v1/images/edits`` is listed in docs/models.md#edits. The
representatives differ in what they take for edits; ``test_every_profile_is_covered`` proves
they cover every built-in profile but dall-e-3, which cannot edit:

* ``D2`` dall-e-2: one square png, no quality, output options or input_fidelity
* ``G1`` gpt-image-1: up to 16 images, input_fidelity high/low
* ``MINI`` gpt-image-1-mini: as gpt-image-1, but no input_fidelity
* ``G2`` gpt-image-2: as gpt-image-1, sizes by rule
* ``GW`` an unknown gateway model (``flux-dev``): permissive, edits like the GPT models

Every case checks that the plan is a fixed point (coercing its own requests, images and mask
changes nothing) and that every adjustment carries a reason. The field rules shared with
generation (sizes, quality synonyms, sanitising, ...) are tested at length in
test_coercion_rules.py; here each is checked once to prove edits go through them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import pytest

from langchain_imagegen import registry
from langchain_imagegen.coercion import EditPlan, coerce_edit_params, coerce_params
from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.registry import (
    EDIT_LLM_FIELDS,
    GATEWAY_PROFILE,
    EditRule,
    ImageModelProfile,
    ModelRegistry,
)

MODELS = ("dall-e-2", "gpt-image-1", "gpt-image-1-mini", "gpt-image-2", "flux-dev")
GROUP = dict(zip(MODELS, ("D2", "G1", "MINI", "G2", "GW"), strict=True))  # the tables' keys
MOST_IMAGES = {"D2": 1, "G1": 16, "MINI": 16, "G2": 16, "GW": 16}
FIDELITY = {"G1", "G2", "GW"}  # the groups that take input_fidelity
ALIASES: dict[str, str] = {
    "gpt-image-1.5": "gpt-image-1",
    "chatgpt-image-latest": "gpt-image-1",
    "gpt-image-1.5-2025-12-16": "gpt-image-1",
    "gpt-image-2-2026-04-21": "gpt-image-2",
    "GPT-Image-1-Mini": "gpt-image-1-mini",
    "stable-diffusion-xl": "flux-dev",
}
HANDLE = "img_0123456789abcdef"


def profile_of(name: str) -> ImageModelProfile:
    return ModelRegistry().get(name)


def capabilities(profile: ImageModelProfile) -> ImageModelProfile:
    """Everything a profile accepts, edits included: the profile without what only names it."""
    return dataclasses.replace(profile, name="", family="", shutdown=None, replacement=None)


def cases(table: Mapping[Any, Mapping[str, Any]]) -> list[Any]:
    """``(model, proposed value, what the model's group expects)`` for every model and row."""
    params = []
    for value, by_group in table.items():
        params += [
            pytest.param(model, value, by_group[GROUP[model]], id=f"{model}-{value!r}")
            for model in MODELS
        ]
    return params


def edit(name: str | ImageModelProfile, proposed: Mapping[str, Any], **kwargs: Any) -> EditPlan:
    """Coerce with ``prompt`` and one image filled in, then check what every plan shares."""
    profile = name if isinstance(name, ImageModelProfile) else profile_of(name)
    plan = coerce_edit_params(
        profile, {"prompt": "add a red hat", "images": [HANDLE], **proposed}, **kwargs
    )
    assert plan.profile is profile
    assert plan.images, "a plan always has an image"
    assert len(plan.images) <= (profile.edits.max_images if profile.edits else 0)
    assert len(set(plan.images)) == len(plan.images)
    for body in plan.requests:
        assert body["model"] == profile.name
        assert "images" not in body
        assert "mask" not in body  # files travel apart from the form fields
        # streaming is the tool's setting, not a field the developer may fix
        fields = {k: v for k, v in body.items() if k not in ("stream", "partial_images")}
        fixed = {**fields, "images": plan.images, "mask": plan.mask}
        again = coerce_edit_params(
            profile, {}, fixed=fixed, partial_images=body.get("partial_images", 0)
        )
        assert again.requests == (body,), "coercing a coerced request changed it"
        assert (again.images, again.mask) == (plan.images, plan.mask)
        assert all(a.is_note for a in again.adjustments), again.adjustments
    for adjustment in plan.adjustments:
        assert adjustment.reason.strip(), adjustment
        assert adjustment.describe().startswith(f"{adjustment.field}: ")
    return plan


def sent(plan: EditPlan, field: str) -> Any:
    """The value every request sends for ``field`` (``None``: not sent); they all agree."""
    first, *others = (body.get(field) for body in plan.requests)
    assert all(other == first for other in others), field
    return first


def adjustments(plan: EditPlan, field: str) -> list[tuple[Any, Any]]:
    return [(a.proposed, a.applied) for a in plan.adjustments if a.field == field]


def handles(count: int) -> list[str]:
    return [f"img_{index:016x}" for index in range(count)]


# --- which models edit --------------------------------------------------------------------


def test_every_profile_is_covered() -> None:
    """The representatives are pairwise distinct, and every built-in profile that edits (and
    the gateway profile) has the capabilities of one of them."""
    covered = {capabilities(profile_of(model)): model for model in MODELS}
    assert len(covered) == len(MODELS)
    for profile in (*registry.PROFILES, GATEWAY_PROFILE):
        if profile.edits is None:
            assert profile.name == "dall-e-3"
            continue
        assert capabilities(profile) in covered, f"{profile.name} needs an edit rule table"


@pytest.mark.parametrize(("alias", "model"), ALIASES.items())
def test_alias_edits_like_its_model(alias: str, model: str) -> None:
    profile = profile_of(alias)
    assert capabilities(profile) == capabilities(profile_of(model))
    plan = coerce_edit_params(profile, {"prompt": "x", "images": [HANDLE]})
    assert plan.requests == ({"model": alias, "prompt": "x"},)
    assert plan.images == (HANDLE,)


EDIT_RULES: dict[str, EditRule] = {
    "D2": EditRule(
        max_images=1,
        image_formats=("png",),
        max_image_bytes=4 * 1024 * 1024,
        square=True,
        max_mask_bytes=4 * 1024 * 1024,
        # Unmasked, its transparent areas are edited: the API refuses an RGB image.
        transparent_without_mask=True,
    ),
    "G1": EditRule(
        max_images=16,
        image_formats=("png", "webp", "jpeg"),
        max_image_bytes=50 * 1024 * 1024,
        max_mask_bytes=4 * 1024 * 1024,
        input_fidelities=("high", "low"),
    ),
}
EDIT_RULES["G2"] = EDIT_RULES["GW"] = EDIT_RULES["G1"]
EDIT_RULES["MINI"] = dataclasses.replace(EDIT_RULES["G1"], input_fidelities=())


@pytest.mark.parametrize("model", MODELS)
def test_edit_rules_are_the_api_reference(model: str) -> None:
    """docs/models.md#edits: 16 png/webp/jpg images under 50MB for the GPT image models, one
    square png under 4MB for dall-e-2, masks under 4MB; input_fidelity not on the mini."""
    assert profile_of(model).edits == EDIT_RULES[GROUP[model]]


def test_dall_e_3_cannot_edit_and_says_which_models_can() -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        coerce_edit_params("dall-e-3", {"prompt": "add a hat", "images": [HANDLE]})
    message = str(raised.value)
    assert message.startswith("dall-e-3 cannot edit images")
    for name in ("dall-e-2", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2"):
        assert name in message
    assert "generate" in message  # what to do instead
    assert profile_of("dall-e-3").edit_llm_fields() == ()


@pytest.mark.parametrize(
    "profile",
    [
        ModelRegistry().register_model("my-flux", like="dall-e-3"),
        ImageModelProfile(name="my-own", family="x", sizes=("1024x1024",), default_size=None),
        dataclasses.replace(GATEWAY_PROFILE, name="no-edits", edits=None),
    ],
    ids=["like-dall-e-3", "own-profile", "gateway-without-edits"],
)
def test_profiles_without_edits_are_refused(profile: ImageModelProfile) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^{profile.name} cannot edit images"):
        coerce_edit_params(profile, {"prompt": "add a hat", "images": [HANDLE]})
    assert not any(profile.takes_for_edits(field) for field in EDIT_LLM_FIELDS)


def test_register_model_like_an_editing_model_edits_like_it() -> None:
    profile = ModelRegistry().register_model("my-mini", like="gpt-image-1-mini")
    plan = edit(profile, {"input_fidelity": "high"})
    assert sent(plan, "input_fidelity") is None
    assert plan.requests == ({"model": "my-mini", "prompt": "add a red hat"},)


# --- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("count", [1, 2, 16, 17, 40])
def test_images_are_clamped_to_the_model_limit(model: str, count: int) -> None:
    proposed = handles(count)
    plan = edit(model, {"images": proposed})
    most = MOST_IMAGES[GROUP[model]]
    assert plan.images == tuple(proposed[:most])  # the first ones, in order
    if count <= most:
        assert plan.adjustments == ()
        return
    ((before, after),) = adjustments(plan, "images")
    assert (before, after) == (proposed, proposed[:most])
    (reason,) = [a.reason for a in plan.adjustments]
    assert reason == f"{model} {CLAMPED[most]}"


CLAMPED = {
    1: "edits at most 1 image per request; the first is kept",
    16: "edits at most 16 images per request; the first 16 are kept",
}


@pytest.mark.parametrize("model", MODELS)
def test_images_given_twice_are_sent_once(model: str) -> None:
    first, second = handles(2)
    plan = edit(model, {"images": [first, second, f" {first} ", second]})
    most = MOST_IMAGES[GROUP[model]]
    assert plan.images == (first, second)[:most]
    dedupe, *clamp = plan.adjustments
    assert (dedupe.proposed, dedupe.applied) == ([first, second, first, second], [first, second])
    assert dedupe.reason == f"{first}, {second} given more than once; each image is sent once"
    assert len(clamp) == (1 if most == 1 else 0)


A, B, C = handles(3)
SPLIT_TABLE: dict[Any, list[str]] = {
    # one reference: taken as it is (stripped), nothing to report
    A: [A],
    f"  {A}\n": [A],
    "https://cdn.example.com/w_512,h_512/fox.png": ["https://cdn.example.com/w_512,h_512/fox.png"],
    "data:image/png;base64,iVBORw0KGgo=": ["data:image/png;base64,iVBORw0KGgo="],
    # several run together: split and reported
    f"{A}, {B}": [A, B],
    f"{A},{B},{C}": [A, B, C],
    f"{A} {B}\n{C}": [A, B, C],
    f"{A}; {B}": [A, B],
    f"'{A}', '{B}'": [A, B],
    f"`{A}`": [A],
    "https://a.example/x.png,https://b.example/y.png": [
        "https://a.example/x.png",
        "https://b.example/y.png",
    ],
    "s3://bucket/a.png, gs://bucket/b.png": ["s3://bucket/a.png", "gs://bucket/b.png"],
    f'["{A}", "{B}"]': [A, B],
    # in a list
    (A, B): [A, B],
    (f"{A}, {B}", C): [A, B, C],
}


@pytest.mark.parametrize(("value", "expected"), SPLIT_TABLE.items(), ids=repr)
def test_run_together_references_are_split_and_reported(value: Any, expected: list[str]) -> None:
    proposed = list(value) if isinstance(value, tuple) else value
    plan = edit("gpt-image-2", {"images": proposed})
    assert plan.images == tuple(expected)
    plain = [proposed.strip()] if isinstance(proposed, str) else proposed
    if plain == expected:
        assert plan.adjustments == ()
    else:
        ((before, after),) = adjustments(plan, "images")
        assert (before, after) == (proposed, expected)
        reference = "reference" if len(expected) == 1 else "references"
        assert plan.adjustments[0].reason == f"read as {len(expected)} image {reference}"


def test_the_json_edits_shape_is_read_as_its_link() -> None:
    link = "https://example.com/source-image.png"
    plan = edit("gpt-image-1", {"images": [{"image_url": link}, {"url": link + "?v=2"}]})
    assert plan.images == (link, link + "?v=2")
    assert adjustments(plan, "images") == [
        ([{"image_url": link}, {"url": link + "?v=2"}], [link, link + "?v=2"])
    ]


def test_a_long_reference_is_shown_by_its_length() -> None:
    data_url = "data:image/png;base64," + "A" * 200
    plan = edit("gpt-image-1", {"images": f"{data_url} {A}"})
    assert plan.images == (data_url, A)
    (adjustment,) = plan.adjustments
    assert adjustment.applied == [f"{len(data_url)} characters", A]
    assert "AAAA" not in adjustment.describe()


def test_a_long_list_is_shown_by_its_length() -> None:
    many = handles(60)
    plan = edit("gpt-image-1", {"images": many + many})
    dedupe, clamp = plan.adjustments
    assert (dedupe.proposed, dedupe.applied) == ("120 references", "60 references")
    assert dedupe.reason == "60 references given more than once; each image is sent once"
    assert (clamp.proposed, clamp.applied) == ("60 references", many[:16])


@pytest.mark.parametrize(
    "images",
    [A + "," * 200_000 + "x", A + " ," * 100_000, "https://" + "a" * 200_000],
    ids=["commas", "spaced-commas", "long-link"],
)
def test_splitting_is_linear(images: str) -> None:
    """A pathological string is read in one pass (a backtracking pattern took seconds).
    Measured in this thread's CPU time, which other processes on a loaded machine do not
    stretch; one pass takes milliseconds, so the bound leaves a wide margin."""
    started = time.thread_time()
    plan = coerce_edit_params("gpt-image-1", {"prompt": "x", "images": images})
    assert len(plan.images) == 1
    assert time.thread_time() - started < 1.0


@pytest.mark.parametrize("images", [None, [], "", "  ", " , ; ", [""], [None]], ids=repr)
def test_no_image_is_a_clear_error(images: Any) -> None:
    proposed = (
        {"prompt": "add a hat"} if images is None else {"prompt": "add a hat", "images": images}
    )
    with pytest.raises(InvalidArgumentError, match=r"^images is required: pass the handles") as e:
        coerce_edit_params("gpt-image-1", proposed)
    assert "img_" in str(e.value)


@pytest.mark.parametrize(
    ("images", "found"),
    [
        (3, "int"),
        ([A, 3.5], "float"),
        (True, "bool"),
        ([{"file_id": "file-abc123"}], "an object with keys file_id"),
        ({"image_url": A, "url": B}, "an object with keys image_url, url"),
        ([b"\x89PNG"], "bytes"),
    ],
    ids=repr,
)
def test_what_is_no_reference_is_a_clear_error(images: Any, found: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        coerce_edit_params("gpt-image-2", {"prompt": "add a hat", "images": images})
    assert str(raised.value) == (
        "images must be the handles of earlier images (img_ followed by 16 hex digits) or "
        f"their links; got {found}"
    )


def test_unsendable_characters_in_references_are_removed_and_reported() -> None:
    plan = edit("gpt-image-1", {"images": [A + "\ud83e"]})
    assert plan.images == (A,)
    (adjustment,) = plan.adjustments
    assert adjustment.field == "images"
    assert "UTF-8 cannot encode" in adjustment.reason


def test_the_developer_may_fix_the_images() -> None:
    plan = edit("gpt-image-1", {"images": [B]}, fixed={"images": [A]})
    assert plan.images == (A,)
    assert [(a.field, a.applied, a.reason) for a in plan.adjustments] == [
        ("images", None, "images is set by the developer")
    ]


# --- mask ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("mask", "expected", "reported"),
    [
        (B, B, False),
        (f" {B} ", B, False),
        ([B], B, False),
        ("https://example.com/mask.png", "https://example.com/mask.png", False),
        ([B, C], B, True),
        (f"{B}, {C}", B, True),
        ("", None, True),
        ("  ", None, True),
        (None, None, False),
    ],
    ids=repr,
)
def test_mask_is_one_reference(model: str, mask: Any, expected: str | None, reported: bool) -> None:
    plan = edit(model, {"mask": mask})
    assert plan.mask == expected
    assert bool(plan.adjustments) is reported
    assert all(a.field == "mask" for a in plan.adjustments)


@pytest.mark.parametrize("mask", [7, {"file_id": "file-mask123"}, [[None, 1]]], ids=repr)
def test_a_mask_that_is_no_reference_is_a_clear_error(mask: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^mask must be the handle .* of a PNG"):
        coerce_edit_params("gpt-image-1", {"prompt": "x", "images": [A], "mask": mask})


def test_the_mask_may_be_one_of_the_images() -> None:
    """An image with transparent areas can be its own mask; that is the caller's to check."""
    plan = edit("gpt-image-1", {"images": [A], "mask": A})
    assert (plan.images, plan.mask, plan.adjustments) == ((A,), A, ())


# --- input_fidelity -----------------------------------------------------------------------

_SENT = {group: group in FIDELITY for group in GROUP.values()}
FIDELITY_TABLE: dict[Any, dict[str, str | None]] = {
    value: {group: (applied if taken else None) for group, taken in _SENT.items()}
    for value, applied in {
        "high": "high",
        "low": "low",
        "HIGH": "high",
        "exact": "high",
        "faithful": "high",
        "loose": "low",
        "default": "low",
    }.items()
}


@pytest.mark.parametrize(("model", "value", "expected"), cases(FIDELITY_TABLE))
def test_input_fidelity_where_the_model_takes_it(
    model: str, value: str, expected: str | None
) -> None:
    plan = edit(model, {"input_fidelity": value})
    assert sent(plan, "input_fidelity") == expected
    if expected is None:
        assert adjustments(plan, "input_fidelity") == [(value, None)]
        assert plan.adjustments[0].reason == f"{model} takes no input_fidelity"
    elif value == expected:
        assert plan.adjustments == ()
    else:
        assert adjustments(plan, "input_fidelity") == [(value, expected)]


@pytest.mark.parametrize("value", ["medium", 3, "ultra"])
def test_an_input_fidelity_no_model_has_is_dropped(value: Any) -> None:
    plan = edit("gpt-image-1", {"input_fidelity": value})
    assert sent(plan, "input_fidelity") is None
    assert "it takes high, low" in plan.adjustments[0].reason


def test_generation_still_takes_no_edit_fields() -> None:
    """images, mask and input_fidelity are edit parameters: generation drops them as before."""
    result = coerce_params(
        "gpt-image-1", {"prompt": "x", "images": [A], "mask": B, "input_fidelity": "high"}
    )
    assert result.requests == ({"model": "gpt-image-1", "prompt": "x"},)
    assert [(a.field, a.reason) for a in result.adjustments] == [
        (field, "not a parameter of the Images API")
        for field in ("images", "mask", "input_fidelity")
    ]


# --- fields the edits endpoint refuses, and the developer's -------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_style_and_moderation_are_no_edit_parameters(model: str) -> None:
    """The multipart CreateImageEditRequest has neither, even for models that generate with
    them; the developer's moderation is dropped too, and says why."""
    style = "image edits take no style; describe the style in the prompt instead"
    for proposed, fixed in (({"style": "vivid", "moderation": "low"}, {}), ({}, _MODERATION)):
        plan = edit(model, proposed, fixed=fixed)
        assert all(key not in body for body in plan.requests for key in ("style", "moderation"))
        reasons = [(a.field, a.reason) for a in plan.adjustments]
        assert reasons == [("style", style)] * ("style" in proposed) + [
            ("moderation", "image edits take no moderation")
        ]


_MODERATION = {"moderation": "low"}


@pytest.mark.parametrize("model", MODELS)
def test_a_hostile_proposal_never_reaches_a_request(model: str) -> None:
    hostile = {"user": "admin", "output_compression": 5, "response_format": "url", "seed": 1}
    plan = edit(model, hostile)
    assert all(set(body) <= {"model", "prompt"} for body in plan.requests)
    assert {a.field for a in plan.adjustments} == set(hostile)
    assert all(a.applied is None for a in plan.adjustments)


DEVELOPER_TABLE: dict[str, dict[str, Any]] = {
    # what the developer's image_params become, per group
    "user": dict.fromkeys(GROUP.values(), "customer-42"),
    "response_format": {"D2": "url", "G1": None, "MINI": None, "G2": None, "GW": "url"},
    "output_compression": {"D2": None, "G1": 80, "MINI": 80, "G2": 80, "GW": 80},
}
_FIXED = {"user": "customer-42", "response_format": "url", "output_compression": 80}


@pytest.mark.parametrize(("model", "field", "expected"), cases(DEVELOPER_TABLE))
def test_the_developer_sets_what_the_llm_cannot(model: str, field: str, expected: Any) -> None:
    fixed = {field: _FIXED[field], "output_format": "webp"}
    plan = edit(model, {}, fixed=fixed)
    assert sent(plan, field) == expected
    if expected is None:
        assert (_FIXED[field], None) in adjustments(plan, field)


# --- the field rules shared with generation -----------------------------------------------

SIZE_TABLE: dict[Any, dict[str, str | None]] = {
    "1920x1080": {
        "D2": "1024x1024",
        "G1": "1536x1024",
        "MINI": "1536x1024",
        "G2": "1920x1088",
        "GW": "1920x1080",
    },
    "portrait": {
        "D2": "1024x1024",
        "G1": "1024x1536",
        "MINI": "1024x1536",
        "G2": "1024x1536",
        "GW": "1024x1536",
    },
    "512x512": {
        "D2": "512x512",
        "G1": "1024x1024",
        "MINI": "1024x1024",
        "G2": "816x816",
        "GW": "512x512",
    },
    "banana": {"D2": "1024x1024", "G1": "auto", "MINI": "auto", "G2": "auto", "GW": None},
}


@pytest.mark.parametrize(("model", "size", "expected"), cases(SIZE_TABLE))
def test_edit_sizes_are_the_generation_sizes(model: str, size: str, expected: str | None) -> None:
    """docs/models.md#edits: dall-e-2 256/512/1024, the GPT models their generation sizes,
    gpt-image-2 any WxH by rule."""
    plan = edit(model, {"size": size})
    assert sent(plan, "size") == expected
    assert (plan.adjustments == ()) is (size == expected)


@pytest.mark.parametrize("model", MODELS)
def test_size_hints_choose_the_edit_size(model: str) -> None:
    plan = edit(model, {"aspect_ratio": "1:1"})
    assert sent(plan, "size") == "1024x1024"
    assert adjustments(plan, "aspect_ratio") == [("1:1", None)]


QUALITY_TABLE: dict[str, dict[str, str | None]] = {
    "hd": {"D2": None, "G1": "high", "MINI": "high", "G2": "high", "GW": "hd"},
    "standard": {"D2": None, "G1": "medium", "MINI": "medium", "G2": "medium", "GW": "standard"},
    "auto": {"D2": None, "G1": "auto", "MINI": "auto", "G2": "auto", "GW": "auto"},
}


@pytest.mark.parametrize(("model", "quality", "expected"), cases(QUALITY_TABLE))
def test_edit_quality_as_generation(model: str, quality: str, expected: str | None) -> None:
    plan = edit(model, {"quality": quality})
    assert sent(plan, "quality") == expected


@pytest.mark.parametrize("model", MODELS)
def test_output_options_only_where_the_model_has_them(model: str) -> None:
    plan = edit(model, {"background": "transparent", "output_format": "jpg"})
    if GROUP[model] == "D2":
        assert plan.requests == ({"model": model, "prompt": "add a red hat"},)
        assert {a.reason for a in plan.adjustments} == {
            "dall-e-2 takes no background",
            "dall-e-2 takes no output_format",
        }
    else:  # jpg is read as jpeg, which a transparent background cannot have
        assert (sent(plan, "background"), sent(plan, "output_format")) == ("transparent", "png")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("n", "max_images", "counts"),
    [(None, None, [None]), (3, None, [3]), ("14", None, [10]), ("four", 3, [3]), (0, None, [1])],
    ids=repr,
)
def test_n_is_clamped_as_in_generation(
    model: str, n: Any, max_images: int | None, counts: list[int | None]
) -> None:
    plan = edit(model, {"n": n}, max_images=max_images)
    assert [body.get("n") for body in plan.requests] == counts
    assert plan.images_requested == (counts[0] or 1)


def test_n_is_split_by_the_images_a_model_makes_per_request() -> None:
    profile = dataclasses.replace(profile_of("gpt-image-1"), max_images_per_request=4)
    plan = edit(profile, {"n": 10})
    assert [body["n"] for body in plan.requests] == [4, 4, 2]
    assert plan.images_requested == 10
    assert adjustments(plan, "n") == [(10, [4, 4, 2])]


@pytest.mark.parametrize("model", MODELS)
def test_streamed_edits_make_one_image_per_request(model: str) -> None:
    plan = edit(model, {"n": 3}, partial_images=2)
    if GROUP[model] in ("D2", "GW"):  # no streaming: the setting is reported as not applied
        assert plan.requests == ({"model": model, "prompt": "add a red hat", "n": 3},)
        assert adjustments(plan, "partial_images") == [(2, 0)]
        return
    assert (
        plan.requests
        == (
            {
                "model": model,
                "prompt": "add a red hat",
                "stream": True,
                "partial_images": 2,
                "n": 1,
            },
        )
        * 3
    )
    assert plan.images_requested == 3


@pytest.mark.parametrize("model", MODELS)
def test_prompt_limit_per_model(model: str) -> None:
    limit = profile_of(model).max_prompt_chars
    plan = edit(model, {"prompt": "word " * (limit // 5 + 10)})
    assert len(sent(plan, "prompt")) <= limit
    assert adjustments(plan, "prompt")


@pytest.mark.parametrize("prompt", [None, "", " \u200b "], ids=repr)
def test_an_edit_needs_a_prompt(prompt: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^prompt is required: describe the edit"):
        coerce_edit_params("gpt-image-1", {"prompt": prompt, "images": [A]})


@pytest.mark.parametrize("model", MODELS)
def test_a_valid_edit_passes_through_unchanged(model: str) -> None:
    profile = profile_of(model)
    valid: dict[str, Any] = {"images": handles(min(3, MOST_IMAGES[GROUP[model]])), "mask": C}
    valid["size"] = profile.sizes[0]
    valid["n"] = 2
    for field, options in (
        ("quality", profile.qualities),
        ("background", profile.backgrounds),
        ("output_format", profile.output_formats),
        ("input_fidelity", profile.edits.input_fidelities if profile.edits else ()),
    ):
        if options:
            valid[field] = options[0]
    plan = edit(model, valid)
    assert plan.adjustments == ()
    assert plan.images == tuple(valid["images"])
    assert plan.requests == (
        {
            "model": model,
            "prompt": "add a red hat",
            **{k: v for k, v in valid.items() if k not in ("images", "mask")},
        },
    )


def test_the_model_is_the_tools() -> None:
    plan = edit("gpt-image-2", {"model": "dall-e-3"})
    assert sent(plan, "model") == "gpt-image-2"
    assert adjustments(plan, "model") == [("dall-e-3", "gpt-image-2")]

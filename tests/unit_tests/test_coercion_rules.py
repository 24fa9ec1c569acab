"""Table tests of every coercion rule, once per DISTINCT profile.

Each table maps a proposal to what each distinct profile must send (docs/models.md lists
their rules). Profiles that differ only by name and lifecycle (the gpt-image-1 siblings,
dated snapshots, a registered alias) run no table of their own: they would exercise nothing
new. ``test_every_profile_is_covered_by_a_table`` proves the five below cover every
profile, and ``test_alias_resolves_to_its_profile`` checks each alias once:

* ``D2`` dall-e-2 · ``D3`` dall-e-3 · ``G1`` gpt-image-1 · ``G2`` gpt-image-2
* ``GW`` an unknown gateway model (``flux-dev``): the permissive profile

Every case also checks that the result is a fixed point (coercing a coerced request changes
nothing), that every adjustment carries a reason, and that its one-line description reads
cleanly. Profiles come from a fresh :class:`ModelRegistry`, so registrations never leak.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

import pytest

from langchain_imagegen import registry
from langchain_imagegen.coercion import Adjustment, CoercionResult, coerce_params
from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.registry import (
    GATEWAY_PROFILE,
    ImageModelProfile,
    ModelRegistry,
    SizeRule,
    register_model,
    register_profile,
)

REPRESENTATIVE: dict[str, str] = {
    "D2": "dall-e-2",
    "D3": "dall-e-3",
    "G1": "gpt-image-1",
    "G2": "gpt-image-2",
    "GW": "flux-dev",
}
GROUP = {model: group for group, model in REPRESENTATIVE.items()}
MODELS = tuple(GROUP)
PROMPT_LIMIT = {"D2": 1000, "D3": 4000, "G1": 32_000, "G2": 32_000, "GW": 32_000}
# Names whose profile is a copy of a representative's (same capabilities, other name).
ALIASES: dict[str, str] = {
    "gpt-image-1-mini": "gpt-image-1",
    "gpt-image-1.5": "gpt-image-1",
    "chatgpt-image-latest": "gpt-image-1",
    "gpt-image-1.5-2025-12-16": "gpt-image-1",
    "gpt-image-2-2026-04-21": "gpt-image-2",
    "GPT-Image-2": "gpt-image-2",
    "my-flux": "dall-e-3",
    "stable-diffusion-xl": "flux-dev",
}
# Generation capabilities only: what a model takes on the edits endpoint has tables of its own
# (test_edit_coercion.py), where gpt-image-1-mini differs from gpt-image-1.
_IDENTITY_FIELDS = frozenset({"name", "family", "shutdown", "replacement", "edits"})


def profile_of(name: str) -> ImageModelProfile:
    """``name``'s profile from a registry of its own (``my-flux`` registered like dall-e-3)."""
    models = ModelRegistry()
    if name == "my-flux":
        return models.register_model("my-flux", like="dall-e-3")
    return models.get(name)


def cases(table: Mapping[Any, Mapping[str, Any]]) -> list[Any]:
    """``pytest.param(model, proposed_value, expected)`` for every model and table row."""
    return [
        pytest.param(model, value, by_group[GROUP[model]], id=f"{model}-{value!r}")
        for value, by_group in table.items()
        for model in MODELS
    ]


def capabilities(profile: ImageModelProfile) -> tuple[Any, ...]:
    """What a profile accepts, without what only names it (name, family, lifecycle)."""
    return tuple(
        getattr(profile, f.name)
        for f in dataclasses.fields(profile)
        if f.name not in _IDENTITY_FIELDS
    )


def reads_cleanly(line: str) -> bool:
    """One statement of each thing, parentheses never nested."""
    depth = deepest = 0
    for char in line:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    return deepest <= 1 and line.count("not sent") <= 1 and "it was not sent" not in line


def coerce(name: str, proposed: Mapping[str, Any], **kwargs: Any) -> CoercionResult:
    """Coerce with ``prompt`` filled in, then check the invariants every rule shares."""
    profile = profile_of(name)
    result = coerce_params(profile, {"prompt": "a lighthouse at dusk", **proposed}, **kwargs)
    for body in result.requests:
        assert body["model"] == profile.name
        again = coerce_params(profile, {}, fixed=body)
        assert again.requests == (body,), "coercing a coerced request changed it"
        assert all(a.is_note for a in again.adjustments), again.adjustments
    for adjustment in result.adjustments:
        assert adjustment.reason.strip(), adjustment
        line = adjustment.describe()
        assert line.startswith(f"{adjustment.field}: ")
        assert reads_cleanly(line), line
    return result


def sent(result: CoercionResult, field: str) -> Any:
    """The value every request sends for ``field`` (``None``: not sent)."""
    values = {repr(body.get(field)) for body in result.requests}
    assert len(values) == 1, f"requests disagree on {field}: {values}"
    return result.requests[0].get(field)


def only_adjustment(result: CoercionResult, field: str) -> Adjustment:
    matching = [a for a in result.adjustments if a.field == field]
    assert len(matching) == 1, result.adjustments
    assert len(result.adjustments) == 1, result.adjustments
    return matching[0]


def mentions(reason: str, name: str, *valid: str) -> bool:
    """The reason names the model or at least one of the valid values."""
    return bool(reason.strip()) and (name in reason or any(v in reason for v in valid))


# --- size ---------------------------------------------------------------------------------

_W1080 = {"D2": "1024x1024", "D3": "1792x1024", "G1": "1536x1024", "G2": "1920x1088"}
_LANDSCAPE = {"D2": "1024x1024", "D3": "1792x1024", "G1": "1536x1024", "G2": "1536x1024"}
_PORTRAIT = {"D2": "1024x1024", "D3": "1024x1792", "G1": "1024x1536", "G2": "1024x1536"}
_WIDE = {"D2": "1024x1024", "D3": "1792x1024", "G1": "1536x1024", "G2": "1360x768"}
_TALL = {"D2": "1024x1024", "D3": "1024x1792", "G1": "1024x1536", "G2": "768x1360"}
_SQUARE = dict.fromkeys(("D2", "D3", "G1", "G2", "GW"), "1024x1024")

SIZE_TABLE: dict[str, dict[str, str]] = {
    # WxH in any common spelling
    "1920x1080": {**_W1080, "GW": "1920x1080"},
    "1920 x 1080": {**_W1080, "GW": "1920x1080"},
    "1920*1080": {**_W1080, "GW": "1920x1080"},
    "1920\u00d71080": {**_W1080, "GW": "1920x1080"},
    "1920X1080px": {**_W1080, "GW": "1920x1080"},
    # ratios
    "16:9": {**_WIDE, "GW": "1792x1024"},
    "9:16": {**_TALL, "GW": "1024x1792"},
    "1:1": _SQUARE,
    # words
    "landscape": {**_LANDSCAPE, "GW": "1536x1024"},
    "horizontal": {**_LANDSCAPE, "GW": "1536x1024"},
    "portrait": {**_PORTRAIT, "GW": "1024x1536"},
    "vertical": {**_PORTRAIT, "GW": "1024x1536"},
    "square": _SQUARE,
    "wide": {**_WIDE, "GW": "1792x1024"},
    "tall": {**_TALL, "GW": "1024x1792"},
    # resolution names
    "1080p": {**_W1080, "GW": "1920x1080"},
    "4k": {**_LANDSCAPE, "G2": "3840x2160", "GW": "3840x2160"},
}


@pytest.mark.parametrize(("model", "size", "expected"), cases(SIZE_TABLE))
def test_size_spellings_map_to_the_nearest_allowed_size(
    model: str, size: str, expected: str
) -> None:
    result = coerce(model, {"size": size})
    assert sent(result, "size") == expected
    if size == expected:  # a gateway takes the canonical spelling as it is
        assert result.adjustments == ()
        return
    adjustment = only_adjustment(result, "size")
    assert (adjustment.proposed, adjustment.applied) == (size, expected)
    has_area = ":" not in size and any(c.isdigit() for c in size)
    if GROUP[model] == "GW" and has_area:  # gateways take any WxH: only the spelling is fixed
        assert adjustment.reason == "written as WIDTHxHEIGHT"
    else:
        assert mentions(adjustment.reason, model)
        assert expected in adjustment.reason or "WIDTHxHEIGHT" in adjustment.reason


AREA_TABLE: dict[str, dict[str, str]] = {
    # same (square) shape everywhere: the area decides, on a log scale
    "100x100": {"D2": "256x256", "D3": "1024x1024", "G1": "1024x1024", "G2": "816x816"},
    "300x300": {"D2": "256x256", "D3": "1024x1024", "G1": "1024x1024", "G2": "816x816"},
    "384x384": {"D2": "512x512", "D3": "1024x1024", "G1": "1024x1024", "G2": "816x816"},
    "600x600": {"D2": "512x512", "D3": "1024x1024", "G1": "1024x1024", "G2": "816x816"},
    "2000x2000": {"D2": "1024x1024", "D3": "1024x1024", "G1": "1024x1024", "G2": "2000x2000"},
    # the shape decides before the area: 1792x1000 is nearer 7:4 than 1:1 or 3:2
    "1792x1000": {"D2": "1024x1024", "D3": "1792x1024", "G1": "1536x1024", "G2": "1792x1008"},
    "1024x1800": {"D2": "1024x1024", "D3": "1024x1792", "G1": "1024x1536", "G2": "1024x1808"},
}


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    cases({k: {**v, "GW": k} for k, v in AREA_TABLE.items()}),
)
def test_size_picks_aspect_first_then_area(model: str, size: str, expected: str) -> None:
    result = coerce(model, {"size": size})
    assert sent(result, "size") == expected
    if expected == size:
        assert all(a.is_note for a in result.adjustments)
    else:
        adjustment = only_adjustment(result, "size")
        assert (adjustment.proposed, adjustment.applied) == (size, expected)
        assert mentions(adjustment.reason, model)


GPT_IMAGE_2_SNAPS: dict[str, str] = {
    "1000x1000": "1008x1008",  # edges onto the 16 grid
    "1920x1080": "1920x1088",
    "1080x1920": "1088x1920",
    "1366x768": "1360x768",
    "100x100": "816x816",  # grown to the 655,360-pixel minimum
    "800x800": "816x816",  # just under the minimum (640,000 pixels)
    "5000x5000": "2160x2160",  # shrunk into the 3840x2160 frame (short edge <= 2160)
    "2880x2880": "2160x2160",  # the size the long-edge-only reading allowed
    "2176x2176": "2160x2160",  # one grid step over the short-edge bound
    "3840x2176": "3808x2160",  # short edge over, shape kept
    "3856x1280": "3840x1280",  # one grid step over the long-edge bound
    "4096x2160": "3840x2032",  # long edge clamped to 3840, shape kept
    "4000x1000": "3456x1152",  # 4:1 clamped to 3:1
    "1552x512": "1536x512",  # just flatter than 3:1
    "10000x100": "1728x576",  # 100:1 clamped to 3:1
    "16:9": "1360x768",  # a shape alone: about a megapixel
    "4:3": "1184x880",
    "3:1": "1776x592",
}
# Valid as sent, at each bound of the rule: long edge 3840, short edge 2160, aspect 3:1,
# the pixel minimum (1024x640 = 655,360), the experimental threshold (2560x1440).
GPT_IMAGE_2_VALID = (
    "1280x720",
    "2560x1440",
    "1920x1920",
    "3840x2160",
    "2160x3840",
    "2160x2160",
    "3840x1280",
    "1536x512",
    "1024x640",
    "816x816",
    "2048x2048",
    "1024x1024",
    "auto",
)
# More pixels than 2560x1440: OpenAI marks them experimental, and the tool says so.
EXPERIMENTAL = {"3840x2160", "2160x3840", "2160x2160", "3840x1280", "2048x2048", "2576x1440"}


def _gpt_image_2_rule() -> SizeRule:
    rule = profile_of("gpt-image-2").size_rule
    assert rule is not None
    return rule


@pytest.mark.parametrize(("size", "expected"), GPT_IMAGE_2_SNAPS.items())
def test_gpt_image_2_snaps_to_the_grid_and_clamps(size: str, expected: str) -> None:
    model = "gpt-image-2"
    result = coerce(model, {"size": size})
    assert sent(result, "size") == expected
    width, height = map(int, expected.split("x"))
    assert _gpt_image_2_rule().allows(width, height)
    adjustment = only_adjustment(result, "size")
    assert ("experimental" in adjustment.reason) == (width * height > 2560 * 1440)
    assert adjustment.applied == expected
    assert "multiples of 16" in adjustment.reason
    assert model in adjustment.reason
    # the shape survives (within what 1:3..3:1 allows)
    a, b = (float(x) for x in size.replace(":", "x").split("x"))
    wanted = min(max(a / b, 1 / 3), 3)
    assert abs(math.log((width / height) / wanted)) < 0.02


@pytest.mark.parametrize("size", [*GPT_IMAGE_2_VALID, "2576x1440"])
def test_gpt_image_2_valid_sizes_pass_unchanged(size: str) -> None:
    result = coerce("gpt-image-2", {"size": size})
    assert sent(result, "size") == size
    if size not in EXPERIMENTAL:
        assert result.adjustments == ()
        return
    note = only_adjustment(result, "size")
    assert note.is_note
    assert note.describe() == (
        f"size: {size!r} (sent as asked; OpenAI marks sizes above 2560x1440 as experimental)"
    )


def test_gpt_image_2_stays_inside_both_readings_of_3840x2160() -> None:
    """The reference's "maximum supported resolution is 3840x2160" bounds the long edge, and
    until a live answer settles it, the short edge too (docs/models.md#gpt-image-2)."""
    rule = _gpt_image_2_rule()
    assert (rule.max_edge, rule.max_short_edge, rule.max_pixels) == (3840, 2160, 3840 * 2160)
    assert not rule.allows(2880, 2880)  # 8,294,400 pixels, long edge 2880: one reading only
    assert rule.allows(3840, 2160)
    assert rule.allows(2160, 3840)
    # one data change away: without the short-edge bound, 2880x2880 is allowed again
    assert dataclasses.replace(rule, max_short_edge=None).allows(2880, 2880)
    assert "short edge at most 2160" in rule.describe()


@pytest.mark.parametrize(
    ("proposed", "expected", "warned"),
    [({"resolution": "4k"}, "3840x2160", True), ({"aspect_ratio": "16:9"}, "1360x768", False)],
)
def test_gpt_image_2_size_hints_say_experimental_once(
    proposed: dict[str, Any], expected: str, warned: bool
) -> None:
    result = coerce("gpt-image-2", proposed)
    assert sent(result, "size") == expected
    assert sum("experimental" in a.reason for a in result.adjustments) == int(warned)


@pytest.mark.parametrize(
    "size", ["1920x1080", "1280x720", "1008x1008", "2000x1000", "auto", "256x256"]
)
def test_other_models_reject_sizes_outside_their_list(size: str) -> None:
    """Only gpt-image-2 takes sizes by rule; gpt-image-1 snaps even a valid gpt-image-2 size."""
    result = coerce("gpt-image-1", {"size": size})
    assert sent(result, "size") in ("1024x1024", "1536x1024", "1024x1536", "auto")
    assert (sent(result, "size") == size) == (result.adjustments == ())


UNPARSEABLE_SIZES = ["banana", "", "big", "0x0", "x1024", {"w": 1}, [1024, 1024], True, 0]
_DEFAULT_SIZE = {"D2": "1024x1024", "D3": "1024x1024", "G1": "auto", "G2": "auto", "GW": None}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("size", UNPARSEABLE_SIZES, ids=repr)
def test_unparseable_size_falls_back_to_the_default(model: str, size: Any) -> None:
    result = coerce(model, {"size": size})
    expected = _DEFAULT_SIZE[GROUP[model]]
    assert sent(result, "size") == expected
    adjustment = only_adjustment(result, "size")
    assert adjustment.proposed == size
    assert adjustment.applied == expected  # None: not sent (gateways have no default)
    assert f"not a size {model} understands" in adjustment.reason
    if expected is not None:
        assert f"used its default {expected}" in adjustment.reason


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("0.4x0.4", "256x256"),  # regression: was sent as "0x0"
        ("123456789012345678x2", "1792x1024"),  # absurd edges: nearest listed size
        ("2048 by 2048", "2048x2048"),
        ({"width": 800.4, "height": 600}, "800x600"),
    ],
)
def test_gateway_sizes_are_plausible_wxh(size: Any, expected: str) -> None:
    result = coerce("flux-dev", {"size": size})
    assert sent(result, "size") == expected
    assert only_adjustment(result, "size").applied == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [("dall-e-2", "1024x1024"), ("dall-e-3", "1024x1024"), ("gpt-image-1", "auto")],
)
def test_auto_size_on_models_without_auto(model: str, expected: str) -> None:
    result = coerce(model, {"size": "automatic"})
    assert sent(result, "size") == expected
    assert (result.adjustments == ()) == (expected == "automatic")


@pytest.mark.parametrize(
    ("proposed", "size_by_group"),
    [
        ({"aspect_ratio": "16:9"}, {**_WIDE, "GW": "1792x1024"}),
        ({"width": 1920, "height": "1080"}, {**_W1080, "GW": "1920x1080"}),
        ({"resolution": "4k"}, {**_LANDSCAPE, "G2": "3840x2160", "GW": "3840x2160"}),
    ],
    ids=["aspect_ratio", "width+height", "resolution"],
)
@pytest.mark.parametrize("model", MODELS)
def test_size_hints_choose_the_size_and_are_reported(
    model: str, proposed: dict[str, Any], size_by_group: dict[str, str]
) -> None:
    result = coerce(model, proposed)
    expected = size_by_group[GROUP[model]]
    assert sent(result, "size") == expected
    assert [(a.field, a.proposed, a.applied) for a in result.adjustments] == [
        (key, value, None) for key, value in proposed.items()
    ]
    assert all(f"used it to choose size {expected}" in a.reason for a in result.adjustments)


@pytest.mark.parametrize("model", MODELS)
def test_size_hints_lose_to_an_explicit_size(model: str) -> None:
    result = coerce(model, {"size": "1024x1024", "aspect_ratio": "16:9"})
    assert sent(result, "size") == "1024x1024"
    adjustment = only_adjustment(result, "aspect_ratio")
    assert adjustment.applied is None
    assert "size was used instead" in adjustment.reason


# --- quality ------------------------------------------------------------------------------


def _quality(d3: str | None, gpt: str | None, gw: str | None) -> dict[str, str | None]:
    return {"D2": None, "D3": d3, "G1": gpt, "G2": gpt, "GW": gw}


QUALITY_TABLE: dict[Any, dict[str, str | None]] = {
    "hd": _quality("hd", "high", "hd"),
    "HD": _quality("hd", "high", "HD"),
    "high": _quality("hd", "high", "high"),
    "best": _quality("hd", "high", "best"),
    "max": _quality("hd", "high", "max"),
    "standard": _quality("standard", "medium", "standard"),
    "medium": _quality("standard", "medium", "medium"),
    "normal": _quality("standard", "medium", "normal"),
    "low": _quality("standard", "low", "low"),
    "draft": _quality("standard", "low", "draft"),
    "fast": _quality("standard", "low", "fast"),
    "auto": _quality("standard", "auto", "auto"),
    "Automatic": _quality("standard", "auto", "Automatic"),
    "banana": _quality(None, None, "banana"),
    3: _quality(None, None, None),
}


@pytest.mark.parametrize(("model", "quality", "expected"), cases(QUALITY_TABLE))
def test_quality_synonyms_per_family(model: str, quality: Any, expected: str | None) -> None:
    """high on dall-e-3 -> hd; hd on GPT image -> high; never sent to dall-e-2.

    Gateways pass any quality string through as given: they (and models newer than the
    API reference, e.g. "xhigh", docs/models.md#gateways) define values of their own.
    """
    result = coerce(model, {"quality": quality})
    assert sent(result, "quality") == expected
    if expected == quality:
        assert result.adjustments == ()
        return
    adjustment = only_adjustment(result, "quality")
    assert (adjustment.proposed, adjustment.applied) == (quality, expected)
    assert mentions(adjustment.reason, model)
    if GROUP[model] == "D2":
        assert "takes no quality" in adjustment.reason
    elif expected is None:  # not a quality word: the valid values are listed
        assert all(q in adjustment.reason for q in profile_of(model).qualities)


# --- style --------------------------------------------------------------------------------


def _style(value: str | None) -> dict[str, str | None]:
    return {"D2": None, "D3": value, "G1": None, "G2": None, "GW": value}


STYLE_TABLE: dict[str, dict[str, str | None]] = {
    "vivid": _style("vivid"),
    "Vivid": _style("vivid"),
    "dramatic": _style("vivid"),
    "hyper-real": _style("vivid"),
    "hyper_realistic": _style("vivid"),
    "natural": _style("natural"),
    "realistic": _style("natural"),
    "photographic": _style("natural"),
    "cartoon": _style(None),
}


@pytest.mark.parametrize(("model", "style", "expected"), cases(STYLE_TABLE))
def test_style_synonyms_and_models_without_style(
    model: str, style: str, expected: str | None
) -> None:
    result = coerce(model, {"style": style})
    assert sent(result, "style") == expected
    if expected == style:
        assert result.adjustments == ()
        return
    adjustment = only_adjustment(result, "style")
    assert (adjustment.proposed, adjustment.applied) == (style, expected)
    assert model in adjustment.reason
    if not profile_of(model).styles:
        assert "no style parameter" in adjustment.reason
        assert "prompt" in adjustment.reason  # says where the style belongs instead
    elif expected is None:
        assert "vivid, natural" in adjustment.reason


# --- n ------------------------------------------------------------------------------------

_ONE_PER_CALL = ("D3",)


def _counts(model: str, granted: int) -> list[int]:
    return [1] * granted if GROUP[model] in _ONE_PER_CALL else [granted]


N_TABLE: list[tuple[Any, int, list[tuple[Any, int]]]] = [
    # proposed n, images granted, adjustments before any split (proposed, applied)
    (1, 1, []),
    (2, 2, []),
    (4, 4, []),
    (10, 10, []),
    ("3", 3, []),
    (" 4 ", 4, []),
    ("2.0", 2, []),
    (2.0, 2, []),
    (2.4, 2, [(2.4, 2)]),
    (2.5, 3, [(2.5, 3)]),
    ("three", 3, [("three", 3)]),
    ("four", 4, [("four", 4)]),
    ("Four", 4, [("Four", 4)]),
    (9, 9, []),
    (11, 10, [(11, 10)]),
    (10**30, 10, [(10**30, 10)]),
    (1e300, 10, [(1e300, 10)]),
    (0, 1, [(0, 1)]),
    (-3, 1, [(-3, 1)]),
    ("-2", 1, [("-2", 1)]),
    (True, 1, [(True, 1)]),
    ("lots", 1, [("lots", 1)]),
    (float("inf"), 1, [(float("inf"), 1)]),
    ([], 1, [([], 1)]),
]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("n", "granted", "before_split"), N_TABLE, ids=repr)
def test_n_is_clamped_and_split(
    model: str, n: Any, granted: int, before_split: list[tuple[Any, int]]
) -> None:
    result = coerce(model, {"n": n})
    counts = [body["n"] for body in result.requests]
    assert counts == _counts(model, granted)
    assert all(type(c) is int for c in counts)
    assert result.images_requested == granted
    expected = [("n", proposed, applied) for proposed, applied in before_split]
    if len(counts) > 1:
        expected.append(("n", granted, 1))
    assert [(a.field, a.proposed, a.applied) for a in result.adjustments] == expected
    for adjustment in result.adjustments:
        assert adjustment.field == "n"
    if len(counts) > 1:
        split = result.adjustments[-1]
        assert f"{model} makes at most 1 image per request" in split.reason
        assert f"{granted} parallel requests" in split.reason


@pytest.mark.parametrize("word", ["four", "a couple", "ten"])
def test_n_as_a_word_reports_its_conversion(word: str) -> None:
    result = coerce("gpt-image-2", {"n": word})
    (adjustment,) = result.adjustments
    number = sent(result, "n")
    assert (adjustment.proposed, adjustment.applied) == (word, number)
    assert adjustment.describe() == f"n: {word!r} → {number} (read {word!r} as {number})"


@pytest.mark.parametrize("model", MODELS)
def test_n_absent_is_not_sent(model: str) -> None:
    result = coerce(model, {})
    assert len(result.requests) == 1
    assert "n" not in result.requests[0]
    assert result.images_requested == 1


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("n", "max_images", "granted"), [(5, 2, 2), (2, 0, 1), (8, 3, 3)])
def test_n_respects_the_tool_maximum(model: str, n: int, max_images: int, granted: int) -> None:
    result = coerce(model, {"n": n}, max_images=max_images)
    assert [body["n"] for body in result.requests] == _counts(model, granted)
    clamp = result.adjustments[0]
    assert (clamp.field, clamp.proposed, clamp.applied) == ("n", n, granted)
    assert f"at most {max(max_images, 1)} images per call" in clamp.reason


def test_split_requests_are_otherwise_identical() -> None:
    result = coerce("dall-e-3", {"n": 3, "size": "wide", "quality": "best", "style": "natural"})
    expected = {
        "model": "dall-e-3",
        "prompt": "a lighthouse at dusk",
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
        "n": 1,
    }
    assert result.requests == (expected, expected, expected)
    assert result.requests[0] is not result.requests[1]  # independent dicts, safe to mutate


# --- prompt -------------------------------------------------------------------------------

BLANK_PROMPTS = [
    None,
    "",
    "   ",
    "\n\t ",
    5,
    ["a cat"],
    {"text": "a cat"},
    # blank once made sendable, or made only of characters that render as nothing
    "\ud83e",
    " \udc00 ",
    "\u200b",
    "\u200c\u200d",
    "\u2060 \ufeff\n",
]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("prompt", BLANK_PROMPTS, ids=repr)
def test_prompt_is_required_and_not_blank(model: str, prompt: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="prompt"):
        coerce_params(profile_of(model), {"prompt": prompt, "size": "1024x1024"})


@pytest.mark.parametrize("model", MODELS)
def test_missing_prompt_is_a_clear_error(model: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        coerce_params(profile_of(model), {"size": "1024x1024"})
    assert "prompt is required" in str(caught.value)
    assert "call the tool again" in caught.value.agent_message()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("over", [-1, 0, 1], ids=["limit-1", "limit", "limit+1"])
def test_prompt_length_boundary(model: str, over: int) -> None:
    limit = PROMPT_LIMIT[GROUP[model]]
    assert profile_of(model).max_prompt_chars == limit
    prompt = "z" * (limit + over)
    result = coerce(model, {"prompt": prompt})
    assert sent(result, "prompt") == prompt[:limit]
    assert [a.field for a in result.adjustments] == (["prompt"] if over > 0 else [])


@pytest.mark.parametrize("model", MODELS)
def test_long_prompt_is_cut_at_a_word_boundary(model: str) -> None:
    limit = PROMPT_LIMIT[GROUP[model]]
    prompt = "a lighthouse on a cliff " * (limit // 20)
    assert len(prompt) > limit
    result = coerce(model, {"prompt": prompt})
    cut = sent(result, "prompt")
    assert len(cut) <= limit
    assert prompt.startswith(cut)
    assert prompt[len(cut)] == " "  # the next character was a word boundary
    assert len(cut) > limit - len("lighthouse ")  # and no more than one word was lost
    adjustment = only_adjustment(result, "prompt")
    assert adjustment.proposed == f"{len(prompt)} characters"
    assert adjustment.applied == f"{len(cut)} characters"
    assert f"{model} accepts at most {limit} characters" in adjustment.reason


@pytest.mark.parametrize("model", MODELS)
def test_long_prompt_without_spaces_is_cut_at_the_limit(model: str) -> None:
    limit = PROMPT_LIMIT[GROUP[model]]
    result = coerce(model, {"prompt": "z" * (limit + 7)})
    assert sent(result, "prompt") == "z" * limit


@pytest.mark.parametrize("model", MODELS)
def test_long_prompt_after_leading_blanks_is_never_blank(model: str) -> None:
    """Regression: leading blanks that fill the allowance used to leave an empty prompt."""
    limit = PROMPT_LIMIT[GROUP[model]]
    result = coerce(model, {"prompt": " " * limit + "x" * 20})
    assert sent(result, "prompt") == "x" * 20
    assert only_adjustment(result, "prompt").applied == "20 characters"


# --- background / output format -----------------------------------------------------------

_GPT_GROUPS = ("G1", "G2", "GW")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("fmt", ["jpeg", "jpg", "JPEG"])
def test_transparent_background_needs_png_or_webp(model: str, fmt: str) -> None:
    result = coerce(model, {"background": "transparent", "output_format": fmt})
    if GROUP[model] in _GPT_GROUPS:
        assert sent(result, "background") == "transparent"
        assert sent(result, "output_format") == "png"
        final = result.adjustments[-1]
        assert (final.field, final.applied) == ("output_format", "png")
        assert "transparent background needs png or webp" in final.reason
        assert all(a.field == "output_format" for a in result.adjustments)
    else:  # DALL·E: neither parameter exists
        assert sent(result, "background") is None
        assert sent(result, "output_format") is None
        assert [(a.field, a.applied) for a in result.adjustments] == [
            ("background", None),
            ("output_format", None),
        ]
        assert all(model in a.reason for a in result.adjustments)


@pytest.mark.parametrize("model", [m for m in MODELS if GROUP[m] in _GPT_GROUPS])
def test_transparency_also_drops_jpeg_compression(model: str) -> None:
    result = coerce(
        model,
        {"background": "transparent", "output_format": "jpeg"},
        fixed={"output_compression": 70},
    )
    assert sent(result, "output_format") == "png"
    assert sent(result, "output_compression") is None
    assert [(a.field, a.proposed, a.applied) for a in result.adjustments] == [
        ("output_format", "jpeg", "png"),
        ("output_compression", 70, None),
    ]
    assert "only to jpeg and webp" in result.adjustments[1].reason


@pytest.mark.parametrize("model", [m for m in MODELS if GROUP[m] in _GPT_GROUPS])
@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_transparent_with_png_or_webp_is_kept(model: str, fmt: str) -> None:
    result = coerce(model, {"background": "transparent", "output_format": fmt})
    assert (sent(result, "background"), sent(result, "output_format")) == ("transparent", fmt)
    assert result.adjustments == ()


# --- parameters a model rejects; unknown keys ----------------------------------------------

_EVERYTHING = {
    "quality": "standard",
    "style": "vivid",
    "response_format": "url",
    "output_format": "webp",
    "output_compression": 100,
    "background": "opaque",
    "moderation": "auto",
}
# docs/models.md: what each group never receives.
REJECTED: dict[str, set[str]] = {
    "D2": {"quality", "style", "output_format", "output_compression", "background", "moderation"},
    "D3": {"output_format", "output_compression", "background", "moderation"},
    "G1": {"style", "response_format"},
    "G2": {"style", "response_format"},
    "GW": set(),
}


@pytest.mark.parametrize("model", MODELS)
def test_never_send_a_parameter_the_model_rejects(model: str) -> None:
    proposed = {**_EVERYTHING}
    if GROUP[model] in ("G1", "G2"):
        proposed["quality"] = "medium"
    result = coerce(model, {}, fixed=proposed)  # the developer may set any of them
    rejected = REJECTED[GROUP[model]]
    body = result.requests[0]
    assert set(body) == {"model", "prompt"} | (set(proposed) - rejected)
    assert {key: body[key] for key in set(proposed) - rejected} == {
        key: proposed[key] for key in set(proposed) - rejected
    }
    assert {a.field for a in result.adjustments} == rejected
    for adjustment in result.adjustments:
        assert adjustment.applied is None
        assert model in adjustment.reason


@pytest.mark.parametrize("model", [m for m in MODELS if GROUP[m] in ("G1", "G2")])
def test_gpt_image_response_format_reason_says_why(model: str) -> None:
    result = coerce(model, {}, fixed={"response_format": "b64_json"})
    assert "always returns base64 images" in only_adjustment(result, "response_format").reason


UNKNOWN_KEYS = {
    "seed": 42,
    "negative_prompt": "blurry",
    "steps": 30,
    "guidance_scale": 7.5,
    "\u98ce\u683c": "\u6c34\u58a8",
    "": None,
    "sampler": {"name": "euler"},
}


@pytest.mark.parametrize("model", MODELS)
def test_unknown_keys_are_dropped_and_reported(model: str) -> None:
    result = coerce(model, UNKNOWN_KEYS)
    assert result.requests == ({"model": profile_of(model).name, "prompt": "a lighthouse at dusk"},)
    reported = {a.field: a for a in result.adjustments}
    assert set(reported) == {k for k, v in UNKNOWN_KEYS.items() if v is not None}
    for key, adjustment in reported.items():
        assert adjustment.proposed == UNKNOWN_KEYS[key]
        assert adjustment.applied is None
        assert "not a parameter of the Images API" in adjustment.reason


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("field", "value"),
    [("stream", True), ("partial_images", 2), ("user", 42), ("output_compression", "lots")],
)
def test_values_that_cannot_be_sent_are_dropped(model: str, field: str, value: Any) -> None:
    result = coerce(model, {}, fixed={field: value})
    assert sent(result, field) is None
    adjustment = only_adjustment(result, field)
    assert (adjustment.proposed, adjustment.applied) == (value, None)


@pytest.mark.parametrize("model", MODELS)
def test_model_is_set_by_the_tool(model: str) -> None:
    result = coerce(model, {"model": "dall-e-2" if model != "dall-e-2" else "dall-e-3"})
    adjustment = only_adjustment(result, "model")
    assert adjustment.applied == profile_of(model).name
    assert model in adjustment.reason


# --- what only the developer sets ----------------------------------------------------------

HOSTILE = {
    "moderation": "low",
    "user": "spoofed-user",
    "response_format": "url",
    "output_compression": 5,
    "stream": True,
    "partial_images": 3,
}


@pytest.mark.parametrize("model", MODELS)
def test_a_hostile_proposal_never_reaches_a_body(model: str) -> None:
    """What the schema hides from the LLM, the LLM cannot set (the gateway takes all of these
    from the developer, so it is the strictest case)."""
    result = coerce(
        model, {**HOSTILE, "output_format": "jpeg"} if GROUP[model] != "D2" else HOSTILE
    )
    for body in result.requests:
        assert not set(body) & set(HOSTILE), body
    dropped = {a.field: a for a in result.adjustments if a.applied is None}
    assert set(HOSTILE) <= set(dropped)
    for field in ("moderation", "user", "output_compression"):
        reason = dropped[field].reason
        assert reason == f"only the developer sets {field}" or model in reason


@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-2", "flux-dev"])
def test_the_developer_sets_what_the_llm_cannot(model: str) -> None:
    fixed = {"moderation": "auto", "user": "customer-42", "output_compression": 80}
    result = coerce(
        model, {**HOSTILE, "output_format": "webp"}, fixed={**fixed, "output_format": "jpeg"}
    )
    assert {k: sent(result, k) for k in fixed} == fixed
    assert sent(result, "output_format") == "jpeg"  # the developer's wins
    by_field = {a.field: a.reason for a in result.adjustments if a.applied is None}
    for field in (*fixed, "output_format"):
        assert by_field[field] == f"{field} is set by the developer"


def test_a_fixed_size_also_wins_over_size_hints() -> None:
    result = coerce(
        "gpt-image-1", {"size": "portrait", "aspect_ratio": "16:9"}, fixed={"size": "1024x1024"}
    )
    assert sent(result, "size") == "1024x1024"
    assert sorted((a.field, a.reason) for a in result.adjustments) == [
        ("aspect_ratio", "size is set by the developer"),
        ("size", "size is set by the developer"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-1, 0),
        (0, 0),
        (1, 1),
        (99, 99),
        (100, 100),
        (101, 100),
        (10**9, 100),
        ("50", 50),
        (42.6, 43),
    ],
)
@pytest.mark.parametrize("model", ["gpt-image-1", "gpt-image-2", "flux-dev"])
def test_output_compression_is_clamped_to_0_100(model: str, value: Any, expected: int) -> None:
    result = coerce(model, {}, fixed={"output_compression": value, "output_format": "jpeg"})
    assert sent(result, "output_compression") == expected
    assert type(sent(result, "output_compression")) is int
    changed = [a for a in result.adjustments if a.field == "output_compression"]
    if value == expected:
        assert changed == []
    else:
        assert [(a.proposed, a.applied) for a in changed] == [(value, expected)]


# --- every string can be sent --------------------------------------------------------------

SANITISED = [
    # (proposed or fixed args, field, value sent, what the adjustment shows it was)
    ({"prompt": "a fox \ud83e"}, "prompt", "a fox ", "a fox \ufffd"),
    (
        {"prompt": "\U0001f600 a fox \ud83e\ud83e"},
        "prompt",
        "\U0001f600 a fox ",
        "\U0001f600 a fox \ufffd\ufffd",
    ),
    ({"size": "1024x1024\udc00"}, "size", "1024x1024", "1024x1024\ufffd"),
    ({"n": "2\ud800"}, "n", 2, "2\ufffd"),
]


@pytest.mark.parametrize(("args", "field", "value", "shown"), SANITISED, ids=repr)
def test_unencodable_characters_are_removed_and_reported(
    args: dict[str, Any], field: str, value: Any, shown: str
) -> None:
    result = coerce("gpt-image-1", args)
    assert sent(result, field) == value
    first = result.adjustments[0]
    assert (first.field, first.proposed) == (field, shown)
    assert "cannot encode" in first.reason
    for body in result.requests:
        json.dumps(body, ensure_ascii=False).encode()  # what the client sends
    for adjustment in result.adjustments:
        adjustment.describe().encode()  # what the LLM and the CLI read


@pytest.mark.parametrize("model", ["gpt-image-1", "flux-dev"])
def test_developer_strings_and_nested_values_are_made_sendable(model: str) -> None:
    result = coerce(
        model,
        {"\ud83e": "x", "sampler": {"name\udc00": ["euler\ud800"]}},
        fixed={"user": "customer-\ud83e42"},
    )
    assert sent(result, "user") == "customer-42"
    shown = [a.describe() for a in result.adjustments]
    assert shown[0] == (
        "user: 'customer-\ufffd42' → 'customer-42' "
        "(removed 1 character that UTF-8 cannot encode, such as half of an emoji)"
    )
    assert "\ufffd: 'x' → not sent (a parameter name with characters that cannot be sent)" in shown
    assert "sampler: {'name': ['euler']} → not sent (not a parameter of the Images API)" in shown
    for line in shown:
        line.encode()


# --- valid requests are left alone ---------------------------------------------------------

_GPT_VALID = {
    "size": "1536x1024",
    "n": 2,
    "quality": "high",
    "output_format": "webp",
    "output_compression": 42,
    "background": "transparent",
    "moderation": "low",
    "user": "user-1234",
}
VALID: dict[str, dict[str, Any]] = {
    "D2": {"size": "512x512", "n": 3, "response_format": "b64_json", "user": "user-1234"},
    "D3": {
        "size": "1024x1792",
        "n": 1,
        "quality": "hd",
        "style": "natural",
        "response_format": "url",
    },
    "G1": _GPT_VALID,
    "G2": {**_GPT_VALID, "size": "1920x1088", "quality": "auto"},
    "GW": {
        "size": "1920x1080",
        "n": 4,
        "quality": "hd",
        "style": "vivid",
        "response_format": "b64_json",
        "output_format": "jpeg",
        "output_compression": 80,
    },
}


@pytest.mark.parametrize("model", MODELS)
def test_a_valid_request_passes_through_unchanged(model: str) -> None:
    profile = profile_of(model)
    body = {"model": profile.name, "prompt": "a lighthouse at dusk", **VALID[GROUP[model]]}
    result = coerce_params(profile, {}, fixed=body)
    assert result.requests == (body,)
    assert result.adjustments == ()
    # the LLM's share proposed, the developer's fixed: the same body, nothing to report
    offered = profile.llm_fields()
    llm = {k: v for k, v in body.items() if k in offered}
    developer = {k: v for k, v in body.items() if k not in offered and k != "model"}
    split = coerce_params(profile, llm, fixed=developer)
    assert split.requests == (body,)
    assert split.adjustments == ()


@pytest.mark.parametrize("model", MODELS)
def test_nulls_mean_not_given(model: str) -> None:
    """Strict tool schemas send every field; null ones must not reach the API."""
    nulls = dict.fromkeys(("size", "n", "quality", "style", "background", "output_format"))
    result = coerce(model, nulls)
    assert result.requests == ({"model": profile_of(model).name, "prompt": "a lighthouse at dusk"},)
    assert result.adjustments == ()


@pytest.mark.parametrize("model", MODELS)
def test_coercing_a_messy_request_twice_changes_nothing_more(model: str) -> None:
    messy = {
        "size": "16:9",
        "n": "12",
        "quality": "best",
        "style": "photographic",
        "background": "transparent",
        "output_format": "jpg",
        "response_format": "base64",
        "seed": 7,
    }
    first = coerce(model, messy)  # coerce() asserts the fixed point for every request
    assert first.adjustments
    assert len(first.requests) == (10 if GROUP[model] == "D3" else 1)


# --- models: snapshots, gateways, registration ---------------------------------------------


def test_every_profile_is_covered_by_a_table() -> None:
    """The representatives are pairwise distinct, and every built-in profile (and the
    gateway profile) has the capabilities of one of them."""
    covered = {capabilities(profile_of(model)): model for model in MODELS}
    assert len(covered) == len(MODELS)
    for profile in (*registry.PROFILES, GATEWAY_PROFILE):
        assert capabilities(profile) in covered, f"{profile.name} needs a rule table"


@pytest.mark.parametrize(("alias", "model"), ALIASES.items())
def test_alias_resolves_to_its_profile(alias: str, model: str) -> None:
    profile = profile_of(alias)
    assert profile.name == alias  # sent as `model` under its own name
    assert capabilities(profile) == capabilities(profile_of(model))
    result = coerce_params(profile, {"prompt": "x"})
    assert result.requests == ({"model": alias, "prompt": "x"},)


def test_snapshot_resolves_to_its_family() -> None:
    models = ModelRegistry()
    snapshot = models.get("gpt-image-2-2026-04-21")
    assert snapshot.name == "gpt-image-2-2026-04-21"
    assert snapshot.family == "gpt-image-2"
    assert snapshot.size_rule == models.get("gpt-image-2").size_rule
    assert models.get("gpt-image-1.5-2025-12-16").family == "gpt-image-1.5"
    result = coerce_params(snapshot, {"prompt": "x", "size": "1920x1080"})
    assert result.requests == (
        {"model": "gpt-image-2-2026-04-21", "prompt": "x", "size": "1920x1088"},
    )


def test_unknown_models_get_the_gateway_profile() -> None:
    models = ModelRegistry()
    flux = models.get("flux-dev")
    assert flux.permissive
    assert flux.family == GATEWAY_PROFILE.family
    assert flux.name == "flux-dev"
    assert models.get("stable-diffusion-xl").family == "gateway"
    assert "flux-dev" not in models.known()


def test_register_model_like_a_known_model() -> None:
    models = ModelRegistry()
    profile = models.register_model("my-flux", like="dall-e-3")
    assert profile.name == "my-flux"
    assert profile.family == "dall-e-3"
    assert not profile.permissive
    assert models.get("my-flux") == profile
    assert "my-flux" in models.known()
    # ... and now coerces like dall-e-3 under its own name
    result = coerce_params(profile, {"prompt": "x", "n": 2, "quality": "high", "size": "wide"})
    assert (
        result.requests
        == ({"model": "my-flux", "prompt": "x", "quality": "hd", "size": "1792x1024", "n": 1},) * 2
    )
    assert ModelRegistry().get("my-flux").permissive  # a fresh registry never saw it


def test_register_model_like_an_unknown_model_fails() -> None:
    with pytest.raises(KeyError, match="unknown model 'flux-pro'"):
        ModelRegistry().register_model("my-model", like="flux-pro")


def test_module_level_registration_uses_the_default_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``register_model``/``register_profile`` change what names resolve to in coerce_params."""
    monkeypatch.setattr(registry, "default_registry", ModelRegistry())
    assert (
        coerce_params("my-flux", {"prompt": "x", "style": "vivid"}).requests[0]["style"] == "vivid"
    )
    register_model("my-flux", like="gpt-image-1")
    result = coerce_params("my-flux", {"prompt": "x", "style": "vivid", "size": "wide"})
    assert result.requests == ({"model": "my-flux", "prompt": "x", "size": "1536x1024"},)
    register_profile(
        ImageModelProfile(
            name="flux-schnell",
            family="flux",
            sizes=("1024x1024", "1344x768", "768x1344"),
            default_size="1024x1024",
            max_images_per_request=4,
            max_images=4,
            max_prompt_chars=2000,
            response_formats=("url",),
        )
    )
    result = coerce_params(
        "flux-schnell",
        {"prompt": "x", "size": "16:9", "n": 6},
        fixed={"response_format": "b64_json"},
    )
    assert result.requests == (
        {"model": "flux-schnell", "prompt": "x", "size": "1344x768", "n": 4},
    )
    assert [(a.field, a.applied) for a in result.adjustments] == [
        ("size", "1344x768"),
        ("response_format", None),
        ("n", 4),
    ]


def test_registrations_did_not_leak() -> None:
    assert registry.default_registry.get("my-flux").permissive
    assert registry.default_registry.get("flux-schnell").permissive

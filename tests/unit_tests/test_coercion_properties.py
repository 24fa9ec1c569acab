"""Property tests of :func:`coerce_params`: whatever an LLM proposes and a developer fixes,
for every distinct profile, either the prompt is unusable (and :class:`InvalidArgumentError`
says so) or every request body is one the real API accepts, can be encoded as the client
encodes it, the images add up, the LLM set only what its schema offers, and coercing the
result changes nothing.

Validity is judged by ``tests/spec_validator.py``, written from OpenAI's API reference
independently of the package (and checked against the vendored OpenAPI excerpt). Gateway
models (unknown names) have no spec to validate against, so for them only the structural
properties (spec keys only, counts, idempotence) are checked. Profiles that only alias one of
these (gpt-image-1 siblings, snapshots, ``like=`` registrations) are covered by them
(``test_coercion_rules.test_every_profile_is_covered_by_a_table``).
"""

from __future__ import annotations

import json
import math
import os
import string
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_imagegen.coercion import CoercionResult, coerce_params
from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.registry import ImageModelProfile, ModelRegistry
from tests.models import KNOWN_MODELS
from tests.spec_validator import SCHEMA_FIELDS, validate_request

_REGISTRY = ModelRegistry()  # private: nothing registered here leaks into other tests
_DISTINCT = ("dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-2")
assert set(_DISTINCT) <= set(KNOWN_MODELS)

PROFILES: tuple[ImageModelProfile, ...] = (
    *(_REGISTRY.get(name) for name in _DISTINCT),
    _REGISTRY.get("flux-dev"),  # unknown name: the permissive gateway profile
)
# Validate each profile's bodies as the model whose rules it has; None: no spec (gateway).
VALIDATE_AS: dict[str, str | None] = {**{name: name for name in _DISTINCT}, "flux-dev": None}

# ~150 examples per profile and property keep this file fast; hunt harder with e.g.
# COERCION_EXAMPLES=5000 pytest tests/unit_tests/test_coercion_properties.py
EXAMPLES = int(os.environ.get("COERCION_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- strategies ---------------------------------------------------------------------------

_garbage_text = st.text(max_size=12)
_weird_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    _garbage_text,
)
_nested = st.recursive(
    _weird_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)

_edge = st.one_of(
    st.integers(min_value=-50, max_value=20_000),
    st.floats(min_value=0, max_value=20_000, allow_nan=False).map(lambda f: round(f, 2)),
    st.integers(min_value=10**5, max_value=10**20),
)
_separator = st.sampled_from(["x", "X", " x ", "*", " * ", "\u00d7", " by ", ",", "-", ":", "/"])
_unit = st.sampled_from(["", "px", " px", " pixels"])


@st.composite
def _spelled_size(draw: st.DrawFn) -> str:
    width, height = draw(_edge), draw(_edge)
    return f"{width}{draw(_unit)}{draw(_separator)}{height}{draw(_unit)}"


_size_words = st.sampled_from(
    [
        "auto",
        "Auto",
        "default",
        "1024x1024",
        "1536x1024",
        "1024x1536",
        "1792x1024",
        "1024x1792",
        "256x256",
        "512x512",
        "1920x1088",
        "3840x2160",
        "16:9",
        "9:16",
        "1:1",
        "3:2",
        "21:9",
        "0:0",
        "4 to 3",
        "landscape",
        "Portrait",
        "square",
        "wide",
        "tall",
        "horizontal",
        "vertical",
        "panorama",
        "a wide landscape shot",
        "1080p",
        "4K",
        "8k",
        "full-hd",
        "720p",
        "banana",
        "",
        "   ",
        "x",
        "1024",
        "0x0",
        "99999x99999",
    ]
)
_sizes = st.one_of(
    _size_words,
    _spelled_size(),
    st.fixed_dictionaries({"width": _edge, "height": _edge}),
    _edge,
    _nested,
)

_QUALITY_WORDS = [
    "hd",
    "HD",
    "high",
    "best",
    "max",
    "maximum",
    "ultra",
    "standard",
    "medium",
    "normal",
    "default",
    "low",
    "draft",
    "fast",
    "auto",
    "Automatic",
    "high quality",
    "super",
]
_STYLE_WORDS = [
    "vivid",
    "Vivid",
    "dramatic",
    "hyper-real",
    "hyper_realistic",
    "natural",
    "realistic",
    "photographic",
    "photo",
    "cartoon",
]


def _words(words: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(words), _weird_scalars, _nested)


_n = st.one_of(
    st.integers(min_value=-5, max_value=25),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-3, max_value=30),
    st.integers(min_value=-5, max_value=25).map(str),
    st.integers(min_value=-5, max_value=25).map(lambda i: f" {i}.0 "),
    st.booleans(),
    st.sampled_from(["three", "a few", "lots", "", "many", "1e3"]),
    _nested,
)

_prompt_ok = st.text(alphabet=string.ascii_letters + " ,.\n\u00e9\u4e2d", min_size=1, max_size=60)
_long_prompt = st.builds(
    lambda word, k, lead: lead + (word + " ") * k,
    st.sampled_from(["cat", "supercalifragilistic", "x" * 50, "\u732b"]),
    st.sampled_from([300, 1200, 9000]),
    st.sampled_from(["", "  ", " " * 1200]),
)
_prompt = st.one_of(
    _prompt_ok.filter(str.strip),
    _long_prompt,
    st.sampled_from(["", " ", "\n\t", None]),
    st.integers(),
    st.lists(st.text(max_size=3), max_size=2),
)

_OPTIONAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "size": _sizes,
    "n": _n,
    "quality": _words(_QUALITY_WORDS),
    "style": _words(_STYLE_WORDS),
    "response_format": _words(["url", "b64_json", "base64", "b64", "link", "json", "png"]),
    "output_format": _words(["png", "jpeg", "jpg", "JPG", "webp", "image/webp", "gif"]),
    "output_compression": st.one_of(st.integers(-50, 200), st.floats(), _weird_scalars),
    "background": _words(["transparent", "none", "clear", "opaque", "solid", "auto", "green"]),
    "moderation": _words(["low", "auto", "strict", "relaxed", "off"]),
    "user": _weird_scalars,
    "stream": _weird_scalars,
    "partial_images": _weird_scalars,
    "model": st.sampled_from(["dall-e-3", "gpt-image-1", "my-flux", "", "x"]),
    "aspect_ratio": _words(["16:9", "1:1", "portrait", "9:16"]),
    "width": _edge,
    "height": _edge,
    "resolution": _words(["1080p", "4k", "720p"]),
    "seed": _weird_scalars,
    "negative_prompt": _garbage_text,
    "steps": st.integers(),
    "\u5c3a\u5bf8": _weird_scalars,  # unicode key
}
_proposals = st.fixed_dictionaries({}, optional={"prompt": _prompt, **_OPTIONAL_FIELDS}).flatmap(
    lambda fixed: st.dictionaries(st.text(max_size=8), _nested, max_size=2).map(
        lambda extra: {**extra, **fixed}
    )
)
# What a developer may fix (the tool's image_params): usually nothing, sometimes anything.
_fixed = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {},
        optional={
            k: _OPTIONAL_FIELDS[k]
            for k in ("moderation", "user", "output_compression", "response_format", "quality", "n")
        },
    ),
)
# Any string json.loads can produce: every code point, lone UTF-16 surrogates included.
_any_text = st.text(st.characters(blacklist_categories=()), max_size=20)
_text_everywhere = st.fixed_dictionaries(
    {"prompt": _any_text},
    optional={
        "size": _any_text,
        "quality": _any_text,
        "style": _any_text,
        "background": _any_text,
        "output_format": _any_text,
        "aspect_ratio": _any_text,
        "negative_prompt": _any_text,
        "sampler": st.dictionaries(_any_text, st.lists(_any_text, max_size=2), max_size=2),
    },
).flatmap(
    lambda args: st.dictionaries(_any_text, _any_text, max_size=2).map(lambda x: {**x, **args})
)


# --- helpers ------------------------------------------------------------------------------


def _prompt_is_usable(proposed: Mapping[str, Any]) -> bool:
    prompt = proposed.get("prompt")
    return isinstance(prompt, str) and bool(prompt.strip())


def _encodes(result: CoercionResult) -> None:
    """What the client sends, and what the LLM and the CLI read, encode as UTF-8."""
    for body in result.requests:
        json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    for adjustment in result.adjustments:
        adjustment.describe().encode()
        json.dumps(
            [adjustment.field, adjustment.proposed, adjustment.applied],
            ensure_ascii=False,
            default=repr,
        ).encode()


def _offered_or_fixed(
    profile: ImageModelProfile, fixed: Mapping[str, Any], result: CoercionResult
) -> None:
    """The LLM set only fields its schema offers; everything else came from the developer."""
    allowed = {*profile.llm_fields(), *fixed, "model"}
    for body in result.requests:
        assert set(body) <= allowed, f"{set(body) - allowed} reached a body from the proposal"


def _requested_count(value: Any) -> int | None:
    """What ``n`` asks for, when it is unambiguously a number (independent of the package)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | str):
        try:
            number = float(value)
        except ValueError:
            return None
        if math.isfinite(number):
            return math.floor(number + 0.5)
    return None


def _assert_fixed_point(profile: ImageModelProfile, result: CoercionResult) -> None:
    for body in result.requests:
        again = coerce_params(profile, {}, fixed=body)
        assert again.requests == (body,), f"not idempotent for {body!r}: {again.requests!r}"
        changes = [a for a in again.adjustments if not a.is_note]
        assert changes == [], f"re-coercing {body!r} reported {changes!r}"


def _assert_valid(profile: ImageModelProfile, result: CoercionResult) -> None:
    for body in result.requests:
        assert set(body) <= set(SCHEMA_FIELDS), f"sent a key outside the API spec: {body!r}"
        assert body["model"] == profile.name
        assert isinstance(body["prompt"], str)
        assert body["prompt"].strip()
        family = VALIDATE_AS[profile.name]
        if family is None:
            continue
        error = validate_request({**body, "model": family})
        assert error is None, f"{profile.name}: {body!r} would get {error}"


def _assert_counts(
    profile: ImageModelProfile, proposed: Mapping[str, Any], result: CoercionResult
) -> None:
    value = proposed.get("n")  # the developer's, when fixed (see _merged)
    per_request = profile.max_images_per_request
    if value is None:
        assert len(result.requests) == 1
        assert "n" not in result.requests[0]
        return
    counts = [body["n"] for body in result.requests]
    assert all(type(c) is int and 1 <= c <= per_request for c in counts), counts
    total = sum(counts)
    requested = _requested_count(value)
    if requested is None:  # words, garbage, bools: some number of images in bounds
        assert 1 <= total <= profile.max_images
    else:
        assert total == min(max(requested, 1), profile.max_images), (value, counts)
    assert result.images_requested == total
    assert len(result.requests) == -(-total // per_request)  # as few calls as possible


_STREAM = ("stream", "partial_images")  # "don't stream" is what happens anyway


def _merged(proposed: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """What should be sent when the proposal could set everything: the developer's values win."""
    return {**{k: v for k, v in proposed.items() if k not in fixed}, **fixed}


def _assert_reported(
    profile: ImageModelProfile,
    proposed: Mapping[str, Any],
    fixed: Mapping[str, Any],
    result: CoercionResult,
) -> None:
    """Every value that was not sent exactly as given is explained; so is every proposal the
    LLM may not make."""
    body = result.requests[0]
    adjusted = {a.field for a in result.adjustments}
    assert all(a.reason.strip() for a in result.adjustments)
    for key, value in proposed.items():
        if value is not None and (key in fixed or key not in profile.llm_fields()):
            harmless = key == "model" or (key in _STREAM and value in (False, 0))
            assert key in adjusted or harmless, f"proposed {key}={value!r} silently unused"
    proposed = {**proposed, "prompt": proposed["prompt"]}
    for key, value in _merged(proposed, fixed).items():
        if value is None or key in ("prompt", "n") or key in adjusted:
            continue
        if key in ("stream", "partial_images") and value in (False, 0):
            continue  # "don't stream" is what happens anyway
        assert key in body, f"{key}={value!r} vanished without an adjustment"
        assert body[key] == value, f"{key}={value!r} became {body[key]!r} silently"
        assert type(body[key]) is type(value)
    prompt = _merged(proposed, fixed)["prompt"]
    sent = body["prompt"]
    if sent != prompt:
        assert "prompt" in adjusted
        assert sent in prompt
        assert len(prompt) > len(sent)


# --- properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@SETTINGS
@given(proposed=_proposals, fixed=_fixed)
def test_any_proposal_becomes_valid_requests(
    profile: ImageModelProfile, proposed: dict[str, Any], fixed: dict[str, Any]
) -> None:
    if not _prompt_is_usable(proposed):
        with pytest.raises(InvalidArgumentError, match="prompt"):
            coerce_params(profile, proposed, fixed=fixed)
        return
    result = coerce_params(profile, proposed, fixed=fixed)
    assert result.profile == profile
    _assert_valid(profile, result)
    _encodes(result)
    _offered_or_fixed(profile, fixed, result)
    _assert_counts(profile, _merged(proposed, fixed), result)
    _assert_reported(profile, proposed, fixed, result)
    _assert_fixed_point(profile, result)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@SETTINGS
@given(proposed=_text_everywhere, user=_any_text)
def test_any_string_an_llm_can_produce_is_sent_or_refused_clearly(
    profile: ImageModelProfile, proposed: dict[str, Any], user: str
) -> None:
    """Any str the JSON decoder can produce, anywhere, gives bodies the client can encode
    (``json.dumps(..., ensure_ascii=False).encode()``, as it sends them) or a clear
    "prompt is required" error; and the dry run (coercion) is what the real run sends."""
    visible = "".join(c for c in proposed["prompt"] if not "\ud800" <= c <= "\udfff")
    if not visible.translate(dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))).strip():
        with pytest.raises(InvalidArgumentError, match="prompt is required"):
            coerce_params(profile, proposed, fixed={"user": user})
        return
    result = coerce_params(profile, proposed, fixed={"user": user})
    _encodes(result)
    _assert_valid(profile, result)
    _assert_fixed_point(profile, result)
    surrogate = any("\ud800" <= c <= "\udfff" for c in proposed["prompt"])
    assert surrogate == any(
        a.field == "prompt" and "cannot encode" in a.reason for a in result.adjustments
    )


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@SETTINGS
@given(size=_sizes)
def test_any_size_alone_is_valid_and_stable(profile: ImageModelProfile, size: Any) -> None:
    """Sizes get more examples of their own: the densest rule (aspect, area, grid)."""
    result = coerce_params(profile, {"prompt": "a lighthouse", "size": size})
    _assert_valid(profile, result)
    _assert_fixed_point(profile, result)
    sent = result.requests[0].get("size")
    if size is None:  # null means "not given"
        assert sent is None
        assert not result.adjustments
        return
    if sent is None:  # only a model without a default size may leave it out
        assert profile.default_size is None
    changes = [a for a in result.adjustments if not a.is_note]
    assert (sent == size and type(sent) is type(size)) == (not changes)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@SETTINGS
@given(n=_n, max_images=st.integers(min_value=-3, max_value=12))
def test_counts_respect_the_tool_limit(profile: ImageModelProfile, n: Any, max_images: int) -> None:
    """``max_images`` (the tool's cap) bounds the images over all requests, split per call."""
    result = coerce_params(profile, {"prompt": "owls", "n": n}, max_images=max_images)
    _assert_valid(profile, result)
    if n is None:  # null means "not given": one request, the API's default of one image
        assert len(result.requests) == 1
        assert "n" not in result.requests[0]
        return
    cap = max(1, max_images)
    counts = [body["n"] for body in result.requests]
    assert 1 <= sum(counts) <= cap
    requested = _requested_count(n)
    if requested is not None:
        assert sum(counts) == min(max(requested, 1), cap)
    assert all(1 <= c <= profile.max_images_per_request for c in counts)

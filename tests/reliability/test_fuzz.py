"""Fuzz: whatever JSON arguments an LLM sends, the tool answers and sends only valid requests.

Hypothesis generates tool-call arguments the way a sloppy or confused model writes them:
wrong types, huge and negative numbers, unicode, empty and blank strings, nested objects,
synonyms, other providers' parameter names and unknown keys. For each model, every call
through ``tool.invoke(ToolCall)`` (and ``ainvoke``) must

* return a ``ToolMessage`` (status ``success`` or ``error``), never raise, and
* send the emulator only requests that are valid for that model per the independent
  validator (``tests/spec_validator.is_valid``), so the API never answers 400 to a coerced
  request; and a successful call returns every image the emulator produced;
* never send what only the developer sets (``moderation``, ``user``, ``output_compression``,
  ``response_format``): the tools here fix none of them, so no body may carry one; and
* survive any string ``json.loads`` can produce, lone UTF-16 surrogates included.

One distinct profile per family (the gpt-image-1 siblings are copies of gpt-image-1).

One emulator per module (fast); ``max_examples`` is modest and there is no deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langchain_core.messages import ToolMessage

from langchain_imagegen.registry import DEVELOPER_FIELDS
from langchain_imagegen.tool import ImageGenerationTool
from tests.emulator import Emulator
from tests.reliability.conftest import EMULATOR_MARKS, tool_call
from tests.spec_validator import is_valid, validate_request

pytestmark = EMULATOR_MARKS

MODELS = ["dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-2"]
SYNC_EXAMPLES = 60
ASYNC_EXAMPLES = 15

# --- strategies ------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _or_anything(*examples: Any) -> st.SearchStrategy[Any]:
    """Plausible spellings most of the time, any JSON value otherwise."""
    return st.one_of(st.sampled_from(examples), json_values)


prompts = st.one_of(
    st.text(min_size=1, max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=80),
    # every code point, lone surrogates included (a cut emoji escape: "\ud83e")
    st.text(alphabet=st.characters(blacklist_categories=()), min_size=1, max_size=40),
    st.sampled_from(
        [
            "a red fox in the snow",
            "",
            "   ",
            "\n\t",
            "🦊" * 3000,
            "x" * 33_000,  # longer than any model accepts
            "[[not a fault marker]]",
            "a cat\x00with a NUL",
            "a fox \ud83e",
            "\ud83e",
            "\u200b\ufeff",
        ]
    ),
    json_values,
)

FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "size": _or_anything(
        "1024x1024",
        "1920x1080",
        "1792x1024",
        "1024x1792",
        "1536x1024",
        "256x256",
        "512x512",
        "3840x2160",
        "auto",
        "AUTO",
        "4K",
        "HD",
        "square",
        "landscape",
        "portrait",
        "16:9",
        "1024",
        "1024 x 1024",
        "1024X1024",
        "1024*768",
        "0x0",
        "-512x512",
        "99999x99999",
        "",
        None,
    ),
    "n": _or_anything(1, 2, 4, 8, 0, -3, 10**30, 2.5, "2", "four", "", None, True),
    "quality": _or_anything(
        "standard", "hd", "HD", "high", "medium", "low", "auto", "ultra", "best", "", None
    ),
    "style": _or_anything("vivid", "natural", "photographic", "anime", "", None),
    "background": _or_anything("transparent", "opaque", "auto", "white", "none", "", None),
    "output_format": _or_anything("png", "jpeg", "jpg", "webp", "PNG", "gif", "svg", "", None),
    "response_format": _or_anything("url", "b64_json", "base64", "json", "", None),
    "output_compression": _or_anything(0, 50, 100, 101, -1, "80", "80%", 0.5, None),
    "moderation": _or_anything("low", "auto", "strict", "off", "", None),
    "user": _or_anything("user-123", "", "ü" * 100, "spoof\udc00", None),
    "model": _or_anything("dall-e-3", "gpt-image-1", "midjourney", "", None),
    "stream": _or_anything(True, False, "yes", None),
    "partial_images": _or_anything(0, 1, 3, 10, -1, None),
    # Other providers' and models' names for things.
    "aspect_ratio": _or_anything("16:9", "1:1", "9:16", "wide", ""),
    "width": _or_anything(1024, 1920, 0, -1, "1024", 10**12),
    "height": _or_anything(1024, 1080, 0, "768"),
    "num_images": _or_anything(1, 3, 100, "2"),
    "negative_prompt": _or_anything("blurry", ""),
    "seed": _or_anything(42, -1, 2**64),
    "resolution": _or_anything("4k", "1080p", "1024x1024"),
    "image": _or_anything("https://example.com/a.png", ""),
}


@st.composite
def llm_arguments(draw: st.DrawFn) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if draw(st.integers(0, 9)):  # the prompt is missing one time in ten
        args["prompt"] = draw(prompts)
    if draw(st.booleans()):  # how many images: the field that fans out (dall-e-3)
        args["n"] = draw(FIELDS["n"])
    chosen = draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=7, unique=True))
    for key in chosen:
        args.setdefault(key, draw(FIELDS[key]))
    extra = draw(st.dictionaries(st.text(max_size=12), json_values, max_size=3))
    for key, value in extra.items():
        args.setdefault(key, value)
    return args


# Always run, whatever the seed: the issue's own examples (a cut emoji escape, a hostile
# proposal for what only the developer sets, a prompt of invisible characters).
ALWAYS = [
    {"prompt": "a fox at dawn \ud83e", "n": 2, "size": "wide\udc00"},
    {"prompt": "a fox", "moderation": "low", "user": "admin", "response_format": "url"},
    {"prompt": "\u200b\u200c\ufeff"},
]


def _with_examples(test: Any) -> Any:
    for args in ALWAYS:
        test = example(args=args)(test)
    return test


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(max_lifetime_s=600) as emu:
        yield emu


@pytest.fixture(scope="module")
def tools(
    emulator: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ImageGenerationTool]]:
    out = tmp_path_factory.mktemp("fuzz-images")
    made = {
        model: ImageGenerationTool(
            model=model,
            api_key=emulator.api_key,
            base_url=emulator.base_url,
            output_dir=str(out / model),
            max_retries=0,  # nothing here should fail; a failure must show, not be retried
            timeout=30.0,
        )
        for model in MODELS
    }
    yield made
    for tool in made.values():
        tool.close()


# --- checks -----------------------------------------------------------------------------------


def _check(message: Any, emulator: Emulator, model: str, args: dict[str, Any]) -> None:
    assert isinstance(message, ToolMessage), (type(message), args)
    assert message.status in ("success", "error"), args
    assert message.content, args
    for request in emulator.received_requests:
        body = request.effective_body
        assert is_valid(body), (model, args, body, validate_request(body))
        assert not set(body) & set(DEVELOPER_FIELDS), (model, args, body)
    stats = emulator.stats()
    assert set(stats.responses_by_status) <= {200}, (stats.responses_by_status, args)
    if message.status == "success":
        # Nothing lost: every image the server made came back (and was saved for b64).
        assert len(message.artifact.images) == stats.images_produced, args
        assert stats.images_produced >= 1
    else:
        # An error message names a problem with the arguments; nothing was asked of the API
        # (a valid request always succeeds here).
        assert stats.generation_requests == 0, (message.content, args)


SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("model", MODELS)
@settings(SETTINGS, max_examples=SYNC_EXAMPLES)
@_with_examples
@given(args=llm_arguments())
def test_invoke_never_raises_and_sends_only_valid_requests(
    model: str,
    args: dict[str, Any],
    emulator: Emulator,
    tools: dict[str, ImageGenerationTool],
) -> None:
    emulator.reset_stats()
    try:
        message = tools[model].invoke(tool_call(args))
    except Exception as exc:  # noqa: BLE001 - the property under test
        pytest.fail(f"{type(exc).__name__} raised out of invoke for {model} {args!r}: {exc}")
    _check(message, emulator, model, args)


@pytest.mark.parametrize("model", MODELS)
@settings(SETTINGS, max_examples=ASYNC_EXAMPLES)
@_with_examples
@given(args=llm_arguments())
def test_ainvoke_never_raises_and_sends_only_valid_requests(
    model: str,
    args: dict[str, Any],
    emulator: Emulator,
    tools: dict[str, ImageGenerationTool],
) -> None:
    tool = tools[model]
    emulator.reset_stats()

    async def call() -> Any:
        try:
            return await tool.ainvoke(tool_call(args))
        finally:
            await tool.aclose()  # this loop's connections end with it

    try:
        message = asyncio.run(call())
    except Exception as exc:  # noqa: BLE001 - the property under test
        pytest.fail(f"{type(exc).__name__} raised out of ainvoke for {model} {args!r}: {exc}")
    _check(message, emulator, model, args)


def test_generated_files_are_complete(tools: dict[str, ImageGenerationTool]) -> None:
    """After the fuzzing, output directories hold whole images only (no ``.part``)."""
    for tool in tools.values():
        directory = Path(tool.output_dir)
        if directory.exists():
            assert not [p for p in directory.rglob("*") if p.name.endswith(".part")]

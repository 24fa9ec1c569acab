"""The result cache through the tools, live against the loopback emulator.

A second identical call sends nothing (the emulator counts every HTTP request) and answers
with the same images, marked as cached and costing 0; a changed parameter, ``regenerate``,
an expired entry, a gone image or an expired server URL is a miss that sends the request
again. Both backends (``InMemoryImageCache``, ``SqliteImageCache``), local and S3 storage
(moto on loopback, ``tests/s3_server.py``: signed links are signed again on a hit), edits
(the key covers the input images) and failures (never cached).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from langchain_core.messages import ToolMessage

from langchain_imagegen import ImageGenerationResult, ImageGenerationTool
from langchain_imagegen.budget import InMemoryBudget
from langchain_imagegen.cache import ImageCache, InMemoryImageCache, SqliteImageCache
from langchain_imagegen.edit_tool import ImageEditTool
from langchain_imagegen.handles import image_handle
from tests.emulator import Fault, encode_image
from tests.integration_tests.conftest import LIVE, Target
from tests.integration_tests.test_tool import call, failed, succeeded
from tests.s3_server import S3_LIVE, S3Bucket

pytestmark = [*LIVE, *S3_LIVE]

MODES = ["invoke", "ainvoke"]
BACKENDS = ["memory", "sqlite"]
ARGS = {"prompt": "a paper boat", "quality": "low", "size": "1024x1024"}
CACHED_LINE = (
    "From the cache: this exact request was answered before; nothing was generated or charged."
)


class Clock:
    """A clock the caches read instead of the time of day."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class WatchedCache(InMemoryImageCache):
    """An in-memory cache that notes the keys put and deleted."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.puts: list[str] = []
        self.deleted: list[str] = []

    def put(self, key: str, result: Mapping[str, Any], *, ttl_s: float | None) -> None:
        self.puts.append(key)
        super().put(key, result, ttl_s=ttl_s)

    def delete(self, key: str) -> None:
        self.deleted.append(key)
        super().delete(key)


CacheFactory = Callable[..., ImageCache]


@pytest.fixture(params=BACKENDS)
def make_cache(request: pytest.FixtureRequest, tmp_path: Path) -> CacheFactory:
    """Either backend; a SQLite cache is one file under the test's directory."""

    def make(clock: Callable[[], float] | None = None) -> ImageCache:
        extra: dict[str, Any] = {} if clock is None else {"clock": clock}
        if request.param == "memory":
            return InMemoryImageCache(**extra)
        return SqliteImageCache(tmp_path / "cache" / "results.sqlite3", **extra)

    return make


@pytest.fixture
def make_tool(target: Target, made: list[ImageGenerationTool], tmp_path: Path) -> Any:
    def make(model: str = "gpt-image-1", **kwargs: Any) -> ImageGenerationTool:
        kwargs.setdefault("output_dir", str(tmp_path / "images"))
        kwargs.setdefault("base_url", target.base_url)
        kwargs.setdefault("max_retries", 0)
        tool = ImageGenerationTool(model=model, **kwargs)
        made.append(tool)
        return tool

    return make


def fresh(message: ToolMessage) -> tuple[str, ImageGenerationResult]:
    """A result that was generated now: costed, not marked as cached."""
    text, result = succeeded(message)
    assert not result.cached
    assert result.cost_usd is not None
    assert result.cost_usd > 0
    assert CACHED_LINE not in text
    assert "Cost: about $" in text
    return text, result


def from_cache(
    message: ToolMessage, original: ImageGenerationResult
) -> tuple[str, ImageGenerationResult]:
    """A result answered from the cache: ``original``'s images, marked cached, costing 0."""
    text, result = succeeded(message)
    assert result.cached
    assert result.cost_usd == 0
    assert result.cost_basis == "cache"
    assert CACHED_LINE in text.splitlines()
    assert "Cost:" not in text
    assert [image.sha256 for image in result.images] == [i.sha256 for i in original.images]
    assert [image.handle for image in result.images] == [i.handle for i in original.images]
    assert [image.uri for image in result.images] == [i.uri for i in original.images]
    assert [image.path for image in result.images] == [i.path for i in original.images]
    assert result.prompt == original.prompt
    assert [r.body for r in result.requests] == [r.body for r in original.requests]
    return text, result


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: str | None) -> str:
    """The SHA-256 of a saved image's file."""
    assert path is not None
    return sha(Path(path).read_bytes())


def remove(path: str | None) -> None:
    assert path is not None
    Path(path).unlink()


# --- hits and misses -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_second_identical_call_sends_nothing_and_returns_the_same_images(
    mode: str, target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    tool = make_tool(cache=make_cache())

    _, first = fresh(await call(mode, tool, ARGS))
    calls = target.http_calls()
    _, second = from_cache(await call(mode, tool, ARGS), first)

    assert calls == 1
    assert target.http_calls() == 1  # nothing sent the second time
    for image in second.images:
        assert file_sha(image.path) == image.sha256


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_configured_alike_shares_the_cache(
    mode: str, target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    cache = make_cache()
    first_tool = make_tool(cache=cache)
    other_tool = make_tool(cache=cache, api_key="sk-another-key-same-endpoint")

    _, first = fresh(await call(mode, first_tool, ARGS))
    from_cache(await call(mode, other_tool, ARGS), first)

    assert target.http_calls() == 1  # the key holds no credential


CHANGES = [
    pytest.param({"size": "1024x1536"}, id="size"),
    pytest.param({"quality": "medium"}, id="quality"),
    pytest.param({"prompt": "a paper boat!"}, id="prompt"),
    pytest.param({"n": 2}, id="n"),
    pytest.param({"output_format": "webp"}, id="output_format"),
]


@pytest.mark.parametrize("change", CHANGES)
async def test_a_changed_parameter_misses(
    change: dict[str, Any], target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    tool = make_tool(cache=make_cache())

    _, first = fresh(await call("ainvoke", tool, ARGS))
    _, changed = fresh(await call("ainvoke", tool, {**ARGS, **change}))
    from_cache(await call("ainvoke", tool, ARGS), first)  # the first one is still there

    assert target.http_calls() == 2
    assert {i.sha256 for i in changed.images}.isdisjoint(i.sha256 for i in first.images)
    sent = [request.body for request in target.requests()]
    assert sent[1] == {**sent[0], **change}


async def test_another_model_or_endpoint_misses(
    target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    cache = make_cache()
    one = make_tool("gpt-image-1", cache=cache)
    other_model = make_tool("gpt-image-1.5", cache=cache)
    other_route = make_tool("gpt-image-1", cache=cache, default_query={"tenant": "b"})

    for tool in (one, other_model, other_route):
        fresh(await call("ainvoke", tool, ARGS))

    assert target.http_calls() == 3


@pytest.mark.parametrize("asynchronous", [False, True], ids=["generate", "agenerate"])
async def test_regenerate_bypasses_the_cache_and_replaces_the_entry(
    asynchronous: bool, target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    tool = make_tool(cache=make_cache())

    async def generate(**kwargs: Any) -> ImageGenerationResult:
        if asynchronous:
            return await tool.agenerate(ARGS, **kwargs)
        return tool.generate(ARGS, **kwargs)

    first = await generate()
    again = await generate(regenerate=True)
    later = await generate()

    assert target.http_calls() == 2
    assert not first.cached
    assert not again.cached
    assert again.cost_usd is not None
    assert again.cost_usd > 0
    assert [i.sha256 for i in again.images] != [i.sha256 for i in first.images]
    assert later.cached
    assert [i.sha256 for i in later.images] == [i.sha256 for i in again.images]


@pytest.mark.parametrize("mode", MODES)
async def test_an_expired_entry_misses(
    mode: str, target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    clock = Clock()
    tool = make_tool(cache=make_cache(clock), cache_ttl=60)

    _, first = fresh(await call(mode, tool, ARGS))
    clock.now += 59.5
    from_cache(await call(mode, tool, ARGS), first)
    clock.now += 1.0  # 60.5 s after it was stored
    _, regenerated = fresh(await call(mode, tool, ARGS))
    clock.now += 30
    from_cache(await call(mode, tool, ARGS), regenerated)  # stored again, for 60 s more

    assert target.http_calls() == 2


async def test_a_short_real_ttl_expires(target: Target, make_tool: Any, tmp_path: Path) -> None:
    import asyncio

    tool = make_tool(cache=SqliteImageCache(tmp_path / "ttl.sqlite3"), cache_ttl=0.3)

    _, first = fresh(await call("ainvoke", tool, ARGS))
    from_cache(await call("ainvoke", tool, ARGS), first)
    await asyncio.sleep(0.4)
    fresh(await call("ainvoke", tool, ARGS))

    assert target.http_calls() == 2


@pytest.mark.parametrize("mode", MODES)
async def test_a_deleted_image_file_misses_and_its_entry_is_removed(
    mode: str, target: Target, make_tool: Any
) -> None:
    cache = WatchedCache()
    tool = make_tool(cache=cache)

    _, first = fresh(await call(mode, tool, ARGS))
    (image,) = first.images
    remove(image.path)
    _, second = fresh(await call(mode, tool, ARGS))
    third = await call(mode, tool, ARGS)

    assert target.http_calls() == 2
    (key,) = set(cache.puts)
    assert cache.deleted == [key]  # the stale entry went, then the new result was stored
    (new,) = second.images
    assert file_sha(new.path) == new.sha256
    from_cache(third, second)


@pytest.mark.parametrize("mode", MODES)
async def test_an_expired_server_url_misses(
    mode: str, target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    """dall-e-3 answers with URLs (kept as URLs: ``download_urls`` is off) that expire; a
    cached result whose URL has expired is a miss."""
    emulator = target.emulator
    tool = make_tool("dall-e-3", cache=make_cache())
    args = {"prompt": "a fox", "size": "1024x1024"}
    emulator.url_ttl_s = -60.0  # URLs already past their `se=` expiry
    try:
        _, expired = fresh(await call(mode, tool, args))
    finally:
        emulator.url_ttl_s = 3600.0
    (image,) = expired.images
    assert image.url is not None
    assert image.expires_at is not None
    assert image.expires_at < dt.datetime.now(dt.timezone.utc)

    _, valid = fresh(await call(mode, tool, args))  # a miss: sent again
    from_cache(await call(mode, tool, args), valid)  # a URL still valid is a hit

    assert len(target.requests()) == 2


# --- what is never cached --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_failed_call_is_not_cached(
    mode: str, target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    tool = make_tool(cache=make_cache())
    target.push_fault(Fault.server_error())

    error = failed(await call(mode, tool, ARGS))
    _, working = fresh(await call(mode, tool, ARGS))
    from_cache(await call(mode, tool, ARGS), working)

    assert "HTTP 500" in error
    assert target.http_calls() == 2


@pytest.mark.parametrize("mode", MODES)
async def test_a_refused_call_is_not_cached(
    mode: str, target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    tool = make_tool(cache=make_cache())

    error = failed(await call(mode, tool, {**ARGS, "prompt": "[[fault:moderation_blocked]] x"}))
    target.emulator.reset_stats()
    failed(await call(mode, tool, {**ARGS, "prompt": "[[fault:moderation_blocked]] x"}))

    assert "safety" in error.lower() or "moderation" in error.lower()
    assert target.http_calls() == 1  # asked again, not answered from the cache


@pytest.mark.parametrize("mode", MODES)
async def test_a_partly_failed_fan_out_is_not_cached(
    mode: str, target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    tool = make_tool("dall-e-3", cache=make_cache())
    args = {"prompt": "a fox", "n": 2, "size": "1024x1024"}
    target.push_fault(Fault.server_error())

    _, partial = succeeded(await call(mode, tool, args))
    assert len(partial.images) == 1
    assert partial.errors
    again = await call(mode, tool, args)

    assert len(target.requests()) == 4  # asked again for both images
    _, result = succeeded(again)
    assert not result.cached


# --- budgets and the cache -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_hit_costs_the_budget_nothing(
    mode: str, target: Target, make_tool: Any, make_cache: CacheFactory
) -> None:
    estimate = (272 * 40 + 3 * 5) / 1_000_000  # docs/cost.md#prices, a 12-character prompt
    budget = InMemoryBudget(estimate * 1.5)  # room for one call
    tool = make_tool(cache=make_cache(), budget=budget)

    _, first = fresh(await call(mode, tool, ARGS))
    spent = budget.spent
    from_cache(await call(mode, tool, ARGS), first)  # not refused: nothing to pay
    refused = failed(await call(mode, tool, {**ARGS, "prompt": "a paper boat, again"}))

    assert first.estimated_cost_usd == pytest.approx(estimate)
    assert spent == pytest.approx(first.cost_usd)
    assert budget.spent == spent
    assert budget.reserved == 0
    assert refused.startswith("refused before sending")
    assert target.http_calls() == 1


# --- edits ------------------------------------------------------------------------------------


@pytest.fixture
def make_edit(target: Target, made: list[ImageGenerationTool], tmp_path: Path) -> Any:
    def make(model: str = "gpt-image-1", **kwargs: Any) -> ImageEditTool:
        tool = ImageEditTool(
            model=model,
            base_url=target.base_url,
            output_dir=str(tmp_path / "images"),
            max_retries=0,
            **kwargs,
        )
        made.append(tool)
        return tool

    return make


def seed(tool: ImageGenerationTool, tag: str, *, transparent: bool = False) -> str:
    saved = tool.store.save(encode_image("png", 64, 64, tag=tag, transparent=transparent))
    return image_handle(saved.sha256)


@pytest.mark.parametrize("mode", MODES)
async def test_an_identical_edit_is_answered_from_the_cache(
    mode: str, target: Target, make_edit: Any, make_cache: CacheFactory
) -> None:
    tool = make_edit(cache=make_cache())
    cat, dog = seed(tool, "cat"), seed(tool, "dog")
    mask = seed(tool, "mask", transparent=True)
    args = {"prompt": "give it a hat", "images": [cat]}

    _, first = fresh(await call(mode, tool, args))
    _, hit = from_cache(await call(mode, tool, args), first)
    fresh(await call(mode, tool, {**args, "images": [dog]}))  # another input image
    fresh(await call(mode, tool, {**args, "images": [cat, dog]}))  # one more image
    fresh(await call(mode, tool, {**args, "mask": mask}))  # a mask
    fresh(await call(mode, tool, {**args, "prompt": "give it a scarf"}))

    assert hit.inputs == [cat]
    assert hit.to_text().startswith(f"Edited {cat} into 1 image with gpt-image-1.")
    edits = [request for request in target.requests() if request.is_edit]
    assert len(edits) == 5
    assert target.http_calls() == 5


async def test_an_edit_of_other_bytes_under_the_same_name_misses(
    target: Target, make_edit: Any, make_cache: CacheFactory, tmp_path: Path
) -> None:
    """The key holds the input images' content hashes, not their names: a file the LLM may
    name by path (``allowed_dirs``) that changed in between is edited again."""
    allowed = tmp_path / "inputs"
    allowed.mkdir()
    picture = allowed / "photo.png"
    tool = make_edit(cache=make_cache(), allowed_dirs=[str(allowed)])
    args = {"prompt": "give it a hat", "images": [str(picture)]}

    picture.write_bytes(encode_image("png", 64, 64, tag="first"))
    _, first = fresh(await call("ainvoke", tool, args))
    from_cache(await call("ainvoke", tool, args), first)
    picture.write_bytes(encode_image("png", 64, 64, tag="second"))
    _, second = fresh(await call("ainvoke", tool, args))

    assert second.inputs != first.inputs
    assert target.http_calls() == 2


# --- S3 storage ---------------------------------------------------------------------------------

PREFIX = "cache/run-1"


@pytest.fixture
def s3_tool(target: Target, s3_bucket: S3Bucket, made: list[ImageGenerationTool]) -> Any:
    def make(**kwargs: Any) -> ImageGenerationTool:
        tool = ImageGenerationTool(
            model="gpt-image-1",
            base_url=target.base_url,
            output_dir=f"{s3_bucket.url}/{PREFIX}",
            storage_options=s3_bucket.storage_options,
            max_retries=0,
            **kwargs,
        )
        made.append(tool)
        return tool

    return make


def _link_expiry(link: str) -> dt.datetime:
    """When a presigned S3 link expires, as its query says (``Expires``, signature v2, as
    s3fs signs against the test server)."""
    epoch = int(parse_qs(urlsplit(link).query)["Expires"][0])
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


@pytest.mark.parametrize("mode", MODES)
async def test_s3_hit_signs_the_links_again(
    mode: str, target: Target, s3_tool: Any, s3_bucket: S3Bucket, make_cache: CacheFactory
) -> None:
    cache = make_cache()
    short = s3_tool(cache=cache, link_expires_in=600)
    long = s3_tool(cache=cache, link_expires_in=7200)

    started = dt.datetime.now(dt.timezone.utc)
    _, first = fresh(await call(mode, short, ARGS))
    text, hit = from_cache(await call(mode, long, ARGS), first)
    ended = dt.datetime.now(dt.timezone.utc)

    assert target.http_calls() == 1
    (before,), (after,) = first.images, hit.images
    assert before.link is not None
    assert after.link is not None
    assert before.link_expires_at is not None
    assert after.link_expires_at is not None
    # Signed again on the hit, by the tool that answered, for its own link_expires_in.
    assert after.link != before.link
    assert after.link in text
    # The store notes the expiry from its clock reading just before signing: never later
    # than the link really expires, and both within the calls (however long a loaded
    # machine made them take; whole seconds in the link).
    second = dt.timedelta(seconds=1)
    for image, expires_in in ((before, 600), (after, 7200)):
        assert image.link is not None
        assert image.link_expires_at is not None
        window = (
            started + dt.timedelta(seconds=expires_in) - second,
            ended + dt.timedelta(seconds=expires_in) + second,
        )
        assert window[0] <= image.link_expires_at <= _link_expiry(image.link) <= window[1]
    assert after.link_expires_at - before.link_expires_at >= dt.timedelta(seconds=7200 - 600)
    assert after.link_expires_at - dt.datetime.now(dt.timezone.utc) > dt.timedelta(seconds=7100)
    assert after.uri == before.uri
    assert after.uri is not None
    objects = s3_bucket.objects(PREFIX)
    assert len(objects) == 1  # nothing new was stored
    async with httpx.AsyncClient() as client:
        response = await client.get(after.link)
    assert response.status_code == 200
    assert sha(response.content) == after.sha256


@pytest.mark.parametrize("mode", MODES)
async def test_s3_deleted_object_misses(
    mode: str,
    target: Target,
    s3_tool: Any,
    s3_bucket: S3Bucket,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = WatchedCache()
    tool = s3_tool(cache=cache)

    _, first = fresh(await call(mode, tool, ARGS))
    (image,) = first.images
    assert image.uri is not None
    s3_bucket.filesystem().rm(image.uri.removeprefix("s3://"))
    with caplog.at_level(logging.INFO, logger="langchain_imagegen.accounting"):
        _, second = fresh(await call(mode, tool, ARGS))
    from_cache(await call(mode, tool, ARGS), second)

    assert target.http_calls() == 2
    assert len(cache.deleted) == 1
    assert any("gone" in record.getMessage() for record in caplog.records)
    (new,) = second.images
    assert new.uri is not None
    assert set(s3_bucket.objects(PREFIX)) == {new.uri.removeprefix(f"{s3_bucket.url}/")}

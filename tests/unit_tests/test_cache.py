"""The result cache on its own (langchain_imagegen.cache): keys, what is stored, the
in-memory and SQLite backends (TTL, LRU, threads, processes, corrupt rows, failures)."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_imagegen import cache as cache_module
from langchain_imagegen.cache import (
    ImageCache,
    InMemoryImageCache,
    SqliteImageCache,
    cache_key,
    stored_result,
)
from langchain_imagegen.errors import ConfigurationError
from langchain_imagegen.result import GeneratedImage, ImageGenerationResult, RequestRecord
from tests.conftest import TINY_PNG_B64

ENDPOINT = "https://api.openai.com/v1/images/generations"
BODY = {"prompt": "a lighthouse at dawn", "model": "gpt-image-2", "size": "1024x1024", "n": 1}
SHA_A = hashlib.sha256(b"image a").hexdigest()
SHA_B = hashlib.sha256(b"image b").hexdigest()
SHA_MASK = hashlib.sha256(b"mask").hexdigest()
CACHE_LOGGER = "langchain_imagegen.cache"


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def result_dict(number: int = 1) -> dict[str, Any]:
    """A result as the tool makes one, with a remote image (uri, signed link) and a local one."""
    sha = hashlib.sha256(f"image {number}".encode()).hexdigest()
    result = ImageGenerationResult(
        model="gpt-image-2",
        prompt=f"prompt {number}",
        images=[
            GeneratedImage(
                uri=f"s3://bucket/images/{sha[:16]}.png",
                link=f"https://bucket.s3.amazonaws.com/images/{sha[:16]}.png?X-Amz-Signature=abc",
                link_expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc),
                sha256=sha,
                mime_type="image/png",
                size="1024x1024",
                revised_prompt="a lighthouse at dawn, watercolour — ünïcode",
            ),
            GeneratedImage(path=f"/tmp/images/{sha[:16]}.png", uri=f"/tmp/images/{sha[:16]}.png"),
        ],
        images_requested=2,
        requests=[RequestRecord(body={**BODY, "response_format": "b64_json"}, images=2)],
        usage={"input_tokens": 13, "output_tokens": 8288, "total_tokens": 8301},
    )
    return result.model_dump(mode="json")


# --- cache_key -----------------------------------------------------------------------------


def key(**changes: Any) -> str:
    arguments: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "model": "gpt-image-2",
        "requests": [BODY],
        "inputs": (),
    }
    arguments.update(changes)
    return cache_key(**arguments)


def test_key_is_the_sha256_of_the_documented_canonical_json() -> None:
    document = {
        "v": 2,
        "endpoint": ENDPOINT,
        "model": "gpt-image-2",
        "requests": [BODY],
        "inputs": [SHA_A],
        "storage": "",
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(canonical.encode()).hexdigest()

    assert key(inputs=[SHA_A]) == expected
    assert key(inputs=[SHA_A]) == key(inputs=(SHA_A,))  # stable, whatever sequence type


def test_key_ignores_the_order_of_keys_in_a_body() -> None:
    reordered = dict(reversed(list(BODY.items())))
    assert list(reordered) != list(BODY)
    assert key(requests=[reordered]) == key()
    nested = {"prompt": "p", "extra": {"b": 1, "a": [1, {"y": 2, "x": 1}]}}
    nested_reordered = {"extra": {"a": [1, {"x": 1, "y": 2}], "b": 1}, "prompt": "p"}
    assert key(requests=[nested]) == key(requests=[nested_reordered])


@pytest.mark.parametrize(
    "changes",
    [
        {"endpoint": "https://gateway.example/v1/images/generations"},
        {"endpoint": ENDPOINT + "?api-version=2025-04-01-preview"},
        {"endpoint": "https://api.openai.com/v1/images/edits"},
        {"model": "gpt-image-1"},
        {"requests": [{**BODY, "size": "1536x1024"}]},
        {"requests": [{**BODY, "prompt": "a lighthouse at dusk"}]},
        {"requests": [{**BODY, "n": 2}]},
        {"requests": [{**BODY, "quality": "high"}]},  # a field added
        {"requests": [{k: v for k, v in BODY.items() if k != "size"}]},  # a field dropped
        {"requests": [{**BODY, "n": 1.0}]},  # 1.0 is not 1 in JSON text
        {"requests": [BODY, BODY]},  # a fan-out
        {"requests": []},
        {"inputs": [SHA_A]},
        {"inputs": [SHA_A, SHA_B]},
        {"inputs": [SHA_A, SHA_MASK]},  # a mask
        {"storage": "s3://bucket/images"},  # where the results' images are kept
    ],
    ids="-".join,
)
def test_key_changes_with_every_field(changes: dict[str, Any]) -> None:
    assert key(**changes) != key()


def test_key_depends_on_the_order_of_requests_and_inputs() -> None:
    first, second = {**BODY, "n": 4}, {**BODY, "n": 2}
    assert key(requests=[first, second]) != key(requests=[second, first])
    assert key(inputs=[SHA_A, SHA_B]) != key(inputs=[SHA_B, SHA_A])


def test_key_leaves_credentials_in_the_url_out() -> None:
    with_userinfo = "https://user:sk-secret-1234@api.openai.com/v1/images/generations"
    assert key(endpoint=with_userinfo) == key()


def test_key_reads_input_digests_in_any_case() -> None:
    assert key(inputs=[SHA_A.upper()]) == key(inputs=[SHA_A])


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"requests": BODY}, TypeError, "list of request bodies"),
        ({"requests": "prompt"}, TypeError, "list of request bodies"),
        ({"requests": [("prompt", "p")]}, TypeError, "not tuple"),
        ({"inputs": SHA_A}, TypeError, "list of SHA-256"),
        ({"inputs": ["img_0123456789abcdef"]}, ValueError, "SHA-256 hex digests"),
        ({"requests": [{"image": b"\x89PNG"}]}, ValueError, "plain JSON data"),
        ({"requests": [{"strength": float("nan")}]}, ValueError, "plain JSON data"),
    ],
)
def test_key_refuses_what_it_cannot_hash_faithfully(
    changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        key(**changes)


# --- stored_result -------------------------------------------------------------------------


def test_stored_result_is_a_json_copy_keeping_links_and_uris() -> None:
    result = result_dict()
    stored = stored_result(result)

    assert stored == result
    stored["images"][0]["link"] = "changed"
    assert result["images"][0]["link"] != "changed"  # a deep copy
    assert (
        ImageGenerationResult.from_artifact(stored_result(result)).images[0].uri
        == (result["images"][0]["uri"])
    )


PNG = base64.b64decode(TINY_PNG_B64)


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        (lambda r: r["images"][0].update(b64_json=TINY_PNG_B64), "result.images[0].b64_json"),
        (
            lambda r: r["images"][0].update(url="data:image/png;base64," + TINY_PNG_B64),
            "result.images[0].url",
        ),
        (lambda r: r["images"][1].update(url=TINY_PNG_B64), "result.images[1].url"),
        (lambda r: r["requests"][0].update(partial_image_b64="AAAA"), "partial_image_b64"),
        (lambda r: r.update(extra={"raw": PNG}), "result.extra.raw"),
        (  # raw base64 of a JPEG, deep in a list
            lambda r: r.update(
                extra=[[base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(40)).decode()]]
            ),
            "result.extra[0][0]",
        ),
    ],
)
def test_stored_result_refuses_image_data(
    tamper: Callable[[dict[str, Any]], Any], where: str
) -> None:
    result = result_dict()
    tamper(result)
    with pytest.raises(ValueError, match="never their bytes") as caught:
        stored_result(result)
    assert where in str(caught.value)
    assert TINY_PNG_B64 not in str(caught.value)  # the payload is named, not quoted


def test_stored_result_accepts_text_that_merely_looks_like_base64() -> None:
    result = result_dict()
    result["prompt"] = "Lighthouse" * 40  # base64 alphabet, not an image
    result["images"][0]["revised_prompt"] = "b64_json is not a key here"
    result["requests"][0]["body"]["response_format"] = "b64_json"
    result["images"][0]["b64_json"] = None  # a key with nothing in it
    assert stored_result(result) == result


def test_stored_result_refuses_what_is_not_json() -> None:
    result = result_dict()
    result["created"] = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(ValueError, match=r"model_dump\(mode=\"json\"\)"):
        stored_result(result)
    with pytest.raises(TypeError, match="result dict"):
        stored_result([result])  # type: ignore[arg-type]


# --- both backends -------------------------------------------------------------------------

CacheFactory = Callable[..., ImageCache]


@pytest.fixture(params=["memory", "sqlite"])
def make_cache(request: pytest.FixtureRequest, tmp_path: Path) -> CacheFactory:
    def make(clock: Callable[[], float] | None = None) -> ImageCache:
        clock = clock or FakeClock()
        if request.param == "memory":
            return InMemoryImageCache(clock=clock)
        return SqliteImageCache(tmp_path / "cache.sqlite3", clock=clock)

    return make


def test_backends_are_image_caches(tmp_path: Path) -> None:
    assert isinstance(InMemoryImageCache(), ImageCache)
    assert isinstance(SqliteImageCache(tmp_path / "c.sqlite3"), ImageCache)


def test_get_returns_what_was_put_as_a_fresh_copy(make_cache: CacheFactory) -> None:
    cache = make_cache()
    result = result_dict()
    assert cache.get("k") is None

    cache.put("k", result, ttl_s=None)
    first = cache.get("k")
    assert first == result
    assert first is not None
    first["images"].clear()
    assert cache.get("k") == result

    cache.put("k", result_dict(2), ttl_s=None)  # replaced
    assert cache.get("k") == result_dict(2)
    cache.delete("k")
    assert cache.get("k") is None
    cache.delete("k")  # absent: fine


def test_ttl_expiry_is_a_miss_and_none_never_expires(make_cache: CacheFactory) -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    cache.put("short", result_dict(1), ttl_s=60)
    cache.put("forever", result_dict(2), ttl_s=None)

    clock.now += 59.5
    assert cache.get("short") == result_dict(1)
    clock.now += 0.5  # exactly at expiry
    assert cache.get("short") is None
    clock.now -= 10  # the expired entry was removed, not hidden
    assert cache.get("short") is None

    clock.now += 10 * 365 * 86400
    assert cache.get("forever") == result_dict(2)


@pytest.mark.parametrize("ttl_s", [0, -1, float("nan"), "60", True])
def test_put_refuses_a_ttl_that_is_not_a_positive_number(
    make_cache: CacheFactory, ttl_s: Any
) -> None:
    cache = make_cache()
    with pytest.raises(ValueError, match="ttl_s must be a number of seconds above 0"):
        cache.put("k", result_dict(), ttl_s=ttl_s)
    assert cache.get("k") is None


def test_put_refuses_base64_and_stores_nothing(make_cache: CacheFactory) -> None:
    cache = make_cache()
    result = result_dict()
    result["images"][0]["b64_json"] = TINY_PNG_B64
    with pytest.raises(ValueError, match="never their bytes"):
        cache.put("k", result, ttl_s=None)
    assert cache.get("k") is None


async def test_async_variants(make_cache: CacheFactory) -> None:
    clock = FakeClock()
    cache = make_cache(clock)
    assert await cache.aget("k") is None
    await cache.aput("k", result_dict(), ttl_s=5)
    assert await cache.aget("k") == result_dict()
    clock.now += 5
    assert await cache.aget("k") is None
    await cache.aput("k", result_dict(), ttl_s=None)
    await cache.adelete("k")
    assert await cache.aget("k") is None


class DictCache(ImageCache):
    """A user's own backend: only the sync methods, the async ones inherited."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.threads: set[int] = set()

    def get(self, key: str) -> dict[str, Any] | None:
        self.threads.add(threading.get_ident())
        return self.entries.get(key)

    def put(self, key: str, result: Any, *, ttl_s: float | None) -> None:
        self.threads.add(threading.get_ident())
        self.entries[key] = stored_result(result)

    def delete(self, key: str) -> None:
        self.entries.pop(key, None)


async def test_a_plugged_backend_gets_async_variants_run_in_a_thread() -> None:
    cache = DictCache()
    await cache.aput("k", result_dict(), ttl_s=None)
    assert await cache.aget("k") == result_dict()
    await cache.adelete("k")
    assert await cache.aget("k") is None
    assert threading.get_ident() not in cache.threads


def test_a_backend_without_the_sync_methods_cannot_be_made() -> None:
    class Incomplete(ImageCache):
        def get(self, key: str) -> dict[str, Any] | None:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


# --- InMemoryImageCache --------------------------------------------------------------------


def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache = InMemoryImageCache(max_entries=2)
    cache.put("a", result_dict(1), ttl_s=None)
    cache.put("b", result_dict(2), ttl_s=None)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", result_dict(3), ttl_s=None)

    assert cache.get("b") is None
    assert cache.get("a") == result_dict(1)
    assert cache.get("c") == result_dict(3)
    assert len(cache) == 2


def test_memory_cache_evicts_expired_entries_before_live_ones() -> None:
    clock = FakeClock()
    cache = InMemoryImageCache(max_entries=2, clock=clock)
    cache.put("old-live", result_dict(1), ttl_s=None)
    cache.put("new-expiring", result_dict(2), ttl_s=10)
    clock.now += 10
    cache.put("c", result_dict(3), ttl_s=None)

    assert cache.get("old-live") == result_dict(1)  # LRU alone would have dropped it
    assert cache.get("c") == result_dict(3)
    assert len(cache) == 2


@pytest.mark.parametrize("max_entries", [0, -1, 1.5, True])
def test_memory_cache_refuses_a_bad_size(max_entries: Any) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        InMemoryImageCache(max_entries=max_entries)


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """``work(0)`` ... ``work(count - 1)`` at once in ``count`` threads; their errors raised."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        for future in [pool.submit(work, number) for number in range(count)]:
            future.result(timeout=120)


def test_memory_cache_across_threads() -> None:
    # Room for every entry, so each thread reads back exactly what it wrote.
    cache = InMemoryImageCache(max_entries=8 * 50)

    def work(number: int) -> None:
        for i in range(50):
            cache.put(f"{number}-{i}", result_dict(i), ttl_s=None)
            assert cache.get(f"{number}-{i}") == result_dict(i)

    run_threads(8, work)
    assert len(cache) == 8 * 50
    assert all(cache.get(f"{n}-{i}") == result_dict(i) for n in range(8) for i in range(50))


def test_memory_cache_evicts_safely_across_threads() -> None:
    # Threads outrun the capacity: a thread preempted between its put and its get may
    # find its entry evicted by the others, but never someone else's value, and the
    # cache never holds more than its bound.
    cache = InMemoryImageCache(max_entries=100)

    def work(number: int) -> None:
        for i in range(50):
            cache.put(f"{number}-{i}", result_dict(i), ttl_s=None)
            assert cache.get(f"{number}-{i}") in (None, result_dict(i))
            assert len(cache) <= 100

    run_threads(8, work)
    assert len(cache) == 100


# --- SqliteImageCache ----------------------------------------------------------------------


def rows(path: Path) -> dict[str, tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        found = connection.execute(
            "SELECT key, expires_at, created_at, value FROM image_results"
        ).fetchall()
    return {row[0]: row[1:] for row in found}


def test_sqlite_file_layout(tmp_path: Path) -> None:
    clock = FakeClock(5_000.0)
    path = tmp_path / "cache.sqlite3"
    cache = SqliteImageCache(path, clock=clock)
    cache.put("k", result_dict(), ttl_s=30)
    cache.put("forever", result_dict(), ttl_s=None)

    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (1,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        columns = connection.execute("PRAGMA table_info(image_results)").fetchall()
    assert [(c[1], c[2], c[5]) for c in columns] == [
        ("key", "TEXT", 1),
        ("expires_at", "REAL", 0),
        ("created_at", "REAL", 0),
        ("value", "TEXT", 0),
    ]
    stored = rows(path)
    assert stored["k"][:2] == (5_030.0, 5_000.0)
    assert stored["forever"][0] is None
    assert json.loads(stored["k"][2]) == result_dict()
    assert "b64" not in stored["k"][2].replace('"b64_json"', "")  # only the request's value


def test_sqlite_expired_rows_are_purged_lazily(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "cache.sqlite3"
    cache = SqliteImageCache(path, clock=clock)
    cache.put("a", result_dict(1), ttl_s=10)
    cache.put("b", result_dict(2), ttl_s=100)
    clock.now += 10
    assert set(rows(path)) == {"a", "b"}  # nothing removes them on its own

    cache.put("c", result_dict(3), ttl_s=None)
    assert set(rows(path)) == {"b", "c"}  # a put sweeps what has expired

    clock.now += 90
    assert cache.get("b") is None
    assert set(rows(path)) == {"c"}  # a get removes the expired row it found


def test_sqlite_creates_the_directory_and_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "cache.sqlite3"
    cache = SqliteImageCache(path)
    cache.put("k", result_dict(), ttl_s=None)

    assert cache.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for companion in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if companion.exists():
            assert stat.S_IMODE(companion.stat().st_mode) == 0o600, companion
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0


def test_sqlite_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o277)  # would make the file read-only for its owner
    try:
        path = tmp_path / "cache.sqlite3"
        SqliteImageCache(path).put("k", result_dict(), ttl_s=None)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SqliteImageCache(path).get("k") == result_dict()


def test_sqlite_leaves_an_existing_files_permissions_alone(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    path.touch(mode=0o640)
    path.chmod(0o640)
    SqliteImageCache(path).put("k", result_dict(), ttl_s=None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_sqlite_expands_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = SqliteImageCache("~/.cache/langchain-imagegen/cache.sqlite3")
    assert cache.path == tmp_path / ".cache" / "langchain-imagegen" / "cache.sqlite3"
    assert cache.path.exists()
    assert "~" not in repr(cache)


def test_sqlite_path_that_cannot_be_created_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError, match=r"Cannot create the image cache file .*file"):
        SqliteImageCache(blocker / "cache.sqlite3")


def test_sqlite_two_instances_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    first, second = SqliteImageCache(path), SqliteImageCache(path)
    first.put("k", result_dict(1), ttl_s=None)
    assert second.get("k") == result_dict(1)
    second.put("k", result_dict(2), ttl_s=None)
    assert first.get("k") == result_dict(2)
    second.delete("k")
    assert first.get("k") is None


def test_sqlite_across_threads(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    caches = [SqliteImageCache(path), SqliteImageCache(path)]  # threads share one, and two

    def work(number: int) -> None:
        cache = caches[number % 2]
        for i in range(50):
            cache.put(f"{number}-{i}", result_dict(i), ttl_s=3600)
            assert cache.get(f"{number}-{i}") == result_dict(i)
            assert caches[(number + 1) % 2].get(f"{number}-{i}") == result_dict(i)

    run_threads(8, work)
    assert len(rows(path)) == 8 * 50


WRITER = textwrap.dedent(
    """
    import json, sys
    from langchain_imagegen.cache import SqliteImageCache
    cache = SqliteImageCache(sys.argv[1])
    seen = cache.get("from-parent")
    print(json.dumps(seen))
    sys.stdout.flush()
    result = json.loads(sys.argv[2])
    for i in range(int(sys.argv[3])):
        cache.put(f"child-{i}", result, ttl_s=None)
    """
)


def test_sqlite_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    cache = SqliteImageCache(path)
    cache.put("from-parent", result_dict(1), ttl_s=None)
    count = 60

    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), json.dumps(result_dict(2)), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for i in range(count):  # written while the child writes too
        cache.put(f"parent-{i}", result_dict(3), ttl_s=None)
    out, err = child.communicate(timeout=120)

    assert child.returncode == 0, err
    assert "going on without the cache" not in err  # no lock given up
    assert json.loads(out) == result_dict(1)  # the other process read what this one wrote
    assert cache.get(f"child-{count - 1}") == result_dict(2)  # and this one reads its writes
    assert len(rows(path)) == 1 + 2 * count


@pytest.mark.parametrize(
    "value",
    ["{not json", "[1, 2]", '"a string"', "null", b'{"blob": true}', 42],
    ids=["truncated", "list", "string", "null", "blob", "number"],
)
def test_sqlite_corrupt_row_is_a_miss_and_removed(
    tmp_path: Path, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    cache = SqliteImageCache(path)
    cache.put("good", result_dict(), ttl_s=None)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO image_results (key, expires_at, created_at, value) VALUES (?, ?, ?, ?)",
            ("bad", None, 0.0, value),
        )

    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        assert cache.get("bad") is None
    assert "is not a JSON result; removed" in caplog.text
    assert set(rows(path)) == {"good"}
    assert cache.get("good") == result_dict()


def test_sqlite_file_that_is_not_a_database_is_a_miss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(b"this is not a database file, " * 100)
    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        cache = SqliteImageCache(path)
        assert cache.get("k") is None
        cache.put("k", result_dict(), ttl_s=None)
        cache.delete("k")
    assert caplog.text.count("going on without the cache") == 3
    assert "DatabaseError" in caplog.text


def test_sqlite_lock_held_past_the_timeout_skips_the_put(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    cache = SqliteImageCache(path)
    cache.put("k", result_dict(1), ttl_s=None)
    monkeypatch.setattr(cache_module, "_BUSY_TIMEOUT_S", 0.05)

    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's write, never finishing
        with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
            cache.put("k", result_dict(2), ttl_s=None)
            assert cache.get("k") == result_dict(1)  # WAL: reads go on during the write
    finally:
        holder.close()
    assert "storing a result failed (OperationalError: database is locked)" in caplog.text
    cache.put("k", result_dict(2), ttl_s=None)
    assert cache.get("k") == result_dict(2)


def test_sqlite_newer_schema_is_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    SqliteImageCache(path).put("k", result_dict(), ttl_s=None)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 2")

    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        cache = SqliteImageCache(path)
        assert cache.get("k") is None
        cache.put("other", result_dict(), ttl_s=None)
        assert cache.get("other") is None
    assert set(rows(path)) == {"k"}
    assert caplog.text.count("has schema version 2") == 1


@pytest.fixture
def warnings_raised(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        yield caplog


def test_sqlite_warnings_name_no_result_content(
    tmp_path: Path, warnings_raised: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite3"
    cache = SqliteImageCache(path)
    secret_link = result_dict()["images"][0]["link"]
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO image_results (key, expires_at, created_at, value) VALUES (?, ?, ?, ?)",
            ("bad", None, 0.0, json.dumps(secret_link)),  # a string: not a result
        )
    assert cache.get("bad") is None
    assert warnings_raised.records
    assert "X-Amz-Signature" not in warnings_raised.text

"""Remote storage over fsspec without a network: ``memory://`` filesystems and a local
directory through fsspec, fast enough for the unit suite.

The real S3 API (moto's server on loopback) is exercised in
``tests/integration_tests/test_s3_storage.py``; here the filesystems are fsspec's own
in-memory and local ones, and small subclasses of them that sign links, record what a PUT
carried, fail an upload or wait for each other, so every path of
:class:`~langchain_imagegen.storage.RemoteImageStore` and its wiring through the tool runs.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import httpx
import pytest
from fsspec.asyn import AsyncFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolMessage

from langchain_imagegen import generation
from langchain_imagegen.errors import ConfigurationError, StorageError
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.storage import (
    LocalImageStore,
    RemoteImageStore,
    SavedImage,
    decode_b64_image,
    is_url,
    open_store,
)
from langchain_imagegen.tool import EVENT_NAME, ImageGenerationTool
from tests.emulator import encode_image

SECRET = "S3CR3T-storage-value-0123456789"
KEY = "sk-unit-remote-0123456789abcdef"


def png(tag: str) -> bytes:
    return encode_image("png", 8, 8, tag=tag)


# --- filesystems ------------------------------------------------------------------------------


class SigningMemoryFS(MemoryFileSystem):
    """An in-memory "object store" that signs links like s3fs and remembers each PUT's
    keyword arguments. Its own store, so it never sees another test's objects."""

    protocol = ("signmem",)
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    puts: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    sign_error: ClassVar[BaseException | None] = None

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        for protocol in cls.protocol:
            path = path.removeprefix(f"{protocol}://")
        return str(super()._strip_protocol(path))

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        type(self).puts.append((path, kwargs))
        super().pipe_file(path, value, mode=mode)

    def sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        if type(self).sign_error is not None:
            raise type(self).sign_error
        return f"https://signed.example/{self._strip_protocol(path).lstrip('/')}?X-Expires={expiration}"


class S3LikeFS(SigningMemoryFS):
    """Speaks as ``s3``: the store passes s3fs's put_object arguments, and keys are below the
    bucket. Used only as an instance (never registered: s3fs keeps ``s3://``)."""

    protocol = ("s3",)
    root_marker = ""
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    puts: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return path.removeprefix("s3://").strip("/")


class _OwnProtocol(MemoryFileSystem):
    """A memory filesystem under its own protocol name (``memory://`` stays fsspec's)."""

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        for protocol in cls.protocol:
            path = path.removeprefix(f"{protocol}://")
        return str(super()._strip_protocol(path))


class FailingFS(_OwnProtocol):
    """Uploads fail for the payloads in ``refuse`` (or all, if ``refuse`` is empty), with a
    message that echoes a credential, as a careless library might."""

    protocol = ("failmem",)
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    refuse: ClassVar[set[bytes]] = set()

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        if not type(self).refuse or bytes(value) in type(self).refuse:
            raise PermissionError(f"Access Denied for key id {SECRET}")
        super().pipe_file(path, value, mode=mode)


class PickyFS(_OwnProtocol):
    """Refuses every option, quoting it back (as a TypeError from ``__init__`` would)."""

    protocol = ("pickymem",)

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"unexpected options {options}")
        super().__init__()


class GatedFS(_OwnProtocol):
    """Each upload waits until ``parties`` uploads are in flight at once (a barrier):
    uploads made one after the other time out instead."""

    protocol = ("gatedmem",)
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    barrier: ClassVar[threading.Barrier] = threading.Barrier(1)

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        type(self).barrier.wait(timeout=5)
        super().pipe_file(path, value, mode=mode)


class SlowAsyncFS(AsyncFileSystem):  # type: ignore[misc]
    """An async object store (as gcsfs is: speaks as ``gs``) whose uploads take ``delay``
    seconds on its own loop. Used only as an instance, never registered."""

    protocol = ("gs",)
    objects: ClassVar[dict[str, bytes]] = {}
    threads: ClassVar[set[str]] = set()

    def __init__(self, delay: float = 0.3, **options: Any) -> None:
        super().__init__(delay=delay, **options)
        self.delay = delay

    async def _pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kw: Any) -> None:
        type(self).threads.add(threading.current_thread().name)
        await asyncio.sleep(self.delay)
        type(self).objects[path] = bytes(value)


for _fs in (SigningMemoryFS, FailingFS, GatedFS, PickyFS):
    fsspec.register_implementation(_fs.protocol[0], _fs, clobber=True)


@pytest.fixture(autouse=True)
def _fresh_filesystems() -> None:
    for cls in (SigningMemoryFS, S3LikeFS, FailingFS, GatedFS):
        cls.store.clear()
    SigningMemoryFS.puts.clear()
    S3LikeFS.puts.clear()
    SigningMemoryFS.sign_error = None
    FailingFS.refuse = set()
    SlowAsyncFS.objects.clear()


def prefix() -> str:
    return f"bucket/run-{uuid.uuid4().hex[:8]}"


# --- the tool over MockTransport ----------------------------------------------------------------

FILES = "https://files.example"


def images_body(tags: list[str], *, urls: bool = False) -> dict[str, Any]:
    data = [
        {"url": f"{FILES}/{tag}.png"} if urls else {"b64_json": base64.b64encode(png(tag)).decode()}
        for tag in tags
    ]
    return {"created": 1, "data": data}


def server(tags: list[str], *, urls: bool = False) -> Callable[[httpx.Request], httpx.Response]:
    """Answers every generation with the images ``tags`` (n of them: the body's n picks the
    first n) and serves ``FILES/<tag>.png`` as the PNG of that tag."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "files.example":
            tag = request.url.path.strip("/").removesuffix(".png")
            return httpx.Response(200, content=png(tag), headers={"content-type": "image/png"})
        n = int(json.loads(request.content).get("n", 1))
        headers = {"x-request-id": "req_unit_1"}
        return httpx.Response(200, json=images_body(tags[:n], urls=urls), headers=headers)

    return handle


@pytest.fixture
def make_tool() -> Iterator[Callable[..., ImageGenerationTool]]:
    made: list[ImageGenerationTool] = []

    def make(
        handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
    ) -> ImageGenerationTool:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("base_url", "http://gateway.test/v1")
        kwargs.setdefault("max_retries", 0)
        kwargs["http_client"] = httpx.Client(transport=httpx.MockTransport(handler))
        kwargs["http_async_client"] = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        tool = ImageGenerationTool(**kwargs)
        made.append(tool)
        return tool

    yield make
    for tool in made:
        tool.close()
        if tool.http_client is not None:
            tool.http_client.close()


async def both(tool: ImageGenerationTool, args: dict[str, Any]) -> list[ImageGenerationResult]:
    """The same call, sync then async."""
    return [tool.generate(args), await tool.agenerate(args)]


# --- choosing a store -------------------------------------------------------------------------


def test_open_store_picks_local_for_paths_and_remote_for_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "images"), LocalImageStore)
    assert isinstance(open_store("relative/dir"), LocalImageStore)
    assert isinstance(open_store("C:\\images"), LocalImageStore)  # a drive is not a scheme
    for url in ("memory://images", f"file://{tmp_path}", "simplecache::memory://x"):
        store = open_store(url)
        assert isinstance(store, RemoteImageStore), url
        assert store.is_remote
    assert is_url("s3://bucket/prefix")
    assert not is_url(str(tmp_path))


def test_a_local_path_never_imports_fsspec(tmp_path: Path) -> None:
    """Saving to a local directory, through the tool and the store, leaves fsspec unloaded."""
    code = f"""
import base64, sys, httpx
from langchain_imagegen import ImageGenerationTool
from langchain_imagegen.storage import open_store
png = {png("local")!r}
open_store({str(tmp_path / "a")!r}).save(png)
body = {{"created": 1, "data": [{{"b64_json": base64.b64encode(png).decode()}}]}}
client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
tool = ImageGenerationTool(api_key="sk-x", base_url="http://gw.test/v1",
                           output_dir={str(tmp_path / "b")!r}, http_client=client)
assert tool.generate({{"prompt": "a fox"}}).images[0].path
print(sorted(name for name in sys.modules if name.split(".")[0] in ("fsspec", "s3fs")))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
    assert len(list((tmp_path / "b").iterdir())) == 1


def test_an_unknown_or_missing_filesystem_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="Protocol not known"):
        open_store("nosuchfs://bucket/images")
    with pytest.raises(ConfigurationError, match="Protocol not known"):
        ImageGenerationTool(api_key=KEY, output_dir="nosuchfs://bucket/images")
    with pytest.raises(ConfigurationError, match="at pickymem://x: TypeError") as info:
        open_store("pickymem://x", storage_options={"no_such_option": SECRET})
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


# --- saving ------------------------------------------------------------------------------------


def test_save_writes_one_object_named_by_content_hash() -> None:
    where = prefix()
    store = open_store(f"memory://{where}")
    data = png("a")
    saved = store.save(data)
    digest = hashlib.sha256(data).hexdigest()
    assert saved.path is None
    assert saved.uri == f"memory:///{where}/{digest[:16]}.png"
    assert (saved.mime_type, saved.size_bytes, saved.sha256) == ("image/png", len(data), digest)
    assert saved.link is None
    assert saved.link_expires_at is None  # memory:// cannot sign
    fs = fsspec.filesystem("memory")
    assert fs.cat_file(saved.uri) == data
    assert fs.ls(f"/{where}", detail=False) == [f"/{where}/{digest[:16]}.png"]


def test_saving_the_same_bytes_again_is_harmless() -> None:
    store = RemoteImageStore("signmem://bucket/p")
    first, second = store.save(png("same")), store.save(png("same"))
    assert first.uri == second.uri
    assert SigningMemoryFS().ls("/bucket/p", detail=False) == [first.uri.split("://")[1]]
    assert SigningMemoryFS().cat_file(first.uri) == png("same")


def test_a_local_directory_through_fsspec_is_written_atomically(tmp_path: Path) -> None:
    """A filesystem of files: the bytes go to a temp name and are moved into place, so a
    reader never sees a half-written image; a failed move leaves nothing behind."""
    store = open_store(f"file://{tmp_path}/out")
    saved = store.save(png("disk"))
    assert saved.uri == f"file://{tmp_path}/out/{saved.sha256[:16]}.png"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{saved.sha256[:16]}.png"]
    assert (tmp_path / "out" / f"{saved.sha256[:16]}.png").read_bytes() == png("disk")

    assert isinstance(store, RemoteImageStore)
    moves: list[tuple[str, str]] = []

    def failing_mv(source: str, target: str, **kwargs: Any) -> None:
        moves.append((source, target))
        raise OSError(28, "No space left on device")

    store.filesystem.mv = failing_mv  # this instance only
    with pytest.raises(StorageError, match=r"file://.*/out: .*No space left") as info:
        store.save(png("other"))
    assert info.value.errno == 28
    assert moves
    assert moves[0][0].endswith(".part")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{saved.sha256[:16]}.png"]


def test_content_type_and_metadata_travel_with_the_put() -> None:
    store = RemoteImageStore("s3://bucket/images", filesystem=S3LikeFS())
    saved = store.save(
        png("meta"),
        metadata={"model": "gpt-image-2", "request-id": "req_1", "note": "café"},
    )
    assert saved.uri == f"s3://bucket/images/{saved.sha256[:16]}.png"
    [(path, kwargs)] = S3LikeFS.puts
    assert path == f"bucket/images/{saved.sha256[:16]}.png"
    # s3fs passes these on to put_object; a non-ASCII value cannot be an HTTP header.
    assert kwargs == {
        "ContentType": "image/png",
        "Metadata": {"model": "gpt-image-2", "request-id": "req_1"},
    }


def test_a_memory_filesystem_gets_no_put_arguments() -> None:
    store = RemoteImageStore("signmem://bucket/images")
    store.save(png("plain"), metadata={"model": "m"})
    assert SigningMemoryFS.puts == [(SigningMemoryFS.puts[0][0], {})]


async def test_asave_uses_the_async_filesystem_on_its_own_loop() -> None:
    """An async filesystem uploads on its own event loop: three uploads of 0.3 s each
    finish together, and this loop keeps running meanwhile."""
    store = RemoteImageStore("gs://bucket/p", filesystem=SlowAsyncFS())
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    beat = asyncio.ensure_future(ticker())
    started = time.perf_counter()
    saved = await asyncio.gather(*(store.asave(png(f"a{i}")) for i in range(3)))
    elapsed = time.perf_counter() - started
    beat.cancel()
    assert elapsed < 0.8  # one after the other would take 0.9 s
    assert ticks >= 5  # the event loop was never blocked
    assert {s.uri.split("://")[1] for s in saved} == set(SlowAsyncFS.objects)
    assert SlowAsyncFS.threads == {"fsspecIO"}  # fsspec's IO thread, where its loop runs


class SlowSigningAsyncFS(SlowAsyncFS):
    """:class:`SlowAsyncFS` that signs links (as s3fs does), noting whether the object was
    stored yet at the time."""

    signed_before_stored: ClassVar[list[bool]] = []

    def sign(self, path: str, expiration: int = 100, **kwargs: Any) -> str:
        type(self).signed_before_stored.append(path not in type(self).objects)
        return f"https://signed.example/{path}?expires={expiration}"


async def test_an_async_filesystem_signs_the_link_while_the_put_is_on_the_wire() -> None:
    """The link needs no object yet: signing after the PUT added its time to every save."""
    SlowSigningAsyncFS.signed_before_stored = []
    store = RemoteImageStore("gs://bucket/signed", filesystem=SlowSigningAsyncFS(delay=0.3))
    saved = [store.save(png("s")), await store.asave(png("a"))]
    assert SlowSigningAsyncFS.signed_before_stored == [True, True]
    for image, tag in zip(saved, ["s", "a"], strict=True):
        assert (
            image.link == f"https://signed.example/{image.uri.removeprefix('gs://')}?expires=3600"
        )
        assert image.link_expires_at is not None
        assert SlowAsyncFS.objects[image.uri.removeprefix("gs://")] == png(tag)


def _save_in_child(store: RemoteImageStore, answers: Any) -> None:
    try:
        saved = store.save(png("child"))
        stored = SlowAsyncFS.objects.get(saved.uri.removeprefix("gs://"))
        answers.put((saved.uri, stored == png("child")))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        answers.put((None, f"{type(exc).__name__}: {exc}"))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_a_store_made_before_a_fork_works_in_the_child() -> None:
    """A pre-forking server builds the tool, then forks workers: fsspec's async filesystems
    refuse to run in a child ("not fork-safe"), so the store makes itself a fresh one."""
    import multiprocessing

    store = RemoteImageStore("gs://bucket/forked", filesystem=SlowAsyncFS(delay=0.0))
    store.save(png("parent"))  # the parent has used its filesystem (and fsspec's loop)
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=_save_in_child, args=(store, answers))
    child.start()
    uri, stored = answers.get(timeout=30)
    child.join(timeout=30)
    assert stored is True, stored
    assert uri == f"gs://bucket/forked/{hashlib.sha256(png('child')).hexdigest()[:16]}.png"


async def test_asave_of_a_sync_filesystem_runs_in_a_thread() -> None:
    store = RemoteImageStore("signmem://bucket/p")
    saved = await store.asave(png("t"))
    assert SigningMemoryFS().cat_file(saved.uri) == png("t")


def test_discard_removes_the_object() -> None:
    store = RemoteImageStore("signmem://bucket/p")
    saved = store.save(png("d"))
    assert store.discard(saved) is True
    assert store.discard(saved) is False
    with pytest.raises(ValueError, match="was not saved by"):
        store.discard(SavedImage(None, "image/png", 1, "0" * 64, uri="signmem://other/x.png"))


# --- links ---------------------------------------------------------------------------------


def test_a_signing_filesystem_gives_a_signed_link_that_expires() -> None:
    store = RemoteImageStore("signmem://bucket/p", link_expires_in=120)
    before = dt.datetime.now(dt.timezone.utc)
    saved = store.save(png("s"))
    assert saved.link == f"https://signed.example/bucket/p/{saved.sha256[:16]}.png?X-Expires=120"
    assert saved.link_expires_at is not None
    assert before + dt.timedelta(seconds=118) <= saved.link_expires_at
    assert saved.link_expires_at <= before + dt.timedelta(seconds=121)


def test_public_base_url_joins_the_object_key() -> None:
    """Below the bucket for bucketed stores; unsigned, never expiring."""
    store = RemoteImageStore(
        "s3://bucket/images/2026",
        filesystem=S3LikeFS(),
        public_base_url="https://cdn.example/",
    )
    saved = store.save(png("pub"))
    assert saved.link == f"https://cdn.example/images/2026/{saved.sha256[:16]}.png"
    assert saved.link_expires_at is None
    memory = open_store("memory://site/img", public_base_url="https://static.example")
    assert memory.save(png("m")).link == (
        f"https://static.example/site/img/{hashlib.sha256(png('m')).hexdigest()[:16]}.png"
    )


def test_a_failed_signature_keeps_the_image_and_says_why() -> None:
    SigningMemoryFS.sign_error = RuntimeError(f"no credentials to sign with ({SECRET})")
    store = RemoteImageStore("signmem://bucket/p", storage_options={"token": SECRET})
    saved = store.save(png("x"))
    assert saved.link is None
    assert saved.link_error is not None
    assert "no credentials to sign with" in saved.link_error
    assert SECRET not in saved.link_error
    assert SigningMemoryFS().cat_file(saved.uri) == png("x")
    with pytest.raises(StorageError, match="could not sign") as info:
        store.link(saved.uri)
    assert SECRET not in str(info.value)


def test_link_refuses_a_uri_of_another_store() -> None:
    store = RemoteImageStore("signmem://bucket/p")
    with pytest.raises(ValueError, match="is not in signmem://bucket/p"):
        store.link("signmem://bucket/elsewhere/abc.png")
    with pytest.raises(ValueError, match="is not in"):
        store.link("signmem://bucket/p-sibling/abc.png")


# --- through the tool ----------------------------------------------------------------------


async def test_the_llm_reads_signed_links_and_the_artifact_keeps_uri_and_expiry(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    tool = make_tool(server(["a", "b"]), output_dir="signmem://bucket/gen", link_expires_in=600)
    for result in await both(tool, {"prompt": "a fox", "n": 2}):
        assert [i.link for i in result.images] == [
            f"https://signed.example/bucket/gen/{i.sha256[:16]}.png?X-Expires=600"  # type: ignore[index]
            for i in result.images
        ]
        for image in result.images:
            assert image.path is None
            assert image.uri == f"signmem:///bucket/gen/{image.sha256[:16]}.png"  # type: ignore[index]
            assert image.link_expires_at is not None
            assert image.location == image.link
        text = result.to_text()
        assert f"1. {result.images[0].handle}: https://signed.example/bucket/gen/" in text
        assert "link expires" in text
        assert "signmem://" not in text


async def test_without_a_link_the_llm_reads_the_storage_uri_and_why(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    where = prefix()
    tool = make_tool(server(["a"]), output_dir=f"memory://{where}")
    for result in await both(tool, {"prompt": "a fox"}):
        [image] = result.images
        assert image.link is None
        assert image.uri is not None
        assert result.to_text().splitlines()[1] == (
            f"1. {image.handle}: {image.uri} (storage URI, no http link: the storage cannot sign "
            "links and "
            "no public_base_url is set)"
        )


async def test_resign_links_gives_fresh_links_after_a_reload(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    tool = make_tool(server(["a", "b"]), output_dir="signmem://bucket/gen", link_expires_in=60)
    result = tool.generate({"prompt": "a fox", "n": 2})
    restored = ImageGenerationResult.from_artifact(json.loads(result.model_dump_json()))
    later = make_tool(server([]), output_dir="signmem://bucket/gen", link_expires_in=3600)
    fresh = restored.resign_links(later)
    for old, new in zip(result.images, fresh.images, strict=True):
        assert new.uri == old.uri
        assert new.link is not None
        assert new.link.endswith("X-Expires=3600")
        assert new.link_expires_at is not None
        assert old.link_expires_at is not None
        assert new.link_expires_at > old.link_expires_at + dt.timedelta(seconds=3000)
    shorter = restored.resign_links(later.store, expires_in=5)
    assert all(i.link and i.link.endswith("X-Expires=5") for i in shorter.images)
    assert restored.images[0].link == result.images[0].link  # a copy: the original is unchanged


async def test_resign_links_leaves_local_images_alone(
    make_tool: Callable[..., ImageGenerationTool], tmp_path: Path
) -> None:
    tool = make_tool(server(["a"]), output_dir=str(tmp_path))
    result = tool.generate({"prompt": "a fox"})
    assert result.resign_links(tool) == result


async def test_url_images_are_copied_into_remote_storage(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    """A server's URL images (dall-e, gateways) expire after an hour: with remote storage
    they are downloaded and stored, even though download_urls is off, and linked."""
    tool = make_tool(
        server(["u1", "u2"], urls=True),
        model="dall-e-2",
        output_dir="signmem://bucket/copies",
    )
    assert tool.download_urls is False
    for result in await both(tool, {"prompt": "a fox", "n": 2}):
        assert [i.url for i in result.images] == [f"{FILES}/u1.png", f"{FILES}/u2.png"]
        for image, tag in zip(result.images, ["u1", "u2"], strict=True):
            assert image.uri is not None
            assert image.link is not None
            assert SigningMemoryFS().cat_file(image.uri) == png(tag)
            assert image.sha256 == hashlib.sha256(png(tag)).hexdigest()
        assert f"{FILES}/" not in result.to_text()


async def test_metadata_names_model_prompt_hash_and_request(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    tool = make_tool(server(["a"]), output_dir="signmem://bucket/m")
    registered = fsspec.filesystem("signmem")
    calls: list[dict[str, str] | None] = []
    store = tool.store
    original = store.save

    def spy(data: bytes, **kwargs: Any) -> SavedImage:
        calls.append(kwargs.get("metadata"))
        return original(data, **kwargs)

    object.__setattr__(store, "save", spy)  # this instance only
    tool.generate({"prompt": "a fox"})
    assert calls == [
        {
            "model": "gpt-image-2",
            "prompt-sha256": hashlib.sha256(b"a fox").hexdigest(),
            "request-id": "req_unit_1",
        }
    ]
    assert registered is not None


async def test_a_failed_upload_costs_only_that_image_and_names_the_store(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    FailingFS.refuse = {png("bad")}
    tool = make_tool(
        server(["good", "bad", "fine"]),
        output_dir="failmem://bucket/prefix",
        storage_options={"secret": SECRET},
    )
    for result in await both(tool, {"prompt": "a fox", "n": 3}):
        assert [i.sha256 for i in result.images] == [
            hashlib.sha256(png(t)).hexdigest() for t in ("good", "fine")
        ]
        [error] = result.errors
        assert "could not save image to failmem://bucket/prefix: Access Denied" in error
        assert SECRET not in error
        assert "1 missing" in result.to_text()
    assert not any(png("bad") == bytes(v.getvalue()) for v in FailingFS.store.values())


async def test_when_every_upload_fails_the_llm_is_told_which_store_and_why(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    tool = make_tool(
        server(["a"]), output_dir="failmem://bucket/prefix", storage_options={"secret": SECRET}
    )
    call = {"name": "generate_image", "args": {"prompt": "a fox"}, "id": "1", "type": "tool_call"}
    for message in (tool.invoke(call), await tool.ainvoke(call)):
        assert isinstance(message, ToolMessage)
        assert message.status == "error"
        assert "failmem://bucket/prefix" in str(message.content)
        assert "Access Denied" in str(message.content)
        assert SECRET not in str(message.content)
    with pytest.raises(StorageError) as info:
        tool.generate({"prompt": "a fox"})
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


async def test_fan_out_uploads_run_at_once(make_tool: Callable[..., ImageGenerationTool]) -> None:
    """Three images of one response wait for each other at a barrier: saved one after the
    other, the first would time out there."""
    tool = make_tool(server(["a", "b", "c"]), output_dir="gatedmem://bucket/gate")
    GatedFS.barrier = threading.Barrier(3)
    sync_result = tool.generate({"prompt": "a fox", "n": 3})
    GatedFS.barrier = threading.Barrier(3)
    async_result = await tool.agenerate({"prompt": "a fox", "n": 3})
    for result in (sync_result, async_result):
        assert not result.errors
        assert [i.sha256 for i in result.images] == [
            hashlib.sha256(png(t)).hexdigest() for t in ("a", "b", "c")
        ]  # the server's order, whatever order the uploads ended in


async def test_uploads_of_separate_requests_run_at_once(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    """dall-e-3 makes one image per request: the three responses' images (URLs, copied into
    storage) meet at the barrier only if no response waits for another's upload."""
    tool = make_tool(
        server(["x", "y", "z"], urls=True), model="dall-e-3", output_dir="gatedmem://b/g"
    )
    GatedFS.barrier = threading.Barrier(3)
    sync_result = tool.generate({"prompt": "a fox", "n": 3})
    GatedFS.barrier = threading.Barrier(3)
    async_result = await tool.agenerate({"prompt": "a fox", "n": 3})
    for result in (sync_result, async_result):
        assert not result.errors
        assert len(result.requests) == 3
        assert [i.request_index for i in result.images] == [0, 1, 2]
        assert all(i.uri for i in result.images)


@pytest.fixture
def decoding_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The thread each base64 payload the generator hands to storage is decoded on."""
    threads: list[threading.Thread] = []

    def decode(b64: str) -> bytes:
        threads.append(threading.current_thread())
        return decode_b64_image(b64)

    monkeypatch.setattr(generation, "decode_b64_image", decode)
    return threads


@pytest.mark.parametrize(("model", "tags"), [("gpt-image-1", ["a", "b", "c"]), ("dall-e-3", ["a"])])
def test_sync_upload_threads_get_bytes_decoded_on_the_calling_thread(
    make_tool: Callable[..., ImageGenerationTool],
    decoding_threads: list[threading.Thread],
    model: str,
    tags: list[str],
) -> None:
    """glibc gives each thread that allocates its own malloc arena: images decoded in the
    upload threads were held in as many arenas (peak RSS 1.5x for four 2 MB images). The
    uploads still meet at the barrier: they still overlap."""
    tool = make_tool(server(tags), model=model, output_dir="gatedmem://bucket/decoded")
    GatedFS.barrier = threading.Barrier(3)
    result = tool.generate({"prompt": "a fox", "n": 3})
    assert not result.errors
    assert len(result.images) == 3
    assert decoding_threads == [threading.current_thread()] * 3


async def test_async_uploads_decode_off_the_event_loop(
    make_tool: Callable[..., ImageGenerationTool], decoding_threads: list[threading.Thread]
) -> None:
    tool = make_tool(server(["a", "b", "c"]), output_dir="gatedmem://bucket/decoded")
    GatedFS.barrier = threading.Barrier(3)
    result = await tool.agenerate({"prompt": "a fox", "n": 3})
    assert not result.errors
    assert len(decoding_threads) == 3
    assert threading.current_thread() not in decoding_threads


# --- secrets and references --------------------------------------------------------------------


class _Events(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[Any] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        if name == EVENT_NAME:
            self.events.append(data)


async def test_storage_options_never_show(
    make_tool: Callable[..., ImageGenerationTool], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    options = {"secret": SECRET, "client_kwargs": {"token": SECRET}}
    tool = make_tool(server(["a"]), output_dir="signmem://bucket/s", storage_options=options)
    handler = _Events()
    call = {"name": "generate_image", "args": {"prompt": "a fox"}, "id": "1", "type": "tool_call"}
    message = tool.invoke(call, config={"callbacks": [handler]})
    amessage = await tool.ainvoke(call, config={"callbacks": [handler]})
    assert tool.storage_options == options  # still there for fsspec
    shown = [
        repr(tool),
        str(tool),
        repr(tool.store),
        tool.store.describe(),
        json.dumps(tool.model_dump(), default=str),
        tool.model_dump_json(),
        str(message.content),
        str(amessage.content),
        message.artifact.model_dump_json(),
        json.dumps(handler.events, default=str),
        caplog.text,
    ]
    for text in shown:
        assert SECRET not in text
    assert "storage_options" not in tool.model_dump()


def test_credentials_in_output_dir_or_public_base_url_are_refused() -> None:
    with pytest.raises(ValueError, match="storage_options") as info:
        ImageGenerationTool(api_key=KEY, output_dir=f"s3://AKIA:{SECRET}@bucket/p")
    assert SECRET not in str(info.value)
    with pytest.raises(ValueError, match="http"):
        ImageGenerationTool(api_key=KEY, output_dir="memory://x", public_base_url="ftp://x")
    with pytest.raises(ValueError, match="credentials"):
        ImageGenerationTool(
            api_key=KEY, output_dir="memory://x", public_base_url=f"https://u:{SECRET}@cdn.x"
        )


def test_describe_drops_user_info_and_query() -> None:
    store = open_store("memory://user:pw@host/images?token=abc")
    assert store.describe() == "memory://host/images"
    assert "pw" not in repr(store)
    assert "abc" not in repr(store)


async def test_no_base64_anywhere_with_remote_storage(
    make_tool: Callable[..., ImageGenerationTool],
) -> None:
    """The artifact, the content (with image blocks too) and the events are references."""
    tool = make_tool(server(["a", "b"]), output_dir="signmem://bucket/ref")
    handler = _Events()
    payloads = [base64.b64encode(png(t)).decode()[:40] for t in ("a", "b")]
    for content_images in ("none", "url", "base64"):
        tool.content_images = content_images  # type: ignore[assignment]
        call = {
            "name": "generate_image",
            "args": {"prompt": "a fox", "n": 2},
            "id": "1",
            "type": "tool_call",
        }
        for message in (
            tool.invoke(call, config={"callbacks": [handler]}),
            await tool.ainvoke(call, config={"callbacks": [handler]}),
        ):
            dumped = json.dumps(
                [message.content, message.artifact.model_dump(mode="json"), handler.events],
                default=str,
            )
            for payload in payloads:
                assert payload not in dumped
            assert "iVBOR" not in dumped  # no PNG in base64 at all
            if content_images != "none":
                blocks = [b for b in message.content if b["type"] == "image"]  # type: ignore[index, union-attr]
                assert [b["url"] for b in blocks] == [  # type: ignore[index]
                    i.link for i in message.artifact.images
                ]
    saved = [e for e in handler.events if e["stage"] == "saved"]
    assert saved
    assert all(set(e) == {"stage", "request_index", "uri"} for e in saved)

"""Handles resolved from S3, against a real S3 API on loopback (moto, ``tests/s3_server.py``):
the store reads back and lists through s3fs, and the resolver refuses other buckets,
prefixes and tampered objects without ever showing the credentials."""

from __future__ import annotations

import hashlib

import pytest

from langchain_imagegen.errors import InvalidArgumentError, StorageError
from langchain_imagegen.handles import ImageResolver, image_handle
from langchain_imagegen.storage import RemoteImageStore, SavedImage
from tests.emulator import encode_image
from tests.s3_server import S3_LIVE, S3Bucket

pytestmark = S3_LIVE


def png(tag: str, width: int = 8, height: int = 8) -> bytes:
    return encode_image("png", width, height, tag=tag)


def store_for(bucket: S3Bucket, prefix: str = "images", **kwargs: object) -> RemoteImageStore:
    return RemoteImageStore(
        f"{bucket.url}/{prefix}",
        storage_options=bucket.storage_options,
        **kwargs,  # type: ignore[arg-type]
    )


def refusal(resolver: ImageResolver, ref: str, secret: str) -> str:
    with pytest.raises(InvalidArgumentError) as info:
        resolver.resolve(ref)
    message = str(info.value)
    assert secret not in message
    assert secret not in info.value.agent_message()
    return message


def handle(saved: SavedImage) -> str:
    return image_handle(saved.sha256)


def test_handles_and_uris_resolve_from_s3(s3_bucket: S3Bucket) -> None:
    store = store_for(s3_bucket)
    png_saved = store.save(png("s3 png"))
    jpeg_saved = store.save(encode_image("jpeg", 8, 8, tag="s3 jpeg"))
    store.save(png("s3 preview"), preview=True)
    resolver = ImageResolver(store)

    for saved in (png_saved, jpeg_saved):
        for ref in (handle(saved), saved.uri):
            image = resolver.resolve(ref)
            assert image.sha256 == saved.sha256
            assert image.mime_type == saved.mime_type
            assert hashlib.sha256(image.data).hexdigest() == saved.sha256
    assert set(store.names()) == {
        f"{png_saved.sha256[:16]}.png",
        f"{jpeg_saved.sha256[:16]}.jpg",
    }
    assert set(resolver.known_handles()) == {handle(png_saved), handle(jpeg_saved)}


async def test_handles_resolve_from_s3_async(s3_bucket: S3Bucket) -> None:
    store = store_for(s3_bucket)
    saved = await store.asave(png("async s3"))
    resolver = ImageResolver(store)

    image = await resolver.aresolve(handle(saved))
    assert image.sha256 == saved.sha256
    assert (await resolver.aresolve(saved.uri)).sha256 == saved.sha256
    with pytest.raises(InvalidArgumentError, match="no image has the handle"):
        await resolver.aresolve("img_0123456789abcdef")


def test_reads_are_capped(s3_bucket: S3Bucket) -> None:
    store = store_for(s3_bucket)
    data = png("capped", 64, 64)
    saved = store.save(data)
    name = f"{saved.sha256[:16]}.png"

    assert store.read(name, max_bytes=len(data)) == data
    with pytest.raises(InvalidArgumentError, match="larger than"):
        store.read(name, max_bytes=len(data) - 1)
    resolver = ImageResolver(store, max_bytes=len(data) - 1)
    assert "larger than" in refusal(resolver, handle(saved), s3_bucket.secret)


def test_other_buckets_and_prefixes_are_refused(s3_bucket: S3Bucket) -> None:
    store = store_for(s3_bucket)
    saved = store.save(png("scoped"))
    name = saved.uri.rsplit("/", 1)[-1]
    fs = s3_bucket.filesystem()
    for key in (f"other/{name}", f"images2/{name}", name, f"images/sub/{name}"):
        fs.pipe_file(f"{s3_bucket.name}/{key}", png("scoped"))
    other_bucket = s3_bucket.server.create_bucket()
    try:
        fs.pipe_file(f"{other_bucket}/images/{name}", png("scoped"))
        resolver = ImageResolver(store)

        for ref in (
            f"s3://{other_bucket}/images/{name}",
            f"s3://{s3_bucket.name}/other/{name}",
            f"s3://{s3_bucket.name}/images2/{name}",
            f"s3://{s3_bucket.name}/{name}",
            f"s3://{s3_bucket.name}images/{name}",
            f"gs://{s3_bucket.name}/images/{name}",
        ):
            message = refusal(resolver, ref, s3_bucket.secret)
            assert "not in this tool's storage" in message, ref
            assert handle(saved) in message
        for ref in (
            f"s3://{s3_bucket.name}/images/../other/{name}",
            f"s3://{s3_bucket.name}/images/sub/../../other/{name}",
        ):
            assert "'..'" in refusal(resolver, ref, s3_bucket.secret)
        # Below the prefix is still the store's (a name with a segment).
        assert resolver.resolve(f"s3://{s3_bucket.name}/images/sub/{name}").sha256 == (saved.sha256)
    finally:
        s3_bucket.server.delete_bucket(other_bucket)


def test_a_tampered_object_and_a_preview_are_refused(s3_bucket: S3Bucket) -> None:
    store = store_for(s3_bucket)
    saved = store.save(png("kept"))
    preview = store.save(png("partial"), preview=True)
    s3_bucket.filesystem().pipe_file(saved.uri.removeprefix("s3://"), png("swapped"))
    resolver = ImageResolver(store)

    assert "changed after it was saved" in refusal(resolver, handle(saved), s3_bucket.secret)
    assert "streamed preview" in refusal(resolver, preview.uri, s3_bucket.secret)
    assert "no image has the handle" in refusal(resolver, handle(preview), s3_bucket.secret)


def test_a_public_link_is_read_from_the_bucket(s3_bucket: S3Bucket) -> None:
    public = f"{s3_bucket.server.endpoint_url}/{s3_bucket.name}"
    store = store_for(s3_bucket, public_base_url=public)
    saved = store.save(png("public"))
    assert saved.link is not None

    def fetch(url: str) -> tuple[bytes, str | None]:
        raise AssertionError(f"downloaded {url}")

    assert ImageResolver(store, fetch=fetch).resolve(saved.link).sha256 == saved.sha256


async def test_storage_failures_never_show_the_credentials(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_for(s3_bucket)
    saved = store.save(png("guarded"))
    secret = s3_bucket.secret
    fs = store.filesystem

    # A failure whose text quotes the credential (as some botocore errors quote requests).
    async def failing_cat_file(path: str, *args: object, **kwargs: object) -> bytes:
        raise PermissionError(f"AccessDenied reading {path} with secret {secret}")

    def failing_sync_cat_file(path: str, *args: object, **kwargs: object) -> bytes:
        raise PermissionError(f"AccessDenied reading {path} with secret {secret}")

    def failing_ls(path: str, *args: object, **kwargs: object) -> list[object]:
        raise PermissionError(f"AccessDenied listing {path} with secret {secret}")

    # s3fs's sync methods are wrappers bound at construction: both need replacing.
    monkeypatch.setattr(fs, "_cat_file", failing_cat_file)
    monkeypatch.setattr(fs, "cat_file", failing_sync_cat_file)
    monkeypatch.setattr(fs, "ls", failing_ls)
    resolver = ImageResolver(store)

    with pytest.raises(StorageError) as sync_info:
        resolver.resolve(handle(saved))
    with pytest.raises(StorageError) as async_info:
        await resolver.aresolve(handle(saved))
    with pytest.raises(StorageError) as listing_info:
        store.names()

    for info in (sync_info, async_info, listing_info):
        text = f"{info.value} {info.value.agent_message()}"
        assert secret not in text
        assert "***" in text
        assert f"s3://{s3_bucket.name}/images" in text
    assert resolver.known_handles() == []

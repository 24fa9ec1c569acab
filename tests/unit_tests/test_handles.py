"""Image handles and :class:`~langchain_imagegen.handles.ImageResolver`: what a reference
resolves to, and everything it refuses (security first).

Local stores are real directories; remote ones are fsspec's in-memory filesystem (the real S3
API is in ``tests/integration_tests/test_handles_s3.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_imagegen.errors import ImageDownloadError, InvalidArgumentError, StorageError
from langchain_imagegen.handles import (
    HANDLE_PREFIX,
    ImageResolver,
    InputImage,
    handle_of_name,
    image_handle,
)
from langchain_imagegen.storage import LocalImageStore, RemoteImageStore, SavedImage
from langchain_imagegen.storage.images import content_name
from tests.emulator import encode_image


def png(tag: str, width: int = 8, height: int = 8) -> bytes:
    return encode_image("png", width, height, tag=tag)


def handle(saved: SavedImage) -> str:
    return image_handle(saved.sha256)


def refusal(resolver: ImageResolver, ref: str) -> str:
    with pytest.raises(InvalidArgumentError) as info:
        resolver.resolve(ref)
    return str(info.value)


@pytest.fixture
def store(tmp_path: Path) -> LocalImageStore:
    return LocalImageStore(tmp_path / "out")


@pytest.fixture
def saved(store: LocalImageStore) -> SavedImage:
    return store.save(png("first"))


@pytest.fixture
def memory_store() -> Iterator[RemoteImageStore]:
    bucket = f"handles-{uuid.uuid4().hex[:12]}"
    store = RemoteImageStore(f"memory://{bucket}/images")
    yield store
    with contextlib.suppress(FileNotFoundError):
        store.filesystem.rm(f"/{bucket}", recursive=True)


# --- handles ----------------------------------------------------------------------------------


def test_a_handle_is_img_and_the_16_hex_the_store_names_the_file_by(
    store: LocalImageStore,
) -> None:
    data = png("h")
    sha256, name = content_name(data, "png")
    saved = store.save(data)

    assert image_handle(sha256) == f"img_{sha256[:16]}" == f"{HANDLE_PREFIX}{name[:16]}"
    assert image_handle(sha256.upper()) == image_handle(sha256)  # always lowercase
    assert handle_of_name(name) == image_handle(sha256) == handle(saved)
    assert image_handle(hashlib.sha256(data).hexdigest()) == image_handle(sha256)  # stable


def test_image_handle_refuses_what_is_not_a_digest() -> None:
    for bad in ("", "0123", "g" * 64, "0123456789abcde-" + "0" * 48):
        with pytest.raises(ValueError, match="sha256"):
            image_handle(bad)


def test_handle_of_name_ignores_previews_and_other_names() -> None:
    assert handle_of_name("0123456789abcdef.png") == "img_0123456789abcdef"
    assert handle_of_name("prefix/0123456789abcdef.webp") == "img_0123456789abcdef"
    for other in ("preview-0123456789abcdef.png", ".0123456789abcdef.part", "cat.png"):
        assert handle_of_name(other) is None


def test_input_image_describes_its_bytes_and_keeps_them_out_of_repr() -> None:
    data = encode_image("jpeg", 8, 8, tag="repr")
    image = InputImage.from_bytes(data, "given")
    sha256 = hashlib.sha256(data).hexdigest()

    assert (image.mime_type, image.filename, image.ref) == (
        "image/jpeg",
        f"{sha256[:16]}.jpg",
        "given",
    )
    assert (image.handle, image.sha256, image.format) == (image_handle(sha256), sha256, "JPEG")
    assert "data=" not in repr(image)


# --- resolving from a local store ----------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
def test_a_handle_resolves_to_the_stored_image(store: LocalImageStore, output_format: str) -> None:
    data = encode_image(output_format, 8, 8, tag=output_format)
    saved = store.save(data)

    image = ImageResolver(store).resolve(handle(saved))

    assert image.data == data
    assert (image.handle, image.sha256, image.mime_type) == (
        handle(saved),
        saved.sha256,
        saved.mime_type,
    )
    assert image.ref == handle(saved)
    assert image.filename == saved.path.name  # type: ignore[union-attr]


async def test_aresolve_matches_resolve(store: LocalImageStore, saved: SavedImage) -> None:
    resolver = ImageResolver(store)
    for ref in (handle(saved), str(saved.path), saved.path.name):  # type: ignore[union-attr]
        assert await resolver.aresolve(ref) == resolver.resolve(ref)
    with pytest.raises(InvalidArgumentError, match="outside"):
        await resolver.aresolve("/etc/passwd")


def test_a_handle_of_an_uncommon_format_is_found_by_listing(store: LocalImageStore) -> None:
    gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
    saved = store.save(gif)
    assert saved.path is not None
    assert saved.path.suffix == ".gif"

    assert ImageResolver(store).resolve(handle(saved)).data == gif


def test_handles_are_case_insensitive_and_surrounding_blanks_ignored(
    store: LocalImageStore, saved: SavedImage
) -> None:
    resolver = ImageResolver(store)
    assert resolver.resolve(f"  {handle(saved).upper().replace('IMG_', 'img_')}\n").sha256 == (
        saved.sha256
    )


def test_the_stores_absolute_path_and_bare_name_resolve(
    store: LocalImageStore, saved: SavedImage
) -> None:
    assert saved.path is not None
    resolver = ImageResolver(store)
    assert resolver.resolve(str(saved.path)).sha256 == saved.sha256
    assert resolver.resolve(saved.path.name).sha256 == saved.sha256


def test_known_handles_are_the_newest_finished_images(store: LocalImageStore) -> None:
    saves = [store.save(png(f"k{i}")) for i in range(4)]
    for age, saved in enumerate(reversed(saves)):  # saves[-1] newest
        assert saved.path is not None
        os.utime(saved.path, (1_000_000 - age * 10, 1_000_000 - age * 10))
    store.save(png("preview"), preview=True)
    (store.output_dir / ".0123456789abcdef.part").write_bytes(b"temp")
    (store.output_dir / "notes.txt").write_text("not an image")

    resolver = ImageResolver(store)

    assert resolver.known_handles() == [handle(s) for s in reversed(saves)]
    assert resolver.known_handles(limit=2) == [handle(saves[3]), handle(saves[2])]
    assert store.names() == [s.path.name for s in reversed(saves)]  # type: ignore[union-attr]


def test_an_empty_or_missing_store_has_no_handles(tmp_path: Path) -> None:
    resolver = ImageResolver(LocalImageStore(tmp_path / "never-created"))
    assert resolver.known_handles() == []
    assert "no earlier images" in refusal(resolver, "img_0123456789abcdef")


# --- refusals -----------------------------------------------------------------------------------


def test_an_unknown_handle_is_refused_with_the_known_ones(
    store: LocalImageStore, saved: SavedImage
) -> None:
    other = store.save(png("second"))
    message = refusal(ImageResolver(store), "img_0123456789abcdef")

    assert "no image has the handle img_0123456789abcdef" in message
    assert f"{handle(other)}, {handle(saved)}" in message or (
        f"{handle(saved)}, {handle(other)}" in message
    )
    assert str(store.output_dir) not in message  # handles only, never a directory


def test_a_malformed_handle_is_refused(store: LocalImageStore, saved: SavedImage) -> None:
    for bad in ("img_0123", "img_0123456789abcdefff", "img_zzzzzzzzzzzzzzzz"):
        message = refusal(ImageResolver(store), bad)
        assert "not a handle" in message
        assert handle(saved) in message


def test_a_tampered_file_is_refused(store: LocalImageStore, saved: SavedImage) -> None:
    assert saved.path is not None
    saved.path.write_bytes(png("someone else"))
    resolver = ImageResolver(store)

    for ref in (handle(saved), str(saved.path), saved.path.name):
        assert "changed after it was saved" in refusal(resolver, ref)


def test_a_preview_is_never_a_result(store: LocalImageStore) -> None:
    preview = store.save(png("partial"), preview=True)
    assert preview.path is not None
    resolver = ImageResolver(store)

    assert "no image has the handle" in refusal(resolver, handle(preview))
    assert "streamed preview" in refusal(resolver, str(preview.path))
    assert "streamed preview" in refusal(resolver, preview.path.name)


@pytest.mark.parametrize(
    "ref",
    [
        "../out/{name}",
        "{root}/../out/{name}",
        "{root}/./../out/{name}",
        "..\\{name}",
        "out/{name}",
        "{name}/..",
    ],
)
def test_dot_dot_and_relative_paths_are_refused(
    store: LocalImageStore, saved: SavedImage, ref: str
) -> None:
    assert saved.path is not None
    text = ref.format(root=store.output_dir, name=saved.path.name)
    message = refusal(ImageResolver(store), text)
    assert ("'..'" in message) or ("not a handle, a URL or an absolute path" in message)


def test_absolute_paths_outside_the_store_are_refused(
    store: LocalImageStore, saved: SavedImage, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(png("outside"))
    sibling = tmp_path / "out-evil"  # shares the store's name as a prefix
    sibling.mkdir()
    (sibling / "0123456789abcdef.png").write_bytes(png("sibling"))
    resolver = ImageResolver(store)

    for ref in (str(outside), "/etc/passwd", str(sibling / "0123456789abcdef.png")):
        message = refusal(resolver, ref)
        assert "outside the places this tool may read" in message
        assert handle(saved) in message


@pytest.mark.parametrize(
    "ref",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "file:{path}",
        "file://localhost{path}",
    ],
)
def test_file_urls_are_refused(store: LocalImageStore, saved: SavedImage, ref: str) -> None:
    message = refusal(ImageResolver(store), ref.format(path=saved.path))
    assert "file:// URLs are not accepted" in message


@pytest.mark.parametrize(
    "ref",
    [
        "ftp://example.com/a.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "s3://bucket/images/0123456789abcdef.png",
        "memory://x/0123456789abcdef.png",
        "simplecache::s3://bucket/a.png",
    ],
)
def test_other_schemes_are_refused(store: LocalImageStore, saved: SavedImage, ref: str) -> None:
    message = refusal(ImageResolver(store), ref)
    assert ("not in this tool's storage" in message) or ("chained" in message)
    assert handle(saved) in message


def test_tilde_nul_control_and_overlong_refs_are_refused(
    store: LocalImageStore, saved: SavedImage
) -> None:
    assert saved.path is not None
    resolver = ImageResolver(store, allowed_dirs=[Path.home()])
    cases = {
        "~/x.png": "'~' is not expanded",
        f"{saved.path}\x00.png": "control characters",
        f"{handle(saved)}\x00": "control characters",
        "img_0123456789abcdef\n.png": "control characters",
        "/" + "a" * 5000: "characters long",
        "   ": "empty",
    }
    for ref, expected in cases.items():
        assert expected in refusal(resolver, ref)
    with pytest.raises(InvalidArgumentError, match="must be text"):
        resolver.resolve(b"img_0123456789abcdef")  # type: ignore[arg-type]


def test_a_symlink_out_of_the_store_is_refused(
    store: LocalImageStore, saved: SavedImage, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    data = png("behind a symlink")
    sha256, name = content_name(data, "png")
    (secret / name).write_bytes(data)
    (store.output_dir / name).symlink_to(secret / name)  # even its hash matches
    (store.output_dir / "sub").symlink_to(secret, target_is_directory=True)
    resolver = ImageResolver(store)

    assert "not an image in this tool's storage" in refusal(resolver, image_handle(sha256))
    assert "not an image in this tool's storage" in refusal(resolver, name)
    assert "outside" in refusal(resolver, str(store.output_dir / name))
    assert "outside" in refusal(resolver, str(store.output_dir / "sub" / name))
    with pytest.raises(ValueError, match="out of its directory"):
        store.read(name, max_bytes=1 << 20)
    assert name not in store.names()  # the listing shows regular files only


def test_a_symlink_within_the_store_is_followed(store: LocalImageStore, saved: SavedImage) -> None:
    assert saved.path is not None
    (store.output_dir / "latest.png").symlink_to(saved.path)
    image = ImageResolver(store).resolve(str(store.output_dir / "latest.png"))
    assert image.sha256 == saved.sha256


def test_hidden_files_directories_and_fifos_in_the_store_are_refused(
    store: LocalImageStore, saved: SavedImage
) -> None:
    root = store.output_dir
    (root / ".hidden.png").write_bytes(png("hidden"))
    (root / "fedcba9876543210.png").mkdir()
    os.mkfifo(root / "0011223344556677.png")
    resolver = ImageResolver(store)

    assert "not an image in this tool's storage" in refusal(resolver, str(root / ".hidden.png"))
    assert "not an image in this tool's storage" in refusal(resolver, "img_fedcba9876543210")
    # A FIFO would block a plain open(); it is refused at once instead.
    done = threading.Event()
    messages: list[str] = []

    def resolve_fifo() -> None:
        messages.append(refusal(resolver, "img_0011223344556677"))
        done.set()

    threading.Thread(target=resolve_fifo, daemon=True).start()
    assert done.wait(5), "reading a FIFO blocked"
    assert "not an image in this tool's storage" in messages[0]


def test_a_non_image_file_is_refused(store: LocalImageStore, saved: SavedImage) -> None:
    (store.output_dir / "0123456789abcdef.png").write_bytes(b"<html>not an image</html>")
    message = refusal(ImageResolver(store), "img_0123456789abcdef")
    assert "its bytes are not a recognisable image" in message


def test_truncated_image_is_refused(store: LocalImageStore) -> None:
    data = png("cut")
    _, name = content_name(data, "png")
    store.output_dir.mkdir(parents=True)
    (store.output_dir / name).write_bytes(data[:-12])
    message = refusal(ImageResolver(store), name)
    assert "truncated or corrupt PNG" in message


def test_every_source_is_capped_at_max_bytes(store: LocalImageStore, tmp_path: Path) -> None:
    big = png("big", 64, 64)
    saved = store.save(big)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "big.png").write_bytes(big)
    resolver = ImageResolver(
        store,
        allowed_dirs=[allowed],
        fetch=lambda url: (big, "image/png"),
        max_bytes=len(big) - 1,
    )

    for ref in (handle(saved), str(allowed / "big.png"), "https://example.com/big.png"):
        assert f"larger than the {len(big) - 1:,}-byte limit" in refusal(resolver, ref)
    assert ImageResolver(store, max_bytes=len(big)).resolve(handle(saved)).data == big
    with pytest.raises(ValueError, match="max_bytes"):
        ImageResolver(store, max_bytes=0)


def test_a_storage_failure_is_not_disguised_as_a_bad_argument(
    store: LocalImageStore, saved: SavedImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(name: str, *, max_bytes: int) -> bytes:
        raise StorageError(f"could not read {name} from {store.output_dir}: I/O error")

    monkeypatch.setattr(store, "read", broken)
    with pytest.raises(StorageError, match="I/O error"):
        ImageResolver(store).resolve(handle(saved))


# --- allowed directories ------------------------------------------------------------------------


def test_an_image_in_an_allowed_directory_resolves(store: LocalImageStore, tmp_path: Path) -> None:
    allowed = tmp_path / "inputs"
    (allowed / "nested").mkdir(parents=True)
    data = encode_image("webp", 8, 8, tag="input")
    (allowed / "nested" / "photo.webp").write_bytes(data)
    (allowed / "link.webp").symlink_to(allowed / "nested" / "photo.webp")

    resolver = ImageResolver(store, allowed_dirs=[tmp_path / "nothing", str(allowed)])

    for ref in (str(allowed / "nested" / "photo.webp"), str(allowed / "link.webp")):
        image = resolver.resolve(ref)
        assert (image.data, image.mime_type, image.ref) == (data, "image/webp", ref)
        assert image.filename == f"{image.sha256[:16]}.webp"


def test_allowed_directories_do_not_extend_past_their_symlinks(
    store: LocalImageStore, tmp_path: Path
) -> None:
    allowed = tmp_path / "inputs"
    allowed.mkdir()
    outside = tmp_path / "private.png"
    outside.write_bytes(png("private"))
    (allowed / "escape.png").symlink_to(outside)
    (allowed / "dir").symlink_to(tmp_path, target_is_directory=True)
    (allowed / "notes.txt").write_text("hello")
    (allowed / ".secret.png").write_bytes(png("dotfile"))
    resolver = ImageResolver(store, allowed_dirs=[allowed])

    for ref in (
        str(allowed / "escape.png"),
        str(allowed / "dir" / "private.png"),
        str(tmp_path / "inputs-evil.png"),
    ):
        assert "outside the places this tool may read" in refusal(resolver, ref)
    assert "not a recognisable image" in refusal(resolver, str(allowed / "notes.txt"))
    assert "not a readable image file" in refusal(resolver, str(allowed / ".secret.png"))
    assert "there is no image" in refusal(resolver, str(allowed / "missing.png"))
    assert "outside the places this tool may read" in refusal(resolver, str(allowed))


# --- URLs ---------------------------------------------------------------------------------------


def test_an_http_url_is_downloaded_with_fetch(store: LocalImageStore) -> None:
    data = png("remote")
    fetched: list[str] = []

    def fetch(url: str) -> tuple[bytes, str | None]:
        fetched.append(url)
        return data, "image/png"

    image = ImageResolver(store, fetch=fetch).resolve("https://cdn.example.com/a.png?sig=1")

    assert fetched == ["https://cdn.example.com/a.png?sig=1"]
    assert (image.data, image.ref) == (data, "https://cdn.example.com/a.png?sig=1")


async def test_aresolve_downloads_with_afetch_or_fetch_in_a_thread(
    store: LocalImageStore,
) -> None:
    data = png("async remote")
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def fetch(url: str) -> tuple[bytes, str | None]:
        threads.append(threading.get_ident())
        return data, None

    async def afetch(url: str) -> tuple[bytes, str | None]:
        await asyncio.sleep(0)
        return data, None

    assert (await ImageResolver(store, fetch=fetch).aresolve("http://x.test/a")).data == data
    assert threads
    assert threads[0] != loop_thread
    assert (await ImageResolver(store, afetch=afetch).aresolve("http://x.test/a")).data == data
    # Only an async fetch: the sync resolve cannot download.
    assert "does not download URLs" in refusal(
        ImageResolver(store, afetch=afetch), "http://x.test/a"
    )


def test_a_failed_download_is_a_bad_argument_without_the_signature(
    store: LocalImageStore, saved: SavedImage
) -> None:
    def fetch(url: str) -> tuple[bytes, str | None]:
        raise ImageDownloadError("could not download https://cdn.example.com/a.png: HTTP 403")

    url = "https://user:pw@cdn.example.com/a.png?X-Amz-Signature=SIGNATURE-SECRET"
    with pytest.raises(InvalidArgumentError) as info:
        ImageResolver(store, fetch=fetch).resolve(url)

    message = str(info.value)
    assert "could not download 'https://cdn.example.com/a.png'" in message
    assert "SIGNATURE-SECRET" not in message
    assert "pw" not in message
    assert handle(saved) in message
    assert isinstance(info.value.__cause__, ImageDownloadError)


def test_urls_are_refused_without_fetch_and_non_images_after_it(store: LocalImageStore) -> None:
    assert "does not download URLs" in refusal(ImageResolver(store), "https://x.test/a.png")
    html = ImageResolver(store, fetch=lambda url: (b"<html></html>", "text/html"))
    assert "not a recognisable image (declared 'text/html')" in refusal(html, "https://x.test/")


# --- a remote store (in memory) -----------------------------------------------------------------


def test_remote_store_reads_lists_and_resolves(memory_store: RemoteImageStore) -> None:
    first = memory_store.save(png("m1"))
    second = memory_store.save(encode_image("jpeg", 8, 8, tag="m2"))
    memory_store.save(png("m-preview"), preview=True)
    resolver = ImageResolver(memory_store)

    assert sorted(memory_store.names()) == sorted(
        [f"{first.sha256[:16]}.png", f"{second.sha256[:16]}.jpg"]
    )
    assert set(resolver.known_handles()) == {handle(first), handle(second)}
    for saved in (first, second):
        assert resolver.resolve(handle(saved)).sha256 == saved.sha256
        assert resolver.resolve(saved.uri).sha256 == saved.sha256
    with pytest.raises(FileNotFoundError):
        memory_store.read("0123456789abcdef.png", max_bytes=100)
    with pytest.raises(InvalidArgumentError, match="larger than"):
        memory_store.read(f"{first.sha256[:16]}.png", max_bytes=10)


async def test_remote_store_aresolve(memory_store: RemoteImageStore) -> None:
    saved = memory_store.save(png("am"))
    resolver = ImageResolver(memory_store)
    assert (await resolver.aresolve(handle(saved))).sha256 == saved.sha256
    assert (await resolver.aresolve(saved.uri)).sha256 == saved.sha256
    assert await memory_store.aread(saved.uri.rsplit("/", 1)[-1], max_bytes=1 << 20) == (
        memory_store.read(saved.uri.rsplit("/", 1)[-1], max_bytes=1 << 20)
    )


def test_remote_uris_outside_the_prefix_are_refused(memory_store: RemoteImageStore) -> None:
    saved = memory_store.save(png("scope"))
    name = saved.uri.rsplit("/", 1)[-1]
    root = saved.uri.rsplit("/", 1)[0]  # memory://handles-.../images
    bucket_root = root.rsplit("/", 1)[0]
    fs = memory_store.filesystem
    for elsewhere in (f"{bucket_root}/other/{name}", f"{bucket_root}/images2/{name}"):
        fs.pipe_file(fs._strip_protocol(elsewhere), png("scope"))
    resolver = ImageResolver(memory_store)

    for ref in (
        f"{bucket_root}/other/{name}",
        f"{bucket_root}/images2/{name}",
        f"memory://another-bucket/images/{name}",
        f"{bucket_root}/{name}",
        f"{saved.uri}?versionId=1",
        f"s3://{saved.uri.removeprefix('memory://')}",
    ):
        message = refusal(resolver, ref)
        assert "not in this tool's storage" in message, ref
        assert handle(saved) in message
    assert "'..'" in refusal(resolver, f"{root}/../other/{name}")
    assert "'..'" in refusal(resolver, f"{root}/sub/../{name}")
    assert "streamed preview" in refusal(resolver, f"{root}/preview-{name}")
    assert "not in this tool's storage" in refusal(resolver, f"{root}/.{name}")


def test_remote_names_and_reads_refuse_unsafe_names(memory_store: RemoteImageStore) -> None:
    for bad in ("../x.png", "/abs.png", "a//b.png", ".part", "a\\b.png", "a\x00.png", ""):
        with pytest.raises(ValueError, match="name"):
            memory_store.read(bad, max_bytes=10)
    assert memory_store.name_of("memory://elsewhere/x.png") is None


def test_a_tampered_remote_object_is_refused(memory_store: RemoteImageStore) -> None:
    saved = memory_store.save(png("original"))
    fs = memory_store.filesystem
    fs.pipe_file(fs._strip_protocol(saved.uri), png("replaced"))
    assert "changed after it was saved" in refusal(ImageResolver(memory_store), handle(saved))


def test_a_public_link_of_the_store_is_read_from_the_store() -> None:
    bucket = f"handles-{uuid.uuid4().hex[:12]}"
    store = RemoteImageStore(
        f"memory://{bucket}/images", public_base_url="https://cdn.example.com/"
    )
    try:
        saved = store.save(png("public"))
        assert saved.link is not None
        assert saved.link.startswith(f"https://cdn.example.com/{bucket}/images/")

        def fetch(url: str) -> tuple[bytes, str | None]:
            raise AssertionError(f"downloaded {url}")

        resolver = ImageResolver(store, fetch=fetch)
        assert resolver.resolve(saved.link).sha256 == saved.sha256
        assert store.name_of(saved.link) == saved.link.rsplit("/", 1)[-1]
        for other in (
            f"https://cdn.example.com/{bucket}/other/{saved.link.rsplit('/', 1)[-1]}",
            f"https://cdn.example.com/{bucket}/images/%2e%2e/x.png",
            f"{saved.link}?download=1",
        ):
            assert store.name_of(other) is None
    finally:
        store.filesystem.rm(f"/{bucket}", recursive=True)

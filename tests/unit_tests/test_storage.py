"""Tests for langchain_imagegen/storage (images.py, local.py): sniffing, strict base64,
atomic content-hash saves on local disk.

Every image is a real minimal file built here (a PNG from zlib + struct, a hand-assembled
baseline JPEG, the classic 1x1 lossless WebP and GIF). No network; files go under tmp_path.
"""

from __future__ import annotations

import base64
import dataclasses
import errno
import hashlib
import io
import os
import struct
import threading
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest

from langchain_imagegen import storage
from langchain_imagegen.errors import CorruptImageError, ImageGenError, StorageError
from langchain_imagegen.storage import (
    ImageStore,
    SavedImage,
    decode_b64_image,
    sniff_image_type,
)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def make_png(width: int = 1, height: int = 1, gray: int = 0) -> bytes:
    """A valid 8-bit grayscale PNG: signature, IHDR, IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes([gray]) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


# A baseline 1x1 grayscale JPEG: one 8x8 block, DC diff 0 and EOB, each coded by a one-symbol
# Huffman table (code "0"), so the scan is the bits 00 padded with ones: 0x3F.
JPEG = bytes.fromhex(
    "ffd8"  # SOI
    "ffdb0043"
    + "00"
    + "01" * 64  # DQT: table 0, all ones
    + "ffc0000b08000100010101"
    + "1100"  # SOF0: 8-bit, 1x1, 1 component, 1x1 sampling, Tq 0
    + "ffc40014"
    + "00"
    + "01"
    + "00" * 15
    + "00"  # DHT: DC table 0, one code -> category 0
    + "ffc40014"
    + "10"
    + "01"
    + "00" * 15
    + "00"  # DHT: AC table 0, one code -> EOB
    + "ffda0008"
    + "01"
    + "0100"
    + "003f00"  # SOS: 1 component, tables 0/0, Ss 0, Se 63
    + "3f"  # entropy-coded data
    + "ffd9"  # EOI
)
# The 1x1 lossless WebP feature-detection image (RIFF size 26 -> 34 bytes).
WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
# The classic 1x1 transparent GIF89a (43 bytes, ends with the 0x3B trailer).
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1">'
    b'<rect width="1" height="1"/></svg>'
)
SVG_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
    b"<!-- made by a model -->\n" + SVG + b"\n"
)
PNG = make_png()

IMAGES = {
    "png": (PNG, "image/png"),
    "jpg": (JPEG, "image/jpeg"),
    "webp": (WEBP, "image/webp"),
    "gif": (GIF, "image/gif"),
    "svg": (SVG_XML, "image/svg+xml"),
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- the constants are what they claim to be ---------------------------------------------


def test_png_constant_is_well_formed() -> None:
    assert PNG.startswith(b"\x89PNG\r\n\x1a\n")
    assert PNG.endswith(b"\x00\x00\x00\x00IEND\xaeB`\x82")  # the IEND CRC is fixed
    # the IDAT really inflates to one filtered 1-pixel scanline
    idat_len = struct.unpack(">I", PNG[33:37])[0]
    assert zlib.decompress(PNG[41 : 41 + idat_len]) == b"\x00\x00"


def test_webp_and_jpeg_constants_are_well_formed() -> None:
    assert int.from_bytes(WEBP[4:8], "little") + 8 == len(WEBP)
    # every JPEG marker segment length adds up, and the scan ends with EOI
    pos = 2
    while JPEG[pos + 1] != 0xDA:
        assert JPEG[pos] == 0xFF
        pos += 2 + int.from_bytes(JPEG[pos + 2 : pos + 4], "big")
    sos_end = pos + 2 + int.from_bytes(JPEG[pos + 2 : pos + 4], "big")
    assert JPEG[sos_end:] == b"\x3f\xff\xd9"


# --- sniff_image_type ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, ("image/png", "png")),
        (JPEG, ("image/jpeg", "jpg")),
        (WEBP, ("image/webp", "webp")),
        (GIF, ("image/gif", "gif")),
        (GIF.replace(b"GIF89a", b"GIF87a"), ("image/gif", "gif")),
        (SVG, ("image/svg+xml", "svg")),
        (SVG_XML, ("image/svg+xml", "svg")),
        (b"\xef\xbb\xbf  <SVG viewBox='0 0 1 1'></SVG>", ("image/svg+xml", "svg")),
        (b"<?xml version='1.0'?><svg/>", ("image/svg+xml", "svg")),
    ],
)
def test_sniff_recognises_formats(data: bytes, expected: tuple[str, str]) -> None:
    assert sniff_image_type(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world",
        b'{"error": {"message": "boom"}}',
        b"<html><body>502 Bad Gateway</body></html>",
        b"<?xml version='1.0'?><html/>",
        b"<svgfoo></svgfoo>",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a RIFF that is not WebP
        b"\x89PNG",  # too short to be a PNG signature
        b"GIF90a",
    ],
)
def test_sniff_rejects_non_images(data: bytes) -> None:
    assert sniff_image_type(data) is None


# --- decode_b64_image ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_decode_round_trips_every_format(name: str) -> None:
    data = IMAGES[name][0]
    assert decode_b64_image(b64(data)) == data


def test_decode_accepts_data_url_and_whitespace() -> None:
    text = b64(PNG)
    assert decode_b64_image(f"data:image/png;base64,{text}") == PNG
    assert decode_b64_image(f"  DATA:image/png;charset=binary;base64,{text}\n") == PNG
    wrapped = "\n".join(text[i : i + 16] for i in range(0, len(text), 16))
    assert decode_b64_image(f"\r\n{wrapped}\r\n") == PNG


def test_decode_cut_in_half_raises() -> None:
    text = b64(make_png(8, 8, 200))
    half = text[: len(text) // 2]
    if len(half) % 4 == 0:  # make sure the padding really is wrong
        half = half[:-1]
    with pytest.raises(CorruptImageError) as info:
        decode_b64_image(half)
    message = str(info.value)
    assert f"the server sent a truncated or corrupt base64 image ({len(half)} bytes)" in message
    assert "invalid base64" in message


def test_decode_cut_at_block_boundary_raises_for_missing_iend() -> None:
    text = b64(make_png(8, 8, 200))
    cut = text[: (len(text) // 2) // 4 * 4]
    assert len(cut) % 4 == 0
    base64.b64decode(cut, validate=True)  # the padding is fine...
    with pytest.raises(CorruptImageError, match=r"truncated or corrupt base64 image .*IEND"):
        decode_b64_image(cut)  # ...but the image is not


def test_decode_every_truncation_of_a_png_raises() -> None:
    text = b64(PNG)
    for end in range(len(text) - 4):  # everything short of the last base64 block
        with pytest.raises(CorruptImageError):
            decode_b64_image(text[:end])


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_decode_every_byte_truncation_raises(name: str) -> None:
    data = IMAGES[name][0].rstrip(b"\n")
    for end in range(len(data)):
        with pytest.raises(CorruptImageError, match="truncated or corrupt"):
            decode_b64_image(b64(data[:end]))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("data:image/png;base64,", "empty"),
        (b64(PNG)[:20] + "!!" + b64(PNG)[22:], "invalid base64"),
        (b64(PNG).replace("A", "-", 1), "invalid base64"),  # url-safe alphabet is not accepted
        (b64(PNG) + "==", "invalid base64"),
        ("ümlaut", "invalid base64"),
        (b64(b"hello world, not an image"), "not a PNG, JPEG, WebP, GIF or SVG"),
        (b64(JPEG[:-2]), "FFD9"),
        (b64(WEBP[:-4]), "RIFF header announces 34 bytes"),
        (b64(GIF[:-1]), "GIF has no trailer"),
        (b64(SVG[:-6]), "</svg>"),
    ],
)
def test_decode_rejects_corrupt_payloads(payload: str, reason: str) -> None:
    with pytest.raises(CorruptImageError) as info:
        decode_b64_image(payload)
    assert "the server sent a truncated or corrupt base64 image" in str(info.value)
    assert reason in str(info.value)
    assert isinstance(info.value, ImageGenError)
    # The agent is told the image was damaged, not to check a disk that is fine.
    assert info.value.agent_message().endswith("ask again (nothing was saved for it).")


def test_decode_rejects_non_string() -> None:
    with pytest.raises(CorruptImageError, match="expected a base64 string"):
        decode_b64_image(b64(PNG).encode())  # type: ignore[arg-type]


def test_decode_allocates_the_image_and_no_copy_of_the_text() -> None:
    """``base64.b64decode`` copies the text into ASCII bytes (4/3 of the image) before
    decoding; the upload threads each held one such copy as well as their image."""
    data = PNG[:-12] + os.urandom(1_000_000) + PNG[-12:]  # a 1 MB PNG, to its IEND chunk
    text = b64(data)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decoded = decode_b64_image(text)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert decoded == data
    assert len(data) <= peak < len(data) + len(text) // 4


# --- ImageStore.save -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_save_names_file_by_content_hash(tmp_path: Path, name: str) -> None:
    data, mime = IMAGES[name]
    store = ImageStore(tmp_path / "out")
    saved = store.save(data)
    digest = hashlib.sha256(data).hexdigest()
    path = tmp_path.resolve() / "out" / f"{digest[:16]}.{name}"
    assert saved == SavedImage(
        path=path, mime_type=mime, size_bytes=len(data), sha256=digest, uri=str(path)
    )
    assert saved.link is None
    assert saved.created
    assert saved.path.is_absolute()
    assert saved.path.read_bytes() == data
    assert listing(tmp_path / "out") == [saved.path.name]


def test_saved_image_is_frozen(tmp_path: Path) -> None:
    saved = ImageStore(tmp_path).save(PNG)
    with pytest.raises(dataclasses.FrozenInstanceError):
        saved.path = tmp_path  # type: ignore[misc]


def test_save_creates_missing_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    saved = ImageStore(target).save(PNG)
    assert saved.path.parent == target.resolve()
    assert saved.path.exists()


def test_output_dir_is_made_absolute_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = ImageStore("rel/images")
    assert store.output_dir == (tmp_path / "rel" / "images").resolve()
    monkeypatch.chdir(tmp_path / "..")
    saved = store.save(PNG)
    assert saved.path.parent == (tmp_path / "rel" / "images").resolve()
    assert "rel/images" in repr(store)


def test_extension_comes_from_bytes_not_hint(tmp_path: Path) -> None:
    saved = ImageStore(tmp_path).save(PNG, mime_type_hint="image/jpeg")
    assert saved.path.suffix == ".png"
    assert saved.mime_type == "image/png"


def test_hint_is_a_fallback_for_unsniffable_image_types(tmp_path: Path) -> None:
    avif = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 20
    saved = ImageStore(tmp_path).save(avif, mime_type_hint="image/avif; codecs=av01")
    assert saved.path.suffix == ".avif"
    assert saved.mime_type == "image/avif"
    assert saved.path.read_bytes() == avif


@pytest.mark.parametrize("hint", [None, "image/png", "application/octet-stream", "text/html"])
def test_save_refuses_non_image_bytes(tmp_path: Path, hint: str | None) -> None:
    out = tmp_path / "out"
    with pytest.raises(CorruptImageError, match="not a recognisable image"):
        ImageStore(out).save(b"<html>502 Bad Gateway</html>", mime_type_hint=hint)
    assert listing(out) == []


def test_save_refuses_truncated_image(tmp_path: Path) -> None:
    with pytest.raises(CorruptImageError, match=r"truncated or corrupt PNG image .*IEND"):
        ImageStore(tmp_path).save(PNG[:-12])
    assert listing(tmp_path) == []


def test_save_refuses_empty_and_non_bytes(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    with pytest.raises(CorruptImageError, match="empty"):  # the server's problem, not the disk's
        store.save(b"")
    with pytest.raises(TypeError, match="expected image bytes"):
        store.save(b64(PNG))  # type: ignore[arg-type]


def test_save_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ImageStore(tmp_path)
    first = store.save(PNG)
    mtime = first.path.stat().st_mtime_ns

    def no_write(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the file must not be rewritten")

    monkeypatch.setattr(os, "replace", no_write)
    second = store.save(PNG)
    assert second == first
    assert not second.created
    assert first.path.stat().st_mtime_ns == mtime
    assert listing(tmp_path) == [first.path.name]


def test_save_rewrites_a_corrupt_file_at_the_final_name(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    final = store.save(PNG).path
    final.write_bytes(PNG[:10])  # same name, wrong content
    again = store.save(PNG)
    assert again.created
    assert final.read_bytes() == PNG


def test_different_images_get_different_files(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    paths = {store.save(make_png(gray=g)).path for g in range(5)}
    assert len(paths) == 5
    assert listing(tmp_path) == sorted(p.name for p in paths)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        saved = ImageStore(tmp_path).save(PNG)
    finally:
        os.umask(old)
    assert saved.path.stat().st_mode & 0o777 == 0o640


# --- atomicity and failures ----------------------------------------------------------------


def test_enospc_during_fsync_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StorageError) as info:
        ImageStore(out).save(PNG)
    error = info.value
    assert str(error) == (
        f"could not save image to {out.resolve()}: [Errno 28] {os.strerror(errno.ENOSPC)}"
    )
    assert error.errno == errno.ENOSPC
    assert isinstance(error.__cause__, OSError)
    assert error.__cause__.errno == errno.ENOSPC
    assert listing(out) == []  # no image, no .part


class _FailingWriter(io.BufferedWriter):
    """Writes half the buffer to disk, then fails like a full disk."""

    def write(self, data: Any) -> int:
        view = memoryview(data)
        super().write(view[: len(view) // 2])
        super().flush()
        raise OSError(errno.ENOSPC, "No space left on device")


def test_failure_mid_write_removes_the_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_open = os.open

    def spying_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            seen.append(str(path))
        return real_open(path, flags, *args, **kwargs)

    def failing_fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        assert mode == "wb"
        return _FailingWriter(io.FileIO(fd, "wb"))

    monkeypatch.setattr(os, "open", spying_open)
    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    with pytest.raises(StorageError, match=r"could not save image to .*No space left on device"):
        ImageStore(tmp_path).save(PNG)
    assert len(seen) == 1
    name = Path(seen[0]).name
    assert name.startswith(".")
    assert name.endswith(".part")
    assert Path(seen[0]).parent == tmp_path.resolve()
    assert listing(tmp_path) == []


def test_non_os_error_mid_write_is_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(fd: int) -> None:
        raise RuntimeError("disk controller on fire")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(StorageError, match="RuntimeError: disk controller on fire") as info:
        ImageStore(tmp_path).save(PNG)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert listing(tmp_path) == []


def test_interrupt_mid_write_cleans_up_and_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ImageStore(tmp_path).save(PNG)
    assert listing(tmp_path) == []


def test_interrupt_as_the_temp_file_is_created_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C the moment the temp file exists, before its name is returned (inside
    ``tempfile.mkstemp``, as it was): the file is known and removed all the same."""
    real_open = os.open

    def created_then_interrupted(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, *args, **kwargs)
        if flags & os.O_CREAT:
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "open", created_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        ImageStore(tmp_path).save(PNG)
    monkeypatch.undo()
    assert listing(tmp_path) == []


def test_failed_replace_leaves_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(src: Any, dst: Any) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(StorageError, match="Permission denied") as info:
        ImageStore(tmp_path).save(PNG)
    assert info.value.errno == errno.EACCES
    assert listing(tmp_path) == []


def test_output_dir_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    out = blocker / "images"
    with pytest.raises(StorageError) as info:
        ImageStore(out).save(PNG)
    assert str(info.value).startswith(f"could not save image to {out.resolve()}: ")
    assert info.value.errno in (errno.ENOTDIR, errno.EEXIST)
    assert blocker.read_text() == "x"


def test_output_dir_is_a_regular_file(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(StorageError, match="could not save image to"):
        ImageStore(out).save(PNG)


def test_unwritable_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: Any, **kwargs: Any) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(StorageError) as info:
        ImageStore(tmp_path).save(PNG)
    assert str(info.value).startswith(
        f"could not save image to {tmp_path.resolve()}: [Errno 13] Permission denied"
    )
    assert isinstance(info.value, OSError)
    assert listing(tmp_path) == []


# --- asave ---------------------------------------------------------------------------------


async def test_asave_runs_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real_save = ImageStore.save

    def recording_save(self: ImageStore, data: bytes, **kwargs: Any) -> SavedImage:
        threads.append(threading.get_ident())
        return real_save(self, data, **kwargs)

    monkeypatch.setattr(ImageStore, "save", recording_save)
    store = ImageStore(tmp_path)
    saved = await store.asave(WEBP, mime_type_hint="image/png")
    assert saved.mime_type == "image/webp"
    assert saved.path.read_bytes() == WEBP
    assert threads
    assert threads[0] != threading.get_ident()


async def test_asave_raises_storage_error(tmp_path: Path) -> None:
    with pytest.raises(CorruptImageError, match="not a recognisable image"):
        await ImageStore(tmp_path).asave(b"nope")


# --- discard -------------------------------------------------------------------------------


def test_discard_rolls_back_a_save(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    saved = [store.save(PNG), store.save(JPEG)]
    for item in saved:
        assert store.discard(item)
    assert listing(tmp_path) == []
    assert not store.discard(saved[0])  # already gone


def test_discard_leaves_files_an_earlier_call_saved(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    earlier = store.save(PNG)
    again = store.save(PNG)  # a later call produced the same image
    assert not store.discard(again)
    assert earlier.path.exists()


def test_discard_refuses_foreign_paths(tmp_path: Path) -> None:
    saved = ImageStore(tmp_path / "a").save(PNG)
    with pytest.raises(ValueError, match="was not saved by"):
        ImageStore(tmp_path / "b").discard(saved)
    assert saved.path.exists()


def test_discard_failure_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ImageStore(tmp_path)
    saved = store.save(PNG)

    def denied(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "unlink", denied)
    with pytest.raises(StorageError, match="could not remove") as info:
        store.discard(saved)
    assert info.value.errno == errno.EACCES


def test_module_exports() -> None:
    assert set(storage.__all__) == {
        "DEFAULT_LINK_EXPIRES_IN",
        "ImageStore",
        "ImageStoreBase",
        "LocalImageStore",
        "RemoteImageStore",
        "SavedImage",
        "decode_b64_image",
        "is_url",
        "open_store",
        "sniff_image_type",
    }
    assert storage.ImageStore is storage.LocalImageStore

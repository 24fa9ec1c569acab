"""Local storage: images written to one directory, atomically, named by content hash.

:class:`LocalImageStore` writes images atomically (temp file in the same directory,
``fsync``, ``os.replace``; an interrupted save, Ctrl-C included, removes its temp file),
names them by content hash so saving twice is a no-op, and turns every disk failure into a
:class:`StorageError` that names the directory and the OS reason. Nothing here touches the
network or imports fsspec.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import secrets
import stat
from pathlib import Path

from langchain_imagegen.errors import InvalidArgumentError, StorageError
from langchain_imagegen.storage.base import SavedImage
from langchain_imagegen.storage.images import (
    content_hash_of,
    content_name,
    image_kind,
    name_segments,
)

__all__ = ["ImageStore", "LocalImageStore", "local_name_within", "read_file_within"]

_CHUNK = 1 << 20
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
# Reads: never through a symlink swapped in as the last component, and never blocked on a
# FIFO planted under the root (it is refused after ``fstat`` as not a regular file).
_O_READ = os.O_RDONLY | _O_BINARY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` is set-and-get, racy)."""
    with (
        contextlib.suppress(OSError, ValueError),
        open("/proc/self/status", encoding="ascii", errors="replace") as status,
    ):
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _file_sha256(path: Path, size: int) -> str | None:
    """The sha256 of a regular file of exactly ``size`` bytes, else ``None``."""
    try:
        if not path.is_file() or path.stat().st_size != size:
            return None
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def _inside(root: str, target: str) -> bool:
    try:
        return target != root and os.path.commonpath([root, target]) == root
    except ValueError:  # Windows: another drive
        return False


def local_name_within(root: str | os.PathLike[str], path: str) -> str | None:
    """The name of the absolute ``path`` relative to the directory ``root`` (``/``-separated),
    both resolved with ``os.path.realpath`` (symlinks followed); ``None`` when ``path`` is
    not absolute or leads outside ``root``."""
    if "\x00" in path or not os.path.isabs(path):
        return None
    base = os.path.realpath(root)
    target = os.path.realpath(path)
    if not _inside(base, target):
        return None
    return os.path.relpath(target, base).replace(os.sep, "/")


def read_file_within(root: str | os.PathLike[str], name: str, *, max_bytes: int) -> bytes:
    """The bytes of the regular file ``name`` under the directory ``root``, at most
    ``max_bytes``.

    ``name`` is checked (:func:`~langchain_imagegen.storage.images.name_segments`), joined to
    ``root`` and resolved with ``os.path.realpath``: a symlink may point elsewhere under
    ``root``, never out of it. The resolved file is opened without following a symlink and
    must be a regular file; at most ``max_bytes + 1`` bytes are read.

    Raises:
        ValueError: an unsafe name, a path that leads out of ``root``, not a regular file.
        FileNotFoundError: nothing by that name.
        InvalidArgumentError: the file is larger than ``max_bytes``.
        OSError: the file could not be read.
    """
    segments = name_segments(name)
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, *segments))
    if not _inside(base, target):
        raise ValueError(f"{name!r} leads out of its directory")
    fd = os.open(target, _O_READ)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{name!r} is not a regular file")
        if info.st_size > max_bytes:
            raise _too_large(name, info.st_size, max_bytes)
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0 and (chunk := os.read(fd, min(_CHUNK, remaining))):
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:  # it grew since fstat
        raise _too_large(name, None, max_bytes)
    return data


def _too_large(name: str, size: int | None, max_bytes: int) -> InvalidArgumentError:
    said = f"{size:,} bytes" if size is not None else "larger"
    return InvalidArgumentError(
        f"{name} is {said}, over the {max_bytes:,}-byte limit for an input image"
    )


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); best effort, meaningless on Windows."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class LocalImageStore:
    """Saves images under one directory, atomically, named by content hash.

    Files are named ``<first 16 hex of sha256>.<ext>``, the extension sniffed from the bytes.
    The directory (and its parents) is created on the first save. A disk failure raises
    :class:`StorageError`, bytes that are not a complete image (empty ones included) raise
    :class:`CorruptImageError` (the server's problem); neither leaves a partial file behind.
    """

    is_remote = False

    def __init__(self, output_dir: str | os.PathLike[str]) -> None:
        self.output_dir: Path = Path(output_dir).expanduser().resolve()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.output_dir)!r})"

    def describe(self) -> str:
        """The directory, absolute."""
        return str(self.output_dir)

    def _failure(self, exc: BaseException) -> StorageError:
        error = StorageError(f"could not save image to {self.output_dir}: {_describe(exc)}")
        if isinstance(exc, OSError):
            error.errno = exc.errno
        return error

    def save(
        self,
        data: bytes,
        *,
        mime_type_hint: str | None = None,
        metadata: dict[str, str] | None = None,
        preview: bool = False,
    ) -> SavedImage:
        """Write ``data`` to ``<output_dir>/<hash16>.<ext>`` atomically and describe the file.

        ``mime_type_hint`` is only used when the bytes are not a sniffable format and the hint
        names another image type (e.g. ``image/avif``). Saving the same bytes again does not
        rewrite the file. ``metadata`` is accepted for the interface's sake: a file has
        nowhere portable to keep it. A streamed ``preview`` is named ``preview-<hash16>.<ext>``.

        Raises:
            CorruptImageError: the bytes are empty or not a complete image.
            TypeError: ``data`` is not bytes.
            StorageError: the directory cannot be created or written (the message names it
                and the OS reason; ``errno`` is copied from the OS error).
        """
        mime_type, ext = image_kind(data, mime_type_hint, str(self.output_dir))
        size = len(data)
        sha256, name = content_name(data, ext, preview=preview)
        final = self.output_dir / name
        if _file_sha256(final, size) == sha256:
            return SavedImage(final, mime_type, size, sha256, created=False, uri=str(final))

        # Named before it exists, so that an interruption anywhere (Ctrl-C included: the
        # ``finally`` runs for it too) cannot leave a temp file nobody knows of.
        tmp = self.output_dir / f".{secrets.token_hex(8)}.part"
        replaced = False
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_current_umask())  # created 0600, as mkstemp does
            os.replace(tmp, final)
            replaced = True
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            if not replaced:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        _fsync_dir(self.output_dir)
        return SavedImage(final, mime_type, size, sha256, created=True, uri=str(final))

    async def asave(
        self,
        data: bytes,
        *,
        mime_type_hint: str | None = None,
        metadata: dict[str, str] | None = None,
        preview: bool = False,
    ) -> SavedImage:
        """:meth:`save` in a worker thread, so disk writes do not block the event loop.

        If the awaiting task is cancelled, the write still completes in its thread.
        """
        return await asyncio.to_thread(
            self.save, data, mime_type_hint=mime_type_hint, metadata=metadata, preview=preview
        )

    def link(
        self, uri: str, *, expires_in: int | None = None
    ) -> tuple[str | None, dt.datetime | None]:
        """``(None, None)``: a local file has no http link (its path is where it is)."""
        return None, None

    def discard(self, saved: SavedImage) -> bool:
        """Remove an image this store saved, to roll back a call that later failed.

        Returns ``True`` if the file was removed, ``False`` if there was nothing to remove
        (already gone, or the save found the file already there: it belongs to an earlier
        call). In a rollback, wrap it in ``contextlib.suppress(StorageError)``.

        Raises:
            ValueError: ``saved`` is not in this store's directory.
            StorageError: the file exists but could not be removed.
        """
        if saved.path is None or saved.path.parent != self.output_dir:
            raise ValueError(f"{saved.path or saved.uri} was not saved by {self!r}")
        if not saved.created:
            return False
        try:
            saved.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            error = StorageError(f"could not remove {saved.path}: {exc}")
            error.errno = exc.errno
            raise error from exc
        return True

    # --- reading back ------------------------------------------------------------------

    def read(self, name: str, *, max_bytes: int) -> bytes:
        """The bytes of ``<output_dir>/<name>``, at most ``max_bytes``: see
        :func:`read_file_within` (symlinks may not lead out of the directory).

        Raises:
            ValueError: an unsafe name, a path out of the directory, not a regular file.
            FileNotFoundError: no such file.
            InvalidArgumentError: the file is larger than ``max_bytes``.
            StorageError: the file could not be read (the message names the directory).
        """
        try:
            return read_file_within(self.output_dir, name, max_bytes=max_bytes)
        except (ValueError, FileNotFoundError):
            raise
        except OSError as exc:
            error = StorageError(f"could not read {name} from {self.output_dir}: {exc.strerror}")
            error.errno = exc.errno
            raise error from exc

    async def aread(self, name: str, *, max_bytes: int) -> bytes:
        """:meth:`read` in a worker thread."""
        return await asyncio.to_thread(self.read, name, max_bytes=max_bytes)

    def names(self) -> list[str]:
        """The finished images' file names (``<hash16>.<ext>``, regular files only), newest
        first by modification time; ``[]`` when the directory does not exist yet.

        Raises:
            StorageError: the directory could not be listed.
        """
        found: list[tuple[int, str]] = []
        try:
            with os.scandir(self.output_dir) as entries:
                for entry in entries:
                    if content_hash_of(entry.name) is None:
                        continue
                    with contextlib.suppress(OSError):  # removed meanwhile
                        if entry.is_file(follow_symlinks=False):
                            found.append(
                                (entry.stat(follow_symlinks=False).st_mtime_ns, entry.name)
                            )
        except FileNotFoundError:
            return []
        except OSError as exc:
            error = StorageError(f"could not list the images in {self.output_dir}: {exc.strerror}")
            error.errno = exc.errno
            raise error from exc
        found.sort(key=lambda item: (-item[0], item[1]))
        return [name for _, name in found]

    def name_of(self, ref: str) -> str | None:
        """The name under the directory of the absolute path ``ref`` (symlinks followed), or
        ``None`` when it is not absolute or leads elsewhere."""
        return local_name_within(self.output_dir, ref)


ImageStore = LocalImageStore
"""The local store's original name, kept for existing imports."""

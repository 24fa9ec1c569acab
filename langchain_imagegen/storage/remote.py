"""Remote storage: images written to any fsspec filesystem (S3, GCS, Azure, memory...).

:class:`RemoteImageStore` keeps each image at ``<prefix>/<hash16>.<ext>`` (content-hashed, so
a retry or a second worker writing the same bytes rewrites the same object) and gives it an
http(s) link: the store's ``public_base_url`` joined with the object key, else a link signed
by the filesystem (``fs.sign(path, expiration=...)``: s3fs presigns, see the fsspec API
reference for ``AbstractFileSystem.sign``). A filesystem that cannot sign (``memory://``,
``file://``...) and no ``public_base_url``: no link, the storage URI is what callers get.

Writes are atomic from a reader's point of view: on object stores one ``pipe_file`` is one
PUT (s3fs sends ``put_object`` below 100 MB), which lands whole or not at all; on other
filesystems the bytes go to a temp name and are moved into place. Content type (and optional
user metadata) travel with the PUT where the filesystem takes them (s3fs passes keyword
arguments on to ``put_object``; gcsfs takes ``content_type``/``metadata``).

``storage_options`` (credentials, endpoints) go to fsspec only: never into ``repr``, an
error message or a :class:`SavedImage`. This module imports fsspec; the package imports it
only when a URL is used.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import fsspec
from fsspec.core import url_to_fs

from langchain_imagegen.errors import ConfigurationError, InvalidArgumentError, StorageError
from langchain_imagegen.storage import DEFAULT_LINK_EXPIRES_IN
from langchain_imagegen.storage.base import SavedImage, scrub, secret_strings
from langchain_imagegen.storage.images import (
    content_hash_of,
    content_name,
    image_kind,
    name_segments,
)

__all__ = ["RemoteImageStore"]

_Link: TypeAlias = tuple[str | None, dt.datetime | None, str | None]
"""An object's http(s) link, when it expires, and why there is none (signing failed)."""


def _without_credentials(url: str) -> str:
    """``url`` (chained ``a::b`` included) without user info, query or fragment."""
    parts = []
    for part in url.split("::"):
        split = urlsplit(part)
        host = split.hostname or ""
        if split.port is not None:
            host += f":{split.port}"
        parts.append(urlunsplit((split.scheme, host, split.path, "", "")))
    return "::".join(parts)


def _wait_for(future: concurrent.futures.Future[Any]) -> Any:
    """``future.result()``, waking every second as fsspec's own ``sync`` does: Windows
    delivers Ctrl-C only when a wait returns."""
    while not future.done():
        concurrent.futures.wait([future], timeout=1)
    return future.result()


_MODIFIED_KEYS = ("LastModified", "last_modified", "mtime", "updated", "created")
"""Where fsspec filesystems put an object's modification time in ``info``: s3fs, adlfs,
the local filesystem, gcsfs (an ISO string), the memory filesystem."""


def _modified(info: Mapping[str, Any]) -> float:
    """When an object was last written (a POSIX timestamp), ``0.0`` if its listing says not."""
    for key in _MODIFIED_KEYS:
        value = info.get(key)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.timezone.utc)
            return value.timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return _modified({key: dt.datetime.fromisoformat(value.replace("Z", "+00:00"))})
    return 0.0


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, OSError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _ascii_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """User metadata object stores accept (HTTP headers: printable ASCII only)."""
    return {
        key: value
        for key, value in (metadata or {}).items()
        if key.isascii() and value.isascii() and key.isprintable() and value.isprintable()
    }


def _s3_put(mime_type: str, metadata: dict[str, str]) -> dict[str, Any]:
    return {"ContentType": mime_type, **({"Metadata": metadata} if metadata else {})}


def _gcs_put(mime_type: str, metadata: dict[str, str]) -> dict[str, Any]:
    return {"content_type": mime_type, **({"metadata": metadata} if metadata else {})}


def _azure_put(mime_type: str, metadata: dict[str, str]) -> dict[str, Any]:
    # adlfs sets its own ``metadata`` on upload_blob, so only the content type goes along.
    try:
        from azure.storage.blob import ContentSettings  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - adlfs depends on azure-storage-blob
        return {}
    return {"content_settings": ContentSettings(content_type=mime_type)}


@dataclass(frozen=True)
class _ObjectStore:
    """What this module knows of one object store's fsspec protocol."""

    extra: str
    """The package extra that installs its filesystem (``pip install 'langchain-imagegen[…]'``)."""
    put_arguments: Callable[[str, dict[str, str]], dict[str, Any]]
    """How its filesystem takes the content type and user metadata of a PUT."""


_S3 = _ObjectStore("s3", _s3_put)
_GCS = _ObjectStore("gcs", _gcs_put)
_AZURE = _ObjectStore("azure", _azure_put)
_OBJECT_STORES = {
    "s3": _S3,
    "s3a": _S3,
    "gs": _GCS,
    "gcs": _GCS,
    "az": _AZURE,
    "abfs": _AZURE,
    "abfss": _AZURE,
}
_BUCKETED = frozenset(_OBJECT_STORES) | {"oss"}
"""Protocols whose first path component is the bucket (container), not part of the key."""
_SINGLE_PUT = _BUCKETED | {"memory"}
"""Filesystems where one ``pipe_file`` replaces the object whole: no temp name needed."""


class RemoteImageStore:
    """Saves images to an fsspec URL (``s3://bucket/prefix``, ``gs://``, ``az://``,
    ``memory://``...), named by content hash, and links each one.

    Args:
        url: where images go; the objects are ``<url>/<hash16>.<ext>``.
        storage_options: passed to fsspec (``fsspec.core.url_to_fs(url, **storage_options)``),
            as pandas and dask do: credentials, ``endpoint_url``, ``client_kwargs``... Never
            shown anywhere. Without credentials here each filesystem finds its own
            (environment, profiles, instance roles).
        link_expires_in: seconds a signed link stays valid.
        public_base_url: the public http(s) root of the bucket (or of the filesystem): links
            are this joined with the object key (the path below the bucket), never signed,
            never expiring.
        filesystem: an fsspec filesystem instance to use instead of building one from
            ``url`` and ``storage_options``.

    Raises:
        ConfigurationError: fsspec does not know the protocol, its package (s3fs, gcsfs,
            adlfs) is not installed (the message says which extra to install), or the
            filesystem refused ``storage_options``.
    """

    is_remote = True

    def __init__(
        self,
        url: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        link_expires_in: int = DEFAULT_LINK_EXPIRES_IN,
        public_base_url: str | None = None,
        filesystem: fsspec.AbstractFileSystem | None = None,
    ) -> None:
        self._where = _without_credentials(url).rstrip("/")
        self._secrets = secret_strings(storage_options or {})
        if link_expires_in <= 0:
            raise ConfigurationError("link_expires_in must be a positive number of seconds")
        self.link_expires_in = link_expires_in
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        if filesystem is None:
            try:
                filesystem, root = url_to_fs(url, **dict(storage_options or {}))
            except Exception as exc:  # noqa: BLE001 - unknown protocol, missing package, bad option
                # ``from None``: the original may quote an option's value.
                raise self._configuration_error(url, exc) from None
        else:
            root = filesystem._strip_protocol(url)
        self._fs: fsspec.AbstractFileSystem = filesystem
        self._pid = os.getpid()
        self._root: str = str(root).rstrip("/")
        protocols = self._fs.protocol
        self._protocol: str = protocols if isinstance(protocols, str) else protocols[0]
        self._single_put = self._protocol in _SINGLE_PUT
        self._async_put = self._single_put and bool(getattr(self._fs, "async_impl", False))
        """Whether one PUT can run as a coroutine on the filesystem's own event loop (s3fs,
        gcsfs, adlfs), leaving the caller's thread free meanwhile."""
        store = _OBJECT_STORES.get(self._protocol)
        self._put_arguments = store.put_arguments if store else None
        self.can_sign: bool = type(self._fs).sign is not fsspec.AbstractFileSystem.sign
        """Whether the filesystem signs links (s3fs, gcsfs, adlfs do; memory and local don't)."""

    def _configuration_error(self, url: str, exc: BaseException) -> ConfigurationError:
        scheme = urlsplit(url.rsplit("::", maxsplit=1)[-1]).scheme
        store = _OBJECT_STORES.get(scheme)
        hint = f" (pip install 'langchain-imagegen[{store.extra}]')" if store else ""
        return ConfigurationError(
            f"cannot store images at {self._where}: {self._scrub(_reason(exc))}{hint}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where!r})"

    def describe(self) -> str:
        """The URL images go to, without credentials (``s3://bucket/prefix``)."""
        return self._where

    @property
    def filesystem(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem the images are written to.

        In a forked child (the workers of a pre-forking server that built the tool before
        forking) a fresh instance with the same options: fsspec's async filesystems belong
        to the process that made them ("This class is not fork-safe").
        """
        if self._pid != os.getpid():
            made = self._fs
            self._fs = type(made)(*made.storage_args, **made.storage_options)
            self._pid = os.getpid()
        return self._fs

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _failure(self, action: str, exc: BaseException) -> StorageError:
        error = StorageError(f"could not {action} {self._where}: {self._scrub(_reason(exc))}")
        if isinstance(exc, OSError):
            error.errno = exc.errno
        return error

    # --- saving --------------------------------------------------------------------------

    def _prepare(
        self,
        data: bytes,
        mime_type_hint: str | None,
        metadata: Mapping[str, str] | None,
        preview: bool,
    ) -> tuple[str, str, str, dict[str, Any]]:
        mime_type, ext = image_kind(data, mime_type_hint, self._where)
        sha256, name = content_name(data, ext, preview=preview)
        put = (
            self._put_arguments(mime_type, _ascii_metadata(metadata)) if self._put_arguments else {}
        )
        return mime_type, sha256, f"{self._root}/{name}", put

    def _saved(
        self, data: bytes, mime_type: str, sha256: str, path: str, link: _Link
    ) -> SavedImage:
        link_url, expires_at, link_error = link
        return SavedImage(
            None,
            mime_type,
            len(data),
            sha256,
            created=True,
            uri=self.filesystem.unstrip_protocol(path),
            link=link_url,
            link_expires_at=expires_at,
            link_error=link_error,
        )

    def _put(self, path: str, data: bytes, put: dict[str, Any]) -> None:
        fs = self.filesystem
        if self._single_put:
            fs.pipe_file(path, data, **put)
            return
        # A filesystem with files (local, sftp...): readers must not see a half-written file.
        tmp = f"{self._root}/.{secrets.token_hex(8)}.part"
        moved = False
        try:
            fs.makedirs(self._root, exist_ok=True)
            fs.pipe_file(tmp, data, **put)
            fs.mv(tmp, path)
            moved = True
        finally:
            if not moved:
                with contextlib.suppress(Exception):
                    fs.rm(tmp)

    def save(
        self,
        data: bytes,
        *,
        mime_type_hint: str | None = None,
        metadata: dict[str, str] | None = None,
        preview: bool = False,
    ) -> SavedImage:
        """Upload ``data`` to ``<url>/<hash16>.<ext>`` in one PUT and link it.

        Saving the same bytes again rewrites the same object with the same bytes (no read
        first: that would cost a round trip on every save). ``metadata`` (printable ASCII
        entries) is stored as user metadata where the filesystem takes it (s3fs, gcsfs). A
        streamed ``preview`` is named ``preview-<hash16>.<ext>``.

        Raises:
            CorruptImageError: the bytes are empty or not a complete image.
            TypeError: ``data`` is not bytes.
            StorageError: the upload failed; the message names the store (``s3://bucket/
                prefix``) and the reason, never a credential. Nothing is left half-written.
        """
        mime_type, sha256, path, put = self._prepare(data, mime_type_hint, metadata, preview)
        try:
            if self._async_put:
                # A link needs no object yet: sign it while the PUT is on the wire, not after.
                fs = self.filesystem
                upload = fs._pipe_file(path, bytes(data), **put)
                uploading = asyncio.run_coroutine_threadsafe(upload, fs.loop)
                link = self._link_for(path, self.link_expires_in)
                _wait_for(uploading)
            else:
                self._put(path, bytes(data), put)
                link = self._link_for(path, self.link_expires_in)
        except Exception as exc:
            raise self._failure("save image to", exc) from exc
        return self._saved(data, mime_type, sha256, path, link)

    async def asave(
        self,
        data: bytes,
        *,
        mime_type_hint: str | None = None,
        metadata: dict[str, str] | None = None,
        preview: bool = False,
    ) -> SavedImage:
        """:meth:`save` without blocking the event loop.

        An async filesystem (s3fs, gcsfs, adlfs) uploads with its own coroutine on its own
        event loop (where its HTTP session lives: sessions belong to one loop); others save
        in a worker thread. Concurrent calls upload concurrently.
        """
        if not self._async_put:
            return await asyncio.to_thread(
                self.save, data, mime_type_hint=mime_type_hint, metadata=metadata, preview=preview
            )
        fs = self.filesystem
        mime_type, sha256, path, put = self._prepare(data, mime_type_hint, metadata, preview)
        upload = fs._pipe_file(path, bytes(data), **put)
        uploading = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(upload, fs.loop))
        # Signing is sync in fsspec (s3fs runs it on its loop and waits): in a thread, not on
        # this loop, and while the PUT is on the wire (the link needs no object yet).
        signing = asyncio.ensure_future(
            asyncio.to_thread(self._link_for, path, self.link_expires_in)
        )
        try:
            await uploading
        except Exception as exc:
            raise self._failure("save image to", exc) from exc
        return self._saved(data, mime_type, sha256, path, await signing)

    # --- links ---------------------------------------------------------------------------

    def _key(self, path: str) -> str:
        path = path.lstrip("/")
        return path.split("/", 1)[1] if self._protocol in _BUCKETED and "/" in path else path

    def _link_for(self, path: str, expires_in: int) -> _Link:
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(self._key(path))}", None, None
        if not self.can_sign:
            return None, None, None
        expires_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=expires_in)
        try:
            link = self.filesystem.sign(path, expiration=expires_in)
        except Exception as exc:  # noqa: BLE001 - the image is stored; only its link failed
            return None, None, f"could not sign a link: {self._scrub(_reason(exc))}"
        return str(link), expires_at.replace(microsecond=0), None

    def link(
        self, uri: str, *, expires_in: int | None = None
    ) -> tuple[str | None, dt.datetime | None]:
        """A fresh link to an image of this store: ``(link, expires_at)``.

        ``(public link, None)`` with a ``public_base_url``; ``(None, None)`` when the
        filesystem cannot sign.

        Raises:
            ValueError: ``uri`` is not under this store's URL.
            StorageError: signing failed (the message names the store and the reason).
        """
        path = str(self.filesystem._strip_protocol(uri)).rstrip("/")
        if not path.startswith(f"{self._root}/"):
            raise ValueError(f"{_without_credentials(uri)} is not in {self._where}")
        link, expires_at, error = self._link_for(path, expires_in or self.link_expires_in)
        if error is not None:
            raise StorageError(f"{error} for {self._where}")
        return link, expires_at

    # --- reading back ------------------------------------------------------------------

    def _object_path(self, name: str) -> str:
        return "/".join((self._root, *name_segments(name)))

    def _checked_size(self, name: str, data: bytes, max_bytes: int) -> bytes:
        if len(data) > max_bytes:
            raise InvalidArgumentError(
                f"{name} is larger than the {max_bytes:,}-byte limit for an input image"
            )
        return bytes(data)

    def read(self, name: str, *, max_bytes: int) -> bytes:
        """The bytes of the object ``<url>/<name>``, at most ``max_bytes`` (one ranged GET of
        ``max_bytes + 1`` bytes where the filesystem supports ranges, as s3fs does).

        Raises:
            ValueError: ``name`` is not a plain relative name.
            FileNotFoundError: no such object.
            InvalidArgumentError: the object is larger than ``max_bytes``.
            StorageError: the read failed (the message names the store, never a credential).
        """
        path = self._object_path(name)
        try:
            data = self.filesystem.cat_file(path, start=0, end=max_bytes + 1)
        except FileNotFoundError:
            raise FileNotFoundError(f"no image {name} in {self._where}") from None
        except Exception as exc:
            raise self._failure(f"read {name} from", exc) from exc
        return self._checked_size(name, data, max_bytes)

    async def aread(self, name: str, *, max_bytes: int) -> bytes:
        """:meth:`read` without blocking the event loop: on the filesystem's own loop for an
        async filesystem (s3fs, gcsfs, adlfs), else in a worker thread."""
        if not self._async_put:
            return await asyncio.to_thread(self.read, name, max_bytes=max_bytes)
        path = self._object_path(name)
        fs = self.filesystem
        reading = fs._cat_file(path, start=0, end=max_bytes + 1)
        try:
            data = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(reading, fs.loop))
        except FileNotFoundError:
            raise FileNotFoundError(f"no image {name} in {self._where}") from None
        except Exception as exc:
            raise self._failure(f"read {name} from", exc) from exc
        return self._checked_size(name, data, max_bytes)

    def names(self) -> list[str]:
        """The finished images' object names (``<hash16>.<ext>``) directly under the URL,
        newest first by the listing's modification time; ``[]`` when there are none.

        One listing of the prefix (fresh: the filesystem's listings cache is dropped first,
        since other workers write here too).

        Raises:
            StorageError: the listing failed.
        """
        fs = self.filesystem
        try:
            fs.invalidate_cache(self._root)
            entries = fs.ls(self._root, detail=True)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._failure("list the images in", exc) from exc
        found: list[tuple[float, str]] = []
        for info in entries:
            name = str(info.get("name", "")).rstrip("/").rsplit("/", 1)[-1]
            if info.get("type") == "file" and content_hash_of(name) is not None:
                found.append((_modified(info), name))
        found.sort(key=lambda item: (-item[0], item[1]))
        return [name for _, name in found]

    def _name_under_root(self, path: str) -> str | None:
        if not path.startswith(f"{self._root}/"):
            return None
        name = path[len(self._root) + 1 :]
        try:
            name_segments(name)
        except ValueError:
            return None
        return name

    def name_of(self, ref: str) -> str | None:
        """The name under the URL that ``ref`` designates: this store's URI of an object
        (``s3://bucket/prefix/<name>``: same protocol, bucket and prefix, compared as
        normalized strings) or a link under its ``public_base_url``; else ``None``. Names
        with ``.``, ``..``, empty or hidden segments never match; neither do query strings,
        fragments or chained URLs."""
        if not isinstance(ref, str) or "::" in ref or "\x00" in ref:
            return None
        if self.public_base_url and ref.startswith(f"{self.public_base_url}/"):
            return self._name_of_link(ref[len(self.public_base_url) + 1 :])
        split = urlsplit(ref)
        protocols = self._fs.protocol
        ours = (protocols,) if isinstance(protocols, str) else tuple(protocols)
        if split.scheme.lower() not in ours or split.query or split.fragment or "?" in ref:
            return None
        return self._name_under_root(str(self._fs._strip_protocol(ref)))

    def _name_of_link(self, key: str) -> str | None:
        if "?" in key or "#" in key:
            return None
        key = unquote(key)
        root = self._root.lstrip("/")  # links name the key: the path without the bucket
        if self._protocol in _BUCKETED:
            root = root.partition("/")[2]
        if root:
            if not key.startswith(f"{root}/"):
                return None
            key = key[len(root) + 1 :]
        try:
            name_segments(key)
        except ValueError:
            return None
        return key

    def discard(self, saved: SavedImage) -> bool:
        """Delete an image this store saved, to roll back a call that later failed.

        Keys are content hashes: another call (or worker) that saved the same bytes shares
        the object, so discard only what no one else can hold. Returns ``False`` if the
        object was already gone.

        Raises:
            ValueError: ``saved`` is not in this store.
            StorageError: the object exists but could not be deleted.
        """
        path = str(self.filesystem._strip_protocol(saved.uri)) if saved.uri else ""
        if not path.startswith(f"{self._root}/"):
            raise ValueError(f"{saved.uri or saved.path} was not saved by {self!r}")
        try:
            self.filesystem.rm_file(path)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._failure("remove an image from", exc) from exc
        return True

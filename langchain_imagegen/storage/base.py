"""What every image store returns and offers: :class:`SavedImage` and :class:`ImageStoreBase`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["ImageStoreBase", "SavedImage", "scrub", "secret_strings"]

_SECRET_MIN = 4
"""Shorter option values (``True``, ports, region codes, "s3") are too common to hide; no
credential is that short."""


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings(item)


def secret_strings(storage_options: Mapping[str, Any]) -> list[str]:
    """Every text in ``storage_options`` (nested ones included) worth keeping out of
    messages, longest first so that :func:`scrub` hides a key before any part of it."""
    found = {text for text in _strings(storage_options) if len(text) >= _SECRET_MIN}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with each of ``secrets`` (from :func:`secret_strings`) replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class SavedImage:
    """A stored image: where it is, what it is, its content hash and, when the storage is
    remote, a link to fetch it over http(s).

    ``path`` is the local file (``None`` when the storage is remote); ``uri`` is where the
    storage keeps it (the absolute path on local disk, ``s3://bucket/prefix/<hash16>.png``
    elsewhere). ``link`` is an http(s) URL for a remote image: signed (valid until
    ``link_expires_at``) or under the store's ``public_base_url`` (no expiry); ``None`` when
    neither is possible, with ``link_error`` saying why when signing failed.

    ``created`` is ``False`` when the local file already existed with the same content (the
    save was a no-op); :meth:`LocalImageStore.discard` leaves such files alone.
    """

    path: Path | None
    mime_type: str
    size_bytes: int
    sha256: str
    created: bool = field(default=True, compare=False)
    uri: str = ""
    link: str | None = None
    link_expires_at: dt.datetime | None = None
    link_error: str | None = None


class ImageStoreBase(Protocol):
    """The interface :class:`~langchain_imagegen.generation.ImageGenerator` saves through,
    and :class:`~langchain_imagegen.handles.ImageResolver` reads earlier images through."""

    @property
    def is_remote(self) -> bool:
        """Whether images leave this machine (an fsspec URL), so the LLM is given links."""
        ...

    def describe(self) -> str:
        """Where images go, without credentials: a directory or ``s3://bucket/prefix``."""
        ...

    def save(
        self,
        data: bytes,
        *,
        mime_type_hint: str | None = None,
        metadata: dict[str, str] | None = None,
        preview: bool = False,
    ) -> SavedImage: ...

    async def asave(
        self,
        data: bytes,
        *,
        mime_type_hint: str | None = None,
        metadata: dict[str, str] | None = None,
        preview: bool = False,
    ) -> SavedImage: ...

    def discard(self, saved: SavedImage) -> bool: ...

    def link(
        self, uri: str, *, expires_in: int | None = None
    ) -> tuple[str | None, dt.datetime | None]: ...

    def read(self, name: str, *, max_bytes: int) -> bytes:
        """The bytes of ``name`` (relative to the store's root), at most ``max_bytes``.

        Raises:
            ValueError: ``name`` is not a plain relative name under the root
                (:func:`~langchain_imagegen.storage.images.name_segments`), or leads out of
                it (a symlink), or is not a regular file.
            FileNotFoundError: there is no such image.
            InvalidArgumentError: the image is larger than ``max_bytes`` (a ``ValueError``).
            StorageError: the read failed (the message names the store, never a credential).
        """
        ...

    async def aread(self, name: str, *, max_bytes: int) -> bytes:
        """:meth:`read` without blocking the event loop."""
        ...

    def names(self) -> list[str]:
        """The names of the finished images directly under the root (``<hash16>.<ext>``),
        newest first where the storage tells when they were written; previews and temp files
        are left out. Empty when the root does not exist yet.

        Raises:
            StorageError: the listing failed.
        """
        ...

    def name_of(self, ref: str) -> str | None:
        """The name (relative to the root) ``ref`` designates when it points into this
        store, else ``None``: an absolute local path under the directory (symlinks
        followed), the store's own URI (``s3://bucket/prefix/<name>``) or a link under its
        ``public_base_url``. Says nothing of whether the image exists."""
        ...

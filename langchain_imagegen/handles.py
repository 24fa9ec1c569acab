"""Handles: how an LLM names an earlier image, and how its reference becomes bytes.

Every generated or edited image has a handle, ``img_<first 16 hex of its sha256>``: the same
16 hex its store names it by (``<hash16>.<ext>``), so the handle is stable across machines,
retries and checkpoint reloads, and says nothing of where the image is.

:class:`ImageResolver` turns what the edit tool is given into an :class:`InputImage`, and
opens nothing but:

* a handle: the finished image ``<hash16>.<ext>`` under the store's root (never a preview),
  whose bytes must still hash to the handle (a file changed since is refused);
* an http(s) URL: read from the store when it is one of the store's own public links, else
  downloaded by the ``fetch`` it was given (the client's capped download, no credential);
* the store's own URI (``s3://bucket/prefix/<name>``) or an absolute path under its
  directory, or an absolute path inside one of the developer's ``allowed_dirs``, with
  symlinks followed and required to stay inside.

Everything else (``..``, ``~``, relative paths, ``file://`` and other schemes, other buckets
or prefixes, NUL bytes, overlong references, anything over ``max_bytes``) is refused with an
:class:`~langchain_imagegen.errors.InvalidArgumentError` that says what was wrong and lists
the handles the LLM may use instead; never a credential, never a directory listing.

Resolution is written once, as a plan of steps (read this name, download this URL, list the
handles) that a sync and an async driver carry out, as the client's flows are.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, cast
from urllib.parse import urlsplit, urlunsplit

from langchain_imagegen.errors import ImageDownloadError, InvalidArgumentError, StorageError
from langchain_imagegen.storage.base import ImageStoreBase
from langchain_imagegen.storage.images import (
    classify_image,
    content_hash_of,
    format_name,
    is_preview_name,
)
from langchain_imagegen.storage.local import local_name_within, read_file_within

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "HANDLE_PREFIX",
    "ImageResolver",
    "InputImage",
    "handle_of_name",
    "image_handle",
]

HANDLE_PREFIX = "img_"
"""What every handle starts with; 16 lowercase hex digits follow."""

DEFAULT_MAX_INPUT_BYTES = 50 * 1024 * 1024
"""The largest input image read: the Images API's edit limit ("less than 50MB", docs/models.md)."""

_HASH_CHARS = 16
_HEX = frozenset("0123456789abcdef")
_HANDLE = re.compile(r"\Aimg_([0-9a-f]{16})\Z", re.IGNORECASE)
_SCHEME = re.compile(r"\A([A-Za-z][A-Za-z0-9+.\-]*):")
_MAX_REF_CHARS = 4096
"""Longer than any handle, path or presigned link (a signed S3 URL with a session token is
about 1.5 kB); anything longer is not a reference."""
_SHOWN_CHARS = 160
_STORE_EXTENSIONS = ("png", "jpg", "webp")
"""The Images API's output formats (as the stores name them), tried before a listing."""
_KNOWN_HANDLES = 10


def image_handle(sha256: str) -> str:
    """The handle of the image whose sha256 (hex) is ``sha256``: ``"img_" + sha256[:16]``.

    Raises:
        ValueError: ``sha256`` does not start with 16 hex digits.
    """
    head = sha256[:_HASH_CHARS].lower() if isinstance(sha256, str) else ""
    if len(head) != _HASH_CHARS or not _HEX.issuperset(head):
        raise ValueError(f"expected a sha256 hex digest, got {sha256!r}")
    return HANDLE_PREFIX + head


def handle_of_name(name: str) -> str | None:
    """The handle of a stored image's name (``"3f9a...c2.png"`` → ``"img_3f9a...c2"``);
    ``None`` for previews and names that are not content names."""
    hash16 = content_hash_of(name.rsplit("/", 1)[-1])
    return HANDLE_PREFIX + hash16 if hash16 else None


@dataclass(frozen=True)
class InputImage:
    """An image to send to ``POST /v1/images/edits``: its bytes and what they are.

    ``mime_type`` is sniffed from the bytes; ``filename`` (``<hash16>.<ext>``) is a safe name
    for the multipart part; ``ref`` is the reference as the caller gave it; ``handle`` and
    ``sha256`` are those of ``data``.
    """

    data: bytes = field(repr=False)
    mime_type: str
    filename: str
    ref: str
    handle: str
    sha256: str

    @classmethod
    def from_bytes(cls, data: bytes, ref: str, *, mime_type_hint: str | None = None) -> InputImage:
        """Describe complete image bytes (``mime_type_hint`` is only a fallback, as in
        :func:`~langchain_imagegen.storage.images.classify_image`).

        Raises:
            InvalidArgumentError: the bytes are empty, truncated or not an image.
        """
        data = bytes(data)
        kind = classify_image(data, mime_type_hint)
        if isinstance(kind, str):
            raise InvalidArgumentError(f"{_shown(ref)} cannot be edited: its bytes are {kind}")
        mime_type, ext = kind
        sha256 = hashlib.sha256(data).hexdigest()
        return cls(
            data=data,
            mime_type=mime_type,
            filename=f"{sha256[:_HASH_CHARS]}.{ext}",
            ref=ref,
            handle=image_handle(sha256),
            sha256=sha256,
        )

    @property
    def format(self) -> str:
        """``"PNG"``, ``"JPEG"``, ``"WebP"``...: for messages."""
        return format_name(self.mime_type)


# --- the plan: steps a driver carries out --------------------------------------------------


@dataclass(frozen=True)
class _StoreRead:
    """Read ``name`` from the store (bytes; FileNotFoundError, ValueError...)."""

    name: str


@dataclass(frozen=True)
class _FileRead:
    """Read ``name`` under the allowed directory ``root``."""

    root: str
    name: str


@dataclass(frozen=True)
class _Fetch:
    """Download ``url``: ``(bytes, content type)``."""

    url: str


@dataclass(frozen=True)
class _ListNames:
    """The store's image names, newest first; ``strict=False``: ``[]`` if listing fails."""

    strict: bool = False


_Step: TypeAlias = "_StoreRead | _FileRead | _Fetch | _ListNames"
_Plan: TypeAlias = Generator[_Step, Any, InputImage]


def _shown(ref: str) -> str:
    """``ref`` as messages quote it: a URL without user info, query or fragment (signed
    links carry credentials there), and cut to a readable length."""
    text = ref
    if "://" in text:
        try:
            split = urlsplit(text)
            host = split.hostname or ""
            if split.port is not None:
                host += f":{split.port}"
            text = urlunsplit((split.scheme, host, split.path, "", ""))
        except ValueError:
            text = text.split("?", 1)[0].split("#", 1)[0]
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return repr(text)


def _malformed(ref: object) -> str | None:
    if not isinstance(ref, str):
        return (
            "an image reference must be text (a handle like img_0123456789abcdef), "
            f"not {type(ref).__name__}"
        )
    if not ref.strip():
        return "the image reference is empty"
    if len(ref) > _MAX_REF_CHARS:
        return (
            f"the image reference is {len(ref):,} characters long, more than any handle, "
            "path or link"
        )
    if not ref.strip().isprintable():
        return "the image reference holds NUL or other control characters"
    return None


def _has_dot_dot(ref: str) -> bool:
    return ".." in re.split(r"[/\\]", ref)


def _handles_in(names: Iterable[str], limit: int = _KNOWN_HANDLES) -> list[str]:
    """The handles of the content names among ``names``, in order, without repeats."""
    handles: list[str] = []
    for name in names:
        handle = handle_of_name(name)
        if handle is not None and handle not in handles:
            handles.append(handle)
            if len(handles) >= limit:
                break
    return handles


class ImageResolver:
    """Turns references to images (handles, URLs, the store's URIs, allowed paths) into
    :class:`InputImage` s, opening nothing else (see the module docstring).

    Args:
        store: where the tool's images are; handles and its URIs are read from it.
        allowed_dirs: local directories (developer-configured) whose images may be given by
            absolute path. Resolved with ``os.path.realpath`` once, here.
        fetch: downloads an http(s) URL: ``(bytes, content type)``, raising
            :class:`~langchain_imagegen.errors.ImageDownloadError` (e.g.
            ``lambda url: client.download(url, max_bytes=...)``). Without it (and without
            ``afetch``) URLs other than the store's public links are refused.
        afetch: the async ``fetch``; :meth:`aresolve` runs ``fetch`` in a thread without it.
        max_bytes: the largest image read from any source.
    """

    def __init__(
        self,
        store: ImageStoreBase,
        *,
        allowed_dirs: Sequence[str | Path] = (),
        fetch: Callable[[str], tuple[bytes, str | None]] | None = None,
        afetch: Callable[[str], Awaitable[tuple[bytes, str | None]]] | None = None,
        max_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    ) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive number of bytes, got {max_bytes!r}")
        self.store = store
        self.allowed_dirs: tuple[str, ...] = tuple(
            os.path.realpath(Path(directory).expanduser()) for directory in allowed_dirs
        )
        self._fetch = fetch
        self._afetch = afetch
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r}, allowed_dirs={list(self.allowed_dirs)!r})"

    # --- public ----------------------------------------------------------------------------

    def resolve(self, ref: str) -> InputImage:
        """The image ``ref`` designates.

        Raises:
            InvalidArgumentError: ``ref`` is refused, missing, too large or not an image; the
                message says which and lists the handles that may be used.
            StorageError: the store failed to read or list (its disk or its service).
        """
        return self._run(self._plan(ref, can_fetch=self._fetch is not None))

    async def aresolve(self, ref: str) -> InputImage:
        """:meth:`resolve` without blocking the event loop."""
        can_fetch = self._fetch is not None or self._afetch is not None
        return await self._arun(self._plan(ref, can_fetch=can_fetch))

    def known_handles(self, limit: int = _KNOWN_HANDLES) -> list[str]:
        """The handles of the newest finished images in the store (no previews), at most
        ``limit``; ``[]`` when the store cannot be listed."""
        try:
            return _handles_in(self.store.names(), limit)
        except StorageError:
            return []

    # --- drivers ---------------------------------------------------------------------------

    def _run(self, plan: _Plan) -> InputImage:
        outcome: Any = None
        error: Exception | None = None
        while True:
            try:
                step = plan.send(outcome) if error is None else plan.throw(error)
            except StopIteration as stop:
                return cast(InputImage, stop.value)
            outcome, error = None, None
            try:
                outcome = self._do(step)
            except Exception as exc:  # noqa: BLE001 - handed to the plan, which decides
                error = exc

    async def _arun(self, plan: _Plan) -> InputImage:
        outcome: Any = None
        error: Exception | None = None
        while True:
            try:
                step = plan.send(outcome) if error is None else plan.throw(error)
            except StopIteration as stop:
                return cast(InputImage, stop.value)
            outcome, error = None, None
            try:
                outcome = await self._ado(step)
            except Exception as exc:  # noqa: BLE001 - handed to the plan, which decides
                error = exc

    def _do(self, step: _Step) -> Any:
        if isinstance(step, _StoreRead):
            return self.store.read(step.name, max_bytes=self.max_bytes)
        if isinstance(step, _FileRead):
            return read_file_within(step.root, step.name, max_bytes=self.max_bytes)
        if isinstance(step, _Fetch):
            return cast(Callable[[str], Any], self._fetch)(step.url)
        return self._names(step.strict)

    async def _ado(self, step: _Step) -> Any:
        if isinstance(step, _StoreRead):
            return await self.store.aread(step.name, max_bytes=self.max_bytes)
        if isinstance(step, _FileRead):
            return await asyncio.to_thread(
                read_file_within, step.root, step.name, max_bytes=self.max_bytes
            )
        if isinstance(step, _Fetch):
            if self._afetch is not None:
                return await self._afetch(step.url)
            return await asyncio.to_thread(cast(Callable[[str], Any], self._fetch), step.url)
        return await asyncio.to_thread(self._names, step.strict)

    def _names(self, strict: bool) -> list[str]:
        if strict:
            return self.store.names()
        try:
            return self.store.names()
        except StorageError:
            return []

    # --- the plan --------------------------------------------------------------------------

    def _refused(self, problem: str) -> Generator[_Step, Any, InvalidArgumentError]:
        """The error for a refused reference, naming the handles that may be used."""
        handles = _handles_in((yield _ListNames()))
        if handles:
            advice = f"refer to an earlier image by its handle: {', '.join(handles)} (newest first)"
        else:
            advice = "there are no earlier images to refer to yet"
        return InvalidArgumentError(f"{problem}; {advice}")

    def _plan(self, ref: str, *, can_fetch: bool) -> _Plan:
        problem = _malformed(ref)
        if problem is not None:
            raise (yield from self._refused(problem))
        text = ref.strip()
        shown = _shown(text)

        handle = _HANDLE.match(text)
        if handle is not None:
            return (yield from self._from_handle(handle[1].lower(), text))
        if text.lower().startswith(HANDLE_PREFIX):
            raise (
                yield from self._refused(
                    f"{shown} is not a handle: a handle is img_ followed by 16 hex digits"
                )
            )
        if "/" not in text and "\\" not in text:
            if content_hash_of(text) is not None:  # a stored name, as results show it
                return (yield from self._from_store(text, text))
            if is_preview_name(text):
                raise (yield from self._refused(_preview(shown)))
        if _has_dot_dot(text):
            raise (yield from self._refused(f"{shown} has a '..' segment, which is never followed"))
        if "::" in text:
            raise (yield from self._refused(f"{shown}: chained URLs are not accepted"))

        scheme = _SCHEME.match(text)
        scheme_name = scheme[1].lower() if scheme and len(scheme[1]) > 1 else None
        if scheme_name == "file":
            raise (yield from self._refused(f"{shown}: file:// URLs are not accepted"))
        if scheme_name in ("http", "https"):
            return (yield from self._from_url(text, shown, can_fetch=can_fetch))
        if scheme_name is not None:
            name = self.store.name_of(text)
            if name is None:
                raise (
                    yield from self._refused(
                        f"{shown} is not in this tool's storage ({self.store.describe()})"
                    )
                )
            return (yield from self._from_store(name, text))
        return (yield from self._from_path(text, shown))

    def _from_handle(self, hash16: str, ref: str) -> _Plan:
        for ext in _STORE_EXTENSIONS:
            data = yield from self._read_store(f"{hash16}.{ext}", ref)
            if data is not None:
                return (yield from self._checked(data, ref, hash16))
        names = yield _ListNames(strict=True)
        name = next((n for n in names if content_hash_of(n) == hash16), None)
        if name is None:
            raise (yield from self._refused(f"no image has the handle {HANDLE_PREFIX}{hash16}"))
        return (yield from self._from_store(name, ref))

    def _from_store(self, name: str, ref: str) -> _Plan:
        if is_preview_name(name):
            raise (yield from self._refused(_preview(_shown(ref))))
        data = yield from self._read_store(name, ref)
        if data is None:
            raise (yield from self._refused(f"there is no image {_shown(ref)}"))
        return (yield from self._checked(data, ref, content_hash_of(name.rsplit("/", 1)[-1])))

    def _read_store(self, name: str, ref: str) -> Generator[_Step, Any, bytes | None]:
        """The bytes of ``name`` in the store, ``None`` if it is not there."""
        try:
            data: bytes = yield _StoreRead(name)
        except FileNotFoundError:
            return None
        except InvalidArgumentError:  # too large
            raise (yield from self._refused(self._too_large(ref))) from None
        except ValueError:  # an unsafe name, a symlink out of the root, not a regular file
            raise (
                yield from self._refused(f"{_shown(ref)} is not an image in this tool's storage")
            ) from None
        return data

    def _from_url(self, url: str, shown: str, *, can_fetch: bool) -> _Plan:
        name = self.store.name_of(url)  # one of the store's own public links
        if name is not None:
            return (yield from self._from_store(name, url))
        if not can_fetch:
            raise (yield from self._refused(f"{shown}: this tool does not download URLs"))
        try:
            data, content_type = yield _Fetch(url)
        except ImageDownloadError as exc:
            raise (yield from self._refused(f"could not download {shown}: {exc}")) from exc
        return (yield from self._checked(data, url, None, mime_type_hint=content_type))

    def _from_path(self, path: str, shown: str) -> _Plan:
        if path.startswith("~"):
            raise (yield from self._refused(f"{shown}: '~' is not expanded"))
        if not os.path.isabs(path):
            raise (yield from self._refused(f"{shown} is not a handle, a URL or an absolute path"))
        name = self.store.name_of(path)
        if name is not None:
            return (yield from self._from_store(name, path))
        for root in self.allowed_dirs:
            relative = local_name_within(root, path)
            if relative is None:
                continue
            try:
                data = yield _FileRead(root, relative)
            except InvalidArgumentError:
                raise (yield from self._refused(self._too_large(path))) from None
            except FileNotFoundError:
                raise (yield from self._refused(f"there is no image {shown}")) from None
            except ValueError:
                raise (yield from self._refused(f"{shown} is not a readable image file")) from None
            except OSError as exc:
                raise (
                    yield from self._refused(f"{shown} could not be read ({exc.strerror})")
                ) from None
            return (yield from self._checked(data, path, None))
        raise (yield from self._refused(f"{shown} is outside the places this tool may read"))

    def _checked(
        self, data: bytes, ref: str, hash16: str | None, *, mime_type_hint: str | None = None
    ) -> _Plan:
        """The :class:`InputImage` of ``data``, refused if too large, not an image, or not
        hashing to the ``hash16`` its name promises."""
        if len(data) > self.max_bytes:
            raise (yield from self._refused(self._too_large(ref)))
        try:
            image = InputImage.from_bytes(data, ref, mime_type_hint=mime_type_hint)
        except InvalidArgumentError as exc:
            raise (yield from self._refused(str(exc))) from None
        if hash16 is not None and not image.sha256.startswith(hash16):
            raise (
                yield from self._refused(
                    f"the file of {HANDLE_PREFIX}{hash16} was changed after it was saved "
                    "(its content no longer matches the handle)"
                )
            )
        return image

    def _too_large(self, ref: str) -> str:
        return f"{_shown(ref)} is larger than the {self.max_bytes:,}-byte limit for an input image"


def _preview(shown: str) -> str:
    return f"{shown} is a streamed preview, not a finished image"

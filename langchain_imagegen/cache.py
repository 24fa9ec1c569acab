"""A cache of results for identical requests: opt-in, keyed on what determines the output.

:func:`cache_key` hashes everything that decides what a request produces (the endpoint URL,
the model, the exact coerced request bodies, and an edit's input images by content hash);
never a header, so never a credential. What is cached is the result as JSON
(``ImageGenerationResult.model_dump(mode="json")``): references to the stored images (their
``path``/``uri``/``link``/``sha256``), never their bytes; :func:`stored_result` refuses a
result holding base64 image data.

Backends implement :class:`ImageCache`: :class:`InMemoryImageCache` (an LRU in this process)
and :class:`SqliteImageCache` (one local file shared by threads and processes). A backend
that fails (disk full, a lock held past the timeout, a corrupt row) logs a warning and
answers a miss, or skips the put: a cache never breaks a generation. Whether the images a
cached result names still exist is for the caller to check against its store; a result whose
images are gone is a miss.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from langchain_imagegen.errors import ConfigurationError
from langchain_imagegen.storage.images import sniff_image_type

__all__ = [
    "CACHE_KEY_VERSION",
    "ImageCache",
    "InMemoryImageCache",
    "SqliteImageCache",
    "cache_key",
    "stored_result",
]

logger = logging.getLogger(__name__)

CACHE_KEY_VERSION = 2
"""Part of every key: bumping it retires every entry written under an older key layout."""

_SHA256_HEX = re.compile(r"\A[0-9a-fA-F]{64}\Z")


def _canonical_json(value: Any, what: str) -> str:
    """``value`` as one canonical JSON text: sorted keys, no whitespace, UTF-8 kept."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{what} must be plain JSON data (str, numbers, lists, dicts): {exc}"
        ) from exc


def _without_userinfo(url: str) -> str:
    """``url`` without ``user:password@``; the query stays (``api-version`` selects the API)."""
    split = urlsplit(url)
    if "@" not in split.netloc:
        return url
    host = split.netloc.rpartition("@")[2]
    return urlunsplit((split.scheme, host, split.path, split.query, split.fragment))


def cache_key(
    *,
    endpoint: str,
    model: str,
    requests: Sequence[Mapping[str, Any]],
    inputs: Sequence[str] = (),
    storage: str = "",
) -> str:
    """The cache key of a call: the SHA-256 (hex) of a canonical JSON text of
    ``{"v": 2, "endpoint", "model", "requests", "inputs", "storage"}``.

    ``endpoint`` is the full request URL (user info, if any, is left out: credentials change
    who pays, not what comes back); ``requests`` the exact coerced request bodies, in the
    order sent (a fan-out sends several); ``inputs`` the SHA-256s of an edit's input images,
    then its mask, in order; ``storage`` where the caller keeps the images (e.g. its store's
    ``describe()``): a result's references point there, so a tool saving elsewhere neither
    finds them nor takes them for gone. Key order inside a body does not matter; everything
    else does. Headers are not part of the key, so no secret is.

    Raises:
        TypeError: ``requests`` is not a sequence of mappings, or ``inputs`` not a sequence
            of strings.
        ValueError: a body is not plain JSON data, or an input is not a SHA-256 hex digest.
    """
    if isinstance(requests, (str, bytes, Mapping)) or not isinstance(requests, Sequence):
        raise TypeError("cache_key(requests=...) takes a list of request bodies (dicts).")
    bodies = []
    for body in requests:
        if not isinstance(body, Mapping):
            raise TypeError(
                f"cache_key(requests=...) takes request bodies as dicts, not {type(body).__name__}."
            )
        bodies.append(dict(body))
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
        raise TypeError("cache_key(inputs=...) takes a list of SHA-256 hex digests.")
    digests = []
    for digest in inputs:
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
            raise ValueError(
                f"cache_key(inputs=...) takes the SHA-256 hex digests of the input images; "
                f"got {digest!r:.80}."
            )
        digests.append(digest.lower())
    document = {
        "v": CACHE_KEY_VERSION,
        "endpoint": _without_userinfo(str(endpoint)),
        "model": str(model),
        "requests": bodies,
        "inputs": digests,
        "storage": str(storage),
    }
    text = _canonical_json(document, "cache_key(requests=...)")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_BASE64_KEY = re.compile(r"b64|base64", re.IGNORECASE)
_DATA_URL_BASE64 = re.compile(r"\Adata:[^,]*;base64,", re.IGNORECASE)
_BASE64_TEXT = re.compile(r"\A[A-Za-z0-9+/]+={0,2}\Z")
_SNIFF_CHARS = 344
"""Base64 characters decoded to recognise an image: 258 bytes, enough for every signature
:func:`~langchain_imagegen.storage.images.sniff_image_type` reads (an SVG root included)."""
_MIN_BASE64_IMAGE = 16


def _is_base64_image(text: str) -> bool:
    """Whether ``text`` is raw base64 whose bytes start like an image."""
    if len(text) < _MIN_BASE64_IMAGE or not _BASE64_TEXT.match(text):
        return False
    head = text[:_SNIFF_CHARS].rstrip("=")
    head = head[: len(head) - len(head) % 4]
    try:
        data = binascii.a2b_base64(head)
    except (binascii.Error, ValueError):
        return False
    return sniff_image_type(data) is not None


def _base64_payloads(value: Any, where: str) -> Iterator[str]:
    """Where in ``value`` base64 image data is: keys named like ``b64_json``, ``data:`` URLs
    with a base64 payload, and raw base64 that decodes to an image."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            place = f"{where}.{key}"
            if isinstance(key, str) and _BASE64_KEY.search(key) and item not in (None, ""):
                yield place
            else:
                yield from _base64_payloads(item, place)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _base64_payloads(item, f"{where}[{index}]")
    elif _is_image_data(value):
        yield where


def _is_image_data(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return True
    return isinstance(value, str) and (
        _DATA_URL_BASE64.match(value) is not None or _is_base64_image(value)
    )


def stored_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a cache stores of ``result`` (``ImageGenerationResult.model_dump(mode="json")``):
    a deep, JSON-only copy of it, nothing dropped. Signed links are kept as they are, along
    with each image's ``uri``, so the caller can re-sign them on a hit
    (``ImageGenerationResult.resign_links``).

    Raises:
        ValueError: ``result`` holds image bytes or base64 image data (a cache stores
            references to stored images, never images), or is not plain JSON data.
    """
    if not isinstance(result, Mapping):
        raise TypeError(f"stored_result takes a result dict, not {type(result).__name__}.")
    found = list(_base64_payloads(result, "result"))
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise ValueError(
            f"Refusing to cache a result holding image data ({shown}): a cache keeps "
            "references to stored images, never their bytes. Save the images first."
        )
    text = _canonical_json(result, 'The cached result (pass result.model_dump(mode="json"))')
    copy: dict[str, Any] = json.loads(text)
    return copy


def _expiry(now: float, ttl_s: float | None) -> float | None:
    if ttl_s is None or ttl_s == math.inf:
        return None
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not ttl_s > 0:
        raise ValueError(
            f"ttl_s must be a number of seconds above 0, or None for no expiry; got {ttl_s!r}."
        )
    return now + float(ttl_s)


def _loaded(text: str) -> dict[str, Any] | None:
    """A stored value back as a dict, or ``None`` when it is not one (a corrupt entry)."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


@runtime_checkable
class ImageCache(Protocol):
    """What the tool caches results in. Subclass it, or implement the same methods.

    ``get`` returns the stored result dict (a fresh copy) or ``None`` on a miss or after its
    TTL; ``put`` stores :func:`stored_result` of ``result`` for ``ttl_s`` seconds (``None``:
    no expiry); ``delete`` forgets a key (absent keys are fine). A backend failure should be
    logged and answered as a miss (``get``) or ignored (``put``/``delete``). The async
    variants default to running the sync ones in a thread.
    """

    @abstractmethod
    def get(self, key: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def put(self, key: str, result: Mapping[str, Any], *, ttl_s: float | None) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    async def aget(self, key: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.get, key)

    async def aput(self, key: str, result: Mapping[str, Any], *, ttl_s: float | None) -> None:
        await asyncio.to_thread(self.put, key, result, ttl_s=ttl_s)

    async def adelete(self, key: str) -> None:
        await asyncio.to_thread(self.delete, key)


class InMemoryImageCache(ImageCache):
    """Results in this process: thread-safe, least recently used evicted past
    ``max_entries``, entries expiring after their TTL by ``clock`` (seconds).

    Entries are kept as JSON text, so what ``get`` returns is the caller's own copy.
    """

    def __init__(self, *, max_entries: int = 1024, clock: Callable[[], float] = time.time) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(
                f"max_entries must be a whole number of at least 1, not {max_entries!r}."
            )
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InMemoryImageCache(max_entries={self._max_entries}, entries={len(self._entries)})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, text = entry
            if expires_at is not None and self._clock() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
        return _loaded(text)

    def put(self, key: str, result: Mapping[str, Any], *, ttl_s: float | None) -> None:
        text = json.dumps(stored_result(result), ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            now = self._clock()
            self._entries[key] = (_expiry(now, ttl_s), text)
            self._entries.move_to_end(key)
            if len(self._entries) > self._max_entries:
                self._evict(now)

    def _evict(self, now: float) -> None:
        """Expired entries first, then the least recently used, down to ``max_entries``."""
        expired = [
            key
            for key, (expires_at, _) in self._entries.items()
            if expires_at is not None and now >= expires_at
        ]
        for key in expired:
            del self._entries[key]
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    # Nothing here blocks: no thread hop.
    async def aget(self, key: str) -> dict[str, Any] | None:
        return self.get(key)

    async def aput(self, key: str, result: Mapping[str, Any], *, ttl_s: float | None) -> None:
        self.put(key, result, ttl_s=ttl_s)

    async def adelete(self, key: str) -> None:
        self.delete(key)


_SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of a cache file this code reads and writes."""
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS image_results ("
    "key TEXT PRIMARY KEY, expires_at REAL NULL, created_at REAL NOT NULL, value TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS image_results_expires_at ON image_results (expires_at)",
    f"PRAGMA user_version = {_SCHEMA_VERSION}",
)
_BUSY_TIMEOUT_S = 5.0
"""How long an operation waits for another thread's or process's write lock before it is
given up (a miss, or a skipped put)."""
_FILE_MODE = 0o600
"""Cached results name buckets and files, which may be private: the owner alone reads them.
SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions."""


class SqliteImageCache(ImageCache):
    """Results in one local SQLite file, shared by the threads and processes that open it.

    The file (and its directory) is created on construction, readable by its owner only;
    ``~`` is expanded. It is in WAL mode, each operation opens its own connection (so threads
    and forked processes share nothing), waits up to 5 s for a lock, and expired rows are
    purged as it goes. A file written by a newer schema is left alone (every get misses).

    Raises:
        ConfigurationError: the file or its directory cannot be created.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._path = Path(os.path.expanduser(os.fspath(path))).absolute()
        self._clock = clock
        self._lock = threading.Lock()
        self._ready = False
        self._incompatible = False
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _create_private(self._path)
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot create the image cache file {str(self._path)!r}: "
                f"{exc.strerror or exc}. Choose a writable path for the cache."
            ) from exc
        with contextlib.suppress(sqlite3.Error, OSError):
            # Failures are reported by the operation that retries the setup.
            self._ensure_schema()

    @property
    def path(self) -> Path:
        """The cache file."""
        return self._path

    def __repr__(self) -> str:
        return f"SqliteImageCache({str(self._path)!r})"

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            # In WAL mode NORMAL cannot corrupt the file; a power cut may lose the last puts,
            # which a cache can afford, and commits skip an fsync each.
            connection.execute("PRAGMA synchronous = NORMAL")
            yield connection
        finally:
            connection.close()

    def _ensure_schema(self) -> bool:
        """Set up the file once; ``False`` when it holds a newer schema than this code's."""
        if self._ready:
            return True
        with self._lock:
            if self._ready:
                return True
            with self._connection() as connection:
                # Persistent in the file: readers no longer wait for writers.
                connection.execute("PRAGMA journal_mode = WAL")
                # Closing without COMMIT (an exception) rolls the transaction back.
                connection.execute("BEGIN IMMEDIATE")
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    for statement in _SCHEMA:
                        connection.execute(statement)
                    version = _SCHEMA_VERSION
                connection.execute("COMMIT")
            if version != _SCHEMA_VERSION:
                if not self._incompatible:
                    logger.warning(
                        "Image cache %s has schema version %s; this version of "
                        "langchain-imagegen reads %s, so the cache is not used.",
                        self._path,
                        version,
                        _SCHEMA_VERSION,
                    )
                self._incompatible = True
                return False
            self._ready = True
            return True

    def _failed(self, action: str, exc: BaseException) -> None:
        logger.warning(
            "Image cache %s: %s failed (%s: %s); going on without the cache.",
            self._path,
            action,
            type(exc).__name__,
            exc,
        )

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            if not self._ensure_schema():
                return None
            with self._connection() as connection:
                row = connection.execute(
                    "SELECT value, expires_at FROM image_results WHERE key = ?", (key,)
                ).fetchone()
                if row is None:
                    return None
                text, expires_at = row
                now = self._clock()
                if expires_at is not None and now >= expires_at:
                    # Only while still expired: another process may have just refreshed it.
                    connection.execute(
                        "DELETE FROM image_results WHERE key = ? AND expires_at <= ?",
                        (key, now),
                    )
                    return None
                value = _loaded(text) if isinstance(text, str) else None
                if value is None:
                    logger.warning(
                        "Image cache %s: the entry %s... is not a JSON result; removed.",
                        self._path,
                        key[:16],
                    )
                    connection.execute(
                        "DELETE FROM image_results WHERE key = ? AND value IS ?", (key, text)
                    )
                return value
        except (sqlite3.Error, OSError) as exc:
            self._failed("a lookup", exc)
            return None

    def put(self, key: str, result: Mapping[str, Any], *, ttl_s: float | None) -> None:
        text = json.dumps(stored_result(result), ensure_ascii=False, separators=(",", ":"))
        now = self._clock()
        expires_at = _expiry(now, ttl_s)
        try:
            if not self._ensure_schema():
                return
            with self._connection() as connection:
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    "INSERT OR REPLACE INTO image_results (key, expires_at, created_at, value)"
                    " VALUES (?, ?, ?, ?)",
                    (key, expires_at, now, text),
                )
                # The lazy purge: rows nobody asked for again since they expired.
                connection.execute("DELETE FROM image_results WHERE expires_at <= ?", (now,))
                connection.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self._failed("storing a result", exc)

    def delete(self, key: str) -> None:
        try:
            if not self._ensure_schema():
                return
            with self._connection() as connection:
                connection.execute("DELETE FROM image_results WHERE key = ?", (key,))
        except (sqlite3.Error, OSError) as exc:
            self._failed("a deletion", exc)


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (then it is left as it is)."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except FileExistsError:
        return
    try:
        if hasattr(os, "fchmod"):  # the umask may have removed the owner's write bit
            os.fchmod(descriptor, _FILE_MODE)
    finally:
        os.close(descriptor)

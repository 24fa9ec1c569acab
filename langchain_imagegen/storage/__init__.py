"""Persisting generated images: on local disk, or anywhere fsspec reaches.

:func:`open_store` picks the store from ``output_dir``: a path gives a
:class:`LocalImageStore` (atomic files, no fsspec import), a URL (``s3://bucket/prefix``,
``gs://...``, ``az://...``, ``memory://...``, anything fsspec knows, ``file://`` included) a
:class:`RemoteImageStore`, imported on first use. Both name images by content hash and return
a :class:`SavedImage`, and read their images back (``read``/``aread``, capped, never outside
their root; ``names``, newest first) for :mod:`langchain_imagegen.handles`.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_imagegen.storage.base import ImageStoreBase, SavedImage
from langchain_imagegen.storage.images import decode_b64_image, sniff_image_type
from langchain_imagegen.storage.local import ImageStore, LocalImageStore

if TYPE_CHECKING:
    from langchain_imagegen.storage.remote import RemoteImageStore

__all__ = [
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
]

DEFAULT_LINK_EXPIRES_IN = 3600
"""Seconds a signed link stays valid: one hour, as long as OpenAI's own image URLs."""

# ``scheme://`` (RFC 3986 scheme) or fsspec's chaining (``simplecache::s3://...``). A Windows
# drive (``C:\\``) has no ``//`` after its colon.
_URL = re.compile(r"\A[A-Za-z][A-Za-z0-9+.\-]*://|::")


def is_url(output_dir: str | os.PathLike[str]) -> bool:
    """Whether ``output_dir`` is an fsspec URL rather than a local path."""
    return isinstance(output_dir, str) and _URL.search(output_dir) is not None


def open_store(
    output_dir: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    link_expires_in: int = DEFAULT_LINK_EXPIRES_IN,
    public_base_url: str | None = None,
) -> LocalImageStore | RemoteImageStore:
    """The store for ``output_dir``: local for a path, fsspec for a URL.

    ``storage_options``, ``link_expires_in`` and ``public_base_url`` only apply to a URL
    (see :class:`RemoteImageStore`).

    Raises:
        ConfigurationError: the URL's filesystem is unknown or not installed.
    """
    if not is_url(output_dir):
        return LocalImageStore(output_dir)
    from langchain_imagegen.storage.remote import RemoteImageStore

    return RemoteImageStore(
        str(output_dir),
        storage_options=storage_options,
        link_expires_in=link_expires_in,
        public_base_url=public_base_url,
    )


def __getattr__(name: str) -> Any:
    # PEP 562: the remote store imports fsspec, which local storage never needs.
    if name == "RemoteImageStore":
        return importlib.import_module("langchain_imagegen.storage.remote").RemoteImageStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

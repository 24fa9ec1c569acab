"""The one TLS context every HTTP client the package creates verifies servers with.

httpx builds a fresh ``ssl.SSLContext`` for each client (and each transport), parsing the
whole CA bundle each time: about 15 ms of CPU per client here (encode/httpx#3627,
encode/httpx#2298), more than a whole image-generation call costs the client on loopback.
A process that builds tools often (one per request in a server, one per test) paid that for
every tool. Python's documentation says an ``SSLContext`` "is designed to be shared and used
by multiple connections", and is thread-safe as long as it is not reconfigured once in use;
requests, aiohttp and pip (pypa/pip#13199) share theirs. So the package builds httpx's
default context once per process and hands it to every client and transport it creates.

The context is httpx's own default (``httpx.create_ssl_context()``: certifi's bundle, or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), so verification is what httpx alone would
do. It is built again when either variable changes. Clients the caller passes in keep their
own settings. httpcore (and httpcore2) set the ALPN protocols on the context at each new
connection; the package never enables HTTP/2, so every one of its clients sets the same
``http/1.1``, and sharing changes nothing there.
"""

from __future__ import annotations

import functools
import os
import ssl

import httpx

__all__ = ["shared_ssl_context"]

_CA_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR")
"""The variables httpx's default context reads (it trusts the environment by default)."""


def shared_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once per value of the CA variables."""
    return _context_for(tuple(os.environ.get(name) for name in _CA_ENV))


@functools.lru_cache(maxsize=4)
def _context_for(ca_settings: tuple[str | None, ...]) -> ssl.SSLContext:
    """``ca_settings`` is only the cache key: httpx reads the same variables itself."""
    del ca_settings
    return httpx.create_ssl_context()

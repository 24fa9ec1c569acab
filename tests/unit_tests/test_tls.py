"""The HTTP clients the package creates share one TLS context (langchain_imagegen/tls.py).

Building a context parses the whole CA bundle (about 15 ms of CPU); httpx would build one
per client and per transport. The shared one must be httpx's own default, and must follow
``SSL_CERT_FILE`` when it changes.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from langchain_imagegen.tls import _context_for, shared_ssl_context
from langchain_imagegen.tool import ImageGenerationTool
from langchain_imagegen.transport import POOL_ENV


@pytest.fixture
def bundle_loads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every CA bundle a TLS context loads from now on, whoever builds the context."""
    loads: list[Any] = []
    real = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    _context_for.cache_clear()
    return loads


def _tool(tmp_path: Path) -> ImageGenerationTool:
    return ImageGenerationTool(model="gpt-image-2", api_key="sk-test", output_dir=str(tmp_path))


@pytest.mark.parametrize("pool", ["aiohttp", "httpcore2", "httpx"])
def test_every_client_the_package_builds_loads_the_bundle_once(
    bundle_loads: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pool: str
) -> None:
    pytest.importorskip(pool)
    monkeypatch.setenv(POOL_ENV, pool)
    clients = [_tool(tmp_path).client for _ in range(3)]
    sync_clients = [client._sync_client() for client in clients]

    async def async_clients() -> list[Any]:
        return [await client._async_client() for client in clients]

    built = asyncio.run(async_clients())

    assert len({id(c) for c in [*sync_clients, *built]}) == 6  # six clients...
    assert len(bundle_loads) == 1  # ...and one CA bundle parsed, not six (or twelve)
    for client in clients:
        client.close()


def test_the_shared_context_is_httpx_default_and_verifies(bundle_loads: list[Any]) -> None:
    context = shared_ssl_context()
    assert context is shared_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    shared_loads = list(bundle_loads)
    bundle_loads.clear()
    httpx_own = httpx.create_ssl_context()
    assert shared_loads == bundle_loads  # the same bundle (certifi's, or SSL_CERT_FILE's)
    assert context.cert_store_stats() == httpx_own.cert_store_stats()


def test_a_changed_ssl_cert_file_is_followed(
    bundle_loads: list[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = os.environ.get("SSL_CERT_FILE")  # some machines set it; httpx then reads it
    default = shared_ssl_context()
    first_ca = Path(certifi.where()).read_text().split("-----END CERTIFICATE-----")[0]
    one_ca = tmp_path / "one-ca.pem"
    one_ca.write_text(first_ca + "-----END CERTIFICATE-----\n")

    monkeypatch.setenv("SSL_CERT_FILE", str(one_ca))
    own = shared_ssl_context()
    assert own is not default
    assert own.cert_store_stats()["x509_ca"] == 1  # the file's one CA, not a whole bundle

    if before is None:
        monkeypatch.delenv("SSL_CERT_FILE")
    else:
        monkeypatch.setenv("SSL_CERT_FILE", before)
    assert shared_ssl_context() is default  # back as it was: not built again
    assert len(bundle_loads) == 2

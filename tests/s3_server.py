"""A real S3-compatible server on loopback for the object-storage tests.

:class:`S3Server` serves moto's S3 backend (``moto[server]``, the same Flask app
``moto.server.ThreadedMotoServer`` serves) over HTTP on 127.0.0.1 with a port the OS picks, so
s3fs talks to it exactly as it talks to AWS: real requests, real presigned links that a test
fetches over HTTP. It is started by the ``s3_server`` fixture (``tests/conftest.py``), so
``.ci/run`` needs nothing else. Two things differ from ``ThreadedMotoServer``, and are why it
is not used as is:

* connections are accepted with the listening socket's own class: ``socket.accept`` builds
  the new socket through the module global ``socket.socket``, which pytest-socket replaces
  with a guard between tests, and a session-long server must survive that (the loopback
  emulator in ``tests/emulator.py`` does the same);
* requests are not logged to stderr, and stopping waits at most one short poll interval.

Faults: :meth:`S3Server.push_fault` queues :class:`S3Fault` answers (an S3 error document)
for the next object uploads, first come first served, so a test can make one upload of a
fan-out fail for real, through s3fs and botocore. :meth:`S3Server.slow_uploads` holds
every upload a while, and :meth:`S3Server.max_uploads_in_flight` tells whether uploads
overlapped.

Credentials are dummies, passed as ``storage_options`` (moto does not check signatures).
The secret is random per server, so a test can search any text for it.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import pytest
from werkzeug.serving import ThreadedWSGIServer

if TYPE_CHECKING:
    import s3fs

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY = "testing"

S3_LIVE = [pytest.mark.enable_socket, pytest.mark.allow_hosts([HOST])]
"""Marks of a test module that talks to the S3 server (sockets to 127.0.0.1 only)."""

_StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_App = Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class S3Fault:
    """An S3 error answer to one object upload (``PUT /bucket/key``).

    ``key_contains`` narrows which upload it hits (a substring of the object key); the
    default hits the next one. 403 AccessDenied is not retried by botocore, so one fault
    costs exactly one upload.
    """

    status: int = 403
    code: str = "AccessDenied"
    message: str = "Access Denied"
    key_contains: str = ""

    def body(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message>"
            f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>"
        ).encode()


@dataclass(frozen=True)
class S3Request:
    """One request the server received: method and path (no query string)."""

    method: str
    path: str

    @property
    def is_object_upload(self) -> bool:
        bucket_and_key = self.path.lstrip("/").split("/", 1)
        return self.method == "PUT" and len(bucket_and_key) == 2 and bool(bucket_and_key[1])


@dataclass
class _Recorder:
    """WSGI middleware: records every request, answers queued faults, and can make object
    uploads slow (``upload_delay_s``), counting how many were in flight at once."""

    app: _App
    faults: list[S3Fault] = field(default_factory=list)
    received: list[S3Request] = field(default_factory=list)
    upload_delay_s: float = 0.0
    uploads_in_flight: int = 0
    max_uploads_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        request = S3Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        with self.lock:
            self.received.append(request)
            fault = self._take_fault(request)
            delay = self.upload_delay_s if request.is_object_upload else 0.0
        if not request.is_object_upload:
            return self._answer(fault, environ, start_response)
        with self.lock:
            self.uploads_in_flight += 1
            self.max_uploads_in_flight = max(self.max_uploads_in_flight, self.uploads_in_flight)
        try:
            time.sleep(delay)
            return list(self._answer(fault, environ, start_response))
        finally:
            with self.lock:
                self.uploads_in_flight -= 1

    def _answer(
        self, fault: S3Fault | None, environ: dict[str, Any], start_response: _StartResponse
    ) -> Iterable[bytes]:
        if fault is None:
            return self.app(environ, start_response)
        _drain(environ)  # the client sent the whole object; read it before answering
        body = fault.body()
        start_response(
            f"{fault.status} Fault",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _take_fault(self, request: S3Request) -> S3Fault | None:
        if not request.is_object_upload:
            return None
        for index, fault in enumerate(self.faults):
            if fault.key_contains in request.path:
                return self.faults.pop(index)
        return None


def _drain(environ: dict[str, Any]) -> None:
    stream = environ["wsgi.input"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 16))
        if not chunk:
            break
        remaining -= len(chunk)


class _Server(ThreadedWSGIServer):
    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept with the listening socket's own class (see the module docstring)."""
        listener = self.socket
        fd, address = cast(Any, listener)._accept()
        conn = type(listener)(listener.family, listener.type, listener.proto, fileno=fd)
        if socket.getdefaulttimeout() is None and listener.gettimeout():
            conn.setblocking(True)
        return conn, address


def _quiet_handler() -> type[Any]:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            """Tests count requests through :attr:`S3Server.received`; no stderr noise."""

    return QuietHandler


class S3Server:
    """moto's S3 on ``http://127.0.0.1:PORT``; a context manager."""

    def __init__(self) -> None:
        self.secret = f"s3-test-secret-{secrets.token_hex(8)}"
        self._recorder: _Recorder | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._filesystem: s3fs.S3FileSystem | None = None

    def start(self) -> S3Server:
        from moto.moto_server.werkzeug_app import create_backend_app

        if self._server is not None:
            raise RuntimeError("S3 server already started")
        self._recorder = _Recorder(cast(_App, create_backend_app("s3")))
        self._server = _Server(HOST, 0, self._recorder, handler=_quiet_handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits up to one interval
            name=f"s3-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = self._filesystem = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("S3 server not started")
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def storage_options(self) -> dict[str, Any]:
        """What a user passes to fsspec / the tool for this endpoint (dummy credentials)."""
        return {
            "endpoint_url": self.endpoint_url,
            "key": ACCESS_KEY,
            "secret": self.secret,
            "client_kwargs": {"region_name": REGION},
        }

    def filesystem(self) -> s3fs.S3FileSystem:
        """The server's own s3fs client for checks and set-up: outside fsspec's instance cache
        (so never shared with the code under test) and without a listings cache (so a
        listing always shows what the server holds now). Made once: a client costs ~0.1 s."""
        import s3fs

        if self._filesystem is None:
            self._filesystem = s3fs.S3FileSystem(
                skip_instance_cache=True, use_listings_cache=False, **self.storage_options()
            )
        return self._filesystem

    # ---- buckets, faults, what was received ------------------------------------------------
    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        # ``S3FileSystem.mkdir`` sends a LocationConstraint, which us-east-1 refuses.
        self.filesystem().call_s3("create_bucket", Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        fs = self.filesystem()
        for key in fs.find(name):
            fs.rm_file(key)
        fs.call_s3("delete_bucket", Bucket=name)

    def push_fault(self, *faults: S3Fault) -> None:
        recorder = self._live_recorder()
        with recorder.lock:
            recorder.faults.extend(faults)

    def take_unused_faults(self) -> list[S3Fault]:
        recorder = self._live_recorder()
        with recorder.lock:
            unused, recorder.faults = recorder.faults, []
        return unused

    def received(self) -> list[S3Request]:
        recorder = self._live_recorder()
        with recorder.lock:
            return list(recorder.received)

    def clear_received(self) -> None:
        """Forget what was received, and serve uploads at full speed again."""
        recorder = self._live_recorder()
        with recorder.lock:
            recorder.received.clear()
            recorder.upload_delay_s = 0.0
            recorder.max_uploads_in_flight = 0

    def slow_uploads(self, seconds: float) -> None:
        """Hold every object upload ``seconds`` before storing it (a slow link to S3)."""
        recorder = self._live_recorder()
        with recorder.lock:
            recorder.upload_delay_s = seconds

    def max_uploads_in_flight(self) -> int:
        """The most object uploads the server was handling at once since the last clear."""
        recorder = self._live_recorder()
        with recorder.lock:
            return recorder.max_uploads_in_flight

    def _live_recorder(self) -> _Recorder:
        if self._recorder is None:
            raise RuntimeError("S3 server not started")
        return self._recorder


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket on the test server, as a test sees it."""

    server: S3Server
    name: str

    @property
    def url(self) -> str:
        """``s3://NAME``: join a prefix for ``output_dir``."""
        return f"s3://{self.name}"

    @property
    def storage_options(self) -> dict[str, Any]:
        return self.server.storage_options()

    @property
    def secret(self) -> str:
        return self.server.secret

    def filesystem(self) -> s3fs.S3FileSystem:
        return self.server.filesystem()

    def make_public(self) -> None:
        """Let anyone read the bucket's objects (a public-read bucket policy)."""
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{self.name}/*",
                }
            ],
        }
        self.filesystem().call_s3("put_bucket_policy", Bucket=self.name, Policy=json.dumps(policy))

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix``: key (without the bucket) -> bytes."""
        fs = self.filesystem()
        root = f"{self.name}/{prefix}".rstrip("/")
        return {path.split("/", 1)[1]: fs.cat_file(path) for path in fs.find(root)}


def bucket_fixture(server: S3Server) -> Iterator[S3Bucket]:
    """Body of the ``s3_bucket`` fixture: a fresh bucket, emptied and deleted afterwards."""
    import s3fs

    server.clear_received()
    bucket = S3Bucket(server, server.create_bucket())
    try:
        yield bucket
        unused = server.take_unused_faults()
        assert not unused, f"S3 faults left unused: {unused}"
    finally:
        server.take_unused_faults()
        server.clear_received()
        server.delete_bucket(bucket.name)
        # The tool's s3fs instances come from fsspec's instance cache: none outlives the test.
        s3fs.S3FileSystem.clear_instance_cache()

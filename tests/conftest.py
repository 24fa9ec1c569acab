"""Shared test configuration: hermetic environment, Hypothesis profiles, VCR cassettes.

Cassettes are plain YAML written by ``tests/readable_yaml.py``. Replay (the default,
``--record-mode=none``) needs no network and no key. To record, run with
``--record-mode=once`` (new cassettes) or ``rewrite``: the ``images_base_url`` fixture then
starts the loopback emulator from ``tests/emulator.py``, or uses
``IMAGEGEN_RECORD_BASE_URL`` (with ``OPENAI_API_KEY``) to record against a real endpoint.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from langchain_tests.conftest import base_vcr_config
from vcr import VCR

from langchain_imagegen.providers import PROVIDERS
from tests import readable_yaml

if TYPE_CHECKING:
    from tests.s3_server import S3Bucket, S3Server

# Garbage collection. By the time this file is imported, pytest has loaded LangChain,
# pydantic, Hypothesis and the plugins: a large heap that lives as long as the run. Python's
# default thresholds (a young collection every 700 allocations, a full one every 100 of them)
# then walk that heap again and again while pytest rewrites the assertions of every test
# module, which allocates syntax trees by the million. Where bytecode is not cached
# (PYTHONDONTWRITEBYTECODE, or a fresh clone), each xdist worker rewrites every module, and
# the collector took about 3.5 of the 9 seconds a worker spent starting and collecting
# (`pytest --collect-only`: 9.0 s before, 5.5 s after). Freezing what exists
# moves it out of the collector's way; the higher threshold makes young collections rarer.
# Cycles are still collected, so tests that wait for garbage (closed sockets, released
# connections) see the same behaviour.
gc.freeze()
gc.set_threshold(50_000, 10, 10)

# Hypothesis: the same examples on every run (a failure in CI reproduces locally), no example
# database written into the tree; IMAGEGEN_HYPOTHESIS_PROFILE=explore searches anew each run.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile(
    "explore",
    derandomize=False,
    max_examples=2_000,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
HYPOTHESIS_PROFILE_ENV = "IMAGEGEN_HYPOTHESIS_PROFILE"
settings.load_profile(os.environ.get(HYPOTHESIS_PROFILE_ENV, "ci"))

CASSETTE_DIR = Path(__file__).resolve().parents[1] / "cassettes"
REPLAY_BASE_URL = "http://images.test/v1"
"""Replays match on method, path and body, never on host, so any base URL replays."""
EMULATOR_KEY = "sk-test-emulator"
TINY_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
    "rkJggg=="
)
_DROP_RESPONSE_HEADERS = {
    "openai-organization",
    "openai-project",
    "set-cookie",
    "x-request-id",
    "www-authenticate",
}
SECRET_PATTERN = re.compile(rb"(sk-[A-Za-z0-9_-]{8,}|Bearer\s+[A-Za-z0-9._-]{8,})")


_TINY_BYTES = 1024
_CORRUPT_KEEP = 1001  # an odd number of base64 characters is never valid base64
_TEXT_TYPES = ("json", "text/", "xml", "html")


def _tiny_like(b64: str) -> str:
    """A 1x1 stand-in for a base64 image: same format (a JPEG stays a JPEG), distinct per
    original (content-hash file names stay distinct), still corrupt if the original was
    (the fault suites cut payloads on purpose)."""
    from langchain_imagegen.errors import StorageError
    from langchain_imagegen.storage import decode_b64_image, sniff_image_type
    from tests.emulator import encode_image

    try:
        data = decode_b64_image(b64)
    except StorageError:
        return b64[:_CORRUPT_KEEP]
    if len(data) <= _TINY_BYTES:
        return b64  # already small; vcrpy also runs this hook on every cassette it loads
    kind = sniff_image_type(data)
    fmt = {"image/jpeg": "jpeg", "image/webp": "webp"}.get(kind[0] if kind else "", "png")
    tiny = encode_image(fmt, 1, 1, tag=hashlib.sha256(data).hexdigest()[:16])
    return base64.b64encode(tiny).decode("ascii")


def _header(headers: dict[str, list[str]], name: str) -> str:
    for key, values in headers.items():
        if key.lower() == name and values:
            return str(values[0])
    return ""


def _shrink_event_stream(body: bytes | str) -> bytes:
    """A streamed answer (``stream: true``) with each event's ``b64_json`` image, preview or
    final, shrunk like :func:`_tiny_like`; every other line kept as it was."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    lines = []
    for line in text.split("\n"):
        field, colon, value = line.partition(":")
        try:
            event = json.loads(value) if field == "data" and colon else None
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("b64_json"), str):
            event["b64_json"] = _tiny_like(event["b64_json"])
            lines.append("data: " + json.dumps(event, separators=(",", ":")))
        else:
            lines.append(line)
    return "\n".join(lines).encode("utf-8")


def _shrink_images(response: dict[str, Any]) -> dict[str, Any]:
    """before_record_response: drop account headers, shrink base64 images to 1x1 images of
    the same format, and redact credentials a server echoed into a text body."""
    headers = response["headers"]
    for name in list(headers):
        if name.lower() in _DROP_RESPONSE_HEADERS:
            del headers[name]
    body = response.get("body", {}).get("string")
    if not body:
        return response
    new_body = body
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        for item in payload["data"]:
            if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
                item["b64_json"] = _tiny_like(item["b64_json"])
        new_body = json.dumps(payload).encode()
    elif "text/event-stream" in _header(headers, "content-type"):
        new_body = _shrink_event_stream(body)
    if payload is not None or any(t in _header(headers, "content-type") for t in _TEXT_TYPES):
        new_body = SECRET_PATTERN.sub(b"<redacted>", new_body)
    if new_body != body:
        response["body"]["string"] = new_body
        for name in list(headers):
            if name.lower() == "content-length":
                headers[name] = [str(len(new_body))]
    return response


_CASSETTE_BOUNDARY = "cassette-boundary"


def _readable_multipart(request: Any) -> Any:
    """before_record_request, which vcrpy also applies to each request before matching it: an
    edit's multipart/form-data body as readable text under a fixed boundary, its text fields
    kept and each file replaced by a line naming its field and type. httpx draws a random
    boundary per request, and an edit's image bytes differ between recording (the emulator's
    images) and replay (the 1x1 stand-ins the generation cassettes replay): matching them
    could never succeed. What is sent is checked live against the emulator instead
    (``tests/unit_tests/test_cli_edit.py``, ``test_client_edit.py``)."""
    from tests.emulator import parse_multipart

    content_type = request.headers.get("Content-Type") or ""
    if not content_type.lower().startswith("multipart/form-data"):
        return request
    body = request.body
    parts = parse_multipart(content_type, body if isinstance(body, bytes) else b"")
    if parts is None:
        return request
    lines: list[str] = []
    for part in parts:
        lines.append(f"--{_CASSETTE_BOUNDARY}")
        if part.filename is None:
            disposition = f'Content-Disposition: form-data; name="{part.name}"'
            lines += [disposition, "", part.data.decode("utf-8", "replace")]
        else:
            disposition = f'Content-Disposition: form-data; name="{part.name}"; filename="..."'
            lines += [disposition, f"Content-Type: {part.content_type}", "", "(file not kept)"]
    lines.append(f"--{_CASSETTE_BOUNDARY}--")
    request.body = "\n".join(lines)
    request.headers["Content-Type"] = f"multipart/form-data; boundary={_CASSETTE_BOUNDARY}"
    for name in list(request.headers):
        if name.lower() == "content-length":
            request.headers[name] = str(len(request.body))
    return request


def _recording(config: pytest.Config) -> bool:
    return config.getoption("--record-mode") not in (None, "none")


@pytest.fixture(scope="session")
def vcr_config() -> dict[str, Any]:
    config = base_vcr_config()
    # pytest-recording lets a ``record_mode`` here override ``--record-mode``, and the
    # library dir is CWD-relative (``vcr_cassette_dir`` below is absolute).
    config.pop("record_mode")
    config.pop("cassette_library_dir")
    config["match_on"] = ["method", "path", "body"]
    config["filter_headers"] = [
        *config["filter_headers"],  # authorization, x-api-key, api-key
        ("openai-organization", "PLACEHOLDER"),
        ("openai-project", "PLACEHOLDER"),
    ]
    config["before_record_request"] = _readable_multipart
    config["before_record_response"] = _shrink_images
    config["serializer"] = readable_yaml.NAME
    config["path_transformer"] = VCR.ensure_suffix(readable_yaml.SUFFIX)
    return config


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTE_DIR)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: the suite also runs without xdist
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than there are cores. Part of the suite's time is spent
    waiting (on loopback servers and subprocesses, and in the tests of real-time deadlines),
    so a core per worker leaves the cores idle meanwhile: on 2 cores, 2 workers took 63 s and
    3 took 51 s."""
    return (os.cpu_count() or 1) + 1


def pytest_recording_configure(config: pytest.Config, vcr: VCR) -> None:
    vcr.register_serializer(readable_yaml.NAME, readable_yaml.ReadableYamlSerializer)


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """No test sees the developer's real endpoint settings; replays get a dummy key."""
    for name in (
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "OPENAI_API_VERSION",
        "OPENAI_API_BASE",
        # The other providers' key variables (XAI_API_KEY, ...): a developer's real keys.
        *(name for provider in PROVIDERS for name in provider.key_env),
    ):
        if name != "OPENAI_API_KEY":
            monkeypatch.delenv(name, raising=False)
    if not _recording(request.config) or not os.environ.get("IMAGEGEN_RECORD_BASE_URL"):
        monkeypatch.setenv("OPENAI_API_KEY", EMULATOR_KEY)


@pytest.fixture
def images_base_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Where cassette-backed tests send requests: a placeholder on replay, a live target
    (the emulator, or ``IMAGEGEN_RECORD_BASE_URL``) while recording."""
    if not _recording(request.config):
        yield REPLAY_BASE_URL
        return
    real = os.environ.get("IMAGEGEN_RECORD_BASE_URL")
    if real:
        yield real
        return
    import pytest_socket

    from tests.emulator import Emulator

    pytest_socket.enable_socket()
    with Emulator(api_key=EMULATOR_KEY) as emulator:
        yield emulator.base_url


_AWS_SETTINGS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 on 127.0.0.1 (``tests/s3_server.py``), one per session. Tests using it carry
    ``tests.s3_server.S3_LIVE`` (sockets to 127.0.0.1 only)."""
    from tests.s3_server import S3Server

    with S3Server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A fresh, empty bucket on ``s3_server``; the developer's AWS settings are hidden, so
    credentials and endpoint come only from ``s3_bucket.storage_options``."""
    from tests.s3_server import bucket_fixture

    for name in _AWS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield from bucket_fixture(s3_server)


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` here and in child processes, as in a terminal.

    A shell that starts the tests as a background job without job control (``cmd &`` in a
    script) sets SIGINT to "ignore", which ``_thread.interrupt_main`` then honours and
    child processes inherit; the tests of Ctrl-C would test nothing."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether ``condition()`` became true within ``seconds`` (polled every 10 ms): for what
    a server thread records just after the client has its answer."""
    limit = time.monotonic() + seconds
    while time.monotonic() < limit:
        if condition():
            return True
        time.sleep(0.01)
    return condition()

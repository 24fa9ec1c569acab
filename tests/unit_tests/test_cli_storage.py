"""The command line with remote storage: ``--output-dir URL``, ``--storage-option``,
``--link-expires-in``, ``--public-base-url``. ``memory://`` for the fast cases, the loopback
S3 server (``tests/s3_server.py``) for real links and a real failed upload. The Images API
is an ``httpx.MockTransport``, as in ``test_cli.py``."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
import httpx
import pytest

from langchain_imagegen import tool as tool_module
from langchain_imagegen.cli import main
from langchain_imagegen.result import ImageGenerationResult
from tests.emulator import encode_image
from tests.s3_server import S3_LIVE, S3Bucket, S3Fault
from tests.unit_tests.conftest import run

Handler = Callable[[httpx.Request], httpx.Response]
SECRET = "wJalrXUtnFEMI-not-a-real-key-0123456789"


def b64_images(request: httpx.Request) -> httpx.Response:
    n = json.loads(request.content).get("n", 1)
    pngs = [encode_image("png", 1, 1, tag=f"{uuid.uuid4().hex}-{i}") for i in range(n)]
    data = [{"b64_json": base64.b64encode(png).decode()} for png in pngs]
    return httpx.Response(200, json={"created": 1, "data": data})


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], list[dict[str, Any]]]:
    """Answer the CLI's Images API requests with ``handler``; returns the bodies sent."""

    def install(handler: Handler) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []

        def record(request: httpx.Request) -> httpx.Response:
            bodies.append(json.loads(request.content))
            return handler(request)

        client = httpx.Client(transport=httpx.MockTransport(record))
        tool = functools.partial(tool_module.ImageGenerationTool, http_client=client, max_retries=0)
        monkeypatch.setattr(tool_module, "ImageGenerationTool", tool)
        return bodies

    return install


@pytest.fixture
def memory_dir() -> Iterator[str]:
    """A fresh ``memory://`` directory, removed afterwards (the memory filesystem is global)."""
    root = f"memory://cli-{uuid.uuid4().hex[:8]}/images"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _objects(root: str) -> dict[str, bytes]:
    fs = fsspec.filesystem("memory")
    return {path: fs.cat_file(path) for path in fs.find(root)} if fs.exists(root) else {}


# --- memory:// ------------------------------------------------------------------------------


def test_output_dir_url_stores_the_images_there(
    serve: Callable[[Handler], list[dict[str, Any]]], memory_dir: str
) -> None:
    serve(b64_images)
    code, out = run(["generate", "a fox", "-n", "2", "--output-dir", memory_dir])
    assert code == 0
    stored = _objects(memory_dir)
    assert len(stored) == 2
    assert all(data.startswith(b"\x89PNG") for data in stored.values())
    # memory:// cannot sign and no public base URL is set: the storage URIs are listed
    for path in stored:
        assert f"memory://{path.lstrip('/')}" in out or f"memory://{path}" in out


def test_public_base_url_gives_links_and_json_keeps_uri_and_link(
    serve: Callable[[Handler], list[dict[str, Any]]], memory_dir: str
) -> None:
    serve(b64_images)
    argv = ["generate", "a fox", "--output-dir", memory_dir, "--public-base-url"]
    code, out = run([*argv, "https://cdn.example/pics", "--json"])
    assert code == 0
    (image,) = ImageGenerationResult.model_validate_json(out).images
    assert image.uri is not None
    assert image.uri.startswith(memory_dir.replace("memory://", "memory:///"))
    name = image.uri.rsplit("/", 1)[1]
    assert image.link is not None
    assert image.link.startswith("https://cdn.example/pics/")
    assert image.link.endswith(f"/images/{name}")
    assert image.path is None

    code, text = run([*argv, "https://cdn.example/pics"])
    assert code == 0
    (entry,) = [line for line in text.splitlines() if line.startswith("1. ")]
    handle, png = r"img_[0-9a-f]{16}", r"[0-9a-f]{16}\.png"
    assert re.fullmatch(rf"1\. {handle}: https://cdn\.example/pics/\S+/images/{png}", entry)


def test_a_storage_option_value_never_shows_in_an_error(
    serve: Callable[[Handler], list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """botocore refuses the endpoint quoting it ("Invalid endpoint: ..."): the error is one
    line, exit code 6, and the value is not in it."""
    serve(b64_images)
    argv = ["generate", "a fox", "--output-dir", "s3://bucket/images"]
    options = [f"endpoint_url={SECRET}", "key=AKIA0", "secret=s3cr3t-value"]
    code, out = run([*argv, *(f"--storage-option={option}" for option in options)])
    err = capsys.readouterr().err
    assert code == 6
    assert SECRET not in out + err
    assert "s3cr3t-value" not in out + err
    (line,) = err.splitlines()
    assert line.startswith("langchain-imagegen: ")
    assert "s3://bucket/images" in line
    assert "***" in line


def test_a_url_the_store_refuses_exits_6_before_sending(
    serve: Callable[[Handler], list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A scheme fsspec does not know: the storage's exit code (not 3, the API key's), one line
    naming the store, nothing sent."""
    bodies = serve(b64_images)
    code, out = run(["generate", "a fox", "--output-dir", "nosuch://bucket/images"])
    assert code == 6
    assert bodies == []
    assert out == ""
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("langchain-imagegen: cannot store images at nosuch://bucket/images")


def test_a_malformed_storage_option_is_a_usage_error_without_the_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "a fox", "--storage-option", SECRET, "--dry-run"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --storage-option: expected KEY=VALUE (the value is not shown)" in err
    assert SECRET not in err


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_link_expires_in_must_be_positive(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "a fox", "--link-expires-in", value, "--dry-run"])
    assert exit_info.value.code == 2
    assert "argument --link-expires-in" in capsys.readouterr().err


def test_a_public_base_url_that_is_not_http_is_refused(
    capsys: pytest.CaptureFixture[str], memory_dir: str
) -> None:
    code, _ = run(
        ["generate", "a fox", "--output-dir", memory_dir, "--public-base-url", "ftp://x/y"]
    )
    assert code == 2
    assert "public_base_url must be an http(s) URL" in capsys.readouterr().err


def test_dry_run_with_a_bucket_sends_and_stores_nothing(
    serve: Callable[[Handler], list[dict[str, Any]]], memory_dir: str
) -> None:
    bodies = serve(b64_images)
    code, out = run(["generate", "a fox", "--output-dir", memory_dir, "--dry-run"])
    assert code == 0
    assert bodies == []
    assert _objects(memory_dir) == {}
    assert out.startswith("1 request(s) to gpt-image-2:")


# --- a real S3 API on loopback --------------------------------------------------------------


def _live(test: Callable[..., None]) -> Callable[..., None]:
    """Sockets to the loopback S3 server only (``tests.s3_server.S3_LIVE``)."""
    for mark in S3_LIVE:
        test = mark(test)
    return test


def _s3_options(bucket: S3Bucket) -> list[str]:
    options = bucket.storage_options
    return [
        "--storage-option",
        f"endpoint_url={options['endpoint_url']}",
        "--storage-option",
        f"key={options['key']}",
        "--storage-option",
        f"secret={options['secret']}",
        "--storage-option",
        f"client_kwargs={json.dumps(options['client_kwargs'])}",
    ]


@_live
def test_s3_prints_signed_links_that_fetch_the_image(
    serve: Callable[[Handler], list[dict[str, Any]]],
    s3_bucket: S3Bucket,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve(b64_images)
    started = dt.datetime.now(dt.timezone.utc)
    output_dir = f"{s3_bucket.url}/cli"
    argv = ["generate", "a fox", "-n", "2", "--output-dir", output_dir, *_s3_options(s3_bucket)]
    code, out = run([*argv, "--link-expires-in", "120", "--json"])
    assert code == 0
    result = ImageGenerationResult.model_validate_json(out)
    stored = s3_bucket.objects("cli")
    assert len(stored) == 2
    for image in result.images:
        assert image.uri is not None
        assert image.uri.startswith(f"{output_dir}/")
        assert image.link is not None
        assert image.link.startswith(s3_bucket.storage_options["endpoint_url"])
        assert image.link_expires_at is not None
        assert (image.link_expires_at - started).total_seconds() == pytest.approx(120, abs=5)
        fetched = httpx.get(image.link)
        assert fetched.status_code == 200
        assert fetched.content == stored[image.uri.split("/", 3)[3]]
    assert s3_bucket.secret not in out + capsys.readouterr().err

    code, text = run(argv)  # the text an agent would read: links, not storage URIs
    assert code == 0
    entries = [line for line in text.splitlines() if line[:3] in ("1. ", "2. ")]
    assert len(entries) == 2
    assert all(re.match(r"img_[0-9a-f]{16}: http://127\.0\.0\.1:", entry[3:]) for entry in entries)


@_live
def test_a_failed_upload_exits_6_naming_the_bucket_without_the_secret(
    serve: Callable[[Handler], list[dict[str, Any]]],
    s3_bucket: S3Bucket,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve(b64_images)
    s3_bucket.server.push_fault(S3Fault())
    output_dir = f"{s3_bucket.url}/cli"
    code, out = run(["generate", "a fox", "--output-dir", output_dir, *_s3_options(s3_bucket)])
    err = capsys.readouterr().err
    assert code == 6
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("langchain-imagegen: ")
    assert output_dir in line
    assert "Access Denied" in line or "AccessDenied" in line
    assert s3_bucket.secret not in err
    assert s3_bucket.objects("cli") == {}  # nothing half-written

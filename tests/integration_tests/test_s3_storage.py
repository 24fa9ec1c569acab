"""Object storage end to end, against a real S3 API on loopback (moto, ``tests/s3_server.py``).

The first tests check the test server itself with s3fs alone (what the tool relies on: a
PUT, a presigned link fetched over HTTP, a scripted upload fault).
"""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from tests.s3_server import S3_LIVE, S3Bucket, S3Fault

pytestmark = S3_LIVE


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_server_stores_bytes_and_serves_a_presigned_link(s3_bucket: S3Bucket) -> None:
    data = os.urandom(50_000)
    fs = s3_bucket.filesystem()
    path = f"{s3_bucket.name}/images/raw.png"

    fs.pipe_file(path, data, ContentType="image/png")
    link = fs.sign(path, expiration=60)
    response = httpx.get(link)

    assert link.startswith(s3_bucket.server.endpoint_url + "/")
    assert response.status_code == 200
    assert _sha(response.content) == _sha(data)
    assert response.headers["content-type"] == "image/png"
    assert fs.info(path)["ContentType"] == "image/png"
    assert s3_bucket.objects() == {"images/raw.png": data}


def test_server_answers_a_queued_upload_fault(s3_bucket: S3Bucket) -> None:
    fs = s3_bucket.filesystem()
    s3_bucket.server.push_fault(S3Fault(key_contains="second"))

    fs.pipe_file(f"{s3_bucket.name}/first.png", b"1")
    with pytest.raises(PermissionError):
        fs.pipe_file(f"{s3_bucket.name}/second.png", b"2")
    fs.pipe_file(f"{s3_bucket.name}/third.png", b"3")

    assert s3_bucket.objects() == {"first.png": b"1", "third.png": b"3"}
    uploads = [r.path for r in s3_bucket.server.received() if r.is_object_upload]
    assert uploads == [f"/{s3_bucket.name}/{n}.png" for n in ("first", "second", "third")]


def test_each_test_gets_a_fresh_empty_bucket(s3_bucket: S3Bucket) -> None:
    others = {b["Name"] for b in s3_bucket.filesystem().call_s3("list_buckets")["Buckets"]}

    assert others == {s3_bucket.name}
    assert s3_bucket.objects() == {}

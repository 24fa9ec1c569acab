"""Many workers, one bucket: the deployment shape of docs/storage.md, run for real.

Several worker processes (``spawn``, as on macOS/Windows and in most process managers),
each with its own tool, share one S3 bucket (moto on loopback, ``tests/s3_server.py``) and
one image server (below, on loopback). Each worker makes several calls: most prompts are
its own, one is the same in every worker, and the image server answers a prompt with the
same bytes wherever it comes from, so several workers save identical images at once.

Afterwards every image is in the bucket exactly once under its content-hash key, every link
a worker returned fetches exactly that image's bytes over HTTP, and nothing is lost.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.emulator import encode_image
from tests.s3_server import HOST, S3_LIVE, S3Bucket

pytestmark = S3_LIVE

WORKERS = 3
CALLS_PER_WORKER = 4
SHARED_PROMPT = "the same lighthouse for everyone"
PREFIX = "shared/images"


def image_for(prompt: str) -> bytes:
    """The image server's answer to ``prompt``: a real PNG, the same bytes for the same
    prompt in any process, different for different prompts."""
    return encode_image("png", 64, 48, tag=hashlib.sha256(prompt.encode()).hexdigest()[:16])


def prompts_of(worker: int) -> list[str]:
    own = [f"worker {worker} picture {call}" for call in range(CALLS_PER_WORKER - 1)]
    return [SHARED_PROMPT, *own]


class _ImageHandler(BaseHTTPRequestHandler):
    """``POST /v1/images/generations``: one base64 PNG per request, chosen by the prompt."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        image = base64.b64encode(image_for(body["prompt"])).decode("ascii")
        payload = json.dumps({"created": int(time.time()), "data": [{"b64_json": image}]})
        data = payload.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test checks outcomes, not access logs."""


@pytest.fixture
def image_server() -> Iterator[str]:
    server = ThreadingHTTPServer((HOST, 0), _ImageHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_worker(
    worker: int, base_url: str, output_dir: str, storage_options: dict[str, Any]
) -> list[dict[str, Any]]:
    """One worker process: its own tool, its calls one after another. Returns, per call, the
    prompt and the (JSON-able) artifact, as a queue consumer would pass it on."""
    from langchain_imagegen import ImageGenerationResult, ImageGenerationTool

    tool = ImageGenerationTool(
        model="gpt-image-1",
        api_key="sk-test-worker",
        base_url=base_url,
        output_dir=output_dir,
        storage_options=storage_options,
        max_retries=0,
    )
    outcomes = []
    for call, prompt in enumerate(prompts_of(worker)):
        message = tool.invoke(
            {
                "name": tool.name,
                "args": {"prompt": prompt},
                "id": f"call-{worker}-{call}",
                "type": "tool_call",
            }
        )
        result = ImageGenerationResult.from_artifact(message.artifact)
        outcomes.append(
            {"prompt": prompt, "text": message.text, "artifact": result.model_dump(mode="json")}
        )
    tool.close()
    return outcomes


def test_workers_share_one_bucket_without_loss_or_duplicates(
    s3_bucket: S3Bucket, image_server: str
) -> None:
    output_dir = f"{s3_bucket.url}/{PREFIX}"
    started = time.perf_counter()
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            pool.submit(run_worker, w, image_server, output_dir, s3_bucket.storage_options)
            for w in range(WORKERS)
        ]
        outcomes = [outcome for future in futures for outcome in future.result(timeout=60)]
    elapsed = time.perf_counter() - started

    expected = {o["prompt"]: image_for(o["prompt"]) for o in outcomes}
    stored = s3_bucket.objects(PREFIX)
    links = []
    for outcome in outcomes:
        (image,) = outcome["artifact"]["images"]
        data = expected[outcome["prompt"]]
        digest = hashlib.sha256(data).hexdigest()
        key = image["uri"].removeprefix(f"{s3_bucket.url}/")
        assert image["uri"].startswith(f"{output_dir}/")
        assert digest[:16] in key.rsplit("/", 1)[1], "keys are content hashes"
        assert stored[key] == data
        assert image["link"] in outcome["text"]
        links.append((image["link"], digest))

    # Every call saved its image; identical images share one object; nothing else is there.
    assert len(outcomes) == WORKERS * CALLS_PER_WORKER
    assert len(stored) == len(expected) == WORKERS * (CALLS_PER_WORKER - 1) + 1
    assert {hashlib.sha256(data).hexdigest() for data in stored.values()} == {
        hashlib.sha256(data).hexdigest() for data in expected.values()
    }
    with httpx.Client() as client:
        for link, digest in links:
            response = client.get(link)
            assert response.status_code == 200, link
            assert hashlib.sha256(response.content).hexdigest() == digest
    uploads = [r for r in s3_bucket.server.received() if r.is_object_upload]
    print(
        f"\n{WORKERS} workers x {CALLS_PER_WORKER} calls: {len(outcomes)} images saved "
        f"({len(uploads)} PUTs), {len(stored)} distinct objects, {len(links)} links fetched; "
        f"{elapsed:.2f} s (process start included)"
    )

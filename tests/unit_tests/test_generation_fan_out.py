"""The sync fan-out's threads: a failure inside one reaches the caller, nothing is lost."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

import pytest

from langchain_imagegen.client import ImagesClient
from langchain_imagegen.coercion import coerce_params
from langchain_imagegen.errors import RateLimitError
from langchain_imagegen.generation import ImageGenerator
from langchain_imagegen.response import ImagesResponse, ReturnedImage
from langchain_imagegen.storage import ImageStore


class ScriptedClient:
    """Answers the n-th request (in the order they arrive) with ``script[n]``."""

    def __init__(self, *script: BaseException | None) -> None:
        self.script = list(script)
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def deadline(self) -> float:
        return 0.0

    def generate(
        self, body: dict[str, Any], *, deadline: float | None = None, **_: Any
    ) -> ImagesResponse:
        with self.lock:
            self.threads.append(threading.current_thread())
            step = self.script.pop(0)
        if step is not None:
            raise step
        return ImagesResponse(created=1, images=(ReturnedImage(None, "https://files.example/a"),))


def _run(client: ScriptedClient, tmp_path: Path, images: int = 2) -> Any:
    generator = ImageGenerator(cast(ImagesClient, client), ImageStore(tmp_path))
    return generator.run(coerce_params("dall-e-3", {"prompt": "a fox", "n": images}))


def test_an_unexpected_error_in_a_request_thread_reaches_the_caller(tmp_path: Path) -> None:
    client = ScriptedClient(RuntimeError("bug in a transport"), None)
    with pytest.raises(RuntimeError, match="bug in a transport"):
        _run(client, tmp_path)


def test_a_failed_request_of_a_fan_out_is_reported_beside_the_others(tmp_path: Path) -> None:
    client = ScriptedClient(None, RateLimitError("slow down", status_code=429), None)
    result = _run(client, tmp_path, images=3)
    assert len(result.images) == 2
    (error,) = result.errors
    assert "slow down" in error


def test_fanned_out_requests_run_on_daemon_threads(tmp_path: Path) -> None:
    client = ScriptedClient(None, None)
    _run(client, tmp_path)
    assert len(client.threads) == 2
    assert all(thread.daemon for thread in client.threads)
    assert threading.main_thread() not in client.threads


def test_a_single_request_runs_on_the_calling_thread(tmp_path: Path) -> None:
    client = ScriptedClient(None)
    _run(client, tmp_path, images=1)
    assert client.threads == [threading.current_thread()]

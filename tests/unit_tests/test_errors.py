"""The exception hierarchy: openai-python's names and attributes, and where each error belongs."""

from __future__ import annotations

import pytest

from langchain_imagegen import errors
from langchain_imagegen.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    CorruptImageError,
    ImageDownloadError,
    InternalServerError,
    MalformedResponseError,
    RateLimitError,
    StorageError,
    error_from_response,
)


def test_status_code_and_request_id_as_in_openai_python() -> None:
    error = error_from_response(
        429, b'{"error": {"message": "slow down", "code": "rate_limit_exceeded"}}',
        {"x-request-id": "req_123"},
    )  # fmt: skip
    assert isinstance(error, RateLimitError)
    assert (error.status_code, error.request_id, error.code) == (
        429,
        "req_123",
        "rate_limit_exceeded",
    )
    assert error.message == "slow down"
    assert not hasattr(error, "status")


def test_5xx_is_internal_server_error() -> None:
    error = error_from_response(503, b"", {})
    assert type(error) is InternalServerError
    assert errors.ServerError is InternalServerError  # the 0.1.0 name still works


def test_a_corrupt_image_is_a_response_error_not_a_storage_error() -> None:
    error = CorruptImageError("truncated")
    assert isinstance(error, MalformedResponseError)
    assert isinstance(error, APIError)
    assert not isinstance(error, StorageError)
    assert not error.retryable


def test_a_failed_download_is_the_link_not_the_disk() -> None:
    error = ImageDownloadError("expired", status_code=403)
    assert isinstance(error, APIError)
    assert not isinstance(error, (StorageError, OSError))
    assert "output_dir" not in error.agent_message()
    assert "URL" in error.hint


def test_timeout_is_a_connection_error() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)


@pytest.mark.parametrize(
    "name", [n for n in errors.__all__ if isinstance(getattr(errors, n), type)]
)
def test_the_module_docstring_draws_every_class(name: str) -> None:
    assert errors.__doc__ is not None
    assert f" {name} " in errors.__doc__

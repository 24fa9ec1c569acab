"""parse_images_response: the documented shapes, gateway deviations and broken bodies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from langchain_imagegen.errors import (
    APIError,
    ContentPolicyError,
    MalformedResponseError,
    RateLimitError,
)
from langchain_imagegen.response import ImagesResponse, ReturnedImage, parse_images_response


def _parse(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> ImagesResponse:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_images_response(status, content, headers or {})


def test_dall_e_2_url() -> None:
    result = _parse({"created": 1705664453, "data": [{"url": "https://x/a.png"}]})
    assert result == ImagesResponse(
        created=1705664453, images=(ReturnedImage(b64_json=None, url="https://x/a.png"),)
    )


def test_dall_e_3_revised_prompt() -> None:
    result = _parse({"created": 1, "data": [{"revised_prompt": "a cat", "url": "https://x/b"}]})
    assert result.images[0].revised_prompt == "a cat"


def test_gpt_image_extras() -> None:
    usage = {"input_tokens": 10, "output_tokens": 4160, "total_tokens": 4170}
    result = _parse(
        {
            "created": 1787150086,
            "background": "opaque",
            "data": [{"b64_json": "iVBORw0KGgo="}, {"b64_json": "AAAA"}],
            "output_format": "png",
            "quality": "high",
            "size": "3840x2160",  # gpt-image-2 custom size: any string is accepted
            "usage": usage,
        },
        headers={"x-request-id": "req_123"},
    )
    assert [i.b64_json for i in result.images] == ["iVBORw0KGgo=", "AAAA"]
    assert result.usage == usage
    assert (result.size, result.quality, result.background, result.output_format) == (
        "3840x2160",
        "high",
        "opaque",
        "png",
    )
    assert result.request_id == "req_123"
    assert result.attempts == 1


def test_url_or_b64_whatever_was_asked() -> None:
    result = _parse({"data": [{"url": "https://x/1"}, {"b64_json": "QUJD"}]})
    assert result.images[0].url == "https://x/1"
    assert result.images[1].b64_json == "QUJD"
    assert result.created is None


def test_missing_optional_fields_and_odd_types() -> None:
    result = _parse(
        {"created": "yesterday", "data": [{"url": "https://x/u", "revised_prompt": 3}], "usage": []}
    )
    assert result.created is None
    assert result.usage is None
    assert result.images[0].revised_prompt is None
    assert _parse({"created": 12.0, "data": [{"url": "https://x/u"}]}).created == 12


def test_azure_extras_are_tolerated() -> None:
    result = _parse(
        {
            "created": 1,
            "data": [
                {"url": "https://x/u", "prompt_filter_results": {}, "content_filter_results": {}}
            ],
        },
        headers={"apim-request-id": "azure-1"},
    )
    assert result.request_id == "azure-1"


def test_httpx_headers_are_accepted() -> None:
    result = _parse(
        {"data": [{"url": "https://x/u"}]}, headers=httpx.Headers({"X-Request-Id": "r"})
    )  # type: ignore[arg-type]
    assert result.request_id == "r"


def test_null_error_key_is_not_an_error() -> None:
    assert _parse({"data": [{"url": "https://x/u"}], "error": None}).images


class TestErrorsInside2xx:
    def test_enveloped_policy_error(self) -> None:
        body = {
            "error": {
                "code": "content_policy_violation",
                "message": "Your request was rejected as a result of our safety system.",
                "param": None,
                "type": "invalid_request_error",
            }
        }
        with pytest.raises(ContentPolicyError) as info:
            _parse(body, headers={"x-request-id": "req_9"})
        assert info.value.status_code == 200
        assert info.value.request_id == "req_9"

    def test_azure_legacy_shape(self) -> None:
        body = {"created": 1698435368, "error": {"code": "contentFilter", "message": "filtered"}}
        with pytest.raises(ContentPolicyError):
            _parse(body)

    def test_rate_limit_code(self) -> None:
        with pytest.raises(RateLimitError):
            _parse({"error": {"code": "rate_limit_exceeded", "message": "slow down"}})

    def test_unknown_error(self) -> None:
        with pytest.raises(MalformedResponseError, match="upstream exploded"):
            _parse({"error": {"message": "upstream exploded"}})

    def test_bare_error_without_envelope(self) -> None:
        with pytest.raises(APIError, match="rejected"):
            _parse({"message": "Your request was rejected (request id: 1)"})

    def test_string_error(self) -> None:
        with pytest.raises(MalformedResponseError, match="quota gone"):
            _parse({"error": "quota gone"})


class TestMalformed:
    def test_invalid_json_has_status_and_snippet(self) -> None:
        with pytest.raises(MalformedResponseError) as info:
            _parse(b"<html><body>Gateway says hi</body></html>" + b"x" * 5000)
        message = str(info.value)
        assert "HTTP 200" in message
        assert "not JSON" in message
        assert "<html><body>Gateway says hi" in message
        assert len(message) < 400
        assert info.value.status_code == 200

    def test_empty_body(self) -> None:
        with pytest.raises(MalformedResponseError, match="empty body"):
            _parse(b"")

    def test_invalid_utf8(self) -> None:
        with pytest.raises(MalformedResponseError, match="not JSON"):
            _parse(b"\xff\xfe\xfa")

    def test_not_an_object(self) -> None:
        with pytest.raises(MalformedResponseError, match="JSON list"):
            _parse([1, 2])

    @pytest.mark.parametrize("data", [None, {"url": "https://x/u"}, "u"])
    def test_data_missing_or_not_a_list(self, data: Any) -> None:
        body: dict[str, Any] = {"created": 1}
        if data is not None:
            body["data"] = data
        with pytest.raises(MalformedResponseError, match=r"no `data` \(or `images`\) list"):
            _parse(body)

    def test_images_instead_of_data_is_read(self) -> None:
        # SiliconFlow answers {images: [{url}], timings, seed} (docs/providers.md).
        result = _parse({"images": [{"url": "https://x/u"}], "timings": {"inference": 1.2}})
        assert [image.url for image in result.images] == ["https://x/u"]

    def test_images_that_is_not_a_list_is_malformed(self) -> None:
        with pytest.raises(MalformedResponseError, match="images"):
            _parse({"images": {"url": "https://x/u"}})

    def test_empty_data(self) -> None:
        with pytest.raises(MalformedResponseError, match="no images"):
            _parse({"created": 1, "data": []})

    def test_no_usable_item_names_each_and_why(self) -> None:
        body = {"data": [{"revised_prompt": "x"}, {"url": "file:///etc/passwd"}]}
        with pytest.raises(MalformedResponseError, match="no usable image") as info:
            _parse(body)
        assert "data[0]: it has neither `url` nor a non-empty `b64_json`" in str(info.value)
        assert "data[1]: the server returned a non-http(s) URL" in str(info.value)
        assert "/etc/passwd" not in str(info.value)

    def test_item_with_empty_values(self) -> None:
        with pytest.raises(MalformedResponseError, match=r"data\[0\]"):
            _parse({"data": [{"url": "", "b64_json": None}]})

    def test_item_not_an_object(self) -> None:
        with pytest.raises(MalformedResponseError, match=r"data\[0\]: it is a JSON str"):
            _parse({"data": ["https://x"]})


# -- one bad item does not discard the good ones -----------------------------------------------


def test_unusable_items_are_dropped_with_a_reason_and_the_good_ones_kept() -> None:
    result = _parse(
        {
            "data": [
                {},
                {"b64_json": ""},
                {"b64_json": " \n"},
                {"url": "file:///etc/passwd"},
                {"url": "javascript:alert(1)"},
                {"b64_json": "QUJD", "revised_prompt": "kept"},
                None,
                {"url": "https://x/ok.png"},
            ]
        }
    )
    assert [(i.b64_json, i.url) for i in result.images] == [
        ("QUJD", None),
        (None, "https://x/ok.png"),
    ]
    assert result.images[0].revised_prompt == "kept"
    assert result.dropped == (
        "data[0]: it has neither `url` nor a non-empty `b64_json`",
        "data[1]: it has neither `url` nor a non-empty `b64_json`",
        "data[2]: it has neither `url` nor a non-empty `b64_json`",
        "data[3]: the server returned a non-http(s) URL",
        "data[4]: the server returned a non-http(s) URL",
        "data[6]: it is a JSON NoneType, not an object",
    )


def test_a_good_response_drops_nothing() -> None:
    assert _parse({"data": [{"b64_json": "QUJD"}, {"url": "HTTPS://X/u"}]}).dropped == ()


def test_a_non_http_url_beside_base64_is_never_kept_as_a_location() -> None:
    result = _parse({"data": [{"b64_json": "QUJD", "url": "file:///etc/passwd"}]})
    assert result.images[0].b64_json == "QUJD"
    assert result.images[0].url is None
    assert result.dropped == ()


def test_top_level_fields_are_carried() -> None:
    usage = {"input_tokens": 10, "output_tokens": 4160, "total_tokens": 4170}
    result = _parse(
        {
            "data": [{"b64_json": "QUJD"}],
            "size": "1536x1024",
            "quality": "high",
            "background": "transparent",
            "output_format": "webp",
            "usage": usage,
        }
    )
    assert (result.size, result.quality, result.background, result.output_format) == (
        "1536x1024",
        "high",
        "transparent",
        "webp",
    )
    assert result.usage == usage

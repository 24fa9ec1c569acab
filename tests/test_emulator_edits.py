"""The emulator's ``POST /v1/images/edits`` (multipart/form-data), driven with plain httpx.

Requests are encoded the way httpx encodes ``files=[...]`` plus ``data={...}``; several images
go as repeated ``image[]`` parts, which is what openai-python sends for a list
(``_utils._extract_items`` names each entry ``image[]``), one image as ``image``. Expected
rules and bodies come from the edits excerpt of the OpenAPI spec
(``tests/data/openapi/openapi-images-edits-2026-08-21-f85dbe22.json``) and the error bodies
cited in ``tests/spec_validator.py``. The stdlib image probe is checked against Pillow.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.emulator import Emulator, Fault, edit_digest, encode_image, parse_multipart
from tests.spec_validator import (
    EDIT_DEFAULT_MODEL,
    EDIT_MAX_IMAGES,
    EDIT_SCHEMA_FIELDS,
    GPT_EDIT_MAX_IMAGE_BYTES,
    UploadedFile,
    probe_image,
    validate_edit_request,
)

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.enable_socket,
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

SPEC = Path(__file__).parent / "data" / "openapi" / "openapi-images-edits-2026-08-21-f85dbe22.json"
PARTIAL = "image_edit.partial_image"
COMPLETED = "image_edit.completed"

File = tuple[str, tuple[str, bytes, str]]


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def pil_bytes(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def rgb_png(
    width: int = 64, height: int = 64, colour: tuple[int, int, int] = (10, 20, 30)
) -> bytes:
    return pil_bytes(Image.new("RGB", (width, height), colour), "PNG")


def rgba_png(width: int = 64, height: int = 64, alpha: int = 0) -> bytes:
    return pil_bytes(Image.new("RGBA", (width, height), (200, 100, 50, alpha)), "PNG")


def jpeg(width: int = 64, height: int = 48) -> bytes:
    return pil_bytes(Image.new("RGB", (width, height), (1, 2, 3)), "JPEG")


def webp(width: int = 40, height: int = 30) -> bytes:
    return pil_bytes(Image.new("RGB", (width, height), (9, 9, 9)), "WEBP")


GIF = pil_bytes(Image.new("P", (8, 8)), "GIF")


def image_part(
    data: bytes, field: str = "image[]", name: str = "in.png", ctype: str = "image/png"
) -> File:
    return (field, (name, data, ctype))


def images(count: int, field: str = "image[]") -> list[File]:
    return [image_part(rgb_png(colour=(i, i, i)), field, f"in-{i}.png") for i in range(count)]


# --------------------------------------------------------------------------------------------
# Emulator and client
# --------------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(deployments={"editor": "gpt-image-1"}, max_lifetime_s=120) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    with httpx.Client(base_url=emu.base_url, headers=headers, timeout=10) as http:
        yield http


def edit(
    client: httpx.Client,
    files: Sequence[File],
    *,
    path: str = "/images/edits",
    **fields: str | None,
) -> httpx.Response:
    """POST an edit; a field set to None is left out (``model`` defaults to gpt-image-1)."""
    return edit_with(client, files, fields, path=path)


def edit_with(
    client: httpx.Client,
    files: Sequence[File],
    fields: Mapping[str, str | None],
    *,
    path: str = "/images/edits",
) -> httpx.Response:
    merged = {"model": "gpt-image-1", "prompt": "add a hat", **fields}
    data = {key: value for key, value in merged.items() if value is not None}
    return client.post(path, data=data, files=list(files))


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


def decoded(item: Mapping[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(item["b64_json"], validate=True)))


def schemas() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))["components"]["schemas"]
    return found


# --------------------------------------------------------------------------------------------
# Stdlib pieces: image probe and multipart parser
# --------------------------------------------------------------------------------------------


def _pillow_cases() -> list[tuple[str, bytes]]:
    palette = Image.new("P", (12, 7))
    return [
        ("png-rgb", rgb_png(33, 17)),
        ("png-rgba", rgba_png(5, 9)),
        ("png-l", pil_bytes(Image.new("L", (4, 6)), "PNG")),
        ("png-la", pil_bytes(Image.new("LA", (4, 6)), "PNG")),
        ("png-p", pil_bytes(palette, "PNG")),
        ("png-p-trns", pil_bytes(palette, "PNG", transparency=0)),
        ("png-rgb-trns", pil_bytes(Image.new("RGB", (3, 3)), "PNG", transparency=(0, 0, 0))),
        ("jpeg-rgb", jpeg(31, 19)),
        ("jpeg-l", pil_bytes(Image.new("L", (8, 9)), "JPEG")),
        ("jpeg-progressive", pil_bytes(Image.new("RGB", (20, 10)), "JPEG", progressive=True)),
        ("webp-lossy", webp(40, 30)),
        (
            "webp-lossless-rgba",
            pil_bytes(Image.new("RGBA", (7, 5), (1, 2, 3, 4)), "WEBP", lossless=True),
        ),
        ("emulator-png", encode_image("png", 48, 32)),
        ("emulator-png-transparent", encode_image("png", 16, 16, transparent=True)),
        ("emulator-jpeg", encode_image("jpeg", 24, 16)),
        ("emulator-webp", encode_image("webp", 24, 16, transparent=True)),
    ]


@pytest.mark.parametrize(
    ("label", "data"), _pillow_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_probe_image_agrees_with_pillow(label: str, data: bytes) -> None:
    info = probe_image(data)
    assert info is not None, label
    with Image.open(io.BytesIO(data)) as image:
        assert info.format == image.format.lower()
        assert (info.width, info.height) == image.size
        if info.format != "webp":  # Pillow decodes every WebP to RGB(A); modes compared below
            assert info.mode == image.mode
        pillow_alpha = image.mode in ("RGBA", "LA") or "transparency" in image.info
        if info.format == "webp":
            pillow_alpha = image.mode == "RGBA"
        assert info.has_alpha == pillow_alpha


@pytest.mark.parametrize(
    "data",
    [
        GIF,
        b"",
        b"not an image at all",
        rgb_png()[:40],  # cut inside the chunks
        rgb_png()[:-12],  # no IEND
        rgb_png()[:30] + bytes([rgb_png()[30] ^ 0xFF]) + rgb_png()[31:],  # IHDR CRC broken
        jpeg()[:-2],  # no EOI: a JPEG cut short
        webp()[:-10],  # RIFF size larger than the file
        b"RIFF\x04\x00\x00\x00WAVE",
    ],
    ids=[
        "gif",
        "empty",
        "text",
        "png-cut",
        "png-no-iend",
        "png-bad-crc",
        "jpeg-cut",
        "webp-cut",
        "riff-wave",
    ],
)
def test_probe_image_refuses_other_or_broken_bytes(data: bytes) -> None:
    assert probe_image(data) is None


def test_parse_multipart_reads_what_httpx_encodes() -> None:
    tricky = b"\r\n--not-the-boundary\r\n\x00\xff" + rgb_png()
    request = httpx.Request(
        "POST",
        "http://127.0.0.1/v1/images/edits",
        data={"prompt": 'caf\u00e9 "quoted"\r\nline two', "n": "2"},
        files=[
            ("image[]", ('a "b".png', tricky, "image/png")),
            ("image[]", ("\u00e9t\u00e9.webp", webp(), "image/webp")),
            ("mask", ("mask.png", rgba_png(), "image/png")),
        ],
    )
    parts = parse_multipart(request.headers["content-type"], request.read())
    assert parts is not None
    assert [(part.name, part.filename, part.content_type) for part in parts] == [
        ("prompt", None, None),
        ("n", None, None),
        ("image[]", "a %22b%22.png", "image/png"),  # httpx escapes quotes as %22 (WHATWG)
        ("image[]", "\u00e9t\u00e9.webp", "image/webp"),
        ("mask", "mask.png", "image/png"),
    ]
    assert parts[0].data.decode() == 'caf\u00e9 "quoted"\r\nline two'
    assert parts[2].data == tricky
    assert parts[3].data == webp()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{}"),
        ("multipart/form-data", b"--x\r\n\r\n--x--"),  # no boundary parameter
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nv",
        ),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Type: text/plain\r\n\r\nv\r\n--x--"),
        ("multipart/form-data; boundary=x", b"no delimiter here"),
    ],
    ids=["json", "no-boundary", "unterminated", "no-disposition", "no-delimiter"],
)
def test_parse_multipart_refuses_bodies_it_cannot_read(content_type: str, body: bytes) -> None:
    assert parse_multipart(content_type, body) is None


# --------------------------------------------------------------------------------------------
# The validator against the vendored schema
# --------------------------------------------------------------------------------------------


def test_edit_fields_limits_and_default_model_are_the_schema_s() -> None:
    request = schemas()["CreateImageEditRequest"]
    assert tuple(request["properties"]) == EDIT_SCHEMA_FIELDS
    assert request["properties"]["image"]["anyOf"][1]["maxItems"] == EDIT_MAX_IMAGES
    assert request["properties"]["model"]["default"] == EDIT_DEFAULT_MODEL
    assert set(request["required"]) == {"prompt", "image"}
    assert schemas()["InputFidelity"]["enum"] == ["high", "low"]


def test_gpt_images_of_50_mb_or_more_are_refused() -> None:
    header = rgb_png()
    ok = UploadedFile("image", "a.png", "image/png", header)
    assert validate_edit_request({"prompt": "p", "model": "gpt-image-1"}, [ok]) is None
    big = UploadedFile(
        "image", "a.png", "image/png", header + b"\x00" * (GPT_EDIT_MAX_IMAGE_BYTES - len(header))
    )
    error = validate_edit_request({"prompt": "p", "model": "gpt-image-1"}, [big])
    assert error is not None
    assert (error.status, error.code, error.param) == (400, "file_too_large", "image")


# --------------------------------------------------------------------------------------------
# Happy paths
# --------------------------------------------------------------------------------------------


def test_three_image_array_parts_edit_with_a_gpt_model(emu: Emulator, client: httpx.Client) -> None:
    inputs = images(3)
    response = edit(client, inputs, size="1536x1024", quality="low", output_format="png")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "created",
        "background",
        "data",
        "output_format",
        "quality",
        "size",
        "usage",
    }
    assert (body["size"], body["quality"], body["output_format"]) == ("1536x1024", "low", "png")
    assert decoded(body["data"][0]).size == (1536, 1024)
    usage = body["usage"]
    assert usage["input_tokens_details"]["image_tokens"] == 3  # 64x64 each: 1 per 4096 px
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]

    (received,) = emu.received_requests
    assert received.is_edit
    assert received.edit is not None
    assert received.body == {
        "model": "gpt-image-1",
        "prompt": "add a hat",
        "size": "1536x1024",
        "quality": "low",
        "output_format": "png",
    }
    assert [upload.field for upload in received.edit.files] == ["image[]"] * 3
    for upload, (_field, (name, data, ctype)) in zip(received.edit.images, inputs, strict=True):
        assert (upload.filename, upload.content_type, upload.size) == (name, ctype, len(data))
        assert upload.sha256 == hashlib.sha256(data).hexdigest()
        assert (upload.format, upload.width, upload.height, upload.mode) == ("png", 64, 64, "RGB")
    assert received.edit.mask is None
    assert received.edit.content_type.startswith("multipart/form-data; boundary=")
    stats = emu.stats()
    assert (stats.edit_requests, stats.generation_requests, stats.images_produced) == (1, 0, 1)


def test_one_image_part_and_the_schema_default_model(emu: Emulator, client: httpx.Client) -> None:
    response = client.post(
        "/images/edits",
        data={"prompt": "make it blue"},
        files=[image_part(jpeg(), "image", "a.jpg", "image/jpeg")],
    )
    assert response.status_code == 200, response.text
    assert "usage" in response.json()  # gpt-image-1.5, a GPT image model
    (received,) = emu.received_requests
    assert "model" not in received.body
    assert received.edit is not None
    (upload,) = received.edit.images
    assert (upload.field, upload.format, upload.width, upload.height) == ("image", "jpeg", 64, 48)


def test_image_and_image_array_parts_may_be_mixed(emu: Emulator, client: httpx.Client) -> None:
    files = [image_part(webp(), "image", "a.webp", "image/webp"), *images(2)]
    response = edit(client, files, model="gpt-image-1.5", input_fidelity="high")
    assert response.status_code == 200, response.text
    edit_record = emu.received_requests[0].edit
    assert edit_record is not None
    assert [upload.field for upload in edit_record.images] == ["image", "image[]", "image[]"]


def test_sixteen_images_and_a_mask_are_accepted(emu: Emulator, client: httpx.Client) -> None:
    mask = image_part(rgba_png(), "mask", "mask.png")
    response = edit(client, [*images(EDIT_MAX_IMAGES), mask])
    assert response.status_code == 200, response.text
    edit_record = emu.received_requests[0].edit
    assert edit_record is not None
    assert edit_record.mask is not None
    assert (edit_record.mask.mode, edit_record.mask.has_alpha) == ("RGBA", True)
    assert len(edit_record.images) == EDIT_MAX_IMAGES


def test_a_palette_mask_with_trns_transparency_counts_as_alpha(client: httpx.Client) -> None:
    palette_mask = pil_bytes(Image.new("P", (64, 64)), "PNG", transparency=0)
    response = edit(client, [*images(1), image_part(palette_mask, "mask", "m.png")])
    assert response.status_code == 200, response.text


def test_outputs_depend_on_the_inputs_and_the_prompt(emu: Emulator, client: httpx.Client) -> None:
    def colour_of(response: httpx.Response) -> tuple[int, ...]:
        assert response.status_code == 200, response.text
        pixel = decoded(response.json()["data"][0]).convert("RGB").getpixel((0, 0))
        assert isinstance(pixel, tuple)
        return pixel

    first = colour_of(edit(client, images(2)))
    again = colour_of(edit(client, images(2)))
    other_inputs = colour_of(edit(client, [images(2)[1], images(2)[0]]))
    other_prompt = colour_of(edit(client, images(2), prompt="add a scarf"))
    assert first == again
    assert len({first, other_inputs, other_prompt}) == 3

    record = emu.received_requests[0].edit
    assert record is not None
    expected = edit_digest("add a hat", [(f.field, f.sha256) for f in record.files])
    assert record.digest == expected
    assert first == tuple(bytes.fromhex(expected[:6]))
    raw = base64.b64decode(edit(client, images(2)).json()["data"][0]["b64_json"])
    assert f"edit-{expected[:16]}-".encode() in raw  # the PNG's tEXt tag


def test_dall_e_2_edit_answers_url_or_b64_at_the_asked_size(
    emu: Emulator, client: httpx.Client
) -> None:
    square = image_part(rgba_png(256, 256), "image")
    response = edit(client, [square], model="dall-e-2", size="256x256")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"created", "data"}
    (item,) = body["data"]
    served = client.get(item["url"])
    assert served.status_code == 200
    assert Image.open(io.BytesIO(served.content)).size == (256, 256)

    response = edit(
        client, [square], model="dall-e-2", size="512x512", response_format="b64_json", n="2"
    )
    assert response.status_code == 200, response.text
    items = response.json()["data"]
    assert [decoded(item).size for item in items] == [(512, 512)] * 2


def test_dall_e_2_takes_an_opaque_image_when_a_mask_is_sent(client: httpx.Client) -> None:
    files = [
        image_part(rgb_png(128, 128), "image"),
        image_part(rgba_png(128, 128), "mask", "m.png"),
    ]
    response = edit(client, files, model="dall-e-2")
    assert response.status_code == 200, response.text


def test_gpt_image_2_custom_size_and_webp_output(client: httpx.Client) -> None:
    response = edit(client, images(1), model="gpt-image-2", size="1280x720", output_format="webp")
    assert response.status_code == 200, response.text
    image = decoded(response.json()["data"][0])
    assert (image.format, image.size) == ("WEBP", (1280, 720))


# --------------------------------------------------------------------------------------------
# Rejections: status, code, param as the API's bodies (see tests/spec_validator.py)
# --------------------------------------------------------------------------------------------

REJECTIONS: list[tuple[str, dict[str, str | None], list[File], int, str | None, str | None]] = [
    (
        "dall-e-3 cannot edit",
        {"model": "dall-e-3"},
        images(1, "image"),
        400,
        "invalid_value",
        "model",
    ),
    ("unknown model", {"model": "gpt-image-9"}, images(1), 404, "model_not_found", None),
    ("17 images", {}, images(EDIT_MAX_IMAGES + 1), 400, "array_above_max_length", "image"),
    (
        "dall-e-2, two images",
        {"model": "dall-e-2"},
        [image_part(rgba_png(), "image")] * 2,
        400,
        "invalid_type",
        "image",
    ),
    (
        "dall-e-2, image[]",
        {"model": "dall-e-2"},
        [image_part(rgba_png(), "image[]")],
        400,
        "invalid_type",
        "image",
    ),
    (
        "octet-stream",
        {},
        [image_part(rgb_png(), "image", ctype="application/octet-stream")],
        400,
        "unsupported_file_mimetype",
        "image",
    ),
    (
        "gif declared",
        {},
        [images(1)[0], image_part(GIF, ctype="image/gif")],
        400,
        "unsupported_file_mimetype",
        "image[1]",
    ),
    (
        "dall-e-2 webp",
        {"model": "dall-e-2"},
        [image_part(webp(), "image", ctype="image/webp")],
        400,
        "unsupported_file_mimetype",
        "image",
    ),
    ("missing prompt", {"prompt": None}, images(1), 400, "missing_required_parameter", "prompt"),
    ("empty prompt", {"prompt": "  "}, images(1), 400, "empty_string", "prompt"),
    ("missing image", {}, [], 400, "missing_required_parameter", "image"),
    ("image as text", {"image": "a.png"}, [], 400, "invalid_type", "image"),
    ("mask as text", {"mask": "m.png"}, images(1), 400, "invalid_type", "mask"),
    (
        "prompt as file",
        {"prompt": None},
        [image_part(b"hat", "prompt", "p.txt", "text/plain"), *images(1)],
        400,
        "invalid_type",
        "prompt",
    ),
    (
        "moderation is not an edit field",
        {"moderation": "low"},
        images(1),
        400,
        "unknown_parameter",
        "moderation",
    ),
    ("style", {"style": "vivid"}, images(1), 400, "unknown_parameter", "style"),
    (
        "image[0] is not a field name",
        {},
        images(1, "image[0]"),
        400,
        "unknown_parameter",
        "image[0]",
    ),
    (
        "GPT response_format",
        {"response_format": "b64_json"},
        images(1),
        400,
        "unknown_parameter",
        "response_format",
    ),
    (
        "dall-e-2 quality",
        {"model": "dall-e-2", "quality": "standard"},
        [image_part(rgba_png(), "image")],
        400,
        "unknown_parameter",
        "quality",
    ),
    (
        "dall-e-2 stream",
        {"model": "dall-e-2", "stream": "true"},
        [image_part(rgba_png(), "image")],
        400,
        "unknown_parameter",
        "stream",
    ),
    ("GPT quality standard", {"quality": "standard"}, images(1), 400, "invalid_value", "quality"),
    ("n not an integer", {"n": "two"}, images(1), 400, "invalid_type", "n"),
    ("n decimal", {"n": "1.0"}, images(1), 400, "invalid_type", "n"),
    ("n above 10", {"n": "11"}, images(1), 400, "integer_above_max_value", "n"),
    ("stream yes", {"stream": "yes"}, images(1), 400, "invalid_type", "stream"),
    (
        "partial_images without stream",
        {"partial_images": "2"},
        images(1),
        400,
        "invalid_value",
        "partial_images",
    ),
    ("gpt-image-1 size", {"size": "512x512"}, images(1), 400, "invalid_value", "size"),
    (
        "dall-e-2 size",
        {"model": "dall-e-2", "size": "1536x1024"},
        [image_part(rgba_png(), "image")],
        400,
        "invalid_size",
        None,
    ),
    (
        "transparent jpeg",
        {"background": "transparent", "output_format": "jpeg"},
        images(1),
        400,
        "invalid_value",
        "background",
    ),
    (
        "input_fidelity value",
        {"input_fidelity": "max"},
        images(1),
        400,
        "invalid_value",
        "input_fidelity",
    ),
    (
        "input_fidelity on mini",
        {"model": "gpt-image-1-mini", "input_fidelity": "high"},
        images(1),
        400,
        "unknown_parameter",
        "input_fidelity",
    ),
    (
        "input_fidelity on dall-e-2",
        {"model": "dall-e-2", "input_fidelity": "low"},
        [image_part(rgba_png(), "image")],
        400,
        "unknown_parameter",
        "input_fidelity",
    ),
    (
        "GPT prompt too long",
        {"prompt": "x" * 32001},
        images(1),
        400,
        "string_above_max_length",
        "prompt",
    ),
    (
        "mask jpeg",
        {},
        [*images(1), image_part(jpeg(64, 64), "mask", "m.jpg", "image/jpeg")],
        400,
        "unsupported_file_mimetype",
        "mask",
    ),
    (
        "mask not a png",
        {},
        [*images(1), image_part(jpeg(64, 64), "mask", "m.png")],
        400,
        "invalid_value",
        "mask",
    ),
    (
        "mask size",
        {},
        [*images(1), image_part(rgba_png(32, 64), "mask", "m.png")],
        400,
        "invalid_value",
        "mask",
    ),
    (
        "mask without alpha",
        {},
        [*images(1), image_part(rgb_png(), "mask", "m.png")],
        400,
        "invalid_value",
        "mask",
    ),
    (
        "two masks",
        {},
        [*images(1), *[image_part(rgba_png(), "mask", "m.png")] * 2],
        400,
        "invalid_type",
        "mask",
    ),
]


@pytest.mark.parametrize(
    ("fields", "files", "status", "code", "param"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
def test_rejections_have_the_api_status_code_and_param(
    client: httpx.Client,
    fields: dict[str, str | None],
    files: list[File],
    status: int,
    code: str | None,
    param: str | None,
) -> None:
    response = edit_with(client, files, fields)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert (error["code"], error["param"]) == (code, param)


def test_undecodable_image_gets_the_reported_invalid_image_file_body(client: httpx.Client) -> None:
    files = [*images(1), image_part(b"\x89PNG\r\n\x1a\n garbage", ctype="image/png")]
    response = edit(client, files)
    assert response.status_code == 400
    error = error_of(response)
    rid = response.headers["x-request-id"]
    assert error == {
        "message": "Invalid image file or mode for image 2, please check your image file. If you "
        "believe this is an error, contact us at help.openai.com and include the request ID "
        f"{rid}.",
        "type": "image_generation_user_error",
        "param": None,
        "code": "invalid_image_file",
    }


def test_unsupported_mimetype_message_lists_the_supported_types(client: httpx.Client) -> None:
    response = edit(client, [image_part(rgb_png(), "image", ctype="application/octet-stream")])
    assert error_of(response)["message"] == (
        "Invalid file 'image': unsupported mimetype ('application/octet-stream'). Supported file "
        "formats are 'image/jpeg', 'image/png', and 'image/webp'."
    )
    response = edit(client, [image_part(jpeg(), "image", ctype="image/jpeg")], model="dall-e-2")
    assert error_of(response)["message"].endswith("Supported file formats are 'image/png'.")


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            image_part(jpeg(64, 64), "image", "a.png", "image/png"),
            "Uploaded image must be a PNG and less than 4 MB.",
        ),
        (
            image_part(rgba_png(64, 32), "image"),
            "Invalid input image - image must be square, got 64x32.",
        ),
        (
            image_part(rgb_png(64, 64), "image"),
            "Invalid input image - format must be in ['RGBA', 'LA', 'L'], got RGB.",
        ),
    ],
    ids=["not-png", "not-square", "no-alpha-no-mask"],
)
def test_dall_e_2_image_rules(client: httpx.Client, upload: File, message: str) -> None:
    response = edit(client, [upload], model="dall-e-2")
    assert response.status_code == 400
    assert error_of(response)["message"] == message


def test_dall_e_2_image_of_4_mb_is_refused(client: httpx.Client) -> None:
    big = encode_image("png", 1, 1, pad_to_bytes=4 * 1024 * 1024 + 10_000)
    info = probe_image(big)
    assert info is not None
    square = pil_bytes(Image.new("RGBA", (info.width, info.width)), "PNG")  # small, accepted
    assert edit(client, [image_part(square, "image")], model="dall-e-2").status_code == 200
    response = edit(client, [image_part(big, "image")], model="dall-e-2")
    assert response.status_code == 400
    assert error_of(response)["message"] == "Uploaded image must be a PNG and less than 4 MB."


def test_dall_e_2_prompt_over_1000_characters(client: httpx.Client) -> None:
    response = edit(client, [image_part(rgba_png(), "image")], model="dall-e-2", prompt="p" * 1001)
    assert response.status_code == 400
    assert error_of(response) == {
        "message": "Prompt must be length 1000 or less. Your prompt length is 1001. Please "
        "reduce your prompt length.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_a_json_body_is_answered_400_and_recorded(emu: Emulator, client: httpx.Client) -> None:
    response = client.post(
        "/images/edits", json={"model": "gpt-image-1", "prompt": "x", "images": []}
    )
    assert response.status_code == 400
    (received,) = emu.received_requests
    assert received.edit is not None
    assert not received.edit.parsed
    assert "__unparseable__" in received.body


def test_missing_key_is_401_before_validation(emu: Emulator) -> None:
    with httpx.Client(base_url=emu.base_url, timeout=10) as anonymous:
        response = edit(anonymous, [])
    assert response.status_code == 401
    assert error_of(response)["message"].startswith("You didn't provide an API key.")


# --------------------------------------------------------------------------------------------
# Azure routes
# --------------------------------------------------------------------------------------------


def test_azure_deployment_and_v1_edit_routes(emu: Emulator) -> None:
    headers = {"api-key": emu.api_key}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=10) as azure:
        path = "/openai/deployments/editor/images/edits?api-version=2025-04-01-preview"
        response = edit(azure, images(1), path=path, model=None)
        assert response.status_code == 200, response.text
        assert "usage" in response.json()

        missing_version = edit(
            azure, images(1), path="/openai/deployments/editor/images/edits", model=None
        )
        assert missing_version.status_code == 404

        unknown = edit(azure, images(1), path=path.replace("editor", "nobody"), model=None)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "DeploymentNotFound"

        v1 = edit(azure, images(1), path="/openai/v1/images/edits", model="editor")
        assert v1.status_code == 200, v1.text

        no_webp = edit(
            azure, images(1), path="/openai/v1/images/edits", model="editor", output_format="webp"
        )
        assert (no_webp.status_code, error_of(no_webp)["param"]) == (400, "output_format")
    first = emu.received_requests[0]
    assert first.is_edit
    assert first.model == "gpt-image-1"
    assert emu.received_requests[3].effective_body["model"] == "gpt-image-1"


# --------------------------------------------------------------------------------------------
# Streaming, faults
# --------------------------------------------------------------------------------------------


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``event:``/``data:`` pairs of a plain (LF, one data line) event stream."""
    found = []
    for block in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            found.append((lines.get("event", "message"), json.loads(lines["data"])))
    return found


def test_streamed_edit_sends_image_edit_events(emu: Emulator, client: httpx.Client) -> None:
    response = edit(client, images(2), stream="true", partial_images="2", size="1024x1536")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.content)
    assert [name for name, _ in events] == [PARTIAL, PARTIAL, COMPLETED]
    assert [data["type"] for _, data in events] == [PARTIAL, PARTIAL, COMPLETED]
    required = {
        PARTIAL: set(schemas()["ImageEditPartialImageEvent"]["required"]),
        COMPLETED: set(schemas()["ImageEditCompletedEvent"]["required"]),
    }
    for name, data in events:
        assert required[name] <= set(data)
        assert data["size"] == "1024x1536"
    finals = [decoded(data).convert("RGB").getpixel((0, 0)) for _, data in events]
    edit_record = emu.received_requests[0].edit
    assert edit_record is not None
    assert finals[-1] == tuple(bytes.fromhex(edit_record.digest[:6]))
    assert len(set(finals)) == 3  # previews differ from the final image
    assert events[-1][1]["usage"]["input_tokens_details"]["image_tokens"] == 2
    rid = response.headers["x-request-id"]
    whats = [record.what for record in emu.stream_log if record.request_id == rid]
    assert whats == ["headers", PARTIAL, PARTIAL, COMPLETED, "end"]


def test_stream_fault_marker_cuts_an_edit_stream(emu: Emulator, client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        edit(
            client,
            images(1),
            stream="true",
            partial_images="2",
            prompt="hat [[fault:stream_cut:1]]",
        )
    rid = next(r.request_id for r in emu.stream_log if r.what == "headers")
    assert [r.what for r in emu.stream_log if r.request_id == rid] == ["headers", PARTIAL, "cut"]


def test_prompt_marker_and_queued_faults_apply_to_edits(
    emu: Emulator, client: httpx.Client
) -> None:
    limited = edit(client, images(1), prompt="add a hat [[fault:rate_limit:2]]")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert error_of(limited)["code"] == "rate_limit_exceeded"

    emu.push_fault(Fault.server_error())
    assert edit(client, images(1)).status_code == 500

    emu.push_fault(Fault.fewer_images(1))
    fewer = edit(client, images(1), n="3")
    assert fewer.status_code == 200
    assert len(fewer.json()["data"]) == 2

    emu.push_fault(Fault.url_instead_of_b64())
    as_url = edit(client, images(1))
    assert "url" in as_url.json()["data"][0]
    assert emu.stats().faults_applied == 4

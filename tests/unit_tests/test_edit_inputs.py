"""prepare_edit_inputs: images and mask fitted to a model's edit rule, with and without
Pillow; and the header readers it relies on (dimensions, transparency) checked against
Pillow's own reading."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import pytest
from PIL import Image

from langchain_imagegen.edit_inputs import PreparedInputs, prepare_edit_inputs
from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.handles import InputImage
from langchain_imagegen.storage.images import image_size, png_has_alpha
from tests.emulator import encode_image

MIB = 1024 * 1024


@dataclass(frozen=True)
class Rule:
    """The shape of the registry's EditRule."""

    max_images: int
    image_formats: tuple[str, ...]
    max_image_bytes: int
    square: bool = False
    max_mask_bytes: int = 4 * MIB
    transparent_without_mask: bool = False


GPT_IMAGE = Rule(16, ("png", "webp", "jpeg"), 50 * MIB)
DALL_E_2 = Rule(1, ("png",), 4 * MIB, square=True)


def image(output_format: str, width: int = 16, height: int = 16, **kwargs: object) -> InputImage:
    data = encode_image(output_format, width, height, **kwargs)  # type: ignore[arg-type]
    return InputImage.from_bytes(data, f"ref-{output_format}")


def pillow_bytes(picture: Image.Image, fmt: str, **save: object) -> bytes:
    out = io.BytesIO()
    picture.save(out, format=fmt, **save)
    return out.getvalue()


def mask_png(width: int = 16, height: int = 16, mode: str = "RGBA") -> InputImage:
    picture = Image.new(mode, (width, height))
    return InputImage.from_bytes(pillow_bytes(picture, "PNG"), "mask")


@pytest.fixture
def without_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow is an optional extra: make ``from PIL import Image`` fail as if absent."""
    for name in [n for n in sys.modules if n == "PIL" or n.startswith("PIL.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "PIL", None)


def refusal(rule: Rule, images: list[InputImage], mask: InputImage | None = None) -> str:
    with pytest.raises(InvalidArgumentError) as info:
        prepare_edit_inputs(rule, images, mask)
    return str(info.value)


# --- inputs that need nothing ---------------------------------------------------------------


@pytest.mark.usefixtures("without_pillow")
def test_fitting_inputs_pass_untouched_without_pillow() -> None:
    images = [image("png"), image("jpeg", 24, 8), image("webp", 8, 24)]
    mask = mask_png_bytes_without_pillow(16, 16)

    prepared = prepare_edit_inputs(GPT_IMAGE, images, mask)

    assert prepared == PreparedInputs(tuple(images), mask, ())
    assert all(a is b for a, b in zip(prepared.images, images, strict=True))
    assert prepared.mask is mask


@pytest.mark.usefixtures("without_pillow")
def test_a_square_png_passes_dall_e_2_without_pillow() -> None:
    square = image("png", 32, 32)
    assert prepare_edit_inputs(DALL_E_2, [square], None) == PreparedInputs((square,), None, ())


def mask_png_bytes_without_pillow(width: int, height: int) -> InputImage:
    """An RGBA PNG mask made by the emulator's encoder (no Pillow needed)."""
    data = encode_image("png", width, height, transparent=True, tag="mask")
    return InputImage.from_bytes(data, "mask")


# --- counts, sizes, squares -----------------------------------------------------------------


def test_no_image_or_too_many_are_refused() -> None:
    assert "at least one image" in refusal(GPT_IMAGE, [])
    two = [image("png", tag="a"), image("png", tag="b")]
    assert "2 images were given, but the model edits at most 1" in refusal(DALL_E_2, two)


def test_an_image_over_the_limit_is_refused() -> None:
    big = image("png", 64, 64)
    rule = Rule(16, ("png",), max_image_bytes=len(big.data) - 1)
    message = refusal(rule, [image("png", tag="small"), big])
    assert f"image 2 ({big.handle}) is" in message
    assert "over the model's" in message
    assert "smaller or more compressed" in message


@pytest.mark.usefixtures("without_pillow")
def test_without_a_mask_an_opaque_image_is_refused_where_transparency_marks_the_edit() -> None:
    """dall-e-2 edits an unmasked image where it is transparent (the API refuses an RGB image:
    "format must be in ['RGBA', 'LA', 'L'], got RGB"): refused before sending, saying what to
    give instead; with a mask, or with transparency, it goes as it is."""
    rule = Rule(1, ("png",), 4 * MIB, square=True, transparent_without_mask=True)
    opaque = image("png", 16, 16)
    message = refusal(rule, [opaque])
    assert f"image 1 ({opaque.handle}) has no transparency" in message
    assert "give a mask" in message
    transparent = image("png", 16, 16, transparent=True)
    assert prepare_edit_inputs(rule, [transparent], None).images == (transparent,)
    mask = mask_png_bytes_without_pillow(16, 16)
    assert prepare_edit_inputs(rule, [opaque], mask).images == (opaque,)


def test_a_non_square_image_is_refused_for_dall_e_2() -> None:
    wide = image("png", 24, 16)
    message = refusal(DALL_E_2, [wide])
    assert "is 24x16" in message
    assert "use a GPT image model, or crop the image to a square" in message
    # The GPT image models take any shape.
    assert prepare_edit_inputs(GPT_IMAGE, [wide], None).images == (wide,)


# --- format conversion ----------------------------------------------------------------------


def test_a_jpeg_is_converted_to_png_for_dall_e_2() -> None:
    jpeg = image("jpeg", 16, 16)

    prepared = prepare_edit_inputs(DALL_E_2, [jpeg], None)

    (png,) = prepared.images
    assert png.mime_type == "image/png"
    assert png.filename.endswith(".png")
    assert png.ref == jpeg.ref
    assert png.handle != jpeg.handle
    with Image.open(io.BytesIO(png.data)) as opened:
        assert (opened.format, opened.size) == ("PNG", (16, 16))
    (change,) = prepared.changes
    assert change.describe() == (
        f"images: {jpeg.handle!r} → {png.handle!r} (image 1 converted from JPEG to PNG: the "
        "model takes PNG)"
    )
    assert prepared.converted == (png,)


@pytest.mark.usefixtures("without_pillow")
def test_without_pillow_an_unsupported_format_is_refused_with_what_to_do() -> None:
    message = refusal(DALL_E_2, [image("jpeg", 16, 16)])
    assert "is JPEG, but the model takes PNG" in message
    assert "give a PNG image instead" in message
    assert "pip install 'langchain-imagegen[pillow]'" in message


def test_a_gif_is_converted_for_the_gpt_image_models_keeping_transparency() -> None:
    picture = Image.new("P", (12, 10))
    picture.info["transparency"] = 0
    gif = InputImage.from_bytes(pillow_bytes(picture, "GIF", transparency=0), "anim.gif")

    (png,) = prepare_edit_inputs(GPT_IMAGE, [gif], None).images

    assert png.mime_type == "image/png"
    assert image_size(png.data) == (12, 10)
    assert png_has_alpha(png.data)


def test_what_pillow_cannot_read_is_refused() -> None:
    svg = InputImage.from_bytes(b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "a.svg")
    message = refusal(GPT_IMAGE, [svg])
    assert "is SVG, but the model takes PNG, WebP or JPEG, and it could not be converted" in (
        message
    )


def test_webp_only_rule_converts_to_webp() -> None:
    rule = Rule(4, ("webp",), 50 * MIB)
    (webp,) = prepare_edit_inputs(rule, [image("jpeg", 8, 8)], None).images
    assert webp.mime_type == "image/webp"
    assert image_size(webp.data) == (8, 8)


# --- masks ----------------------------------------------------------------------------------


def test_a_mask_with_the_first_images_size_and_alpha_passes() -> None:
    first = image("png", 16, 16)
    mask = mask_png(16, 16, "LA")
    assert prepare_edit_inputs(GPT_IMAGE, [first, image("jpeg", 8, 8)], mask).mask is mask


def test_a_mask_of_another_size_is_refused_with_both_sizes() -> None:
    message = refusal(GPT_IMAGE, [image("png", 16, 16)], mask_png(16, 8))
    assert "is 16x8 but the first image is 16x16" in message
    assert "never resized" in message


def test_a_mask_without_alpha_is_refused() -> None:
    message = refusal(GPT_IMAGE, [image("png", 16, 16)], mask_png(16, 16, "RGB"))
    assert "no transparency" in message
    assert "transparent areas marking where to edit" in message


def test_a_palette_mask_with_trns_counts_as_transparent() -> None:
    picture = Image.new("P", (16, 16))
    data = pillow_bytes(picture, "PNG", transparency=0)
    assert png_has_alpha(data)
    mask = InputImage.from_bytes(data, "mask")
    assert prepare_edit_inputs(GPT_IMAGE, [image("png", 16, 16)], mask).mask is mask


def test_a_mask_over_its_limit_is_refused() -> None:
    mask = mask_png(16, 16)
    rule = Rule(16, ("png",), 50 * MIB, max_mask_bytes=len(mask.data) - 1)
    assert "limit for a mask" in refusal(rule, [image("png", 16, 16)], mask)


def test_a_webp_mask_is_converted_to_png() -> None:
    webp = InputImage.from_bytes(
        pillow_bytes(Image.new("RGBA", (16, 16)), "WEBP", lossless=True), "mask.webp"
    )
    prepared = prepare_edit_inputs(GPT_IMAGE, [image("png", 16, 16)], webp)
    assert prepared.mask is not None
    assert prepared.mask.mime_type == "image/png"
    assert png_has_alpha(prepared.mask.data)
    (change,) = prepared.changes
    assert (change.field, change.proposed, change.applied) == (
        "mask",
        webp.handle,
        prepared.mask.handle,
    )
    assert change.reason.startswith("the mask converted from WebP to PNG")


@pytest.mark.usefixtures("without_pillow")
def test_without_pillow_a_webp_mask_is_refused() -> None:
    webp = image("webp", 16, 16, transparent=True)
    message = refusal(GPT_IMAGE, [image("png", 16, 16)], webp)
    assert "is WebP, but a mask must be a PNG" in message
    assert "langchain-imagegen[pillow]" in message


def test_the_mask_is_compared_with_the_converted_first_image() -> None:
    prepared = prepare_edit_inputs(DALL_E_2, [image("jpeg", 16, 16)], mask_png(16, 16))
    assert prepared.images[0].mime_type == "image/png"
    assert prepared.mask is not None


# --- header readers, against Pillow ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode", "save"),
    [
        ("PNG", "RGB", {}),
        ("PNG", "RGBA", {}),
        ("JPEG", "RGB", {}),
        ("JPEG", "RGB", {"progressive": True}),
        ("JPEG", "L", {}),
        ("WEBP", "RGB", {"lossless": False}),  # VP8
        ("WEBP", "RGBA", {"lossless": True}),  # VP8L
        ("WEBP", "RGBA", {"lossless": False}),  # VP8X (alpha in a lossy image)
        ("GIF", "P", {}),
    ],
)
@pytest.mark.parametrize("size", [(1, 1), (37, 5), (300, 1200)])
def test_image_size_reads_headers_as_pillow_does(
    fmt: str, mode: str, save: dict[str, object], size: tuple[int, int]
) -> None:
    data = pillow_bytes(Image.new(mode, size), fmt, **save)
    with Image.open(io.BytesIO(data)) as opened:
        assert image_size(data) == opened.size == size


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
def test_image_size_reads_the_emulators_images(output_format: str) -> None:
    assert image_size(encode_image(output_format, 40, 24)) == (40, 24)


def test_image_size_of_unknown_or_cut_bytes_is_none() -> None:
    for data in (b"", b"not an image", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00", b"RIFF"):
        assert image_size(data) is None


@pytest.mark.parametrize(
    ("mode", "save", "expected"),
    [
        ("RGB", {}, False),
        ("L", {}, False),
        ("RGBA", {}, True),
        ("LA", {}, True),
        ("RGB", {"transparency": (0, 0, 0)}, True),
        ("P", {}, False),
        ("P", {"transparency": 0}, True),
    ],
)
def test_png_has_alpha_matches_pillow(mode: str, save: dict[str, object], expected: bool) -> None:
    data = pillow_bytes(Image.new(mode, (4, 4)), "PNG", **save)
    with Image.open(io.BytesIO(data)) as opened:
        pillow_says = opened.mode in ("RGBA", "LA") or "transparency" in opened.info
    assert png_has_alpha(data) is pillow_says is expected
    assert png_has_alpha(pillow_bytes(Image.new("RGBA", (4, 4)), "WEBP")) is False  # not a PNG

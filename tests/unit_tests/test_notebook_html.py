"""The notebook rendering (``ImageGenerationResult._repr_html_``) stays small: links for
images a browser can load, bounded thumbnails (Pillow) or budgeted embedding (without it) for
local files, and captions that name files, not the absolute paths they were saved at."""

from __future__ import annotations

import base64
import io
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from langchain_imagegen.notebook import HTML_BUDGET, THUMBNAIL_EDGE
from langchain_imagegen.result import GeneratedImage, ImageGenerationResult
from tests.emulator import encode_image

LINK = "https://bucket.s3.example/images/ab12.png?X-Amz-Signature=abc&X-Amz-Expires=3600"
SRC = re.compile(r'<img src="([^"]*)"')


def _result(*images: GeneratedImage) -> ImageGenerationResult:
    return ImageGenerationResult(model="gpt-image-2", prompt="a cat", images=list(images))


def _saved(directory: Path, name: str, data: bytes, **fields: object) -> GeneratedImage:
    path = directory / name
    path.write_bytes(data)
    return GeneratedImage(path=str(path), uri=str(path), mime_type="image/png", **fields)


def _large_pngs(directory: Path, count: int, size: int) -> list[GeneratedImage]:
    """``count`` distinct real PNGs of about ``size`` bytes (random pixels: incompressible)."""
    images = []
    for index in range(count):
        data = encode_image("png", 1, 1, tag=f"n{index}", pad_to_bytes=size)
        images.append(_saved(directory, f"{index:016x}.png", data))
    return images


@pytest.fixture
def without_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow is an optional extra: make ``from PIL import Image`` fail as if absent."""
    for name in [n for n in sys.modules if n == "PIL" or n.startswith("PIL.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "PIL", None)


# --- the size budget ------------------------------------------------------------------------


def test_four_large_images_become_thumbnails_within_the_budget(tmp_path: Path) -> None:
    images = _large_pngs(tmp_path, 4, 1_500_000)
    page = _result(*images)._repr_html_()
    assert len(page) <= HTML_BUDGET  # was 8 MB: every file embedded in full
    sources = SRC.findall(page)
    assert len(sources) == 4
    for source in sources:
        mime, _, data = source.partition(";base64,")
        assert mime == "data:image/jpeg"  # opaque: a JPEG thumbnail
        with Image.open(io.BytesIO(base64.b64decode(data))) as thumbnail:
            assert max(thumbnail.size) == THUMBNAIL_EDGE


def test_a_transparent_image_keeps_its_transparency(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (1024, 512), (10, 20, 30, 0)).save(buffer, format="PNG")
    page = _result(_saved(tmp_path, "clear.png", buffer.getvalue()))._repr_html_()
    (source,) = SRC.findall(page)
    assert source.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(source.partition(",")[2]))) as thumbnail:
        assert thumbnail.size == (THUMBNAIL_EDGE, THUMBNAIL_EDGE // 2)
        assert thumbnail.mode == "RGBA"


def test_a_small_image_is_embedded_as_it_is(tmp_path: Path) -> None:
    data = encode_image("png", 64, 64, tag="small")
    page = _result(_saved(tmp_path, "small.png", data))._repr_html_()
    assert SRC.findall(page) == ["data:image/png;base64," + base64.b64encode(data).decode()]


@pytest.mark.usefixtures("without_pillow")
def test_without_pillow_files_are_embedded_only_within_the_budget(tmp_path: Path) -> None:
    images = _large_pngs(tmp_path, 4, 300_000)  # 400 kB of base64 each: two fit in 1 MB
    page = _result(*images)._repr_html_()
    assert len(page) <= HTML_BUDGET
    embedded = [s for s in SRC.findall(page) if s.startswith("data:")]
    assert len(embedded) == 2
    assert (
        embedded[0]
        == "data:image/png;base64,"
        + base64.b64encode(Path(images[0].path or "").read_bytes()).decode()
    )
    assert page.count("is not shown inline") == 2
    assert page.count("langchain-imagegen[pillow]") == 2
    assert page.count("<figcaption>") == 4  # every image keeps its caption


@pytest.mark.usefixtures("without_pillow")
def test_without_pillow_four_large_images_stay_within_the_budget(tmp_path: Path) -> None:
    page = _result(*_large_pngs(tmp_path, 4, 1_500_000))._repr_html_()
    assert len(page) <= HTML_BUDGET
    assert "data:" not in page  # none fits: 2 MB of base64 each
    assert page.count("is not shown inline") == 4
    assert "(1.5 MB)" in page


def test_a_file_pillow_cannot_read_is_embedded_within_the_budget(tmp_path: Path) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'
    image = _saved(tmp_path, "vector.svg", svg).model_copy(update={"mime_type": "image/svg+xml"})
    (source,) = SRC.findall(_result(image)._repr_html_())
    assert source == "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


@pytest.mark.usefixtures("without_pillow")
def test_the_budget_counts_the_text_too(tmp_path: Path) -> None:
    (image,) = _large_pngs(tmp_path, 1, 600_000)  # 800 kB of base64
    long_prompt = "x" * 250_000  # and 250 kB of text (the prompt and the caption)
    result = _result(image.model_copy(update={"revised_prompt": long_prompt}))
    page = result.model_copy(update={"prompt": long_prompt})._repr_html_()
    assert "data:" not in page
    assert "is not shown inline" in page


# --- remote images ---------------------------------------------------------------------------


def test_a_stored_image_is_shown_from_its_link(tmp_path: Path) -> None:
    remote = GeneratedImage(uri="s3://bucket/images/ab12.png", link=LINK, mime_type="image/png")
    page = _result(remote)._repr_html_()
    assert SRC.findall(page) == [LINK.replace("&", "&amp;")]
    assert f'href="{LINK.replace("&", "&amp;")}"' in page
    assert "base64" not in page
    assert "s3://bucket/images/ab12.png" in page  # the caption names where it is stored


def test_the_link_wins_over_a_local_copy(tmp_path: Path) -> None:
    (local,) = _large_pngs(tmp_path, 1, 100_000)
    page = _result(local.model_copy(update={"link": LINK}))._repr_html_()
    assert SRC.findall(page) == [LINK.replace("&", "&amp;")]


def test_a_server_url_is_shown_from_the_url() -> None:
    page = _result(GeneratedImage(url="https://files.example/a.png"))._repr_html_()
    assert SRC.findall(page) == ["https://files.example/a.png"]


def test_a_stored_image_without_a_link_is_a_placeholder() -> None:
    stored = GeneratedImage(uri="memory://images/ab12.png", revised_prompt="a fox")
    unsigned = GeneratedImage(uri="s3://b/cd34.png", link_error="could not sign a link: <no>")
    page = _result(stored, unsigned)._repr_html_()
    assert "<img" not in page
    assert "stored at memory://images/ab12.png" in page
    assert "a fox" in page
    assert "(could not sign a link: &lt;no&gt;)" in page


def test_nothing_from_the_server_reaches_the_page_unescaped() -> None:
    hostile = 'https://files.example/a.png?x="><script>alert(1)</script>'
    image = GeneratedImage(url=hostile, revised_prompt="<img src=x onerror=alert(2)>")
    linked = GeneratedImage(link=hostile, uri="s3://b/k.png", revised_prompt="</figure><script>")
    page = _result(image, linked)._repr_html_()
    assert "<script>" not in page
    assert "onerror=alert" not in page.replace("&lt;img src=x onerror=alert(2)&gt;", "")
    assert "</figure><script>" not in page
    assert page.count("<img ") == 2
    assert "&quot;&gt;&lt;script&gt;" in page


# --- captions --------------------------------------------------------------------------------


def test_captions_name_the_file_not_its_absolute_path(tmp_path: Path) -> None:
    (image,) = _large_pngs(tmp_path, 1, 50_000)
    page = _result(image)._repr_html_()
    assert str(tmp_path) not in page
    assert "<small>0000000000000000.png</small>" in page


@pytest.mark.usefixtures("without_pillow")
def test_a_placeholder_names_the_file_not_its_absolute_path(tmp_path: Path) -> None:
    (image,) = _large_pngs(tmp_path, 1, 1_500_000)
    page = _result(image.model_copy(update={"revised_prompt": "a fox"}))._repr_html_()
    assert str(tmp_path) not in page
    assert "0000000000000000.png (1.5 MB) is not shown inline" in page


def test_a_deleted_file_falls_back_to_the_server_url(tmp_path: Path) -> None:
    gone = GeneratedImage(path=str(tmp_path / "gone.png"), url="https://files.example/b.png")
    page = _result(gone)._repr_html_()
    assert SRC.findall(page) == ["https://files.example/b.png"]
    assert str(tmp_path) not in page

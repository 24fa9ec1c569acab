"""How a result shows itself: inline in Jupyter (``_repr_html_``) and as content blocks for
a vision model (``to_content_blocks``)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from langchain_core.messages.content import is_data_content_block

from langchain_imagegen.result import AdjustmentRecord, GeneratedImage, ImageGenerationResult

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
    "rkJggg=="
)
URL = "https://files.example/img.png?se=2026-11-22T01%3A00%3A00Z&sig=a%2Bb&sp=r"


@pytest.fixture
def saved(tmp_path: Path) -> GeneratedImage:
    path = tmp_path / "abc.png"
    path.write_bytes(PNG)
    return GeneratedImage(path=str(path), mime_type="image/png", revised_prompt="a <b>cat</b>")


@pytest.fixture
def remote() -> GeneratedImage:
    return GeneratedImage(url=URL, revised_prompt='say "hi" & <script>x</script>')


def _result(*images: GeneratedImage, **extra: object) -> ImageGenerationResult:
    return ImageGenerationResult(
        model="gpt-image-2", prompt="a cat & <dog>", images=list(images), **extra
    )


def test_html_embeds_saved_files_as_data_uris(saved: GeneratedImage) -> None:
    page = _result(saved)._repr_html_()
    (src,) = re.findall(r'<img src="([^"]*)"', page)
    assert src == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert "file://" not in page
    assert saved.path not in page  # a browser could not load it anyway


def test_html_points_at_urls(remote: GeneratedImage) -> None:
    page = _result(remote)._repr_html_()
    (src,) = re.findall(r'<img src="([^"]*)"', page)
    assert src == URL.replace("&", "&amp;")  # attribute-escaped; the browser unescapes it


def test_html_escapes_captions_prompt_and_adjustments(
    saved: GeneratedImage, remote: GeneratedImage
) -> None:
    adjustment = AdjustmentRecord(field="size", proposed="<big>", applied="1024x1024", reason="a&b")
    page = _result(saved, remote, adjustments=[adjustment])._repr_html_()
    assert "<script>" not in page
    assert "<b>cat</b>" not in page
    assert "a &lt;b&gt;cat&lt;/b&gt;" in page
    assert "say &quot;hi&quot; &amp; &lt;script&gt;x&lt;/script&gt;" in page
    assert "a cat &amp; &lt;dog&gt;" in page
    assert "&#x27;&lt;big&gt;&#x27;" in page
    assert page.count("<img ") == 2
    assert page.count("<figcaption>") == 2
    assert "<li>" in page


def test_html_skips_images_it_cannot_show(tmp_path: Path) -> None:
    gone = GeneratedImage(path=str(tmp_path / "deleted.png"))
    page = _result(gone, GeneratedImage())._repr_html_()
    assert "<img" not in page
    assert page.startswith("<div>")


def test_blocks_url_mode(saved: GeneratedImage, remote: GeneratedImage) -> None:
    text, first, second = _result(saved, remote).to_content_blocks("url")
    assert text["type"] == "text"
    assert first["base64"] == base64.b64encode(PNG).decode()  # no URL: the file
    assert first["mime_type"] == "image/png"
    assert second["url"] == URL
    assert all(is_data_content_block(b) for b in (first, second))


def test_blocks_base64_mode_prefers_the_file(saved: GeneratedImage, remote: GeneratedImage) -> None:
    downloaded = saved.model_copy(update={"url": URL})
    _, first, second = _result(downloaded, remote).to_content_blocks("base64")
    assert "base64" in first
    assert "url" not in first
    assert second["url"] == URL  # not saved: its URL


def test_blocks_leave_out_unreachable_images(tmp_path: Path) -> None:
    gone = GeneratedImage(path=str(tmp_path / "deleted.png"))
    blocks = _result(gone).to_content_blocks("base64")
    assert [b["type"] for b in blocks] == ["text"]
    assert str(tmp_path / "deleted.png") in blocks[0]["text"]

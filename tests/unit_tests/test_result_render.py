"""How a result shows itself: inline in Jupyter (``_repr_html_``) and as content blocks for
a vision model (``to_content_blocks``)."""

from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path
from typing import Literal

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


# --- the text the LLM reads -------------------------------------------------------------


def test_text_states_the_size_produced(saved: GeneratedImage, remote: GeneratedImage) -> None:
    same = [image.model_copy(update={"size": "1536x1024"}) for image in (saved, remote)]
    text = _result(*same).to_text()
    assert "Size: 1536x1024." in text
    assert text.count("1536x1024") == 1  # once, not per image


def test_text_gives_each_size_when_they_differ(saved: GeneratedImage) -> None:
    wide = saved.model_copy(update={"size": "1536x1024"})
    square = saved.model_copy(update={"size": "1024x1024"})
    unknown = saved.model_copy(update={"size": None})
    lines = _result(wide, square, unknown).to_text().splitlines()
    numbered = [line for line in lines if line[:2] in ("1.", "2.", "3.")]
    assert numbered == [
        f"1. {saved.path} (1536x1024)",
        f"2. {saved.path} (1024x1024)",
        f"3. {saved.path}",
    ]
    assert not any(line.startswith("Size:") for line in lines)


def test_text_has_no_size_line_when_the_size_is_unknown(saved: GeneratedImage) -> None:
    assert "Size" not in _result(saved).to_text()


@pytest.mark.parametrize(
    ("usage", "line"),
    [
        (
            {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210},
            "Tokens used: 4210 (50 input, 4160 output).",
        ),
        ({"total_tokens": 7}, "Tokens used: 7."),
        ({"output_tokens": 3}, "Tokens used: 3 output."),
    ],
)
def test_text_states_the_tokens_reported(
    saved: GeneratedImage, usage: dict[str, int], line: str
) -> None:
    assert line in _result(saved, usage=usage).to_text().splitlines()


def test_text_says_nothing_of_tokens_the_server_did_not_report(saved: GeneratedImage) -> None:
    assert "Tokens" not in _result(saved).to_text()
    assert "Tokens" not in _result(saved, usage={}).to_text()


def test_a_failed_download_is_listed_by_url_with_a_note(tmp_path: Path) -> None:
    failed = GeneratedImage(
        url=URL,
        size="1024x1024",
        download_error="the image link answered 403\n  (it may have expired)",
    )
    text = _result(failed).to_text()
    (entry,) = [line for line in text.splitlines() if line.startswith("1.")]
    assert entry == (
        f"1. {URL} (download failed: the image link answered 403 (it may have expired))"
    )
    assert str(tmp_path) not in text


def test_a_failed_download_note_stays_short() -> None:
    failed = GeneratedImage(url=URL, download_error="x" * 5000)
    (entry,) = [line for line in _result(failed).to_text().splitlines() if line.startswith("1.")]
    assert len(entry) < len(URL) + 200
    assert entry.endswith("…)")


def test_a_failed_download_keeps_the_expiry_note() -> None:
    failed = GeneratedImage(
        url=URL,
        download_error="too large",
        expires_at=dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    )
    assert f"1. {URL} (download failed: too large; URL expires 2026-11-22 01:00 UTC)" in (
        _result(failed).to_text()
    )


def test_text_is_deterministic_and_free_of_base64(saved: GeneratedImage) -> None:
    result = _result(
        saved.model_copy(update={"size": "1024x1024", "quality": "high", "output_format": "png"}),
        usage={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
    )
    text = result.to_text()
    assert text == result.to_text()
    assert text == ImageGenerationResult.model_validate_json(result.model_dump_json()).to_text()
    assert base64.b64encode(PNG).decode()[:20] not in text
    assert "base64" not in text


def test_html_notes_a_failed_download() -> None:
    failed = GeneratedImage(url=URL, download_error="the image link answered 403")
    page = _result(failed)._repr_html_()
    assert "download failed: the image link answered 403" in page


@pytest.mark.parametrize("mode", ["url", "base64"])
def test_blocks_leave_out_a_url_whose_download_failed(
    saved: GeneratedImage, mode: Literal["url", "base64"]
) -> None:
    failed = GeneratedImage(url=URL, download_error="the image link answered 403")
    blocks = _result(saved, failed).to_content_blocks(mode)
    assert [b["type"] for b in blocks] == ["text", "image"]
    assert "base64" in blocks[1]  # the saved one
    assert URL in blocks[0]["text"]  # still listed, with its note

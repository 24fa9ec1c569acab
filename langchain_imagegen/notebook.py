"""How a result shows itself in Jupyter: bounded HTML.

A notebook keeps every output in the ``.ipynb`` file, so full-size images embedded as base64
make notebooks of tens of megabytes (four 1.5 MB images were 8 MB of HTML per output). Here:

* an image with an http(s) ``link`` (remote storage, or a ``public_base_url``) is shown from
  that link, and so is a server URL the image was not saved from: no bytes in the output;
* a saved local file is embedded as a thumbnail when Pillow is installed (longest edge
  :data:`THUMBNAIL_EDGE` pixels; ``pip install 'langchain-imagegen[pillow]'``), else as the
  file itself; either way only while the whole output stays within :data:`HTML_BUDGET`
  characters. Past it, a captioned placeholder says why the image is not shown.

A notebook's browser cannot load ``file://`` paths (and the file may lie outside its root), so
local files are embedded, not linked. Captions name a local file by its file name, never by
its absolute path: the directory is the user's ``output_dir``, and the rest of the path says
where the process ran, which a shared notebook need not tell.
Everything from the server (revised prompts, error notes) is HTML-escaped.

Streamed previews (``partial_images``) are shown while the tool runs by a LangChain callback
handler, :class:`NotebookPreviews` (:class:`AsyncNotebookPreviews` for async code): one
display per streamed image, created at its first preview and updated in place with each next
preview and then with the saved image, under the same rules (thumbnails, the budget per
output, file names in captions). IPython is not a dependency: without it, or outside an
IPython session, the handlers do nothing.
"""

from __future__ import annotations

import base64
import html
import io
import mimetypes
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks.base import AsyncCallbackHandler, BaseCallbackHandler

from langchain_imagegen.events import EVENT_NAME

if TYPE_CHECKING:
    from langchain_imagegen.result import GeneratedImage, ImageGenerationResult

__all__ = [
    "HTML_BUDGET",
    "THUMBNAIL_EDGE",
    "AsyncNotebookPreviews",
    "NotebookPreviews",
    "render_html",
]

HTML_BUDGET = 1_000_000
"""Most characters of HTML one result renders to (images included; text is never cut)."""
THUMBNAIL_EDGE = 256
"""Longest edge, in pixels, of the thumbnails made with Pillow."""
_JPEG_QUALITY = 85
_NOTE_LIMIT = 160
_FIGURE = '<figure style="display:inline-block;margin:4px;max-width:45%;vertical-align:top">'
_PLACEHOLDER = (
    '<div style="width:{edge}px;max-width:100%;padding:24px 8px;box-sizing:border-box;'
    'border:1px dashed #999;color:#666;font-size:small;text-align:center">{text}</div>'
)


def render_html(result: ImageGenerationResult) -> str:
    """The result as HTML of at most :data:`HTML_BUDGET` characters (unless its text alone,
    prompt, captions and adjustments, is longer)."""
    notes = "".join(f"<li>{html.escape(a.describe())}</li>" for a in result.adjustments)
    head = f"<div><p><b>{html.escape(result.model)}</b>: {html.escape(result.prompt)}</p>"
    tail = f"{f'<ul>{notes}</ul>' if notes else ''}</div>"
    remaining = HTML_BUDGET - len(head) - len(tail)
    figures = []
    for image in result.images:
        figure = _figure(image, remaining)
        if figure:
            figures.append(figure)
            remaining -= len(figure)
    return head + "".join(figures) + tail


def _figure(image: GeneratedImage, budget: int) -> str:
    """One image with its caption, its embedded bytes fitted into ``budget`` characters;
    ``""`` when there is nothing to show. Shown from, in order: the storage link, the local
    file, the server's URL."""
    caption = html.escape(_caption(image))
    frame = f"{_FIGURE}{{body}}<figcaption><small>{caption}</small></figcaption></figure>"
    link = _http(image.link)
    embedded = None if link or image.path is None else _embeddable(image.path, image.mime_type)
    if embedded is not None:
        return frame.format(
            body=_local_body(embedded, caption, budget - len(frame.format(body="")))
        )
    remote = link or _http(image.url)
    if remote is not None:
        source = html.escape(remote)
        return frame.format(body=f'<a href="{source}" target="_blank">{_img(source, caption)}</a>')
    if image.uri and "://" in image.uri:  # stored, but with no link a browser can load
        text = f"stored at {html.escape(image.uri)}, with no http(s) link to show it from"
        if image.link_error:
            text += f" ({html.escape(short_note(image.link_error))})"
        return frame.format(body=_placeholder(text))
    return ""


def _local_body(embedded: _Embedded, alt: str, budget: int) -> str:
    """The file (or its thumbnail) as an ``<img>`` if it fits in ``budget`` characters, else a
    placeholder saying why it is not shown."""
    if embedded.uri_length() <= budget - len(_img("", alt)):
        uri = embedded.data_uri()
        if uri is not None:
            return _img(uri, alt)
    return _placeholder(_over_budget(embedded))


def _img(source: str, alt: str) -> str:
    return f'<img src="{source}" style="max-width:100%" alt="{alt}"/>'


def _placeholder(text: str) -> str:
    return _PLACEHOLDER.format(edge=THUMBNAIL_EDGE, text=text)


def _http(address: str | None) -> str | None:
    """``address`` if a browser can load it (http or https), else None."""
    if address and address.startswith(("https://", "http://")):
        return address
    return None


def _caption(image: GeneratedImage) -> str:
    caption = image.revised_prompt or _name(image)
    if image.path is None and image.download_error:
        caption += f" (download failed: {short_note(image.download_error)})"
    return caption


def _name(image: GeneratedImage) -> str:
    """What to call the image: the file name of a local file (never its absolute path), the
    storage URI the user configured, or the server's URL."""
    if image.uri and "://" in image.uri:
        return image.uri
    if image.path:
        return Path(image.path).name
    return image.url or ""


def short_note(note: str) -> str:
    """``note`` on one line, cut to a caption's length (the text for the LLM uses it too)."""
    note = " ".join(note.split())
    return note if len(note) <= _NOTE_LIMIT else note[: _NOTE_LIMIT - 1] + "…"


@dataclass
class _Embedded:
    """What a local file would be embedded as: a thumbnail already made, or the file."""

    path: Path
    mime_type: str
    size: int
    """Bytes that would be embedded."""
    thumbnail: bytes | None = None
    pillow: bool = False

    def uri_length(self) -> int:
        return len(f"data:{self.mime_type};base64,") + 4 * ((self.size + 2) // 3)

    def data_uri(self) -> str | None:
        data = self.thumbnail
        if data is None:
            try:
                data = self.path.read_bytes()
            except OSError:
                return None
        return f"data:{self.mime_type};base64,{base64.b64encode(data).decode()}"


def _embeddable(file: str, mime_type: str | None) -> _Embedded | None:
    """The thumbnail when Pillow can make one, else the file as it is (not read yet: only its
    size, so a file that will not fit is never read)."""
    path = Path(file)
    try:
        size = path.stat().st_size
    except OSError:
        return None
    thumbnail = _thumbnail(path)
    if thumbnail is not None:
        data, thumbnail_type = thumbnail
        if data is not None:
            return _Embedded(path, thumbnail_type, len(data), data, pillow=True)
        # Pillow read it and it is already thumbnail-sized: the file itself.
        return _Embedded(path, mime_type or thumbnail_type, size, pillow=True)
    return _Embedded(path, mime_type or "image/png", size)


def _thumbnail(path: Path) -> tuple[bytes | None, str] | None:
    """``(thumbnail bytes, MIME type)`` made with Pillow: JPEG for an opaque image, PNG when it
    has transparency; ``(None, type)`` when the image is no larger than a thumbnail; ``None``
    without Pillow or when Pillow cannot read the file (an SVG, say)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(path) as image:
            original_type = Image.MIME.get(image.format or "", "image/png")
            if max(image.size) <= THUMBNAIL_EDGE:
                return None, original_type
            image.draft("RGB", (THUMBNAIL_EDGE, THUMBNAIL_EDGE))  # JPEG: decode at a fraction
            image.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE))
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            buffer = io.BytesIO()
            if transparent:
                image.convert("RGBA").save(buffer, format="PNG", optimize=True)
                return buffer.getvalue(), "image/png"
            image.convert("RGB").save(buffer, format="JPEG", quality=_JPEG_QUALITY)
            return buffer.getvalue(), "image/jpeg"
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _over_budget(embedded: _Embedded) -> str:
    text = (
        f"{html.escape(embedded.path.name)} ({_megabytes(embedded.size)}) is not shown inline: "
        f"this output's {_megabytes(HTML_BUDGET)} budget is spent."
    )
    if not embedded.pillow:
        text += (
            " Install Pillow for thumbnails: <code>pip install 'langchain-imagegen[pillow]'</code>."
        )
    return text


def _megabytes(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    return f"{max(1, round(size / 1000))} kB"


# --- streamed previews, live -----------------------------------------------------------------

_Display = Callable[..., Any]


def _ipython_display() -> _Display | None:
    """IPython's ``display`` when this runs in an IPython session (a notebook's kernel), else
    None: IPython is not a dependency, and outside a session ``display`` would only print."""
    try:
        # Older IPython releases (those for Python 3.10) neither re-export nor annotate it.
        from IPython import get_ipython  # type: ignore[attr-defined,unused-ignore]
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()  # type: ignore[no-untyped-call,unused-ignore]
    return display if shell is not None else None


class _PreviewBoard:
    """The displays of one handler: one per streamed image (tool run and request), shown at
    its first preview and updated in place until its image is saved.

    Events come from the thread of each parallel request (sync runs) or from executor threads
    (a sync handler in an async run): one lock keeps each image's updates in order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shown: dict[tuple[UUID, int], tuple[Any, str]] = {}  # -> (handle, last body)

    def event(self, name: str, data: Any, run_id: UUID) -> None:
        if name != EVENT_NAME or not isinstance(data, Mapping):
            return
        index = data.get("request_index")
        stage = data.get("stage")
        if not isinstance(index, int) or stage not in ("partial", "restarted", "saved"):
            return
        display = _ipython_display()
        if display is None:
            return
        with self._lock:
            self._show(display, (run_id, index), stage, data)

    def _show(
        self, display: _Display, key: tuple[UUID, int], stage: str, data: Mapping[str, Any]
    ) -> None:
        shown = self._shown.get(key)
        image = f"image {key[1] + 1}"
        if stage == "partial":
            number = data.get("partial_index")
            which = f"{image}, preview {number + 1 if isinstance(number, int) else '?'}"
            body, caption = _preview_body(data, which)
        elif shown is None:  # no preview was shown: nothing to update (the result shows it)
            return
        elif stage == "restarted":
            body = shown[1]  # the last preview stays until the next one replaces it
            reason = short_note(str(data.get("reason")))
            caption = f"{image} starts over (attempt {data.get('attempt')}): {reason}"
        else:
            body, caption = _preview_body(data, image)
        bundle = _bundle(body, caption)
        if shown is None:
            handle = display(bundle, raw=True, display_id=True)
        else:
            handle = shown[0]
            handle.update(bundle, raw=True)
        if stage == "saved":  # the image is final: its display is done
            del self._shown[key]
        else:
            self._shown[key] = (handle, body)


def _preview_body(data: Mapping[str, Any], which: str) -> tuple[str, str]:
    """``(HTML body, caption)`` for a preview or a saved image: the local file embedded (a
    thumbnail with Pillow) within the budget, or for a file in remote storage, no image and
    its URI in the caption (events carry no signed link)."""
    if "error" in data:
        note = f"{which} could not be saved: {short_note(str(data['error']))}"
        return _placeholder(html.escape(note)), note
    path = data.get("path")
    uri = str(data.get("uri") or "")
    if not isinstance(path, str):
        return "", f"{which}: stored at {uri}" if uri else which
    caption = f"{which}: {Path(path).name}"
    embedded = _embeddable(path, mimetypes.guess_type(path)[0])
    if embedded is None:
        return _placeholder(html.escape(f"{Path(path).name} could not be read")), caption
    budget = HTML_BUDGET - len(_bundle("", caption)["text/html"])
    return _local_body(embedded, html.escape(caption), budget), caption


def _bundle(body: str, caption: str) -> dict[str, str]:
    """A MIME bundle: the figure for a notebook, the caption for a terminal IPython."""
    page = f"{_FIGURE}{body}<figcaption><small>{html.escape(caption)}</small></figcaption></figure>"
    return {"text/html": page, "text/plain": caption}


class NotebookPreviews(BaseCallbackHandler):
    """Shows streamed previews in a Jupyter notebook while the tool runs: one display per
    image, created at its first preview and updated in place with each next preview, then
    with the saved image; a caption says when an image starts over.

    ```python
    tool = ImageGenerationTool(partial_images=2)
    tool.invoke({"prompt": "a red fox"}, config={"callbacks": [NotebookPreviews()]})
    agent.invoke(state, config={"callbacks": [NotebookPreviews()]})  # an agent's calls too
    ```

    Works for sync and async runs (LangChain runs a sync handler's callbacks in a thread of
    the event loop's executor during ``ainvoke``; :class:`AsyncNotebookPreviews` runs them on
    the loop itself). Images that were not streamed get no display (the result shows them).
    Outside an IPython session, or without IPython installed, it does nothing.
    """

    def __init__(self) -> None:
        self._board = _PreviewBoard()

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._board.event(name, data, run_id)


class AsyncNotebookPreviews(AsyncCallbackHandler):
    """:class:`NotebookPreviews` for async code: the displays are made on the event loop."""

    def __init__(self) -> None:
        self._board = _PreviewBoard()

    async def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._board.event(name, data, run_id)

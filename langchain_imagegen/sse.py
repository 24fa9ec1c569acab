"""An incremental Server-Sent Events decoder: bytes in, events out, no I/O.

Follows the WHATWG HTML "event stream interpretation"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
UTF-8 with one leading BOM ignored, lines ending in CRLF, LF or CR (a CR at the end of one chunk
and an LF at the start of the next are one line end), ``:`` comments ignored, one space after the
colon dropped, ``data`` lines joined with ``\\n``, a block without ``data`` not dispatched, ``id``
with NUL ignored, ``retry`` only when all ASCII digits. Two leniencies, for what servers do:
invalid UTF-8 is replaced rather than raising, and :meth:`SSEDecoder.end` still returns a last
event whose lines were complete but that lacked the closing blank line (the spec drops it; a
trailing *incomplete* line is discarded, as the spec says).

Linear in the stream size, however it is chunked: each chunk is searched once for line ends,
an unfinished line is kept as a list of the chunks' pieces and joined once when it ends, so a
4 MB base64 ``data:`` line arriving in 4 KB chunks is neither re-scanned nor re-copied per chunk.
The model is openai-python's ``_streaming.SSEDecoder``, made incremental over bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event.

    ``event`` is the ``event:`` field (``"message"`` when absent or empty); ``data`` the
    ``data:`` lines joined with ``\\n``; ``id`` the last event ID in force when the event was
    dispatched (it persists across events, as the spec says; ``None`` if the stream never set
    one); ``retry`` likewise the last valid ``retry:`` value in milliseconds, or ``None``.
    """

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed the body's chunks as they arrive; collect the events each one completes.

    >>> decoder = SSEDecoder()
    >>> decoder.feed(b"event: ping\\r\\ndata: 1\\r")
    []
    >>> decoder.feed(b"\\n\\r\\n")
    [ServerSentEvent(event='ping', data='1', id=None, retry=None)]
    """

    def __init__(self) -> None:
        self._line_pieces: list[bytes] = []  # the unfinished line, as the chunks brought it
        self._line_size = 0
        self._after_cr = False  # the last chunk ended in CR: an LF opening the next is its pair
        self._at_stream_start = True  # the BOM, if any, opens the first line
        self._event_type = ""
        self._data: list[str] = []
        self._event_size = 0  # bytes of the current block's completed lines
        self._last_id: str | None = None
        self._retry: int | None = None

    @property
    def buffered(self) -> int:
        """Bytes held for the unfinished line and the undispatched event (to cap memory)."""
        return self._line_size + self._event_size

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk``; return the events it completed, in order."""
        events: list[ServerSentEvent] = []
        if not chunk:
            return events
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        # bytes.splitlines breaks at CRLF, LF and CR only (unlike str.splitlines), exactly
        # the line ends of an event stream.
        for piece in chunk.splitlines(keepends=True):
            if piece.endswith(b"\r\n"):
                line_end = 2
            elif piece.endswith((b"\n", b"\r")):
                line_end = 1
            else:  # the chunk ends inside a line: keep the piece until the line ends
                self._line_pieces.append(piece)
                self._line_size += len(piece)
                continue
            self._line_pieces.append(piece[:-line_end])
            line = b"".join(self._line_pieces)
            self._line_pieces.clear()
            self._line_size = 0
            event = self._take_line(line)
            if event is not None:
                events.append(event)
        return events

    def end(self) -> list[ServerSentEvent]:
        """The stream ended: drop an incomplete last line, and return the last event if its
        lines were complete but the closing blank line never came (servers forget it)."""
        self._line_pieces.clear()
        self._line_size = 0
        self._after_cr = False
        event = self._dispatch()
        return [] if event is None else [event]

    def _take_line(self, line: bytes) -> ServerSentEvent | None:
        if self._at_stream_start:
            self._at_stream_start = False
            if line.startswith(_BOM):
                line = line[len(_BOM) :]
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None  # a comment: keep-alives
        self._event_size += len(line)
        text = line.decode("utf-8", errors="replace")
        field, _, value = text.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event_type = value
        elif field == "id" and "\0" not in value:
            self._last_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        # Any other field is ignored, as the spec says.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        """End the current block; the event it makes, if it had any ``data`` line."""
        data, event_type = self._data, self._event_type
        self._data = []
        self._event_type = ""
        self._event_size = 0
        if not data:
            return None
        return ServerSentEvent(
            event=event_type or "message",
            data="\n".join(data),
            id=self._last_id,
            retry=self._retry,
        )

"""The incremental SSE decoder against the WHATWG HTML event-stream interpretation
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation),
its examples, the line-end and encoding corner cases, and chunking invariance."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_imagegen.sse import ServerSentEvent, SSEDecoder


def decode(chunks: Iterable[bytes], *, end: bool = True) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    if end:
        events += decoder.end()
    return events


def split_at(stream: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


def msg(data: str, event: str = "message", id: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data, id=id, retry=None)


# --- the spec's examples -------------------------------------------------------------------


def test_whatwg_multiline_data_example() -> None:
    stream = b"data: YHOO\ndata: +2\ndata: 10\n\n"
    assert decode([stream]) == [msg("YHOO\n+2\n10")]


def test_whatwg_comment_id_and_leading_space_example() -> None:
    stream = (
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n"
    )
    assert decode([stream]) == [
        msg("first event", id="1"),
        msg("second event", id=""),  # `id` without a value resets the last event ID
        msg(" third event", id=""),  # only one space is removed; the ID persists
    ]


def test_whatwg_empty_data_example() -> None:
    stream = b"data\n\ndata\ndata\n\ndata:"
    # The last block is an incomplete line when the stream ends: discarded.
    assert decode([stream]) == [msg(""), msg("\n")]


def test_whatwg_space_after_colon_is_optional_example() -> None:
    assert decode([b"data:test\n\ndata: test\n\n"]) == [msg("test"), msg("test")]


# --- fields ---------------------------------------------------------------------------------


def test_event_name_retry_and_unknown_fields() -> None:
    stream = (
        b"event: image_generation.partial_image\nretry: 3000\nfoo: bar\ndata: {}\n\n"
        b"event:\ndata: x\n\n"  # an empty event name is "message"
    )
    assert decode([stream]) == [
        ServerSentEvent("image_generation.partial_image", "{}", None, 3000),
        ServerSentEvent("message", "x", None, 3000),  # the reconnection time stays in force
    ]


@pytest.mark.parametrize("value", [b"", b"12a", b"  12", b"-1", b"1.5", "\u0661\u0662".encode()])
def test_retry_must_be_ascii_digits(value: bytes) -> None:
    assert decode([b"retry:" + value + b"\ndata: x\n\n"]) == [msg("x")]


def test_id_with_nul_is_ignored() -> None:
    stream = b"id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n"
    assert decode([stream]) == [msg("a", id="7"), msg("b", id="7")]


def test_field_without_colon_and_colon_in_value() -> None:
    stream = b'event\ndata: {"a": "b:c"}\n\n'
    assert decode([stream]) == [msg('{"a": "b:c"}')]


def test_block_without_data_is_not_dispatched() -> None:
    stream = b"event: ping\nid: 3\n\n: keep-alive\n\n\n\ndata: x\n\n"
    assert decode([stream]) == [msg("x", id="3")]  # the event name did not carry over


def test_comments_are_ignored_anywhere() -> None:
    stream = b": hi\ndata: a\n: between\ndata: b\n:\n\n"
    assert decode([stream]) == [msg("a\nb")]


def test_done_is_an_ordinary_event() -> None:
    assert decode([b"data: [DONE]\n\n"]) == [msg("[DONE]")]


# --- line ends, BOM, encoding ---------------------------------------------------------------


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_end(newline: bytes) -> None:
    stream = newline.join([b"event: e", b"data: a", b"data: b", b"", b"data: c", b"", b""])
    assert decode([stream]) == [msg("a\nb", event="e"), msg("c")]


def test_mixed_line_ends() -> None:
    stream = b"data: a\r\ndata: b\rdata: c\n\r\n\rdata: d\r\r"
    assert decode([stream]) == [msg("a\nb\nc"), msg("d")]


def test_cr_then_lf_across_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the pair of the CR, not a blank line
    assert decoder.feed(b"\r") == [msg("a")]
    assert decoder.feed(b"\ndata: b\r\r") == [msg("b")]


def test_cr_cr_across_chunks_is_two_line_ends() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [msg("a")]


def test_only_ascii_line_ends_split_lines() -> None:
    # Vertical tab, form feed, U+0085, U+2028 are data, not line ends (bytes.splitlines
    # and the spec agree; str.splitlines would not).
    value = "a\x0bb\x0cc\x1cd\u0085e\u2028f"
    assert decode([f"data: {value}\n\n".encode()]) == [msg(value)]


def test_leading_bom_is_stripped_once() -> None:
    bom = b"\xef\xbb\xbf"
    assert decode([bom + b"data: a\n\n"]) == [msg("a")]
    assert decode([bom + bom + b"data: a\n\n"]) == []  # the second BOM makes an unknown field
    assert decode([b"data: " + bom + b"a\n\n"]) == [msg("\ufeffa")]  # not at the start: data
    assert decode([bom[:1], bom[1:2], bom[2:] + b"data: a\n\n"]) == [msg("a")]


def test_invalid_utf8_is_replaced() -> None:
    stream = b"event: \xff\xfe\ndata: caf\xc3\xa9 \xe2\x82\ndata: \xc3\n\n"
    assert decode([stream]) == [msg("caf\u00e9 \ufffd\n\ufffd", event="\ufffd\ufffd")]


def test_multibyte_character_split_across_chunks() -> None:
    stream = "data: 画像\n\n".encode()
    for cut in range(len(stream) + 1):
        assert decode(split_at(stream, [cut])) == [msg("画像")]


# --- end of stream -------------------------------------------------------------------------


def test_end_returns_a_complete_last_event_without_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\ndata: c\n") == [msg("a")]
    assert decoder.end() == [msg("b\nc")]
    assert decoder.end() == []


def test_end_discards_an_incomplete_last_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\ndata: b") == []
    assert decoder.end() == [msg("a")]  # "data: b" never ended: it may be cut short
    decoder = SSEDecoder()
    decoder.feed(b'data: {"b64_json": "iVBORw0KGgo')
    assert decoder.end() == []


def test_end_after_cr_line_end() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\r")
    assert decoder.end() == [msg("a")]


def test_end_on_empty_stream() -> None:
    assert decode([]) == []
    assert decode([b""]) == []


# --- memory and chunking --------------------------------------------------------------------


def test_buffered_counts_unfinished_line_and_event() -> None:
    decoder = SSEDecoder()
    assert decoder.buffered == 0
    decoder.feed(b"data: abc")
    assert decoder.buffered == 9
    decoder.feed(b"def\ndata: x")
    assert decoder.buffered == len(b"data: abcdef") + len(b"data: x")
    decoder.feed(b"\n\n")
    assert decoder.buffered == 0


def test_large_line_in_small_chunks() -> None:
    """A 4 MB base64 line in 4 KB chunks: the line is only assembled when it ends (so each
    chunk's bytes are held once, ``buffered`` grows by exactly the chunk) and arrives whole."""
    payload = (b"iVBORw0KGgoAAAANSUhEUgAA" * 174_763)[: 4 * 1024 * 1024]
    stream = b"event: image_generation.completed\ndata: " + payload + b"\n\n"
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    chunk_size = 4096
    for start in range(0, len(stream), chunk_size):
        chunk = stream[start : start + chunk_size]
        before = decoder.buffered
        events += decoder.feed(chunk)
        if not events:
            line_start = len(b"event: image_generation.completed\n")
            if start >= line_start:
                assert decoder.buffered == before + len(chunk)
    assert decoder.buffered == 0
    assert len(events) == 1
    assert events[0].event == "image_generation.completed"
    assert events[0].data == payload.decode()


SAMPLE = (
    b"\xef\xbb\xbf: keep-alive\r\n"
    b"event: image_generation.partial_image\r\n"
    b"id: 1\r\n"
    b'data: {"type":"image_generation.partial_image","b64_json":"QUJD",\r\n'
    b'data: "partial_image_index":0}\r\n'
    b"\r\n"
    b"retry: 10\n"
    b"data: caf\xc3\xa9\r"
    b"\r"
    b"event: image_generation.completed\n"
    b'data: {"type":"image_generation.completed","b64_json":"REVG"}\n'
    b"\n"
    b"data: [DONE]\r\n"
    b"data: trailing, no blank line\n"
)
SAMPLE_EVENTS = [
    ServerSentEvent(
        "image_generation.partial_image",
        '{"type":"image_generation.partial_image","b64_json":"QUJD",\n"partial_image_index":0}',
        "1",
        None,
    ),
    ServerSentEvent("message", "caf\u00e9", "1", 10),
    ServerSentEvent(
        "image_generation.completed",
        '{"type":"image_generation.completed","b64_json":"REVG"}',
        "1",
        10,
    ),
    ServerSentEvent("message", "[DONE]\ntrailing, no blank line", "1", 10),
]


def test_sample_whole() -> None:
    assert decode([SAMPLE]) == SAMPLE_EVENTS


def test_sample_byte_by_byte() -> None:
    assert decode([SAMPLE[i : i + 1] for i in range(len(SAMPLE))]) == SAMPLE_EVENTS


def test_sample_split_at_every_point() -> None:
    for cut in range(len(SAMPLE) + 1):
        assert decode(split_at(SAMPLE, [cut])) == SAMPLE_EVENTS, cut


@given(st.lists(st.integers(0, len(SAMPLE)), max_size=30))
def test_sample_any_chunking(cuts: list[int]) -> None:
    assert decode(split_at(SAMPLE, cuts)) == SAMPLE_EVENTS


# Field values that survive a round trip: no line ends (they would split the line), no
# surrogates (not encodable in UTF-8).
_values = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"))
_blocks = st.lists(
    st.tuples(
        st.one_of(st.none(), _values),  # event name
        st.lists(_values, min_size=1, max_size=3),  # data lines
        st.one_of(st.none(), _values.filter(lambda v: "\0" not in v)),  # id
    ),
    max_size=5,
)


@given(
    blocks=_blocks,
    newlines=st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1),
    cuts=st.lists(st.integers(0, 10_000), max_size=20),
)
def test_round_trip_any_line_ends_and_chunking(
    blocks: list[tuple[str | None, list[str], str | None]],
    newlines: list[str],
    cuts: list[int],
) -> None:
    lines: list[str] = []
    expected: list[ServerSentEvent] = []
    last_id: str | None = None
    for event, data, id in blocks:
        if event is not None:
            lines.append(f"event: {event}")
        lines += [f"data: {value}" for value in data]
        if id is not None:
            lines.append(f"id: {id}")
            last_id = id
        lines.append("")
        expected.append(ServerSentEvent(event or "message", "\n".join(data), last_id, None))
    text = ""
    for i, line in enumerate(lines):
        newline = newlines[i % len(newlines)]
        if not line and newline == "\n" and text.endswith("\r"):
            newline = "\r\n"  # CR then LF is one line end: the blank line needs its own
        text += line + newline
    stream = text.encode()
    assert decode(split_at(stream, [c % (len(stream) + 1) for c in cuts])) == expected

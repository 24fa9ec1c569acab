"""The emulator's streamed answers (``stream: true``), read raw with plain httpx.

Checks what the package's streaming client will meet: events leave one by one (chunked, spaced
by ``stream_interval_s``), previews differ from the final image, normal events carry every field
the OpenAPI schemas (``tests/data/openapi``) require, and each scripted stream fault has its
wire shape. SSE is parsed here with a small reader written from the WHATWG HTML
"server-sent events" parsing rules, independent of the package. Timing bounds are generous:
they tell "spaced" from "all at once", never measure speed.
"""

from __future__ import annotations

import base64
import codecs
import io
import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image

from tests.conftest import wait_for
from tests.emulator import Emulator, Fault, StreamRecord

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.enable_socket,
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

PARTIAL = "image_generation.partial_image"
COMPLETED = "image_generation.completed"
SPEC = Path(__file__).parent / "data" / "openapi" / "openapi-images-2026-08-21-f85dbe22.yaml"
SERVER_ERROR = {
    "type": "error",
    "error": {
        "type": "server_error",
        "code": "server_error",
        "message": "The server had an error processing your request.",
        "param": None,
    },
}
MODERATION_FLAT = {
    "type": "error",
    "code": "moderation_blocked",
    "message": "Your request was rejected by the safety system.",
    "param": None,
}
MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8", "webp": b"RIFF"}


# --------------------------------------------------------------------------------------------
# A raw SSE reader (WHATWG HTML, "Interpreting an event stream")
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    last_id: str
    arrived: float
    """time.monotonic() when the client had the event's terminating blank line."""

    def json(self) -> dict[str, Any]:
        payload = json.loads(self.data)
        assert isinstance(payload, dict)
        return payload


@dataclass
class Read:
    """Everything a raw read of one streamed answer gave."""

    response: httpx.Response
    raw: bytes
    events: list[Event]
    comments: list[str]
    error: httpx.TransportError | None
    request_id: str

    @property
    def types(self) -> list[str]:
        return [event.event for event in self.events]


class SseReader:
    """Feed bytes, collect events: CR, LF and CRLF line ends, comments, multi-line data,
    ``id``, one optional space after the colon."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._event, self._last_id = "", ""
        self._data: list[str] = []
        self.events: list[Event] = []
        self.comments: list[str] = []

    def feed(self, chunk: bytes) -> None:
        self._buffer += self._decoder.decode(chunk)
        while True:
            ends = [i for i in (self._buffer.find("\r"), self._buffer.find("\n")) if i >= 0]
            cut = min(ends, default=-1)
            if cut < 0 or (self._buffer[cut] == "\r" and cut + 1 == len(self._buffer)):
                return  # no whole line yet (a CR may still be followed by its LF)
            line = self._buffer[:cut]
            step = 2 if self._buffer[cut : cut + 2] == "\r\n" else 1
            self._buffer = self._buffer[cut + step :]
            self._line(line)

    def _line(self, line: str) -> None:
        if not line:
            if self._data:
                data = "\n".join(self._data)
                self.events.append(
                    Event(self._event or "message", data, self._last_id, time.monotonic())
                )
            self._event, self._data = "", []
            return
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._last_id = value


def _headers(emu: Emulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.api_key}"}


def _body(prompt: str = "a lighthouse", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-image-1", "prompt": prompt, "stream": True, **extra}


def read_stream(client: httpx.Client, body: Mapping[str, Any]) -> Read:
    """POST and read the answer chunk by chunk, keeping the transport error if it broke."""
    reader, raw = SseReader(), bytearray()
    error: httpx.TransportError | None = None
    with client.stream("POST", "/images/generations", json=dict(body)) as response:
        try:
            for chunk in response.iter_raw():
                raw += chunk
                reader.feed(chunk)
        except httpx.TransportError as exc:
            error = exc
    rid = response.headers["x-request-id"]
    return Read(response, bytes(raw), reader.events, reader.comments, error, rid)


def records(emu: Emulator, rid: str) -> list[StreamRecord]:
    return [record for record in emu.stream_log if record.request_id == rid]


def whats(emu: Emulator, rid: str) -> list[str]:
    return [record.what for record in records(emu, rid)]


def b64_image(event: Mapping[str, Any]) -> bytes:
    return base64.b64decode(event["b64_json"], validate=True)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(max_lifetime_s=120) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers=_headers(emu), timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    found: dict[str, Any] = spec["components"]["schemas"]
    return found


# --------------------------------------------------------------------------------------------
# On the wire: chunked, one event at a time, spaced
# --------------------------------------------------------------------------------------------


def test_events_leave_one_by_one_spaced_by_the_interval(
    emu: Emulator, client: httpx.Client
) -> None:
    # Wide enough that a loaded machine (many test workers on few cores) cannot blur it:
    # the client must hold each preview within this long of its sending.
    emu.stream_interval_s = 0.25
    read = read_stream(client, _body(partial_images=2))
    assert read.error is None
    assert read.response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in read.response.headers
    assert read.response.headers["content-type"].startswith("text/event-stream")
    assert read.types == [PARTIAL, PARTIAL, COMPLETED]
    log = records(emu, read.request_id)
    assert [r.what for r in log] == ["headers", PARTIAL, PARTIAL, COMPLETED, "end"]
    sent = [r.at for r in log[1:4]]
    assert all(later - earlier >= 0.2 for earlier, later in itertools.pairwise(sent))
    # The client held the first preview before the server even began writing the final image.
    assert read.events[0].arrived < log[3].at
    assert read.events[1].arrived < log[3].at
    # The emulator counts the stream finished once its terminating chunk is written, which
    # the client can have read first.
    assert wait_for(lambda: emu.stats().streams_finished == 1)
    stats = emu.stats()
    assert (stats.streams_started, stats.streams_finished, stats.streams_abandoned) == (1, 1, 0)
    assert stats.stream_events_written == 3


def test_per_request_interval_overrides_the_knob(emu: Emulator, client: httpx.Client) -> None:
    read = read_stream(client, _body("x [[fault:stream_interval:0.1]]", partial_images=1))
    first, final = (r.at for r in records(emu, read.request_id) if r.what in (PARTIAL, COMPLETED))
    assert final - first >= 0.08  # the knob (0 s) would send them back to back
    emu.stream_interval_s = 5.0  # a queued fault's interval_s wins over the knob as well
    emu.push_fault(Fault.stream_interval(0.0))
    started = time.monotonic()
    assert read_stream(client, _body(partial_images=2)).types == [PARTIAL, PARTIAL, COMPLETED]
    assert time.monotonic() - started < 4.0


def test_a_finished_stream_leaves_the_connection_reusable(
    emu: Emulator, client: httpx.Client
) -> None:
    for _ in range(2):
        assert read_stream(client, _body(partial_images=1)).types == [PARTIAL, COMPLETED]
    plain = client.post("/images/generations", json={"model": "gpt-image-1", "prompt": "x"})
    assert plain.status_code == 200
    assert emu.stats().connections_accepted == 1


# --------------------------------------------------------------------------------------------
# Content: previews, spec conformance, n > 1
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
def test_previews_are_real_images_distinct_from_the_final(
    client: httpx.Client, output_format: str
) -> None:
    read = read_stream(client, _body(partial_images=3, output_format=output_format))
    events = [event.json() for event in read.events]
    images = [b64_image(event) for event in events]
    assert all(image.startswith(MAGIC[output_format]) for image in images)
    *previews, final = images
    assert len(previews) == 3
    assert len({*previews, final}) == 4  # no preview equals another or the final image
    for image in images:  # real images a decoder accepts, at the requested size
        with Image.open(io.BytesIO(image)) as decoded:
            decoded.load()
            assert decoded.size == (1024, 1024)
    if output_format == "png":
        assert all(b"-partial-" in preview for preview in previews)
        assert b"-partial-" not in final


def _check_against(schema: Mapping[str, Any], value: Any, schemas: Mapping[str, Any]) -> None:
    """Required fields present, types and enums as the schema says (recursing into $refs)."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        assert isinstance(value, dict)
        missing = set(schema.get("required", ())) - set(value)
        assert not missing, f"missing {sorted(missing)} in {sorted(value)}"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _check_against(sub, value[key], schemas)
        return
    if kind == "integer":
        assert isinstance(value, int)
        assert not isinstance(value, bool)
    elif kind == "string":
        assert isinstance(value, str)
    if "enum" in schema:
        assert value in schema["enum"], (value, schema["enum"])


@pytest.mark.parametrize(
    "extra",
    [
        {"partial_images": 2},
        {"partial_images": 0},
        {"partial_images": 3, "n": 2, "quality": "low", "size": "1536x1024"},
        {"partial_images": 1, "background": "transparent", "output_format": "webp"},
        {"partial_images": 1, "output_format": "jpeg", "output_compression": 50},
    ],
)
def test_normal_events_carry_every_field_the_spec_requires(
    client: httpx.Client, schemas: Mapping[str, Any], extra: dict[str, Any]
) -> None:
    read = read_stream(client, _body(**extra))
    n, partials = extra.get("n", 1), extra["partial_images"]
    assert read.types == ([PARTIAL] * partials + [COMPLETED]) * n
    for event in read.events:
        payload = event.json()
        assert payload["type"] == event.event  # the event: line names the payload's type
        name = "ImageGenPartialImageEvent" if event.event == PARTIAL else "ImageGenCompletedEvent"
        _check_against(schemas[name], payload, schemas)
        assert b64_image(payload)
    indexes = [e.json()["partial_image_index"] for e in read.events if e.event == PARTIAL]
    assert indexes == list(range(partials)) * n
    completed = [e.json() for e in read.events if e.event == COMPLETED]
    assert len({event["b64_json"] for event in completed}) == n  # n distinct final images
    first = completed[0]
    assert first["size"] == extra.get("size", "1024x1024")
    assert first["output_format"] == extra.get("output_format", "png")
    assert first["background"] == ("transparent" if "background" in extra else "opaque")


# --------------------------------------------------------------------------------------------
# Scripted stream faults
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("after", "partials_seen"), [(0, 0), (1, 1), (2, 2), (5, 2)])
def test_stream_cut_closes_mid_body_after_k_partials(
    emu: Emulator, client: httpx.Client, after: int, partials_seen: int
) -> None:
    read = read_stream(client, _body(f"x [[fault:stream_cut:{after}]]", partial_images=2))
    assert isinstance(read.error, httpx.RemoteProtocolError)  # no terminating chunk
    assert read.types == [PARTIAL] * partials_seen
    assert whats(emu, read.request_id)[-1] == "cut"
    assert emu.stats().streams_finished == 1


def test_stream_reset_ends_in_a_connection_reset(emu: Emulator, client: httpx.Client) -> None:
    emu.push_fault(Fault.stream_cut(1, reset=True))
    read = read_stream(client, _body(partial_images=3))
    assert isinstance(read.error, httpx.ReadError)
    assert read.types == [PARTIAL]


@pytest.mark.parametrize("fault", [Fault.stream_error(2), Fault.from_marker("stream_error", "2")])
def test_stream_error_sends_an_error_event_after_k_partials(
    emu: Emulator, client: httpx.Client, fault: Fault
) -> None:
    emu.push_fault(fault)
    read = read_stream(client, _body(partial_images=3))
    assert read.error is None  # the stream itself ends cleanly
    assert read.types == [PARTIAL, PARTIAL, "error"]
    assert read.events[-1].json() == SERVER_ERROR
    assert b"\nevent: error\ndata: " in read.raw


def test_stream_error_flat_has_no_event_line(emu: Emulator, client: httpx.Client) -> None:
    read = read_stream(client, _body("x [[fault:stream_error_flat:1]]", partial_images=2))
    assert read.types == [PARTIAL, "message"]  # no event: line -> the default event type
    assert read.events[-1].json() == MODERATION_FLAT
    flat = json.dumps(MODERATION_FLAT, separators=(",", ":")).encode()
    assert read.raw.endswith(b"\n\ndata: " + flat + b"\n\n")


def test_stream_ignored_answers_the_plain_json_body(emu: Emulator, client: httpx.Client) -> None:
    emu.push_fault(Fault.stream_ignored())
    response = client.post("/images/generations", json=_body(partial_images=2))
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    payload = response.json()
    assert set(payload) >= {"created", "data", "usage", "size", "output_format"}
    assert b64_image(payload["data"][0]).startswith(MAGIC["png"])
    assert emu.stats().streams_started == 0


def test_stream_spec_example_has_only_the_example_fields(
    client: httpx.Client, schemas: Mapping[str, Any]
) -> None:
    read = read_stream(client, _body("x [[fault:stream_spec_example]]", partial_images=1))
    partial, completed = (event.json() for event in read.events)
    assert list(partial) == ["type", "b64_json", "partial_image_index"]
    assert list(completed) == ["type", "b64_json", "usage"]
    assert list(completed["usage"]) == [
        "total_tokens",
        "input_tokens",
        "output_tokens",
        "input_tokens_details",
    ]
    _check_against(schemas["ImagesUsage"], completed["usage"], schemas)
    assert b64_image(partial) != b64_image(completed)
    assert b64_image(completed).startswith(MAGIC["png"])


def test_stream_quirks_are_valid_sse_with_unusual_framing(
    emu: Emulator, client: httpx.Client
) -> None:
    read = read_stream(client, _body("x [[fault:stream_quirks:0.05]]", partial_images=2))
    assert read.error is None
    assert read.raw.count(b"\n") == read.raw.count(b"\r\n")  # CRLF everywhere
    assert read.comments == ["keep-alive"] * 3
    assert read.types == [PARTIAL, PARTIAL, COMPLETED, "message"]
    assert read.events[-1].data == "[DONE]"
    assert b'\r\ndata: {\r\ndata:   "type"' in read.raw  # one JSON over several data: lines
    assert b"\r\ndata:{" in read.raw  # data: without the optional space
    assert b"\r\nretry: 3000\r\n" in read.raw
    assert all(event.last_id.startswith(read.request_id) for event in read.events)
    partials = [event.json() for event in read.events[:2]]
    assert [p["partial_image_index"] for p in partials] == [0, 1]
    assert b64_image(read.events[2].json()).startswith(MAGIC["png"])
    assert "comment" in whats(emu, read.request_id)


def test_stream_stall_holds_back_the_rest_after_the_first_partial(
    emu: Emulator, client: httpx.Client
) -> None:
    read = read_stream(client, _body("x [[fault:stream_stall:0.3]]", partial_images=2))
    assert read.types == [PARTIAL, PARTIAL, COMPLETED]
    sent = [r.at for r in records(emu, read.request_id) if r.what in (PARTIAL, COMPLETED)]
    assert sent[1] - sent[0] >= 0.25
    assert sent[2] - sent[1] < 0.25  # back to back: the stall is not repeated


def test_a_stall_does_not_outlive_stop(emu: Emulator) -> None:
    outcome: list[BaseException | None] = []
    got_first = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=emu.base_url, headers=_headers(emu), timeout=30) as http:
            try:
                body = _body("x [[fault:stream_stall:60]]", partial_images=2)
                with http.stream("POST", "/images/generations", json=body) as response:
                    for _ in response.iter_raw():
                        got_first.set()
            except httpx.TransportError as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert got_first.wait(10)
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 5.0
    thread.join(10)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert outcome[0] is not None  # the body never completed
    assert wait_for(lambda: [r.what for r in emu.stream_log][-1] == "stopped")
    assert emu.stats().streams_abandoned == 0  # stopping is not the client leaving


def test_truncated_and_invalid_json_and_empty_data_shape_a_stream(
    emu: Emulator, client: httpx.Client
) -> None:
    emu.push_fault(Fault.truncated_base64(), Fault.invalid_json(), Fault.empty_data())
    truncated = read_stream(client, _body(partial_images=1))
    assert len(truncated.events[-1].json()["b64_json"]) % 2 == 1  # odd: never valid base64
    broken = read_stream(client, _body(partial_images=1))
    with pytest.raises(json.JSONDecodeError):
        broken.events[-1].json()
    empty = read_stream(client, _body(partial_images=2))
    assert empty.error is None
    assert empty.events == []


def test_stream_faults_leave_a_request_that_is_not_streamed_alone(
    emu: Emulator, client: httpx.Client
) -> None:
    body = {"model": "gpt-image-1", "prompt": "x [[fault:stream_cut:0]]"}
    response = client.post("/images/generations", json=body)
    assert response.status_code == 200
    assert b64_image(response.json()["data"][0])


# --------------------------------------------------------------------------------------------
# Abandoned streams
# --------------------------------------------------------------------------------------------


def test_a_client_closing_early_is_counted_at_once(emu: Emulator, client: httpx.Client) -> None:
    # The first preview at once, then 30 s until the next event: the emulator is waiting
    # between events when the client leaves.
    emu.push_fault(Fault.stream_stall(30.0))
    with client.stream("POST", "/images/generations", json=_body(partial_images=3)) as response:
        rid = response.headers["x-request-id"]
        reader = SseReader()
        for chunk in response.iter_raw():
            reader.feed(chunk)
            if reader.events:
                break
        closed = time.monotonic()
    assert wait_for(lambda: emu.stats().streams_abandoned == 1)
    abandoned = records(emu, rid)[-1]
    assert abandoned.what == "abandoned"
    assert abandoned.at - closed < 1.0  # noticed while waiting, not at the next write
    assert COMPLETED not in whats(emu, rid)
    assert emu.stats().streams_finished == 0


def test_a_client_read_timeout_during_a_stall_abandons_the_stream(emu: Emulator) -> None:
    timeout = httpx.Timeout(10, read=0.3)
    with httpx.Client(base_url=emu.base_url, headers=_headers(emu), timeout=timeout) as http:
        read = read_stream(http, _body("x [[fault:stream_stall:30]]", partial_images=1))
    assert isinstance(read.error, httpx.ReadTimeout)
    assert read.types == [PARTIAL]
    assert wait_for(lambda: emu.stats().streams_abandoned == 1)
    assert whats(emu, read.request_id)[-1] == "abandoned"


# --------------------------------------------------------------------------------------------
# Request validation and marker parsing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": "dall-e-2", "stream": True}, "unknown_parameter", "stream"),
        ({"model": "dall-e-3", "stream": False}, "unknown_parameter", "stream"),
        ({"model": "dall-e-3", "partial_images": 0}, "unknown_parameter", "partial_images"),
        ({"model": "gpt-image-1", "stream": True, "partial_images": 4}, "integer_above_max_value",
         "partial_images"),
        ({"model": "gpt-image-1", "stream": True, "partial_images": -1}, "integer_below_min_value",
         "partial_images"),
        ({"model": "gpt-image-1", "partial_images": 2}, "invalid_value", "partial_images"),
        ({"model": "gpt-image-2", "stream": "yes"}, "invalid_type", "stream"),
    ],
)  # fmt: skip
def test_invalid_stream_requests_get_the_api_400(
    emu: Emulator, client: httpx.Client, body: dict[str, Any], code: str, param: str
) -> None:
    response = client.post("/images/generations", json={"prompt": "x", **body})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert emu.stats().streams_started == 0


@pytest.mark.parametrize(
    ("name", "arg", "kind", "count", "seconds", "interval"),
    [
        ("stream_cut", None, "stream_cut", 1, 0.0, None),
        ("stream_cut", "2,0.5", "stream_cut", 2, 0.0, 0.5),
        ("stream_reset", "0", "stream_reset", 0, 0.0, None),
        ("stream_error_flat", "3", "stream_error_flat", 3, 0.0, None),
        ("stream_stall", None, "stream_stall", 1, 5.0, None),
        ("stream_stall", "1.5,0.1", "stream_stall", 1, 1.5, 0.1),
        ("stream_interval", "0.25", "stream_interval", 1, 0.0, 0.25),
        ("stream_quirks", "0.1", "stream_quirks", 1, 0.0, 0.1),
        ("stream_spec_example", None, "stream_spec_example", 1, 0.0, None),
        ("stream_ignored", None, "stream_ignored", 1, 0.0, None),
    ],
)
def test_stream_markers_build_their_faults(
    name: str, arg: str | None, kind: str, count: int, seconds: float, interval: float | None
) -> None:
    fault = Fault.from_marker(name, arg)
    assert (fault.kind, fault.count, fault.seconds, fault.interval_s) == (
        kind,
        count,
        seconds,
        interval,
    )


def test_error_event_payload_is_scriptable(emu: Emulator, client: httpx.Client) -> None:
    payload = {"error": {"message": "boom", "code": "x"}}
    emu.push_fault(Fault.stream_error(0, payload))
    read = read_stream(client, _body(partial_images=1))
    assert read.types == ["error"]
    assert read.events[0].json() == payload

"""Loader for the recorded ``POST /v1/images/generations`` exchanges in ``tests/data/recorded``.

The recordings are real exchanges with the OpenAI Images API that other open-source projects
recorded for their own tests, vendored here as data files; ``tests/data/recorded/SOURCES.md``
gives each file's project, path, commit and licence, and ``index.json`` lists the files.
Formats understood (detected from content, cross-checked against ``index.json``):

* ``openai-dotnet-session`` -- ``{"Entries": [{RequestUri, RequestMethod, RequestBody,
  StatusCode, ResponseHeaders, ResponseBody}]}``; non-image entries (``/v1/chat/completions``)
  are skipped.
* ``ruby-vcr`` -- ``http_interactions:``; ``!binary`` scalars are base64. Non-image interactions
  (ruby_llm's ``GET`` of the image blob) are skipped.
* ``vcrpy`` -- ``interactions:``; body under ``response.body.string`` or ``response.content``;
  ``!!binary`` bodies may be gzip-compressed (detected by magic bytes, not by the header: a
  dd-trace-py cassette keeps ``Content-Encoding: gzip`` over a plain-text body).
* ``azure-spec-example`` -- Azure REST spec example (``parameters.body`` + ``responses``);
  synthetic, not a recording.
* ``body-only-fixture`` -- a bare response body; only accepted when ``index.json`` lists the file
  with that format. Status comes from ``index.json`` or, when that is ``null``, from the OpenAI
  error code (``unknown_parameter`` -> 400, the status the fixture's own test expects).

Any other file raises :class:`ConformanceFormatError` so a new recording never silently drops out.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "RECORDED_DIR",
    "ConformanceFormatError",
    "RecordedExchange",
    "exchange",
    "load_exchanges",
    "ruby_vcr_interaction",
]

RECORDED_DIR: Path = Path(__file__).resolve().parent / "data" / "recorded"

_INDEX_NAME = "index.json"
_IMAGES_PATH_SUFFIX = "/images/generations"
_GZIP_MAGIC = b"\x1f\x8b"

# Used only for body-only fixtures whose index.json entry has no integer status.
_STATUS_BY_ERROR_CODE: Mapping[str, int] = {
    "unknown_parameter": 400,
    "invalid_value": 400,
    "invalid_api_key": 401,
}

# Headers that describe the *encoded* transfer of the recorded body; ``response_body`` is stored
# decoded (and openai-dotnet bodies are re-serialised), so these are dropped by ``replay_headers``.
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})

Format = Literal[
    "openai-dotnet-session", "ruby-vcr", "vcrpy", "azure-spec-example", "body-only-fixture"
]
_LIVE_FORMATS: frozenset[str] = frozenset({"openai-dotnet-session", "ruby-vcr", "vcrpy"})


class ConformanceFormatError(ValueError):
    """A file under ``recorded/`` is in a format this loader does not understand."""


@dataclass(frozen=True)
class RecordedExchange:
    """One ``POST .../images/generations`` request/response pair.

    ``source`` is the file path relative to ``recorded/`` plus ``#k``, the index of the
    interaction/entry inside that file (counting skipped non-image interactions too).
    """

    source: str
    format: Format
    #: ``model`` from the request body; ``None`` when omitted (API default) or no request known.
    model: str | None
    #: Parsed JSON request body; ``None`` for body-only fixtures.
    request_body: dict[str, Any] | None = field(hash=False)
    status: int
    #: Lower-cased header names, first value, as recorded (see :meth:`replay_headers`).
    response_headers: dict[str, str] = field(hash=False)
    #: Response entity, gunzipped when the recording stored it gzip-compressed.
    response_body: bytes
    #: Request URI as recorded (Azure example: templated from its parameters; body-only: None).
    uri: str | None = None
    #: True when the recorded body bytes were gzip-compressed and have been decompressed.
    body_was_gzip: bool = False

    @property
    def kind(self) -> Literal["success", "error"]:
        return "success" if 200 <= self.status < 300 else "error"

    @property
    def live(self) -> bool:
        """False for the synthetic Azure example and the body-only fixture."""
        return self.format in _LIVE_FORMATS

    def response_json(self) -> Any:
        """The response body parsed as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.response_body)
        except ValueError:
            return None

    def replay_headers(self) -> dict[str, str]:
        """``response_headers`` minus encoding/length headers that no longer match the body."""
        return {k: v for k, v in self.response_headers.items() if k not in _ENCODING_HEADERS}


def load_exchanges(recorded_dir: Path | None = None) -> list[RecordedExchange]:
    """Every ``POST .../images/generations`` exchange in every file under ``recorded/``.

    Sorted by file path, then interaction index. Raises :class:`FileNotFoundError` when the
    folder is absent and :class:`ConformanceFormatError` for files it cannot interpret (or a
    recording file with no image-generation exchange, or an ``index.json`` entry with no file).
    ``recorded_dir`` defaults to :data:`RECORDED_DIR`; results are cached per directory.
    """
    return list(_load_all((recorded_dir or RECORDED_DIR).resolve()))


def exchange(source: str) -> RecordedExchange:
    """The exchange whose ``source`` is exactly ``source`` (e.g. ``"dir/file.yaml#0"``)."""
    for ex in _load_all(RECORDED_DIR):
        if ex.source == source:
            return ex
    raise KeyError(source)


def ruby_vcr_interaction(source: str) -> dict[str, Any]:
    """Interaction ``k`` of a Ruby VCR file as recorded (``"dir/file.yml#k"``), including the
    ones :func:`load_exchanges` skips (ruby_llm's ``GET`` of the image it was given)."""
    rel, index = source.rsplit("#", 1)
    data = _yaml_load((RECORDED_DIR / rel).read_text(encoding="utf-8"))
    interaction = data["http_interactions"][int(index)]
    if not isinstance(interaction, dict):
        raise ConformanceFormatError(f"{source}: interaction is not a mapping")
    return interaction


# --------------------------------------------------------------------------------------------
# Implementation
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _load_all(recorded_dir: Path) -> tuple[RecordedExchange, ...]:
    if not recorded_dir.is_dir():
        raise FileNotFoundError(f"recorded exchanges not found: {recorded_dir}")
    index = _read_index(recorded_dir)
    seen: set[str] = set()
    out: list[RecordedExchange] = []
    for path in sorted(p for p in recorded_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(recorded_dir).as_posix()
        if _is_metadata(rel):
            continue
        seen.add(rel)
        exchanges = _load_file(path, rel, index.get(rel, {}))
        if not exchanges:
            raise ConformanceFormatError(f"{rel}: no POST {_IMAGES_PATH_SUFFIX} exchange found")
        out.extend(exchanges)
    missing = sorted(set(index) - seen)
    if missing:
        raise ConformanceFormatError(f"{_INDEX_NAME} lists files that are not on disk: {missing}")
    return tuple(out)


def _is_metadata(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return rel == _INDEX_NAME or name.startswith(".") or name.lower().endswith(".md")


def _read_index(recorded_dir: Path) -> dict[str, dict[str, Any]]:
    path = recorded_dir / _INDEX_NAME
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ConformanceFormatError(f"{_INDEX_NAME}: expected a JSON list")
    entries: dict[str, dict[str, Any]] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("file"), str):
            raise ConformanceFormatError(f"{_INDEX_NAME}: entry without a 'file': {item!r}")
        entries[item["file"]] = item
    return entries


def _load_file(path: Path, rel: str, index_entry: Mapping[str, Any]) -> list[RecordedExchange]:
    suffix = path.suffix.lower()
    data: Any
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
    elif suffix in {".yml", ".yaml"}:
        data = _yaml_load(path.read_text(encoding="utf-8"))
    else:
        raise ConformanceFormatError(f"{rel}: unsupported file type {suffix!r}")

    fmt = _detect_format(data, suffix, index_entry.get("format"))
    if fmt is None:
        raise ConformanceFormatError(
            f"{rel}: unrecognised recording format (top-level keys: "
            f"{sorted(data) if isinstance(data, dict) else type(data).__name__}); "
            "teach tests/conformance_data.py to read it"
        )
    declared = index_entry.get("format")
    if declared is not None and declared != fmt:
        raise ConformanceFormatError(f"{rel}: {_INDEX_NAME} says {declared!r}, content is {fmt!r}")

    if fmt == "openai-dotnet-session":
        return list(_from_dotnet(data, rel))
    if fmt == "ruby-vcr":
        return list(_from_vcr(data["http_interactions"], rel, fmt))
    if fmt == "vcrpy":
        return list(_from_vcr(data["interactions"], rel, fmt))
    if fmt == "azure-spec-example":
        return list(_from_azure_example(data, rel))
    return [_from_body_only(data, path.read_bytes(), rel, index_entry)]


def _detect_format(data: Any, suffix: str, declared: Any) -> Format | None:
    if not isinstance(data, dict):
        return None
    if suffix == ".json":
        if isinstance(data.get("Entries"), list):
            return "openai-dotnet-session"
        if isinstance(data.get("parameters"), dict) and isinstance(data.get("responses"), dict):
            return "azure-spec-example"
        # A bare body carries no marker of its own; trust only an explicit index.json entry.
        if declared == "body-only-fixture" and ("error" in data or "data" in data):
            return "body-only-fixture"
        return None
    if isinstance(data.get("http_interactions"), list):
        return "ruby-vcr"
    if isinstance(data.get("interactions"), list):
        return "vcrpy"
    return None


# ---- YAML ----------------------------------------------------------------------------------


def _construct_ruby_binary(loader: Any, node: Any) -> bytes:
    return base64.b64decode(loader.construct_scalar(node))


@functools.cache
def _yaml_loader() -> Any:
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    # Created with type() so the module stays clean under mypy's disallow_subclassing_any
    # (PyYAML ships without stubs here); the global SafeLoader is left untouched.
    loader: Any = type("_ConformanceLoader", (base,), {})
    loader.add_constructor("!binary", _construct_ruby_binary)  # Ruby VCR's base64 tag
    return loader


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_yaml_loader())  # SafeLoader subclass: safe


# ---- shared helpers -------------------------------------------------------------------------


def _to_bytes(value: Any, where: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (dict, list)):
        return json.dumps(value).encode("utf-8")
    raise ConformanceFormatError(f"{where}: unexpected body type {type(value).__name__}")


def _decode_body(raw: bytes) -> tuple[bytes, bool]:
    if raw.startswith(_GZIP_MAGIC):
        return gzip.decompress(raw), True
    return raw, False


def _request_json(value: Any, where: str) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(_to_bytes(value, where))
    except ValueError as exc:
        raise ConformanceFormatError(f"{where}: request body is not JSON") from exc
    if not isinstance(parsed, dict):
        raise ConformanceFormatError(f"{where}: request body is not a JSON object")
    return parsed


def _headers(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConformanceFormatError(f"{where}: headers are not a mapping")
    out: dict[str, str] = {}
    for name, value in raw.items():
        first = value[0] if isinstance(value, list) and value else value
        if isinstance(first, list):  # empty list
            continue
        out.setdefault(str(name).lower(), str(first))
    return out


def _model_of(body: dict[str, Any] | None) -> str | None:
    model = body.get("model") if body is not None else None
    return model if isinstance(model, str) else None


def _is_images_post(method: Any, uri: Any) -> bool:
    if not isinstance(method, str) or not isinstance(uri, str):
        return False
    path = uri.split("?", 1)[0].rstrip("/")
    return method.upper() == "POST" and path.endswith(_IMAGES_PATH_SUFFIX)


def _make(
    *,
    source: str,
    fmt: Format,
    request_body: dict[str, Any] | None,
    status: Any,
    headers: dict[str, str],
    raw_body: bytes,
    uri: str | None,
) -> RecordedExchange:
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool):
        raise ConformanceFormatError(f"{source}: missing or non-integer status {status!r}")
    body, was_gzip = _decode_body(raw_body)
    return RecordedExchange(
        source=source,
        format=fmt,
        model=_model_of(request_body),
        request_body=request_body,
        status=status,
        response_headers=headers,
        response_body=body,
        uri=uri,
        body_was_gzip=was_gzip,
    )


# ---- per-format readers ---------------------------------------------------------------------


def _from_dotnet(data: dict[str, Any], rel: str) -> Iterator[RecordedExchange]:
    for k, entry in enumerate(data["Entries"]):
        source = f"{rel}#{k}"
        if not isinstance(entry, dict):
            raise ConformanceFormatError(f"{source}: entry is not an object")
        if not _is_images_post(entry.get("RequestMethod"), entry.get("RequestUri")):
            continue
        yield _make(
            source=source,
            fmt="openai-dotnet-session",
            request_body=_request_json(entry.get("RequestBody"), source),
            status=entry.get("StatusCode"),
            headers=_headers(entry.get("ResponseHeaders"), source),
            raw_body=_to_bytes(entry.get("ResponseBody"), source),
            uri=entry["RequestUri"],
        )


def _vcr_body(container: Any) -> Any:
    """``body: {string: ...}`` (VCR / vcrpy) or ``body: "..."`` (vcrpy request)."""
    if isinstance(container, dict):
        return container.get("string")
    return container


def _from_vcr(interactions: list[Any], rel: str, fmt: Format) -> Iterator[RecordedExchange]:
    for k, inter in enumerate(interactions):
        source = f"{rel}#{k}"
        if not isinstance(inter, dict):
            raise ConformanceFormatError(f"{source}: interaction is not a mapping")
        request = inter.get("request")
        response = inter.get("response")
        if not isinstance(request, dict) or not isinstance(response, dict):
            raise ConformanceFormatError(f"{source}: interaction lacks request/response")
        if not _is_images_post(request.get("method"), request.get("uri")):
            continue
        status_raw = response.get("status")
        status = status_raw.get("code") if isinstance(status_raw, dict) else status_raw
        if status is None:
            status = response.get("status_code")  # older vcrpy cassettes (dd-trace-py)
        if "body" in response:
            raw = _vcr_body(response["body"])
        elif "content" in response:
            raw = response["content"]
        else:
            raise ConformanceFormatError(f"{source}: response has no body/content")
        yield _make(
            source=source,
            fmt=fmt,
            request_body=_request_json(_vcr_body(request.get("body")), source),
            status=status,
            headers=_headers(response.get("headers"), source),
            raw_body=_to_bytes(raw, source),
            uri=request["uri"],
        )


def _from_azure_example(data: dict[str, Any], rel: str) -> Iterator[RecordedExchange]:
    params = data["parameters"]
    body = params.get("body")
    if not isinstance(body, dict) or "prompt" not in body:
        raise ConformanceFormatError(f"{rel}: Azure example is not an image-generation request")
    uri = (
        f"{params.get('endpoint', '{endpoint}')}/openai/deployments/"
        f"{params.get('deployment-id', '{deployment-id}')}/images/generations"
        f"?api-version={params.get('api-version', '')}"
    )
    for k, (status, resp) in enumerate(sorted(data["responses"].items())):
        source = f"{rel}#{k}"
        if not isinstance(resp, dict):
            raise ConformanceFormatError(f"{source}: response is not an object")
        yield _make(
            source=source,
            fmt="azure-spec-example",
            request_body=body,
            status=status,
            headers=_headers(resp.get("headers"), source),
            raw_body=_to_bytes(resp.get("body"), source),
            uri=uri,
        )


def _from_body_only(
    data: dict[str, Any], raw: bytes, rel: str, index_entry: Mapping[str, Any]
) -> RecordedExchange:
    source = f"{rel}#0"
    status = index_entry.get("status")
    if not isinstance(status, int):
        error = data.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, str) and code in _STATUS_BY_ERROR_CODE:
            status = _STATUS_BY_ERROR_CODE[code]
        elif error is None and "data" in data:
            status = 200
        else:
            raise ConformanceFormatError(
                f"{source}: body-only fixture has no status in {_INDEX_NAME} and error code "
                f"{code!r} has no known status; add an integer 'status' to its index entry"
            )
    return _make(
        source=source,
        fmt="body-only-fixture",
        request_body=None,
        status=status,
        headers={},
        raw_body=raw,
        uri=None,
    )

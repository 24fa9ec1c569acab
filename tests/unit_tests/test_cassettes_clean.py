"""Every committed cassette is free of credentials and of full-size images, and reads as text.

Inspects every request and response of every ``cassettes/**/*.yaml`` file, including any
base64 (``!!binary``) body that a plain ``grep`` would not see into, and checks the format
``tests/readable_yaml.py`` writes: plain YAML (no gzip), JSON bodies as indented text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CASSETTE_DIR

CASSETTES = sorted(CASSETTE_DIR.rglob("*.yaml"))
MAX_BODY_BYTES = 20 * 1024
"""Base64 images are shrunk to 1x1 stand-ins when recorded (``tests/conftest.py``)."""

CREDENTIAL_HEADERS = {"authorization", "api-key", "x-api-key", "openai-organization"}
CREDENTIAL_HEADERS |= {"openai-project", "cookie", "proxy-authorization"}
ACCOUNT_RESPONSE_HEADERS = {"openai-organization", "openai-project", "set-cookie"}
PLACEHOLDER = "PLACEHOLDER"
SECRETS = [
    re.compile(r"sk-(?!PLACEHOLDER\b)[A-Za-z0-9_-]{8,}"),  # OpenAI-style keys
    re.compile(r"Bearer\s+(?!PLACEHOLDER\b)[A-Za-z0-9._~+/-]{8,}"),  # bearer tokens
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}"),  # JWTs (Entra ID tokens)
    re.compile(r"\borg-[A-Za-z0-9]{20,}"),  # real organization ids
]


Interaction = tuple[dict[str, Any], dict[str, Any]]


def _name(path: Path) -> str:
    return path.relative_to(CASSETTE_DIR).as_posix()


def _raw(path: Path) -> str:
    return path.read_bytes().decode("utf-8")  # gzip or other binary fails here


def _interactions(path: Path) -> list[Interaction]:
    """(request, response) pairs of a vcrpy cassette."""
    data = yaml.safe_load(_raw(path))
    assert isinstance(data, dict), f"{_name(path)}: not a cassette"
    return [(i["request"], i["response"]) for i in data["interactions"]]


def _text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, dict):  # response bodies: {"string": ...}
        body = body.get("string")
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:  # image bytes (a recorded download): nothing to read
            return ""
    return str(body)


def _size(body: Any) -> int:
    if isinstance(body, dict):
        body = body.get("string")
    if body is None:
        return 0
    return len(body if isinstance(body, bytes) else str(body).encode())


def _secrets_in(text: str) -> list[str]:
    return [match.group(0) for pattern in SECRETS for match in pattern.finditer(text)]


def test_there_are_cassettes_to_check() -> None:
    assert CASSETTES, f"no cassettes under {CASSETTE_DIR}"
    others = [p for p in CASSETTE_DIR.rglob("*") if p.is_file() and p.suffix != ".yaml"]
    assert not others, f"only plain .yaml cassettes (no gzip): {others}"


IDS = [_name(p) for p in CASSETTES]


@pytest.mark.parametrize("path", CASSETTES, ids=IDS)
def test_cassette_holds_no_credentials(path: Path) -> None:
    assert not _secrets_in(_raw(path)), f"{_name(path)}: secret-like text in the YAML"
    for number, (request, response) in enumerate(_interactions(path)):
        where = f"{_name(path)} interaction {number}"
        for name, values in (request.get("headers") or {}).items():
            if name.lower() in CREDENTIAL_HEADERS:
                assert values == [PLACEHOLDER], f"{where}: request header {name} = {values}"
        for name in response.get("headers") or {}:
            assert name.lower() not in ACCOUNT_RESPONSE_HEADERS, f"{where}: response {name}"
        assert "@" not in request["uri"].split("/")[2], f"{where}: credentials in the URL"
        for part, text in (
            ("request body", _text(request["body"])),
            ("response body", _text(response["body"])),
            ("uri", request["uri"]),
        ):
            found = _secrets_in(text)
            assert not found, f"{where}: secret-like text in the {part}: {found}"


@pytest.mark.parametrize("path", CASSETTES, ids=IDS)
def test_cassette_bodies_are_small(path: Path) -> None:
    for number, (request, response) in enumerate(_interactions(path)):
        where = f"{_name(path)} interaction {number}"
        assert _size(request["body"]) <= MAX_BODY_BYTES, f"{where}: request body too large"
        size = _size(response["body"])
        assert size <= MAX_BODY_BYTES, f"{where}: {size}-byte response body (shrink images)"


def test_checks_catch_what_they_look_for() -> None:
    """The patterns themselves: a leak is caught, placeholders and SAS signatures are not."""
    assert _secrets_in("Authorization: Bearer sk-proj-abcdefghijklmnop")
    assert _secrets_in('{"message": "Incorrect API key provided: sk-abcdefgh1234."}')
    assert _secrets_in("token eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2NvZ25p.sig")
    assert not _secrets_in("Bearer PLACEHOLDER")
    assert not _secrets_in("Incorrect API key provided: sk-*****************0000.")
    assert not _secrets_in("https://host/files/img.png?se=2026-01-01&sig=8voIL30LvPMwJiNk%3D")


def _is_json(text: str) -> bool:
    try:
        return isinstance(json.loads(text), (dict, list))
    except ValueError:
        return False


@pytest.mark.parametrize("path", CASSETTES, ids=IDS)
def test_cassette_bodies_read_as_text(path: Path) -> None:
    """JSON requests and responses are stored as indented JSON text; only image downloads
    may be binary (and those are 1x1 images, see the size check)."""
    for number, (request, response) in enumerate(_interactions(path)):
        where = f"{_name(path)} interaction {number}"
        for part, stored in (("request", request["body"]), ("response", response["body"])):
            body = stored.get("string") if isinstance(stored, dict) else stored
            if isinstance(body, bytes):
                assert body.startswith((b"\x89PNG", b"\xff\xd8\xff", b"RIFF")), (
                    f"{where}: binary {part} body that is not an image"
                )
                continue
            if body and _is_json(body) and len(body) > 2:
                assert body.startswith(("{\n", "[\n")), f"{where}: {part} JSON on one line"

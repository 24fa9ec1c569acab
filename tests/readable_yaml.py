"""A vcrpy serializer that keeps cassettes readable in a diff.

vcrpy's own ``yaml`` serializer already stores text bodies as strings; this one also
pretty-prints JSON bodies (two-space indent, one key per line) and writes every multi-line
string as a YAML literal block, so a reviewer reads the request and the response as JSON.
Binary bodies (a downloaded image) stay ``!!binary``; the recording hooks in
``tests/conftest.py`` shrink images to 1x1 before they get here.

Pretty-printing changes a body's length, so ``Content-Length`` is rewritten to match. Request
matching is unaffected: vcrpy compares JSON request bodies parsed, not byte for byte.

Register it under :data:`NAME` (``vcr.register_serializer(NAME, ReadableYamlSerializer)``).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

NAME = "readable-yaml"
SUFFIX = ".yaml"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (``|``)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def pretty_json(text: str) -> str:
    """``text`` re-indented when it is a JSON object or array, else unchanged."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if not isinstance(parsed, (dict, list)):
        return text
    return json.dumps(parsed, indent=2, ensure_ascii=False)


def _set_length(headers: dict[str, Any], body: str) -> None:
    for name in list(headers):
        if name.lower() == "content-length":
            headers[name] = [str(len(body.encode("utf-8")))]


def _readable(part: dict[str, Any], body_key: str | None) -> None:
    """Pretty-print ``part``'s body in place (``part["body"]`` or ``part["body"][body_key]``)."""
    holder = part.get("body")
    if body_key is not None:
        if not isinstance(holder, dict):
            return
        container, key = holder, body_key
    else:
        container, key = part, "body"
    body = container.get(key)
    if not isinstance(body, str):
        return
    pretty = pretty_json(body)
    if pretty != body:
        container[key] = pretty
        _set_length(part.get("headers") or {}, pretty)


class ReadableYamlSerializer:
    """``serialize``/``deserialize`` as vcrpy expects of a serializer module."""

    @staticmethod
    def serialize(cassette_dict: dict[str, Any]) -> str:
        for interaction in cassette_dict.get("interactions", []):
            _readable(interaction["request"], None)
            _readable(interaction["response"], "string")
        return yaml.dump(
            cassette_dict, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000
        )

    @staticmethod
    def deserialize(cassette_string: str) -> dict[str, Any]:
        data = yaml.safe_load(cassette_string)
        if not isinstance(data, dict):
            raise ValueError("not a vcrpy cassette")
        return data

"""The per-model capability table, rendered from the registry (never written by hand).

:func:`capability_rows` turns profiles into rows of display strings;
:func:`capability_table_markdown` renders them as a Markdown table. ``langchain-imagegen
models`` prints it, and ``scripts/capabilities.py`` keeps the copy in ``docs/coercion.md`` in
step with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from langchain_imagegen.registry import GATEWAY_PROFILE, PROFILES, ImageModelProfile

__all__ = [
    "COLUMNS",
    "capability_rows",
    "capability_table_markdown",
    "default_profiles",
]

COLUMNS: tuple[str, ...] = (
    "model",
    "sizes",
    "default size",
    "qualities",
    "styles",
    "images per request",
    "prompt limit",
    "response_format",
    "output formats",
    "background",
    "revised prompt",
    "shutdown / replacement",
)
_NONE = "—"  # not sent to this model


def default_profiles() -> tuple[ImageModelProfile, ...]:
    """Every built-in profile, then the gateway profile used for unknown names."""
    return (*PROFILES, GATEWAY_PROFILE)


def _listing(values: Sequence[str], default: str | None = None) -> str:
    if not values:
        return _NONE
    text = ", ".join(values)
    return f"{text} (default {default})" if default else text


def _model(profile: ImageModelProfile) -> str:
    if not profile.permissive:
        return profile.name
    return "any other name (gateway)" if profile.name == "gateway" else f"{profile.name} (gateway)"


def _sizes(profile: ImageModelProfile) -> str:
    if profile.size_rule is not None:
        listed = f"; or {', '.join(profile.sizes)}" if profile.sizes else ""
        return profile.size_rule.describe() + listed
    text = _listing(profile.sizes)
    return f"{text}; other WIDTHxHEIGHT sent as given" if profile.permissive else text


def _qualities(profile: ImageModelProfile) -> str:
    text = _listing(profile.qualities, profile.default_quality)
    return f"{text}; other values sent as given" if profile.permissive else text


def _images(profile: ImageModelProfile) -> str:
    per_request = profile.max_images_per_request
    if profile.max_images > per_request:
        return f"{per_request} (up to {profile.max_images} per call, in parallel requests)"
    return str(per_request)


def _response_format(profile: ImageModelProfile) -> str:
    if profile.response_formats:
        return _listing(profile.response_formats)
    return f"{_NONE} (always b64_json)" if profile.always_b64 else _NONE


def _output_formats(profile: ImageModelProfile) -> str:
    text = _listing(profile.output_formats)
    if profile.output_formats and profile.supports_output_compression:
        text += " (+ output_compression for jpeg/webp)"
    return text


def _lifecycle(profile: ImageModelProfile) -> str:
    if profile.shutdown is None:
        return _NONE
    replacement = f" → {profile.replacement}" if profile.replacement else ""
    return f"{profile.shutdown.isoformat()}{replacement}"


def capability_rows(profiles: Iterable[ImageModelProfile]) -> list[dict[str, str]]:
    """One row per profile, keyed by :data:`COLUMNS`, every cell a display string."""
    return [
        {
            "model": _model(p),
            "sizes": _sizes(p),
            "default size": p.default_size or _NONE,
            "qualities": _qualities(p),
            "styles": _listing(p.styles, p.default_style),
            "images per request": _images(p),
            "prompt limit": f"{p.max_prompt_chars:,}",
            "response_format": _response_format(p),
            "output formats": _output_formats(p),
            "background": _listing(p.backgrounds),
            "revised prompt": "yes" if p.returns_revised_prompt else "no",
            "shutdown / replacement": _lifecycle(p),
        }
        for p in profiles
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def capability_table_markdown(profiles: Iterable[ImageModelProfile] | None = None) -> str:
    """The capability table as Markdown (default: :func:`default_profiles`), no trailing newline."""
    rows = capability_rows(default_profiles() if profiles is None else profiles)
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)

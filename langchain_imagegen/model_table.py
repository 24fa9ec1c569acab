"""The per-model capability table, rendered from the registry (never written by hand).

:func:`capability_rows` turns profiles into rows of display strings;
:func:`capability_table_markdown` renders them as a Markdown table. ``langchain-imagegen
models`` prints it, and ``scripts/capabilities.py`` keeps the copy in ``docs/coercion.md`` in
step with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from langchain_imagegen.providers import OPENAI, ProviderProfile
from langchain_imagegen.registry import GATEWAY_PROFILE, PROFILES, ImageModelProfile, OwnParam

__all__ = [
    "COLUMNS",
    "capability_rows",
    "capability_table_markdown",
    "default_profiles",
    "provider_table_markdown",
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


def provider_table_markdown(provider: ProviderProfile) -> str:
    """What the tool knows of ``provider``: where requests go, how they are written, and its
    models' capability table with their own parameters (``models --provider``)."""
    if provider is OPENAI:
        return capability_table_markdown()
    wire = provider.wire
    writes = [f"`{old}` as `{new}`" for old, new in wire.renames]
    if wire.split_size:
        writes.append("`size` as `width` and `height`")
    writes += [
        f"`{field}` {old!r} as {new!r}" for field, pairs in wire.values for old, new in pairs
    ]
    writes += [f"always `{field}: {value}`" for field, value in wire.sends]
    keys = ", ".join(provider.key_env) or _NONE
    profiles = provider.models or (provider.fallback,)
    lines = [
        f"# {provider.title} (provider={provider.name!r})",
        "",
        f"- endpoint: {provider.base_url or '(your server: give base_url)'}"
        f"{provider.generations_path}",
        f"- key: {keys}{'' if provider.key_required else ' (optional)'}",
        f"- written: {'; '.join(writes) or 'as OpenAI'}",
        f"- default model: {provider.default_model}; any other name: as {provider.fallback.name}",
        f"- docs: {provider.docs or _NONE}",
        "",
        capability_table_markdown(profiles),
        "",
        "Own parameters (set by the developer: image_params / --param):",
        "",
    ]
    lines += [
        f"- {profile.name}: {', '.join(_param(p) for p in profile.own_params) or _NONE}"
        for profile in profiles
    ]
    return "\n".join(lines)


def _param(param: OwnParam) -> str:
    if param.choices:
        return f"{param.name} ({'|'.join(param.choices)})"
    bounds = ""
    if param.minimum is not None or param.maximum is not None:
        low = "" if param.minimum is None else f"{param.minimum:g}"
        high = "" if param.maximum is None else f"{param.maximum:g}"
        bounds = f" {low}..{high}"
    return f"{param.name} ({param.kind.__name__}{bounds})"

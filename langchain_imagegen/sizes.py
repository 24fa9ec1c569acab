"""Size decisions: read any spelling of a size and pick the nearest one a model allows.

Pure functions, no I/O. A proposal becomes a :class:`SizeWish` (a shape and, when known, an
area); :func:`nearest_size` picks among a model's enumerated sizes by aspect ratio first and
area second (an enumerated ratio such as ``16:9``, for providers that take only ratios,
matches on aspect alone), or snaps to a rule-based model's grid (gpt-image-2,
docs/models.md#gpt-image-2; width/height providers, docs/providers.md). One solver serves
every provider's convention: the provider writes the chosen size its own way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_imagegen.registry import ImageModelProfile, SizeRule, parse_ratio, parse_wxh

__all__ = ["SizeWish", "nearest_size", "read_size"]

# When only a shape is known ("16:9", "landscape"), aim for about a megapixel: the area of
# every model's default square (1024x1024, docs/models.md).
_DEFAULT_AREA = 1024 * 1024


@dataclass(frozen=True)
class SizeWish:
    """What a proposal asked for: an aspect ratio (w/h) and, if given, a pixel area."""

    aspect: float
    area: float | None = None
    auto: bool = False


_AUTO = SizeWish(aspect=1.0, auto=True)
_WXH_LOOSE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(?:px)?\s*(?:x|\u00d7|\*|by|,)\s*(\d+(?:\.\d+)?)\s*(?:px|pixels)?"
)
_RATIO = re.compile(r"(\d+(?:\.\d+)?)\s*(?::|/|to)\s*(\d+(?:\.\d+)?)")
_SINGLE = re.compile(r"(\d{2,5})\s*(?:px|pixels)?")

# Words for shapes: landscape/portrait follow the GPT image models' 3:2 / 2:3 sizes;
# wide/tall are the common 16:9 / 9:16 video shapes.
_SHAPES: dict[str, float] = {
    "square": 1.0,
    "landscape": 3 / 2,
    "horizontal": 3 / 2,
    "portrait": 2 / 3,
    "vertical": 2 / 3,
    "wide": 16 / 9,
    "widescreen": 16 / 9,
    "panorama": 3.0,
    "panoramic": 3.0,
    "tall": 9 / 16,
}
# Resolution names mean their usual 16:9 frame (1080p = 1920x1080).
_RESOLUTIONS: dict[str, tuple[int, int]] = {
    "480p": (854, 480),
    "sd": (854, 480),
    "720p": (1280, 720),
    "hd": (1280, 720),
    "1080p": (1920, 1080),
    "fhd": (1920, 1080),
    "full hd": (1920, 1080),
    "fullhd": (1920, 1080),
    "1440p": (2560, 1440),
    "2k": (2560, 1440),
    "qhd": (2560, 1440),
    "4k": (3840, 2160),
    "2160p": (3840, 2160),
    "uhd": (3840, 2160),
    "8k": (7680, 4320),
}


def _wish_from_pair(width: float, height: float) -> SizeWish | None:
    if width <= 0 or height <= 0 or not math.isfinite(width * height):
        return None
    return SizeWish(aspect=width / height, area=width * height)


def read_size(value: Any) -> SizeWish | None:
    """Understand a proposed size, or return ``None`` when it means nothing.

    Accepts ``1920x1080`` in any common spelling, ratios (``16:9``), shape words
    (``landscape``), resolution names (``1080p``, ``4k``), a single edge (``1024``),
    ``auto`` and ``{"width": …, "height": …}``.
    """
    if isinstance(value, Mapping):
        width, height = value.get("width"), value.get("height")
        if isinstance(width, int | float) and isinstance(height, int | float):
            return _wish_from_pair(float(width), float(height))
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, int | float):
        return _wish_from_pair(float(value), float(value))
    text = " ".join(value.strip().lower().replace("_", " ").replace("-", " ").split())
    if text in ("auto", "automatic", "default", "any"):
        return _AUTO
    if text in _RESOLUTIONS:
        return _wish_from_pair(*map(float, _RESOLUTIONS[text]))
    if match := _WXH_LOOSE.fullmatch(text):
        return _wish_from_pair(float(match[1]), float(match[2]))
    if match := _RATIO.fullmatch(text):
        ratio = _wish_from_pair(float(match[1]), float(match[2]))
        return None if ratio is None else SizeWish(aspect=ratio.aspect)
    if match := _SINGLE.fullmatch(text):
        return _wish_from_pair(float(match[1]), float(match[1]))
    words = text.split()
    return next((SizeWish(aspect=a) for word, a in _SHAPES.items() if word in words), None)


@dataclass(frozen=True)
class _Shape:
    """One enumerated size: its spelling, aspect (w/h) and pixel area (``None`` for a ratio
    such as ``16:9``, whose provider picks the pixels)."""

    spelling: str
    aspect: float
    area: float | None


def _shapes(profile: ImageModelProfile) -> list[_Shape]:
    shapes = []
    for spelling in profile.sizes:
        if (wxh := parse_wxh(spelling)) is not None and min(wxh) > 0:
            shapes.append(_Shape(spelling, wxh[0] / wxh[1], float(wxh[0] * wxh[1])))
        elif (ratio := parse_ratio(spelling)) is not None:
            shapes.append(_Shape(spelling, ratio, None))
    return shapes


def _distance(shape: _Shape, wish: SizeWish) -> tuple[float, float]:
    """Aspect mismatch first, then area mismatch (none for a ratio), both on a log scale."""
    aspect_error = abs(math.log(shape.aspect / wish.aspect))
    area = shape.area
    area_error = 0.0 if area is None else abs(math.log(area / (wish.area or _DEFAULT_AREA)))
    # Round so that equal ratios (1792x1024 vs 1536x1024 are not equal; 1024x1024 vs
    # 512x512 are) compare equal despite float noise.
    return round(aspect_error, 9), area_error


def nearest_size(profile: ImageModelProfile, wish: SizeWish) -> str | None:
    """The allowed size closest to ``wish``; ``None`` when the model takes no size."""
    if wish.auto:
        return "auto" if "auto" in profile.sizes else profile.default_size
    rule = profile.size_rule
    if rule is not None and wish.area is not None:
        return _snap_to_rule(rule, wish)
    candidates = _shapes(profile)
    best = min(candidates, key=lambda shape: _distance(shape, wish)) if candidates else None
    if rule is not None and (best is None or _distance(best, wish)[0] > 0):
        # A shape without an area and no standard size of that exact shape: the rule's
        # grid at about a megapixel ("landscape" still gets the standard 1536x1024).
        return _snap_to_rule(rule, SizeWish(aspect=wish.aspect, area=_DEFAULT_AREA))
    if best is None:
        return profile.default_size
    return best.spelling


def _snap_to_rule(rule: SizeRule, wish: SizeWish) -> str:
    """Nearest ``WxH`` on the rule's grid: clamp the shape and area into bounds, round
    each edge to the grid, then step inwards until every rule holds."""
    aspect = min(max(wish.aspect, 1 / rule.max_aspect), rule.max_aspect)
    area = min(max(wish.area or _DEFAULT_AREA, rule.min_pixels), rule.max_pixels)
    width, height = math.sqrt(area * aspect), math.sqrt(area / aspect)
    scale = min(1.0, rule.max_edge / max(width, height))
    if rule.max_short_edge is not None:
        scale = min(scale, rule.max_short_edge / min(width, height))
    width, height = width * scale, height * scale
    grid = rule.multiple_of
    w = max(grid, int(width / grid + 0.5) * grid)
    h = max(grid, int(height / grid + 0.5) * grid)
    return _repair(rule, w, h)


def _repair(rule: SizeRule, w: int, h: int) -> str:
    """Rounding can overshoot a bound by one grid step; walk back in at most a few steps."""
    grid = rule.multiple_of
    for _ in range(64):
        if rule.allows(w, h):
            return f"{w}x{h}"
        long_is_w = w >= h
        too_big = w * h > rule.max_pixels or max(w, h) > rule.max_edge
        too_flat = max(w, h) > rule.max_aspect * min(w, h)
        short_too_long = rule.max_short_edge is not None and min(w, h) > rule.max_short_edge
        if short_too_long:
            if long_is_w:
                h -= grid
            else:
                w -= grid
        elif too_big or too_flat:
            if long_is_w:
                w -= grid
            else:
                h -= grid
        elif long_is_w:  # too small: grow the short edge first, it keeps the shape closer
            h += grid
        else:
            w += grid
    msg = f"no size on the grid near {w}x{h}"  # unreachable for sane rules
    raise ValueError(msg)

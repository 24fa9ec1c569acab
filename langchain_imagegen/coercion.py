"""Turn whatever an LLM proposed into valid request bodies for one model, and say what changed.

Pure decisions, no I/O: :func:`coerce_params` reads a :class:`~langchain_imagegen.registry.
ImageModelProfile` and returns the exact JSON bodies to POST (one per HTTP call) plus one
:class:`Adjustment` per change, each with a reason an LLM can act on. A request that is
already valid passes through unchanged, and coercing a coerced request changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.registry import ImageModelProfile, get_profile
from langchain_imagegen.sizes import nearest_size, read_size

__all__ = ["Adjustment", "CoercionResult", "coerce_params"]


@dataclass(frozen=True)
class Adjustment:
    """One change made to what was proposed. ``applied`` is ``None`` when the field was dropped."""

    field: str
    proposed: Any
    applied: Any
    reason: str

    def describe(self) -> str:
        """``field: proposed → applied (reason)`` in one line."""
        applied = "not sent" if self.applied is None else repr(self.applied)
        return f"{self.field}: {self.proposed!r} → {applied} ({self.reason})"


@dataclass(frozen=True)
class CoercionResult:
    """The request bodies to send and the changes made on the way."""

    profile: ImageModelProfile
    requests: tuple[dict[str, Any], ...]
    adjustments: tuple[Adjustment, ...]

    @property
    def images_requested(self) -> int:
        """Images the bodies ask for in total (a body without ``n`` asks for one)."""
        return sum(int(body.get("n", 1)) for body in self.requests)


# --- Synonym tables (lower-case, spaces for - and _) ----------------------------------------


def _synonyms(groups: Mapping[Any, tuple[str, ...]]) -> dict[str, Any]:
    """Invert ``{canonical: (spelling, ...)}`` into ``{spelling: canonical}``."""
    return {word: canonical for canonical, words in groups.items() for word in words}


# Quality ranks: every model's qualities sit on one scale so a value can move across
# families (api-facts §5.3: map standard/hd <-> medium/high; the server does not coerce).
_QUALITY_RANK: dict[str, int] = _synonyms(
    {
        0: ("low", "draft", "fast", "quick", "cheap", "lowest", "min"),
        1: ("standard", "medium", "normal", "regular", "balanced", "mid", "default"),
        2: (
            "hd",
            "high",
            "best",
            "max",
            "maximum",
            "highest",
            "ultra",
            "xhigh",
            "fine",
            "detailed",
            "high quality",
            "high definition",
        ),
    }
)
_AUTO_WORDS = frozenset({"auto", "automatic"})
_STYLES = _synonyms(
    {
        "vivid": (
            "vivid",
            "dramatic",
            "hyper real",
            "hyperreal",
            "hyper realistic",
            "vibrant",
            "surreal",
            "bold",
        ),
        "natural": (
            "natural",
            "realistic",
            "photographic",
            "photo",
            "photorealistic",
            "subdued",
            "muted",
        ),
    }
)
_RESPONSE_FORMATS = _synonyms(
    {"url": ("url", "link"), "b64_json": ("b64 json", "b64", "base64", "b64json", "json")}
)
_OUTPUT_FORMATS = _synonyms(
    {
        "png": ("png", "image/png"),
        "jpeg": ("jpeg", "jpg", "image/jpeg"),
        "webp": ("webp", "image/webp"),
    }
)
_BACKGROUNDS = _synonyms(
    {
        "transparent": ("transparent", "none", "clear", "alpha"),
        "opaque": ("opaque", "solid"),
        "auto": ("auto",),
    }
)
_MODERATIONS = _synonyms(
    {"low": ("low", "relaxed", "lenient"), "auto": ("auto", "default", "standard", "strict")}
)
_NUMBER_WORDS = _synonyms(
    {
        1: ("one", "a", "an", "single"),
        2: ("two", "a couple", "pair", "a pair"),
        3: ("three", "a few", "several"),
        4: ("four",),
        5: ("five",),
        6: ("six",),
        7: ("seven",),
        8: ("eight",),
        9: ("nine",),
        10: ("ten",),
    }
)
_TRANSPARENT_FORMATS = ("png", "webp")  # api-facts §2: transparent needs png or webp
_SIZE_HINT_KEYS = ("aspect_ratio", "width", "height", "resolution")
_NOT_STREAMED = "this tool returns finished images; streaming is not used"


def _norm(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.strip().lower().replace("-", " ").replace("_", " ").split())


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values)


class _Coercer:
    """One coercion: walks the proposal field by field, building a body and adjustments."""

    def __init__(self, profile: ImageModelProfile, max_images: int) -> None:
        self.profile = profile
        self.max_images = max_images
        self.body: dict[str, Any] = {}
        self.adjustments: list[Adjustment] = []

    def adjust(self, field: str, proposed: Any, applied: Any, reason: str) -> None:
        self.adjustments.append(Adjustment(field, proposed, applied, reason))

    def drop(self, field: str, proposed: Any, reason: str) -> None:
        self.adjust(field, proposed, None, reason)

    def keep_or_adjust(self, field: str, proposed: Any, applied: Any, reason: str) -> None:
        """Send ``applied``; record an adjustment only if it differs from the proposal."""
        self.body[field] = applied
        if applied != proposed or type(applied) is not type(proposed):
            self.adjust(field, proposed, applied, reason)

    # --- fields ---------------------------------------------------------------------------

    def prompt(self, value: Any) -> None:
        if value is None or (isinstance(value, str) and not value.strip()):
            msg = "prompt is required: describe the image to generate"
            raise InvalidArgumentError(msg)
        if not isinstance(value, str):
            msg = f"prompt must be text, got {type(value).__name__}"
            raise InvalidArgumentError(msg)
        limit = self.profile.max_prompt_chars
        if len(value) <= limit:
            self.body["prompt"] = value
            return
        cut = value[:limit]
        if not value[limit].isspace() and (space := max(cut.rfind(" "), cut.rfind("\n"))) > 0:
            cut = cut[:space]
        cut = cut.rstrip()
        if not cut:  # leading blanks filled the allowance: never send a blank prompt
            cut = value.strip()[:limit].rstrip()
        self.body["prompt"] = cut
        self.adjust(
            "prompt",
            f"{len(value)} characters",
            f"{len(cut)} characters",
            f"{self.profile.name} accepts at most {limit} characters, so the prompt was cut at "
            f"a word boundary; the text after {cut[-40:]!r} was not sent",
        )

    def size(self, value: Any) -> None:
        profile = self.profile
        if not profile.sizes and profile.size_rule is None:
            self.drop("size", value, f"{profile.name} does not take a size")
            return
        if isinstance(value, str) and profile.accepts_size(value):
            self.body["size"] = value
            return
        wish = read_size(value)
        if wish is not None and profile.permissive and not wish.auto and wish.area is not None:
            width, height = (
                round(math.sqrt(wish.area * wish.aspect)),
                round(math.sqrt(wish.area / wish.aspect)),
            )
            # Edges of 1 to 5 digits (what parse_wxh reads): "0.4x0.4" must not become "0x0",
            # and float rounding keeps absurd 19-digit edges from reading back the same.
            if min(width, height) >= 1 and max(width, height) <= 99_999:
                self.keep_or_adjust("size", value, f"{width}x{height}", "written as WIDTHxHEIGHT")
                return
        applied = None if wish is None else nearest_size(profile, wish)
        allowed = profile.size_rule.describe() if profile.size_rule else _choices(profile.sizes)
        if applied is None:
            applied = profile.default_size
            reason = f"not a size {profile.name} understands; it takes {allowed}"
            if applied is None:
                self.drop("size", value, reason)
                return
            reason += f"; used its default {applied}"
        else:
            reason = f"nearest size {profile.name} supports (it takes {allowed})"
        self.keep_or_adjust("size", value, applied, reason)

    def _ranked(
        self, field: str, value: Any, options: tuple[str, ...], default: str | None
    ) -> None:
        """Quality: the option with the nearest rank on the shared low/medium/high scale."""
        word = _norm(value)
        if word in _AUTO_WORDS:
            applied = "auto" if "auto" in options else default
            self.keep_or_adjust(
                field,
                value,
                applied,
                f"{self.profile.name} spells it 'auto'"
                if applied == "auto"
                else f"{self.profile.name} has no 'auto' {field}; used its default",
            )
            return
        rank = _QUALITY_RANK.get(word or "")
        ranked = [o for o in options if o in _QUALITY_RANK]
        if rank is None or not ranked:
            self.drop(
                field,
                value,
                f"not a {field} {self.profile.name} understands; it takes "
                f"{_choices(options)} (the model's default applies)",
            )
            return
        applied = min(ranked, key=lambda o: (abs(_QUALITY_RANK[o] - rank), -_QUALITY_RANK[o]))
        self.keep_or_adjust(
            field,
            value,
            applied,
            f"{self.profile.name} names this {field} {applied!r} (it takes {_choices(options)})",
        )

    def quality(self, value: Any) -> None:
        options = self.profile.qualities
        if not options:
            self.drop(
                "quality",
                value,
                f"{self.profile.name} does not take quality (the API "
                "rejects it); it has a single quality",
            )
        elif value in options or (self.profile.permissive and isinstance(value, str)):
            self.body["quality"] = value
        else:
            self._ranked("quality", value, options, self.profile.default_quality)

    def _enumerated(
        self,
        field: str,
        value: Any,
        options: tuple[str, ...],
        synonyms: Mapping[str, str],
        missing: str,
    ) -> None:
        """A field with a fixed set of values, spelled in several ways."""
        if not options:
            self.drop(field, value, missing)
            return
        if value in options:
            self.body[field] = value
            return
        applied = synonyms.get(_norm(value) or "")
        if applied not in options:
            self.drop(
                field,
                value,
                f"not a {field} {self.profile.name} takes; it takes "
                f"{_choices(options)} (the model's default applies)",
            )
            return
        self.keep_or_adjust(field, value, applied, f"{self.profile.name} spells it {applied!r}")

    def style(self, value: Any) -> None:
        self._enumerated(
            "style",
            value,
            self.profile.styles,
            _STYLES,
            f"{self.profile.name} has no style parameter; describe the style in the prompt instead",
        )

    def response_format(self, value: Any) -> None:
        reason = (
            f"{self.profile.name} always returns base64 images and rejects response_format"
            if self.profile.always_b64
            else f"{self.profile.name} does not take response_format"
        )
        self._enumerated(
            "response_format", value, self.profile.response_formats, _RESPONSE_FORMATS, reason
        )

    def output_format(self, value: Any) -> None:
        self._enumerated(
            "output_format",
            value,
            self.profile.output_formats,
            _OUTPUT_FORMATS,
            f"{self.profile.name} does not take output_format",
        )

    def background(self, value: Any) -> None:
        self._enumerated(
            "background",
            value,
            self.profile.backgrounds,
            _BACKGROUNDS,
            f"{self.profile.name} does not take background",
        )

    def moderation(self, value: Any) -> None:
        self._enumerated(
            "moderation",
            value,
            self.profile.moderations,
            _MODERATIONS,
            f"{self.profile.name} does not take moderation",
        )

    def output_compression(self, value: Any) -> None:
        if not self.profile.supports_output_compression:
            self.drop(
                "output_compression", value, f"{self.profile.name} does not take output_compression"
            )
            return
        number = _as_int(value)
        if number is None:
            self.drop("output_compression", value, "must be a whole number from 0 to 100")
            return
        self.keep_or_adjust(
            "output_compression",
            value,
            min(max(number, 0), 100),
            "output_compression runs from 0 to 100",
        )

    def user(self, value: Any) -> None:
        if isinstance(value, str):
            self.body["user"] = value
        else:
            self.drop("user", value, "user must be a string")

    def model(self, value: Any) -> None:
        if value != self.profile.name:
            self.adjust(
                "model",
                value,
                self.profile.name,
                f"the model is set by the tool's configuration ({self.profile.name})",
            )

    def not_streamed(self, field: str, value: Any) -> None:
        if value not in (False, 0):
            self.drop(field, value, _NOT_STREAMED)

    # --- cross-field rules ----------------------------------------------------------------

    def fix_transparency(self) -> None:
        """api-facts §2: a transparent background needs png or webp."""
        fmt = self.body.get("output_format")
        if self.body.get("background") == "transparent" and fmt not in (
            None,
            *_TRANSPARENT_FORMATS,
        ):
            self.body["output_format"] = "png"
            self.adjust(
                "output_format",
                fmt,
                "png",
                f"a transparent background needs png or webp, not {fmt}",
            )
        if "output_compression" in self.body and self.body.get("output_format") not in (
            "jpeg",
            "webp",
        ):
            value = self.body.pop("output_compression")
            self.drop(
                "output_compression",
                value,
                "output_compression applies only to jpeg and webp output",
            )

    def count(self, value: Any, present: bool) -> list[int]:
        """How many images per request: clamp to [1, max_images], split by the model's limit."""
        if not present:
            return [0]  # 0: do not send n
        number = _as_int(value)
        if number is None:
            number = _NUMBER_WORDS.get(_norm(value) or "")
        if number is None:
            self.adjust("n", value, 1, "not a number of images; made one")
            number = value = 1  # reported once; the checks below see a plain 1
        limit = self.max_images
        granted = min(max(number, 1), limit)
        if granted != number:
            why = (
                f"at most {limit} images per call"
                if number > limit
                else "at least one image is made"
            )
            self.adjust("n", value, granted, why)
        elif isinstance(value, float | str) and _as_float(value) != granted:
            self.adjust("n", value, granted, "n is a whole number of images")
        per_request = self.profile.max_images_per_request
        if granted <= per_request:
            return [granted]
        calls = -(-granted // per_request)
        counts = [per_request] * (granted // per_request)
        if granted % per_request:
            counts.append(granted % per_request)
        self.adjust(
            "n",
            granted,
            counts[0] if len(set(counts)) == 1 else counts,
            f"{self.profile.name} makes at most {per_request} image(s) per request, so "
            f"the {granted} images are requested in {calls} parallel requests",
        )
        return counts


def _as_float(value: Any) -> float | None:
    """A finite number from an int, float or numeric string; ``None`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _as_int(value: Any) -> int | None:
    """Whole numbers from ints, floats and numeric strings ("4", "4.0", " 4 "), rounded."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _as_float(value)
    return None if number is None else math.floor(number + 0.5)


_FIELDS: dict[str, Callable[[_Coercer, Any], None]] = {
    "size": _Coercer.size,
    "quality": _Coercer.quality,
    "style": _Coercer.style,
    "response_format": _Coercer.response_format,
    "output_format": _Coercer.output_format,
    "output_compression": _Coercer.output_compression,
    "background": _Coercer.background,
    "moderation": _Coercer.moderation,
    "user": _Coercer.user,
    "model": _Coercer.model,
    "stream": lambda c, v: c.not_streamed("stream", v),
    "partial_images": lambda c, v: c.not_streamed("partial_images", v),
}


def coerce_params(
    model: str | ImageModelProfile,
    proposed: Mapping[str, Any],
    *,
    max_images: int | None = None,
) -> CoercionResult:
    """Make ``proposed`` valid for ``model``.

    Returns the JSON bodies exactly as they will be POSTed (one per HTTP call, their image
    counts summing to the images granted) and one :class:`Adjustment` per change.
    ``None`` values mean "not given" (strict tool schemas send null for unused fields).
    ``max_images`` caps the images one call may produce (default: the profile's
    ``max_images``); above the model's per-request limit the images are split over requests.

    Raises:
        InvalidArgumentError: the prompt is missing, blank or not text.
    """
    profile = get_profile(model)
    coercer = _Coercer(profile, max(1, profile.max_images if max_images is None else max_images))
    coercer.body["model"] = profile.name
    coercer.prompt(proposed.get("prompt"))
    size_hint: dict[str, Any] = {}
    for key, value in proposed.items():
        if value is None or key in ("prompt", "n"):
            continue
        handler = _FIELDS.get(key)
        if handler is not None:
            handler(coercer, value)
        elif key in _SIZE_HINT_KEYS:
            size_hint[key] = value
        else:
            coercer.drop(key, value, "not a parameter of the Images API")
    if size_hint:
        _apply_size_hint(coercer, size_hint, proposed.get("size"))
    coercer.fix_transparency()
    counts = coercer.count(proposed.get("n"), proposed.get("n") is not None)
    body = coercer.body
    if counts == [0]:
        requests: tuple[dict[str, Any], ...] = (body,)
    else:
        requests = tuple({**body, "n": count} for count in counts)
    return CoercionResult(profile, requests, tuple(coercer.adjustments))


def _apply_size_hint(coercer: _Coercer, hint: dict[str, Any], size: Any) -> None:
    """LLMs often send ``aspect_ratio`` or ``width``/``height``: not API parameters, but a
    clear wish for a size. Use them when no size was given; report either way."""
    if size is not None:
        for key, value in hint.items():
            coercer.drop(key, value, "not a parameter of the Images API; size was used instead")
        return
    if "width" in hint and "height" in hint:
        wish_value: Any = {"width": _as_int(hint["width"]), "height": _as_int(hint["height"])}
    else:
        wish_value = hint.get("aspect_ratio") or hint.get("resolution")
    before = len(coercer.adjustments)
    if read_size(wish_value) is not None:
        coercer.size(wish_value)
    applied = coercer.body.get("size")
    del coercer.adjustments[before:]  # one record per hint key says it all
    for key, value in hint.items():
        reason = "not a parameter of the Images API"
        reason += f"; used it to choose size {applied}" if applied else "; it was not sent"
        coercer.drop(key, value, reason)

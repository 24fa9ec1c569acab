"""Turn whatever an LLM proposed into valid request bodies for one model, and say what changed.

Pure decisions, no I/O: :func:`coerce_params` reads a :class:`~langchain_imagegen.registry.
ImageModelProfile` and returns the exact JSON bodies to POST (one per HTTP call) plus one
:class:`Adjustment` per change, each with a reason an LLM can act on. A request that is
already valid passes through unchanged, and coercing a coerced request changes nothing.
:func:`coerce_edit_params` does the same for ``POST /v1/images/edits`` (form fields, plus the
image references to upload), with the same field rules. The model's rules, with their public
sources, are listed in ``docs/models.md``.
"""

from __future__ import annotations

import collections
import functools
import json
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_imagegen.errors import InvalidArgumentError
from langchain_imagegen.registry import (
    DEVELOPER_FIELDS,
    EDIT_LLM_FIELDS,
    LLM_FIELDS,
    ImageModelProfile,
    OwnParam,
    get_profile,
    parse_wxh,
)
from langchain_imagegen.sizes import nearest_size, read_size

__all__ = ["Adjustment", "CoercionResult", "EditPlan", "coerce_edit_params", "coerce_params"]


@dataclass(frozen=True)
class Adjustment:
    """One change made to what was proposed. ``applied`` is ``None`` when the field was dropped."""

    field: str
    proposed: Any
    applied: Any
    reason: str

    def describe(self) -> str:
        """``field: proposed → applied (reason)`` in one line; a note on a value sent as
        proposed reads ``field: value (reason)``."""
        if self.applied is None:
            return f"{self.field}: {self.proposed!r} → not sent ({self.reason})"
        if self.is_note:
            return f"{self.field}: {self.proposed!r} ({self.reason})"
        return f"{self.field}: {self.proposed!r} → {self.applied!r} ({self.reason})"

    @property
    def is_note(self) -> bool:
        """Whether the value was sent as proposed and this only says something about it."""
        return self.applied == self.proposed and type(self.applied) is type(self.proposed)


@dataclass(frozen=True)
class CoercionResult:
    """The request bodies to send and the changes made on the way."""

    profile: ImageModelProfile
    requests: tuple[dict[str, Any], ...]
    adjustments: tuple[Adjustment, ...]

    @property
    def images_requested(self) -> int:
        """Images the bodies ask for in total (a body without ``n`` asks for one)."""
        return _images_requested(self.requests)


@dataclass(frozen=True)
class EditPlan:
    """An edit, ready to send: the images and mask to upload (references as the LLM gave
    them, for the caller to resolve), the form fields of each request, and the changes made
    on the way."""

    profile: ImageModelProfile
    images: tuple[str, ...]
    mask: str | None
    requests: tuple[dict[str, Any], ...]
    adjustments: tuple[Adjustment, ...]

    @property
    def images_requested(self) -> int:
        """Images the requests ask for in total (a request without ``n`` asks for one)."""
        return _images_requested(self.requests)


def _images_requested(requests: tuple[dict[str, Any], ...]) -> int:
    return sum(int(body.get("n", 1)) for body in requests)


# --- Synonym tables (lower-case, spaces for - and _) ----------------------------------------


def _synonyms(groups: Mapping[Any, tuple[str, ...]]) -> dict[str, Any]:
    """Invert ``{canonical: (spelling, ...)}`` into ``{spelling: canonical}``."""
    return {word: canonical for canonical, words in groups.items() for word in words}


# Quality ranks: every model's qualities sit on one scale so a value can move across
# families (the API does not map standard/hd <-> medium/high itself, docs/models.md#quality).
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
# input_fidelity: how closely an edit keeps the input images' features; the API default is low.
_FIDELITIES = _synonyms(
    {
        "high": ("high", "strict", "faithful", "exact", "precise", "max", "maximum", "preserve"),
        "low": ("low", "loose", "relaxed", "free", "default", "normal"),
    }
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
_TRANSPARENT_FORMATS = ("png", "webp")  # docs/models.md#gpt-image-1-family
_SIZE_HINT_KEYS = ("aspect_ratio", "width", "height", "resolution")
_NOT_STREAMED = "streaming is the tool's partial_images setting, not a request parameter"
# Image references (handles img_<hex>, links, storage URIs) an LLM may run together in one
# string: whitespace always separates them (no URL holds any), a comma or semicolon only
# where the next reference starts, since links may hold commas (data URLs, image CDNs).
# (Split in two linear passes: one pattern for both backtracks quadratically on long runs.)
_REFERENCE_START = re.compile(r"img_|[A-Za-z][A-Za-z0-9+.-]*://")
_LIST_PUNCTUATION = re.compile(r"([,;])")
_REFERENCE_QUOTES = "\"'`<>"
_REFERENCE_KEYS = ("image_url", "url")  # {"image_url": ...}: the JSON edits API's shape
_REFERENCE_MEANS = {
    "images": "the handles of earlier images (img_ followed by 16 hex digits) or their links",
    "mask": "the handle (img_...) or link of a PNG whose transparent areas mark where to edit",
}
# A prompt made only of whitespace and characters that render as nothing is blank. A match
# stops at the first visible character, so a long prompt is not copied to find that out.
_BLANK = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]*")
_SHOWN_CHARS = 80  # longer strings are reported by length, not quoted
_SHOWN_REFERENCES = 50  # longer lists too


def _norm(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.strip().lower().replace("-", " ").replace("_", " ").split())


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values)


# --- Strings that cannot be sent ------------------------------------------------------------


_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone UTF-16 surrogate: the only kind of ``str`` character UTF-8 cannot encode."""


def _encodable(text: str, replacement: str) -> tuple[str, int]:
    """``text`` with every character UTF-8 cannot encode (lone UTF-16 surrogates, what
    ``json.loads`` makes of a cut emoji escape such as ``"\\ud83e"``) replaced, and how many."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.subn(replacement, text)
    return text, 0


def _sanitised(value: Any, replacement: str) -> tuple[Any, int]:
    """``value`` with every string inside it (keys included) made encodable, and how many
    characters were replaced."""
    if isinstance(value, str):
        return _encodable(value, replacement)
    if isinstance(value, Mapping):
        items = [(_sanitised(k, replacement), _sanitised(v, replacement)) for k, v in value.items()]
        count = sum(k[1] + v[1] for k, v in items)
        return ({k[0]: v[0] for k, v in items} if count else value), count
    if isinstance(value, list | tuple):
        parts = [_sanitised(v, replacement) for v in value]
        count = sum(n for _, n in parts)
        return (type(value)(v for v, _ in parts) if count else value), count
    return value, 0


def _shown(value: Any) -> Any:
    """What an adjustment shows of a value: long strings by their length."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return f"{len(value)} characters"
    return value


class _Coercer:
    """One coercion for one route: walks the proposal field by field, building a body (the
    JSON body or the form fields), the files to upload (``inputs``) and adjustments."""

    def __init__(
        self, profile: ImageModelProfile, max_images: int, route: _Route | None = None
    ) -> None:
        self.profile = profile
        self.max_images = max_images
        self.route = _GENERATION if route is None else route
        self.body: dict[str, Any] = {}
        self.inputs: dict[str, Any] = {}
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

    # --- what goes in ---------------------------------------------------------------------

    def sanitise(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Adjustment]]:
        """``values`` with every string made sendable, and what was changed, by key (reported
        if the value is sent). A key that cannot be sent names no parameter this tool knows,
        so it is dropped."""
        clean: dict[str, Any] = {}
        changes: dict[str, Adjustment] = {}
        for key, value in values.items():
            if value is None:
                continue  # strict tool schemas send null for "not given"
            shown_key, bad_key = _encodable(str(key), "\ufffd")
            if bad_key:
                self.drop(
                    shown_key,
                    _sanitised(value, "\ufffd")[0],
                    "a parameter name with characters that cannot be sent",
                )
                continue
            clean[key], removed = _sanitised(value, "")
            if removed:
                changes[key] = Adjustment(
                    key,
                    _shown(_sanitised(value, "\ufffd")[0]),
                    _shown(clean[key]),
                    f"removed {removed} character{'s' if removed > 1 else ''} that UTF-8 "
                    "cannot encode, such as half of an emoji",
                )
        return clean, changes

    def unsupported(self, field: str) -> str | None:
        """Why this model never gets ``field`` (``None``: it takes the field)."""
        profile, name = self.profile, self.profile.name
        if self.route.takes(profile, field):
            return None
        if (why := self.route.absent.get(field)) is not None:
            return why
        if field == "quality":
            return f"{name} takes no quality; it has a single one"
        if field == "style":
            return f"{name} has no style parameter; describe the style in the prompt instead"
        if field == "response_format" and profile.always_b64:
            return f"{name} always returns base64 images and rejects response_format"
        return f"{name} takes no {field}"

    def refusal(self, key: str, developer: Collection[str]) -> str | None:
        """Why the LLM may not set ``key`` (``None``: it may, or coercion decides later).

        The LLM sets only what its args schema offers (the route's ``llm_fields``, e.g.
        :meth:`ImageModelProfile.llm_fields`) and the developer did not fix (a key the
        developer set to ``None`` is fixed too: it is hidden from the schema and not sent);
        size hints count as ``size``."""
        own = self.profile.own_param(key) is not None
        # A provider's own parameter is never a size hint (xAI's resolution).
        target = "size" if key in _SIZE_HINT_KEYS and not own else key
        if key == "model" or key in _STREAM_FIELDS:
            return None  # never sent from a proposal; their handlers say why
        if target in developer:
            return f"{target} is set by the developer"
        if own:
            return f"only the developer sets {key}"
        # One field asked about, not the model's whole list built per call.
        if target in self.route.llm_fields and self.route.takes(self.profile, target):
            return None
        if (why := self.unsupported(target)) is not None:
            return why if target == key else f"not a parameter of the Images API; {why}"
        if key in DEVELOPER_FIELDS:
            return f"only the developer sets {key}"
        return None  # not an API parameter: dropped as such

    # --- fields ---------------------------------------------------------------------------

    def prompt(self, value: Any) -> None:
        if isinstance(value, str) and _BLANK.fullmatch(value):
            value = None
        if value is None:
            msg = f"prompt is required: {self.route.prompt_asks}"
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
            f"a word boundary; the text after {cut[-40:]!r} was dropped",
        )

    def images(self, value: Any) -> None:
        """The images to edit: references read from a list or a run-together string, each
        sent once, at most as many as the model takes (the first ones)."""
        references = self.references("images", value)
        if not references:
            raise InvalidArgumentError(
                "images is required: pass the handles of earlier images (img_ followed by 16 "
                "hex digits, as the tool reported them) or their links, as a list"
            )
        counts = collections.Counter(references)
        unique = list(counts)
        if len(unique) < len(references):
            repeated = _shown_all([ref for ref, count in counts.items() if count > 1])
            names = repeated if isinstance(repeated, str) else ", ".join(map(str, repeated))
            self.adjust(
                "images",
                _shown_all(references),
                _shown_all(unique),
                f"{names} given more than once; each image is sent once",
            )
        edits = self.profile.edits
        most = 1 if edits is None else edits.max_images
        if len(unique) > most:
            kept = "the first is kept" if most == 1 else f"the first {most} are kept"
            self.adjust(
                "images",
                _shown_all(unique),
                _shown_all(unique[:most]),
                f"{self.profile.name} edits at most {_images(most)} per request; {kept}",
            )
        self.inputs["images"] = tuple(unique[:most])

    def mask(self, value: Any) -> None:
        """One mask reference; an empty one means no mask."""
        references = self.references("mask", value)
        if not references:
            self.drop("mask", value, "empty; without a mask the prompt says where to edit")
            return
        if len(references) > 1:
            self.adjust(
                "mask",
                _shown_all(references),
                _shown(references[0]),
                "an edit takes one mask; the first is kept",
            )
        self.inputs["mask"] = references[0]

    def references(self, field: str, value: Any) -> list[str]:
        """Image references in ``value`` (a string, a list of them, a JSON list, or the JSON
        edits API's ``{"image_url": ...}``), stripped; how they were read is reported."""
        try:
            references = _references(value)
        except TypeError as exc:
            msg = f"{field} must be {_REFERENCE_MEANS[field]}; got {exc}"
            raise InvalidArgumentError(msg) from None
        plain = [value.strip()] if isinstance(value, str) else value
        if not references or (
            isinstance(plain, list | tuple)
            and [ref.strip() if isinstance(ref, str) else ref for ref in plain] == references
        ):
            return references  # none, one, or a list of them: nothing to report
        self.adjust(
            field,
            _shown(value),
            _shown_all(references),
            f"read as {len(references)} image reference{'s' if len(references) != 1 else ''}",
        )
        return references

    def choose_size(self, value: Any) -> tuple[str | None, str]:
        """The size to send for ``value`` and why (``None``: send no size). Records nothing."""
        profile = self.profile
        if isinstance(value, str) and profile.accepts_size(value):
            return value, "a size the model takes"
        wish = read_size(value)
        if wish is not None and profile.permissive and not wish.auto and wish.area is not None:
            width, height = (
                round(math.sqrt(wish.area * wish.aspect)),
                round(math.sqrt(wish.area / wish.aspect)),
            )
            # Edges of 1 to 5 digits (what parse_wxh reads): "0.4x0.4" must not become "0x0",
            # and float rounding keeps absurd 19-digit edges from reading back the same.
            if min(width, height) >= 1 and max(width, height) <= 99_999:
                return f"{width}x{height}", "written as WIDTHxHEIGHT"
        applied = None if wish is None else nearest_size(profile, wish)
        allowed = profile.size_rule.describe() if profile.size_rule else _choices(profile.sizes)
        if applied is not None:
            return applied, f"nearest size {profile.name} supports; it takes {allowed}"
        reason = f"not a size {profile.name} understands; it takes {allowed}"
        if profile.default_size is None:
            return None, reason
        return profile.default_size, f"{reason}; used its default {profile.default_size}"

    def experimental(self, size: str) -> str | None:
        """The vendor's warning for ``size``, if it has one."""
        rule = self.profile.size_rule
        if rule is None or rule.experimental_above is None:  # nothing to warn about
            return None
        parsed = parse_wxh(size)
        if parsed is None or not rule.is_experimental(*parsed):
            return None
        width, height = rule.experimental_above
        return f"OpenAI marks sizes above {width}x{height} as experimental"

    def size(self, value: Any) -> None:
        if (why := self.unsupported("size")) is not None:
            self.drop("size", value, why)
            return
        applied, reason = self.choose_size(value)
        if applied is None:
            self.drop("size", value, reason)
            return
        self.body["size"] = applied
        warning = self.experimental(applied)
        if applied != value:
            self.adjust("size", value, applied, f"{reason}; {warning}" if warning else reason)
        elif warning:
            self.adjust("size", value, applied, f"sent as asked; {warning}")

    def size_hint(self, hint: Mapping[str, Any], size: Any) -> None:
        """LLMs often send ``aspect_ratio`` or ``width``/``height``: not API parameters, but a
        clear wish for a size. Use them when no size was given; one record per hint key."""
        if size is not None:
            for key, value in hint.items():
                self.drop(key, value, "not a parameter of the Images API; size was used instead")
            return
        if "width" in hint and "height" in hint:
            wish: Any = {"width": _as_int(hint["width"]), "height": _as_int(hint["height"])}
        else:
            wish = hint.get("aspect_ratio") or hint.get("resolution")
        applied = self.choose_size(wish)[0] if read_size(wish) is not None else None
        reason = "not a parameter of the Images API"
        if applied is not None:
            self.body["size"] = applied
            reason += f"; used it to choose size {applied}"
        warning = self.experimental(applied) if applied is not None else None
        for key, value in hint.items():
            self.drop(key, value, f"{reason}; {warning}" if warning else reason)
            warning = None  # said once

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
                f"{_choices(options)}, and its default applies",
            )
            return
        applied = min(ranked, key=lambda o: (abs(_QUALITY_RANK[o] - rank), -_QUALITY_RANK[o]))
        self.keep_or_adjust(
            field,
            value,
            applied,
            f"{self.profile.name} names this {field} {applied!r}; it takes {_choices(options)}",
        )

    def quality(self, value: Any) -> None:
        options = self.profile.qualities
        if (why := self.unsupported("quality")) is not None:
            self.drop("quality", value, why)
        elif value in options or (self.profile.permissive and isinstance(value, str)):
            self.body["quality"] = value
        else:
            self._ranked("quality", value, options, self.profile.default_quality)

    def enumerated(self, value: Any, field: str) -> None:
        """A field with a fixed set of values, spelled in several ways."""
        if (why := self.unsupported(field)) is not None:
            self.drop(field, value, why)
            return
        options, synonyms = _ENUMERATED[field](self.profile)
        if value in options:
            self.body[field] = value
            return
        applied = synonyms.get(_norm(value) or "")
        if applied not in options:
            self.drop(
                field,
                value,
                f"not a {field} {self.profile.name} takes; it takes "
                f"{_choices(options)}, and its default applies",
            )
            return
        self.keep_or_adjust(field, value, applied, f"{self.profile.name} spells it {applied!r}")

    def output_compression(self, value: Any) -> None:
        if (why := self.unsupported("output_compression")) is not None:
            self.drop("output_compression", value, why)
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

    def own_param(self, param: OwnParam, value: Any) -> None:
        """A provider's own parameter, as the developer set it: made its JSON type, numbers
        clamped into range, strings checked against the choices."""
        name = param.name
        if param.kind is bool:
            flag = _as_bool(value)
            if flag is None:
                self.drop(name, value, f"{name} must be true or false")
            else:
                self.keep_or_adjust(name, value, flag, f"{name} is true or false")
            return
        if param.kind is str:
            if not isinstance(value, str):
                self.drop(name, value, f"{name} must be a string")
            elif param.choices and value not in param.choices:
                self.drop(name, value, f"{name} is one of {_choices(param.choices)}")
            else:
                self.body[name] = value
            return
        number: float | int | None = _as_int(value) if param.kind is int else _as_float(value)
        if param.kind is float and isinstance(value, int | float) and number is not None:
            number = value  # 3 is a fine float: sent as given, not as 3.0
        kind = "a whole number" if param.kind is int else "a number"
        if number is None:
            self.drop(name, value, f"{name} must be {kind}")
            return
        low, high = param.minimum, param.maximum
        applied = number if low is None else max(number, low)
        applied = applied if high is None else min(applied, high)
        if param.kind is int:
            applied = int(applied)
        reason = f"{name} is {kind}"
        if applied != number:
            reason = f"{name} runs from {_bound(low)} to {_bound(high)}"
        self.keep_or_adjust(name, value, applied, reason)

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
                f"the tool is configured for {self.profile.name}",
            )

    def not_streamed(self, value: Any, field: str) -> None:
        if value not in (False, 0):
            self.drop(field, value, _NOT_STREAMED)

    def stream(self, partial_images: int) -> None:
        """Ask for ``partial_images`` streamed previews, as far as the model streams."""
        if isinstance(partial_images, bool) or not isinstance(partial_images, int):
            raise InvalidArgumentError(
                f"partial_images must be a whole number from 0 to 3, got {partial_images!r}"
            )
        if partial_images <= 0:
            return
        most = self.profile.max_partial_images
        if most == 0:
            self.adjust(
                "partial_images",
                partial_images,
                0,
                f"{self.profile.name} does not stream previews; the finished images come as usual",
            )
            return
        if partial_images > most:
            self.adjust(
                "partial_images",
                partial_images,
                most,
                f"{self.profile.name} streams at most {most} previews per image",
            )
        self.body["stream"] = True
        self.body["partial_images"] = min(partial_images, most)

    # --- cross-field rules ----------------------------------------------------------------

    def fix_transparency(self) -> None:
        """A transparent background needs png or webp (docs/models.md#gpt-image-1-family)."""
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

    def count(self, value: Any) -> list[int] | None:
        """Images per request: clamp to [1, max_images], split by the model's limit.
        ``None`` when no ``n`` was given: then none is sent (the API makes one image)."""
        if value is None:
            return None
        number = _as_int(value)
        if number is None and (word := _NUMBER_WORDS.get(_norm(value) or "")) is not None:
            self.adjust("n", value, word, f"read {value!r} as {word}")
            number = value = word  # reported once; the checks below see the number
        if number is None:
            self.adjust("n", value, 1, "not a number of images; made one")
            number = value = 1
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
        streamed = "stream" in self.body
        per_request = 1 if streamed else self.profile.max_images_per_request
        if granted <= per_request:
            return [granted]
        calls = -(-granted // per_request)
        counts = [per_request] * (granted // per_request)
        if granted % per_request:
            counts.append(granted % per_request)
        why = (
            "a streamed request makes 1 image (stream events carry no image index)"
            if streamed
            else f"{self.profile.name} makes at most {_images(per_request)} per request"
        )
        self.adjust(
            "n",
            granted,
            counts[0] if len(set(counts)) == 1 else counts,
            f"{why}, so the {granted} images are requested in {calls} parallel requests",
        )
        return counts


def _images(count: int) -> str:
    return "1 image" if count == 1 else f"{count} images"


def _shown_all(values: list[str]) -> list[Any] | str:
    """What an adjustment shows of a list of references: a long list by its length."""
    if len(values) > _SHOWN_REFERENCES:
        return f"{len(values)} references"
    return [_shown(value) for value in values]


def _references(value: Any) -> list[str]:
    """The image references in ``value``, in order; ``None`` and empty strings are none.
    Raises ``TypeError`` (naming what was found) for anything that is no reference."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return _references(parsed)
        parts = (
            part.strip(_REFERENCE_QUOTES + ",;") for word in text.split() for part in _split(word)
        )
        return [part for part in parts if part]
    if isinstance(value, Mapping):
        found = [value[key] for key in _REFERENCE_KEYS if isinstance(value.get(key), str)]
        if len(found) != 1 or len(value) != 1:
            raise TypeError(f"an object with keys {', '.join(map(str, value)) or 'none'}")
        return _references(found[0])
    if isinstance(value, list | tuple):
        return [ref for item in value for ref in _references(item)]
    raise TypeError(type(value).__name__)


def _split(word: str) -> list[str]:
    """``word`` (no whitespace) cut at each comma or semicolon that a reference follows."""
    pieces = _LIST_PUNCTUATION.split(word)
    parts = [[pieces[0]]]
    for separator, piece in zip(pieces[1::2], pieces[2::2], strict=True):
        if _REFERENCE_START.match(piece):
            parts.append([piece])
        else:
            parts[-1] += (separator, piece)
    return ["".join(part) for part in parts]


def _as_float(value: Any) -> float | None:
    """A finite number from an int, float or numeric string; ``None`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _bound(limit: float | None) -> str:
    return "any" if limit is None else f"{limit:g}"


def _as_bool(value: Any) -> bool | None:
    """``True``/``False`` from a bool or its usual spellings ("true", "0", "yes")."""
    if isinstance(value, bool):
        return value
    word = str(value) if isinstance(value, int) else _norm(value)
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    return None


def _as_int(value: Any) -> int | None:
    """Whole numbers from ints, floats and numeric strings ("4", "4.0", " 4 "), rounded."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _as_float(value)
    return None if number is None else math.floor(number + 0.5)


# Enumerated fields: the model's options and the spellings read as each option.
_ENUMERATED: dict[str, Callable[[ImageModelProfile], tuple[tuple[str, ...], Mapping[str, str]]]] = {
    "style": lambda p: (p.styles, _STYLES),
    "response_format": lambda p: (p.response_formats, _RESPONSE_FORMATS),
    "output_format": lambda p: (p.output_formats, _OUTPUT_FORMATS),
    "background": lambda p: (p.backgrounds, _BACKGROUNDS),
    "moderation": lambda p: (p.moderations, _MODERATIONS),
    "input_fidelity": lambda p: (p.edits.input_fidelities if p.edits else (), _FIDELITIES),
}
_STREAM_FIELDS = ("stream", "partial_images")
_Handler = Callable[[_Coercer, Any], None]


def _enumerated(*fields: str) -> dict[str, _Handler]:
    return {field: functools.partial(_Coercer.enumerated, field=field) for field in fields}


# Every parameter of POST /v1/images/generations but n (handled last), with its handler.
_FIELDS: dict[str, _Handler] = {
    "prompt": _Coercer.prompt,
    "size": _Coercer.size,
    "quality": _Coercer.quality,
    **_enumerated("style", "response_format", "output_format", "background", "moderation"),
    "output_compression": _Coercer.output_compression,
    "user": _Coercer.user,
    "model": _Coercer.model,
    **{field: functools.partial(_Coercer.not_streamed, field=field) for field in _STREAM_FIELDS},
}
# POST /v1/images/edits: the same, with the images, the mask and input_fidelity; whether a
# model takes style and moderation there is the registry's to say (it does not).
_EDIT_FIELDS: dict[str, _Handler] = {
    **_FIELDS,
    "images": _Coercer.images,
    "mask": _Coercer.mask,
    **_enumerated("input_fidelity"),
}


@dataclass(frozen=True)
class _Route:
    """What one Images API route takes, for one coercion mechanism to serve both."""

    llm_fields: tuple[str, ...]
    """The fields the LLM may set on this route, those a model ``takes`` (its args schema's:
    :meth:`ImageModelProfile.llm_fields`, :meth:`~ImageModelProfile.edit_llm_fields`)."""
    takes: Callable[[ImageModelProfile, str], bool]
    """Whether a model ever gets the parameter on this route."""
    handlers: Mapping[str, _Handler]
    required: tuple[str, ...]
    """Handled first, in this order, given or not (each raises if it must be given)."""
    prompt_asks: str
    absent: Mapping[str, str]
    """Why the route never takes a parameter that other routes have."""


_GENERATION = _Route(
    llm_fields=LLM_FIELDS,
    takes=ImageModelProfile.takes,
    handlers=_FIELDS,
    required=("prompt",),
    prompt_asks="describe the image to generate",
    absent={},
)
_EDITS = _Route(
    llm_fields=EDIT_LLM_FIELDS,
    takes=ImageModelProfile.takes_for_edits,
    handlers=_EDIT_FIELDS,
    required=("prompt", "images"),
    prompt_asks="describe the edit to make",
    absent={
        "style": "image edits take no style; describe the style in the prompt instead",
        "moderation": "image edits take no moderation",
    },
)


def coerce_params(
    model: str | ImageModelProfile,
    proposed: Mapping[str, Any],
    *,
    max_images: int | None = None,
    fixed: Mapping[str, Any] | None = None,
    partial_images: int = 0,
) -> CoercionResult:
    """Make the LLM's ``proposed`` arguments, and the developer's ``fixed`` ones, valid for
    ``model``.

    ``proposed`` may set only what the model's args schema offers the LLM
    (:meth:`~langchain_imagegen.registry.ImageModelProfile.llm_fields`; size hints such as
    ``aspect_ratio`` may choose ``size``); every other key is dropped and reported, so a
    prompt-injected model cannot lower ``moderation`` or set ``user``. ``fixed`` (the tool's
    ``image_params``) may set any API parameter and wins over the proposal; its values are
    coerced and reported the same way. ``None`` values mean "not given" (strict tool
    schemas send null for unused fields). Every string, nested ones included, is made
    sendable as UTF-8 first. ``max_images`` caps the images one call may produce (default:
    the profile's ``max_images``); above the model's per-request limit the images are split
    over requests. ``partial_images`` (1 to the model's ``max_partial_images``) asks for
    streamed previews: each body then carries ``stream`` and ``partial_images`` and one
    image (stream events carry no image index, so several images are several requests); a
    model that does not stream gets no stream fields, and the change is reported.

    Returns the JSON bodies exactly as they will be POSTed (one per HTTP call, their image
    counts summing to the images granted) and one :class:`Adjustment` per change.

    Raises:
        InvalidArgumentError: the prompt is missing, blank or not text.
    """
    profile = get_profile(model)
    coercer, requests = _coerce(
        _GENERATION,
        profile,
        proposed,
        max_images=max_images,
        fixed=fixed,
        partial_images=partial_images,
    )
    return CoercionResult(profile, requests, tuple(coercer.adjustments))


def coerce_edit_params(
    model: str | ImageModelProfile,
    proposed: Mapping[str, Any],
    *,
    max_images: int | None = None,
    fixed: Mapping[str, Any] | None = None,
    partial_images: int = 0,
) -> EditPlan:
    """Make the LLM's ``proposed`` edit arguments, and the developer's ``fixed`` ones, valid
    for ``model`` on ``POST /v1/images/edits``, by the rules of :func:`coerce_params`.

    ``proposed`` may set what the model's edit args schema offers
    (:meth:`~langchain_imagegen.registry.ImageModelProfile.edit_llm_fields`): ``prompt``,
    ``images`` (required: references such as ``img_<16 hex>`` handles, links or storage URIs,
    as a list or one string; a string holding several is split), ``mask`` and the output
    fields; ``input_fidelity`` only where the model takes it. The edits endpoint has no
    ``style`` and no ``moderation``: both are dropped and reported. The images are stripped,
    each sent once, and at most the model's ``edits.max_images`` (the first ones), every
    change reported; resolving and checking the files is the caller's.

    Returns the form fields of each request (no files; ``n`` split and streaming as in
    :func:`coerce_params`), the image references and mask to upload with every request,
    and one :class:`Adjustment` per change.

    Raises:
        InvalidArgumentError: the model cannot edit (the message names those that can), the
            prompt is missing, blank or not text, or no usable image reference was given.
    """
    profile = get_profile(model)
    if (why := profile.cannot_edit()) is not None:
        raise InvalidArgumentError(why)
    coercer, requests = _coerce(
        _EDITS, profile, proposed, max_images=max_images, fixed=fixed, partial_images=partial_images
    )
    return EditPlan(
        profile,
        coercer.inputs["images"],
        coercer.inputs.get("mask"),
        requests,
        tuple(coercer.adjustments),
    )


def _coerce(
    route: _Route,
    profile: ImageModelProfile,
    proposed: Mapping[str, Any],
    *,
    max_images: int | None,
    fixed: Mapping[str, Any] | None,
    partial_images: int,
) -> tuple[_Coercer, tuple[dict[str, Any], ...]]:
    """The one mechanism behind both routes: the coercer (its adjustments and inputs) and the
    request bodies."""
    coercer = _Coercer(
        profile, max(1, profile.max_images if max_images is None else max_images), route
    )
    coercer.body["model"] = profile.name
    fixed = fixed or {}
    developer, developer_changes = coercer.sanitise(fixed)
    proposal, proposal_changes = coercer.sanitise(proposed)
    refusals = {key: coercer.refusal(key, fixed.keys()) for key in proposal}
    taken = {key: value for key, value in proposal.items() if refusals[key] is None}
    values = {**taken, **developer}
    for key in route.required:
        route.handlers[key](coercer, values.get(key))
    size_hint: dict[str, Any] = {}
    # Proposal order first (refused keys reported where they were proposed), then the
    # developer's keys: a key set by both is taken from the developer.
    entries = [
        *((key, value, refusals[key]) for key, value in proposal.items() if key not in developer),
        *((key, value, refusals[key]) for key, value in proposal.items() if key in developer),
        *((key, value, None) for key, value in developer.items()),
    ]
    for key, value, refusal in entries:
        if refusal is not None:
            coercer.drop(key, value, refusal)
        elif key == "n" or key in route.required:
            continue
        elif (handler := route.handlers.get(key)) is not None:
            handler(coercer, value)
        elif (param := profile.own_param(key)) is not None:
            coercer.own_param(param, value)
        elif key in _SIZE_HINT_KEYS:
            size_hint[key] = value
        else:
            coercer.drop(
                key, value, coercer.unsupported(key) or "not a parameter of the Images API"
            )
    if size_hint:
        coercer.size_hint(size_hint, values.get("size"))
    coercer.fix_transparency()
    coercer.stream(partial_images)
    counts = coercer.count(values.get("n"))
    # Sanitising is reported for values that were sent; a dropped value's drop says it all.
    changes = [c for k, c in proposal_changes.items() if k not in developer]
    changes += developer_changes.values()
    if changes:
        sent = {*coercer.body, *coercer.inputs, *(("n",) if counts else ())}
        coercer.adjustments[:0] = [change for change in changes if change.field in sent]
    body = coercer.body
    requests = (body,) if counts is None else tuple({**body, "n": count} for count in counts)
    return coercer, requests

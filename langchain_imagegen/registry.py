"""The request spec as data: one capability profile per model.

Every value below is listed, with its public source, in ``docs/models.md`` (OpenAI's API
reference at openai-openapi commit f85dbe22, OpenAI's deprecations page, Azure's and the
gateways' docs); comments name the section of that page. Nothing here decides anything:
coercion (:mod:`langchain_imagegen.coercion`) and the args schema
(:mod:`langchain_imagegen.schema`) read these profiles.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "DEVELOPER_FIELDS",
    "EDIT_LLM_FIELDS",
    "GATEWAY_PROFILE",
    "LLM_FIELDS",
    "EditRule",
    "ImageModelProfile",
    "ModelRegistry",
    "OwnParam",
    "SizeRule",
    "default_registry",
    "get_profile",
    "register_model",
    "register_profile",
]


# What the LLM may choose, in the order its args schema lists them. The schema
# (:mod:`langchain_imagegen.schema`) builds its fields from :meth:`ImageModelProfile.llm_fields`
# and coercion drops every proposed key outside it, so the two cannot drift.
LLM_FIELDS: tuple[str, ...] = (
    "prompt",
    "size",
    "n",
    "quality",
    "style",
    "background",
    "output_format",
)
# API parameters only the developer sets (``image_params``): never offered to the LLM, so a
# prompt-injected model can neither relax moderation nor spoof the end-user id.
DEVELOPER_FIELDS: tuple[str, ...] = ("moderation", "user", "output_compression", "response_format")
# What the LLM may choose when it edits (POST /v1/images/edits), in schema order: the
# generation fields the edits endpoint also has (it has no style or moderation), the images
# and the mask, and input_fidelity. :meth:`ImageModelProfile.edit_llm_fields` picks a model's.
EDIT_LLM_FIELDS: tuple[str, ...] = (
    "prompt",
    "images",
    "mask",
    "size",
    "n",
    "quality",
    "background",
    "output_format",
    "input_fidelity",
)
_MB = 1024 * 1024


@dataclass(frozen=True)
class SizeRule:
    """Sizes given by rules instead of an enumeration (gpt-image-2, docs/models.md#gpt-image-2).

    Any ``WxH`` is allowed when both edges are multiples of ``multiple_of``, the aspect
    ratio (long edge / short edge) is at most ``max_aspect``, the long edge is at most
    ``max_edge``, the short edge at most ``max_short_edge`` (``None``: no own bound) and the
    pixel count lies in ``[min_pixels, max_pixels]``. Sizes with more pixels than
    ``experimental_above`` (a ``(width, height)``) are allowed but flagged as experimental.
    """

    multiple_of: int = 16
    max_aspect: float = 3.0
    max_edge: int = 3840
    min_pixels: int = 655_360
    max_pixels: int = 8_294_400
    max_short_edge: int | None = None
    experimental_above: tuple[int, int] | None = None

    def allows(self, width: int, height: int) -> bool:
        """Whether ``width x height`` satisfies every rule."""
        long_edge, short_edge = max(width, height), min(width, height)
        return (
            short_edge > 0
            and width % self.multiple_of == 0
            and height % self.multiple_of == 0
            and long_edge <= self.max_edge
            and (self.max_short_edge is None or short_edge <= self.max_short_edge)
            and long_edge <= self.max_aspect * short_edge
            and self.min_pixels <= width * height <= self.max_pixels
        )

    def is_experimental(self, width: int, height: int) -> bool:
        """Whether the vendor marks ``width x height`` as experimental."""
        limit = self.experimental_above
        return limit is not None and width * height > limit[0] * limit[1]

    def describe(self) -> str:
        """One line an LLM can act on."""
        short = (
            f", short edge at most {self.max_short_edge}" if self.max_short_edge is not None else ""
        )
        return (
            f"any WIDTHxHEIGHT with both edges multiples of {self.multiple_of}, aspect ratio "
            f"between 1:{self.max_aspect:g} and {self.max_aspect:g}:1, long edge at most "
            f"{self.max_edge}{short}, {self.min_pixels:,} to {self.max_pixels:,} pixels"
        )


@dataclass(frozen=True)
class EditRule:
    """What a model takes on POST /v1/images/edits (docs/models.md#edits).

    ``max_images`` input images per request (16 for the GPT image models, 1 for dall-e-2),
    each one of ``image_formats`` and smaller than ``max_image_bytes``; dall-e-2 needs a
    ``square`` image. The optional mask is a PNG smaller than ``max_mask_bytes`` with the
    first image's dimensions. ``input_fidelities`` are the ``input_fidelity`` values the model
    takes (empty: it takes none). The API reference says "less than 50MB" and "less than
    4MB" without saying which megabyte; the limits use the larger (MiB) reading, so the tool
    never refuses a file the API would take.
    """

    max_images: int
    image_formats: tuple[str, ...]
    max_image_bytes: int
    square: bool = False
    max_mask_bytes: int = 4 * _MB
    input_fidelities: tuple[str, ...] = ()
    transparent_without_mask: bool = False
    """Without a mask, the image's own transparent areas mark where to edit, so it needs an
    alpha channel (dall-e-2: the API refuses an RGB image, "format must be in ['RGBA', 'LA',
    'L'], got RGB")."""


@dataclass(frozen=True)
class OwnParam:
    """A parameter a provider has beyond OpenAI's (``seed``, ``negative_prompt``,
    ``num_inference_steps``…): only the developer sets it (``image_params``), never the LLM.

    ``kind`` is the JSON type (``int``, ``float``, ``str`` or ``bool``); a number outside
    ``[minimum, maximum]`` is clamped and a string outside ``choices`` (when given) refused,
    each change reported like every other adjustment.
    """

    name: str
    kind: type[int] | type[float] | type[str] | type[bool]
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ImageModelProfile:
    """What one model accepts on ``POST /v1/images/generations``.

    Empty tuples mean "never send this parameter": the model rejects it or lacks it.
    ``name`` is what is sent as ``model``; ``family`` is the profile it was derived from.
    """

    name: str
    family: str
    sizes: tuple[str, ...]
    default_size: str | None
    size_rule: SizeRule | None = None
    qualities: tuple[str, ...] = ()
    default_quality: str | None = None
    styles: tuple[str, ...] = ()
    default_style: str | None = None
    max_images_per_request: int = 10
    max_images: int = 10
    max_prompt_chars: int = 32_000
    response_formats: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = ()
    """The ``output_format`` values it takes, its default first."""
    supports_output_compression: bool = False
    backgrounds: tuple[str, ...] = ()
    moderations: tuple[str, ...] = ()
    returns_revised_prompt: bool = False
    always_b64: bool = False
    max_partial_images: int = 0
    """How many streamed previews (``stream``/``partial_images``) the model can send; 0: it
    does not stream."""
    edits: EditRule | None = None
    """What the model takes on ``POST /v1/images/edits``; ``None``: it cannot edit."""
    shutdown: dt.date | None = None
    replacement: str | None = None
    permissive: bool = False
    """Gateway profile: values the API spec knows pass through unchecked."""
    own_params: tuple[OwnParam, ...] = ()
    """The provider's own parameters this model takes (developer-set only)."""
    never_sends: tuple[str, ...] = ()
    """OpenAI parameters the model's provider refuses or ignores, beyond what the fields
    above already rule out (e.g. ``user`` where the provider takes only a few fields)."""

    def takes(self, field: str) -> bool:
        """Whether this model takes the Images API parameter ``field`` at all (a parameter
        it lacks is never sent to it)."""
        if field in self.never_sends:
            return False
        lacks = _LACKS.get(field)
        return lacks is None or not lacks(self)

    def own_param(self, name: str) -> OwnParam | None:
        """The provider's own parameter ``name``, if this model takes it."""
        return next((param for param in self.own_params if param.name == name), None)

    def llm_fields(self) -> tuple[str, ...]:
        """The :data:`LLM_FIELDS` this model takes: what its args schema offers the LLM."""
        return tuple(name for name in LLM_FIELDS if self.takes(name))

    def takes_for_edits(self, field: str) -> bool:
        """Whether this model takes ``field`` on the edits endpoint (``False`` for every field
        when it cannot edit)."""
        lacks = _EDIT_LACKS.get(field)
        return self.edits is not None and (lacks is None or not lacks(self)) and self.takes(field)

    def edit_llm_fields(self) -> tuple[str, ...]:
        """The :data:`EDIT_LLM_FIELDS` this model takes: what its edit args schema offers the
        LLM (none when it cannot edit)."""
        return tuple(name for name in EDIT_LLM_FIELDS if self.takes_for_edits(name))

    def cannot_edit(self) -> str | None:
        """Why this model cannot edit, in words an LLM can act on (``None``: it can)."""
        if self.edits is not None:
            return None
        editors = ", ".join(p.name for p in PROFILES if p.edits is not None)
        return (
            f"{self.name} cannot edit images; the models that can are {editors} (and their "
            "dated snapshots). Describe the whole new image in a prompt and generate it instead"
        )

    def accepts_size(self, size: str) -> bool:
        """Whether ``size`` is valid as sent (an enumerated value, a ratio such as ``16:9``
        for providers that take ratios, or a ``WxH`` the rule allows)."""
        if size in self.sizes:
            return True
        if self.size_rule is None:
            return False
        parsed = parse_wxh(size)
        return parsed is not None and self.size_rule.allows(*parsed)

    def is_shut_down(self, today: dt.date | None = None) -> bool:
        """Whether OpenAI has shut this model down (gateways may still serve it)."""
        return self.shutdown is not None and (today or dt.date.today()) >= self.shutdown

    def lifecycle_note(self, today: dt.date | None = None) -> str | None:
        """A sentence on OpenAI's shutdown of this model, if one is scheduled
        (docs/models.md#lifecycle)."""
        if self.shutdown is None:
            return None
        use = f"; use {self.replacement}" if self.replacement else ""
        if self.is_shut_down(today):
            return (
                f"{self.name} was shut down by OpenAI on {self.shutdown:%Y-%m-%d}{use} "
                "(gateways may still serve it)"
            )
        return f"{self.name} shuts down at OpenAI on {self.shutdown:%Y-%m-%d}{use}"

    def renamed(self, name: str) -> ImageModelProfile:
        """The same capabilities under another model name (snapshots, aliases, deployments)."""
        return self if name == self.name else dataclasses.replace(self, name=name)


# What each parameter needs in a profile for the model to take it (others it always takes).
_LACKS: dict[str, Callable[[ImageModelProfile], bool]] = {
    "size": lambda p: not p.sizes and p.size_rule is None,
    "quality": lambda p: not p.qualities,
    "style": lambda p: not p.styles,
    "response_format": lambda p: not p.response_formats,
    "output_format": lambda p: not p.output_formats,
    "background": lambda p: not p.backgrounds,
    "moderation": lambda p: not p.moderations,
    "output_compression": lambda p: not p.supports_output_compression,
}

# What the edits endpoint lacks, or needs in a profile, beyond what generation needs: the
# multipart CreateImageEditRequest has no style and no moderation, and input_fidelity only
# for the models that list it (docs/models.md#edits).
_EDIT_LACKS: dict[str, Callable[[ImageModelProfile], bool]] = {
    "style": lambda p: True,
    "moderation": lambda p: True,
    "input_fidelity": lambda p: p.edits is None or not p.edits.input_fidelities,
}

_WXH = re.compile(r"(\d{1,5})x(\d{1,5})")
_RATIO = re.compile(r"(\d{1,3}(?:\.\d{1,2})?):(\d{1,3}(?:\.\d{1,2})?)")


def parse_wxh(size: str) -> tuple[int, int] | None:
    """Parse the canonical ``WxH`` spelling the API uses; anything else is ``None``."""
    match = _WXH.fullmatch(size)
    return (int(match[1]), int(match[2])) if match else None


def parse_ratio(size: str) -> float | None:
    """The aspect (width / height) of a ratio as ratio-only providers spell it (``16:9``,
    ``19.5:9``); anything else is ``None``."""
    match = _RATIO.fullmatch(size)
    if not match or not float(match[2]) or not float(match[1]):
        return None
    return float(match[1]) / float(match[2])


# --- The profiles -------------------------------------------------------------------------

# docs/models.md#edits: the GPT image models edit up to 16 png/webp/jpg images, each less
# than 50MB, with input_fidelity high or low (not gpt-image-1-mini); dall-e-2 edits one
# square png less than 4MB; dall-e-3 cannot edit. Masks: png, less than 4MB.
_GPT_IMAGE_EDITS = EditRule(
    max_images=16,
    image_formats=("png", "webp", "jpeg"),
    max_image_bytes=50 * _MB,
    input_fidelities=("high", "low"),
)

# docs/models.md#gpt-image-1-family: sizes, quality low/medium/high/auto; output_format,
# output_compression, background and moderation are GPT-image only; images always come back
# as b64_json, and the API rejects response_format and style for these models. They stream
# up to 3 partial images (docs/models.md#streaming).
_GPT_IMAGE_1 = ImageModelProfile(
    name="gpt-image-1",
    family="gpt-image-1",
    sizes=("1024x1024", "1536x1024", "1024x1536", "auto"),
    default_size="auto",
    qualities=("low", "medium", "high", "auto"),
    default_quality="auto",
    max_images_per_request=10,
    max_prompt_chars=32_000,
    output_formats=("png", "jpeg", "webp"),
    supports_output_compression=True,
    backgrounds=("transparent", "opaque", "auto"),
    moderations=("low", "auto"),
    always_b64=True,
    max_partial_images=3,
    edits=_GPT_IMAGE_EDITS,
)
# docs/models.md#lifecycle: OpenAI names gpt-image-2.6-* as the successor of the models
# below; no published API reference describes it yet, so the tool points at gpt-image-2.
_GPT_IMAGE_1_SIBLINGS_SHUTDOWN = dt.date(2026, 12, 1)

PROFILES: tuple[ImageModelProfile, ...] = (
    # docs/models.md#dall-e-2: the live API rejects `quality` although the reference lists
    # `standard`; shut down at OpenAI on 2026-05-12, still served by gateways.
    ImageModelProfile(
        name="dall-e-2",
        family="dall-e-2",
        sizes=("256x256", "512x512", "1024x1024"),
        default_size="1024x1024",
        max_images_per_request=10,
        max_prompt_chars=1000,
        response_formats=("url", "b64_json"),
        edits=EditRule(
            max_images=1,
            image_formats=("png",),
            max_image_bytes=4 * _MB,
            square=True,
            transparent_without_mask=True,
        ),
        shutdown=dt.date(2026, 5, 12),
        replacement="gpt-image-2",
    ),
    # docs/models.md#dall-e-3: n=1 only, three sizes, quality standard/hd, style
    # vivid/natural, revised_prompt returned; shut down at OpenAI on 2026-05-12.
    ImageModelProfile(
        name="dall-e-3",
        family="dall-e-3",
        sizes=("1024x1024", "1792x1024", "1024x1792"),
        default_size="1024x1024",
        qualities=("standard", "hd"),
        default_quality="standard",
        styles=("vivid", "natural"),
        default_style="vivid",
        max_images_per_request=1,
        max_prompt_chars=4000,
        response_formats=("url", "b64_json"),
        returns_revised_prompt=True,
        shutdown=dt.date(2026, 5, 12),
        replacement="gpt-image-2",
    ),
    _GPT_IMAGE_1,
    *(
        dataclasses.replace(
            _GPT_IMAGE_1,
            name=name,
            family=name,
            shutdown=_GPT_IMAGE_1_SIBLINGS_SHUTDOWN,
            replacement="gpt-image-2",
            edits=edits,
        )
        for name, edits in (
            # docs/models.md#edits: input_fidelity is "unsupported for gpt-image-1-mini"
            ("gpt-image-1-mini", dataclasses.replace(_GPT_IMAGE_EDITS, input_fidelities=())),
            ("gpt-image-1.5", _GPT_IMAGE_EDITS),
            ("chatgpt-image-latest", _GPT_IMAGE_EDITS),
        )
    ),
    # docs/models.md#gpt-image-2: any WxH by rule. OpenAI's reference says edges multiples of
    # 16, aspect 1:3 to 3:1, "maximum supported resolution is 3840x2160", sizes above
    # 2560x1440 experimental; Azure's docs say 655,360 to 8,294,400 pixels and long edge at
    # most 3840. Until a live answer settles what "3840x2160" bounds, stay inside both
    # readings: long edge <= 3840 AND short edge <= 2160 (max_short_edge=None drops the
    # second). Plus the standard sizes and auto.
    dataclasses.replace(
        _GPT_IMAGE_1,
        name="gpt-image-2",
        family="gpt-image-2",
        size_rule=SizeRule(
            multiple_of=16,
            max_aspect=3.0,
            max_edge=3840,
            max_short_edge=2160,
            min_pixels=655_360,
            max_pixels=8_294_400,
            experimental_above=(2560, 1440),
        ),
    ),
)

# docs/models.md#gateways: unknown model names (Flux, SD, relays, models newer than the
# API reference). Gateways document the DALL-E 3 request format for them; every value the API
# reference knows passes through, plus any WxH size and any quality string (newer models
# add qualities such as xhigh), with the reference's limits (n 1-10, prompt 32000), url or
# b64_json; only keys that are not Images API parameters are dropped. Gateways proxy edits
# too, so it edits like the GPT image models (docs/models.md#edits). Users who know better
# register a profile (edits=None: the model cannot edit) or declare the model `like=` a
# known one.
GATEWAY_PROFILE = ImageModelProfile(
    name="gateway",
    family="gateway",
    sizes=(
        "256x256",
        "512x512",
        "1024x1024",
        "1792x1024",
        "1024x1792",
        "1536x1024",
        "1024x1536",
        "auto",
    ),
    default_size=None,
    qualities=("standard", "hd", "low", "medium", "high", "auto"),
    styles=("vivid", "natural"),
    max_images_per_request=10,
    max_prompt_chars=32_000,
    response_formats=("url", "b64_json"),
    output_formats=("png", "jpeg", "webp"),
    supports_output_compression=True,
    backgrounds=("transparent", "opaque", "auto"),
    moderations=("low", "auto"),
    edits=_GPT_IMAGE_EDITS,
    permissive=True,
)

# Dated snapshots such as gpt-image-2-2026-04-21 or gpt-image-1.5-2025-12-16
# (docs/models.md#model-names).
_SNAPSHOT = re.compile(r"(?P<family>.+)-\d{4}-\d{2}-\d{2}")


class ModelRegistry:
    """Name → profile lookup with snapshots, aliases and user-registered profiles."""

    def __init__(
        self,
        profiles: Iterable[ImageModelProfile] = PROFILES,
        fallback: ImageModelProfile = GATEWAY_PROFILE,
    ) -> None:
        self._profiles: dict[str, ImageModelProfile] = {p.name: p for p in profiles}
        self.fallback = fallback
        """The profile of names it does not know (a provider's default model)."""
        self._cache: dict[str, ImageModelProfile] = {}
        self._lock = threading.Lock()

    def register_profile(self, profile: ImageModelProfile) -> None:
        """Add or replace a profile under ``profile.name``."""
        with self._lock:
            self._profiles[profile.name] = profile
            self._cache.clear()

    def register_model(self, name: str, *, like: str) -> ImageModelProfile:
        """Declare that ``name`` behaves like the known model ``like`` (gateways often serve
        Flux "in the OpenAI dall-e-3 format"), e.g.
        ``register_model("flux-dev", like="dall-e-3")``."""
        base = self.lookup(like)
        if base is None:
            msg = f"unknown model {like!r}; known models: {', '.join(self.known())}"
            raise KeyError(msg)
        profile = base.renamed(name)
        self.register_profile(profile)
        return profile

    def lookup(self, name: str) -> ImageModelProfile | None:
        """The profile registered for ``name`` (exactly, in lower case, or as a dated
        snapshot of a registered name), renamed to ``name``; ``None`` if there is none."""
        key = name.strip()
        known = self._profiles.get(key) or self._profiles.get(key.lower())
        if known is None:
            snapshot = _SNAPSHOT.fullmatch(key.lower())
            known = self._profiles.get(snapshot["family"]) if snapshot else None
        return None if known is None else known.renamed(name)

    def known(self) -> list[str]:
        """Names with a profile of their own."""
        return sorted(self._profiles)

    def get(self, name: str) -> ImageModelProfile:
        """The profile for ``name``; unknown names get :attr:`fallback` (by default the
        permissive gateway profile)."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        profile = self.lookup(name) or self.fallback.renamed(name)
        with self._lock:
            self._cache[name] = profile
        return profile


default_registry = ModelRegistry()


def get_profile(model: str | ImageModelProfile) -> ImageModelProfile:
    """Resolve a model name (or pass a profile through) using the default registry."""
    return model if isinstance(model, ImageModelProfile) else default_registry.get(model)


def register_profile(profile: ImageModelProfile) -> None:
    """Register a custom profile in the default registry."""
    default_registry.register_profile(profile)


def register_model(name: str, *, like: str) -> ImageModelProfile:
    """Declare in the default registry that ``name`` behaves like the known model ``like``."""
    return default_registry.register_model(name, like=like)

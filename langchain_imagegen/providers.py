"""The "OpenAI-compatible" image APIs as data: one :class:`ProviderProfile` per provider.

A provider says where requests go (base URL, route), how they authenticate (header, the
environment variable holding its key), how OpenAI's request body is written in its own
vocabulary (:class:`WireFormat`: ``size`` as ``aspect_ratio``, as ``width``/``height``,
``b64_json`` spelled ``base64``…), and which models it serves (model profiles, as
:mod:`langchain_imagegen.registry` has for OpenAI, with the provider's own parameters).
Everything above works in OpenAI's vocabulary: coercion chooses values the model allows
(ratios for a ratio-only provider, the provider's grid for a width/height one) and the
provider writes them out last. Answers of every shape are read by one lenient parser
(:mod:`langchain_imagegen.response`), errors by one mapping (:mod:`langchain_imagegen.errors`).

Each fact below is listed with its public source in ``docs/providers.md``. Users register
their own providers with :func:`register_provider`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from langchain_imagegen import registry as registry_module
from langchain_imagegen.registry import (
    GATEWAY_PROFILE,
    ImageModelProfile,
    ModelRegistry,
    OwnParam,
    SizeRule,
    parse_wxh,
)

__all__ = [
    "OPENAI",
    "ProviderProfile",
    "WireFormat",
    "get_provider",
    "known_providers",
    "provider_for",
    "provider_for_url",
    "register_provider",
]


@dataclass(frozen=True)
class WireFormat:
    """How a provider writes a request body that coercion built in OpenAI's vocabulary.

    ``renames`` maps OpenAI's field names to the provider's (``size`` → ``aspect_ratio``,
    ``n`` → ``batch_size``); ``values`` rewrites a field's values (``response_format``:
    ``b64_json`` → ``base64``); ``split_size`` writes ``size`` ``WxH`` as integer ``width``
    and ``height``; ``sends`` adds fields the provider needs when the body lacks them
    (``response_format: b64_json`` where the provider's default is not base64).
    """

    renames: tuple[tuple[str, str], ...] = ()
    values: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    split_size: bool = False
    sends: tuple[tuple[str, Any], ...] = ()

    def write(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` as this provider takes it: ``body`` itself in OpenAI's format, else a
        new dict (``body`` is never changed)."""
        if self.is_openai:
            return body
        values = dict(self.values)
        renames = dict(self.renames)
        written: dict[str, Any] = {}
        for key, value in body.items():
            if key == "size" and self.split_size and (wxh := _edges(value)) is not None:
                written["width"], written["height"] = wxh
                continue
            spelled = dict(values.get(key, ()))
            written[renames.get(key, key)] = (
                spelled.get(value, value) if isinstance(value, str) else value
            )
        for key, value in self.sends:
            written.setdefault(key, value)
        return written

    @property
    def is_openai(self) -> bool:
        """Whether bodies go out as coercion built them."""
        return not (self.renames or self.values or self.split_size or self.sends)


def _edges(size: Any) -> tuple[int, int] | None:
    return parse_wxh(size) if isinstance(size, str) else None


@dataclass(frozen=True)
class ProviderProfile:
    """One image API: where it is, how it authenticates, how it writes requests, its models.

    ``base_url`` is ``None`` for servers people run themselves (vLLM-Omni, LocalAI): the
    developer gives it. ``hosts`` are the API hosts that identify the provider in a
    ``base_url``. ``key_env`` names the environment variables read for its key, in order;
    ``key_required`` is ``False`` for servers that run without one. The key goes in
    ``auth_header``: ``Authorization`` sends ``Bearer <key>`` (every built-in provider), any
    other header the key as is (``x-api-key``). ``generations_path`` is
    appended to the base URL (edits, for the models whose profile has them, go to
    ``/images/edits`` beside it). ``models`` are the models the tool knows there; ``default_model``
    is the model used when none is given, and ``fallback`` the profile of a model name the
    tool does not know on this provider.
    """

    name: str
    title: str
    base_url: str | None
    fallback: ImageModelProfile
    default_model: str
    models: tuple[ImageModelProfile, ...] = ()
    hosts: tuple[str, ...] = ()
    key_env: tuple[str, ...] = ()
    key_required: bool = True
    auth_header: str = "Authorization"
    generations_path: str = "/images/generations"
    wire: WireFormat = WireFormat()
    docs: str = ""
    uses_default_registry: bool = False
    """``True`` for OpenAI: its models are the package's default registry (what
    ``register_model`` and ``register_profile`` add to), looked up when a tool is built."""
    _own_registry: ModelRegistry = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        registry = ModelRegistry(self.models, fallback=self.fallback)
        object.__setattr__(self, "_own_registry", registry)

    @property
    def registry(self) -> ModelRegistry:
        """The provider's models by name (snapshots and registered names included; an
        unknown name gets :attr:`fallback`)."""
        return (
            registry_module.default_registry if self.uses_default_registry else self._own_registry
        )

    def profile(self, model: str) -> ImageModelProfile:
        """The profile of ``model`` on this provider."""
        return self.registry.get(model)

    def __deepcopy__(self, memo: dict[int, Any]) -> ProviderProfile:
        return self  # a value: copies of a tool share it, as they share its registry

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_own_registry"]  # holds a lock; rebuilt from the models
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()


# --- OpenAI and Azure: the format everything else is written from ---------------------------

OPENAI = ProviderProfile(
    name="openai",
    title="OpenAI (and gateways that speak its format)",
    base_url="https://api.openai.com/v1",
    fallback=GATEWAY_PROFILE,
    default_model="gpt-image-2",
    hosts=("api.openai.com",),
    key_env=("OPENAI_API_KEY",),
    docs="https://platform.openai.com/docs/api-reference/images",
    uses_default_registry=True,
)
"""OpenAI's own API; its models are the default registry's (``get_profile``)."""

# --- Providers that differ -------------------------------------------------------------------

_XAI_RATIOS = (
    "1:1",
    "16:9",
    "9:16",
    "4:3",
    "3:4",
    "3:2",
    "2:3",
    "2:1",
    "1:2",
    "19.5:9",
    "9:19.5",
    "20:9",
    "9:20",
    "auto",
)
_XAI_IMAGE = ImageModelProfile(
    name="grok-imagine-image",
    family="grok-imagine-image",
    sizes=_XAI_RATIOS,
    default_size=None,
    qualities=("low", "medium", "high"),
    max_images_per_request=10,
    response_formats=("url", "b64_json"),
    returns_revised_prompt=True,
    own_params=(OwnParam("resolution", str, choices=("1k",), description="output resolution"),),
)
XAI = ProviderProfile(
    name="xai",
    title="xAI (Grok Imagine)",
    base_url="https://api.x.ai/v1",
    fallback=_XAI_IMAGE,
    default_model="grok-imagine-image",
    models=(
        _XAI_IMAGE,
        dataclasses.replace(
            _XAI_IMAGE,
            name="grok-imagine-image-pro",
            family="grok-imagine-image-pro",
            own_params=(
                OwnParam("resolution", str, choices=("1k", "2k"), description="resolution"),
            ),
        ),
        # The legacy model takes no size or quality at all.
        dataclasses.replace(
            _XAI_IMAGE,
            name="grok-2-image",
            family="grok-2-image",
            sizes=(),
            qualities=(),
            own_params=(),
        ),
    ),
    hosts=("api.x.ai",),
    key_env=("XAI_API_KEY",),
    wire=WireFormat(renames=(("size", "aspect_ratio"),)),
    docs="https://docs.x.ai/docs/guides/image-generations",
)

_SEED = OwnParam("seed", int, minimum=0, description="random seed, for repeatable images")
_NEGATIVE_PROMPT = OwnParam("negative_prompt", str, description="what the image should not show")
_TOGETHER_IMAGE = ImageModelProfile(
    name="black-forest-labs/FLUX.1-schnell",
    family="together",
    sizes=(),
    default_size=None,
    # Edges 64 to 2048, multiples of 8 as the docs advise.
    size_rule=SizeRule(
        multiple_of=8, max_aspect=32.0, max_edge=2048, min_pixels=64 * 64, max_pixels=2048 * 2048
    ),
    max_images_per_request=4,
    response_formats=("url", "b64_json"),
    output_formats=("jpeg", "png"),
    never_sends=("user",),
    own_params=(
        _SEED,
        _NEGATIVE_PROMPT,
        OwnParam("steps", int, minimum=1, maximum=50, description="inference steps"),
        OwnParam("guidance_scale", float, minimum=0, description="how closely to follow it"),
        OwnParam("disable_safety_checker", bool, description="turn the safety checker off"),
    ),
)
TOGETHER = ProviderProfile(
    name="together",
    title="Together AI",
    base_url="https://api.together.xyz/v1",
    fallback=_TOGETHER_IMAGE,
    default_model="black-forest-labs/FLUX.1-schnell",
    models=(_TOGETHER_IMAGE,),
    hosts=("api.together.xyz", "api.together.ai"),
    key_env=("TOGETHER_API_KEY",),
    wire=WireFormat(split_size=True, values=(("response_format", (("b64_json", "base64"),)),)),
    docs="https://docs.together.ai/reference/post-images-generations",
)

_DEEPINFRA_IMAGE = ImageModelProfile(
    name="black-forest-labs/FLUX-1-schnell",
    family="deepinfra",
    sizes=(),
    default_size="1024x1024",
    size_rule=SizeRule(
        multiple_of=8, max_aspect=32.0, max_edge=2048, min_pixels=64 * 64, max_pixels=2048 * 2048
    ),
    max_images_per_request=10,
    always_b64=True,
    returns_revised_prompt=False,
)
DEEPINFRA = ProviderProfile(
    name="deepinfra",
    title="DeepInfra (OpenAI-compatible route)",
    base_url="https://api.deepinfra.com/v1/openai",
    fallback=_DEEPINFRA_IMAGE,
    default_model="black-forest-labs/FLUX-1-schnell",
    models=(_DEEPINFRA_IMAGE,),
    hosts=("api.deepinfra.com",),
    key_env=("DEEPINFRA_API_KEY", "DEEPINFRA_TOKEN"),
    docs="https://deepinfra.com/docs/openai_api",
)

_GEMINI_IMAGE = ImageModelProfile(
    name="imagen-4.0-generate-001",
    family="gemini",
    sizes=("1024x1024", "896x1280", "1280x896", "768x1408", "1408x768"),
    default_size="1024x1024",
    max_images_per_request=4,
    always_b64=True,
    never_sends=("user",),
)
GEMINI = ProviderProfile(
    name="gemini",
    title="Google Gemini API (OpenAI compatibility)",
    base_url="https://generativelanguage.googleapis.com/v1beta/openai",
    fallback=_GEMINI_IMAGE,
    default_model="imagen-4.0-generate-001",
    models=(_GEMINI_IMAGE,),
    hosts=("generativelanguage.googleapis.com",),
    key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    wire=WireFormat(sends=(("response_format", "b64_json"),)),
    docs="https://ai.google.dev/gemini-api/docs/openai",
)

_OPENROUTER_IMAGE = ImageModelProfile(
    name="google/gemini-2.5-flash-image",
    family="openrouter",
    sizes=("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"),
    default_size=None,
    max_images_per_request=4,
    always_b64=True,
    own_params=(
        _SEED,
        OwnParam("image_size", str, choices=("1K", "2K", "4K"), description="resolution"),
    ),
)
OPENROUTER = ProviderProfile(
    name="openrouter",
    title="OpenRouter (images route)",
    base_url="https://openrouter.ai/api/v1",
    fallback=_OPENROUTER_IMAGE,
    default_model="google/gemini-2.5-flash-image",
    models=(_OPENROUTER_IMAGE,),
    hosts=("openrouter.ai",),
    key_env=("OPENROUTER_API_KEY",),
    generations_path="/images",
    wire=WireFormat(renames=(("size", "aspect_ratio"),)),
    docs="https://openrouter.ai/docs/client-sdks/typescript/sdks/images/README",
)

_VLLM_IMAGE = ImageModelProfile(
    name="vllm-omni",
    family="vllm-omni",
    sizes=(),
    default_size=None,
    size_rule=SizeRule(
        multiple_of=8, max_aspect=4.0, max_edge=4096, min_pixels=64 * 64, max_pixels=4096 * 4096
    ),
    max_images_per_request=10,
    always_b64=True,
    own_params=(
        _SEED,
        _NEGATIVE_PROMPT,
        OwnParam("num_inference_steps", int, minimum=1, maximum=200, description="steps"),
        OwnParam("guidance_scale", float, minimum=0, maximum=20, description="guidance"),
        OwnParam("true_cfg_scale", float, minimum=0, maximum=20, description="true CFG scale"),
    ),
)
VLLM_OMNI = ProviderProfile(
    name="vllm-omni",
    title="vLLM-Omni (self-hosted)",
    base_url=None,
    fallback=_VLLM_IMAGE,
    default_model="vllm-omni",
    key_env=("VLLM_API_KEY",),
    key_required=False,
    docs="https://github.com/vllm-project/vllm-omni/blob/main/docs/serving/image_generation_api.md",
)

_LOCALAI_IMAGE = ImageModelProfile(
    name="stablediffusion",
    family="localai",
    sizes=(),
    default_size="512x512",
    size_rule=SizeRule(
        multiple_of=8, max_aspect=4.0, max_edge=2048, min_pixels=64 * 64, max_pixels=2048 * 2048
    ),
    max_images_per_request=1,
    response_formats=("url", "b64_json"),
    own_params=(
        OwnParam("step", int, minimum=1, description="diffusion steps"),
        OwnParam("mode", int, minimum=0, description="LocalAI's pipeline mode"),
    ),
)
LOCALAI = ProviderProfile(
    name="localai",
    title="LocalAI (self-hosted)",
    base_url=None,
    fallback=_LOCALAI_IMAGE,
    default_model="stablediffusion",
    key_env=("LOCALAI_API_KEY",),
    key_required=False,
    docs="https://localai.io/features/image-generation/",
)

_SILICONFLOW_IMAGE = ImageModelProfile(
    name="Kwai-Kolors/Kolors",
    family="siliconflow",
    sizes=("1024x1024", "960x1280", "768x1024", "720x1440", "720x1280"),
    default_size="1024x1024",
    max_images_per_request=4,
    never_sends=("user",),
    own_params=(
        _SEED,
        _NEGATIVE_PROMPT,
        OwnParam("num_inference_steps", int, minimum=1, maximum=100, description="steps"),
        OwnParam("guidance_scale", float, minimum=0, description="guidance"),
    ),
)
SILICONFLOW = ProviderProfile(
    name="siliconflow",
    title="SiliconFlow",
    base_url="https://api.siliconflow.cn/v1",
    fallback=_SILICONFLOW_IMAGE,
    default_model="Kwai-Kolors/Kolors",
    models=(_SILICONFLOW_IMAGE,),
    hosts=("api.siliconflow.cn", "api.siliconflow.com"),
    key_env=("SILICONFLOW_API_KEY",),
    wire=WireFormat(renames=(("size", "image_size"), ("n", "batch_size"))),
    docs="https://docs.siliconflow.cn/cn/api-reference/images/images-generations",
)

PROVIDERS: tuple[ProviderProfile, ...] = (
    OPENAI,
    XAI,
    TOGETHER,
    DEEPINFRA,
    GEMINI,
    OPENROUTER,
    VLLM_OMNI,
    LOCALAI,
    SILICONFLOW,
)

_lock = threading.Lock()
_providers: dict[str, ProviderProfile] = {p.name: p for p in PROVIDERS}


def register_provider(provider: ProviderProfile) -> None:
    """Add or replace a provider under ``provider.name`` (its hosts then identify it)."""
    with _lock:
        _providers[provider.name] = provider


def known_providers() -> list[str]:
    """The providers' names, the built-in ones first."""
    return list(_providers)


def get_provider(provider: str | ProviderProfile) -> ProviderProfile:
    """The provider called ``provider`` (or the profile itself).

    Raises:
        KeyError: no provider has that name; the message lists those that do.
    """
    if isinstance(provider, ProviderProfile):
        return provider
    found = _providers.get(provider.strip().lower())
    if found is None:
        msg = f"unknown provider {provider!r}; known providers: {', '.join(_providers)}"
        raise KeyError(msg)
    return found


def provider_for(named: str | ProviderProfile | None, base_url: str | None) -> ProviderProfile:
    """The provider a configuration means: the one ``named``, else the one whose API host
    ``base_url`` names, else OpenAI's format.

    Raises:
        KeyError: ``named`` names no provider; the message lists those that do.
    """
    if named is not None:
        return get_provider(named)
    return OPENAI if base_url is None else provider_for_url(base_url)


def provider_for_url(base_url: str) -> ProviderProfile:
    """The provider whose API host ``base_url`` names; OpenAI's format for any other host
    (OpenAI itself, gateways, self-hosted servers)."""
    try:
        host = httpx.URL(base_url.strip()).host.lower()
    except (httpx.InvalidURL, TypeError):
        return OPENAI
    for provider in _all():
        if host in provider.hosts:
            return provider
    return OPENAI


def _all() -> Iterable[ProviderProfile]:
    with _lock:
        return tuple(_providers.values())

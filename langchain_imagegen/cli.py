"""The command line: ``langchain-imagegen generate PROMPT``, ``langchain-imagegen edit
IMAGE... --prompt PROMPT`` and ``langchain-imagegen models``.

Errors are one clear line on stderr, never a traceback, with exit codes a script can rely
on (see :data:`EXIT_CODES`); Ctrl-C stops at once and exits 130. ``--dry-run`` shows the
coerced requests, the adjustments and the estimated cost without a key or the network (an
edit's dry run reads its local files and handles, and describes each file it would upload,
never its bytes).

Money and limits (docs/cost.md) are the tool's fields: ``--max-cost`` is
``max_cost_per_call``, ``--cache FILE`` a ``SqliteImageCache`` (``--regenerate`` bypasses
it), ``--images-per-minute`` and ``--requests-per-second`` its rate limiters. There is no
``--budget``: a budget is shared by many calls, and one run of the command is one call, for
which ``--max-cost`` is the same limit.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from langchain_core.rate_limiters import InMemoryRateLimiter
from pydantic import ValidationError

from langchain_imagegen import errors
from langchain_imagegen.cache import SqliteImageCache
from langchain_imagegen.coercion import Adjustment, CoercionResult, EditPlan
from langchain_imagegen.endpoint import base_url_from_env
from langchain_imagegen.handles import ImageResolver, InputImage
from langchain_imagegen.model_table import capability_table_markdown, provider_table_markdown
from langchain_imagegen.pricing import CostEstimate, default_price_table, estimate_cost, format_usd
from langchain_imagegen.providers import ProviderProfile, known_providers, provider_for
from langchain_imagegen.registry import get_profile
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.storage import is_url
from langchain_imagegen.storage.base import scrub, secret_strings

if TYPE_CHECKING:
    from langchain_imagegen.edit_tool import BaseImageEditTool
    from langchain_imagegen.tool import BaseImageGenerationTool, ImageGenerationTool

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "unexpected error": 1,
    "bad arguments": 2,
    "no API key, key rejected, or no access to the model": 3,
    "request refused (bad request, content policy, billing, unknown model, over budget)": 4,
    "the server or the link failed (rate limit, server error, no connection, unusable answer, "
    "damaged image, an image that could not be downloaded): retry later": 5,
    "could not save the images: check --output-dir (permissions, free space; for a bucket: "
    "its name, the credentials, the storage options, the filesystem's package)": 6,
    "fewer images than asked": 7,
    "interrupted (Ctrl-C)": 130,
}
_EXIT_FOR: tuple[tuple[type[errors.ImageGenError], int], ...] = (
    (errors.InvalidArgumentError, 2),
    (errors.ConfigurationError, 3),
    (errors.AuthenticationError, 3),
    (errors.PermissionDeniedError, 3),
    (errors.StorageError, 6),  # the disk; a damaged or undownloadable image is the server's
    (errors.RateLimitError, 5),
    (errors.InternalServerError, 5),
    (errors.APIConnectionError, 5),
    (errors.MalformedResponseError, 5),  # CorruptImageError included
    (errors.ImageDownloadError, 5),
    (errors.BadRequestError, 4),
    (errors.ModelNotFoundError, 4),
)
_EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _exit_code(error_class: type[errors.ImageGenError]) -> int:
    """The exit code for an error class (the first row of ``_EXIT_FOR`` it belongs to)."""
    return next((code for kind, code in _EXIT_FOR if issubclass(error_class, kind)), 4)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="langchain-imagegen",
        description="Generate and edit images through any OpenAI-compatible Images API.",
        epilog="exit codes: "
        + "; ".join(f"{code} {meaning}" for meaning, code in EXIT_CODES.items()),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generate images from a prompt")
    generate.add_argument("prompt", help="what the images should show")
    _add_model_options(generate)
    generate.add_argument("--style", help="vivid or natural (dall-e-3)")
    _add_call_options(generate, "moderation=low, output_format=webp, output_compression=80")
    edit = commands.add_parser(
        "edit",
        help="edit images: local files, handles (img_...) of earlier images, or links",
        description="Edit images with a prompt (POST /images/edits). An IMAGE or MASK is a "
        "local file, the handle (img_...) of an image saved earlier in --output-dir, or an "
        "http(s) link, which is downloaded.",
    )
    edit.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="an image to edit: a file, a handle (img_...) or a link; several for the models "
        "that combine images (GPT image models take up to 16)",
    )
    edit.add_argument("--prompt", required=True, help="what to change, or the image to make")
    edit.add_argument(
        "--mask",
        metavar="MASK",
        help="a PNG with the first image's dimensions whose transparent areas mark where to "
        "edit (a file, a handle or a link)",
    )
    _add_model_options(edit)
    _add_call_options(edit, "input_fidelity=high, background=transparent, output_format=webp")
    models = commands.add_parser(
        "models",
        help="print the per-model capability table (OpenAI's models, or a provider's)",
    )
    models.add_argument(
        "--provider",
        help=f"a provider's models and how the tool writes requests for it: {_PROVIDER_NAMES}",
    )
    _add_mcp_command(commands)
    return parser


def _add_mcp_command(commands: Any) -> None:
    """``mcp``: the tools as an MCP server (docs/mcp.md), configured as ``generate`` is."""
    mcp = commands.add_parser(
        "mcp",
        help="serve the generation and edit tools to MCP clients (stdio, or --http)",
        description="Serve generate_image (and edit_image, for models that edit) over the Model "
        "Context Protocol: stdio by default, streamable HTTP with --http. Configured like "
        "generate: the options below and OPENAI_API_KEY, OPENAI_BASE_URL. Needs the [mcp] "
        "extra: pip install 'langchain-imagegen[mcp]'.",
    )
    _add_model_options(mcp)
    mcp.add_argument("--style", help="vivid or natural (dall-e-3)")
    _add_call_options(mcp, "moderation=low, output_format=webp", one_call=False)
    mcp.set_defaults(json=False, dry_run=False)
    mcp.add_argument(
        "--http",
        type=_host_port,
        metavar="HOST:PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (HOST defaults "
        "to 127.0.0.1; PORT 0 picks a free one, printed on stderr)",
    )
    mcp.add_argument(
        "--allow-remote",
        action="store_true",
        help="let --http bind to an address other machines reach; the server has no "
        "authentication: put an authenticating proxy in front (docs/mcp.md)",
    )
    mcp.add_argument(
        "--preview-bytes",
        type=_non_negative_int,
        default=262_144,
        metavar="N",
        help="most base64 characters of image previews in one result (%(default)s; 0: "
        "links only). Previews are downscaled with Pillow when it is installed",
    )
    mcp.add_argument(
        "--allow-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory whose images edit_image may read by path (repeatable; default: "
        "only handles, the output dir and links)",
    )


_PROVIDER_NAMES = ", ".join(known_providers())


def _add_model_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--model", help="default: gpt-image-2, or the provider's default model (models --provider)"
    )
    command.add_argument(
        "--provider",
        help=f"the image API behind --base-url when it is not OpenAI's format: {_PROVIDER_NAMES} "
        "(default: known from the base URL's host, else OpenAI's format); its key is read from "
        "its own variable, e.g. XAI_API_KEY (docs/providers.md)",
    )
    command.add_argument("--model-family", help="known model this one behaves like")
    command.add_argument("--size", help="e.g. 1024x1024, 1920x1080, 16:9, portrait")
    command.add_argument("-n", "--n", dest="n", help="how many images (default 1)")
    command.add_argument("--quality", help="e.g. low, medium, high, hd, standard")


def _add_call_options(
    command: argparse.ArgumentParser, param_examples: str, *, one_call: bool = True
) -> None:
    """The options ``generate``, ``edit`` (``one_call``: with ``--json`` and ``--dry-run``)
    and ``mcp`` share after the request fields."""
    command.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"any other Images API parameter, e.g. {param_examples}; fitted to the model "
        "like the others (repeatable)",
    )
    command.add_argument(
        "--extra",
        type=_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter sent as given in every request, never fitted or checked: a gateway's "
        "own, e.g. seed=42, steps=30 (repeatable)",
    )
    command.add_argument(
        "--output-dir",
        default="generated_images",
        help="where images are saved: a directory (%(default)s) or a storage URL such as "
        "s3://bucket/prefix, gs://..., az://... (see docs/storage.md)",
    )
    command.add_argument(
        "--storage-option",
        type=_storage_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to the storage's filesystem (fsspec), e.g. "
        "endpoint_url=http://127.0.0.1:9000, anon=true; values read like --param's and never "
        "printed (repeatable)",
    )
    command.add_argument(
        "--link-expires-in",
        type=_positive_int,
        metavar="SECONDS",
        help="how long signed links to stored images stay valid (default 3600)",
    )
    command.add_argument(
        "--public-base-url",
        metavar="URL",
        help="links are this base joined with the object key, not signed (a public bucket or a "
        "CDN in front of it)",
    )
    command.add_argument("--base-url", help="default: $OPENAI_BASE_URL or OpenAI")
    command.add_argument(
        "--max-images", type=_positive_int, default=10, help="most images per call (%(default)s)"
    )
    command.add_argument(
        "--partial-images",
        type=_partial_images,
        default=0,
        metavar="N",
        help="stream N previews (0 to 3) of each image, saved beside the images and announced "
        "on stderr as they arrive (GPT image models; others report it as not applied)",
    )
    command.add_argument("--download", action="store_true", help="save URL images to disk")
    _add_money_options(command)
    if not one_call:
        return
    command.add_argument("--json", action="store_true", help="print the full result as JSON")
    command.add_argument(
        "--dry-run",
        action="store_true",
        help="print the requests, adjustments and estimated cost, send nothing",
    )


def _add_money_options(command: argparse.ArgumentParser) -> None:
    """Cost, cache and rate limits (docs/cost.md)."""
    command.add_argument(
        "--max-cost",
        type=_usd,
        metavar="USD",
        help="refuse, before sending anything, a call estimated to cost more (exit 4); a dry "
        "run says whether the estimate fits. Needs a published price for the model",
    )
    command.add_argument(
        "--cache",
        metavar="FILE",
        help="answer a request identical to an earlier one from this SQLite file (the images "
        "it saved, no request, no cost); created if missing",
    )
    command.add_argument(
        "--cache-ttl",
        type=_positive_float,
        metavar="SECONDS",
        help="use a cached answer only this long after it was stored (default: while its "
        "images are there)",
    )
    command.add_argument(
        "--regenerate",
        action="store_true",
        help="with --cache: send the request even if the cache holds it, and keep the new answer",
    )
    command.add_argument(
        "--images-per-minute",
        type=_positive_float,
        metavar="N",
        help="send at most N images a minute (the first N at once), waiting as needed",
    )
    command.add_argument(
        "--requests-per-second",
        type=_positive_float,
        metavar="R",
        help="send at most R requests a second (parallel requests of one call included)",
    )


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _whole_number(1)
_non_negative_int = _whole_number(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6, ``:PORT`` for 127.0.0.1)."""
    host, colon, port = text.strip().rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:8000, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _usd(text: str) -> float:
    try:
        value = float(text.strip().removeprefix("$"))
    except ValueError:
        msg = f"expected an amount in USD such as 0.50, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be 0 or more (USD), got {text!r}")
    return value


def _partial_images(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 0, 1, 2 or 3, got {text!r}") from None
    if not 0 <= value <= 3:
        raise argparse.ArgumentTypeError(f"must be 0 to 3 (previews per image), got {value}")
    return value


def _param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``; the value is read as JSON when it is JSON (``80``, ``true``), else text."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def _storage_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` like :func:`_param`, but an error never shows the value: it can be a key."""
    try:
        return _param(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError("expected KEY=VALUE (the value is not shown)") from None


def _operator_params(args: argparse.Namespace) -> dict[str, Any]:
    """Everything set on the command line but the prompt (and an edit's images). A person set
    these, not an LLM: they go to the tool as ``image_params`` (developer-set), so parameters
    the LLM's schema does not offer (``moderation``, ``user``...) are fitted to the model and
    sent, not dropped."""
    fields = ("size", "n", "quality", "style")  # ``edit`` has no --style
    params = {f: value for f in fields if (value := getattr(args, f, None)) is not None}
    params.update(args.param)
    return params


def _whole(value: Any) -> int:
    """``value`` if it is a whole number (a body's ``partial_images``), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class _Progress:
    """What the events say, on stderr. A terminal gets a one-line progress bar (images
    received of requested, a streamed image's previews counting as part of it); every preview
    and every image that starts over is one line, above the bar on a terminal.

    Events of parallel requests come from several threads: one lock keeps each write whole.
    """

    _WIDTH = 20

    def __init__(
        self,
        stream: TextIO,
        plan: CoercionResult | EditPlan,
        scrub: Callable[[str], str] = str,
    ) -> None:
        self.stream, self.scrub = stream, scrub
        self.total = plan.images_requested
        # Previews asked for per request (0: not streamed), for "preview 2/3".
        self.asked = [_whole(body.get("partial_images")) for body in plan.requests]
        self.previews = [0] * len(plan.requests)  # previews of each request's current attempt
        self.done = 0
        self.enabled = stream.isatty()
        self.drawn = 0  # length of the bar now on screen
        self.lock = threading.Lock()

    def __call__(self, stage: str, data: dict[str, Any]) -> None:
        with self.lock:
            index = int(data.get("request_index", 0))
            if stage == "received":
                self.done += int(data.get("images", 0))
                self._count(index, None)
            elif stage == "partial":
                self._count(index, self.previews[index] + 1 if index < len(self.previews) else 0)
                self._line(self._preview_line(index, data))
            elif stage == "restarted":
                self._count(index, 0)
                self._line(self._restart_line(index, data))
            self._draw()

    def _count(self, index: int, previews: int | None) -> None:
        if 0 <= index < len(self.previews):
            self.previews[index] = 0 if previews is None else previews

    def _preview_line(self, index: int, data: dict[str, Any]) -> str:
        number = int(data.get("partial_index", 0)) + 1
        asked = self.asked[index] if 0 <= index < len(self.asked) else 0
        which = f"preview {number}/{asked}" if asked else f"preview {number}"
        if "error" in data:
            return f"{which} of image {index + 1} not saved: {data['error']}"
        return f"{which} of image {index + 1}: {data.get('path') or data.get('uri')}"

    @staticmethod
    def _restart_line(index: int, data: dict[str, Any]) -> str:
        discarded = int(data.get("previews_discarded", 0))
        previews = f"{discarded} preview{'s' if discarded != 1 else ''} discarded"
        attempt = data.get("attempt")
        return (
            f"image {index + 1} starts over (attempt {attempt}, {previews}): "
            f"{data.get('reason', 'the stream failed')}"
        )

    def _line(self, text: str) -> None:
        """One whole line; on a terminal it overwrites the bar, which is drawn again below."""
        text = " ".join(self.scrub(text).split())  # one line, whatever the server said
        if self.enabled:
            self.stream.write("\r" + text.ljust(self.drawn) + "\n")
            self.drawn = 0
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _draw(self) -> None:
        if not (self.enabled and self.total):
            return
        streamed = [
            (n, asked) for n, asked in zip(self.previews, self.asked, strict=True) if asked and n
        ]
        # A streamed image counts as partly there: its previews out of previews + final image.
        part = sum(n / (asked + 1) for n, asked in streamed)
        filled = min(self._WIDTH, round(self._WIDTH * (self.done + part) / self.total))
        bar = "#" * filled + "-" * (self._WIDTH - filled)
        text = f"[{bar}] {self.done}/{self.total} images"
        if streamed:
            count = sum(n for n, _ in streamed)
            text += f", {count} preview{'s' if count != 1 else ''}"
        self.stream.write("\r" + text.ljust(self.drawn))
        self.drawn = len(text)
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            with self.lock:
                self.stream.write("\n")


def _tool_config(args: argparse.Namespace) -> dict[str, Any]:
    """The tool's configuration from the options ``generate`` and ``edit`` share."""
    config: dict[str, Any] = {
        "model": args.model,
        "model_family": args.model_family,
        "provider": args.provider,
        "output_dir": args.output_dir,
        "max_images": args.max_images,
        "download_urls": args.download,
        "image_params": _operator_params(args),
        "extra_body": dict(args.extra),
        "partial_images": args.partial_images,
    }
    if args.base_url:
        config["base_url"] = args.base_url
    if args.storage_option:
        config["storage_options"] = dict(args.storage_option)
    if args.link_expires_in is not None:
        config["link_expires_in"] = args.link_expires_in
    if args.public_base_url:
        config["public_base_url"] = args.public_base_url
    return {**config, **_money_config(args)}


def _money_config(args: argparse.Namespace) -> dict[str, Any]:
    """The tool fields of the cost, cache and rate-limit options. A dry run gets the cap (it
    says whether the estimate fits) but no cache file and no limiter: it sends nothing."""
    for option, given in (("--regenerate", args.regenerate), ("--cache-ttl", args.cache_ttl)):
        if given and not args.cache:
            msg = f"{option} is about the cache: give --cache FILE with it, or drop it"
            raise errors.InvalidArgumentError(msg)
    if args.max_cost is not None and default_price_table().get(args.model) is None:
        raise errors.InvalidArgumentError(_unpriced(args.model, "--max-cost cannot check it"))
    config: dict[str, Any] = {"max_cost_per_call": args.max_cost}
    if args.dry_run:
        return config
    if args.cache:
        try:
            config["cache"] = SqliteImageCache(args.cache)
        except errors.ConfigurationError as error:  # a path the user gave: exit 2, not 3
            raise errors.InvalidArgumentError(f"--cache: {error}") from None
        config["cache_ttl"] = args.cache_ttl
    if args.images_per_minute is not None:
        config["images_per_minute"] = args.images_per_minute
    if args.requests_per_second is not None:
        # One request's worth at a time: the limit holds from the first request on. The
        # limiter refills by elapsed time: a token taken one poll late brings the next one
        # that much closer, so it polls often (10 ms) to keep requests 1/N s apart.
        config["rate_limiter"] = InMemoryRateLimiter(
            requests_per_second=args.requests_per_second,
            check_every_n_seconds=min(0.01, 1 / args.requests_per_second),
        )
    return config


def _unpriced(model: str, consequence: str) -> str:
    return (
        f"there is no published price for {model}, so {consequence} (a gateway's model is "
        "priced by its provider; docs/cost.md#prices lists the models with a price)"
    )


_Tool = TypeVar("_Tool", bound="BaseImageGenerationTool")


def _built(
    tool_class: Callable[..., _Tool], config: dict[str, Any], output_dir: str
) -> tuple[_Tool, list[warnings.WarningMessage]]:
    """The tool, and the warnings its construction gave (printed one line each, after a dry
    run's output is decided, not in Python's format)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return tool_class(**config), caught
        except errors.ConfigurationError as error:
            if not is_url(output_dir):
                raise
            # The store refused the URL (an unknown scheme, its filesystem not installed):
            # --output-dir's exit code, not the API key's.
            raise errors.StorageError(str(error)) from None


def _ready_to_send(
    tool: ImageGenerationTool,
    caught: list[warnings.WarningMessage],
    err: TextIO,
    hint: str = " (--dry-run shows the requests without one)",
) -> None:
    """Print the construction's warnings; refuse to send without a key."""
    err.writelines(f"langchain-imagegen: warning: {warning.message}\n" for warning in caught)
    endpoint = tool.client.endpoint  # its key: the provider's variable or OPENAI_API_KEY
    if endpoint.credential_required and endpoint.auth_kind == "none":
        names = " or ".join(tool.provider_profile.key_env) or "the provider's key"
        raise errors.ConfigurationError(f"no API key: set {names}{hint}")


def _lifecycle_notes(model: str) -> list[str]:
    return [note] if (note := get_profile(model).lifecycle_note()) else []


def _print_result(result: ImageGenerationResult, args: argparse.Namespace, out: TextIO) -> int:
    out.write((result.model_dump_json(indent=2) if args.json else result.to_text()) + "\n")
    return _result_code(result)


def _generate(
    args: argparse.Namespace, out: TextIO, err: TextIO, scrub: Callable[[str], str] = str
) -> int:
    from langchain_imagegen.tool import ImageGenerationTool

    tool, caught = _built(ImageGenerationTool, _tool_config(args), args.output_dir)
    proposal = {"prompt": args.prompt}
    plan = tool.coerce(proposal)
    estimate = _estimate(tool, plan, args)
    if args.dry_run:
        notes = _lifecycle_notes(args.model)
        # As they will be POSTed: in the provider's own vocabulary (aspect_ratio, width...).
        sent = [tool.provider_profile.wire.write(body) for body in plan.requests]
        report = {
            "model": plan.profile.name,
            "requests": sent,
            "adjustments": [dataclasses.asdict(a) for a in plan.adjustments],
            "notes": notes,
            **_estimate_report(estimate, args),
        }
        if args.json:
            out.write(json.dumps(report, indent=2, default=str) + "\n")
        else:
            out.write(f"{len(sent)} request(s) to {plan.profile.name}:\n")
            out.writelines(f"  {json.dumps(body)}\n" for body in sent)
            _print_adjustments(plan.adjustments, notes, out)
            _print_estimate(estimate, args, out)
        return 0
    _ready_to_send(tool, caught, err)
    progress = _Progress(err, plan, scrub)
    try:
        result: ImageGenerationResult = tool.generate(
            proposal, on_event=progress, regenerate=args.regenerate
        )
    finally:
        progress.finish()
        tool.close()
    return _print_result(result, args, out)


def _print_adjustments(
    adjustments: Sequence[Adjustment], notes: Sequence[str], out: TextIO
) -> None:
    out.write("adjustments:\n" if adjustments else "no adjustments\n")
    out.writelines(f"  - {a.describe()}\n" for a in adjustments)
    out.writelines(f"note: {note}\n" for note in notes)


# --- cost ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Estimate:
    """A plan's estimated cost, or why there is none."""

    cost: CostEstimate | None
    why_none: str = ""


def _estimate(
    tool: BaseImageGenerationTool,
    plan: CoercionResult | EditPlan,
    args: argparse.Namespace,
    input_images: int = 0,
) -> _Estimate:
    """The plan's estimated cost, priced as the tool prices it. With ``--max-cost`` an
    estimate is needed: none is a bad argument, before anything is sent."""
    model = plan.profile.name
    try:
        cost = estimate_cost(model, plan.requests, tool.prices, input_images=input_images)
    except ValueError:  # a count sent as given (--extra n=...) that cannot be priced
        cost, why = None, "an n or partial_images sent as given (--extra) is not a count"
    else:
        why = f"no published price for {model}"
        if cost is None and default_price_table().get(model) is not None:
            why += " covers this quality or size"
    if cost is None and args.max_cost is not None:
        raise errors.InvalidArgumentError(
            f"--max-cost cannot check these requests ({why}); drop --max-cost, or see "
            "docs/cost.md#prices for what has a price"
        )
    return _Estimate(cost, "" if cost is not None else why)


def _estimate_report(planned: _Estimate, args: argparse.Namespace) -> dict[str, Any]:
    """A dry run's ``estimate`` (``null``: no price) and ``max_cost`` (``null``: no cap)."""
    estimate, priced = planned.cost, None
    if estimate is not None:
        priced = {  # to the micro-dollar: no float noise (0.10890000000000001)
            "usd": round(estimate.usd, 6),
            "per_request": [round(usd, 6) for usd in estimate.per_request],
            "assumption": estimate.assumption,
        }
    cap = None
    if args.max_cost is not None and estimate is not None:
        cap = {"usd": args.max_cost, "fits": not estimate.usd > args.max_cost}
    return {"estimate": priced, "max_cost": cap}


def _print_estimate(planned: _Estimate, args: argparse.Namespace, out: TextIO) -> None:
    """``estimated cost: about $0.48 (4 requests, about $0.12 each)``, the assumption, and
    whether it fits ``--max-cost``; or why there is no estimate."""
    estimate = planned.cost
    if estimate is None:
        out.write(f"no estimate: {planned.why_none}\n")
        return
    each = estimate.per_request
    line = f"estimated cost: about {format_usd(estimate.usd)}"
    if len(each) > 1 and len(set(each)) == 1:
        line += f" ({len(each)} requests, about {format_usd(each[0])} each)"
    elif len(each) > 1:
        line += f" (per request: {', '.join(format_usd(usd) for usd in each)})"
    out.write(f"{line}\n  assumption: {estimate.assumption}\n")
    if args.max_cost is None:
        return
    cap = format_usd(args.max_cost)
    if estimate.usd > args.max_cost:
        out.write(
            f"  over --max-cost {cap}: sent, the call would be refused before its first "
            "request (exit 4)\n"
        )
    else:
        out.write(f"  within --max-cost {cap}\n")


# --- edit ------------------------------------------------------------------------------------

_HANDLE = re.compile(r"\Aimg_[0-9a-f]{16}\Z", re.IGNORECASE)
_SHA_SHOWN = 16  # hex digits of a file's sha256 a dry run shows (its handle's)


@dataclass(frozen=True)
class _References:
    """The command line's IMAGE and MASK arguments as the edit tool takes them: handles and
    links as given, files as absolute paths, and the directories of those files, which the
    tool may read (``allowed_dirs``): the person at the command line owns them, and named
    them. Nothing else on the disk becomes readable."""

    images: tuple[str, ...]
    mask: str | None
    allowed_dirs: tuple[str, ...]

    @classmethod
    def of(cls, images: Sequence[str], mask: str | None) -> _References:
        directories: list[str] = []

        def reference(text: str) -> str:
            if _HANDLE.match(text.strip()) or is_url(text):
                return text  # a handle (in --output-dir) or a link: the tool's own rules
            path = os.path.abspath(os.path.expanduser(text))
            # The file's real directory: a symlinked file is read where it really is.
            directory = os.path.dirname(os.path.realpath(path))
            if directory not in directories:
                directories.append(directory)
            return path

        refs = tuple(reference(text) for text in images)
        return cls(refs, None if mask is None else reference(mask), tuple(directories))


def _edit(
    args: argparse.Namespace, out: TextIO, err: TextIO, scrub: Callable[[str], str] = str
) -> int:
    from langchain_imagegen.edit_tool import ImageEditTool

    profile = _options_provider(args).profile(args.model_family or args.model)
    if (why := profile.cannot_edit()) is not None:
        if profile.permissive and args.model_family is None:
            why += " (a gateway's model that edits like a known one: give --model-family)"
        raise errors.InvalidArgumentError(why)
    refs = _References.of(args.images, args.mask)
    config = {**_tool_config(args), "allowed_dirs": list(refs.allowed_dirs)}
    tool, caught = _built(ImageEditTool, config, args.output_dir)
    proposal = {"prompt": args.prompt, "images": list(refs.images), "mask": refs.mask}
    plan = tool.coerce_edit(proposal)
    if args.dry_run:
        return _edit_dry_run(tool, plan, args, out)
    _estimate(tool, plan, args, input_images=len(plan.images))  # --max-cost can check it
    _ready_to_send(tool, caught, err)
    progress = _Progress(err, plan, scrub)
    try:
        result = tool.edit(proposal, on_event=progress, regenerate=args.regenerate)
    finally:
        progress.finish()
        tool.close()
    return _print_result(result, args, out)


def _edit_dry_run(
    tool: BaseImageEditTool, plan: EditPlan, args: argparse.Namespace, out: TextIO
) -> int:
    """The requests an edit becomes, each file described (field, name, type, size, sha256
    prefix, where it came from), never its bytes. Files and handles are read (a bucket's
    too), links are not: a dry run opens no connection to download them, so when there
    are links the inputs are listed unread and not fitted."""
    refs = [*plan.images, *([plan.mask] if plan.mask is not None else [])]
    labels = [f"image {i}" for i in range(1, len(plan.images) + 1)] + ["mask"] * (
        plan.mask is not None
    )
    # No fetch: links the store does not own stay unread; everything else is read as
    # edit() reads it.
    resolver = ImageResolver(
        tool.store, allowed_dirs=tool.allowed_dirs, max_bytes=tool.max_download_bytes
    )
    unread = {ref for ref in refs if _downloaded(ref, tool)}
    read = {ref: resolver.resolve(ref) for ref in refs if ref not in unread}
    notes = _lifecycle_notes(args.model)
    files: list[dict[str, Any]]
    if unread:
        files = [
            _unread(label, ref) if ref in unread else _described(label, None, read[ref], ref)
            for label, ref in zip(labels, refs, strict=True)
        ]
        notes.append(
            "links are downloaded when the edit is sent (a dry run opens no connection), so "
            "their files are not shown and the inputs are fitted to the model only then"
        )
    else:
        images = [read[ref] for ref in plan.images]
        mask = read[plan.mask] if plan.mask is not None else None
        from langchain_imagegen.edit_tool import fit_edit

        plan, edit, _ = fit_edit(plan, images, mask)  # what edit() would send
        files = [
            _described(label, field, InputImage.from_bytes(data, ref), ref)
            for label, ref, (field, (_, data, _)) in zip(labels, refs, edit.files, strict=True)
        ]
    estimate = _estimate(tool, plan, args, input_images=len(plan.images))
    report = {
        "model": plan.profile.name,
        "requests": list(plan.requests),
        "files": files,
        "adjustments": [dataclasses.asdict(a) for a in plan.adjustments],
        "notes": notes,
        **_estimate_report(estimate, args),
    }
    if args.json:
        out.write(json.dumps(report, indent=2, default=str) + "\n")
        return 0
    out.write(
        f"{len(plan.requests)} request(s) to {plan.profile.name}, "
        "each a multipart/form-data POST to /images/edits:\n"
    )
    out.writelines(f"  {json.dumps(fields)}\n" for fields in plan.requests)
    out.write("files, in each request:\n")
    out.writelines(f"  {_file_line(file)}\n" for file in files)
    _print_adjustments(plan.adjustments, notes, out)
    _print_estimate(estimate, args, out)
    return 0


def _downloaded(ref: str, tool: BaseImageEditTool) -> bool:
    """Whether ``ref`` is a link the edit would download (not one of the store's own)."""
    scheme = ref.split(":", 1)[0].lower()
    return scheme in ("http", "https") and tool.store.name_of(ref) is None


def _shown_ref(ref: str) -> str:
    """A reference as a dry run prints it: a link without its query and fragment (a signed
    link's signature is there)."""
    if "://" not in ref:
        return ref
    return ref.split("?", 1)[0].split("#", 1)[0]


def _described(label: str, field: str | None, image: InputImage, ref: str) -> dict[str, Any]:
    return {
        "input": label,
        "field": field,
        "filename": image.filename,
        "content_type": image.mime_type,
        "bytes": len(image.data),
        "sha256": image.sha256[:_SHA_SHOWN],
        "handle": image.handle,
        "from": _shown_ref(ref),
    }


def _unread(label: str, ref: str) -> dict[str, Any]:
    return {"input": label, "field": None, "from": _shown_ref(ref)}


def _file_line(file: dict[str, Any]) -> str:
    name = file["field"] or file["input"]
    if "filename" not in file:
        return f"{name}: downloaded when sent, from {file['from']}"
    return (
        f"{name}: {file['filename']}, {file['content_type']}, {file['bytes']:,} bytes, "
        f"sha256 {file['sha256']}..., from {file['from']}"
    )


# --- mcp -------------------------------------------------------------------------------------


def _mcp(
    args: argparse.Namespace, out: TextIO, err: TextIO, scrub: Callable[[str], str] = str
) -> int:
    """Serve the tools over MCP until the client leaves (stdio) or Ctrl-C (--http)."""
    try:  # the SDK is an extra: imported only here
        from langchain_imagegen import mcp_server
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in ("mcp", "mcp_types", "uvicorn"):
            raise
        msg = "the mcp command needs the MCP SDK: pip install 'langchain-imagegen[mcp]'"
        raise errors.InvalidArgumentError(msg) from None
    if args.http is not None and not mcp_server.is_loopback(args.http[0]):
        if not args.allow_remote:
            raise errors.InvalidArgumentError(
                f"--http {args.http[0]}:{args.http[1]} would let other machines use this "
                "server, which has no authentication (anyone who reaches it spends your API "
                "key): bind to 127.0.0.1, or put an authenticating proxy in front and add "
                "--allow-remote (docs/mcp.md)"
            )
        err.write(
            "langchain-imagegen: warning: serving beyond this machine with no authentication "
            "of its own; only an authenticating proxy in front should reach it\n"
        )
    if args.regenerate:
        msg = "--regenerate is for one call; a server answers from --cache as it is: drop it"
        raise errors.InvalidArgumentError(msg)
    from langchain_imagegen.edit_tool import ImageEditTool
    from langchain_imagegen.limits import ImagesPerMinute
    from langchain_imagegen.tool import ImageGenerationTool

    config = _tool_config(args)
    if args.images_per_minute is not None:  # both tools spend one allowance, as image_tools'
        config["image_rate_limiter"] = ImagesPerMinute(args.images_per_minute)
    generate, caught = _built(ImageGenerationTool, config, args.output_dir)
    tools: list[BaseImageGenerationTool] = [generate]
    if generate.profile.edits is not None:
        dirs = [os.path.abspath(os.path.expanduser(d)) for d in args.allow_dir]
        edit, _ = _built(ImageEditTool, {**config, "allowed_dirs": dirs}, args.output_dir)
        tools.append(edit)
    _ready_to_send(generate, caught, err, hint="")
    server = mcp_server.ImageToolServer(tools, preview_bytes=args.preview_bytes)
    names = ", ".join(server.tools)

    def announce(where: str) -> None:
        err.write(f"langchain-imagegen: serving {names} ({args.model}) {where}\n")
        err.flush()

    async def serve() -> None:
        try:
            if args.http is None:
                announce("over stdio")
                await server.serve_stdio()
            else:
                await server.serve_http(*args.http, announce=lambda url: announce(f"at {url}"))
        finally:
            await server.aclose()

    asyncio.run(serve())
    return 0


def _result_code(result: ImageGenerationResult) -> int:
    """7 when images are missing; 5 when every image came back but some could not be
    downloaded (listed at their URL); else 0."""
    if result.shortfall:
        return 7
    if any(image.download_error for image in result.images):
        return _exit_code(errors.ImageDownloadError)
    return 0


def _provider(named: str | None, base_url: str | None) -> ProviderProfile:
    """The provider of the options, found as the tool finds it (``--provider``, else the
    host of ``--base-url`` or of ``$OPENAI_BASE_URL``)."""
    try:
        return provider_for(named, base_url)
    except KeyError as error:
        raise errors.InvalidArgumentError(f"--provider: {error.args[0]}") from None


def _options_provider(args: argparse.Namespace) -> ProviderProfile:
    return _provider(args.provider, args.base_url or base_url_from_env())


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code (see :data:`EXIT_CODES`)."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    secrets = secret_strings(dict(getattr(args, "storage_option", [])))

    def fail(message: str, code: int) -> int:
        # A storage library may quote what it was given: storage option values never show.
        sys.stderr.write(scrub(f"langchain-imagegen: {message}", secrets) + "\n")
        return code

    try:
        if args.command == "models":
            table = capability_table_markdown()
            if args.provider:
                table = provider_table_markdown(_provider(args.provider, None))
            out.write(table + "\n")
            return 0
        args.model = args.model or _options_provider(args).default_model
        run = {"edit": _edit, "mcp": _mcp}.get(args.command, _generate)
        return run(args, out, sys.stderr, lambda text: scrub(text, secrets))
    except errors.ImageGenError as error:
        return fail(str(error), _exit_code(type(error)))
    except KeyboardInterrupt:
        return fail("interrupted", _EXIT_INTERRUPTED)
    except ValidationError as error:  # the tool refused a setting (e.g. --base-url)
        return fail("; ".join(f"{e['msg']}" for e in error.errors()), 2)
    except Exception as error:  # noqa: BLE001 - one line, never a traceback
        return fail(f"unexpected error: {type(error).__name__}: {error}", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

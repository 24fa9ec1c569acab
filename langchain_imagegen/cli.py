"""The command line: ``langchain-imagegen generate PROMPT`` and ``langchain-imagegen models``.

Errors are one clear line on stderr, never a traceback, with exit codes a script can rely
on (see :data:`EXIT_CODES`); Ctrl-C stops at once and exits 130. ``--dry-run`` shows the
coerced requests and the adjustments without a key or the network.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from pydantic import SecretStr, ValidationError

from langchain_imagegen import errors
from langchain_imagegen.coercion import CoercionResult
from langchain_imagegen.model_table import capability_table_markdown
from langchain_imagegen.registry import get_profile
from langchain_imagegen.result import ImageGenerationResult
from langchain_imagegen.storage import is_url
from langchain_imagegen.storage.base import scrub, secret_strings

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "unexpected error": 1,
    "bad arguments": 2,
    "no API key, key rejected, or no access to the model": 3,
    "request refused (bad request, content policy, billing, unknown model)": 4,
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
        description="Generate images through any OpenAI-compatible Images API.",
        epilog="exit codes: "
        + "; ".join(f"{code} {meaning}" for meaning, code in EXIT_CODES.items()),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generate images from a prompt")
    generate.add_argument("prompt", help="what the images should show")
    generate.add_argument("--model", default="gpt-image-2", help="default: %(default)s")
    generate.add_argument("--model-family", help="known model this one behaves like")
    generate.add_argument("--size", help="e.g. 1024x1024, 1920x1080, 16:9, portrait")
    generate.add_argument("-n", "--n", dest="n", help="how many images (default 1)")
    generate.add_argument("--quality", help="e.g. low, medium, high, hd, standard")
    generate.add_argument("--style", help="vivid or natural (dall-e-3)")
    generate.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other Images API parameter, e.g. moderation=low, output_format=webp, "
        "output_compression=80; fitted to the model like the others (repeatable)",
    )
    generate.add_argument(
        "--extra",
        type=_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter sent as given in every request, never fitted or checked: a gateway's "
        "own, e.g. seed=42, steps=30 (repeatable)",
    )
    generate.add_argument(
        "--output-dir",
        default="generated_images",
        help="where images are saved: a directory (%(default)s) or a storage URL such as "
        "s3://bucket/prefix, gs://..., az://... (see docs/storage.md)",
    )
    generate.add_argument(
        "--storage-option",
        type=_storage_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to the storage's filesystem (fsspec), e.g. "
        "endpoint_url=http://127.0.0.1:9000, anon=true; values read like --param's and never "
        "printed (repeatable)",
    )
    generate.add_argument(
        "--link-expires-in",
        type=_positive_int,
        metavar="SECONDS",
        help="how long signed links to stored images stay valid (default 3600)",
    )
    generate.add_argument(
        "--public-base-url",
        metavar="URL",
        help="links are this base joined with the object key, not signed (a public bucket or a "
        "CDN in front of it)",
    )
    generate.add_argument("--base-url", help="default: $OPENAI_BASE_URL or OpenAI")
    generate.add_argument(
        "--max-images", type=_positive_int, default=10, help="most images per call (%(default)s)"
    )
    generate.add_argument(
        "--partial-images",
        type=_partial_images,
        default=0,
        metavar="N",
        help="stream N previews (0 to 3) of each image, saved beside the images and announced "
        "on stderr as they arrive (GPT image models; others report it as not applied)",
    )
    generate.add_argument("--download", action="store_true", help="save URL images to disk")
    generate.add_argument("--json", action="store_true", help="print the full result as JSON")
    generate.add_argument(
        "--dry-run", action="store_true", help="print the requests and adjustments, send nothing"
    )
    commands.add_parser("models", help="print the per-model capability table")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
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
    """Everything set on the command line but the prompt. A person set these, not an LLM: they
    go to the tool as ``image_params`` (developer-set), so parameters the LLM's schema does not
    offer (``moderation``, ``user``...) are fitted to the model and sent, not dropped."""
    fields = ("size", "n", "quality", "style")
    params = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
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
        plan: CoercionResult,
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


def _generate(
    args: argparse.Namespace, out: TextIO, err: TextIO, scrub: Callable[[str], str] = str
) -> int:
    from langchain_imagegen.tool import ImageGenerationTool

    config: dict[str, Any] = {
        "model": args.model,
        "model_family": args.model_family,
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
    with warnings.catch_warnings(record=True) as caught:  # one line each, not Python's format
        warnings.simplefilter("always")
        try:
            tool = ImageGenerationTool(**config)
        except errors.ConfigurationError as error:
            if not is_url(args.output_dir):
                raise
            # The store refused the URL (an unknown scheme, its filesystem not installed):
            # --output-dir's exit code, not the API key's.
            raise errors.StorageError(str(error)) from None
    proposal = {"prompt": args.prompt}
    plan = tool.coerce(proposal)
    if args.dry_run:
        report = {
            "model": plan.profile.name,
            "requests": list(plan.requests),
            "adjustments": [dataclasses.asdict(a) for a in plan.adjustments],
            "notes": [note] if (note := get_profile(args.model).lifecycle_note()) else [],
        }
        if args.json:
            out.write(json.dumps(report, indent=2, default=str) + "\n")
        else:
            out.write(f"{len(plan.requests)} request(s) to {plan.profile.name}:\n")
            out.writelines(f"  {json.dumps(body)}\n" for body in plan.requests)
            out.write("adjustments:\n" if plan.adjustments else "no adjustments\n")
            out.writelines(f"  - {a.describe()}\n" for a in plan.adjustments)
            out.writelines(f"note: {note}\n" for note in report["notes"])
        return 0
    err.writelines(f"langchain-imagegen: warning: {warning.message}\n" for warning in caught)
    key = tool.api_key  # from the environment here: a SecretStr, never a callable
    if key is None or (isinstance(key, SecretStr) and not key.get_secret_value()):
        msg = "no API key: set OPENAI_API_KEY (--dry-run shows the requests without one)"
        raise errors.ConfigurationError(msg)
    progress = _Progress(err, plan, scrub)
    try:
        result: ImageGenerationResult = tool.generate(proposal, on_event=progress)
    finally:
        progress.finish()
        tool.close()
    out.write((result.model_dump_json(indent=2) if args.json else result.to_text()) + "\n")
    return _result_code(result)


def _result_code(result: ImageGenerationResult) -> int:
    """7 when images are missing; 5 when every image came back but some could not be
    downloaded (listed at their URL); else 0."""
    if result.shortfall:
        return 7
    if any(image.download_error for image in result.images):
        return _exit_code(errors.ImageDownloadError)
    return 0


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
            out.write(capability_table_markdown() + "\n")
            return 0
        return _generate(args, out, sys.stderr, lambda text: scrub(text, secrets))
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

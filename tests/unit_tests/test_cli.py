"""The command line, hermetic: dry runs, --json, the capability table, a progress bar, and
one exit code and one line (never a traceback) per kind of failure. HTTP goes to an
``httpx.MockTransport``."""

from __future__ import annotations

import base64
import functools
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from langchain_imagegen import errors
from langchain_imagegen import tool as tool_module
from langchain_imagegen.cli import EXIT_CODES, _exit_code, main
from langchain_imagegen.model_table import capability_table_markdown
from langchain_imagegen.result import ImageGenerationResult
from tests.emulator import encode_image
from tests.unit_tests.conftest import run

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
    "rkJggg=="
)
README_COMMAND = [
    "generate",
    "a lighthouse at dawn, watercolor",
    "--model",
    "dall-e-3",
    "-n",
    "4",
    "--size",
    "1920x1080",
    "--quality",
    "high",
    "--dry-run",
]
Handler = Callable[[httpx.Request], httpx.Response]


def one_line(text: str) -> str:
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("langchain-imagegen: ")
    return lines[0]


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], list[dict[str, Any]]]:
    """Answer the CLI's requests with ``handler``; returns the bodies it was sent."""

    def install(handler: Handler) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []

        def record(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/images/generations"):
                bodies.append(json.loads(request.content))
            return handler(request)

        client = httpx.Client(transport=httpx.MockTransport(record))
        tool = functools.partial(tool_module.ImageGenerationTool, http_client=client, max_retries=0)
        monkeypatch.setattr(tool_module, "ImageGenerationTool", tool)
        return bodies

    return install


def b64_images(request: httpx.Request) -> httpx.Response:
    n = json.loads(request.content).get("n", 1)
    pngs = [encode_image("png", 1, 1, tag=str(i)) for i in range(n)]  # distinct files
    data = [{"b64_json": base64.b64encode(png).decode()} for png in pngs]
    return httpx.Response(200, json={"created": 1, "data": data})


def url_images(request: httpx.Request) -> httpx.Response:
    n = json.loads(request.content).get("n", 1)
    data = [{"url": f"https://files.example/{i}.png", "revised_prompt": "r"} for i in range(n)]
    return httpx.Response(200, json={"created": 1, "data": data})


def error(status: int, code: str | None = None, message: str = "no") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
        return httpx.Response(status, json=body)

    return handler


# --- dry run and models ---------------------------------------------------------------------


def test_readme_dry_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    code, out = run(README_COMMAND)
    assert code == 0
    body = (
        '{"model": "dall-e-3", "prompt": "a lighthouse at dawn, watercolor", '
        '"size": "1792x1024", "quality": "hd", "n": 1}'
    )
    assert out.splitlines() == [
        "4 request(s) to dall-e-3:",
        *[f"  {body}"] * 4,
        "adjustments:",
        "  - size: '1920x1080' → '1792x1024' (nearest size dall-e-3 supports; it takes "
        "1024x1024, 1792x1024, 1024x1792)",
        "  - quality: 'high' → 'hd' (dall-e-3 names this quality 'hd'; it takes standard, hd)",
        "  - n: 4 → 1 (dall-e-3 makes at most 1 image per request, so the 4 images are "
        "requested in 4 parallel requests)",
        "note: dall-e-3 was shut down by OpenAI on 2026-05-12; use gpt-image-2 "
        "(gateways may still serve it)",
        "estimated cost: about $0.48 (4 requests, about $0.12 each)",
        "  assumption: dall-e-3 hd 1792x1024: $0.12 per image; prices from secondary sources, "
        "read on 2026-11-30",
    ]


def test_dry_run_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    code, out = run([*README_COMMAND, "--json"])
    assert code == 0
    report = json.loads(out)
    assert report["model"] == "dall-e-3"
    assert len(report["requests"]) == 4
    assert [a["field"] for a in report["adjustments"]] == ["size", "quality", "n"]
    assert report["adjustments"][0] == {
        "field": "size",
        "proposed": "1920x1080",
        "applied": "1792x1024",
        "reason": "nearest size dall-e-3 supports; it takes 1024x1024, 1792x1024, 1024x1792",
    }
    assert len(report["notes"]) == 1


def test_dry_run_valid_request_has_no_adjustments() -> None:
    code, out = run(["generate", "a fox", "--size", "1536x1024", "--style", "vivid", "--dry-run"])
    assert code == 0
    assert out.splitlines()[-3] == (
        "  - style: 'vivid' → not sent (gpt-image-2 has no style parameter; describe the "
        "style in the prompt instead)"
    )
    code, out = run(["generate", "a fox", "--size", "1536x1024", "--dry-run"])
    assert out.splitlines() == [
        "1 request(s) to gpt-image-2:",
        '  {"model": "gpt-image-2", "prompt": "a fox", "size": "1536x1024"}',
        "no adjustments",
        "estimated cost: about $0.16",  # 5488 x $30/1M + 2 x $5/1M = $0.16465
        "  assumption: gpt-image-2 high 1536x1024 (quality not set (the model's default is "
        "auto): at most, as high): 5488 output tokens per image at $30/1M, plus the prompt's "
        "text tokens at $5/1M (estimated as 1 token per 4 characters, once per image); prices "
        "from secondary sources, read on 2026-11-30",
    ]


def test_dry_run_gateway_model_family() -> None:
    code, out = run(
        [
            "generate",
            "a fox",
            "-n",
            "2",
            "--model",
            "flux-dev",
            "--model-family",
            "dall-e-3",
            "--dry-run",
        ]
    )
    assert code == 0
    assert out.startswith("2 request(s) to flux-dev:")


def test_models_prints_the_capability_table() -> None:
    code, out = run(["models"])
    assert code == 0
    assert out == capability_table_markdown() + "\n"
    assert "| dall-e-3 |" in out


def test_python_dash_m(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "langchain_imagegen", *README_COMMAND],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("4 request(s) to dall-e-3:")
    missing_key = subprocess.run(
        [sys.executable, "-m", "langchain_imagegen", "generate", "a fox"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert missing_key.returncode == 3
    assert one_line(missing_key.stderr) == (
        "langchain-imagegen: no API key: set OPENAI_API_KEY (--dry-run shows the requests "
        "without one)"
    )
    assert missing_key.stdout == ""


# --- generating -----------------------------------------------------------------------------


def test_generate_saves_and_lists_images(
    serve: Callable[[Handler], list[dict[str, Any]]], tmp_path: Path
) -> None:
    bodies = serve(b64_images)
    code, out = run(["generate", "a fox", "-n", "2", "--output-dir", str(tmp_path)])
    assert code == 0
    assert bodies == [{"model": "gpt-image-2", "prompt": "a fox", "n": 2}]
    saved = sorted(tmp_path.iterdir())
    assert len(saved) == 2
    assert out.startswith("Generated 2 images with gpt-image-2.")
    assert all(str(path) in out for path in saved)


def test_generate_json(serve: Callable[[Handler], list[dict[str, Any]]], tmp_path: Path) -> None:
    serve(url_images)
    code, out = run(
        [
            "generate",
            "a fox",
            "--model",
            "dall-e-3",
            "-n",
            "2",
            "--json",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    result = ImageGenerationResult.model_validate_json(out)
    assert [image.url for image in result.images] == [
        "https://files.example/0.png",
        "https://files.example/0.png",
    ]
    assert len(result.requests) == 2


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_counts_received_images(
    serve: Callable[[Handler], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    serve(url_images)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, _ = run(["generate", "a fox", "--model", "dall-e-3", "-n", "3"])
    assert code == 0
    frames = terminal.getvalue().split("\r")[1:]
    assert frames[0] == "[" + "-" * 20 + "] 0/3 images"  # nothing yet ("requested")
    assert frames[-1] == "[" + "#" * 20 + "] 3/3 images\n"
    assert "1/3 images" in terminal.getvalue()
    assert "2/3 images" in terminal.getvalue()


def test_no_progress_bar_when_not_a_terminal(
    serve: Callable[[Handler], list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    serve(url_images)
    gateway = ["--base-url", "https://gateway.example/v1"]
    code, _ = run(["generate", "a fox", "--model", "dall-e-3", "-n", "2", *gateway])
    assert code == 0
    assert capsys.readouterr().err == ""


def test_retired_model_warning_is_one_line(
    serve: Callable[[Handler], list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    serve(url_images)
    code, _ = run(["generate", "a fox", "--model", "dall-e-3"])
    assert code == 0
    assert one_line(capsys.readouterr().err) == (
        "langchain-imagegen: warning: dall-e-3 was shut down by OpenAI on 2026-05-12; use "
        "gpt-image-2 (gateways may still serve it)"
    )


# --- exit codes -----------------------------------------------------------------------------


def _documented_exit_codes() -> dict[int, str]:
    """The exit-code table of docs/cli.md, code -> meaning."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    table = text.split("## Exit codes and errors", 1)[1]
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| ")]
    return {int(code): meaning.strip() for code, meaning in rows if code.strip().isdigit()}


def test_exit_codes_are_documented() -> None:
    assert _documented_exit_codes() == {code: meaning for meaning, code in EXIT_CODES.items()}
    assert sorted(EXIT_CODES.values()) == [0, 1, 2, 3, 4, 5, 6, 7, 130]


EXIT_CODE_OF: dict[type[errors.ImageGenError], int] = {
    errors.InvalidArgumentError: 2,
    errors.ConfigurationError: 3,
    errors.MissingCredentialError: 3,
    errors.AuthenticationError: 3,
    errors.PermissionDeniedError: 3,
    errors.BadRequestError: 4,
    errors.ContentPolicyError: 4,
    errors.BillingError: 4,
    errors.BudgetExceededError: 4,  # refused before sending, as a billing limit would be
    errors.ModelNotFoundError: 4,
    errors.RateLimitError: 5,
    errors.InternalServerError: 5,
    errors.APIConnectionError: 5,
    errors.APITimeoutError: 5,
    errors.MalformedResponseError: 5,
    errors.CorruptImageError: 5,  # the server's payload, not the disk
    errors.ImageDownloadError: 5,  # the link or its server, not the disk
    errors.StorageError: 6,
}


@pytest.mark.parametrize(
    ("error", "code"), EXIT_CODE_OF.items(), ids=lambda v: getattr(v, "__name__", v)
)
def test_every_error_class_has_its_exit_code(error: type[errors.ImageGenError], code: int) -> None:
    assert _exit_code(error) == code


def test_every_error_class_is_in_the_exit_code_test() -> None:
    exported = {getattr(errors, name) for name in errors.__all__}
    classes = {value for value in exported if isinstance(value, type)}
    assert classes - {errors.ImageGenError, errors.APIError} == set(EXIT_CODE_OF)


@pytest.mark.parametrize(
    ("handler", "expected", "needle"),
    [
        (error(401, "invalid_api_key", "Incorrect API key"), 3, "Incorrect API key (HTTP 401"),
        (error(403, None, "organization must be verified"), 3, "(HTTP 403)"),
        (error(400, "content_policy_violation", "safety system"), 4, "content_policy_violation"),
        (error(400, "billing_hard_limit_reached", "Billing hard limit"), 4, "Billing hard"),
        (error(404, "model_not_found", "does not exist"), 4, "model_not_found"),
        (error(400, "invalid_value", "Invalid size"), 4, "Invalid size"),
        (error(429, "rate_limit_exceeded", "Rate limit"), 5, "(HTTP 429"),
        (error(500, None, "server had an error"), 5, "(HTTP 500)"),
        (lambda r: httpx.Response(200, text="<html>gateway</html>"), 5, "HTTP 200"),
    ],
    ids=[
        "auth",
        "permission",
        "policy",
        "billing",
        "model",
        "bad-request",
        "rate-limit",
        "server",
        "malformed",
    ],
)
def test_api_errors(
    serve: Callable[[Handler], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    handler: Handler,
    expected: int,
    needle: str,
) -> None:
    serve(handler)
    code, out = run(["generate", "a fox"])
    assert code == expected
    assert out == ""
    assert needle in one_line(capsys.readouterr().err)


def test_connection_error(
    serve: Callable[[Handler], list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    serve(refuse)
    code, _ = run(["generate", "a fox"])
    assert code == 5
    one_line(capsys.readouterr().err)


def test_storage_error(
    serve: Callable[[Handler], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    serve(b64_images)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _ = run(["generate", "a fox", "--output-dir", str(blocker / "images")])
    assert code == 6
    one_line(capsys.readouterr().err)


def test_corrupt_image_is_a_server_problem_not_a_disk_problem(
    serve: Callable[[Handler], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    def truncated(request: httpx.Request) -> httpx.Response:
        png = base64.b64encode(encode_image("png", 1, 1)).decode()
        return httpx.Response(200, json={"created": 1, "data": [{"b64_json": png[:40]}]})

    serve(truncated)
    code, _ = run(["generate", "a fox", "--output-dir", str(tmp_path / "images")])
    assert code == 5
    assert "truncated or corrupt" in one_line(capsys.readouterr().err)
    images = tmp_path / "images"
    assert not images.exists() or not any(images.iterdir())  # no partial file


def test_fewer_images_than_asked(
    serve: Callable[[Handler], list[dict[str, Any]]], tmp_path: Path
) -> None:
    def one(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"created": 1, "data": [{"b64_json": PNG_B64}]})

    serve(one)
    code, out = run(["generate", "a fox", "-n", "3", "--output-dir", str(tmp_path)])
    assert code == 7
    assert "Asked for 3 images but received 1; 2 missing." in out


def test_blank_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(["generate", "   ", "--dry-run"])
    assert code == 2
    assert one_line(capsys.readouterr().err) == (
        "langchain-imagegen: prompt is required: describe the image to generate"
    )


def test_missing_api_key_sends_nothing(
    serve: Callable[[Handler], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bodies = serve(b64_images)
    monkeypatch.delenv("OPENAI_API_KEY")
    code, _ = run(["generate", "a fox"])
    assert code == 3
    assert bodies == []
    assert "no API key" in one_line(capsys.readouterr().err)


def test_bad_base_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(["generate", "a fox", "--base-url", "ftp://example.com"])
    assert code == 2
    assert "base_url must be an http(s) URL" in one_line(capsys.readouterr().err)


def test_unexpected_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(self: object, args: object) -> None:
        raise RuntimeError("something odd")

    monkeypatch.setattr(tool_module.ImageGenerationTool, "coerce", boom)
    code, _ = run(["generate", "a fox", "--dry-run"])
    assert code == 1
    assert one_line(capsys.readouterr().err) == (
        "langchain-imagegen: unexpected error: RuntimeError: something odd"
    )


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: prompt" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_max_images_below_one_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "a fox", "--max-images", value, "--dry-run"])
    assert exit_info.value.code == 2
    assert "argument --max-images" in capsys.readouterr().err


def test_ctrl_c_exits_130_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(self: object, args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tool_module.ImageGenerationTool, "generate", interrupted)
    code, out = run(["generate", "a fox"])
    assert code == 130
    assert out == ""
    assert one_line(capsys.readouterr().err) == "langchain-imagegen: interrupted"


def expired_link(request: httpx.Request) -> httpx.Response:
    if request.method == "GET":  # the image's signed URL has expired
        return httpx.Response(403, text="AuthenticationFailed: Signature not valid")
    return url_images(request)


def test_failed_download_exits_5_and_lists_the_url(
    serve: Callable[[Handler], list[dict[str, Any]]], tmp_path: Path
) -> None:
    serve(expired_link)
    argv = ["generate", "a fox", "--model", "dall-e-2", "--download"]
    code, out = run([*argv, "--output-dir", str(tmp_path / "images")])
    assert code == 5
    assert out.startswith("Generated 1 image with dall-e-2.")
    assert "https://files.example/0.png" in out
    assert "download" in out
    assert not (tmp_path / "images").exists()


def test_a_shortfall_outranks_a_failed_download(
    serve: Callable[[Handler], list[dict[str, Any]]], tmp_path: Path
) -> None:
    def one_of_two(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(403)
        return httpx.Response(200, json={"data": [{"url": "https://files.example/a.png"}]})

    serve(one_of_two)
    argv = ["generate", "a fox", "--model", "dall-e-2", "-n", "2", "--download"]
    code, out = run([*argv, "--output-dir", str(tmp_path)])
    assert code == 7
    assert "Asked for 2 images but received 1; 1 missing." in out


def test_operator_flags_are_developer_set_and_reach_the_request(
    serve: Callable[[Handler], list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The LLM's schema does not offer moderation, user, output_compression: a person at the
    command line may still set them (--param), and they are sent."""
    bodies = serve(b64_images)
    params = ["moderation=low", "user=ops-7", "output_compression=80", "output_format=webp"]
    argv = ["generate", "a fox", *(f"--param={p}" for p in params), "--quality", "best"]
    code, out = run([*argv, "--output-dir", str(tmp_path)])
    assert code == 0, out
    assert bodies == [
        {
            "model": "gpt-image-2",
            "prompt": "a fox",
            "quality": "high",
            "moderation": "low",
            "user": "ops-7",
            "output_compression": 80,
            "output_format": "webp",
        }
    ]
    code, out = run([*argv, "--dry-run"])
    assert json.loads(out.splitlines()[1]) == bodies[0]  # the dry run shows the same


def test_extra_is_sent_as_given(serve: Callable[[Handler], list[dict[str, Any]]]) -> None:
    bodies = serve(url_images)
    flags = ["--extra", "seed=42", "--extra", "negative_prompt=no text", "--param", "seed=1"]
    argv = ["generate", "a fox", "--model", "flux-dev", "--model-family", "dall-e-3", *flags]
    code, out = run(argv)
    assert code == 0
    assert bodies == [
        {"model": "flux-dev", "prompt": "a fox", "seed": 42, "negative_prompt": "no text"}
    ]
    assert "seed: 1 → not sent (not a parameter of the Images API)" in out


@pytest.mark.parametrize("flag", ["--param", "--extra"])
def test_a_param_without_a_value_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "a fox", flag, "moderation", "--dry-run"])
    assert exit_info.value.code == 2
    assert "expected KEY=VALUE, got 'moderation'" in capsys.readouterr().err

"""Money and limits on the command line (docs/cost.md, docs/cli.md): the estimate a dry run
shows (text and ``--json``, ``generate`` and ``edit``), ``--max-cost`` refusing before
anything is sent, ``--cache FILE`` answering a repeated request without one, ``--regenerate``
sending it again, and the rate-limit options. Real runs go to the loopback emulator
(``tests/emulator.py``), which records every request that reaches it.

Expected figures are computed here by hand from the published prices (docs/cost.md#prices),
not read back from the code under test."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from langchain_core.rate_limiters import InMemoryRateLimiter

from langchain_imagegen import cli
from langchain_imagegen.cli import main
from tests.emulator import Emulator, encode_image
from tests.unit_tests.conftest import run

pytestmark = [pytest.mark.emulator, pytest.mark.enable_socket,
              pytest.mark.allow_hosts(["127.0.0.1"])]  # fmt: skip

LISTED = re.compile(r"^\d+\. (img_[0-9a-f]{16}): (\S+)$", re.MULTILINE)
FROM_THE_CACHE = (
    "From the cache: this exact request was answered before; nothing was generated or charged."
)


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line on stderr (warnings before it, such as a retired model's, allowed)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if not line.startswith("langchain-imagegen: warn")]
    assert len(errors) == 1, err
    assert errors[0].startswith("langchain-imagegen: ")
    return errors[0]


def text_tokens_usd(prompt: str, usd_per_million: float) -> float:
    """The prompt's estimated text tokens (1 per 4 characters, rounded up) priced."""
    return -(-len(prompt) // 4) * usd_per_million / 1_000_000


# --- dry run: the estimate --------------------------------------------------------------------

DALL_E_3 = ["generate", "a lighthouse at dawn, watercolor", "--model", "dall-e-3", "-n", "4",
            "--size", "1920x1080", "--quality", "high", "--dry-run"]  # fmt: skip
MINI_FAN_OUT = ["generate", "a fox", "--model", "gpt-image-1-mini", "--quality", "low",
                "--size", "1024x1024", "-n", "12", "--max-images", "12", "--dry-run"]  # fmt: skip


def test_dry_run_text_shows_the_estimate_per_request_and_its_assumption(no_key: None) -> None:
    code, out = run(DALL_E_3)

    assert code == 0
    # dall-e-3 hd 1792x1024 is $0.12 an image (per-image price, no tokens): 4 x $0.12.
    assert out.splitlines()[-2:] == [
        "estimated cost: about $0.48 (4 requests, about $0.12 each)",
        "  assumption: dall-e-3 hd 1792x1024: $0.12 per image; prices from secondary sources, "
        "read on 2026-11-30",
    ]


def test_dry_run_lists_requests_that_cost_differently(no_key: None) -> None:
    code, out = run(MINI_FAN_OUT)

    assert code == 0
    # gpt-image-1-mini low 1024x1024: $0.005 an image plus "a fox" (2 tokens) at $2/1M, per
    # image; 12 images go as 10 + 2.
    assert out.splitlines()[-2] == "estimated cost: about $0.060 (per request: $0.050, $0.010)"


def test_dry_run_json_carries_the_estimate(no_key: None) -> None:
    code, out = run([*MINI_FAN_OUT, "--json"])

    assert code == 0
    report = json.loads(out)
    image = 0.005 + text_tokens_usd("a fox", 2.00)
    assert [body["n"] for body in report["requests"]] == [10, 2]
    estimate = report["estimate"]
    assert estimate["per_request"] == [pytest.approx(10 * image), pytest.approx(2 * image)]
    assert estimate["usd"] == pytest.approx(12 * image)
    assert estimate["assumption"].startswith("gpt-image-1-mini low 1024x1024: $0.005 per image")
    assert report["max_cost"] is None


def test_dry_run_json_rounds_to_the_micro_dollar(no_key: None) -> None:
    # gpt-image-1 low 1024x1024: 272 output tokens at $40/1M, plus 2 text tokens at $5/1M:
    # 0.01088 + 0.00001, which floats add as 0.010890000000000001.
    argv = ["generate", "a fox", "--model", "gpt-image-1", "--quality", "low",
            "--size", "1024x1024", "--dry-run", "--json"]  # fmt: skip
    code, out = run(argv)

    assert code == 0
    assert '"usd": 0.01089,' in out


def test_dry_run_of_a_gateway_model_says_there_is_no_estimate(no_key: None) -> None:
    argv = ["generate", "a fox", "--model", "flux-dev", "--model-family", "dall-e-3",
            "--base-url", "https://gateway.example/v1", "--dry-run"]  # fmt: skip

    code, out = run(argv)
    assert code == 0
    assert out.splitlines()[-1] == "no estimate: no published price for flux-dev"

    code, out = run([*argv, "--json"])
    assert code == 0
    report = json.loads(out)
    assert report["estimate"] is None
    assert report["max_cost"] is None


def test_counts_sent_as_given_get_no_estimate(
    no_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a fox", "--extra", "n=lots", "--dry-run"]

    code, out = run(argv)
    assert code == 0
    assert out.splitlines()[-1] == (
        "no estimate: an n or partial_images sent as given (--extra) is not a count"
    )

    code, _ = run([*argv, "--max-cost", "1"])
    assert code == 2
    assert error_line(capsys) == (
        "langchain-imagegen: --max-cost cannot check these requests (an n or partial_images "
        "sent as given (--extra) is not a count); drop --max-cost, or see docs/cost.md#prices "
        "for what has a price"
    )


def test_dry_run_says_whether_the_estimate_fits_max_cost(no_key: None) -> None:
    code, out = run([*DALL_E_3, "--max-cost", "0.50"])
    assert code == 0
    assert out.splitlines()[-1] == "  within --max-cost $0.50"

    code, out = run([*DALL_E_3, "--max-cost", "0.40"])
    assert code == 0  # a dry run shows; the real run is the one refused
    assert out.splitlines()[-1] == (
        "  over --max-cost $0.40: sent, the call would be refused before its first request (exit 4)"
    )

    code, out = run([*DALL_E_3, "--max-cost", "0.40", "--json"])
    assert json.loads(out)["max_cost"] == {"usd": 0.40, "fits": False}
    code, out = run([*DALL_E_3, "--max-cost", "$0.48", "--json"])
    assert json.loads(out)["max_cost"] == {"usd": 0.48, "fits": True}  # equal fits


# --- edit dry run -----------------------------------------------------------------------------


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    path.write_bytes(encode_image("png", 64, 64, tag="photo"))
    return path


def test_edit_dry_run_shows_the_estimate_without_the_input_images(
    photo: Path, no_key: None
) -> None:
    argv = ["edit", str(photo), "--prompt", "a hat", "--model", "gpt-image-1", "--quality",
            "high", "--size", "1024x1024", "-n", "2", "--dry-run"]  # fmt: skip

    code, out = run(argv)

    assert code == 0
    lines = out.splitlines()
    # 2 x (4160 output tokens at $40/1M + 2 text tokens at $5/1M) = $0.33282
    assert lines[-2] == "estimated cost: about $0.33"
    assert lines[-1].startswith(
        "  assumption: gpt-image-1 high 1024x1024: 4160 output tokens per image at $40/1M"
    )
    assert "excludes the input image's tokens" in lines[-1]

    code, out = run([*argv, "--json"])
    estimate = json.loads(out)["estimate"]
    expected = 2 * (4160 * 40 / 1_000_000 + text_tokens_usd("a hat", 5.00))
    assert estimate["usd"] == pytest.approx(expected)
    assert estimate["per_request"] == [pytest.approx(expected)]
    assert "excludes the input image's tokens" in estimate["assumption"]


def test_edit_dry_run_max_cost(photo: Path, no_key: None) -> None:
    argv = ["edit", str(photo), "--prompt", "a hat", "--model", "gpt-image-1", "--quality",
            "low", "--size", "1024x1024", "--dry-run", "--max-cost", "0.01"]  # fmt: skip
    code, out = run(argv)
    assert code == 0
    # 272 x $40/1M + 2 x $5/1M = $0.01089 > $0.01
    assert out.splitlines()[-1].startswith("  over --max-cost $0.010: sent, the call would")


# --- --max-cost, sent -------------------------------------------------------------------------


def test_max_cost_refuses_before_sending(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a fox", "-n", "2", "--quality", "high", "--size", "1024x1024",
            "--max-cost", "0.30", "--output-dir", str(tmp_path)]  # fmt: skip

    code, out = run(argv)

    assert code == 4
    assert out == ""
    # gpt-image-2 high 1024x1024: 2 x (7024 output tokens at $30/1M + 2 text tokens at $5/1M)
    assert error_line(capsys) == (
        "langchain-imagegen: refused before sending: the estimate for 2 images with "
        "gpt-image-2 is $0.42146, over the per-call limit of $0.30"
    )
    assert served.received_requests == []
    assert list(tmp_path.iterdir()) == []


def test_max_cost_that_fits_sends_and_reports_the_cost(served: Emulator, tmp_path: Path) -> None:
    argv = ["generate", "a fox", "--quality", "low", "--size", "1024x1024", "--max-cost", "1",
            "--output-dir", str(tmp_path), "--json"]  # fmt: skip

    code, out = run(argv)

    assert code == 0
    assert len(served.received_requests) == 1
    result = json.loads(out)
    # low 1024x1024 on gpt-image-2 (docs/cost.md's rule): f = 16,
    # s = (2 * 16 * 1024 + 1024) // 2048 = 16, ceil(16 * 16 * (2,000,000 + 1024^2) / 4,000,000)
    # = 196 tokens
    assert result["estimated_cost_usd"] == pytest.approx(
        196 * 30 / 1_000_000 + text_tokens_usd("a fox", 5.00)
    )
    assert result["cost_basis"] == "usage"
    usage = result["usage"]
    assert result["cost_usd"] == pytest.approx(
        (usage["input_tokens"] * 5 + usage["output_tokens"] * 30) / 1_000_000
    )
    assert result["cached"] is False


def test_max_cost_without_a_price_is_a_usage_error(
    served: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a fox", "--model", "flux-dev", "--max-cost", "1"]
    for extra in ([], ["--dry-run"]):
        code, _ = run([*argv, *extra])
        assert code == 2
        assert error_line(capsys) == (
            "langchain-imagegen: there is no published price for flux-dev, so --max-cost "
            "cannot check it (a gateway's model is priced by its provider; "
            "docs/cost.md#prices lists the models with a price)"
        )
    assert served.received_requests == []


def test_edit_max_cost_refuses_before_sending(
    served: Emulator, photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["edit", str(photo), "--prompt", "a hat", "--quality", "high", "--max-cost", "0.05",
            "--output-dir", str(tmp_path / "out")]  # fmt: skip

    code, _ = run(argv)

    assert code == 4
    assert error_line(capsys).startswith(
        "langchain-imagegen: refused before sending: the estimate for 1 image with gpt-image-2"
    )
    assert served.received_requests == []


@pytest.mark.parametrize("value", ["-1", "abc", "nan", "inf"])
def test_bad_max_cost_is_a_usage_error(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "a fox", "--dry-run", "--max-cost", value])
    assert exit_info.value.code == 2
    assert "--max-cost" in capsys.readouterr().err


# --- --cache and --regenerate -----------------------------------------------------------------


def test_cache_answers_the_second_run_without_a_request(served: Emulator, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "results.sqlite3"
    argv = ["generate", "a fox", "--size", "1024x1024", "--quality", "low",
            "--output-dir", str(tmp_path / "images"), "--cache", str(cache)]  # fmt: skip

    code, first = run(argv)
    assert code == 0
    assert "Cost: about $" in first
    assert FROM_THE_CACHE not in first
    assert len(served.received_requests) == 1
    assert cache.exists()

    code, second = run(argv)
    assert code == 0
    assert len(served.received_requests) == 1  # nothing sent
    assert FROM_THE_CACHE in second.splitlines()
    assert "Cost: about" not in second
    assert LISTED.findall(second) == LISTED.findall(first)  # the same image, same handle

    code, again = run([*argv, "--json"])
    result = json.loads(again)
    assert (result["cached"], result["cost_usd"], result["cost_basis"]) == (True, 0.0, "cache")
    assert len(served.received_requests) == 1


def test_another_request_is_a_cache_miss(served: Emulator, tmp_path: Path) -> None:
    argv = ["generate", "a fox", "--quality", "low", "--output-dir", str(tmp_path / "images"),
            "--cache", str(tmp_path / "c.sqlite3")]  # fmt: skip
    assert run([*argv, "--size", "1024x1024"])[0] == 0
    code, out = run([*argv, "--size", "1536x1024"])  # another body, another key
    assert code == 0
    assert FROM_THE_CACHE not in out
    assert len(served.received_requests) == 2


def test_regenerate_sends_again_and_replaces_the_cached_answer(
    served: Emulator, tmp_path: Path
) -> None:
    cache = str(tmp_path / "c.sqlite3")
    argv = ["generate", "a fox", "--size", "1024x1024", "--quality", "low",
            "--output-dir", str(tmp_path / "images"), "--cache", cache]  # fmt: skip
    code, _ = run(argv)
    assert code == 0

    code, regenerated = run([*argv, "--regenerate"])
    assert code == 0
    assert len(served.received_requests) == 2
    assert FROM_THE_CACHE not in regenerated
    assert "Cost: about $" in regenerated

    code, later = run(argv)  # the cache now holds the regenerated answer
    assert len(served.received_requests) == 2
    assert FROM_THE_CACHE in later
    assert LISTED.findall(later) == LISTED.findall(regenerated)


def test_edit_cache_answers_the_second_run(served: Emulator, photo: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "c.sqlite3")
    argv = ["edit", str(photo), "--prompt", "a hat", "--quality", "low", "--size", "1024x1024",
            "--output-dir", str(tmp_path / "images"), "--cache", cache]  # fmt: skip
    code, _ = run(argv)
    assert code == 0
    assert len(served.received_requests) == 1
    code, second = run(argv)
    assert code == 0
    assert len(served.received_requests) == 1
    assert FROM_THE_CACHE in second


def test_a_dry_run_creates_no_cache_file(tmp_path: Path, no_key: None) -> None:
    cache = tmp_path / "c.sqlite3"
    code, _ = run(["generate", "a fox", "--cache", str(cache), "--dry-run"])
    assert code == 0
    assert not cache.exists()


@pytest.mark.parametrize("option", [["--regenerate"], ["--cache-ttl", "60"]])
def test_cache_options_without_cache_are_usage_errors(
    capsys: pytest.CaptureFixture[str], option: list[str]
) -> None:
    code, _ = run(["generate", "a fox", "--dry-run", *option])
    assert code == 2
    assert error_line(capsys) == (
        f"langchain-imagegen: {option[0]} is about the cache: give --cache FILE with it, or drop it"
    )


def test_a_cache_file_that_cannot_be_created_is_a_usage_error(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _ = run(["generate", "a fox", "--cache", str(blocker / "c.sqlite3")])
    assert code == 2
    assert error_line(capsys).startswith("langchain-imagegen: --cache: Cannot create the image")
    assert served.received_requests == []


# --- rate limits --------------------------------------------------------------------------------


def test_rate_options_become_the_tools_limiters() -> None:
    args = cli._parser().parse_args(
        ["generate", "a fox", "--images-per-minute", "5", "--requests-per-second", "0.5"]
    )
    config = cli._tool_config(args)
    assert config["images_per_minute"] == 5
    limiter = config["rate_limiter"]
    assert isinstance(limiter, InMemoryRateLimiter)
    assert limiter.requests_per_second == 0.5


def test_requests_per_second_spaces_the_requests(
    served: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # When LangChain's limiter grants each request, as it records it (``last``, set in the
    # call that grants): the server's arrival times also hold its own scheduling, which a
    # loaded machine stretches either way. One lock keeps another thread's turn from
    # moving ``last`` before it is read.
    granted: list[float] = []
    consume = InMemoryRateLimiter._consume
    reading = threading.Lock()

    def spied(self: InMemoryRateLimiter) -> bool:
        with reading:
            got = consume(self)
            if got:
                assert self.last is not None
                granted.append(self.last)
        return got

    monkeypatch.setattr(InMemoryRateLimiter, "_consume", spied)
    # A streamed request makes one image, so -n 3 is 3 parallel requests.
    argv = ["generate", "a fox", "-n", "3", "--partial-images", "1", "--quality", "low",
            "--requests-per-second", "5", "--images-per-minute", "600",
            "--output-dir", str(tmp_path)]  # fmt: skip

    code, out = run(argv)

    assert code == 0, out
    assert len(served.received_requests) == 3
    # A bucket of one request refilled at 5 a second: each grant waits for 0.2 s of refill
    # after the one before, however late the limiter is polled.
    assert len(granted) == 3
    gaps = [granted[1] - granted[0], granted[2] - granted[1]]
    assert min(gaps) >= 0.2 - 1e-9, gaps


@pytest.mark.parametrize("option", ["--images-per-minute", "--requests-per-second"])
@pytest.mark.parametrize("value", ["0", "-2", "fast", "nan"])
def test_bad_rates_are_usage_errors(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "a fox", "--dry-run", option, value])
    assert exit_info.value.code == 2
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("command", ["generate", "edit"])
def test_help_lists_the_options(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    options = ["--max-cost USD", "--cache FILE", "--cache-ttl SECONDS", "--regenerate",
               "--images-per-minute N", "--requests-per-second R"]  # fmt: skip
    assert [option for option in options if option not in text] == []

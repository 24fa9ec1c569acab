"""``langchain-imagegen generate --partial-images N``, live against the loopback emulator
(``tests/emulator.py``), which streams for real: one stderr line per preview as it is saved,
one per image that starts over, never a preview among the results, the exit codes, and a
progress bar on a terminal that the lines never garble."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from langchain_imagegen.cli import _Progress, main
from langchain_imagegen.coercion import coerce_params
from langchain_imagegen.registry import get_profile
from tests.emulator import Emulator, Fault
from tests.unit_tests.conftest import run

pytestmark = [pytest.mark.emulator, pytest.mark.enable_socket,
              pytest.mark.allow_hosts(["127.0.0.1"])]  # fmt: skip

PREVIEW_LINE = re.compile(r"^preview (\d)/(\d) of image (\d): (/.+/preview-[0-9a-f]{16}\.png)$")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _listed(out: str) -> list[str]:
    """The image paths the result lists (``1. img_<hash16>: /path``)."""
    return re.findall(r"^\d+\. img_[0-9a-f]{16}: (\S+)$", out, re.MULTILINE)


def test_each_preview_is_one_line_and_no_preview_is_a_result(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(["generate", "a fox", "-n", "2", "--partial-images", "2",
                     "--output-dir", str(tmp_path)])  # fmt: skip

    assert code == 0
    assert [body["stream"] for body in served.received_bodies] == [True, True]
    assert [body["partial_images"] for body in served.received_bodies] == [2, 2]
    lines = capsys.readouterr().err.splitlines()
    matches = [PREVIEW_LINE.match(line) for line in lines]
    assert all(matches), lines
    seen = sorted((m[3], m[1], m[2]) for m in matches if m)
    assert seen == [("1", "1", "2"), ("1", "2", "2"), ("2", "1", "2"), ("2", "2", "2")]
    previews = {Path(m[4]) for m in matches if m}
    assert previews == set(tmp_path.glob("preview-*.png"))  # each line names a saved file
    listed = _listed(out)
    assert len(listed) == 2
    assert not any("preview-" in path for path in listed)
    assert "preview-" not in out
    assert {Path(p) for p in listed} == set(tmp_path.iterdir()) - previews


def test_a_restarted_image_says_so_and_the_bar_stays_whole(
    served: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.push_fault(Fault.stream_cut(1))  # the first attempt ends after one preview
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    code, out = run(["generate", "a fox", "--partial-images", "3", "--output-dir", str(tmp_path)])

    assert code == 0
    assert len(_listed(out)) == 1
    written = terminal.getvalue()
    assert written.endswith("\n")
    # Every line printed is whole: it starts where the bar was (after a \r) and ends the line.
    printed = [frame[:-1] for frame in written.split("\r") if frame.endswith("\n")]
    restarts = [line for line in printed if "starts over" in line]
    assert len(restarts) == 1
    assert restarts[0].startswith("image 1 starts over (attempt 2, 1 preview discarded): ")
    assert "peer closed connection" in restarts[0]
    previews = [line.rstrip() for line in printed if line.startswith("preview")]
    assert [PREVIEW_LINE.match(p)[1] for p in previews] == ["1", "1", "2", "3"]  # type: ignore[index]
    bars = [frame.rstrip() for frame in written.split("\r") if frame.startswith("[")]
    assert bars[0] == "[" + "-" * 20 + "] 0/1 images"
    assert "[#####---------------] 0/1 images, 1 preview" in bars  # 1 of 3 previews + image
    assert "[###############-----] 0/1 images, 3 previews" in bars
    assert bars[-1] == "[" + "#" * 20 + "] 1/1 images"


def test_a_stream_that_keeps_failing_exits_5_after_its_lines(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served.push_fault(*[Fault.stream_error(1)] * 3)  # every attempt (max_retries=2) fails

    code, out = run(["generate", "a fox", "--partial-images", "1", "--output-dir", str(tmp_path)])

    assert code == 5
    assert out == ""
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "preview 1/1 of image 1",
        "image 1 starts over (attempt 2, 1 preview discarded)",
        "preview 1/1 of image 1",
        "image 1 starts over (attempt 3, 1 preview discarded)",
        "preview 1/1 of image 1",
    ]
    assert lines[-1].startswith("langchain-imagegen: ")
    assert all(path.name.startswith("preview-") for path in tmp_path.iterdir())  # no image


def test_a_model_that_does_not_stream_reports_the_adjustment(
    served: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "a fox", "--model", "dall-e-3", "--partial-images", "2", "--download",
            "--output-dir", str(tmp_path)]  # fmt: skip
    code, out = run(argv)

    assert code == 0
    assert "stream" not in served.received_bodies[0]
    assert "partial_images" not in served.received_bodies[0]
    assert (
        "- partial_images: 2 → 0 (dall-e-3 does not stream previews; the finished images come "
        "as usual)" in out.splitlines()
    )
    assert "preview" not in capsys.readouterr().err
    assert not list(tmp_path.glob("preview-*"))


def test_dry_run_shows_the_stream_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    code, out = run(["generate", "a fox", "-n", "2", "--partial-images", "2", "--dry-run"])
    assert code == 0
    body = (
        '{"model": "gpt-image-2", "prompt": "a fox", "stream": true, "partial_images": 2, "n": 1}'
    )
    assert out.splitlines() == [
        "2 request(s) to gpt-image-2:",
        f"  {body}",
        f"  {body}",
        "adjustments:",
        "  - n: 2 → 1 (a streamed request makes 1 image (stream events carry no image index), "
        "so the 2 images are requested in 2 parallel requests)",
        # previews included; the assumption line is tested in test_cli_cost.py
        "estimated cost: about $0.43 (2 requests, about $0.22 each)",
        *out.splitlines()[-1:],
    ]


def test_dry_run_of_a_model_that_does_not_stream() -> None:
    code, out = run(["generate", "a fox", "--model", "dall-e-2", "--partial-images", "3",
                     "--dry-run", "--json"])  # fmt: skip
    assert code == 0
    assert '"stream"' not in out.split('"adjustments"')[0]
    assert '"reason": "dall-e-2 does not stream previews; the finished images come as usual"' in out


@pytest.mark.parametrize("value", ["4", "-1", "two", "1.5"])
def test_partial_images_out_of_range_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["generate", "a fox", "--partial-images", value, "--dry-run"])
    assert exited.value.code == 2
    assert "--partial-images" in capsys.readouterr().err


def test_python_dash_m_streams(served: Emulator, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "OPENAI_BASE_URL": served.base_url,
        "OPENAI_API_KEY": served.api_key,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "langchain_imagegen",
            "generate",
            "a fox",
            "--partial-images",
            "1",
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    assert PREVIEW_LINE.match(line), line
    assert done.stdout.startswith("Generated 1 image with gpt-image-2.")
    assert "preview-" not in done.stdout


# --- the printer on its own -----------------------------------------------------------------


def _progress(stream: io.StringIO, n: int = 2, partial_images: int = 3) -> _Progress:
    plan = coerce_params(
        get_profile("gpt-image-2"), {"prompt": "p", "n": n}, partial_images=partial_images
    )
    return _Progress(stream, plan, lambda text: text.replace("hunter2", "***"))


def test_an_unsaved_preview_is_one_scrubbed_line() -> None:
    err = io.StringIO()
    progress = _progress(err)
    progress("partial", {"request_index": 1, "partial_index": 0,
                         "error": "could not write\nbucket hunter2: denied"})  # fmt: skip
    assert (
        err.getvalue() == "preview 1/3 of image 2 not saved: could not write bucket ***: denied\n"
    )


def test_lines_from_parallel_threads_never_interleave() -> None:
    terminal = _Terminal()
    progress = _progress(terminal, n=8, partial_images=3)
    barrier = threading.Barrier(8)

    def request(index: int) -> None:
        barrier.wait()
        for partial in range(3):
            progress("partial", {"request_index": index, "partial_index": partial,
                                 "path": f"/images/preview-{index:016x}.png"})  # fmt: skip
        progress("received", {"request_index": index, "images": 1})

    threads = [threading.Thread(target=request, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.finish()

    frames = terminal.getvalue().split("\r")[1:]
    lines = [frame[:-1].rstrip() for frame in frames if frame.startswith("preview")]
    assert len(lines) == 24
    assert all(PREVIEW_LINE.match(line) for line in lines), lines
    bars = [frame for frame in frames if frame.startswith("[")]
    assert all(re.fullmatch(r"\[[#-]{20}\] \d/8 images(, \d+ previews?)? *\n?", b) for b in bars)
    assert bars[-1].endswith("\n")
    assert bars[-1].rstrip() == "[" + "#" * 20 + "] 8/8 images"

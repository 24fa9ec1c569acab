"""Ctrl-C and cancellation stop a call at once, whatever is in flight.

The emulator holds every generation for a long time (``latency_s``), so that requests are in
flight when the call is interrupted: by SIGINT to the CLI in a subprocess, by
``_thread.interrupt_main`` (the same KeyboardInterrupt) in this process, and by cancelling
the task of an ``agenerate``. Each must end within about a second (asserted with a generous
margin), close its connections and leave no file, temp files included, in ``output_dir``.
"""

from __future__ import annotations

import _thread
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.emulator import Emulator
from tests.reliability.conftest import EMULATOR_MARKS, MakeTool, files_under

pytestmark = [*EMULATOR_MARKS, pytest.mark.usefixtures("sigint_raises")]

HELD_S = 30.0
"""How long the emulator holds each generation: far beyond any bound asserted here."""
PROMPT = "a lighthouse at dawn"


def _in_flight(emulator: Emulator, count: int) -> Callable[[], bool]:
    return lambda: emulator.stats().generation_requests >= count


def _open_connections_to(port: int) -> int | None:
    """Established TCP connections to ``port`` on this host, from ``/proc/net/tcp`` (Linux),
    else ``None``. The emulator cannot tell: its handlers only notice a closed connection
    when they answer, after ``HELD_S``."""
    try:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    established = "01"
    return sum(
        1
        for row in rows
        if row.split()[3] == established and int(row.split()[2].rsplit(":", 1)[1], 16) == port
    )


def test_ctrl_c_stops_the_cli_at_once(emulator: Emulator, tmp_path: Path) -> None:
    emulator.latency_s = HELD_S
    out = tmp_path / "images"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "OPENAI_API_KEY": emulator.api_key,
        "OPENAI_BASE_URL": emulator.base_url,
    }
    command = [sys.executable, "-m", "langchain_imagegen", "generate", PROMPT]
    options = ["--model", "dall-e-3", "-n", "3", "--download", "--output-dir", str(out)]
    process = subprocess.Popen(
        [*command, *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for(_in_flight(emulator, 3), 60), "the CLI never sent its 3 requests"
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=HELD_S / 2)
        took = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert took < 2.0, f"Ctrl-C took {took:.2f} s"
    assert stderr == "langchain-imagegen: interrupted\n"
    assert stdout == ""
    assert files_under(out) == []


def test_ctrl_c_interrupts_a_sync_fan_out(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    emulator.latency_s = HELD_S
    tool = make_tool(model="dall-e-3", download_urls=True)
    threads_before = set(threading.enumerate())

    def interrupt_when_in_flight() -> None:
        if wait_for(_in_flight(emulator, 2), 20):
            _thread.interrupt_main()  # what a SIGINT does: KeyboardInterrupt in the main thread

    threading.Thread(target=interrupt_when_in_flight, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        tool.generate({"prompt": PROMPT, "n": 2})
    took = time.monotonic() - started
    assert emulator.stats().generation_requests == 2
    assert took < HELD_S / 3, f"the interrupt took {took:.2f} s"
    # Whatever still runs of the abandoned requests cannot keep the interpreter alive.
    assert all(t.daemon for t in set(threading.enumerate()) - threads_before)
    tool.close()
    assert files_under(out_dir) == []


async def test_cancelling_agenerate_cancels_every_request(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    emulator.latency_s = HELD_S
    tool = make_tool(model="dall-e-3", download_urls=True)
    before = asyncio.all_tasks()
    call = asyncio.ensure_future(tool.agenerate({"prompt": PROMPT, "n": 3}))
    for _ in range(2000):
        if _in_flight(emulator, 3)():
            break
        await asyncio.sleep(0.01)
    assert emulator.stats().generation_requests == 3
    started = time.monotonic()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    took = time.monotonic() - started
    assert took < 1.0, f"cancelling took {took:.2f} s"
    # Every fanned-out task has ended by the time the call's task has: nothing left running.
    assert asyncio.all_tasks() <= before
    assert _open_connections_to(emulator.port) in (0, None)  # the cancelled streams closed
    await tool.aclose()
    assert files_under(out_dir) == []


def test_ctrl_c_closes_every_stream_of_a_sync_fan_out_at_once(
    emulator: Emulator, make_tool: MakeTool, out_dir: Path
) -> None:
    """Streamed previews in fan-out threads: the interrupt shuts their sockets down at once
    (``client.Cancellation``), instead of letting them read on until the deadline."""
    # Neither the read timeout nor the call's budget may end the stalled streams first.
    tool = make_tool(model="gpt-image-1", partial_images=2, timeout=HELD_S, retry_budget=HELD_S)
    previews_sent = threading.Event()

    def interrupt_when_streaming() -> None:
        both = lambda: emulator.stats().stream_events_written >= 2  # noqa: E731
        if wait_for(both, 20):
            previews_sent.set()
            time.sleep(0.2)  # the previews are read, saved and announced
            _thread.interrupt_main()

    threading.Thread(target=interrupt_when_streaming, daemon=True).start()
    stall = f"[[fault:stream_stall:{HELD_S}]]"
    with pytest.raises(KeyboardInterrupt):
        tool.generate({"prompt": f"{PROMPT} {stall}", "n": 2})
    interrupted = time.monotonic()
    assert previews_sent.is_set()
    # Both servers' handlers notice the closed streams while they stall, long before HELD_S.
    assert wait_for(lambda: emulator.stats().streams_abandoned == 2, 5.0), (
        f"{emulator.stats().streams_abandoned} of 2 streams closed "
        f"{time.monotonic() - interrupted:.2f} s after the interrupt"
    )
    tool.close()
    # The previews saved before the interrupt stay (each a whole file); no temp file, no
    # final image.
    names = [path.name for path in files_under(out_dir)]
    assert all(name.startswith("preview-") and not name.endswith(".part") for name in names)

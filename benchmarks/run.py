"""Benchmark ImageGenerationTool against raw httpx doing the same request, on the loopback emulator.

One command measures everything in one run and writes the table into docs/performance.md::

    .venv/bin/python benchmarks/run.py           # full run; exit code 1 if a target is missed
    .venv/bin/python benchmarks/run.py --quick   # short run; reports only (exit code 0)

Method (also written to docs/performance.md):

* The emulator (tests/emulator.py) runs in its own process on 127.0.0.1, one process per
  server configuration (latency, image size), so its work never shares a GIL with the client
  being measured. The tool and its raw-httpx baseline talk to the same emulator process.
* Sync timings interleave tool and baseline call by call (the order rotates every call) after
  a warm-up, and report the median over rounds of each round's mean; async batches alternate
  batch by batch. Both sides reuse one client (connection pool, keep-alive) across calls.
* The per-call target is relative to LangChain's floor: a minimal BaseTool with the tool's
  args schema whose ``_run`` is the raw post. The ratios to raw httpx are reported.
* Throughput: N async calls at concurrency C against the emulator at latency L (1,000 / 100
  / 20 ms), each client in a fresh process per measurement: calls per second, the client
  process's CPU time per call, and the most requests the emulator handled at once.
* Memory is measured in a fresh subprocess per measurement: tracemalloc peak above the
  traced memory just before the call (after a warm-up call), and peak RSS (VmHWM, without a
  warm-up) above the RSS just before the call.
* Import time is measured in fresh interpreters (median of several, after one discarded run
  that writes the bytecode cache).

Nothing here talks to anything but 127.0.0.1.
"""

# No ``from __future__ import annotations``: the floor tool below must have real annotations,
# as the tool's ``_run`` has. BaseTool reads ``_run``'s type hints on every call, and string
# annotations would be compiled again each time, slowing the floor and flattering the tool.

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.emulator

DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
STORAGE_START, STORAGE_END = "<!-- bench-storage:start -->", "<!-- bench-storage:end -->"
SECTIONS = (
    (
        START,
        END,
        (
            "overhead",
            "fanout",
            "concurrency",
            "throughput",
            "memory",
            "streaming",
            "import",
            "coercion",
        ),
    ),
    (STORAGE_START, STORAGE_END, ("storage",)),
)
"""The doc's tables: each is rewritten by a run of all of its scenarios."""
API_KEY = "sk-test-emulator"
PROMPT = "a lighthouse on a cliff at dawn, watercolor"
SERVER_LIFETIME_S = 900.0
SUBPROCESS_TIMEOUT_S = 300.0

DOC_INTRO = f"""# Performance

`benchmarks/run.py` measures `ImageGenerationTool` against raw `httpx` doing the same request
(same JSON body, same loopback server, a reused client on both sides), in one run:

<!-- not-run: the benchmark takes a minute and measures timing; run it by hand -->
```bash
.venv/bin/python benchmarks/run.py           # full run: exit code 1 if a target is missed
.venv/bin/python benchmarks/run.py --quick   # short run, report only
```

Method:

- The server is the spec-faithful emulator (`tests/emulator.py`), in its own process on
  127.0.0.1, so its work does not share the client's GIL. Tool and baseline hit the same
  emulator process.
- Each sync timing interleaves tool and baseline call by call (the order rotates every call),
  after a warm-up, and reports the median over rounds of the per-round mean; async batches
  alternate batch by batch.
- The tool is called the way an agent calls it: `tool.invoke(ToolCall)` / `ainvoke`, which
  returns a `ToolMessage` with the result as artifact. The raw baseline is
  `client.post(url, json=body)` plus `response.json()` on a reused `httpx.Client` /
  `AsyncClient` (for 50 concurrent calls with httpx's default pool limits, the fastest of
  those tried); for base64 images it also decodes and writes each image to disk, which is the
  useful work the tool does.
- The per-call target compares the tool with LangChain's floor: a minimal `BaseTool` subclass
  with the tool's own args schema (so LangChain parses and checks the same arguments for
  both) whose `_run` is just that raw post, called the same way, on the same emulator, in the
  same run. The same floor without an args schema (LangChain then skips argument parsing) and
  the raw post itself are reported for context, not targeted.
- Throughput (many agents in one process): 1,000 async calls, 100 at a time (100 workers, each
  awaiting one call after another), against an emulator answering after 20 ms, in a fresh
  client process per measurement (and a fresh emulator process), after one warm-up call;
  three rounds, the order of the clients rotating from round to round, medians reported.
  Calls per second is calls over wall time; client CPU per call is the client process's CPU
  time (`time.process_time`, all its threads) over calls; requests in flight is the most the
  emulator was handling at once (read, not yet answered). Measured for the tool's
  `ainvoke(ToolCall)`, LangChain's floor (as above, its `_arun` posting on the tool's
  transport), raw `httpx.AsyncClient` and, when installed, raw `httpx2.AsyncClient` (both
  post + `.json()`, default limits), raw `aiohttp`, the openai SDK's
  `AsyncOpenAI().images.generate` (`max_retries=0`), and the tool with
  `LANGCHAIN_IMAGEGEN_HTTP_POOL=httpcore2` (what an install without the `fast` extra uses; the
  tool's own row uses its default, aiohttp's pool when aiohttp is installed). The CPU target
  is relative to the raw httpx client that used least (httpx or httpx2), as the issue set it;
  raw aiohttp is reported, not targeted. `IMAGEGEN_BENCH_PROFILE=DIR` runs each client's
  timed calls under cProfile and writes `DIR/<client>.pstats` (its figures are then not
  comparable).
- Memory is measured in a fresh subprocess per measurement: the tracemalloc peak above what was
  traced just before the call (after a warm-up call), and the peak RSS (`VmHWM`, reset through
  `/proc/self/clear_refs`, no warm-up) above the RSS just before the call.
- Import time: fresh interpreters, median of several runs after one discarded run (which
  writes the bytecode caches). The tool module is timed in the same interpreter right after
  `BaseTool`, so the row shows what the package adds on top of LangChain.
- Numbers depend on the machine: they are from the machine named under the table (a shared
  2-vCPU VM, where run-to-run noise on the per-call ratio is about ±0.1). Ratios are what the
  targets constrain.

{START}
{END}
"""


# ============================================================================================
# Emulator in a subprocess
# ============================================================================================


def serve(
    latency: float, image_bytes: int | None, lifetime: float, stream_interval: float = 0.0
) -> int:
    """Child process: run the emulator until stdin closes (or ``lifetime`` passes); then
    print, one JSON line each, when it started writing each streamed event (its
    ``stream_log``, on the system-wide monotonic clock), and last its counters (a JSON
    object: :class:`tests.emulator.EmulatorStats`)."""
    import dataclasses

    from tests.emulator import Emulator

    emulator = Emulator(
        api_key=API_KEY,
        latency_s=latency,
        image_bytes=image_bytes,
        record_bodies=False,
        max_lifetime_s=lifetime,
        stream_interval_s=stream_interval,
    )
    with emulator:

        def watch_stdin() -> None:
            sys.stdin.read()
            emulator.stop()

        threading.Thread(target=watch_stdin, daemon=True).start()
        print(emulator.base_url, flush=True)
        emulator.wait(lifetime)
    for record in emulator.stream_log:
        print(json.dumps([record.request_id, record.what, record.at]), flush=True)
    print(json.dumps(dataclasses.asdict(emulator.stats())), flush=True)
    return 0


@contextlib.contextmanager
def emulator_process(
    latency: float = 0.0,
    image_bytes: int | None = None,
    stream_interval: float = 0.0,
    stream_log: list[tuple[str, str, float]] | None = None,
    stats: dict[str, Any] | None = None,
) -> Iterator[str]:
    """Start an emulator process; yield its OpenAI-style base URL; stop it on exit, and
    then fill ``stream_log`` (if given) with its ``(request id, event, at)`` records and
    ``stats`` (if given) with its counters (``EmulatorStats`` as a dict)."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve",
        f"--latency={latency}",
        f"--stream-interval={stream_interval}",
    ]
    if image_bytes:
        cmd.append(f"--image-bytes={image_bytes}")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        if not base_url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"emulator did not start (got {base_url!r})")
        yield base_url
    finally:
        try:
            remaining, _ = proc.communicate(timeout=15)  # closes stdin: the emulator stops
        except subprocess.TimeoutExpired:
            proc.kill()
            remaining, _ = proc.communicate(timeout=15)
        lines = [json.loads(line) for line in remaining.splitlines() if line]
        if stream_log is not None:
            stream_log.extend(tuple(line) for line in lines if isinstance(line, list))
        if stats is not None:
            stats.update(next((line for line in lines if isinstance(line, dict)), {}))


S3_BUCKET = "bench"
S3_OPTIONS_ENV = "IMAGEGEN_BENCH_S3_OPTIONS"
"""How the parent hands the S3 endpoint's storage options to a memory-probe child."""


def serve_s3(lifetime: float) -> int:
    """Child process: moto's ``ThreadedMotoServer`` (S3 over HTTP) on 127.0.0.1 until stdin
    closes (or ``lifetime`` passes); prints its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    done = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"http://{host}:{port}", flush=True)
    done.wait(lifetime)
    server.stop()
    return 0


@contextlib.contextmanager
def s3_process() -> Iterator[dict[str, Any]]:
    """Start moto's S3 server in its own process (its request handling does not share the
    client's GIL, like the emulator), create the benchmark bucket, and yield the s3fs
    ``storage_options`` for it (dummy credentials: moto does not check signatures)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-s3"]
    proc = subprocess.Popen(  # moto logs every request on stderr: not wanted here
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        if not endpoint.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"S3 server did not start (got {endpoint!r})")
        options = {
            "endpoint_url": endpoint,
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": "us-east-1"},
        }
        import s3fs

        s3fs.S3FileSystem(skip_instance_cache=True, **options).call_s3(
            "create_bucket", Bucket=S3_BUCKET
        )
        yield options
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


# ============================================================================================
# Results
# ============================================================================================


@dataclass
class Row:
    metric: str
    tool: float
    baseline: float
    unit: str
    target: str
    passed: bool | None  # None: reported only
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.tool / self.baseline if self.baseline else float("inf")


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "us":
        return f"{value:.1f} µs"
    if unit == "MB":
        return f"{value:.2f} MB"
    if unit == "calls/s":
        return f"{value:.0f} calls/s"
    return f"{value:g} {unit}"


def ratio_row(  # noqa: PLR0917
    metric: str, tool: float, baseline: float, unit: str, limit: float, note: str = ""
) -> Row:
    row = Row(metric, tool, baseline, unit, f"≤ {limit:g}×", None, note)  # noqa: RUF001
    row.passed = row.ratio <= limit
    return row


def alternate(fns: list[Callable[[], Any]], rounds: int, calls: int) -> list[float]:
    """Median over ``rounds`` of the mean seconds per call of each function.

    Calls are interleaved one by one (every function once, in an order that rotates from
    call to call), so a burst of load from other processes on a shared machine hits every
    function alike instead of whichever one happened to be running.
    """
    for fn in fns:  # warm-up: connections, lazy imports, caches
        for _ in range(max(1, calls // 4)):
            fn()
    count = len(fns)
    times: list[list[float]] = [[] for _ in fns]
    for index in range(rounds):
        totals = [0.0] * count
        for call in range(calls):
            shift = (index + call) % count
            for position in [*range(shift, count), *range(shift)]:
                started = time.perf_counter()
                fns[position]()
                totals[position] += time.perf_counter() - started
        for position in range(count):
            times[position].append(totals[position] / calls)
    return [statistics.median(series) for series in times]


async def aalternate(
    tool: Callable[[], Awaitable[Any]], raw: Callable[[], Awaitable[Any]], rounds: int
) -> tuple[float, float]:
    """Async :func:`alternate`, one call per round (each call is a whole batch)."""
    await tool()
    await raw()
    tool_times: list[float] = []
    raw_times: list[float] = []
    for index in range(rounds):
        order = [(tool, tool_times), (raw, raw_times)]
        if index % 2:
            order.reverse()
        for fn, sink in order:
            started = time.perf_counter()
            await fn()
            sink.append(time.perf_counter() - started)
    return statistics.median(tool_times), statistics.median(raw_times)


def tool_call(args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"name": "generate_image", "args": args, "id": call_id, "type": "tool_call"}


def check_message(message: Any, images: int) -> None:
    """Every timed call must really have produced its images."""
    if getattr(message, "status", None) != "success":
        raise RuntimeError(f"tool call failed during the benchmark: {message!r}")
    produced = len(message.artifact.images)
    if produced != images:
        raise RuntimeError(f"expected {images} images, got {produced}")


# ============================================================================================
# Scenarios
# ============================================================================================


def overhead_rotation(
    tool: Any, raw_client: Any, url: str, args: dict[str, Any]
) -> dict[str, Callable[[], Any]]:
    """What the per-call target compares, one call each (here and in benchmarks/layers.py):
    the tool's ``invoke(ToolCall)``; the raw post (``raw_client.post`` of the request the
    tool sends for ``args`` + ``.json()``); LangChain's floor, a minimal ``BaseTool`` with the
    tool's args schema whose ``_run`` is that raw post; and the same floor without an args
    schema (LangChain then skips parsing the arguments)."""
    from langchain_core.tools import BaseTool

    body = tool.coerce(args).requests[0]
    call = tool_call(args)

    class RawPostTool(BaseTool):
        """LangChain's floor: a minimal BaseTool whose whole work is the raw post."""

        name: str = "generate_image"
        description: str = "raw post"

        def _run(self, prompt: str, size: str | None = None, **kwargs: Any) -> Any:
            return raw_client.post(url, json=body).json()

    # The floor with the tool's own args schema: LangChain parses and checks the same
    # arguments for both, so the ratio shows what the package adds on top of LangChain.
    floor = RawPostTool(args_schema=tool.args_schema)
    bare_floor = RawPostTool()
    return {
        "tool": lambda: tool.invoke(call),
        "raw": lambda: raw_client.post(url, json=body).json(),
        "floor": lambda: floor.invoke(call),
        "bare": lambda: bare_floor.invoke(call),
    }


def bench_overhead(quick: bool, out: Path) -> list[Row]:
    """Per-call overhead at 0 ms server latency, url responses, sync."""
    import httpx

    from langchain_imagegen.tool import ImageGenerationTool

    rounds, calls = (5, 40) if quick else (31, 60)
    args = {"prompt": PROMPT, "size": "256x256"}
    with emulator_process(latency=0.0) as base_url:
        tool = ImageGenerationTool(
            model="dall-e-2", api_key=API_KEY, base_url=base_url, output_dir=str(out)
        )
        raw_client = httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)
        sides = overhead_rotation(tool, raw_client, f"{base_url}/images/generations", args)
        check_message(sides["tool"](), 1)
        for floor in (sides["floor"], sides["bare"]):
            if '"data"' not in str(floor().content):
                raise RuntimeError("a floor tool did not get an images response")

        try:
            t_tool, t_raw, t_floor, t_bare = alternate(list(sides.values()), rounds, calls)
        finally:
            tool.close()
            raw_client.close()
    return [
        ratio_row(
            "per-call time, 1 image, 0 ms latency (dall-e-2 url): the tool's `invoke(ToolCall)` "
            "vs LangChain's floor, a bare `BaseTool` with the same args schema whose `_run` is "
            "the raw post, called the same way",
            t_tool * 1e3,
            t_floor * 1e3,
            "ms",
            1.1,
        ),
        Row(
            "context: the tool vs a bare `BaseTool` without an args schema (LangChain then "
            "skips parsing the arguments) doing the raw post",
            t_tool * 1e3,
            t_bare * 1e3,
            "ms",
            "report only",
            None,
        ),
        Row(
            "context: the tool vs the raw post (`Client.post` + `.json()`)",
            t_tool * 1e3,
            t_raw * 1e3,
            "ms",
            "report only",
            None,
        ),
        Row(
            "context: LangChain's floor (with the args schema) vs the raw post",
            t_floor * 1e3,
            t_raw * 1e3,
            "ms",
            "report only",
            None,
        ),
    ]


def bench_fanout(quick: bool, out: Path) -> list[Row]:
    """8 images on dall-e-3 (one image per request) at 200 ms, sync and async."""
    import httpx

    from langchain_imagegen.tool import ImageGenerationTool

    rounds = 5 if quick else 15
    args = {"prompt": PROMPT, "n": 8}
    rows = []
    with emulator_process(latency=0.2) as base_url:
        tool = ImageGenerationTool(
            model="dall-e-3",
            api_key=API_KEY,
            base_url=base_url,
            output_dir=str(out),
            max_images=8,
        )
        plan = tool.coerce(args)
        assert len(plan.requests) == 8
        body = plan.requests[0]
        url = f"{base_url}/images/generations"
        call = tool_call(args)
        headers = {"Authorization": f"Bearer {API_KEY}"}

        raw_client = httpx.Client(headers=headers, timeout=60)
        check_message(tool.invoke(call), 8)
        try:
            t_tool, t_raw = alternate(
                [lambda: tool.invoke(call), lambda: raw_client.post(url, json=body).json()],
                rounds,
                1,
            )
        finally:
            tool.close()
            raw_client.close()
        rows.append(
            ratio_row(
                "8 images, dall-e-3 (8 requests), 200 ms latency, sync `invoke` vs one raw request",
                t_tool * 1e3,
                t_raw * 1e3,
                "ms",
                1.25,
            )
        )

        async def run_async() -> tuple[float, float]:
            async with httpx.AsyncClient(headers=headers, timeout=60) as aclient:
                check_message(await tool.ainvoke(call), 8)

                async def one_tool() -> None:
                    await tool.ainvoke(call)

                async def one_raw() -> None:
                    (await aclient.post(url, json=body)).json()

                try:
                    return await aalternate(one_tool, one_raw, rounds)
                finally:
                    await tool.aclose()

        t_tool, t_raw = asyncio.run(run_async())
        rows.append(
            ratio_row(
                "8 images, dall-e-3 (8 requests), 200 ms latency, `ainvoke` vs one raw "
                "async request",
                t_tool * 1e3,
                t_raw * 1e3,
                "ms",
                1.25,
            )
        )
    return rows


def bench_concurrency(quick: bool, out: Path) -> list[Row]:
    """50 concurrent ``ainvoke`` at 200 ms vs 50 concurrent raw AsyncClient posts."""
    import httpx

    from langchain_imagegen.tool import ImageGenerationTool

    rounds = 5 if quick else 15
    concurrency = 50
    args = {"prompt": PROMPT}
    with emulator_process(latency=0.2) as base_url:
        tool = ImageGenerationTool(
            model="dall-e-3", api_key=API_KEY, base_url=base_url, output_dir=str(out)
        )
        body = tool.coerce(args).requests[0]
        url = f"{base_url}/images/generations"
        calls = [tool_call(args, f"call_{i}") for i in range(concurrency)]

        async def run() -> tuple[float, float]:
            # httpx's default pool limits: of those tried (100/20, 50/50, 256/128, 10/10) the
            # fastest for this load, so the baseline is raw httpx at its best.
            async with httpx.AsyncClient(
                headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
            ) as aclient:

                async def batch_tool() -> None:
                    messages = await asyncio.gather(*(tool.ainvoke(c) for c in calls))
                    for message in messages:
                        check_message(message, 1)

                async def batch_raw() -> None:
                    async def one() -> Any:
                        return (await aclient.post(url, json=body)).json()

                    await asyncio.gather(*(one() for _ in range(concurrency)))

                try:
                    return await aalternate(batch_tool, batch_raw, rounds)
                finally:
                    await tool.aclose()

        t_tool, t_raw = asyncio.run(run())
    return [
        ratio_row(
            f"{concurrency} concurrent calls, 200 ms latency (dall-e-3 url), `ainvoke` vs raw "
            "`AsyncClient.post`",
            t_tool * 1e3,
            t_raw * 1e3,
            "ms",
            1.15,
        )
    ]


# ---- throughput -----------------------------------------------------------------------------

THROUGHPUT_CALLS = 1000
THROUGHPUT_CONCURRENCY = 100
THROUGHPUT_LATENCY_S = 0.02
THROUGHPUT_RAW = ("httpx", "httpx2")
"""The raw clients (post + ``.json()``) the tool's CPU per call is compared with; ``httpx2``
only when it is installed (langsmith brings it)."""
THROUGHPUT_SIDES = ("tool", "tool-httpcore2", "floor", *THROUGHPUT_RAW, "aiohttp", "openai")
THROUGHPUT_OPTIONAL = {
    "tool-httpcore2": "httpcore2",
    "httpx2": "httpx2",
    "aiohttp": "aiohttp",
    "openai": "openai",
}
"""Sides measured only when the module they need is installed."""
THROUGHPUT_LABELS = {
    "tool": "the tool's `ainvoke(ToolCall)` (its default pool: aiohttp's, installed here as "
    "with the `fast` extra)",
    "tool-httpcore2": "the tool's `ainvoke(ToolCall)` with httpcore2's pool (no `fast` extra: "
    "`LANGCHAIN_IMAGEGEN_HTTP_POOL=httpcore2`)",
    "floor": "LangChain's floor (a `BaseTool` with the tool's args schema whose `_arun` is the "
    "raw post, on the tool's transport) called the same way",
    "httpx": "raw `httpx.AsyncClient` post + `.json()`",
    "httpx2": "raw `httpx2.AsyncClient` post + `.json()`",
    "aiohttp": "raw `aiohttp.ClientSession` post + `.json()` (no httpx at all)",
    "openai": "the openai SDK's `AsyncOpenAI().images.generate`",
}
PROFILE_ENV = "IMAGEGEN_BENCH_PROFILE"
"""A directory: each throughput probe child then runs its timed calls under cProfile and
writes ``<side>.pstats`` there (its figures are then not comparable: profiling is slow)."""


def throughput_probe(side: str, base_url: str, body_json: str, calls: str, concurrency: str) -> int:
    """Child process: ``calls`` async calls, ``concurrency`` at a time (as many workers,
    each awaiting one call after another), after one warm-up call; print the wall and the
    process CPU seconds they took (all threads of the process)."""
    body = json.loads(body_json)
    total, workers = int(calls), int(concurrency)
    profile_dir = os.environ.get(PROFILE_ENV)

    async def run() -> tuple[float, float]:
        one: Callable[[], Awaitable[Any]]
        close: Callable[[], Awaitable[Any]]
        if side in ("tool", "tool-httpcore2"):
            from langchain_imagegen.tool import ImageGenerationTool
            from langchain_imagegen.transport import POOL_ENV

            if side == "tool-httpcore2":
                os.environ[POOL_ENV] = "httpcore2"

            tool = ImageGenerationTool(model=body["model"], api_key=API_KEY, base_url=base_url)
            call = tool_call({k: v for k, v in body.items() if k != "model"})

            async def one() -> None:
                check_message(await tool.ainvoke(call), int(body.get("n", 1)))

            close = tool.aclose
        elif side == "floor":
            import httpx
            from langchain_core.tools import BaseTool

            from langchain_imagegen.client import DEFAULT_LIMITS
            from langchain_imagegen.tool import ImageGenerationTool
            from langchain_imagegen.transport import pooled_async_transport

            schema = ImageGenerationTool(
                model=body["model"], api_key=API_KEY, base_url=base_url
            ).args_schema
            floor_client = httpx.AsyncClient(
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=60,
                limits=DEFAULT_LIMITS,
                transport=pooled_async_transport(DEFAULT_LIMITS),
            )
            floor_url = f"{base_url}/images/generations"

            class RawPostTool(BaseTool):
                """LangChain's floor: a minimal BaseTool whose whole work is the raw post."""

                name: str = "generate_image"
                description: str = "raw post"

                def _run(self, prompt: str, **kwargs: Any) -> Any:
                    raise NotImplementedError

                async def _arun(self, prompt: str, **kwargs: Any) -> Any:
                    return (await floor_client.post(floor_url, json=body)).json()

            floor = RawPostTool(args_schema=schema)
            call = tool_call({k: v for k, v in body.items() if k != "model"})

            async def one() -> None:
                if '"data"' not in str((await floor.ainvoke(call)).content):
                    raise RuntimeError("the floor tool got no images response")

            close = floor_client.aclose
        elif side == "aiohttp":
            import aiohttp

            session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {API_KEY}"},
                connector=aiohttp.TCPConnector(limit=256),
            )
            aiohttp_url = f"{base_url}/images/generations"

            async def one() -> None:
                async with session.post(aiohttp_url, json=body) as response:
                    if not (await response.json())["data"]:
                        raise RuntimeError("aiohttp got no image")

            close = session.close
        elif side == "openai":
            from openai import AsyncOpenAI

            sdk = AsyncOpenAI(api_key=API_KEY, base_url=base_url, max_retries=0, timeout=60)

            async def one() -> None:
                if not (await sdk.images.generate(**body)).data:
                    raise RuntimeError("the openai SDK got no image")

            close = sdk.close
        else:  # httpx, httpx2: the same API
            module = importlib.import_module(side)
            client = module.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)
            url = f"{base_url}/images/generations"

            async def one() -> None:
                if not (await client.post(url, json=body)).json()["data"]:
                    raise RuntimeError(f"{side} got no image")

            close = client.aclose
        await one()  # imports, the first connection, caches
        left = total

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one()

        profiler = None
        if profile_dir:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(Path(profile_dir) / f"{side}.pstats"))
        await close()
        return wall, cpu

    wall, cpu = asyncio.run(run())
    print(json.dumps({"wall": wall, "cpu": cpu}))
    return 0


def run_throughput_probe(
    side: str, body: dict[str, Any], calls: int, concurrency: int, latency: float
) -> dict[str, float]:
    """One :func:`throughput_probe` child against a fresh emulator process: calls per second,
    CPU seconds per call, and the most requests the emulator was handling at once."""
    stats: dict[str, Any] = {}
    with emulator_process(latency=latency, stats=stats) as base_url:
        printed = _probe(
            "--throughput-probe", side, base_url, json.dumps(body), str(calls), str(concurrency)
        )
    measured = json.loads(printed)
    return {
        "rate": calls / measured["wall"],
        "cpu": measured["cpu"] / calls,
        "in_flight": float(stats["peak_requests_in_flight"]),
    }


def bench_throughput(quick: bool) -> list[Row]:
    """Many agents in one process: N async calls at concurrency C against the emulator at
    latency L, a fresh client process per measurement; the tool, raw httpx (and httpx2),
    and the openai SDK when it is installed."""
    import importlib.util

    from langchain_imagegen.tool import ImageGenerationTool

    rounds = 1 if quick else 3
    calls, concurrency, latency = THROUGHPUT_CALLS, THROUGHPUT_CONCURRENCY, THROUGHPUT_LATENCY_S
    tool = ImageGenerationTool(model="dall-e-3", api_key=API_KEY, base_url="http://127.0.0.1:1/v1")
    body = tool.coerce({"prompt": PROMPT}).requests[0]
    sides = [
        side
        for side in THROUGHPUT_SIDES
        if side not in THROUGHPUT_OPTIONAL
        or importlib.util.find_spec(THROUGHPUT_OPTIONAL[side]) is not None
    ]
    results: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    for index in range(rounds):
        # The order rotates from round to round, so a burst of load from other processes
        # does not always hit the same client.
        shift = index % len(sides)
        for side in sides[shift:] + sides[:shift]:
            results[side].append(run_throughput_probe(side, body, calls, concurrency, latency))

    def med(side: str, key: str) -> float:
        return statistics.median(run[key] for run in results[side])

    scenario = (
        f"{calls:,} async calls at concurrency {concurrency}, {latency * 1e3:g} ms latency "
        f"(dall-e-3 url), fresh process per measurement, median of {rounds}"
    )
    rows = []
    if "openai" in sides:
        rows.append(
            Row(
                f"async throughput, {scenario}: {THROUGHPUT_LABELS['tool']} vs "
                f"{THROUGHPUT_LABELS['openai']} (calls per second: higher is better)",
                med("tool", "rate"),
                med("openai", "rate"),
                "calls/s",
                "≥ 1×",  # noqa: RUF001
                med("tool", "rate") >= med("openai", "rate"),
            )
        )
    else:
        rows.append(
            Row(
                f"async throughput, {scenario}: {THROUGHPUT_LABELS['tool']} (the openai SDK is "
                "not installed: `pip install openai` to compare)",
                med("tool", "rate"),
                0.0,
                "calls/s",
                "report only",
                None,
            )
        )
    raw = [side for side in THROUGHPUT_RAW if side in sides]
    fastest = min(raw, key=lambda side: med(side, "cpu"))
    rows.append(
        ratio_row(
            f"client CPU per call (process CPU time / calls), same runs: the tool vs the raw "
            f"client that used least, {THROUGHPUT_LABELS[fastest]}",
            med("tool", "cpu") * 1e3,
            med(fastest, "cpu") * 1e3,
            "ms",
            1.2,
        )
    )
    rows.append(
        Row(
            "context: client CPU per call, the tool vs LangChain's floor (what the package "
            "adds to LangChain's own per-call work), same runs",
            med("tool", "cpu") * 1e3,
            med("floor", "cpu") * 1e3,
            "ms",
            "report only",
            None,
        )
    )
    for side in sides:
        rows.append(
            Row(
                f"context: {THROUGHPUT_LABELS[side]}, same runs",
                med(side, "rate"),
                0.0,
                "calls/s",
                "report only",
                None,
                f"{med(side, 'cpu') * 1e3:.2f} ms CPU per call, at most "
                f"{med(side, 'in_flight'):.0f} requests in flight at the emulator",
            )
        )
    return rows


# ---- memory ---------------------------------------------------------------------------------


def _rss_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_probe(side: str, method: str, base_url: str, body_json: str, out: str) -> int:
    """Child process: one 4 x 2 MB b64_json call after a small warm-up call; print the peak
    bytes above the baseline just before it."""
    import tracemalloc

    import httpx

    body = json.loads(body_json)
    # The warm-up asks for one small JPEG (the emulator pads PNGs only): the same code path
    # (connection, lazy imports, decoding, saving) without a large allocation that the
    # allocator would keep and reuse during the measured call.
    small = {**body, "n": 1, "output_format": "jpeg"}
    # ``out``: a directory, or an s3:// URL on the benchmark's S3 server (options in the env).
    storage_options = json.loads(os.environ.get(S3_OPTIONS_ENV) or "{}")
    if side in ("tool", "tool-streamed"):
        from langchain_imagegen.tool import ImageGenerationTool

        tool = ImageGenerationTool(
            model=body["model"],
            api_key=API_KEY,
            base_url=base_url,
            output_dir=out,
            storage_options=storage_options,
            partial_images=STREAMED_PREVIEWS if side == "tool-streamed" else 0,
        )

        def work(request: dict[str, Any]) -> None:
            args = {k: v for k, v in request.items() if k != "model"}
            check_message(tool.invoke(tool_call(args)), int(request["n"]))

    else:
        client = httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)
        url = f"{base_url}/images/generations"
        if out.startswith("s3://"):
            import s3fs

            fs = s3fs.S3FileSystem(**storage_options)

            def write(name: str, image: bytes) -> None:
                fs.pipe_file(f"{out.removeprefix('s3://')}/{name}", image)

        else:

            def write(name: str, image: bytes) -> None:
                (Path(out) / name).write_bytes(image)

        def work(request: dict[str, Any]) -> None:
            data = client.post(url, json=request).json()
            for index, item in enumerate(data["data"]):
                image = base64.b64decode(item["b64_json"])
                write(f"raw-{index}.{request.get('output_format', 'png')}", image)

    work(small)
    if method == "tracemalloc":
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        work(body)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(peak - before)
    else:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # reset VmHWM to the current RSS
        before = _rss_kb("VmRSS")
        work(body)
        print((_rss_kb("VmHWM") - before) * 1024)
    return 0


def run_memory_probe(
    side: str,
    method: str,
    base_url: str,
    body: dict[str, Any],
    target: str,
    *,
    env: dict[str, str] | None = None,
) -> int:
    """Peak bytes one :func:`memory_probe` child measured."""
    return int(_probe("--memory-probe", side, method, base_url, json.dumps(body), target, env=env))


def _probe(option: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run this script as a child with ``option`` and ``args`` (a probe that measures in a
    fresh process); the last line it printed."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), option, *args],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if done.returncode:
        raise RuntimeError(f"{option} {args[0]} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def _memory_medians(sides: tuple[str, ...], quick: bool, out: Path) -> Callable[[str, str], float]:
    """The median peak (MB) of a 4 x 2 MB ``b64_json`` call (gpt-image-1, n=4) for each
    of ``sides`` and each method (``tracemalloc``, ``rss``), each measured in a fresh
    process, the sides alternating."""
    from langchain_imagegen.tool import ImageGenerationTool

    repeats = 1 if quick else 3
    tool = ImageGenerationTool(
        model="gpt-image-1", api_key=API_KEY, base_url="http://127.0.0.1:1/v1"
    )
    body = tool.coerce({"prompt": PROMPT, "n": 4}).requests[0]
    results: dict[tuple[str, str], list[int]] = {}
    with emulator_process(latency=0.0, image_bytes=2_000_000) as base_url:
        for _ in range(repeats):
            for method in ("tracemalloc", "rss"):
                for side in sides:
                    with tempfile.TemporaryDirectory(dir=out) as target:
                        value = run_memory_probe(side, method, base_url, body, target)
                        results.setdefault((side, method), []).append(value)

    def med(side: str, method: str) -> float:
        return statistics.median(results[side, method]) / (1024 * 1024)

    return med


def bench_memory(quick: bool, out: Path) -> list[Row]:
    """Peak memory above baseline for 4 x 2 MB b64_json images (gpt-image-1, n=4)."""
    med = _memory_medians(("tool", "raw"), quick, out)
    return [
        ratio_row(
            "peak memory above baseline, 4 x 2 MB `b64_json` images (gpt-image-1, n=4), "
            "tracemalloc; raw = post, `.json()`, b64decode, write files",
            med("tool", "tracemalloc"),
            med("raw", "tracemalloc"),
            "MB",
            1.2,
        ),
        ratio_row(
            "same, peak RSS (VmHWM) above RSS before the call, fresh process",
            med("tool", "rss"),
            med("raw", "rss"),
            "MB",
            1.2,
        ),
    ]


# ---- streaming ------------------------------------------------------------------------------

STREAMED_PREVIEWS = 2
"""Previews per image in the streaming scenarios (the API allows 0 to 3)."""


def bench_streaming(quick: bool, out: Path) -> list[Row]:
    """Streamed previews: the peak memory of a streamed 4-image call against the same call
    without streaming, and how soon a preview the server sends reaches the caller."""
    from langchain_core.callbacks import BaseCallbackHandler

    from langchain_imagegen.tool import ImageGenerationTool

    med = _memory_medians(("tool-streamed", "tool"), quick, out)

    # Latency: the server writes a preview, then waits; the caller's callback handler notes
    # when the `partial` event arrives. Both clocks are the system-wide monotonic clock.
    calls = 5 if quick else 25
    arrived: list[float] = []

    class FirstPreview(BaseCallbackHandler):
        def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
            if data.get("stage") == "partial" and data.get("partial_index") == 0:
                arrived.append(time.monotonic())

    log: list[tuple[str, str, float]] = []
    preview_bytes = 1_000_000
    with (
        emulator_process(stream_interval=0.05, image_bytes=preview_bytes, stream_log=log) as url,
        tempfile.TemporaryDirectory(dir=out) as target,
    ):
        streamed = ImageGenerationTool(
            model="gpt-image-1", api_key=API_KEY, base_url=url, output_dir=target, partial_images=1
        )
        for _ in range(calls + 1):  # the first call warms up (connection, imports)
            streamed.invoke(tool_call({"prompt": PROMPT}), config={"callbacks": [FirstPreview()]})
    sent = [at for _, what, at in log if what == "image_generation.partial_image"]
    if len(sent) != len(arrived) or len(sent) != calls + 1:
        raise RuntimeError(f"{len(sent)} previews sent, {len(arrived)} arrived")
    delays = [(got - written) * 1e3 for written, got in zip(sent[1:], arrived[1:], strict=True)]
    delay = statistics.median(delays)
    return [
        ratio_row(
            f"peak memory above baseline, streamed 4-image call ({STREAMED_PREVIEWS} previews "
            "per image, 4 streamed requests, 2 MB images, previews saved) vs the same call not "
            "streamed (one n=4 request), tracemalloc",
            med("tool-streamed", "tracemalloc"),
            med("tool", "tracemalloc"),
            "MB",
            1.0,
        ),
        ratio_row(
            "same, peak RSS (VmHWM) above RSS before the call, fresh process",
            med("tool-streamed", "rss"),
            med("tool", "rss"),
            "MB",
            1.0,
        ),
        Row(
            f"from the server starting to write a preview ({preview_bytes / 1e6:g} MB image) "
            "to the `partial` custom event reaching the caller's callback handler (preview "
            f"decoded and saved), median of {calls} sync calls, loopback",
            delay,
            0.0,
            "ms",
            "< 5 ms",
            delay < 5.0,
            f"spread {min(delays):.2f}-{max(delays):.2f} ms",
        ),
    ]


# ---- object storage: S3 on loopback ---------------------------------------------------------


def _distinct_pngs(count: int, size: int, tag: str) -> list[bytes]:
    """``count`` real PNGs of about ``size`` bytes, each distinct (so each has its own key)."""
    from tests.emulator import encode_image

    return [encode_image("png", 1, 1, tag=f"{tag}-{i}", pad_to_bytes=size) for i in range(count)]


async def _longest_stall(work: Callable[[], Awaitable[Any]]) -> float:
    """Seconds of the longest time the event loop could not run a 1 ms heartbeat during
    ``work``: what a blocking call in a coroutine costs every other task."""
    tick = 0.001
    worst = 0.0
    running = True

    async def heartbeat() -> None:
        nonlocal worst
        last = time.perf_counter()
        while running:
            await asyncio.sleep(tick)
            now = time.perf_counter()
            worst = max(worst, now - last - tick)
            last = now

    beating = asyncio.create_task(heartbeat())
    await asyncio.sleep(tick)
    try:
        await work()
    finally:
        running = False
        await beating
    return worst


async def _amedians(fns: list[Callable[[], Awaitable[Any]]], rounds: int) -> list[float]:
    """Median seconds of each coroutine function, interleaved round by round (the order
    rotates), after one warm-up call each."""
    for fn in fns:
        await fn()
    times: list[list[float]] = [[] for _ in fns]
    for index in range(rounds):
        shift = index % len(fns)
        for position in [*range(shift, len(fns)), *range(shift)]:
            started = time.perf_counter()
            await fns[position]()
            times[position].append(time.perf_counter() - started)
    return [statistics.median(series) for series in times]


def bench_storage(quick: bool, out: Path) -> list[Row]:
    """Saving to S3 (moto's server on loopback, its own process) against raw s3fs."""
    import itertools

    import httpx
    import s3fs

    from langchain_imagegen.storage import open_store
    from langchain_imagegen.tool import ImageGenerationTool

    rounds, calls = (3, 6) if quick else (9, 12)
    rows: list[Row] = []
    with s3_process() as options:
        # One s3fs instance for both sides (fsspec caches it by its options): the same client
        # and connection pool.
        fs = s3fs.S3FileSystem(**options)
        store = open_store(f"s3://{S3_BUCKET}/tool", storage_options=options)
        assert store.filesystem is fs

        # (a) one save vs one raw pipe of the same bytes; the user metadata the tool sends
        metadata = {"model": "gpt-image-1", "prompt-sha256": hashlib.sha256(b"x").hexdigest()}
        for size, label in ((2_000_000, "2 MB"), (200_000, "200 kB")):
            images = _distinct_pngs(8, size, f"save-{size}")
            tool_turn, raw_turn = itertools.count(), itertools.count()

            def tool_save(images: list[bytes] = images, turn: Any = tool_turn) -> None:
                store.save(images[next(turn) % len(images)], metadata=metadata)

            def raw_pipe(images: list[bytes] = images, turn: Any = raw_turn) -> None:
                index = next(turn) % len(images)
                fs.pipe_file(f"{S3_BUCKET}/raw/{index}.png", images[index])

            t_tool, t_raw = alternate([tool_save, raw_pipe], rounds, calls)
            rows.append(
                ratio_row(
                    f"save one {label} PNG to S3 on loopback: `store.save` (content-hash key, "
                    "content type, signed link) vs a raw s3fs `pipe_file` of the same bytes",
                    t_tool * 1e3,
                    t_raw * 1e3,
                    "ms",
                    1.2,
                )
            )

        # (b) async: concurrent uploads, and the event loop stays free
        four = _distinct_pngs(4, 2_000_000, "async")

        async def gathered() -> None:
            await asyncio.gather(*(store.asave(image) for image in four))

        async def one_by_one() -> None:
            for image in four:
                await store.asave(image)

        async def raw_gathered() -> None:
            batch = {f"{S3_BUCKET}/raw/async-{i}.png": image for i, image in enumerate(four)}
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fs._pipe(batch), fs.loop))

        async def blocking() -> None:
            for image in four:
                store.save(image)

        async def measure() -> tuple[list[float], list[float]]:
            timings = await _amedians([gathered, one_by_one, raw_gathered], rounds)
            stalls: list[list[float]] = [[], [], []]
            for _ in range(rounds):
                for sink, work in zip(stalls, (gathered, raw_gathered, blocking), strict=True):
                    sink.append(await _longest_stall(work))
            return timings, [statistics.median(series) for series in stalls]

        (t_gathered, t_sequential, t_raw_gathered), stalls = asyncio.run(measure())
        stall_tool, stall_raw, stall_blocking = (value * 1e3 for value in stalls)
        slack_ms = 10.0
        rows += [
            ratio_row(
                "4 x 2 MB uploads from one event loop: `asyncio.gather` of four `store.asave` "
                "vs raw s3fs async `_pipe` of the four (s3fs gathers them)",
                t_gathered * 1e3,
                t_raw_gathered * 1e3,
                "ms",
                1.2,
            ),
            Row(
                "context: the same four `store.asave` awaited one after another vs gathered",
                t_sequential * 1e3,
                t_gathered * 1e3,
                "ms",
                "report only",
                None,
            ),
            Row(
                "longest event-loop stall (1 ms heartbeat) during the four gathered "
                "`store.asave` vs during raw s3fs async `_pipe`",
                stall_tool,
                stall_raw,
                "ms",
                f"≤ baseline + {slack_ms:g} ms",
                stall_tool <= stall_raw + slack_ms,
                f"the blocking `store.save` in a coroutine stalls it {stall_blocking:.0f} ms",
            ),
        ]

        # end to end, and (c) peak memory: the tool saving its images to S3
        tool = ImageGenerationTool(
            model="gpt-image-1", api_key=API_KEY, base_url="http://127.0.0.1:1/v1"
        )
        one = tool.coerce({"prompt": PROMPT}).requests[0]
        four_body = tool.coerce({"prompt": PROMPT, "n": 4}).requests[0]
        with emulator_process(latency=0.0, image_bytes=2_000_000) as base_url:
            tool = ImageGenerationTool(
                model="gpt-image-1",
                api_key=API_KEY,
                base_url=base_url,
                output_dir=f"s3://{S3_BUCKET}/e2e",
                storage_options=options,
            )
            raw_client = httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60)
            url = f"{base_url}/images/generations"
            call = tool_call({"prompt": PROMPT})
            check_message(tool.invoke(call), 1)

            def raw_e2e() -> None:
                for index, item in enumerate(raw_client.post(url, json=one).json()["data"]):
                    data = base64.b64decode(item["b64_json"])
                    fs.pipe_file(f"{S3_BUCKET}/raw/e2e-{index}.png", data)

            fan_call = tool_call({"prompt": PROMPT, "n": 4})

            async def tool_fan_out() -> None:
                check_message(await tool.ainvoke(fan_call), 4)

            async def run_async() -> tuple[list[float], list[float]]:
                async with httpx.AsyncClient(
                    headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
                ) as aclient:

                    async def raw_fan_out() -> None:
                        answer = (await aclient.post(url, json=four_body)).json()
                        batch = {
                            f"{S3_BUCKET}/raw/fan-{i}.png": base64.b64decode(item["b64_json"])
                            for i, item in enumerate(answer["data"])
                        }
                        upload = asyncio.run_coroutine_threadsafe(fs._pipe(batch), fs.loop)
                        await asyncio.wrap_future(upload)

                    timings = await _amedians([tool_fan_out, raw_fan_out], rounds)
                    stalls: list[list[float]] = [[], []]
                    for _ in range(rounds):
                        for sink, work in zip(stalls, (tool_fan_out, raw_fan_out), strict=True):
                            sink.append(await _longest_stall(work))
                    return timings, [statistics.median(series) for series in stalls]

            try:
                t_tool, t_raw = alternate(
                    [lambda: tool.invoke(call), raw_e2e], rounds, max(2, calls // 2)
                )
                (t_afan, t_raw_afan), (stall_afan, stall_raw_afan) = asyncio.run(run_async())
            finally:
                tool.close()
                raw_client.close()
            rows += [
                ratio_row(
                    "one 2 MB `b64_json` image (gpt-image-1) saved to S3: the tool's "
                    "`invoke(ToolCall)` vs raw httpx post, `.json()`, b64decode, s3fs "
                    "`pipe_file`",
                    t_tool * 1e3,
                    t_raw * 1e3,
                    "ms",
                    1.2,
                ),
                ratio_row(
                    "4 x 2 MB `b64_json` images (gpt-image-1, n=4) saved to S3: the tool's "
                    "`ainvoke(ToolCall)` vs raw async httpx post, `.json()`, b64decode, s3fs "
                    "async `_pipe` of the four",
                    t_afan * 1e3,
                    t_raw_afan * 1e3,
                    "ms",
                    1.2,
                ),
                Row(
                    "longest event-loop stall (1 ms heartbeat) during that `ainvoke` vs during "
                    "the raw async call (which decodes on the loop)",
                    stall_afan * 1e3,
                    stall_raw_afan * 1e3,
                    "ms",
                    f"≤ baseline + {slack_ms:g} ms",
                    stall_afan * 1e3 <= stall_raw_afan * 1e3 + slack_ms,
                ),
            ]

            env = {S3_OPTIONS_ENV: json.dumps(options)}
            results: dict[tuple[str, str], list[int]] = {}
            for repeat in range(1 if quick else 3):
                for method in ("tracemalloc", "rss"):
                    for side, target in (
                        ("tool", f"s3://{S3_BUCKET}/mem-{repeat}-{method}"),
                        ("raw", None),
                        ("raw-s3", f"s3://{S3_BUCKET}/mem-raw-{repeat}-{method}"),
                        ("tool-one-arena", f"s3://{S3_BUCKET}/mem-1-{repeat}-{method}"),
                    ):
                        # glibc gives each thread that allocates its own malloc arena; with
                        # one arena, what RSS the tool's upload threads add by that alone.
                        arenas = {"MALLOC_ARENA_MAX": "1"} if side == "tool-one-arena" else {}
                        with tempfile.TemporaryDirectory(dir=out) as directory:
                            value = run_memory_probe(
                                side.split("-")[0],
                                method,
                                base_url,
                                four_body,
                                target or directory,
                                env={**env, **arenas},
                            )
                        results.setdefault((side, method), []).append(value)
    mb = 1024 * 1024

    def med(side: str, method: str) -> float:
        return statistics.median(results[side, method]) / mb

    rows += [
        ratio_row(
            "peak memory above baseline, 4 x 2 MB `b64_json` images (gpt-image-1, n=4) saved "
            "to S3, tracemalloc; raw = httpx post, `.json()`, b64decode, write files",
            med("tool", "tracemalloc"),
            med("raw", "tracemalloc"),
            "MB",
            1.2,
        ),
        ratio_row(
            "same, peak RSS (VmHWM) above RSS before the call, fresh process",
            med("tool", "rss"),
            med("raw", "rss"),
            "MB",
            1.2,
        ),
        Row(
            "context: the tool saving to S3 vs raw httpx + b64decode + s3fs `pipe_file`, "
            "tracemalloc",
            med("tool", "tracemalloc"),
            med("raw-s3", "tracemalloc"),
            "MB",
            "report only",
            None,
        ),
        Row(
            "context: same, peak RSS",
            med("tool", "rss"),
            med("raw-s3", "rss"),
            "MB",
            "report only",
            None,
        ),
        Row(
            "context: peak RSS of the tool saving to S3 with one malloc arena "
            "(`MALLOC_ARENA_MAX=1`) vs raw httpx writing files",
            med("tool-one-arena", "rss"),
            med("raw", "rss"),
            "MB",
            "report only",
            None,
        ),
    ]
    return rows


# ---- import time ----------------------------------------------------------------------------

_IMPORT_PROBE = """
import sys, time
times = []
for statement in {statements!r}:
    started = time.perf_counter()
    exec(statement)
    times.append(time.perf_counter() - started)
heavy = "openai" in sys.modules or "langchain_community" in sys.modules
print(" ".join(map(str, times)), int(heavy))
"""


def _import_once(*statements: str) -> tuple[list[float], bool]:
    """Seconds each statement takes, run in order in one fresh interpreter, and whether
    ``openai`` or ``langchain_community`` ended up imported."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE.format(statements=list(statements))],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),  # import the installed package, not the CWD
        timeout=SUBPROCESS_TIMEOUT_S,
        check=True,
    )
    *times, heavy = done.stdout.split()
    return [float(t) for t in times], heavy == "1"


def _heavy_note(heavy: bool) -> str:
    if heavy:
        return "`openai` or `langchain_community` imported!"
    return "`openai`, `langchain_community` not in `sys.modules`"


def _httpx_cli_note() -> str:
    """Whether ``import httpx`` also imports httpx's command line (click, rich, pygments): it
    does whenever they are installed (the test extra brings click with ``moto[server]``'s
    Flask, and rich with langchain-tests' pytest-codspeed)."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, httpx; print(int('httpx._main' in sys.modules))"],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        timeout=SUBPROCESS_TIMEOUT_S,
        check=True,
    )
    if done.stdout.strip() != "1":
        return ""
    return (
        "; here `import httpx` also imports its command line (click, rich, pygments), as it "
        "does for every httpx user who has them installed"
    )


def bench_import(quick: bool) -> list[Row]:
    runs = 5 if quick else 15
    slack_ms = 50.0
    ours, theirs = "import langchain_imagegen", "import langchain_core.tools"
    base_tool = "from langchain_core.tools import BaseTool"
    httpx_import = "import httpx"
    tool = "from langchain_imagegen.tool import ImageGenerationTool"
    # One discarded run each (it writes the bytecode caches), then interleaved so that
    # machine noise hits both alike.
    _import_once(ours)
    _import_once(theirs)
    _import_once(base_tool, httpx_import, tool)
    mine: list[float] = []
    base: list[float] = []
    floor: list[float] = []
    httpx_ms: list[float] = []
    added: list[float] = []
    heavy = False
    for _ in range(runs):
        (elapsed,), imported = _import_once(ours)
        heavy |= imported
        mine.append(elapsed * 1e3)
        base.append(_import_once(theirs)[0][0] * 1e3)
        (first, second, third), imported = _import_once(base_tool, httpx_import, tool)
        heavy |= imported
        floor.append((first + second) * 1e3)
        httpx_ms.append(second * 1e3)
        added.append(third * 1e3)
    t_ours, t_base = statistics.median(mine), statistics.median(base)
    t_added, t_floor = statistics.median(added), statistics.median(floor)
    t_httpx = statistics.median(httpx_ms)
    return [
        Row(
            f"cold `{ours}` vs `{theirs}` + 50 ms (separate fresh interpreters)",
            t_ours,
            t_base,
            "ms",
            f"≤ baseline + {slack_ms:g} ms",
            t_ours <= t_base + slack_ms and not heavy,
            _heavy_note(heavy),
        ),
        Row(
            f"cold `{tool}` vs LangChain's floor, the imports of the per-call floor tool "
            f"(`{base_tool}`, then `{httpx_import}`), + 50 ms (one interpreter, in that order: "
            f"the tool module adds {t_added:.1f} ms)",
            t_floor + t_added,
            t_floor,
            "ms",
            f"≤ baseline + {slack_ms:g} ms",
            t_added <= slack_ms and not heavy,
            _heavy_note(heavy),
        ),
        Row(
            f"context: `{httpx_import}` after `{base_tool}` (part of the floor above)",
            t_httpx,
            0.0,
            "ms",
            "report only",
            None,
            _httpx_cli_note().removeprefix("; "),
        ),
    ]


# ---- coercion -------------------------------------------------------------------------------


def bench_coercion(quick: bool) -> list[Row]:
    from langchain_imagegen import coerce_params, get_profile
    from langchain_imagegen.tool import ImageGenerationTool

    number, repeat = (2000, 3) if quick else (20000, 7)
    proposal = {
        "prompt": PROMPT,
        "size": "1920x1080",
        "quality": "high",
        "n": 4,
        "style": "photographic",
        "aspect_ratio": "16:9",
    }
    profile = get_profile("dall-e-3")
    tool = ImageGenerationTool(
        model="dall-e-3", api_key=API_KEY, base_url="http://127.0.0.1:1/v1", max_images=4
    )
    schema = tool.args_schema
    assert schema is not None
    assert not isinstance(schema, dict)

    def coerce_only() -> None:
        coerce_params(profile, proposal, max_images=4)

    def validate_and_coerce() -> None:
        schema.model_validate(proposal)
        tool.coerce(proposal)

    def best(fn: Callable[[], None]) -> float:
        return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6

    plan = coerce_params(profile, proposal, max_images=4)
    note = f"dall-e-3 proposal → {len(plan.requests)} requests, {len(plan.adjustments)} changes"
    return [
        Row(
            "`coerce_params` per call, typical sloppy proposal",
            best(coerce_only),
            0.0,
            "us",
            "report only",
            None,
            note,
        ),
        Row(
            "args-schema validation + `tool.coerce` per call",
            best(validate_and_coerce),
            0.0,
            "us",
            "report only",
            None,
            note,
        ),
    ]


# ============================================================================================
# Report
# ============================================================================================


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("langchain-core", "httpx", "pydantic")
    )
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()} ({platform.python_implementation()}); {versions}"
    )


def render(rows: list[Row], quick: bool, elapsed: float) -> str:
    lines = [
        "| metric | tool | baseline | ratio | target | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        metric = f"{row.metric} ({row.note})" if row.note else row.metric
        baseline = fmt(row.baseline, row.unit) if row.baseline else "—"
        ratio = f"{row.ratio:.2f}×" if row.baseline else "—"  # noqa: RUF001
        result = "reported" if row.passed is None else "pass" if row.passed else "**FAIL**"
        lines.append(
            f"| {metric} | {fmt(row.tool, row.unit)} | {baseline} | {ratio} | {row.target} "
            f"| {result} |"
        )
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "`--quick` (short, indicative)" if quick else "full"
    lines += [
        "",
        f"Run: {mode}, {now}, {elapsed:.0f} s. Machine: {machine_info()}.",
    ]
    return "\n".join(lines)


def write_doc(table: str, start: str = START, end: str = END) -> None:
    """Replace the table between ``start`` and ``end`` (added at the end if missing)."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else DOC_INTRO
    if start not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(f"{head}{start}\n{table}\n{end}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short run; never fails")
    parser.add_argument(
        "--only",
        choices=[name for _, _, names in SECTIONS for name in names],
        action="append",
        help="run only these scenarios (repeatable); a table of the doc is written only when "
        "all its scenarios ran (`--only storage` writes the storage table)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-s3", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--latency", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--image-bytes", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stream-interval", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--memory-probe", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--throughput-probe", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.latency, args.image_bytes, SERVER_LIFETIME_S, args.stream_interval)
    if args.serve_s3:
        return serve_s3(SERVER_LIFETIME_S)
    if args.memory_probe:
        return memory_probe(*args.memory_probe)
    if args.throughput_probe:
        return throughput_probe(*args.throughput_probe)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as tmp:
        out = Path(tmp)
        scenarios: dict[str, Callable[[], list[Row]]] = {
            "overhead": lambda: bench_overhead(args.quick, out / "overhead"),
            "fanout": lambda: bench_fanout(args.quick, out / "fanout"),
            "concurrency": lambda: bench_concurrency(args.quick, out / "concurrency"),
            "throughput": lambda: bench_throughput(args.quick),
            "memory": lambda: bench_memory(args.quick, out),
            "streaming": lambda: bench_streaming(args.quick, out),
            "import": lambda: bench_import(args.quick),
            "coercion": lambda: bench_coercion(args.quick),
            "storage": lambda: bench_storage(args.quick, out),
        }
        for start, end, names in SECTIONS:
            chosen = [name for name in names if not args.only or name in args.only]
            if not chosen:
                continue
            started = time.perf_counter()
            section: list[Row] = []
            for name in chosen:
                print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                section.extend(scenarios[name]())
            table = render(section, args.quick, time.perf_counter() - started)
            print(table + "\n")
            if len(chosen) == len(names):
                write_doc(table, start, end)
                print(f"written to {DOC.relative_to(ROOT)}\n", file=sys.stderr)
            rows.extend(section)
    missed = [row.metric for row in rows if row.passed is False]
    if missed and not args.quick:
        print(f"\n{len(missed)} target(s) missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

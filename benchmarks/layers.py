"""Per-layer cost of one call, without sockets: where the tool's per-call time goes.

Every layer answers the same dall-e-2 URL request over ``httpx.MockTransport``, so the
figures exclude the network and the server::

    .venv/bin/python benchmarks/layers.py

Prints the best and the median of 15 rounds of 500 calls for each layer, the rounds
interleaved: the raw post, the package's client, the generator, coercion, the tool's
``_run``, a bare ``BaseTool`` with the tool's args schema doing the raw post (LangChain's
floor), and the tool's ``invoke``.

``--interleaved`` instead times the tool's ``invoke``, the raw post and the floor's
``invoke`` call by call in rotation, as ``benchmarks/run.py`` does, in CPU time
(``time.thread_time``, which other processes on a shared machine disturb far less than
wall time), and prints the best of three runs of 31 rounds of 100 calls. Run in
rotation, each layer finds the CPU caches colder than in its own block, as it does
between real requests.

``--ablate`` asks what each part of the tool's own work costs where it counts: over
loopback, against ``benchmarks/run.py``'s emulator process, in ``run.py``'s rotation (the
tool's ``invoke``, the raw post, the floor's ``invoke``, the floor without an args schema).
It times the tool as it is, then with one part replaced by a stand-in that does no work:
the LLM's text (a constant string), coercion (the plan computed once, then reused) and the
cost (none), then all three at once. Each row prints the median of three passes: the tool's
CPU time minus the floor's, and the tool's wall time over the floor's (what ``run.py``'s
target compares). The stand-ins exist only in this process, for the measurement.
"""

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import run  # noqa: E402  benchmarks/run.py (this script's folder): the per-call rotation

ROUNDS, CALLS = 15, 500
ANSWER = json.dumps({"created": 1, "data": [{"url": "https://files.example/a.png"}]}).encode()


def interleaved(
    fns: dict[str, Callable[[], Any]],
    rounds: int,
    calls: int,
    clock: Callable[[], float] = time.thread_time,
) -> dict[str, float]:
    """Median over ``rounds`` of each function's mean seconds per call on ``clock`` (CPU
    time by default), the functions called one after another in an order that rotates from
    call to call."""
    names = list(fns)
    for fn in fns.values():
        for _ in range(calls // 4):
            fn()
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        totals = dict.fromkeys(names, 0.0)
        for call in range(calls):
            shift = (index + call) % len(names)
            for name in names[shift:] + names[:shift]:
                started = clock()
                fns[name]()
                totals[name] += clock() - started
        for name in names:
            per_round[name].append(totals[name] / calls)
    return {name: statistics.median(series) for name, series in per_round.items()}


@contextlib.contextmanager
def _without(parts: tuple[str, ...]) -> Iterator[None]:
    """The tool with each of ``parts`` replaced by a stand-in that does no work."""
    from langchain_imagegen import generation
    from langchain_imagegen.result import ImageGenerationResult
    from langchain_imagegen.tool import ImageGenerationTool

    plans: dict[str, Any] = {}
    coerce = ImageGenerationTool.coerce

    def planned_once(self: Any, args: Any) -> Any:
        key = repr(sorted(args.items()))
        if key not in plans:
            plans[key] = coerce(self, args)
        return plans[key]

    stand_ins = {
        "text": (ImageGenerationResult, "to_text", lambda self: "Generated 1 image."),
        "coercion": (ImageGenerationTool, "coerce", planned_once),
        "cost": (generation._Call, "_cost", lambda self, response, index: None),
    }
    with contextlib.ExitStack() as stack:
        for part in parts:
            owner, name, stand_in = stand_ins[part]
            stack.enter_context(mock.patch.object(owner, name, stand_in))
        yield


def ablate() -> int:
    """``--ablate``: see the module docstring."""
    import httpx

    from langchain_imagegen.tool import ImageGenerationTool

    args = {"prompt": run.PROMPT, "size": "256x256"}
    variants: list[tuple[str, ...]] = [(), ("text",), ("coercion",), ("cost",)]
    variants.append(("text", "coercion", "cost"))
    with run.emulator_process(latency=0.0) as base_url:
        tool = ImageGenerationTool(
            model="dall-e-2", api_key=run.API_KEY, base_url=base_url, output_dir=tempfile.mkdtemp()
        )
        raw = httpx.Client(headers={"Authorization": f"Bearer {run.API_KEY}"}, timeout=60)
        rotation = run.overhead_rotation(tool, raw, f"{base_url}/images/generations", args)
        interleaved(rotation, 3, 60)  # settle: the heap, the pools, the emulator
        cpu: dict[tuple[str, ...], list[float]] = {parts: [] for parts in variants}
        wall: dict[tuple[str, ...], list[float]] = {parts: [] for parts in variants}
        for _ in range(3):  # three passes, the variants in turn: a drift hits them alike
            for parts in variants:
                with _without(parts):
                    on_cpu = interleaved(rotation, 11, 60)
                    on_wall = interleaved(rotation, 11, 60, time.perf_counter)
                cpu[parts].append(on_cpu["tool"] - on_cpu["floor"])
                wall[parts].append(on_wall["tool"] / on_wall["floor"])
        for parts in variants:
            label = "as it is" if not parts else "without " + " + ".join(parts)
            gap, ratio = statistics.median(cpu[parts]) * 1e6, statistics.median(wall[parts])
            print(f"{label:40s} tool - floor {gap:6.1f} µs CPU, tool / floor {ratio:.3f} wall")
        tool.close()
        raw.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--interleaved", action="store_true", help="call by call in rotation, CPU time"
    )
    parser.add_argument(
        "--ablate", action="store_true", help="what each part of the tool's work costs"
    )
    options = parser.parse_args()
    if options.ablate:
        return ablate()
    import httpx

    from langchain_imagegen.tool import ImageGenerationTool

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=ANSWER, headers={"content-type": "application/json"})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    out = tempfile.mkdtemp(prefix="imagegen-layers-")
    base_url = "http://gateway.test/v1"
    tool = ImageGenerationTool(
        model="dall-e-2", api_key="sk-layers", base_url=base_url, output_dir=out, http_client=http
    )
    args = {"prompt": run.PROMPT, "size": "256x256"}
    plan = tool.coerce(args)
    body = plan.requests[0]
    sides = run.overhead_rotation(tool, http, f"{base_url}/images/generations", args)
    generator = tool._generator
    assert generator is not None
    layers: dict[str, Callable[[], Any]] = {
        "raw post + .json()": sides["raw"],
        "client.generate": lambda: tool.client.generate(body),
        "generator.run (client + result)": lambda: generator.run(plan),
        "tool.coerce": lambda: tool.coerce(args),
        "tool._run (coerce + generate + text)": lambda: tool._run(**args),
        "floor.invoke (BaseTool + raw post)": sides["floor"],
        "tool.invoke": sides["tool"],
    }
    if options.interleaved:
        rotation = {
            "tool.invoke": layers["tool.invoke"],
            "raw post + .json()": layers["raw post + .json()"],
            "floor.invoke (BaseTool + raw post)": layers["floor.invoke (BaseTool + raw post)"],
        }
        runs = [interleaved(rotation, 31, 100) for _ in range(3)]
        best = {name: min(run[name] for run in runs) * 1e6 for name in rotation}
        for name, value in best.items():
            print(f"{name:40s} {value:7.1f} µs CPU")
        floor_us = best["floor.invoke (BaseTool + raw post)"]
        print(f"{'tool - floor':40s} {best['tool.invoke'] - floor_us:7.1f} µs CPU")
        http.close()
        return 0
    for layer in layers.values():
        layer()
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(ROUNDS):
        for name, layer in layers.items():
            times[name].append(timeit.timeit(layer, number=CALLS) / CALLS * 1e6)
    for name, series in times.items():
        print(f"{name:40s} best {min(series):7.1f} µs   median {statistics.median(series):7.1f} µs")
    http.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ROUNDS, CALLS = 15, 500
ANSWER = json.dumps({"created": 1, "data": [{"url": "https://files.example/a.png"}]}).encode()


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, calls: int) -> dict[str, float]:
    """Median over ``rounds`` of each function's mean CPU seconds per call, the functions
    called one after another in an order that rotates from call to call."""
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
                started = time.thread_time()
                fns[name]()
                totals[name] += time.thread_time() - started
        for name in names:
            per_round[name].append(totals[name] / calls)
    return {name: statistics.median(series) for name, series in per_round.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--interleaved", action="store_true", help="call by call in rotation, CPU time"
    )
    options = parser.parse_args()
    import httpx
    from langchain_core.tools import BaseTool

    from langchain_imagegen.tool import ImageGenerationTool

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=ANSWER, headers={"content-type": "application/json"})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    out = tempfile.mkdtemp(prefix="imagegen-layers-")
    base_url = "http://gateway.test/v1"
    tool = ImageGenerationTool(
        model="dall-e-2", api_key="sk-layers", base_url=base_url, output_dir=out, http_client=http
    )
    args = {"prompt": "a lighthouse on a cliff at dawn, watercolor", "size": "256x256"}
    call = {"name": tool.name, "args": args, "id": "call_1", "type": "tool_call"}
    plan = tool.coerce(args)
    body = plan.requests[0]
    url = f"{base_url}/images/generations"

    class Floor(BaseTool):
        name: str = "generate_image"
        description: str = "raw post"

        def _run(self, prompt: str, size: str | None = None, **kwargs: Any) -> Any:
            return http.post(url, json=body).json()

    floor = Floor(args_schema=tool.args_schema)
    generator = tool._generator
    assert generator is not None
    layers: dict[str, Callable[[], Any]] = {
        "raw post + .json()": lambda: http.post(url, json=body).json(),
        "client.generate": lambda: tool.client.generate(body),
        "generator.run (client + result)": lambda: generator.run(plan),
        "tool.coerce": lambda: tool.coerce(args),
        "tool._run (coerce + generate + text)": lambda: tool._run(**args),
        "floor.invoke (BaseTool + raw post)": lambda: floor.invoke(call),
        "tool.invoke": lambda: tool.invoke(call),
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

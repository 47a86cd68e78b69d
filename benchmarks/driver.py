"""The load generator: its own process, one JSON job per stdin line, one JSON answer per job.

`python -m benchmarks.driver` prints READY, then for each job either counts DynamoDB requests
one action at a time (asking the counting engine between actions) or runs a bounded load at a
fixed concurrency and reports latency, throughput, and the CPU time the server, the engine and
this process itself used meanwhile (read from /proc). For the direct variants this process is
the server: its CPU time is the cost of the storage calls alone (with the DynamoDB fast path
on for "direct", off for "direct_before").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import math
import os
import sys
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp

from benchmarks.gcstats import GC_PATH, GcWatch
from benchmarks.procstat import cpu_seconds
from benchmarks.scenarios import (
    FLOOR,
    IN_PROCESS,
    TRUSTED,
    Client,
    DirectClient,
    FloorClient,
    GraphQLClient,
    RestClient,
    TrustedGraphQLClient,
    plan,
)
from benchmarks.seed import Dataset
from graphql_api.storage.client import ChatTable, DynamoDBClient, client_config, open_client

LOCAL_CREDENTIALS = ("testing", "testing")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
        "mean": sum(ordered) / len(ordered) if ordered else math.nan,
        "max": ordered[-1] if ordered else math.nan,
    }


@dataclasses.dataclass
class Outcome:
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    items: set[int] = dataclasses.field(default_factory=set)
    failures: int = 0
    first_failure: str = ""


class Driver:
    def __init__(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._dynamodb: dict[tuple[str, bool], DynamoDBClient] = {}
        self._clients: dict[tuple[str, str, str], Client] = {}
        self._prepared: set[tuple[str, str, str]] = set()
        self.gc = GcWatch().install()

    async def close(self) -> None:
        await self._stack.aclose()

    async def _session(self, base_url: str) -> aiohttp.ClientSession:
        if base_url not in self._sessions:
            self._sessions[base_url] = await self._stack.enter_async_context(
                aiohttp.ClientSession(
                    # Idle connections are dropped well before uvicorn closes them (after 5 s):
                    # with aiohttp's 15 s, a request between runs could go out on a connection
                    # the server was closing, and fail with "Server disconnected".
                    connector=aiohttp.TCPConnector(
                        limit=128, force_close=False, keepalive_timeout=2.0
                    ),
                    timeout=aiohttp.ClientTimeout(total=300),
                )
            )
        return self._sessions[base_url]

    async def _dynamodb_client(self, endpoint: str, *, fast_path: bool) -> DynamoDBClient:
        key = (endpoint, fast_path)
        if key not in self._dynamodb:
            local = endpoint.startswith(("http://127.", "http://localhost"))
            # The service's own client settings (Settings' defaults), so direct is like for like.
            config = client_config(
                max_pool_connections=64, connect_timeout=2.0, read_timeout=300.0, max_attempts=4
            )
            self._dynamodb[key] = await self._stack.enter_async_context(
                open_client(
                    region=os.environ.get("AWS_REGION", "us-east-1"),
                    endpoint_url=endpoint,
                    config=config,
                    credentials=LOCAL_CREDENTIALS if local else None,
                    fast_path=fast_path,
                )
            )
            # As the service does after startup (GC_FREEZE_AFTER_STARTUP): full collections
            # then walk what the calls leave behind, not botocore's loaded models. Without it,
            # a full collection here costs tens of ms and the direct figures are mostly GC.
            gc.freeze()
        return self._dynamodb[key]

    async def client(self, spec: dict[str, Any], dataset: Dataset, scenario: str) -> Client:
        variant, address = spec["variant"], spec["address"]
        key = (variant, address, dataset.name)
        if key not in self._clients:
            client: Client
            if variant in IN_PROCESS:
                dynamodb = await self._dynamodb_client(address, fast_path=variant == "direct")
                table = ChatTable(client=dynamodb, name=dataset.table, deadline=300.0)
                client = DirectClient(table, dataset.user_id)
            elif variant == "rest":
                client = RestClient(await self._session(address), address, dataset.token)
            elif variant == TRUSTED:
                client = TrustedGraphQLClient(await self._session(address), address, dataset.token)
            elif variant == FLOOR:
                client = FloorClient(await self._session(address), address, dataset.token)
            else:
                client = GraphQLClient(await self._session(address), address, dataset.token)
            self._clients[key] = client
        client = self._clients[key]
        # Only paging back needs the newest page's cursor (on moto at 100,000 messages, fetching
        # it costs seconds).
        if scenario in ("older", "mixed") and key not in self._prepared:
            await client.prepare(dataset)
            self._prepared.add(key)
        return client

    async def _control(self, url: str, method: str, path: str) -> dict[str, Any]:
        session = await self._session(url)
        async with session.request(method, url + path) as response:
            response.raise_for_status()
            answer: dict[str, Any] = await response.json()
            return answer

    async def _gc_snapshot(self, server_url: str | None) -> dict[str, Any]:
        """The server's GC counters (this process's for the direct variant); resets its longest."""
        if server_url is None:
            snapshot = self.gc.snapshot()
            self.gc.reset_longest()
            return snapshot
        return await self._control(server_url, "POST", GC_PATH)

    async def count(self, job: dict[str, Any]) -> dict[str, Any]:
        """Each action alone, with the engine's counters reset before and read after it."""
        dataset = Dataset.from_json(job["dataset"])
        client = await self.client(job["client"], dataset, job["scenario"])
        control = job["control_url"]
        index = job["first_index"]
        repeats = []
        for _ in range(job["repeats"]):
            action = plan(job["scenario"], index, dataset, job["victims"])
            index += 1
            await self._control(control, "POST", "/__bench__/reset")
            started = time.perf_counter()
            items = await client.perform(action)
            elapsed = (time.perf_counter() - started) * 1000
            counts = await self._control(control, "GET", "/__bench__/counts")
            repeats.append({**counts, "latency_ms": elapsed, "items": items, "kind": action.kind})
        return {"repeats": repeats, "next_index": index}

    async def load(self, job: dict[str, Any]) -> dict[str, Any]:
        dataset = Dataset.from_json(job["dataset"])
        client = await self.client(job["client"], dataset, job["scenario"])
        budget = job["budget"]
        concurrency = int(job["concurrency"])
        index = job["first_index"]
        scenario, victims = job["scenario"], job["victims"]

        async def run(count: int, seconds: float, outcome: Outcome) -> None:
            nonlocal index
            deadline = time.perf_counter() + seconds
            stop_at = index + count

            async def worker() -> None:
                nonlocal index
                while index < stop_at and time.perf_counter() < deadline:
                    action = plan(scenario, index, dataset, victims)
                    index += 1
                    started = time.perf_counter()
                    try:
                        outcome.items.add(await client.perform(action))
                    except Exception as exc:  # a failed action is counted, not timed
                        outcome.failures += 1
                        outcome.first_failure = outcome.first_failure or repr(exc)[:500]
                        continue
                    outcome.latencies_ms.append((time.perf_counter() - started) * 1000)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        await run(budget["warmup"], budget["max_seconds"], Outcome())
        control = job["control_url"]
        await self._control(control, "POST", "/__bench__/reset")
        in_process = job["client"]["variant"] in IN_PROCESS
        server_url = None if in_process else job["client"]["address"]
        gc_before = await self._gc_snapshot(server_url)
        server_pid = job.get("server_pid") or os.getpid()
        engine_pid = job["engine_pid"]
        before = (cpu_seconds(server_pid), cpu_seconds(engine_pid), time.process_time())
        started = time.perf_counter()
        outcome = Outcome()
        with profiled(job.get("profile")):
            await run(budget["max_requests"], budget["max_seconds"], outcome)
        wall = time.perf_counter() - started
        after = (cpu_seconds(server_pid), cpu_seconds(engine_pid), time.process_time())
        gc_after = await self._gc_snapshot(server_url)
        engine_counts = await self._control(control, "GET", "/__bench__/counts")
        engine_counts.pop("wave_detail", None)
        done = len(outcome.latencies_ms)
        return {
            "ops": done,
            "failures": outcome.failures,
            "first_failure": outcome.first_failure,
            "seconds": wall,
            "throughput": done / wall if wall > 0 else 0.0,
            "latency_ms": latency_summary(outcome.latencies_ms),
            "server_cpu_s": after[0] - before[0],
            "engine_cpu_s": after[1] - before[1],
            "driver_cpu_s": after[2] - before[2],
            "engine_counts": engine_counts,
            "gc": {
                "full_collections": gc_after["collections"][2] - gc_before["collections"][2],
                "full_seconds": gc_after["seconds"][2] - gc_before["seconds"][2],
                "longest_full": gc_after["longest"][2],
            },
            "items": sorted(outcome.items),
            "next_index": index,
            "loadavg": os.getloadavg()[0],
        }


@contextlib.contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """Sample this process with pyinstrument meanwhile, as benchmarks.serve samples a server
    (the direct variants' profile), and save the session to `path`."""
    if path is None:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop().save(path)


@contextlib.asynccontextmanager
async def driver() -> AsyncIterator[Driver]:
    instance = Driver()
    try:
        yield instance
    finally:
        await instance.close()


async def serve() -> None:
    loop = asyncio.get_running_loop()
    print("READY", flush=True)
    async with driver() as instance:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            job = json.loads(line)
            if job["op"] == "quit":
                return
            try:
                answer = await (instance.count(job) if job["op"] == "count" else instance.load(job))
            except Exception as exc:  # reported to the orchestrator, which stops
                traceback.print_exc()
                answer = {"error": repr(exc)[:1000]}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(serve())

"""The abusive user's script, in a process of its own: `python -m tests.soak.flood`.

Sending a hundred requests a second takes httpx close to half a core; in the test process it
would slow the event loop the normal users' requests are timed on, and their latency would
measure the load generator. Here it reads one JSON line of orders on stdin, prints READY,
floods from the next line on stdin (GO) for the given seconds, and prints one JSON line of
results: every request's sample, and the ledger of its writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import ssl
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from tests.soak.config import REPO_ROOT
from tests.soak.traffic import Flood, Ledger, Recorder, Sample, Session, User, client, flood

READY = "READY"
GO = "GO"
# Bound on its start, and on its results after its flood's end.
RESULTS_SECONDS = 60.0
RESULTS_BYTES = 256 * 1024 * 1024
# The script's CPU priority below the service's and moto's. A real abuser's script runs on
# its own machine; here it shares two cores with the service and the engine, and at a fifth
# of a core it took their CPU as well as their places: the normal users' latency measured
# the load generator too.
NICENESS = 10


@dataclasses.dataclass(frozen=True, kw_only=True)
class Orders:
    base: str
    sub: str
    token: str
    conversations: list[str]
    rate: float
    connections: int
    seconds: float


@dataclasses.dataclass
class Flooded:
    """What the flood did: its samples on a clock started at GO, and its ledger."""

    flood: Flood
    recorder: Recorder
    ledger: Ledger

    def to_json(self) -> str:
        ledger = self.ledger
        return json.dumps(
            {
                "offered": self.flood.offered,
                "skipped": self.flood.skipped,
                "samples": [dataclasses.astuple(sample) for sample in self.recorder.samples],
                "problems": dict(self.recorder.problems),
                "described": self.recorder.described,
                "messages": ledger.messages,
                "refused_messages": ledger.refused_messages,
                "unsettled_messages": ledger.unsettled_messages,
                "unsettled_writes": ledger.unsettled_writes,
            }
        )


def merge(results: Mapping[str, Any], *, into: Recorder, ledger: Ledger, go_at: float) -> Flood:
    """The child's results in the parent's recorder and ledger; `go_at`: when GO was sent, on
    the parent recorder's clock."""
    for group, kind, at, latency, status, outcome in results["samples"]:
        into.samples.append(Sample(group, kind, go_at + at, latency, status, outcome))
    for kind, count in results["problems"].items():
        into.problems[kind] += count
    into.described += results["described"]
    ledger.messages.update({k: (c, text) for k, (c, text) in results["messages"].items()})
    ledger.refused_messages.update(results["refused_messages"])
    ledger.unsettled_messages.update(results["unsettled_messages"])
    ledger.unsettled_writes += results["unsettled_writes"]
    return Flood(offered=results["offered"], skipped=results["skipped"])


class Child:
    """The flood's process, from the test's side."""

    def __init__(self, process: asyncio.subprocess.Process, orders: Orders) -> None:
        self._process = process
        self._orders = orders

    @property
    def pid(self) -> int:
        return self._process.pid

    async def go(self) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(f"{GO}\n".encode())
        await stdin.drain()

    async def results(self) -> dict[str, Any]:
        stdout = self._process.stdout
        assert stdout is not None
        async with asyncio.timeout(self._orders.seconds + RESULTS_SECONDS):
            line = await stdout.readline()
        found: dict[str, Any] = json.loads(line)
        return found


@contextlib.asynccontextmanager
async def child(orders: Orders, *, log: Path) -> AsyncIterator[Child]:
    """The flood's process, ready (its client open) but not yet flooding."""
    with log.open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __spec__.name,
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
            # The results are one line: every sample of the flood.
            limit=RESULTS_BYTES,
        )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(dataclasses.asdict(orders)).encode() + b"\n")
        await process.stdin.drain()
        async with asyncio.timeout(RESULTS_SECONDS):
            ready = (await process.stdout.readline()).decode().strip()
        if ready != READY:
            raise RuntimeError(f"the flood did not start (said {ready!r}); see {log}")
        yield Child(process, orders)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def run(orders: Orders, go: asyncio.StreamReader) -> Flooded:
    recorder, ledger = Recorder(time.monotonic()), Ledger()
    user = User(sub=orders.sub, token=orders.token, conversations=orders.conversations)
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            Session(
                await stack.enter_async_context(client(orders.base, tls=tls)),
                user,
                group="abuser",
                recorder=recorder,
                ledger=ledger,
                rng=random.Random(f"abuser-{n}"),
                resend=False,
            )
            for n in range(orders.connections)
        ]
        print(READY, flush=True)
        await go.readline()
        recorder.origin = time.monotonic()
        done = await flood(sessions, rate=orders.rate, stop_at=recorder.origin + orders.seconds)
    return Flooded(done, recorder, ledger)


async def main() -> None:
    os.nice(NICENESS)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    orders = Orders(**json.loads(await stdin.readline()))
    flooded = await run(orders, stdin)
    print(flooded.to_json(), flush=True)


if __name__ == "__main__":
    asyncio.run(main())

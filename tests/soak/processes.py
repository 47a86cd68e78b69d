"""The processes a soak runs and watches: moto, the service, and /proc readings of both.

moto serves in a process of its own (benchmarks.moto_engine), not as a thread of the test
process as in the rest of the suite: 160 clients' worth of httpx in the test process would
otherwise take the GIL from the engine, and the soak would measure its own load generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx

from benchmarks.children import start_child
from benchmarks.procstat import cpu_seconds, rss_megabytes

READY_SECONDS = 60.0
STOP_SECONDS = 30.0
# /proc is read this often while a scenario runs.
SAMPLE_SECONDS = 0.5


@dataclasses.dataclass(frozen=True)
class Engine:
    url: str
    # None: an engine the soak did not start (DYNAMODB_ENDPOINT_URL), whose CPU it cannot read.
    pid: int | None


@contextlib.asynccontextmanager
async def engine(environ: Mapping[str, str], *, log_dir: Path) -> AsyncIterator[Engine]:
    """DYNAMODB_ENDPOINT_URL's engine if set, else moto on loopback in its own process."""
    if endpoint := environ.get("DYNAMODB_ENDPOINT_URL"):
        yield Engine(endpoint, None)
        return
    moto = await start_child("moto", "benchmarks.moto_engine", [], log_dir=log_dir)
    try:
        yield Engine(moto.detail, moto.pid)
    finally:
        await moto.stop(grace=STOP_SECONDS)


@dataclasses.dataclass(frozen=True)
class Service:
    base: str
    pid: int
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def service(
    environ: Mapping[str, str], *, name: str, log_dir: Path
) -> AsyncIterator[Service]:
    """`chat-history-api serve` (one uvicorn worker, its defaults: backlog 2048, no
    --limit-concurrency) on 127.0.0.1, configured by `environ` alone, once it is ready."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("chat-history-api")), "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    log = log_dir / f"{name}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *command, env=dict(environ), stdout=output, stderr=output
        )
    running = Service(f"http://127.0.0.1:{port}", process.pid, log)
    try:
        await _ready(running, process)
        yield running
    finally:
        await _stop(process)


async def _ready(running: Service, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=running.base, timeout=1) as http:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if process.returncode is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    tail = "\n".join(running.log.read_text(errors="replace").splitlines()[-30:])
    raise RuntimeError(f"the service did not become ready:\n{tail}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        async with asyncio.timeout(STOP_SECONDS):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    at: float
    service_rss_mib: float
    # CPU seconds used so far: the service, the engine (nan when not ours), this process (the
    # clients), the flooding script's (nan without one).
    service_cpu: float
    engine_cpu: float
    driver_cpu: float
    flood_cpu: float


class Probe:
    """Readings of the service's and the engine's /proc every SAMPLE_SECONDS while `watching`;
    `at` on the clock `origin` (time.monotonic()) starts."""

    def __init__(self, *, service_pid: int, engine_pid: int | None, origin: float) -> None:
        self._service = service_pid
        self._engine = engine_pid
        self._origin = origin
        self.readings: list[Reading] = []
        # The flooding script's process, once it runs.
        self.flood_pid: int | None = None

    def read(self) -> Reading:
        reading = Reading(
            at=time.monotonic() - self._origin,
            service_rss_mib=rss_megabytes(self._service),
            service_cpu=cpu_seconds(self._service),
            engine_cpu=_cpu_or_nan(self._engine),
            driver_cpu=time.process_time(),
            flood_cpu=_cpu_or_nan(self.flood_pid),
        )
        self.readings.append(reading)
        return reading

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.read()

    async def _loop(self) -> None:
        while True:
            self.read()
            await asyncio.sleep(SAMPLE_SECONDS)

    def rss_between(self, start: float, end: float) -> list[float]:
        return [r.service_rss_mib for r in self.readings if start <= r.at <= end]


def _cpu_or_nan(pid: int | None) -> float:
    if pid is None:
        return math.nan
    try:
        return cpu_seconds(pid)
    except FileNotFoundError:  # exited
        return math.nan


def utilisation(readings: list[Reading], start: float, end: float) -> dict[str, float]:
    """Each process's CPU between `start` and `end`, as a share of one core."""
    inside = [r for r in readings if start <= r.at <= end]
    names = ("service", "engine", "driver", "flood")
    if len(inside) < 2:
        return dict.fromkeys(names, math.nan)
    first, last = inside[0], inside[-1]
    span = last.at - first.at
    return {
        name: (getattr(last, f"{name}_cpu") - getattr(first, f"{name}_cpu")) / span
        for name in names
    }


async def counters(base: str) -> dict[str, float]:
    """The service's Prometheus counters (METRICS_ENABLED), each summed over its labels."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        response = await http.get("/metrics")
    response.raise_for_status()
    totals: dict[str, float] = {}
    for line in response.text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name = series.partition("{")[0]
        if name.endswith("_total"):
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def environment(**variables: str) -> dict[str, str]:
    """The test process's environment with `variables`: the service reads nothing else."""
    return {**os.environ, **variables}

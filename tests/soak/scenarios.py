"""The soak's scenarios, each on a service process and a table of its own, one after another.

- steady: today's soak, 16 clients of 4 users with no think time, the production budgets
  lifted (UNLIMITED_RATES): the service's own latency, the baseline of the burst's.
- burst: ten times that, 160 clients of 40 users, all at once, on the service's defaults
  (admission and budgets), after a warm-up at 16; then the load stops and PROBE_REQUESTS
  requests follow one by one, and the service's memory is read again.
- burst-sized (full runs only): the same burst with MAX_CONCURRENT_REQUESTS = SIZED_LIMIT,
  a diagnostic showing what the default admission limit does on this engine.
- quiet and abused: NORMAL_USERS people each using the app at a person's pace, on the
  defaults, alone (quiet) and beside one user flooding writes at ABUSE_FACTOR times the
  write budget from a process of its own (abused), on two fresh processes and tables alike.
- at-budget (full runs only): the same people beside a user writing at its budget and no
  faster, a diagnostic telling the cost of the abuser's refused requests from that of the
  writes its budget lets through.
Each table starts empty (moto copies a whole table for every transaction, so a table's size
is part of a write's cost) and is checked item by item against the ledger afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import ssl
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from benchmarks.config import UNLIMITED_RATES
from graphql_api.settings import Settings
from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import create_table, delete_table
from tests.conftest import LOCAL_CREDENTIALS, REGION
from tests.soak import flood
from tests.soak.config import SoakConfig
from tests.soak.processes import Engine, Probe, Reading, counters, service
from tests.soak.traffic import (
    Flood,
    Ledger,
    Recorder,
    Session,
    User,
    client,
    closed_loop,
    paced,
    probe,
)
from tests.soak.verify import Verified, verify
from tests.tokens import FakeUserPool

STEADY_CLIENTS = 16
STEADY_USERS = 4
BURST_CLIENTS = 160
BURST_USERS = 40
# The diagnostic burst's admission limit: the steady soak's concurrency, which moto serves at
# the steady soak's latency.
SIZED_LIMIT = STEADY_CLIENTS
CONVERSATIONS_PER_USER = 3
PROBE_REQUESTS = 200
# The service's memory is read this long, idle, before the burst and after the probe.
RSS_SETTLE_SECONDS = 3.0
NORMAL_USERS = 20
# A person's pause between two actions, on average: each normal user sends one operation
# every few seconds, far inside every budget, and the 20 together leave moto room to spare.
NORMAL_THINK_SECONDS = 5.0
ABUSE_FACTOR = 50
# The flooding script's connections, each with one request in flight at most.
ABUSE_CONNECTIONS = 64
# Bounds on any scenario, whatever happens.
MAX_REQUESTS = 200_000
SEED_CONCURRENCY = 8


@dataclasses.dataclass
class Soak:
    """What every scenario shares: the run's settings, the engine, the user pool, a DynamoDB
    client for tables and checks, and a folder for the service's logs."""

    config: SoakConfig
    engine: Engine
    pool: FakeUserPool
    dynamodb: DynamoDBClient
    log_dir: Path


@dataclasses.dataclass
class Scenario:
    name: str
    clients: int
    users: int
    # The service's settings: every variable the service reads is unset but these.
    overrides: dict[str, str]
    settings: Settings
    recorder: Recorder
    readings: list[Reading]
    verified: Verified
    # The measured load, on the recorder's clock.
    start: float
    end: float
    # The service's own counters at the end (its /metrics).
    counters: dict[str, float]
    # The burst's: the service's RSS (MiB) before it, and after the probe.
    rss_before: float | None = None
    rss_after: float | None = None
    # The abused scenario's flood.
    flood: Flood | None = None
    # From the service's start to the table's check.
    wall_seconds: float = 0.0


def service_environ(soak: Soak, table_name: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """The service's environment: this process's, less every variable the service reads, plus
    the engine, the pool, the table and `overrides`: defaults everywhere else."""
    ours = set(Settings.variables())
    inherited = {name: value for name, value in os.environ.items() if name not in ours}
    pool = soak.pool
    return {
        **inherited,
        "CHAT_TABLE_NAME": table_name,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS[0],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS[1],
        "DYNAMODB_ENDPOINT_URL": soak.engine.url,
        "COGNITO_USER_POOL_ID": pool.pool_id,
        "COGNITO_APP_CLIENT_IDS": pool.client_id,
        "COGNITO_JWKS_URL": pool.jwks_url,
        "CURSOR_SECRET": "soak-test-cursor-secret",
        # The service's own count of what it shed and refused, beside the clients'.
        "METRICS_ENABLED": "true",
        **overrides,
    }


@contextlib.asynccontextmanager
async def fresh_table(soak: Soak, name: str) -> AsyncIterator[str]:
    table_name = f"chat-history-soak-{name}-{uuid.uuid4().hex[:8]}"
    await create_table(soak.dynamodb, table_name=table_name)
    try:
        yield table_name
    finally:
        await delete_table(soak.dynamodb, table_name=table_name)


def make_users(soak: Soak, prefix: str, count: int) -> list[User]:
    return [
        User(sub=sub, token=soak.pool.minter.access_token(sub=sub, lifetime=3600))
        for sub in (f"soak-{prefix}-{n}-{uuid.uuid4().hex[:6]}" for n in range(count))
    ]


@dataclasses.dataclass
class Clients:
    """The sessions of one scenario, each with its HTTP client, all closed with `stack`."""

    base: str
    stack: contextlib.AsyncExitStack
    recorder: Recorder
    ledger: Ledger
    tls: ssl.SSLContext = dataclasses.field(default_factory=ssl.create_default_context)

    async def sessions(self, users: Sequence[User], count: int, *, group: str) -> list[Session]:
        """`count` sessions, the users' in turn, each with a random stream of its own (seeded
        by its group and number, so a run's choices repeat)."""
        made = []
        for n in range(count):
            http = client(self.base, tls=self.tls)
            made.append(
                Session(
                    await self.stack.enter_async_context(http),
                    users[n % len(users)],
                    group=group,
                    recorder=self.recorder,
                    ledger=self.ledger,
                    rng=random.Random(f"{group}-{n}"),
                )
            )
        return made


async def seed(clients: Clients, users: Sequence[User]) -> None:
    """CONVERSATIONS_PER_USER conversations for each user, created through the service."""
    places = asyncio.Semaphore(SEED_CONCURRENCY)

    async def create(session: Session) -> None:
        async with places:
            for _ in range(CONVERSATIONS_PER_USER):
                if (await session.create()).outcome != "ok":
                    raise RuntimeError(f"seeding failed: {session.recorder.described}")

    sessions = await clients.sessions(users, len(users), group="seed")
    await asyncio.gather(*(create(session) for session in sessions))


async def load(sessions: Sequence[Session], seconds: float) -> None:
    stop_at = time.monotonic() + seconds
    await asyncio.gather(
        *(closed_loop(session, stop_at=stop_at, max_requests=MAX_REQUESTS) for session in sessions)
    )


async def settled_rss(probe_: Probe, recorder: Recorder) -> float:
    """The service's RSS (MiB), idle: the median of RSS_SETTLE_SECONDS of readings."""
    since = recorder.now()
    await asyncio.sleep(RSS_SETTLE_SECONDS)
    return statistics.median(probe_.rss_between(since, recorder.now()))


@dataclasses.dataclass
class Stage:
    """A scenario's service, table, clock, ledger, clients and /proc probe, while it runs."""

    soak: Soak
    table_name: str
    environ: dict[str, str]
    base: str
    recorder: Recorder
    ledger: Ledger
    clients: Clients
    probe: Probe


@contextlib.asynccontextmanager
async def stage(soak: Soak, name: str, overrides: Mapping[str, str]) -> AsyncIterator[Stage]:
    async with (
        fresh_table(soak, name) as table_name,
        contextlib.AsyncExitStack() as stack,
    ):
        environ = service_environ(soak, table_name, overrides)
        running = await stack.enter_async_context(service(environ, name=name, log_dir=soak.log_dir))
        origin = time.monotonic()
        recorder, ledger = Recorder(origin), Ledger()
        yield Stage(
            soak=soak,
            table_name=table_name,
            environ=environ,
            base=running.base,
            recorder=recorder,
            ledger=ledger,
            clients=Clients(running.base, stack, recorder, ledger),
            probe=Probe(service_pid=running.pid, engine_pid=soak.engine.pid, origin=origin),
        )


async def finish(
    current: Stage,
    name: str,
    *,
    clients: int,
    users: int,
    overrides: Mapping[str, str],
    window: tuple[float, float],
) -> Scenario:
    """The scenario's figures once its load is over: the service's counters, the table's check."""
    found = await counters(current.base)
    verified = await verify(current.soak.dynamodb, current.table_name, current.ledger)
    return Scenario(
        name=name,
        clients=clients,
        users=users,
        overrides=dict(overrides),
        settings=Settings.from_env(current.environ),
        recorder=current.recorder,
        readings=current.probe.readings,
        verified=verified,
        start=window[0],
        end=window[1],
        counters=found,
        wall_seconds=current.recorder.now(),
    )


async def steady(soak: Soak) -> Scenario:
    overrides = dict(UNLIMITED_RATES)
    async with stage(soak, "steady", overrides) as current:
        recorder, sessions = current.recorder, current.clients.sessions
        users = make_users(soak, "steady", STEADY_USERS)
        await seed(current.clients, users)
        warm_up = await sessions(users, STEADY_CLIENTS, group="warm-up")
        measured = await sessions(users, STEADY_CLIENTS, group="client")
        async with current.probe.watching():
            await load(warm_up, soak.config.warm_up_seconds)
            start = recorder.now()
            await load(measured, soak.config.seconds)
            end = recorder.now()
        return await finish(
            current,
            "steady",
            clients=STEADY_CLIENTS,
            users=STEADY_USERS,
            overrides=overrides,
            window=(start, end),
        )


async def burst(soak: Soak, *, limit: int | None = None) -> Scenario:
    """The burst on the service's defaults; with `limit`, on MAX_CONCURRENT_REQUESTS = `limit`
    (a diagnostic: the same burst with the admission limit sized to the engine)."""
    name = "burst" if limit is None else "burst-sized"
    overrides = {} if limit is None else {"MAX_CONCURRENT_REQUESTS": str(limit)}
    async with stage(soak, name, overrides) as current:
        recorder, sessions = current.recorder, current.clients.sessions
        users = make_users(soak, name, BURST_USERS)
        await seed(current.clients, users)
        warm_up = await sessions(users, STEADY_CLIENTS, group="warm-up")
        measured = await sessions(users, BURST_CLIENTS, group="client")
        after = await sessions(users, BURST_USERS, group="probe")
        async with current.probe.watching():
            await load(warm_up, soak.config.warm_up_seconds)
            rss_before = await settled_rss(current.probe, recorder)
            start = recorder.now()
            await load(measured, soak.config.seconds)
            end = recorder.now()
            await probe(after, count=PROBE_REQUESTS)
            rss_after = await settled_rss(current.probe, recorder)
        scenario = await finish(
            current,
            name,
            clients=BURST_CLIENTS,
            users=BURST_USERS,
            overrides=overrides,
            window=(start, end),
        )
    scenario.rss_before, scenario.rss_after = rss_before, rss_after
    return scenario


async def abuse(soak: Soak, *, factor: int | None) -> Scenario:
    """NORMAL_USERS at a person's pace, alone (`factor` None) or beside one user sending
    addMessage at `factor` times its write budget from a process of its own; every table
    seeded alike, that user's conversations included."""
    name = "quiet" if factor is None else "abused" if factor == ABUSE_FACTOR else "at-budget"
    overrides: dict[str, str] = {}
    async with stage(soak, name, overrides) as current:
        recorder, clients = current.recorder, current.clients
        normal = make_users(soak, f"{name}-normal", NORMAL_USERS)
        (flooding,) = make_users(soak, f"{name}-abuser", 1)
        await seed(clients, [*normal, flooding])
        warm_up = await clients.sessions(normal, NORMAL_USERS, group="warm-up")
        people = await clients.sessions(normal, NORMAL_USERS, group="normal")
        script = None
        if factor is not None:
            budget = Settings.from_env(current.environ).rate_limits.writes_per_minute / 60
            orders = flood.Orders(
                base=current.base,
                sub=flooding.sub,
                token=flooding.token,
                conversations=flooding.conversations,
                rate=factor * budget,
                connections=ABUSE_CONNECTIONS,
                seconds=soak.config.seconds,
            )
            log = soak.log_dir / f"{name}-flood.log"
            script = await clients.stack.enter_async_context(flood.child(orders, log=log))
            current.probe.flood_pid = script.pid
        flooded = None
        async with current.probe.watching():
            await _paced(warm_up, soak.config.warm_up_seconds)
            start = recorder.now()
            if script is not None:
                await script.go()
            await _paced(people, soak.config.seconds)
            if script is not None:
                flooded = flood.merge(
                    await script.results(), into=recorder, ledger=current.ledger, go_at=start
                )
            end = recorder.now()
        scenario = await finish(
            current,
            name,
            clients=NORMAL_USERS + (factor is not None),
            users=NORMAL_USERS + (factor is not None),
            overrides=overrides,
            window=(start, end),
        )
    scenario.flood = flooded
    return scenario


async def _paced(people: Sequence[Session], seconds: float) -> None:
    stop_at = time.monotonic() + seconds
    await asyncio.gather(
        *(paced(person, think_seconds=NORMAL_THINK_SECONDS, stop_at=stop_at) for person in people)
    )

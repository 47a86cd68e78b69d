"""Two instances of the service sharing one table and a real redis-server (Debian's package),
started here on 127.0.0.1 with no persistence.

A write through instance A must reach a subscriber on instance B through Redis within a
second; with A's announcement lost (A never reaches Redis, as if it died right after its
commit), B's subscriber must still get it from the log within the poll bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from graphql_api.settings import Settings, SubscriptionSettings
from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import create_table, delete_table
from tests.api.harness import api_settings, create_conversation, new_user, sync_token
from tests.conftest import REGION, credentials_for
from tests.sockets import LiveApi, running_server
from tests.tokens import FakeUserPool

REDIS_SERVER = "redis-server"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The default poll: a lost announcement arrives within it plus one read of the log.
BOUND_SECONDS = 30.0
WRITES = 40

RENAME = """
mutation Rename($id: ID!, $title: String!) {
  renameConversation(input: {id: $id, title: $title}) { conversation { id } }
}
"""
CHANGES = (
    "subscription Changes($since: String) "
    "{ changes(since: $since) { version conversation { title } } }"
)


def require_redis() -> str:
    """Skip where redis-server is missing, but never in CI: .ci/run installs it."""
    found = shutil.which(REDIS_SERVER)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("redis-server is missing; .ci/run installs it")
    pytest.skip("redis-server is not installed (apt-get install redis-server)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A throwaway redis-server on 127.0.0.1, with no persistence."""

    def __init__(self) -> None:
        self.binary = require_redis()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [
                *(self.binary, "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", tempfile.gettempdir()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@pytest.fixture(scope="module")
def user_pool() -> Iterator[FakeUserPool]:
    with FakeUserPool() as pool:
        yield pool


@pytest_asyncio.fixture(scope="module")
async def broadcast_table(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    name = f"chat-history-broadcast-{uuid.uuid4().hex[:12]}"
    await create_table(dynamodb_client, table_name=name)
    try:
        yield name
    finally:
        await delete_table(dynamodb_client, table_name=name)


def instance_settings(
    pool: FakeUserPool, endpoint: str, table: str, **subscriptions: object
) -> Settings:
    return api_settings(
        pool,
        table_name=table,
        endpoint=endpoint,
        region=REGION,
        subscriptions=SubscriptionSettings(**subscriptions),  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def instance(settings: Settings, pool: FakeUserPool, endpoint: str) -> AsyncIterator[LiveApi]:
    async with running_server(settings, pool, credentials=credentials_for(endpoint)) as live:
        yield live


async def test_a_write_through_one_instance_reaches_a_subscriber_on_another_within_a_second(
    redis_url: str, user_pool: FakeUserPool, dynamodb_endpoint: str, broadcast_table: str
) -> None:
    # A long poll: whatever arrives within a second came through Redis.
    settings = instance_settings(
        user_pool, dynamodb_endpoint, broadcast_table, broadcast_url=redis_url, poll_seconds=120
    )
    user = new_user()
    latencies: list[float] = []
    writes: list[float] = []
    after_answer: list[float] = []
    async with (
        instance(settings, user_pool, dynamodb_endpoint) as a,
        instance(settings, user_pool, dynamodb_endpoint) as b,
        b.socket() as socket,
    ):
        conversation = await create_conversation(a.api, user, "start")
        await socket.init(b.api.token(user))
        sub = await socket.subscribe(CHANGES, {"since": await sync_token(a.api, user)})
        await socket.nothing_within(0.2)
        for n in range(WRITES):
            receiving = asyncio.create_task(socket.next_data(sub, seconds=30.0))
            started = time.perf_counter()
            await a.api.data(RENAME, {"id": conversation["id"], "title": f"t{n}"}, user=user)
            # The write has committed by the time its answer is back: from here on, a second.
            answered = time.perf_counter()
            data = await receiving
            delivered = time.perf_counter()
            assert data["changes"] == {"version": n + 2, "conversation": {"title": f"t{n}"}}
            writes.append(answered - started)
            latencies.append(delivered - started)
            after_answer.append(delivered - answered)
    report("the write's HTTP round trip through A", writes)
    report("from the write's request to its delivery on B", latencies)
    assert max(after_answer) < 1.0, after_answer


async def test_a_lost_announcement_still_arrives_within_the_poll_bound(
    redis_url: str, user_pool: FakeUserPool, dynamodb_endpoint: str, broadcast_table: str
) -> None:
    """Instance A commits but never announces (no Redis: as if it died right after its
    commit); B's subscriber hears of it from the log, within the default poll."""
    silent = instance_settings(user_pool, dynamodb_endpoint, broadcast_table)
    listening = instance_settings(
        user_pool, dynamodb_endpoint, broadcast_table, broadcast_url=redis_url
    )
    assert listening.subscriptions.poll_seconds == 15.0
    user = new_user()
    async with (
        instance(silent, user_pool, dynamodb_endpoint) as a,
        instance(listening, user_pool, dynamodb_endpoint) as b,
        b.socket() as socket,
    ):
        await socket.init(b.api.token(user))
        sub = await socket.subscribe(CHANGES, {"since": await sync_token(b.api, user)})
        # Time for the server to take up the subscription, so that the write below is found
        # by the poll, as this test means; if it is late, the catch-up from `since` finds it.
        await socket.nothing_within(0.5)
        started = time.perf_counter()
        await create_conversation(a.api, user, "unannounced")
        data = await socket.next_data(sub, seconds=BOUND_SECONDS)
        waited = time.perf_counter() - started
    report("a lost announcement, from its write to its delivery by the poll", [waited])
    assert data["changes"] == {"version": 1, "conversation": {"title": "unannounced"}}
    assert waited < BOUND_SECONDS


async def test_subscribers_hear_through_redis_again_after_it_restarts(
    user_pool: FakeUserPool, dynamodb_endpoint: str, broadcast_table: str
) -> None:
    user = new_user()
    with redis_server() as redis:
        settings = instance_settings(
            user_pool,
            dynamodb_endpoint,
            broadcast_table,
            broadcast_url=redis.url,
            poll_seconds=120,
        )
        async with (
            instance(settings, user_pool, dynamodb_endpoint) as a,
            instance(settings, user_pool, dynamodb_endpoint) as b,
            b.socket() as socket,
        ):
            await socket.init(b.api.token(user))
            sub = await socket.subscribe(CHANGES, {"since": await sync_token(b.api, user)})
            await create_conversation(a.api, user, "before")
            await socket.next_data(sub, seconds=1.0)
            redis.stop()
            redis.start()
            # B's reader reconnects within its back-off (5 s at most); A's publisher on its
            # next publish. Until then announcements are lost, and the poll is two minutes.
            await asyncio.sleep(6)
            await create_conversation(a.api, user, "after")
            data = await socket.next_data(sub, seconds=2.0)
    assert data["changes"] == {"version": 2, "conversation": {"title": "after"}}


def report(what: str, seconds: list[float]) -> None:
    ordered = sorted(seconds)
    summary = (
        f"{what}: n={len(ordered)} min={ordered[0] * 1000:.1f} ms "
        f"p50={statistics.median(ordered) * 1000:.1f} ms "
        f"p95={ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000:.1f} ms "
        f"max={ordered[-1] * 1000:.1f} ms"
    )
    print(summary)
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "broadcast-latency.txt").open("a", encoding="utf-8") as out:
        out.write(summary + "\n")

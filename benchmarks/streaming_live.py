"""Streamed answers live: a delta's way to a subscriber on another instance, and what open
messageStream subscriptions cost an instance in memory.

    python -m benchmarks.streaming_live

Processes, all on 127.0.0.1, each started and stopped here by its own pid: moto (DynamoDB, and
the Cognito whose real tokens every request carries), a redis-server with no persistence, and
instances of the service (benchmarks.serve graphql: one uvicorn worker each) sharing the table
and the Redis, with polls off (SUBSCRIPTION_POLL_SECONDS=3600) so that a delta reaches another
instance through Redis only. The WebSocket clients and the writer run in this process.

- Delta latency: a subscriber on instance A follows one answer while a writer appends its
  deltas through instance B, one at a time (the next once the previous is both acknowledged
  and delivered). Per delta: from sending appendMessage to B until its event arrives on A's
  socket, beside the append's own round trip; p50, p95 and max.
- Memory: an instance that has served one subscription (code paths warm), then holds many
  open, each following its own streaming message (10 per user) and each past its first
  event: its RSS before and after, per subscription. Once with each subscription on its own
  WebSocket (a device following an answer), once with 10 to a WebSocket, each on a fresh
  instance. Redis's CLIENT LIST then shows how many channels each instance subscribed to.

Writes streaming_live.json and streaming_live.md where the other benchmarks write
(benchmarks.config: docs/benchmarks/, or BENCH_OUTPUT_DIR). BENCH_QUICK=1 is a smoke run
(fewer deltas and subscriptions) written only to BENCH_OUTPUT_DIR or the temporary directory's
bench-quick/, never to the published results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from benchmarks.children import Child, start_child
from benchmarks.config import UNLIMITED_RATES, BenchConfig, config_from_environment
from benchmarks.driver import percentile
from benchmarks.procstat import rss_megabytes
from benchmarks.run import code_version, log
from graphql_api.gql.schema import SDL_PATH
from graphql_api.local.cognito import DevCognito
from graphql_api.storage.client import client_config, open_client
from graphql_api.storage.table import create_table

REGION: Final = "us-east-1"
OPERATIONS: Final = SDL_PATH.parent / "operations"
# About 100-250 ms of a model's tokens, what a client sends in one appendMessage.
DELTA: Final = "A streamed answer's next few tokens: 40B"
STREAMS_PER_USER: Final = 10
PER_CONNECTION: Final = 10
# Bounds every wait on a server: one that never answers fails the run, never hangs it.
WAIT_SECONDS: Final = 30.0
# How many users' streams are written, and how many WebSockets open, at once while the
# memory scenarios set up: moto serves one request at a time.
SETTING_UP_AT_ONCE: Final = 5
OPENING_AT_ONCE: Final = 25

# A streaming message to follow, and its user's token.
Stream: TypeAlias = tuple[str, dict[str, Any]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Counts:
    deltas: int
    subscriptions: int

    @classmethod
    def of(cls, config: BenchConfig) -> Counts:
        return (
            cls(deltas=50, subscriptions=20)
            if config.quick
            else cls(deltas=1_000, subscriptions=500)
        )


def document(name: str) -> str:
    return (OPERATIONS / f"{name}.graphql").read_text(encoding="utf-8")


START, APPEND, FINISH, CREATE, STREAM = (
    document(name)
    for name in (
        "StartMessage",
        "AppendMessage",
        "FinishMessage",
        "CreateConversation",
        "MessageStream",
    )
)


# --- the processes --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    """A throwaway redis-server on 127.0.0.1 with no persistence: its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(binary, "--bind", "127.0.0.1", "--port", str(port)),
        *("--save", "", "--appendonly", "no", "--dir", tempfile.gettempdir()),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        async with asyncio.timeout(WAIT_SECONDS), Redis.from_url(url) as client:
            while True:
                with contextlib.suppress(RedisConnectionError):
                    if await client.ping():
                        break
                await asyncio.sleep(0.05)
        yield url
    finally:
        process.terminate()
        await process.wait()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Stack:
    """What every instance shares: moto, the table, the user pool, the Redis."""

    moto_url: str
    table: str
    cognito: DevCognito
    redis_url: str
    log_dir: Path

    async def instance(self, name: str) -> Child:
        """One instance of the service, its base URL in its `detail`."""
        env = {
            "CHAT_TABLE_NAME": self.table,
            "AWS_REGION": REGION,
            "DYNAMODB_ENDPOINT_URL": self.moto_url,
            "COGNITO_USER_POOL_ID": self.cognito.pool_id,
            "COGNITO_APP_CLIENT_IDS": self.cognito.client_id,
            "COGNITO_JWKS_URL": self.cognito.jwks_url,
            "BENCH_LOCAL_CREDENTIALS": "1",
            "BROADCAST_URL": self.redis_url,
            "SUBSCRIPTION_POLL_SECONDS": "3600",
            # Setting up hundreds of streams queues requests at moto: let it answer.
            "DYNAMODB_READ_TIMEOUT": "60",
            "DYNAMODB_DEADLINE_SECONDS": "120",
            **UNLIMITED_RATES,
        }
        child = await start_child(
            name, "benchmarks.serve", ["graphql"], log_dir=self.log_dir, env=env
        )
        child.detail = child.detail.partition(" ")[0]
        return child


async def _create_table(moto_url: str, name: str) -> None:
    config = client_config(
        max_pool_connections=4, connect_timeout=2.0, read_timeout=10.0, max_attempts=3
    )
    async with open_client(
        region=REGION, endpoint_url=moto_url, config=config, credentials=("testing", "testing")
    ) as client:
        await create_table(client, table_name=name)


# --- clients --------------------------------------------------------------------------------


class Writer:
    """GraphQL over HTTP to one instance, as a producing device sends it."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._url = base_url + "/graphql"

    async def data(self, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        body = {"query": query, "variables": variables}
        async with self._session.post(self._url, json=body, headers=headers) as response:
            answer: dict[str, Any] = await response.json()
        if answer.get("errors") or response.status != 200:
            raise RuntimeError(f"{response.status}: {answer}")
        data: dict[str, Any] = answer["data"]
        return data

    async def stream(self, token: str, conversation_id: str) -> dict[str, Any]:
        """A started message with one delta stored (so a subscriber's first event comes)."""
        started = await self.data(START, {"conversationId": conversation_id}, token)
        message: dict[str, Any] = started["startMessage"]["message"]
        await self.append(token, message, 1)
        return message

    async def append(self, token: str, message: dict[str, Any], seq: int) -> None:
        variables = {**following(message), "seq": seq, "delta": DELTA}
        await self.data(APPEND, variables, token)


def following(message: dict[str, Any]) -> dict[str, Any]:
    return {"conversationId": message["conversationId"], "messageId": message["id"]}


class Socket:
    """One graphql-transport-ws connection to an instance."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    @contextlib.asynccontextmanager
    async def opened(cls, base_url: str, token: str) -> AsyncIterator[Socket]:
        url = base_url.replace("http://", "ws://") + "/graphql"
        protocols = [Subprotocol("graphql-transport-ws")]
        async with connect(url, subprotocols=protocols, open_timeout=WAIT_SECONDS) as connection:
            opened = cls(connection)
            await opened.send(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            ack = await opened.receive()
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"not acknowledged: {ack}")
            yield opened

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_SECONDS):
            message: dict[str, Any] = json.loads(await self.connection.recv())
        return message

    async def follow(self, message: dict[str, Any]) -> str:
        """Subscribed to `message`'s stream; returns once its first event has come."""
        id = str(uuid.uuid4())
        payload = {"query": STREAM, "variables": following(message)}
        await self.send({"id": id, "type": "subscribe", "payload": payload})
        await self.event(id)
        return id

    async def event(self, id: str) -> dict[str, Any]:
        message = await self.receive()
        if (
            message.get("id") != id
            or message.get("type") != "next"
            or "errors" in message["payload"]
        ):
            raise RuntimeError(f"expected an event of {id}: {message}")
        event: dict[str, Any] = message["payload"]["data"]["messageStream"]
        return event


# --- the measurements -----------------------------------------------------------------------


def summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "max": ordered[-1],
    }


async def delta_latency(
    stack: Stack, writer: Writer, reader_url: str, deltas: int
) -> dict[str, Any]:
    """Deltas appended through the writer's instance, each timed to its event on the reader's."""
    token = await asyncio.to_thread(stack.cognito.token_for, "bench-latency")
    created = await writer.data(CREATE, {"title": "latency"}, token)
    message = await writer.stream(token, created["createConversation"]["conversation"]["id"])
    delivered: list[float] = []
    acknowledged: list[float] = []
    async with Socket.opened(reader_url, token) as reader:
        sub = await reader.follow(message)
        for seq in range(2, deltas + 2):
            started = time.perf_counter()

            async def append(seq: int = seq, started: float = started) -> float:
                # Timed when its own answer comes, whether before or after the event.
                await writer.append(token, message, seq)
                return (time.perf_counter() - started) * 1000

            appending = asyncio.ensure_future(append())
            event = await reader.event(sub)
            delivered.append((time.perf_counter() - started) * 1000)
            acknowledged.append(await appending)
            if event["seq"] != seq or event["delta"] != DELTA:
                raise RuntimeError(f"delta {seq} came as {event}")
        finishing = {**following(message), "status": "COMPLETE", "lastSeq": deltas + 1}
        await writer.data(FINISH, finishing, token)
        last = await reader.event(sub)
        if last["status"] != "COMPLETE":
            raise RuntimeError(f"the stream ended as {last}")
    return {
        "deltas": deltas,
        "delivered_ms": summary(delivered),
        "append_ms": summary(acknowledged),
    }


async def users_streams(stack: Stack, writer: Writer, count: int) -> list[Stream]:
    """`count` streaming messages with a delta each, STREAMS_PER_USER to a user: (token,
    message) pairs."""
    users = -(-count // STREAMS_PER_USER)
    run = uuid.uuid4().hex[:6]
    tokens = [
        await asyncio.to_thread(stack.cognito.token_for, f"bench-memory-{run}-{n}")
        for n in range(users)
    ]

    found: list[Stream] = []

    async def of_user(token: str, wanted: int) -> None:
        created = await writer.data(CREATE, {"title": "memory"}, token)
        conversation_id = created["createConversation"]["conversation"]["id"]
        found.extend([(token, await writer.stream(token, conversation_id)) for _ in range(wanted)])

    wanted = [min(STREAMS_PER_USER, count - n * STREAMS_PER_USER) for n in range(users)]
    steps = [functools.partial(of_user, t, w) for t, w in zip(tokens, wanted, strict=True)]
    await in_batches(steps, SETTING_UP_AT_ONCE)
    return found


async def in_batches(steps: Sequence[Callable[[], Awaitable[None]]], size: int) -> None:
    for start in range(0, len(steps), size):
        await asyncio.gather(*(step() for step in steps[start : start + size]))


async def memory(
    stack: Stack, streams: list[Stream], warm: Stream, *, per_connection: int, redis: Redis
) -> dict[str, Any]:
    """A fresh instance's RSS once it has served one subscription (`warm`, another user's,
    opened and closed), then with one open per stream, `per_connection` to a WebSocket."""
    instance = await stack.instance(f"memory-{per_connection}-per-connection")
    groups = [streams[n : n + per_connection] for n in range(0, len(streams), per_connection)]
    try:
        async with Socket.opened(instance.detail, warm[0]) as warming:
            sub = await warming.follow(warm[1])
            await warming.send({"id": sub, "type": "complete"})
        before = rss_megabytes(instance.pid)
        async with contextlib.AsyncExitStack() as held:

            async def open_group(group: list[Stream]) -> None:
                socket_ = await held.enter_async_context(
                    Socket.opened(instance.detail, group[0][0])
                )
                for _, message in group:
                    await socket_.follow(message)

            steps = [functools.partial(open_group, group) for group in groups]
            await in_batches(steps, OPENING_AT_ONCE)
            after = rss_megabytes(instance.pid)
            subscribed = await subscribed_clients(redis)
    finally:
        await instance.stop()
    return {
        "subscriptions": len(streams),
        "per_connection": per_connection,
        "connections": len(groups),
        "rss_before_mb": before,
        "rss_after_mb": after,
        "kb_per_subscription": (after - before) * 1024 / len(streams),
        "redis_subscribed_clients": subscribed,
    }


async def subscribed_clients(redis: Redis) -> list[int]:
    """How many channels each connection to Redis is subscribed to, of those subscribed to any:
    one per instance with subscribers."""
    clients = await redis.client_list()
    return sorted(
        (int(client["sub"]) for client in clients if int(client.get("sub", 0)) > 0), reverse=True
    )


async def measure(config: BenchConfig, log_dir: Path) -> dict[str, Any]:
    counts = Counts.of(config)
    moto = await start_child("moto", "benchmarks.moto_engine", [], log_dir=log_dir)
    try:
        table = f"streaming-live-{uuid.uuid4().hex[:8]}"
        await _create_table(moto.detail, table)
        cognito = await asyncio.to_thread(
            DevCognito.create, endpoint_url=moto.detail, region=REGION
        )
        async with (
            redis_server() as redis_url,
            Redis.from_url(redis_url, decode_responses=True) as redis,
        ):
            stack = Stack(
                moto_url=moto.detail,
                table=table,
                cognito=cognito,
                redis_url=redis_url,
                log_dir=log_dir,
            )
            a = await stack.instance("instance-a")
            b = await stack.instance("instance-b")
            try:
                async with aiohttp.ClientSession() as session:
                    writer = Writer(session, b.detail)
                    log(f"streaming live: {counts.deltas} deltas from B to a subscriber on A")
                    latency = await delta_latency(stack, writer, a.detail, counts.deltas)
                    log(f"streaming live: {counts.subscriptions} streams to follow")
                    streams = await users_streams(stack, writer, counts.subscriptions)
                    (warm,) = await users_streams(stack, writer, 1)
                    held = [
                        await memory(stack, streams, warm, per_connection=per, redis=redis)
                        for per in (1, PER_CONNECTION)
                    ]
            finally:
                await a.stop()
                await b.stop()
        cognito.close()
    finally:
        await moto.stop()
    return {
        "quick": config.quick,
        "code": code_version(),
        "nproc": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "latency": latency,
        "memory": held,
    }


# --- the report -----------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    latency = results["latency"]
    rows = [
        ("from sending appendMessage to B until the event on A's socket", latency["delivered_ms"]),
        ("appendMessage's own round trip through B", latency["append_ms"]),
    ]
    lines = [
        "## Streamed answers live (`python -m benchmarks.streaming_live`)",
        "",
        f"Commit {results['code']}, {results['nproc']} CPUs (load average at the end "
        f"{results['loadavg'][0]:.2f}); two instances of the service (uvicorn, one worker "
        "each) on one table in moto and one redis-server, all on loopback; polls off, so a "
        "delta reaches A through Redis only."
        + (" **Quick run: smoke figures, not results.**" if results["quick"] else ""),
        "",
        f"Delta to a subscriber on another instance, {latency['deltas']:,} deltas of "
        f"{len(DELTA)} bytes, one at a time, ms:",
        "",
        "| | p50 | p95 | max |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {label} | {row['p50']:.1f} | {row['p95']:.1f} | {row['max']:.1f} |"
        for label, row in rows
    ]
    lines += [
        "",
        "An instance holding open messageStream subscriptions, each following its own "
        "streaming message and past its first event (RSS after one served and gone, then with "
        "all open):",
        "",
        "| subscriptions | per WebSocket | RSS before | RSS after | per subscription | "
        "channels each Redis client holds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {row['subscriptions']:,} | {row['per_connection']} | {row['rss_before_mb']:.1f} MB "
        f"| {row['rss_after_mb']:.1f} MB | {row['kb_per_subscription']:.1f} KB | "
        f"{', '.join(str(count) for count in row['redis_subscribed_clients'])} |"
        for row in results["memory"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m benchmarks.streaming_live", description=__doc__
    ).parse_args(argv)
    config = config_from_environment()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-streaming-live-"))

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(config.deadline_seconds):
            return await measure(config, log_dir)

    results = asyncio.run(bounded())
    config.output_dir.mkdir(parents=True, exist_ok=True)
    (config.output_dir / "streaming_live.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report(results)
    (config.output_dir / "streaming_live.md").write_text(text)
    print(text)
    # Kept only when the run fails: then the children's logs explain why.
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""kill -9 loses no acknowledged delta: the real server, killed at a chosen point of an append.

`chat-history-api serve` runs in its own process on the suite's engine, through a FaultProxy
that can hold a DynamoDB request at an exact point. Producers stream several answers at once,
seq after seq, each keeping what was acknowledged and what is in flight. Each round SIGKILLs
the server once a random number of appends are acknowledged, at one of three points of an
append then in flight:

- sent: the client has sent it; the server may or may not have read it;
- unstored: the server's PutItem is at the proxy, not yet at the engine;
- stored: the engine has stored it, and the server has not answered.

A fresh server on the same table must then show every stream as exactly its acknowledged
deltas in order, plus at most the one in flight, whole, with streamSeq its last stored seq:
through conversation.messages, and through its own cache-cold append path (the seq it expects,
the length it answers). The producers go on from streamSeq + 1, and after the last round each
stream finishes with exactly the text acknowledged.

Every kill is decided by an event (a count of acknowledgements, an httpx trace event, the
proxy holding a request), never by a clock. The random choices come from one seed, which
every assertion message names.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

import httpx
import pytest
import pytest_asyncio

from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import create_table, delete_table
from tests.conftest import REGION, credentials_for
from tests.faults import FaultProxy
from tests.tokens import FakeUserPool

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "schema" / "operations"
STREAMS = 4
ROUNDS = 5
KillPoint: TypeAlias = Literal["sent", "unstored", "stored"]
KILL_POINTS: tuple[KillPoint, ...] = ("sent", "unstored", "stored")
# A round's kill comes after 0 to this many acknowledged appends (of all streams).
MOST_ACKS_BEFORE_KILL = 15
# Appends one stream may send in a round: far more than a round takes, unless no kill comes.
ROUND_BOUND = 100
# Appends after the last round, before each stream finishes.
TAIL = 3
# Bounds the whole test, should a server never start or a kill never come.
GUARD_SECONDS = 300.0
READY_SECONDS = 60.0

OPEN = """
query Open($id: ID!) {
  conversation(id: $id) { messages(last: 1) { edges { node { id content status streamSeq } } } }
}
"""


def operation(name: str) -> str:
    return (OPERATIONS / f"{name}.graphql").read_text(encoding="utf-8")


CREATE, START = operation("CreateConversation"), operation("StartMessage")
APPEND, FINISH = operation("AppendMessage"), operation("FinishMessage")


def delta_text(stream: int, seq: int) -> str:
    """Every delta says which stream and seq it is, so text out of order or cut shows; with
    characters of two and four UTF-8 bytes, one of them two UTF-16 units: the lengths the
    server answers count code points, as Python's len does."""
    return f"<{stream}.{seq} ü🙂>"


@dataclasses.dataclass
class Stream:
    index: int
    conversation_id: str
    message_id: str
    # What the server acknowledged (or a fresh server showed stored), in seq order.
    deltas: list[str] = dataclasses.field(default_factory=list)
    # The append sent and not acknowledged: it may or may not be stored.
    in_flight: str | None = None

    @property
    def seq(self) -> int:
        return len(self.deltas)

    @property
    def text(self) -> str:
        return "".join(self.deltas)


class Server:
    """One `chat-history-api serve` process on 127.0.0.1, started and stopped by its pid."""

    def __init__(self, environ: Mapping[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "graphql_api.cli", "serve", "--port", str(self.port)]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI
                command, cwd=ROOT, env=dict(environ), stdout=subprocess.DEVNULL, stderr=log
            )
        self.killed = False

    async def ready(self, http: httpx.AsyncClient) -> None:
        async with asyncio.timeout(READY_SECONDS):
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"the server exited with {self.process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        if not self.killed:
            self.killed = True
            os.kill(self.process.pid, signal.SIGKILL)

    def wait_killed(self) -> None:
        assert self.process.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
                self.process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass
class Round:
    """One kill: at `point` of the append in flight once `target` appends are acknowledged."""

    point: KillPoint
    target: int
    server: Server
    acks: int = 0
    claimed: bool = False

    def claim(self) -> bool:
        """Whether the append about to be sent is the one the kill comes in ("sent" only)."""
        if self.point != "sent" or self.claimed or self.acks < self.target:
            return False
        self.claimed = True
        return True

    def trace(self) -> Callable[[str, Any], Awaitable[None]]:
        """An httpx trace hook that kills the server once the request is on the wire."""

        async def on_event(event: str, _: Any) -> None:
            if event == "http11.send_request_body.complete":
                self.server.kill()

        return on_event


class Client:
    """GraphQL over HTTP as one user, to whichever server is up."""

    def __init__(self, http: httpx.AsyncClient, token: str, seed: int) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seed = seed

    async def post(
        self,
        server: Server,
        document: str,
        variables: Mapping[str, Any],
        *,
        extensions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        response = await self.http.post(
            f"{server.url}/graphql",
            json={"query": document, "variables": dict(variables)},
            headers=self.headers,
            extensions=extensions or {},
        )
        assert response.status_code == 200, f"seed {self.seed}: {response.text}"
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, server: Server, document: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        body = await self.post(server, document, variables)
        assert "errors" not in body, f"seed {self.seed}: {body}"
        data: dict[str, Any] = body["data"]
        return data


@pytest_asyncio.fixture
async def kill_table(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    name = f"chat-history-kill-{uuid.uuid4().hex[:12]}"
    await create_table(dynamodb_client, table_name=name)
    try:
        yield name
    finally:
        await delete_table(dynamodb_client, table_name=name)


@pytest_asyncio.fixture
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint) as running:
        yield running


@pytest.fixture
def servers(
    tmp_path: Path,
    proxy: FaultProxy,
    dynamodb_endpoint: str,
    kill_table: str,
    user_pool: FakeUserPool,
) -> Iterator[Callable[[], Server]]:
    """Starts servers on the table through the proxy; stops whatever still runs at the end."""
    environ = {
        **os.environ,
        "CHAT_TABLE_NAME": kill_table,
        "AWS_REGION": REGION,
        "DYNAMODB_ENDPOINT_URL": proxy.url,
        "COGNITO_USER_POOL_ID": user_pool.pool_id,
        "COGNITO_APP_CLIENT_IDS": user_pool.client_id,
        "COGNITO_JWKS_URL": user_pool.jwks_url,
        "CURSOR_SECRET": "stream-kill-test",
        # No stream reads as INTERRUPTED however slow the machine: time plays no part here.
        "STREAM_LEASE_SECONDS": "3600",
    }
    if credentials := credentials_for(dynamodb_endpoint):
        environ |= {"AWS_ACCESS_KEY_ID": credentials[0], "AWS_SECRET_ACCESS_KEY": credentials[1]}
    started: list[Server] = []

    def start() -> Server:
        started.append(Server(environ, tmp_path / f"server-{len(started)}.log"))
        return started[-1]

    try:
        yield start
    finally:
        for server in started:
            server.stop()


async def test_no_acknowledged_delta_is_lost_when_the_server_is_killed_mid_stream(
    servers: Callable[[], Server], proxy: FaultProxy, user_pool: FakeUserPool
) -> None:
    seed = random.randrange(2**32)
    choices = random.Random(seed)
    points = [*KILL_POINTS, *choices.choices(KILL_POINTS, k=ROUNDS - len(KILL_POINTS))]
    choices.shuffle(points)
    token = user_pool.minter.access_token(sub=f"user-{uuid.uuid4()}")
    async with httpx.AsyncClient(timeout=30) as http, asyncio.timeout(GUARD_SECONDS):
        client = Client(http, token, seed)
        server = servers()
        await server.ready(http)
        streams = [await _started(client, server, index) for index in range(STREAMS)]
        for point in points:
            kill = Round(point, choices.randint(0, MOST_ACKS_BEFORE_KILL), server)
            await _stream_until_killed(client, proxy, streams, kill)
            server = servers()
            await server.ready(http)
            stored = [await _check_stored(client, server, stream) for stream in streams]
            if point == "stored":
                # The held append was stored and never answered: a fresh server shows it.
                assert any(stored), f"seed {seed}: the held append is not stored"
        for stream in streams:
            await _finish(client, server, stream)


async def _started(client: Client, server: Server, index: int) -> Stream:
    conversation_id = str(uuid.uuid4())
    await client.data(server, CREATE, {"id": conversation_id, "title": f"stream {index}"})
    data = await client.data(server, START, {"conversationId": conversation_id})
    message = data["startMessage"]["message"]
    return Stream(index=index, conversation_id=conversation_id, message_id=message["id"])


async def _stream_until_killed(
    client: Client, proxy: FaultProxy, streams: list[Stream], kill: Round
) -> None:
    proxy.reset()
    if kill.point != "sent":
        # The PutItem after `target` of them is held: before the engine, or stored and not
        # yet answered.
        proxy.delay("PutItem", seconds=600, after=kill.target, forward_first=kill.point == "stored")
    killer = asyncio.ensure_future(_kill_when_held(proxy, kill))
    try:
        await asyncio.gather(*(_produce(client, stream, kill) for stream in streams))
    finally:
        if not killer.done():
            killer.cancel()
        await asyncio.gather(killer, return_exceptions=True)
    assert kill.server.killed, f"seed {client.seed}: no kill came at {kill}"
    kill.server.wait_killed()
    # Whatever the proxy still held went with the server's connections: nothing reaches the
    # engine later.
    await proxy.settled()
    proxy.clear()


async def _kill_when_held(proxy: FaultProxy, kill: Round) -> None:
    if kill.point != "sent":
        await proxy.until(lambda: proxy.holding > 0)
        kill.server.kill()


async def _produce(client: Client, stream: Stream, kill: Round) -> None:
    """Append seq after seq, each once the one before is acknowledged, until the server is
    gone; the unacknowledged append stays `in_flight`."""
    for _ in range(ROUND_BOUND):
        seq = stream.seq + 1
        stream.in_flight = delta_text(stream.index, seq)
        variables = {
            "conversationId": stream.conversation_id,
            "messageId": stream.message_id,
            "seq": seq,
            "delta": stream.in_flight,
        }
        extensions = {"trace": kill.trace()} if kill.claim() else None
        try:
            body = await client.post(kill.server, APPEND, variables, extensions=extensions)
        except httpx.TransportError:
            return
        assert "errors" not in body, f"seed {client.seed}: {body}"
        appended = body["data"]["appendMessage"]
        length = len(stream.text + stream.in_flight)
        expected = {"messageId": stream.message_id, "seq": seq, "length": length}
        assert appended == expected, f"seed {client.seed}, stream {stream.index}"
        stream.deltas.append(stream.in_flight)
        stream.in_flight = None
        kill.acks += 1


async def _check_stored(client: Client, server: Server, stream: Stream) -> bool:
    """What a fresh server shows: the acknowledged deltas, and the one in flight only whole;
    True when it shows the one in flight."""
    data = await client.data(server, OPEN, {"id": stream.conversation_id})
    (edge,) = data["conversation"]["messages"]["edges"]
    shown = edge["node"]
    context = f"seed {client.seed}, stream {stream.index}, in flight {stream.in_flight!r}"
    landed = stream.in_flight is not None and shown["streamSeq"] == stream.seq + 1
    if landed and stream.in_flight is not None:
        stream.deltas.append(stream.in_flight)
    stream.in_flight = None
    assert shown == {
        "id": stream.message_id,
        "content": stream.text,
        "status": "STREAMING",
        "streamSeq": stream.seq,
    }, context
    # This server never saw the stream: its append path reads where the stream stands.
    ahead = {
        "conversationId": stream.conversation_id,
        "messageId": stream.message_id,
        "seq": stream.seq + 5,
        "delta": "ahead",
    }
    body = await client.post(server, APPEND, ahead)
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "CONFLICT", "expectedSeq": stream.seq + 1}, context
    return landed


async def _finish(client: Client, server: Server, stream: Stream) -> None:
    """The stream goes on from where the last fresh server found it, then completes."""
    for _ in range(TAIL):
        seq = stream.seq + 1
        text = delta_text(stream.index, seq)
        variables = {
            "conversationId": stream.conversation_id,
            "messageId": stream.message_id,
            "seq": seq,
            "delta": text,
        }
        appended = (await client.data(server, APPEND, variables))["appendMessage"]
        assert appended["length"] == len(stream.text + text), f"seed {client.seed}"
        stream.deltas.append(text)
    finishing = {
        "conversationId": stream.conversation_id,
        "messageId": stream.message_id,
        "status": "COMPLETE",
        "lastSeq": stream.seq,
    }
    finished = (await client.data(server, FINISH, finishing))["finishMessage"]["message"]
    assert (finished["content"], finished["status"], finished["streamSeq"]) == (
        stream.text,
        "COMPLETE",
        None,
    ), f"seed {client.seed}, stream {stream.index}"
    data = await client.data(server, OPEN, {"id": stream.conversation_id})
    (edge,) = data["conversation"]["messages"]["edges"]
    assert edge["node"] == {
        "id": stream.message_id,
        "content": stream.text,
        "status": "COMPLETE",
        "streamSeq": None,
    }, f"seed {client.seed}, stream {stream.index}"

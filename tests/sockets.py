"""The app on a real uvicorn server on 127.0.0.1 (port 0), and a GraphQL WebSocket client.

The server runs in the test's event loop, so a test can reach the running app's services;
the client is the `websockets` package speaking graphql-transport-ws (or the legacy graphql-ws)
over a real TCP connection, as a device would.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, cast

import httpx
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from graphql_api.app import create_app
from graphql_api.gql.websocket import WaitUntil, wall_clock_until
from graphql_api.observability.telemetry import Telemetry
from graphql_api.services import AppState
from graphql_api.settings import Settings
from graphql_api.storage.client import utc_now
from tests.api.harness import Api
from tests.tokens import FakeUserPool

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
# Bounds every wait here: a server that never answers fails a test, never hangs it.
STARTUP_SECONDS = 20.0
RECEIVE_SECONDS = 10.0


@contextlib.asynccontextmanager
async def uvicorn_serving(app: Starlette) -> AsyncIterator[tuple[str, AppState]]:
    """`app` served by uvicorn on 127.0.0.1 with its lifespan: (host:port, lifespan state)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if serving.done() or time.monotonic() > deadline:
            server.should_exit = True
            await serving
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    state = cast(AppState, server.lifespan.state)
    try:
        yield f"127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        await serving


@dataclasses.dataclass
class LiveApi:
    """The app on a real server: HTTP through `api`, WebSockets at `ws_url`."""

    api: Api
    address: str

    @property
    def ws_url(self) -> str:
        return f"ws://{self.address}/graphql"

    def socket(
        self, *, protocol: str = TRANSPORT_WS
    ) -> contextlib.AbstractAsyncContextManager[GraphQLSocket]:
        return GraphQLSocket.opened(self.ws_url, protocol=protocol)


@contextlib.asynccontextmanager
async def running_server(
    settings: Settings,
    pool: FakeUserPool,
    *,
    credentials: tuple[str, str] | None,
    clock: Callable[[], datetime] = utc_now,
    wait_until: WaitUntil = wall_clock_until,
) -> AsyncIterator[LiveApi]:
    telemetry = Telemetry.from_settings(settings)
    app = create_app(
        settings,
        aws_credentials=credentials,
        telemetry=telemetry,
        clock=clock,
        wait_until=wait_until,
    )
    async with (
        uvicorn_serving(app) as (address, state),
        httpx.AsyncClient(base_url=f"http://{address}", timeout=30.0) as http,
    ):
        api = Api(app=app, http=http, pool=pool, state=state, asgi=app, telemetry=telemetry)
        yield LiveApi(api=api, address=address)


class Closed(Exception):
    """The server closed the socket: `code` and `reason` as it sent them, `received` what came
    before."""

    def __init__(self, code: int | None, reason: str, received: list[dict[str, Any]]) -> None:
        super().__init__(f"closed {code} {reason!r} after {received}")
        self.code = code
        self.reason = reason
        self.received = received


class GraphQLSocket:
    """A GraphQL client over one WebSocket, in either protocol."""

    def __init__(self, connection: ClientConnection, *, protocol: str) -> None:
        self.connection = connection
        self.protocol = protocol
        self.received: list[dict[str, Any]] = []
        # Messages of other operations that came while receive_for waited for one.
        self._held: dict[str | None, collections.deque[dict[str, Any]]] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def opened(
        cls, url: str, *, protocol: str = TRANSPORT_WS
    ) -> AsyncIterator[GraphQLSocket]:
        async with connect(url, subprotocols=[protocol], open_timeout=10) as connection:  # type: ignore[list-item]
            yield cls(connection, protocol=protocol)

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def init(self, token: str | None, *, payload: Any = None) -> dict[str, Any]:
        """connection_init with `token` as a bearer header; the connection_ack."""
        if payload is None and token is not None:
            payload = {"Authorization": f"Bearer {token}"}
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.send(message)
        ack = await self.receive()
        assert ack["type"] == "connection_ack", ack
        return ack

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None, *, id: str | None = None
    ) -> str:
        id = id or str(uuid.uuid4())
        payload = {"query": query, "variables": variables or {}}
        start = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send({"id": id, "type": start, "payload": payload})
        return id

    async def complete(self, id: str) -> None:
        stop = "complete" if self.protocol == TRANSPORT_WS else "stop"
        await self.send({"id": id, "type": stop})

    async def receive(self, seconds: float = RECEIVE_SECONDS) -> dict[str, Any]:
        """The next message; Closed if the server closes the socket instead."""
        try:
            async with asyncio.timeout(seconds):
                raw = await self.connection.recv()
        except ConnectionClosed as closed:
            received = closed.rcvd
            raise Closed(
                received.code if received else None,
                received.reason if received else "",
                list(self.received),
            ) from None
        message: dict[str, Any] = json.loads(raw)
        self.received.append(message)
        return message

    async def receive_for(self, id: str, seconds: float = RECEIVE_SECONDS) -> dict[str, Any]:
        """The next message of operation `id`, with several running on the socket at once:
        messages of the others that come first are kept for their own receive_for."""
        held = self._held.get(id)
        if held:
            return held.popleft()
        while True:
            message = await self.receive(seconds)
            if message.get("id") == id:
                return message
            self._held.setdefault(message.get("id"), collections.deque()).append(message)

    async def run(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The payload (data, errors) of a query or mutation: its one result, then complete."""
        id = await self.subscribe(query, variables)
        message = await self.receive()
        kind = "next" if self.protocol == TRANSPORT_WS else "data"
        assert (message.get("id"), message["type"]) == (id, kind), message
        assert await self.receive() == {"id": id, "type": "complete"}
        payload: dict[str, Any] = message["payload"]
        return payload

    async def refused(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The payload of the `error` message refusing an operation (a list of errors in
        graphql-transport-ws, one error in graphql-ws)."""
        id = await self.subscribe(query, variables)
        message = await self.receive()
        assert (message.get("id"), message["type"]) == (id, "error"), message
        return message["payload"]

    async def handled(self) -> None:
        """Returns once the server has handled every message sent before (graphql-transport-ws
        answers a ping after them, in order)."""
        assert self.protocol == TRANSPORT_WS
        await self.send({"type": "ping"})
        assert await self.receive() == {"type": "pong"}

    async def next_data(self, id: str, seconds: float = RECEIVE_SECONDS) -> dict[str, Any]:
        """The data of the next result of subscription `id` (which must have no errors)."""
        message = await self.receive(seconds)
        kind = "next" if self.protocol == TRANSPORT_WS else "data"
        assert (message.get("id"), message["type"]) == (id, kind), message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def nothing_within(self, seconds: float) -> None:
        """Assert the server sends nothing for `seconds`."""
        with contextlib.suppress(TimeoutError):
            message = await self.receive(seconds)
            raise AssertionError(f"expected nothing, got {message}")

    async def closed(self, seconds: float = RECEIVE_SECONDS) -> Closed:
        """Wait for the server to close the socket, with nothing sent before."""
        try:
            message = await self.receive(seconds)
        except Closed as closed:
            return closed
        raise AssertionError(f"expected a close, got {message}")

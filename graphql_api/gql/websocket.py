"""GraphQL subscriptions over WebSocket on /graphql: graphql-transport-ws, and the legacy
graphql-ws protocol.

Strawberry's ASGI view speaks the protocols; this module decides who may connect, for how
long, and what they may run:

- The token comes in `connection_init`'s payload as {"Authorization": "Bearer <token>"} and is
  verified as an HTTP request's is. No token, a bad one or another pool's: the socket is
  closed with 4403 before anything is sent. Signing keys that cannot be fetched: 1013 (try
  again later), since the token may well be good.
- When the token expires, the server closes the socket with 4403: the client reconnects with
  a fresh token (and resubscribes with its last syncToken, losing nothing).
- `connection_init` must come within SUBSCRIPTION_INIT_TIMEOUT_SECONDS (else 4408); a user
  may hold SUBSCRIPTION_CONNECTIONS_PER_USER connections to one process (else 4429: the count
  is per process, not per deployment); a connection may run SUBSCRIPTIONS_PER_CONNECTION
  subscriptions at once (the next gets an `error` message); an inbound message over
  SUBSCRIPTION_MAX_MESSAGE_BYTES closes the socket with 1009.
- Only subscriptions run here. Queries and mutations go over HTTP, where every request is
  logged, counted and limited; over the socket they get an `error` message. Every `subscribe`
  is first checked by the HTTP transport's GraphQLRunner, so the document limits, validation
  and their caches are the same on both paths, as are the public errors.
- The connection's Context is built from the verified identity once; its loaders are renewed
  before each change a subscription delivers (gql.subscriptions).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import timedelta
from json import JSONDecodeError
from typing import Any, Final, cast

from graphql import GraphQLError, OperationType
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage,
    StartMessage,
)
from strawberry.types.unset import UNSET, UnsetType

from graphql_api.auth import AuthenticationError, Identity, SigningKeysUnavailableError
from graphql_api.auth.bearer import bearer_token
from graphql_api.context import Context, build_context
from graphql_api.domain.live import LiveChanges, SubscriptionGauge
from graphql_api.errors import Code
from graphql_api.services import Services
from graphql_api.settings import SubscriptionSettings

from .executor import GraphQLRunner, RequestError

# Close codes: graphql-transport-ws's own, and RFC 6455's.
FORBIDDEN: Final = 4403
INIT_TIMEOUT: Final = 4408
TOO_MANY: Final = 4429
TOO_BIG: Final = 1009
TRY_AGAIN_LATER: Final = 1013
HTTP_ONLY_MESSAGE: Final = "queries and mutations are served over HTTP on this path"


class Connection:
    """One socket, from its handshake to its close.

    Strawberry's context until the client is authenticated (its handlers set
    `connection_params`); then `context` holds the Context every operation runs with.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.connection_params: dict[str, Any] | None = None
        self.identity: Identity | None = None
        self.context: Context | None = None
        self.authenticated = asyncio.Event()

    @property
    def services(self) -> Services:
        services: Services = self.websocket.scope["state"]["services"]
        return services

    def establish(self, identity: Identity, context: Context) -> None:
        self.identity = identity
        self.context = context
        self.authenticated.set()

    async def close(self, code: int, reason: str) -> None:
        await close_quietly(self.websocket, code, reason)


async def close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    """Close unless closed already: a timer, the protocol handler and a rejection may each
    want to, and only the first one can."""
    closed = WebSocketState.DISCONNECTED
    if closed in (websocket.application_state, websocket.client_state):
        return
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
        await websocket.close(code=code, reason=reason)


def _token(params: Mapping[str, Any] | None) -> str:
    values = [
        value
        for name, value in (params or {}).items()
        if isinstance(name, str) and name.lower() == "authorization"
    ]
    if not all(isinstance(value, str) for value in values):
        raise AuthenticationError("malformed authorization")
    return bearer_token(values)


class _SocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's adapter with a cap on inbound messages and a close that may come twice."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object]:
        max_bytes = cast(SubscriptionEndpoint, self.view).max_message_bytes
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                # Characters first: cheap, and never more than the bytes.
                if len(text) > max_bytes or len(text.encode()) > max_bytes:
                    await self.close(TOO_BIG, "Message too big")
                    return
                try:
                    yield self.view.decode_json(text)
                except JSONDecodeError as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
        except KeyError as exc:
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass

    async def send_json(self, message: Mapping[str, object]) -> None:
        # After a close (token expiry, say) a subscription may still have a change in hand:
        # it is dropped, and the operation is cancelled as the handler shuts down.
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            return
        await super().send_json(message)

    async def close(self, code: int, reason: str) -> None:
        await close_quietly(self.ws, code, reason)


def _established(context: Any) -> Any:
    """The authenticated connection's Context, for every operation from now on."""
    if isinstance(context, Connection) and context.context is not None:
        return context.context
    return context


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        self.context = _established(self.context)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and message["id"] not in self.operations:
            refused = cast(SubscriptionEndpoint, self.view).refusal(message["payload"])
            if refused is not None:
                await self.send_message({"id": message["id"], "type": "error", "payload": refused})
                return
        await super().handle_subscribe(message)


class _LegacyHandler(BaseGraphQLWSHandler[Any, None]):
    """graphql-ws (subscriptions-transport-ws), refused and limited as the newer protocol is."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        if self.connection_acknowledged:
            await self.websocket.close(code=TOO_MANY, reason="Too many initialisation requests")
            return
        payload = message.get("payload")
        connection = cast(Connection, self.context)
        connection.connection_params = payload if isinstance(payload, dict) else None
        try:
            await self.view.on_ws_connect(connection)
        except ConnectionRejectionError:
            await self.websocket.close(code=FORBIDDEN, reason="Forbidden")
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        self.context = _established(connection)

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged:
            refused = cast(SubscriptionEndpoint, self.view).refusal(message["payload"])
            if refused is not None:
                await self.send_message(
                    {"type": "error", "id": message["id"], "payload": refused[0]}
                )
                return
        await super().handle_start(message)


class SubscriptionEndpoint(GraphQL[Any, None]):
    """The ASGI app for WebSocket connections to /graphql (HTTP goes to GraphQLEndpoint)."""

    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyHandler
    websocket_adapter_class = _SocketAdapter

    def __init__(
        self,
        runner: GraphQLRunner,
        *,
        settings: SubscriptionSettings,
        gauge: SubscriptionGauge,
        allowed_origins: Sequence[str] = (),
    ) -> None:
        super().__init__(
            runner.schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=settings.init_timeout_seconds),
            max_subscriptions_per_connection=settings.per_connection,
            # A token travels in the payload, never in a cookie, so a page of another origin
            # gains nothing by connecting; the list still keeps unknown pages out.
            allowed_origins=allowed_origins,
        )
        self._runner = runner
        self._settings = settings
        self._gauge = gauge
        self.max_message_bytes = settings.max_message_bytes
        # Open connections by user, in this process.
        self._connections: collections.Counter[str] = collections.Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive=receive, send=send)
        connection = Connection(websocket)
        watchdog = asyncio.create_task(self._watch(connection))
        try:
            await self.run(websocket, context=connection)
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            if connection.identity is not None:
                self._release(connection.identity.sub)

    async def _watch(self, connection: Connection) -> None:
        """Close the socket when connection_init is late, and when the token expires."""
        try:
            async with asyncio.timeout(self._settings.init_timeout_seconds):
                await connection.authenticated.wait()
        except TimeoutError:
            await connection.close(INIT_TIMEOUT, "Connection initialisation timeout")
            return
        assert connection.identity is not None
        await asyncio.sleep(max(0.0, connection.identity.expires_at - time.time()))
        await connection.close(FORBIDDEN, "Token expired")

    async def on_ws_connect(self, context: Any) -> UnsetType | dict[str, object] | None:
        connection = cast(Connection, context)
        services = connection.services
        try:
            identity = await services.verifier.verify(_token(connection.connection_params))
        except SigningKeysUnavailableError:
            await connection.close(TRY_AGAIN_LATER, "Cannot verify tokens right now")
            raise ConnectionRejectionError from None
        except AuthenticationError:
            raise ConnectionRejectionError from None
        if self._connections[identity.sub] >= self._settings.connections_per_user:
            await connection.close(TOO_MANY, "Too many connections")
            raise ConnectionRejectionError
        self._connections[identity.sub] += 1
        live = LiveChanges(
            broadcast=services.broadcast,
            poll_seconds=self._settings.poll_seconds,
            gauge=self._gauge,
        )
        chat = services.chat.for_user(identity.sub)
        connection.establish(identity, build_context(chat, live=live))
        return cast(UnsetType, UNSET)

    def _release(self, user_id: str) -> None:
        self._connections[user_id] -= 1
        if self._connections[user_id] <= 0:
            del self._connections[user_id]

    def refusal(self, payload: Any) -> list[Any] | None:
        """The public errors refusing a `subscribe`, or None to let it run (a payload of the
        wrong shape is left to the protocol handler, which closes the socket for it)."""
        query = payload.get("query") if isinstance(payload, dict) else None
        name = payload.get("operationName") if isinstance(payload, dict) else None
        if not isinstance(query, str) or not isinstance(name, str | None):
            return None
        try:
            prepared = self._runner.prepare(query, name)
        except RequestError as refused:
            return [error.formatted for error in refused.errors]
        if prepared.kind is not OperationType.SUBSCRIPTION:
            error = GraphQLError(HTTP_ONLY_MESSAGE, extensions={"code": Code.BAD_USER_INPUT.value})
            return [error.formatted]
        return None

"""GraphQL over WebSocket on /graphql: graphql-transport-ws, and the legacy graphql-ws protocol.

Strawberry's handlers speak the protocols; this module decides who may connect, for how long,
and runs what they carry:

- The token comes in `connection_init`'s payload as {"Authorization": "Bearer <token>"} and is
  verified as an HTTP request's is. No token, a bad one or another pool's: the socket is
  closed with 4403 before anything is sent. Signing keys that cannot be fetched: 1013 (try
  again later), since the token may well be good.
- When the token expires, the server closes the socket with 4403: the client reconnects with
  a fresh token (and resubscribes with its last syncToken, losing nothing).
- `connection_init` must come within SUBSCRIPTION_INIT_TIMEOUT_SECONDS (else 4408); a user
  may hold SUBSCRIPTION_CONNECTIONS_PER_USER connections to one process (else 4429: the count
  is per process, not per deployment); a connection may run SUBSCRIPTIONS_PER_CONNECTION
  operations at once (the next gets an `error` message); an inbound message over
  SUBSCRIPTION_MAX_MESSAGE_BYTES closes the socket with 1009.
- Every operation either protocol carries goes through `WebSocketEndpoint.results`: the HTTP
  transport's GraphQLRunner prepares its document (parses, limits, validates and caches it,
  or finds it among the trusted documents; nowhere else) and runs it. So the limits, the
  caches, TRUSTED_DOCUMENTS_ONLY and the public errors are the same on both transports.
  Strawberry's own pipeline (`schema.subscribe`) never runs: the handlers' methods that would
  call it are replaced here. A refused document, or variables that do not fit, get the
  protocol's `error` message.
- The user's budgets are checked there too, as for an HTTP request (gql.budgets): over one,
  the operation gets an `error` (RATE_LIMITED, `retryAfter`) and the socket stays. A query or
  mutation takes a place in the process while it runs (admission.py); with none free in time
  its `error` is SERVICE_UNAVAILABLE. Connections and subscriptions take no place.
- A subscription runs with the connection's Context, built once from the verified identity;
  its loaders are renewed before each change it delivers (gql.subscriptions).
- A query or mutation runs as an HTTP request does (GraphQLRunner.execute, planned), with a
  Context of its own (fresh loaders), and is reported as one (observability.sockets: an
  access line, metrics, its DynamoDB calls, the cost extension). It gets one `next` (`data`
  in graphql-ws), then `complete`. graphql-ws runs them too: its `start` may carry any
  operation, and both protocols take the same path, so refusing them would be a branch of
  its own for no gain.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from json import JSONDecodeError
from typing import Any, Final, cast

from graphql import ExecutionResult, GraphQLError, GraphQLFormattedError, OperationType
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    NextMessage,
    NextMessagePayload,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage,
    DataMessage,
    DataMessagePayload,
    ErrorMessage,
    StartMessage,
)
from strawberry.types.unset import UNSET, UnsetType

from graphql_api.admission import SHED_RETRY_AFTER_SECONDS, Admission
from graphql_api.auth import AuthenticationError, Identity, SigningKeysUnavailableError
from graphql_api.auth.bearer import bearer_token
from graphql_api.context import Context, build_context
from graphql_api.domain.live import LiveChanges
from graphql_api.errors import BUSY_MESSAGE, Code
from graphql_api.observability.cost import note_errors, observed
from graphql_api.observability.record import RequestRecord
from graphql_api.observability.sockets import observed_operation
from graphql_api.observability.telemetry import Telemetry
from graphql_api.services import Services
from graphql_api.settings import SubscriptionSettings
from graphql_api.transport import graphql_error_body

from .budgets import admit
from .executor import GraphQLRunner, Phase, Prepared, RequestError

# Close codes: graphql-transport-ws's own, and RFC 6455's.
FORBIDDEN: Final = 4403
INIT_TIMEOUT: Final = 4408
TOO_MANY: Final = 4429
TOO_BIG: Final = 1009
TRY_AGAIN_LATER: Final = 1013
NOT_A_REQUEST_MESSAGE: Final = "The message's payload is not a GraphQL request"

# Returns when the wall clock reaches the moment given (epoch seconds).
WaitUntil = Callable[[float], Awaitable[None]]


async def wall_clock_until(moment: float) -> None:
    """Sleep until `moment` on the wall clock, the one tokens' `exp` is read against."""
    await asyncio.sleep(max(0.0, moment - time.time()))


class Connection:
    """One socket, from its handshake to its close.

    Strawberry's context for the protocol handlers (they set `connection_params`); once the
    client is authenticated, `identity` and `context` (the Context its subscriptions run
    with) are set.
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

    @property
    def route(self) -> str:
        scope = self.websocket.scope
        return str(getattr(scope.get("route"), "path", None) or scope["path"])

    def establish(self, identity: Identity, context: Context) -> None:
        self.identity = identity
        self.context = context
        self.authenticated.set()

    def established(self) -> tuple[Identity, Context]:
        """The caller and its Context; the handlers run no operation before `connection_ack`."""
        if self.identity is None or self.context is None:
            raise RuntimeError("an operation on a connection not authenticated")
        return self.identity, self.context

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


@dataclasses.dataclass(frozen=True, slots=True)
class SocketRequest:
    """What one `subscribe` (graphql-transport-ws) or `start` (graphql-ws) asks to run."""

    query: str
    operation_name: str | None
    variables: dict[str, Any] | None

    @classmethod
    def of(cls, payload: object) -> SocketRequest | None:
        """The request a message's payload holds; None when it holds none."""
        if not isinstance(payload, dict):
            return None
        query = payload.get("query")
        name = payload.get("operationName")
        variables = payload.get("variables")
        if (
            not isinstance(query, str)
            or not isinstance(name, str | None)
            or not isinstance(variables, dict | None)
        ):
            return None
        return cls(query=query, operation_name=name or None, variables=variables)


def _shed() -> RequestError:
    """The refusal of an operation for which no place came free in time."""
    error = graphql_error_body(
        BUSY_MESSAGE, Code.SERVICE_UNAVAILABLE.value, retry_after=SHED_RETRY_AFTER_SECONDS
    )["errors"][0]
    return RequestError(
        Phase.ADMISSION,
        [GraphQLError(error["message"], extensions=error["extensions"])],
        retry_after=SHED_RETRY_AFTER_SECONDS,
    )


def _payload(result: ExecutionResult) -> dict[str, Any]:
    """A `next` (graphql-ws: `data`) message's payload: the result as an HTTP body has it."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    return payload


class _SocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's adapter with a cap on inbound messages and a close that may come twice."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object]:
        max_bytes = cast(WebSocketEndpoint, self.view).max_message_bytes
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


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Any, None]):
    """graphql-transport-ws, its operations run by the endpoint, never by the schema."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and SocketRequest.of(message["payload"]) is None:
            # The protocol's answer to a message of a format it does not specify.
            await self.handle_invalid_message(NOT_A_REQUEST_MESSAGE)
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        """The operation's task (Strawberry's would run it through `schema.stream`)."""
        endpoint = cast(WebSocketEndpoint, self.view)
        request = SocketRequest(
            query=operation.query,
            operation_name=operation.operation_name or None,
            variables=operation.variables,
        )
        try:
            protocol = GRAPHQL_TRANSPORT_WS_PROTOCOL
            results = endpoint.results(self.context, request, protocol=protocol)
            async with contextlib.aclosing(results):
                async for payload in results:
                    next_payload = cast(NextMessagePayload, payload)
                    await operation.send_operation_message(
                        NextMessage(id=operation.id, type="next", payload=next_payload)
                    )
        except RequestError as refused:
            errors = [error.formatted for error in refused.errors]
            await operation.send_operation_message(
                {"id": operation.id, "type": "error", "payload": errors}
            )
            return
        except Exception as error:
            # As Strawberry's own task: logged, then completed and forgotten.
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise
        await operation.send_operation_message({"id": operation.id, "type": "complete"})


class _LegacyHandler(BaseGraphQLWSHandler[Any, None]):
    """graphql-ws (subscriptions-transport-ws), refused, limited and run as the newer protocol
    is."""

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

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged and SocketRequest.of(message.get("payload")) is None:
            # graphql-ws has no close for it: the operation's `error`, as for a bad document.
            error = GraphQLFormattedError(
                message=NOT_A_REQUEST_MESSAGE, extensions={"code": Code.BAD_REQUEST.value}
            )
            await self.send_message(ErrorMessage(type="error", id=message["id"], payload=error))
            return
        await super().handle_start(message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """The operation's task (Strawberry's would run it through `schema.subscribe`)."""
        endpoint = cast(WebSocketEndpoint, self.view)
        request = SocketRequest(
            query=query, operation_name=operation_name or None, variables=variables
        )
        try:
            results = endpoint.results(self.context, request, protocol=GRAPHQL_WS_PROTOCOL)
            async with contextlib.aclosing(results):
                async for payload in results:
                    data = cast(DataMessagePayload, payload)
                    await self.send_message(DataMessage(type="data", id=operation_id, payload=data))
        except RequestError as refused:
            # The protocol's `error` carries one error.
            error = refused.errors[0].formatted
            await self.send_message(ErrorMessage(type="error", id=operation_id, payload=error))
            return
        except asyncio.CancelledError:
            # Stopped, or the socket is closing: graphql-ws completes the operation all the same.
            await self.send_message({"type": "complete", "id": operation_id})
            raise
        else:
            await self.send_message({"type": "complete", "id": operation_id})
        finally:
            # As Strawberry's: the operation no longer counts towards the cap, its id is free.
            self.tasks.pop(operation_id, None)


class WebSocketEndpoint(GraphQL[Any, None]):
    """The ASGI app for WebSocket connections to /graphql (HTTP goes to GraphQLEndpoint).

    `wait_until` is how a connection waits for its token to expire (tests pass one they
    release themselves).
    """

    graphql_transport_ws_handler_class = _TransportWSHandler
    graphql_ws_handler_class = _LegacyHandler
    websocket_adapter_class = _SocketAdapter

    def __init__(
        self,
        runner: GraphQLRunner,
        *,
        settings: SubscriptionSettings,
        telemetry: Telemetry,
        admission: Admission,
        allowed_origins: Sequence[str] = (),
        wait_until: WaitUntil = wall_clock_until,
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
        self._telemetry = telemetry
        self._admission = admission
        self._wait_until = wait_until
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
        identity, _ = connection.established()
        await self._wait_until(identity.expires_at)
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
            gauge=self._telemetry.metrics,
        )
        chat = services.chat.for_user(identity.sub)
        connection.establish(identity, build_context(chat, live=live))
        return cast(UnsetType, UNSET)

    def _release(self, user_id: str) -> None:
        self._connections[user_id] -= 1
        if self._connections[user_id] <= 0:
            del self._connections[user_id]

    async def results(
        self, connection: Connection, request: SocketRequest, *, protocol: str
    ) -> AsyncGenerator[dict[str, Any]]:
        """What an operation answers, as payloads of `next` (graphql-ws: `data`) messages: one
        for a query or mutation, one per event for a subscription. RequestError, before any
        payload, when the runner refuses the document or its variables.

        Every operation of either protocol passes here, as every HTTP request passes
        GraphQLEndpoint.respond: its user's budgets are checked here (gql.budgets), and a
        query or mutation takes a place in the process while it runs (admission.py).
        """
        identity, context = connection.established()
        try:
            prepared = self._runner.prepare(request.query, request.operation_name)
        except RequestError as refused:
            self._note_refusal(connection, protocol, None, refused)
            raise
        try:
            await admit(
                connection.services.limiter,
                prepared,
                user_id=identity.sub,
                transport="websocket",
            )
        except RequestError as refused:
            self._note_refusal(connection, protocol, prepared, refused)
            raise
        if prepared.kind is OperationType.SUBSCRIPTION:
            try:
                events = await self._runner.subscribe(
                    prepared, variables=request.variables, context=context
                )
            except RequestError as refused:
                self._note_refusal(connection, protocol, prepared, refused)
                raise
            async with contextlib.aclosing(events):
                async for result in events:
                    yield _payload(result)
            return
        with self._observed(connection, protocol, prepared):
            # A place in the process while it runs, as an HTTP request takes (admission.py).
            async with self._admission.place() as admitted:
                if not admitted:
                    self._telemetry.metrics.shed("websocket")
                    shed = _shed()
                    note_errors([error.formatted for error in shed.errors])
                    raise shed
                try:
                    # Loaders of its own, as an HTTP request's: the connection's may be an hour
                    # old.
                    result = await self._runner.execute(
                        prepared, variables=request.variables, context=build_context(context.chat)
                    )
                except RequestError as refused:
                    note_errors([error.formatted for error in refused.errors])
                    raise
            # Notes its error codes, and adds the cost extension when that is on.
            payload = dict(observed(_payload(result)))
        yield payload

    def _note_refusal(
        self,
        connection: Connection,
        protocol: str,
        prepared: Prepared | None,
        refused: RequestError,
    ) -> None:
        """A refused operation's line, as an HTTP request refused at the same phase has."""
        with self._observed(connection, protocol, prepared):
            note_errors([error.formatted for error in refused.errors])

    def _observed(
        self, connection: Connection, protocol: str, prepared: Prepared | None
    ) -> contextlib.AbstractContextManager[RequestRecord]:
        identity, _ = connection.established()
        operation = None if prepared is None else prepared.operation
        return observed_operation(
            self._telemetry,
            protocol=protocol,
            route=connection.route,
            user=identity.sub,
            name=operation.name.value if operation is not None and operation.name else None,
            kind=None if operation is None else operation.operation.value,
        )

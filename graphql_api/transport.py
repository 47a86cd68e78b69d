"""HTTP guards in front of the transports' endpoints, as plain ASGI middleware.

- A request body must be JSON. Form and multipart bodies are "simple" requests a browser sends
  cross-origin without a CORS preflight, so accepting them would open the door to CSRF.
- A body over the limit gets 413 before it is buffered: by Content-Length when declared,
  and by counting as it streams when not.

Each transport says which paths it serves and how its errors look (`TransportPaths`), so a
refusal here reads like any other error of that transport; one guard serves them all.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, Protocol

from graphql_api.errors import Code

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ErrorBody(Protocol):
    """The JSON body of an error in one transport's shape; `retry_after` (seconds) for a
    refusal that says when to come back."""

    def __call__(
        self, message: str, code: str, *, retry_after: int | None = None
    ) -> Mapping[str, Any]: ...


_JSON_TYPES = frozenset({"application/json", "application/graphql-response+json"})


def graphql_error_body(
    message: str, code: str, *, retry_after: int | None = None
) -> dict[str, Any]:
    extensions: dict[str, Any] = {"code": code}
    # As gql.errors.public_error says them for the same codes.
    if code == Code.SERVICE_UNAVAILABLE:
        extensions["retryable"] = True
    if retry_after is not None:
        extensions["retryAfter"] = retry_after
    return {"errors": [{"message": message, "extensions": extensions}]}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransportPaths:
    """The paths one transport serves, and the shape of the errors it answers with."""

    covers: Callable[[str], bool]
    error_body: ErrorBody
    # The methods whose request body must be JSON.
    body_methods: frozenset[str] = frozenset({"POST"})


def graphql_paths(path: str) -> TransportPaths:
    """The GraphQL endpoint at `path`, answering in GraphQL's error shape."""
    return TransportPaths(
        covers=lambda requested: requested.rstrip("/") == path, error_body=graphql_error_body
    )


async def send_error(
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    *,
    error_body: ErrorBody = graphql_error_body,
    retry_after: int | None = None,
) -> None:
    body = json.dumps(error_body(message, code, retry_after=retry_after)).encode()
    if retry_after is not None:
        headers = (*headers, (b"retry-after", str(retry_after).encode()))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> tuple[str, str | None]:
    """The request's media type (lower case, without parameters) and declared length, read in
    one pass over its headers."""
    content_type: str | None = None
    length: str | None = None
    for key, value in scope.get("headers", ()):
        # The first of each counts, as for Starlette's Headers.get.
        name = key.lower()
        if name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
        elif name == b"content-length" and length is None:
            length = value.decode("latin-1")
    return (content_type or "").split(";")[0].strip().lower(), length


class TransportGuard:
    """JSON-only bodies and a body size limit on the paths each transport covers, a refusal
    in the error shape of the transport that serves the path.

    One guard for every transport: a request passes one middleware, whichever it is for.
    """

    def __init__(
        self, app: ASGIApp, *, transports: Sequence[TransportPaths], max_body_bytes: int
    ) -> None:
        self._app = app
        self._transports = tuple(transports)
        self._max_body_bytes = max_body_bytes

    def _transport(self, path: str) -> TransportPaths | None:
        for transport in self._transports:
            if transport.covers(path):
                return transport
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = self._transport(scope["path"]) if scope["type"] == "http" else None
        if transport is None:
            await self._app(scope, receive, send)
            return
        media_type, declared = _headers(scope)
        if scope["method"] in transport.body_methods and media_type not in _JSON_TYPES:
            await self._refuse(
                transport, send, 415, "requests must be JSON (Content-Type: application/json)"
            )
            return
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            await self._too_large(transport, send)
            return
        await self._forward_counting(transport, scope, receive, send)

    async def _forward_counting(
        self, transport: TransportPaths, scope: Scope, receive: Receive, send: Send
    ) -> None:
        received = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body_bytes and not started:
                    # Answer 413 now and tell the app the client has gone, so it stops
                    # reading; whatever it then tries to send is dropped.
                    refused = True
                    await self._too_large(transport, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _too_large(self, transport: TransportPaths, send: Send) -> None:
        await self._refuse(
            transport,
            send,
            413,
            f"request body is larger than the limit of {self._max_body_bytes} bytes",
        )

    @staticmethod
    async def _refuse(transport: TransportPaths, send: Send, status: int, message: str) -> None:
        await send_error(
            send, status, message, Code.BAD_REQUEST.value, error_body=transport.error_body
        )

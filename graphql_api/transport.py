"""HTTP guards in front of the GraphQL endpoint, as plain ASGI middleware.

- A POST must be JSON. Form and multipart bodies are "simple" requests a browser sends
  cross-origin without a CORS preflight, so accepting them would open the door to CSRF.
- A body over the limit gets 413 before it is buffered: by Content-Length when declared,
  and by counting as it streams when not.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_TYPES = frozenset({"application/json", "application/graphql-response+json"})


def error_body(message: str, code: str) -> bytes:
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()


async def send_error(
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    body = error_body(message, code)
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


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class GraphQLTransportGuard:
    def __init__(self, app: ASGIApp, *, path: str, max_body_bytes: int) -> None:
        self._app = app
        self._path = path
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self._path:
            await self._app(scope, receive, send)
            return
        if scope["method"] == "POST":
            media_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if media_type not in _JSON_TYPES:
                await send_error(
                    send,
                    415,
                    "requests must be JSON (Content-Type: application/json)",
                    "BAD_REQUEST",
                )
                return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            await self._too_large(send)
            return
        await self._forward_counting(scope, receive, send)

    async def _forward_counting(self, scope: Scope, receive: Receive, send: Send) -> None:
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
                    await self._too_large(send)
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

    async def _too_large(self, send: Send) -> None:
        await send_error(
            send,
            413,
            f"request body is larger than the limit of {self._max_body_bytes} bytes",
            "BAD_REQUEST",
        )

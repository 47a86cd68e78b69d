"""The outermost middleware: opens each request's record, and at the end writes its one log
line, its metrics and its span, and returns its id in `X-Request-Id`.

Plain ASGI (no BaseHTTPMiddleware task per request): it runs on every request, so it adds only
a context variable, a wrapped `send` and the bookkeeping at the end. WebSocket connections
pass through untouched; the WebSocket transport reports each operation they carry
(sockets.py).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Final

from graphql_api.errors import Code

from . import record
from .metrics import outcome_of, route_label
from .telemetry import Telemetry

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A caller's id is kept when it looks like an id (UUIDs, ULIDs, X-Ray and base64 ids), so it
# can neither inject into a log line nor carry text of any length.
_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_REQUEST_ID_HEADER: Final = b"x-request-id"

# The code of a response that carries none of its own (refused before GraphQL ran).
_CODE_OF_STATUS: Final = {
    401: Code.UNAUTHENTICATED.value,
    403: Code.UNAUTHENTICATED.value,
    404: Code.NOT_FOUND.value,
    409: Code.CONFLICT.value,
    429: Code.RATE_LIMITED.value,
    503: Code.SERVICE_UNAVAILABLE.value,
}


def request_id_from(headers: Sequence[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == _REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def codes_of_status(status: int) -> list[str]:
    if status < 400:
        return []
    code = _CODE_OF_STATUS.get(status)
    if code is None:
        code = Code.INTERNAL_SERVER_ERROR.value if status >= 500 else Code.BAD_REQUEST.value
    return [code]


class RequestTelemetry:
    def __init__(self, app: ASGIApp, *, telemetry: Telemetry) -> None:
        self._app = app
        self._telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        telemetry = self._telemetry
        current = record.RequestRecord(
            request_id=request_id_from(scope["headers"]),
            cost_extension=telemetry.cost_extension,
        )
        id_header = (_REQUEST_ID_HEADER, current.request_id.encode())
        status = 500  # unless the app answers: an exception reaches the server as a 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token = record.begin(current)
        telemetry.metrics.request_started()
        fields: dict[str, Any] | None = None
        try:
            if telemetry.tracing is None:
                await self._app(scope, receive, send_with_id)
            else:
                with telemetry.tracing.request_span(
                    scope["method"], scope["path"], scope["headers"]
                ) as span:
                    try:
                        await self._app(scope, receive, send_with_id)
                    finally:
                        fields = self._fields(scope, current, status, started)
                        telemetry.tracing.finish(
                            span,
                            name=_span_name(fields),
                            attributes=_span_attributes(fields),
                            failed=fields["outcome"] == "server_error",
                        )
        finally:
            record.end(token)
            if fields is not None or telemetry.reporting:
                telemetry.report(fields or self._fields(scope, current, status, started), current)

    def _fields(
        self, scope: Scope, current: record.RequestRecord, status: int, started: float
    ) -> dict[str, Any]:
        """The request's summary: the access line's fields, an allow-list, nothing from bodies."""
        telemetry = self._telemetry
        route = getattr(scope.get("route"), "path", None)
        if current.operation_type is not None:
            operation = telemetry.metrics.operations.label(current.operation_name)
        else:
            operation = route_label(scope["method"], route)
        codes = current.error_codes or codes_of_status(status)
        return {
            "request_id": current.request_id,
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "operation": operation,
            "operation_name": current.operation_name,
            "operation_type": current.operation_type,
            "status": status,
            "outcome": outcome_of(status, codes),
            "error_codes": codes,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "user_hash": self._user_hash(scope),
            **current.usage(),
        }

    def _user_hash(self, scope: Scope) -> str | None:
        user = scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        try:
            sub = user.identity
        except NotImplementedError:
            return None
        return self._telemetry.user_hash(str(sub))


def _span_name(fields: dict[str, Any]) -> str:
    if fields["operation_type"]:
        return f"{fields['operation_type']} {fields['operation']}"
    return str(fields["operation"])


def _span_attributes(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "http.route": fields["route"],
        "http.response.status_code": fields["status"],
        "graphql.operation.name": fields["operation_name"],
        "graphql.operation.type": fields["operation_type"],
        "chat.request_id": fields["request_id"],
        "chat.outcome": fields["outcome"],
        "chat.error_codes": fields["error_codes"] or None,
        "chat.user_hash": fields["user_hash"],
        "chat.dynamodb.requests": fields["dynamodb_requests"],
        "chat.dynamodb.read_capacity_units": fields["read_capacity_units"],
        "chat.dynamodb.write_capacity_units": fields["write_capacity_units"],
    }

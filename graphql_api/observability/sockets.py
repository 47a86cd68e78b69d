"""A GraphQL operation that came over a WebSocket, reported as an HTTP request is.

An HTTP request gets its record, access line and metrics from the middleware; an operation
on a socket has no request of its own, so the WebSocket transport opens one per operation
here: the same record (DynamoDB calls and capacity, error codes, the cost extension), the
same metrics, and the same access line, where `protocol` (graphql-transport-ws or
graphql-ws) stands in for the HTTP method and `status` is null.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

from graphql_api.errors import Code

from . import record
from .metrics import outcome_of
from .telemetry import Telemetry


@contextlib.contextmanager
def observed_operation(
    telemetry: Telemetry,
    *,
    protocol: str,
    route: str,
    user: str,
    name: str | None,
    kind: str | None,
) -> Iterator[record.RequestRecord]:
    """The operation's record, current while it runs; its line and metrics when it ends.

    `kind` is None for an operation refused before its document was known (it does not
    parse, say): like an HTTP request refused there, it is named by its route.
    """
    started = time.perf_counter()
    current = record.RequestRecord(
        request_id=uuid.uuid4().hex,
        cost_extension=telemetry.cost_extension,
        operation_name=name,
        operation_type=kind,
    )
    token = record.begin(current)
    telemetry.metrics.request_started()
    try:
        yield current
    except Exception:
        current.error_codes.append(Code.INTERNAL_SERVER_ERROR.value)
        raise
    finally:
        record.end(token)
        if telemetry.reporting:
            telemetry.report(_fields(telemetry, current, protocol, route, user, started), current)


def _fields(
    telemetry: Telemetry,
    current: record.RequestRecord,
    protocol: str,
    route: str,
    user: str,
    started: float,
) -> dict[str, Any]:
    if current.operation_type is None:
        operation = f"WS {route}"
    else:
        operation = telemetry.metrics.operations.label(current.operation_name)
    return {
        "request_id": current.request_id,
        "protocol": protocol,
        "method": None,
        "path": route,
        "route": route,
        "operation": operation,
        "operation_name": current.operation_name,
        "operation_type": current.operation_type,
        "status": None,
        "outcome": outcome_of(None, current.error_codes),
        "error_codes": list(current.error_codes),
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "user_hash": telemetry.user_hash(user),
        **current.usage(),
    }

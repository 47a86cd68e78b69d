"""What a GraphQL response tells about the request: its error codes, and its cost when asked.

`observed(body)` is called on every GraphQL response body just before it is serialized. It
notes the body's error codes in the request's record, and with COST_EXTENSION_ENABLED adds
what the request has cost in DynamoDB so far (everything, since the body is final):

    "extensions": {"cost": {"dynamodbRequests": 2, "readCapacityUnits": 1.5,
                            "writeCapacityUnits": 0.0}}

plus "unreportedRequests": n when n of those calls came back without a ConsumedCapacity (the
engine did not report it; nothing is estimated in its place).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import record


def cost_of(current: record.RequestRecord) -> dict[str, Any]:
    cost: dict[str, Any] = {
        "dynamodbRequests": current.dynamodb_requests,
        "readCapacityUnits": round(current.read_units, 3),
        "writeCapacityUnits": round(current.write_units, 3),
    }
    if current.unreported:
        cost["unreportedRequests"] = current.unreported
    return cost


def observed(body: Mapping[str, Any]) -> Mapping[str, Any]:
    current = record.current()
    if current is None:
        return body
    note_errors(body.get("errors"))
    if not current.cost_extension:
        return body
    extensions = {**body.get("extensions", {}), "cost": cost_of(current)}
    return {**body, "extensions": extensions}


def note_errors(errors: Any) -> None:
    """Note the codes of `errors` (formatted, as a response carries them) in the record: for
    errors answered outside a response body (a WebSocket's `error` message)."""
    current = record.current()
    if current is not None and errors:
        current.error_codes.extend(_codes(errors))


def _codes(errors: Any) -> list[str]:
    codes = []
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, Mapping) else None
        code = extensions.get("code") if isinstance(extensions, Mapping) else None
        codes.append(code if isinstance(code, str) else "UNKNOWN")
    return codes

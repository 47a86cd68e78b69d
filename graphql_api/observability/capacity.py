"""DynamoDB's own account of each call, added to the request's record.

`watch_capacity(client)` registers two botocore event handlers on one client (never on a
global session): one asks every operation that accepts it for ReturnConsumedCapacity=TOTAL,
the other adds each response's ConsumedCapacity to the record of the request that made the
call. Nothing is estimated: a call whose response reports no capacity is counted as such.
"""

from __future__ import annotations

from typing import Any

from . import record


def _ask_for_capacity(params: dict[str, Any], model: Any, **_: Any) -> None:
    # Only operations whose input has the member (not DescribeTable, CreateTable...); a
    # caller's own choice (INDEXES) stands, since it reports the total too.
    if "ReturnConsumedCapacity" in model.input_shape.members:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")


def _count_response(parsed: dict[str, Any], model: Any, **_: Any) -> None:
    # Fires once per API call after botocore's own retries, for error responses too (which
    # carry no ConsumedCapacity).
    current = record.current()
    if current is not None:
        current.add_call(model.name, parsed.get("ConsumedCapacity"))


def _count_failure(event_name: str, **_: Any) -> None:
    # No response at all (connection refused, timeout): the event names the operation.
    current = record.current()
    if current is not None:
        current.add_call(event_name.rsplit(".", 1)[-1], None)


def watch_capacity(client: Any) -> None:
    """Register the handlers on `client` (an aiobotocore DynamoDB client)."""
    events = client.meta.events
    events.register("before-parameter-build.dynamodb", _ask_for_capacity)
    events.register("after-call.dynamodb", _count_response)
    events.register("after-call-error.dynamodb", _count_failure)

"""The per-request record every layer adds to, held in a context variable.

A context variable, not an argument: the DynamoDB client's event hooks run deep below the
storage functions, which should not grow a parameter for bookkeeping. Tasks started during
the request (a dataloader's gather) copy the context, and with it a reference to the same
record, so their calls are counted too.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

# Operations whose consumed capacity is write capacity; every other one that reports any
# (GetItem, Query, Scan, BatchGetItem, TransactGetItems) consumes read capacity.
WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


@dataclasses.dataclass(slots=True)
class CallUsage:
    """What one DynamoDB operation (e.g. Query) added up to during a request."""

    requests: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    # Calls whose response carried no ConsumedCapacity: failures, and operations the engine
    # does not report for (moto's TransactWriteItems). Counted, never estimated.
    unreported: int = 0


@dataclasses.dataclass(slots=True)
class RequestRecord:
    request_id: str
    cost_extension: bool = False
    operation_name: str | None = None
    operation_type: str | None = None
    error_codes: list[str] = dataclasses.field(default_factory=list)
    calls: dict[str, CallUsage] = dataclasses.field(default_factory=dict)

    def add_call(self, operation: str, consumed: Any) -> None:
        """Count one DynamoDB call and the ConsumedCapacity its response carried (or not)."""
        usage = self.calls.get(operation)
        if usage is None:
            usage = self.calls[operation] = CallUsage()
        usage.requests += 1
        # A dict for single-item operations and Query; a list (one per table) for the batch
        # and transaction operations.
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        if not entries:
            usage.unreported += 1
            return
        writes = operation in WRITE_OPERATIONS
        for entry in entries:
            read, write = _units(entry, writes=writes)
            usage.read_units += read
            usage.write_units += write

    def usage(self) -> dict[str, Any]:
        """What the request's access line says of its DynamoDB calls."""
        return {
            "dynamodb_requests": self.dynamodb_requests,
            "read_capacity_units": round(self.read_units, 3),
            "write_capacity_units": round(self.write_units, 3),
            "dynamodb_unreported": self.unreported,
            "dynamodb_calls": {name: usage.requests for name, usage in self.calls.items()},
        }

    @property
    def dynamodb_requests(self) -> int:
        return sum(usage.requests for usage in self.calls.values())

    @property
    def read_units(self) -> float:
        return sum(usage.read_units for usage in self.calls.values())

    @property
    def write_units(self) -> float:
        return sum(usage.write_units for usage in self.calls.values())

    @property
    def unreported(self) -> int:
        return sum(usage.unreported for usage in self.calls.values())


def _units(entry: Mapping[str, Any], *, writes: bool) -> tuple[float, float]:
    """(read, write) units of one ConsumedCapacity entry, as DynamoDB reported them.

    With TOTAL, DynamoDB reports `CapacityUnits` and only sometimes splits it into Read- and
    WriteCapacityUnits; where it does not, the operation says which kind it was.
    """
    read = entry.get("ReadCapacityUnits")
    write = entry.get("WriteCapacityUnits")
    if read is not None or write is not None:
        return float(read or 0.0), float(write or 0.0)
    total = float(entry.get("CapacityUnits") or 0.0)
    return (0.0, total) if writes else (total, 0.0)


_current: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
    "chat_history_request_record", default=None
)


def current() -> RequestRecord | None:
    """The record of the request being served; None outside one (startup, the CLI)."""
    return _current.get()


def begin(record: RequestRecord) -> contextvars.Token[RequestRecord | None]:
    return _current.set(record)


def end(token: contextvars.Token[RequestRecord | None]) -> None:
    _current.reset(token)


def note_operation(name: str | None, kind: str) -> None:
    """The GraphQL operation the request runs (kind: query, mutation, subscription)."""
    record = _current.get()
    if record is not None:
        record.operation_name = name
        record.operation_type = kind


def note_error_codes(codes: Iterable[str]) -> None:
    record = _current.get()
    if record is not None:
        record.error_codes.extend(codes)

"""DynamoDB's write billing, computed from the items a client writes: what moto does not report.

moto answers ReturnConsumedCapacity with placeholders (docs/cost.md), so exact write units
come from here instead: `Recorder` keeps every call a client makes with its parameters (from
botocore's events, which the fast path fires too), and `Ledger` bills each write by the rules
below from the sizes of the items involved (graphql_api.storage.items.item_size). A write is
billed on the larger of its item's sizes before and after, so the ledger holds the items as
the recorded writes left them.

The rules, for on-demand write request units and provisioned WCU alike:
- a PutItem, UpdateItem or DeleteItem costs 1 unit per KB (1,024 bytes) of the larger of the
  item's size before and after, rounded up, and at least 1 (a put on a free key: its size);
- each put or delete of a BatchWriteItem is billed as that single write;
- each item of a TransactWriteItems costs twice that;
- a global secondary index projecting ALL attributes costs one write of the entry's size when
  an entry is added, changed in place or removed, and two (the old entry removed, the new one
  put) when the item's index key changes. Index writes are counted as standard writes, in a
  transaction too: AWS documents the doubling for the items a transaction writes, not for
  the index updates that follow them.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.items import item_size
from graphql_api.storage.table import table_definition

Item: TypeAlias = Mapping[str, Any]
ItemKey: TypeAlias = tuple[str, str]
KB: Final = 1024
_CONTEXT_KEY: Final = "benchmarks.billing"


@dataclasses.dataclass(frozen=True)
class Index:
    """A global secondary index that projects every attribute (as the table's GSI1 and GSI2 do)."""

    name: str
    hash_key: str
    range_key: str | None = None

    def key_of(self, item: Item | None) -> tuple[Any, ...] | None:
        """The item's entry key in this index; None when the item is not in it."""
        if item is None or self.hash_key not in item:
            return None
        if self.range_key is None:
            return (item[self.hash_key],)
        if self.range_key not in item:
            return None
        return (item[self.hash_key], item[self.range_key])


def table_indexes() -> tuple[Index, ...]:
    """The table's global secondary indexes, from its definition (graphql_api/storage/table.py)."""
    found = []
    for index in table_definition("billing")["GlobalSecondaryIndexes"]:
        if index["Projection"]["ProjectionType"] != "ALL":
            raise NotImplementedError(f"{index['IndexName']}: only ALL projections are billed")
        keys = {part["KeyType"]: part["AttributeName"] for part in index["KeySchema"]}
        found.append(Index(index["IndexName"], keys["HASH"], keys.get("RANGE")))
    return tuple(found)


def _kilobytes(item: Item | None) -> int:
    return 0 if item is None else math.ceil(item_size(item) / KB)


def write_units(before: Item | None, after: Item | None, *, transactional: bool) -> int:
    """The units of one table write that turns `before` into `after` (None: no item)."""
    units = max(1, _kilobytes(before), _kilobytes(after))
    return 2 * units if transactional else units


def index_units(before: Item | None, after: Item | None, index: Index) -> int:
    """The units the same write costs in `index`."""
    old, new = index.key_of(before), index.key_of(after)
    if (old is None and new is None) or before == after:
        return 0
    if old == new:
        return max(1, _kilobytes(after))
    removed = 0 if old is None else max(1, _kilobytes(before))
    added = 0 if new is None else max(1, _kilobytes(after))
    return removed + added


@dataclasses.dataclass(frozen=True, kw_only=True)
class Call:
    """One DynamoDB call as the client made it."""

    operation: str
    params: Mapping[str, Any]
    failed: bool = False
    # What a BatchWriteItem left unprocessed (written, if at all, by a later call).
    unprocessed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # The write units the engine reported in ConsumedCapacity; None: it reported none.
    reported_units: float | None = None


@dataclasses.dataclass(frozen=True)
class Write:
    key: ItemKey
    kind: Literal["put", "update", "delete"]
    # What a put writes; an update's result is read back, a delete leaves nothing.
    item: Item | None
    transactional: bool


def key_of(item: Item) -> ItemKey:
    return (item["PK"]["S"], item["SK"]["S"])


def writes_of(call: Call) -> list[Write]:
    """The item writes one call makes (none for a read)."""
    params = call.params
    match call.operation:
        case "PutItem":
            return [Write(key_of(params["Item"]), "put", params["Item"], False)]
        case "UpdateItem":
            return [Write(key_of(params["Key"]), "update", None, False)]
        case "DeleteItem":
            return [Write(key_of(params["Key"]), "delete", None, False)]
        case "BatchWriteItem":
            return _batch_writes(params["RequestItems"], call.unprocessed)
        case "TransactWriteItems":
            return [_transact_write(action) for action in params["TransactItems"]]
    return []


def _batch_writes(requests: Mapping[str, Any], unprocessed: Mapping[str, Any]) -> list[Write]:
    writes = []
    for table, entries in requests.items():
        left = unprocessed.get(table, [])
        for entry in entries:
            if entry in left:
                continue
            if "PutRequest" in entry:
                item = entry["PutRequest"]["Item"]
                writes.append(Write(key_of(item), "put", item, False))
            else:
                writes.append(Write(key_of(entry["DeleteRequest"]["Key"]), "delete", None, False))
    return writes


def _transact_write(action: Mapping[str, Any]) -> Write:
    if "Put" in action:
        item = action["Put"]["Item"]
        return Write(key_of(item), "put", item, True)
    if "Update" in action:
        return Write(key_of(action["Update"]["Key"]), "update", None, True)
    if "Delete" in action:
        return Write(key_of(action["Delete"]["Key"]), "delete", None, True)
    raise NotImplementedError(f"transaction action {sorted(action)} is not billed here")


@dataclasses.dataclass(frozen=True)
class Bill:
    """Requests by operation, and the write units they cost, in the table and its indexes."""

    requests: Mapping[str, int] = dataclasses.field(default_factory=dict)
    table_units: int = 0
    index_units: int = 0
    # What the engine reported for the writes; None when a write call reported none.
    reported_units: float | None = 0.0

    @property
    def units(self) -> int:
        return self.table_units + self.index_units

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())

    def __add__(self, other: Bill) -> Bill:
        reported = (
            None
            if self.reported_units is None or other.reported_units is None
            else self.reported_units + other.reported_units
        )
        return Bill(
            requests=dict(collections.Counter(self.requests) + collections.Counter(other.requests)),
            table_units=self.table_units + other.table_units,
            index_units=self.index_units + other.index_units,
            reported_units=reported,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "request_count": self.request_count,
            "table_units": self.table_units,
            "index_units": self.index_units,
            "units": self.units,
            "reported_units": self.reported_units,
        }


class Ledger:
    """The table's items as the billed writes left them."""

    def __init__(self, items: Mapping[ItemKey, Item], indexes: Sequence[Index]) -> None:
        self._items = dict(items)
        self._indexes = tuple(indexes)

    def item(self, key: ItemKey) -> Item | None:
        return self._items.get(key)

    def bill(self, calls: Sequence[Call], updated: Mapping[ItemKey, Item | None]) -> Bill:
        """`calls` as DynamoDB bills them. `updated` holds, for each key an update among them
        wrote, the item as it is afterwards (a put's item is in its call). A key written twice
        among `calls` is refused: its size between the two writes is not known."""
        table = index = 0
        written: set[ItemKey] = set()
        for call in calls:
            if call.failed:
                raise NotImplementedError(f"a failed {call.operation} is not billed here")
            for write in writes_of(call):
                if write.key in written:
                    raise ValueError(f"{write.key} is written twice in one bill")
                written.add(write.key)
                before = self._items.get(write.key)
                after = write.item if write.kind == "put" else None
                if write.kind == "update":
                    after = updated[write.key]
                table += write_units(before, after, transactional=write.transactional)
                index += sum(index_units(before, after, found) for found in self._indexes)
                if after is None:
                    self._items.pop(write.key, None)
                else:
                    self._items[write.key] = after
        return Bill(
            requests=dict(collections.Counter(call.operation for call in calls)),
            table_units=table,
            index_units=index,
            reported_units=_reported(calls),
        )


def updated_keys(calls: Sequence[Call]) -> list[ItemKey]:
    """The keys updates among `calls` wrote: their items must be read back to be billed."""
    return [write.key for call in calls for write in writes_of(call) if write.kind == "update"]


def _reported(calls: Sequence[Call]) -> float | None:
    units = [call.reported_units for call in calls if writes_of(call)]
    if any(found is None for found in units):
        return None
    return sum(found for found in units if found is not None)


def rewrite_per_chunk(message: Item, deltas: Sequence[str], indexes: Sequence[Index]) -> Bill:
    """The rewrite-per-chunk pattern over `deltas`: one UpdateItem per chunk of the whole
    message item (`message` as started), holding the text so far, billed by the same rules."""
    ledger = Ledger({key_of(message): message}, indexes)
    bill = Bill()
    current = message
    for delta in deltas:
        current = {**current, "content": {"S": current["content"]["S"] + delta}}
        update = Call(operation="UpdateItem", params={"Key": _key_attributes(current)})
        bill += ledger.bill([update], {key_of(current): current})
    return bill


def _key_attributes(item: Item) -> dict[str, Any]:
    return {"PK": item["PK"], "SK": item["SK"]}


class Recorder:
    """Every call one client makes, with its parameters, in the order they end."""

    def __init__(self) -> None:
        self._calls: list[Call] = []

    def take(self) -> list[Call]:
        """The calls since the last take."""
        calls, self._calls = self._calls, []
        return calls

    def _before(self, params: Mapping[str, Any], model: Any, context: Any, **_: Any) -> None:
        # Copied: the parameters are the caller's, and nothing says they stay as sent.
        context[_CONTEXT_KEY] = (model.name, copy.deepcopy(dict(params)))

    def _after(self, parsed: Mapping[str, Any], context: Any, **_: Any) -> None:
        operation, params = context.pop(_CONTEXT_KEY)
        self._calls.append(
            Call(
                operation=operation,
                params=params,
                failed="Error" in parsed,
                unprocessed=parsed.get("UnprocessedItems") or {},
                reported_units=_reported_write_units(parsed.get("ConsumedCapacity")),
            )
        )

    def _error(self, context: Any, **_: Any) -> None:
        operation, params = context.pop(_CONTEXT_KEY)
        self._calls.append(Call(operation=operation, params=params, failed=True))

    @classmethod
    @contextlib.contextmanager
    def attached(cls, client: DynamoDBClient) -> Iterator[Recorder]:
        recorder = cls()
        events = client.meta.events
        handlers = (
            ("before-parameter-build.dynamodb", recorder._before),
            ("after-call.dynamodb", recorder._after),
            ("after-call-error.dynamodb", recorder._error),
        )
        for event, handler in handlers:
            events.register(event, handler)
        try:
            yield recorder
        finally:
            for event, handler in handlers:
                events.unregister(event, handler)


def _reported_write_units(consumed: Any) -> float | None:
    """The units a write's ConsumedCapacity (one entry, or one per table) says."""
    if consumed is None:
        return None
    entries = consumed if isinstance(consumed, list) else [consumed]
    if not entries:
        return None
    return sum(
        float(entry.get("WriteCapacityUnits", entry.get("CapacityUnits", 0.0))) for entry in entries
    )

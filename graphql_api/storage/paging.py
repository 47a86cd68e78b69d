"""Keyset paging over one sorted partition, with exact knowledge of both neighbours.

A page is read with a key condition that starts AT the cursor (inclusive): when the cursor's
own item comes back first, the other side of the cursor is known to be non-empty, without a
second request. Only when that item has gone (deleted, or a conversation that moved up the
list) is a one-item probe needed. Every page fetches one item beyond the limit, so "is there a
next page" is answered exactly; Query pages stop at 1 MB, so reads continue until the window
is full rather than trusting a single response.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from .client import ChatTable
from .records import Item, Page
from .table import GSI_RECENCY

RecordT = TypeVar("RecordT")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SortedRange:
    """The items of one partition between two inclusive sort-key bounds."""

    partition_attribute: str
    partition_value: str
    sort_attribute: str
    low: str | None = None
    high: str | None = None
    index_name: str | None = None
    # An extra guard evaluated on every item: (expression, names, values).
    item_filter: tuple[str, dict[str, str], dict[str, Any]] | None = None
    # With a filter that discards many items, read at least this many per request, so a page
    # of rare matches costs a few requests rather than one per item read.
    read_ahead: int = 0


def _key_condition(
    span: SortedRange, low: str | None, high: str | None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    names = {"#p": span.partition_attribute, "#s": span.sort_attribute}
    values: dict[str, Any] = {":p": {"S": span.partition_value}}
    if low is not None and high is not None:
        values |= {":lo": {"S": low}, ":hi": {"S": high}}
        return "#p = :p AND #s BETWEEN :lo AND :hi", names, values
    if low is not None:
        values[":lo"] = {"S": low}
        return "#p = :p AND #s >= :lo", names, values
    if high is not None:
        values[":hi"] = {"S": high}
        return "#p = :p AND #s <= :hi", names, values
    del names["#s"]
    return "#p = :p", names, values


async def _collect(
    table: ChatTable,
    span: SortedRange,
    *,
    low: str | None,
    high: str | None,
    ascending: bool,
    want: int,
    consistent: bool,
) -> list[Item]:
    condition, names, values = _key_condition(span, low, high)
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": condition,
        "ScanIndexForward": ascending,
    }
    if span.index_name is not None:
        request["IndexName"] = span.index_name
    else:
        request["ConsistentRead"] = consistent
    if span.item_filter is not None:
        expression, filter_names, filter_values = span.item_filter
        request["FilterExpression"] = expression
        names = names | filter_names
        values = values | filter_values
    request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = values
    items: list[Item] = []
    while len(items) < want:
        response = await table.client.query(
            **request, Limit=max(want - len(items), span.read_ahead, 1)
        )
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return items[:want]


async def read_page(
    table: ChatTable,
    span: SortedRange,
    *,
    cursor: str | None,
    limit: int,
    forward: bool,
    display_ascending: bool,
    consistent: bool = True,
) -> Page[Item]:
    """`limit` items beyond `cursor` in display order (`forward`) or before it (backward)."""
    ascending = forward == display_ascending

    def beyond(start: str | None, *, going_up: bool) -> tuple[str | None, str | None]:
        if start is None:
            return span.low, span.high
        return (start, span.high) if going_up else (span.low, start)

    low, high = beyond(cursor, going_up=ascending)
    items = await _collect(
        table,
        span,
        low=low,
        high=high,
        ascending=ascending,
        want=limit + 1 + (cursor is not None),
        consistent=consistent,
    )
    behind_cursor = False
    if cursor is not None:
        if items and items[0][span.sort_attribute]["S"] == cursor:
            behind_cursor = True
            items = items[1:]
        else:
            probe_low, probe_high = beyond(cursor, going_up=not ascending)
            behind_cursor = bool(
                await _collect(
                    table,
                    span,
                    low=probe_low,
                    high=probe_high,
                    ascending=not ascending,
                    want=1,
                    consistent=consistent,
                )
            )
    more_beyond = len(items) > limit
    items = items[:limit]
    if not forward:
        items.reverse()
    return Page(
        items=items,
        has_previous=behind_cursor if forward else more_beyond,
        has_next=more_beyond if forward else behind_cursor,
    )


async def read_recent(
    table: ChatTable,
    *,
    partition_value: str,
    cursor: str | None,
    limit: int,
    forward: bool,
    record_of: Callable[[Item], RecordT],
) -> Page[RecordT]:
    """A page of one of GSI1's lists, whose sort keys lead with a time: newest first, each
    item as `record_of` reads it. GSI1 is eventually consistent: a write may show late."""
    span = SortedRange(
        index_name=GSI_RECENCY,
        partition_attribute="GSI1PK",
        partition_value=partition_value,
        sort_attribute="GSI1SK",
    )
    async with table.guard():
        page = await read_page(
            table, span, cursor=cursor, limit=limit, forward=forward, display_ascending=False
        )
    return Page(
        items=[record_of(item) for item in page.items],
        has_previous=page.has_previous,
        has_next=page.has_next,
    )

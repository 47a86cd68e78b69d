"""Reading the change log: what changed in a user's data after a given version.

The log is USER#<user> / CHG#<version>, one item per committed write (writes.commit puts
them), read with a strongly consistent Query so a reader never misses a change that has
committed. Entries older than the table's `change_retention` are gone for every reader, swept
by DynamoDB's TTL or not: a reader whose position is older than that must reload. So must a
reader whose position is from before an erasure (storage/erasure.py): it deletes every entry
and moves the version one past the last, with no entry for that version on purpose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import items, keys
from .batch import batch_get
from .checks import checked_user
from .client import ChatTable
from .deltas import whole
from .records import ChangeRecord, MessagePosition, MessageRecord


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChangePage:
    changes: list[ChangeRecord]
    # The version a reader has seen once it has these changes.
    version: int
    has_more: bool
    # `after` is older than what the log keeps: the reader must reload, then go on from
    # `version`.
    resync_required: bool = False


async def current_version(table: ChatTable, *, user_id: str) -> int:
    key = items.profile_key(checked_user(user_id))
    async with table.guard():
        response = await table.client.get_item(
            TableName=table.name,
            Key=key,
            ConsistentRead=True,
            ProjectionExpression="changeVersion",
        )
    return items.change_version_of(response.get("Item"))


async def read_changes(
    table: ChatTable,
    *,
    user_id: str,
    after: int,
    limit: int,
    issued_at: datetime | None = None,
    max_messages: int | None = None,
) -> ChangePage:
    """Up to `limit` changes after version `after`, oldest first.

    `issued_at` is when the reader's position was handed out; a position older than the
    retention is refused even when nothing changed since. `max_messages` ends the page before
    a change whose messages would take the page past that many (a page's messages are read in
    one BatchGetItem); a page holds at least one change whatever it carries.
    """
    user_id = checked_user(user_id)
    now = table.clock()
    oldest_kept = now - table.change_retention
    if issued_at is not None and issued_at < oldest_kept:
        return ChangePage(changes=[], version=after, has_more=False, resync_required=True)
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :p AND SK BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":p": {"S": keys.user_pk(user_id)},
            ":low": {"S": keys.change_sk(after + 1)},
            ":high": {"S": keys.CHANGES_HIGH},
        },
        "ConsistentRead": True,
    }
    async with table.guard():
        found = await _query_log(table, request, limit=limit)
        if not found and after > 0 and await current_version(table, user_id=user_id) > after:
            # The log went further than the Query saw: a write committed in between, or every
            # change since the position is gone. What committed before the version was read
            # is in the log now unless it is gone, so a second look tells which.
            found = await _query_log(table, request, limit=limit)
            if not found:
                return ChangePage(changes=[], version=after, has_more=False, resync_required=True)
    if found and (found[0].version != after + 1 or found[0].created_at < oldest_kept):
        # The change right after the reader's position is gone (swept, or past retention):
        # whatever came after it, the reader would miss something.
        return ChangePage(changes=[], version=after, has_more=False, resync_required=True)
    page = found[:limit]
    if max_messages is not None:
        page = _within(page, max_messages)
    return ChangePage(
        changes=page,
        version=page[-1].version if page else after,
        has_more=len(found) > len(page),
    )


async def _query_log(
    table: ChatTable, request: Mapping[str, Any], *, limit: int
) -> list[ChangeRecord]:
    """Up to `limit` + 1 entries (one more tells whether there is more)."""
    found: list[ChangeRecord] = []
    page = dict(request)
    while len(found) <= limit:
        response = await table.client.query(**page, Limit=limit + 1 - len(found))
        found.extend(items.change_from_item(item) for item in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            break
        page["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return found


def _within(changes: list[ChangeRecord], max_messages: int) -> list[ChangeRecord]:
    kept: list[ChangeRecord] = []
    total = 0
    for change in changes:
        total += len(change.messages)
        if kept and total > max_messages:
            break
        kept.append(change)
    return kept


async def read_messages(
    table: ChatTable, *, user_id: str, wanted: list[tuple[str, MessagePosition]]
) -> dict[tuple[str, str], MessageRecord]:
    """Messages by (conversation id, position), the caller's only; absent ones are left out."""
    user_id = checked_user(user_id)
    keys_wanted = [
        (keys.conversation_partition(conversation_id), position.sort_key())
        for conversation_id, position in wanted
    ]
    async with table.guard():
        found = await batch_get(table, keys_wanted)
    now = table.clock()
    mine = [
        record
        for record in (
            items.message_from_attributes(item)
            for item in found.values()
            if not items.expired(item, now)
        )
        if record.user_id == user_id
    ]
    return {(record.conversation_id, record.id): record for record in await whole(table, mine)}

"""Bringing items written before a change of the item shapes up to date: an operator's
command (`chat-history-api migrate`), never the service's.

GSI2 (issue 22): every conversation lists in exactly one GSI2 partition, its project's or the
one of those in no project. A conversation written before GSI2 existed has no GSI2 keys and
so is missing from `filter: {inProject: false}` until it gets them. `backfill_grouping` scans
the table for conversations without them and gives each the keys items.conversation_item
would, each with a conditional UpdateItem: only while the item still has the list position
it was read with and no GSI2 keys yet. A conversation written meanwhile by this version got
its keys from that write; one written by an older version (a deploy still rolling out) keeps
none, and the next run finds it. So a run can be stopped and run again at any time, and a
run that finds nothing left to do writes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, Final

from botocore.exceptions import ClientError

from . import items
from .client import ChatTable, error_code

# Items per Scan page, and UpdateItems in flight at once.
SCAN_PAGE: Final = 500
CONCURRENCY: Final = 8


@dataclasses.dataclass
class Backfill:
    """What a run saw and did."""

    scanned: int = 0
    updated: int = 0
    # Written to (or deleted) between the scan and the update: the next run looks again.
    skipped: int = 0


async def backfill_grouping(
    table: ChatTable, *, progress: Callable[[Backfill], None] | None = None
) -> Backfill:
    """Give every conversation without GSI2 keys its keys; see the module's docstring."""
    done = Backfill()
    request: dict[str, Any] = {
        "TableName": table.name,
        "FilterExpression": "#type = :conversation AND attribute_not_exists(GSI2PK)",
        "ExpressionAttributeNames": {"#type": "type"},
        "ExpressionAttributeValues": {":conversation": {"S": items.CONVERSATION}},
        "Limit": SCAN_PAGE,
        # The writes are conditional, so a stale page costs a skip, never a wrong key.
        "ConsistentRead": False,
    }
    limit = asyncio.Semaphore(CONCURRENCY)
    while True:
        async with table.guard():
            response = await table.client.scan(**request)
        done.scanned += response.get("ScannedCount", 0)
        found = response.get("Items", [])
        outcomes = await asyncio.gather(*(_give_keys(table, item, limit) for item in found))
        done.updated += sum(outcomes)
        done.skipped += len(outcomes) - sum(outcomes)
        if progress is not None:
            progress(done)
        if "LastEvaluatedKey" not in response:
            return done
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def _give_keys(table: ChatTable, item: dict[str, Any], limit: asyncio.Semaphore) -> bool:
    """Whether the conversation got its GSI2 keys (False: it changed since it was read)."""
    conversation = items.conversation_from_item(item)
    keys = items.conversation_item(conversation)
    async with limit, table.guard():
        try:
            await table.client.update_item(
                TableName=table.name,
                Key=items.conversation_key(conversation.user_id, conversation.id),
                UpdateExpression="SET GSI2PK = :pk, GSI2SK = :sk",
                # The item as it was read: same list, same place, still without GSI2 keys.
                ConditionExpression=(
                    "GSI1PK = :list AND GSI1SK = :place AND attribute_not_exists(GSI2PK)"
                ),
                ExpressionAttributeValues={
                    ":pk": keys["GSI2PK"],
                    ":sk": keys["GSI2SK"],
                    ":list": item["GSI1PK"],
                    ":place": item["GSI1SK"],
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
    return True

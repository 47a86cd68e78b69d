"""Deleting a conversation with its messages within a time budget, for the resumable deletes
(erasure.py, and deleteProject's with its conversations in projects.py).

A purge works a page at a time and starts no new page once the budget is spent, so it lasts
at most the budget plus one page; it starts from what the table holds, so the next call goes
on where this one stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from graphql_api.errors import NotFoundError

from . import items, keys
from .batch import batch_delete, batch_get
from .client import ChatTable
from .conversations import delete_conversation, purge_partition

# Keys per Query page and its deletes: 20 BatchWriteItem requests, DELETE_CONCURRENCY at once.
PAGE_ITEMS: Final = 500
DELETE_CONCURRENCY: Final = 8


@dataclasses.dataclass
class Budget:
    """One call's time, and what it deleted."""

    stop: datetime
    clock: Callable[[], datetime]
    messages: int = 0

    @classmethod
    def starting(cls, table: ChatTable, budget: timedelta) -> Budget:
        """A budget of `budget` from now, on the table's clock."""
        return cls(stop=table.clock() + budget, clock=table.clock)

    def spent(self) -> bool:
        return self.clock() >= self.stop


async def erase_conversation(
    table: ChatTable,
    user_id: str,
    conversation_id: str,
    work: Budget,
    *,
    in_project: str | None = None,
) -> bool:
    """Delete one conversation; False when the budget ran out with messages left. With
    `in_project`, a conversation no longer in that project is left alone."""
    wanted = [items.owner_key(conversation_id), items.conversation_key(user_id, conversation_id)]
    async with table.guard():
        found = await batch_get(table, [items.key_of(key) for key in wanted])
    owner, node = (found.get(items.key_of(key)) for key in wanted)
    if in_project is not None and (
        node is None
        or items.is_project(node)
        or items.conversation_from_item(node).project_id != in_project
    ):
        return True
    ours = items.owned_by(owner, user_id)
    if ours and not await purge_contents(table, conversation_id, work):
        return False
    try:
        await delete_conversation(
            table, user_id=user_id, conversation_id=conversation_id, in_project=in_project
        )
    except NotFoundError:
        if in_project is not None:
            return True
        # A temporary conversation past its expiry (deleteConversation treats it as gone):
        # its item goes here, its partition too while it is still the caller's.
        async with table.guard():
            await table.client.delete_item(
                TableName=table.name, Key=items.conversation_key(user_id, conversation_id)
            )
        if ours:
            await purge_partition(table, user_id=user_id, conversation_id=conversation_id)
    return True


async def purge_contents(table: ChatTable, conversation_id: str, work: Budget) -> bool:
    """Delete a partition's items but its OWNER, a page at a time, the content objects a page
    names before its items (as purge_partition does); False when the budget ran out first."""
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :p",
        "ExpressionAttributeValues": {":p": {"S": keys.conversation_partition(conversation_id)}},
        "ProjectionExpression": "PK, SK, contentRef",
        "Limit": PAGE_ITEMS,
        "ConsistentRead": True,
    }
    while True:
        async with table.guard():
            response = await table.client.query(**request)
        found = response.get("Items", [])
        refs = [ref for item in found if (ref := items.content_ref_of(item)) is not None]
        if refs and table.content is not None:
            await table.content.delete(refs)
        doomed = [items.key_of(item) for item in found if item["SK"]["S"] != keys.OWNER_SK]
        await batch_delete(table, doomed, concurrency=DELETE_CONCURRENCY)
        work.messages += sum(keys.MESSAGES_LOW <= sk < keys.MESSAGES_HIGH for _, sk in doomed)
        if "LastEvaluatedKey" not in response:
            return True
        if work.spent():
            return False
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

"""Test data builders. Big partitions are seeded with batch writes, not transactions.

moto deep-copies the whole table for every action of a TransactWriteItems, so seeding
thousands of messages through `add_messages` would take minutes. `seed_messages` writes the
same items `add_messages` would (message, MSGID# marker, the conversation's count, preview,
active leaf and updatedAt) with BatchWriteItem, built by storage's own items module; tests in
test_storage_messages.py check that the two agree. Seeding logs no change: it is not a write
of the user's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from graphql_api.storage import keys
from graphql_api.storage.batch import batch_put
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import create_conversation
from graphql_api.storage.items import (
    conversation_item,
    item_size,
    marker_item,
    message_item,
)
from graphql_api.storage.records import (
    ONE_TICK,
    ConversationRecord,
    Item,
    MessageRecord,
    NewMessage,
    Role,
)
from graphql_api.storage.table import create_table, delete_table, table_definition

# Below the 1 MB at which aiohttp warns about a raw request body.
_BATCH_BYTES = 900 * 1024
FIXED_INSTANT = datetime.fromisoformat("2030-01-02T03:04:05.678901+00:00")


def new_id() -> str:
    return str(uuid.uuid4())


def new_message(
    content: str = "hello",
    *,
    role: Role = "user",
    message_id: str | None = None,
    model_id: str | None = None,
) -> NewMessage:
    return NewMessage(role=role, content=content, id=message_id, model_id=model_id)


async def a_conversation(
    table: ChatTable,
    *,
    user_id: str,
    title: str = "A conversation",
    conversation_id: str | None = None,
) -> ConversationRecord:
    return await create_conversation(
        table, user_id=user_id, title=title, conversation_id=conversation_id
    )


async def seed_messages(
    table: ChatTable,
    conversation: ConversationRecord,
    count: int,
    *,
    step: timedelta = ONE_TICK,
    content: str = "message {index}",
) -> tuple[ConversationRecord, list[MessageRecord]]:
    """Append `count` messages after the active leaf, `step` apart (zero: all in one instant).

    Returns the conversation as now stored and the messages in the order they list.
    """
    start = conversation.updated_at + ONE_TICK
    leaf = conversation.active_leaf
    segment = 0 if leaf is None else leaf.segment
    depth = 0 if leaf is None else leaf.depth
    parent_id = None if leaf is None else leaf.message_id
    messages = []
    for index in range(count):
        message = MessageRecord(
            id=new_id(),
            conversation_id=conversation.id,
            user_id=conversation.user_id,
            role="user" if index % 2 == 0 else "assistant",
            content=content.format(index=index),
            created_at=start + index * step,
            model_id=None,
            is_error=False,
            error_message=None,
            parent_id=parent_id,
            segment=segment,
            depth=depth + 1 + index,
        )
        messages.append(message)
        parent_id = message.id
    updated = dataclasses.replace(
        conversation,
        message_count=conversation.message_count + count,
        updated_at=messages[-1].created_at,
        last_message=messages[-1],
        active_leaf=messages[-1].position,
    )
    items = [item for message in messages for item in (message_item(message), marker_item(message))]
    for group in _under_a_megabyte([*items, conversation_item(updated)]):
        await batch_put(table, group, concurrency=8)
    return updated, messages


def _under_a_megabyte(items: list[Item]) -> list[list[Item]]:
    """Groups of items whose batches stay under 1 MB a request: aiohttp warns about larger
    raw bodies, and the suite turns warnings into errors."""
    groups: list[list[Item]] = [[]]
    size = 0
    for item in items:
        if groups[-1] and size + item_size(item) > _BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += item_size(item)
    return groups


# --- reading back what is stored, below the storage API


async def stored_item(table: ChatTable, pk: str, sk: str) -> Item | None:
    response = await table.client.get_item(
        TableName=table.name, Key={"PK": {"S": pk}, "SK": {"S": sk}}, ConsistentRead=True
    )
    return response.get("Item")


async def conversation_items(
    table: ChatTable, *, user_id: str, conversation_id: str, keys_only: bool = False
) -> list[Item]:
    """Every item of one conversation, found by Scan (not Query) so no key layout is assumed
    beyond the documented one: the user's CONV# item and everything in the CONV# partition."""
    request: dict[str, Any] = {
        "TableName": table.name,
        "FilterExpression": "PK = :partition OR (PK = :user AND SK = :conversation)",
        "ExpressionAttributeValues": {
            ":partition": {"S": keys.conversation_partition(conversation_id)},
            ":user": {"S": keys.user_pk(user_id)},
            ":conversation": {"S": keys.conversation_sk(conversation_id)},
        },
        "ConsistentRead": True,
    }
    if keys_only:
        request["ProjectionExpression"] = "PK, SK"
    items: list[Item] = []
    while True:
        response = await table.client.scan(**request)
        items.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def partition_size(table: ChatTable, *, conversation_id: str) -> int:
    """How many items the CONV# partition holds; a counting Query, far cheaper than a Scan."""
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :partition",
        "ExpressionAttributeValues": {
            ":partition": {"S": keys.conversation_partition(conversation_id)}
        },
        "Select": "COUNT",
        "ConsistentRead": True,
    }
    total = 0
    while True:
        response = await table.client.query(**request)
        total += response.get("Count", 0)
        if "LastEvaluatedKey" not in response:
            return total
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def stored_messages(table: ChatTable, *, conversation_id: str) -> list[Item]:
    """The message items of a partition (not the markers), in key order, read consistently."""
    items = await conversation_items(table, user_id="-", conversation_id=conversation_id)
    messages = [item for item in items if item["SK"]["S"].startswith(keys.MESSAGES_LOW)]
    return sorted(messages, key=lambda item: str(item["SK"]["S"]))


@contextlib.asynccontextmanager
async def own_table(client: DynamoDBClient, *, purpose: str) -> AsyncIterator[str]:
    """A table of one's own, dropped after. moto copies a whole table for every action of a
    transaction, so transactions slow down as a shared table fills: keep tables small."""
    name = f"chat-history-{purpose}-{uuid.uuid4().hex[:12]}"
    await create_table(client, table_name=name)
    try:
        yield name
    finally:
        await delete_table(client, table_name=name)


@contextlib.asynccontextmanager
async def misdefined_table(client: DynamoDBClient) -> AsyncIterator[str]:
    """A table made by hand, not by create-table: its sort key is a number. Reads find
    nothing in it, and the engine refuses every write with a ValidationException, as a
    DynamoDB-compatible engine refuses what it does not take: a real request error."""
    definition = table_definition(f"chat-history-misdefined-{uuid.uuid4().hex[:12]}")
    for attribute in definition["AttributeDefinitions"]:
        if attribute["AttributeName"] == "SK":
            attribute["AttributeType"] = "N"
    await client.create_table(**definition)
    try:
        yield definition["TableName"]
    finally:
        await delete_table(client, table_name=definition["TableName"])

"""Conversations: a user's items under USER#<userId>, guarded by an OWNER item in CONV#<id>.

Clients choose conversation ids, and the messages partition CONV#<id> is keyed by the id
alone, so two users could name the same partition. The OWNER item, written in the same
transaction as the conversation, makes the first owner the only one: a second user's create
fails its condition, and every message write also requires the caller's conversation item.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from graphql_api.errors import ConflictError, NotFoundError, UnavailableError

from . import items, keys
from .batch import batch_delete, batch_get
from .checks import checked_id, checked_user, ensure_fits, is_id
from .client import ChatTable
from .paging import SortedRange, read_page
from .records import (
    ONE_TICK,
    UNSET,
    ConversationPosition,
    ConversationRecord,
    Item,
    Page,
    Unset,
    format_timestamp,
)
from .table import GSI_RECENCY
from .transaction import Transaction, TransactionCancelled


def _count_conversations(transaction: Transaction, user_id: str, delta: int) -> None:
    transaction.update(
        "profile",
        items.profile_key(user_id),
        update="ADD conversationCount :delta",
        values={":delta": {"N": str(delta)}},
    )


async def create_conversation(
    table: ChatTable,
    *,
    user_id: str,
    title: str,
    model_id: str | None = None,
    conversation_id: str | None = None,
) -> ConversationRecord:
    """Create, or return the caller's existing conversation with that id (a retried create)."""
    user_id = checked_user(user_id)
    conversation_id = (
        str(uuid.uuid4()) if conversation_id is None else checked_id(conversation_id, field="id")
    )
    now = table.clock()
    record = ConversationRecord(
        id=conversation_id,
        user_id=user_id,
        title=title,
        model_id=model_id,
        created_at=now,
        updated_at=now,
        message_count=0,
        version=1,
        last_message=None,
    )
    item = items.conversation_item(record)
    ensure_fits(item, field="title")
    transaction = Transaction(table)
    transaction.put(
        "owner",
        items.owner_item(conversation_id, user_id),
        condition="attribute_not_exists(PK)",
        return_old=True,
    )
    transaction.put("conversation", item, condition="attribute_not_exists(PK)")
    _count_conversations(transaction, user_id, +1)
    async with table.guard():
        try:
            await transaction.commit()
        except TransactionCancelled as cancelled:
            if not cancelled.failed("owner"):
                raise UnavailableError("the conversation could not be created; try again") from None
            if not items.owned_by(cancelled.current("owner"), user_id):
                raise ConflictError("this conversation id is already in use") from None
            existing = await get_conversation(
                table, user_id=user_id, conversation_id=conversation_id
            )
            if existing is None:
                raise ConflictError("this conversation is being deleted") from None
            return existing
    return record


async def get_conversation(
    table: ChatTable, *, user_id: str, conversation_id: str
) -> ConversationRecord | None:
    (found,) = await get_conversations(table, user_id=user_id, conversation_ids=[conversation_id])
    return found


async def get_conversations(
    table: ChatTable, *, user_id: str, conversation_ids: Sequence[str]
) -> list[ConversationRecord | None]:
    """In request order; None where missing, malformed or not the caller's."""
    user_id = checked_user(user_id)
    wanted = [
        (keys.user_pk(user_id), keys.conversation_sk(cid)) for cid in conversation_ids if is_id(cid)
    ]
    async with table.guard():
        found = await batch_get(table, wanted)
    result: list[ConversationRecord | None] = []
    for cid in conversation_ids:
        item = found.get((keys.user_pk(user_id), keys.conversation_sk(cid)))
        result.append(None if item is None else items.conversation_from_item(item))
    return result


async def list_conversations(
    table: ChatTable,
    *,
    user_id: str,
    limit: int,
    cursor: ConversationPosition | None = None,
    forward: bool = True,
) -> Page[ConversationRecord]:
    """Most recently updated first. GSI1 is eventually consistent: a write may show late."""
    user_id = checked_user(user_id)
    span = SortedRange(
        index_name=GSI_RECENCY,
        partition_attribute="GSI1PK",
        partition_value=keys.user_pk(user_id),
        sort_attribute="GSI1SK",
    )
    async with table.guard():
        page = await read_page(
            table,
            span,
            cursor=None if cursor is None else cursor.sort_key(),
            limit=limit,
            forward=forward,
            display_ascending=False,
        )
    return Page(
        items=[items.conversation_from_item(item) for item in page.items],
        has_previous=page.has_previous,
        has_next=page.has_next,
    )


async def count_conversations(table: ChatTable, *, user_id: str) -> int:
    key = items.profile_key(checked_user(user_id))
    async with table.guard():
        response = await table.client.get_item(TableName=table.name, Key=key, ConsistentRead=True)
    return items.conversation_count_of(response.get("Item"))


async def update_conversation(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    title: str | None = None,
    model_id: str | Unset | None = UNSET,
    expected_version: int | None = None,
) -> ConversationRecord:
    """Rename and/or change the model; a stale `expected_version` writes nothing."""
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="id")
    assignments = ["version = version + :one", "updatedAt = :now", "GSI1SK = :recency"]
    values: dict[str, Any] = {":one": {"N": "1"}}
    if title is not None:
        assignments.append("title = :title")
        values[":title"] = {"S": title}
    if not isinstance(model_id, Unset):
        assignments.append("modelId = :model")
        values[":model"] = {"NULL": True} if model_id is None else {"S": model_id}
    # Only the caller's own item can match the key, so existence is also the ownership check.
    conditions = ["attribute_exists(PK)", "updatedAt < :now"]
    if expected_version is not None:
        conditions.append("version = :expected")
        values[":expected"] = {"N": str(expected_version)}
    now = table.clock()
    async with table.guard():
        for attempt in range(table.max_attempts):
            values[":now"] = {"S": format_timestamp(now)}
            values[":recency"] = items.recency(format_timestamp(now), conversation_id)
            try:
                response = await table.client.update_item(
                    TableName=table.name,
                    Key=items.conversation_key(user_id, conversation_id),
                    UpdateExpression="SET " + ", ".join(assignments),
                    ConditionExpression=" AND ".join(conditions),
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if not _condition_failed(exc):
                    raise
                current: Item | None = exc.response.get("Item")  # type: ignore[assignment]
                if current is None:
                    raise NotFoundError("conversation not found") from None
                stored = items.conversation_from_item(current)
                if expected_version is not None and stored.version != expected_version:
                    raise ConflictError(
                        f"conversation is at version {stored.version}, not {expected_version}"
                    ) from None
                # Our clock is behind the last write (skew between servers): updatedAt must
                # only move forward, or the recency order and message order would lie.
                now = max(table.clock(), stored.updated_at + ONE_TICK)
                await table.backoff(attempt)
                continue
            return items.conversation_from_item(response["Attributes"])
    raise UnavailableError("conversation kept changing; try again")


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


async def delete_conversation(table: ChatTable, *, user_id: str, conversation_id: str) -> None:
    """Delete a conversation and all its messages, at any size; safe to call again.

    The conversation item goes first, in one transaction that also marks the OWNER item as
    deleting: from then on nothing of the conversation is reachable, and messages can no
    longer be added. The messages partition is purged after, and the OWNER item last, so a
    failure part-way leaves an invisible remainder that the next call finishes.
    """
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="id")
    transaction = Transaction(table)
    transaction.delete(
        "conversation",
        items.conversation_key(user_id, conversation_id),
        condition="attribute_exists(PK)",
    )
    transaction.update(
        "owner",
        items.owner_key(conversation_id),
        update="SET deleting = :yes",
        condition="userId = :user",
        values={":yes": {"BOOL": True}, ":user": {"S": user_id}},
    )
    _count_conversations(transaction, user_id, -1)
    async with table.guard():
        try:
            await transaction.commit()
        except TransactionCancelled:
            if not await _deletion_pending(table, user_id, conversation_id):
                raise NotFoundError("conversation not found") from None
    await _purge_partition(table, user_id, conversation_id)


async def _deletion_pending(table: ChatTable, user_id: str, conversation_id: str) -> bool:
    response = await table.client.get_item(
        TableName=table.name, Key=items.owner_key(conversation_id), ConsistentRead=True
    )
    owner = response.get("Item")
    return items.owned_by(owner, user_id) and items.marked_deleting(owner)


async def _purge_partition(table: ChatTable, user_id: str, conversation_id: str) -> None:
    partition = keys.conversation_partition(conversation_id)
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :p",
        "ExpressionAttributeValues": {":p": {"S": partition}},
        "ProjectionExpression": "PK, SK",
        "ConsistentRead": True,
    }
    while True:
        async with table.guard():
            response = await table.client.query(**request)
        doomed = [
            items.key_of(item)
            for item in response.get("Items", [])
            if item["SK"]["S"] != keys.OWNER_SK
        ]
        await batch_delete(table, doomed)
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    async with table.guard():
        try:
            await table.client.delete_item(
                TableName=table.name,
                Key=items.owner_key(conversation_id),
                ConditionExpression="userId = :user",
                ExpressionAttributeValues={":user": {"S": user_id}},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise

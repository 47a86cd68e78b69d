"""Reading all of one user's data, for exports: every project, every conversation (archived or
not), and every message of every branch, a page at a time so that memory stays bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

from . import items, keys
from .checks import checked_id, checked_user
from .client import ChatTable
from .grouping import live_project
from .records import ConversationRecord, MessageRecord, ProjectRecord

CONVERSATIONS_PER_PAGE: Final = 100
# DynamoDB ends a page at 1 MB anyway; this keeps a page of short messages small too.
MESSAGES_PER_PAGE: Final = 500


async def all_conversations(
    table: ChatTable, *, user_id: str, page_size: int = CONVERSATIONS_PER_PAGE
) -> AsyncIterator[ConversationRecord]:
    """Every conversation of the user in id order, archived or not; expired temporary ones
    are left out, as every read leaves them out."""
    request = _range(
        table,
        keys.user_pk(checked_user(user_id)),
        keys.CONVERSATIONS_LOW,
        keys.CONVERSATIONS_HIGH,
        page_size,
    )
    async for page in _pages(table, request):
        now = table.clock()
        for item in page:
            if not items.expired(item, now) and not items.is_project(item):
                yield items.conversation_from_item(item)


async def all_projects(
    table: ChatTable, *, user_id: str, page_size: int = CONVERSATIONS_PER_PAGE
) -> AsyncIterator[ProjectRecord]:
    """Every project of the user in id order, but those being deleted. Read from the table,
    not from the projects list (GSI1), so that a project created a moment ago is not missed
    while its conversations are exported: its key range is the conversations' too, which the
    filter drops after reading them (an export reads each conversation once more, far less
    than its messages)."""
    request = _range(
        table,
        keys.user_pk(checked_user(user_id)),
        keys.CONVERSATIONS_LOW,
        keys.CONVERSATIONS_HIGH,
        page_size,
    )
    request["FilterExpression"] = "#type = :project"
    request["ExpressionAttributeNames"] = {"#type": "type"}
    request["ExpressionAttributeValues"][":project"] = {"S": items.PROJECT}
    async for page in _pages(table, request):
        for item in page:
            project = live_project(item)
            if project is not None:
                yield project


async def all_messages(
    table: ChatTable, *, user_id: str, conversation_id: str, page_size: int = MESSAGES_PER_PAGE
) -> AsyncIterator[MessageRecord]:
    """Every message of the conversation, branch by branch (segment, then depth): a parent
    always comes before its children. Content kept in the content bucket is only its start
    here (`content_ref` names the object): fill it in (content.filled_in) one message at a
    time as it is written, so that memory holds one large object at most."""
    request = _range(
        table,
        keys.conversation_partition(checked_id(conversation_id, field="conversationId")),
        keys.MESSAGES_LOW,
        keys.MESSAGES_HIGH,
        page_size,
    )
    # Each message carries its owner: a partition that is not the caller's yields nothing.
    request["FilterExpression"] = "userId = :user"
    request["ExpressionAttributeValues"][":user"] = {"S": checked_user(user_id)}
    async for page in _pages(table, request):
        for item in page:
            yield items.message_from_attributes(item)


def _range(table: ChatTable, partition: str, low: str, high: str, limit: int) -> dict[str, Any]:
    return {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :p AND SK BETWEEN :low AND :high",
        "ExpressionAttributeValues": {
            ":p": {"S": partition},
            ":low": {"S": low},
            ":high": {"S": high},
        },
        "Limit": limit,
        "ConsistentRead": True,
    }


async def _pages(table: ChatTable, request: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
    while True:
        async with table.guard():
            response = await table.client.query(**request)
        yield response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

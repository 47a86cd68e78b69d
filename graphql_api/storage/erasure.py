"""Erasure: every conversation, message and change of one user deleted, resumably, in bounded
time per call.

A call works through the user's data one unit at a time and starts no new unit once its time
budget is spent, so it lasts at most the budget plus one unit. Each unit starts from what the
table holds, not from a saved position, so the next call simply goes on. The units, in order:

1. one conversation. Its messages, markers and tree go first, at most PAGE_ITEMS keys per
   Query and their BatchWriteItems (the content objects a page names before its items),
   while its item still lists it (a call that stops part-way finds it again); then it is
   deleted as deleteConversation deletes one, which logs its CONVERSATION_DELETED change
   (live devices hear of it) and removes the OWNER item last;
2. one page (PAGE_ITEMS entries) of the change log. A conversation an entry says was deleted,
   whose partition is still the caller's and marked deleting (a delete that failed part-way,
   here or before), is purged first; then the entries go;
3. the PROFILE: its counters, tag names and temporary-conversation entries go. Its change
   version is kept, and moved one past the last change with no entry for that version.

Why keep the version, and leave that gap: a device that synced before holds a sync token at
some version V. The entries after V are gone and the version is past V, so changes(since:)
answers resyncRequired (storage/changes.py: the change right after the reader's position is
missing), and the device reloads an empty account. Without the gap, a device that had read
every change, the last CONVERSATION_DELETED included, would not be told; with it, every
device reloads once. Removing the PROFILE would restart the versions at 1 instead, and an old
token would then skip, or misread, the changes of the new history.

Done means no conversation item, no change entry and no counter is left, and every partition
reached through them is purged. A partition is only touched while its OWNER item is the
caller's, so another user's data is never read or written. Not reached: the remainder of a
delete that failed part-way longer ago than the change log keeps entries; it is unreadable
(its conversation item is gone) but stays until something deletes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from graphql_api.errors import NotFoundError

from . import items, keys
from .batch import batch_delete, batch_get
from .checks import checked_user
from .client import ChatTable, error_code
from .conversations import delete_conversation, purge_partition, read_counts

# Keys per Query page and its deletes: 20 BatchWriteItem requests, DELETE_CONCURRENCY at once.
PAGE_ITEMS: Final = 500
DELETE_CONCURRENCY: Final = 8
CONVERSATIONS_PER_QUERY: Final = 25
# Profile attributes removed per UpdateItem, well inside the 4 KB expression limit.
PROFILE_ATTRIBUTES_PER_UPDATE: Final = 100
DEFAULT_BUDGET: Final = timedelta(seconds=5)
_PROFILE_KEEPS: Final = frozenset({"PK", "SK", "changeVersion"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Erasure:
    done: bool
    # Conversations still listed (temporary ones past their expiry are not counted).
    conversations_remaining: int
    # Message items this call deleted, for progress.
    messages_deleted: int = 0


@dataclasses.dataclass
class _Work:
    """One call's budget, and what it deleted."""

    stop: datetime
    clock: Callable[[], datetime]
    messages: int = 0

    def spent(self) -> bool:
        return self.clock() >= self.stop


async def erase_user_data(
    table: ChatTable, *, user_id: str, budget: timedelta = DEFAULT_BUDGET
) -> Erasure:
    """Delete what `budget` allows of the user's data, at least one unit; call again until
    `done`. Time is the table's clock."""
    user_id = checked_user(user_id)
    work = _Work(stop=table.clock() + budget, clock=table.clock)
    while await _erase_unit(table, user_id, work):
        if work.spent():
            counts = await read_counts(table, user_id=user_id)
            return Erasure(
                done=False,
                conversations_remaining=max(0, counts.conversations(archived=None)),
                messages_deleted=work.messages,
            )
    return Erasure(done=True, conversations_remaining=0, messages_deleted=work.messages)


async def _erase_unit(table: ChatTable, user_id: str, work: _Work) -> bool:
    """The next unit (see the module's docstring); False when there is nothing left to do."""
    conversation_ids = await _conversation_ids(table, user_id)
    for conversation_id in conversation_ids:
        if not await _erase_conversation(table, user_id, conversation_id, work) or work.spent():
            return True
    if conversation_ids:
        return True
    return await _erase_change_page(table, user_id, work) or await _reset_profile(table, user_id)


async def _conversation_ids(table: ChatTable, user_id: str) -> list[str]:
    async with table.guard():
        response = await table.client.query(
            TableName=table.name,
            KeyConditionExpression="PK = :p AND SK BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":p": {"S": keys.user_pk(user_id)},
                ":low": {"S": keys.CONVERSATIONS_LOW},
                ":high": {"S": keys.CONVERSATIONS_HIGH},
            },
            ProjectionExpression="conversationId",
            Limit=CONVERSATIONS_PER_QUERY,
            ConsistentRead=True,
        )
    return [item["conversationId"]["S"] for item in response.get("Items", [])]


async def _erase_conversation(
    table: ChatTable, user_id: str, conversation_id: str, work: _Work
) -> bool:
    """Delete one conversation; False when the budget ran out with messages left."""
    async with table.guard():
        found = await batch_get(table, [items.key_of(items.owner_key(conversation_id))])
    owner = next(iter(found.values()), None)
    ours = items.owned_by(owner, user_id)
    if ours and not await _purge_contents(table, conversation_id, work):
        return False
    try:
        await delete_conversation(table, user_id=user_id, conversation_id=conversation_id)
    except NotFoundError:
        # A temporary conversation past its expiry (deleteConversation treats it as gone):
        # its item goes here, its partition too while it is still the caller's.
        async with table.guard():
            await table.client.delete_item(
                TableName=table.name, Key=items.conversation_key(user_id, conversation_id)
            )
        if ours:
            await purge_partition(table, user_id=user_id, conversation_id=conversation_id)
    return True


async def _purge_contents(table: ChatTable, conversation_id: str, work: _Work) -> bool:
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


async def _erase_change_page(table: ChatTable, user_id: str, work: _Work) -> bool:
    """Delete one page of the change log, after purging what its deletes left behind; False
    when the log is empty."""
    async with table.guard():
        response = await table.client.query(
            TableName=table.name,
            KeyConditionExpression="PK = :p AND SK BETWEEN :low AND :high",
            ExpressionAttributeNames={"#kind": "kind"},
            ExpressionAttributeValues={
                ":p": {"S": keys.user_pk(user_id)},
                ":low": {"S": keys.CHANGES_LOW},
                ":high": {"S": keys.CHANGES_HIGH},
            },
            ProjectionExpression="PK, SK, #kind, conversationId",
            Limit=PAGE_ITEMS,
            ConsistentRead=True,
        )
    page = response.get("Items", [])
    if not page:
        return False
    deleted = sorted(
        {
            item["conversationId"]["S"]
            for item in page
            if item["kind"]["S"] == "CONVERSATION_DELETED"
        }
    )
    async with table.guard():
        owners = await batch_get(table, [items.key_of(items.owner_key(cid)) for cid in deleted])
    for conversation_id in deleted:
        owner = owners.get(items.key_of(items.owner_key(conversation_id)))
        if items.owned_by(owner, user_id) and items.marked_deleting(owner):
            if not await _purge_contents(table, conversation_id, work):
                return True
            await purge_partition(table, user_id=user_id, conversation_id=conversation_id)
    await batch_delete(table, [items.key_of(item) for item in page], concurrency=DELETE_CONCURRENCY)
    return True


async def _reset_profile(table: ChatTable, user_id: str) -> bool:
    """Remove the PROFILE's counters and names, moving the version past a gap; False when
    there is nothing left to remove."""
    key = items.profile_key(user_id)
    async with table.guard():
        response = await table.client.get_item(TableName=table.name, Key=key, ConsistentRead=True)
    profile = response.get("Item")
    extra = sorted(set(profile or {}) - _PROFILE_KEEPS)
    if profile is None or not extra:
        return False
    version = items.change_version_of(profile)
    doomed = extra[:PROFILE_ATTRIBUTES_PER_UPDATE]
    names = {f"#r{index}": name for index, name in enumerate(doomed)}
    names["#version"] = "changeVersion"
    request: dict[str, Any] = {
        "TableName": table.name,
        "Key": key,
        "UpdateExpression": "REMOVE " + ", ".join(name for name in names if name != "#version"),
        "ExpressionAttributeNames": names,
    }
    values: dict[str, Any] = {}
    if len(doomed) == len(extra):
        # The last removal also moves the version: see the module's docstring.
        request["UpdateExpression"] = f"SET #version = :next {request['UpdateExpression']}"
        values[":next"] = {"N": str(version + 1)}
    if version:
        request["ConditionExpression"] = "#version = :seen"
        values[":seen"] = {"N": str(version)}
    else:
        request["ConditionExpression"] = "attribute_not_exists(#version)"
    if values:
        request["ExpressionAttributeValues"] = values
    async with table.guard():
        try:
            await table.client.update_item(**request)
        except ClientError as exc:
            # A write of the user's landed meanwhile: the next unit looks again.
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
    return True

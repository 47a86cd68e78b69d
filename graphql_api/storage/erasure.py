"""Erasure: every conversation, project, message and change of one user deleted, resumably,
in bounded time per call.

A call works through the user's data one unit at a time and starts no new unit once its time
budget is spent, so it lasts at most the budget plus one unit. Each unit starts from what the
table holds, not from a saved position, so the next call simply goes on. The units, in order:

1. one conversation. Its messages, markers and tree go first, at most PAGE_ITEMS keys per
   Query and their BatchWriteItems (the content objects a page names before its items),
   while its item still lists it (a call that stops part-way finds it again); then it is
   deleted as deleteConversation deletes one, which logs its CONVERSATION_DELETED change
   (live devices hear of it) and removes the OWNER item last. Or one project: deleted as
   deleteProject(deleteConversations: true) deletes one (its conversations as above, then
   the project, with its PROJECT_DELETED change);
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
from datetime import timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from . import items, keys
from .batch import batch_delete, batch_get
from .checks import checked_user
from .client import ChatTable, error_code
from .conversations import purge_partition, read_counts
from .projects import erase_project
from .purge import DELETE_CONCURRENCY, PAGE_ITEMS, Budget, erase_conversation, purge_contents

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


async def erase_user_data(
    table: ChatTable, *, user_id: str, budget: timedelta = DEFAULT_BUDGET
) -> Erasure:
    """Delete what `budget` allows of the user's data, at least one unit; call again until
    `done`. Time is the table's clock."""
    user_id = checked_user(user_id)
    work = Budget.starting(table, budget)
    while await _erase_unit(table, user_id, work):
        if work.spent():
            counts = await read_counts(table, user_id=user_id)
            return Erasure(
                done=False,
                conversations_remaining=max(0, counts.conversations(archived=None)),
                messages_deleted=work.messages,
            )
    return Erasure(done=True, conversations_remaining=0, messages_deleted=work.messages)


async def _erase_unit(table: ChatTable, user_id: str, work: Budget) -> bool:
    """The next unit (see the module's docstring); False when there is nothing left to do."""
    nodes = await _node_ids(table, user_id)
    for node_id, is_project in nodes:
        if is_project:
            erased = await erase_project(table, user_id=user_id, project_id=node_id, work=work)
        else:
            erased = await erase_conversation(table, user_id, node_id, work)
        if not erased or work.spent():
            return True
    if nodes:
        return True
    return await _erase_change_page(table, user_id, work) or await _reset_profile(table, user_id)


async def _node_ids(table: ChatTable, user_id: str) -> list[tuple[str, bool]]:
    """The ids of the next conversations and projects, each with whether it is a project."""
    async with table.guard():
        response = await table.client.query(
            TableName=table.name,
            KeyConditionExpression="PK = :p AND SK BETWEEN :low AND :high",
            ExpressionAttributeNames={"#type": "type"},
            ExpressionAttributeValues={
                ":p": {"S": keys.user_pk(user_id)},
                ":low": {"S": keys.CONVERSATIONS_LOW},
                ":high": {"S": keys.CONVERSATIONS_HIGH},
            },
            ProjectionExpression="conversationId, projectId, #type",
            Limit=CONVERSATIONS_PER_QUERY,
            ConsistentRead=True,
        )
    return [
        (item["projectId"]["S"], True)
        if items.is_project(item)
        else (item["conversationId"]["S"], False)
        for item in response.get("Items", [])
    ]


async def _erase_change_page(table: ChatTable, user_id: str, work: Budget) -> bool:
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
            if not await purge_contents(table, conversation_id, work):
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

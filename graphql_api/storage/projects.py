"""Projects: named groups of conversations with their own instructions. Each is one item in
its user's partition, at the key a conversation with its id would have (keys.py says why),
listed through GSI1 under PROJECTS#<userId>, most recently updated first. A project has no
partition of its own, so it needs no OWNER item: nobody else can write under USER#<userId>.

A conversation is in at most one project (its `projectId`); the project counts its
conversations per list, moved by the conversation writes themselves (grouping.py). Every
project write goes through writes.commit with its PROJECT_* change.

Deleting one is resumable in bounded time per call, like erasure: the first call marks the
project deleting and logs PROJECT_DELETED (from then on every reader finds no project and no
conversation can move in; deleting its conversations too, the PROFILE names the project, so
that no share link of theirs answers any more), then each call moves out (or deletes) a few
of its conversations, each its own write and change, and the call that finds none left
deletes the item. Which remain is the project's own counts, not the index it lists them from
(GSI2 is eventually consistent), so `done` and `conversations_remaining` are exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from graphql_api.errors import ConflictError, ProjectNotFoundError, ValidationError

from . import items, keys
from .batch import batch_get
from .checks import checked_id, checked_user, ensure_fits, is_id, is_link_id
from .client import ChatTable, error_code
from .conversations import read_counts, release_conversation
from .grouping import live_project
from .paging import read_recent
from .profile import PROJECT_COUNTER, counts, deleting_project_entry
from .purge import Budget, erase_conversation
from .records import (
    ONE_TICK,
    UNSET,
    ConversationRecord,
    Page,
    ProjectPosition,
    ProjectRecord,
    ShareLinkRecord,
    Unset,
    format_timestamp,
)
from .table import GSI_GROUPING
from .transaction import Transaction
from .writes import ChangeDraft, Plan, Snapshot, commit

# Conversations one deleteProject call moves out or deletes at most (and one index page).
DELETE_BATCH: Final = 25
DEFAULT_BUDGET: Final = timedelta(seconds=5)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProjectDeletion:
    done: bool
    # Conversations still in the project, archived or not.
    conversations_remaining: int


async def create_project(
    table: ChatTable,
    *,
    user_id: str,
    project_id: str,
    name: str,
    instructions: str | None,
    max_projects: int,
    created_at: datetime | None = None,
    updated_at: datetime | None = None,
) -> ProjectRecord:
    """Create, or return the caller's project with that id (a retried create). The id of
    one of the caller's conversations is a ConflictError; a create past `max_projects` a
    ValidationError. `created_at` and `updated_at` are an import's (default: now)."""
    user_id = checked_user(user_id)
    project_id = checked_id(project_id, field="id")
    key = items.project_key(user_id, project_id)

    async def plan(snapshot: Snapshot) -> Plan[ProjectRecord]:
        found = snapshot.get(key)
        if found is not None:
            if not items.is_project(found):
                raise ConflictError("this id is already in use")
            existing = items.project_from_item(found)
            if existing.deleting:
                raise ConflictError("this project is being deleted")
            return Plan(result=existing, change=None)
        if counts(snapshot.profile, snapshot.now).projects >= max_projects:
            raise ValidationError("input", f"at most {max_projects} projects; delete one first")
        record = ProjectRecord(
            id=project_id,
            user_id=user_id,
            name=name,
            instructions=instructions,
            created_at=created_at or snapshot.now,
            updated_at=updated_at or created_at or snapshot.now,
            version=1,
        )
        item = items.project_item(record)
        ensure_fits(item, field="instructions")

        def actions(transaction: Transaction) -> None:
            transaction.put("project", item, condition="attribute_not_exists(PK)")

        planned = Plan(
            result=record,
            change=ChangeDraft(kind="PROJECT_CREATED", conversation_id=None, project_id=project_id),
            actions=actions,
        )
        planned.profile.count(PROJECT_COUNTER, +1)
        # A deletion of an earlier project with this id may have left its mark (_unmark).
        planned.profile.drop.add(deleting_project_entry(project_id))
        return planned

    return await commit(table, user_id=user_id, reads=[key], plan=plan)


async def update_project(
    table: ChatTable,
    *,
    user_id: str,
    project_id: str,
    name: str | None = None,
    instructions: str | Unset | None = UNSET,
    expected_version: int | None = None,
) -> ProjectRecord:
    """Change what is given (None instructions clears them); a stale `expected_version`
    writes nothing. Its conversations and their counts are left as they are."""
    user_id = checked_user(user_id)
    project_id = checked_id(project_id, field="id")
    key = items.project_key(user_id, project_id)

    async def plan(snapshot: Snapshot) -> Plan[ProjectRecord]:
        stored = live_project(snapshot.get(key))
        if stored is None:
            raise ProjectNotFoundError("project not found")
        if expected_version is not None and stored.version != expected_version:
            raise ConflictError(f"project is at version {stored.version}, not {expected_version}")
        updated = dataclasses.replace(
            stored,
            name=stored.name if name is None else name,
            instructions=stored.instructions if isinstance(instructions, Unset) else instructions,
            version=stored.version + 1,
            # Only forward, as for conversations: the list's order relies on it.
            updated_at=max(snapshot.now, stored.updated_at + ONE_TICK),
        )
        ensure_fits(items.project_item(updated), field="instructions")
        updated_at = format_timestamp(updated.updated_at)
        listing = items.project_listing(user_id, project_id, updated_at=updated_at)

        def actions(transaction: Transaction) -> None:
            # SET, not a whole put: the counts on the item are the conversation writes'.
            transaction.update(
                "project",
                key,
                update=(
                    "SET #name = :name, instructions = :instructions, updatedAt = :updated, "
                    "version = :next, GSI1PK = :list, GSI1SK = :position"
                ),
                condition="version = :seen AND attribute_not_exists(deleting)",
                names={"#name": "name"},
                values={
                    ":name": {"S": updated.name},
                    ":instructions": (
                        {"NULL": True}
                        if updated.instructions is None
                        else {"S": updated.instructions}
                    ),
                    ":updated": {"S": updated_at},
                    ":next": {"N": str(updated.version)},
                    ":list": listing["GSI1PK"],
                    ":position": listing["GSI1SK"],
                    ":seen": {"N": str(stored.version)},
                },
            )

        return Plan(
            result=updated,
            change=ChangeDraft(kind="PROJECT_UPDATED", conversation_id=None, project_id=project_id),
            actions=actions,
        )

    return await commit(table, user_id=user_id, reads=[key], plan=plan)


async def get_projects(
    table: ChatTable, *, user_id: str, project_ids: Sequence[str]
) -> list[ProjectRecord | None]:
    """In request order; None where missing, being deleted, malformed or not the caller's."""
    nodes = await get_nodes(table, user_id=user_id, node_ids=project_ids)
    return [node if isinstance(node, ProjectRecord) else None for node in nodes]


async def get_nodes(
    table: ChatTable, *, user_id: str, node_ids: Sequence[str]
) -> list[ConversationRecord | ProjectRecord | ShareLinkRecord | None]:
    """The caller's conversations, projects and share links by id, whichever each is, in one
    BatchGetItem per 100 ids (one key per id: keys.node_sk); None as for get_conversations."""
    user_id = checked_user(user_id)
    wanted = [
        (keys.user_pk(user_id), keys.node_sk(node_id))
        for node_id in node_ids
        if is_id(node_id) or is_link_id(node_id)
    ]
    async with table.guard():
        found = await batch_get(table, wanted)
    now = table.clock()
    nodes: list[ConversationRecord | ProjectRecord | ShareLinkRecord | None] = []
    for node_id in node_ids:
        item = found.get((keys.user_pk(user_id), keys.node_sk(node_id)))
        if item is None or items.is_project(item):
            nodes.append(live_project(item))
        elif items.is_share_link(item):
            nodes.append(items.share_link_from_item(item))
        else:
            nodes.append(None if items.expired(item, now) else items.conversation_from_item(item))
    return nodes


async def read_project(table: ChatTable, *, user_id: str, project_id: str) -> ProjectRecord | None:
    """The caller's project as of now (a consistent read), with its counts."""
    (found,) = await get_projects(table, user_id=user_id, project_ids=[project_id])
    return found


async def list_projects(
    table: ChatTable,
    *,
    user_id: str,
    limit: int,
    cursor: ProjectPosition | None = None,
    forward: bool = True,
) -> Page[ProjectRecord]:
    """Most recently updated first (a write may show late)."""
    return await read_recent(
        table,
        partition_value=keys.projects_pk(checked_user(user_id)),
        cursor=None if cursor is None else cursor.sort_key(),
        limit=limit,
        forward=forward,
        record_of=items.project_from_item,
    )


async def count_projects(table: ChatTable, *, user_id: str) -> int:
    return (await read_counts(table, user_id=user_id)).projects


# --- deleting ------------------------------------------------------------------------------


async def delete_project(
    table: ChatTable,
    *,
    user_id: str,
    project_id: str,
    delete_conversations: bool,
    budget: timedelta = DEFAULT_BUDGET,
) -> ProjectDeletion:
    """What `budget` allows (and at most DELETE_BATCH conversations) of deleting a project:
    its conversations moved out of it, or with `delete_conversations` deleted with their
    messages; the project itself once none is left. Call again until `done`."""
    user_id = checked_user(user_id)
    project_id = checked_id(project_id, field="id")
    return await _delete(
        table,
        user_id,
        project_id,
        delete_conversations=delete_conversations,
        work=Budget.starting(table, budget),
    )


async def erase_project(table: ChatTable, *, user_id: str, project_id: str, work: Budget) -> bool:
    """deleteProject with its conversations, within erasure's budget; False while the
    project is not gone yet."""
    deletion = await _delete(table, user_id, project_id, delete_conversations=True, work=work)
    return deletion.done


async def _delete(
    table: ChatTable, user_id: str, project_id: str, *, delete_conversations: bool, work: Budget
) -> ProjectDeletion:
    marked = await _mark_deleting(table, user_id, project_id)
    if delete_conversations:
        await _withdraw_links(table, user_id, project_id)
    if marked.conversation_count():
        await _empty(
            table, user_id, project_id, delete_conversations=delete_conversations, work=work
        )
        remaining = await read_remaining(table, user_id=user_id, project_id=project_id)
        if remaining:
            return ProjectDeletion(done=False, conversations_remaining=remaining)
    await _remove(table, user_id, project_id)
    if delete_conversations:
        await _unmark(table, user_id, project_id)
    return ProjectDeletion(done=True, conversations_remaining=0)


async def _withdraw_links(table: ChatTable, user_id: str, project_id: str) -> None:
    """Name the project in the PROFILE as deleted with its conversations: every share link
    of a conversation still in it stops answering now, not when its turn comes (shares.py).
    Every such call marks it again, so a delete begun without its conversations is covered
    from the first call that deletes them."""
    async with table.guard():
        await table.client.update_item(
            TableName=table.name,
            Key=items.profile_key(user_id),
            UpdateExpression="SET #deleting = :yes",
            ExpressionAttributeNames={"#deleting": deleting_project_entry(project_id)},
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )


async def _unmark(table: ChatTable, user_id: str, project_id: str) -> None:
    """Remove the project's mark once it is gone. Should this not happen (a failure right
    after the project's removal), the mark names a project that no longer exists, so no
    conversation's links, until a project with the id is created again, which removes it."""
    async with table.guard():
        await table.client.update_item(
            TableName=table.name,
            Key=items.profile_key(user_id),
            UpdateExpression="REMOVE #deleting",
            ExpressionAttributeNames={"#deleting": deleting_project_entry(project_id)},
        )


async def _empty(
    table: ChatTable, user_id: str, project_id: str, *, delete_conversations: bool, work: Budget
) -> None:
    """Up to DELETE_BATCH of the project's conversations moved out (or deleted), within
    `work`; at least one, however little of it is left, so every call makes progress."""
    handled = 0
    while handled < DELETE_BATCH:
        wanted = DELETE_BATCH - handled
        listed = await _listed(table, user_id, project_id, limit=wanted)
        for conversation_id in listed:
            if delete_conversations:
                finished = await erase_conversation(
                    table, user_id, conversation_id, work, in_project=project_id
                )
                if not finished:
                    return
            else:
                await release_conversation(
                    table, user_id=user_id, conversation_id=conversation_id, project_id=project_id
                )
            handled += 1
            if work.spent():
                return
        if len(listed) < wanted:
            # The index holds no more; any still counted are writes it has not caught up
            # with yet, for a later call.
            return


async def _mark_deleting(table: ChatTable, user_id: str, project_id: str) -> ProjectRecord:
    """The project, marked deleting (with its PROJECT_DELETED change) unless it is already."""
    key = items.project_key(user_id, project_id)

    async def plan(snapshot: Snapshot) -> Plan[ProjectRecord]:
        found = snapshot.get(key)
        if found is None or not items.is_project(found):
            raise ProjectNotFoundError("project not found")
        project = items.project_from_item(found)
        if project.deleting:
            return Plan(result=project, change=None)

        def actions(transaction: Transaction) -> None:
            # Out of the projects list at once; `deleting` keeps conversations from entering.
            transaction.update(
                "project",
                key,
                update="SET deleting = :yes REMOVE GSI1PK, GSI1SK",
                condition="version = :seen",
                values={":yes": {"BOOL": True}, ":seen": {"N": str(project.version)}},
            )

        planned = Plan(
            result=dataclasses.replace(project, deleting=True),
            change=ChangeDraft(kind="PROJECT_DELETED", conversation_id=None, project_id=project_id),
            actions=actions,
        )
        planned.profile.count(PROJECT_COUNTER, -1)
        return planned

    return await commit(table, user_id=user_id, reads=[key], plan=plan)


async def _listed(table: ChatTable, user_id: str, project_id: str, *, limit: int) -> list[str]:
    """Up to `limit` ids of the project's conversations, unarchived first, as GSI2 has them."""
    found: list[str] = []
    for archived in (False, True):
        async with table.guard():
            response = await table.client.query(
                TableName=table.name,
                IndexName=GSI_GROUPING,
                KeyConditionExpression="GSI2PK = :p",
                ExpressionAttributeValues={
                    ":p": {"S": keys.grouping_pk(user_id, project_id, archived=archived)}
                },
                ProjectionExpression="conversationId",
                Limit=limit - len(found),
            )
        found += [item["conversationId"]["S"] for item in response.get("Items", [])]
        if len(found) >= limit:
            break
    return found


async def read_remaining(table: ChatTable, *, user_id: str, project_id: str) -> int:
    """How many conversations a project (deleting or not) still holds, as of now."""
    key = items.project_key(user_id, project_id)
    async with table.guard():
        response = await table.client.get_item(TableName=table.name, Key=key, ConsistentRead=True)
    item = response.get("Item")
    if item is None or not items.is_project(item):
        return 0
    return items.project_from_item(item).conversation_count()


async def _remove(table: ChatTable, user_id: str, project_id: str) -> None:
    """Delete the item of a project marked deleting that holds no conversation."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {":zero": {"N": "0"}}
    conditions = ["attribute_exists(deleting)"]
    for index, (archived, pinned) in enumerate(items.PROJECT_LISTS):
        names[f"#c{index}"] = items.project_counter(archived=archived, pinned=pinned)
        conditions.append(f"(attribute_not_exists(#c{index}) OR #c{index} = :zero)")
    async with table.guard():
        try:
            await table.client.delete_item(
                TableName=table.name,
                Key=items.project_key(user_id, project_id),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            # Gone already (a call before this one finished it).
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

"""Conversations: a user's items under USER#<userId>, guarded by an OWNER item in CONV#<id>.

Clients choose conversation ids, and the messages partition CONV#<id> is keyed by the id
alone, so two users could name the same partition. The OWNER item, written in the same
transaction as the conversation, makes the first owner the only one: a second user's create
fails its condition, and every message write also requires the caller's conversation item.

Every write here goes through writes.commit, so it is one transaction with its change-log
entry, planned from a consistent snapshot of the user's data. A conversation in a project also
moves that project's counts in the same transaction (grouping.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from botocore.exceptions import ClientError

from graphql_api.errors import ConflictError, NotFoundError, ValidationError

from . import items, keys
from .batch import batch_delete, batch_get
from .checks import checked_id, checked_user, ensure_fits, is_id
from .client import ChatTable, error_code
from .deltas import streamed_preview, streamed_previews
from .grouping import ensure_open, entering, live_project, record_grouping, settle_grouping
from .paging import SortedRange, read_page
from .profile import Counts, counts, record_change
from .records import (
    ONE_TICK,
    UNSET,
    ConversationPosition,
    ConversationRecord,
    Item,
    Page,
    ProjectRecord,
    Tree,
    Unset,
)
from .table import GSI_GROUPING, GSI_RECENCY
from .text import fold
from .transaction import Transaction
from .writes import ChangeDraft, Plan, Snapshot, commit

R = TypeVar("R")
# A page of the home list is filled in one Query unless a filter discards items; a filtered
# list reads this many at a time, so a rare match costs few requests.
FILTERED_READ: Final = 250


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationFilter:
    """Which conversations a listing shows. Archived, pinned, a project and "in no project"
    are index keys (one Query a page); tag, title and "in some project" are compared item by
    item."""

    archived: bool = False
    pinned: bool | None = None
    tag: str | None = None
    title_contains: str | None = None
    # One project's conversations.
    project_id: str | None = None
    # False: those in no project; True: those in some project.
    in_project: bool | None = None

    @property
    def grouped(self) -> bool:
        """Whether the list is one of GSI2's: a project's, or the one of those in none."""
        return self.project_id is not None or self.in_project is False


@dataclasses.dataclass(frozen=True, kw_only=True)
class Thread:
    """A conversation with its branch tree: what reading its messages needs."""

    conversation: ConversationRecord
    tree: Tree


def _live(item: dict[str, Any] | None, now: datetime) -> ConversationRecord | None:
    """The conversation of an item, unless there is none, it has expired or it is a project
    (which shares the key range)."""
    if item is None or items.expired(item, now) or items.is_project(item):
        return None
    return items.conversation_from_item(item)


async def create_conversation(
    table: ChatTable,
    *,
    user_id: str,
    title: str,
    model_id: str | None = None,
    conversation_id: str | None = None,
    tags: Sequence[str] = (),
    expires_at: datetime | None = None,
    project_id: str | None = None,
) -> ConversationRecord:
    """Create, or return the caller's existing conversation with that id (a retried create).

    In `project_id`, which must be the caller's and not being deleted (ProjectNotFoundError).
    """
    user_id = checked_user(user_id)
    conversation_id = (
        str(uuid.uuid4()) if conversation_id is None else checked_id(conversation_id, field="id")
    )
    if project_id is not None:
        project_id = checked_id(project_id, field="projectId")
        _ensure_permanent(expires_at)
    _ensure_title_fits(user_id, conversation_id, title, model_id, tags)
    reads = [items.owner_key(conversation_id), items.conversation_key(user_id, conversation_id)]
    if project_id is not None:
        reads.append(items.project_key(user_id, project_id))

    async def plan(snapshot: Snapshot) -> Plan[ConversationRecord]:
        owner = snapshot.get(items.owner_key(conversation_id))
        node = snapshot.get(items.conversation_key(user_id, conversation_id))
        if node is not None and items.is_project(node):
            raise ConflictError("this id is already in use")
        if owner is not None:
            existing = _live(node, snapshot.now)
            if not items.owned_by(owner, user_id):
                raise ConflictError("this conversation id is already in use")
            if existing is None:
                raise ConflictError("this conversation is being deleted")
            return Plan(result=existing, change=None)
        if project_id is not None:
            ensure_open(snapshot.get(items.project_key(user_id, project_id)))
        record = ConversationRecord(
            id=conversation_id,
            user_id=user_id,
            title=title,
            model_id=model_id,
            created_at=snapshot.now,
            updated_at=snapshot.now,
            message_count=0,
            version=1,
            last_message=None,
            tags=tuple(tags),
            expires_at=expires_at,
            project_id=project_id,
        )
        item = items.conversation_item(record)
        ensure_fits(item, field="title")

        def actions(transaction: Transaction) -> None:
            transaction.put(
                "owner",
                items.owner_item(conversation_id, user_id, expires_at=expires_at),
                condition="attribute_not_exists(PK)",
            )
            transaction.put("conversation", item, condition="attribute_not_exists(PK)")
            record_grouping(transaction, user_id=user_id, before=None, after=record)

        planned = Plan(
            result=record,
            change=ChangeDraft(kind="CONVERSATION_CREATED", conversation_id=conversation_id),
            actions=actions,
            settle=settle_grouping(project_id),
        )
        record_change(planned.profile, before=None, after=record)
        return planned

    return await commit(table, user_id=user_id, reads=reads, plan=plan)


def _ensure_permanent(expires_at: datetime | None) -> None:
    """A temporary conversation stays out of projects: the PROFILE takes an expired one out
    of its counts at once (profile.py), which a project's counts could not follow."""
    if expires_at is not None:
        raise ValidationError("projectId", "a temporary conversation cannot be in a project")


def _ensure_title_fits(
    user_id: str,
    conversation_id: str,
    title: str,
    model_id: str | None,
    tags: Sequence[str],
) -> None:
    """Refuse a conversation too large for an item before reading anything."""
    now = datetime.now(UTC)
    widest = ConversationRecord(
        id=conversation_id,
        user_id=user_id,
        title=title,
        model_id=model_id,
        created_at=now,
        updated_at=now,
        message_count=0,
        version=1,
        last_message=None,
        tags=tuple(tags),
        expires_at=now,
    )
    ensure_fits(items.conversation_item(widest), field="title")


async def get_conversation(
    table: ChatTable, *, user_id: str, conversation_id: str
) -> ConversationRecord | None:
    (found,) = await get_conversations(table, user_id=user_id, conversation_ids=[conversation_id])
    return found


async def get_conversations(
    table: ChatTable, *, user_id: str, conversation_ids: Sequence[str]
) -> list[ConversationRecord | None]:
    """In request order; None where missing, expired, malformed or not the caller's."""
    user_id = checked_user(user_id)
    wanted = [
        (keys.user_pk(user_id), keys.conversation_sk(cid)) for cid in conversation_ids if is_id(cid)
    ]
    async with table.guard():
        found = await batch_get(table, wanted)
    now = table.clock()
    return await streamed_previews(
        table,
        [
            _live(found.get((keys.user_pk(user_id), keys.conversation_sk(cid))), now)
            for cid in conversation_ids
        ],
    )


async def get_threads(
    table: ChatTable,
    *,
    user_id: str,
    conversation_ids: Sequence[str],
    known: Mapping[str, ConversationRecord] | None = None,
) -> list[Thread | None]:
    """Conversations with their trees, in one BatchGetItem; None as for get_conversations.

    `known` conversations (read moments ago by the same caller, e.g. listed) are not read
    again, and neither is the tree of one that never forked: it has none.
    """
    user_id = checked_user(user_id)
    known = known or {}
    wanted: list[tuple[str, str]] = []
    for cid in conversation_ids:
        if not is_id(cid):
            continue
        if cid not in known:
            wanted.append((keys.user_pk(user_id), keys.conversation_sk(cid)))
        if cid not in known or known[cid].segment_count > 1:
            wanted.append((keys.conversation_partition(cid), keys.TREE_SK))
    found: dict[tuple[str, str], Item] = {}
    if wanted:
        async with table.guard():
            found = await batch_get(table, wanted)
    now = table.clock()
    # `known` ones were read (and their previews streamed in) by the caller already.
    read = await streamed_previews(
        table,
        [
            _live(found.get((keys.user_pk(user_id), keys.conversation_sk(cid))), now)
            for cid in conversation_ids
            if cid not in known
        ],
    )
    fresh = {record.id: record for record in read if record is not None}
    threads: list[Thread | None] = []
    for cid in conversation_ids:
        record = known.get(cid) or fresh.get(cid)
        tree = found.get((keys.conversation_partition(cid), keys.TREE_SK))
        threads.append(
            None if record is None else Thread(conversation=record, tree=items.tree_from_item(tree))
        )
    return threads


async def list_conversations(
    table: ChatTable,
    *,
    user_id: str,
    limit: int,
    cursor: ConversationPosition | None = None,
    forward: bool = True,
    where: ConversationFilter | None = None,
) -> Page[ConversationRecord]:
    """Pinned first, then most recently updated first. GSI1 is eventually consistent: a write
    may show late. Pages are never empty while there is more: a filter that discards items
    reads on until the page is full or the list ends."""
    user_id = checked_user(user_id)
    where = where or ConversationFilter()
    low, high = (None, None)
    if where.pinned is not None:
        prefix = keys.pinned_prefix(where.pinned)
        low, high = prefix, prefix[:-1] + "$"
    conditions = ["(attribute_not_exists(#ttl) OR #ttl > :now)"]
    names = {"#ttl": items.TTL_ATTRIBUTE}
    values: dict[str, Any] = {":now": items.now_epoch(table.clock())}
    if where.tag is not None:
        conditions.append("contains(tagKeys, :tag)")
        values[":tag"] = {"S": fold(where.tag)}
    if where.title_contains is not None:
        conditions.append("contains(titleKey, :title)")
        values[":title"] = {"S": fold(where.title_contains)}
    if where.in_project and where.project_id is None:
        conditions.append("attribute_exists(projectId)")
    if where.grouped:
        index, partition, sort = GSI_GROUPING, "GSI2PK", "GSI2SK"
        value = keys.grouping_pk(user_id, where.project_id, archived=where.archived)
    else:
        index, partition, sort = GSI_RECENCY, "GSI1PK", "GSI1SK"
        value = keys.listing_pk(user_id, archived=where.archived)
    span = SortedRange(
        index_name=index,
        partition_attribute=partition,
        partition_value=value,
        sort_attribute=sort,
        low=low,
        high=high,
        item_filter=(" AND ".join(conditions), names, values),
        # Expired temporary conversations are rare; tags, titles and "in some project" may
        # match few items.
        read_ahead=FILTERED_READ if len(conditions) > 1 else 0,
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
    listed = [items.conversation_from_item(item) for item in page.items]
    return Page(
        items=[record for record in await streamed_previews(table, listed) if record is not None],
        has_previous=page.has_previous,
        has_next=page.has_next,
    )


async def read_counts(table: ChatTable, *, user_id: str) -> Counts:
    """The user's conversation counts, per list and per tag, as of now."""
    key = items.profile_key(checked_user(user_id))
    async with table.guard():
        response = await table.client.get_item(TableName=table.name, Key=key, ConsistentRead=True)
    return counts(response.get("Item"), table.clock())


async def count_conversations(
    table: ChatTable, *, user_id: str, where: ConversationFilter | None = None
) -> int:
    """How many conversations the list `where` selects holds, before any title search: the
    lists and tags are counted as they change, titles are not. A project's lists are counted
    on the project's item instead (ProjectRecord.conversation_count)."""
    where = where or ConversationFilter()
    if where.project_id is not None:
        raise ValueError("a project's lists are counted on the project")
    found = await read_counts(table, user_id=user_id)
    if where.in_project is not None:
        # Before a tag or a title search, as for a title search alone.
        return found.conversations(
            archived=where.archived, pinned=where.pinned, in_project=where.in_project
        )
    if where.tag is not None:
        return found.tag(where.tag)
    return found.conversations(archived=where.archived, pinned=where.pinned)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Moved:
    """A conversation as a move left it, and the projects on either side."""

    conversation: ConversationRecord
    # The project it left; None when it was in none, or the move changed nothing.
    left: str | None
    # The project it is in, with its counts as the move left them; None when in none.
    project: ProjectRecord | None


async def update_conversation(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    title: str | None = None,
    model_id: str | Unset | None = UNSET,
    expected_version: int | None = None,
    pinned: bool | None = None,
    archived: bool | None = None,
    tags: Sequence[str] | None = None,
    project_id: str | Unset | None = UNSET,
) -> ConversationRecord:
    """Change what is given; a stale `expected_version` writes nothing. `project_id` moves
    it as move_conversation does."""
    updated = await _update(
        table,
        user_id=user_id,
        conversation_id=conversation_id,
        change=_Change(
            title=title,
            model_id=model_id,
            pinned=pinned,
            archived=archived,
            tags=None if tags is None else tuple(tags),
            project_id=project_id,
        ),
        expected_version=expected_version,
    )
    return updated.conversation


async def move_conversation(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    project_id: str | None,
    expected_version: int | None = None,
) -> Moved:
    """Into `project_id` (the caller's, not being deleted: else ProjectNotFoundError), None
    out of any, in one write; its messages stay where they are. A move to where it is already
    writes nothing, whatever `expected_version` says, so a retried move returns the
    conversation as the first one left it."""
    return await _update(
        table,
        user_id=user_id,
        conversation_id=conversation_id,
        change=_Change(project_id=project_id),
        expected_version=expected_version,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Change:
    """What an update changes; None (UNSET for the nullable ones) leaves it."""

    title: str | None = None
    model_id: str | Unset | None = UNSET
    pinned: bool | None = None
    archived: bool | None = None
    tags: tuple[str, ...] | None = None
    project_id: str | Unset | None = UNSET

    @property
    def only_moves(self) -> bool:
        return self == _Change(project_id=self.project_id) and not isinstance(
            self.project_id, Unset
        )

    def applied(self, stored: ConversationRecord, now: datetime) -> ConversationRecord:
        return dataclasses.replace(
            stored,
            title=stored.title if self.title is None else self.title,
            model_id=stored.model_id if isinstance(self.model_id, Unset) else self.model_id,
            pinned=stored.pinned if self.pinned is None else self.pinned,
            archived=stored.archived if self.archived is None else self.archived,
            tags=stored.tags if self.tags is None else self.tags,
            project_id=(
                stored.project_id if isinstance(self.project_id, Unset) else self.project_id
            ),
            version=stored.version + 1,
            # Only forward, whatever the clocks of the servers that wrote before: the list's
            # order and the walk through it rely on it.
            updated_at=max(now, stored.updated_at + ONE_TICK),
        )


async def _update(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    change: _Change,
    expected_version: int | None,
) -> Moved:
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="id")
    key = items.conversation_key(user_id, conversation_id)
    if change.title is not None or change.tags is not None:
        _ensure_title_fits(user_id, conversation_id, change.title or "", None, change.tags or ())
    reads = [key]
    if isinstance(change.project_id, str):
        destination = checked_id(change.project_id, field="projectId")
        change = dataclasses.replace(change, project_id=destination)
        reads.append(items.project_key(user_id, destination))

    async def plan(snapshot: Snapshot) -> Plan[Moved]:
        stored = _live(snapshot.get(key), snapshot.now)
        if stored is None:
            raise NotFoundError("conversation not found")
        target = None
        if isinstance(change.project_id, str):
            target = snapshot.get(items.project_key(user_id, change.project_id))
        if change.only_moves and stored.project_id == change.project_id:
            unmoved = Moved(conversation=stored, left=None, project=live_project(target))
            return Plan(result=unmoved, change=None)
        if expected_version is not None and stored.version != expected_version:
            raise ConflictError(
                f"conversation is at version {stored.version}, not {expected_version}"
            )
        updated = change.applied(stored, snapshot.now)
        project = None
        if updated.project_id is not None and updated.project_id != stored.project_id:
            _ensure_permanent(stored.expires_at)
            project = ensure_open(target).joined_by(updated)
        left = stored.project_id if stored.project_id != updated.project_id else None
        moved = Moved(conversation=updated, left=left, project=project)
        return _replacing(stored, updated, kind="CONVERSATION_UPDATED", result=moved)

    moved = await commit(table, user_id=user_id, reads=reads, plan=plan)
    # As reads show it: a streaming answer's preview with its text so far.
    return dataclasses.replace(
        moved, conversation=await streamed_preview(table, moved.conversation)
    )


async def release_conversation(
    table: ChatTable, *, user_id: str, conversation_id: str, project_id: str
) -> bool:
    """Move the conversation out of `project_id` if it is still there (deleteProject reads
    the project's list from an index, which may lag); whether it moved one."""
    user_id = checked_user(user_id)
    key = items.conversation_key(user_id, checked_id(conversation_id, field="id"))

    async def plan(snapshot: Snapshot) -> Plan[bool]:
        stored = _live(snapshot.get(key), snapshot.now)
        if stored is None or stored.project_id != project_id:
            return Plan(result=False, change=None)
        updated = _Change(project_id=None).applied(stored, snapshot.now)
        return _replacing(stored, updated, kind="CONVERSATION_UPDATED", result=True)

    return await commit(table, user_id=user_id, reads=[key], plan=plan)


def _replace(
    stored: ConversationRecord, updated: ConversationRecord, *, kind: Any
) -> Plan[ConversationRecord]:
    """A plan that writes `updated` over `stored`, counters moved from one to the other."""
    return _replacing(stored, updated, kind=kind, result=updated)


def _replacing(
    stored: ConversationRecord, updated: ConversationRecord, *, kind: Any, result: R
) -> Plan[R]:
    """As _replace, returning `result`."""
    item = items.conversation_item(updated)
    ensure_fits(item, field="title")

    def actions(transaction: Transaction) -> None:
        transaction.put(
            "conversation",
            item,
            condition="version = :seen",
            values={":seen": {"N": str(stored.version)}},
        )
        record_grouping(transaction, user_id=stored.user_id, before=stored, after=updated)

    planned = Plan(
        result=result,
        change=ChangeDraft(kind=kind, conversation_id=stored.id),
        actions=actions,
        settle=settle_grouping(entering(stored, updated)),
    )
    record_change(planned.profile, before=stored, after=updated)
    return planned


async def delete_conversation(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    in_project: str | None = None,
) -> str:
    """Delete a conversation and all its messages, at any size; safe to call again.

    The conversation item goes first, in one transaction that also marks the OWNER item as
    deleting and logs the change: from then on nothing of the conversation is reachable, and
    messages can no longer be added. The messages partition is purged after, and the OWNER
    item last, so a failure part-way leaves an invisible remainder that the next call finishes.
    With `in_project`, a conversation no longer in that project is left as it is
    (NotFoundError).
    """
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="id")
    key = items.conversation_key(user_id, conversation_id)

    async def plan(snapshot: Snapshot) -> Plan[str]:
        owner = snapshot.get(items.owner_key(conversation_id))
        stored_item = snapshot.get(key)
        if stored_item is None or not items.owned_by(owner, user_id):
            if items.owned_by(owner, user_id) and items.marked_deleting(owner):
                # A delete that failed part-way: finish it, with no second change.
                return Plan(result=conversation_id, change=None)
            raise NotFoundError("conversation not found")
        stored = _live(stored_item, snapshot.now)
        if stored is None or (in_project is not None and stored.project_id != in_project):
            raise NotFoundError("conversation not found")

        def actions(transaction: Transaction) -> None:
            transaction.delete("conversation", key, condition="attribute_exists(PK)")
            transaction.update(
                "owner",
                items.owner_key(conversation_id),
                update="SET deleting = :yes",
                condition="userId = :user",
                values={":yes": {"BOOL": True}, ":user": {"S": user_id}},
            )
            record_grouping(transaction, user_id=user_id, before=stored, after=None)

        planned = Plan(
            result=conversation_id,
            change=ChangeDraft(kind="CONVERSATION_DELETED", conversation_id=conversation_id),
            actions=actions,
            settle=settle_grouping(None),
        )
        record_change(planned.profile, before=stored, after=None)
        return planned

    deleted = await commit(
        table,
        user_id=user_id,
        reads=[key, items.owner_key(conversation_id)],
        plan=plan,
    )
    await purge_partition(table, user_id=user_id, conversation_id=conversation_id)
    return deleted


async def purge_partition(table: ChatTable, *, user_id: str, conversation_id: str) -> int:
    """Delete what is left of a deleted conversation: its messages, markers and tree, then
    its OWNER item. Returns how many items went."""
    partition = keys.conversation_partition(conversation_id)
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :p",
        "ExpressionAttributeValues": {":p": {"S": partition}},
        "ProjectionExpression": "PK, SK, contentRef",
        "ConsistentRead": True,
    }
    purged = 0
    while True:
        async with table.guard():
            response = await table.client.query(**request)
        found = response.get("Items", [])
        # The objects before their items: a purge cut short finds the items again, so no
        # object outlives the last reference to it.
        refs = [ref for item in found if (ref := items.content_ref_of(item)) is not None]
        if refs and table.content is not None:
            await table.content.delete(refs)
        doomed = [items.key_of(item) for item in found if item["SK"]["S"] != keys.OWNER_SK]
        await batch_delete(table, doomed)
        purged += len(doomed)
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
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
    return purged + 1

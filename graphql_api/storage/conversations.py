"""Conversations: a user's items under USER#<userId>, guarded by an OWNER item in CONV#<id>.

Clients choose conversation ids, and the messages partition CONV#<id> is keyed by the id
alone, so two users could name the same partition. The OWNER item, written in the same
transaction as the conversation, makes the first owner the only one: a second user's create
fails its condition, and every message write also requires the caller's conversation item.

Every write here goes through writes.commit, so it is one transaction with its change-log
entry, planned from a consistent snapshot of the user's data.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from graphql_api.errors import ConflictError, NotFoundError

from . import items, keys
from .batch import batch_delete, batch_get
from .checks import checked_id, checked_user, ensure_fits, is_id
from .client import ChatTable, error_code
from .deltas import streamed_preview, streamed_previews
from .paging import SortedRange, read_page
from .profile import Counts, counts, record_change
from .records import (
    ONE_TICK,
    UNSET,
    ConversationPosition,
    ConversationRecord,
    Item,
    Page,
    Tree,
    Unset,
)
from .table import GSI_RECENCY
from .text import fold
from .transaction import Transaction
from .writes import ChangeDraft, Plan, Snapshot, commit

# A page of the home list is filled in one Query unless a filter discards items; a filtered
# list reads this many at a time, so a rare match costs few requests.
FILTERED_READ: Final = 250


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationFilter:
    """Which conversations a listing shows. Archived and pinned are index keys (one Query a
    page); tag and title are compared item by item."""

    archived: bool = False
    pinned: bool | None = None
    tag: str | None = None
    title_contains: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Thread:
    """A conversation with its branch tree: what reading its messages needs."""

    conversation: ConversationRecord
    tree: Tree


def _live(item: dict[str, Any] | None, now: datetime) -> ConversationRecord | None:
    """The conversation of an item, unless there is none or it has expired."""
    if item is None or items.expired(item, now):
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
) -> ConversationRecord:
    """Create, or return the caller's existing conversation with that id (a retried create)."""
    user_id = checked_user(user_id)
    conversation_id = (
        str(uuid.uuid4()) if conversation_id is None else checked_id(conversation_id, field="id")
    )
    _ensure_title_fits(user_id, conversation_id, title, model_id, tags)

    async def plan(snapshot: Snapshot) -> Plan[ConversationRecord]:
        owner = snapshot.get(items.owner_key(conversation_id))
        if owner is not None:
            existing = _live(
                snapshot.get(items.conversation_key(user_id, conversation_id)), snapshot.now
            )
            if not items.owned_by(owner, user_id):
                raise ConflictError("this conversation id is already in use")
            if existing is None:
                raise ConflictError("this conversation is being deleted")
            return Plan(result=existing, change=None)
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

        planned = Plan(
            result=record,
            change=ChangeDraft(kind="CONVERSATION_CREATED", conversation_id=conversation_id),
            actions=actions,
        )
        record_change(planned.profile, before=None, after=record)
        return planned

    return await commit(
        table,
        user_id=user_id,
        reads=[items.owner_key(conversation_id), items.conversation_key(user_id, conversation_id)],
        plan=plan,
    )


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
    span = SortedRange(
        index_name=GSI_RECENCY,
        partition_attribute="GSI1PK",
        partition_value=keys.listing_pk(user_id, archived=where.archived),
        sort_attribute="GSI1SK",
        low=low,
        high=high,
        item_filter=(" AND ".join(conditions), names, values),
        # Expired temporary conversations are rare; tags and titles may match few items.
        read_ahead=FILTERED_READ if where.tag or where.title_contains else 0,
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
    lists and tags are counted as they change, titles are not."""
    found = await read_counts(table, user_id=user_id)
    where = where or ConversationFilter()
    if where.tag is not None:
        return found.tag(where.tag)
    return found.conversations(archived=where.archived, pinned=where.pinned)


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
) -> ConversationRecord:
    """Change what is given; a stale `expected_version` writes nothing."""
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="id")
    key = items.conversation_key(user_id, conversation_id)
    if title is not None or tags is not None:
        _ensure_title_fits(user_id, conversation_id, title or "", None, tags or ())

    async def plan(snapshot: Snapshot) -> Plan[ConversationRecord]:
        stored = _live(snapshot.get(key), snapshot.now)
        if stored is None:
            raise NotFoundError("conversation not found")
        if expected_version is not None and stored.version != expected_version:
            raise ConflictError(
                f"conversation is at version {stored.version}, not {expected_version}"
            )
        updated = dataclasses.replace(
            stored,
            title=stored.title if title is None else title,
            model_id=stored.model_id if isinstance(model_id, Unset) else model_id,
            pinned=stored.pinned if pinned is None else pinned,
            archived=stored.archived if archived is None else archived,
            tags=stored.tags if tags is None else tuple(tags),
            version=stored.version + 1,
            # Only forward, whatever the clocks of the servers that wrote before: the list's
            # order and the walk through it rely on it.
            updated_at=max(snapshot.now, stored.updated_at + ONE_TICK),
        )
        return _replace(stored, updated, kind="CONVERSATION_UPDATED")

    updated = await commit(table, user_id=user_id, reads=[key], plan=plan)
    return await streamed_preview(table, updated)


def _replace(
    stored: ConversationRecord, updated: ConversationRecord, *, kind: Any
) -> Plan[ConversationRecord]:
    """A plan that writes `updated` over `stored`, counters moved from one to the other."""
    item = items.conversation_item(updated)
    ensure_fits(item, field="title")

    def actions(transaction: Transaction) -> None:
        transaction.put(
            "conversation",
            item,
            condition="version = :seen",
            values={":seen": {"N": str(stored.version)}},
        )

    planned = Plan(
        result=updated,
        change=ChangeDraft(kind=kind, conversation_id=stored.id),
        actions=actions,
    )
    record_change(planned.profile, before=stored, after=updated)
    return planned


async def delete_conversation(table: ChatTable, *, user_id: str, conversation_id: str) -> str:
    """Delete a conversation and all its messages, at any size; safe to call again.

    The conversation item goes first, in one transaction that also marks the OWNER item as
    deleting and logs the change: from then on nothing of the conversation is reachable, and
    messages can no longer be added. The messages partition is purged after, and the OWNER
    item last, so a failure part-way leaves an invisible remainder that the next call finishes.
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
        if items.expired(stored_item, snapshot.now):
            raise NotFoundError("conversation not found")
        stored = items.conversation_from_item(stored_item)

        def actions(transaction: Transaction) -> None:
            transaction.delete("conversation", key, condition="attribute_exists(PK)")
            transaction.update(
                "owner",
                items.owner_key(conversation_id),
                update="SET deleting = :yes",
                condition="userId = :user",
                values={":yes": {"BOOL": True}, ":user": {"S": user_id}},
            )

        planned = Plan(
            result=conversation_id,
            change=ChangeDraft(kind="CONVERSATION_DELETED", conversation_id=conversation_id),
            actions=actions,
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

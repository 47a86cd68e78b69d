"""Share links: a frozen branch of a conversation that anyone holding the link can read.

A link's id is 24 random bytes in base64url (checks.LINK_ID_BYTES), derived from nothing. Its
items (keys.py):

- the owner's record, USER#<user> / CONV#<linkId>: by id for node(), and in GSI1 under
  SHARES#<user> for shareLinks, newest first;
- a pointer in the conversation's partition, CONV#<conversationId> / SHARE#<linkId>, holding
  the same: Conversation.shareLinks is one Query of it, and the conversation's purge finds
  every link to revoke in the partition it reads anyway;
- the snapshot, in a partition of its own keyed by the link's id alone: HEAD (the title and
  times served; the owner, the conversation and what was frozen, never served) and PART#<n>
  items each packing up to PART_BYTES of the branch's messages in order. Content kept in the
  content bucket is named by its message's own object (which lives as long as the message).

Creating, updating and revoking are each ONE transaction through writes.commit, with every
item above, the PROFILE's count of links and the change-log entry: a snapshot is there whole
or not at all, so it must fit one transaction (SNAPSHOT_MAX_BYTES; content over 300 KB takes
only its reference). In a transaction DynamoDB bills 2 write units per KB of each item, so a
snapshot costs about 2 WCU per KB of its messages, plus the record, pointer, HEAD, PROFILE and
change (docs: README, access patterns).

Reading a link (`read_shared`) is one Query of its partition and one strongly consistent
BatchGetItem of the owner's record, the conversation and the owner's PROFILE. It answers only
when the record and the conversation (the same conversation: its createdAt) both exist and
the PROFILE withdraws no link of it (profile.links_withdrawn). So revocation is immediate on
every path by construction, without enumerating links on the way: revokeShareLink deletes
the record; deleteConversation's first transaction deletes the conversation item; an erasure
and a project deleted with its conversations mark the PROFILE before their first unit. What
is left behind (the pointer, the snapshot) is removed later in the same delete, and never
served meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from graphql_api.errors import ConflictError, NotFoundError, UnavailableError, ValidationError

from . import items, keys
from .batch import batch_get
from .checks import LINK_ID_BYTES, checked_id, checked_user, is_link_id
from .client import ChatTable
from .paging import read_recent
from .profile import SHARE_LINK_COUNTER, counts, links_withdrawn
from .records import (
    ONE_TICK,
    ConversationRecord,
    Item,
    MessagePosition,
    MessageRecord,
    Page,
    SharedConversation,
    SharedMessage,
    ShareLinkPosition,
    ShareLinkRecord,
)
from .threads import read_path
from .transaction import Transaction
from .writes import ChangeDraft, Plan, Snapshot, commit

# A part is one item (400 KB at most): one message of the largest inline content (300 KB) and
# its attributes always fit, and a part holds as many messages as fit this.
PART_BYTES: Final = 350 * 1024
# The snapshot's items together, within the 4 MB a transaction carries with room for the
# record, pointer, HEAD, PROFILE and change beside them.
SNAPSHOT_MAX_BYTES: Final = 3_500_000
# A read that meets parts of another revision than its record's (an update committed between
# its two requests, or an eventually consistent Query behind it) reads again, consistently.
READ_ATTEMPTS: Final = 3


def new_link_id() -> str:
    """A fresh link id: random, URL-safe, never derived from anything else."""
    return secrets.token_urlsafe(LINK_ID_BYTES)


@dataclasses.dataclass(frozen=True)
class _Frozen:
    """A branch frozen for a link: its messages' count and their parts' items."""

    leaf: MessagePosition
    message_count: int
    parts: list[list[Item]]


# --- writing -----------------------------------------------------------------------------


async def create_share_link(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    up_to_message_id: str | None,
    max_links: int,
) -> ShareLinkRecord:
    """A new link to the branch up to `up_to_message_id` (default: the active leaf).

    NotFoundError for a conversation that is not the caller's; ValidationError for a message
    that is not in it, a temporary conversation, a branch too large for one snapshot, or past
    `max_links`; ConflictError while a message of the branch is still streaming.
    """
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    if up_to_message_id is not None:
        up_to_message_id = checked_id(up_to_message_id, field="upToMessageId")
    link_id = new_link_id()

    async def plan(snapshot: Snapshot) -> Plan[ShareLinkRecord]:
        conversation = _live_conversation(
            snapshot.get(items.conversation_key(user_id, conversation_id)), snapshot.now
        )
        if conversation is None:
            raise NotFoundError("conversation not found")
        if counts(snapshot.profile, snapshot.now).share_links >= max_links:
            raise ValidationError("input", f"at most {max_links} share links; revoke one first")
        frozen = await _freeze(table, snapshot.found, conversation, up_to_message_id, link_id)
        link = ShareLinkRecord(
            id=link_id,
            user_id=user_id,
            conversation_id=conversation_id,
            title=conversation.title,
            created_at=snapshot.now,
            updated_at=snapshot.now,
            up_to_message_id=frozen.leaf.message_id,
            message_count=frozen.message_count,
            revision=1,
            parts=len(frozen.parts),
            conversation_created_at=conversation.created_at,
        )

        def actions(transaction: Transaction) -> None:
            absent = "attribute_not_exists(PK)"
            transaction.put("record", items.share_link_item(link), condition=absent)
            transaction.put("pointer", items.share_pointer_item(link), condition=absent)
            _put_snapshot(transaction, link, frozen, stale_parts=0)

        planned = Plan(
            result=link,
            change=ChangeDraft(
                kind="SHARE_LINK_CREATED", conversation_id=conversation_id, share_link_id=link_id
            ),
            actions=actions,
        )
        planned.profile.count(SHARE_LINK_COUNTER, +1)
        return planned

    reads = [items.conversation_key(user_id, conversation_id), items.tree_key(conversation_id)]
    if up_to_message_id is not None:
        reads.append(items.marker_key(conversation_id, up_to_message_id))
    return await commit(table, user_id=user_id, reads=reads, plan=plan)


async def update_share_link(
    table: ChatTable, *, user_id: str, link_id: str, up_to_message_id: str | None
) -> ShareLinkRecord:
    """The same link (same id, same URL) on a new snapshot: the branch up to
    `up_to_message_id` (default: the active leaf now), the conversation's title now.
    NotFoundError when the link is not the caller's (or its conversation is gone); otherwise
    as create_share_link."""
    user_id = checked_user(user_id)
    if up_to_message_id is not None:
        up_to_message_id = checked_id(up_to_message_id, field="upToMessageId")
    key = items.share_link_key(user_id, link_id)

    async def plan(snapshot: Snapshot) -> Plan[ShareLinkRecord]:
        stored = _own_link(snapshot.get(key))
        cid = stored.conversation_id
        # Read after the PROFILE: a write landing in between fails this one's version check.
        wanted = [items.conversation_key(user_id, cid), items.tree_key(cid)]
        if up_to_message_id is not None:
            wanted.append(items.marker_key(cid, up_to_message_id))
        async with table.guard():
            found = await batch_get(table, [items.key_of(wanted_key) for wanted_key in wanted])
        conversation = _live_conversation(
            found.get(items.key_of(items.conversation_key(user_id, cid))), snapshot.now
        )
        if conversation is None or conversation.created_at != stored.conversation_created_at:
            raise NotFoundError("share link not found")
        frozen = await _freeze(table, found, conversation, up_to_message_id, stored.id)
        link = dataclasses.replace(
            stored,
            title=conversation.title,
            # Only forward, as for conversations.
            updated_at=max(snapshot.now, stored.updated_at + ONE_TICK),
            up_to_message_id=frozen.leaf.message_id,
            message_count=frozen.message_count,
            revision=stored.revision + 1,
            parts=len(frozen.parts),
        )

        def actions(transaction: Transaction) -> None:
            transaction.put(
                "record",
                items.share_link_item(link),
                condition="revision = :seen",
                values={":seen": {"N": str(stored.revision)}},
            )
            transaction.put("pointer", items.share_pointer_item(link))
            _put_snapshot(transaction, link, frozen, stale_parts=stored.parts)

        return Plan(
            result=link,
            change=ChangeDraft(
                kind="SHARE_LINK_UPDATED", conversation_id=cid, share_link_id=stored.id
            ),
            actions=actions,
        )

    return await commit(table, user_id=user_id, reads=[key], plan=plan)


async def revoke_share_link(
    table: ChatTable, *, user_id: str, link_id: str, missing_ok: bool = False
) -> str:
    """Delete the link with its pointer and its snapshot, in one transaction; from then on it
    answers 404. NotFoundError when the caller has no such link, unless `missing_ok` (a purge
    revoking what a pointer names, which a revoke may have done already)."""
    user_id = checked_user(user_id)
    key = items.share_link_key(user_id, link_id)

    async def plan(snapshot: Snapshot) -> Plan[str]:
        found = snapshot.get(key)
        if missing_ok and (found is None or not items.is_share_link(found)):
            return Plan(result=link_id, change=None)
        link = _own_link(found)

        def actions(transaction: Transaction) -> None:
            transaction.delete("record", key, condition="attribute_exists(PK)")
            transaction.delete("pointer", items.share_pointer_key(link.conversation_id, link.id))
            transaction.delete("head", items.share_head_key(link.id))
            for number in range(link.parts):
                transaction.delete(("part", number), items.share_part_key(link.id, number))

        planned = Plan(
            result=link.id,
            change=ChangeDraft(
                kind="SHARE_LINK_REVOKED",
                conversation_id=link.conversation_id,
                share_link_id=link.id,
            ),
            actions=actions,
        )
        planned.profile.count(SHARE_LINK_COUNTER, -1)
        return planned

    return await commit(table, user_id=user_id, reads=[key], plan=plan)


async def revoke_pointed(table: ChatTable, pointers: Sequence[Mapping[str, Any]]) -> None:
    """Revoke the links a purge found pointers to (items of a conversation's partition with
    at least PK, SK and userId), one write each; a link revoked already is skipped."""
    for pointer in pointers:
        await revoke_share_link(
            table,
            user_id=pointer["userId"]["S"],
            link_id=keys.linked_id(pointer["SK"]["S"]),
            missing_ok=True,
        )


def _own_link(found: Item | None) -> ShareLinkRecord:
    if found is None or not items.is_share_link(found):
        raise NotFoundError("share link not found")
    return items.share_link_from_item(found)


def _live_conversation(item: Item | None, now: datetime) -> ConversationRecord | None:
    if item is None or not items.is_conversation(item) or items.expired(item, now):
        return None
    return items.conversation_from_item(item)


async def _freeze(
    table: ChatTable,
    found: Mapping[tuple[str, str], Item],
    conversation: ConversationRecord,
    up_to_message_id: str | None,
    link_id: str,
) -> _Frozen:
    """The branch to `up_to_message_id` (the active leaf when None) read and packed into
    parts; `found` holds the conversation's tree and the message's marker."""
    cid = conversation.id
    if conversation.expires_at is not None:
        # It would outlive nothing: TTL removes the conversation without a purge to revoke it.
        raise ValidationError("conversationId", "a temporary conversation cannot be shared")
    if up_to_message_id is None:
        leaf = conversation.active_leaf
        if leaf is None:
            raise ValidationError("conversationId", "has no messages to share yet")
    else:
        marker = found.get(items.key_of(items.marker_key(cid, up_to_message_id)))
        if marker is None:
            # The same for a message of another conversation, or of another user's.
            raise ValidationError("upToMessageId", "is not a message of this conversation")
        leaf = items.marked_position(marker)
    tree = items.tree_from_item(found.get(items.key_of(items.tree_key(cid))))
    path = await read_path(
        table, user_id=conversation.user_id, conversation_id=cid, tree=tree, leaf=leaf
    )
    if len(path) != leaf.depth:
        raise UnavailableError("a message of this branch is not readable; try again")
    streaming = next((message for message in path if message.status == "streaming"), None)
    if streaming is not None:
        raise ConflictError(
            f"message {streaming.id} is still streaming: share once it is finished (or up to "
            "the message before it)"
        )
    return _Frozen(leaf=leaf, message_count=len(path), parts=_packed(path, link_id))


def _packed(path: Sequence[MessageRecord], link_id: str) -> list[list[Item]]:
    """The branch's messages in parts of at most PART_BYTES each, in order;
    ValidationError when they exceed SNAPSHOT_MAX_BYTES."""
    parts: list[list[Item]] = [[]]
    # What a part item takes without its messages (a revision of up to 12 digits).
    overhead = items.item_size(items.share_part_item(link_id, 0, revision=10**12, messages=[]))
    size = total = overhead
    for message in path:
        attributes = items.shared_message_attributes(_shared(message))
        cost = items.item_size({"m": {"M": attributes}})
        if parts[-1] and size + cost > PART_BYTES:
            parts.append([])
            size = overhead
            total += overhead
        parts[-1].append(attributes)
        size += cost
        total += cost
    if total > SNAPSHOT_MAX_BYTES:
        raise ValidationError(
            "upToMessageId",
            f"the branch up to this message holds {total} bytes, and a link at most "
            f"{SNAPSHOT_MAX_BYTES}: share up to an earlier message",
        )
    return parts


def _shared(message: MessageRecord) -> SharedMessage:
    return SharedMessage(
        role=message.role,
        content=message.content,
        created_at=message.created_at,
        model_id=message.model_id,
        status=message.status,
        content_ref=message.content_ref,
    )


def _put_snapshot(
    transaction: Transaction, link: ShareLinkRecord, frozen: _Frozen, *, stale_parts: int
) -> None:
    """HEAD and the parts of `link`'s revision, and deletes of the parts beyond them that an
    earlier revision had."""
    transaction.put("head", items.share_head_item(link))
    for number, messages in enumerate(frozen.parts):
        transaction.put(
            ("part", number),
            items.share_part_item(link.id, number, revision=link.revision, messages=messages),
        )
    for number in range(len(frozen.parts), stale_parts):
        transaction.delete(("part", number), items.share_part_key(link.id, number))


# --- reading, the owner's -------------------------------------------------------------------


async def list_share_links(
    table: ChatTable,
    *,
    user_id: str,
    limit: int,
    cursor: ShareLinkPosition | None = None,
) -> Page[ShareLinkRecord]:
    """The caller's links, newest first (a link made a moment ago may show late)."""
    return await read_recent(
        table,
        partition_value=keys.share_links_pk(checked_user(user_id)),
        cursor=None if cursor is None else cursor.sort_key(),
        limit=limit,
        forward=True,
        record_of=items.share_link_from_item,
    )


async def conversation_share_links(
    table: ChatTable, *, user_id: str, conversation_ids: Sequence[str]
) -> list[list[ShareLinkRecord]]:
    """Each conversation's links, newest first: one Query of its partition's pointers, all at
    once. Pointers carry their owner, so a partition that is not the caller's yields none."""
    user_id = checked_user(user_id)
    found = await asyncio.gather(
        *(_pointers(table, user_id, checked_id(cid, field="id")) for cid in conversation_ids)
    )
    return [
        sorted(links, key=lambda link: (link.created_at, link.id), reverse=True) for links in found
    ]


async def _pointers(table: ChatTable, user_id: str, conversation_id: str) -> list[ShareLinkRecord]:
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :p AND begins_with(SK, :share)",
        "FilterExpression": "userId = :user",
        "ExpressionAttributeValues": {
            ":p": {"S": keys.conversation_partition(conversation_id)},
            ":share": {"S": keys.SHARE_POINTERS_PREFIX},
            ":user": {"S": user_id},
        },
        "ConsistentRead": True,
    }
    return [items.share_link_from_item(item) for item in await _all_pages(table, request)]


async def _all_pages(table: ChatTable, request: dict[str, Any]) -> list[Item]:
    found: list[Item] = []
    async with table.guard():
        while True:
            response = await table.client.query(**request)
            found.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# --- reading, anyone's ----------------------------------------------------------------------


async def read_shared(table: ChatTable, *, link_id: str) -> SharedConversation | None:
    """The link's snapshot, content whole, while the link stands; None otherwise (unknown,
    revoked, its conversation deleted or being deleted), alike. An id not of a link's shape
    costs no request."""
    if not is_link_id(link_id):
        return None
    consistent = False
    for _ in range(READ_ATTEMPTS):
        snapshot = await _read_snapshot(table, link_id, consistent=consistent)
        if not snapshot:
            return None
        head = items.share_link_from_item(snapshot[0])
        record = await _standing(table, head)
        if record is None:
            return None
        parts = snapshot[1:]
        if record.revision == head.revision and _whole(parts, head):
            messages = [message for part in parts for message in items.share_part_messages(part)]
            return SharedConversation(
                link_id=head.id,
                title=head.title,
                created_at=head.created_at,
                updated_at=head.updated_at,
                messages=tuple(await _filled_in(table, messages)),
            )
        consistent = True
    raise UnavailableError("the link changed while it was read; try again")


async def _read_snapshot(table: ChatTable, link_id: str, *, consistent: bool) -> list[Item]:
    """HEAD then the parts in order ("HEAD" sorts before "PART#"); empty without a HEAD."""
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": "PK = :p",
        "ExpressionAttributeValues": {":p": {"S": keys.share_partition(link_id)}},
        # A replica behind shows the previous revision at worst, which the record's (read
        # strongly consistent next) tells apart.
        "ConsistentRead": consistent,
    }
    found = await _all_pages(table, request)
    if not found or found[0]["SK"]["S"] != keys.SHARE_HEAD_SK:
        return []
    return found


async def _standing(table: ChatTable, head: ShareLinkRecord) -> ShareLinkRecord | None:
    """The owner's record of the link while the link stands (see the module's docstring)."""
    wanted = [
        items.share_link_key(head.user_id, head.id),
        items.conversation_key(head.user_id, head.conversation_id),
        items.profile_key(head.user_id),
    ]
    async with table.guard():
        found = await batch_get(table, [items.key_of(key) for key in wanted])
    record_item, conversation_item, profile = (found.get(items.key_of(key)) for key in wanted)
    if record_item is None or not items.is_share_link(record_item):
        return None
    record = items.share_link_from_item(record_item)
    conversation = _live_conversation(conversation_item, table.clock())
    if (
        record.conversation_id != head.conversation_id
        or conversation is None
        or conversation.created_at != record.conversation_created_at
        or links_withdrawn(profile, conversation.project_id)
    ):
        return None
    return record


def _whole(parts: Sequence[Item], head: ShareLinkRecord) -> bool:
    """Whether `parts` are exactly the parts of HEAD's revision."""
    return [part["SK"]["S"] for part in parts] == [
        keys.share_part_sk(number) for number in range(head.parts)
    ] and all(items.share_part_revision(part) == head.revision for part in parts)


async def _filled_in(table: ChatTable, messages: list[SharedMessage]) -> list[SharedMessage]:
    """`messages` with content kept in the content bucket read back, all at once."""
    kept = [message for message in messages if message.content_ref is not None]
    if not kept:
        return messages
    store = table.content
    if store is None:
        raise UnavailableError("message content is kept in a bucket this service cannot reach")
    contents = iter(await asyncio.gather(*(store.get(str(m.content_ref)) for m in kept)))
    return [
        message
        if message.content_ref is None
        else dataclasses.replace(message, content=next(contents), content_ref=None)
        for message in messages
    ]

"""Messages: a tree per conversation, stored as segments (see keys.py), written through
writes.commit and read along one path at a time.

An add is ONE TransactWriteItems: per message the message item and a MSGID#<id> marker (both
only if absent), the conversation (its count, last message, active leaf), the tree when the
add starts a branch, and the change-log entry. The marker makes a client's retry idempotent,
and lets a message named by id (a parent, a leaf) be found in one read.

Without a parent, messages continue the active branch; with one, they start a new branch
there unless the parent has no child yet. Either way the new messages' branch becomes active.
Nothing is ever overwritten: every earlier branch stays readable.

A started stream is an add too: storage/streams.py places it with the helpers here
(conversation_of, continue_active, place, new_records, put_conversation, put_tree).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from graphql_api.errors import ConflictError, NotFoundError, ValidationError

from . import items, keys
from .batch import batch_get
from .checks import checked_id, checked_user, ensure_fits
from .client import ChatTable
from .content import filled_in, is_large, object_key
from .deltas import streamed_preview, whole
from .records import (
    ONE_TICK,
    ROLES,
    ConversationRecord,
    Feedback,
    MessagePosition,
    MessageRecord,
    NewMessage,
    Rating,
    Segment,
    Tree,
    format_timestamp,
)
from .transaction import TRANSACTION_LIMIT, Transaction, TransactionCancelled
from .writes import ChangeDraft, Plan, Snapshot, commit

# Two actions per message, plus the conversation, the tree, the profile and the change.
MAX_MESSAGES_PER_ADD: Final = (TRANSACTION_LIMIT - 4) // 2
FEEDBACK_COMMENT_MAX_BYTES: Final = 4 * 1024


def _message_action(message_id: str) -> tuple[str, str]:
    return ("message", message_id)


def _marker_action(message_id: str) -> tuple[str, str]:
    return ("marker", message_id)


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the first new message goes: its segment and depth, and its parent's id. When it
    starts a branch, `fork` is the parent's place and the children it had."""

    segment: int
    depth: int
    parent_id: str | None
    segment_count: int
    fork: tuple[tuple[int, int], tuple[str, ...]] | None = None

    def tree_after(self, tree: Tree, first_id: str) -> Tree:
        """The tree once the new branch exists (the same tree when there is none)."""
        if self.fork is None:
            return tree
        (parent_segment, parent_depth), children = self.fork
        return Tree(
            segments={
                **tree.segments,
                self.segment: Segment(
                    number=self.segment, parent=parent_segment, fork_depth=parent_depth
                ),
            },
            children={**tree.children, (parent_segment, parent_depth): (*children, first_id)},
            revision=tree.revision + 1,
        )


@dataclasses.dataclass(frozen=True)
class Added:
    messages: list[MessageRecord]
    # The conversation as the add left it; None when the add wrote nothing (a retry).
    conversation: ConversationRecord | None


async def add_messages(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    messages: Sequence[NewMessage],
) -> list[MessageRecord]:
    """As `add_to_conversation`, the messages alone."""
    added = await add_to_conversation(
        table, user_id=user_id, conversation_id=conversation_id, messages=messages
    )
    return added.messages


async def add_to_conversation(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    messages: Sequence[NewMessage],
) -> Added:
    """Store `messages` atomically, in order, each the child of the one before; ids already
    stored return the stored message.

    The first message's `parent_id` says where they go; the others' is ignored. Raises
    NotFoundError when the conversation (or the parent) is missing or not the caller's, and
    ConflictError when a message id was already used for a different message.
    """
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    ordered = with_ids(messages)
    _ensure_each_fits(table, user_id, conversation_id, ordered)
    refs = await _upload_large(table, user_id, conversation_id, ordered)
    parent_id = ordered[0].parent_id
    reads = [
        items.conversation_key(user_id, conversation_id),
        items.tree_key(conversation_id),
        *(items.marker_key(conversation_id, str(new.id)) for new in ordered),
    ]
    if parent_id is not None:
        reads.append(items.marker_key(conversation_id, parent_id))

    async def plan(snapshot: Snapshot) -> Plan[Added]:
        conversation = conversation_of(snapshot, user_id, conversation_id)
        stored = await _already_stored(table, snapshot, conversation_id, ordered)
        if len(stored) == len(ordered):
            return Plan(result=Added(messages=stored, conversation=None), change=None)
        pending = ordered[len(stored) :]
        tree = items.tree_from_item(snapshot.get(items.tree_key(conversation_id)))
        if stored:
            placement = await place(table, conversation, tree, stored[-1].position, user_id)
        elif parent_id is None:
            placement = continue_active(conversation)
        else:
            parent = marked(snapshot, conversation_id, parent_id, "parent message not found")
            placement = await place(table, conversation, tree, parent, user_id)
        start = max(snapshot.now, conversation.updated_at + ONE_TICK)
        records = new_records(user_id, conversation_id, pending, placement, start, refs)
        grown = placement.tree_after(tree, records[0].id)
        updated = dataclasses.replace(
            conversation,
            message_count=conversation.message_count + len(records),
            updated_at=records[-1].created_at,
            last_message=items.preview(records[-1]),
            active_leaf=records[-1].position,
            segment_count=placement.segment_count,
        )

        def actions(transaction: Transaction) -> None:
            for record in records:
                item = items.message_item(record, expires_at=conversation.expires_at)
                ensure_fits(item, field="content")
                absent = "attribute_not_exists(PK)"
                transaction.put(_message_action(record.id), item, condition=absent)
                transaction.put(
                    _marker_action(record.id),
                    items.marker_item(record, expires_at=conversation.expires_at),
                    condition=absent,
                )
            put_conversation(transaction, conversation, updated)
            if grown is not tree:
                put_tree(transaction, conversation_id, grown, conversation.expires_at)

        return Plan(
            result=Added(messages=[*stored, *records], conversation=updated),
            change=ChangeDraft(
                kind="MESSAGES_ADDED",
                conversation_id=conversation_id,
                messages=tuple(record.position for record in records),
            ),
            actions=actions,
            settle=retry_on_taken_positions,
        )

    try:
        return await commit(table, user_id=user_id, reads=reads, plan=plan)
    except (ConflictError, NotFoundError, ValidationError):
        # Refused before anything committed: the objects uploaded for it are nobody's. (After
        # an outage the outcome is unknown, and they stay: an object too many is harmless.)
        if table.content is not None and refs:
            await table.content.delete(list(refs.values()))
        raise


async def _upload_large(
    table: ChatTable, user_id: str, conversation_id: str, ordered: list[NewMessage]
) -> dict[str, str]:
    """Put the content over the inline limit in the bucket first; the keys by message id.
    Without a bucket, content stays in its item as long as the item fits (checked before)."""
    store = table.content
    large = [new for new in ordered if is_large(new.content)]
    if not large or store is None:
        return {}
    keys_by_id = {
        str(new.id): object_key(_provisional(new, user_id, conversation_id)) for new in large
    }
    await asyncio.gather(*(store.put(keys_by_id[str(new.id)], new.content) for new in large))
    return keys_by_id


def _provisional(new: NewMessage, user_id: str, conversation_id: str) -> MessageRecord:
    """`new` as a record before it has a place: for what does not depend on the place."""
    return MessageRecord(
        id=str(new.id),
        conversation_id=conversation_id,
        user_id=user_id,
        role=new.role,
        content=new.content,
        created_at=datetime.now(UTC),
        model_id=new.model_id,
        is_error=new.is_error,
        error_message=new.error_message,
        parent_id=new.parent_id or str(new.id),
        segment=keys.MAX_SEGMENT,
        depth=keys.MAX_DEPTH,
    )


async def retry_on_taken_positions(cancelled: TransactionCancelled) -> None:
    """A message position or id was taken after our snapshot: the next round sees it."""
    if not any(reason.condition_failed for reason in cancelled.reasons.values()):
        raise ConflictError("the conversation changed while adding; try again")


def _ensure_each_fits(
    table: ChatTable, user_id: str, conversation_id: str, ordered: list[NewMessage]
) -> None:
    """Refuse a message too large for an item before reading anything: where it will go
    changes its item's size by a few bytes only, which the limit's margin covers. Content
    kept in the bucket leaves only its start in the item."""
    for new in ordered:
        widest = _provisional(new, user_id, conversation_id)
        if is_large(new.content) and table.content is not None:
            widest = dataclasses.replace(widest, content_ref=object_key(widest))
        ensure_fits(items.message_item(widest, expires_at=datetime.now(UTC)), field="content")


def with_ids(messages: Sequence[NewMessage]) -> list[NewMessage]:
    if not messages:
        raise ValidationError("messages", "must not be empty")
    if len(messages) > MAX_MESSAGES_PER_ADD:
        raise ValidationError("messages", f"at most {MAX_MESSAGES_PER_ADD} in one call")
    result = []
    for index, new in enumerate(messages):
        if new.role not in ROLES:
            raise ValidationError(f"messages[{index}].role", "is not a known role")
        message_id = str(uuid.uuid4()) if new.id is None else checked_id(new.id, field="id")
        parent_id = None if new.parent_id is None else checked_id(new.parent_id, field="parentId")
        result.append(dataclasses.replace(new, id=message_id, parent_id=parent_id))
    if len({new.id for new in result}) != len(result):
        raise ValidationError("messages", "contain the same id twice")
    if result[0].parent_id is not None and result[0].parent_id in {new.id for new in result}:
        raise ValidationError("parentId", "cannot be one of the messages being added")
    return result


def conversation_of(snapshot: Snapshot, user_id: str, conversation_id: str) -> ConversationRecord:
    item = snapshot.get(items.conversation_key(user_id, conversation_id))
    if item is None or items.expired(item, snapshot.now) or items.is_project(item):
        # Checked first: another user's conversation must look exactly like a missing one,
        # whatever the message markers in its partition would say.
        raise NotFoundError("conversation not found")
    return items.conversation_from_item(item)


async def _already_stored(
    table: ChatTable, snapshot: Snapshot, conversation_id: str, ordered: list[NewMessage]
) -> list[MessageRecord]:
    """The leading messages of `ordered` that a retried call stored already.

    A retry repeats a whole call, so what is stored is a prefix of it; an id stored for a
    different message, or stored out of that order, is a conflict.
    """
    positions = {
        str(new.id): items.marked_position(marker)
        for new in ordered
        if (marker := snapshot.get(items.marker_key(conversation_id, str(new.id)))) is not None
    }
    if not positions:
        return []
    found = await read_positions(table, conversation_id, list(positions.values()))
    stored: list[MessageRecord] = []
    for index, new in enumerate(ordered):
        position = positions.get(str(new.id))
        if position is None:
            break
        existing = found.get((position.segment, position.depth))
        if existing is None:
            raise ConflictError("a stored message is not readable; try again")
        if not existing.same_payload(new):
            raise ConflictError(f"message id {new.id} was already used for another message")
        if index and existing.parent_id != stored[-1].id:
            raise ConflictError(f"message id {new.id} was stored in another place")
        stored.append(existing)
    if len(stored) != len(positions):
        raise ConflictError("some of these message ids were already used for other messages")
    return stored


def marked(
    snapshot: Snapshot, conversation_id: str, message_id: str, missing: str
) -> MessagePosition:
    marker = snapshot.get(items.marker_key(conversation_id, message_id))
    if marker is None:
        raise NotFoundError(missing)
    return items.marked_position(marker)


def continue_active(conversation: ConversationRecord) -> Placement:
    """After the active leaf, which never has a child: an add gives it one and makes that the
    leaf, and switching branches always lands on a segment's tip."""
    leaf = conversation.active_leaf
    if leaf is None:
        return Placement(segment=0, depth=1, parent_id=None, segment_count=1)
    return Placement(
        segment=leaf.segment,
        depth=leaf.depth + 1,
        parent_id=leaf.message_id,
        segment_count=conversation.segment_count,
    )


async def place(
    table: ChatTable,
    conversation: ConversationRecord,
    tree: Tree,
    parent: MessagePosition,
    user_id: str,
) -> Placement:
    """After `parent`: in its segment if it has no child yet, else in a new branch."""
    next_in_segment = MessagePosition(segment=parent.segment, depth=parent.depth + 1, message_id="")
    found = await read_positions(table, conversation.id, [parent, next_in_segment])
    parent_record = found.get((parent.segment, parent.depth))
    if parent_record is None or parent_record.user_id != user_id:
        raise NotFoundError("parent message not found")
    continuation = found.get((next_in_segment.segment, next_in_segment.depth))
    if continuation is None:
        return Placement(
            segment=parent.segment,
            depth=parent.depth + 1,
            parent_id=parent_record.id,
            segment_count=conversation.segment_count,
        )
    number = conversation.segment_count
    if number > keys.MAX_SEGMENT:
        raise ValidationError("parentId", "this conversation has too many branches")
    at = (parent.segment, parent.depth)
    return Placement(
        segment=number,
        depth=parent.depth + 1,
        parent_id=parent_record.id,
        segment_count=number + 1,
        fork=(at, tree.children.get(at) or (continuation.id,)),
    )


def new_records(
    user_id: str,
    conversation_id: str,
    pending: Sequence[NewMessage],
    placement: Placement,
    start: datetime,
    refs: dict[str, str],
) -> list[MessageRecord]:
    records: list[MessageRecord] = []
    parent_id = placement.parent_id
    for index, new in enumerate(pending):
        record = MessageRecord(
            id=str(new.id),
            conversation_id=conversation_id,
            user_id=user_id,
            role=new.role,
            content=new.content,
            # One tick apart, so a batch keeps its order (the user's message before the answer).
            created_at=start + index * ONE_TICK,
            model_id=new.model_id,
            is_error=new.is_error,
            error_message=new.error_message,
            parent_id=parent_id,
            segment=placement.segment,
            depth=placement.depth + index,
            content_ref=refs.get(str(new.id)),
        )
        records.append(record)
        parent_id = record.id
    return records


async def read_positions(
    table: ChatTable,
    conversation_id: str,
    positions: Sequence[MessagePosition],
    *,
    streamed: bool = False,
) -> dict[tuple[int, int], MessageRecord]:
    """The messages at `positions`, their content whole; with `streamed`, as readers see
    them (a streaming message's deltas added), else as stored (a streaming one's base)."""
    partition = keys.conversation_partition(conversation_id)
    found = await batch_get(table, [(partition, p.sort_key()) for p in positions])
    stored = [items.message_from_attributes(item) for item in found.values()]
    records = await (whole(table, stored) if streamed else filled_in(table.content, stored))
    return {(record.segment, record.depth): record for record in records}


def put_conversation(
    transaction: Transaction, stored: ConversationRecord, updated: ConversationRecord
) -> None:
    transaction.put(
        "conversation",
        items.conversation_item(updated),
        condition="attribute_exists(PK) AND updatedAt = :seen",
        values={":seen": {"S": format_timestamp(stored.updated_at)}},
    )


def put_tree(
    transaction: Transaction, conversation_id: str, tree: Tree, expires_at: datetime | None
) -> None:
    condition = "attribute_not_exists(PK)" if tree.revision == 1 else "revision = :seen"
    values = None if tree.revision == 1 else {":seen": {"N": str(tree.revision - 1)}}
    transaction.put(
        "tree",
        items.tree_item(conversation_id, tree, expires_at=expires_at),
        condition=condition,
        values=values,
    )


# --- switching branches and rating messages --------------------------------------------------


async def set_active_branch(
    table: ChatTable, *, user_id: str, conversation_id: str, message_id: str
) -> ConversationRecord:
    """Make the branch through `message_id` the active one, following the newest child at
    every fork below it to a leaf."""
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    message_id = checked_id(message_id, field="leafId")

    async def plan(snapshot: Snapshot) -> Plan[ConversationRecord]:
        conversation = conversation_of(snapshot, user_id, conversation_id)
        start = marked(snapshot, conversation_id, message_id, "message not found")
        tree = items.tree_from_item(snapshot.get(items.tree_key(conversation_id)))
        segment, depth = newest_descendant_run(tree, start)
        leaf = await segment_tip(table, user_id, conversation_id, segment, depth)
        updated = dataclasses.replace(
            conversation,
            active_leaf=leaf.position,
            last_message=items.preview(leaf),
            version=conversation.version + 1,
            updated_at=max(snapshot.now, conversation.updated_at + ONE_TICK),
        )
        return Plan(
            result=updated,
            change=ChangeDraft(kind="CONVERSATION_UPDATED", conversation_id=conversation_id),
            actions=lambda transaction: put_conversation(transaction, conversation, updated),
        )

    reads = [
        items.conversation_key(user_id, conversation_id),
        items.tree_key(conversation_id),
        items.marker_key(conversation_id, message_id),
    ]
    switched = await commit(table, user_id=user_id, reads=reads, plan=plan)
    return await streamed_preview(table, switched)


def newest_descendant_run(tree: Tree, start: MessagePosition) -> tuple[int, int]:
    """From `start`, the newest child at every fork, until a segment forks no more: that
    segment, and the depth in it from which its tip is the leaf."""
    segment, depth = start.segment, start.depth
    while True:
        ahead = tree.forks_after(segment, depth)
        if not ahead:
            return segment, depth
        fork_depth = min(s.fork_depth for s in ahead)
        # Every branch at a fork is newer than the message the fork's segment goes on with,
        # and a higher number is a newer branch.
        newest = max(s.number for s in ahead if s.fork_depth == fork_depth)
        segment, depth = newest, fork_depth + 1


async def segment_tip(
    table: ChatTable, user_id: str, conversation_id: str, segment: int, depth: int
) -> MessageRecord:
    """The last message of `segment` at `depth` or deeper: where a branch ends."""
    response = await table.client.query(
        TableName=table.name,
        KeyConditionExpression="PK = :p AND SK BETWEEN :low AND :high",
        FilterExpression="userId = :user",
        ExpressionAttributeValues={
            ":p": {"S": keys.conversation_partition(conversation_id)},
            ":low": {"S": keys.message_sk(segment, depth)},
            ":high": {"S": keys.message_sk(segment, keys.MAX_DEPTH)},
            ":user": {"S": user_id},
        },
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
    )
    found = response.get("Items", [])
    if not found:
        raise NotFoundError("message not found")
    return items.message_from_attributes(found[0])


async def set_feedback(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    message_id: str,
    rating: Rating | None,
    comment: str | None,
) -> MessageRecord:
    """Set, change or (rating and comment both None) clear one message's feedback."""
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    message_id = checked_id(message_id, field="messageId")

    async def plan(snapshot: Snapshot) -> Plan[MessageRecord]:
        conversation = conversation_of(snapshot, user_id, conversation_id)
        position = marked(snapshot, conversation_id, message_id, "message not found")
        marker = snapshot.get(items.marker_key(conversation_id, message_id)) or {}
        found = await read_positions(table, conversation_id, [position], streamed=True)
        message = found.get((position.segment, position.depth))
        if message is None or message.user_id != user_id:
            raise NotFoundError("message not found")
        feedback = (
            None
            if rating is None and comment is None
            else Feedback(rating=rating, comment=comment, updated_at=snapshot.now)
        )
        updated_message = dataclasses.replace(message, feedback=feedback)
        # A rating changes the conversation (its version) but not its place in the list.
        updated = dataclasses.replace(conversation, version=conversation.version + 1)
        key = items.message_key(conversation_id, position)

        def actions(transaction: Transaction) -> None:
            owned = "attribute_exists(PK) AND userId = :user"
            values: dict[str, Any] = {":user": {"S": user_id}}
            if feedback is None:
                update = "REMOVE feedback"
            else:
                update = "SET feedback = :feedback"
                values[":feedback"] = {"M": items.feedback_attributes(feedback)}
            transaction.update("message", key, update=update, condition=owned, values=values)
            if items.still_streaming(marker):
                # The marker's copy of a streaming message is what its finish answers with.
                transaction.update(
                    "marker",
                    items.marker_key(conversation_id, message_id),
                    update=(
                        "REMOVE #message.feedback"
                        if feedback is None
                        else "SET #message.feedback = :feedback"
                    ),
                    names={"#message": "message"},
                    values=None if feedback is None else {":feedback": values[":feedback"]},
                )
            put_conversation(transaction, conversation, updated)

        return Plan(
            result=updated_message,
            change=ChangeDraft(
                kind="CONVERSATION_UPDATED", conversation_id=conversation_id, messages=(position,)
            ),
            actions=actions,
        )

    reads = [
        items.conversation_key(user_id, conversation_id),
        items.marker_key(conversation_id, message_id),
    ]
    return await commit(table, user_id=user_id, reads=reads, plan=plan)


async def find_message(
    table: ChatTable, *, user_id: str, conversation_id: str, message_id: str
) -> MessageRecord | None:
    """One message by id, or None when it is not in this conversation of the caller's."""
    conversation_id = checked_id(conversation_id, field="conversationId")
    async with table.guard():
        found = await batch_get(
            table,
            [(keys.conversation_partition(conversation_id), keys.message_id_sk(message_id))],
        )
        marker = next(iter(found.values()), None)
        if marker is None:
            return None
        position = items.marked_position(marker)
        records = await read_positions(table, conversation_id, [position], streamed=True)
    record = records.get((position.segment, position.depth))
    return record if record is not None and record.user_id == user_id else None

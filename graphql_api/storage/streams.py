"""Streamed messages: started empty, grown by appends of deltas, finished by folding them in.

The billing rule that shapes this module: DynamoDB bills a write by the size of the item it
writes, and an update by the larger of the item's sizes before and after. Rewriting a growing
message on every chunk thus costs O(n^2) bytes over an answer, and a transaction per chunk
costs twice as much again. So an append is ONE PutItem of a small item holding that delta
alone (DELTA#<messageId>#<seq>), conditioned on the key being free: its write units follow
the delta's size, never the text stored before it.

- start: an add through writes.commit (a MESSAGES_ADDED change), of a message with status
  "streaming", empty text, a marker saying who streams it (items.stream_marker_item), and a
  PROFILE entry per open stream, which bounds how many a user has at once.
- append: with the stream's newest seq known (the caller's StreamTip, from the instance's
  cache), one PutItem; otherwise first one wave of two reads (the marker, the newest delta).
  A seq already stored answers as it did the first time and writes nothing.
- finish: one read wave (writes.commit's BatchGetItem beside a Query of every delta), one
  transaction (the message, the marker, a tombstone after the last delta, the conversation,
  the PROFILE and the MESSAGE_FINISHED change), then the deltas overwritten with tombstones in
  batches of 25.

Why tombstones, not deletes: an instance's cache may still say a finished stream is at seq k
and admit only k + 1; that key holds a delta or a tombstone, so the conditional put fails. A
deleted key would take the append. Tombstones expire after TOMBSTONE_LIFETIME, which must
outlast any cache entry (domain/streams.py: STREAM_CACHE_IDLE_SECONDS) by far.

Not covered: an append that read the stream's marker just before its conversation was deleted
can put its delta after the partition was purged. Nothing reads it (its marker is gone), and
it costs one item; a delete closing that window would need a read of the conversation per
append, which is what the design avoids.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from botocore.exceptions import ClientError

from graphql_api.errors import (
    ChatError,
    ConflictError,
    NotFoundError,
    SequenceConflictError,
    ValidationError,
)

from . import items, keys, messages
from .batch import batch_get, batch_put
from .checks import checked_id, checked_user, ensure_fits
from .client import ChatTable, error_code
from .content import is_large, object_key
from .deltas import newest_delta, read_deltas, read_marker, stream_status, streamed_in
from .messages import Added
from .profile import open_streams, stream_entry
from .records import (
    ONE_TICK,
    ConversationRecord,
    DeltaRecord,
    FinishStatus,
    Item,
    MessageRecord,
    NewMessage,
    StreamEvent,
    format_timestamp,
)
from .transaction import Transaction, TransactionCancelled
from .writes import ChangeDraft, Plan, Snapshot, commit

logger = logging.getLogger(__name__)

# Far longer than any stream cache entry lives (see the module's docstring).
TOMBSTONE_LIFETIME: Final = timedelta(days=1)
_ABSENT: Final = "attribute_not_exists(PK)"
_FINISHED: Final = "the message is finished; it takes no more appends"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamTip:
    """Where a stream stands after its newest stored delta: what an instance caches of it."""

    seq: int
    # The streamed text's length and UTF-8 size with that delta (see DeltaRecord).
    end: int
    size: int
    # A temporary conversation's expiry: its deltas carry it as their TTL.
    expires_at: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Appended:
    message_id: str
    seq: int
    # Characters stored once this seq is (what AppendMessagePayload.length says).
    length: int
    # Where this call verified the stream stands, for the cache: at seq or beyond it (the
    # next put is conditional, so a cache a little behind costs a read, never a wrong write).
    tip: StreamTip
    # Whether this call stored the delta (False: a retry of a stored one, answered again).
    written: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class Finished:
    message: MessageRecord
    # The conversation as the finish left it; None for a retry, which wrote nothing.
    conversation: ConversationRecord | None


# --- start ---------------------------------------------------------------------------------


async def start_message(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    message: NewMessage,
    max_streaming: int,
) -> Added:
    """Add an empty message with status "streaming", placed as add_to_conversation places one
    (`message.content` is ignored); a retry with its id returns the stored message.

    Raises NotFoundError for a missing or foreign conversation or parent, and ConflictError
    for an id used for another message or when `max_streaming` of the user's messages stream
    already (streams past the lease, finished or gone do not count: their entries are dropped).
    """
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    (new,) = messages.with_ids([dataclasses.replace(message, content="")])
    marker_key = items.marker_key(conversation_id, str(new.id))
    reads = [
        items.conversation_key(user_id, conversation_id),
        items.tree_key(conversation_id),
        marker_key,
    ]
    if new.parent_id is not None:
        reads.append(items.marker_key(conversation_id, new.parent_id))

    async def plan(snapshot: Snapshot) -> Plan[Added]:
        conversation = messages.conversation_of(snapshot, user_id, conversation_id)
        marker = snapshot.get(marker_key)
        if marker is not None:
            restarted = await _restarted(table, marker, new, user_id, conversation_id)
            return Plan(result=restarted, change=None)
        stale = await _stale_streams(table, snapshot, max_streaming)
        placement = await _placement(table, snapshot, conversation, new)
        planned = _started(snapshot, conversation, new, placement)
        planned.profile.drop |= stale
        return planned

    return await commit(table, user_id=user_id, reads=reads, plan=plan)


async def _placement(
    table: ChatTable, snapshot: Snapshot, conversation: ConversationRecord, new: NewMessage
) -> messages.Placement:
    if new.parent_id is None:
        return messages.continue_active(conversation)
    parent = messages.marked(snapshot, conversation.id, new.parent_id, "parent message not found")
    tree = items.tree_from_item(snapshot.get(items.tree_key(conversation.id)))
    return await messages.place(table, conversation, tree, parent, snapshot.user_id)


def _started(
    snapshot: Snapshot,
    conversation: ConversationRecord,
    new: NewMessage,
    placement: messages.Placement,
) -> Plan[Added]:
    start = max(snapshot.now, conversation.updated_at + ONE_TICK)
    (record,) = messages.new_records(snapshot.user_id, conversation.id, [new], placement, start, {})
    record = dataclasses.replace(record, status="streaming", stream_seq=0)
    tree = items.tree_from_item(snapshot.get(items.tree_key(conversation.id)))
    grown = placement.tree_after(tree, record.id)
    updated = dataclasses.replace(
        conversation,
        message_count=conversation.message_count + 1,
        updated_at=record.created_at,
        last_message=items.preview(record),
        active_leaf=record.position,
        segment_count=placement.segment_count,
    )
    expires_at = conversation.expires_at

    def actions(transaction: Transaction) -> None:
        item = items.message_item(record, expires_at=expires_at)
        transaction.put(("message", record.id), item, condition=_ABSENT)
        marker = items.stream_marker_item(record, base="", expires_at=expires_at)
        transaction.put(("marker", record.id), marker, condition=_ABSENT)
        messages.put_conversation(transaction, conversation, updated)
        if grown is not tree:
            messages.put_tree(transaction, conversation.id, grown, expires_at)

    planned = Plan(
        result=Added(messages=[record], conversation=updated),
        change=ChangeDraft(
            kind="MESSAGES_ADDED", conversation_id=conversation.id, messages=(record.position,)
        ),
        actions=actions,
        settle=messages.retry_on_taken_positions,
    )
    planned.profile.assign[stream_entry(conversation.id, record.id)] = {
        "S": format_timestamp(record.created_at)
    }
    return planned


async def _restarted(
    table: ChatTable, marker: Item, new: NewMessage, user_id: str, conversation_id: str
) -> Added:
    """A retried start: the stored message, if it is the stream this start began."""
    taken = ConflictError(f"message id {new.id} was already used for another message")
    if items.streamed_by(marker) != user_id:
        raise taken
    position = items.marked_position(marker)
    found = await messages.read_positions(table, conversation_id, [position])
    stored = found.get((position.segment, position.depth))
    if stored is None:
        raise ConflictError("a stored message is not readable; try again")
    if (stored.role, stored.model_id) != (new.role, new.model_id) or (
        new.parent_id is not None and stored.parent_id != new.parent_id
    ):
        raise taken
    return Added(messages=await streamed_in(table, [stored]), conversation=None)


async def _stale_streams(table: ChatTable, snapshot: Snapshot, limit: int) -> set[str]:
    """The PROFILE entries of streams that no longer stream (past the lease, finished, gone),
    read only once the user is at the limit; ConflictError when the live ones fill it."""
    entries = open_streams(snapshot.profile)
    if len(entries) < limit:
        return set()
    names = list(entries)
    live = await asyncio.gather(
        *(_still_streams(table, snapshot.user_id, *entries[name], snapshot.now) for name in names)
    )
    stale = {name for name, streams in zip(names, live, strict=True) if not streams}
    if len(entries) - len(stale) >= limit:
        raise ConflictError(f"at most {limit} messages may be streaming at once; finish one first")
    return stale


async def _still_streams(
    table: ChatTable, user_id: str, conversation_id: str, message_id: str, now: datetime
) -> bool:
    """Whether the stream still streams (not interrupted, not finished, not gone)."""
    marker, newest = await asyncio.gather(
        read_marker(table, conversation_id=conversation_id, message_id=message_id),
        newest_delta(
            table, user_id=user_id, conversation_id=conversation_id, message_id=message_id
        ),
    )
    if marker is None or items.streamed_by(marker) != user_id or items.expired(marker, now):
        return False
    if not items.still_streaming(marker) or (newest is not None and newest.folded):
        return False
    started = items.started_message(marker).created_at
    last_activity = newest.at if newest is not None and newest.at is not None else started
    return stream_status(table, last_activity, now) == "streaming"


# --- append --------------------------------------------------------------------------------


async def append_delta(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    message_id: str,
    seq: int,
    delta: str,
    max_bytes: int,
    known: StreamTip | None = None,
) -> Appended:
    """Store delta `seq` of the caller's streaming message, once.

    `known` is where the caller last saw this stream (its cache), or None. With seq right
    after it, the append is one PutItem; otherwise the stream is read first. Appends are
    sequential per message: send seq N + 1 once N is acknowledged. Raises NotFoundError when
    there is no such stream of the caller's, SequenceConflictError (with the expected seq)
    for a seq past the next, ConflictError for a finished message or a seq already used for
    other text, and ValidationError when the text would pass `max_bytes` (nothing stored).
    """
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    message_id = checked_id(message_id, field="messageId")
    if not 1 <= seq <= keys.MAX_SEQ:
        raise ValidationError("seq", "must be a positive whole number")
    at = (user_id, conversation_id, message_id)
    async with table.guard():
        appended = await _append(table, at, seq, delta, max_bytes, known)
    if appended.written:
        event = StreamEvent(
            conversation_id=conversation_id,
            message_id=message_id,
            seq=seq,
            delta=delta,
            status="streaming",
        )
        await _announce(table, user_id, event)
    return appended


async def _append(
    table: ChatTable,
    at: tuple[str, str, str],
    seq: int,
    delta: str,
    max_bytes: int,
    known: StreamTip | None,
) -> Appended:
    if known is not None and seq == known.seq + 1:
        if known.expires_at is not None and known.expires_at <= table.clock():
            raise NotFoundError("message not found")
        return await _put(table, at, seq, delta, known, max_bytes)
    tip = await _read_tip(table, *at)
    if seq <= tip.seq:
        return await _replayed(table, at, seq, delta, tip)
    if seq > tip.seq + 1:
        raise SequenceConflictError(
            f"seq {seq} does not follow the stored deltas; send seq {tip.seq + 1} next",
            expected_seq=tip.seq + 1,
        )
    return await _put(table, at, seq, delta, tip, max_bytes)


async def _read_tip(
    table: ChatTable, user_id: str, conversation_id: str, message_id: str
) -> StreamTip:
    """The stream's newest delta, read with its marker in one wave; the owner and the state
    checked: only a verified read (or a put) may ever fill a cache."""
    marker, newest = await asyncio.gather(
        read_marker(table, conversation_id=conversation_id, message_id=message_id),
        newest_delta(
            table, user_id=user_id, conversation_id=conversation_id, message_id=message_id
        ),
    )
    if (
        marker is None
        or items.streamed_by(marker) != user_id
        or items.expired(marker, table.clock())
    ):
        raise NotFoundError("message not found")
    if not items.still_streaming(marker) or (newest is not None and newest.folded):
        raise ConflictError(_FINISHED)
    expires_at = items.expiry_of(marker)
    if newest is None:
        end, size = items.base_length(marker)
        return StreamTip(seq=0, end=end, size=size, expires_at=expires_at)
    return StreamTip(seq=newest.seq, end=newest.end, size=newest.size, expires_at=expires_at)


async def _put(
    table: ChatTable,
    at: tuple[str, str, str],
    seq: int,
    delta: str,
    tip: StreamTip,
    max_bytes: int,
) -> Appended:
    user_id, conversation_id, message_id = at
    size = tip.size + len(delta.encode())
    if size > max_bytes:
        raise ValidationError("delta", f"the message would pass {max_bytes} bytes of UTF-8")
    record = DeltaRecord(seq=seq, text=delta, end=tip.end + len(delta), size=size, at=table.clock())
    item = items.delta_item(conversation_id, user_id, message_id, record, expires_at=tip.expires_at)
    try:
        await table.client.put_item(
            TableName=table.name,
            Item=item,
            # The key taken means this seq was stored already (a retry, another client's, a
            # tombstone of a finished stream): the old item comes back with the refusal.
            ConditionExpression=_ABSENT,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        old: Item | None = exc.response.get("Item")  # type: ignore[assignment]
        return await _taken(table, at, seq, delta, old)
    tip = StreamTip(seq=seq, end=record.end, size=size, expires_at=tip.expires_at)
    return Appended(message_id=message_id, seq=seq, length=record.end, tip=tip, written=True)


async def _taken(
    table: ChatTable,
    at: tuple[str, str, str],
    seq: int,
    delta: str,
    old: Item | None,
) -> Appended:
    """The put found seq taken: the same text is a retry, answered as the first time while
    the message still streams; anything else is a conflict."""
    user_id, conversation_id, message_id = at
    stored = _same_delta(await _stored_delta(table, at, seq, old), seq, delta)
    marker = await read_marker(table, conversation_id=conversation_id, message_id=message_id)
    if marker is None or items.streamed_by(marker) != user_id:
        raise NotFoundError("message not found")
    if not items.still_streaming(marker):
        raise ConflictError(_FINISHED)
    # The stream is at seq or beyond: caching seq is safe, as the next put is conditional.
    tip = StreamTip(seq=seq, end=stored.end, size=stored.size, expires_at=items.expiry_of(marker))
    return Appended(message_id=message_id, seq=seq, length=stored.end, tip=tip, written=False)


async def _replayed(
    table: ChatTable, at: tuple[str, str, str], seq: int, delta: str, tip: StreamTip
) -> Appended:
    """A seq the stream holds already (its marker just read as streaming): answered as the
    first time when the text is the same, with no write."""
    stored = _same_delta(await _stored_delta(table, at, seq, None), seq, delta)
    return Appended(message_id=at[2], seq=seq, length=stored.end, tip=tip, written=False)


async def _stored_delta(
    table: ChatTable, at: tuple[str, str, str], seq: int, old: Item | None
) -> DeltaRecord | None:
    if old is not None:
        return items.delta_from_item(old)
    _, conversation_id, message_id = at
    key = items.key_of(items.delta_key(conversation_id, message_id, seq))
    found = (await batch_get(table, [key])).get(key)
    return None if found is None else items.delta_from_item(found)


def _same_delta(stored: DeltaRecord | None, seq: int, delta: str) -> DeltaRecord:
    if stored is None:
        raise ConflictError("the stream changed meanwhile; try again")
    if stored.folded:
        raise ConflictError(_FINISHED)
    if stored.text != delta:
        raise ConflictError(f"seq {seq} was already used for another delta")
    return stored


async def _announce(table: ChatTable, user_id: str, event: StreamEvent) -> None:
    if table.stream_listener is None:
        return
    try:
        await table.stream_listener(user_id, event)
    except Exception:
        logger.warning(
            "stream %s seq %s stored but not announced", event.message_id, event.seq, exc_info=True
        )


# --- finish --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ending:
    """How a stream is to end, as the finisher says it."""

    status: FinishStatus
    # The highest seq the finisher sent; every one up to it must be stored unless `content`.
    last_seq: int
    # The final text, the client's last word: it wins over the stored deltas.
    content: str | None = None
    error_message: str | None = None


@dataclasses.dataclass(frozen=True)
class _Folded:
    finished: Finished
    deltas: list[DeltaRecord]
    # A content bucket object put for the final text, deleted if the finish is refused.
    uploaded: str | None


async def finish_message(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    message_id: str,
    ending: Ending,
) -> Finished:
    """Fold the stored deltas (or `ending.content`) into the message, ending its stream.

    Every acknowledged delta is folded in, also past `ending.last_seq`; a `last_seq` beyond
    the stored deltas is a SequenceConflictError (append them first) unless the content is
    given. Finishing again with the same status answers the stored message and writes
    nothing; another status is a ConflictError. NotFoundError when the caller has no such
    streamed message.
    """
    user_id = checked_user(user_id)
    conversation_id = checked_id(conversation_id, field="conversationId")
    message_id = checked_id(message_id, field="messageId")
    at = (user_id, conversation_id, message_id)
    # In flight with commit's BatchGetItem: one read wave, not two.
    pending: list[asyncio.Future[list[DeltaRecord]]] = [
        asyncio.ensure_future(
            read_deltas(
                table, user_id=user_id, conversation_id=conversation_id, message_id=message_id
            )
        )
    ]
    uploaded: list[str] = []

    async def plan(snapshot: Snapshot) -> Plan[_Folded]:
        # A later round (an append landed after the first read) reads the deltas again.
        found = await (
            pending.pop()
            if pending
            else read_deltas(
                table, user_id=user_id, conversation_id=conversation_id, message_id=message_id
            )
        )
        planned = await _plan_finish(table, snapshot, at, ending, found)
        if planned.result.uploaded is not None:
            uploaded.append(planned.result.uploaded)
        return planned

    reads = [
        items.conversation_key(user_id, conversation_id),
        items.marker_key(conversation_id, message_id),
    ]
    try:
        folded = await commit(table, user_id=user_id, reads=reads, plan=plan)
    except (ConflictError, NotFoundError, ValidationError):
        if table.content is not None and uploaded:
            await table.content.delete(uploaded)
        raise
    finally:
        for unread in pending:
            unread.cancel()
            await asyncio.gather(unread, return_exceptions=True)
    # Objects put by rounds that lost a race hold text no message names.
    unused = [key for key in uploaded if key != folded.uploaded]
    if table.content is not None and unused:
        await table.content.delete(unused)
    if folded.finished.conversation is not None:
        await _announce(table, user_id, _finish_event(folded, ending))
        await _fold_away(table, at, folded.deltas)
    return folded.finished


async def _plan_finish(
    table: ChatTable,
    snapshot: Snapshot,
    at: tuple[str, str, str],
    ending: Ending,
    found: list[DeltaRecord],
) -> Plan[_Folded]:
    user_id, conversation_id, message_id = at
    conversation = messages.conversation_of(snapshot, user_id, conversation_id)
    marker = snapshot.get(items.marker_key(conversation_id, message_id))
    if marker is None or items.streamed_by(marker) != user_id:
        raise NotFoundError("message not found")
    if not items.still_streaming(marker) or any(delta.folded for delta in found):
        again = await _refinished(table, conversation_id, marker, ending.status)
        return Plan(
            result=_Folded(Finished(message=again, conversation=None), [], None), change=None
        )
    last = found[-1].seq if found else 0
    if ending.last_seq > last and ending.content is None:
        raise SequenceConflictError(
            f"deltas up to seq {ending.last_seq} are not all stored: send seq {last + 1} "
            "next, or give the whole content",
            expected_seq=last + 1,
        )
    if ending.content is not None:
        text = ending.content
    else:
        text = await _streamed_text(table, conversation_id, marker, found)
    final, uploaded = await _stored_form(table, _final(items.started_message(marker), text, ending))
    updated = _after(conversation, final, snapshot.now)
    closing = _closing(marker, found, ending)
    planned = Plan(
        result=_Folded(Finished(message=final, conversation=updated), found, uploaded),
        change=ChangeDraft(
            kind="MESSAGE_FINISHED", conversation_id=conversation_id, messages=(final.position,)
        ),
        actions=lambda transaction: _finish_actions(
            transaction, snapshot, (conversation, updated), closing, final
        ),
        settle=_raced,
    )
    planned.profile.drop.add(stream_entry(conversation_id, message_id))
    return planned


def _after(
    conversation: ConversationRecord, final: MessageRecord, now: datetime
) -> ConversationRecord:
    """The conversation once `final` is finished: a new version, moved up the list, and its
    preview refreshed when the message is the active branch's newest."""
    leaf = conversation.active_leaf
    return dataclasses.replace(
        conversation,
        version=conversation.version + 1,
        updated_at=max(now, conversation.updated_at + ONE_TICK),
        last_message=(
            items.preview(final)
            if leaf is not None and leaf.message_id == final.id
            else conversation.last_message
        ),
    )


def _closing(marker: Item, found: list[DeltaRecord], ending: Ending) -> DeltaRecord:
    """The tombstone a finish writes after the last stored delta."""
    end, size = (found[-1].end, found[-1].size) if found else items.base_length(marker)
    return DeltaRecord(
        seq=found[-1].seq + 1 if found else 1,
        text="",
        end=end,
        size=size,
        at=None,
        folded=True,
        replaced=ending.content is not None,
    )


def _finish_actions(
    transaction: Transaction,
    snapshot: Snapshot,
    conversations: tuple[ConversationRecord, ConversationRecord],
    closing: DeltaRecord,
    final: MessageRecord,
) -> None:
    conversation, updated = conversations
    _fold_into(transaction, conversation.id, final)
    transaction.update(
        "marker",
        items.marker_key(conversation.id, final.id),
        update="REMOVE #streaming, #message, #baseEnd, #baseBytes",
        condition="attribute_exists(#streaming)",
        names={name: name[1:] for name in ("#streaming", "#message", "#baseEnd", "#baseBytes")},
    )
    # The serialization point with an append of the next seq: whichever writes the key first
    # wins, and a finish that loses reads and plans again.
    tombstone = items.tombstone_item(
        conversation.id,
        snapshot.user_id,
        final.id,
        closing,
        expires_at=snapshot.now + TOMBSTONE_LIFETIME,
    )
    transaction.put("tombstone", tombstone, condition=_ABSENT)
    messages.put_conversation(transaction, conversation, updated)


async def _streamed_text(
    table: ChatTable, conversation_id: str, marker: Item, found: list[DeltaRecord]
) -> str:
    """The base and the deltas; the base is read only when there is one (an imported
    message's text), so a started message's finish reads nothing more."""
    base = ""
    if items.base_length(marker)[0]:
        position = items.marked_position(marker)
        stored = await messages.read_positions(table, conversation_id, [position])
        record = stored.get((position.segment, position.depth))
        if record is None:
            raise ConflictError("a stored message is not readable; try again")
        base = record.content
    return base + "".join(delta.text for delta in found)


def _final(started: MessageRecord, text: str, ending: Ending) -> MessageRecord:
    if ending.status == "complete" and not text:
        raise ValidationError(
            "content", "a COMPLETE message must not be empty; finish it STOPPED or FAILED"
        )
    # The one mapping of a finish to the message's error fields: FAILED is an error message.
    return dataclasses.replace(
        started,
        content=text,
        status=ending.status,
        is_error=ending.status == "failed",
        error_message=ending.error_message,
        stream_seq=None,
    )


async def _stored_form(table: ChatTable, final: MessageRecord) -> tuple[MessageRecord, str | None]:
    """`final` as its item will hold it: text over the inline limit put in the content bucket
    first, as an add puts it, under a key naming the text (so putting it again is harmless)."""
    uploaded = None
    if table.content is not None and is_large(final.content):
        uploaded = object_key(final)
        await table.content.put(uploaded, final.content)
        final = dataclasses.replace(final, content_ref=uploaded)
    ensure_fits(items.message_item(final), field="content")
    return final, uploaded


def _fold_into(transaction: Transaction, conversation_id: str, final: MessageRecord) -> None:
    """Update the message item in place (its feedback, if rated mid-stream, stays), on the
    condition that it still streams: of two finishes, one writes."""
    stored = items.message_attributes(final)
    changed = ["content", "isError", "errorMessage", "contentRef", "status"]
    names = {f"#{name}": name for name in changed}
    values: dict[str, Any] = {":streaming": {"S": "streaming"}}
    sets, removes = [], []
    for name in changed:
        if name in stored:
            values[f":{name}"] = stored[name]
            sets.append(f"#{name} = :{name}")
        elif name == "status":
            # Absent is complete, as for every message added whole.
            removes.append("#status")
        else:
            names.pop(f"#{name}")
    update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    transaction.update(
        "message",
        items.message_key(conversation_id, final.position),
        update=update,
        condition="#status = :streaming",
        names=names,
        values=values,
    )


async def _refinished(
    table: ChatTable, conversation_id: str, marker: Item, status: FinishStatus
) -> MessageRecord:
    """A finish of a finished message: a retry when the status is the same."""
    position = items.marked_position(marker)
    found = await messages.read_positions(table, conversation_id, [position])
    stored = found.get((position.segment, position.depth))
    if stored is None:
        raise ConflictError("a stored message is not readable; try again")
    if stored.status != status:
        raise ConflictError(f"the message is finished already, as {stored.status.upper()}")
    return stored


async def _raced(cancelled: TransactionCancelled) -> None:
    """A condition of the finish failed: an append landed after the read (the tombstone's
    key), or another finish won (the message's): read and plan again."""
    if not any(reason.condition_failed for reason in cancelled.reasons.values()):
        raise ConflictError("the message changed while finishing; try again")


async def _fold_away(
    table: ChatTable, at: tuple[str, str, str], deltas: Sequence[DeltaRecord]
) -> None:
    """Overwrite the folded deltas with tombstones, 25 to a BatchWriteItem: it costs what
    deleting them costs (an overwrite is billed at the larger size), and the TTL deletes them
    for free. A failure part-way leaves deltas that no read adds to a finished message's text;
    it is logged, not retried."""
    if not deltas:
        return
    user_id, conversation_id, message_id = at
    expires_at = table.clock() + TOMBSTONE_LIFETIME
    tombstones = [
        items.tombstone_item(
            conversation_id,
            user_id,
            message_id,
            dataclasses.replace(delta, text="", folded=True),
            expires_at=expires_at,
        )
        for delta in deltas
    ]
    try:
        await batch_put(table, tombstones)
    except ChatError:
        logger.warning("stream %s finished; its deltas were not all folded away", message_id)


def _finish_event(folded: _Folded, ending: Ending) -> StreamEvent:
    final = folded.finished.message
    return StreamEvent(
        conversation_id=final.conversation_id,
        message_id=final.id,
        seq=folded.deltas[-1].seq if folded.deltas else 0,
        delta="",
        status=final.status,
        replaced=ending.content is not None,
    )
